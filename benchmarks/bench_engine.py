"""Engine throughput: bars with a Python on_bar, the signal path, ticks with a jitted and with
a Python on_trade strategy.

Funding, the index-EMA mark and liquidation checks are on (index points and 8-hourly funding
are part of the synthetic data). Each case prints its median over ``--repeat`` runs (after one
warm-up for compilation) and its ratio to a bare numba loop over the same arrays.

The signal path runs three ways: its kernel (``backtester.engine.signals_nb``) on a fast
signal (close crossing its SMA(30): a fill every ~10 bars) with an equity row per bar; the
same through the general jitted loop (``replay="events"``, identical records); and the kernel
on a slow signal (SMA 200/1000 crossings) with hourly equity rows, where the per-bar cost of
the replay itself shows rather than fills and the 72-byte equity row of every bar.

The runs after the warm-up reuse the record memory of the runs before them, as the runs of a
sweep do (``backtester.engine.buffers``); a single cold run also pays the page faults of its
fresh record buffers (~32 ns per equity row on the project's VM).

Usage: ``python benchmarks/bench_engine.py [--bars 200000] [--ticks 500000] [--repeat 3]
[--only "signal"] [--clock cpu]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba import njit

from backtester import JitStrategy, Strategy, backtest, backtest_signals, dtypes
from backtester.data.market import MarketData
from backtester.jit import market, position, trade

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
    """SMA cross with running sums: reads the bar and the position, trades on crossings."""

    fast = 10
    slow = 30

    def on_start(self, ctx):
        self.closes = []
        self.sum_fast = 0.0
        self.sum_slow = 0.0

    def on_bar(self, ctx, bar):
        close = bar["close"]
        closes = self.closes
        closes.append(close)
        n = len(closes)
        self.sum_fast += close
        self.sum_slow += close
        if n > self.fast:
            self.sum_fast -= closes[-self.fast - 1]
        if n > self.slow:
            self.sum_slow -= closes[-self.slow - 1]
        if n < self.slow:
            return
        position = ctx.position
        if self.sum_fast * self.slow > self.sum_slow * self.fast:
            if position <= 0:
                ctx.market(1 - position)
        elif position >= 0:
            ctx.market(-1 - position)


class Empty(Strategy):
    """An on_bar that does nothing: the cost of the wake-ups alone."""

    def on_bar(self, ctx, bar):
        pass


class CtxIndicators(Strategy):
    """ctx.ema and ctx.sma on every bar (O(1) incremental state; target within 2x of Empty)."""

    def on_bar(self, ctx, bar):
        ctx.ema(50)
        ctx.sma(30)


class TickEma(Strategy):
    """Python on_trade: an EMA of the trade price; long above it, short below (with a band)."""

    def on_start(self, ctx):
        self.ema = 0.0

    def on_trade(self, ctx, trade):
        price = trade["price"]
        if self.ema == 0.0:
            self.ema = price
        self.ema += 0.001 * (price - self.ema)
        position = ctx.position
        if price > self.ema * 1.002 and position <= 0:
            ctx.market(1 - position)
        elif price < self.ema * 0.998 and position >= 0:
            ctx.market(-1 - position)


@njit(cache=True)
def tick_ema_on_trade(ctx, state, i, row):
    """The same EMA strategy as TickEma, jitted."""
    price = trade(ctx, row).price
    if state[0] == 0.0:
        state[0] = price
    state[0] += 0.001 * (price - state[0])
    q = position(ctx, i)
    if price > state[0] * 1.002 and q <= 0:
        market(ctx, i, 1.0 - q)
    elif price < state[0] * 0.998 and q >= 0:
        market(ctx, i, -1.0 - q)


class TickEmaJit(JitStrategy):
    on_trade = tick_ema_on_trade

    def make_state(self):
        return np.zeros(1)


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


def sma(values: np.ndarray, n: int) -> np.ndarray:
    """Trailing simple moving average (the first n - 1 values average fewer points)."""
    return np.convolve(values, np.ones(n) / n)[: len(values)]


CLOCK = time.perf_counter


def median_seconds(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--ticks", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: this thread's CPU time (time.thread_time), steadier on a "
        "machine shared with other jobs (time spent waiting for a core is not counted)",
    )
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
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
    # a slower signal: SMA(200) crossing SMA(1000), ~1 fill per 700 bars
    above = sma(close, 200) > sma(close, 1000)
    cross = np.r_[False, above[1:] != above[:-1]]
    slow_entries, slow_exits = cross & above, cross & ~above
    hourly = {"equity_interval_ns": 60 * MINUTE_NS}
    cases = {
        "bars, Python on_bar": (
            lambda: backtest(LeanSma, bars, "okx:BTC-USDT-SWAP", initial_balance=1e5),
            args.bars,
            bare_bars,
        ),
        "bars, empty on_bar": (
            lambda: backtest(Empty, bars, "okx:BTC-USDT-SWAP", initial_balance=1e5),
            args.bars,
            bare_bars,
        ),
        "bars, ctx.ema + ctx.sma on_bar": (
            lambda: backtest(CtxIndicators, bars, "okx:BTC-USDT-SWAP", initial_balance=1e5),
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
        "signal path, general loop": (
            lambda: backtest_signals(
                entries, exits, bars, "okx:BTC-USDT-SWAP", initial_balance=1e5, replay="events"
            ),
            args.bars,
            bare_bars,
        ),
        "signal path, SMA 200/1000, hourly equity": (
            lambda: backtest_signals(
                slow_entries, slow_exits, bars, "okx:BTC-USDT-SWAP", initial_balance=1e5, **hourly
            ),
            args.bars,
            bare_bars,
        ),
        "ticks, jitted on_trade": (
            lambda: backtest(TickEmaJit, ticks, "okx:BTC-USDT-SWAP", initial_balance=1e5),
            args.ticks,
            bare_ticks,
        ),
        "ticks, Python on_trade": (
            lambda: backtest(TickEma, ticks, "okx:BTC-USDT-SWAP", initial_balance=1e5),
            args.ticks,
            bare_ticks,
        ),
    }
    print(
        f"bare numba: {args.bars / bare_bars / 1e6:,.1f} M bars/s, "
        f"{args.ticks / bare_ticks / 1e6:,.1f} M ticks/s"
    )
    targets = {
        "bars, Python on_bar": 500e3,
        "bars, empty on_bar": 500e3,
        "bars, ctx.ema + ctx.sma on_bar": 250e3,  # within 2x of the empty on_bar's target
        "signal path": 50e6,
        "signal path, general loop": 50e6,
        "signal path, SMA 200/1000, hourly equity": 50e6,
        "ticks, jitted on_trade": 30e6,
        "ticks, Python on_trade": 500e3,
    }
    measured: dict[str, float] = {}
    for name, (fn, events, bare) in cases.items():
        if args.only not in name:
            continue
        seconds = measured[name] = median_seconds(fn, args.repeat)
        fills = len(fn().records["fills"])
        rate = events / seconds
        print(
            f"{name:42s} median {seconds:8.3f} s  {rate / 1e3:12,.0f} k events/s  "
            f"{seconds / bare:8,.1f}x the bare loop  ({fills} fills; target "
            f"{targets[name] / 1e3:,.0f} k/s: {'met' if rate >= targets[name] else 'NOT met'})"
        )

    empty, indicators = "bars, empty on_bar", "bars, ctx.ema + ctx.sma on_bar"
    if empty in measured and indicators in measured:
        ratio = measured[indicators] / measured[empty]
        print(
            f"ctx.ema + ctx.sma / empty on_bar: {ratio:.2f}x "
            f"(target <= 2x: {'met' if ratio <= 2.0 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
