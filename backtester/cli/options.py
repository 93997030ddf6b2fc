"""The options that describe one job, shared by ``run`` and ``sweep``.

Strategy, data selection, contract and run settings, from the command line and a TOML config
file, and the job they build (:mod:`backtester.jobs`).
"""

from __future__ import annotations

import argparse
import tomllib
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backtester.checks import suggestion
from backtester.cli.common import interval_ns, parse_time

if TYPE_CHECKING:
    from backtester.jobs import StrategyClass

DEFAULT_SYMBOL = "BTC-USD-SWAP"


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add the strategy, data, contract and run-setting options of ``run`` and ``sweep``."""
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


def default_contract(source: str, symbol: str) -> str:
    """Return the contract name of the data ``source:symbol`` when no ``--contract`` is given.

    The built-in contract of that name, the sample's own contract, else the one contract of
    that symbol (preferring the source's venue); ``ValueError`` listing them when ambiguous.
    """
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


def build_job(args: argparse.Namespace) -> tuple[dict[str, Any], StrategyClass]:
    """Return the job the options and config file describe, and its strategy class.

    The job is the dict of :mod:`backtester.jobs`; names, fees and parameters are checked now,
    so that bad input is exit code 2.
    """
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
    cls = jobs.load_strategy(str(strategy))
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
        "start_ns": parse_time(option("start"), "start"),
        "end_ns": parse_time(option("end"), "end"),
        "interval_ns": interval_ns(interval) if interval else 0,
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
    contract_name = option("contract") or default_contract(source, symbol)
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


def load_in_span(selection: dict[str, Any]) -> Any:
    """Return the selected data.

    When --start/--end select nothing, the error gives the span the data covers.
    """
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
