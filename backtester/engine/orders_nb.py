"""Order acceptance and matching against trades and intrabar paths.

Acceptance (:func:`accept_orders_nb`) rounds prices and sizes to the contract grid and rejects
with a :class:`~backtester.enums.RejectReason`. Matching has two primitives:

* :func:`process_point_nb` — one traded price (a trade tick, or a bar's open): market and
  marketable orders take that price; stops trigger when the price is at or through the trigger
  and fill at that price; resting limits fill at their limit when the trade prints through it
  (or at the bar open when the bar gaps through it). On trade ticks with a known size a resting
  limit fills at most the trade's size (partial fills); with ``queue_model`` a trade at exactly
  the limit fills the part of it beyond the queue ahead.
* :func:`process_segment_nb` — a continuous move between two intrabar path points: every level
  crossed fills at the level, nearest first, so no fill lies outside the bar's range.

Fill-size model on trade ticks (maker side)
-------------------------------------------
A trade of ``qty_base`` base coin at price ``P`` is ``c = qty_base / face_value`` contracts on a
linear contract (face value in base coin per contract) and ``c = qty_base · P / face_value`` on an
inverse one (face value in quote, USD, per contract). A resting limit that the trade reaches
fills ``min(c, remaining)`` at its limit price, one fill per order per trade, and keeps working
as PARTIALLY_FILLED with the rest. This cap holds both when the trade prints *at* the limit
(queue model) and when it prints *through* it: a print through the limit proves the level was
swept, but the data do not say how much of the sweep reached this order, so the conservative
and consistent rule is the same cap in both cases. One trade's size is shared by the strategy's
own resting orders, in the order they were accepted (time priority, not price priority), so a
trade never fills more than its size in total. Fill sizes are whole lots (floored); a sub-lot
remainder is carried in ``work['fill_credit_contracts']`` and added to the order's next trade,
so small prints still add up to fills. A trade with ``qty_base == 0`` (size unknown) fills the
whole remaining order, as on bars, where fills are always whole.

Taker orders (market orders, marketable limits, triggered stops) fill in full at the trade
price: a taker walks the book, whose depth trade data do not show; the print is only the price
reference of the next execution, not a bound on the book's size there.

Queue model (``account['queue_model']``)
----------------------------------------
Without it, a trade exactly at a resting limit never fills it (only prints through it do). With
it, an accepted limit joins the back of the queue at its price: ``queue_ahead_base`` starts at
``work['queue_initial_base']`` (base coin, the user's assumption of the resting size ahead,
written with the order row; 0 means the back of an empty queue), since trade data show no book.
Each trade exactly at the limit first consumes the queue ahead; only its excess beyond the
queue fills the order (capped as above), after which the order is at the front (queue 0). A
trade through the limit fills it regardless of the queue (the level was swept) and empties the
queue. Cancellations ahead never advance the order. This is the "risk-averse" queue model of
hftbacktest: "your order's queue position advances only when trades occur at the same price
level" (hftbacktest.readthedocs.io v1.8.4, reference/queue_models, ``RiskAverseQueueModel``;
``RiskAdverseQueueModel`` in the Rust crate, src/backtest/models/queue.rs). Trades at the
price with unknown size cannot consume the queue and fill nothing. Known limitations: the
trade's aggressor side is not used, and the strategy's own orders at one price do not count in
each other's queue.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from backtester.engine.cash_nb import apply_fill_nb
from backtester.engine.metrics_nb import available_nb, tier_row_nb
from backtester.engine.slippage_nb import taker_slippage_rate_nb
from backtester.enums import (
    ContractKind,
    Liquidity,
    OrderStatus,
    OrderType,
    RejectReason,
    TimeInForce,
)
from backtester.sizing_nb import round_price_nb
from backtester.swap.fee_nb import fee_nb
from backtester.swap.margin_nb import initial_margin_nb

_GRID_TOLERANCE = 1e-6  # fraction of a tick / lot treated as float noise when snapping

# ``state``: the run's EngineState StructRef (engine/state_nb.py), ``Any`` to mypy; ``o``,
# ``w``, ``p``: an order's ORDER_DTYPE and ORDER_WORK_DTYPE rows, a CONTRACT_PARAMS row.


@njit(cache=True)
def snap_nb(value: float, step: float) -> float:
    """Return ``value`` on the grid of ``step``, or NaN when off the grid beyond float noise."""
    units = np.round(value / step)
    if abs(units * step - value) > _GRID_TOLERANCE * step:
        return np.nan
    return units * step  # type: ignore[no-any-return]  # numpy scalar


@njit(cache=True)
def snap_price_nb(value: float, tick: float) -> tuple[float, int]:
    """Return (``value`` on the ``tick`` grid, RejectReason.NONE), or (NaN, the reason).

    INVALID_PRICE for a price that is not finite and > 0, PRICE_OFF_TICK off the grid.
    """
    if not (value > 0.0 and np.isfinite(value)):
        return np.nan, RejectReason.INVALID_PRICE
    snapped = snap_nb(value, tick)
    if np.isnan(snapped):
        return np.nan, RejectReason.PRICE_OFF_TICK
    return snapped, RejectReason.NONE


@njit(cache=True)
def is_stop_nb(order_type: int) -> bool:
    """Whether the order is a stop (fixed or trailing).

    A buy stop triggers on a rise, a sell stop on a fall.
    """
    return (
        order_type == OrderType.STOP_MARKET
        or order_type == OrderType.STOP_LIMIT
        or order_type == OrderType.TRAILING_STOP_MARKET
    )


@njit(cache=True)
def is_conditional_nb(order_type: int) -> bool:
    """Whether the order waits for a trigger: stops and take-profits."""
    return (
        is_stop_nb(order_type)
        or order_type == OrderType.TAKE_PROFIT
        or order_type == OrderType.TAKE_PROFIT_LIMIT
    )


@njit(cache=True)
def triggers_market_nb(order_type: int) -> bool:
    """Whether the conditional order becomes a market order when triggered."""
    return not has_limit_nb(order_type) and is_conditional_nb(order_type)


@njit(cache=True)
def trail_level_nb(side: int, extreme: float, offset: float, rate: float, tick: float) -> float:
    """Return the trigger of a trailing stop whose most favourable price so far is ``extreme``.

    Formula: sell (protects a long) ``extreme - offset`` or ``extreme · (1 - rate)``, rounded
    down to the tick; buy (protects a short) ``extreme + offset`` or ``extreme · (1 + rate)``,
    rounded up. Rounding away from the price makes "price <= level" (sell) equivalent to "the
    price fell at least the trail from the extreme" for prices on the tick grid, so the trail
    is never tightened by the rounding. ``offset`` (quote) is used when > 0, else ``rate``.
    """
    if offset > 0.0:
        raw = extreme - offset if side < 0 else extreme + offset
    else:
        raw = extreme * (1.0 - rate) if side < 0 else extreme * (1.0 + rate)
    return round_price_nb(raw, tick, -1 if side < 0 else 1)


@njit(cache=True)
def ratchet_trail_nb(o: np.void, w: np.void, tick: float, price: float) -> None:
    """Move trailing stop ``o``'s extreme to ``price`` when it is more favourable.

    More favourable: higher for a sell, lower for a buy; the trigger moves with it (on the
    ``tick`` grid) and never loosens. Mutates: ``w['trail_extreme_price']``,
    ``o['trigger_price']``.
    """
    side = o["side"]
    better = price > w["trail_extreme_price"] if side < 0 else price < w["trail_extreme_price"]
    if not better:
        return
    w["trail_extreme_price"] = price
    level = trail_level_nb(side, price, w["trail_offset_quote"], w["trail_rate"], tick)
    if (side < 0 and level > o["trigger_price"]) or (side > 0 and level < o["trigger_price"]):
        o["trigger_price"] = level


@njit(cache=True)
def has_limit_nb(order_type: int) -> bool:
    """Whether the order type carries a limit price."""
    return (
        order_type == OrderType.LIMIT
        or order_type == OrderType.STOP_LIMIT
        or order_type == OrderType.TAKE_PROFIT_LIMIT
    )


@njit(cache=True)
def trigger_hit_nb(order_type: int, side: int, price: float, trigger: float) -> bool:
    """Whether ``price`` reaches ``trigger``.

    Buy stop: price ≥ trigger, sell stop: ≤; take-profit the other way round.
    """
    stop = is_stop_nb(order_type)
    if (side > 0) == stop:
        return price >= trigger
    return price <= trigger


@njit(cache=True)
def limit_crossed_nb(side: int, price: float, limit: float) -> bool:
    """Whether a limit takes ``price``: a buy at prices ≤ limit, a sell at prices ≥ limit."""
    if side > 0:
        return price <= limit
    return price >= limit


@njit(cache=True)
def awaiting_trigger_nb(o: np.void) -> bool:
    """Whether order ``o`` is a stop / take-profit that has not triggered yet (still NEW)."""
    return is_conditional_nb(o["order_type"]) and o["status"] == OrderStatus.NEW


@njit(cache=True)
def trade_contracts_nb(
    contract_kind: int, qty_base: float, face_value: float, price: float
) -> float:
    """Return the contracts in a trade of ``qty_base`` base coin at ``price``.

    Linear: ``qty_base / face_value`` (face value in base coin per contract). Inverse:
    ``qty_base · price / face_value`` (face value in quote per contract; OKX BTC-USD-SWAP
    100 USD, so 0.01 BTC at 30 000 is 3 contracts).
    """
    if contract_kind == ContractKind.INVERSE:
        return qty_base * price / face_value
    return qty_base / face_value


@njit(cache=True)
def maker_quantity_nb(o: np.void, w: np.void, lot: float, available: float) -> tuple[float, float]:
    """Return the contracts order ``o`` fills from ``available`` traded contracts: (qty, used).

    ``qty`` is ``np.inf`` for "the whole rest" (the trade plus the carried sub-lot credit covers
    it), else the credit plus ``available`` floored to whole lots (possibly 0); the sub-lot
    remainder stays in ``w['fill_credit_contracts']``. ``used`` is how much of ``available``
    the order took (the rest of the trade is left for the strategy's other orders).
    """
    remaining = o["qty_contracts"] - o["filled_contracts"]
    credit = w["fill_credit_contracts"]
    total = available + credit
    if total + _GRID_TOLERANCE * lot >= remaining:
        w["fill_credit_contracts"] = 0.0
        return np.inf, min(available, max(0.0, remaining - credit))
    qty = np.floor(total / lot + _GRID_TOLERANCE) * lot
    w["fill_credit_contracts"] = max(0.0, total - qty)
    return qty, available


@njit(cache=True)
def reserved_margin_nb(state: Any) -> float:
    """Return the initial margin held for resting orders.

    Non-reduce-only orders, at their limit (else trigger, else the last) price.
    """
    positions = state.positions
    total = 0.0
    for k in range(state.account[0]["n_active"]):
        o = state.orders[state.active[k]]
        if o["reduce_only"]:
            continue
        i = o["instrument"]
        p = state.params[i]
        ref = o["price"] if np.isfinite(o["price"]) else o["trigger_price"]
        if not np.isfinite(ref):
            ref = positions[i]["last_price"]
        if not np.isfinite(ref):
            continue
        total += initial_margin_nb(
            p["contract_kind"],
            o["qty_contracts"] - o["filled_contracts"],
            p["face_value"],
            ref,
            positions[i]["leverage"],
        )
    return total


@njit(cache=True)
def snap_order_nb(o: np.void, w: np.void, p: np.void, s: np.void) -> int:
    """Snap order ``o``'s size, limit and trigger to the contract grid; return a RejectReason.

    ``p``: the contract params. The reason is that of a size or price that does not fit
    (NONE when all fit).

    A trailing stop gets its first trigger here, from its extreme (the last price, else the
    mark of position row ``s``, when none was given). Mutates: ``o``, ``w``.
    """
    typ = o["order_type"]
    qty = snap_nb(o["qty_contracts"], p["lot_size_contracts"])
    if not (o["qty_contracts"] > 0.0):
        return RejectReason.SIZE_BELOW_MINIMUM
    if np.isnan(qty):
        return RejectReason.SIZE_NOT_LOT_MULTIPLE
    if qty < p["min_size_contracts"] * (1.0 - _GRID_TOLERANCE):
        return RejectReason.SIZE_BELOW_MINIMUM
    o["qty_contracts"] = qty
    if has_limit_nb(typ):
        price, reason = snap_price_nb(o["price"], p["tick_size_quote"])
        if reason != RejectReason.NONE:
            return reason
        o["price"] = price
    if typ == OrderType.TRAILING_STOP_MARKET:
        offset = w["trail_offset_quote"]
        rate = w["trail_rate"]
        if not ((offset > 0.0 and np.isfinite(offset)) or (0.0 < rate < 1.0)):
            return RejectReason.INVALID_PRICE
        extreme = w["trail_extreme_price"]
        if not (extreme > 0.0 and np.isfinite(extreme)):
            extreme = s["last_price"] if np.isfinite(s["last_price"]) else s["mark_price"]
        if not (extreme > 0.0 and np.isfinite(extreme)):
            return RejectReason.INVALID_PRICE
        w["trail_extreme_price"] = extreme
        o["trigger_price"] = trail_level_nb(o["side"], extreme, offset, rate, p["tick_size_quote"])
    if is_conditional_nb(typ):
        trigger, reason = snap_price_nb(o["trigger_price"], p["tick_size_quote"])
        if reason != RejectReason.NONE:
            return reason
        o["trigger_price"] = trigger
    return RejectReason.NONE


@njit(cache=True)
def position_increase_nb(state: Any, row: int) -> float:
    """Return the contracts by which order ``row`` would open or add to its position.

    Against an open position on the other side, what the order closes is what earlier working
    orders on the same side leave open: a second buy against a short the first buy already
    closes opens a position (and is checked for its margin), it does not close the short
    again.
    """
    o = state.orders[row]
    i = o["instrument"]
    side = o["side"]
    qty: float = o["qty_contracts"]
    q: float = state.positions[i]["contracts"]
    if q == 0.0 or np.sign(q) == side:
        return qty
    pending = 0.0
    for k in range(state.account[0]["n_active"]):
        other = state.orders[state.active[k]]
        if other["instrument"] == i and other["side"] == side:
            pending += other["qty_contracts"] - other["filled_contracts"]
    return max(0.0, qty - max(0.0, abs(q) - pending))


@njit(cache=True)
def validate_order_nb(state: Any, row: int) -> int:
    """Return the RejectReason of order ``row`` (NONE when accepted); snap it to the grid.

    Checks: the grid (:func:`snap_order_nb`), reduce-only, post-only, IOC/FOK marketability,
    the leverage against the tier of the size after the order, and the initial margin plus
    the taker fee against the available balance less the margin of resting orders.
    Mutates: ``orders[row]``, ``work[row]``, ``state.scratch[0]``.
    """
    o = state.orders[row]
    w = state.work[row]
    i = o["instrument"]
    p = state.params[i]
    s = state.positions[i]
    typ = o["order_type"]
    side = o["side"]
    reason = snap_order_nb(o, w, p, s)
    if reason != RejectReason.NONE:
        return reason
    q = s["contracts"]
    last = s["last_price"]
    if o["reduce_only"] and (q == 0.0 or np.sign(q) == side):
        return RejectReason.REDUCE_ONLY_WOULD_INCREASE
    marketable = typ == OrderType.MARKET or (
        typ == OrderType.LIMIT and np.isfinite(last) and limit_crossed_nb(side, last, o["price"])
    )
    if o["post_only"] and marketable:
        return RejectReason.POST_ONLY_WOULD_TAKE
    if o["time_in_force"] != TimeInForce.GTC and not marketable:
        return RejectReason.FOK_NOT_FILLABLE
    w["is_taker"] = marketable
    if o["reduce_only"]:
        return RejectReason.NONE
    ref = (
        o["price"]
        if has_limit_nb(typ)
        else (o["trigger_price"] if is_conditional_nb(typ) else last)
    )
    if not np.isfinite(ref):
        ref = s["mark_price"]
    if not np.isfinite(ref):
        return RejectReason.INVALID_PRICE
    return margin_check_nb(state, row, ref)


@njit(cache=True)
def margin_check_nb(state: Any, row: int, ref: float) -> int:
    """Return the RejectReason of order ``row``'s leverage and margin at price ``ref``.

    The leverage must not exceed the maximum of the tier of the size after the order; the
    initial margin of the increase (:func:`position_increase_nb`) plus the taker fee of the
    whole order must not exceed the available balance less the margin held for resting
    orders. Mutates: ``state.scratch[0]``.
    """
    o = state.orders[row]
    i = o["instrument"]
    p = state.params[i]
    s = state.positions[i]
    q = s["contracts"]
    qty = o["qty_contracts"]
    increase = position_increase_nb(state, row)
    if increase <= 0.0:
        return RejectReason.NONE
    new_abs = abs(q) + increase if (q == 0.0 or np.sign(q) == o["side"]) else increase
    tier = tier_row_nb(state, i, new_abs, ref)
    if s["leverage"] > state.tiers[tier]["max_leverage"] * (1.0 + 1e-12):
        return RejectReason.LEVERAGE_ABOVE_TIER_MAX
    kind = p["contract_kind"]
    face = p["face_value"]
    required = initial_margin_nb(kind, increase, face, ref, s["leverage"]) + fee_nb(
        kind, qty, face, ref, max(p["taker_fee_rate"], 0.0)
    )
    free = available_nb(state) - reserved_margin_nb(state)
    if required > free:
        return RejectReason.INSUFFICIENT_MARGIN
    return RejectReason.NONE


@njit(cache=True)
def accept_orders_nb(state: Any, ts_ns: int) -> int:
    """Validate the order rows the strategy added since the last call; return the rejections.

    Accepted rows join the active list with ``active_from_ns = ts + latency`` and
    ``queue_ahead_base = queue_initial_base`` (the assumed queue ahead; see the module notes);
    rejected rows get status REJECTED and their reason. Rows the strategy cancelled before
    validation (status CANCELLED) stay cancelled and never join the active list. Mutates:
    ``orders``, ``work``, ``active``, account counters.
    """
    acc = state.account[0]
    rejected = 0
    for row in range(acc["n_orders_seen"], acc["n_orders"]):
        o = state.orders[row]
        o["ts_updated_ns"] = ts_ns
        if o["status"] == OrderStatus.CANCELLED:
            continue
        reason = validate_order_nb(state, row)
        if reason != RejectReason.NONE:
            o["status"] = OrderStatus.REJECTED
            o["reject_reason"] = reason
            rejected += 1
            continue
        o["status"] = OrderStatus.NEW
        w = state.work[row]
        w["active_from_ns"] = ts_ns + acc["latency_ns"]
        # only a positive finite assumption is a queue; 0 (the default) is an empty one
        initial = w["queue_initial_base"]
        w["queue_ahead_base"] = initial if initial > 0.0 and np.isfinite(initial) else 0.0
        w["fill_credit_contracts"] = 0.0
        state.active[acc["n_active"]] = row
        acc["n_active"] += 1
    acc["n_orders_seen"] = acc["n_orders"]
    return rejected


@njit(cache=True)
def execute_nb(
    state: Any,
    row: int,
    qty_max: float,
    ts: int,
    price: float,
    liquidity: int,
    volume: float,
    lo: float,
    hi: float,
) -> bool:
    """Fill up to ``qty_max`` contracts of order ``row`` at ``price``; True when it is done.

    ``qty_max`` ``np.inf``: the whole rest. Taker fills move against the order by
    ``taker_slippage_rate_nb`` of the instrument's ``state.slippage`` row (fixed, impact
    coefficient, cap) and ``volume`` (the base coin traded by the tick or bar), clipped to
    [lo, hi] (the bar's range for stops on a bar path; a limit order's own price; unbounded for
    market orders). Reduce-only orders are capped at the position and are done once capped
    (cancelled when there is nothing left to reduce). A fill smaller than the rest leaves the
    order PARTIALLY_FILLED and working.
    """
    o = state.orders[row]
    i = o["instrument"]
    s = state.positions[i]
    p = state.params[i]
    side = o["side"]
    qty = o["qty_contracts"] - o["filled_contracts"]
    partial = False
    if qty_max < qty:
        qty = qty_max
        partial = True
    if o["reduce_only"]:
        q = s["contracts"]
        if q == 0.0 or np.sign(q) == side:
            o["status"] = OrderStatus.CANCELLED
            o["ts_updated_ns"] = ts
            return True
        if qty >= abs(q):
            # the position is closed: nothing is left for the rest of a reduce-only order
            qty = abs(q)
            partial = False
    fee_rate = p["maker_fee_rate"]
    if liquidity == Liquidity.TAKER:
        fee_rate = p["taker_fee_rate"]
        rate = taker_slippage_rate_nb(
            state.slippage[i], p["contract_kind"], p["face_value"], qty, price, volume
        )
        if rate != 0.0:
            price = min(max(price * (1.0 + side * rate), lo), hi)
    apply_fill_nb(state, i, ts, o["order_id"], side, qty, price, fee_rate, liquidity)
    filled = o["filled_contracts"]
    avg = o["average_fill_price"] if filled > 0.0 else 0.0
    o["average_fill_price"] = (avg * filled + price * qty) / (filled + qty)
    o["filled_contracts"] = filled + qty
    o["ts_updated_ns"] = ts
    if partial:
        o["status"] = OrderStatus.PARTIALLY_FILLED
        return False
    o["status"] = OrderStatus.FILLED
    return True


@njit(cache=True)
def maker_action_nb(
    o: np.void, w: np.void, p: np.void, price: float, queue_model: bool, volume: float
) -> tuple[int, float, int, float]:
    """Return what resting limit ``o`` does at a trade of ``volume`` base coin at ``price``.

    (action, fill price, liquidity, contracts) as :func:`point_action_nb`: a trade through the
    limit fills it (the level was swept: the queue ahead empties), bounded by the trade's
    size when known; with the queue model a trade at the limit first consumes the queue
    ahead, and its excess fills. Mutates: ``w['queue_ahead_base']``.
    """
    limit = o["price"]
    side = o["side"]
    sized = volume > 0.0  # False for qty_base 0 (size unknown) and NaN
    through = price < limit if side > 0 else price > limit
    if through:
        w["queue_ahead_base"] = 0.0  # the level was swept: nothing is left ahead
        if not sized:
            return 1, limit, Liquidity.MAKER, np.inf
        traded = trade_contracts_nb(p["contract_kind"], volume, p["face_value"], price)
        return 1, limit, Liquidity.MAKER, traded
    if price == limit and queue_model and sized:
        ahead = w["queue_ahead_base"]
        if volume > ahead:
            w["queue_ahead_base"] = 0.0
            excess = trade_contracts_nb(p["contract_kind"], volume - ahead, p["face_value"], price)
            return 1, limit, Liquidity.MAKER, excess
        w["queue_ahead_base"] = ahead - volume
    return 0, price, Liquidity.MAKER, np.inf


@njit(cache=True)
def point_action_nb(
    o: np.void,
    w: np.void,
    p: np.void,
    price: float,
    queue_model: bool,
    volume: float,
    on_bar: bool,
) -> tuple[int, float, int, float]:
    """Return what order ``o`` does at one traded price.

    (action, fill price, liquidity, contracts).

    action 0 keep, 1 fill, 2 expire. ``contracts`` bounds a maker fill: the traded size that
    reaches the order (after the queue ahead), or ``np.inf`` when unbounded (bars, takers,
    trades of unknown size). ``p``: the order's contract params. Mutates the order's trigger
    state and queue position.
    """
    typ = o["order_type"]
    side = o["side"]
    if awaiting_trigger_nb(o):
        if not trigger_hit_nb(typ, side, price, o["trigger_price"]):
            if typ == OrderType.TRAILING_STOP_MARKET:
                ratchet_trail_nb(o, w, p["tick_size_quote"], price)
            return 0, price, Liquidity.TAKER, np.inf
        if triggers_market_nb(typ):
            return 1, price, Liquidity.TAKER, np.inf
        o["status"] = OrderStatus.TRIGGERED
        w["is_taker"] = True
    if typ == OrderType.MARKET:
        return 1, price, Liquidity.TAKER, np.inf
    limit = o["price"]
    if w["is_taker"]:
        if limit_crossed_nb(side, price, limit):
            return 1, price, Liquidity.TAKER, np.inf
        if o["time_in_force"] != TimeInForce.GTC:
            return 2, price, Liquidity.TAKER, np.inf
        w["is_taker"] = False
        return 0, price, Liquidity.MAKER, np.inf
    if on_bar:
        if limit_crossed_nb(side, price, limit):
            # a bar opening through the limit fills at the open (the better price)
            return 1, price, Liquidity.MAKER, np.inf
        return 0, price, Liquidity.MAKER, np.inf
    return maker_action_nb(o, w, p, price, queue_model, volume)


@njit(cache=True)
def process_point_nb(
    state: Any,
    instrument: int,
    ts: int,
    price: float,
    volume: float,
    on_bar: bool,
    active_ts: int,
) -> bool:
    """Match the active orders of ``instrument`` against one traded price.

    ``volume`` is the trade's size in base coin (0 when unknown, and on bars); on ticks it caps
    the maker fills of this trade in total (module notes: fill-size model, queue model).
    Orders become eligible once ``active_from_ns <= active_ts`` (the trade time, or the bar's
    open time on bars); fills are stamped ``ts`` (the event time).

    Returns True when a strategy order filled (partly or wholly). Mutates: orders, work rows,
    active list, position, records.
    """
    acc = state.account[0]
    active = state.active
    p = state.params[instrument]
    filled = False
    keep = 0
    n = acc["n_active"]
    lot = p["lot_size_contracts"]
    budget = -1.0  # traded contracts not yet given to maker orders (< 0: not computed yet)
    for k in range(n):
        row = active[k]
        o = state.orders[row]
        w = state.work[row]
        if o["instrument"] != instrument or w["active_from_ns"] > active_ts:
            active[keep] = row
            keep += 1
            continue
        action, fill_price, liquidity, reach = point_action_nb(
            o, w, p, price, acc["queue_model"], volume, on_bar
        )
        if action == 1:
            qty_max = np.inf
            if liquidity == Liquidity.MAKER and np.isfinite(reach):
                if budget < 0.0:  # first sized maker fill of this trade
                    budget = trade_contracts_nb(p["contract_kind"], volume, p["face_value"], price)
                qty_max, used = maker_quantity_nb(o, w, lot, min(reach, budget))
                budget = max(0.0, budget - used)
                if qty_max <= 0.0:  # less than a lot reached the order: carried as credit
                    active[keep] = row
                    keep += 1
                    continue
            # a market (or stop-market) taker fill may slip without bound; a limit order's
            # taker fill never beyond its limit
            lo, hi = taker_bounds_nb(o)
            done = execute_nb(state, row, qty_max, ts, fill_price, liquidity, volume, lo, hi)
            filled = True
            if not done:
                active[keep] = row
                keep += 1
        elif action == 2:
            o["status"] = OrderStatus.EXPIRED
            o["ts_updated_ns"] = ts
        else:
            active[keep] = row
            keep += 1
    acc["n_active"] = keep
    return filled


@njit(cache=True, inline="always")
def taker_bounds_nb(o: np.void) -> tuple[float, float]:
    """Return the (lo, hi) a taker fill of order ``o`` may slip to.

    A limit order's (or triggered stop-limit's) own price on its side, else unbounded (market
    orders).
    """
    lo = -np.inf
    hi = np.inf
    if o["order_type"] == OrderType.LIMIT or o["order_type"] == OrderType.STOP_LIMIT:
        if o["side"] > 0:
            hi = o["price"]
        else:
            lo = o["price"]
    return lo, hi


@njit(cache=True)
def segment_level_nb(o: np.void, up: bool) -> float:
    """Return the price level at which order ``o`` acts on a move up (``up``) or down.

    NaN when it does not act on such a move (a market order, a trigger on the other side).
    """
    typ = o["order_type"]
    side = o["side"]
    if typ == OrderType.MARKET:
        return np.nan
    if awaiting_trigger_nb(o):
        fires_up = (side > 0) == is_stop_nb(typ)
        return o["trigger_price"] if fires_up == up else np.nan
    # resting limit: a sell fills on the way up, a buy on the way down
    return o["price"] if (side < 0) == up else np.nan


@njit(cache=True)
def process_segment_nb(
    state: Any,
    instrument: int,
    ts: int,
    a: float,
    b: float,
    lo: float,
    hi: float,
    active_ts: int,
    volume: float = 0.0,
) -> bool:
    """Fill the orders whose level lies in the move a → b (excluding a), nearest level first.

    Stops and take-profits trigger at their level and fill there as takers (a stop-limit
    whose limit is not crossed at its trigger rests); resting limits fill at their limit as
    makers. ``lo``/``hi``: the bar's range (bounds of a taker's slippage); ``volume``: base
    coin traded by the bar (sizes a square-root slippage impact). Orders become eligible once
    ``active_from_ns <= active_ts``; fills are stamped ``ts``. Returns True when an order
    filled. Mutates: orders, active list, position, records.
    """
    if a == b:
        return False
    acc = state.account[0]
    active = state.active
    up = b > a
    filled = False
    for _ in range(acc["n_active"] * 2 + 2):
        best_k, best_level = nearest_level_nb(state, instrument, a, b, active_ts)
        if best_k < 0:
            break
        row = active[best_k]
        o = state.orders[row]
        fill = True
        liquidity = Liquidity.MAKER
        fill_volume = 0.0  # a maker fill does not slip
        if awaiting_trigger_nb(o):
            liquidity = Liquidity.TAKER
            fill_volume = volume
            if not triggers_market_nb(o["order_type"]):
                o["status"] = OrderStatus.TRIGGERED
                if not limit_crossed_nb(o["side"], best_level, o["price"]):
                    state.work[row]["is_taker"] = False
                    fill = False
        if fill:
            execute_nb(state, row, np.inf, ts, best_level, liquidity, fill_volume, lo, hi)
            filled = True
            for k in range(best_k, acc["n_active"] - 1):
                active[k] = active[k + 1]
            acc["n_active"] -= 1
        else:
            a = best_level
    trail_segment_nb(state, instrument, b, up, active_ts)
    return filled


@njit(cache=True)
def nearest_level_nb(
    state: Any, instrument: int, a: float, b: float, active_ts: int
) -> tuple[int, float]:
    """Return (active-list index, level) of the order nearest to ``a`` in the move a → b.

    Orders of ``instrument`` live at ``active_ts`` whose level lies in the move, ``a``
    excluded; (-1, NaN) when none.
    """
    up = b > a
    best_k = -1
    best_level = np.nan
    for k in range(state.account[0]["n_active"]):
        row = state.active[k]
        o = state.orders[row]
        if o["instrument"] != instrument or state.work[row]["active_from_ns"] > active_ts:
            continue
        level = segment_level_nb(o, up)
        if np.isnan(level):
            continue
        inside = (a < level <= b) if up else (b <= level < a)
        if not inside:
            continue
        if best_k < 0 or (level < best_level if up else level > best_level):
            best_k = k
            best_level = level
    return best_k, best_level


@njit(cache=True)
def trail_segment_nb(state: Any, instrument: int, end: float, up: bool, active_ts: int) -> None:
    """Ratchet the trailing stops a path segment ending at ``end`` moved in their favour.

    A sell's on a move up, a buy's on a move down, to ``end``, the segment's favourable
    extreme. A move against a trailing stop never moves it; it may trigger it (the segment's
    fills, before this). Mutates: trailing orders' extreme and trigger.
    """
    tick = state.params[instrument]["tick_size_quote"]
    for k in range(state.account[0]["n_active"]):
        row = state.active[k]
        o = state.orders[row]
        w = state.work[row]
        if (
            o["order_type"] != OrderType.TRAILING_STOP_MARKET
            or o["instrument"] != instrument
            or o["status"] != OrderStatus.NEW
            or w["active_from_ns"] > active_ts
            or (o["side"] < 0) != up
        ):
            continue
        ratchet_trail_nb(o, w, tick, end)
