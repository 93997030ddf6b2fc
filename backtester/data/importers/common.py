"""Shared pieces of the importers: the result type, row exclusion, CSV reading, conversions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from backtester import dtypes
from backtester.data.schemas import BAR_KINDS, kind_dtype
from backtester.data.validation import (
    MAX_ABS_FUNDING_RATE,
    DataValidationError,
    GapReport,
    find_gaps,
    validate_records,
)
from backtester.enums import FundingRateSource, Side

TIMEFRAME_NS = {
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000,
}


def timeframe_ns(label: str) -> int:
    """``"1m"``/``"15m"``/``"1h"``/``"8h"``/``"1d"``/``"1w"`` → ns."""
    unit = label[-1]
    if unit not in TIMEFRAME_NS or not label[:-1].isdigit():
        raise ValueError(f"timeframe: cannot parse {label!r}; expected e.g. 1m, 5m, 1h, 8h, 1d")
    return int(label[:-1]) * TIMEFRAME_NS[unit]


@dataclass
class ImportedStream:
    """One validated stream read from a source file, ready for :meth:`Catalog.write`.

    ``records`` has the kind's dtype; ``source`` names the file; ``metadata`` holds the
    provenance and conversions applied (units, excluded rows); ``gaps`` reports missing candles
    (candle kinds only). ``allow_open_outside_range`` is the validation option the data needs.
    """

    kind: str
    records: np.ndarray
    source: str
    interval_ns: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    gaps: GapReport | None = None
    allow_open_outside_range: bool = False

    def __repr__(self) -> str:
        return (
            f"ImportedStream(kind={self.kind!r}, rows={len(self.records):,}, "
            f"interval_ns={self.interval_ns}, source={self.source!r})"
        )


def finish(
    kind: str,
    records: np.ndarray,
    *,
    path: str | Path,
    interval_ns: int = 0,
    row_numbers: np.ndarray | None = None,
    exclude_rows: Iterable[int] | None = None,
    metadata: dict[str, str] | None = None,
    allow_open_outside_range: bool = False,
    max_abs_funding_rate: float = MAX_ABS_FUNDING_RATE,
) -> ImportedStream:
    """Drop explicitly excluded rows, validate, report gaps and wrap in :class:`ImportedStream`.

    ``row_numbers`` are the 1-based source data rows of ``records`` (default index + 1);
    ``exclude_rows`` are such row numbers to drop (each must exist); they are recorded in the
    metadata ``excluded_rows``.
    """
    name = Path(path).name
    rows = np.arange(1, len(records) + 1) if row_numbers is None else np.asarray(row_numbers)
    meta = dict(metadata or {})
    if exclude_rows:
        wanted = np.unique(np.asarray(list(exclude_rows), dtype=np.int64))
        unknown = np.setdiff1d(wanted, rows)
        if len(unknown):
            raise ValueError(
                f"{name}: exclude_rows {unknown.tolist()} are not data rows of this stream "
                f"(rows {int(rows.min()):,}..{int(rows.max()):,})"
            )
        keep = ~np.isin(rows, wanted)
        records, rows = records[keep], rows[keep]
        meta["excluded_rows"] = ",".join(str(r) for r in wanted.tolist())
    validate_records(
        records,
        kind,
        name=name,
        interval_ns=interval_ns,
        allow_open_outside_range=allow_open_outside_range,
        max_abs_funding_rate=max_abs_funding_rate,
        row_numbers=rows,
    )
    gaps = find_gaps(records["ts_ns"], interval_ns) if kind in BAR_KINDS else None
    if gaps is not None and len(gaps):
        meta["gaps"] = f"{len(gaps)} gaps, {gaps.missing_bars:g} missing bars"
    meta.setdefault("source_file", str(path))
    return ImportedStream(
        kind=kind,
        records=records,
        source=str(path),
        interval_ns=interval_ns,
        metadata=meta,
        gaps=gaps,
        allow_open_outside_range=allow_open_outside_range,
    )


def require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """Raise ``ValueError`` naming the missing columns and the columns present."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name}: missing column(s) {missing}; got columns {list(frame.columns)} "
            f"(expected {list(columns)})"
        )


def read_csv_auto_header(
    path: str | Path, columns: Sequence[str], required: Sequence[str]
) -> pd.DataFrame:
    """Read a CSV that may or may not have a header row (Binance archives have both).

    A file whose first field is a number has no header and gets ``columns`` as names (extra
    trailing columns are named ``extra_<i>``).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError(f"{path.name}: empty file (no header, no rows)")
    with _open_text(path) as handle:
        first = handle.readline().strip()
    if not first:
        raise ValueError(f"{path.name}: empty file (no header, no rows)")
    head = first.split(",")[0].strip().strip('"')
    try:
        float(head)
        has_header = False
    except ValueError:
        has_header = True
    if has_header:
        frame = pd.read_csv(path)
    else:
        frame = pd.read_csv(path, header=None)
        names = list(columns) + [f"extra_{i}" for i in range(frame.shape[1] - len(columns))]
        frame.columns = names[: frame.shape[1]]
    if frame.empty:
        raise ValueError(f"{path.name}: no data rows")
    require_columns(frame, required, path.name)
    return frame


def _open_text(path: Path) -> TextIO:
    import gzip

    if path.suffix == ".gz":
        return gzip.open(path, "rt")
    return open(path)


def numeric(frame: pd.DataFrame, column: str, name: str, dtype: type = np.float64) -> np.ndarray:
    """Column as a numeric array; a non-numeric cell raises naming its row and value."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & frame[column].notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"{name} row {i + 1:,}: column {column!r} value {frame[column].iloc[i]!r} "
            "is not a number"
        )
    return values.astype(dtype) if dtype is not np.float64 else values


def datetime_column_ns(values: pd.Series | np.ndarray, name: str, column: str) -> np.ndarray:
    """Datetime-like column (tz-aware, naive = UTC, or ISO strings) → int64 ns UTC."""
    try:
        series = pd.to_datetime(pd.Series(values), utc=True)
    except (ValueError, TypeError) as exc:
        raise DataValidationError(
            f"{name}: column {column!r} is not a date/time column ({exc})"
        ) from None
    if series.isna().any():
        i = int(np.flatnonzero(series.isna().to_numpy())[0])
        raise DataValidationError(f"{name} row {i + 1:,}: column {column!r} has no time")
    return series.dt.as_unit("ns").astype("int64").to_numpy()


def side_from_buyer_maker(is_buyer_maker: np.ndarray) -> np.ndarray:
    """Binance ``m`` / ``is_buyer_maker`` → aggressor side (buyer is maker ⇒ the seller took)."""
    return np.where(is_buyer_maker, int(Side.SELL), int(Side.BUY)).astype(np.int8)


def side_from_text(values: np.ndarray, name: str) -> np.ndarray:
    """``buy``/``sell``/``unknown`` (any case) → Side; anything else raises naming the row."""
    text = pd.Series(values).astype(str).str.lower().to_numpy()
    out = np.full(len(text), int(Side.NONE), dtype=np.int8)
    out[text == "buy"] = int(Side.BUY)
    out[text == "sell"] = int(Side.SELL)
    bad = ~np.isin(text, ["buy", "sell", "unknown", ""])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(f"{name} row {i + 1:,}: side {text[i]!r} is not buy/sell/unknown")
    return out


def quantity_to_base(
    qty: np.ndarray,
    price: np.ndarray,
    *,
    contract_kind: str | None,
    face_value: float | None,
    name: str,
) -> tuple[np.ndarray, dict[str, str]]:
    """Convert a quantity column to base coin, explicitly.

    ``contract_kind=None``: already base coin. ``"linear"``: contracts × face (base per contract).
    ``"inverse"``: contracts × face (quote per contract) / price. Returns the metadata entry.
    """
    if contract_kind is None:
        return qty, {"qty_unit_source": "base"}
    if face_value is None or not face_value > 0:
        raise ValueError(f"{name}: face_value must be > 0 to convert contracts, got {face_value!r}")
    if contract_kind == "linear":
        return qty * face_value, {"qty_unit_source": f"contracts x {face_value:g} base"}
    if contract_kind == "inverse":
        return qty * face_value / price, {
            "qty_unit_source": f"contracts x {face_value:g} quote / price"
        }
    raise ValueError(f"contract_kind: expected None, 'linear' or 'inverse', got {contract_kind!r}")


def trade_records(
    ts_ns: np.ndarray, price: np.ndarray, qty: np.ndarray, side: np.ndarray
) -> np.ndarray:
    """Assemble TRADE_DTYPE records."""
    out = np.empty(len(ts_ns), dtype=dtypes.TRADE_DTYPE)
    out["ts_ns"], out["price"], out["qty_base"], out["side"] = ts_ns, price, qty, side
    return out


def bar_records(
    ts_ns: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> np.ndarray:
    """Assemble BAR_DTYPE records."""
    out = np.empty(len(ts_ns), dtype=dtypes.BAR_DTYPE)
    out["ts_ns"], out["open"], out["high"], out["low"], out["close"] = (
        ts_ns,
        open_,
        high,
        low,
        close,
    )
    out["volume_base"] = volume
    return out


def bars_stream(
    kind: str,
    ts_ns: np.ndarray,
    prices: Mapping[str, np.ndarray],
    volume: np.ndarray,
    path: str | Path,
    interval_ns: int,
    exclude_rows: Iterable[int] | None,
    metadata: dict[str, str],
    *,
    allow_open_outside_range: bool = False,
) -> list[ImportedStream]:
    """Return the one candle stream of ``prices`` (open/high/low/close columns) and ``volume``.

    The records are assembled by :func:`bar_records`, then excluded rows are dropped and the
    stream validated by :func:`finish` (see there for the options).
    """
    records = bar_records(
        ts_ns, prices["open"], prices["high"], prices["low"], prices["close"], volume
    )
    return [
        finish(
            kind,
            records,
            path=path,
            interval_ns=interval_ns,
            exclude_rows=exclude_rows,
            metadata=metadata,
            allow_open_outside_range=allow_open_outside_range,
        )
    ]


def price_records(ts_ns: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Assemble PRICE_DTYPE records."""
    out = np.empty(len(ts_ns), dtype=dtypes.PRICE_DTYPE)
    out["ts_ns"], out["price"] = ts_ns, price
    return out


def funding_records(
    ts_ns: np.ndarray, rate: np.ndarray, interval_ns: np.ndarray | int
) -> np.ndarray:
    """Assemble FUNDING_RATE_DTYPE records (historical source)."""
    out = np.empty(len(ts_ns), dtype=dtypes.FUNDING_RATE_DTYPE)
    out["ts_ns"], out["funding_rate"], out["funding_interval_ns"] = ts_ns, rate, interval_ns
    out["source"] = int(FundingRateSource.HISTORICAL)
    return out


def funding_from_ticker(
    ts_ns: np.ndarray, next_funding_ns: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Settled funding events from a ticker stream of (time, next funding time, current rate).

    A venue's ticker shows the rate that will be charged at the *next* funding time. When a
    message arrives at or after that time (the next funding time moves on), the last rate shown
    before it is the rate charged at that funding. Funding times never passed inside the
    capture produce no event (their rate was still an estimate). Returns ``(ts, rate, rows)``
    with ``rows`` the 0-based index of the message whose rate is used.
    """
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    nxt = np.asarray(next_funding_ns, dtype=np.int64)
    if len(ts_ns) < 2:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    change = np.flatnonzero(nxt[1:] != nxt[:-1]) + 1
    passed = change[ts_ns[change] >= nxt[change - 1]]
    rows = passed - 1
    return nxt[rows], np.asarray(rate, dtype=np.float64)[rows], rows


def collapse_same_timestamp(ts_ns: np.ndarray) -> np.ndarray:
    """Index of the last message at each timestamp (later messages supersede earlier ones)."""
    if len(ts_ns) == 0:
        return np.zeros(0, dtype=np.int64)
    last = np.ones(len(ts_ns), dtype=bool)
    last[:-1] = ts_ns[1:] != ts_ns[:-1]
    return np.flatnonzero(last)


def empty(kind: str) -> np.ndarray:
    """Empty record array of ``kind``."""
    return np.zeros(0, dtype=kind_dtype(kind))
