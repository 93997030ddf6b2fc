"""Time whole calls as a user meets them, against the bare loops of the same process.

A ``backtest``/``backtest_signals`` call returning a ``Result`` whose fills and equity are
read, each case in a fresh process, against the bare loop doing the same logic in the same
process (issue 15's table).

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
for the Python callback, to the bare Python loop), and the process's peak RSS. The call and
its bare loops are timed interleaved (bare, bare Python, call, bare, ...), so a change of the
machine's load affects them alike; ``--clock cpu`` times them in process CPU time
(``time.process_time``), which a machine shared with other jobs leaves much steadier than
the wall clock (the default, ``--clock wall``: what a user waits). Then the first
call of a fresh process (imports and data building excluded) with the warm cache, and with an
empty numba cache (``--no-cold`` skips it: every kernel compiles, about a minute a case).

Usage: ``python benchmarks/bench_whole_calls.py [--bars 1000000] [--ticks 10000000]
[--repeat 3] [--only signals] [--clock cpu]``
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CASES = ("signals", "python on_bar", "jit on_trade", "jit on_trade, no mechanics")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved_medians(
    fns: dict[str, Callable[[], Any]], repeat: int, clock: Callable[[], float]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Return each function's median time over ``repeat`` interleaved rounds and its output.

    One warm-up call each first (compilation, caches); then every round calls each function
    once, in order, so the machine's load changes the figures of all of them alike.
    """
    outputs = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = clock()
            outputs[name] = fn()
            times[name].append(clock() - start)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


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
    """Run the floor of a Python callback: one call per bar with the same running-sum logic."""
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


def run_case(
    case: str, n_bars: int, n_ticks: int, repeat: int, once: bool = False, clock: str = "wall"
) -> dict[str, Any]:
    """Time one case in this process.

    The median of ``repeat`` calls after a warm-up, interleaved with the bare numba loop
    (and, for a Python callback, the bare Python loop) in the same process; with ``once``,
    only the first call (what a fresh process pays: cache load or compile).
    """
    sys.path.insert(0, str(HERE))
    from bench_engine import LeanSma, TickEmaJit, bare_sma_loop_nb, bare_tick_loop_nb, synthetic

    from backtester import backtest, backtest_signals
    from backtester.data.market import MarketData

    bars, ticks = synthetic(n_bars if "on_bar" in case or case == "signals" else 10, n_ticks)
    close = bars.bars["close"]
    contract = "okx:BTC-USDT-SWAP"
    bare_python: Callable[[], Any] | None = None
    if case == "signals":
        long_entries, short_entries = sma_signals(close, 20, 100)

        no_exits = np.zeros(len(close), dtype=bool)

        def call() -> tuple[int, int]:
            r = backtest_signals(
                long_entries, no_exits, bars, contract, short_entries=short_entries,
                initial_balance=1e6, leverage=5,
            )  # fmt: skip
            return len(r.fills), len(r.equity)

        bare_fn = lambda: bare_sma_loop_nb(close, 20, 100)  # noqa: E731
        events = n_bars
    elif case == "python on_bar":
        strategy = type("Sma20x100", (LeanSma,), {"fast": 20, "slow": 100})

        def call() -> tuple[int, int]:
            r = backtest(strategy, bars, contract, initial_balance=1e6, leverage=5)
            return len(r.fills), len(r.equity)

        bare_fn = lambda: bare_sma_loop_nb(close, 20, 100)  # noqa: E731
        bare_python = lambda: bare_python_loop(close, 20, 100)  # noqa: E731
        events = n_bars
    else:
        data = ticks
        if case.endswith("no mechanics"):
            data = MarketData(ticks.symbol, trades=ticks.trades)

        def call() -> tuple[int, int]:
            r = backtest(TickEmaJit, data, contract, initial_balance=1e6, leverage=5)
            return len(r.fills), len(r.equity)

        bare_fn = lambda: bare_tick_loop_nb(ticks.trades["price"])  # noqa: E731
        events = n_ticks
    tick = CLOCKS[clock]
    call_result: Callable[[], Any] | None = None
    if case == "signals":
        # issue 15's target: the call returning the Result (tables not built), timed beside
        # the call that reads the fills and equity tables
        def call_result() -> Any:
            return backtest_signals(
                long_entries, no_exits, bars, contract, short_entries=short_entries,
                initial_balance=1e6, leverage=5,
            )  # fmt: skip

    if once:
        start = tick()
        fills, equity_rows = call()
        return {"case": case, "first_call_s": tick() - start, "fills": fills}
    fns = {"bare": bare_fn, "call": call}
    if bare_python is not None:
        fns["bare_python"] = bare_python
    if call_result is not None:
        fns["result"] = call_result
    medians, outputs = interleaved_medians(fns, repeat, tick)
    seconds = medians["call"]
    fills, equity_rows = outputs["call"]
    row = {
        "case": case,
        "clock": clock,
        "bare_seconds": medians["bare"],
        "seconds": seconds,
        "ratio": seconds / medians["bare"],
        "events_per_s": events / seconds,
        "fills": fills,
        "equity_rows": equity_rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if bare_python is not None:
        row["bare_python_seconds"] = medians["bare_python"]
        row["ratio_python"] = seconds / medians["bare_python"]
    if "result" in medians:
        row["result_seconds"] = medians["result"]
        row["ratio_result"] = medians["result"] / medians["bare"]
    return row


def _child(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any] | str:
    """Run this script in a fresh process; its last stdout line (JSON), or the error text."""
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        return done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the per-process rows of one case as one: the median of each figure."""
    merged = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, float):
            merged[key] = statistics.median(float(r[key]) for r in rows)
    # the case's target ratio in each process, for the spread
    key = "ratio_python" if "ratio_python" in merged else "ratio"
    key = "ratio_result" if "ratio_result" in merged else key
    merged["spread"] = f"{key} per process: " + ", ".join(f"{r[key]:.2f}" for r in rows)
    return merged


def _first_call(row: dict[str, Any] | str) -> str:
    return f"{row['first_call_s']:.2f} s" if isinstance(row, dict) else f"FAILED ({row[-300:]})"


def main() -> None:
    """Run every case in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--processes", type=int, default=3,
        help="fresh processes per case (interleaved); each figure is their median",
    )  # fmt: skip
    parser.add_argument("--only", default="")
    parser.add_argument(
        "--clock", choices=tuple(CLOCKS), default="wall",
        help="wall: elapsed time (what a user waits); cpu: process CPU time (steadier on a "
        "shared machine)",
    )  # fmt: skip
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
        row = run_case(
            args.case, args.bars, args.ticks, args.repeat, once=args.once, clock=args.clock
        )
        print(json.dumps(row))
        return
    sizes = ["--bars", str(args.bars), "--ticks", str(args.ticks), "--clock", args.clock]
    print(
        f"clock: {args.clock} ({'process CPU time' if args.clock == 'cpu' else 'wall time'}); "
        f"medians of {args.processes} fresh processes per case, run interleaved"
    )
    cases = [case for case in CASES if args.only in case]
    # the processes of all cases interleaved (case A, case B, ..., case A, ...): a slow spell
    # of the machine touches every case alike; one process per case was luck-dependent (the
    # same call ran 1.0x-1.6x as long from one fresh process to the next on the project's VM,
    # its ratio to the bare loop with it)
    runs: dict[str, list[dict[str, Any] | str]] = {case: [] for case in cases}
    for _ in range(args.processes):
        for case in cases:
            runs[case].append(_child(["--case", case, *sizes, "--repeat", str(args.repeat)]))
    for case in cases:
        failed = [r for r in runs[case] if isinstance(r, str)]
        if failed:
            print(f"{case:28s} FAILED\n{failed[0]}")
            continue
        row = _median_row([r for r in runs[case] if isinstance(r, dict)])
        python = (
            f"  {row['ratio_python']:5.2f}x the bare Python loop" if "ratio_python" in row else ""
        )
        print(
            f"{case:28s} median {row['seconds']:8.3f} s  {row['events_per_s'] / 1e6:8.2f} M/s  "
            f"{row['ratio']:7.1f}x the bare loop{python}  ({row['fills']} fills, "
            f"{row['equity_rows']} equity rows, peak RSS {row['peak_rss_mb']:.0f} MB)"
        )
        if "result_seconds" in row:
            print(
                f"{'':28s} the call returning the Result (no table read): "
                f"{row['result_seconds']:8.3f} s  {row['ratio_result']:7.1f}x the bare loop"
            )
        print(f"{'':28s} {row['spread']}")
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
