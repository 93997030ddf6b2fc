"""Sweep throughput: runs/s of the same 100-combination grid, local processes vs Dask.

Each combination is a real backtest of ``strategies/sma_cross.py`` (a ``fast`` x ``slow`` grid)
on a slice of the bundled sample data (``--days`` of 1-minute bars from its first day; 0 = the
whole two months). Measured as the median of ``--repeats`` sweeps, each into a fresh sweep
directory so nothing is resumed, with the data preloaded once per worker as the CLI does:

* ``local``      ProcessPoolExecutor (spawn) with ``--workers`` processes, pool start included
                 (what ``backtester sweep`` does by default);
* ``dask``       a new ``LocalCluster(n_workers=W, threads_per_worker=1)`` per sweep, cluster
                 start included (``backtester sweep --executor dask --workers W``);
* ``dask-warm``  an already running LocalCluster reached by its address, steady state
                 (``backtester sweep --scheduler tcp://...``);
* ``serial``     in this process, only with ``--serial`` (the floor, no parallelism).

The ratios printed are runs/s of each executor over runs/s of ``local``.

Usage::

    python benchmarks/bench_sweep.py                 # 100 combinations, 2 workers, 3 repeats
    python benchmarks/bench_sweep.py --smoke         # 12 combinations, 1 day, 1 repeat (< 60 s)
    python benchmarks/bench_sweep.py --workers 4 --days 0 --serial
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from backtester import sweep
from backtester.jobs import evaluate_backtest, load_data, preload_data

REPO = Path(__file__).resolve().parents[1]
DAY_NS = 86_400_000_000_000


def _jobs(combinations: int, days: float) -> list[dict[str, Any]]:
    """``combinations`` jobs of a near-square fast x slow grid on the first ``days`` of data."""
    from backtester.cli.options import default_contract

    selection: dict[str, Any] = {
        "source": "sample",
        "symbol": "BTC-USD-SWAP",
        "start_ns": None,
        "end_ns": None,
        "interval_ns": 0,
        "catalog": None,
        "with_trades": False,
    }
    if days > 0:
        start = load_data(selection).start_ns
        selection.update(start_ns=start, end_ns=start + int(days * DAY_NS))
    base = {
        "strategy": str(REPO / "strategies" / "sma_cross.py"),
        "data": selection,
        "contract": default_contract("sample", "BTC-USD-SWAP"),
        "profile": None,
        "leverage": 10.0,
        "margin_mode": "isolated",
        "maker_fee_rate": None,
        "taker_fee_rate": None,
        "initial_balance": 1.0,
        "params": {},
    }
    side = max(1, math.isqrt(combinations - 1) + 1)  # smallest side with side**2 >= count
    space = {"fast": list(range(5, 5 + 2 * side, 2)), "slow": list(range(30, 30 + 5 * side, 5))}
    combos = sweep.grid_combinations(space)[:combinations]
    return [sweep.apply_combination(base, c) for c in combos]


def _time(jobs: list[dict[str, Any]], **options: Any) -> float:
    """Seconds to run every job into an empty store (raises if any job failed)."""
    with tempfile.TemporaryDirectory() as directory:
        store = sweep.SweepStore(directory)
        started = time.perf_counter()
        run = sweep.run_jobs(
            evaluate_backtest,
            jobs,
            store,
            preload=preload_data(jobs[0]["data"]),
            **options,
        )
        elapsed = time.perf_counter() - started
    if run.executed != len(jobs):
        raise RuntimeError(f"executed {run.executed} of {len(jobs)} jobs (store not empty?)")
    if run.failed:
        errors = {r["error"] for r in run.records if r["status"] == "error"}
        raise RuntimeError(f"{run.failed} runs failed: {sorted(errors)[:3]}")
    return elapsed


def main() -> None:
    """Print runs/s per executor and the ratios to the local process pool."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="processes / Dask workers")
    parser.add_argument("--combinations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="sweeps per executor (median)")
    parser.add_argument("--days", type=float, default=7.0, help="days of sample data; 0 = all")
    parser.add_argument("--serial", action="store_true", help="also time the in-process loop")
    parser.add_argument(
        "--smoke", action="store_true", help="12 combinations, 1 day, 1 repeat (a quick check)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.combinations, args.days, args.repeats = 12, 1.0, 1
    import distributed

    started = time.perf_counter()
    jobs = _jobs(args.combinations, args.days)
    count = len(jobs)
    first = evaluate_backtest(jobs[0])  # numba caches and data, outside the timings
    data = load_data(jobs[0]["data"])
    bars = len(data.bars)

    results: dict[str, float] = {}
    setups: dict[str, dict[str, Any]] = {
        "local": {"executor": "local", "workers": args.workers},
        "dask": {"executor": "dask", "workers": args.workers},
    }
    if args.serial:
        setups["serial"] = {"executor": "serial"}
    for name, options in setups.items():
        results[name] = statistics.median(_time(jobs, **options) for _ in range(args.repeats))
    with distributed.LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs=sweep.QUIET_SCHEDULER,
        silence_logs=50,
    ) as cluster:
        address = cluster.scheduler_address
        _time(jobs[: args.workers], scheduler=address)  # workers import and compile once
        results["dask-warm"] = statistics.median(
            _time(jobs, scheduler=address) for _ in range(args.repeats)
        )
    print(
        f"{count} backtests of sma_cross per sweep ({bars:,} 1m bars each, "
        f"{first['fill_count']} fills in the first), {args.workers} workers, "
        f"{os.cpu_count()} CPUs, median of {args.repeats}"
    )
    local_rate = count / results["local"]
    for name, seconds in results.items():
        rate = count / seconds
        print(
            f"  {name:10s} {seconds:8.2f} s  {rate:8.1f} runs/s  "
            f"ratio to local {rate / local_rate:5.2f}"
        )
    dask_rate, warm_rate = count / results["dask"], count / results["dask-warm"]
    print(
        f"dask/local runs/s ratio: {dask_rate / local_rate:.2f} (new cluster), "
        f"{warm_rate / local_rate:.2f} (running cluster)"
    )
    print(f"total benchmark time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
