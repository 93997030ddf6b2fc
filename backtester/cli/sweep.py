"""``backtester sweep``: a parameter grid or random search, optionally walk-forward."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backtester.checks import suggestion
from backtester.cli.common import (
    EXIT_OK,
    Subcommands,
    UsageError,
    add_command,
    one_line,
    progress_enabled,
    table,
    user_input,
)
from backtester.cli.options import add_data_options, build_job
from backtester.io import check_name, slug

if TYPE_CHECKING:
    import pandas as pd

    from backtester.jobs import StrategyClass
    from backtester.sweep import SweepStore

EPILOG = """examples:
  backtester sweep strategies/sma_cross.py --data sample --grid fast=5:50:5 slow=50:300:25
  backtester sweep strategies/sma_cross.py --data sample --grid fast=5,10,20 leverage=5,10,50 \\
      --rank-by sharpe --executor dask --workers 4
  backtester sweep strategies/sma_cross.py --data sample --grid fast=5:50:5 slow=50:300:25 \\
      --random 40 --scheduler tcp://10.0.0.5:8786
  backtester sweep strategies/sma_cross.py --data sample --grid fast=5:30:5 \\
      --walk-forward train=20d,test=10d

Grid values: start:stop:step (inclusive) or a,b,c. Besides strategy parameters you can sweep
leverage, margin_mode, maker_fee_rate, taker_fee_rate and profile (a venue profile name).
Results are stored per combination in the sweep directory: run the same command again to
resume an interrupted sweep (only missing combinations are computed).
"""


def add_parser(commands: Subcommands) -> None:
    """Add the ``sweep`` subcommand and its options to ``commands``."""
    sweep = add_command(
        commands,
        "sweep",
        "parameter sweep",
        EPILOG,
    )
    add_data_options(sweep)
    sweep.add_argument("--grid", nargs="+", default=[], metavar="NAME=VALUES")
    sweep.add_argument("--random", type=int, metavar="N", help="sample N combinations of the grid")
    sweep.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    sweep.add_argument(
        "--rank-by", default="sharpe", help="metric to rank by (default sharpe; e.g. total_return)"
    )
    sweep.add_argument("--ascending", action="store_true", help="smaller --rank-by is better")
    sweep.add_argument("--heatmap", metavar="X,Y", help="two swept parameters for the heatmap")
    sweep.add_argument("--executor", choices=["local", "dask", "serial"], default="local")
    sweep.add_argument("--workers", type=int, help="processes / Dask workers (default: CPUs)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler")
    sweep.add_argument("--walk-forward", metavar="train=60d,test=20d[,step=20d]")
    sweep.add_argument("--out", help="sweep folder (default reports/sweeps/<name>)")
    sweep.add_argument(
        "--name", help="sweep name (default <strategy>-<symbol>, in reports/sweeps/<name>/)"
    )
    sweep.add_argument("--top", type=int, default=15, help="rows of the ranked table to print")
    sweep.add_argument(
        "--reports", type=int, default=0, metavar="N",
        help="write the run report of the N best combinations (linked from sweep.html)",
    )  # fmt: skip
    sweep.add_argument("--retry-errors", action="store_true", help="re-run failed combinations")
    sweep.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def _sweep_space(args: argparse.Namespace, cls: StrategyClass) -> dict[str, list[Any]]:
    from backtester import jobs, sweep

    space = sweep.parse_space(args.grid)
    if not space:
        raise ValueError("grid: give at least one dimension, e.g. --grid fast=5:50:5")
    params = jobs.strategy_parameters(cls)
    for name, values in space.items():
        if name in sweep.RUN_SETTINGS:
            continue
        if name not in params:
            known = list(params) + list(sweep.RUN_SETTINGS)
            raise ValueError(
                f"grid: {cls.__name__} has no parameter {name!r}; {suggestion(name, known)}"
            )
        space[name] = [jobs.coerce_parameter(cls, name, v) for v in values]
    return space


def command(args: argparse.Namespace) -> int:
    """``backtester sweep``: grid/random search, optionally walk-forward."""
    from backtester import jobs, sweep

    with user_input():
        job, cls = build_job(args)
        space = _sweep_space(args, cls)
        # a bad --rank-by is refused now, not once every combination has run
        from backtester.enums import ContractKind

        inverse = jobs.build_contract(job).contract_kind == ContractKind.INVERSE
        sweep.check_rank_by(args.rank_by, list(space), inverse)
        combos = (
            sweep.random_combinations(space, args.random, args.seed)
            if args.random
            else sweep.grid_combinations(space)
        )
        heatmap = args.heatmap.split(",") if args.heatmap else list(space)[:2]
        for name in heatmap:
            if name not in space:
                raise ValueError(f"heatmap: {name!r} is not swept; {suggestion(name, space)}")
        if len(heatmap) != 2:
            heatmap = []
        name = (
            check_name(args.name, "name")
            if args.name is not None
            else slug(f"{Path(job['strategy'].split(':')[0]).stem}-{job['data']['symbol']}")
        )
        directory = Path(args.out) if args.out else Path("reports") / "sweeps" / name
        windows = None
        if args.walk_forward:
            train_ns, test_ns, step_ns = sweep.parse_walk_forward(args.walk_forward)
            data = jobs.load_data(job["data"])
            windows = sweep.walk_forward_windows(
                data.start_ns, data.end_ns, train_ns, test_ns, step_ns
            )
        else:
            jobs.check_job(job, jobs.load_data(job["data"]))  # data errors are input errors
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"workers: expected a value >= 1, got {args.workers}")
    store = sweep.SweepStore(directory)
    store.write_manifest(
        {"base_job": job, "space": space, "random": args.random, "seed": args.seed,
         "walk_forward": args.walk_forward, "rank_by": args.rank_by, "heatmap": heatmap}
    )  # fmt: skip
    options = {
        "executor": args.executor,
        "workers": args.workers,
        "scheduler": args.scheduler,
        "preload": jobs.preload_data(job["data"]),  # walk-forward windows are cut from it
        "progress": progress_enabled(),
        "retry_errors": args.retry_errors,
    }
    if windows:
        try:
            frame, executed = sweep.run_walk_forward(
                jobs.evaluate_backtest, job, combos, windows, store,
                rank_by=args.rank_by, ascending=args.ascending, **options,
            )  # fmt: skip
        except ValueError as error:
            if str(error).startswith("rank-by:"):  # metric names are known once a run is done
                raise UsageError(one_line(error)) from error
            raise
        path = directory / "walk_forward.csv"
        frame.to_csv(path, index=False)
        from backtester.report.sweep_page import write_walk_forward_page

        page = write_walk_forward_page(
            frame, directory / "walk_forward.html", rank_by=args.rank_by, dimensions=list(space),
            title=f"Walk-forward {directory.name}",
        )  # fmt: skip
        print(f"walk-forward: {len(windows)} windows, {executed} runs executed now")
        shown = ["test_start", "test_end", *space, f"is_{args.rank_by}", "oos_status"]
        shown += [
            f"oos_{m}" for m in (args.rank_by, "total_return", "max_drawdown", "liquidations")
        ]
        print(table(frame[[c for c in dict.fromkeys(shown) if c in frame.columns]], len(frame)))
        print(f"results: {path}")
        print(f"report: {page}")
        return EXIT_OK
    combo_jobs = [sweep.apply_combination(job, combo) for combo in combos]
    outcome = sweep.run_jobs(jobs.evaluate_backtest, combo_jobs, store, **options)
    return render_sweep(
        store, outcome.records, list(space), args.rank_by, args.ascending, heatmap, args.top,
        note=f"{len(combo_jobs)} combinations, {outcome.executed} executed now, "
        f"{len(combo_jobs) - outcome.executed} already stored, {outcome.failed} failed now"
        + (
            f"\nreused {len(combo_jobs) - outcome.executed} stored results: same parameters, "
            "strategy source (and the project modules it imports), data files and engine "
            "version; editing any of them recomputes"
            if outcome.executed < len(combo_jobs)
            else ""
        ),
        reports=max(0, args.reports),
    )  # fmt: skip


def render_sweep(
    store: SweepStore,
    records: list[dict[str, Any]],
    dimensions: list[str],
    rank_by: str,
    ascending: bool,
    heatmap: list[str],
    top: int,
    note: str,
    reports: int = 0,
) -> int:
    """Rank the records, write ``results.csv`` and ``sweep.html``, print the best rows.

    Used by ``sweep`` and by ``report`` on a sweep folder. ``reports``: how many of the best
    combinations get a run report (linked from the page).
    """
    from backtester import sweep
    from backtester.report.sweep_page import write_sweep_page

    sweep.check_some_ok(records, "sweep")  # nothing to rank: a failure, exit code 1
    with user_input():  # ranked on the records; the table is built for the outputs only
        ranked_records = sweep.rank_records(records, rank_by, dimensions, ascending=ascending)
    ranked = sweep.results_frame(ranked_records, dimensions)
    ranked = ranked.drop(columns=[c for c in ranked.columns if c.startswith("worker_")])
    ranked.drop(columns=["key"]).to_csv(store.directory / "results.csv", index=False)
    links = _run_reports(store, records, ranked, reports)
    html = write_sweep_page(
        ranked, store.directory / "sweep.html", rank_by=rank_by, dimensions=dimensions,
        heatmap=heatmap, title=f"Sweep {store.directory.name}", reports=links,
    )  # fmt: skip
    print(note)
    print(table(ranked[_console_columns(ranked, dimensions, rank_by)], top))
    print(f"results: {store.directory / 'results.csv'}")
    print(f"report: {html}")
    failed = ranked[ranked["status"] == "error"]
    if len(failed):
        print(f"{len(failed)} combinations failed; first error: {failed['error'].iloc[0]}")
    return EXIT_OK


def _run_reports(
    store: SweepStore, records: list[dict[str, Any]], ranked: pd.DataFrame, top: int
) -> dict[str, str]:
    """Write the run reports of the ``top`` best ok combinations under ``runs/<key>/``.

    Those already there are kept. Return every existing one as key → path relative to the page.
    """
    from backtester import jobs
    from backtester.report.outputs import save_run

    by_key = {r["key"]: r["job"] for r in records}
    best = ranked[ranked["status"] == "ok"]["key"].head(top).tolist()
    for key in best:
        target = store.directory / "runs" / key
        if (target / "report.html").is_file():
            continue
        result = jobs.run_backtest_job(by_key[key])
        result.config.setdefault("job", by_key[key])
        save_run(result, target, shared_dir=store.directory)
    return {
        key: f"runs/{key}/report.html"
        for key in ranked["key"].tolist()
        if (store.directory / "runs" / key / "report.html").is_file()
    }


# the few metrics the console shows after the parameters and the rank metric (every metric is
# in results.csv and sweep.html)
_CONSOLE_METRICS = ("total_return", "max_drawdown", "sharpe", "liquidations", "fill_count")


def _console_columns(frame: pd.DataFrame, dimensions: list[str], rank_by: str) -> list[str]:
    """Return the console's columns: the swept parameters, the rank metric, key metrics, status.

    The error column is added when a combination failed.
    """
    wanted = [*dimensions, rank_by, *_CONSOLE_METRICS, "status"]
    if (frame["status"] != "ok").any():
        wanted.append("error")
    return [c for c in dict.fromkeys(wanted) if c in frame.columns]
