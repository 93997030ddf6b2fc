"""``backtester report DIR``: re-render a saved run (or a sweep directory)."""

from __future__ import annotations

import argparse
from pathlib import Path

from backtester.cli.common import EXIT_OK, Subcommands, add_command, user_input


def add_parser(commands: Subcommands) -> None:
    """Add the ``report`` subcommand and its options to ``commands``."""
    report = add_command(
        commands,
        "report",
        "re-render a saved run directory",
        "examples:\n  backtester report reports/sma_cross-BTC-USD-SWAP-20240101-120000\n"
        "  backtester report reports/sweeps/sma_cross-BTC-USD-SWAP-sweep --rank-by sharpe",
    )
    report.add_argument("directory")
    report.add_argument("--rank-by", help="(sweep directories) metric to rank by")
    report.add_argument(
        "--self-contained", action="store_true", help="inline plotly.js in report.html"
    )
    report.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def command(args: argparse.Namespace) -> int:
    """``backtester report DIR``: re-render a saved run (or a sweep directory)."""
    from backtester import sweep

    directory = Path(args.directory)
    with user_input():
        if not directory.is_dir():
            raise FileNotFoundError(f"report: no such directory {str(directory)!r}")
        if (directory / "sweep.json").is_file():
            store = sweep.SweepStore(directory)
            manifest = store.read_manifest()
            records = store.records()
            dimensions = list(manifest["space"])
            rank_by = args.rank_by or manifest.get("rank_by", "sharpe")
            from backtester.cli.sweep import render_sweep

            return render_sweep(
                store, records, dimensions, rank_by, False, manifest.get("heatmap") or [], 15,
                note=f"{len(records)} stored combinations",
            )  # fmt: skip
        from backtester.report.load import load_run

        result = load_run(directory)
    from backtester.report.html import write_html
    from backtester.report.outputs import report_plotly
    from backtester.report.summary import format_summary

    options = report_plotly(directory, getattr(args, "self_contained", False))
    path = write_html(result, directory / "report.html", **options)
    print(format_summary(result))
    print(f"report: {path or directory / 'report.html'}")
    return EXIT_OK
