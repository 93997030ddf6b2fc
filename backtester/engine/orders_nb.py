"""Order acceptance and matching against trades and intrabar paths.

Acceptance (:func:`accept_orders_nb`) rounds prices and sizes to the contract grid and rejects
with a :class:`~backtester.enums.RejectReason`. Matching has two primitives:

* :func:`process_point_nb` — one traded price (a trade tick, or a bar's open): market and
  marketable orders take that price; stops trigger when the price is at or through the trigger
  and fill at that price; resting limits fill at their limit when the trade prints through it
  (or at the bar open when the bar gaps through it).
* :func:`process_segment_nb` — a continuous move between two intrabar path points: every level
  crossed fills at the level, nearest first, so no fill lies outside the bar's range.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.engine.account_nb import (
    apply_fill_nb,
    available_nb,
    tier_row_nb,
)
from backtester.enums import (
    Liquidity,
    OrderStatus,
    OrderType,
    RejectReason,
    TimeInForce,
)
from backtester.swap.fee_nb import fee_nb
from backtester.swap.margin_nb import initial_margin_nb

_GRID_TOLERANCE = 1e-6  # fraction of a tick / lot treated as float noise when snapping


@njit(cache=True)
def snap_nb(value: float, step: float) -> float:
    """``value`` on the grid of ``step``, or NaN when it is off the grid beyond float noise."""
    units = np.round(value / step)
    if abs(units * step - value) > _GRID_TOLERANCE * step:
        return np.nan
    return units * step


@njit(cache=True)
def is_conditional_nb(order_type) -> bool:
    """Stop and take-profit orders wait for a trigger."""
    return (
        order_type == OrderType.STOP_MARKET
        or order_type == OrderType.STOP_LIMIT
        or order_type == OrderType.TAKE_PROFIT
        or order_type == OrderType.TAKE_PROFIT_LIMIT
    )


@njit(cache=True)
def has_limit_nb(order_type) -> bool:
    """Order types that carry a limit price."""
    return (
        order_type == OrderType.LIMIT
        or order_type == OrderType.STOP_LIMIT
        or order_type == OrderType.TAKE_PROFIT_LIMIT
    )


@njit(cache=True)
def trigger_hit_nb(order_type, side, price, trigger) -> bool:
    """Buy stop: price ≥ trigger; sell stop: ≤. Take-profit the other way round."""
    stop = order_type == OrderType.STOP_MARKET or order_type == OrderType.STOP_LIMIT
    if (side > 0) == stop:
        return price >= trigger
    return price <= trigger


@njit(cache=True)
def limit_crossed_nb(side, price, limit) -> bool:
    """A buy limit takes at prices ≤ limit, a sell limit at prices ≥ limit."""
    if side > 0:
        return price <= limit
    return price >= limit


@njit(cache=True)
def reserved_margin_nb(positions, params, orders, active, n_active) -> float:
    """Initial margin held for resting non-reduce-only orders (at their limit/trigger price)."""
    total = 0.0
    for k in range(n_active):
        o = orders[active[k]]
        if o["reduce_only"]:
            continue
        i = o["instrument"]
        p = params[i]
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
def validate_order_nb(account, positions, params, tiers, orders, work, active, row, scratch):
    """RejectReason for order ``row`` (NONE when accepted); snaps price/size to the grid."""
    o = orders[row]
    i = o["instrument"]
    p = params[i]
    s = positions[i]
    typ = o["order_type"]
    side = o["side"]
    qty = snap_nb(o["qty_contracts"], p["lot_size_contracts"])
    if not (o["qty_contracts"] > 0.0):
        return RejectReason.SIZE_BELOW_MINIMUM
    if np.isnan(qty):
        return RejectReason.SIZE_NOT_LOT_MULTIPLE
    if qty < p["min_size_contracts"] * (1.0 - _GRID_TOLERANCE):
        return RejectReason.SIZE_BELOW_MINIMUM
    o["qty_contracts"] = qty
    if has_limit_nb(typ):
        if not (o["price"] > 0.0 and np.isfinite(o["price"])):
            return RejectReason.INVALID_PRICE
        price = snap_nb(o["price"], p["tick_size_quote"])
        if np.isnan(price):
            return RejectReason.PRICE_OFF_TICK
        o["price"] = price
    if is_conditional_nb(typ):
        if not (o["trigger_price"] > 0.0 and np.isfinite(o["trigger_price"])):
            return RejectReason.INVALID_PRICE
        trigger = snap_nb(o["trigger_price"], p["tick_size_quote"])
        if np.isnan(trigger):
            return RejectReason.PRICE_OFF_TICK
        o["trigger_price"] = trigger
    last = s["last_price"]
    q = s["contracts"]
    if o["reduce_only"] and (q == 0.0 or np.sign(q) == side):
        return RejectReason.REDUCE_ONLY_WOULD_INCREASE
    marketable = typ == OrderType.MARKET or (
        typ == OrderType.LIMIT and np.isfinite(last) and limit_crossed_nb(side, last, o["price"])
    )
    if o["post_only"] and marketable:
        return RejectReason.POST_ONLY_WOULD_TAKE
    if o["time_in_force"] != TimeInForce.GTC and not marketable:
        return RejectReason.FOK_NOT_FILLABLE
    work[row]["is_taker"] = marketable
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
    increase = qty
    if q != 0.0 and np.sign(q) != side:
        increase = max(0.0, qty - abs(q))
    if increase <= 0.0:
        return RejectReason.NONE
    new_abs = abs(q) + increase if (q == 0.0 or np.sign(q) == side) else increase
    tier = tier_row_nb(params, tiers, i, new_abs, ref)
    if s["leverage"] > tiers[tier]["max_leverage"] * (1.0 + 1e-12):
        return RejectReason.LEVERAGE_ABOVE_TIER_MAX
    kind = p["contract_kind"]
    face = p["face_value"]
    required = initial_margin_nb(kind, increase, face, ref, s["leverage"]) + fee_nb(
        kind, qty, face, ref, max(p["taker_fee_rate"], 0.0)
    )
    acc = account[0]
    free = available_nb(account, positions, params, tiers, scratch) - reserved_margin_nb(
        positions, params, orders, active, acc["n_active"]
    )
    if required > free:
        return RejectReason.INSUFFICIENT_MARGIN
    return RejectReason.NONE


@njit(cache=True)
def accept_orders_nb(account, positions, params, tiers, orders, work, active, ts_ns, scratch):
    """Validate the order rows the strategy added since the last call; returns rejections.

    Accepted rows join the active list with ``active_from_ns = ts + latency``; rejected rows get
    status REJECTED and their reason. Mutates: ``orders``, ``work``, ``active``, account counters.
    """
    acc = account[0]
    rejected = 0
    for row in range(acc["n_orders_seen"], acc["n_orders"]):
        o = orders[row]
        o["ts_updated_ns"] = ts_ns
        reason = validate_order_nb(
            account, positions, params, tiers, orders, work, active, row, scratch
        )
        if reason != RejectReason.NONE:
            o["status"] = OrderStatus.REJECTED
            o["reject_reason"] = reason
            rejected += 1
            continue
        o["status"] = OrderStatus.NEW
        work[row]["active_from_ns"] = ts_ns + acc["latency_ns"]
        work[row]["queue_ahead_base"] = 0.0
        active[acc["n_active"]] = row
        acc["n_active"] += 1
    acc["n_orders_seen"] = acc["n_orders"]
    return rejected


@njit(cache=True)
def execute_nb(
    account, positions, params, orders, fills, ledger, row, ts, price, liquidity, slip, lo, hi
) -> bool:
    """Fill the rest of order ``row`` at ``price``; returns True when the order is done.

    Taker fills move by the slippage rate against the order, clipped to [lo, hi] (the bar's
    range, or the trade price itself on ticks). Reduce-only orders are capped at the position
    and cancelled when there is nothing left to reduce.
    """
    o = orders[row]
    i = o["instrument"]
    s = positions[i]
    p = params[i]
    side = o["side"]
    qty = o["qty_contracts"] - o["filled_contracts"]
    capped = False
    if o["reduce_only"]:
        q = s["contracts"]
        if q == 0.0 or np.sign(q) == side:
            o["status"] = OrderStatus.CANCELLED
            o["ts_updated_ns"] = ts
            return True
        if qty > abs(q):
            qty = abs(q)
            capped = True
    fee_rate = p["maker_fee_rate"]
    if liquidity == Liquidity.TAKER:
        fee_rate = p["taker_fee_rate"]
        if slip != 0.0:
            price = min(max(price * (1.0 + side * slip), lo), hi)
    apply_fill_nb(
        account,
        positions,
        params,
        fills,
        ledger,
        i,
        ts,
        o["order_id"],
        side,
        qty,
        price,
        fee_rate,
        liquidity,
    )
    filled = o["filled_contracts"]
    avg = o["average_fill_price"] if filled > 0.0 else 0.0
    o["average_fill_price"] = (avg * filled + price * qty) / (filled + qty)
    o["filled_contracts"] = filled + qty
    o["ts_updated_ns"] = ts
    if capped:
        o["status"] = OrderStatus.FILLED if o["filled_contracts"] > 0 else OrderStatus.CANCELLED
    else:
        o["status"] = OrderStatus.FILLED
    return True


@njit(cache=True)
def point_action_nb(orders, work, row, price, queue_model, volume, on_bar) -> tuple:
    """What order ``row`` does at one traded price: (action, fill price, liquidity).

    action 0 keep, 1 fill, 2 expire.
    """
    o = orders[row]
    typ = o["order_type"]
    side = o["side"]
    w = work[row]
    if is_conditional_nb(typ) and o["status"] != OrderStatus.TRIGGERED:
        if not trigger_hit_nb(typ, side, price, o["trigger_price"]):
            return 0, price, Liquidity.TAKER
        if typ == OrderType.STOP_MARKET or typ == OrderType.TAKE_PROFIT:
            return 1, price, Liquidity.TAKER
        o["status"] = OrderStatus.TRIGGERED
        w["is_taker"] = True
    if typ == OrderType.MARKET:
        return 1, price, Liquidity.TAKER
    limit = o["price"]
    if w["is_taker"]:
        if limit_crossed_nb(side, price, limit):
            return 1, price, Liquidity.TAKER
        if o["time_in_force"] != TimeInForce.GTC:
            return 2, price, Liquidity.TAKER
        w["is_taker"] = False
        return 0, price, Liquidity.MAKER
    through = price < limit if side > 0 else price > limit
    if through:
        return 1, (price if on_bar else limit), Liquidity.MAKER
    if price == limit:
        if on_bar:
            return 1, limit, Liquidity.MAKER
        if queue_model:
            w["queue_ahead_base"] -= volume
            if w["queue_ahead_base"] < 0.0:
                return 1, limit, Liquidity.MAKER
    return 0, price, Liquidity.MAKER


@njit(cache=True)
def process_point_nb(
    account,
    positions,
    params,
    orders,
    work,
    active,
    fills,
    ledger,
    instrument,
    ts,
    price,
    volume,
    on_bar,
    slippage,
    active_ts,
) -> bool:
    """Match the active orders of ``instrument`` against one traded price.

    Orders become eligible once ``active_from_ns <= active_ts`` (the trade time, or the bar's
    open time on bars); fills are stamped ``ts`` (the event time).

    Returns True when a strategy order filled. Mutates: orders, active list, position, records.
    """
    acc = account[0]
    filled = False
    keep = 0
    n = acc["n_active"]
    for k in range(n):
        row = active[k]
        o = orders[row]
        if o["instrument"] != instrument or work[row]["active_from_ns"] > active_ts:
            active[keep] = row
            keep += 1
            continue
        action, fill_price, liquidity = point_action_nb(
            orders, work, row, price, acc["queue_model"], volume, on_bar
        )
        if action == 1:
            execute_nb(
                account,
                positions,
                params,
                orders,
                fills,
                ledger,
                row,
                ts,
                fill_price,
                liquidity,
                slippage[instrument],
                price,
                price,
            )
            filled = True
        elif action == 2:
            o["status"] = OrderStatus.EXPIRED
            o["ts_updated_ns"] = ts
        else:
            active[keep] = row
            keep += 1
    acc["n_active"] = keep
    return filled


@njit(cache=True)
def segment_level_nb(orders, row, up) -> float:
    """The price level at which order ``row`` acts on a move up (``up``) or down, else NaN."""
    o = orders[row]
    typ = o["order_type"]
    side = o["side"]
    if typ == OrderType.MARKET:
        return np.nan
    if is_conditional_nb(typ) and o["status"] != OrderStatus.TRIGGERED:
        stop = typ == OrderType.STOP_MARKET or typ == OrderType.STOP_LIMIT
        fires_up = (side > 0) == stop
        return o["trigger_price"] if fires_up == up else np.nan
    # resting limit: a sell fills on the way up, a buy on the way down
    return o["price"] if (side < 0) == up else np.nan


@njit(cache=True)
def process_segment_nb(
    account,
    positions,
    params,
    orders,
    work,
    active,
    fills,
    ledger,
    instrument,
    ts,
    a,
    b,
    lo,
    hi,
    slippage,
    active_ts,
) -> bool:
    """Fill the orders whose level lies in the move a → b (excluding a), nearest level first."""
    if a == b:
        return False
    acc = account[0]
    up = b > a
    filled = False
    for _ in range(acc["n_active"] * 2 + 2):
        best_k = -1
        best_level = np.nan
        for k in range(acc["n_active"]):
            row = active[k]
            if orders[row]["instrument"] != instrument or work[row]["active_from_ns"] > active_ts:
                continue
            level = segment_level_nb(orders, row, up)
            if np.isnan(level):
                continue
            inside = (a < level <= b) if up else (b <= level < a)
            if not inside:
                continue
            if best_k < 0 or (level < best_level if up else level > best_level):
                best_k = k
                best_level = level
        if best_k < 0:
            break
        row = active[best_k]
        o = orders[row]
        typ = o["order_type"]
        done = True
        if is_conditional_nb(typ) and o["status"] != OrderStatus.TRIGGERED:
            if typ == OrderType.STOP_MARKET or typ == OrderType.TAKE_PROFIT:
                execute_nb(
                    account,
                    positions,
                    params,
                    orders,
                    fills,
                    ledger,
                    row,
                    ts,
                    best_level,
                    Liquidity.TAKER,
                    slippage[instrument],
                    lo,
                    hi,
                )
            else:
                o["status"] = OrderStatus.TRIGGERED
                if limit_crossed_nb(o["side"], best_level, o["price"]):
                    execute_nb(
                        account,
                        positions,
                        params,
                        orders,
                        fills,
                        ledger,
                        row,
                        ts,
                        best_level,
                        Liquidity.TAKER,
                        slippage[instrument],
                        lo,
                        hi,
                    )
                else:
                    work[row]["is_taker"] = False
                    done = False
        else:
            execute_nb(
                account,
                positions,
                params,
                orders,
                fills,
                ledger,
                row,
                ts,
                best_level,
                Liquidity.MAKER,
                0.0,
                lo,
                hi,
            )
        if done:
            filled = True
            for k in range(best_k, acc["n_active"] - 1):
                active[k] = active[k + 1]
            acc["n_active"] -= 1
        a = best_level if not done else a
    return filled
