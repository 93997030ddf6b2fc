"""``backtester fetch``: download market data with ccxt into the catalog."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from difflib import get_close_matches

from backtester.checks import suggestion
from backtester.cli.common import (
    EXIT_OK,
    Subcommands,
    UsageError,
    add_command,
    interval_ns,
    one_line,
    parse_time,
    user_input,
)
from backtester.io import check_name


def add_parser(commands: Subcommands) -> None:
    """Add the ``fetch`` subcommand and its options to ``commands``."""
    fetch = add_command(
        commands,
        "fetch",
        "download data with ccxt",
        "examples:\n  backtester fetch okx BTC-USDT-SWAP --kinds bars,funding "
        "--start 2024-01-01 --end 2024-02-01",
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


def command(args: argparse.Namespace) -> int:
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
        start = parse_time(args.start, "start")
        end = parse_time(args.end, "end")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end: {args.end!r} is not after start {args.start!r}")
        interval = interval_ns(args.interval)
    try:
        written = fetch.fetch_to_catalog(
            args.exchange, args.symbol, kinds=kinds, start_ns=start, end_ns=end,
            interval_ns=interval, catalog=args.catalog,
        )  # fmt: skip
    except ValueError as error:
        if str(error).startswith("symbol:"):  # the market list showed the symbol is unknown
            raise UsageError(one_line(error)) from error
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
