"""The replay loop: a k-way merge over the market streams that runs until the next wake-up.

Streams of every instrument (index, mark, funding, trades, bars at their **close** time) are
merged inside the loop by a linear scan over the stream heads (5 per instrument; cheaper than a
heap at these sizes and needs no merged copy of the data). Ties at one timestamp are broken by
:class:`~backtester.enums.EventKind` priority — index → mark → funding → trade → bar — then by
instrument. A mark update is followed by the liquidation check; fills of resting orders happen
on trades/bars; the strategy callback runs after the whole event, in Python, when the loop
returns ``Status.WAKE`` (STYLE.md C7). ``run_until_nb`` is a small dispatcher over
``handle_<kind>_nb`` functions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.engine.account_nb import (
    M_MM,
    M_RATIO,
    M_UPL,
    N_METRICS,
    apply_funding_nb,
    apply_settlement_nb,
    check_liquidation_nb,
    cross_metrics_nb,
    isolated_buffer_nb,
)
from backtester.engine.orders_nb import process_point_nb, process_segment_nb
from backtester.enums import (
    EventKind,
    MarginMode,
    MarkPriceMethod,
    Status,
    WakeReason,
)
from backtester.swap.mark_nb import (
    ema_alpha_nb,
    ema_update_nb,
    funding_basis_mark_nb,
    median_mark_nb,
)
from backtester.swap.settlement_nb import next_settlement_ns_nb

_NO_EVENT = np.iinfo(np.int64).max
# Status values as plain ints: returning an IntEnum member from a jitted function boxes it
# through pickle on every call (µs per crossing); the driver compares the ints with Status.
_BUFFER_FULL = int(Status.BUFFER_FULL)
_END_OF_DATA = int(Status.END_OF_DATA)
_WAKE = int(Status.WAKE)
HEADROOM_PER_ORDER = 6  # records one event may write per active order / instrument


@njit(cache=True)
def next_event_nb(positions, trades, bars, index, mark, funding) -> tuple:
    """(instrument, EventKind, ts_ns) of the next event, or (-1, -1, max) at the end."""
    best_ts = _NO_EVENT
    best_kind = 99
    best_i = -1
    for i in range(len(positions)):
        s = positions[i]
        for kind in range(5):
            if kind == EventKind.INDEX:
                if s["c_index"] >= s["e_index"]:
                    continue
                t = index[s["c_index"]]["ts_ns"]
            elif kind == EventKind.MARK:
                if s["c_mark"] >= s["e_mark"]:
                    continue
                t = mark[s["c_mark"]]["ts_ns"]
            elif kind == EventKind.FUNDING:
                if s["c_funding"] >= s["e_funding"]:
                    continue
                t = funding[s["c_funding"]]["ts_ns"]
            elif kind == EventKind.TRADE:
                if s["c_trade"] >= s["e_trade"]:
                    continue
                t = trades[s["c_trade"]]["ts_ns"]
            else:
                if s["c_bar"] >= s["e_bar"]:
                    continue
                t = bars[s["c_bar"]]["ts_ns"] + s["bar_interval_ns"]
            if t < best_ts or (t == best_ts and kind < best_kind):
                best_ts = t
                best_kind = kind
                best_i = i
    return best_i, best_kind, best_ts


@njit(cache=True)
def liquidation_after_mark_nb(
    account,
    positions,
    params,
    tiers,
    orders,
    active,
    fills,
    liquidations,
    ledger,
    i,
    ts,
    m,
    scratch,
) -> int:
    """Run the liquidation check after instrument ``i``'s mark changed; returns wake bits."""
    return check_liquidation_nb(
        account,
        positions,
        params,
        tiers,
        orders,
        active,
        fills,
        liquidations,
        ledger,
        i,
        ts,
        m,
        scratch,
    )


@njit(cache=True)
def update_mark_from_index_nb(positions, params, funding, i, ts) -> bool:
    """Recompute the mark after an index update per the profile's method; True if it changed."""
    s = positions[i]
    p = params[i]
    method = p["mark_price_method"]
    index = s["index_price"]
    if method == MarkPriceMethod.INDEX_EMA_BASIS or method == MarkPriceMethod.BINANCE_MEDIAN:
        if np.isfinite(s["last_price"]):
            step = p["mark_sample_ns"]
            if step <= 0 or ts >= s["next_mark_sample_ns"]:
                s["ema_basis"] = ema_update_nb(
                    s["ema_basis"],
                    s["last_price"] - index,
                    ema_alpha_nb(p["mark_ema_span"]),
                    s["ema_initialised"],
                )
                s["ema_initialised"] = True
                if step > 0:
                    s["next_mark_sample_ns"] = (ts // step + 1) * step
        basis_mark = index + s["ema_basis"] if s["ema_initialised"] else index
        if method == MarkPriceMethod.INDEX_EMA_BASIS or not np.isfinite(s["last_price"]):
            s["mark_price"] = basis_mark
            return True
        s["mark_price"] = median_mark_nb(
            funding_mark_nb(positions, params, funding, i, ts), basis_mark, s["last_price"]
        )
        return True
    if method == MarkPriceMethod.FUNDING_BASIS:
        s["mark_price"] = funding_mark_nb(positions, params, funding, i, ts)
        return True
    return False


@njit(cache=True)
def funding_mark_nb(positions, params, funding, i, ts) -> float:
    """index · (1 + rate · time to next funding / interval) with the next known rate."""
    s = positions[i]
    p = params[i]
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
def record_equity_nb(account, positions, params, tiers, equity, ts, m, scratch) -> None:
    """Append one EQUITY row: balance, equity at mark, UPL, maintenance, margin ratio."""
    acc = account[0]
    upl = 0.0
    mm = 0.0
    ratio = np.nan
    for i in range(len(positions)):
        if positions[i]["margin_mode"] == MarginMode.ISOLATED:
            isolated_buffer_nb(positions, params, tiers, i, m)
            upl += m[M_UPL]
            mm += m[M_MM]
            if positions[i]["contracts"] != 0.0 and np.isnan(ratio):
                ratio = m[M_RATIO]
    first = cross_metrics_nb(account, positions, params, tiers, m, scratch)
    if first >= 0:
        upl += m[M_UPL]
        mm += m[M_MM]
        if np.isnan(ratio):
            ratio = m[M_RATIO]
    n = acc["n_equity"]
    r = equity[n]
    r["ts_ns"] = ts
    r["balance_settle"] = acc["balance_settle"]
    r["equity_settle"] = acc["balance_settle"] + upl
    r["unrealised_pnl_settle"] = upl
    r["maintenance_margin_settle"] = mm
    r["margin_ratio"] = ratio
    r["position_contracts"] = positions[0]["contracts"]
    r["mark_price"] = positions[0]["mark_price"]
    r["last_price"] = positions[0]["last_price"]
    acc["n_equity"] = n + 1


@njit(cache=True)
def bar_path_nb(bar, position_sign, nearest_first) -> tuple:
    """The two intrabar extremes in visiting order: conservative = adverse extreme first."""
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
def handle_bar_nb(
    account,
    positions,
    params,
    tiers,
    orders,
    work,
    active,
    fills,
    liquidations,
    ledger,
    bars,
    slippage,
    i,
    ts,
    m,
    scratch,
) -> int:
    """A bar closes: its path open → extremes → close fills resting orders (when the instrument
    fills on bars), the last price becomes the close, and under the LAST mark method the mark
    too (then the liquidation check). Returns wake bits."""
    s = positions[i]
    row = s["c_bar"]
    bar = bars[row]
    s["c_bar"] = row + 1
    wake = 0 | WakeReason.BAR
    if not s["fill_on_trades"]:
        lo = bar["low"]
        hi = bar["high"]
        filled = process_point_nb(
            account,
            positions,
            params,
            orders,
            work,
            active,
            fills,
            ledger,
            i,
            ts,
            bar["open"],
            0.0,
            True,
            slippage,
            bar["ts_ns"],
        )
        first, second = bar_path_nb(bar, np.sign(s["contracts"]), account[0]["bar_path"] == 1)
        filled |= process_segment_nb(
            account,
            positions,
            params,
            orders,
            work,
            active,
            fills,
            ledger,
            i,
            ts,
            bar["open"],
            first,
            lo,
            hi,
            slippage,
            bar["ts_ns"],
        )
        filled |= process_segment_nb(
            account,
            positions,
            params,
            orders,
            work,
            active,
            fills,
            ledger,
            i,
            ts,
            first,
            second,
            lo,
            hi,
            slippage,
            bar["ts_ns"],
        )
        filled |= process_segment_nb(
            account,
            positions,
            params,
            orders,
            work,
            active,
            fills,
            ledger,
            i,
            ts,
            second,
            bar["close"],
            lo,
            hi,
            slippage,
            bar["ts_ns"],
        )
        if filled:
            wake |= WakeReason.FILL
        s["last_price"] = bar["close"]
        if params[i]["mark_price_method"] == MarkPriceMethod.LAST:
            s["mark_price"] = bar["close"]
            wake |= liquidation_after_mark_nb(
                account,
                positions,
                params,
                tiers,
                orders,
                active,
                fills,
                liquidations,
                ledger,
                i,
                ts,
                m,
                scratch,
            )
    account[0]["wake_ref"] = row
    return wake


@njit(cache=True)
def handle_trade_nb(
    account,
    positions,
    params,
    tiers,
    orders,
    work,
    active,
    fills,
    liquidations,
    ledger,
    trades,
    slippage,
    i,
    ts,
    m,
    scratch,
) -> int:
    """A trade prints: resting orders match against it, the last price moves; LAST-mark
    instruments then run the liquidation check. Returns wake bits."""
    s = positions[i]
    row = s["c_trade"]
    t = trades[row]
    s["c_trade"] = row + 1
    wake = 0 | WakeReason.TRADE
    s["last_price"] = t["price"]
    if (
        s["fill_on_trades"]
        and account[0]["n_active"] > 0
        and process_point_nb(
            account,
            positions,
            params,
            orders,
            work,
            active,
            fills,
            ledger,
            i,
            ts,
            t["price"],
            t["qty_base"],
            False,
            slippage,
            ts,
        )
    ):
        wake |= WakeReason.FILL
    if params[i]["mark_price_method"] == MarkPriceMethod.LAST:
        s["mark_price"] = t["price"]
        if s["contracts"] != 0.0:
            wake |= liquidation_after_mark_nb(
                account,
                positions,
                params,
                tiers,
                orders,
                active,
                fills,
                liquidations,
                ledger,
                i,
                ts,
                m,
                scratch,
            )
    account[0]["wake_ref"] = row
    return wake


@njit(cache=True)
def handle_index_nb(
    account,
    positions,
    params,
    tiers,
    orders,
    active,
    fills,
    liquidations,
    ledger,
    index,
    funding,
    i,
    ts,
    m,
    scratch,
) -> int:
    """An index price arrives: the mark is recomputed, then the liquidation check runs."""
    s = positions[i]
    s["index_price"] = index[s["c_index"]]["price"]
    s["c_index"] += 1
    if update_mark_from_index_nb(positions, params, funding, i, ts) and s["contracts"] != 0.0:
        return liquidation_after_mark_nb(
            account,
            positions,
            params,
            tiers,
            orders,
            active,
            fills,
            liquidations,
            ledger,
            i,
            ts,
            m,
            scratch,
        )
    return 0


@njit(cache=True)
def handle_mark_nb(
    account,
    positions,
    params,
    tiers,
    orders,
    active,
    fills,
    liquidations,
    ledger,
    mark,
    i,
    ts,
    m,
    scratch,
) -> int:
    """A historical mark arrives: replayed as the mark under the HISTORICAL method."""
    s = positions[i]
    price = mark[s["c_mark"]]["price"]
    s["c_mark"] += 1
    if params[i]["mark_price_method"] != MarkPriceMethod.HISTORICAL:
        return 0
    s["mark_price"] = price
    if s["contracts"] == 0.0:
        return 0
    return liquidation_after_mark_nb(
        account,
        positions,
        params,
        tiers,
        orders,
        active,
        fills,
        liquidations,
        ledger,
        i,
        ts,
        m,
        scratch,
    )


@njit(cache=True)
def handle_funding_nb(account, positions, params, funding_payments, ledger, funding, i, ts):
    """A funding timestamp: an open position pays/receives at the mark (FUNDING_PAYMENT)."""
    s = positions[i]
    f = funding[s["c_funding"]]
    s["c_funding"] += 1
    s["funding_rate"] = f["funding_rate"]
    if apply_funding_nb(
        account, positions, params, funding_payments, ledger, i, ts, f["funding_rate"], f["source"]
    ):
        return WakeReason.FUNDING
    return 0


@njit(cache=True)
def run_until_nb(
    trades,
    bars,
    index,
    mark,
    funding,
    params,
    tiers,
    slippage,
    account,
    positions,
    orders,
    work,
    active,
    fills,
    funding_payments,
    liquidations,
    settlements,
    ledger,
    equity,
    capacities,
) -> int:
    """Replay events until a subscribed wake-up, the end of data or a full buffer.

    Returns a :class:`~backtester.enums.Status`. On WAKE, ``account[0]['wake_reason']`` holds
    the WakeReason bits of the event just completed and ``wake_instrument``/``wake_ref`` its
    instrument and stream row. On BUFFER_FULL no event was consumed: grow and call again.
    Mutates: every state and record array passed.
    """
    acc = account[0]
    m = np.zeros(N_METRICS)
    scratch = np.zeros(N_METRICS)
    n_inst = len(positions)
    while True:
        need = HEADROOM_PER_ORDER * (acc["n_active"] + 2 * n_inst) + 8
        if min_free_nb(account, capacities) < need:
            return _BUFFER_FULL
        i, kind, ts = next_event_nb(positions, trades, bars, index, mark, funding)
        if i < 0:
            return _END_OF_DATA
        acc["ts_ns"] = ts
        s = positions[i]
        p = params[i]
        if p["daily_settlement"] and ts >= s["next_settlement_ns"]:
            apply_settlement_nb(account, positions, params, settlements, ledger, i, ts)
            s["next_settlement_ns"] = next_settlement_ns_nb(ts, p["settlement_offset_ns"])
        if kind == EventKind.INDEX:
            wake = handle_index_nb(
                account,
                positions,
                params,
                tiers,
                orders,
                active,
                fills,
                liquidations,
                ledger,
                index,
                funding,
                i,
                ts,
                m,
                scratch,
            )
        elif kind == EventKind.MARK:
            wake = handle_mark_nb(
                account,
                positions,
                params,
                tiers,
                orders,
                active,
                fills,
                liquidations,
                ledger,
                mark,
                i,
                ts,
                m,
                scratch,
            )
        elif kind == EventKind.FUNDING:
            wake = handle_funding_nb(
                account, positions, params, funding_payments, ledger, funding, i, ts
            )
        elif kind == EventKind.TRADE:
            wake = handle_trade_nb(
                account,
                positions,
                params,
                tiers,
                orders,
                work,
                active,
                fills,
                liquidations,
                ledger,
                trades,
                slippage,
                i,
                ts,
                m,
                scratch,
            )
        else:
            wake = handle_bar_nb(
                account,
                positions,
                params,
                tiers,
                orders,
                work,
                active,
                fills,
                liquidations,
                ledger,
                bars,
                slippage,
                i,
                ts,
                m,
                scratch,
            )
        if acc["equity_interval_ns"] > 0 and ts >= acc["next_equity_ns"]:
            record_equity_nb(account, positions, params, tiers, equity, ts, m, scratch)
            step = acc["equity_interval_ns"]
            acc["next_equity_ns"] = (ts // step + 1) * step
        if wake & acc["wake_mask"]:
            acc["wake_reason"] = wake
            acc["wake_instrument"] = i
            return _WAKE


@njit(cache=True)
def min_free_nb(account, capacities) -> int:
    """Smallest free space over the record buffers (fills, funding, liquidations, settlements,
    ledger, equity)."""
    acc = account[0]
    free = capacities[0] - acc["n_fills"]
    free = min(free, capacities[1] - acc["n_funding_payments"])
    free = min(free, capacities[2] - acc["n_liquidations"])
    free = min(free, capacities[3] - acc["n_settlements"])
    free = min(free, capacities[4] - acc["n_ledger"])
    free = min(free, capacities[5] - acc["n_equity"])
    return free
