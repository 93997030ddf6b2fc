"""summary_metrics: the metrics a sweep ranks by, from the record arrays without pandas, equal
to compute_metrics (the pandas path, itself tested against empyrical)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtester.jobs import summarise_result
from backtester.report.metrics import compute_metrics, regular_grid, summary_metrics

HOUR_NS = 3_600_000_000_000


def _same(ours: dict, theirs: dict) -> None:
    for key, expected in theirs.items():
        got = ours[key]
        if isinstance(expected, float) and math.isnan(expected):
            assert math.isnan(got), key
        elif isinstance(expected, float):
            # fees: one exact sum over the rows vs a sum of three exact per-liquidity sums
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-18), key
        else:
            assert got == expected, key


def _scalars(metrics: dict) -> dict:
    return {
        k: (v.item() if isinstance(v, np.generic) else v)
        for k, v in metrics.items()
        if isinstance(v, int | float | bool | str | np.generic)
    }


def test_summary_equals_compute_metrics_on_an_inverse_run(hand_result) -> None:
    theirs = compute_metrics(hand_result)
    assert "sharpe_usd" in theirs  # the USD block of an inverse contract is covered too
    assert theirs["liquidations"] == 1
    ours = summary_metrics(hand_result)
    expected = {k: v for k, v in theirs.items() if k not in ("start", "end", "frequency")}
    assert set(ours) == set(expected)
    _same(ours, expected)
    # the sweep's row: same keys in the same order as the pandas path gave
    row = summarise_result(hand_result)
    assert list(row) == [*_scalars(theirs), "fill_count"]
    _same(row, _scalars(theirs))


def test_summary_equals_compute_metrics_with_missing_days(make_hand_result) -> None:
    """Days without an equity sample are carried forward, as pandas' resample + ffill."""
    result = make_hand_result(hours=24 * 12)
    equity = result.records["equity"]
    day = (equity["ts_ns"] - equity["ts_ns"][0]) // (24 * HOUR_NS)
    result.records["equity"] = equity[(day != 3) & (day != 4) & (day != 8)]
    theirs = compute_metrics(result)
    ours = summary_metrics(result)
    _same(ours, {k: v for k, v in theirs.items() if k not in ("start", "end", "frequency")})


@pytest.mark.parametrize("bucket_hours", [24, 4, 7])
def test_regular_grid_is_pandas_resample_last_ffill(bucket_hours) -> None:
    rng = np.random.default_rng(11)
    start = 1_577_836_800_000_000_000 + 5 * HOUR_NS + 123  # not at midnight
    ts = np.sort(start + rng.integers(0, 20 * 24 * HOUR_NS, 300))
    values = rng.normal(100.0, 5.0, 300)
    values[rng.random(300) < 0.2] = np.nan  # skipped by last(), as in pandas
    values[:3] = np.nan
    ts = ts[(ts < start + 5 * 24 * HOUR_NS) | (ts > start + 8 * 24 * HOUR_NS)]  # a gap
    values = values[: len(ts)]
    series = pd.Series(values, index=pd.to_datetime(ts, unit="ns", utc=True))
    expected = series.resample(f"{bucket_hours}h").last().ffill()
    starts, grid = regular_grid(ts, values, bucket_hours * HOUR_NS)
    np.testing.assert_array_equal(starts, expected.index.as_unit("ns").asi8)
    np.testing.assert_array_equal(grid, expected.to_numpy())
