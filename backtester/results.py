"""The outcome of one backtest: record arrays plus pandas views over them.

A :class:`Result` holds the raw structured arrays the engine wrote (orders, fills, funding
payments, liquidations, settlements, ADL/clawback, ledger, equity; dtypes in
:mod:`backtester.dtypes`) and the facts needed to read them (instrument symbols, settle currency,
initial balance, the configuration used). Everything else — metrics, attribution, reports — is
computed from these arrays, so two results compare equal exactly when their arrays do.

Records stay numpy until a table is asked for: the pandas views (``result.fills``,
``result.ledger``, ``result.equity`` ...) are built on first access and cached (the same
DataFrame is returned again; copy it before changing it). A streamed replay's records are not
even in memory: they were spilled to Parquet window by window (:mod:`backtester.engine.spill`)
and :class:`RecordStore` reads a kind back on first access.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import weakref
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtester import dtypes
from backtester.engine.buffers import record_buffer
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
    frame = pd.DataFrame(_record_columns(records), copy=False)
    if len(records) == 0:
        # no rows: an empty list per converted column (the tables' dtypes as they were)
        for name in list(frame.columns):
            if name.endswith("_ns") and name.startswith("ts"):
                frame[name.removesuffix("_ns")] = _utc_times(records[name])
            elif name in _ENUM_COLUMNS or (name == "instrument" and instruments is not None):
                frame[name] = []
        return frame
    for name in list(frame.columns):
        if name.endswith("_ns") and name.startswith("ts"):
            frame[name.removesuffix("_ns")] = _utc_times(records[name])
        elif name in _ENUM_COLUMNS:
            enum_type = _ENUM_COLUMNS[name]
            if name == "kind" and records.dtype == dtypes.ADL_DTYPE:
                enum_type = LedgerKind
            frame[name] = _enum_names(records[name], enum_type, name)
        elif name == "instrument" and instruments is not None:
            symbols = np.array([*instruments, ""], dtype=object)
            index = np.asarray(records[name], dtype=np.int64)
            # an index outside the list reads as "" (the last entry)
            frame[name] = symbols[np.where((index >= 0) & (index < len(instruments)), index, -1)]
    return frame


# records converted to columns this many at a time (a strided transpose of the whole array
# at once ran ~1.6x slower on 1 M equity rows: the reads and writes of a block stay in cache)
_COLUMN_BLOCK_ROWS = 1 << 14


def _record_columns(records: npt.NDArray[np.void]) -> dict[str, npt.NDArray[Any]]:
    """Copy the fields of ``records`` to contiguous columns of new memory.

    The records are never shared with a table. A dtype of 8-byte fields only, packed (the
    equity rows), is transposed in blocks of rows in one pass over the records: copying field
    by field reads the whole array once per field.
    """
    names = records.dtype.names or ()
    fields: Mapping[str, Any] = records.dtype.fields or {}
    width = len(names)
    packed = records.dtype.itemsize == 8 * width and all(
        fields[name][0].itemsize == 8 and fields[name][1] == 8 * j for j, name in enumerate(names)
    )
    if not packed or not records.flags.c_contiguous or width == 0:
        return {name: np.array(records[name]) for name in names}
    n = len(records)
    words = records.view(np.int64).reshape(n, width)
    # pooled memory, every word written below: a table built again after the last one is
    # gone gets mapped pages (a 1 M-row table's ~18k first-touch page faults otherwise)
    block = record_buffer(width * n, np.dtype(np.int64), zeroed=False).reshape(width, n)
    for start in range(0, n, _COLUMN_BLOCK_ROWS):
        block[:, start : start + _COLUMN_BLOCK_ROWS] = words[start : start + _COLUMN_BLOCK_ROWS].T
    return {name: block[j].view(fields[name][0]) for j, name in enumerate(names)}


def _utc_times(ns: npt.NDArray[Any]) -> pd.Series:
    """Convert integer nanoseconds since the epoch to a tz-aware UTC column.

    The values of ``pd.to_datetime(ns, unit="ns", utc=True)``, without its parsing pass.
    """
    return pd.Series(np.asarray(ns, dtype=np.int64).astype("M8[ns]"), copy=False).dt.tz_localize(
        "UTC"
    )


def _enum_names(values: npt.NDArray[Any], enum_type: Any, column: str) -> npt.NDArray[Any]:
    """Return the member names of integer enum ``values`` (object array), in one take.

    A value that is no member raises ValueError naming the column (as ``enum_type(v)``).
    """
    codes = np.asarray(values, dtype=np.int64)
    members = list(enum_type)
    low = min(int(m) for m in members)
    table = np.full(max(int(m) for m in members) - low + 2, None, dtype=object)
    for member in members:
        table[int(member) - low] = member.name
    index = codes - low
    index = np.where((index >= 0) & (index < len(table) - 1), index, len(table) - 1)
    names = table[index]
    if np.any(names == None):  # noqa: E711 (elementwise comparison)
        bad = codes[names == None][0]  # noqa: E711
        raise ValueError(f"{column}: {bad} is not a valid {enum_type.__name__}")
    return names


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


_T = TypeVar("_T")


def _remove_folder(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class RecordStore(MutableMapping[str, npt.NDArray[np.void]]):
    """Record arrays by kind, held in memory or spilled to a records folder.

    Spilled kinds (as a streamed replay leaves them) are read back on first access, then cached.

    ``store["equity"]`` is the whole structured array, exactly as the engine wrote it (values
    bit for bit; padding bytes zero). :meth:`count` and :meth:`last_rows` answer from the
    Parquet metadata and the last row group without reading the rest.

    Parameters
    ----------
    arrays
        Kinds held in memory.
    directory
        The records folder (:mod:`backtester.engine.spill`); ``<kind>.parquet`` for each kind
        in ``spilled``.
    spilled
        Kind (or price-series file name) → dtype of the files in ``directory``.
    temporary
        The folder was created for this run: it is removed by :meth:`close`, or when the store
        is garbage-collected (at interpreter exit at the latest). A folder the user named
        (``records_directory=``) is never removed.

    Pickles as a plain ``dict`` of arrays (every spilled kind read), so a Result sent to
    another process does not depend on this machine's folder.
    """

    def __init__(
        self,
        arrays: Mapping[str, npt.NDArray[np.void]],
        directory: str | Path | None = None,
        spilled: Mapping[str, np.dtype] | None = None,
        *,
        temporary: bool = False,
    ) -> None:
        self._arrays: dict[str, npt.NDArray[np.void]] = dict(arrays)
        self.directory = None if directory is None else Path(directory)
        self._spilled: dict[str, np.dtype] = {k: np.dtype(v) for k, v in (spilled or {}).items()}
        self.temporary = temporary
        self._closed = False
        self._finalizer = (
            weakref.finalize(self, _remove_folder, self.directory)
            if temporary and self.directory is not None
            else None
        )

    def path(self, kind: str) -> Path | None:
        """Return the Parquet file of a spilled kind (None when held in memory)."""
        from backtester.engine.spill import spill_file

        if kind in self._spilled and self.directory is not None:
            return spill_file(self.directory, kind)
        return None

    def is_loaded(self, kind: str) -> bool:
        """Whether ``kind`` is in memory (held, or already read back)."""
        return kind in self._arrays

    def dtype(self, kind: str) -> np.dtype:
        """Return the dtype of a kind, without reading it."""
        if kind in self._arrays:
            return self._arrays[kind].dtype
        if kind in self._spilled:
            return self._spilled[kind]
        raise KeyError(kind)

    def _file(self, kind: str) -> Path:
        if self._closed:
            raise ValueError(
                f"records[{kind!r}]: the Result was closed and its temporary records folder "
                f"{self.directory} removed; read the records before closing, or pass "
                "records_directory= to keep them"
            )
        path = self.path(kind)
        assert path is not None
        return path

    def __getitem__(self, kind: str) -> npt.NDArray[np.void]:
        array = self._arrays.get(kind)
        if array is not None:
            return array
        if kind not in self._spilled:
            raise KeyError(kind)
        from backtester.engine.spill import read_records

        array = read_records(self._file(kind), self._spilled[kind])
        self._arrays[kind] = array
        return array

    def __setitem__(self, kind: str, array: npt.NDArray[np.void]) -> None:
        self._arrays[kind] = array
        self._spilled.pop(kind, None)

    def __delitem__(self, kind: str) -> None:
        if kind not in self._arrays and kind not in self._spilled:
            raise KeyError(kind)
        self._arrays.pop(kind, None)
        self._spilled.pop(kind, None)

    def __contains__(self, kind: object) -> bool:
        # without reading the kind (Mapping's default would)
        return kind in self._arrays or kind in self._spilled

    def __iter__(self) -> Iterator[str]:
        return iter({**self._arrays, **self._spilled})

    def __len__(self) -> int:
        return len({**self._arrays, **self._spilled})

    def count(self, kind: str) -> int:
        """Rows of ``kind`` (from the Parquet metadata when not read yet)."""
        if kind in self._arrays:
            return len(self._arrays[kind])
        import pyarrow.parquet as pq

        return int(pq.read_metadata(self._file(kind)).num_rows)

    def last_rows(self, kind: str, n: int = 1) -> npt.NDArray[np.void]:
        """Return the last ``n`` rows of ``kind`` (spilled: only the last row groups are read)."""
        if kind in self._arrays or kind not in self._spilled:
            return self[kind][-n:] if n else self[kind][:0]
        from backtester.engine.spill import read_last_rows

        return read_last_rows(self._file(kind), self._spilled[kind], n)

    def first_rows(self, kind: str, n: int = 1) -> npt.NDArray[np.void]:
        """Return the first ``n`` rows of ``kind`` (spilled: only the first row group is read)."""
        if kind in self._arrays or kind not in self._spilled:
            return self[kind][:n]
        from backtester.engine.spill import read_first_rows

        return read_first_rows(self._file(kind), self._spilled[kind], n)

    def release(self, kind: str | None = None) -> None:
        """Drop the in-memory copy of spilled kinds read back (all, or ``kind``).

        The next access reads the file again. Kinds that were never spilled are kept.
        """
        for name in [kind] if kind is not None else list(self._spilled):
            if name in self._spilled:
                self._arrays.pop(name, None)

    def close(self) -> None:
        """Drop the spilled kinds read back and remove a temporary records folder."""
        self.release()
        if self._finalizer is not None:
            self._finalizer()
            self._closed = True

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, ({kind: self[kind] for kind in self},))

    def __repr__(self) -> str:
        where = f", spilled to {self.directory}" if self._spilled else ""
        return f"RecordStore({sorted(self)}{where})"


PRICE_SERIES_NAMES = ("last", "mark", "index")


class PriceSeriesView(Mapping[str, npt.NDArray[np.void]]):
    """One instrument's ``{"last", "mark", "index"}`` price series, each built on first access.

    A subclass says how a series is found (:meth:`_series`). Pickles as a plain ``dict`` of the
    three arrays, so a Result sent to another process carries them.
    """

    def _series(self, name: str) -> npt.NDArray[np.void]:
        """Return the ``PRICE_DTYPE`` array of series ``name`` (one of PRICE_SERIES_NAMES)."""
        raise NotImplementedError

    def __getitem__(self, key: str) -> npt.NDArray[np.void]:
        if key not in PRICE_SERIES_NAMES:
            raise KeyError(key)
        return self._series(key)

    def __iter__(self) -> Iterator[str]:
        return iter(PRICE_SERIES_NAMES)

    def __len__(self) -> int:
        return len(PRICE_SERIES_NAMES)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self.items()),))


class SpilledSeries(PriceSeriesView):
    """Price series of one instrument of a streamed replay, read from its records folder.

    Read on first access (see :class:`RecordStore`), from the kind ``price-<instrument>-<name>``.
    """

    def __init__(self, store: RecordStore, instrument: int) -> None:
        self._store = store
        self._instrument = instrument

    def _series(self, name: str) -> npt.NDArray[np.void]:
        return self._store[f"price-{self._instrument}-{name}"]


class RecordFrame:
    """A read-only attribute of :class:`Result`: one record kind as its cached DataFrame.

    ``result.fills`` is ``result.frame("fills")``; the kind is the attribute's name.
    """

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self.kind = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.kind = name

    @overload
    def __get__(self, result: None, owner: type | None = None) -> RecordFrame: ...

    @overload
    def __get__(self, result: Result, owner: type | None = None) -> pd.DataFrame: ...

    def __get__(
        self, result: Result | None, owner: type | None = None
    ) -> pd.DataFrame | RecordFrame:
        if result is None:
            return self
        return result.frame(self.kind)

    def __set__(self, result: Result, value: object) -> None:
        # read-only like a property: the records, not the table, are the result
        raise AttributeError(f"Result.{self.kind} is read-only (built from result.records)")


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
        :data:`backtester.dtypes.ALL_RECORD_DTYPES`); a :class:`RecordStore` for a streamed
        replay (spilled kinds read from Parquet on first access; :meth:`close` removes a
        temporary records folder).
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
    records: MutableMapping[str, npt.NDArray[np.void]]
    config: dict[str, Any] = field(default_factory=dict)
    price_series: dict[str, Mapping[str, npt.NDArray[np.void]]] = field(default_factory=dict)
    contract_kinds: list[int] = field(default_factory=list)
    plots: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=dict
    )
    # pandas views built on first access (see the module notes); not compared, not pickled
    _frames: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        store = self.records if isinstance(self.records, RecordStore) else None
        for name, dtype in dtypes.ALL_RECORD_DTYPES.items():
            if name not in self.records:
                self.records[name] = np.zeros(0, dtype=dtype)
                continue
            # a spilled kind is checked by its stored dtype, without reading it
            found = store.dtype(name) if store is not None else self.records[name].dtype
            if found != dtype:
                raise TypeError(
                    f"Result.records[{name!r}] has dtype {found}, expected {dtype} "
                    f"(backtester.dtypes.{name.upper()})"
                )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_frames"] = {}
        return state

    def _cached(self, key: str, build: Callable[[], _T]) -> _T:
        """Return ``build()``, built once: later calls return the same object.

        The records do not change, so neither does anything built from them.
        """
        if key not in self._frames:
            self._frames[key] = build()
        return cast(_T, self._frames[key])

    def _last_rows(self, kind: str, n: int = 1) -> npt.NDArray[np.void]:
        if isinstance(self.records, RecordStore):
            return self.records.last_rows(kind, n)
        return self.records[kind][-n:]

    def _count(self, kind: str) -> int:
        if isinstance(self.records, RecordStore):
            return self.records.count(kind)
        return len(self.records[kind])

    def close(self) -> None:
        """Free the cached tables and, for a streamed replay, the spilled records read back.

        Also removes a temporary records folder (a named ``records_directory`` is kept).
        Reading a spilled kind not read before is then an error. Also done when the Result is
        garbage-collected; ``with backtest(...) as result:`` closes at the end of the block.
        """
        self._frames.clear()
        if isinstance(self.records, RecordStore):
            self.records.close()

    def __enter__(self) -> Result:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ raw numbers
    @property
    def final_balance_settle(self) -> float:
        """Wallet balance after the last ledger movement, in settle currency."""
        ledger = self._last_rows("ledger")
        if len(ledger) == 0:
            return float(self.initial_balance_settle)
        return float(ledger["balance_after_settle"][-1])

    @property
    def final_equity_settle(self) -> float:
        """Equity (balance + unrealised PnL at mark) at the last equity sample."""
        equity = self._last_rows("equity")
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
        """Return one record kind as a DataFrame (see :func:`records_to_frame`).

        Built on first access and cached (the same object is returned again: copy it before
        changing it).

        The index is a UTC ``DatetimeIndex`` named ``time``: the record's ``ts_ns`` (orders:
        ``ts_created_ns``), so frames slice by date (``result.fills.loc["2024-02"]``) and
        resample directly.
        """
        if kind not in dtypes.ALL_RECORD_DTYPES:
            raise KeyError(
                f"unknown record kind {kind!r}; expected one of {sorted(dtypes.ALL_RECORD_DTYPES)}"
            )
        return self._cached(f"frame:{kind}", lambda: self._build_frame(kind))

    def _build_frame(self, kind: str) -> pd.DataFrame:
        records = self.records[kind]
        frame = records_to_frame(records, self.instruments)
        column = "ts_created_ns" if kind == "orders" else "ts_ns"
        # the converted time column of records_to_frame (``ts``, orders: ``ts_created``)
        frame.index = pd.DatetimeIndex(frame[column.removesuffix("_ns")], name="time")
        return frame

    @property
    def trades(self) -> pd.DataFrame:
        """Round trips built from the fills, PnL split by cause from the ledger.

        See :func:`backtester.report.trades.round_trips` (entry/exit time and price, side,
        size, duration, price / fees / funding / liquidation PnL, exit reason).
        """
        from backtester.report.trades import round_trips

        return self._cached("trades", lambda: round_trips(self))

    def returns(self, freq: str = "1D", currency: str = "settle") -> pd.Series:
        """Return simple returns of the equity on a regular UTC grid (for quantstats/empyrical).

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
        store = self.records
        first_row = (
            store.first_rows("equity") if isinstance(store, RecordStore) else store["equity"][:1]
        )
        span = ""
        if len(first_row):
            first = pd.Timestamp(int(first_row["ts_ns"][0]), unit="ns", tz="UTC")
            last = pd.Timestamp(int(self._last_rows("equity")["ts_ns"][-1]), unit="ns", tz="UTC")
            span = f" {first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} UTC,"
        initial = float(self.initial_balance_settle)
        change = self.final_equity_settle / initial - 1.0 if initial else math.nan
        return (
            f"<Result {strategy} on {', '.join(self.instruments)}:{span} "
            f"equity {initial:.8g} → {self.final_equity_settle:.8g} {self.settle_currency} "
            f"({change:+.2%}), {self._count('fills')} fills, "
            f"{self._count('liquidations')} liquidations>"
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
        Built on first access and cached.
        """
        return self._cached("ledger", self._build_ledger)

    def _build_ledger(self) -> pd.DataFrame:
        frame = self._build_frame("ledger")
        ledger = self.records["ledger"]
        sources = self.records["funding_payments"]["source"]
        is_funding = ledger["kind"] == int(LedgerKind.FUNDING)
        labels = np.full(len(ledger), "", dtype=object)
        refs = ledger["ref_id"][is_funding]
        labels[is_funding] = _enum_names(sources[refs], FundingRateSource, "source")
        frame["funding_source"] = labels
        return frame

    fills = RecordFrame("Every fill, including liquidation and ADL fills.")
    orders = RecordFrame("Every order with its final status and reject reason.")
    funding_payments = RecordFrame(
        "Funding paid (< 0) or received (> 0) at each funding timestamp."
    )
    settlements = RecordFrame("Daily settlements (UPL moved to balance at the settlement mark).")
    adl = RecordFrame("Auto-deleveraging and clawback events that hit the strategy.")
    equity = RecordFrame("Balance, equity, margin ratio and position over time.")

    @property
    def liquidations(self) -> pd.DataFrame:
        """One row per full or partial liquidation, compared with a last-price model.

        With when a last-price model would have liquidated and how the loss differs
        (``last_price_trigger_time``, ``last_price_delay`` ...:
        :func:`backtester.report.liquidations.last_price_comparison`).
        """
        return self._cached("liquidations", self._build_liquidations)

    def _build_liquidations(self) -> pd.DataFrame:
        from backtester.report.liquidations import last_price_comparison

        frame = self.frame("liquidations").copy()
        for name, column in last_price_comparison(self).items():
            frame[name] = column.to_numpy()
        return frame

    @property
    def rejections(self) -> pd.Series:
        """Rejected orders counted by reason name, most frequent first (empty when none).

        ``config["rejections"]`` explains the first order of each reason.
        """
        from backtester.rejections import rejection_counts

        return rejection_counts(self.records["orders"])

    @property
    def rejected_orders(self) -> pd.DataFrame:
        """The rejected orders' rows (as :attr:`orders`), with their ``reject_reason``."""
        from backtester.rejections import rejected_orders

        return rejected_orders(self)

    @property
    def open_position_at_end(self) -> dict[str, Any] | None:
        """The position still open when the data ended, or None when flat.

        Signed contracts by symbol, and its unrealised PnL apart from the realised balance
        change.
        """
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
        """Return the equity-and-drawdown chart as a plotly ``Figure``.

        The first price chart when the run has no equity records.
        """
        from backtester.report.html import build_figures

        figures = dict(build_figures(self))
        if len(self.records["equity"]):
            return figures["equity"]
        return figures["price-0"] if "price-0" in figures else figures["equity"]

    def save(self, directory: str | Path, *, csv: bool = False) -> Path:
        """Write the run's outputs (:func:`backtester.report.outputs.save_run`).

        Parquet records, summary, configuration and the HTML report, plus readable CSV copies
        with ``csv=True``; :func:`backtester.report.load.load_run` reads the folder back.
        """
        from backtester.report.outputs import save_run

        return save_run(self, directory, csv=csv)
