"""``backtester data [EXCHANGE SYMBOL]``: list the catalog, or one dataset's span and gaps."""

from __future__ import annotations

import argparse

from backtester.checks import suggestion
from backtester.cli.common import EXIT_OK, Subcommands, add_command, user_input


def add_parser(commands: Subcommands) -> None:
    """Add the ``data`` subcommand and its options to ``commands``."""
    data = add_command(
        commands,
        "data",
        "list the catalog or show one dataset",
        "examples:\n  backtester data\n  backtester data sample BTC-USD-SWAP\n"
        "  backtester data okx BTC-USDT-SWAP --kind funding",
    )
    data.add_argument("exchange", nargs="?")
    data.add_argument("symbol", nargs="?")
    data.add_argument("--kind", help="stream kind (default: all stored kinds)")
    data.add_argument("--catalog", default="data/catalog", help="catalog root")
    data.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def command(args: argparse.Namespace) -> int:
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
