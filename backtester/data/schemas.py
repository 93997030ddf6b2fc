"""Arrow schemas of the catalog's stored streams, with units, and numpy ↔ Arrow conversion.

Each *kind* of stream has one Arrow schema whose columns are exactly the fields of its numpy
dtype in :mod:`backtester.dtypes`, in the same order, so conversion is a column copy and never a
guess. Every field carries Arrow field metadata ``unit`` and ``doc``; every stored file carries
schema metadata (see :data:`FILE_METADATA_KEYS`).

Kinds
-----
============ ===================== =============================================================
kind         numpy dtype           content
============ ===================== =============================================================
trades       TRADE_DTYPE           trade ticks: ts_ns (ns UTC, exchange time), price (quote per
                                   base), qty_base (base coin), side (Side: aggressor, 0 unknown)
bars         BAR_DTYPE             last-trade candles of any interval: ts_ns = **open** time (ns
                                   UTC), open/high/low/close (quote per base), volume_base (base)
index        PRICE_DTYPE           index price points: ts_ns = when the price is known
mark         PRICE_DTYPE           historical mark price points
index_bars   BAR_DTYPE             index-price candles (open time); volume_base is 0
mark_bars    BAR_DTYPE             mark-price candles (open time); volume_base is 0
funding      FUNDING_RATE_DTYPE    funding events: ts_ns = funding instant, funding_rate (fraction
                                   per interval, > 0 longs pay), funding_interval_ns (0 unknown),
                                   source (FundingRateSource)
tiers        TIER_DTYPE            one maintenance-margin tier snapshot (bounds in the table's
                                   TierBasis unit, stored in the file metadata ``tier_basis``)
============ ===================== =============================================================

``ts_ns`` is stored as Arrow ``int64`` (not ``timestamp``) so that the value written is
bit-for-bit the value read back, with no timezone or unit conversion in between.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from backtester import dtypes

KIND_DTYPES: dict[str, np.dtype] = {
    "trades": dtypes.TRADE_DTYPE,
    "bars": dtypes.BAR_DTYPE,
    "index": dtypes.PRICE_DTYPE,
    "mark": dtypes.PRICE_DTYPE,
    "index_bars": dtypes.BAR_DTYPE,
    "mark_bars": dtypes.BAR_DTYPE,
    "funding": dtypes.FUNDING_RATE_DTYPE,
}
"""Market-data stream kinds the catalog stores, and their record dtype."""

BAR_KINDS = frozenset({"bars", "index_bars", "mark_bars"})
"""Kinds whose rows are candles (``ts_ns`` = open time; need ``interval_ns`` > 0)."""

POINT_KINDS = frozenset({"index", "mark"})
"""Kinds whose rows are price points."""

_FIELD_UNITS: dict[str, tuple[str, str]] = {
    "ts_ns": ("ns UTC", "epoch nanoseconds; for candles the open time"),
    "price": ("quote per base", "price"),
    "qty_base": ("base", "traded quantity in base coin"),
    "side": ("Side", "aggressor side: 1 buy, -1 sell, 0 unknown"),
    "open": ("quote per base", "first price of the candle"),
    "high": ("quote per base", "highest price of the candle"),
    "low": ("quote per base", "lowest price of the candle"),
    "close": ("quote per base", "last price of the candle"),
    "volume_base": ("base", "traded quantity in base coin (0 when unknown)"),
    "funding_rate": ("rate per interval", "fraction of position value; > 0 longs pay shorts"),
    "funding_interval_ns": ("ns", "interval the rate covers; 0 unknown"),
    "source": ("FundingRateSource", "0 historical, 1 computed"),
    "tier": ("1", "1-based tier number as the venue numbers it"),
    "min_size": ("TierBasis", "lower size bound, in the unit named by metadata tier_basis"),
    "max_size": ("TierBasis", "upper size bound, in the unit named by metadata tier_basis"),
    "maintenance_margin_rate": ("rate", "maintenance margin rate"),
    "initial_margin_rate": ("rate", "initial margin rate"),
    "max_leverage": ("1", "maximum leverage"),
    "maintenance_amount_settle": ("settle", "Binance cum; 0 elsewhere"),
}

FILE_METADATA_KEYS = (
    "kind",
    "exchange",
    "symbol",
    "interval_ns",
    "source",
    "units",
    "schema_version",
)
"""Keys every catalog file's Arrow schema metadata holds (plus any user metadata)."""

SCHEMA_VERSION = "1"

_NUMPY_TO_ARROW = {
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.float64): pa.float64(),
    np.dtype(np.bool_): pa.bool_(),
}


def kind_dtype(kind: str) -> np.dtype:
    """Return the numpy dtype of a stream kind, or raise ``ValueError`` naming the valid kinds."""
    if kind == "tiers":
        return dtypes.TIER_DTYPE
    try:
        return KIND_DTYPES[kind]
    except KeyError:
        raise ValueError(
            f"kind: unknown stream kind {kind!r}; expected one of "
            f"{', '.join(map(repr, [*KIND_DTYPES, 'tiers']))}"
        ) from None


def arrow_schema(kind: str, metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """Arrow schema of ``kind``: the dtype's fields, each with ``unit``/``doc`` field metadata."""
    dtype = kind_dtype(kind)
    fields = []
    for name in dtypes.field_names(dtype):
        unit, doc = _FIELD_UNITS[name]
        fields.append(
            pa.field(
                name,
                _NUMPY_TO_ARROW[dtype[name]],
                nullable=False,
                metadata={"unit": unit, "doc": doc},
            )
        )
    meta = {"units": units_string(kind), "schema_version": SCHEMA_VERSION, "kind": kind}
    if metadata:
        meta.update({str(k): str(v) for k, v in metadata.items()})
    return pa.schema(fields, metadata=meta)


def units_string(kind: str) -> str:
    """``"field=unit;..."`` summary of the units of ``kind`` (stored in file metadata)."""
    dtype = kind_dtype(kind)
    return ";".join(f"{name}={_FIELD_UNITS[name][0]}" for name in dtypes.field_names(dtype))


def records_to_table(
    records: np.ndarray, kind: str, metadata: Mapping[str, str] | None = None
) -> pa.Table:
    """Convert a structured array of ``kind``'s dtype to an Arrow table with its schema."""
    dtype = kind_dtype(kind)
    if not isinstance(records, np.ndarray) or records.dtype != dtype:
        got = getattr(records, "dtype", type(records).__name__)
        raise TypeError(f"records for kind {kind!r}: expected dtype {dtype}, got {got}")
    schema = arrow_schema(kind, metadata)
    columns = [pa.array(np.ascontiguousarray(records[name])) for name in dtypes.field_names(dtype)]
    return pa.Table.from_arrays(columns, schema=schema)


def table_to_records(table: pa.Table | pa.RecordBatch, kind: str) -> np.ndarray:
    """Convert an Arrow table (or batch) with ``kind``'s columns to a structured numpy array.

    Raises ``ValueError`` naming missing columns or null values (the catalog never writes nulls).
    """
    dtype = kind_dtype(kind)
    names = table.schema.names
    missing = [n for n in dtypes.field_names(dtype) if n not in names]
    if missing:
        raise ValueError(
            f"table for kind {kind!r}: missing column(s) {missing}; got columns {names}"
        )
    out = np.empty(table.num_rows, dtype=dtype)
    for name in dtypes.field_names(dtype):
        column = table.column(name)
        if column.null_count:
            raise ValueError(
                f"table for kind {kind!r}: column {name!r} has {column.null_count} nulls"
            )
        out[name] = column.to_numpy()
    return out
