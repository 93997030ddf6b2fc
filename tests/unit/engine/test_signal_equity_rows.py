"""Equity rows of quiet bars written by the signal kernel equal the general loop's (issue 15).

With an equity row due at every bar (the default: one row per bar interval) or every few
bars, the signal kernel (:mod:`backtester.engine.signals_nb`) writes the row of a quiet bar's
open instant inside its folded path and its loop of quiet bars, from the cached tier row,
instead of replaying the bar event by event. Each row must be the general loop's
(``replay="events"``, ``record_equity_nb``) byte for byte: a failure names the first
differing row and its differing fields. The rows are also checked against what they must hold
by the engine's documented rules, derived here from the bars and the fills: one row per
sampling instant, the last price of the bar open at that instant, the position summed from
the fills booked up to it, equity = balance + unrealised PnL, and no margin ratio while flat.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester.enums import Side
from tests.unit.engine.test_signal_kernel import MINUTE_NS, T0, both, synthetic

N_BARS = 2_400
SECOND_NS = 1_000_000_000

INTERVALS = [
    pytest.param(None, id="every bar (default)"),
    pytest.param(MINUTE_NS, id="1 min"),
    pytest.param(3 * MINUTE_NS, id="3 min"),
    pytest.param(7 * MINUTE_NS + 13 * SECOND_NS, id="7 min 13 s"),
    pytest.param(40 * SECOND_NS, id="40 s (at the extremes)"),
]
PROFILES = [
    # (contract, data symbol, initial balance, contracts)
    ("okx:BTC-USDT-SWAP", "BTC-USDT-SWAP", 10_000.0, 10.0),
    ("okx:BTC-USD-SWAP", "BTC-USD-SWAP", 1.0, 20.0),
]


def sparse_signals(n: int) -> dict[str, np.ndarray]:
    """Long entries every 300 bars, short entries 150 bars later, and long exits 100 bars
    after a long entry: long, flat, short stretches of quiet bars in between."""
    bar = np.arange(n)
    long_entries = bar % 300 == 20
    long_exits = bar % 300 == 120
    short_entries = bar % 300 == 170
    return {"entries": long_entries, "exits": long_exits, "short_entries": short_entries}


def expected_row_times(interval: int, data) -> np.ndarray:
    """The instants of the sampled rows: the first event (the first bar's open), then the
    first event at or after each later multiple of the interval, and the end of the data.
    The events: each bar ``[t0, t0 + Δ)``'s open ``t0`` and extremes ``t0 + Δ//3``,
    ``t0 + 2Δ//3``, the last bar's close, and the index, mark and funding points."""
    starts = data.bars["ts_ns"]
    end = starts[-1] + MINUTE_NS
    streams = [data.index, data.mark, data.funding]
    events = np.unique(
        np.r_[
            starts, starts + MINUTE_NS // 3, starts + 2 * MINUTE_NS // 3, end,
            *[s["ts_ns"] for s in streams if s is not None],
        ]
    )  # fmt: skip
    due = np.arange(T0 // interval * interval, events[-1] + 1, interval)
    return np.unique(np.r_[events[np.searchsorted(events, due)], end])


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("method", ["profile", "last", "historical"])
@pytest.mark.parametrize(("contract", "symbol", "balance", "size"), PROFILES)
def test_equity_rows_of_quiet_bars_equal_the_general_loop(
    interval, method, contract, symbol, balance, size
):
    data = synthetic(N_BARS, seed=91, symbol=symbol, mark=method == "historical", vol=8e-4)
    signals = sparse_signals(N_BARS)
    options = {} if interval is None else {"equity_interval_ns": interval}
    result = both(
        f"equity {interval} {method} {contract}", signals.pop("entries"), signals.pop("exits"),
        data, contract, initial_balance=balance, contracts=size, leverage=5.0,
        mark_price_method=method, **signals, **options,
    )  # fmt: skip
    rows = result.records["equity"]
    fills = result.records["fills"]
    assert len(fills) > 10

    # one row per sampling instant, the last one at the end of the data
    times = expected_row_times(interval or MINUTE_NS, data)
    assert rows["ts_ns"].tolist() == times.tolist()

    # the last price at a bar's open instant is that bar's open; at an extreme instant
    # (rows of 7 min 13 s and 40 s) one of the bar's extremes, or its open at a mark
    # point's instant before its first extreme
    bars = data.bars
    row = (rows["ts_ns"][:-1] - T0) // MINUTE_NS
    at_open = (rows["ts_ns"][:-1] - T0) % MINUTE_NS == 0
    assert at_open.sum() > 0
    np.testing.assert_array_equal(rows["last_price"][:-1][at_open], bars["open"][row[at_open]])
    inside = ~at_open
    last = rows["last_price"][:-1][inside]
    assert np.all(
        (last == bars["high"][row[inside]])
        | (last == bars["low"][row[inside]])
        | (last == bars["open"][row[inside]])
    )

    # the position: the fills booked up to the row's instant, summed
    signed = np.where(fills["side"] == Side.BUY, 1.0, -1.0) * fills["qty_contracts"]
    booked = np.searchsorted(fills["ts_ns"], rows["ts_ns"], side="right")
    position = np.r_[0.0, np.cumsum(signed)][booked]
    np.testing.assert_allclose(rows["position_contracts"], position, rtol=0, atol=1e-9)
    flat = rows["position_contracts"] == 0.0
    assert flat.sum() > 0
    assert (~flat).sum() > 0

    # equity = balance + UPL (the same sum, so exactly); flat: no UPL, maintenance or ratio,
    # written as +0.0
    np.testing.assert_array_equal(
        rows["equity_settle"], rows["balance_settle"] + rows["unrealised_pnl_settle"]
    )
    assert np.all(np.isnan(rows["margin_ratio"][flat]))
    assert not np.any(np.signbit(rows["unrealised_pnl_settle"][flat]))
    assert not np.any(np.signbit(rows["maintenance_margin_settle"][flat]))
    assert np.all(rows["unrealised_pnl_settle"][flat] == 0.0)
    assert np.all(rows["maintenance_margin_settle"][~flat] > 0.0)
    assert np.all(np.isfinite(rows["margin_ratio"][~flat]))
