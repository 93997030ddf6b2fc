"""A corpus of broken input files: each is refused with its specific message, and the catalog
directory is byte-identical afterwards."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from backtester import dtypes
from backtester.data import Catalog, DataValidationError
from backtester.data.importers import import_file

HOUR_MS = 3_600_000
T0_MS = 1_672_531_200_000  # 2023-01-01


def tree_digest(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


def good_frame(n: int = 10) -> pd.DataFrame:
    date = pd.to_datetime(T0_MS + np.arange(n) * HOUR_MS, unit="ms", utc=True)
    mid = 100.0 + np.arange(n)
    return pd.DataFrame(
        {
            "date": date,
            "open": mid,
            "high": mid + 2,
            "low": mid - 2,
            "close": mid + 1,
            "volume": 5.0,
        }
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """A catalog that already holds one stream, so 'unchanged' is a real comparison."""
    cat = Catalog(tmp_path / "catalog")
    bars = np.zeros(3, dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = (T0_MS + np.arange(3) * HOUR_MS) * 1_000_000
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = 50.0
    cat.write("bars", "x", "BTC", bars, source="seed", interval_ns=HOUR_MS * 1_000_000)
    return cat


def write_feather(tmp_path: Path, frame: pd.DataFrame, name: str = "BTC_USDT-1h-futures.feather"):
    path = tmp_path / name
    feather.write_feather(frame, path)
    return path


def check_refused(path: Path, fmt: str, catalog: Catalog, error: type, match: str, **kw) -> None:
    before = tree_digest(catalog.root)
    with pytest.raises(error, match=match):
        import_file(path, fmt, "x", "BTC", catalog, **kw)
    assert tree_digest(catalog.root) == before


def test_truncated_feather(tmp_path: Path, catalog: Catalog) -> None:
    path = write_feather(tmp_path, good_frame())
    path.write_bytes(path.read_bytes()[:300])
    check_refused(
        path,
        "freqtrade",
        catalog,
        ValueError,
        r"BTC_USDT-1h-futures.feather: not a readable feather file",
    )


def test_truncated_parquet(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "bars.parquet"
    frame = good_frame().rename(columns={"date": "ts"})
    frame.to_parquet(path)
    path.write_bytes(path.read_bytes()[:-40])
    check_refused(
        path,
        "generic",
        catalog,
        ValueError,
        r"bars.parquet: not a readable parquet file",
        kind="bars",
        interval_ns=HOUR_MS * 1_000_000,
        columns={
            "ts_ns": "ts",
            "open": "open",
            "high": "high",
            "low": "low",
            "close": "close",
            "volume_base": "volume",
        },
    )


def test_unsorted_rows(tmp_path: Path, catalog: Catalog) -> None:
    frame = good_frame()
    frame.loc[[4, 5]] = frame.loc[[5, 4]].to_numpy()
    path = write_feather(tmp_path, frame)
    check_refused(
        path,
        "freqtrade",
        catalog,
        DataValidationError,
        r"BTC_USDT-1h-futures.feather row 6: ts_ns 1672545600000000000 < previous "
        r"1672549200000000000 \(timestamps must not decrease\)",
    )


def test_duplicate_timestamps(tmp_path: Path, catalog: Catalog) -> None:
    frame = good_frame()
    frame.loc[7, "date"] = frame.loc[6, "date"]
    path = write_feather(tmp_path, frame)
    check_refused(
        path,
        "freqtrade",
        catalog,
        DataValidationError,
        r"row 8: duplicate timestamp ts_ns 1672552800000000000 \(same as row 7; "
        r"timestamps must be unique\)",
    )


def test_nan_price(tmp_path: Path, catalog: Catalog) -> None:
    frame = good_frame()
    frame.loc[2, "close"] = np.nan
    path = write_feather(tmp_path, frame)
    check_refused(
        path,
        "freqtrade",
        catalog,
        DataValidationError,
        r"BTC_USDT-1h-futures.feather row 3: close nan \(prices must be finite\)",
    )


def test_milliseconds_declared_as_nanoseconds(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "trades.csv"
    pd.DataFrame({"t": T0_MS + np.arange(3), "p": [1.0, 2.0, 3.0], "q": 1.0}).to_csv(
        path, index=False
    )
    check_refused(
        path,
        "generic",
        catalog,
        DataValidationError,
        r"trades.csv row 1: ts_ns 1672531200000 looks like milliseconds \(detected unit "
        r"ms\), but ts_ns must be nanoseconds",
        kind="trades",
        columns={"ts_ns": "t", "price": "p", "qty_base": "q"},
        time_unit="ns",
    )


def test_wrong_columns(tmp_path: Path, catalog: Catalog) -> None:
    frame = good_frame().rename(columns={"close": "last"})
    path = write_feather(tmp_path, frame)
    check_refused(
        path,
        "freqtrade",
        catalog,
        ValueError,
        r"BTC_USDT-1h-futures.feather: missing column\(s\) \['close'\]",
    )


def test_empty_file(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2023-01-01.csv"
    path.write_bytes(b"")
    check_refused(
        path,
        "binance_aggtrades",
        catalog,
        ValueError,
        r"BTCUSDT-aggTrades-2023-01-01.csv: empty file",
    )
    empty_feather = write_feather(tmp_path, good_frame(0))
    check_refused(empty_feather, "freqtrade", catalog, ValueError, "no data rows")


def test_high_below_low(tmp_path: Path, catalog: Catalog) -> None:
    frame = good_frame()
    frame.loc[9, ["high", "low"]] = [95.0, 120.0]
    path = write_feather(tmp_path, frame)
    check_refused(
        path,
        "freqtrade",
        catalog,
        DataValidationError,
        r"row 10: high 95.0, low 120.0 \(high < low\)",
    )


def test_funding_rate_beyond_any_cap(tmp_path: Path, catalog: Catalog) -> None:
    frame = good_frame(3)
    frame["open"] = [0.0001, 0.75, 0.0001]  # percent written as a fraction
    path = write_feather(tmp_path, frame, "BTC_USDT_USDT-8h-funding_rate.feather")
    check_refused(
        path,
        "freqtrade",
        catalog,
        DataValidationError,
        r"row 2: funding_rate 0.75 \(\|funding rate\| above 0.03 per interval",
    )


def test_mixed_symbols(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "binance-futures,BTCUSDT,1672531200000000,1672531200000100,1,buy,100,1\n"
        "binance-futures,ETHUSDT,1672531200000001,1672531200000100,2,sell,10,1\n"
    )
    check_refused(
        path,
        "tardis_trades",
        catalog,
        DataValidationError,
        r"trades.csv row 2: symbol 'ETHUSDT' differs from 'BTCUSDT' \(mixed symbols",
    )


def test_corrupt_gzip_capture(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "cap.dat.gz"
    line = (
        '1 {"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1672531200000,'
        '"s":"BTCUSDT","t":1,"p":"1","q":"1","m":true}}\n'
    )
    path.write_bytes(gzip.compress(line.encode() * 50)[:-30])
    check_refused(path, "binance_ws", catalog, ValueError, r"cap.dat.gz: cannot read the capture")


def test_open_outside_range_only_with_bitmex_option(tmp_path: Path, catalog: Catalog) -> None:
    frame = good_frame().rename(columns={"date": "open_time"})
    frame.loc[3, "open"] = 90.0  # previous close, below this minute's low (BitMEX convention)
    frame["open_time"] = pd.to_datetime(T0_MS + np.arange(10) * 60_000, unit="ms", utc=True)
    frame["volume"] = 100
    path = tmp_path / "XBTUSD.parquet"
    frame.to_parquet(path)
    table = pa.Table.from_pandas(frame)
    assert table.num_rows == 10
    [stream] = import_file(path, "bitmex_parquet", "bitmex", "XBTUSD", catalog)
    assert stream.records["open"][3] == 90.0
    generic = {"ts_ns": "open_time", "open": "open", "high": "high", "low": "low", "close": "close"}
    check_refused(
        path,
        "generic",
        catalog,
        DataValidationError,
        r"XBTUSD.parquet row 4: open 90.0, low 101.0, high 105.0 \(open outside "
        r"\[low, high\]\)",
        kind="bars",
        columns=generic,
        interval_ns=60_000_000_000,
    )


def test_exclude_rows_drops_and_records(tmp_path: Path, catalog: Catalog) -> None:
    frame = good_frame()
    frame.loc[2, "close"] = np.nan
    path = write_feather(tmp_path, frame)
    [stream] = import_file(path, "freqtrade", "x", "ETH", catalog, exclude_rows=[3])
    assert len(stream.records) == 9
    assert stream.metadata["excluded_rows"] == "3"
    assert stream.gaps.gaps == [
        (int((T0_MS + 2 * HOUR_MS) * 1e6), int((T0_MS + 3 * HOUR_MS) * 1e6), 1.0)
    ]
    meta = catalog.metadata("bars", "x", "ETH", HOUR_MS * 1_000_000)
    assert meta["excluded_rows"] == "3"
    with pytest.raises(ValueError, match=r"exclude_rows \[99\] are not data rows"):
        import_file(path, "freqtrade", "x", "ETH", catalog, exclude_rows=[99])
