"""Market data: schemas, validation, the Parquet catalog, importers and resampling.

Main entry points: :class:`Catalog` (store / read / stream / load :class:`MarketData`),
:func:`validate_records`, :func:`find_gaps`, the importers in :mod:`backtester.data.importers`
(``import_file``) and the resamplers in :mod:`backtester.data.resample`.
"""

from __future__ import annotations

from backtester.data.catalog import Catalog
from backtester.data.importers import FORMATS, ImportedStream, import_file, read_file
from backtester.data.intervals import interval_label, parse_interval
from backtester.data.loader import bars_to_points
from backtester.data.market import MarketData
from backtester.data.resample import align_to_span, resample_bars, trades_to_bars
from backtester.data.schemas import KIND_DTYPES, arrow_schema, records_to_table, table_to_records
from backtester.data.validation import (
    MAX_ABS_FUNDING_RATE,
    DataValidationError,
    GapReport,
    detect_time_unit,
    find_gaps,
    to_ns,
    validate_records,
)

__all__ = [
    "FORMATS",
    "KIND_DTYPES",
    "MAX_ABS_FUNDING_RATE",
    "Catalog",
    "DataValidationError",
    "GapReport",
    "ImportedStream",
    "MarketData",
    "align_to_span",
    "arrow_schema",
    "bars_to_points",
    "detect_time_unit",
    "find_gaps",
    "import_file",
    "interval_label",
    "parse_interval",
    "read_file",
    "records_to_table",
    "resample_bars",
    "table_to_records",
    "to_ns",
    "trades_to_bars",
    "validate_records",
]
