"""Validation on real files of ../shared/data: the real Binance BTC funding history passes the
venue cap, the same history written in percent is refused with the percent hint, and real
hourly candles shifted off their grid are refused."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pytest

from backtester.data import Catalog, DataValidationError
from backtester.data.importers import import_file
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata

FUNDING = ("Roshan7869_algotrading", "BTC_USDT_USDT-1h-funding_rate.feather")
BARS = ("Roshan7869_algotrading", "BTC_USDT_USDT-1h-futures.feather")


def test_binance_btc_funding_passes_the_cap_and_its_percent_copy_is_refused(
    tmp_path: Path,
) -> None:
    src = shared_path("data", *FUNDING)
    table = feather.read_table(src)
    peak = float(pc.max(pc.abs(table.column("open"))).as_py())
    assert peak == 0.003  # SOURCES.md: the clamp of the 2020 era, within the 0.375 % cap
    cat = Catalog(tmp_path / "cat")
    import_file(src, "freqtrade", "binance", "BTCUSDT", cat)
    assert len(cat.read("funding", "binance", "BTCUSDT")) == table.num_rows
    percent = table.set_column(
        table.schema.get_field_index("open"), "open", pc.multiply(table.column("open"), 100.0)
    )
    path = tmp_path / "pct" / FUNDING[1]
    path.parent.mkdir()
    feather.write_feather(percent, path)
    other = Catalog(tmp_path / "other")
    with pytest.raises(DataValidationError, match=r"rates in percent\?|a percent written as"):
        import_file(path, "freqtrade", "binance", "BTCUSDT", other)
    assert not other.exists("funding", "binance", "BTCUSDT")


def test_real_hourly_candles_shifted_by_30_seconds_are_refused(tmp_path: Path) -> None:
    table = feather.read_table(shared_path("data", *BARS)).slice(0, 500)
    date = table.column("date").cast(pa.int64())
    unit = table.schema.field("date").type.unit
    per_s = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    shifted = pc.add(date, 30 * per_s).cast(table.schema.field("date").type)
    path = tmp_path / BARS[1]
    feather.write_feather(table.set_column(0, "date", shifted), path)
    with pytest.raises(DataValidationError, match=r"row 1: .* is off the 1h grid by 30 s"):
        import_file(path, "freqtrade", "binance", "BTCUSDT", tmp_path / "cat")
