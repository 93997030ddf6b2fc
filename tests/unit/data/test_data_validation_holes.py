"""Bad data that used to pass with exit 0: overflowing unit conversion, candles off their grid
or at another interval than declared, funding in percent, header-only files, and trade
re-downloads starting inside a burst (refused before, though correct)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.feather as feather
import pytest

from backtester import dtypes
from backtester.data import Catalog, DataValidationError, to_ns
from backtester.data.catalog import _merge_trades
from backtester.data.importers import import_file

HOUR_MS = 3_600_000
T0_MS = 1_672_531_200_000  # 2023-01-01
HOUR = HOUR_MS * 1_000_000


def tree_digest(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


def candles(ts_ms: np.ndarray) -> pd.DataFrame:
    mid = 100.0 + np.arange(len(ts_ms))
    return pd.DataFrame(
        {"date": ts_ms, "open": mid, "high": mid + 2, "low": mid - 2, "close": mid + 1,
         "volume": 5.0}
    )  # fmt: skip


def refused(tmp_path: Path, frame: pd.DataFrame, name: str, match: str, **kw) -> None:
    cat = Catalog(tmp_path / "cat")
    seed = np.zeros(2, dtype=dtypes.BAR_DTYPE)
    seed["ts_ns"] = (T0_MS - 3 * HOUR_MS + np.arange(2) * HOUR_MS) * 1_000_000
    seed["open"] = seed["high"] = seed["low"] = seed["close"] = 50.0
    cat.write("bars", "x", "BTC", seed, source="seed", interval_ns=HOUR)
    path = tmp_path / name
    feather.write_feather(frame, path)
    before = tree_digest(cat.root)
    with pytest.raises(DataValidationError, match=match):
        import_file(path, "freqtrade", "x", "BTC", cat, **kw)
    assert tree_digest(cat.root) == before


def test_nanoseconds_read_as_milliseconds_overflow_is_refused(tmp_path: Path) -> None:
    ts_ns = (T0_MS + np.arange(5) * HOUR_MS) * 1_000_000  # ns, but freqtrade reads ints as ms
    # 1.67e18 ms x 1e6 = 1.67e24 ns, far beyond int64 (9.22e18): refused, not wrapped
    refused(
        tmp_path,
        candles(ts_ns),
        "BTC_USDT-1h-futures.feather",
        r"BTC_USDT-1h-futures.feather row 1: timestamp 1672531200000000000 read as "
        r"milliseconds overflows int64 nanoseconds \(beyond 2262\); it looks like nanoseconds",
    )
    with pytest.raises(DataValidationError, match="overflows int64"):
        to_ns(np.array([1.6725312e18]), "ms")
    # the largest value that fits converts exactly
    limit = np.iinfo(np.int64).max // 1_000_000
    assert to_ns(np.array([limit]), "ms")[0] == limit * 1_000_000


def test_hourly_candles_shifted_by_30_seconds_are_refused(tmp_path: Path) -> None:
    ts = T0_MS + np.arange(20) * HOUR_MS + 30_000
    refused(
        tmp_path,
        candles(ts),
        "BTC_USDT-1h-futures.feather",
        r"row 1: candle open time ts_ns 1672531230000000000 \(2023-01-01 00:00:30\+00:00\) "
        r"is off the 1h grid by 30 s",
    )


def test_float_milliseconds_with_a_fraction_are_refused(tmp_path: Path) -> None:
    ts = (T0_MS + np.arange(20) * HOUR_MS).astype(np.float64)
    ts[7] += 0.5  # half a millisecond: 500,000 ns off the grid
    refused(
        tmp_path,
        candles(ts),
        "BTC_USDT-1h-futures.feather",
        r"row 8: .* off the 1h grid by 0.0005 s",
    )


def test_file_named_5m_holding_hourly_candles_is_refused(tmp_path: Path) -> None:
    ts = T0_MS + np.arange(24) * HOUR_MS
    refused(
        tmp_path,
        candles(ts),
        "BTC_USDT-5m-futures.feather",
        r"24 candles declared 5m are never closer than 1h: the data's interval is 1h",
    )


def test_daily_candles_at_a_whole_hour_offset_are_accepted(tmp_path: Path) -> None:
    """OKX's Hong-Kong-day candles open at 16:00 UTC: on the grid, with an 16 h offset."""
    ts = T0_MS - 8 * HOUR_MS + np.arange(12) * 24 * HOUR_MS
    path = tmp_path / "BTC_USDT-1d-futures.feather"
    feather.write_feather(candles(ts), path)
    cat = Catalog(tmp_path / "cat")
    import_file(path, "freqtrade", "okx", "BTC", cat)
    got = cat.read("bars", "okx", "BTC", interval_ns=24 * HOUR)
    assert pd.Timestamp(int(got["ts_ns"][0]), tz="UTC").hour == 16


def funding_csv(tmp_path: Path, rates: list[float], symbol: str = "BTC-USDT-SWAP") -> Path:
    path = tmp_path / "funding.csv"
    ts = T0_MS + np.arange(len(rates)) * 8 * HOUR_MS
    pd.DataFrame(
        {"instrument_name": symbol, "funding_rate": rates, "real_funding_rate": rates,
         "funding_time": ts}
    ).to_csv(path, index=False)  # fmt: skip
    return path


def test_funding_in_percent_on_a_calm_day_is_refused_with_the_venue_cap(tmp_path: Path) -> None:
    # 0.01 % per 8 h written as 0.01: under the 3 % any-venue bound, above OKX's BTC cap
    # ±0.375 % (OKX-funding); 0.01 / 100 = 0.0001 would be within it
    path = funding_csv(tmp_path, [0.01, 0.008, 0.012])
    cat = Catalog(tmp_path / "cat")
    with pytest.raises(
        DataValidationError,
        match=r"funding.csv \(okx:BTC-USDT-SWAP funding\) row 1: funding_rate 0.01 at "
        r"2023-01-01 00:00:00\+00:00 is beyond the venue's cap ±0.00375 per interval .*"
        r"0.01 / 100 = 0.0001 is within it: a percent written as a fraction\?",
    ):
        import_file(path, "okx_funding", "okx", "BTC-USDT-SWAP", cat)
    assert not cat.exists("funding", "okx", "BTC-USDT-SWAP")
    # the same rates as fractions pass
    ok = funding_csv(tmp_path, [0.0001, 0.00008, 0.00012])
    import_file(ok, "okx_funding", "okx", "BTC-USDT-SWAP", cat)
    np.testing.assert_array_equal(
        cat.read("funding", "okx", "BTC-USDT-SWAP")["funding_rate"], [0.0001, 0.00008, 0.00012]
    )


def test_okx_2019_era_cap_is_lower(tmp_path: Path) -> None:
    from backtester.data.validation import funding_caps

    ts = np.array([1_546_300_800_000_000_000, 1_577_836_800_000_000_000])  # 2019-01-01, 2020-01-01
    caps, _ = funding_caps("okx", "BTC-USD-SWAP", ts)
    np.testing.assert_array_equal(caps, [0.003, 0.00375])  # OKX-funding-2019, OKX-funding
    caps, _ = funding_caps("okx", "DOGE-USD-SWAP", ts)
    np.testing.assert_array_equal(caps, [0.03, 0.03])
    assert funding_caps("kraken", "XBTUSD", ts) is None


def test_funding_in_percent_at_a_venue_without_a_documented_cap(tmp_path: Path) -> None:
    rates = [0.01, -0.005, 0.01, 0.012, 0.01, 0.0075, 0.01, 0.01, 0.02, 0.01]
    path = funding_csv(tmp_path, rates, symbol="WIF-USDT-SWAP")
    cat = Catalog(tmp_path / "cat")
    with pytest.raises(
        DataValidationError,
        match=r"funding.csv row 1: funding_rate 0.01; the median \|funding rate\| of the 10 rows "
        r"is 0.01 per interval, which no venue has shown: rates in percent\?",
    ):
        import_file(path, "okx_funding", "kraken", "WIF", cat)


@pytest.mark.parametrize(
    ("fmt", "header"),
    [
        ("okx_trades", "instrument_name,trade_id,side,price,size,created_time"),
        ("okx_funding", "instrument_name,funding_rate,real_funding_rate,funding_time"),
        ("binance_aggtrades", "agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
         "transact_time,is_buyer_maker"),
    ],
)  # fmt: skip
def test_header_only_csv_is_an_error(tmp_path: Path, fmt: str, header: str) -> None:
    path = tmp_path / "only-header.csv"
    path.write_text(header + "\n")
    with pytest.raises(ValueError, match=r"only-header.csv: no data rows"):
        import_file(path, fmt, "x", "BTC", tmp_path / "cat")
    assert not (tmp_path / "cat").exists()


def trades(ts: list[int]) -> np.ndarray:
    out = np.zeros(len(ts), dtype=dtypes.TRADE_DTYPE)
    out["ts_ns"] = ts
    out["price"] = 100.0 + np.arange(len(ts))  # every trade distinct
    out["qty_base"] = 1.0
    out["side"] = 1
    return out


T = 1_672_531_200_000_000_000
FULL = trades([T, T + 1, T + 1, T + 1, T + 1, T + 2, T + 3, T + 3, T + 3, T + 4])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (slice(0, 10), slice(2, 10)),  # re-download starting inside the T+1 burst
        (slice(2, 10), slice(0, 10)),  # the stored side started inside it
        (slice(0, 7), slice(3, 10)),  # stored cut inside T+3, new starts inside T+1
        (slice(0, 4), slice(2, 10)),  # both inside the T+1 burst, overlapping by 2 trades
        (slice(1, 3), slice(0, 10)),  # stored is a piece of one burst
        (slice(0, 10), slice(6, 8)),  # new is a piece of one burst
    ],
)
def test_trade_merges_accept_downloads_cut_anywhere_in_a_burst(old: slice, new: slice) -> None:
    got = _merge_trades(FULL[old], FULL[new], "t")
    covered = np.zeros(len(FULL), dtype=bool)
    covered[old] = covered[new] = True
    np.testing.assert_array_equal(got, FULL[covered])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ([0, 1, 2, 3, 4, 5], [0, 1, 3, 4, 5]),  # a trade missing in the middle of a burst
        ([0, 1, 2, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7]),  # the stored side lacks a whole burst
        ([0, 1, 2, 5], [2, 1, 5]),  # same burst, different order
    ],
)
def test_trade_merges_still_refuse_real_differences(old: list[int], new: list[int]) -> None:
    with pytest.raises(ValueError, match="stored and new trades differ where they overlap"):
        _merge_trades(FULL[old], FULL[new], "t")
