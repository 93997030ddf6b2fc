"""The Python strategy's replay: a numba generator yielding one code per wake-up, and quiet bars.

A Python ``on_bar`` runs once per bar, so what the engine costs per bar is the crossing from
Python into numba and back: resuming the generator (~0.45 µs) was more than the callback of a
lean strategy. Most bars are *quiet*: no order is working, the position's mark stays inside
its safe band (:func:`~backtester.engine.loop_nb.safe_mark_band_nb`), no funding, settlement,
ADL, clawback, tier switch or trade falls inside them. On a quiet bar nothing the strategy can
see happens but the bar itself and the prices moving, so the driver calls ``on_bar`` on such
bars straight from the bar arrays, and the engine replays them afterwards in one go, or as
soon as the strategy reads anything the engine keeps (``engine.driver.QuietContext``).

The generator tells the driver how far the bars after a bar wake-up are certainly quiet
(:func:`quiet_until_nb`, written to ``control[QUIET_UNTIL]``), and replays a stretch the driver
ran on its own without yielding its bar wake-ups (``control[SKIP_TO]``). A stretch's events are
exactly the ones the replay would have run with a yield per bar, in the same order: the
records are the same byte for byte (``tests/property/test_quiet_bars.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from backtester.engine.loop_nb import (
    BUFFER_FULL,
    END_OF_DATA,
    resume_segment_nb,
    run_until_nb,
)
from backtester.engine.orders_nb import accept_orders_nb
from backtester.engine.signals_nb import run_signals_nb
from backtester.enums import MarginMode, MarkPriceMethod, WakeReason

__all__ = [
    "QUIET_SCAN_BARS",
    "QUIET_UNTIL",
    "SKIP_TO",
    "WAKE_INSTRUMENT_SHIFT",
    "WAKE_REASON_MASK",
    "WAKE_REF_SHIFT",
    "YIELD_BUFFER_FULL",
    "YIELD_END_OF_DATA",
    "YIELD_QUIET_BROKEN",
    "accept_pending_nb",
    "new_control",
    "quiet_until_nb",
    "replay_gen_nb",
]

# Codes yielded by replay_gen_nb: >= 0 is a wake-up, packed as
# (stream row << 24) | (instrument << 12) | WakeReason bits; negative ends the generator.
YIELD_END_OF_DATA = -1
YIELD_BUFFER_FULL = -2
# a quiet stretch met an event other than its bars' closes: the bound of quiet_until_nb was
# wrong (an engine bug; the driver raises)
YIELD_QUIET_BROKEN = -3
WAKE_REASON_MASK = 0xFFF
WAKE_INSTRUMENT_SHIFT = 12
WAKE_REF_SHIFT = 24
_BAR = int(WakeReason.BAR)
_FILL = int(WakeReason.FILL)
_ORDER_UPDATE = int(WakeReason.ORDER_UPDATE)

# Slots of the control array shared by the driver and the generator (int64).
SKIP_TO = 0  # bar row whose wake-up ends the stretch being replayed (-1: none)
QUIET_UNTIL = 1  # last bar row certainly quiet after the latest bar wake-up (-1: recompute)
QUIET_ENABLED = 2  # 1: compute QUIET_UNTIL at bar wake-ups (0: the driver runs no stretch)
# Bars looked ahead at most per stretch: an order placed inside a stretch wastes the rest of
# its scan (~4 ns a bar), and one resumption per 256 bars is already negligible.
QUIET_SCAN_BARS = 256
# Marks must stay this far (relative) inside the safe band: the EMA and index + basis are
# rounded at each step, the bound below is not.
_BAND_MARGIN = 1e-9


def new_control(*, enabled: bool) -> npt.NDArray[np.int64]:
    """Return a fresh control array for :func:`replay_gen_nb` (no stretch, no bound)."""
    control = np.full(3, -1, dtype=np.int64)
    control[QUIET_ENABLED] = int(enabled)
    return control


@njit(cache=True)
def accept_pending_nb(state: Any) -> int:
    """Validate the orders placed since the last call.

    Returns the first new row when some were rejected and the strategy listens to rejections
    (ORDER_UPDATE in the wake mask), else -1.
    """
    acc = state.account[0]
    first: int = acc["n_orders_seen"]
    if acc["n_orders"] == first:
        return -1
    rejected = accept_orders_nb(state, acc["ts_ns"])
    if rejected > 0 and acc["wake_mask"] & _ORDER_UPDATE:
        return first
    return -1


@njit(cache=True)
def other_streams_limit_nb(state: Any) -> int:
    """Return the first instant of an event that may wake the strategy or change the account.

    Events of instrument 0 other than its bars and prices: its next trade, funding point,
    ADL/clawback event, historical mark point (under the HISTORICAL method the mark moves
    there), daily settlement, the account's next clawback period end and tier switch. A
    stretch of quiet bars ends before the bar that contains it.
    """
    acc = state.account[0]
    s = state.positions[0]
    limit: int = acc["next_tier_switch_ns"]
    if acc["clawback_period_ns"] > 0:
        limit = min(limit, acc["next_clawback_ns"])
    if state.params[0]["daily_settlement"]:
        limit = min(limit, s["next_settlement_ns"])
    if s["c_trade"] < s["e_trade"]:
        limit = min(limit, state.trades[s["c_trade"]]["ts_ns"])
    if s["c_funding"] < s["e_funding"]:
        limit = min(limit, state.funding[s["c_funding"]]["ts_ns"])
    if s["c_deleverage"] < s["e_deleverage"]:
        limit = min(limit, state.deleverage[s["c_deleverage"]]["ts_ns"])
    if (
        state.params[0]["mark_price_method"] == MarkPriceMethod.HISTORICAL
        and s["c_mark"] < s["e_mark"]
    ):
        limit = min(limit, state.mark[s["c_mark"]]["ts_ns"])
    return limit


@njit(cache=True)
def band_bounds_nb(state: Any) -> tuple[float, float]:
    """Return the marks ``(low, high)`` between which the liquidation check takes its fast exit.

    An open position's mark must stay strictly between them; ``(0, 0)`` when no band holds.
    The band is :func:`~backtester.engine.loop_nb.safe_mark_band_nb`'s, valid while the
    position it was computed for is unchanged (``in_safe_band_nb``'s conditions), narrowed by a
    relative 1e-9 for the rounding of the mark's updates. Isolated margin only (a cross
    position's check has no band), outside a margin-call episode.
    """
    s = state.positions[0]
    p = state.params[0]
    if (
        s["margin_mode"] != MarginMode.ISOLATED
        or s["contracts"] != s["safe_contracts"]
        or s["reference_price"] != s["safe_reference_price"]
        or s["margin_settle"] != s["safe_margin_settle"]
        or p["tier_offset"] != s["safe_tier_offset"]
        or p["tier_count"] != s["safe_tier_count"]
        or not s["safe_mark_low"] < s["mark_price"] < s["safe_mark_high"]
    ):
        return 0.0, 0.0
    return s["safe_mark_low"] * (1.0 + _BAND_MARGIN), s["safe_mark_high"] * (1.0 - _BAND_MARGIN)


@njit(cache=True)
def quiet_until_nb(state: Any, max_bars: int) -> int:
    """Return the last bar row of instrument 0 up to which every bar is certainly quiet.

    Called at the wake-up of a bar close (the cursor ``c_bar`` is the next row); returns
    ``c_bar - 1`` when not even the next bar is. A bar is quiet when, placing no order, the
    replay up to its close yields nothing but its close: one instrument; no working or pending
    order (no fill, no rejection); no margin-call episode; no event of
    :func:`other_streams_limit_nb` before its close; and a flat position, or an open isolated
    one whose mark certainly stays inside its safe band (:func:`band_bounds_nb`):

    - LAST mark method: the mark is the bar path's price (open, extremes, close), so the bar's
      low and high must lie inside the band;
    - INDEX_EMA_BASIS: the mark moves only at index points, mark = index + EMA(last − index),
      and an EMA stays within the hull of its start and its samples, so
      ``index_low + min(ema, last_low − index_high) <= mark <= index_high + max(ema,
      last_high − index_low)`` over the stretch so far (an index candle's path may take its
      next row's price first: that row is included);
    - other methods: only while flat.

    At most ``max_bars`` rows are looked at.
    """
    positions = state.positions
    acc = state.account[0]
    s = positions[0]
    first: int = s["c_bar"]
    if (
        len(positions) != 1
        or acc["n_active"] > 0
        or acc["n_orders"] != acc["n_orders_seen"]
        or s["margin_call_active"]
        or s["bar_phase"] != 0
    ):
        return first - 1
    method = state.params[0]["mark_price_method"]
    is_open = s["contracts"] != 0.0
    band_low, band_high = 0.0, 0.0
    if is_open:
        band_low, band_high = band_bounds_nb(state)
        if band_low >= band_high or not (
            method == MarkPriceMethod.LAST
            or (method == MarkPriceMethod.INDEX_EMA_BASIS and s["ema_initialised"])
        ):
            return first - 1
    limit = other_streams_limit_nb(state)
    bars = state.bars
    index = state.index
    interval = s["bar_interval_ns"]
    ema = s["ema_basis"]
    last_low = last_high = s["last_price"]
    index_low = index_high = s["index_price"]
    c_index = s["c_index"]
    e_index = s["e_index"]
    if c_index > 0:  # an index candle's second extreme may replay the row before the cursor
        index_low = min(index_low, index[c_index - 1]["price"])
        index_high = max(index_high, index[c_index - 1]["price"])
    end: int = min(s["e_bar"], first + max_bars)
    for row in range(first, end):
        bar = bars[row]
        close_ns = bar["ts_ns"] + interval
        if close_ns >= limit:
            return row - 1
        if not is_open:
            continue
        low = min(bar["low"], bar["open"], bar["close"])
        high = max(bar["high"], bar["open"], bar["close"])
        if method == MarkPriceMethod.LAST:
            if not (band_low < low and high < band_high):
                return row - 1
            continue
        last_low = min(last_low, low)
        last_high = max(last_high, high)
        while c_index < e_index and index[c_index]["ts_ns"] <= close_ns:
            for k in range(c_index, min(c_index + 2, e_index)):
                index_low = min(index_low, index[k]["price"])
                index_high = max(index_high, index[k]["price"])
            c_index += 1
        mark_low = index_low + min(ema, last_low - index_high)
        mark_high = index_high + max(ema, last_high - index_low)
        # NaN bounds (an index not yet known) fail both comparisons: not quiet
        if not (band_low < mark_low and mark_high < band_high):
            return row - 1
    return end - 1


@njit(cache=True)
def replay_gen_nb(
    state: Any, capacities: Any, control: Any, no_signals: tuple[Any, ...]
) -> Iterator[int]:
    """Replay as a generator: yield one int64 per wake-up of the Python strategy.

    A wake-up yields ``(row << WAKE_REF_SHIFT) | (instrument << WAKE_INSTRUMENT_SHIFT) | bits``
    (row: the stream row of the bar/trade, or the first order row when ``bits`` is
    ORDER_UPDATE, i.e. orders were rejected); the end yields YIELD_END_OF_DATA, a full record
    buffer YIELD_BUFFER_FULL (grow the buffers and start a new generator: all state lives in
    the arrays). On resumption, orders the strategy placed in its callback are validated
    first, at the wake-up's timestamp.

    Quiet bars (``control``, see :data:`SKIP_TO`): at the wake-up of a close of instrument 0,
    ``control[QUIET_UNTIL]`` is set to :func:`quiet_until_nb`'s row unless an earlier bound
    still reaches this row (it stays valid while the strategy changes nothing: the driver sets
    it to -1 when it places, cancels or amends an order or moves margin). While
    ``control[SKIP_TO] >= 0`` the closes of rows before it are not yielded (the driver called
    ``on_bar`` for them already); any other wake-up there yields YIELD_QUIET_BROKEN. Such a
    stretch is replayed by the signal kernel (:func:`~backtester.engine.signals_nb.
    run_signals_nb`) with ``no_signals`` (``signal_delta_nb``'s arrays over the bars: NaN
    amounts, no exits), which stops at the close of row ``SKIP_TO``.

    The callbacks are passed as ``None`` (pruned from the compiled loop), not as no-op
    dispatchers: a dispatcher's type names its object in the compiling process, so with one in
    the signature every process missed the on-disk cache, recompiled (~5 s) and wrote another
    cache entry.

    Why a generator: resuming it from Python costs ~0.2 µs, while calling a jitted function
    with the ~20 state arrays costs ~10 µs of argument unboxing.
    """
    # no record variable (``account[0]``) here: a generator keeps its locals by value across
    # yields, so a record would be a stale copy after the first resumption
    account = state.account
    no_state = np.zeros(0)
    while True:
        first = accept_pending_nb(state)
        if first >= 0:
            yield (first << WAKE_REF_SHIFT) | _ORDER_UPDATE
        i = account[0]["wake_instrument"]
        if state.positions[i]["segment_fill_price"] != 0.0 and resume_segment_nb(state, i):
            # fills on the rest of the segment: the strategy hears of them at once
            account[0]["wake_reason"] = _FILL
            yield (i << WAKE_INSTRUMENT_SHIFT) | _FILL
            continue
        skip = control[SKIP_TO]
        if skip >= 0 and len(state.positions) == 1:
            # a quiet stretch: the signal kernel without signals runs its bars to the close
            # of ``skip`` in its folded loop (~4x fewer instructions a bar than the general
            # loop's four events); its records are the general loop's byte for byte
            status = run_signals_nb(state, capacities, no_signals, skip)
        else:
            status = run_until_nb(
                state, capacities, None, None, None, None, None, None, None, None, no_state
            )
        if status == END_OF_DATA:
            yield YIELD_END_OF_DATA
            return
        if status == BUFFER_FULL:
            yield YIELD_BUFFER_FULL
            return
        ref = account[0]["wake_ref"]
        low = (account[0]["wake_instrument"] << WAKE_INSTRUMENT_SHIFT) | account[0]["wake_reason"]
        skip = control[SKIP_TO]
        if skip >= 0:
            if low != _BAR or ref > skip:
                yield YIELD_QUIET_BROKEN
                return
            if ref < skip:
                continue
            control[SKIP_TO] = -1
        if low == _BAR and control[QUIET_ENABLED] != 0 and ref >= control[QUIET_UNTIL]:
            control[QUIET_UNTIL] = quiet_until_nb(state, QUIET_SCAN_BARS)
        yield (ref << WAKE_REF_SHIFT) | low
