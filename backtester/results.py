"""The outcome of one backtest: record arrays plus pandas views over them.

A :class:`Result` holds the raw structured arrays the engine wrote (orders, fills, funding
payments, liquidations, settlements, ADL/clawback, ledger, equity; dtypes in
:mod:`backtester.dtypes`) and the facts needed to read them (instrument symbols, settle currency,
initial balance, the configuration used). Everything else — metrics, attribution, reports — is
computed from these arrays, so two results compare equal exactly when their arrays do.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtester import dtypes
from backtester.enums import (
    FundingRateSource,
    LedgerKind,
    Liquidity,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)

_ENUM_COLUMNS: dict[str, type] = {
    "kind": LedgerKind,
    "side": Side,
    "liquidity": Liquidity,
    "status": OrderStatus,
    "order_type": OrderType,
    "time_in_force": TimeInForce,
    "reject_reason": RejectReason,
    "source": FundingRateSource,
}


def records_to_frame(
    records: npt.NDArray[np.void], instruments: list[str] | None = None
) -> pd.DataFrame:
    """Convert a record array to a DataFrame with readable columns.

    ``*_ns`` timestamp fields become tz-aware UTC ``Timestamp`` columns (the raw integer is kept as
    ``<name>`` with its ``_ns`` suffix dropped only in the converted column name), enum fields
    become their member names, and ``instrument`` indices become symbols when ``instruments`` is
    given.

    Parameters
    ----------
    records
        A structured array of one of the dtypes in :mod:`backtester.dtypes`.
    instruments
        Symbols by instrument index.

    Returns
    -------
    pandas.DataFrame
        One row per record, in record order.
    """
    frame = pd.DataFrame({name: records[name] for name in records.dtype.names or ()})
    for name in list(frame.columns):
        if name.endswith("_ns") and name.startswith("ts"):
            frame[name.removesuffix("_ns")] = pd.to_datetime(frame[name], unit="ns", utc=True)
        elif name in _ENUM_COLUMNS:
            enum_type = _ENUM_COLUMNS[name]
            if name == "kind" and records.dtype == dtypes.ADL_DTYPE:
                enum_type = LedgerKind
            frame[name] = [enum_type(int(v)).name for v in frame[name]]
        elif name == "instrument" and instruments is not None:
            frame[name] = [instruments[i] if 0 <= i < len(instruments) else "" for i in frame[name]]
    return frame


def record_digest(records: npt.NDArray[np.void]) -> str:
    """SHA-256 of a record array's values, field by field.

    Use this, never ``records.tobytes()``, to compare record arrays bit for bit: numpy leaves the
    padding bytes of ``align=True`` dtypes undefined (a ``.copy()`` may differ there), while the
    field values are exact.
    """
    digest = hashlib.sha256()
    digest.update(str(len(records)).encode())
    for name in records.dtype.names or ():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(records[name]).tobytes())
    return digest.hexdigest()


@dataclass
class Result:
    """Everything one backtest produced.

    Parameters
    ----------
    instruments
        Symbols of the instruments, by the index used in the ``instrument`` record fields.
    settle_currency
        Currency of every ``*_settle`` amount (e.g. ``"BTC"`` for an inverse swap, ``"USDT"``).
    initial_balance_settle
        Wallet balance at the start, in settle currency.
    records
        Record arrays by kind: ``orders``, ``fills``, ``funding_payments``, ``liquidations``,
        ``settlements``, ``adl``, ``ledger``, ``equity`` (dtypes in
        :data:`backtester.dtypes.ALL_RECORD_DTYPES`).
    config
        The configuration used (strategy name and parameters, contract, venue, data selection),
        JSON-serialisable, so the run can be reproduced.
    price_series
        For plotting: ``{symbol: {"last" | "mark" | "index": PRICE_DTYPE array}}``.
    contract_kinds
        ``ContractKind`` value per instrument (inverse results are also shown in USD).
    plots
        Indicator series a strategy registered (``ctx.plot(name, value)``, or ``plots=`` of
        ``backtest_signals``): ``{name: (ts_ns int64 array, value float64 array)}``, drawn on
        the price chart of the report.
    """

    instruments: list[str]
    settle_currency: str
    initial_balance_settle: float
    records: dict[str, npt.NDArray[np.void]]
    config: dict[str, Any] = field(default_factory=dict)
    price_series: dict[str, Mapping[str, npt.NDArray[np.void]]] = field(default_factory=dict)
    contract_kinds: list[int] = field(default_factory=list)
    plots: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        for name, dtype in dtypes.ALL_RECORD_DTYPES.items():
            array = self.records.get(name)
            if array is None:
                self.records[name] = np.zeros(0, dtype=dtype)
            elif array.dtype != dtype:
                raise TypeError(
                    f"Result.records[{name!r}] has dtype {array.dtype}, expected {dtype} "
                    f"(backtester.dtypes.{name.upper()})"
                )

    # ------------------------------------------------------------------ raw numbers
    @property
    def final_balance_settle(self) -> float:
        """Wallet balance after the last ledger movement, in settle currency."""
        ledger = self.records["ledger"]
        if len(ledger) == 0:
            return float(self.initial_balance_settle)
        return float(ledger["balance_after_settle"][-1])

    @property
    def final_equity_settle(self) -> float:
        """Equity (balance + unrealised PnL at mark) at the last equity sample."""
        equity = self.records["equity"]
        if len(equity) == 0:
            return self.final_balance_settle
        return float(equity["equity_settle"][-1])

    def fingerprint(self) -> str:
        """SHA-256 over every field of every record array, in a fixed order.

        Two runs are bit-for-bit identical exactly when their fingerprints are equal. Fields are
        hashed one by one (see :func:`record_digest`) because the padding bytes of aligned
        structured arrays are not defined.
        """
        digest = hashlib.sha256()
        for name in dtypes.ALL_RECORD_DTYPES:
            digest.update(name.encode())
            digest.update(record_digest(self.records[name]).encode())
        return digest.hexdigest()

    # ------------------------------------------------------------------ pandas views
    def frame(self, kind: str) -> pd.DataFrame:
        """One record kind as a DataFrame (see :func:`records_to_frame`).

        The index is a UTC ``DatetimeIndex`` named ``time``: the record's ``ts_ns`` (orders:
        ``ts_created_ns``), so frames slice by date (``result.fills.loc["2024-02"]``) and
        resample directly.
        """
        if kind not in dtypes.ALL_RECORD_DTYPES:
            raise KeyError(
                f"unknown record kind {kind!r}; expected one of {sorted(dtypes.ALL_RECORD_DTYPES)}"
            )
        records = self.records[kind]
        frame = records_to_frame(records, self.instruments)
        column = "ts_created_ns" if kind == "orders" else "ts_ns"
        frame.index = pd.DatetimeIndex(
            pd.to_datetime(np.asarray(records[column], dtype=np.int64), unit="ns", utc=True),
            name="time",
        )
        return frame

    @property
    def trades(self) -> pd.DataFrame:
        """Round trips built from the fills, PnL split by cause from the ledger.

        See :func:`backtester.report.trades.round_trips` (entry/exit time and price, side,
        size, duration, price / fees / funding / liquidation PnL, exit reason).
        """
        from backtester.report.trades import round_trips

        return round_trips(self)

    def returns(self, freq: str = "1D", currency: str = "settle") -> pd.Series:
        """Simple returns of the equity on a regular UTC grid, ready for quantstats/empyrical.

        The equity (balance + unrealised PnL at mark) is sampled at the last record of each
        ``freq`` bucket, carried forward over empty buckets, and the first return is measured
        from the initial balance (:func:`backtester.report.metrics.regular_returns`, the same
        series the Sharpe ratio etc. are computed from).

        Parameters
        ----------
        freq
            pandas offset alias of the grid (``"1D"``, ``"1h"``, ``"1W"``...).
        currency
            ``"settle"``, or ``"usd"`` (equity × mark, for inverse contracts).

        Returns
        -------
        pandas.Series
            Indexed by the end-of-bucket label (UTC ``DatetimeIndex``), name ``returns``.
        """
        from backtester.report.metrics import equity_series, regular_returns

        equity = equity_series(self, currency)
        initial = float(self.initial_balance_settle)
        if currency == "usd" and len(equity):
            marks = np.asarray(self.records["equity"]["mark_price"], dtype=np.float64)
            finite = marks[np.isfinite(marks) & (marks > 0)]
            initial = initial * float(finite[0]) if len(finite) else math.nan
            equity = equity[np.isfinite(equity.to_numpy())]
        grid, values = regular_returns(equity, initial, freq)
        return pd.Series(values, index=grid.index[1:], name="returns", dtype=np.float64)

    def __repr__(self) -> str:
        strategy = str(self.config.get("strategy", "backtest")).rpartition(".")[2]
        equity = self.records["equity"]
        span = ""
        if len(equity):
            first = pd.Timestamp(int(equity["ts_ns"][0]), unit="ns", tz="UTC")
            last = pd.Timestamp(int(equity["ts_ns"][-1]), unit="ns", tz="UTC")
            span = f" {first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} UTC,"
        initial = float(self.initial_balance_settle)
        change = self.final_equity_settle / initial - 1.0 if initial else math.nan
        return (
            f"<Result {strategy} on {', '.join(self.instruments)}:{span} "
            f"equity {initial:.8g} → {self.final_equity_settle:.8g} {self.settle_currency} "
            f"({change:+.2%}), {len(self.records['fills'])} fills, "
            f"{len(self.records['liquidations'])} liquidations>"
        )

    def _repr_html_(self) -> str:
        """Notebook display: the header and grouped key metrics of the HTML report."""
        from backtester.report.page import notebook_html

        return notebook_html(self)

    @property
    def ledger(self) -> pd.DataFrame:
        """Every cash movement with its type; sums to final minus initial balance.

        ``funding_source`` labels each FUNDING row with the source of its rate (``HISTORICAL``,
        or ``COMPUTED`` from the premium when the data had no funding history); "" elsewhere.
        """
        frame = self.frame("ledger")
        ledger = self.records["ledger"]
        sources = self.records["funding_payments"]["source"]
        is_funding = ledger["kind"] == int(LedgerKind.FUNDING)
        labels = np.full(len(ledger), "", dtype=object)
        refs = ledger["ref_id"][is_funding]
        labels[is_funding] = [FundingRateSource(int(v)).name for v in sources[refs]]
        frame["funding_source"] = labels
        return frame

    @property
    def fills(self) -> pd.DataFrame:
        """Every fill, including liquidation and ADL fills."""
        return self.frame("fills")

    @property
    def orders(self) -> pd.DataFrame:
        """Every order with its final status and reject reason."""
        return self.frame("orders")

    @property
    def funding_payments(self) -> pd.DataFrame:
        """Funding paid (< 0) or received (> 0) at each funding timestamp."""
        return self.frame("funding_payments")

    @property
    def liquidations(self) -> pd.DataFrame:
        """One row per full or partial liquidation."""
        return self.frame("liquidations")

    @property
    def settlements(self) -> pd.DataFrame:
        """Daily settlements (UPL moved to balance at the settlement mark)."""
        return self.frame("settlements")

    @property
    def adl(self) -> pd.DataFrame:
        """Auto-deleveraging and clawback events that hit the strategy."""
        return self.frame("adl")

    @property
    def equity(self) -> pd.DataFrame:
        """Balance, equity, margin ratio and position over time."""
        return self.frame("equity")

    @property
    def rejections(self) -> pd.Series:
        """Rejected orders counted by reason name, most frequent first (empty when none);
        ``config["rejections"]`` explains the first order of each reason."""
        from backtester.rejections import rejection_counts

        return rejection_counts(self.records["orders"])

    @property
    def rejected_orders(self) -> pd.DataFrame:
        """The rejected orders' rows (as :attr:`orders`), with their ``reject_reason``."""
        from backtester.rejections import rejected_orders

        return rejected_orders(self)

    @property
    def open_position_at_end(self) -> dict[str, Any] | None:
        """The position still open when the data ended (signed contracts by symbol, and its
        unrealised PnL apart from the realised balance change), or None when flat."""
        from backtester.rejections import open_position_at_end

        return open_position_at_end(self)

    # ------------------------------------------------------------------ reports (lazy imports)
    @property
    def stats(self) -> pd.Series:
        """Every metric of :func:`backtester.report.metrics.compute_metrics` as a Series."""
        from backtester.report.metrics import compute_metrics

        return pd.Series(compute_metrics(self), name="stats", dtype=object)

    def to_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML report (:func:`backtester.report.html.write_html`)."""
        from backtester.report.html import write_html

        return write_html(self, path)

    def plot(self) -> Any:
        """The equity-and-drawdown chart as a plotly ``Figure`` (first price chart if no equity)."""
        from backtester.report.html import build_figures

        figures = dict(build_figures(self))
        if len(self.records["equity"]):
            return figures["equity"]
        return figures["price-0"] if "price-0" in figures else figures["equity"]

    def save(self, directory: str | Path, *, csv: bool = False) -> Path:
        """Write the run's outputs (:func:`backtester.report.outputs.save_run`; Parquet, and
        readable CSV copies with ``csv=True``)."""
        from backtester.report.outputs import save_run

        return save_run(self, directory, csv=csv)
