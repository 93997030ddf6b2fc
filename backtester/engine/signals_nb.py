"""The signal path's replay kernel: ``run_until_nb`` specialised to one instrument on bars.

The strategy is entry/exit arrays.

It replays the same events in the same order as the general loop
(:mod:`backtester.engine.loop_nb`) running the signal strategy as a
:class:`~backtester.jit.JitStrategy`, through the same step functions (``handle_index_nb``,
``handle_mark_nb``, ``handle_funding_nb``, ``handle_bar_open_nb``, ``handle_bar_path_nb``,
``handle_bar_nb``, ``record_equity_nb``, ``switch_tiers_nb``, settlement), so a rule or an
ordering is written once; its records are byte-identical to that run's
(``tests/unit/engine/test_signal_kernel.py`` and the property test check it over profiles,
margin modes, mark methods and options). What it
leaves out is the generality the signal path does not use: the scan over instruments and over
the trade and ADL-scenario streams (each stream's next time is kept in a local), the callback
dispatch, and the head-room check of the record buffers before every event (done once per
``free // need`` events). Not covered (the caller falls back to the general loop): several
instruments, trade ticks, ADL/clawback scenario events, chunked replay.

Where nothing happens but prices moving, events are run together, with the records unchanged:
with no working order and nothing else due before a bar's close (:func:`quiet_path_nb`), the
bar's path (open, extremes, close) and an index point at its close are one step, applied at
the open or at the first extreme (records-only pieces of the step functions:
``move_last_price_nb``, ``ema_basis_mark_nb``, ``bar_path_step_nb``); a bar close and the
next bar's open at the same instant are one pass; under the LAST mark method the liquidation
check's fast exit runs at each path point (:func:`last_mark_path_nb`); under the
INDEX_EMA_BASIS mark with index points at the bar closes, the quiet bars that follow such a
fold run on in an inner loop (close, next open, folded path, index point per bar) while the
liquidation check needs nothing (flat, or the mark inside the isolated position's safe band
of :func:`~backtester.engine.loop_nb.safe_mark_band_nb`, as in the general loop), so the
slow-signal benchmark does not pay the event selection and the per-event checks at every bar.
Inlined helpers take
records and scalars, not arrays: an inlined array argument costs an atomic reference-count
update each way (it was ~15 % of the kernel on the index point).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from backtester.engine.cash_nb import settle_due_nb
from backtester.engine.deleverage_nb import apply_period_clawback_nb
from backtester.engine.loop_nb import (
    BUFFER_FULL,
    END_OF_DATA,
    HEADROOM_PER_ORDER,
    NO_EVENT,
    WAKE,
    bar_event_nb,
    bar_path_step_nb,
    ema_basis_mark_nb,
    equity_row_nb,
    handle_bar_nb,
    handle_bar_open_nb,
    handle_bar_path_nb,
    handle_funding_nb,
    handle_index_nb,
    handle_mark_nb,
    liquidation_after_mark_nb,
    min_free_nb,
    move_last_price_nb,
    record_equity_nb,
    safe_mark_band_nb,
    settlement_due_nb,
    switch_tiers_nb,
    update_mark_from_index_nb,
)
from backtester.engine.metrics_nb import isolated_ratio_at_nb, metrics_at_tier_nb
from backtester.engine.order_entry_nb import place_order_nb
from backtester.engine.orders_nb import accept_orders_nb
from backtester.engine.trade_path_nb import in_safe_band_nb, set_trigger_nb
from backtester.enums import (
    ContractKind,
    EventKind,
    MarginMode,
    MarkPriceMethod,
    OrderType,
    PathPoint,
    PriceStream,
    Side,
    TierBasis,
    TimeInForce,
    WakeReason,
)
from backtester.sizing_nb import contracts_for_money_nb, round_to_lot_nb
from backtester.swap.mark_nb import ema_alpha_nb
from backtester.swap.pnl_nb import pnl_nb
from backtester.swap.tier_nb import tier_index_nb, tier_size_nb

# units of a signal target amount (``target_unit`` of backtest_signals): contracts, quote
# notional, base coin, fraction of the account equity
UNIT_CONTRACTS = 0
UNIT_NOTIONAL = 1
UNIT_BASE = 2
UNIT_EQUITY_FRACTION = 3

# fast exits of the liquidation check after which the kernel notes a safe band of marks for
# the position (loop_nb.safe_mark_band_nb)
BAND_AFTER_CHECKS = 1


@njit(cache=True)
def target_contracts_nb(p: np.void, unit: int, amount: float, price: float, equity: float) -> float:
    """Return the signed contracts for a target ``amount`` in ``unit`` at ``price``.

    Signed contracts for a target ``amount`` in ``unit`` at ``price``, rounded toward zero
    to the lot (NaN when the price is not positive): the money-to-contracts table of
    :mod:`backtester.sizing` through its jitted twins (``p``: the instrument's params row;
    ``equity`` in settle currency, so a fraction of it is quote notional for a linear contract
    and base coin for an inverse one).
    """
    kind = p["contract_kind"]
    face = p["face_value"]
    lot = p["lot_size_contracts"]
    if unit == UNIT_CONTRACTS:
        return round_to_lot_nb(amount, lot)
    if unit == UNIT_NOTIONAL:
        return contracts_for_money_nb(kind, face, lot, price, amount, np.nan)
    if unit == UNIT_BASE:
        return contracts_for_money_nb(kind, face, lot, price, np.nan, amount)
    value = amount * equity
    if kind == ContractKind.INVERSE:
        return contracts_for_money_nb(kind, face, lot, price, np.nan, value)
    return contracts_for_money_nb(kind, face, lot, price, value, np.nan)


@njit(cache=True)
def entry_amounts_nb(
    long_entries: npt.NDArray[np.bool_],
    long_exits: npt.NDArray[np.bool_],
    short_entries: npt.NDArray[np.bool_],
    short_exits: npt.NDArray[np.bool_],
    size: float,
    amount: npt.NDArray[np.float64],
) -> int:
    """Fill ``amount`` (the signal rule's target per bar) from entry signals; return its entries.

    ``+size`` contracts on a long entry, ``-size`` on a short entry, NaN (keep) elsewhere. An
    entry with its own side's exit on the same bar is no entry, and so is an entry on both
    sides at once (vectorbt's default: ignore). One pass over the bars, where the numpy form
    (masks, ``np.full`` and two masked stores) took ~2 ms of a 1 M-bar signal run.
    """
    entries = 0
    for k in range(len(amount)):
        long_in = long_entries[k] and not long_exits[k]
        short_in = short_entries[k] and not short_exits[k]
        if long_in and not short_in:
            amount[k] = size
            entries += 1
        elif short_in and not long_in:
            amount[k] = -size
            entries += 1
        else:
            amount[k] = np.nan
    return entries


@njit(cache=True)
def signal_delta_nb(state: Any, i: int, signals: tuple[Any, ...], k: int) -> float:
    """Return the contracts to trade at the close of bar ``k`` (0.0: nothing).

    Contracts to trade at the close of bar ``k`` (0.0: nothing), the rule of both signal
    drivers (the kernel below and the jit strategy of the general loop).

    ``signals = (amount, close_long, close_short, unit)``: a long (short) position is closed on
    ``close_long[k]`` (``close_short[k]``); then a finite ``amount[k]`` sets the target
    position (signed, in ``unit[0]``; 0 = flat), converted at the bar's close and the account's
    equity at that instant (balance + the position's unrealised PnL at the mark).
    """
    amount, close_long, close_short, unit = signals
    s = state.positions[i]
    position: float = s["contracts"]
    want = np.nan
    if (close_long[k] and position > 0.0) or (close_short[k] and position < 0.0):
        want = 0.0
    a = amount[k]
    if not np.isnan(a):
        u = unit[0]
        equity = 0.0
        if u == UNIT_EQUITY_FRACTION:
            p = state.params[i]
            equity = state.account[0]["balance_settle"] + pnl_nb(
                p["contract_kind"], position, p["face_value"], s["entry_price"], s["mark_price"]
            )
        want = target_contracts_nb(state.params[i], u, a, s["last_price"], equity)
    if np.isnan(want) or want == position:
        return 0.0
    return want - position


@njit(cache=True)
def signal_market_nb(state: Any, i: int, signals: tuple[Any, ...], k: int) -> bool:
    """Place the market order of :func:`signal_delta_nb` at the close of bar ``k``.

    Not validated here: the general loop validates after its callbacks, the kernel at once
    (:func:`signal_orders_nb`). True when one was placed.
    """
    delta = signal_delta_nb(state, i, signals, k)
    if delta == 0.0 or not np.isfinite(delta):
        return False
    place_order_nb(
        state,
        i,
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
    return True


@njit(cache=True)
def signal_orders_nb(state: Any, signals: tuple[Any, ...], k: int) -> bool:
    """Place and validate the signal's market order at the close of bar ``k``.

    At the close of bar ``k``: the market order of :func:`signal_delta_nb`, validated at
    once (as the jit path validates orders after its callback). True when one was placed.
    """
    if not signal_market_nb(state, 0, signals, k):
        return False
    accept_orders_nb(state, state.account[0]["ts_ns"])
    return True


@njit(cache=True)
def tier_cache_nb(
    s: np.void, p: np.void, tiers: npt.NDArray[np.void], size_abs: float
) -> tuple[float, int]:
    """Return ``(tier_size, tier_row)`` of a position of ``size_abs`` contracts at its mark.

    ``(tier_size, tier_row)``: the tier row of a position of ``size_abs`` contracts at its
    mark, and the size for which it stays valid (NaN unless the table is by contracts, where
    the row does not depend on the price).
    """
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
def isolated_metrics_nb(s: np.void, p: np.void, tier: np.void) -> tuple[float, float, float, float]:
    """Return (UPL, maintenance margin, liquidation buffer, margin ratio) of position ``s``.

    (UPL, maintenance margin, liquidation buffer, margin ratio) of the open isolated
    position record ``s`` at its (finite) mark: the values
    :func:`~backtester.engine.metrics_nb.isolated_buffer_nb` computes, for the tier record
    ``tier``. Records only: an inlined function's array arguments cost reference-count
    updates on every call, and this runs at every mark update of an open position.
    """
    upl, pv, mm = metrics_at_tier_nb(s, p, tier)
    _, buffer, ratio = isolated_ratio_at_nb(s, p, upl, pv, mm, tier["maintenance_margin_rate"])
    return upl, mm, buffer, ratio


@njit(cache=True, inline="always")
def needs_full_check_nb(s: np.void, mc_ratio: float, buffer: float) -> bool:
    """Whether the full liquidation check must run after a mark update.

    After a mark update: whether the full liquidation check
    (:func:`~backtester.engine.loop_nb.liquidation_after_mark_nb`) must run — decided as its
    own fast exit decides, from the isolated position's ``buffer`` when it was computed (NaN
    otherwise).
    """
    if s["contracts"] == 0.0 and not s["margin_call_active"]:
        return False
    return not (
        s["margin_mode"] == MarginMode.ISOLATED
        and not s["margin_call_active"]
        and buffer > 1.0
        and buffer >= mc_ratio
    )


@njit(cache=True, inline="always")
def ema_index_point_nb(s: np.void, p: np.void, price: float, ts: int, alpha: float) -> bool:
    """Run an index point of ``price`` at ``ts`` under the INDEX_EMA_BASIS mark method.

    An index point of ``price`` at ``ts`` under the INDEX_EMA_BASIS mark method:
    :func:`~backtester.engine.loop_nb.handle_index_nb` on a point stream up to its liquidation
    check, with the mark of :func:`~backtester.engine.loop_nb.ema_basis_mark_nb` (the method's
    branch of ``update_mark_from_index_nb``, without its funding array argument, whose
    reference counting costs more than the update). True when the liquidation check must
    run (an open position or a margin call; the trigger is noted). Records only.
    """
    s["index_swap"] = False
    s["index_price"] = price
    s["c_index"] += 1
    s["mark_price"] = ema_basis_mark_nb(s, p, ts, alpha)
    if s["contracts"] != 0.0 or s["margin_call_active"]:
        set_trigger_nb(s, PriceStream.INDEX, PathPoint.POINT, ts)
        return True
    return False


@njit(cache=True, inline="always")
def quiet_path_nb(  # records and the kernel's locals (streams' next times)
    acc: np.void,
    s: np.void,
    p: np.void,
    t0: int,
    interval: int,
    t_index: int,
    t_mark: int,
    t_funding: int,
    daily_settlement: bool,
    next_equity_ns: int,
) -> bool:
    """Whether nothing but the bar's own path happens up to its close.

    From its first extreme (``t0 + Δ//3``) to its close (``t0 + Δ``) in the signal kernel,
    with no working order: no index, mark or funding event before the close, no equity row
    due at the extremes (``next_equity_ns``: the next row's time once the row of ``t0``, if
    due, is written; see :func:`next_equity_after_nb`), no settlement, tier switch or
    clawback up to the close; and under the LAST mark method (where each point moves the
    mark) a flat position, or an isolated one on a tier table by contracts
    (``last_mark_path_nb``). Records (``acc``, ``s``, ``p``) and scalars only.
    """
    close_ns = t0 + interval
    method = p["mark_price_method"]
    equity_interval = acc["equity_interval_ns"]
    return (
        (
            method != MarkPriceMethod.LAST
            or (s["contracts"] == 0.0 and not s["margin_call_active"])
            or (
                s["margin_mode"] == MarginMode.ISOLATED
                and not s["margin_call_active"]
                and p["tier_basis"] == TierBasis.CONTRACTS
            )
        )
        and t_index >= close_ns
        and t_mark >= close_ns
        and t_funding >= close_ns
        and (equity_interval <= 0 or next_equity_ns > t0 + 2 * interval // 3)
        and (not daily_settlement or s["next_settlement_ns"] >= close_ns)
        and acc["next_tier_switch_ns"] > close_ns
        and (acc["clawback_period_ns"] <= 0 or acc["next_clawback_ns"] > close_ns)
    )


@njit(cache=True, inline="always")
def next_equity_after_nb(acc: np.void, ts: int, aligned_ns: int) -> int:
    """Return the time of the next equity row once the events of instant ``ts`` are run.

    The run loop marks a row due after the first event at or past ``next_equity_ns`` and
    moves that time to the next multiple of ``equity_interval_ns`` (``run_until_nb``, the end
    of the signal kernel's event step). Record ``acc`` (the account row) and scalars only.

    ``aligned_ns``: a ``next_equity_ns`` the kernel computed, hence a multiple of the interval
    (-1: none; the driver's first value, the start time, need not be one). When it is the
    current one and ``ts`` lies in the interval after it, the next multiple is one interval
    on, without the int64 division (~10 ns; with an equity row per bar the kernel ran two a
    bar, a fifth of its time on a 1 M-bar run).
    """
    interval: int = acc["equity_interval_ns"]
    next_ns: int = acc["next_equity_ns"]
    if interval > 0 and ts >= next_ns:
        if next_ns == aligned_ns and ts < next_ns + interval:
            return next_ns + interval
        return (ts // interval + 1) * interval
    return next_ns


@njit(cache=True, inline="always")
def bar_close_nb(acc: np.void, s: np.void) -> None:
    """Run a bar close without a signal on the records.

    :func:`~backtester.engine.loop_nb.handle_bar_nb` on the records (account row ``acc``,
    position row ``s``), for the quiet-bar loop, where a call with the engine state costs
    its arrays' reference-count updates at every bar.
    """
    row = s["c_bar"]
    s["c_bar"] = row + 1
    s["bar_phase"] = 0
    acc["wake_ref"] = row


@njit(cache=True, inline="always")
def fast_equity_row_nb(s: np.void) -> bool:
    """Whether :func:`isolated_equity_row_nb` writes the EQUITY row of position row ``s``.

    The one instrument's position is flat, or isolated with a finite mark (else
    ``record_equity_nb`` writes it).
    """
    return s["contracts"] == 0.0 or (  # type: ignore[no-any-return]  # numba record fields
        s["margin_mode"] == MarginMode.ISOLATED and np.isfinite(s["mark_price"])
    )


@njit(cache=True, inline="always")
def isolated_equity_row_nb(
    r: np.void, acc: np.void, s: np.void, p: np.void, tier: np.void, ts: int
) -> None:
    """Fill ``r``, the next EQUITY row (``acc["n_equity"]``, counted here), at ``ts``.

    The row :func:`~backtester.engine.loop_nb.record_equity_nb` writes, bit for bit, for the
    one instrument of position row ``s`` when :func:`fast_equity_row_nb` holds: balance +
    UPL, the maintenance margin at tier record ``tier`` (the position's, unread when flat)
    and the position's margin ratio (NaN when flat); UPL and maintenance are added to 0.0
    as ``record_equity_nb`` sums them, so a -0.0 is written as 0.0. Records and scalars
    only: it is inlined in the kernel's quiet-bar loop, where an array argument would cost
    reference-count updates at every bar.
    """
    upl = 0.0
    mm = 0.0
    ratio = np.nan
    if s["contracts"] != 0.0:
        position_upl, position_mm, _, ratio = isolated_metrics_nb(s, p, tier)
        upl += position_upl
        mm += position_mm
    equity_row_nb(r, acc, s, ts, upl, mm, ratio)
    acc["n_equity"] += 1


@njit(cache=True)
def last_mark_path_nb(  # records and the kernel's cached tier row
    s: np.void,
    p: np.void,
    bar: np.void,
    tiers: npt.NDArray[np.void],
    row: int,
    nearest_first: bool,
    mc_ratio: float,
) -> int:
    """Run a bar's three path points under the LAST mark method with the fast check.

    A bar's three path points (from its first extreme) under the LAST mark method, with
    the open isolated position of row ``s`` on a tier table by contracts (its row does not
    change with the mark): each moves the last price and the mark (``move_last_price_nb``),
    then the liquidation check's fast exit runs (``row``: the position's tier row, or -1 to
    look it up). Returns the phase (1-3) of the first point after which the full check must
    run (the later points not replayed), 0 when none needs it. Not inlined, and the kernel's
    tier cache only read: either made the kernel's loop measurably slower (~2x on the
    index-EMA case) for the common methods.
    """
    if row < 0:
        _, row = tier_cache_nb(s, p, tiers, abs(s["contracts"]))
    tier = tiers[row]
    # With a fixed tier and no maintenance amount, the liquidation buffer of an isolated
    # position, (margin + UPL) / (c · position value), is monotonic in the mark (linear
    # contract: a + b/P; inverse: a + b·P). So when both ends of the path's price range are
    # clear of the threshold, with a margin for rounding, every point of it is, and the fast
    # exit need not be computed at each.
    safe = False
    if tier["maintenance_amount_settle"] == 0.0 and np.isfinite(s["mark_price"]):
        mark = s["mark_price"]
        s["mark_price"] = min(bar["low"], bar["close"])
        _, _, at_low, _ = isolated_metrics_nb(s, p, tier)
        s["mark_price"] = max(bar["high"], bar["close"])
        _, _, at_high, _ = isolated_metrics_nb(s, p, tier)
        s["mark_price"] = mark
        # each end tested on its own (a NaN buffer is never clear)
        level = 1.0 + 1e-9
        safe = (
            at_low > level
            and at_high > level
            and at_low >= mc_ratio * level
            and at_high >= mc_ratio * level
        )
    for phase in range(1, 4):
        _, end, point = bar_path_step_nb(s, bar, phase, nearest_first)
        move_last_price_nb(s, p, end, PriceStream.BARS, point, bar["ts_ns"])
        if safe:
            continue
        buffer = np.nan
        if np.isfinite(s["mark_price"]):
            _, _, buffer, _ = isolated_metrics_nb(s, p, tier)
        if needs_full_check_nb(s, mc_ratio, buffer):
            return phase
    return 0


@njit(cache=True)
def run_signals_nb(  # noqa: C901  # one event loop with its streams' times in locals (see the module notes)
    state: Any, capacities: npt.NDArray[np.int64], signals: tuple[Any, ...], wake_bar: int
) -> int:
    """Replay until the end of data, a full buffer or the close of bar ``wake_bar``.

    Returns a Status. ``state`` is the :class:`~backtester.engine.state_nb.EngineState` of
    one instrument with bars and no trades; ``signals`` (see :func:`signal_delta_nb`) act at
    the close of bar row ``k``. On BUFFER_FULL no event was consumed: grow and call again.
    Mutates: every state and record array.

    ``wake_bar`` (-1: none): the replay returns WAKE after the close of that bar row, with the
    account's wake fields set as ``run_until_nb`` sets them for a Python strategy woken by
    bars (the Python path's replay of a stretch of quiet bars,
    :mod:`backtester.engine.replay_gen_nb`, where nothing but prices moves up to that close).

    Every event goes through the general loop's step functions (``handle_<kind>_nb``), in the
    order of :class:`~backtester.enums.EventKind`; what is specialised is the choice of the
    next event (four streams of one instrument, their next times kept in locals) and the
    head-room check (once per ``free // need`` events).
    """
    account = state.account
    acc = account[0]
    s = state.positions[0]
    p = state.params[0]
    index = state.index
    mark = state.mark
    funding = state.funding
    bars = state.bars
    daily_settlement = p["daily_settlement"]
    equity_interval = acc["equity_interval_ns"]
    bar_interval = s["bar_interval_ns"]
    amount, close_long, close_short, _ = signals
    unchecked = 0  # events that may run before the record buffers' head-room is checked again
    equity = state.equity
    tiers = state.tiers
    tier_size = np.nan  # the cached tier row is valid for a position of this size
    tier_row = -1
    method = p["mark_price_method"]
    alpha = ema_alpha_nb(p["mark_ema_span"])
    nearest = acc["bar_path"] == 1
    mc_ratio = acc["margin_call_buffer_ratio"]
    check = False  # a mark update of an open position awaits the liquidation check
    woken = False  # bar ``wake_bar`` has closed
    aligned_equity_ns = -1  # see next_equity_after_nb
    band_fills = acc["n_fills"]  # fills when band_wait was last reset
    band_wait = 0  # fast exits taken outside a safe band since then
    t_index = index[s["c_index"]]["ts_ns"] if s["c_index"] < s["e_index"] else NO_EVENT
    t_mark = mark[s["c_mark"]]["ts_ns"] if s["c_mark"] < s["e_mark"] else NO_EVENT
    t_funding = funding[s["c_funding"]]["ts_ns"] if s["c_funding"] < s["e_funding"] else NO_EVENT
    t_bar = NO_EVENT
    k_bar: int = EventKind.BAR
    if s["c_bar"] < s["e_bar"]:
        t_bar, k_bar = bar_event_nb(bars[s["c_bar"]]["ts_ns"], bar_interval, s)
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
        # next_event_nb over the one instrument's streams (EventKind order at one time)
        ts = t_bar
        kind = k_bar
        if t_index < ts or (t_index == ts and kind > EventKind.INDEX):
            ts = t_index
            kind = EventKind.INDEX
        if t_mark < ts or (t_mark == ts and kind > EventKind.MARK):
            ts = t_mark
            kind = EventKind.MARK
        if t_funding < ts or (t_funding == ts and kind > EventKind.FUNDING):
            ts = t_funding
            kind = EventKind.FUNDING
        if ts == NO_EVENT:
            return END_OF_DATA
        if acc["equity_pending"] and ts > acc["ts_ns"]:
            if fast_equity_row_nb(s):
                # with the tier row cached while the size is unchanged (a table by contracts)
                size_abs = abs(s["contracts"])
                if size_abs != 0.0 and size_abs != tier_size:
                    tier_size, tier_row = tier_cache_nb(s, p, tiers, size_abs)
                r = equity[acc["n_equity"]]
                isolated_equity_row_nb(r, acc, s, p, tiers[tier_row], acc["ts_ns"])
            else:
                record_equity_nb(state, acc["ts_ns"])
            acc["equity_pending"] = False
        acc["ts_ns"] = ts
        if ts >= acc["next_tier_switch_ns"]:
            switch_tiers_nb(state, ts)
            tier_size = np.nan  # the cached tier row was of the previous table
        if daily_settlement and settlement_due_nb(ts, kind, s["next_settlement_ns"]):
            settle_due_nb(state, 0, ts)
        if acc["clawback_period_ns"] > 0 and ts >= acc["next_clawback_ns"]:
            # the period's clawback of what the insurance fund could not cover (run_until_nb)
            apply_period_clawback_nb(state, ts)
        if kind == EventKind.INDEX:
            c = s["c_index"]
            if s["index_interval_ns"] == 0:
                # handle_index_nb on a point stream, its liquidation check's fast exit settled
                # from the cached tier row (below)
                if method == MarkPriceMethod.INDEX_EMA_BASIS:
                    check = ema_index_point_nb(s, p, index[c]["price"], ts, alpha)
                else:
                    s["index_swap"] = False
                    s["index_price"] = index[c]["price"]
                    s["c_index"] = c + 1
                    if update_mark_from_index_nb(s, p, funding, ts, alpha) and (
                        s["contracts"] != 0.0 or s["margin_call_active"]
                    ):
                        set_trigger_nb(s, PriceStream.INDEX, PathPoint.POINT, ts)
                        check = True
            else:
                handle_index_nb(state, 0, ts)
            t_index = index[c + 1]["ts_ns"] if c + 1 < s["e_index"] else NO_EVENT
        elif kind == EventKind.MARK:
            c = s["c_mark"]
            if s["mark_interval_ns"] == 0:
                # handle_mark_nb on a point stream (fast exit as above)
                s["mark_swap"] = False
                s["c_mark"] = c + 1
                if method == MarkPriceMethod.HISTORICAL:
                    s["mark_price"] = mark[c]["price"]
                    if s["contracts"] != 0.0 or s["margin_call_active"]:
                        set_trigger_nb(s, PriceStream.MARK, PathPoint.POINT, ts)
                        check = True
            else:
                handle_mark_nb(state, 0, ts)
            t_mark = mark[c + 1]["ts_ns"] if c + 1 < s["e_mark"] else NO_EVENT
        elif kind == EventKind.FUNDING:
            handle_funding_nb(state, 0, ts)
            t_funding = (
                funding[s["c_funding"]]["ts_ns"] if s["c_funding"] < s["e_funding"] else NO_EVENT
            )
        else:
            if kind == EventKind.BAR:
                handle_bar_nb(state, 0, ts)
                k = s["c_bar"] - 1
                if k == wake_bar:
                    woken = True
                placed = False
                if close_long[k] or close_short[k] or not np.isnan(amount[k]):
                    placed = signal_orders_nb(state, signals, k)
                    if placed:
                        unchecked = 0  # more working orders: a larger head-room from now on
                t_bar = NO_EVENT
                if s["c_bar"] < s["e_bar"]:
                    t_bar, k_bar = bar_event_nb(bars[s["c_bar"]]["ts_ns"], bar_interval, s)
                if t_bar == ts and unchecked > 0 and not woken:
                    # the next bar opens at this close: its open is the next event (no other
                    # kind comes after a bar close at its instant, and the settlement, tier
                    # switch, clawback and equity row of this instant are done), run now
                    unchecked -= 1
                    kind = EventKind.BAR_OPEN
            if kind == EventKind.BAR_OPEN:
                # with no working order, the open only moves the last price (and the mark
                # under the LAST method): handle_bar_open_nb then
                if acc["n_active"] == 0 and not s["fill_on_trades"]:
                    s["bar_phase"] = 1
                    s["bar_fills"] = True
                    check = move_last_price_nb(
                        s, p, bars[s["c_bar"]]["open"], PriceStream.BARS, PathPoint.OPEN, ts
                    )
                    next_equity = next_equity_after_nb(acc, ts, aligned_equity_ns)
                    row_due = acc["equity_pending"] or next_equity != acc["next_equity_ns"]
                    if (
                        not check
                        and unchecked > 0
                        and (not row_due or fast_equity_row_nb(s))
                        and quiet_path_nb(
                            acc, s, p, ts, bar_interval, t_index, t_mark, t_funding,
                            daily_settlement, next_equity,
                        )
                    ):  # fmt: skip
                        # nothing runs at the bar's first extreme before its own step either
                        # (no check of the open; an equity row of this instant, due after its
                        # last event, is the first extreme's first step and written now, as
                        # no other event comes at this instant after the open): the path is
                        # folded now, as the first extreme's event would fold it (below)
                        if row_due:
                            size_abs = abs(s["contracts"])
                            if size_abs != 0.0 and size_abs != tier_size:
                                tier_size, tier_row = tier_cache_nb(s, p, tiers, size_abs)
                            r = equity[acc["n_equity"]]
                            isolated_equity_row_nb(r, acc, s, p, tiers[tier_row], ts)
                            acc["equity_pending"] = False
                            acc["next_equity_ns"] = next_equity
                        unchecked -= 1
                        kind = EventKind.BAR_PATH
                else:
                    handle_bar_open_nb(state, 0, ts)
                t_bar, k_bar = bar_event_nb(bars[s["c_bar"]]["ts_ns"], bar_interval, s)
            if kind == EventKind.BAR_PATH:
                # with no working order, a bar's path only moves the last price, and the mark
                # with it under the LAST method (handle_bar_path_nb then); the liquidation
                # check that follows a mark move is the one below
                if acc["n_active"] == 0:
                    bar = bars[s["c_bar"]]
                    t0 = bar["ts_ns"]
                    close_ns = t0 + bar_interval
                    if s["bar_phase"] == 1 and quiet_path_nb(
                        acc, s, p, t0, bar_interval, t_index, t_mark, t_funding,
                        daily_settlement, acc["next_equity_ns"],
                    ):  # fmt: skip
                        # Nothing else happens up to the bar's close (quiet_path_nb): its three
                        # path points only move the last price (and the mark under the LAST
                        # method), so they are applied here as one step, with the index point
                        # at the close that comes next. No record, equity row, settlement,
                        # tier switch or clawback falls on them (the equity flag of the close's
                        # instant is set below, as each event of that instant would set it).
                        # ``bar_low_first`` (the order of the extremes) is left unset: only the
                        # later segments of this bar's path read it, and they are not replayed.
                        # Under the LAST method with an open isolated position each point is
                        # followed by the liquidation check: its fast exit runs at each
                        # (last_mark_path_nb), and the fold stops at the first point that needs
                        # the full check (run below at that point's time).
                        stop = 0
                        if method == MarkPriceMethod.LAST and s["contracts"] != 0.0:
                            cached = tier_row if tier_size == abs(s["contracts"]) else -1
                            stop = last_mark_path_nb(s, p, bar, tiers, cached, nearest, mc_ratio)
                        else:
                            s["bar_phase"] = 4
                            s["last_price"] = bar["close"]
                            if method == MarkPriceMethod.LAST:
                                s["mark_price"] = bar["close"]  # flat: no check to run
                        if stop > 0:
                            ts = t0 + (stop * bar_interval) // 3 if stop < 3 else close_ns
                            check = True
                        else:
                            ts = close_ns
                        acc["ts_ns"] = ts
                        if (
                            stop == 0
                            and t_index == ts
                            and unchecked > 0
                            and s["index_interval_ns"] == 0
                            and method == MarkPriceMethod.INDEX_EMA_BASIS
                        ):
                            unchecked -= 1  # one more event: the index point
                            c = s["c_index"]
                            check = ema_index_point_nb(s, p, index[c]["price"], ts, alpha)
                            t_index = index[c + 1]["ts_ns"] if c + 1 < s["e_index"] else NO_EVENT
                            # The bars that follow while nothing but prices moves, run here as
                            # the events above would run them, four events a bar: this bar's
                            # close without a signal (handle_bar_nb), the next bar's open (the
                            # BAR_OPEN branch), its folded path and the index point at its
                            # close. Each is run only while the liquidation check of the index
                            # point before it needed nothing (a flat position, or a mark inside
                            # the isolated position's safe band, as the check block below
                            # decides) and nothing else falls due: no settlement at the close
                            # (due at a bar close on its instant), the next bar contiguous and
                            # quiet (quiet_path_nb: no other event, equity row, tier switch or
                            # clawback up to its close), its close carrying the next index
                            # point. No record is written on the way, so the records are those
                            # of the event-by-event replay; ~3x fewer instructions a bar.
                            while unchecked >= 4 and (
                                not check
                                or (
                                    s["contracts"] != 0.0
                                    and s["margin_mode"] == MarginMode.ISOLATED
                                    and not s["margin_call_active"]
                                    and in_safe_band_nb(s, p)
                                )
                            ):
                                k = s["c_bar"]
                                next_equity = next_equity_after_nb(acc, ts, aligned_equity_ns)
                                if (
                                    k == wake_bar
                                    or close_long[k]
                                    or close_short[k]
                                    or not np.isnan(amount[k])
                                    or k + 1 >= s["e_bar"]
                                    or bars[k + 1]["ts_ns"] != ts
                                    or t_index != ts + bar_interval
                                    or (daily_settlement and s["next_settlement_ns"] <= ts)
                                    or not quiet_path_nb(
                                        acc, s, p, ts, bar_interval, t_index, t_mark,
                                        t_funding, daily_settlement, next_equity,
                                    )
                                ):  # fmt: skip
                                    break
                                unchecked -= 4
                                bar_close_nb(acc, s)
                                bar = bars[k + 1]
                                s["bar_phase"] = 1
                                s["bar_fills"] = True
                                move_last_price_nb(
                                    s, p, bar["open"], PriceStream.BARS, PathPoint.OPEN, ts
                                )
                                if equity_interval > 0 and ts >= acc["next_equity_ns"]:
                                    # the row of this instant, due after its index point,
                                    # bar close and open (the path's first extreme writes
                                    # it first, before its own step)
                                    # (flat, or isolated inside its safe band: a finite
                                    # mark, fast_equity_row_nb holds)
                                    size_abs = abs(s["contracts"])
                                    if size_abs != 0.0 and size_abs != tier_size:
                                        tier_size, tier_row = tier_cache_nb(s, p, tiers, size_abs)
                                    r = equity[acc["n_equity"]]
                                    isolated_equity_row_nb(r, acc, s, p, tiers[tier_row], ts)
                                    acc["next_equity_ns"] = next_equity
                                    aligned_equity_ns = next_equity
                                s["bar_phase"] = 4
                                s["last_price"] = bar["close"]
                                ts += bar_interval
                                acc["ts_ns"] = ts
                                c = s["c_index"]
                                check = ema_index_point_nb(s, p, index[c]["price"], ts, alpha)
                                t_index = (
                                    index[c + 1]["ts_ns"] if c + 1 < s["e_index"] else NO_EVENT
                                )
                    else:
                        _, end, point = bar_path_step_nb(s, bar, s["bar_phase"], nearest)
                        check = move_last_price_nb(s, p, end, PriceStream.BARS, point, t0)
                else:
                    handle_bar_path_nb(state, 0, ts)
                t_bar, k_bar = bar_event_nb(bars[s["c_bar"]]["ts_ns"], bar_interval, s)
        if check:
            # liquidation_after_mark_nb: inside the position's safe band of marks nothing (as
            # there); else its fast exit (isolated, far from the threshold) decided from the
            # cached tier row, and a new band noted where it holds
            check = False
            isolated = (
                s["contracts"] != 0.0
                and s["margin_mode"] == MarginMode.ISOLATED
                and not s["margin_call_active"]
            )
            if not (isolated and in_safe_band_nb(s, p)):
                buffer = np.nan
                if isolated and np.isfinite(s["mark_price"]):
                    size_abs = abs(s["contracts"])
                    if size_abs != tier_size:
                        tier_size, tier_row = tier_cache_nb(s, p, tiers, size_abs)
                    _, _, buffer, _ = isolated_metrics_nb(s, p, tiers[tier_row])
                if needs_full_check_nb(s, mc_ratio, buffer):
                    liquidation_after_mark_nb(state, 0, ts)
                elif isolated:
                    # a band costs ~10 fast exits: noted once the position has passed
                    # BAND_AFTER_CHECKS of them since its last fill without one (a fast
                    # signal, a fill every few bars, would pay for bands it never uses)
                    if acc["n_fills"] != band_fills:
                        band_fills = acc["n_fills"]
                        band_wait = 0
                    band_wait += 1
                    if band_wait >= BAND_AFTER_CHECKS:
                        band_wait = 0
                        safe_mark_band_nb(s, p, tiers, mc_ratio)
        if equity_interval > 0 and ts >= acc["next_equity_ns"]:
            acc["equity_pending"] = True
            aligned_equity_ns = next_equity_after_nb(acc, ts, aligned_equity_ns)
            acc["next_equity_ns"] = aligned_equity_ns
        if woken:
            # run_until_nb's return at a wake-up (``wake_ref``: handle_bar_nb's)
            acc["wake_reason"] = WakeReason.BAR
            acc["wake_instrument"] = 0
            return WAKE
