"""ctx.sma / ctx.ema keep incremental state and agree with pandas' rolling mean and
``ewm(span, adjust=False)`` on every bar, also across the windows of a chunked replay and when
first read late; the per-call cost is pinned in benchmarks/bench_engine.py (ctx-indicators)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data import Catalog
from backtester.data.market import MarketData
from backtester.data.stream import stream_market_data

MINUTE_NS = 60_000_000_000
T0 = 1_699_999_980_000_000_000  # on the minute grid (the catalog refuses off-grid candles)
N = 3_000


def make_bars(n: int = N) -> np.ndarray:
    rng = np.random.default_rng(7)
    close = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 1)
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    bars["open"] = np.r_[30_000.0, close[:-1]]
    bars["close"] = close
    bars["high"] = np.maximum(bars["open"], close) + 5.0
    bars["low"] = np.minimum(bars["open"], close) - 5.0
    bars["volume_base"] = rng.uniform(1, 3, n)
    return bars


class Recorder(Strategy):
    """Reads the indicators at every bar close (from bar ``start_at`` on)."""

    start_at = 0

    def on_start(self, ctx):
        self.seen = []

    def on_bar(self, ctx, bar):
        k = len(self.seen)
        self.seen.append(
            (ctx.sma(20), ctx.ema(50), ctx.sma(7, "volume_base"), ctx.ema(10, "high"))
            if k >= self.start_at
            else (np.nan,) * 4
        )


def expected(bars: np.ndarray) -> np.ndarray:
    close = pd.Series(bars["close"])
    return np.column_stack([
        close.rolling(20).mean(),
        close.ewm(span=50, adjust=False).mean(),
        pd.Series(bars["volume_base"]).rolling(7).mean(),
        pd.Series(bars["high"]).ewm(span=10, adjust=False).mean(),
    ])  # fmt: skip


def run_recorder(data, **params):
    strategy = {}

    class Capture(Recorder):
        def on_stop(self, ctx):
            strategy["seen"] = np.array(self.seen)

    for name, value in params.items():
        setattr(Capture, name, value)
    backtest(Capture, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    return strategy["seen"]


def test_every_bar_matches_pandas():
    bars = make_bars()
    seen = run_recorder(MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS))
    want = expected(bars)
    assert seen.shape == want.shape
    np.testing.assert_array_equal(np.isnan(seen), np.isnan(want))  # NaN while too few bars
    ok = ~np.isnan(want)
    np.testing.assert_allclose(seen[ok], want[ok], rtol=1e-12, atol=0)


def test_first_read_late_folds_the_history_in_once():
    bars = make_bars()
    seen = run_recorder(
        MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS), start_at=1_234
    )
    want = expected(bars)
    np.testing.assert_allclose(seen[1_234:], want[1_234:], rtol=1e-12, atol=0)


def test_chunked_replay_continues_the_state(tmp_path):
    bars = make_bars()
    catalog = Catalog(tmp_path / "catalog")
    catalog.write("bars", "okx", "BTC-USDT-SWAP", bars, source="unit", interval_ns=MINUTE_NS)
    stream = stream_market_data(catalog, "okx", "BTC-USDT-SWAP", chunk_ns=97 * MINUTE_NS)
    seen = run_recorder(stream)
    want = expected(bars)
    ok = ~np.isnan(want)
    np.testing.assert_allclose(seen[ok], want[ok], rtol=1e-12, atol=0)


def test_bad_arguments_raise():
    bars = make_bars(5)

    class Bad(Strategy):
        def on_bar(self, ctx, bar):
            ctx.sma(0)

    with pytest.raises(ValueError, match="window: expected an integer > 0, got 0"):
        backtest(Bad, MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS),
                 "okx:BTC-USDT-SWAP", initial_balance=1.0)  # fmt: skip


def test_the_second_instrument_reads_its_own_bars():
    # two instruments: the second's bars sit after the first's in the run's arrays, so its
    # values are read at an offset; both must still match pandas on their own series
    first, second = make_bars(), make_bars()
    second["close"] = np.round(second["close"] * 0.05, 2)  # another price level
    seen: dict[int, list] = {0: [], 1: []}

    class Both(Strategy):
        def on_bar(self, ctx, bar):
            seen[ctx._i].append((ctx.sma(20), ctx.ema(50)))

    data = [
        MarketData("BTC-USDT-SWAP", bars=first, bar_interval_ns=MINUTE_NS),
        MarketData("BTCUSDT", bars=second, bar_interval_ns=MINUTE_NS),
    ]
    backtest(Both, data, ["okx:BTC-USDT-SWAP", "binance_usdm:BTCUSDT"], initial_balance=10_000.0)
    for k, bars in enumerate((first, second)):
        close = pd.Series(bars["close"])
        want = np.column_stack([close.rolling(20).mean(), close.ewm(span=50, adjust=False).mean()])
        got = np.array(seen[k])
        assert got.shape == want.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=0)
