"""Resampling trades and candles; gaps are reported, not filled."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import dtypes
from backtester.data.resample import align_to_span, resample_bars, trades_to_bars

M = 60_000_000_000
T0 = 1_672_531_200_000_000_000


def test_trades_to_bars_omits_empty_minutes() -> None:
    trades = np.zeros(6, dtype=dtypes.TRADE_DTYPE)
    trades["ts_ns"] = T0 + np.array([1, 2, 59_999_999_999, M + 5, 3 * M, 3 * M + 1])
    trades["price"] = [10.0, 12.0, 9.0, 11.0, 20.0, 19.0]
    trades["qty_base"] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    bars, gaps = trades_to_bars(trades, M)
    np.testing.assert_array_equal(bars["ts_ns"], [T0, T0 + M, T0 + 3 * M])
    np.testing.assert_array_equal(bars["open"], [10.0, 11.0, 20.0])
    np.testing.assert_array_equal(bars["high"], [12.0, 11.0, 20.0])
    np.testing.assert_array_equal(bars["low"], [9.0, 11.0, 19.0])
    np.testing.assert_array_equal(bars["close"], [9.0, 11.0, 19.0])
    np.testing.assert_array_equal(bars["volume_base"], [6.0, 4.0, 11.0])
    assert gaps.gaps == [(T0 + 2 * M, T0 + 3 * M, 1.0)]


def test_resample_bars_and_partial_hours() -> None:
    bars = np.zeros(7, dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(7) * 15 * M  # 1h 45m: one full hour + 3 quarters
    bars["open"] = np.arange(7) + 100.0
    bars["close"] = bars["open"] + 0.5
    bars["high"] = bars["open"] + 1 + (np.arange(7) == 2) * 10
    bars["low"] = bars["open"] - 1
    bars["volume_base"] = 1.0
    hours, gaps = resample_bars(bars, 15 * M, 60 * M)
    np.testing.assert_array_equal(hours["open"], [100.0, 104.0])
    np.testing.assert_array_equal(hours["high"], [113.0, 107.0])
    np.testing.assert_array_equal(hours["low"], [99.0, 103.0])
    np.testing.assert_array_equal(hours["close"], [103.5, 106.5])
    np.testing.assert_array_equal(hours["volume_base"], [4.0, 3.0])
    assert len(gaps) == 0
    complete, _ = resample_bars(bars, 15 * M, 60 * M, complete_only=True)
    np.testing.assert_array_equal(complete["ts_ns"], [T0])
    with pytest.raises(ValueError, match="is not a multiple of from_interval_ns"):
        resample_bars(bars, 15 * M, 50 * M)


def test_align_to_span_keeps_prior_price() -> None:
    points = np.zeros(5, dtype=dtypes.PRICE_DTYPE)
    points["ts_ns"] = T0 + np.arange(5) * M
    points["price"] = np.arange(5.0) + 1
    np.testing.assert_array_equal(
        align_to_span(points, T0 + M + 1, T0 + 4 * M)["price"], [2.0, 3.0, 4.0]
    )
    np.testing.assert_array_equal(
        align_to_span(points, T0 + M + 1, T0 + 4 * M, keep_prior=False)["price"], [3.0, 4.0]
    )
