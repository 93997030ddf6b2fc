"""``backtester run``: one backtest, saved to ``reports/<run>/``, its summary printed."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backtester.cli.common import EXIT_OK, Subcommands, add_command, user_input
from backtester.cli.options import add_data_options, build_job, load_in_span, read_config
from backtester.io import check_name, slug

EPILOG = """examples:
  backtester run strategies/sma_cross.py --data sample
  backtester run strategies/sma_cross.py --data sample --param fast=10 --param slow=60 \\
      --leverage 20 --contract okx:BTC-USD-SWAP
  backtester run mypkg.strats:Breakout --data okx --symbol BTC-USDT-SWAP --interval 1m \\
      --start 2024-01-01 --end 2024-03-01 --margin-mode cross
  backtester run strategies/sma_cross.py --config run.toml --out reports/
"""


def add_parser(commands: Subcommands) -> None:
    """Add the ``run`` subcommand and its options to ``commands``."""
    run = add_command(
        commands,
        "run",
        "backtest one strategy",
        EPILOG,
    )
    add_data_options(run)
    run.add_argument("--out", help="output folder (default reports/)")
    run.add_argument("--name", help="run name (default <strategy>-<symbol>-<UTC time>)")
    run.add_argument(
        "--self-contained", action="store_true", help="inline plotly.js in report.html"
    )
    run.add_argument(
        "--csv",
        action="store_true",
        default=None,
        help="also write readable CSV copies of the records (default: Parquet only)",
    )
    run.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (an error in the strategy names its file, "
        "line and bar time without it)",
    )


def command(args: argparse.Namespace) -> int:
    """Run ``backtester run``: one backtest, saved to ``reports/<run>/``, summary printed.

    A progress line shows on stderr meanwhile (:mod:`backtester.progress`).
    """
    from backtester import jobs
    from backtester.progress import RunProgress, progress_wanted

    with RunProgress(0, 0, enabled=progress_wanted()) as progress:
        return _run_command(args, jobs, progress)


def _run_command(args: argparse.Namespace, jobs: Any, progress: Any) -> int:
    with user_input():
        job, cls = build_job(args)
        data = load_in_span(job["data"])
        progress.start_ns, progress.end_ns = data.start_ns, data.end_ns
        jobs.check_job(job, data)  # settings and range: bad input (exit 2), not a failed run
        config = read_config(args.config) if args.config else {}
        out = Path(args.out or config.get("out") or "reports")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        given = args.name or config.get("name")
        name = (
            check_name(given, "name")  # a directory under --out: no '..', no separators
            if given is not None
            else slug(f"{Path(job['strategy'].split(':')[0]).stem}-{job['data']['symbol']}-{stamp}")
        )
    del data  # loaded above so that data errors are input errors (exit 2); now cached
    import gc

    from backtester.report.outputs import save_run
    from backtester.report.summary import format_summary

    # what is loaded by now (numba, pandas, the data: ~10^5 objects) lives until the command
    # exits; frozen, the collector stops re-scanning it at every collection of the run and the
    # report (about 0.3 s of a run on the sample)
    gc.freeze()
    progress.phase("replay")
    result = jobs.run_backtest_job(job)
    result.config.setdefault("job", job)
    progress.phase("writing the report")
    directory = save_run(
        result, out / name, self_contained=args.self_contained,
        csv=bool(args.csv or config.get("csv")),
    )  # fmt: skip
    progress.close()  # the line is erased before the summary
    print(format_summary(result))
    print(f"report: {directory}")
    del cls
    return EXIT_OK
