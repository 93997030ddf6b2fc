"""Whole calls as a user meets them: a ``backtest``/``backtest_signals`` call returning a
``Result`` whose fills and equity are read, each in a fresh process, against the bare loop
doing the same logic in the same process (issue 15's table).

Cases (SMA 20/100 always-in reversal on synthetic 1-minute bars, 1 contract, taker fee, funding
every 8 h and an index per minute so the mark, funding and liquidation checks run):

- ``signals``: one ``backtest_signals`` call with long entries on up-crossings and short
  entries on down-crossings (always in, one account), equity row per bar; ratio to the bare
  numba loop (``bare_sma_loop_nb``).
- ``python on_bar``: a :class:`~backtester.strategy.Strategy` with running sums; ratio to a
  bare Python loop calling a function with the same logic per bar.
- ``jit on_trade`` (with and without index/funding): the jitted tick EMA strategy of
  ``bench_engine.py``; ratio to the bare numba tick loop.

Each case runs in its own process (so the figures include what a fresh process pays after
compilation is cached, but not compilation itself: one warm-up run comes first) and reports
its median over ``--repeat`` runs, the ratio, and the process's peak RSS.

Usage: ``python benchmarks/bench_whole_calls.py [--bars 1000000] [--ticks 10000000]
[--repeat 3] [--only signals]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CASES = ("signals", "python on_bar", "jit on_trade", "jit on_trade, no mechanics")


def median_seconds(fn, repeat: int) -> tuple[float, object]:
    out = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def sma_signals(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    """Bars where SMA(fast) crosses above / below SMA(slow) (running sums, as the bare loop)."""
    csum = np.cumsum(close)
    fast_sma = (csum - np.r_[np.zeros(fast), csum[:-fast]]) / fast
    slow_sma = (csum - np.r_[np.zeros(slow), csum[:-slow]]) / slow
    above = fast_sma > slow_sma
    above[: slow - 1] = False
    cross = np.r_[False, above[1:] != above[:-1]]
    cross[:slow] = False
    return cross & above, cross & ~above


def bare_python_loop(close: np.ndarray, fast: int, slow: int) -> int:
    """The floor of a Python callback: one call per bar with the same running-sum logic."""
    state = {"closes": [], "sf": 0.0, "ss": 0.0, "position": 0.0, "orders": 0}

    def on_bar(state, close_k):
        closes = state["closes"]
        closes.append(close_k)
        n = len(closes)
        state["sf"] += close_k
        state["ss"] += close_k
        if n > fast:
            state["sf"] -= closes[-fast - 1]
        if n > slow:
            state["ss"] -= closes[-slow - 1]
        if n < slow:
            return
        position = state["position"]
        if state["sf"] * slow > state["ss"] * fast:
            if position <= 0:
                state["position"] = 1.0
                state["orders"] += 1
        elif position >= 0:
            state["position"] = -1.0
            state["orders"] += 1

    for c in close.tolist():
        on_bar(state, c)
    return state["orders"]


def run_case(case: str, n_bars: int, n_ticks: int, repeat: int) -> dict:
    sys.path.insert(0, str(HERE))
    from bench_engine import LeanSma, TickEmaJit, bare_sma_loop_nb, bare_tick_loop_nb, synthetic

    from backtester import backtest, backtest_signals
    from backtester.data.market import MarketData

    bars, ticks = synthetic(n_bars if "on_bar" in case or case == "signals" else 10, n_ticks)
    close = bars.bars["close"]
    contract = "okx:BTC-USDT-SWAP"
    if case == "signals":
        long_entries, short_entries = sma_signals(close, 20, 100)

        no_exits = np.zeros(len(close), dtype=bool)

        def call():
            r = backtest_signals(
                long_entries, no_exits, bars, contract, short_entries=short_entries,
                initial_balance=1e6, leverage=5,
            )  # fmt: skip
            return len(r.fills), len(r.equity)

        bare, _ = median_seconds(lambda: bare_sma_loop_nb(close, 20, 100), repeat)
        events = n_bars
    elif case == "python on_bar":
        strategy = type("Sma20x100", (LeanSma,), {"fast": 20, "slow": 100})

        def call():
            r = backtest(strategy, bars, contract, initial_balance=1e6, leverage=5)
            return len(r.fills), len(r.equity)

        bare, _ = median_seconds(lambda: bare_python_loop(close, 20, 100), repeat)
        events = n_bars
    else:
        data = ticks
        if case.endswith("no mechanics"):
            data = MarketData(ticks.symbol, trades=ticks.trades)

        def call():
            r = backtest(TickEmaJit, data, contract, initial_balance=1e6, leverage=5)
            return len(r.fills), len(r.equity)

        bare, _ = median_seconds(lambda: bare_tick_loop_nb(ticks.trades["price"]), repeat)
        events = n_ticks
    seconds, (fills, equity_rows) = median_seconds(call, repeat)
    return {
        "case": case,
        "seconds": seconds,
        "bare_seconds": bare,
        "ratio": seconds / bare,
        "events_per_s": events / seconds,
        "fills": fills,
        "equity_rows": equity_rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--case", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.bars, args.ticks, args.repeat)))
        return
    for case in CASES:
        if args.only not in case:
            continue
        done = subprocess.run(
            [sys.executable, __file__, "--case", case, "--bars", str(args.bars), "--ticks",
             str(args.ticks), "--repeat", str(args.repeat)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            print(f"{case:28s} FAILED\n{done.stderr[-2000:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{case:28s} median {row['seconds']:8.3f} s  {row['events_per_s'] / 1e6:8.2f} M/s  "
            f"{row['ratio']:7.1f}x the bare loop  ({row['fills']} fills, "
            f"{row['equity_rows']} equity rows, peak RSS {row['peak_rss_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    main()
