"""``backtester import``: import local data files into the catalog."""

from __future__ import annotations

import argparse
import gzip
import zipfile
from pathlib import Path
from typing import Any

from backtester.checks import suggestion
from backtester.cli.common import (
    EXIT_OK,
    Subcommands,
    UsageError,
    add_command,
    one_line,
    user_input,
)
from backtester.io import check_name


class _FormatsHelp(str):
    """Help text listing the importer formats, built only when help is printed.

    argparse expands a help string with ``help % params`` when it prints it; doing the lookup
    there keeps the importers (pandas, pyarrow) out of the start-up of every other command.
    """

    def __mod__(self, params: object) -> str:
        from backtester.data.importers import FORMATS

        return f"{self}: one of {', '.join(FORMATS)}"


def add_parser(commands: Subcommands) -> None:
    """Add the ``import`` subcommand and its options to ``commands``."""
    import_ = add_command(
        commands,
        "import",
        "import local data files into the catalog",
        "examples:\n  backtester import BTC_USDT_USDT-1m-futures.feather --format freqtrade "
        "--exchange binance --symbol BTCUSDT\n  backtester import BTCUSDT-aggTrades-2024-01-01.zip "
        "--format binance_aggtrades --exchange binance --symbol BTCUSDT\n"
        "  backtester import candles.csv --format okx_candles --exchange okx "
        "--symbol BTC-USDT-SWAP --option interval=1m",
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
    text = one_line(error)
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


def command(args: argparse.Namespace) -> int:
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
