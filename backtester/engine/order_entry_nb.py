"""Placing and cancelling orders.

The one implementation behind ``market(ctx, ...)`` (jitted strategies) and the cancellations
of ``ctx.cancel(...)`` and of a liquidation or ADL.

A placed order is written as a NEW ORDER_DTYPE row; it is validated (margin, leverage, lot,
tick, post-only) by :func:`~backtester.engine.orders_nb.accept_orders_nb` after the callback
returns, at the same timestamp, as an exchange validates an order on arrival.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from backtester.enums import OrderStatus

# Free ORDER_DTYPE rows the loop guarantees before each event, so a jitted callback can place
# this many orders in one event; the driver grows the order arrays when fewer are left.
ORDER_HEADROOM = 256

# ``state``: the run's EngineState StructRef (engine/state_nb.py), ``Any`` to mypy.


@njit(cache=True)
def place_order_nb(  # noqa: PLR0913  # one parameter per ORDER_DTYPE field the strategy sets
    state: Any,
    instrument: int,
    order_type: int,
    side: int,
    qty_contracts: float,
    price: float,
    trigger_price: float,
    time_in_force: int,
    reduce_only: bool,
    post_only: bool,
    tag: int,
    queue_ahead_base: float,
) -> int:
    """Write a NEW order row at the account's current timestamp; return its order id.

    ``qty_contracts`` > 0 and ``side`` (+1 buy / -1 sell) as the Side enum; ``price`` and
    ``trigger_price`` in quote per base, NaN when not applicable. Returns -1 when the order
    array is full (more than ORDER_HEADROOM orders placed in one jitted callback).
    Mutates: ``orders``, ``work``, ``account[0]['n_orders']``, ``account[0]['next_order_id']``.
    """
    acc = state.account[0]
    row = acc["n_orders"]
    if row >= len(state.orders):
        return -1
    o = state.orders[row]
    o["order_id"] = row
    o["instrument"] = instrument
    o["ts_created_ns"] = acc["ts_ns"]
    o["ts_updated_ns"] = acc["ts_ns"]
    o["order_type"] = order_type
    o["side"] = side
    o["time_in_force"] = time_in_force
    o["reduce_only"] = reduce_only
    o["post_only"] = post_only
    o["status"] = OrderStatus.NEW
    o["reject_reason"] = 0
    o["price"] = price
    o["trigger_price"] = trigger_price
    o["qty_contracts"] = qty_contracts
    o["filled_contracts"] = 0.0
    o["average_fill_price"] = np.nan
    o["tag"] = tag
    if np.isnan(queue_ahead_base):
        queue_ahead_base = acc["queue_initial_base"]
    w = state.work[row]
    w["queue_initial_base"] = queue_ahead_base
    # a trailing stop's trail is set after placing (set_trail_nb); 0 = not a trailing stop
    w["trail_offset_quote"] = 0.0
    w["trail_rate"] = 0.0
    w["trail_extreme_price"] = 0.0
    acc["n_orders"] = row + 1
    acc["next_order_id"] = row + 1
    return row  # type: ignore[no-any-return]  # numba record field


@njit(cache=True)
def set_trail_nb(
    state: Any, row: int, offset_quote: float, rate: float, extreme_price: float
) -> None:
    """Set the trail of TRAILING_STOP_MARKET order ``row`` (placed by :func:`place_order_nb`).

    A distance ``offset_quote`` (quote) or a ``rate`` (fraction of the extreme; used when the
    distance is NaN or 0), starting from ``extreme_price`` (NaN: the last price when the
    order is accepted). Mutates: ``work[row]``.
    """
    w = state.work[row]
    w["trail_offset_quote"] = offset_quote if offset_quote > 0.0 else 0.0
    w["trail_rate"] = rate if not offset_quote > 0.0 and rate > 0.0 else 0.0
    w["trail_extreme_price"] = extreme_price if extreme_price > 0.0 else 0.0


@njit(cache=True)
def cancel_order_nb(state: Any, order_id: int) -> bool:
    """Cancel a working order, or one placed in this callback and not yet validated.

    Returns False when the order is not working (filled, cancelled, rejected, unknown id).
    Mutates: the order's status, the active list.
    """
    acc = state.account[0]
    active = state.active
    if order_id < 0 or order_id >= acc["n_orders"]:
        return False
    o = state.orders[order_id]
    if order_id >= acc["n_orders_seen"]:
        if o["status"] == OrderStatus.CANCELLED:
            return False
        o["status"] = OrderStatus.CANCELLED
        return True
    n = acc["n_active"]
    for k in range(n):
        if active[k] == order_id:
            for j in range(k, n - 1):
                active[j] = active[j + 1]
            acc["n_active"] = n - 1
            o["status"] = OrderStatus.CANCELLED
            o["ts_updated_ns"] = acc["ts_ns"]
            return True
    return False


@njit(cache=True)
def cancel_instrument_orders_nb(state: Any, instrument: int, ts_ns: int) -> None:
    """Cancel every resting order of ``instrument`` (before a liquidation, after an ADL close).

    Mutates: the orders' status, the active list and ``account[0]['n_active']``.
    """
    acc = state.account[0]
    orders = state.orders
    active = state.active
    keep = 0
    for k in range(acc["n_active"]):
        row = active[k]
        if orders[row]["instrument"] == instrument:
            orders[row]["status"] = OrderStatus.CANCELLED
            orders[row]["ts_updated_ns"] = ts_ns
        else:
            active[keep] = row
            keep += 1
    acc["n_active"] = keep
