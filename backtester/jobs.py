"""The job layer: one backtest described as a JSON-serialisable dict, and how to run it.

A *job* fully describes one backtest: strategy reference, data selection, contract, venue
profile, leverage, margin mode, fees, initial balance and strategy parameters::

    {"strategy": "strategies/sma_cross.py", "data": {"source": "sample", "symbol": ...,
     "start_ns": ..., "end_ns": ..., "interval_ns": ..., "catalog": ..., "with_trades": ...},
     "contract": "okx:BTC-USD-SWAP", "profile": None, "leverage": 10.0,
     "margin_mode": "isolated", "maker_fee_rate": None, "taker_fee_rate": None,
     "initial_balance": 1.0, "params": {"fast": 10}}

``backtester run`` builds one job from its options and runs it (:func:`run_backtest_job`); a
sweep (:mod:`backtester.sweep`) builds one per combination and runs :func:`evaluate_backtest`
on worker processes. Strategies and market data are cached per process, so a worker loads
each once.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtester.checks import suggestion

StrategyClass = type[Any]
"""A ``Strategy``, ``JitStrategy`` or signal-module (``SignalModule``) subclass: they share the
class methods ``parameters()`` and ``subscribed()`` but no base class, hence ``type[Any]``."""


def parse_scalar(text: str) -> int | float | bool | str:
    """Read ``"5"`` as int, ``"0.5"``/``"1e-4"`` as float, ``"true"``/``"false"`` as bool."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip()


_DATA_CACHE: dict[str, Any] = {}
_STRATEGY_CACHE: dict[str, StrategyClass] = {}
_DATA_LOADS = 0


def load_strategy(reference: str) -> StrategyClass:
    """Return the strategy class named by ``path/to/file.py[:Class]`` or ``pkg.module:Class``.

    A file with one Strategy subclass needs no class name.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        When the class is missing or ambiguous (naming the classes found).
    """
    if reference in _STRATEGY_CACHE:
        return _STRATEGY_CACHE[reference]
    if ".py:" in reference or (":" in reference and not Path(reference).exists()):
        target, _, class_name = reference.rpartition(":")
    else:
        target, class_name = reference, ""
    is_file = target.endswith(".py") or Path(target).exists()
    if is_file and not Path(target).is_file():
        raise FileNotFoundError(f"strategy: no such file {target!r}")
    from backtester.jit import JitStrategy
    from backtester.signal_module import signal_module_strategy
    from backtester.strategy import Strategy

    if is_file:
        path = Path(target)
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        name = f"_backtester_strategy_{path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"strategy: cannot import {str(path)!r} as a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as error:
            raise ValueError(
                f"strategy: cannot import module {target!r} ({error}); expected a .py file or "
                f"package.module:Class"
            ) from None
    found: dict[str, StrategyClass] = {
        k: v
        for k, v in vars(module).items()
        if isinstance(v, type)
        and issubclass(v, (Strategy, JitStrategy))
        and v not in (Strategy, JitStrategy)
        and v.__module__ == module.__name__
    }
    signals = None if found or class_name else signal_module_strategy(module)
    if signals is not None:  # a signals module: signals(bars, **params) -> entries, exits
        found = {signals.__name__: signals}
    if class_name:
        if class_name not in found:
            raise ValueError(
                f"strategy: {reference!r} has no Strategy subclass {class_name!r}; "
                f"{suggestion(class_name, found)}"
            )
        cls = found[class_name]
    elif len(found) == 1:
        cls = next(iter(found.values()))
    else:
        what = ", ".join(sorted(found)) or "none"
        hint = (
            f"name one as {target}:ClassName"
            if found
            else "expected a Strategy or JitStrategy subclass, or a function "
            "signals(bars, **params) returning entries, exits (see backtester.signal_module)"
        )
        raise ValueError(
            f"strategy: {reference!r} defines {len(found)} Strategy subclasses ({what}); {hint}"
        )
    _STRATEGY_CACHE[reference] = cls
    return cls


def strategy_parameters(cls: StrategyClass) -> dict[str, Any]:
    """Parameter names and defaults of a strategy class (``Strategy.parameters()``)."""
    return dict(cls.parameters())


def coerce_parameter(cls: StrategyClass, name: str, value: Any) -> Any:
    """Convert ``value`` (often text) to the type of the strategy's class attribute ``name``.

    Raises
    ------
    ValueError
        For an unknown parameter (with a suggestion) or a value of the wrong type.
    """
    params = strategy_parameters(cls)
    if name not in params:
        raise ValueError(
            f"param: {cls.__name__} has no parameter {name!r}; "
            f"{suggestion(name, params) if params else 'it has no parameters'}"
        )
    default = params[name]
    kind = type(default)
    if isinstance(value, str):
        parsed = parse_scalar(value)
    else:
        parsed = value
    if kind is bool:
        if isinstance(parsed, bool):
            return parsed
    elif kind is int:
        if isinstance(parsed, int) and not isinstance(parsed, bool):
            return parsed
        if isinstance(parsed, float) and parsed.is_integer():
            return int(parsed)
    elif kind is float:
        if isinstance(parsed, int | float) and not isinstance(parsed, bool):
            return float(parsed)
    elif kind is str:
        return str(value)
    elif isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f"param {name}: expected JSON for a {kind.__name__} (default {default!r}), "
                f"got {value!r}"
            ) from None
    else:
        return value
    raise ValueError(f"param {name}: expected {kind.__name__} (default {default!r}), got {value!r}")


def load_data(selection: dict[str, Any]) -> Any:
    """Return the MarketData of a data selection, cached per process (a worker loads it once).

    ``selection``: ``{"source": "sample" | <catalog exchange>, "symbol", "start_ns",
    "end_ns", "interval_ns", "catalog"}`` (times may be ``None``). A walk-forward window also
    has ``"within": {"start_ns", "end_ns"}``, the span of the whole selection: that is loaded
    (once) and the window is cut from it with :func:`slice_market_data`, which keeps the same
    ``start_ns <= ts_ns < end_ns`` rule as the catalog.
    """
    global _DATA_LOADS
    key = json.dumps(selection, sort_keys=True)
    if key not in _DATA_CACHE:
        within = selection.get("within")
        if within is not None:
            whole = {k: v for k, v in selection.items() if k != "within"}
            whole.update(start_ns=within["start_ns"], end_ns=within["end_ns"])
            _DATA_CACHE[key] = slice_market_data(
                load_data(whole), selection.get("start_ns"), selection.get("end_ns")
            )
        else:
            _DATA_CACHE[key] = _load_data_uncached(selection)
            _DATA_LOADS += 1
    return _DATA_CACHE[key]


def _load_data_uncached(selection: dict[str, Any]) -> Any:
    from backtester.data.catalog import Catalog
    from backtester.data.loader import load_market_data

    source = selection["source"]
    start_ns, end_ns = selection.get("start_ns"), selection.get("end_ns")
    with_trades = bool(selection.get("with_trades"))
    if source == "sample":
        from backtester.data import sample

        root = selection.get("catalog") or sample.SAMPLE_CATALOG
        if not Catalog(root).exists("bars", "sample", selection["symbol"], sample.BAR_INTERVAL_NS):
            # no committed copy: the generator gives identical arrays, cut here
            market = sample.load_sample(
                selection["symbol"], catalog_root=root, with_trades=with_trades
            )
            return slice_market_data(market, start_ns, end_ns)
    else:
        root = selection.get("catalog") or "data/catalog"
    return load_market_data(
        Catalog(root),
        source,
        selection["symbol"],
        start_ns,
        end_ns,
        bar_interval_ns=selection.get("interval_ns") or 0,
        with_trades=with_trades,
    )


def slice_market_data(market: Any, start_ns: int | None, end_ns: int | None) -> Any:
    """Return the part of a MarketData with ``start_ns <= ts_ns < end_ns`` in every stream."""
    from dataclasses import replace

    if start_ns is None and end_ns is None:
        return market
    lo = -(2**63) if start_ns is None else start_ns
    hi = 2**63 - 1 if end_ns is None else end_ns
    streams = {}
    for name in ("trades", "bars", "index", "mark", "funding"):
        array = getattr(market, name)
        streams[name] = array[(array["ts_ns"] >= lo) & (array["ts_ns"] < hi)]
    interval = market.bar_interval_ns if len(streams["bars"]) else 0
    return replace(market, **streams, bar_interval_ns=interval)


def preload_data(selection: dict[str, Any]) -> Callable[[], None]:
    """Return a picklable zero-argument callable that loads ``selection`` into the cache."""
    return _Preload(selection)


@dataclass(frozen=True)
class _Preload:
    selection: dict[str, Any]

    def __call__(self) -> None:
        load_data(self.selection)


def build_contract(job: dict[str, Any]) -> Any:
    """Return the ContractSpec of a job: ``contract`` name, optionally another ``profile``, fees.

    A ``profile`` selects the built-in contract ``<profile>:<symbol>`` when there is one, else
    the same instrument under that venue profile's rules.
    """
    from dataclasses import replace

    from backtester.swap import get_contract, get_profile, list_contracts

    contract = get_contract(job["contract"])
    profile = job.get("profile")
    if profile:
        same_instrument = f"{profile}:{contract.symbol}"
        if same_instrument in list_contracts():
            contract = get_contract(same_instrument)
        else:  # the venue's rules on this instrument (its own tiers and fees kept)
            contract = replace(contract, profile=get_profile(profile))
    data = job.get("data") or {}
    if data.get("source") not in (None, "sample"):
        contract = with_catalog_tiers(
            contract, data.get("catalog") or "data/catalog", data["source"], data["symbol"]
        )
    maker, taker = job.get("maker_fee_rate"), job.get("taker_fee_rate")
    if maker is not None or taker is not None:
        contract = contract.with_fees(
            contract.maker_fee_rate if maker is None else float(maker),
            contract.taker_fee_rate if taker is None else float(taker),
        )
    return contract


def no_market_data_error(selection: dict[str, Any], advice: str) -> ValueError:
    """Return the one error for a start/end range without market data, ``advice`` after it."""
    span = [
        pd.Timestamp(v, unit="ns", tz="UTC").isoformat() if v is not None else "open"
        for v in (selection.get("start_ns"), selection.get("end_ns"))
    ]
    return ValueError(
        f"start/end: no market data for {selection['source']}:{selection['symbol']} in "
        f"[{span[0]}, {span[1]}); {advice}"
    )


def check_job(job: dict[str, Any], data: Any) -> None:
    """Refuse a job whose settings or data range cannot run, before running it.

    The same checks the engine makes at its start (leverage in ``[1, max leverage of the
    contract's tier 1 at the data's start]``, margin mode, initial balance > 0), plus a data
    range holding at least one event; raises ``ValueError`` naming the setting, so the command
    line reports bad input (exit code 2) and not a failed run.
    """
    from backtester.checks import check_positive

    sel = job["data"]
    try:
        start_ns = data.start_ns
    except ValueError:
        raise no_market_data_error(
            sel,
            f"choose a range inside the stored data (backtester data {sel['source']} "
            f"{sel['symbol']})",
        ) from None
    check_positive(job["initial_balance"], "initial_balance")
    leverage = check_positive(job.get("leverage", 10.0), "leverage")
    mode = job.get("margin_mode", "isolated")
    if mode not in ("isolated", "cross"):
        raise ValueError(
            f"margin_mode: got {mode!r}; {suggestion(str(mode), ['isolated', 'cross'])}"
        )
    build_contract(job).check_leverage(leverage, at_ns=start_ns)  # the engine's one rule


def with_catalog_tiers(contract: Any, root: Any, exchange: str, symbol: str) -> Any:
    """Return ``contract`` with the tier tables the catalog holds for ``exchange:symbol``.

    The tables ``backtester fetch`` stored are added to the contract's dated schedule (a
    stored table replaces a built-in one of the same date; the run switches tables at their
    dates). Tables of another basis than the contract's are not used, with a warning naming
    them; so is every table that is used.
    """
    import warnings
    from dataclasses import replace

    from backtester.data.catalog import Catalog
    from backtester.enums import TierBasis
    from backtester.swap.tiers import TierSchedule, TierTable

    stored = Catalog(root).read_tiers(exchange, symbol)
    if not stored:
        return contract
    tables = {t.valid_from_ns: t for t in contract.tiers.tables}
    used, skipped = [], []
    for valid_from, basis, rows, source in stored:
        if basis != int(contract.tiers.basis):
            skipped.append(f"{pd.Timestamp(valid_from, tz='UTC')} ({TierBasis(basis).name})")
            continue
        tables[valid_from] = TierTable(TierBasis(basis), rows, valid_from, source)
        used.append(str(pd.Timestamp(valid_from, tz="UTC")))
    if skipped:
        warnings.warn(
            f"catalog tiers of {exchange}:{symbol} not used (basis differs from the contract's "
            f"{contract.tiers.basis.name}): {', '.join(skipped)}",
            stacklevel=2,
        )
    if not used:
        return contract
    warnings.warn(
        f"{contract.name}: tier tables from the catalog ({exchange}:{symbol}) valid from "
        f"{', '.join(used)} replace or extend the built-in schedule",
        stacklevel=2,
    )
    return replace(contract, tiers=TierSchedule(tuple(tables.values())))


def run_backtest_job(job: dict[str, Any]) -> Any:
    """Run one job and return the :class:`~backtester.results.Result`."""
    from backtester.engine.backtest import backtest
    from backtester.signal_module import SignalModule

    cls = load_strategy(job["strategy"])
    params = {name: coerce_parameter(cls, name, v) for name, v in (job.get("params") or {}).items()}
    run = cls.backtest if issubclass(cls, SignalModule) else partial(backtest, cls)
    return run(
        load_data(job["data"]),
        build_contract(job),
        initial_balance=float(job["initial_balance"]),
        leverage=float(job.get("leverage", 10.0)),
        margin_mode=str(job.get("margin_mode", "isolated")),
        params=params,
    )


def summarise_result(result: Any) -> dict[str, Any]:
    """Return the scalar metrics of a Result, plus ``fill_count``.

    ``sharpe``, ``total_return``, ``max_drawdown``, ``liquidations``, ... as
    ``compute_metrics`` gives them, computed from the record arrays by ``summary_metrics`` (no
    pandas table of the records: a sweep ranks thousands of runs); ``start``/``end`` as
    ``compute_metrics`` writes them.
    """
    from backtester.report.metrics import summary_metrics

    ts = result.records["equity"]["ts_ns"]
    texts = {  # placed as compute_metrics places them (after these keys)
        "settle_currency": {
            "start": str(pd.Timestamp(int(ts[0]), unit="ns", tz="UTC")) if len(ts) else "",
            "end": str(pd.Timestamp(int(ts[-1]), unit="ns", tz="UTC")) if len(ts) else "",
        },
        "periods_per_year": {"frequency": "1D"},
    }
    summary: dict[str, Any] = {}
    for name, value in summary_metrics(result).items():
        summary[name] = value
        summary.update(texts.get(name, {}))
    metrics: dict[str, Any] = {}
    for name, value in summary.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, int | float | bool | str):
            metrics[name] = value
    metrics["fill_count"] = len(result.records["fills"])
    return metrics


def evaluate_backtest(job: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point: run one job, return its scalar metrics (and worker bookkeeping)."""
    metrics = summarise_result(run_backtest_job(job))
    metrics["worker_pid"] = os.getpid()
    metrics["worker_data_loads"] = _DATA_LOADS
    return metrics
