"""``backtest()``: run a Strategy over market data and a contract, return a Result.

This is the typed facade of the engine (STYLE.md C1): it validates the inputs, compiles the
contracts to kernel parameters (``ContractSpec.to_params``), builds a :class:`~backtester.engine.
driver.Run`, replays, and wraps the records in :class:`~backtester.results.Result` together with
the configuration needed to re-run.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtester import dtypes
from backtester.checks import (
    RunDataWarning,
    check_in_range,
    check_non_negative,
    check_positive,
    suggestion,
)
from backtester.data.market import MarketData
from backtester.data.stream import MarketDataStream
from backtester.engine.buffers import record_buffer
from backtester.engine.driver import Run
from backtester.engine.signal_replay import SignalRule, replay_signals
from backtester.engine.slippage import (
    NullSlippage,
    SlippageModel,
    SlippageParams,
    slippage_row,
)
from backtester.engine.spill import RecordSpill
from backtester.enums import AdlRule, MarginMode, MarkPriceMethod
from backtester.jit import JitStrategy
from backtester.rejections import explain_rejections, warn_rejections
from backtester.results import PriceSeriesView, RecordStore, Result, SpilledSeries
from backtester.strategy import Context, Strategy
from backtester.swap.contract import ContractSpec, get_contract
from backtester.swap.funding_rules import (
    FUNDING_RULES,
    computed_funding,
    premium_from_last_price,
)
from backtester.swap.insurance_nb import OKEX_CLAWBACK_OFFSET_NS, WEEK_NS

__all__ = ["backtest"]

_OPTIONS = {
    "latency_ns": 0,
    "bar_path": "conservative",
    "queue_model": False,
    "queue_initial_base": 0.0,
    "margin_call_buffer_ratio": 1.5,
    "slippage": None,
    "equity_interval_ns": None,
    "history_bars": 10_000,
    "mark_price_method": "profile",
    "insurance_fund_settle": math.inf,
    "clawback_profit_pool_settle": None,
    "clawback_period": "profile",
    "records_directory": None,
}
_MARK_METHODS = {
    "profile": None,
    "index_ema_basis": MarkPriceMethod.INDEX_EMA_BASIS,
    "funding_basis": MarkPriceMethod.FUNDING_BASIS,
    "binance_median": MarkPriceMethod.BINANCE_MEDIAN,
    "historical": MarkPriceMethod.HISTORICAL,
    "last": MarkPriceMethod.LAST,
}
_MINUTE_NS = 60_000_000_000


def _as_list(value: Any, n: int, name: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name}: expected {n} values (one per instrument), got {len(value)}")
        return list(value)
    return [value] * n


def _resolve_contracts(contract: Any, n: int) -> list[ContractSpec]:
    items = _as_list(contract, n, "contract")
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(get_contract(item))
        elif isinstance(item, ContractSpec):
            out.append(item)
        else:
            raise TypeError(
                f"contract: expected a ContractSpec or a name like 'okx:BTC-USDT-SWAP', "
                f"got {type(item).__name__}"
            )
    return out


def _mark_method_used(
    spec: ContractSpec,
    data: MarketData,
    has_index: bool,
    has_mark: bool,
    requested: MarkPriceMethod | None = None,
) -> MarkPriceMethod:
    """Return the mark method of the run.

    ``requested`` (the ``mark_price_method`` option) or the profile's; a computed mark whose
    index is missing falls back to the recorded mark series when the data has one (the venue's
    own mark), else to the last price.
    """
    method = (
        requested if requested is not None else MarkPriceMethod(int(spec.profile.mark_price_method))
    )
    if method == MarkPriceMethod.HISTORICAL and not has_mark:
        raise ValueError(
            f"data[{data.symbol!r}].mark: mark_price_method {method.name.lower()!r} replays a "
            f"historical mark price but the data has no mark stream"
        )
    needs_index = (
        MarkPriceMethod.INDEX_EMA_BASIS,
        MarkPriceMethod.FUNDING_BASIS,
        MarkPriceMethod.BINANCE_MEDIAN,
    )
    if method in needs_index and not has_index:
        if requested is not None:
            raise ValueError(
                f"data[{data.symbol!r}].index: mark_price_method {method.name.lower()!r} needs "
                f"an index price stream, and the data has none"
            )
        return MarkPriceMethod.HISTORICAL if has_mark else MarkPriceMethod.LAST
    return method


def _funding_used(spec: ContractSpec, d: MarketData, has_index: bool) -> tuple[MarketData, str]:
    """Return the instrument's funding for an unstreamed run and a label of its source.

    With a funding stream: it is used as is ("historical"). Without one but with an index:
    funding computed from the premium (last − index)/index with the venue's rule
    (:mod:`backtester.swap.funding_rules`), rows labelled COMPUTED. Otherwise none is charged.
    """
    if len(d.funding):
        return d, "historical funding stream"
    rule = FUNDING_RULES.get(spec.profile.name)
    if rule is None:
        return d, (
            f"none: no funding stream, and profile {spec.profile.name!r} has no funding rule "
            "to compute one (no funding charged)"
        )
    if not has_index:
        return d, "none: no funding stream and no index to compute the premium (no funding charged)"
    last_ts, last_price = _last_price_columns(d)
    sample_ts, premium = premium_from_last_price(
        last_ts, last_price, d.index["ts_ns"], d.index["price"], rule.sample_ns
    )
    funding = computed_funding(sample_ts, premium, rule)
    label = (
        f"computed from the premium (last − index)/index sampled every "
        f"{rule.sample_ns // 1_000_000_000} s, venue rule of {spec.profile.name} "
        f"({len(funding)} events; no book in the data, the last price stands for the "
        f"impact bid/ask)"
    )
    # a copy with the funding replaced, not ``dataclasses.replace``: that validates every
    # stream again, and the sortedness scan of the trades costs ~9 ns a tick (as much as the
    # replay of a quiet tick); the computed funding is sorted by construction
    used = copy.copy(d)
    used.funding = funding
    return used, label


def _last_price_columns(d: MarketData) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return the last price's times and prices.

    The trades' columns (views, no copy), else the bar closes at their close time.
    """
    if len(d.trades):
        return d.trades["ts_ns"], d.trades["price"]
    return d.bars["ts_ns"] + d.bar_interval_ns, d.bars["close"]


def _last_price_series(d: MarketData) -> npt.NDArray[np.void]:
    """Return the last price as a PRICE_DTYPE series: trade prices, or bar closes at close time."""
    ts_ns, price = _last_price_columns(d)
    last = record_buffer(len(ts_ns), dtypes.PRICE_DTYPE)
    last["ts_ns"] = ts_ns
    last["price"] = price
    return last


class _PriceSeries(PriceSeriesView):
    """``{"last", "mark", "index"}`` series of one unstreamed instrument.

    "last" is built on first access: building it copies every bar or trade (10-25 ms per
    million rows), which only the reports read; a sweep computing metrics never does.
    """

    def __init__(self, data: MarketData) -> None:
        self._data = data
        self._last: npt.NDArray[np.void] | None = None

    @property
    def market_data(self) -> MarketData:
        """The instrument's market data as replayed.

        The liquidation report reads the trade candles' paths and ticks from it
        (``report.liquidations.last_price_comparison``).
        """
        return self._data

    def _series(self, name: str) -> npt.NDArray[np.void]:
        if name != "last":
            series: npt.NDArray[np.void] = getattr(self._data, name)
            return series
        if self._last is None:
            self._last = _last_price_series(self._data)
        return self._last


class _PriceSampler:
    """Price series of a chunked replay, bounded like the equity records.

    Per instrument and series (last, mark, index), the last point of each ``interval_ns``
    bucket (by its time), taken chunk by chunk as the chunks pass on their way to the engine
    and written to the records folder (``price-<instrument>-<series>``, row groups of whole
    windows). The last point of a window waits for the next window, whose first point replaces
    it when it falls in the same bucket. The unstreamed :class:`_PriceSeries` keeps every point
    instead.
    """

    def __init__(self, n: int, interval_ns: int, spill: RecordSpill) -> None:
        self.interval_ns = interval_ns
        self.spill = spill
        # the last point seen per instrument and series, not written yet
        self.pending: list[dict[str, npt.NDArray[np.void]]] = [{} for _ in range(n)]

    @classmethod
    def start(
        cls,
        records_directory: str | Path | None,
        n: int,
        interval_ns: int,
        first: list[MarketData],
    ) -> _PriceSampler:
        """Open the records folder and sample the first window (the folder is closed on error).

        A zero ``interval_ns`` samples every minute.
        """
        spill = RecordSpill(records_directory)
        try:
            sampler = cls(n, interval_ns or _MINUTE_NS, spill)
            sampler.add(first)
        except BaseException:
            spill.close(failed=True)
            raise
        return sampler

    def wrap(self, chunks: Any) -> Any:
        for chunk in chunks:
            self.add(chunk)
            yield chunk

    def add(self, chunk: list[MarketData]) -> None:
        for i, d in enumerate(chunk):
            # the last price from the trades (or bar closes at close time) directly: building
            # the whole PRICE_DTYPE series first would cost 16 bytes a tick of the window
            if len(d.trades):
                last = (d.trades["ts_ns"], d.trades["price"])
            else:
                last = (d.bars["ts_ns"] + d.bar_interval_ns, d.bars["close"])
            for name, (ts, price) in (
                ("last", last),
                ("mark", (d.mark["ts_ns"], d.mark["price"])),
                ("index", (d.index["ts_ns"], d.index["price"])),
            ):
                if not len(ts):
                    continue
                thinned = self._thin(ts, price)
                pending = self.pending[i].get(name)
                if pending is not None and (
                    pending["ts_ns"][0] // self.interval_ns
                    != thinned["ts_ns"][0] // self.interval_ns
                ):
                    thinned = np.concatenate([pending, thinned])
                self.spill.write(f"price-{i}-{name}", thinned[:-1])
                self.pending[i][name] = thinned[-1:].copy()

    def flush(self) -> None:
        """Write the last pending point of every series.

        The empty ones are written too, so every file exists.
        """
        empty = np.zeros(0, dtype=dtypes.PRICE_DTYPE)
        for i, pending in enumerate(self.pending):
            for name in ("last", "mark", "index"):
                self.spill.write(f"price-{i}-{name}", pending.get(name, empty))

    def _thin(
        self, ts: npt.NDArray[np.int64], price: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.void]:
        """Return the last point of each bucket, as PRICE_DTYPE rows."""
        bucket = ts // self.interval_ns
        keep = np.flatnonzero(np.r_[bucket[1:] != bucket[:-1], True])
        del bucket
        out = np.zeros(len(keep), dtype=dtypes.PRICE_DTYPE)
        out["ts_ns"] = ts[keep]
        out["price"] = price[keep]
        return out


def backtest(
    strategy: type[Strategy] | type[JitStrategy] | type[SignalRule],
    data: MarketData | list[MarketData] | MarketDataStream,
    contract: ContractSpec | str | list[ContractSpec | str],
    *,
    initial_balance: float,
    leverage: float | list[float] = 10.0,
    margin_mode: str | list[str] = "isolated",
    params: dict[str, object] | None = None,
    **options: Any,
) -> Result:
    """Replay ``data`` through the perpetual-swap model with ``strategy`` trading it.

    Parameters
    ----------
    strategy
        A :class:`~backtester.strategy.Strategy` subclass (Python callbacks, called at its
        wake-ups) or a :class:`~backtester.jit.JitStrategy` subclass (``@njit`` callbacks run
        inside the compiled loop) — the class, not an instance. Both give the same Result for
        the same decisions.
    data
        One :class:`~backtester.data.market.MarketData`, or a list (one per instrument; all
        instruments share one account and must settle in the same currency), or a
        :class:`~backtester.data.stream.MarketDataStream`
        (:meth:`~backtester.data.catalog.Catalog.stream_market_data`) for a chunked replay:
        one window of input rows in memory at a time, the same records as the unstreamed
        run (see ``history_bars`` for the limits of history windows). Its ``price_series``
        then holds the last point of each ``equity_interval_ns`` bucket (not every point).
    contract
        A :class:`~backtester.swap.contract.ContractSpec`, a built-in name such as
        ``"okx:BTC-USDT-SWAP"``, or a list matching ``data``.
    initial_balance
        Wallet balance at the start, in the settle currency (> 0).
    leverage
        Leverage per instrument (≤ the tier's maximum).
    margin_mode
        ``"isolated"`` or ``"cross"`` (per instrument when a list).
    params
        Strategy parameter overrides (unknown names raise with a suggestion).
    **options
        ``latency_ns`` (int, default 0): delay before an order may fill.
        ``bar_path`` ("conservative" | "nearest"): intrabar order of high and low — adverse
        extreme first for the open position, or the extreme nearer the open first — for the
        trade candles and the index/mark candle paths alike (``EventKind``; README "Data").
        ``queue_model`` (bool): resting limits at a traded price fill once the volume traded at
        that price exceeds the queue ahead (else only trades through the price fill them).
        ``queue_initial_base`` (float ≥ 0, base coin, default 0): the resting size assumed
        ahead of each new limit order at its price (trade data show no book; a Python
        strategy may set it per order with ``ctx.limit(..., queue_ahead_base=...)``).
        ``margin_call_buffer_ratio`` (float ≥ 1, default 1.5): on_margin_call fires when the
        liquidation buffer falls below it. ``slippage`` (a SlippageModel, default none).
        ``equity_interval_ns`` (int): equity sampling step (default: the bar interval, or 1 min).
        ``mark_price_method`` ("profile" (default), "index_ema_basis", "funding_basis",
        "binance_median", "historical", "last"): how the mark is formed. With "profile", a
        method whose index stream is missing falls back to the data's recorded mark series
        (replayed as is) and, without one, to the last price; ``config["mark_price_method_used"]``
        says which. An explicit method whose stream is missing is an error.
        ``insurance_fund_settle`` (float ≥ 0, default +inf; or a published history: a pandas
        Series of balances indexed by time, or an array with ``ts_ns`` and ``balance_settle``
        fields): the venue's insurance fund (settle currency) at the start of the run — from a
        history, its last value at or before the first event. The strategy's liquidations feed
        it (surplus) or draw it (deficit, floored at 0); +inf means the venue's fund always
        covers (no clawback). ``clawback_period`` ("profile" (default: a week ending Friday
        08:00 UTC = 16:00 HKT for profiles with ``adl_rule`` CLAWBACK, else none), "week",
        "none"): when a deficit the fund could not cover is clawed back from the account's net
        profit over the period (all instruments). ``clawback_profit_pool_settle`` (float > 0 or
        None): Σ profits of the venue's profitable accounts in a period, the denominator of the
        clawback rate ``max(0, deficit − fund)/Σ profits``; None: the strategy's own profit
        (it is the only profitable account the replay knows, so the rate is the largest).
        ``result.config["insurance_fund"]`` holds the start and end balances and the source.
        ``history_bars`` (int ≥ 0, default 10,000): chunked replay only — bars per instrument
        carried from one chunk into the next for history windows (``ctx.sma(n)`` and jitted
        ``ctx.bars[row - k]`` exact for ``n, k <= history_bars``).
        ``records_directory`` (str | Path | None): chunked replay only — the folder the records
        are spilled to, in Parquet row groups of whole windows (:mod:`backtester.engine.spill`),
        so the memory stays bounded by the window whatever the span; it must be new or hold no
        ``.parquet`` file, and is kept (also after a failed run, with every window completed
        before the error). None (default): a temporary folder, removed by ``result.close()``
        or when the Result is garbage-collected. The Result reads a record kind back from it
        on first access; ``config["stream"]`` names the folder.

    Returns
    -------
    Result
        Orders, fills, funding payments, liquidations, settlements, ledger and equity records,
        with ``config`` holding everything needed to re-run.

    Raises
    ------
    ValueError, TypeError
        Naming the argument and the expected value.
    """
    opts = _checked_options(strategy, options)
    instance = strategy(**(params or {}))
    stream = data if isinstance(data, MarketDataStream) else None
    records_directory = _records_directory(opts["records_directory"], stream)
    chunks, data_list, has_index, has_mark = _first_window(data, stream)
    n = len(data_list)
    specs = _resolve_contracts(contract, n)
    settle = {s.settle_currency for s in specs}
    if len(settle) != 1:
        raise ValueError(
            f"contract: all instruments must settle in one currency, got {sorted(settle)}"
        )
    balance = check_positive(initial_balance, "initial_balance")
    leverages = [check_positive(v, "leverage") for v in _as_list(leverage, n, "leverage")]
    modes = _margin_modes(margin_mode, n)
    engine = _engine_options(opts)
    start_ns = stream.start_ns if stream is not None else min(d.start_ns for d in data_list)
    end_ns = stream.end_ns if stream is not None else max(d.end_ns for d in data_list)
    setup = _InstrumentSetup(start_ns, end_ns, engine.requested_mark)
    for k, (spec, lev) in enumerate(zip(specs, leverages, strict=True)):
        data_list[k] = setup.add(k, spec, data_list[k], stream, has_index[k], has_mark[k])
        spec.check_leverage(lev, at_ns=start_ns)  # the one rule (also ctx.set_leverage, CLI)
    run_warnings = setup.warnings
    rates = [
        slippage_row(engine.slippage, SlippageParams(s.symbol, s.tick_size, int(s.contract_kind)))
        for s in specs
    ]
    equity_interval = opts["equity_interval_ns"]
    if equity_interval is None:
        first_interval = stream.bar_intervals[0] if stream else data_list[0].bar_interval_ns
        equity_interval = first_interval or _MINUTE_NS
    sampler = None
    if stream is not None:
        # created last before the run: every error above leaves no folder behind
        sampler = _PriceSampler.start(records_directory, n, int(equity_interval), data_list)
        chunks = sampler.wrap(chunks)
    try:
        fund_start, fund_source = _insurance_fund_start(opts["insurance_fund_settle"], start_ns)
        clawback_period, pool = _clawback_terms(opts, specs)
        run = Run(
            data_list,
            setup.params_array(),
            setup.tiers_array(),
            balance,
            leverages,
            modes,
            rates,
            latency_ns=engine.latency_ns,
            bar_path=engine.bar_path,
            queue_model=bool(opts["queue_model"]),
            queue_initial_base=check_non_negative(opts["queue_initial_base"], "queue_initial_base"),
            margin_call_buffer_ratio=engine.margin_call_buffer_ratio,
            equity_interval_ns=int(equity_interval),
            chunks=chunks,
            history_bars=engine.history_bars,
            start_ns=start_ns,
            bar_intervals=stream.bar_intervals if stream is not None else None,
            fill_on_trades=stream.has_trades if stream is not None else None,
            tier_switches=setup.tier_switches_array(),
            insurance_fund_settle=fund_start,
            clawback_period_ns=WEEK_NS if clawback_period == "week" else 0,
            clawback_offset_ns=OKEX_CLAWBACK_OFFSET_NS,
            clawback_profit_pool_settle=pool,
        )
        if run_warnings:
            # once per run, every instrument in one message; also in config["warnings"], the
            # summary and the report
            warnings.warn("; ".join(run_warnings), RunDataWarning, stacklevel=2)
        if sampler is not None:
            # each window's records go to disk before the next window is read
            run.on_window_end = sampler.spill.spill_run
            # the first window's rows are the run's now: what stays here (and the run's
            # per-instrument facts, Run.data) needs only the symbol, venue and sources, and
            # holding the rows would keep a second window in memory for the whole replay
            data_list = [_without_rows(d) for d in data_list]
            run.data = data_list
        if isinstance(instance, JitStrategy):
            run.run_jit(instance)
        elif isinstance(instance, SignalRule):
            replay_signals(run, instance)  # backtest_signals' arrays (engine/signal_replay.py)
        else:
            run.run(instance, Context)
        if sampler is not None:
            sampler.spill.spill_run(run, final=True)
            sampler.flush()
            sampler.spill.close()
        config: dict[str, Any] = {
            "strategy": f"{strategy.__module__}.{strategy.__qualname__}",
            "params": {
                k: _jsonable(v) for k, v in {**strategy.parameters(), **(params or {})}.items()
            },
            "contracts": [s.name for s in specs],
            "initial_balance": balance,
            "leverage": leverages,
            "margin_mode": [MarginMode(m).name.lower() for m in modes],
            "mark_price_method_used": setup.methods,
            "funding_source_used": setup.funding_used,
            "warnings": run_warnings,
            "options": {k: _jsonable(v) for k, v in opts.items()},
            "data": _data_config(data_list, stream),
        }
        fund = config["insurance_fund"] = {
            "start_settle": fund_start,
            "source": fund_source,
            "end_settle": float(run.account[0]["insurance_fund_settle"]),
            "uncovered_deficit_pending_settle": float(run.account[0]["uncovered_deficit_settle"]),
            "clawback_period": clawback_period,
            "clawback_profit_pool_settle": pool,
            "clawback_not_taken_settle": float(run.account[0]["clawback_not_taken_settle"]),
        }
        not_taken = fund["clawback_not_taken_settle"]
        if not_taken > 0.0:
            # nothing silent: a clawback larger than the free wallet was capped (deleverage_nb)
            message = (
                f"clawback capped at the free wallet: {not_taken:.10g} {specs[0].settle_currency} "
                "of the clawbacks not taken (the period's profit was no longer in the account)"
            )
            run_warnings.append(message)
            warnings.warn(message, RunDataWarning, stacklevel=2)
        if sampler is not None and stream is not None:
            config["stream"] = {
                "chunk_ns": stream.chunk_ns,
                "windows": run.n_chunks,
                **sampler.spill.describe(),
            }
        records, price_series = _records_and_prices(run, sampler, stream, data_list)
        plots = run.plot_arrays()
        run.release()
        # nothing silent: each reject reason is explained once (config, summary, report) and warned
        config["rejections"] = explain_rejections(records, specs, leverages)
        warn_rejections(config["rejections"], stacklevel=3)
        return Result(
            instruments=[d.symbol for d in data_list],
            settle_currency=specs[0].settle_currency,
            initial_balance_settle=balance,
            records=records,
            config=config,
            price_series=price_series,
            contract_kinds=[int(s.contract_kind) for s in specs],
            plots=plots,
        )
    except BaseException:
        if sampler is not None:
            # the files keep every completed window (valid Parquet); a temporary folder goes
            sampler.spill.close(failed=True)
        raise


def _checked_options(
    strategy: type[Strategy] | type[JitStrategy] | type[SignalRule], options: Mapping[str, Any]
) -> dict[str, Any]:
    """Return every option of :func:`backtest`, defaults filled in; refuse an unknown one."""
    if not (
        isinstance(strategy, type) and issubclass(strategy, (Strategy, JitStrategy, SignalRule))
    ):
        raise TypeError(f"strategy: expected a Strategy or JitStrategy subclass, got {strategy!r}")
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        name = sorted(unknown)[0]
        raise ValueError(f"backtest: unknown option {name!r}; {suggestion(name, _OPTIONS)}")
    return {**_OPTIONS, **options}


def _records_directory(value: Any, stream: MarketDataStream | None) -> str | Path | None:
    """Return the ``records_directory`` option, checked: a folder path, for a streamed replay."""
    if value is None:
        return None
    if not isinstance(value, (str, Path)):
        raise TypeError(
            f"records_directory: expected a folder path (str or Path), got {type(value).__name__}"
        )
    if stream is None:
        raise ValueError(
            "records_directory: only a streamed replay (data = a MarketDataStream, "
            "Catalog.stream_market_data) spills its records; got in-memory data"
        )
    return value


def _first_window(
    data: MarketData | list[MarketData] | MarketDataStream, stream: MarketDataStream | None
) -> tuple[Iterator[list[MarketData]] | None, list[MarketData], list[bool], list[bool]]:
    """Return the chunks still to come, the first data and which instruments have index/mark.

    In-memory data is all of it (no chunks); a stream's first window is read here (an empty
    stream is an error).
    """
    if stream is not None:
        chunks = iter(stream)
        first = next(chunks, None)
        if first is None:
            raise ValueError(f"data: the stream {stream!r} yields no window with events")
        return chunks, first, stream.has_index, stream.has_mark
    items: list[object] = list(data) if isinstance(data, list) else [data]
    # a fresh list: the instruments' data is replaced in it (computed funding), not the caller's
    data_list = [d for d in items if isinstance(d, MarketData)]
    if not data_list or len(data_list) != len(items):
        raise TypeError(
            "data: expected a MarketData, a non-empty list of MarketData or a MarketDataStream"
        )
    has_index = [len(d.index) > 0 for d in data_list]
    has_mark = [len(d.mark) > 0 for d in data_list]
    return None, data_list, has_index, has_mark


def _margin_modes(margin_mode: str | list[str], n: int) -> list[int]:
    """Return the ``MarginMode`` value per instrument of the ``margin_mode`` argument."""
    modes = []
    for mode in _as_list(margin_mode, n, "margin_mode"):
        if mode not in ("isolated", "cross"):
            raise ValueError(f"margin_mode: {suggestion(str(mode), ['isolated', 'cross'])}")
        modes.append(int(MarginMode.ISOLATED if mode == "isolated" else MarginMode.CROSS))
    return modes


@dataclasses.dataclass(frozen=True)
class _EngineOptions:
    """The engine options of :func:`backtest`, checked (errors name the option)."""

    bar_path: int  # 0 conservative, 1 nearest
    margin_call_buffer_ratio: float
    latency_ns: int
    slippage: SlippageModel
    history_bars: int
    requested_mark: MarkPriceMethod | None  # None: the profile's method


def _engine_options(opts: Mapping[str, Any]) -> _EngineOptions:
    """Check the scalar engine options of :func:`backtest`, in the order they are documented."""
    bar_path = opts["bar_path"]
    if bar_path not in ("conservative", "nearest"):
        raise ValueError(f"bar_path: {suggestion(str(bar_path), ['conservative', 'nearest'])}")
    margin_call = check_in_range(
        opts["margin_call_buffer_ratio"], "margin_call_buffer_ratio", 1.0, math.inf
    )
    latency = int(opts["latency_ns"])
    if latency < 0:
        raise ValueError(f"latency_ns: expected an integer >= 0, got {latency!r}")
    slippage: SlippageModel = opts["slippage"] or NullSlippage()
    history_bars = int(opts["history_bars"])
    if history_bars < 0:
        raise ValueError(f"history_bars: expected an integer >= 0, got {history_bars!r}")
    mark_option = opts["mark_price_method"]
    if mark_option not in _MARK_METHODS:
        raise ValueError(f"mark_price_method: {suggestion(str(mark_option), _MARK_METHODS)}")
    return _EngineOptions(
        bar_path=0 if bar_path == "conservative" else 1,
        margin_call_buffer_ratio=margin_call,
        latency_ns=latency,
        slippage=slippage,
        history_bars=history_bars,
        requested_mark=_MARK_METHODS[mark_option],
    )


@dataclasses.dataclass
class _InstrumentSetup:
    """The kernel parameters of the run's instruments, built one instrument at a time.

    Per instrument: its ``ContractSpec.to_params`` row and tier table (rows of every table
    concatenated; ``tier_offset``/``tier_count`` locate an instrument's), the mark method and
    funding source used, and what the run tells the user about them.
    """

    start_ns: int
    end_ns: int
    requested_mark: MarkPriceMethod | None
    param_rows: list[npt.NDArray[np.void]] = dataclasses.field(default_factory=list)
    tier_rows: list[npt.NDArray[np.void]] = dataclasses.field(default_factory=list)
    switches: list[npt.NDArray[np.void]] = dataclasses.field(default_factory=list)
    methods: list[str] = dataclasses.field(default_factory=list)
    funding_used: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    offset: int = 0

    def add(
        self,
        k: int,
        spec: ContractSpec,
        d: MarketData,
        stream: MarketDataStream | None,
        has_index: bool,
        has_mark: bool,
    ) -> MarketData:
        """Add instrument ``k``; return its data (with computed funding when it had none)."""
        if stream is None:
            d, used = _funding_used(spec, d, has_index)
        else:
            used = (
                "historical funding stream (catalog)"
                if stream.has_funding[k]
                else "none: the stream's catalog has no funding (no funding charged)"
            )
        self.funding_used.append(used)
        if not used.startswith("historical"):
            self.warnings.append(f"{d.symbol}: funding {used}")
        row, tiers = spec.to_params(self.start_ns)
        row["tier_offset"] = self.offset
        row["tier_count"] = len(tiers)
        self.offset += len(tiers)
        self.tier_rows.append(tiers)
        self._add_tier_switches(k, spec)
        method = _mark_method_used(spec, d, has_index, has_mark, self.requested_mark)
        row["mark_price_method"] = int(method)
        self.methods.append(method.name)
        profile_method = MarkPriceMethod(int(spec.profile.mark_price_method))
        if self.requested_mark is None and method != profile_method:
            self.warnings.append(
                f"{d.symbol}: mark price {method.name.lower()} instead of the profile's "
                f"{profile_method.name.lower()}: the data has no index stream"
                + (" (the recorded mark is replayed)" if method == MarkPriceMethod.HISTORICAL
                   else " and no mark stream (mark = last price)")
            )  # fmt: skip
        self.param_rows.append(row)
        return d

    def _add_tier_switches(self, k: int, spec: ContractSpec) -> None:
        """Add the dated tier tables of instrument ``k`` that take effect during the run.

        They switch in at their date (``switch_tiers_nb``); a table in force at the start is
        the one ``to_params`` returned.
        """
        for table in spec.tiers.tables:
            if self.start_ns < table.valid_from_ns <= self.end_ns:
                switch = np.zeros(1, dtype=dtypes.TIER_SWITCH_DTYPE)
                switch["instrument"] = k
                switch["valid_from_ns"] = table.valid_from_ns
                switch["tier_offset"] = self.offset
                switch["tier_count"] = len(table)
                switch["max_leverage"] = table.max_leverage
                self.switches.append(switch)
                self.tier_rows.append(table.rows.copy())
                self.offset += len(table)

    def params_array(self) -> npt.NDArray[np.void]:
        """Return the instruments' kernel parameter rows as one array."""
        return np.concatenate(self.param_rows)

    def tiers_array(self) -> npt.NDArray[np.void]:
        """Return every tier row (all instruments, all tables) as one contiguous array."""
        return np.ascontiguousarray(np.concatenate(self.tier_rows))

    def tier_switches_array(self) -> npt.NDArray[np.void]:
        """Return the dated tier switches (``TIER_SWITCH_DTYPE``), none when no table changes."""
        if not self.switches:
            return np.zeros(0, dtype=dtypes.TIER_SWITCH_DTYPE)
        return np.concatenate(self.switches)


def _clawback_terms(opts: Mapping[str, Any], specs: list[ContractSpec]) -> tuple[str, float]:
    """Return the clawback period (``"week"`` or ``"none"``) and the profit pool (NaN: own)."""
    clawback_period = opts["clawback_period"]
    if clawback_period not in ("profile", "week", "none"):
        raise ValueError(
            f"clawback_period: {suggestion(str(clawback_period), ['profile', 'week', 'none'])}"
        )
    if clawback_period == "profile":
        clawback_period = "week" if specs[0].profile.adl_rule == AdlRule.CLAWBACK else "none"
    pool = opts["clawback_profit_pool_settle"]
    pool = math.nan if pool is None else check_positive(pool, "clawback_profit_pool_settle")
    return str(clawback_period), pool


def _data_config(
    data_list: list[MarketData], stream: MarketDataStream | None
) -> list[dict[str, Any]]:
    """Return ``config["data"]``: per instrument its symbol, venue, span, interval, sources."""
    return [
        {
            "symbol": d.symbol,
            "exchange": d.exchange,
            "start_ns": d.start_ns if stream is None else stream.start_ns,
            "end_ns": d.end_ns if stream is None else stream.end_ns,
            "bar_interval_ns": d.bar_interval_ns if stream is None else stream.bar_intervals[k],
            "sources": d.sources,
        }
        for k, d in enumerate(data_list)
    ]


def _records_and_prices(
    run: Run,
    sampler: _PriceSampler | None,
    stream: MarketDataStream | None,
    data_list: list[MarketData],
) -> tuple[
    MutableMapping[str, npt.NDArray[np.void]], dict[str, Mapping[str, npt.NDArray[np.void]]]
]:
    """Return the run's records and price series.

    A streamed replay's are read back from its records folder on first access (only the
    orders stay in memory); an unstreamed run's are its arrays and market data.
    """
    records: MutableMapping[str, npt.NDArray[np.void]] = run.records()
    price_series: dict[str, Mapping[str, npt.NDArray[np.void]]]
    if sampler is None or stream is None:
        price_series = {d.symbol: _PriceSeries(d) for d in data_list}
        return records, price_series
    spill = sampler.spill
    store = RecordStore(
        {"orders": records["orders"]},
        spill.directory,
        {name: spill.dtype(name) for name in spill.names()},
        temporary=spill.owned,
    )
    price_series = {symbol: SpilledSeries(store, i) for i, symbol in enumerate(stream.symbols)}
    return store, price_series


def _without_rows(d: MarketData) -> MarketData:
    """``d`` with every stream emptied (its symbol, venue, sources and intervals kept)."""
    # copies: an empty view would keep the whole array alive through its base
    empty = {
        name: getattr(d, name)[:0].copy()
        for name in ("trades", "bars", "index", "mark", "funding", "deleverage")
    }
    return dataclasses.replace(d, **empty)


def _insurance_fund_start(value: Any, start_ns: int) -> tuple[float, str]:
    """(fund balance at the start, where it came from) of the ``insurance_fund_settle`` option.

    A float (≥ 0, +inf allowed) is used as is; a published history (pandas Series indexed by
    time, or a structured array with ``ts_ns`` and ``balance_settle``) gives its last value at
    or before ``start_ns``. Errors name the option and what was expected.
    """
    name = "insurance_fund_settle"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value >= 0.0:
            raise ValueError(f"{name}: expected a balance >= 0 (or inf), got {value!r}")
        return float(value), "inf: the venue's fund always covers" if math.isinf(value) else "value"
    if isinstance(value, pd.Series):
        ts = pd.DatetimeIndex(value.index)
        ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
        times = ts.as_unit("ns").asi8
        balances = value.to_numpy(dtype=np.float64)
    elif (
        isinstance(value, np.ndarray)
        and value.dtype.names
        and {"ts_ns", "balance_settle"} <= set(value.dtype.names)
    ):
        times = value["ts_ns"].astype(np.int64)
        balances = value["balance_settle"].astype(np.float64)
    else:
        raise TypeError(
            f"{name}: expected a float, a pandas Series of balances indexed by time, or an array "
            f"with ts_ns and balance_settle fields, got {type(value).__name__}"
        )
    if len(times) == 0 or np.any(np.diff(times) < 0):
        raise ValueError(f"{name}: the history must be non-empty and in time order")
    if not (np.isfinite(balances).all() and (balances >= 0).all()):
        bad = int(np.flatnonzero(~(np.isfinite(balances) & (balances >= 0)))[0])
        raise ValueError(
            f"{name}: row {bad}: expected a finite balance >= 0, got {balances[bad]!r}"
        )
    k = int(np.searchsorted(times, start_ns, side="right")) - 1
    if k < 0:
        raise ValueError(
            f"{name}: the history starts at {pd.Timestamp(int(times[0]), tz='UTC')}, after the "
            f"run's first event {pd.Timestamp(start_ns, tz='UTC')}; no balance is known then"
        )
    when = pd.Timestamp(int(times[k]), tz="UTC").isoformat()
    return float(balances[k]), f"history: balance published at {when}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        # an array parameter (e.g. signal arrays) is described, not printed: its repr is
        # abbreviated anyway and costs ~1 ms per million elements
        return f"<array {value.dtype}{list(value.shape)}>"
    return repr(value)
