"""Exchange CSV importers: Binance public archive, OKX historical data, Tardis, generic mapping.

Binance public archive (data.binance.vision), files with or without a header row:

=================== ==================================================================
file                columns (no-header order)
=================== ==================================================================
aggTrades           agg_trade_id, price, quantity, first_trade_id, last_trade_id,
                    transact_time, is_buyer_maker[, is_best_match]
trades              id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match]
klines, markPrice-  open_time, open, high, low, close, volume, close_time, quote_volume,
Klines, indexPrice- count, taker_buy_volume, taker_buy_quote_volume, ignore
Klines
fundingRate         calc_time, funding_interval_hours, last_funding_rate (header)
=================== ==================================================================

Times are ms, except spot files from 2025 on, which are µs: the unit is detected per file by
magnitude (all rows must agree) and recorded in the metadata ``time_unit``. COIN-M quantities
are contracts: pass ``contract_kind="inverse", face_value=100`` (trades), or
``coin_margined=True`` for klines, whose ``quote_volume`` column is then the base volume.

OKX historical data (okx.com "Historical data" downloads): trades ``instrument_name, trade_id,
side, price, size, created_time`` (size in contracts for swaps: pass ``contract_kind`` and
``face_value``); candles ``open_time, open, high, low, close, vol_ccy`` (base); funding
``instrument_name, funding_rate, real_funding_rate, funding_time`` (``real_funding_rate`` used
when present). Times in ms.

Tardis.dev CSV: trades ``exchange, symbol, timestamp, local_timestamp, id, side, price, amount``
(µs); ``derivative_ticker`` ``... timestamp, funding_timestamp, funding_rate, index_price,
mark_price`` → index and mark points (last message per timestamp) and settled funding events
(:func:`funding_from_ticker`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from backtester.data.importers.common import (
    ImportedStream,
    bars_stream,
    collapse_same_timestamp,
    finish,
    funding_from_ticker,
    funding_records,
    numeric,
    price_records,
    quantity_to_base,
    read_csv_auto_header,
    side_from_buyer_maker,
    side_from_text,
    timeframe_ns,
    trade_records,
)
from backtester.data.validation import check_single_symbol, detect_time_unit, to_ns
from backtester.dtypes import field_names
from backtester.enums import Side

_KLINE_COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
]
_KLINE_KINDS = {"klines": "bars", "markPriceKlines": "mark_bars", "indexPriceKlines": "index_bars"}


def _bool_column(values: pd.Series) -> np.ndarray:
    return values.astype(str).str.lower().isin(["true", "1"]).to_numpy()


def _times(frame: pd.DataFrame, column: str, name: str, time_unit: str) -> tuple[np.ndarray, str]:
    raw = numeric(frame, column, name, np.int64)
    unit = detect_time_unit(raw, name) if time_unit == "auto" else time_unit
    return to_ns(raw, unit, name), unit


def import_binance_trades(
    path: str | Path,
    *,
    aggregated: bool = True,
    time_unit: str = "auto",
    contract_kind: str | None = None,
    face_value: float | None = None,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Binance archive ``aggTrades`` (``aggregated=True``) or ``trades`` CSV → trades."""
    path = Path(path)
    if aggregated:
        cols = [
            "agg_trade_id",
            "price",
            "quantity",
            "first_trade_id",
            "last_trade_id",
            "transact_time",
            "is_buyer_maker",
        ]
        qty_col, time_col = "quantity", "transact_time"
    else:
        cols = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"]
        qty_col, time_col = "qty", "time"
    frame = read_csv_auto_header(path, cols, cols)
    ts, unit = _times(frame, time_col, path.name, time_unit)
    price = numeric(frame, "price", path.name)
    qty, meta = quantity_to_base(
        numeric(frame, qty_col, path.name),
        price,
        contract_kind=contract_kind,
        face_value=face_value,
        name=path.name,
    )
    meta.update(
        {"format": "binance_aggtrades" if aggregated else "binance_trades", "time_unit": unit}
    )
    records = trade_records(
        ts, price, qty, side_from_buyer_maker(_bool_column(frame["is_buyer_maker"]))
    )
    return [finish("trades", records, path=path, exclude_rows=exclude_rows, metadata=meta)]


def import_binance_klines(
    path: str | Path,
    *,
    kind: str | None = None,
    interval: str | None = None,
    time_unit: str = "auto",
    coin_margined: bool = False,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Binance archive ``klines``/``markPriceKlines``/``indexPriceKlines`` CSV → candles.

    ``interval`` and ``kind`` default from the file name ``<SYMBOL>-<interval>-<date>.csv`` and
    its folder (``markPriceKlines`` → ``mark_bars``...).
    """
    path = Path(path)
    if interval is None:
        parts = path.name.split("-")
        if len(parts) < 3:
            raise ValueError(f"{path.name}: cannot read the interval from the name; pass interval=")
        interval = parts[1]
    if kind is None:
        kind = next((k for folder, k in _KLINE_KINDS.items() if folder in path.parts), "bars")
    frame = read_csv_auto_header(path, _KLINE_COLUMNS, _KLINE_COLUMNS[:6])
    ts, unit = _times(frame, "open_time", path.name, time_unit)
    c = {n: numeric(frame, n, path.name) for n in ["open", "high", "low", "close"]}
    meta = {"format": "binance_klines", "time_unit": unit}
    if kind != "bars":
        volume = np.zeros(len(ts))
        meta["volume"] = "price-index candles: stored as 0"
    elif coin_margined:
        volume = numeric(frame, "quote_volume", path.name)
        meta["volume"] = "COIN-M quote_volume column (base coin)"
    else:
        volume = numeric(frame, "volume", path.name)
        meta["volume"] = "base"
    return bars_stream(kind, ts, c, volume, path, timeframe_ns(interval), exclude_rows, meta)


def import_binance_funding(
    path: str | Path, *, time_unit: str = "auto", exclude_rows: Iterable[int] | None = None
) -> list[ImportedStream]:
    """Binance archive ``fundingRate`` CSV → funding (interval from funding_interval_hours)."""
    path = Path(path)
    cols = ["calc_time", "funding_interval_hours", "last_funding_rate"]
    frame = read_csv_auto_header(path, cols, cols)
    ts, unit = _times(frame, "calc_time", path.name, time_unit)
    hours = numeric(frame, "funding_interval_hours", path.name)
    records = funding_records(
        ts,
        numeric(frame, "last_funding_rate", path.name),
        (hours * 3_600_000_000_000).astype(np.int64),
    )
    meta = {"format": "binance_funding", "time_unit": unit}
    return [finish("funding", records, path=path, exclude_rows=exclude_rows, metadata=meta)]


def _trade_columns(
    frame: pd.DataFrame,
    path: Path,
    columns: tuple[str, str, str, str],
    symbol: str | None,
    contract_kind: str | None,
    face_value: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Return ts (ns), price, base quantity and metadata of a one-instrument trades CSV.

    ``columns`` = (symbol column, time column, its unit, size column); the file must hold one
    instrument (``symbol`` when given) and the size is converted to base units by
    :func:`quantity_to_base`.
    """
    symbol_column, time_column, time_unit, size_column = columns
    check_single_symbol(frame[symbol_column].to_numpy(), path.name, symbol)
    ts, _ = _times(frame, time_column, path.name, time_unit)
    price = numeric(frame, "price", path.name)
    qty, meta = quantity_to_base(
        numeric(frame, size_column, path.name),
        price,
        contract_kind=contract_kind,
        face_value=face_value,
        name=path.name,
    )
    return ts, price, qty, meta


def import_okx_trades(
    path: str | Path,
    *,
    contract_kind: str | None = None,
    face_value: float | None = None,
    symbol: str | None = None,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """OKX historical trades CSV → trades (one instrument per file)."""
    path = Path(path)
    cols = ["instrument_name", "trade_id", "side", "price", "size", "created_time"]
    frame = read_csv_auto_header(path, cols, cols)
    ts, price, qty, meta = _trade_columns(
        frame,
        path,
        ("instrument_name", "created_time", "ms", "size"),
        symbol,
        contract_kind,
        face_value,
    )
    order = np.argsort(numeric(frame, "trade_id", path.name, np.int64), kind="stable")
    meta.update({"format": "okx_trades", "order": "trade_id"})
    side = side_from_text(frame["side"].to_numpy(), path.name)
    records = trade_records(ts, price, qty, side)[order]
    return [
        finish(
            "trades",
            records,
            path=path,
            row_numbers=order + 1,
            exclude_rows=exclude_rows,
            metadata=meta,
        )
    ]


def import_okx_candles(
    path: str | Path,
    *,
    interval: str,
    kind: str = "bars",
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """OKX candle CSV (open_time ms, open, high, low, close, vol_ccy base) → candles."""
    path = Path(path)
    cols = ["open_time", "open", "high", "low", "close", "vol_ccy"]
    frame = read_csv_auto_header(path, cols, cols[:5])
    ts, _ = _times(frame, "open_time", path.name, "ms")
    c = {n: numeric(frame, n, path.name) for n in ["open", "high", "low", "close"]}
    volume = (
        numeric(frame, "vol_ccy", path.name)
        if kind == "bars" and "vol_ccy" in frame
        else np.zeros(len(ts))
    )
    return bars_stream(
        kind, ts, c, volume, path, timeframe_ns(interval), exclude_rows, {"format": "okx_candles"}
    )


def import_okx_funding(
    path: str | Path,
    *,
    funding_interval_ns: int = 8 * 3_600_000_000_000,
    symbol: str | None = None,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """OKX funding-rate history CSV → funding (``real_funding_rate`` when present)."""
    path = Path(path)
    cols = ["instrument_name", "funding_rate", "real_funding_rate", "funding_time"]
    frame = read_csv_auto_header(path, cols, ["instrument_name", "funding_rate", "funding_time"])
    check_single_symbol(frame["instrument_name"].to_numpy(), path.name, symbol)
    ts, _ = _times(frame, "funding_time", path.name, "ms")
    column = "real_funding_rate" if "real_funding_rate" in frame else "funding_rate"
    order = np.argsort(ts, kind="stable")
    records = funding_records(ts, numeric(frame, column, path.name), funding_interval_ns)[order]
    return [
        finish(
            "funding",
            records,
            path=path,
            row_numbers=order + 1,
            exclude_rows=exclude_rows,
            metadata={"format": "okx_funding", "rate_column": column},
        )
    ]


def import_tardis_trades(
    path: str | Path,
    *,
    contract_kind: str | None = None,
    face_value: float | None = None,
    symbol: str | None = None,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Tardis ``trades`` CSV (µs ``timestamp``; ``amount`` base unless contracts given)."""
    path = Path(path)
    cols = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]
    frame = read_csv_auto_header(path, cols, cols)
    ts, price, qty, meta = _trade_columns(
        frame, path, ("symbol", "timestamp", "us", "amount"), symbol, contract_kind, face_value
    )
    meta["format"] = "tardis_trades"
    records = trade_records(ts, price, qty, side_from_text(frame["side"].to_numpy(), path.name))
    return [finish("trades", records, path=path, exclude_rows=exclude_rows, metadata=meta)]


def import_tardis_derivative_ticker(
    path: str | Path,
    *,
    funding_interval_ns: int = 0,
    symbol: str | None = None,
) -> list[ImportedStream]:
    """Tardis ``derivative_ticker`` CSV → index points, mark points and settled funding."""
    path = Path(path)
    cols = [
        "exchange",
        "symbol",
        "timestamp",
        "local_timestamp",
        "funding_timestamp",
        "funding_rate",
        "predicted_funding_rate",
        "open_interest",
        "last_price",
        "index_price",
        "mark_price",
    ]
    frame = read_csv_auto_header(
        path,
        cols,
        ["symbol", "timestamp", "funding_timestamp", "funding_rate", "index_price", "mark_price"],
    )
    check_single_symbol(frame["symbol"].to_numpy(), path.name, symbol)
    ts, _ = _times(frame, "timestamp", path.name, "us")
    rows = np.arange(1, len(ts) + 1)
    out = []
    for kind, column in (("index", "index_price"), ("mark", "mark_price")):
        values = numeric(frame, column, path.name)
        have = ~np.isnan(values)
        t, v, r = ts[have], values[have], rows[have]
        last = collapse_same_timestamp(t)
        out.append(
            finish(
                kind,
                price_records(t[last], v[last]),
                path=path,
                row_numbers=r[last],
                metadata={
                    "format": "tardis_derivative_ticker",
                    "rows": "last message per timestamp",
                },
            )
        )
    fts = numeric(frame, "funding_timestamp", path.name)
    rate = numeric(frame, "funding_rate", path.name)
    have = ~np.isnan(fts) & ~np.isnan(rate)
    f_ts, f_rate, f_rows = funding_from_ticker(
        ts[have], to_ns(fts[have].astype(np.int64), "us"), rate[have]
    )
    out.append(
        finish(
            "funding",
            funding_records(f_ts, f_rate, funding_interval_ns),
            path=path,
            row_numbers=rows[have][f_rows],
            metadata={
                "format": "tardis_derivative_ticker",
                "funding": "last rate shown before each funding time passed",
            },
        )
    )
    return out


def parse_columns(columns: Mapping[str, str] | str) -> dict[str, str]:
    """Column mapping from a dict or from ``"field=column,field=column"`` text."""
    if isinstance(columns, Mapping):
        return {str(k): str(v) for k, v in columns.items()}
    if not isinstance(columns, str):
        raise TypeError(
            f"columns: expected FIELD=COLUMN pairs, e.g. 'ts_ns=time,price=px', got "
            f"{type(columns).__name__}"
        )
    out: dict[str, str] = {}
    for item in columns.split(","):
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ValueError(
                f"columns: expected FIELD=COLUMN pairs separated by commas, e.g. "
                f"'ts_ns=time,price=px,qty_base=size', got {item!r} in {columns!r}"
            )
        out[field.strip()] = column.strip()
    return out


def import_generic(
    path: str | Path,
    *,
    kind: str,
    columns: Mapping[str, str],
    time_unit: str = "ns",
    interval_ns: int = 0,
    side_values: Mapping[str, int] | None = None,
    exclude_rows: Iterable[int] | None = None,
    allow_open_outside_range: bool = False,
) -> list[ImportedStream]:
    """CSV / Parquet / feather with a column mapping ``{dtype field: file column}``.

    ``columns`` is a mapping or its command-line text ``"ts_ns=time,price=px,qty_base=size"``
    (``backtester import --columns``). ``ts_ns`` may map to a datetime column or integers in
    ``time_unit`` (``"auto"`` detects it by magnitude). ``side`` (trades) maps text through
    ``side_values`` (default buy/sell) or is numeric; missing ``side``/``volume_base``/
    ``funding_interval_ns``/``source`` default to NONE/0/0/historical.
    """
    from backtester.data.importers.candles import read_table
    from backtester.data.schemas import kind_dtype

    columns = parse_columns(columns)

    path = Path(path)
    if path.suffix in (".parquet", ".feather"):
        frame = read_table(path).to_pandas()
    else:
        if path.stat().st_size == 0:
            raise ValueError(f"{path.name}: empty file (no header, no rows)")
        frame = pd.read_csv(path)
    dtype = kind_dtype(kind)
    optional = {"side", "volume_base", "funding_interval_ns", "source"}
    unknown = set(columns) - set(field_names(dtype))
    if unknown:
        raise ValueError(f"columns: fields {sorted(unknown)} are not in {kind} ({dtype.names})")
    need = [f for f in field_names(dtype) if f not in optional and f not in columns]
    if need:
        raise ValueError(f"columns: map the required field(s) {need} of kind {kind!r}")
    from backtester.data.importers.common import require_columns

    require_columns(frame, list(columns.values()), path.name)
    records = np.zeros(len(frame), dtype=dtype)
    for field, column in columns.items():
        if field == "ts_ns":
            series = frame[column]
            if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_string_dtype(series):
                from backtester.data.importers.common import datetime_column_ns

                records["ts_ns"] = datetime_column_ns(series, path.name, column)
            else:
                records["ts_ns"] = to_ns(
                    numeric(frame, column, path.name, np.int64), time_unit, path.name
                )
        elif field == "side" and not pd.api.types.is_numeric_dtype(frame[column]):
            mapping = dict(side_values or {"buy": int(Side.BUY), "sell": int(Side.SELL)})
            text = frame[column].astype(str).str.lower()
            mapped = text.map(mapping)
            if mapped.isna().any():
                i = int(np.flatnonzero(mapped.isna().to_numpy())[0])
                raise ValueError(
                    f"{path.name} row {i + 1:,}: side {text.iloc[i]!r} not in {sorted(mapping)}"
                )
            records["side"] = mapped.to_numpy(dtype=np.int8)
        else:
            records[field] = numeric(frame, column, path.name)
    return [
        finish(
            kind,
            records,
            path=path,
            interval_ns=interval_ns,
            exclude_rows=exclude_rows,
            metadata={"format": "generic", "columns": repr(dict(columns))},
            allow_open_outside_range=allow_open_outside_range,
        )
    ]
