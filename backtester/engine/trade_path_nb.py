"""The trade fast path of the jitted loop: runs of quiet trades replayed in a tight inner loop.

A jitted ``on_trade`` strategy spends most ticks where nothing can happen but the last price
moving: no working order of the instrument that a trade could trigger or fill, the position
flat or its mark inside the safe band of its liquidation check
(:func:`~backtester.engine.loop_nb.safe_mark_band_nb`), and no other event (index, mark,
funding, ADL, bar, another instrument's trade, equity row, settlement, tier switch, clawback)
before the trade. The general loop (:func:`~backtester.engine.loop_nb.run_until_nb`) pays its
event merge, its daily/equity/tier checks and the dispatch on every one of them (~15 ns of
the ~25 ns a tick cost). Here such trades are replayed by :func:`quiet_trades_nb`: move the
last price (and the mark under the LAST method), call ``on_trade``; the run ends before the
first trade that is not quiet (out of the band, at or after the next other event, the end of
the chunk) and right after a callback that placed an order, and the general loop takes over.
The bars' analogue is the signal kernel's quiet-bar fold (``signals_nb.last_mark_path_nb``).

Every field the general loop writes for such a trade is written here, in the same order the
callback would see them (the record buffers are untouched: a quiet trade writes no record),
so the records are byte-identical with and without the fast path
(``tests/unit/engine/test_trade_path.py`` compares both on random ticks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from backtester.engine.orders_nb import is_conditional_nb, is_stop_nb
from backtester.enums import (
    MarginMode,
    MarkPriceMethod,
    OrderStatus,
    OrderType,
    PathPoint,
    PriceStream,
    WakeReason,
)

NO_BAND = (0.0, 0.0)  # an empty band: no trade is quiet


@njit(cache=True, inline="always")
def in_safe_band_nb(s: Any, p: Any) -> bool:
    """Return whether position row ``s``'s mark lies strictly inside its safe band.

    The band is the one of :func:`~backtester.engine.loop_nb.safe_mark_band_nb`, and what it
    was computed for (size, PnL reference, isolated margin, tier table of contract record
    ``p``) must be unchanged. Records only (inlined at every mark update).
    """
    mark = s["mark_price"]
    return bool(
        s["safe_mark_low"] < mark < s["safe_mark_high"]
        and s["contracts"] == s["safe_contracts"]
        and s["reference_price"] == s["safe_reference_price"]
        and s["margin_settle"] == s["safe_margin_settle"]
        and p["tier_offset"] == s["safe_tier_offset"]
        and p["tier_count"] == s["safe_tier_count"]
    )


@njit(cache=True, inline="always")
def set_trigger_nb(s: Any, stream: int, point: int, candle_ns: int) -> None:
    """Note the price update being applied to position row ``s``.

    Copied into the liquidation records it triggers: :class:`~backtester.enums.PriceStream`,
    :class:`~backtester.enums.PathPoint`, candle open time (ns).
    """
    s["trigger_stream"] = stream
    s["trigger_point"] = point
    s["trigger_candle_ns"] = candle_ns


@njit(cache=True)
def quiet_band_nb(state: Any, i: int) -> tuple[float, float]:
    """Return the open price band ``(low, high)`` of instrument ``i``'s quiet trades.

    A trade strictly inside the band changes nothing but the last price (and, under the LAST
    mark method, the mark); ``(0, 0)`` (empty) when no trade is quiet now. Conditions:

    - inside the band of every working order of instrument ``i`` (:func:`order_band_nb`:
      the trade neither triggers, fills, queues at nor ratchets it);
    - every record of a subscribed kind already shown to its callback (``n_*_seen``; the
      general loop only moves the counter of the others), no order waiting for validation,
      no equity row pending, and the Python strategy not woken by trades (``wake_mask``);
    - under the LAST mark method with a position open or a margin call active: an isolated
      position, no margin call, its safe band valid (``in_safe_band_nb``) — the band is then
      the safe band; otherwise (flat, or the mark set by the index/mark streams, which bound
      the run) every price is quiet.

    ``state`` is the run's :class:`~backtester.engine.state_nb.EngineState`.
    """
    acc = state.account[0]
    mask = acc["callback_mask"]
    if (
        acc["equity_pending"]
        or acc["wake_mask"] & WakeReason.TRADE
        or acc["n_orders_seen"] != acc["n_orders"]
        or (mask & WakeReason.FILL and acc["n_fills_seen"] != acc["n_fills"])
        or (mask & WakeReason.LIQUIDATION and acc["n_liquidations_seen"] != acc["n_liquidations"])
        or (mask & WakeReason.FUNDING and acc["n_funding_seen"] != acc["n_funding_payments"])
        or (mask & WakeReason.ADL and acc["n_adl_seen"] != acc["n_adl"])
    ):
        return NO_BAND
    low = -np.inf
    high = np.inf
    orders = state.orders
    active = state.active
    for k in range(acc["n_active"]):
        row = active[k]
        if orders[row]["instrument"] == i:
            low, high = order_band_nb(orders[row], state.work[row], low, high)
            if not low < high:
                return NO_BAND
    s = state.positions[i]
    p = state.params[i]
    if p["mark_price_method"] == MarkPriceMethod.LAST and (
        s["contracts"] != 0.0 or s["margin_call_active"]
    ):
        if (
            s["margin_mode"] == MarginMode.ISOLATED
            and not s["margin_call_active"]
            and in_safe_band_nb(s, p)
        ):
            return max(low, s["safe_mark_low"]), min(high, s["safe_mark_high"])
        return NO_BAND
    return low, high


@njit(cache=True)
def order_band_nb(o: Any, w: Any, low: float, high: float) -> tuple[float, float]:
    """Return the band ``(low, high)`` narrowed to the trade prices at which order ``o`` rests.

    ``o``/``w``: a working order's ORDER_DTYPE and work rows. What a trade does to an order
    (``orders_nb.point_action_nb``): a stop or take-profit awaiting its trigger triggers at
    ``price >= trigger`` (buy stop, sell take-profit) or ``<=`` (the others), so it rests
    strictly below / above the trigger; a resting limit fills through its price and, with the
    queue model, loses queue at it, so a buy rests strictly above its limit, a sell strictly
    below. Every other state changes on any trade: a trailing stop ratchets, a market order
    fills, a taker (just triggered stop-limit) fills or turns maker — the empty band then.
    A non-finite price or trigger gives the empty band too (never matched, but not worth a
    special case). Records only.
    """
    typ = o["order_type"]
    awaiting = is_conditional_nb(typ) and o["status"] == OrderStatus.NEW
    if awaiting:
        if typ == OrderType.TRAILING_STOP_MARKET:
            return NO_BAND
        level = o["trigger_price"]
        below = (o["side"] > 0) == is_stop_nb(typ)  # it triggers on a rise to the level
    else:
        if typ == OrderType.MARKET or w["is_taker"]:
            return NO_BAND
        level = o["price"]
        below = o["side"] < 0  # a sell limit rests above the trades
    if not np.isfinite(level):
        return NO_BAND
    if below:
        return low, min(high, level)
    return max(low, level), high


@njit(cache=True)
def account_bound_ns_nb(state: Any, i: int) -> int:
    """Return the first instant at which the loop has account work before a trade of ``i``.

    The minimum of the next tier switch, the next equity row (when rows are written), the
    instrument's next daily settlement (when it settles daily) and the next clawback period
    (when there is one). The general loop runs them before (tier switch, settlement,
    clawback) or after (equity) the first event at or after that instant; a quiet run stops
    before it. ``state`` is the run's :class:`~backtester.engine.state_nb.EngineState`.
    """
    acc = state.account[0]
    bound = acc["next_tier_switch_ns"]
    if acc["equity_interval_ns"] > 0:
        bound = min(bound, acc["next_equity_ns"])
    if state.params[i]["daily_settlement"]:
        bound = min(bound, state.positions[i]["next_settlement_ns"])
    if acc["clawback_period_ns"] > 0:
        bound = min(bound, acc["next_clawback_ns"])
    return int(bound)


# Not cached and inlined: it calls the strategy's ``on_trade``, so it is specialised per
# strategy inside the loop (see ``backtester.engine.jit_replay.cached_replay_kernel``).
@njit(inline="always")
def quiet_trades_nb(
    state: Any,
    i: int,
    low: float,
    high: float,
    bound_ns: int,
    on_trade: Any,
    user_state: Any,
) -> int:
    """Replay instrument ``i``'s quiet trades from its cursor; return how many were replayed.

    A trade is quiet when its price lies strictly inside ``(low, high)``
    (:func:`quiet_band_nb`) and its time strictly before ``bound_ns`` (the next other event
    or account work: ties go to the general loop, whose order then decides). Each moves the
    last price and its time, the mark under the LAST method, the account's time and wake row,
    then runs ``on_trade(state, user_state, i, row)`` when subscribed. Stops after a callback
    that placed an order (the caller validates it, as the general loop does after the event).
    Mutates: ``positions[i]`` (cursor, last price, mark, trigger), ``account[0]``
    (``ts_ns``, ``wake_ref``), and whatever the callback changes.
    """
    acc = state.account[0]
    s = state.positions[i]
    trades = state.trades
    last_mark = state.params[i]["mark_price_method"] == MarkPriceMethod.LAST
    call = acc["callback_mask"] & WakeReason.TRADE != 0
    n_orders = acc["n_orders"]
    first = s["c_trade"]
    end = s["e_trade"]
    c = first
    while c < end:
        t = trades[c]
        ts = t["ts_ns"]
        price = t["price"]
        if not (ts < bound_ns and low < price < high):
            break
        s["c_trade"] = c + 1
        s["last_price"] = price
        s["last_trade_ns"] = ts
        if last_mark:
            s["mark_price"] = price
        acc["ts_ns"] = ts
        acc["wake_ref"] = c
        c += 1
        if call:
            on_trade(state, user_state, i, c - 1)
            if acc["n_orders"] != n_orders:
                break
    if c > first and last_mark and (s["contracts"] != 0.0 or s["margin_call_active"]):
        # the general loop notes every such trade as the liquidation trigger: the last one
        set_trigger_nb(s, PriceStream.TRADES, PathPoint.TICK, s["last_trade_ns"])
    return int(c - first)
