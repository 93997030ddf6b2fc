"""The replay loop: a k-way merge over the market streams that runs until the next wake-up.

Streams of every instrument (index, mark, funding, trades, and the bars as the five events of
their path: open, two extremes, close, bar close) are merged inside the loop by a linear scan
over the stream heads (6 per instrument; cheaper than a heap at these sizes and needs no merged
copy of the data). Ties at one timestamp are broken by :class:`~backtester.enums.EventKind`
priority (its docstring says why: bar path → trade → index → mark → funding → ADL → bar close
→ bar open), then by instrument. A mark update is followed by the liquidation check; fills of
resting orders happen on trades and on the bar path, each booked at its own time; the strategy
callback runs after the whole event: in Python when the loop returns ``Status.WAKE`` (STYLE.md
C7), or inside the loop for a jitted strategy. ``run_until_nb`` is a small dispatcher over the
step functions ``handle_<kind>_nb``, which the signal kernel calls too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from backtester.engine.cash_nb import apply_funding_nb, settle_due_nb
from backtester.engine.deleverage_nb import apply_deleverage_event_nb, apply_period_clawback_nb
from backtester.engine.liquidation_engine_nb import check_liquidation_nb
from backtester.engine.metrics_nb import (
    cross_metrics_nb,
    isolated_buffer_nb,
    isolated_ratio_at_nb,
    metrics_at_tier_nb,
)
from backtester.engine.order_entry_nb import ORDER_HEADROOM, cancel_instrument_orders_nb
from backtester.engine.orders_nb import accept_orders_nb, process_point_nb, process_segment_nb
from backtester.engine.trade_path_nb import (
    account_bound_ns_nb,
    in_safe_band_nb,
    quiet_band_nb,
    quiet_trades_nb,
    set_trigger_nb,
)
from backtester.enums import (
    EventKind,
    MarginMode,
    MarkPriceMethod,
    OrderStatus,
    PathPoint,
    PriceStream,
    Status,
    WakeReason,
)
from backtester.swap.mark_nb import (
    ema_alpha_nb,
    ema_update_nb,
    funding_basis_mark_nb,
    median_mark_nb,
)
from backtester.swap.tier_nb import tier_index_nb, tier_size_nb

NO_EVENT = np.iinfo(np.int64).max
# The per-event functions take the EngineState (one pointer) and fetch only the arrays they
# use: a jitted call that passes ~13 arrays costs ~45 ns of argument passing and reference
# counting (one atomic update per array, each way), more than the event's own work. Kernels
# with array arguments are called only when there is work for them (open position, orders).
# Status values as plain ints: returning an IntEnum member from a jitted function boxes it
# through pickle on every call (µs per crossing); the driver compares the ints with Status.
BUFFER_FULL = int(Status.BUFFER_FULL)
END_OF_DATA = int(Status.END_OF_DATA)
WAKE = int(Status.WAKE)
_ORDER_UPDATE = int(WakeReason.ORDER_UPDATE)
_FILL = int(WakeReason.FILL)
HEADROOM_PER_ORDER = 6  # records one event may write per active order / instrument


@njit(cache=True)
def next_event_nb(state: Any) -> tuple[int, int, int]:
    """Return (instrument, EventKind, ts_ns) of the next event, or (-1, -1, max) at the end.

    At one timestamp the lowest EventKind wins, then the lowest instrument. Unrolled per stream
    on purpose (each has its own array and cursor fields): this runs once per event, and a
    loop over kinds through a helper measured ~25% slower on ticks.
    """
    positions = state.positions
    best_ts = NO_EVENT
    best_kind = 99
    best_i = -1
    for i in range(len(positions)):
        s = positions[i]
        if s["c_index"] < s["e_index"]:
            t = state.index[s["c_index"]]["ts_ns"]
            if t < best_ts or (t == best_ts and best_kind > EventKind.INDEX):
                best_ts, best_kind, best_i = t, EventKind.INDEX, i
        if s["c_mark"] < s["e_mark"]:
            t = state.mark[s["c_mark"]]["ts_ns"]
            if t < best_ts or (t == best_ts and best_kind > EventKind.MARK):
                best_ts, best_kind, best_i = t, EventKind.MARK, i
        if s["c_funding"] < s["e_funding"]:
            t = state.funding[s["c_funding"]]["ts_ns"]
            if t < best_ts or (t == best_ts and best_kind > EventKind.FUNDING):
                best_ts, best_kind, best_i = t, EventKind.FUNDING, i
        if s["c_deleverage"] < s["e_deleverage"]:
            t = state.deleverage[s["c_deleverage"]]["ts_ns"]
            if t < best_ts or (t == best_ts and best_kind > EventKind.DELEVERAGE):
                best_ts, best_kind, best_i = t, EventKind.DELEVERAGE, i
        if s["c_trade"] < s["e_trade"]:
            t = state.trades[s["c_trade"]]["ts_ns"]
            if t < best_ts or (t == best_ts and best_kind > EventKind.TRADE):
                best_ts, best_kind, best_i = t, EventKind.TRADE, i
        if s["c_bar"] < s["e_bar"]:
            t, kind = bar_event_nb(state.bars[s["c_bar"]]["ts_ns"], s["bar_interval_ns"], s)
            if t < best_ts or (t == best_ts and best_kind > kind):
                best_ts, best_kind, best_i = t, kind, i
    return best_i, best_kind, best_ts


@njit(cache=True, inline="always")
def bar_event_nb(t0: int, interval: int, s: np.void) -> tuple[int, int]:
    """Return (ts_ns, EventKind) of the next event of the bar opening at ``t0``.

    (ts_ns, EventKind) of the next event of the bar opening at ``t0``, from the position
    row's ``bar_phase``: 0 the open at ``t0`` (BAR_OPEN), 1/2 the extremes at ``t0 + Δ//3`` /
    ``t0 + 2Δ//3`` and 3 the close at ``t0 + Δ`` (BAR_PATH), 4 the bar close shown to the
    strategy at ``t0 + Δ`` (BAR).
    """
    phase = s["bar_phase"]
    if phase == 0:
        return t0, EventKind.BAR_OPEN
    if phase == 1:
        return t0 + interval // 3, EventKind.BAR_PATH
    if phase == 2:
        return t0 + 2 * interval // 3, EventKind.BAR_PATH
    if phase == 3:
        return t0 + interval, EventKind.BAR_PATH
    return t0 + interval, EventKind.BAR


@njit(cache=True)
def switch_tiers_nb(state: Any, ts: int) -> None:
    """Make the dated tier tables whose effective date is ``<= ts`` take effect.

    Dated tier tables whose effective date is ``<= ts`` take effect (before any event of
    ``ts``, so the liquidation check of that instant uses them): each instrument's params row
    points at its new table (``tier_offset``, ``tier_count``, ``max_leverage``);
    ``account.next_tier_switch_ns`` becomes the next date to come. Venues publish a new
    bracket table with its effective time (Binance "Updates to Leverage and Margin Tiers"
    announcements, OKX "position tier adjustments"); positions open then move to the new
    brackets at once.
    """
    switches = state.tier_switches
    nxt = NO_EVENT
    for i in range(len(state.positions)):
        s = state.positions[i]
        c = s["c_tier_switch"]
        while c < s["e_tier_switch"] and switches[c]["valid_from_ns"] <= ts:
            p = state.params[i]
            p["tier_offset"] = switches[c]["tier_offset"]
            p["tier_count"] = switches[c]["tier_count"]
            p["max_leverage"] = switches[c]["max_leverage"]
            c += 1
        s["c_tier_switch"] = c
        if c < s["e_tier_switch"]:
            nxt = min(nxt, switches[c]["valid_from_ns"])
    state.account[0]["next_tier_switch_ns"] = nxt


@njit(cache=True, inline="always")
def settlement_due_nb(ts: int, kind: int, settlement_ns: int) -> bool:
    """Whether the daily settlement of ``settlement_ns`` runs before this event.

    Whether the daily settlement of ``settlement_ns`` runs before this event: at its instant
    after the prices and funding of that instant (EventKind order: it comes before the
    ADL events, the bar close shown to the strategy and the next bar's open), else before the
    first later event.
    """
    return ts > settlement_ns or (ts == settlement_ns and kind > EventKind.FUNDING)


@njit(cache=True)
def liquidation_after_mark_nb(state: Any, i: int, ts: int) -> int:
    """Run the liquidation check after instrument ``i``'s mark changed; return wake bits.

    Run the liquidation check after instrument ``i``'s mark changed; returns wake bits.

    An isolated position whose liquidation buffer is above 1 and at or above the margin-call
    level (and not in a margin-call episode) needs nothing: that is decided here from its own
    metrics, without the full check's ~11 array arguments (the common case, once per mark
    update). Cheaper still, a mark inside the position's safe band (:func:`safe_mark_band_nb`,
    computed when the fast exit last held) needs not even that: a tick strategy's position
    under the LAST mark method runs this at every trade.
    """
    s = state.positions[i]
    if s["margin_mode"] == MarginMode.ISOLATED and not s["margin_call_active"]:
        p = state.params[i]
        if in_safe_band_nb(s, p):
            return 0
        m = state.metrics[0]
        isolated_buffer_nb(state, i, m)
        buffer = m["liquidation_buffer"]
        mc_ratio = state.account[0]["margin_call_buffer_ratio"]
        if buffer > 1.0 and buffer >= mc_ratio:
            if s["contracts"] != 0.0:
                safe_mark_band_nb(s, p, state.tiers, mc_ratio)
            return 0
    first = state.account[0]["n_liquidations"]
    wake = check_liquidation_nb(state, i, ts)
    for k in range(first, state.account[0]["n_liquidations"]):
        r = state.liquidations[k]
        r["trigger_stream"] = s["trigger_stream"]
        r["trigger_point"] = s["trigger_point"]
        r["trigger_candle_ns"] = s["trigger_candle_ns"]
    return wake


@njit(cache=True)
def safe_mark_band_nb(s: np.void, p: np.void, tiers: npt.NDArray[np.void], mc_ratio: float) -> None:
    """Note a band of marks inside which the isolated position's check takes its fast exit.

    Note in position row ``s`` a band of marks around its current one (±2 %, else ±0.5 %)
    inside which the isolated position's liquidation check certainly takes its fast exit
    (buffer > 1 and >= ``mc_ratio``), or no band (0, 0).

    Why it holds: with one tier row over the band and no maintenance amount, the buffer
    (margin + UPL) / (c · position value) is monotonic in the mark (linear contract
    a + b/P, inverse a + b·P; every liquidation rule's requirement is c · PV then, see
    ``margin_nb.liquidation_buffer_nb``), so it lies between its values at the band's ends;
    both ends clear with a relative margin of 1e-9 (rounding) means every mark inside is
    clear. The tier row is monotonic in the size (contracts, or notional: monotonic in the
    mark), so the same row at both ends means the same row inside. Same rule as the signal
    kernel's quiet-bar fold (``signals_nb.last_mark_path_nb``).
    Mutates: ``s['safe_*']`` (the mark is restored).
    """
    s["safe_mark_low"] = 0.0
    s["safe_mark_high"] = 0.0
    mark = s["mark_price"]
    size = abs(s["contracts"])
    if not (mark > 0.0 and np.isfinite(mark)) or size == 0.0:
        return
    kind = p["contract_kind"]
    face = p["face_value"]
    row = tier_index_nb(
        tiers, p["tier_offset"], p["tier_count"],
        tier_size_nb(p["tier_basis"], kind, size, face, mark),
    )  # fmt: skip
    tier = tiers[row]
    if tier["maintenance_amount_settle"] != 0.0:
        return
    mmr = tier["maintenance_margin_rate"]
    level = 1.0 + 1e-9
    for width in (0.02, 0.005):
        low = mark * (1.0 - width)
        high = mark * (1.0 + width)
        clear = True
        for end in (low, high):
            end_row = tier_index_nb(
                tiers, p["tier_offset"], p["tier_count"],
                tier_size_nb(p["tier_basis"], kind, size, face, end),
            )  # fmt: skip
            s["mark_price"] = end
            upl, pv, mm = metrics_at_tier_nb(s, p, tier)
            _, buffer, _ = isolated_ratio_at_nb(s, p, upl, pv, mm, mmr)
            # a NaN buffer is never clear
            if not (end_row == row and buffer > level and buffer >= mc_ratio * level):
                clear = False
        s["mark_price"] = mark
        if clear:
            s["safe_mark_low"] = low
            s["safe_mark_high"] = high
            s["safe_contracts"] = s["contracts"]
            s["safe_reference_price"] = s["reference_price"]
            s["safe_margin_settle"] = s["margin_settle"]
            s["safe_tier_offset"] = p["tier_offset"]
            s["safe_tier_count"] = p["tier_count"]
            return


@njit(cache=True)
def candle_point_nb(  # a stream row and the path's context
    points: npt.NDArray[np.void],
    c: int,
    e: int,
    ts: int,
    interval: int,
    swap: bool,
    position_sign: float,
    nearest_first: bool,
) -> tuple[float, int, int, bool]:
    """Return ``(price, PathPoint, candle open ns, swap)`` of row ``c`` of an index/mark stream.

    ``(price, PathPoint, candle open ns, swap)`` of row ``c`` of an index/mark stream.

    With ``interval`` 0 the rows are points (``PathPoint.POINT``). Otherwise they are candle
    paths (:func:`backtester.data.market.candle_path_points`: open at ``t0 + 1``, high at
    ``t0 + Δ//3``, low at ``t0 + 2Δ//3``, close at ``t0 + Δ``) and the point is told by its
    time. At the first extreme the order of the two is chosen as the trade candles' path
    chooses it (:func:`bar_path_nb`: the extreme adverse to the position first, or the one
    nearer the open); ``swap`` (True: the low is replayed first, the stored high second) is
    returned so the caller keeps it for the second extreme.
    """
    price = points[c]["price"]
    if interval <= 0:
        return price, PathPoint.POINT, ts, False
    offset = (ts - 1) % interval
    t0 = ts - 1 - offset
    if offset == 0:
        return price, PathPoint.OPEN, t0, False
    if offset == interval - 1:
        return price, PathPoint.CLOSE, t0, False
    if offset < interval // 2:  # the first extreme: the stored high
        low_first = False
        if c + 1 < e and points[c + 1]["ts_ns"] == t0 + 2 * interval // 3:
            low = points[c + 1]["price"]
            if nearest_first or position_sign == 0.0:
                o = price  # no open point in the chunk: as if the candle opened at the high
                if c > 0 and points[c - 1]["ts_ns"] == t0 + 1:
                    o = points[c - 1]["price"]
                low_first = not (price - o <= o - low)
            else:
                low_first = position_sign > 0.0
            if low_first:
                return low, PathPoint.LOW, t0, True
        return price, PathPoint.HIGH, t0, False
    if swap and c > 0:  # the second extreme after the low: the stored high
        return points[c - 1]["price"], PathPoint.HIGH, t0, False
    return price, PathPoint.LOW, t0, False


@njit(cache=True, inline="always")
def update_mark_from_index_nb(
    s: np.void, p: np.void, funding: npt.NDArray[np.void], ts: int, alpha: float
) -> bool:
    """Recompute the mark after an index update per the method; True if it changed.

    Recompute the mark after an index update per the profile's method; True if it changed.

    ``s``/``p``: the instrument's POSITION_STATE and CONTRACT_PARAMS records; ``alpha``:
    ``ema_alpha_nb(p["mark_ema_span"])`` (a division the caller may hoist). Inlined, with
    records and not arrays as arguments: an inlined function's array arguments get reference
    count updates (~5 ns each), and this runs at every index point.
    """
    method = p["mark_price_method"]
    if method == MarkPriceMethod.INDEX_EMA_BASIS or method == MarkPriceMethod.BINANCE_MEDIAN:
        basis_mark = ema_basis_mark_nb(s, p, ts, alpha)
        if method == MarkPriceMethod.INDEX_EMA_BASIS or not np.isfinite(s["last_price"]):
            s["mark_price"] = basis_mark
            return True
        s["mark_price"] = median_mark_nb(
            funding_mark_nb(s, p, funding, ts),
            basis_mark,
            s["last_price"],
        )
        return True
    if method == MarkPriceMethod.FUNDING_BASIS:
        s["mark_price"] = funding_mark_nb(s, p, funding, ts)
        return True
    return False


@njit(cache=True, inline="always")
def ema_basis_mark_nb(s: np.void, p: np.void, ts: int, alpha: float) -> float:
    """Return ``index + EMA(last − index)`` after an index update of position row ``s``.

    ``index + EMA(last − index)`` after an index update of position row ``s`` (contract
    record ``p``): the basis is sampled when the last price is known, once per
    ``p["mark_sample_ns"]`` when that is set; the index alone until the first sample. Records
    only, no array argument: the signal kernel calls it at every index point of the
    INDEX_EMA_BASIS method, where an inlined array argument's reference counting (an atomic
    increment and decrement, ~15 ns) cost more than the update itself.
    """
    index: float = s["index_price"]
    if np.isfinite(s["last_price"]):
        step = p["mark_sample_ns"]
        if step <= 0 or ts >= s["next_mark_sample_ns"]:
            s["ema_basis"] = ema_update_nb(
                s["ema_basis"],
                s["last_price"] - index,
                alpha,
                s["ema_initialised"],
            )
            s["ema_initialised"] = True
            if step > 0:
                s["next_mark_sample_ns"] = next_boundary_nb(ts, s["next_mark_sample_ns"], step)
    return index + s["ema_basis"] if s["ema_initialised"] else index


@njit(cache=True, inline="always")
def next_boundary_nb(ts: int, boundary: int, step: int) -> int:
    """Return ``(ts // step + 1) · step``, the first multiple of ``step`` after ``ts``.

    ``(ts // step + 1) · step``: the first multiple of ``step`` after ``ts``, given
    ``boundary <= ts`` a multiple of ``step`` (e.g. the previous result, or 0).

    Without the division when ``ts`` lies in the step after ``boundary`` (the common case:
    one sample per step): an int64 floor division costs ~10 ns, and this runs once per index
    point or equity row.
    """
    following = boundary + step
    if ts < following:
        return following
    return (ts // step + 1) * step


@njit(cache=True)
def funding_mark_nb(s: np.void, p: np.void, funding: npt.NDArray[np.void], ts: int) -> float:
    """Return index · (1 + rate · time to next funding / interval), next known rate.

    index · (1 + rate · time to next funding / interval) with the next known rate
    (``s``/``p``: the instrument's position and contract records).
    """
    rate = s["funding_rate"]
    until = 0
    if s["c_funding"] < s["e_funding"]:
        nxt = funding[s["c_funding"]]
        rate = nxt["funding_rate"]
        until = nxt["ts_ns"] - ts
    if np.isnan(rate):
        rate = 0.0
    return funding_basis_mark_nb(s["index_price"], rate, until, p["funding_interval_ns"])


@njit(cache=True)
def record_equity_nb(state: Any, ts: int) -> None:
    """Append one EQUITY row: balance, equity at mark, UPL, maintenance, margin ratio."""
    positions = state.positions
    acc = state.account[0]
    upl = 0.0
    mm = 0.0
    ratio = np.nan
    any_open = False
    any_cross = False
    for i in range(len(positions)):
        if positions[i]["contracts"] != 0.0:
            any_open = True
            if positions[i]["margin_mode"] != MarginMode.ISOLATED:
                any_cross = True
    if any_open:
        m = state.metrics[0]
        for i in range(len(positions)):
            if positions[i]["margin_mode"] == MarginMode.ISOLATED:
                isolated_buffer_nb(state, i, m)
                upl += m["unrealised_pnl_settle"]
                mm += m["maintenance_margin_settle"]
                if positions[i]["contracts"] != 0.0 and np.isnan(ratio):
                    ratio = m["margin_ratio"]
        if any_cross and cross_metrics_nb(state, m) >= 0:
            upl += m["unrealised_pnl_settle"]
            mm += m["maintenance_margin_settle"]
            if np.isnan(ratio):
                ratio = m["margin_ratio"]
    n = acc["n_equity"]
    equity_row_nb(state.equity[n], acc, positions[0], ts, upl, mm, ratio)
    acc["n_equity"] = n + 1


@njit(cache=True, inline="always")
def equity_row_nb(  # records and the row's values
    r: np.void, acc: np.void, s: np.void, ts: int, upl: float, mm: float, ratio: float
) -> None:
    """Fill the EQUITY record ``r``.

    Fill the EQUITY record ``r``: the account's balance and equity (``acc``: its row), the
    UPL, maintenance margin and margin ratio given, and the first instrument's position, mark
    and last price (``s``: its position row). Records only (inlined in the signal kernel).
    """
    r["ts_ns"] = ts
    r["balance_settle"] = acc["balance_settle"]
    r["equity_settle"] = acc["balance_settle"] + upl
    r["unrealised_pnl_settle"] = upl
    r["maintenance_margin_settle"] = mm
    r["margin_ratio"] = ratio
    r["position_contracts"] = s["contracts"]
    r["mark_price"] = s["mark_price"]
    r["last_price"] = s["last_price"]


@njit(cache=True, inline="always")
def bar_path_nb(bar: np.void, position_sign: float, nearest_first: bool) -> tuple[float, float]:
    """Return the two intrabar extremes in visiting order.

    The two intrabar extremes in visiting order: conservative = adverse extreme first.
    """
    o = bar["open"]
    high = bar["high"]
    low = bar["low"]
    if nearest_first or position_sign == 0.0:
        if high - o <= o - low:
            return high, low
        return low, high
    if position_sign > 0.0:
        return low, high
    return high, low


@njit(cache=True)
def last_price_moved_nb(  # the price and its trigger
    state: Any, i: int, ts: int, price: float, stream: int, point: int, candle_ns: int
) -> int:
    """Move instrument ``i``'s last price to ``price``; return wake bits.

    The last price of instrument ``i`` is now ``price``; under the LAST mark method the
    mark follows it and the liquidation check runs (trigger: ``stream``/``point``/candle).
    Returns wake bits.
    """
    if move_last_price_nb(state.positions[i], state.params[i], price, stream, point, candle_ns):
        return liquidation_after_mark_nb(state, i, ts)
    return 0


@njit(cache=True, inline="always")
def move_last_price_nb(  # records, the price and its trigger
    s: np.void, p: np.void, price: float, stream: int, point: int, candle_ns: int
) -> bool:
    """Move position row ``s``'s last price (and a LAST mark) to ``price``.

    Position row ``s``'s last price is now ``price``; under the LAST mark method (contract
    record ``p``) the mark follows it. True when the liquidation check must run then (the
    mark moved on an open position or during a margin call; the trigger is noted). Records
    only (inlined in the signal kernel).
    """
    s["last_price"] = price
    if p["mark_price_method"] == MarkPriceMethod.LAST:
        s["mark_price"] = price
        if s["contracts"] != 0.0 or s["margin_call_active"]:
            set_trigger_nb(s, stream, point, candle_ns)
            return True
    return False


@njit(cache=True)
def handle_bar_open_nb(state: Any, i: int, ts: int) -> int:
    """Run a bar's open at ``ts``; return wake bits.

    A bar opens at ``ts``: orders marketable at its open (a market order placed at the
    previous bar's close) fill at the open price, booked at ``ts``, so the position takes part
    in every later event (the mark path of this candle, funding at its close, liquidation).
    Whether resting orders fill on this bar's path is decided here: on bars, or when no trade
    prints during the bar (data with trades for only part of the span fill on bars elsewhere).
    The last price becomes the open. Returns wake bits.
    """
    s = state.positions[i]
    bar = state.bars[s["c_bar"]]
    s["bar_phase"] = 1
    fills = True
    if s["fill_on_trades"]:
        fills = s["last_trade_ns"] < ts and not (
            s["c_trade"] < s["e_trade"]
            and state.trades[s["c_trade"]]["ts_ns"] < ts + s["bar_interval_ns"]
        )
    s["bar_fills"] = fills
    wake = 0
    if (
        fills
        and state.account[0]["n_active"] > 0
        and process_point_nb(state, i, ts, bar["open"], bar["volume_base"], True, ts)
    ):
        wake |= WakeReason.FILL
    return wake | last_price_moved_nb(
        state, i, ts, bar["open"], PriceStream.BARS, PathPoint.OPEN, ts
    )


@njit(cache=True)
def handle_bar_path_nb(state: Any, i: int, ts: int) -> int:
    """Run a point of the bar's intrabar path; return wake bits.

    A point of the bar's intrabar path (first extreme, second extreme, close; see
    :class:`~backtester.enums.EventKind`): resting orders fill on the segment that ends here
    (booked at ``ts``), the last price moves to the point (under the LAST mark method the
    mark too, then the liquidation check). The order of the extremes is chosen at the first:
    adverse to the open position first (``bar_path`` conservative) or the nearer one first.
    Returns wake bits.
    """
    s = state.positions[i]
    bar = state.bars[s["c_bar"]]
    phase = s["bar_phase"]
    lo = bar["low"]
    hi = bar["high"]
    start, end, point = bar_path_step_nb(s, bar, phase, state.account[0]["bar_path"] == 1)
    wake = 0
    acc = state.account[0]
    n_fills = acc["n_fills"]
    # orders live when the segment starts (its first point's time, as bar_event_nb) take part:
    # one placed at a wake inside the bar is matched on the bar's later segments
    since = bar["ts_ns"] + (phase - 1) * s["bar_interval_ns"] // 3
    if (
        s["bar_fills"]
        and acc["n_active"] > 0
        and process_segment_nb(state, i, ts, start, end, lo, hi, since, bar["volume_base"])
    ):
        wake |= WakeReason.FILL
        if (acc["wake_mask"] | acc["callback_mask"]) & WakeReason.FILL:
            # the strategy hears of the fill at the end of the segment; what it places then
            # (an entry's exits) is matched against the rest of the segment after acceptance
            s["segment_fill_price"] = state.fills[n_fills]["price"]
    return wake | last_price_moved_nb(state, i, ts, end, PriceStream.BARS, point, bar["ts_ns"])


@njit(cache=True)
def resume_segment_nb(state: Any, i: int) -> bool:
    """Match the orders placed at a bar-path fill against the rest of its segment.

    Orders placed when the strategy was woken by a fill on a bar-path segment (an entry's
    stop-loss / take-profit) are live from the fill's instant: once accepted, they are matched
    against the rest of that segment, from the first fill's price to the segment's end (the
    last price), as if placed at the fill. Orders that were working during the segment are
    not affected: every level of theirs inside the segment was already matched. Returns True
    when something filled. Mutates: ``positions[i]['segment_fill_price']`` (consumed), orders,
    records.
    """
    s = state.positions[i]
    start = s["segment_fill_price"]
    if start == 0.0:
        return False
    s["segment_fill_price"] = 0.0
    if state.account[0]["n_active"] == 0 or not s["bar_fills"]:
        return False
    bar = state.bars[s["c_bar"]]
    ts = state.account[0]["ts_ns"]
    return process_segment_nb(
        state, i, ts, start, s["last_price"], bar["low"], bar["high"], ts, bar["volume_base"]
    )


@njit(cache=True, inline="always")
def bar_path_step_nb(
    s: np.void, bar: np.void, phase: int, nearest_first: bool
) -> tuple[float, float, int]:
    """Return ``(start, end, PathPoint of end)`` of the bar path's segment ending at ``phase``.

    ``(start, end, PathPoint of end)`` of the segment of the bar record's path that ends at
    ``phase`` (1: open → first extreme, 2: → second extreme, 3: → close), and the position row
    ``s`` moved to the next phase. At phase 1 the order of the extremes is chosen
    (:func:`bar_path_nb`: adverse to the position first, or the nearer one) and kept in
    ``s["bar_low_first"]``. Records only (inlined in the signal kernel).
    """
    lo = bar["low"]
    hi = bar["high"]
    if phase == 1:
        first, second = bar_path_nb(bar, np.sign(s["contracts"]), nearest_first)
        s["bar_low_first"] = first == lo and second == hi and lo != hi
        start = bar["open"]
        end = first
    elif phase == 2:
        start = lo if s["bar_low_first"] else hi
        end = hi if s["bar_low_first"] else lo
    else:
        start = hi if s["bar_low_first"] else lo
        end = bar["close"]
    s["bar_phase"] = phase + 1
    if phase == 3:
        point = PathPoint.CLOSE
    elif end == lo and (phase == 1) == s["bar_low_first"]:
        point = PathPoint.LOW
    else:
        point = PathPoint.HIGH
    return start, end, point


@njit(cache=True)
def handle_bar_nb(state: Any, i: int, ts: int) -> int:
    """Run a bar's close at ``ts`` (shown to the strategy); return wake bits.

    A bar closed at ``ts`` (its path was replayed up to the close): shown to the strategy,
    after the index, mark, funding and ADL events of ``ts``. Returns wake bits.
    """
    s = state.positions[i]
    row = s["c_bar"]
    s["c_bar"] = row + 1
    s["bar_phase"] = 0
    state.account[0]["wake_ref"] = row
    return WakeReason.BAR


@njit(cache=True)
def handle_trade_nb(state: Any, i: int, ts: int) -> int:
    """Run a trade print; return wake bits.

    A trade prints: resting orders match against it, the last price moves; LAST-mark
    instruments then run the liquidation check. Returns wake bits.
    """
    s = state.positions[i]
    row = s["c_trade"]
    t = state.trades[row]
    s["c_trade"] = row + 1
    wake = 0 | WakeReason.TRADE
    s["last_price"] = t["price"]
    s["last_trade_ns"] = ts
    if (
        s["fill_on_trades"]
        and state.account[0]["n_active"] > 0
        and process_point_nb(state, i, ts, t["price"], t["qty_base"], False, ts)
    ):
        wake |= WakeReason.FILL
    p = state.params[i]
    if p["mark_price_method"] == MarkPriceMethod.LAST:
        s["mark_price"] = t["price"]
        if s["contracts"] != 0.0 or s["margin_call_active"]:
            set_trigger_nb(s, PriceStream.TRADES, PathPoint.TICK, ts)
            # the fast exit's band checked here, without the call (it runs at every trade)
            if not (
                s["margin_mode"] == MarginMode.ISOLATED
                and not s["margin_call_active"]
                and in_safe_band_nb(s, p)
            ):
                wake |= liquidation_after_mark_nb(state, i, ts)
    state.account[0]["wake_ref"] = row
    return wake


@njit(cache=True)
def handle_index_nb(state: Any, i: int, ts: int) -> int:
    """Run an index price; return wake bits.

    An index price arrives (a point, or a point of an index candle's path): the mark is
    recomputed, then the liquidation check runs.
    """
    s = state.positions[i]
    c = s["c_index"]
    price, point, candle_ns, swap = candle_point_nb(
        state.index,
        c,
        s["e_index"],
        ts,
        s["index_interval_ns"],
        s["index_swap"],
        np.sign(s["contracts"]),
        state.account[0]["bar_path"] == 1,
    )
    s["index_swap"] = swap
    s["index_price"] = price
    s["c_index"] = c + 1
    p = state.params[i]
    alpha = ema_alpha_nb(p["mark_ema_span"])
    if update_mark_from_index_nb(s, p, state.funding, ts, alpha) and (
        s["contracts"] != 0.0 or s["margin_call_active"]
    ):
        set_trigger_nb(s, PriceStream.INDEX, point, candle_ns)
        return liquidation_after_mark_nb(state, i, ts)
    return 0


@njit(cache=True)
def handle_mark_nb(state: Any, i: int, ts: int) -> int:
    """Run a historical mark price; return wake bits.

    A historical mark arrives (a point, or a point of a mark candle's path): replayed as
    the mark under the HISTORICAL method, then the liquidation check.
    """
    s = state.positions[i]
    c = s["c_mark"]
    price, point, candle_ns, swap = candle_point_nb(
        state.mark,
        c,
        s["e_mark"],
        ts,
        s["mark_interval_ns"],
        s["mark_swap"],
        np.sign(s["contracts"]),
        state.account[0]["bar_path"] == 1,
    )
    s["mark_swap"] = swap
    s["c_mark"] = c + 1
    if state.params[i]["mark_price_method"] != MarkPriceMethod.HISTORICAL:
        return 0
    s["mark_price"] = price
    if s["contracts"] == 0.0 and not s["margin_call_active"]:
        return 0
    set_trigger_nb(s, PriceStream.MARK, point, candle_ns)
    return liquidation_after_mark_nb(state, i, ts)


@njit(cache=True)
def handle_deleverage_nb(state: Any, i: int, ts: int) -> int:
    """Run an ADL or clawback scenario event; return wake bits.

    An ADL or clawback scenario event: the strategy's position is hit per the venue's rule
    (:mod:`backtester.engine.deleverage_nb`); an ADL close cancels the instrument's resting
    orders first, as BitMEX does. Returns FILL | LIQUIDATION wake bits when applied.
    """
    s = state.positions[i]
    event = state.deleverage[s["c_deleverage"]]
    s["c_deleverage"] += 1
    n_fills = state.account[0]["n_fills"]
    if apply_deleverage_event_nb(state, i, ts, event) == 0:
        return 0
    if state.account[0]["n_fills"] > n_fills:
        cancel_instrument_orders_nb(state, i, ts)
    return WakeReason.ADL


@njit(cache=True)
def handle_funding_nb(state: Any, i: int, ts: int) -> int:
    """Run a funding timestamp; return wake bits.

    A funding timestamp: an open position pays/receives at the mark (FUNDING_PAYMENT).
    """
    s = state.positions[i]
    f = state.funding[s["c_funding"]]
    s["c_funding"] += 1
    s["funding_rate"] = f["funding_rate"]
    if apply_funding_nb(state, i, ts, f["funding_rate"], f["source"]):
        return WakeReason.FUNDING
    return 0


@njit(cache=True, inline="always")
def has_headroom_nb(state: Any, capacities: npt.NDArray[np.int64]) -> bool:
    """Whether the record buffers (and, on the jit path, the order rows) have room for one event.

    One event writes at most HEADROOM_PER_ORDER records per active order and two per
    instrument; a jitted callback may place ORDER_HEADROOM orders.
    """
    acc = state.account[0]
    need = HEADROOM_PER_ORDER * (acc["n_active"] + 2 * len(state.positions)) + 8
    if min_free_nb(state.account, capacities) < need:
        return False
    return not (acc["callback_mask"] != 0 and len(state.orders) - acc["n_orders"] < ORDER_HEADROOM)


@njit(cache=True, inline="always")
def begin_event_nb(state: Any, i: int, kind: int, ts: int) -> int:
    """Run what is due before the event of ``kind`` at ``ts``; return its wake bits.

    In order: the equity row of the previous instant (once all its events ran), the clock,
    the dated tier tables, instrument ``i``'s daily settlement, the period's clawback of what
    the insurance fund could not cover (WakeReason.ADL when one was taken).
    """
    acc = state.account[0]
    if acc["equity_pending"] and ts > acc["ts_ns"]:
        record_equity_nb(state, acc["ts_ns"])
        acc["equity_pending"] = False
    acc["ts_ns"] = ts
    if ts >= acc["next_tier_switch_ns"]:
        switch_tiers_nb(state, ts)
    if state.params[i]["daily_settlement"] and settlement_due_nb(
        ts, kind, state.positions[i]["next_settlement_ns"]
    ):
        settle_due_nb(state, i, ts)
    if (
        acc["clawback_period_ns"] > 0
        and ts >= acc["next_clawback_ns"]
        and apply_period_clawback_nb(state, ts)
    ):
        return WakeReason.ADL
    return 0


@njit(cache=True, inline="always")
def handle_event_nb(state: Any, i: int, kind: int, ts: int) -> int:
    """Run the event of ``kind`` of instrument ``i`` at ``ts``; return its wake bits.

    A dispatcher over the step functions ``handle_<kind>_nb``.
    """
    if kind == EventKind.TRADE:
        return handle_trade_nb(state, i, ts)
    if kind == EventKind.BAR_PATH:
        return handle_bar_path_nb(state, i, ts)
    if kind == EventKind.BAR:
        return handle_bar_nb(state, i, ts)
    if kind == EventKind.BAR_OPEN:
        return handle_bar_open_nb(state, i, ts)
    if kind == EventKind.INDEX:
        return handle_index_nb(state, i, ts)
    if kind == EventKind.MARK:
        return handle_mark_nb(state, i, ts)
    if kind == EventKind.DELEVERAGE:
        return handle_deleverage_nb(state, i, ts)
    return handle_funding_nb(state, i, ts)


# Not cached (nor ``accept_after_callbacks_nb``): the jit path specialises them for each
# strategy's callbacks, see ``run_until_jit_nb``.
@njit
def callbacks_nb(  # noqa: PLR0913  # one parameter per jitted callback (callbacks.py)
    state: Any,
    wake: int,
    i: int,
    on_bar: Any,
    on_trade: Any,
    on_fill: Any,
    on_funding: Any,
    on_liquidation: Any,
    on_margin_call: Any,
    on_adl: Any,
    user_state: Any,
) -> None:
    """Run the jitted strategy's callbacks for the event just completed.

    Run the jitted strategy's callbacks for the event just completed, in the Python
    path's order: liquidations, ADL/clawback records, funding payments, fills, margin call,
    then the bar or trade.
    """
    acc = state.account[0]
    mask = acc["callback_mask"]
    if mask & WakeReason.LIQUIDATION:
        for k in range(acc["n_liquidations_seen"], acc["n_liquidations"]):
            on_liquidation(state, user_state, k)
    acc["n_liquidations_seen"] = acc["n_liquidations"]
    if mask & WakeReason.ADL:
        for k in range(acc["n_adl_seen"], acc["n_adl"]):
            on_adl(state, user_state, k)
    acc["n_adl_seen"] = acc["n_adl"]
    if mask & WakeReason.FUNDING:
        for k in range(acc["n_funding_seen"], acc["n_funding_payments"]):
            on_funding(state, user_state, k)
    acc["n_funding_seen"] = acc["n_funding_payments"]
    if mask & WakeReason.FILL:
        for k in range(acc["n_fills_seen"], acc["n_fills"]):
            if state.fills[k]["order_id"] >= 0:
                on_fill(state, user_state, k)
    acc["n_fills_seen"] = acc["n_fills"]
    if wake & mask & WakeReason.MARGIN_CALL:
        on_margin_call(state, user_state, i)
    if wake & mask & WakeReason.BAR:
        on_bar(state, user_state, i, acc["wake_ref"])
    if wake & mask & WakeReason.TRADE:
        on_trade(state, user_state, i, acc["wake_ref"])


@njit
def accept_after_callbacks_nb(state: Any, on_order_rejected: Any, user_state: Any, ts: int) -> None:
    """Validate the orders a jitted callback placed; report rejections to the strategy."""
    acc = state.account[0]
    first = acc["n_orders_seen"]
    rejected = accept_orders_nb(state, ts)
    if rejected > 0 and acc["callback_mask"] & _ORDER_UPDATE:
        for r in range(first, acc["n_orders_seen"]):
            if state.orders[r]["status"] == OrderStatus.REJECTED:
                on_order_rejected(state, user_state, r)


@njit(cache=True)
def run_until_nb(  # noqa: PLR0913  # kernel entry point: one parameter per jitted callback
    state: Any,
    capacities: npt.NDArray[np.int64],
    on_bar: Any,
    on_trade: Any,
    on_fill: Any,
    on_funding: Any,
    on_liquidation: Any,
    on_margin_call: Any,
    on_adl: Any,
    on_order_rejected: Any,
    user_state: Any,
) -> int:
    """Replay events until a subscribed wake-up, the end of data or a full buffer.

    ``state`` is an :class:`~backtester.engine.state_nb.EngineState`. Returns a
    :class:`~backtester.enums.Status`. On WAKE, ``account[0]['wake_reason']`` holds the
    WakeReason bits of the event just completed and ``wake_instrument``/``wake_ref`` its
    instrument and stream row. On BUFFER_FULL no event was consumed: grow and call again.

    Jit path: the ``on_*`` arguments are jitted callbacks ``(state, user_state, ...)``; those
    whose WakeReason bit is in ``account[0]['callback_mask']`` run inside the loop after each
    event, and orders they place are validated before the next event. The Python path passes
    no-op callbacks and a zero mask (its callbacks run at WAKE, in the driver).
    Mutates: every state and record array.
    """
    acc = state.account[0]
    while True:
        if not has_headroom_nb(state, capacities):
            return BUFFER_FULL
        i, kind, ts = next_event_nb(state)
        if i < 0:
            return END_OF_DATA
        # the jit path's quiet trades run in a tight loop (engine/trade_path_nb.py)
        if (
            on_bar is not None
            and kind == EventKind.TRADE
            and quiet_run_nb(state, i, on_trade, user_state)
        ):
            if acc["n_orders"] > acc["n_orders_seen"]:
                accept_after_callbacks_nb(state, on_order_rejected, user_state, acc["ts_ns"])
            continue
        wake = begin_event_nb(state, i, kind, ts) | handle_event_nb(state, i, kind, ts)
        if acc["equity_interval_ns"] > 0 and ts >= acc["next_equity_ns"]:
            # the row is written when every event of ``ts`` has run (equity_pending)
            acc["equity_pending"] = True
            step = acc["equity_interval_ns"]
            acc["next_equity_ns"] = (ts // step + 1) * step
        # ``on_bar is None`` (the Python path) is pruned at compile time: no callback code
        if on_bar is not None and wake & acc["callback_mask"]:
            callbacks_nb(
                state,
                wake,
                i,
                on_bar,
                on_trade,
                on_fill,
                on_funding,
                on_liquidation,
                on_margin_call,
                on_adl,
                user_state,
            )
            if acc["n_orders"] > acc["n_orders_seen"]:
                accept_after_callbacks_nb(state, on_order_rejected, user_state, ts)
            # only a bar-path segment sets it, and its FILL wake runs the callbacks at once:
            # a trade tick never reads the position row here
            if (
                kind == EventKind.BAR_PATH
                and state.positions[i]["segment_fill_price"] != 0.0
                and resume_segment_nb(state, i)
            ):
                callbacks_nb(
                    state, _FILL, i, on_bar, on_trade, on_fill, on_funding,
                    on_liquidation, on_margin_call, on_adl, user_state,
                )  # fmt: skip
                if acc["n_orders"] > acc["n_orders_seen"]:
                    accept_after_callbacks_nb(state, on_order_rejected, user_state, ts)
        if wake & acc["wake_mask"]:
            acc["wake_reason"] = wake
            acc["wake_instrument"] = i
            return WAKE


# Inlined, not cached: it calls the strategy's on_trade (see ``callbacks_nb``).
@njit(inline="always")
def quiet_run_nb(state: Any, i: int, on_trade: Any, user_state: Any) -> bool:
    """Replay instrument ``i``'s quiet trades from its next one; True when some were replayed.

    In the tight loop of :func:`~backtester.engine.trade_path_nb.quiet_trades_nb`. The run
    ends before the next event of any other stream (found by :func:`next_event_nb` with
    ``i``'s trades hidden) or account work (:func:`account_bound_ns_nb`).
    """
    low, high = quiet_band_nb(state, i)
    if not low < high:
        return False
    s = state.positions[i]
    end = s["e_trade"]
    s["e_trade"] = s["c_trade"]
    _, _, other_ns = next_event_nb(state)
    s["e_trade"] = end
    bound_ns = min(other_ns, account_bound_ns_nb(state, i))
    return quiet_trades_nb(state, i, low, high, bound_ns, on_trade, user_state) > 0


# The jit path's entry: ``run_until_nb`` compiled per strategy and never cached. A cached
# specialisation would be keyed on the callbacks' dispatcher types, which refer to objects of
# the process that compiled them: a later process reading the cache index can fail on such an
# entry ("underlying object has vanished"), and an entry can outlive an edit of the callback.
run_until_jit_nb = njit(run_until_nb.py_func)


@njit(cache=True)
def no_callback_nb(state: Any, user_state: Any, i: int, ref: int = 0) -> None:
    """Do nothing: the callback of an event the strategy does not handle (masked out).

    The callback of an event the strategy does not handle (never called: masked out).
    """


@njit(cache=True, inline="always")
def min_free_nb(account: npt.NDArray[np.void], capacities: npt.NDArray[np.int64]) -> int:
    """Return the smallest free space over the record buffers.

    Smallest free space over the record buffers (fills, funding, liquidations, settlements,
    ledger, equity, adl).
    """
    acc = account[0]
    free: int = capacities[0] - acc["n_fills"]
    free = min(free, capacities[1] - acc["n_funding_payments"])
    free = min(free, capacities[2] - acc["n_liquidations"])
    free = min(free, capacities[3] - acc["n_settlements"])
    free = min(free, capacities[4] - acc["n_ledger"])
    free = min(free, capacities[5] - acc["n_equity"])
    free = min(free, capacities[6] - acc["n_adl"])
    return free
