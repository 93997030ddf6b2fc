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
its median over ``--repeat`` runs, its ratio to the bare numba loop of the same process (and,
for the Python callback, to the bare Python loop), and the process's peak RSS. Then the first
call of a fresh process (imports and data building excluded) with the warm cache, and with an
empty numba cache (``--no-cold`` skips it: every kernel compiles, about a minute a case).

Usage: ``python benchmarks/bench_whole_calls.py [--bars 1000000] [--ticks 10000000]
[--repeat 3] [--only signals]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
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


def median_wall_cpu(fn, repeat: int) -> tuple[float, float]:
    """Medians of the wall time and of the process CPU time (``time.process_time``: less
    noisy on a shared machine) of ``repeat`` calls after a warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus)


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


def run_case(case: str, n_bars: int, n_ticks: int, repeat: int, once: bool = False) -> dict:
    """One case in this process: the median of ``repeat`` calls after a warm-up, with the bare
    numba loop (and, for a Python callback, the bare Python loop) timed in the same process;
    with ``once``, only the first call (what a fresh process pays: cache load or compile)."""
    sys.path.insert(0, str(HERE))
    from bench_engine import LeanSma, TickEmaJit, bare_sma_loop_nb, bare_tick_loop_nb, synthetic

    from backtester import backtest, backtest_signals
    from backtester.data.market import MarketData

    bars, ticks = synthetic(n_bars if "on_bar" in case or case == "signals" else 10, n_ticks)
    close = bars.bars["close"]
    contract = "okx:BTC-USDT-SWAP"
    bare_python = None
    if case == "signals":
        long_entries, short_entries = sma_signals(close, 20, 100)

        no_exits = np.zeros(len(close), dtype=bool)

        def call():
            r = backtest_signals(
                long_entries, no_exits, bars, contract, short_entries=short_entries,
                initial_balance=1e6, leverage=5,
            )  # fmt: skip
            return len(r.fills), len(r.equity)

        bare_fn = lambda: bare_sma_loop_nb(close, 20, 100)  # noqa: E731
        events = n_bars
    elif case == "python on_bar":
        strategy = type("Sma20x100", (LeanSma,), {"fast": 20, "slow": 100})

        def call():
            r = backtest(strategy, bars, contract, initial_balance=1e6, leverage=5)
            return len(r.fills), len(r.equity)

        bare_fn = lambda: bare_sma_loop_nb(close, 20, 100)  # noqa: E731
        bare_python = lambda: bare_python_loop(close, 20, 100)  # noqa: E731
        events = n_bars
    else:
        data = ticks
        if case.endswith("no mechanics"):
            data = MarketData(ticks.symbol, trades=ticks.trades)

        def call():
            r = backtest(TickEmaJit, data, contract, initial_balance=1e6, leverage=5)
            return len(r.fills), len(r.equity)

        bare_fn = lambda: bare_tick_loop_nb(ticks.trades["price"])  # noqa: E731
        events = n_ticks
    if case == "signals" and not once:
        # issue 15's target: the call returning the Result (tables not built), and apart
        # with the fills and equity tables read, each as a ratio to the bare loop, wall and CPU
        def call_result():
            return backtest_signals(
                long_entries, no_exits, bars, contract, short_entries=short_entries,
                initial_balance=1e6, leverage=5,
            )  # fmt: skip

        bare_wall, bare_cpu = median_wall_cpu(bare_fn, max(repeat, 7))
        result_wall, result_cpu = median_wall_cpu(call_result, max(repeat, 7))
        read_wall, read_cpu = median_wall_cpu(call, max(repeat, 7))
        signal_calls = {
            "bare_wall_s": bare_wall, "bare_cpu_s": bare_cpu,
            "result_wall_s": result_wall, "result_cpu_s": result_cpu,
            "read_wall_s": read_wall, "read_cpu_s": read_cpu,
        }  # fmt: skip
    if once:
        start = time.perf_counter()
        fills, equity_rows = call()
        return {"case": case, "first_call_s": time.perf_counter() - start, "fills": fills}
    bare, _ = median_seconds(bare_fn, repeat)
    row = {"bare_seconds": bare}
    if bare_python is not None:
        row["bare_python_seconds"], _ = median_seconds(bare_python, repeat)
    seconds, (fills, equity_rows) = median_seconds(call, repeat)
    row.update({
        "case": case,
        "seconds": seconds,
        "ratio": seconds / bare,
        "events_per_s": events / seconds,
        "fills": fills,
        "equity_rows": equity_rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })  # fmt: skip
    if bare_python is not None:
        row["ratio_python"] = seconds / row["bare_python_seconds"]
    if case == "signals":
        row["signal_calls"] = signal_calls
    return row


def _child(args: list[str], env: dict[str, str] | None = None) -> dict | str:
    """Run this script in a fresh process; its last stdout line (JSON), or the error text."""
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        return done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _first_call(row: dict | str) -> str:
    return f"{row['first_call_s']:.2f} s" if isinstance(row, dict) else f"FAILED ({row[-300:]})"


def _signal_calls_line(s: dict) -> str:
    """The signals case's two calls (Result only; tables read) against the bare loop, in
    wall and CPU time (medians of at least 7, after the case's own runs)."""

    def one(kind: str) -> str:
        wall, cpu = s[f"{kind}_wall_s"], s[f"{kind}_cpu_s"]
        return (
            f"wall {wall * 1e3:.1f} ms ({wall / s['bare_wall_s']:.1f}x), "
            f"CPU {cpu * 1e3:.1f} ms ({cpu / s['bare_cpu_s']:.1f}x)"
        )

    return (
        f"{'':28s} bare loop wall {s['bare_wall_s'] * 1e3:.2f} ms, CPU "
        f"{s['bare_cpu_s'] * 1e3:.2f} ms; Result returned: {one('result')}; "
        f"fills and equity tables read: {one('read')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument(
        "--no-first-run", action="store_true",
        help="skip the first-call measurements in fresh processes (warm and cold cache)",
    )  # fmt: skip
    parser.add_argument(
        "--no-cold", action="store_true",
        help="skip the cold-cache first call (an empty numba cache: every kernel compiles)",
    )  # fmt: skip
    parser.add_argument("--case", default="", help=argparse.SUPPRESS)
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        row = run_case(args.case, args.bars, args.ticks, args.repeat, once=args.once)
        print(json.dumps(row))
        return
    sizes = ["--bars", str(args.bars), "--ticks", str(args.ticks)]
    for case in CASES:
        if args.only not in case:
            continue
        row = _child(["--case", case, *sizes, "--repeat", str(args.repeat)])
        if isinstance(row, str):
            print(f"{case:28s} FAILED\n{row}")
            continue
        python = (
            f"  {row['ratio_python']:5.2f}x the bare Python loop" if "ratio_python" in row else ""
        )
        print(
            f"{case:28s} median {row['seconds']:8.3f} s  {row['events_per_s'] / 1e6:8.2f} M/s  "
            f"{row['ratio']:7.1f}x the bare loop{python}  ({row['fills']} fills, "
            f"{row['equity_rows']} equity rows, peak RSS {row['peak_rss_mb']:.0f} MB)"
        )
        if "signal_calls" in row:
            print(_signal_calls_line(row["signal_calls"]))
        if args.no_first_run:
            continue
        # the first call of a fresh process (imports and data excluded): with the cache the
        # runs above left (warm), and with an empty numba cache (cold: everything compiles)
        firsts = []
        warm = _child(["--case", case, *sizes, "--once"])
        firsts.append(
            "warm " + (f"{warm['first_call_s']:.2f} s" if isinstance(warm, dict) else "FAILED")
        )
        if not args.no_cold:
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, "NUMBA_CACHE_DIR": tmp}
                cold = _child(["--case", case, *sizes, "--once"], env)
            firsts.append(
                "cold " + (f"{cold['first_call_s']:.2f} s" if isinstance(cold, dict) else "FAILED")
            )
        print(f"{'':28s} first call in a fresh process: {', '.join(firsts)}")


if __name__ == "__main__":
    main()
