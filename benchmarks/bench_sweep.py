"""Sweep throughput: runs/s of the same 100-combination grid, local processes vs Dask.

Each combination is a real backtest of ``strategies/sma_cross.py`` on the bundled sample data.
Measured (median of ``--repeats`` runs, each into a fresh sweep directory so nothing is resumed):

* ``serial``        in this process (the floor, no parallelism);
* ``local``         ProcessPoolExecutor (spawn), pool start included;
* ``dask``          a new ``LocalCluster(n_workers=W, threads_per_worker=1)``, start included;
* ``dask-warm``     an already running LocalCluster reached by its address (steady state).

Usage::

    python benchmarks/bench_sweep.py [--workers 2] [--combinations 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from backtester import sweep

REPO = Path(__file__).resolve().parents[1]


def _jobs(combinations: int, start: str | None, end: str | None) -> list[dict]:
    import pandas as pd

    from backtester.cli import _default_contract

    selection = {
        "source": "sample",
        "symbol": "BTC-USD-SWAP",
        "start_ns": None if start is None else int(pd.Timestamp(start, tz="UTC").value),
        "end_ns": None if end is None else int(pd.Timestamp(end, tz="UTC").value),
        "interval_ns": 0,
        "catalog": None,
    }
    base = {
        "strategy": str(REPO / "strategies" / "sma_cross.py"),
        "data": selection,
        "contract": _default_contract("sample", "BTC-USD-SWAP"),
        "profile": None,
        "leverage": 10.0,
        "margin_mode": "isolated",
        "maker_fee_rate": None,
        "taker_fee_rate": None,
        "initial_balance": 1.0,
        "params": {},
    }
    side = max(1, round(combinations**0.5))
    space = {
        "fast": list(range(5, 5 + 2 * side, 2)),
        "slow": list(range(30, 30 + 5 * side, 5)),
    }
    combos = sweep.grid_combinations(space)[:combinations]
    return [sweep.apply_combination(base, c) for c in combos]


def _time(jobs: list[dict], **options: object) -> float:
    with tempfile.TemporaryDirectory() as directory:
        store = sweep.SweepStore(directory)
        started = time.perf_counter()
        run = sweep.run_jobs(
            sweep.evaluate_backtest,
            jobs,
            store,
            preload=sweep.preload_data(jobs[0]["data"]),
            **options,
        )
        elapsed = time.perf_counter() - started
    if run.failed:
        errors = {r["error"] for r in run.records if r["status"] == "error"}
        raise RuntimeError(f"{run.failed} runs failed: {sorted(errors)[:3]}")
    return elapsed


def main() -> None:
    """Print runs/s per executor and the ratios to the local process pool."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--combinations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--start", default=None, help="cut the sample data (UTC date)")
    parser.add_argument("--end", default=None)
    args = parser.parse_args()
    jobs = _jobs(args.combinations, args.start, args.end)
    count = len(jobs)
    sweep.evaluate_backtest(jobs[0])  # compile/load caches once, outside the timings

    import distributed

    results: dict[str, float] = {}
    setups = {
        "serial": {"executor": "serial"},
        "local": {"executor": "local", "workers": args.workers},
        "dask": {"executor": "dask", "workers": args.workers},
    }
    for name, options in setups.items():
        times = [_time(jobs, **options) for _ in range(args.repeats)]
        results[name] = statistics.median(times)
    with distributed.LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        _time(jobs[: args.workers], scheduler=cluster.scheduler_address)  # warm the workers
        times = [_time(jobs, scheduler=cluster.scheduler_address) for _ in range(args.repeats)]
        results["dask-warm"] = statistics.median(times)
    print(f"{count} backtests per sweep, {args.workers} workers, median of {args.repeats}")
    for name, seconds in results.items():
        print(
            f"  {name:10s} {seconds:8.2f} s  {count / seconds:8.1f} runs/s  "
            f"ratio to local {results['local'] / seconds:5.2f}"
        )


if __name__ == "__main__":
    main()
