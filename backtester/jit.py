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
        ctx.account,
        ctx.orders,
        ctx.work,
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
        set_trail_nb(ctx.work, order_id, distance, fraction, start_price)
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
    return cancel_order_nb(ctx.account, ctx.orders, ctx.active, order_id)


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
