"""The ``backtester`` command: run, sweep, report, data, profiles, fetch and import.

Exit codes: 0 success, 2 bad input (unknown option, missing file, bad parameter — the message
says what was expected, with a "did you mean" where one fits), 1 a failure while running.
Errors are printed as one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import sys
import tomllib
import traceback
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from difflib import get_close_matches
from pathlib import Path
from typing import Any, NoReturn

from backtester.checks import suggestion
from backtester.io import check_name, slug

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_SYMBOL = "BTC-USD-SWAP"


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


@contextlib.contextmanager
def user_input() -> Iterator[None]:
    """Turn errors raised while reading the user's input into :class:`UsageError`."""
    try:
        yield
    except (ValueError, TypeError, KeyError, FileNotFoundError, tomllib.TOMLDecodeError) as error:
        raise UsageError(_one_line(error)) from error


def _one_line(error: BaseException) -> str:
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    if isinstance(error, FileNotFoundError) and error.filename and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or repr(error)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (with a suggestion) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            options = [s for a in _all_actions(self) for s in a.option_strings]
            for word in message.split(":", 1)[1].split():
                close = get_close_matches(word.split("=")[0], options, n=1)
                if word.startswith("-") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
        elif "invalid choice:" in message:
            word = message.split("invalid choice:", 1)[1].split("'")[1]
            choices = [c for a in self._actions for c in (a.choices or [])]
            close = get_close_matches(word, [str(c) for c in choices], n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        raise UsageError(message)


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions of a parser and of all its subcommand parsers."""
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions.extend(_all_actions(sub))
    return actions


# --------------------------------------------------------------------------- parser

_RUN_EPILOG = """examples:
  backtester run strategies/sma_cross.py --data sample
  backtester run strategies/sma_cross.py --data sample --param fast=10 --param slow=60 \\
      --leverage 20 --contract okx:BTC-USD-SWAP
  backtester run mypkg.strats:Breakout --data okx --symbol BTC-USDT-SWAP --interval 1m \\
      --start 2024-01-01 --end 2024-03-01 --margin-mode cross
  backtester run strategies/sma_cross.py --config run.toml --out reports/
"""

_SWEEP_EPILOG = """examples:
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

_MAIN_EPILOG = """commands:
  run        backtest one strategy and write reports/<run>/ (HTML report, ledger, fills, config)
  sweep      run a parameter grid / random search locally or on Dask; ranked table + heatmaps
  report     re-render a saved run (or sweep) directory
  data       list the data catalog, or show one dataset's span and gaps
  profiles   list venue profiles, or show one with its contracts' tier tables
  fetch      download data with ccxt into the catalog
  import     import local files (Parquet, CSV, freqtrade feather, exchange archives)

Run `backtester <command> --help` for the options and examples of each command.
"""


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and contract")
    group.add_argument("strategy", help="strategy file (path.py[:Class]) or package.module:Class")
    group.add_argument("--config", help="TOML file with any of these options ([params] table)")
    group.add_argument("--data", help="'sample' (bundled data, default) or a catalog exchange")
    group.add_argument("--symbol", help=f"instrument symbol (default {DEFAULT_SYMBOL})")
    group.add_argument("--start", help="first instant, UTC (2024-01-01 or 2024-01-01T08:00)")
    group.add_argument("--end", help="end instant, UTC, exclusive")
    group.add_argument("--interval", help="bar interval when several are stored (1m, 1h, ...)")
    group.add_argument("--catalog", help="catalog root (default data/catalog)")
    group.add_argument(
        "--trades", action="store_true", default=None, help="replay trade ticks too (if stored)"
    )
    group.add_argument(
        "--contract", help="venue:symbol, e.g. okx:BTC-USD-SWAP (default: from the data)"
    )
    group.add_argument("--profile", help="venue profile replacing the contract's (e.g. okx)")
    group.add_argument("--leverage", type=float, help="leverage (default 10)")
    group.add_argument("--margin-mode", choices=["isolated", "cross"], help="default isolated")
    group.add_argument("--maker-fee", type=float, help="maker fee rate, e.g. 0.0002")
    group.add_argument("--taker-fee", type=float, help="taker fee rate, e.g. 0.0005")
    group.add_argument(
        "--initial-balance",
        type=float,
        help="starting balance in settle currency (default 1 for coin-settled, 10000 otherwise)",
    )
    group.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="strategy parameter, typed like the class attribute (repeatable)",
    )


class _FormatsHelp(str):
    """Help text listing the importer formats, built only when help is printed.

    argparse expands a help string with ``help % params`` when it prints it; doing the lookup
    there keeps the importers (pandas, pyarrow) out of the start-up of every other command.
    """

    def __mod__(self, params: object) -> str:
        from backtester.data.importers import FORMATS

        return f"{self}: one of {', '.join(FORMATS)}"


def build_parser() -> argparse.ArgumentParser:
    """The ``backtester`` argument parser."""
    parser = _Parser(
        prog="backtester",
        description="Backtest crypto perpetual swaps with the exchange's margin, funding and "
        "liquidation rules.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    raw = argparse.RawDescriptionHelpFormatter

    run = commands.add_parser(
        "run", help="backtest one strategy", epilog=_RUN_EPILOG, formatter_class=raw
    )
    _add_data_options(run)
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

    sweep = commands.add_parser(
        "sweep", help="parameter sweep", epilog=_SWEEP_EPILOG, formatter_class=raw
    )
    _add_data_options(sweep)
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

    report = commands.add_parser(
        "report",
        help="re-render a saved run directory",
        epilog="examples:\n  backtester report reports/sma_cross-BTC-USD-SWAP-20240101-120000\n"
        "  backtester report reports/sweeps/sma_cross-BTC-USD-SWAP-sweep --rank-by sharpe",
        formatter_class=raw,
    )
    report.add_argument("directory")
    report.add_argument("--rank-by", help="(sweep directories) metric to rank by")
    report.add_argument(
        "--self-contained", action="store_true", help="inline plotly.js in report.html"
    )
    report.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    data = commands.add_parser(
        "data",
        help="list the catalog or show one dataset",
        epilog="examples:\n  backtester data\n  backtester data sample BTC-USD-SWAP\n"
        "  backtester data okx BTC-USDT-SWAP --kind funding",
        formatter_class=raw,
    )
    data.add_argument("exchange", nargs="?")
    data.add_argument("symbol", nargs="?")
    data.add_argument("--kind", help="stream kind (default: all stored kinds)")
    data.add_argument("--catalog", default="data/catalog", help="catalog root")
    data.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    profiles = commands.add_parser(
        "profiles",
        help="list venue profiles and tier tables",
        epilog="examples:\n  backtester profiles\n  backtester profiles okx_coinm_2019",
        formatter_class=raw,
    )
    profiles.add_argument("name", nargs="?")
    profiles.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    fetch = commands.add_parser(
        "fetch",
        help="download data with ccxt",
        epilog="examples:\n  backtester fetch okx BTC-USDT-SWAP --kinds bars,funding "
        "--start 2024-01-01 --end 2024-02-01",
        formatter_class=raw,
    )
    fetch.add_argument(
        "exchange", help="ccxt exchange id of the installed ccxt (okx, binanceusdm, bybit, ...)"
    )
    fetch.add_argument("symbol", help="venue id (BTC-USDT-SWAP) or ccxt symbol (BTC/USDT:USDT)")
    fetch.add_argument(
        "--kinds",
        default="bars,index_bars,mark_bars,funding",
        help="comma-separated: bars, mark_bars, index_bars, trades, funding",
    )
    fetch.add_argument("--interval", default="1m", help="candle interval (default 1m)")
    fetch.add_argument("--start", help="first instant, UTC (default: earliest available)")
    fetch.add_argument("--end", help="end instant, UTC, exclusive (default: now)")
    fetch.add_argument("--catalog", default="data/catalog", help="catalog root")
    fetch.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    import_ = commands.add_parser(
        "import",
        help="import local data files into the catalog",
        epilog="examples:\n  backtester import BTC_USDT_USDT-1m-futures.feather --format freqtrade "
        "--exchange binance --symbol BTCUSDT\n  backtester import BTCUSDT-aggTrades-2024-01-01.zip "
        "--format binance_aggtrades --exchange binance --symbol BTCUSDT\n"
        "  backtester import candles.csv --format okx_candles --exchange okx "
        "--symbol BTC-USDT-SWAP --option interval=1m",
        formatter_class=raw,
    )
    import_.add_argument("paths", nargs="+", help="files to import (one format per command)")
    import_.add_argument("--format", required=True, help=_FormatsHelp("importer"))
    import_.add_argument("--exchange", required=True, help="catalog exchange name, e.g. binance")
    import_.add_argument("--symbol", required=True, help="catalog symbol, e.g. BTCUSDT")
    import_.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="importer keyword option (repeatable), e.g. interval=1m",
    )
    import_.add_argument(
        "--columns",
        metavar="FIELD=COLUMN,...",
        help="generic format: which file column holds each field, e.g. "
        "ts_ns=time,price=px,qty_base=size (with --option kind=trades)",
    )
    import_.add_argument("--catalog", default="data/catalog", help="catalog root")
    import_.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


# --------------------------------------------------------------------------- run settings

_CONFIG_KEYS = {
    "strategy": "strategy",
    "data": "data",
    "symbol": "symbol",
    "start": "start",
    "end": "end",
    "interval": "interval",
    "catalog": "catalog",
    "trades": "trades",
    "contract": "contract",
    "profile": "profile",
    "leverage": "leverage",
    "margin_mode": "margin_mode",
    "maker_fee": "maker_fee",
    "taker_fee": "taker_fee",
    "initial_balance": "initial_balance",
    "out": "out",
    "name": "name",
    "params": "params",
}


def read_config(path: str) -> dict[str, Any]:
    """Options from a TOML file; keys as the long options (``margin_mode``), ``[params]``."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config: no such file {path!r}")
    with open(file, "rb") as handle:
        try:
            config = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"config {path}: {error}") from None
    for key in config:
        if key not in _CONFIG_KEYS:
            raise ValueError(f"config {path}: unknown key {key!r}; {suggestion(key, _CONFIG_KEYS)}")
    if "params" in config and not isinstance(config["params"], dict):
        raise ValueError(f"config {path}: params must be a table ([params])")
    return config


def _parse_time(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    import pandas as pd

    try:
        stamp = pd.Timestamp(str(text))
    except ValueError:
        raise ValueError(f"{name}: cannot read {text!r} as a date (e.g. 2024-01-01)") from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def _default_contract(source: str, symbol: str) -> str:
    from backtester.swap import list_contracts

    names = list_contracts()
    if f"{source}:{symbol}" in names:
        return f"{source}:{symbol}"
    matches = [n for n in names if n.partition(":")[2] == symbol]
    if source == "sample":
        from backtester.data import sample

        contracts = getattr(sample, "SAMPLE_CONTRACTS", {})
        if symbol in contracts:
            return str(contracts[symbol])
    preferred = [n for n in matches if n.startswith(f"{source}")]
    if len(preferred) == 1:
        return preferred[0]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(
        f"contract: cannot tell the contract of {source}:{symbol}; pass --contract "
        f"(one of {', '.join(matches or names)})"
    )


def build_job(args: argparse.Namespace) -> tuple[dict[str, Any], type]:
    """The job dict (see :mod:`backtester.sweep`) described by the options and config file."""
    from backtester import jobs

    config = read_config(args.config) if args.config else {}

    def option(name: str, default: Any = None) -> Any:
        value = getattr(args, name, None)
        if value is None or value == []:
            value = config.get(name, default)
        return value

    strategy = args.strategy if args.strategy else config.get("strategy")
    if (strategy and strategy.endswith(".py")) or (strategy and Path(strategy).exists()):
        strategy = str(Path(strategy).resolve())
    elif strategy and ".py:" in strategy:
        file, _, cls = strategy.rpartition(":")
        strategy = f"{Path(file).resolve()}:{cls}"
    cls = jobs.load_strategy(strategy)
    source = option("data", "sample")
    if source != "sample" and get_close_matches(source, ["sample"], n=1, cutoff=0.7):
        from backtester.data.catalog import Catalog

        stored = Catalog(option("catalog") or "data/catalog").datasets()
        if source not in set(stored.get("exchange", [])):
            raise ValueError(
                f"data: {source!r} is neither the bundled 'sample' nor an exchange in the "
                "catalog; did you mean 'sample'?"
            )
    symbol = option("symbol", DEFAULT_SYMBOL)
    interval = option("interval")
    catalog = option("catalog")
    selection = {
        "source": source,
        "symbol": symbol,
        "start_ns": _parse_time(option("start"), "start"),
        "end_ns": _parse_time(option("end"), "end"),
        "interval_ns": _interval_ns(interval) if interval else 0,
        "catalog": str(Path(catalog).resolve()) if catalog else None,
        # a strategy listening to trades gets them without --trades
        "with_trades": bool(option("trades", "on_trade" in cls.subscribed())),
    }
    if (
        selection["start_ns"] is not None
        and selection["end_ns"] is not None
        and selection["end_ns"] <= selection["start_ns"]
    ):
        raise ValueError(f"end: {option('end')!r} is not after start {option('start')!r}")
    contract_name = option("contract") or _default_contract(source, symbol)
    job: dict[str, Any] = {
        "strategy": strategy,
        "data": selection,
        "contract": contract_name,
        "profile": option("profile"),
        "leverage": float(option("leverage", 10.0)),
        "margin_mode": option("margin_mode", "isolated"),
        "maker_fee_rate": option("maker_fee"),
        "taker_fee_rate": option("taker_fee"),
    }
    contract = jobs.build_contract(job)  # validates the names and fees now (exit code 2)
    balance = option("initial_balance")
    if balance is None:
        balance = 1.0 if contract.settle_currency in ("BTC", "XBT", "ETH") else 10_000.0
    job["initial_balance"] = float(balance)
    params: dict[str, Any] = {}
    for name, value in (config.get("params") or {}).items():
        params[name] = jobs.coerce_parameter(cls, name, value)
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"param: expected NAME=VALUE, got {item!r}")
        params[name.strip()] = jobs.coerce_parameter(cls, name.strip(), value)
    job["params"] = params
    return job, cls


def _load_in_span(selection: dict[str, Any]) -> Any:
    """The selected data; when --start/--end select nothing, the error gives the data's span."""
    from backtester import jobs

    try:
        data = jobs.load_data(selection)
        _ = data.start_ns  # ValueError when the selection holds no event
        return data
    except ValueError as error:
        if selection.get("start_ns") is None and selection.get("end_ns") is None:
            raise
        try:
            whole = jobs.load_data({**selection, "start_ns": None, "end_ns": None})
        except ValueError:
            raise error from None
        import pandas as pd

        def day(ns: int | None) -> str:
            return "…" if ns is None else str(pd.Timestamp(ns, unit="ns", tz="UTC"))[:19]

        raise jobs.no_market_data_error(
            selection, f"the data covers {day(whole.start_ns)} to {day(whole.end_ns)}"
        ) from None


def _interval_ns(label: str) -> int:
    from backtester.data.intervals import parse_interval

    return parse_interval(label)


def _progress_enabled() -> bool:
    return sys.stderr.isatty()


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    """``backtester run``: one backtest, saved to ``reports/<run>/``, summary printed, with a
    progress line on stderr meanwhile (:mod:`backtester.progress`)."""
    from backtester import jobs
    from backtester.progress import RunProgress, progress_wanted

    with RunProgress(0, 0, enabled=progress_wanted()) as progress:
        return _run_command(args, jobs, progress)


def _run_command(args: argparse.Namespace, jobs: Any, progress: Any) -> int:
    with user_input():
        job, cls = build_job(args)
        data = _load_in_span(job["data"])
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


def _sweep_space(args: argparse.Namespace, cls: type) -> dict[str, list[Any]]:
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


def cmd_sweep(args: argparse.Namespace) -> int:
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
        "progress": _progress_enabled(),
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
                raise UsageError(_one_line(error)) from error
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
        print(_table(frame[[c for c in dict.fromkeys(shown) if c in frame.columns]], len(frame)))
        print(f"results: {path}")
        print(f"report: {page}")
        return EXIT_OK
    combo_jobs = [sweep.apply_combination(job, combo) for combo in combos]
    outcome = sweep.run_jobs(jobs.evaluate_backtest, combo_jobs, store, **options)
    return _render_sweep(
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


def _render_sweep(
    store: Any,
    records: list[dict[str, Any]],
    dimensions: list[str],
    rank_by: str,
    ascending: bool,
    heatmap: list[str],
    top: int,
    note: str,
    reports: int = 0,
) -> int:
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
    print(_table(ranked[_console_columns(ranked, dimensions, rank_by)], top))
    print(f"results: {store.directory / 'results.csv'}")
    print(f"report: {html}")
    failed = ranked[ranked["status"] == "error"]
    if len(failed):
        print(f"{len(failed)} combinations failed; first error: {failed['error'].iloc[0]}")
    return EXIT_OK


def _run_reports(store: Any, records: list[dict[str, Any]], ranked: Any, top: int) -> dict:
    """Write the run reports of the ``top`` best ok combinations under ``runs/<key>/`` (those
    already there are kept) and return every existing one as key → path relative to the page.
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


def _console_columns(frame: Any, dimensions: list[str], rank_by: str) -> list[str]:
    """The swept parameters, the rank metric, a handful of key metrics, then the status (and
    the error column when a combination failed)."""
    wanted = [*dimensions, rank_by, *_CONSOLE_METRICS, "status"]
    if (frame["status"] != "ok").any():
        wanted.append("error")
    return [c for c in dict.fromkeys(wanted) if c in frame.columns]


def _table(frame: Any, rows: int) -> str:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30):
        return frame.head(rows).to_string(index=False, float_format=lambda v: f"{v:.6g}")


def cmd_report(args: argparse.Namespace) -> int:
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
            return _render_sweep(
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


def cmd_data(args: argparse.Namespace) -> int:
    """``backtester data [EXCHANGE SYMBOL]``: list datasets or show one's span and gaps."""
    from backtester.data.catalog import Catalog
    from backtester.data.validation import find_gaps

    catalog = Catalog(args.catalog)
    with user_input():  # a corrupt catalog file is bad input named by its path (exit 2)
        frame = catalog.datasets()
        if args.symbol is None and args.exchange is not None:
            raise ValueError("data: give both EXCHANGE and SYMBOL, or neither")
        if args.exchange is None:
            if frame.empty:
                print(f"catalog {args.catalog}: empty (see `backtester fetch` / `import`)")
                return EXIT_OK
            columns = ["exchange", "symbol", "kind", "interval", "rows", "start", "end"]
            print(frame[columns].to_string(index=False))
            return EXIT_OK
        chosen = frame[(frame["exchange"] == args.exchange) & (frame["symbol"] == args.symbol)]
        if chosen.empty:
            pairs = sorted(
                {f"{e} {s}" for e, s in zip(frame["exchange"], frame["symbol"], strict=False)}
            )
            raise ValueError(
                f"data: no dataset {args.exchange} {args.symbol} in {args.catalog}; "
                f"{suggestion(f'{args.exchange} {args.symbol}', pairs) if pairs else 'empty'}"
            )
        if args.kind:
            kinds = sorted(set(chosen["kind"]))
            if args.kind not in kinds:
                raise ValueError(
                    f"kind: unknown value {args.kind!r}; {suggestion(args.kind, kinds)}"
                )
            chosen = chosen[chosen["kind"] == args.kind]
    for _, row in chosen.iterrows():
        label = f"{row['kind']}{'-' + row['interval'] if row['interval'] else ''}"
        print(f"{label}: {row['rows']:,} rows, {row['start']} → {row['end']} ({row['source']})")
        if row["interval_ns"]:
            with user_input():
                records = catalog.read(
                    row["kind"], args.exchange, args.symbol, interval_ns=int(row["interval_ns"])
                )
            print(
                "  "
                + str(find_gaps(records["ts_ns"], int(row["interval_ns"]))).replace("\n", "\n  ")
            )
    return EXIT_OK


def cmd_profiles(args: argparse.Namespace) -> int:
    """``backtester profiles [NAME]``: venue profiles, one profile's rules and tier tables."""
    from backtester.swap import get_contract, get_profile, list_contracts, list_profiles

    if args.name is None:
        for name in list_profiles():
            print(f"{name:16s} {get_profile(name).description}")
        print("\ncontracts: " + ", ".join(list_contracts()))
        return EXIT_OK
    with user_input():
        if args.name not in list_profiles() and args.name not in list_contracts():
            raise ValueError(
                f"profiles: unknown profile {args.name!r}; "
                f"{suggestion(args.name, list_profiles() + list_contracts())}"
            )
    import pandas as pd

    if args.name in list_contracts():
        contracts = [args.name]
        profile = get_contract(args.name).profile
    else:
        profile = get_profile(args.name)
        contracts = [c for c in list_contracts() if c.partition(":")[0] == args.name]
    print(f"profile {profile.name}: {profile.description}")
    from backtester.swap.profiles import profile_to_dict

    for key, value in profile_to_dict(profile).items():
        if key not in ("sources", "description", "name"):
            source = profile.sources.get(key, "")
            print(f"  {key:30s} {value!s:24s} {source}")
    for name in contracts:
        spec = get_contract(name)
        print(f"\ncontract {name}: {spec.contract_kind.name.lower()}, face {spec.face_value:g}, "
              f"settle {spec.settle_currency}, fees maker {spec.maker_fee_rate:g} / taker "
              f"{spec.taker_fee_rate:g}")  # fmt: skip
        for table in spec.tiers.tables:
            start = pd.Timestamp(table.valid_from_ns, unit="ns", tz="UTC")
            print(f"  tiers ({table.basis.name.lower()}) valid from {start}: {table.source}")
            frame = pd.DataFrame(table.to_records())
            print("    " + frame.to_string(index=False).replace("\n", "\n    "))
    print(
        "\nsources: 'MECHANICS.md §n' is a section of the project's notes on exchange rules; "
        "docs/SOURCES.md lists the exchange pages of each section"
    )
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    """``backtester fetch``: download with ccxt (delegates to ``backtester.data.fetch``).

    Everything the user typed is checked before the first request, so a typo is exit code 2
    and not a network round trip; a download that fails is exit code 1.
    """
    from backtester.extras import MissingExtraError, require

    try:
        ccxt = require("ccxt", "fetch", "backtester fetch")  # an optional dependency
        from backtester.data import fetch
    except MissingExtraError as error:
        raise UsageError(str(error)) from None

    with user_input():
        if args.exchange not in ccxt.exchanges:
            raise ValueError(
                f"exchange: ccxt has no exchange {args.exchange!r}; "
                f"{_close_or_examples(args.exchange, ccxt.exchanges)}"
            )
        check_name(args.symbol, "symbol", allow_slash=True)
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        allowed = [k for k in fetch.KINDS if k != "tiers"]  # tiers need a basis: use the API
        for kind in kinds or [""]:
            if kind not in allowed:
                raise ValueError(f"kinds: unknown kind {kind!r}; {suggestion(kind, allowed)}")
        start = _parse_time(args.start, "start")
        end = _parse_time(args.end, "end")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end: {args.end!r} is not after start {args.start!r}")
        interval = _interval_ns(args.interval)
    try:
        written = fetch.fetch_to_catalog(
            args.exchange, args.symbol, kinds=kinds, start_ns=start, end_ns=end,
            interval_ns=interval, catalog=args.catalog,
        )  # fmt: skip
    except ValueError as error:
        if str(error).startswith("symbol:"):  # the market list showed the symbol is unknown
            raise UsageError(_one_line(error)) from error
        raise
    for kind, rows in written.items():
        print(f"{args.exchange} {args.symbol} {kind}: {rows:,} rows written to {args.catalog}")
    return EXIT_OK


def _close_or_examples(value: str, names: Sequence[str]) -> str:
    close = get_close_matches(value, list(names), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "e.g. " + ", ".join(e for e in _FETCH_EXAMPLES if e in names)


_FETCH_EXAMPLES = ("okx", "binanceusdm", "binancecoinm", "bybit", "bitmex", "deribit")
"""Venues named in fetch messages, each only if the installed ccxt provides it."""


_IMPORT_INPUT_ERRORS = (
    ValueError,  # includes UnicodeDecodeError, pandas/pyarrow parse errors, JSONDecodeError
    TypeError,
    KeyError,
    IndexError,
    zipfile.BadZipFile,
    gzip.BadGzipFile,
    EOFError,  # truncated gzip / zip member
)
"""What an importer raises on a file that is not of the format it was told (exit code 2)."""


def _import_error(path: str, format: str, error: BaseException) -> str:
    """One line naming the file and the format it was read as."""
    text = _one_line(error)
    if isinstance(error, UnicodeDecodeError | zipfile.BadZipFile | gzip.BadGzipFile | EOFError):
        text = f"cannot read it as {format} ({text}); is --format right?"
    if Path(path).name not in text:
        text = f"{path}: {text}"
    return f"import: {text}"


def _check_import_options(format: str, options: dict[str, Any]) -> None:
    """Refuse ``--option`` names the importer of ``format`` does not take, before reading.

    Importers take their options as keyword-only arguments; the two Binance trade formats
    wrap :func:`import_binance_trades` with ``aggregated`` fixed.
    """
    import inspect

    from backtester.data import importers

    function = importers.FORMATS[format]
    fixed: set[str] = set()
    if format in ("binance_aggtrades", "binance_trades"):
        function, fixed = importers.import_binance_trades, {"aggregated"}
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return  # takes anything: the importer itself checks
    accepted = [
        name
        for name, p in parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in fixed
    ]
    for name in options:
        if name not in accepted:
            raise ValueError(
                f"option: the {format} importer has no option {name!r}; "
                + (suggestion(name, accepted) if accepted else "it takes no options")
            )
    required = [n for n in accepted if parameters[n].default is inspect.Parameter.empty]
    for name in required:
        if name not in options:
            raise ValueError(f"option: the {format} importer needs --option {name}=VALUE")


def cmd_import(args: argparse.Namespace) -> int:
    """``backtester import``: import local files (delegates to ``backtester.data.importers``)."""
    from backtester import jobs
    from backtester.data.catalog import Catalog
    from backtester.data.importers import FORMATS, import_file

    with user_input():
        if args.format not in FORMATS:
            raise ValueError(
                f"format: unknown value {args.format!r}; {suggestion(args.format, FORMATS)}"
            )
        options: dict[str, Any] = {}
        for item in args.option:
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"option: expected NAME=VALUE, got {item!r}")
            options[name.strip()] = jobs.parse_scalar(value)
        if args.columns is not None:
            if args.format != "generic":
                raise ValueError(
                    f"columns: only the generic format takes --columns, not {args.format}"
                )
            options["columns"] = args.columns
        _check_import_options(args.format, options)
        check_name(args.exchange, "exchange")  # catalog directories: no '..' or separators
        check_name(args.symbol, "symbol", allow_slash=True)
        for path in args.paths:
            if Path(path).is_dir():
                raise ValueError(f"import: {path!r} is a directory; expected a data file")
            if not Path(path).is_file():
                raise FileNotFoundError(f"import: no such file {path!r}")
    catalog = Catalog(args.catalog)
    lines = []
    with catalog.transaction():  # all files or none: a refused file discards the others
        for path in args.paths:
            try:
                streams = import_file(
                    path, args.format, args.exchange, args.symbol, catalog, **options
                )
            except _IMPORT_INPUT_ERRORS as error:
                # a file the importer refuses is bad input (exit 2); the transaction is
                # discarded, so the catalog is unchanged
                raise UsageError(_import_error(path, args.format, error)) from error
            for stream in streams:
                gaps = f", {stream.gaps}".split("\n")[0].rstrip(":") if stream.gaps else ""
                lines.append(f"{path}: {stream.kind} {len(stream.records):,} rows{gaps}")
    print("\n".join(lines))
    return EXIT_OK


_COMMANDS = {
    "run": cmd_run,
    "sweep": cmd_sweep,
    "report": cmd_report,
    "data": cmd_data,
    "profiles": cmd_profiles,
    "fetch": cmd_fetch,
    "import": cmd_import,
}


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    """Warnings of a run as one line on stderr, ``backtester: warning: ...`` (not the
    interpreter's file:line of the library call that emitted them)."""
    from backtester.progress import line_erased

    with line_erased():  # a progress line being drawn is erased first (redrawn after)
        print(f"backtester: warning: {category.__name__}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``backtester`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if not debug:
        import warnings

        warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except UsageError as error:
        if debug:
            traceback.print_exc()
        print(f"backtester: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (silence the flush at exit)
        return EXIT_OK
    except KeyboardInterrupt:
        print("backtester: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        from backtester.errors import StrategyError

        # a strategy's error already says what was raised, where and when
        kind = "" if isinstance(error, StrategyError) else f"{type(error).__name__}: "
        print(f"backtester: error: {kind}{_one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
