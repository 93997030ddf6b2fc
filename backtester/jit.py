"""The jit path: a strategy whose callbacks are numba ``@njit`` functions run inside the replay.

A :class:`JitStrategy` subclass names its callbacks as class attributes (plain ``@njit``
functions) and builds the numba-compatible ``state`` they share (an array, a structured
array or a tuple of arrays) from its parameters. The callbacks run inside the jitted loop with
no Python in between, which is what makes tick-by-tick strategies fast; ``backtest`` accepts a
JitStrategy exactly like a :class:`~backtester.strategy.Strategy` and returns the same Result.

Callback signatures (``ctx`` is the run's context, read and acted on only through the
functions of this module)::

    on_bar(ctx, state, instrument, row)      # a bar closed: bar(ctx, instrument, 0)
    on_trade(ctx, state, instrument, row)    # a trade printed: trade(ctx, row)
    on_fill(ctx, state, fill_row)            # fill(ctx, fill_row)
    on_funding(ctx, state, payment_row)      # funding_payment(ctx, payment_row)
    on_liquidation(ctx, state, row)          # liquidation(ctx, row)
    on_margin_call(ctx, state, instrument)
    on_adl(ctx, state, row)                  # adl_record(ctx, row) (ADL close or clawback)
    on_order_rejected(ctx, state, order_id)  # order(ctx, order_id).reject_reason
    on_start(ctx, state) / on_stop(ctx, state)

(``CALLBACKS``: these names, in the order of a run.)

Example::

    @njit
    def on_trade(ctx, state, i, row):
        price = trade(ctx, row).price
        state[0] += 0.01 * (price - state[0])            # EMA of the trade price
        q = position(ctx, i)
        if price > state[0] * 1.001 and q <= 0:
            market(ctx, i, 1.0 - q)

    class EmaTicks(JitStrategy):
        on_trade = on_trade
        def make_state(self):
            return np.zeros(1)

The API is the names in ``__all__``, all documented below; sizes in contracts (signed: > 0
buys), prices in quote per base, money in the settle currency, times in int ns UTC, as the
Python :class:`~backtester.strategy.Context`.

Reading: ``position``, ``entry_price``, ``mark_price``, ``last_price``, ``index_price``,
``funding_rate``, ``leverage``, ``unrealised_pnl``, ``liquidation_price`` (per instrument);
``balance``, ``equity``, ``available_balance``, ``time_ns`` (the account); ``bar`` /
``bar_count`` (history of closed bars); the contract's grid ``tick_size``, ``lot_size``,
``min_size``, ``contract_value``. Records: ``trade``, ``fill``, ``funding_payment``,
``liquidation``, ``adl_record`` and ``order`` (ids below ``order_count``) return a
read-only named tuple of the row
(:class:`Trade`, :class:`Bar`, :class:`Fill`, :class:`FundingPayment`, :class:`Liquidation`,
:class:`AdlRecord`, :class:`Order`: the fields of the record dtypes of
:mod:`backtester.dtypes`, same names and units).

Acting: ``market``, ``limit``, ``stop``, ``take_profit``, ``trailing_stop``,
``close_position``, ``cancel``, and for exits ``place_exits`` / ``one_cancels_other``; sizes
``contracts_for_notional`` / ``contracts_for_base``, prices ``round_price``. Orders are
validated after the callback returns, at the same timestamp; a jitted callback may place up to
:data:`~backtester.engine.order_entry_nb.ORDER_HEADROOM` orders per event (``-1`` beyond).

The raw state is internal: ``ctx`` is the engine's
:class:`~backtester.engine.state_nb.EngineState`, whose fields (``ctx.positions``,
``ctx.trades``, ...) hold replay cursors and working values, are writable and change with
the engine. They are not part of the API; a strategy that reads them may break on any
release. A value the functions here do not give is added here, as a function (one file).
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from backtester.callbacks import CALLBACKS
from backtester.engine.metrics_nb import (
    available_nb,
    cross_liquidation_price_nb,
    isolated_liquidation_price_nb,
)
from backtester.engine.order_entry_nb import cancel_order_nb, place_order_nb, set_trail_nb
from backtester.enums import MarginMode, OrderType, Side, TimeInForce
from backtester.parameters import class_parameters, set_parameters
from backtester.sizing_nb import contracts_for_money_nb, round_price_nb
from backtester.swap.pnl_nb import pnl_nb

__all__ = [
    "CALLBACKS",
    "AdlRecord",
    "Bar",
    "Fill",
    "FundingPayment",
    "JitStrategy",
    "Liquidation",
    "Order",
    "Trade",
    "adl_record",
    "available_balance",
    "balance",
    "bar",
    "bar_count",
    "cancel",
    "close_position",
    "contract_value",
    "contracts_for_base",
    "contracts_for_notional",
    "entry_price",
    "equity",
    "fill",
    "funding_payment",
    "funding_rate",
    "index_price",
    "last_price",
    "leverage",
    "limit",
    "liquidation",
    "liquidation_price",
    "lot_size",
    "mark_price",
    "market",
    "min_size",
    "one_cancels_other",
    "order",
    "order_count",
    "place_exits",
    "position",
    "round_price",
    "stop",
    "take_profit",
    "tick_size",
    "time_ns",
    "trade",
    "trailing_stop",
    "unrealised_pnl",
]

# The ``ctx`` of a callback: the EngineState StructRef, whose fields only numba types (mypy
# sees none of them).
Ctx = Any


class JitStrategy:
    """Base class of a jitted strategy.

    ``@njit`` callbacks are class attributes, parameters are the other class attributes, and
    :meth:`make_state` builds the callbacks' shared state.

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
        """Return the parameter names and default values.

        They are the public class attributes that are not callbacks or methods.
        """
        return class_parameters(cls, JitStrategy, skip=CALLBACKS)

    @classmethod
    def callback(cls, name: str) -> Any:
        """Return the jitted function set as callback ``name`` (None when not defined).

        Read without the descriptor protocol: a numba dispatcher stored on a class binds to
        the instance like a method, giving a new object (and a new compilation) per access.
        """
        return inspect.getattr_static(cls, name)

    @classmethod
    def subscribed(cls) -> set[str]:
        """Return the names of the callbacks this class defines."""
        return {name for name in CALLBACKS if cls.callback(name) is not None}

    def make_state(self) -> Any:
        """Return the value passed to every callback as ``state`` (default: an empty array).

        Override to return what the callbacks need, built from the parameters: a numpy array,
        a structured array or a tuple of them (numba must be able to type it).
        """
        return np.zeros(0)


# ---------------------------------------------------------------- records, read-only
class Trade(NamedTuple):
    """A trade tick (TRADE_DTYPE): time (ns UTC), price (quote), size (base), aggressor Side."""

    ts_ns: int
    price: float
    qty_base: float
    side: int


class Bar(NamedTuple):
    """A closed candle (BAR_DTYPE): ``ts_ns`` its open time (ns UTC), prices in quote."""

    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume_base: float


class Fill(NamedTuple):
    """A fill (FILL_DTYPE): ``side`` a Side, ``liquidity`` a Liquidity, money in settle."""

    fill_id: int
    order_id: int
    instrument: int
    ts_ns: int
    side: int
    liquidity: int
    price: float
    qty_contracts: float
    fee_settle: float
    realised_pnl_settle: float
    position_after_contracts: float


class FundingPayment(NamedTuple):
    """A funding payment (FUNDING_PAYMENT_DTYPE): ``payment_settle`` > 0 received."""

    ts_ns: int
    instrument: int
    funding_rate: float
    mark_price: float
    position_contracts: float
    payment_settle: float
    source: int


class Liquidation(NamedTuple):
    """A forced (partial) liquidation (LIQUIDATION_DTYPE), field meanings in dtypes.py."""

    ts_ns: int
    instrument: int
    side: int
    is_partial: bool
    tier: int
    contracts_before: float
    contracts_after: float
    mark_price: float
    liquidation_price: float
    bankruptcy_price: float
    fill_price: float
    market_price: float
    margin_ratio: float
    loss_settle: float
    fee_settle: float
    insurance_fund_delta_settle: float
    trigger_stream: int
    trigger_point: int
    trigger_candle_ns: int
    insurance_fund_after_settle: float


class AdlRecord(NamedTuple):
    """An ADL close or clawback of the position (ADL_DTYPE): ``kind`` a LedgerKind."""

    ts_ns: int
    instrument: int
    kind: int
    contracts: float
    price: float
    rate: float
    amount_settle: float


class Order(NamedTuple):
    """An order (ORDER_DTYPE): ``status`` an OrderStatus, ``reject_reason`` a RejectReason."""

    order_id: int
    instrument: int
    ts_created_ns: int
    ts_updated_ns: int
    order_type: int
    side: int
    time_in_force: int
    reduce_only: bool
    post_only: bool
    status: int
    reject_reason: int
    price: float
    trigger_price: float
    qty_contracts: float
    filled_contracts: float
    average_fill_price: float
    tag: int


@njit(cache=True)
def trade(ctx: Ctx, row: int) -> Trade:
    """Return trade ``row`` (the ``row`` of ``on_trade``) as a :class:`Trade`."""
    r = ctx.trades[row]
    return Trade(r["ts_ns"], r["price"], r["qty_base"], r["side"])


@njit(cache=True)
def bar_count(ctx: Ctx, instrument: int) -> int:
    """Return how many closed bars of ``instrument`` :func:`bar` can read.

    All the bars closed so far; in a chunked replay at most ``history_bars`` (a ``backtest``
    option) before the current window.
    """
    first = ctx.positions[instrument - 1]["e_bar"] if instrument > 0 else 0
    return int(ctx.positions[instrument]["c_bar"] - first)


@njit(cache=True)
def bar(ctx: Ctx, instrument: int, k: int) -> Bar:
    """Return the ``k``-th latest closed bar of ``instrument`` as a :class:`Bar`.

    ``k = 0`` is the bar that closed last (in ``on_bar``, the one that just closed), ``k = 1``
    the one before. Raises IndexError unless ``0 <= k < bar_count(ctx, instrument)``.
    """
    if k < 0 or k >= bar_count(ctx, instrument):
        raise IndexError("bar(ctx, instrument, k): k beyond the closed bars (see bar_count)")
    r = ctx.bars[ctx.positions[instrument]["c_bar"] - 1 - k]
    return Bar(r["ts_ns"], r["open"], r["high"], r["low"], r["close"], r["volume_base"])


@njit(cache=True)
def fill(ctx: Ctx, row: int) -> Fill:
    """Return fill ``row`` (the ``fill_row`` of ``on_fill``) as a :class:`Fill`."""
    r = ctx.fills[row]
    return Fill(
        r["fill_id"], r["order_id"], r["instrument"], r["ts_ns"], r["side"], r["liquidity"],
        r["price"], r["qty_contracts"], r["fee_settle"], r["realised_pnl_settle"],
        r["position_after_contracts"],
    )  # fmt: skip


@njit(cache=True)
def funding_payment(ctx: Ctx, row: int) -> FundingPayment:
    """Return funding payment ``row`` (the row of ``on_funding``) as a :class:`FundingPayment`."""
    r = ctx.funding_payments[row]
    return FundingPayment(
        r["ts_ns"], r["instrument"], r["funding_rate"], r["mark_price"],
        r["position_contracts"], r["payment_settle"], r["source"],
    )  # fmt: skip


@njit(cache=True)
def liquidation(ctx: Ctx, row: int) -> Liquidation:
    """Return liquidation ``row`` (the row of ``on_liquidation``) as a :class:`Liquidation`."""
    r = ctx.liquidations[row]
    return Liquidation(
        r["ts_ns"], r["instrument"], r["side"], r["is_partial"], r["tier"],
        r["contracts_before"], r["contracts_after"], r["mark_price"], r["liquidation_price"],
        r["bankruptcy_price"], r["fill_price"], r["market_price"], r["margin_ratio"],
        r["loss_settle"], r["fee_settle"], r["insurance_fund_delta_settle"],
        r["trigger_stream"], r["trigger_point"], r["trigger_candle_ns"],
        r["insurance_fund_after_settle"],
    )  # fmt: skip


@njit(cache=True)
def adl_record(ctx: Ctx, row: int) -> AdlRecord:
    """Return ADL/clawback record ``row`` (the row of ``on_adl``) as an :class:`AdlRecord`."""
    r = ctx.adl[row]
    return AdlRecord(
        r["ts_ns"], r["instrument"], r["kind"], r["contracts"], r["price"], r["rate"],
        r["amount_settle"],
    )  # fmt: skip


@njit(cache=True)
def order_count(ctx: Ctx) -> int:
    """Return how many orders the strategy has placed: their ids are 0 to this minus 1."""
    return int(ctx.account[0]["n_orders"])


@njit(cache=True)
def order(ctx: Ctx, order_id: int) -> Order:
    """Return order ``order_id`` (an id the order functions returned) as an :class:`Order`."""
    r = ctx.orders[order_id]
    return Order(
        r["order_id"], r["instrument"], r["ts_created_ns"], r["ts_updated_ns"],
        r["order_type"], r["side"], r["time_in_force"], r["reduce_only"], r["post_only"],
        r["status"], r["reject_reason"], r["price"], r["trigger_price"], r["qty_contracts"],
        r["filled_contracts"], r["average_fill_price"], r["tag"],
    )  # fmt: skip


# ---------------------------------------------------------------- position, prices, account
@njit(cache=True)
def position(ctx: Ctx, instrument: int) -> float:
    """Return the signed position in contracts (> 0 long)."""
    return float(ctx.positions[instrument]["contracts"])


@njit(cache=True)
def entry_price(ctx: Ctx, instrument: int) -> float:
    """Return the average entry price of the open position (quote; NaN when flat)."""
    return float(ctx.positions[instrument]["entry_price"])


@njit(cache=True)
def mark_price(ctx: Ctx, instrument: int) -> float:
    """Return the current mark price (quote; the price liquidation is checked on)."""
    return float(ctx.positions[instrument]["mark_price"])


@njit(cache=True)
def last_price(ctx: Ctx, instrument: int) -> float:
    """Return the last traded price (quote; the last trade tick or bar close)."""
    return float(ctx.positions[instrument]["last_price"])


@njit(cache=True)
def index_price(ctx: Ctx, instrument: int) -> float:
    """Return the last index price (quote; NaN when the data has no index)."""
    return float(ctx.positions[instrument]["index_price"])


@njit(cache=True)
def funding_rate(ctx: Ctx, instrument: int) -> float:
    """Return the rate of the last funding event seen (fraction per interval)."""
    return float(ctx.positions[instrument]["funding_rate"])


@njit(cache=True)
def leverage(ctx: Ctx, instrument: int) -> float:
    """Return the leverage set for ``instrument``."""
    return float(ctx.positions[instrument]["leverage"])


@njit(cache=True)
def unrealised_pnl(ctx: Ctx, instrument: int) -> float:
    """Return the unrealised PnL of the position at the mark (settle currency; 0 when flat).

    Formula: linear q·F·(mark − ref), inverse q·F·(1/ref − 1/mark)
    (:func:`~backtester.swap.pnl_nb.pnl_nb`), ``ref`` the entry price until a daily
    settlement moves it to the settlement price.
    """
    s = ctx.positions[instrument]
    q = s["contracts"]
    if q == 0.0 or not np.isfinite(s["mark_price"]):
        return 0.0
    p = ctx.params[instrument]
    return pnl_nb(p["contract_kind"], q, p["face_value"], s["reference_price"], s["mark_price"])


@njit(cache=True)
def liquidation_price(ctx: Ctx, instrument: int) -> float:
    """Return the liquidation price of the position (quote; NaN when flat).

    Isolated: the venue's formula with the tier at the liquidation price
    (:func:`~backtester.engine.metrics_nb.isolated_liquidation_price_nb`); cross: the price at
    which the account's cross positions (the others at their marks) reach the trigger
    (:func:`~backtester.engine.metrics_nb.cross_liquidation_price_nb`).
    """
    if ctx.positions[instrument]["margin_mode"] == MarginMode.ISOLATED:
        return float(isolated_liquidation_price_nb(ctx, instrument))
    return float(cross_liquidation_price_nb(ctx, instrument))


@njit(cache=True)
def balance(ctx: Ctx) -> float:
    """Return the wallet balance (realised; settle currency, isolated margins included)."""
    return float(ctx.account[0]["balance_settle"])


@njit(cache=True)
def equity(ctx: Ctx) -> float:
    """Return the equity: the balance plus every position's :func:`unrealised_pnl`."""
    total = balance(ctx)
    for i in range(len(ctx.positions)):
        total += unrealised_pnl(ctx, i)
    return total


@njit(cache=True)
def available_balance(ctx: Ctx) -> float:
    """Return the balance free for new margin (settle currency).

    Formula: balance − isolated position margins − cross initial margins + cross UPL
    (:func:`~backtester.engine.metrics_nb.available_nb`).
    """
    return float(available_nb(ctx))


@njit(cache=True)
def time_ns(ctx: Ctx) -> int:
    """Return the timestamp of the event being processed (int ns UTC)."""
    return int(ctx.account[0]["ts_ns"])


# ---------------------------------------------------------------- the contract
@njit(cache=True)
def tick_size(ctx: Ctx, instrument: int) -> float:
    """Return the price increment of the contract (quote)."""
    return float(ctx.params[instrument]["tick_size_quote"])


@njit(cache=True)
def lot_size(ctx: Ctx, instrument: int) -> float:
    """Return the size increment of an order (contracts)."""
    return float(ctx.params[instrument]["lot_size_contracts"])


@njit(cache=True)
def min_size(ctx: Ctx, instrument: int) -> float:
    """Return the smallest order size (contracts)."""
    return float(ctx.params[instrument]["min_size_contracts"])


@njit(cache=True)
def contract_value(ctx: Ctx, instrument: int) -> float:
    """Return the face value of one contract: base coin (linear) or quote (inverse)."""
    return float(ctx.params[instrument]["face_value"])


# ---------------------------------------------------------------- orders
@njit(cache=True)
def _place(
    ctx: Ctx,
    instrument: int,
    order_type: int,
    contracts: float,
    price: float,
    trigger: float,
    tif: int,
    reduce_only: bool,
    post_only: bool,
) -> int:
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
def market(ctx: Ctx, instrument: int, contracts: float, reduce_only: bool = False) -> int:
    """Place a market order of ``contracts`` (signed); return its order id.

    -1: a zero or non-finite size, or no order row free.
    """
    return int(_place(
        ctx, instrument, OrderType.MARKET, contracts, np.nan, np.nan, TimeInForce.GTC,
        reduce_only, False,
    ))  # fmt: skip


@njit(cache=True)
def limit(
    ctx: Ctx,
    instrument: int,
    contracts: float,
    price: float,
    post_only: bool = False,
    reduce_only: bool = False,
) -> int:
    """Place a GTC limit order of ``contracts`` (signed) at ``price``; return its order id."""
    return int(_place(
        ctx, instrument, OrderType.LIMIT, contracts, price, np.nan, TimeInForce.GTC,
        reduce_only, post_only,
    ))  # fmt: skip


@njit(cache=True)
def stop(
    ctx: Ctx, instrument: int, contracts: float, trigger: float, reduce_only: bool = False
) -> int:
    """Place a stop-market order; return its order id.

    It buys when the price rises to ``trigger`` (sells when it falls to it).
    """
    return int(_place(
        ctx, instrument, OrderType.STOP_MARKET, contracts, np.nan, trigger, TimeInForce.GTC,
        reduce_only, False,
    ))  # fmt: skip


@njit(cache=True)
def take_profit(
    ctx: Ctx, instrument: int, contracts: float, trigger: float, reduce_only: bool = True
) -> int:
    """Place a take-profit market order; return its order id.

    It sells when the price rises to ``trigger`` (buys when it falls to it).
    """
    return int(_place(
        ctx, instrument, OrderType.TAKE_PROFIT, contracts, np.nan, trigger, TimeInForce.GTC,
        reduce_only, False,
    ))  # fmt: skip


@njit(cache=True)
def trailing_stop(
    ctx: Ctx,
    instrument: int,
    contracts: float,
    distance: float,
    fraction: float = np.nan,
    start_price: float = np.nan,
    reduce_only: bool = True,
) -> int:
    """Place a trailing stop-market of ``contracts`` (signed); return its order id.

    A sell (< 0, protecting a long) triggers when the price falls ``distance`` (quote; NaN to
    use ``fraction``) or ``fraction`` below the highest price since ``start_price`` (NaN: the
    last price when the order is accepted), a buy the mirror image; the trigger ratchets and
    never loosens (:func:`~backtester.engine.orders_nb.trail_level_nb`).
    """
    order_id = int(_place(
        ctx, instrument, OrderType.TRAILING_STOP_MARKET, contracts, np.nan, np.nan,
        TimeInForce.GTC, reduce_only, False,
    ))  # fmt: skip
    if order_id >= 0:
        set_trail_nb(ctx, order_id, distance, fraction, start_price)
    return order_id


@njit(cache=True)
def close_position(ctx: Ctx, instrument: int) -> int:
    """Place a reduce-only market order closing the position; return its id (-1 when flat)."""
    q = position(ctx, instrument)
    if q == 0.0:
        return -1
    return market(ctx, instrument, -q, True)


@njit(cache=True)
def cancel(ctx: Ctx, order_id: int) -> bool:
    """Cancel a working order; return False when it is no longer working."""
    return bool(cancel_order_nb(ctx, order_id))


# ---------------------------------------------------------------- sizes and prices
@njit(cache=True)
def contracts_for_notional(
    ctx: Ctx, instrument: int, notional: float, price: float = np.nan
) -> float:
    """Return the signed contracts worth ``notional`` quote at ``price`` (NaN: the last price).

    Rounded toward zero to the lot (0.0 below one lot; formulas in :mod:`backtester.sizing`).
    """
    p = ctx.params[instrument]
    if np.isnan(price):
        price = last_price(ctx, instrument)
    return float(contracts_for_money_nb(
        p["contract_kind"], p["face_value"], p["lot_size_contracts"], price, notional, np.nan
    ))  # fmt: skip


@njit(cache=True)
def contracts_for_base(ctx: Ctx, instrument: int, base: float, price: float = np.nan) -> float:
    """Return the signed contracts holding ``base`` coin at ``price`` (NaN: the last price).

    Rounded toward zero to the lot.
    """
    p = ctx.params[instrument]
    if np.isnan(price):
        price = last_price(ctx, instrument)
    return float(contracts_for_money_nb(
        p["contract_kind"], p["face_value"], p["lot_size_contracts"], price, np.nan, base
    ))  # fmt: skip


@njit(cache=True)
def round_price(ctx: Ctx, instrument: int, price: float, direction: int = 0) -> float:
    """Return ``price`` on the contract's tick.

    Nearest (0), down (-1, a buy's passive side) or up (+1, a sell's).
    """
    return round_price_nb(price, tick_size(ctx, instrument), direction)


# ---------------------------------------------------------------- exits of a position
@njit(cache=True)
def place_exits(
    ctx: Ctx, instrument: int, stop_trigger: float, take_profit_trigger: float
) -> tuple[int, int]:
    """Place reduce-only exits for the whole open position; return their order ids.

    A STOP_MARKET at ``stop_trigger`` and a TAKE_PROFIT at ``take_profit_trigger`` (NaN: not
    that one). Call it from ``on_fill`` once the entry has filled (a reduce-only order placed
    while flat is rejected). Returns ``(stop id, take-profit id)``, -1 for one not placed;
    pass them to :func:`one_cancels_other` in ``on_fill`` (the Python path does both itself:
    ``ctx.market(..., stop_loss=...)``). For a trailing stop instead of the fixed one, pass
    NaN as ``stop_trigger`` and place :func:`trailing_stop` beside it.
    """
    q = position(ctx, instrument)
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
def one_cancels_other(ctx: Ctx, fill_row: int, first_id: int, second_id: int) -> bool:
    """Cancel the other exit when fill ``fill_row`` belongs to one of the two; return True then.

    Call it in ``on_fill`` with the ids of :func:`place_exits`; False for any other fill.
    """
    order_id = ctx.fills[fill_row]["order_id"]
    if order_id == first_id and second_id >= 0:
        cancel(ctx, second_id)
        return True
    if order_id == second_id and first_id >= 0:
        cancel(ctx, first_id)
        return True
    return False
