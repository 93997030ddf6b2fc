"""Candle-file importers: freqtrade, BitMEX bucketed parquet, LEAN zip, FTX (nautilus) CSV.

Units
-----
* freqtrade ``*-futures``/spot files: volume is base coin (ccxt), kept as is. ``*-mark`` and
  ``*-index`` candles: volume is meaningless (0 or NaN in the files) and is stored as 0.
  ``*-funding_rate`` files hold one row per funding event with the rate in ``open``; the
  ``1h``/``8h`` in the file name is freqtrade's storage timeframe, not the funding interval, so
  ``funding_interval_ns`` is 0 (unknown) unless passed.
* BitMEX XBTUSD buckets: volume is contracts of 1 USD (inverse), converted to base coin as
  ``volume / close`` (the close is the only per-bucket price we have; the true base volume is
  Σ contracts / trade price). ``open`` is the previous close (BitMEX convention), so
  ``allow_open_outside_range`` is set.
* LEAN cryptofuture minute zips: ms since midnight UTC, the date from the file name
  (``YYYYMMDD_trade.zip``). Binance COIN-M volume is contracts: pass
  ``inverse_face_value_quote=100`` (BTCUSD_PERP) to convert with ``contracts × 100 / close``.
* FTX (nautilus test data): naive UTC ``timestamp``, volume in USD, converted to base as
  ``volume / close`` (approximation recorded in the metadata).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq

from backtester.data.importers.common import (
    ImportedStream,
    bars_stream,
    datetime_column_ns,
    finish,
    funding_records,
    numeric,
    require_columns,
    timeframe_ns,
)
from backtester.data.validation import DataValidationError, to_ns

_FREQTRADE_NAME = re.compile(
    r"^(?P<pair>.+?)-(?P<tf>\d+[smhdw])(?:-(?P<ct>futures|mark|index|funding_rate|premiumIndex))?"
    r"\.(?P<ext>feather|parquet)$"
)
_CANDLE_KIND = {
    None: "bars",
    "futures": "bars",
    "mark": "mark_bars",
    "index": "index_bars",
    "funding_rate": "funding",
}


def read_table(path: str | Path) -> pa.Table:
    """Read a feather or parquet file; a damaged file raises ``ValueError`` naming it."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError(f"{path.name}: empty file (0 bytes)")
    try:
        if path.suffix == ".feather":
            return feather.read_table(path)
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"{path.name}: not a readable {path.suffix[1:]} file ({exc})") from None


def _time_column_ns(table: pa.Table, column: str, name: str, time_unit: str) -> np.ndarray:
    col = table.column(column)
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            raise DataValidationError(
                f"{name}: column {column!r} is a naive timestamp; expected tz-aware UTC"
            )
        if col.null_count:
            raise DataValidationError(f"{name}: column {column!r} has {col.null_count} nulls")
        ns: np.ndarray = pc.cast(col, pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
        return ns
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return to_ns(col.to_numpy(), time_unit, name)
    raise DataValidationError(f"{name}: column {column!r} has type {col.type}; expected times")


def import_freqtrade(
    path: str | Path,
    *,
    candle_type: str | None = None,
    timeframe: str | None = None,
    funding_interval_ns: int = 0,
    time_unit: str = "ms",
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Import a freqtrade ``<PAIR>-<tf>[-<candle_type>].feather|parquet`` file.

    ``candle_type`` (``futures``/``mark``/``index``/``funding_rate``/``spot``) and ``timeframe``
    are read from the file name unless given. ``date`` may be tz-aware (any unit) or integer
    epoch in ``time_unit``.
    """
    path = Path(path)
    match = _FREQTRADE_NAME.match(path.name)
    if candle_type is None or timeframe is None:
        if not match:
            raise ValueError(
                f"{path.name}: not a freqtrade file name <PAIR>-<tf>[-<type>].feather; pass "
                "candle_type= and timeframe="
            )
        candle_type = candle_type or match.group("ct") or "spot"
        timeframe = timeframe or match.group("tf")
    kind = _CANDLE_KIND.get(None if candle_type == "spot" else candle_type)
    if kind is None:
        raise ValueError(
            f"candle_type: {candle_type!r} not supported; expected spot, futures, mark, index "
            "or funding_rate"
        )
    interval = timeframe_ns(timeframe)
    table = read_table(path)
    frame_cols = table.schema.names
    need = ["date", "open", "high", "low", "close", "volume"]
    missing = [c for c in need if c not in frame_cols]
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {missing}; got columns {frame_cols}")
    if table.num_rows == 0:
        raise ValueError(f"{path.name}: no data rows")
    ts = _time_column_ns(table, "date", path.name, time_unit)
    col = {c: table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in need[1:]}
    meta = {"format": "freqtrade", "candle_type": candle_type, "timeframe": timeframe}
    if kind == "funding":
        records = funding_records(ts, col["open"], funding_interval_ns)
        meta["rate_column"] = "open"
        return [finish("funding", records, path=path, exclude_rows=exclude_rows, metadata=meta)]
    volume = col["volume"]
    if kind != "bars":
        volume = np.zeros(len(ts))
        meta["volume"] = "not meaningful for price-index candles; stored as 0"
    return bars_stream(kind, ts, col, volume, path, interval, exclude_rows, meta)


def import_bitmex_parquet(
    path: str | Path,
    *,
    face_value_quote: float = 1.0,
    exclude_rows: Iterable[int] | None = None,
    columns: list[str] | None = None,
) -> list[ImportedStream]:
    """Import converted BitMEX ``trade/bucketed`` 1m parquet (``open_time`` ms, USD contracts)."""
    path = Path(path)
    table = read_table(path) if columns is None else pq.read_table(path, columns=columns)
    need = ["open_time", "open", "high", "low", "close", "volume"]
    missing = [c for c in need if c not in table.schema.names]
    if missing:
        raise ValueError(
            f"{path.name}: missing column(s) {missing}; got columns {table.schema.names}"
        )
    ts = _time_column_ns(table, "open_time", path.name, "ms")
    c = {n: table.column(n).to_numpy().astype(np.float64) for n in need[1:]}
    interval = int(np.median(np.diff(ts[:1000]))) if len(ts) > 1 else 60_000_000_000
    if interval != 60_000_000_000:
        raise ValueError(f"{path.name}: expected 1m buckets, median spacing is {interval} ns")
    return _bitmex_bars(path, ts, c, face_value_quote, interval, exclude_rows, "bitmex_bucketed")


def _bitmex_bars(
    path: Path,
    ts: np.ndarray,
    columns: Mapping[str, np.ndarray],
    face_value_quote: float,
    interval_ns: int,
    exclude_rows: Iterable[int] | None,
    fmt: str,
) -> list[ImportedStream]:
    """Return the bars stream of BitMEX buckets (``columns`` open/high/low/close/volume).

    BitMEX XBTUSD volume is in USD contracts (inverse): base volume = contracts ·
    ``face_value_quote`` / close; the bucket's open is the previous close, so it may lie
    outside [low, high].
    """
    volume_base = columns["volume"] * face_value_quote / columns["close"]
    meta = {
        "format": fmt,
        "volume": f"contracts x {face_value_quote:g} USD / close (inverse)",
        "open_convention": "BitMEX open = previous close; may lie outside [low, high]",
    }
    return bars_stream(
        "bars",
        ts,
        columns,
        volume_base,
        path,
        interval_ns,
        exclude_rows,
        meta,
        allow_open_outside_range=True,
    )


def import_bitmex_json(
    path: str | Path,
    *,
    face_value_quote: float = 1.0,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Import an original daily BitMEX bucket JSON of the bitmex-xbtusd-history repositories.

    Format ``{openTimestamp (s), timeframe, openDate, open[], high[], low[], close[],
    volume[]}``; bar *i* opens at ``openTimestamp + i · timeframe``. Units as
    :func:`import_bitmex_parquet`.
    """
    import json

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: not a JSON document ({exc})") from None
    need = ["openTimestamp", "timeframe", "open", "high", "low", "close", "volume"]
    missing = [k for k in need if k not in doc]
    if missing:
        raise ValueError(f"{path.name}: missing key(s) {missing}; got keys {sorted(doc)}")
    lengths = {k: len(doc[k]) for k in ("open", "high", "low", "close", "volume")}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{path.name}: arrays of different lengths {lengths}")
    step = timeframe_ns(doc["timeframe"])
    n = lengths["open"]
    ts = int(doc["openTimestamp"]) * 1_000_000_000 + np.arange(n, dtype=np.int64) * step
    c = {k: np.asarray(doc[k], dtype=np.float64) for k in lengths}
    return _bitmex_bars(path, ts, c, face_value_quote, step, exclude_rows, "bitmex_bucketed_json")


def import_lean_zip(
    path: str | Path,
    *,
    inverse_face_value_quote: float | None = None,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Import a LEAN ``YYYYMMDD_trade.zip`` minute-bar file (ms since midnight UTC)."""
    path = Path(path)
    match = re.match(r"^(\d{8})_trade\.zip$", path.name)
    if not match:
        raise ValueError(f"{path.name}: expected a LEAN file name YYYYMMDD_trade.zip")
    day_ns = int(pd.Timestamp(match.group(1), tz="UTC").value)
    try:
        with zipfile.ZipFile(path) as archive:
            [member] = archive.namelist()
            with archive.open(member) as handle:
                frame = pd.read_csv(handle, header=None)
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ValueError(f"{path.name}: not a LEAN single-file zip ({exc})") from None
    if frame.shape[1] != 6:
        raise ValueError(
            f"{path.name}: expected 6 columns (ms, open, high, low, close, volume), "
            f"got {frame.shape[1]}"
        )
    frame.columns = ["ms", "open", "high", "low", "close", "volume"]
    ts = day_ns + numeric(frame, "ms", path.name).astype(np.int64) * 1_000_000
    c = {n: numeric(frame, n, path.name) for n in ["open", "high", "low", "close", "volume"]}
    meta = {"format": "lean_cryptofuture_minute_trade"}
    volume = c["volume"]
    if inverse_face_value_quote is not None:
        volume = volume * inverse_face_value_quote / c["close"]
        meta["volume"] = f"contracts x {inverse_face_value_quote:g} USD / close (inverse)"
    else:
        meta["volume"] = "base coin as stored"
    return bars_stream("bars", ts, c, volume, path, 60_000_000_000, exclude_rows, meta)


def import_lean_funding(
    path: str | Path,
    *,
    funding_interval_ns: int = 8 * 3_600_000_000_000,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Import a LEAN ``margin_interest/<symbol>.csv`` (``yyyymmdd HH:MM:SS,rate``) as funding."""
    path = Path(path)
    frame = pd.read_csv(path, header=None, names=["time", "rate"], dtype={"time": str})
    ts = datetime_column_ns(
        pd.to_datetime(frame["time"], format="%Y%m%d %H:%M:%S", utc=True), path.name, "time"
    )
    records = funding_records(ts, numeric(frame, "rate", path.name), funding_interval_ns)
    meta = {"format": "lean_margin_interest"}
    return [finish("funding", records, path=path, exclude_rows=exclude_rows, metadata=meta)]


def import_nautilus_bars(
    path: str | Path,
    *,
    interval: str = "1m",
    quote_volume: bool = True,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Import a nautilus test-data bar CSV (``timestamp`` naive UTC, OHLC, volume).

    With ``quote_volume`` (FTX: USD notional) the volume becomes base as ``volume / close``.
    """
    path = Path(path)
    frame = pd.read_csv(path)
    require_columns(frame, ["timestamp", "open", "high", "low", "close", "volume"], path.name)
    ts = datetime_column_ns(frame["timestamp"], path.name, "timestamp")
    c = {n: numeric(frame, n, path.name) for n in ["open", "high", "low", "close", "volume"]}
    volume = c["volume"] / c["close"] if quote_volume else c["volume"]
    meta = {
        "format": "nautilus_bar_csv",
        "volume": "quote / close (approximate base)" if quote_volume else "base",
    }
    return bars_stream("bars", ts, c, volume, path, timeframe_ns(interval), exclude_rows, meta)
