"""Engine throughput: bars with a Python on_bar, the signal path, Python on_trade.

Funding, the index-EMA mark and liquidation checks are on (index points and 8-hourly funding
are part of the synthetic data). Each case prints its median over ``--repeat`` runs (after one
warm-up for compilation) and its ratio to a bare numba loop over the same arrays.

Usage: ``python benchmarks/bench_engine.py [--bars 200000] [--ticks 500000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba import njit

from backtester import Strategy, backtest, backtest_signals, dtypes
from backtester.data.market import MarketData

MINUTE_NS = 60_000_000_000
T0 = 1_704_067_200_000_000_000


def synthetic(n_bars: int, n_ticks: int, seed: int = 1) -> tuple[MarketData, MarketData]:
    """Bars (1 min) and ticks with an index per minute and funding every 8 h."""
    rng = np.random.default_rng(seed)
    close = np.round(40_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n_bars))), 1)
    bars = np.zeros(n_bars, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n_bars) * MINUTE_NS
    bars["open"] = np.r_[close[0], close[:-1]]
    bars["close"] = close
    bars["high"] = np.maximum(bars["open"], close) + 5.0
    bars["low"] = np.minimum(bars["open"], close) - 5.0
    index = np.zeros(n_bars, dtypes.PRICE_DTYPE)
    index["ts_ns"] = bars["ts_ns"] + MINUTE_NS
    index["price"] = close * (1 - 1e-4)
    n_funding = n_bars // 480
    funding = np.zeros(n_funding, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = T0 + (np.arange(n_funding) + 1) * 480 * MINUTE_NS
    funding["funding_rate"] = 1e-4
    bar_data = MarketData(
        "BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS, index=index, funding=funding
    )
    trades = np.zeros(n_ticks, dtypes.TRADE_DTYPE)
    trades["ts_ns"] = T0 + np.arange(n_ticks) * 100_000_000
    trades["price"] = np.round(40_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, n_ticks))), 1)
    trades["qty_base"] = 0.01
    span = n_ticks // 600 + 1
    tick_index = np.zeros(span, dtypes.PRICE_DTYPE)
    tick_index["ts_ns"] = T0 + np.arange(span) * MINUTE_NS
    tick_index["price"] = trades["price"][np.minimum(np.arange(span) * 600, n_ticks - 1)]
    tick_data = MarketData("BTC-USDT-SWAP", trades=trades, index=tick_index)
    return bar_data, tick_data


class LeanSma(Strategy):
    """SMA cross with running sums (keeps the Python callback lean)."""

    fast = 10
    slow = 30

    def on_start(self, ctx):
        self.closes = []

    def on_bar(self, ctx, bar):
        closes = self.closes
        closes.append(float(bar["close"]))
        if len(closes) < self.slow:
            return
        fast = sum(closes[-self.fast :]) / self.fast
        slow = sum(closes[-self.slow :]) / self.slow
        position = ctx.position
        if fast > slow and position <= 0:
            ctx.market(1 - position)
        elif fast < slow and position >= 0:
            ctx.market(-1 - position)


class TickCounter(Strategy):
    """A Python on_trade that does almost nothing (measures the per-tick crossing)."""

    def on_trade(self, ctx, trade):
        pass


@njit(cache=True)
def bare_sma_loop_nb(close: np.ndarray, fast: int, slow: int) -> float:
    """The limit: SMA cross with running sums, fills at the next open, no swap model."""
    position = 0.0
    pnl = 0.0
    entry = 0.0
    sum_fast = 0.0
    sum_slow = 0.0
    for k in range(len(close)):
        sum_fast += close[k]
        sum_slow += close[k]
        if k >= fast:
            sum_fast -= close[k - fast]
        if k >= slow:
            sum_slow -= close[k - slow]
        if k + 1 < slow:
            continue
        target = 1.0 if sum_fast / fast > sum_slow / slow else -1.0
        if target != position:
            pnl += position * (close[k] - entry)
            entry = close[k]
            position = target
    return pnl


@njit(cache=True)
def bare_tick_loop_nb(price: np.ndarray) -> float:
    """The limit for ticks: one pass updating a last price and an EMA."""
    ema = price[0]
    for k in range(len(price)):
        ema += 0.1 * (price[k] - ema)
    return ema


def median_seconds(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--ticks", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bars, ticks = synthetic(args.bars, args.ticks)
    close = bars.bars["close"]
    bare_bars = median_seconds(lambda: bare_sma_loop_nb(close, 10, 30), args.repeat)
    bare_ticks = median_seconds(lambda: bare_tick_loop_nb(ticks.trades["price"]), args.repeat)
    entries = np.r_[
        False, np.diff(np.sign(close - np.convolve(close, np.ones(30) / 30)[: len(close)])) > 0
    ]
    exits = np.r_[
        False, np.diff(np.sign(close - np.convolve(close, np.ones(30) / 30)[: len(close)])) < 0
    ]
    cases = {
        "bars, Python on_bar": (
            lambda: backtest(LeanSma, bars, "okx:BTC-USDT-SWAP", initial_balance=1e5),
            args.bars,
            bare_bars,
        ),
        "signal path": (
            lambda: backtest_signals(
                entries, exits, bars, "okx:BTC-USDT-SWAP", initial_balance=1e5
            ),
            args.bars,
            bare_bars,
        ),
        "ticks, Python on_trade": (
            lambda: backtest(TickCounter, ticks, "okx:BTC-USDT-SWAP", initial_balance=1e5),
            args.ticks,
            bare_ticks,
        ),
    }
    print(
        f"bare numba: {args.bars / bare_bars / 1e6:,.1f} M bars/s, "
        f"{args.ticks / bare_ticks / 1e6:,.1f} M ticks/s"
    )
    for name, (fn, events, bare) in cases.items():
        seconds = median_seconds(fn, args.repeat)
        print(
            f"{name:24s} median {seconds:8.3f} s  {events / seconds / 1e3:10,.0f} k events/s  "
            f"{seconds / bare:10,.0f}x the bare loop"
        )


if __name__ == "__main__":
    main()
