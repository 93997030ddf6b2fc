"""The signal path's replay kernel: ``run_until_nb`` specialised to one instrument on bars,
with entry/exit arrays as the strategy.

It replays the same events in the same order, through the same model kernels, as the general
loop (:mod:`backtester.engine.loop_nb`) running the signal strategy as a
:class:`~backtester.jit.JitStrategy`, and its records are byte-identical to that run's
(``tests/unit/engine/test_signal_kernel.py`` and the property test check it over profiles,
margin modes, mark methods and options). What it leaves out is the generality the signal path
does not use, which costs the general loop most of its time per bar:

- the scan over instruments and over the trade and ADL-scenario streams, and the callback
  dispatch; stream cursors and next timestamps are kept in locals;
- the liquidation check's fast exit (the isolated position far from its threshold) is settled
  from metrics computed once per mark update with the tier row cached while the size is
  unchanged (contracts-based tables), and the same metrics fill the equity row;
- functions inlined into the loop take records and scalars, never arrays: an inlined
  function's array arguments get reference-count updates (an atomic operation each) on
  every call;
- the record buffers' head-room is checked once per ``free // need`` events, not per event.

Rare work (fills, funding, settlement, the full liquidation check, margin calls) goes through
the general loop's own functions. Not covered (the caller falls back to the general loop):
several instruments, trade ticks, ADL/clawback scenario events, chunked replay.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.engine.account_nb import (
    apply_settlement_nb,
    isolated_ratio_at_nb,
    metrics_at_tier_nb,
)
from backtester.engine.deleverage_nb import apply_period_clawback_nb
from backtester.engine.loop_nb import (
    BUFFER_FULL,
    END_OF_DATA,
    HEADROOM_PER_ORDER,
    NO_EVENT,
    accept_state_orders_nb,
    equity_row_nb,
    handle_bar_nb,
    handle_funding_nb,
    liquidation_after_mark_nb,
    min_free_nb,
    next_boundary_nb,
    record_equity_nb,
    update_mark_from_index_nb,
)
from backtester.engine.order_entry_nb import place_order_nb
from backtester.enums import (
    EventKind,
    MarginMode,
    MarkPriceMethod,
    OrderType,
    Side,
    TierBasis,
    TimeInForce,
)
from backtester.swap.mark_nb import ema_alpha_nb
from backtester.swap.settlement_nb import next_settlement_ns_nb
from backtester.swap.tier_nb import tier_index_nb, tier_size_nb


@njit(cache=True)
def signal_orders_nb(state, entries, exits, size, k) -> None:
    """At the close of bar ``k``: an exit closes the position, else an entry goes to the
    target size ``direction · contracts`` (``size = [contracts, direction]``), both by market
    order, validated at once (as the jit path validates orders after its callback)."""
    position = state.positions[0]["contracts"]
    delta = 0.0
    if exits[k]:
        delta = -position
    elif entries[k]:
        delta = size[1] * size[0] - position
    if delta == 0.0 or not np.isfinite(delta):
        return
    place_order_nb(
        state.account,
        state.orders,
        state.work,
        0,
        OrderType.MARKET,
        Side.BUY if delta > 0.0 else Side.SELL,
        abs(delta),
        np.nan,
        np.nan,
        TimeInForce.GTC,
        False,
        False,
        0,
        np.nan,
    )
    accept_state_orders_nb(state, state.account[0]["ts_ns"])


@njit(cache=True)
def tier_cache_nb(s, p, tiers, size_abs) -> tuple:
    """``(tier_size, tier_row)``: the tier row of a position of ``size_abs`` contracts at its
    mark, and the size for which it stays valid (NaN unless the table is by contracts, where
    the row does not depend on the price)."""
    row = tier_index_nb(
        tiers,
        p["tier_offset"],
        p["tier_count"],
        tier_size_nb(
            p["tier_basis"], p["contract_kind"], size_abs, p["face_value"], s["mark_price"]
        ),
    )
    return (size_abs if p["tier_basis"] == TierBasis.CONTRACTS else np.nan), row


@njit(cache=True, inline="always")
def isolated_metrics_nb(s, p, tier) -> tuple:
    """(UPL, maintenance margin, liquidation buffer, margin ratio) of the open isolated
    position record ``s`` at its (finite) mark: the values
    :func:`~backtester.engine.account_nb.isolated_buffer_nb` computes, for the tier record
    ``tier``. Records only: an inlined function's array arguments cost reference-count
    updates on every call, and this runs at every mark update of an open position."""
    upl, pv, mm = metrics_at_tier_nb(s, p, tier)
    _, buffer, ratio = isolated_ratio_at_nb(s, p, upl, pv, mm, tier["maintenance_margin_rate"])
    return upl, mm, buffer, ratio


@njit(cache=True, inline="always")
def needs_full_check_nb(s, mc_ratio, buffer) -> bool:
    """After a mark update: whether the full liquidation check
    (:func:`~backtester.engine.loop_nb.liquidation_after_mark_nb`) must run — decided as its
    own fast exit decides, from the isolated position's ``buffer`` when it was computed (NaN
    otherwise)."""
    if s["contracts"] == 0.0 and not s["margin_call_active"]:
        return False
    return not (
        s["margin_mode"] == MarginMode.ISOLATED
        and not s["margin_call_active"]
        and buffer > 1.0
        and buffer >= mc_ratio
    )


@njit(cache=True)
def run_signals_nb(state, capacities, entries, exits, size) -> int:
    """Replay until the end of data or a full buffer; returns a Status.

    ``state`` is the :class:`~backtester.engine.state_nb.EngineState` of one instrument with
    bars and no trades; ``entries[k]`` / ``exits[k]`` act at the close of bar row ``k``;
    ``size = [contracts, direction]``. On BUFFER_FULL no event was consumed: grow and call
    again. Mutates: every state and record array.
    """
    account = state.account
    acc = account[0]
    s = state.positions[0]
    p = state.params[0]
    index = state.index
    mark = state.mark
    funding = state.funding
    bars = state.bars
    equity = state.equity
    tiers = state.tiers
    mc_ratio = acc["margin_call_buffer_ratio"]
    method = p["mark_price_method"]
    alpha = ema_alpha_nb(p["mark_ema_span"])
    daily_settlement = p["daily_settlement"]
    equity_interval = acc["equity_interval_ns"]
    bar_interval = s["bar_interval_ns"]
    target = size[1] * size[0]
    tier_size = np.nan  # the cached tier row is valid for a position of this size
    tier_row = -1
    upl = mm = buffer = ratio = np.nan
    equity_aligned = False
    unchecked = 0  # events that may run before the record buffers' head-room is checked again
    # The cursors and each stream's next timestamp live in locals (written back to the
    # position row as they move): loaded from the row, they would be re-read after every
    # store to a record, which the compiler cannot tell apart from the row.
    c_index, e_index = s["c_index"], s["e_index"]
    c_mark, e_mark = s["c_mark"], s["e_mark"]
    c_funding, e_funding = s["c_funding"], s["e_funding"]
    c_bar, e_bar = s["c_bar"], s["e_bar"]
    t_index = index[c_index]["ts_ns"] if c_index < e_index else NO_EVENT
    t_mark = mark[c_mark]["ts_ns"] if c_mark < e_mark else NO_EVENT
    t_funding = funding[c_funding]["ts_ns"] if c_funding < e_funding else NO_EVENT
    t_bar = bars[c_bar]["ts_ns"] + bar_interval if c_bar < e_bar else NO_EVENT
    next_settlement = s["next_settlement_ns"]
    next_equity = acc["next_equity_ns"]
    while True:
        if unchecked == 0:
            # run_until_nb checks ``need`` free rows before every event; an event writes at
            # most that many, so ``free // need`` events can run before the next check (and a
            # new order, the only way to use an order row, resets the count)
            need = HEADROOM_PER_ORDER * (acc["n_active"] + 2) + 8
            free = min_free_nb(account, capacities)
            if free < need or len(state.orders) - acc["n_orders"] <= 0:
                return BUFFER_FULL
            unchecked = free // need
        unchecked -= 1
        # the next event of the one instrument: index → mark → funding → bar at one time
        ts = t_index
        kind = EventKind.INDEX
        if t_mark < ts:
            ts = t_mark
            kind = EventKind.MARK
        if t_funding < ts:
            ts = t_funding
            kind = EventKind.FUNDING
        if t_bar < ts:
            ts = t_bar
            kind = EventKind.BAR
        if ts == NO_EVENT:
            return END_OF_DATA
        acc["ts_ns"] = ts
        if daily_settlement and ts >= next_settlement:
            apply_settlement_nb(
                account, state.positions, state.params, state.settlements, state.ledger, 0, ts
            )
            next_settlement = next_settlement_ns_nb(ts, p["settlement_offset_ns"])
            s["next_settlement_ns"] = next_settlement
        if acc["clawback_period_ns"] > 0 and ts >= acc["next_clawback_ns"]:
            apply_period_clawback_nb(
                account,
                state.positions,
                state.params,
                state.settlements,
                state.adl,
                state.ledger,
                ts,
            )
        # one event, or an index point and the bar that closes at its time (the common pair:
        # run_until_nb's next event, handled here without the selection and checks above)
        while True:
            fresh = False  # upl, mm, ratio hold the open isolated position's metrics now
            mark_moved = False
            if kind == EventKind.INDEX:
                # handle_index_nb, keeping the metrics of the liquidation check
                s["index_price"] = index[c_index]["price"]
                c_index += 1
                s["c_index"] = c_index
                t_index = index[c_index]["ts_ns"] if c_index < e_index else NO_EVENT
                if update_mark_from_index_nb(s, p, funding, ts, alpha):
                    mark_moved = True
            elif kind == EventKind.BAR:
                row = c_bar
                if acc["n_active"] > 0 or method == MarkPriceMethod.LAST:
                    handle_bar_nb(state, 0, ts)
                else:  # handle_bar_nb with nothing to fill and the mark not on the last price
                    s["c_bar"] = row + 1
                    s["last_price"] = bars[row]["close"]
                    acc["wake_ref"] = row
                c_bar = row + 1
                t_bar = bars[c_bar]["ts_ns"] + bar_interval if c_bar < e_bar else NO_EVENT
            elif kind == EventKind.MARK:
                price = mark[c_mark]["price"]
                c_mark += 1
                s["c_mark"] = c_mark
                t_mark = mark[c_mark]["ts_ns"] if c_mark < e_mark else NO_EVENT
                if method == MarkPriceMethod.HISTORICAL:
                    s["mark_price"] = price
                    mark_moved = True
            else:
                handle_funding_nb(state, 0, ts)
                c_funding += 1
                t_funding = funding[c_funding]["ts_ns"] if c_funding < e_funding else NO_EVENT
            if mark_moved and (s["contracts"] != 0.0 or s["margin_call_active"]):
                # liquidation_after_mark_nb, its fast exit settled from metrics kept for the
                # equity row
                buffer = np.nan
                if (
                    s["contracts"] != 0.0
                    and s["margin_mode"] == MarginMode.ISOLATED
                    and not s["margin_call_active"]
                    and np.isfinite(s["mark_price"])
                ):
                    size_abs = abs(s["contracts"])
                    if size_abs != tier_size:
                        tier_size, tier_row = tier_cache_nb(s, p, tiers, size_abs)
                    upl, mm, buffer, ratio = isolated_metrics_nb(s, p, tiers[tier_row])
                    fresh = True
                if needs_full_check_nb(s, mc_ratio, buffer):
                    liquidation_after_mark_nb(state, 0, ts)
                    fresh = False
            if equity_interval > 0 and ts >= next_equity:
                q = s["contracts"]
                isolated = s["margin_mode"] == MarginMode.ISOLATED
                if q == 0.0 or (isolated and np.isfinite(s["mark_price"])):
                    # record_equity_nb's row for one isolated instrument, from the kept metrics
                    row_upl = 0.0
                    row_mm = 0.0
                    row_ratio = np.nan
                    if q != 0.0:
                        if not fresh:
                            size_abs = abs(q)
                            if size_abs != tier_size:
                                tier_size, tier_row = tier_cache_nb(s, p, tiers, size_abs)
                            upl, mm, buffer, ratio = isolated_metrics_nb(s, p, tiers[tier_row])
                        row_upl += upl
                        row_mm += mm
                        row_ratio = ratio
                    n = acc["n_equity"]
                    equity_row_nb(equity[n], acc, s, ts, row_upl, row_mm, row_ratio)
                    acc["n_equity"] = n + 1
                else:
                    record_equity_nb(state, ts)
                if equity_aligned:  # a multiple of the interval since the first row
                    next_equity = next_boundary_nb(ts, next_equity, equity_interval)
                else:
                    next_equity = (ts // equity_interval + 1) * equity_interval
                    equity_aligned = True
                acc["next_equity_ns"] = next_equity
            if kind == EventKind.BAR:
                k = c_bar - 1
                if exits[k] or (entries[k] and s["contracts"] != target):
                    signal_orders_nb(state, entries, exits, size, k)
                    unchecked = 0  # more working orders: a larger head-room from now on
                break
            if (
                kind != EventKind.INDEX
                or t_bar != ts
                or t_index == ts
                or t_mark == ts
                or t_funding == ts
                or unchecked == 0
            ):
                break
            # the bar is next: nothing else at this time comes before it, its head-room is
            # covered, and the settlement at this time (if any) has been applied
            unchecked -= 1
            kind = EventKind.BAR
