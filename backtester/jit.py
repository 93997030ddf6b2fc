"""The jit path: a strategy whose callbacks are numba ``@njit`` functions run inside the replay.

A :class:`JitStrategy` subclass names its callbacks as class attributes (plain ``@njit``
functions) and builds the numba-compatible ``state`` they share (an array, a structured
array or a tuple of arrays) from its parameters. The callbacks run inside the jitted loop with
no Python in between, which is what makes tick-by-tick strategies fast; ``backtest`` accepts a
JitStrategy exactly like a :class:`~backtester.strategy.Strategy` and returns the same Result.

Callback signatures (``ctx`` is the run's :class:`~backtester.engine.state_nb.EngineState`)::

    on_bar(ctx, state, instrument, row)      # ctx.bars[row] closed
    on_trade(ctx, state, instrument, row)    # ctx.trades[row] printed
    on_fill(ctx, state, fill_row)            # ctx.fills[fill_row]
    on_funding(ctx, state, payment_row)      # ctx.funding_payments[payment_row]
    on_liquidation(ctx, state, row)          # ctx.liquidations[row]
    on_margin_call(ctx, state, instrument)
    on_adl(ctx, state, row)                  # ctx.adl[row] (ADL close or clawback)
    on_order_rejected(ctx, state, order_row) # ctx.orders[order_row]["reject_reason"]
    on_start(ctx, state) / on_stop(ctx, state)

Example::

    @njit
    def on_trade(ctx, state, i, row):
        price = ctx.trades[row]["price"]
        state[0] += 0.01 * (price - state[0])            # EMA of the trade price
        q = position(ctx, i)
        if price > state[0] * 1.001 and q <= 0:
            market(ctx, i, 1.0 - q)

    class EmaTicks(JitStrategy):
        on_trade = on_trade
        def make_state(self):
            return np.zeros(1)

The helpers below (``position``, ``market``, ``limit``, ...) mirror the Python
:class:`~backtester.strategy.Context`: sizes in contracts (signed: > 0 buys), prices in quote
per base, money in the settle currency. Orders are validated after the callback returns, at
the same timestamp; a jitted callback may place up to
:data:`~backtester.engine.order_entry_nb.ORDER_HEADROOM` orders per event (``-1`` beyond).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from numba import njit

from backtester.callbacks import CALLBACKS
from backtester.engine.order_entry_nb import cancel_order_nb, place_order_nb, set_trail_nb
from backtester.enums import OrderType, Side, TimeInForce
from backtester.sizing_nb import contracts_for_money_nb, round_price_nb
from backtester.strategy import class_parameters, set_parameters

__all__ = [
    "CALLBACKS",
    "JitStrategy",
    "balance",
    "cancel",
    "close_position",
    "contracts_for_base",
    "contracts_for_notional",
    "entry_price",
    "index_price",
    "last_price",
    "limit",
    "mark_price",
    "market",
    "one_cancels_other",
    "place_exits",
    "position",
    "round_price",
    "stop",
    "take_profit",
    "time_ns",
    "trailing_stop",
]


class JitStrategy:
    """Base class of a jitted strategy: ``@njit`` callbacks as class attributes, parameters as
    other class attributes, and :meth:`make_state` building the callbacks' shared state.

    Parameters
    ----------
    **params
        Overrides of the class-attribute parameters; unknown names raise ``ValueError`` with a
        "did you mean" suggestion.
    """

    on_start: Any = None
    on_bar: Any = None
    on_trade: Any = None
    on_fill: Any = None
    on_funding: Any = None
    on_liquidation: Any = None
    on_margin_call: Any = None
    on_adl: Any = None
    on_order_rejected: Any = None
    on_stop: Any = None

    def __init__(self, **params: object) -> None:
        set_parameters(self, params)
        for name in CALLBACKS:
            fn = self.callback(name)
            if fn is not None and not hasattr(fn, "py_func"):
                raise TypeError(
                    f"{type(self).__name__}.{name}: expected a numba @njit function, got {fn!r}"
                )

    @classmethod
    def parameters(cls) -> dict[str, object]:
        """Parameter names and default values (public class attributes that are not
        callbacks or methods)."""
        return class_parameters(cls, JitStrategy, skip=CALLBACKS)

    @classmethod
    def callback(cls, name: str) -> Any:
        """The jitted function set as callback ``name`` (None when not defined).

        Read without the descriptor protocol: a numba dispatcher stored on a class binds to
        the instance like a method, giving a new object (and a new compilation) per access.
        """
        return inspect.getattr_static(cls, name)

    @classmethod
    def subscribed(cls) -> set[str]:
        """Names of the callbacks this class defines."""
        return {name for name in CALLBACKS if cls.callback(name) is not None}

    def replay_kernel(self, run: Any) -> Any:
        """A replay of this strategy specialised for ``run`` (a
        :class:`~backtester.engine.driver.Run`), or None (the default) for the general jitted
        loop. Returns ``(kernel, arguments)``: ``kernel(state, capacities, *arguments)`` must
        replay like ``run_until_nb`` with this strategy's callbacks (same records) and return
        a Status. The signal path uses it (:mod:`backtester.engine.signals_nb`)."""
        return None

    def make_state(self) -> Any:
        """The value passed to every callback as ``state`` (default: an empty float array).

        Override to return what the callbacks need, built from the parameters: a numpy array,
        a structured array or a tuple of them (numba must be able to type it).
        """
        return np.zeros(0)


# ---------------------------------------------------------------- reading the state
@njit(cache=True)
def position(ctx, instrument) -> float:
    """Signed position in contracts."""
    return ctx.positions[instrument]["contracts"]


@njit(cache=True)
def entry_price(ctx, instrument) -> float:
    """Average entry price of the open position (NaN when flat)."""
    return ctx.positions[instrument]["entry_price"]


@njit(cache=True)
def mark_price(ctx, instrument) -> float:
    """Current mark price (the price liquidation is checked on)."""
    return ctx.positions[instrument]["mark_price"]


@njit(cache=True)
def last_price(ctx, instrument) -> float:
    """Last traded price (trade tick or bar close)."""
    return ctx.positions[instrument]["last_price"]


@njit(cache=True)
def index_price(ctx, instrument) -> float:
    """Last index price (NaN when the data has no index)."""
    return ctx.positions[instrument]["index_price"]


@njit(cache=True)
def balance(ctx) -> float:
    """Wallet balance (realised), settle currency."""
    return ctx.account[0]["balance_settle"]


@njit(cache=True)
def time_ns(ctx) -> int:
    """Timestamp of the event being processed (int ns UTC)."""
    return ctx.account[0]["ts_ns"]


# ---------------------------------------------------------------- orders
@njit(cache=True)
def _place(ctx, instrument, order_type, contracts, price, trigger, tif, reduce_only, post_only):
    if contracts == 0.0 or not np.isfinite(contracts):
        return -1
    side = Side.BUY if contracts > 0.0 else Side.SELL
    return place_order_nb(
        ctx,
        instrument,
        order_type,
        side,
        abs(contracts),
        price,
        trigger,
        tif,
        reduce_only,
        post_only,
        0,
        np.nan,
    )


@njit(cache=True)
def market(ctx, instrument, contracts, reduce_only=False) -> int:
    """Market order of ``contracts`` (signed); returns the order id (-1: zero or non-finite
    size, or no order row free)."""
    return _place(
        ctx, instrument, OrderType.MARKET, contracts, np.nan, np.nan, TimeInForce.GTC,
        reduce_only, False,
    )  # fmt: skip


@njit(cache=True)
def limit(ctx, instrument, contracts, price, post_only=False, reduce_only=False) -> int:
    """GTC limit order of ``contracts`` (signed) at ``price``; returns the order id."""
    return _place(
        ctx, instrument, OrderType.LIMIT, contracts, price, np.nan, TimeInForce.GTC,
        reduce_only, post_only,
    )  # fmt: skip


@njit(cache=True)
def stop(ctx, instrument, contracts, trigger, reduce_only=False) -> int:
    """Stop-market order: buys when the price rises to ``trigger`` (sells when it falls)."""
    return _place(
        ctx, instrument, OrderType.STOP_MARKET, contracts, np.nan, trigger, TimeInForce.GTC,
        reduce_only, False,
    )  # fmt: skip


@njit(cache=True)
def take_profit(ctx, instrument, contracts, trigger, reduce_only=True) -> int:
    """Take-profit market order: sells when the price rises to ``trigger`` (buys when it
    falls)."""
    return _place(
        ctx, instrument, OrderType.TAKE_PROFIT, contracts, np.nan, trigger, TimeInForce.GTC,
        reduce_only, False,
    )  # fmt: skip


@njit(cache=True)
def trailing_stop(
    ctx, instrument, contracts, distance, fraction=np.nan, start_price=np.nan, reduce_only=True
) -> int:
    """Trailing stop-market of ``contracts`` (signed; < 0 sells, protecting a long): triggers
    when the price falls ``distance`` (quote; NaN to use ``fraction``) or ``fraction`` below
    the highest price since ``start_price`` (NaN: the last price when the order is accepted),
    a buy the mirror image; the trigger ratchets and never loosens
    (:func:`~backtester.engine.orders_nb.trail_level_nb`). Returns the order id."""
    order_id = _place(
        ctx, instrument, OrderType.TRAILING_STOP_MARKET, contracts, np.nan, np.nan,
        TimeInForce.GTC, reduce_only, False,
    )  # fmt: skip
    if order_id >= 0:
        set_trail_nb(ctx, order_id, distance, fraction, start_price)
    return order_id


@njit(cache=True)
def close_position(ctx, instrument) -> int:
    """Reduce-only market order closing the position (-1 when flat)."""
    q = ctx.positions[instrument]["contracts"]
    if q == 0.0:
        return -1
    return market(ctx, instrument, -q, True)


@njit(cache=True)
def cancel(ctx, order_id) -> bool:
    """Cancel a working order; False when it is no longer working."""
    return cancel_order_nb(ctx, order_id)


# ---------------------------------------------------------------- sizes and prices
@njit(cache=True)
def contracts_for_notional(ctx, instrument, notional, price=np.nan) -> float:
    """Signed contracts worth ``notional`` quote at ``price`` (NaN: the last price), rounded
    toward zero to the lot (0.0 below one lot; formulas in :mod:`backtester.sizing`)."""
    p = ctx.params[instrument]
    if np.isnan(price):
        price = ctx.positions[instrument]["last_price"]
    return contracts_for_money_nb(
        p["contract_kind"], p["face_value"], p["lot_size_contracts"], price, notional, np.nan
    )


@njit(cache=True)
def contracts_for_base(ctx, instrument, base, price=np.nan) -> float:
    """Signed contracts holding ``base`` coin at ``price`` (NaN: the last price), rounded
    toward zero to the lot."""
    p = ctx.params[instrument]
    if np.isnan(price):
        price = ctx.positions[instrument]["last_price"]
    return contracts_for_money_nb(
        p["contract_kind"], p["face_value"], p["lot_size_contracts"], price, np.nan, base
    )


@njit(cache=True)
def round_price(ctx, instrument, price, direction=0) -> float:
    """``price`` on the contract's tick: nearest (0), down (-1, a buy's passive side) or up
    (+1, a sell's)."""
    return round_price_nb(price, ctx.params[instrument]["tick_size_quote"], direction)


# ---------------------------------------------------------------- exits of a position
@njit(cache=True)
def place_exits(ctx, instrument, stop_trigger, take_profit_trigger):
    """Reduce-only exits for the whole open position: a STOP_MARKET at ``stop_trigger`` and a
    TAKE_PROFIT at ``take_profit_trigger`` (NaN: not that one). Call it from ``on_fill`` once
    the entry has filled (a reduce-only order placed while flat is rejected). Returns
    ``(stop id, take-profit id)``, -1 for one not placed; pass them to :func:`one_cancels_other`
    in ``on_fill`` (the Python path does both itself: ``ctx.market(..., stop_loss=...)``).
    For a trailing stop instead of the fixed one, pass NaN as ``stop_trigger`` and place
    :func:`trailing_stop` beside it."""
    q = ctx.positions[instrument]["contracts"]
    stop_id = -1
    profit_id = -1
    if q == 0.0:
        return stop_id, profit_id
    if np.isfinite(stop_trigger):
        stop_id = stop(ctx, instrument, -q, stop_trigger, True)
    if np.isfinite(take_profit_trigger):
        profit_id = take_profit(ctx, instrument, -q, take_profit_trigger, True)
    return stop_id, profit_id


@njit(cache=True)
def one_cancels_other(ctx, fill_row, first_id, second_id) -> bool:
    """In ``on_fill``: when fill ``fill_row`` belongs to one of the two exits, cancel the other
    (True); else False."""
    order_id = ctx.fills[fill_row]["order_id"]
    if order_id == first_id and second_id >= 0:
        cancel(ctx, second_id)
        return True
    if order_id == second_id and first_id >= 0:
        cancel(ctx, first_id)
        return True
    return False


# ---------------------------------------------------------------- the replay, cached per strategy
_KERNEL_SOURCE = '''\
"""Generated by backtester.jit.cached_replay_kernel for {label}: the jitted replay with these
callbacks, cached by numba beside this file. Deleting it only costs a recompile."""
from numba import njit

from backtester.jit import _registered_callbacks, run_until_inline_nb

({names},) = _registered_callbacks({key!r})


@njit(cache=True)
def replay_kernel_nb(state, capacities, user_state):
    return run_until_inline_nb(state, capacities, {names}, user_state)
'''


def _inline_copy(fn: Any, **replaced: Any) -> Any:
    """``fn`` (a jitted function) recompiled with ``inline="always"`` (numba IR inlining into
    its caller), the globals named in ``replaced`` swapped for other functions."""
    import types

    py_func = fn.py_func
    namespace = {**py_func.__globals__, **replaced}
    copy = types.FunctionType(
        py_func.__code__, namespace, py_func.__name__, py_func.__defaults__, py_func.__closure__
    )
    return njit(inline="always")(copy)


def _inline_loop() -> Any:
    """The replay loop inlined, with the two functions that take the callbacks inlined in it.

    Why: a cached kernel must not hold the callbacks as *values*. Passed as arguments through a
    real call, a dispatcher becomes a pointer to an object of this process (numba's "dynamic
    globals"), and numba refuses to cache the kernel. Inlined at the IR level, every call of a
    callback is a static call to its compiled code, and the kernel caches.
    """
    from backtester.engine import loop_nb

    callbacks = _inline_copy(loop_nb.callbacks_nb)
    accept = _inline_copy(loop_nb.accept_after_callbacks_nb)
    return _inline_copy(
        loop_nb.run_until_nb, callbacks_nb=callbacks, accept_after_callbacks_nb=accept
    )


run_until_inline_nb = _inline_loop()
_REGISTERED: dict[str, tuple[Any, ...]] = {}
_KERNELS: dict[str, Any] = {}


def _registered_callbacks(key: str) -> tuple[Any, ...]:
    """The callbacks of a generated kernel module (see :func:`cached_replay_kernel`)."""
    return _REGISTERED[key]


def _callback_source(fn: Any) -> bytes | None:
    """The source of the module defining the jitted function ``fn`` (None when it has no
    file, e.g. defined in a notebook cell or by ``exec``)."""
    import sys

    module = sys.modules.get(getattr(fn.py_func, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if module is None or not path:
        return None
    try:
        with open(path, "rb") as source:
            return source.read()
    except OSError:
        return None


def cached_replay_kernel(callbacks: dict[str, Any]) -> Any:
    """The jitted replay ``kernel(state, capacities, user_state)`` with these callbacks built
    in, compiled once per strategy source and cached on disk; None when it cannot be cached.

    ``run_until_nb`` with the callbacks as arguments cannot be cached: a dispatcher's type
    names an object of the compiling process, so every process recompiled it (seconds for a
    tick strategy). Here a small module is generated per set of callbacks, named by a digest
    of the callbacks' names and the source of the modules defining them, where the callbacks
    are globals (constants to numba) of a ``cache=True`` kernel: a second process with the
    same strategy source loads the compiled kernel. The module lives in
    ``<NUMBA_CACHE_DIR>/jit_strategies`` (the cache folder is keyed by the package's sources,
    see :mod:`backtester`), never under the package.

    Like any numba cache, an edit of a function the callbacks call *in another module* is not
    seen (the digest covers the callbacks' own modules): give that module's functions
    ``cache=True`` or clear the folder. Callbacks without a source file (a notebook cell)
    return None: the caller compiles the uncached loop as before.
    """
    import hashlib
    import importlib.util
    import os
    import sys

    from numba.core import config

    from backtester.callbacks import LOOP_CALLBACKS
    from backtester.engine.loop_nb import no_callback_nb

    digest = hashlib.sha1(usedforsecurity=False)
    for name in LOOP_CALLBACKS:
        fn = callbacks.get(name)
        if fn is None:
            digest.update(f"{name}:-\n".encode())
            continue
        source = _callback_source(fn)
        if source is None:
            return None
        py_func = fn.py_func
        digest.update(f"{name}:{py_func.__module__}:{py_func.__qualname__}\n".encode())
        digest.update(source)
    key = digest.hexdigest()[:20]
    if key in _KERNELS:
        return _KERNELS[key]
    cache_dir = config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR")
    if not cache_dir:
        return None
    folder = os.path.join(cache_dir, "jit_strategies")
    path = os.path.join(folder, f"strategy_{key}.py")
    functions = tuple(callbacks.get(name) or no_callback_nb for name in LOOP_CALLBACKS)
    _REGISTERED[key] = functions
    if not os.path.isfile(path):
        labels = sorted(
            f"{fn.py_func.__module__}.{fn.py_func.__qualname__}"
            for fn in callbacks.values()
            if fn is not None
        )
        text = _KERNEL_SOURCE.format(
            label=", ".join(labels) or "no callbacks",
            names=", ".join(f"cb_{name}" for name in LOOP_CALLBACKS),
            key=key,
        )
        os.makedirs(folder, exist_ok=True)
        # written whole, then renamed: a concurrent run never imports half a file, and the
        # file's time (part of numba's cache key) changes only when it is first created
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
        if not os.path.isfile(path):
            os.replace(tmp, path)
        else:
            os.remove(tmp)
    name = f"backtester_jit_strategy_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _KERNELS[key] = module.replay_kernel_nb
    return module.replay_kernel_nb
