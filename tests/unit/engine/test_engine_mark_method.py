"""Which mark the run uses (``mark_price_method`` option and the profile's method)."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000


def market(with_index: bool, with_mark: bool) -> MarketData:
    closes = [30_000.0, 30_100.0, 29_900.0, 30_050.0]
    bars = np.zeros(len(closes), dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(len(closes)) * HOUR_NS
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = closes
    points = np.zeros(len(closes), dtypes.PRICE_DTYPE)
    points["ts_ns"] = bars["ts_ns"] + HOUR_NS
    points["price"] = np.array(closes) - 7.0
    return MarketData(
        "BTC-USDT-SWAP",
        bars=bars,
        bar_interval_ns=HOUR_NS,
        index=points if with_index else np.zeros(0, dtypes.PRICE_DTYPE),
        mark=points if with_mark else np.zeros(0, dtypes.PRICE_DTYPE),
    )


class Hold(Strategy):
    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == DAY0:
            ctx.market(1.0)


def used(data: MarketData, **options) -> str:
    result = backtest(Hold, data, "okx:BTC-USDT-SWAP", initial_balance=1_000.0, **options)
    return result.config["mark_price_method_used"][0]


def test_the_profile_method_runs_when_its_index_is_there():
    assert used(market(True, False)) == "INDEX_EMA_BASIS"


def test_without_an_index_the_recorded_mark_is_replayed_else_the_last_price():
    assert used(market(False, True)) == "HISTORICAL"
    assert used(market(False, False)) == "LAST"
    result = backtest(Hold, market(False, True), "okx:BTC-USDT-SWAP", initial_balance=1_000.0)
    # the equity rows carry the mark in force: the recorded series (close − 7); row 0 is the
    # first bar's open (no mark yet), row k the close of bar k − 1
    np.testing.assert_array_equal(
        result.records["equity"]["mark_price"][2:5], [30_093.0, 29_893.0, 30_043.0]
    )


def test_an_explicit_method_is_used_or_refused_with_the_missing_stream_named():
    assert used(market(True, True), mark_price_method="historical") == "HISTORICAL"
    assert used(market(True, True), mark_price_method="last") == "LAST"
    with pytest.raises(ValueError, match=r"\.index: mark_price_method 'index_ema_basis' needs"):
        used(market(False, True), mark_price_method="index_ema_basis")
    with pytest.raises(ValueError, match=r"\.mark: mark_price_method 'historical' replays"):
        used(market(True, False), mark_price_method="historical")
    with pytest.raises(ValueError, match="did you mean 'historical'"):
        used(market(True, True), mark_price_method="historic")
