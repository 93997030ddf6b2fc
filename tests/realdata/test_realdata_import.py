"""Every supported dataset in ../shared/data imports into a temporary catalog with the figures
documented in ../shared/data/SOURCES.md (row counts, spans, values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtester.data import Catalog
from backtester.data.importers import import_file
from backtester.data.loader import load_market_data
from backtester.enums import Side
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata

HOUR = 3_600_000_000_000
MINUTE = 60_000_000_000


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def data(*parts: str) -> Path:
    return shared_path("data", *parts)


def imported(tmp_path: Path, rel: tuple[str, ...], fmt: str, exchange: str, symbol: str, **kw):
    cat = Catalog(tmp_path / "catalog")
    streams = import_file(data(*rel), fmt, exchange, symbol, cat, **kw)
    return cat, {s.kind: s for s in streams}


def test_roshan_binance_1h_futures_mark_funding(tmp_path: Path) -> None:
    folder = "Roshan7869_algotrading"
    cat, s = imported(
        tmp_path, (folder, "BTC_USDT_USDT-1h-futures.feather"), "freqtrade", "binance", "BTCUSDT"
    )
    bars = cat.read("bars", "binance", "BTCUSDT", interval_ns=HOUR)
    assert len(bars) == 58_623
    assert bars["ts_ns"][0] == ns("2019-09-08 17:00")
    assert bars["ts_ns"][-1] == ns("2026-05-17 07:00")
    assert len(s["bars"].gaps) == 0
    np.testing.assert_array_equal(bars["close"][:2], [10_000.0, 10_000.0])  # listing placeholders
    day = cat.read("bars", "binance", "BTCUSDT", ns("2020-03-13"), ns("2020-03-14"), HOUR)
    assert day["low"].min() == 3621.81  # SOURCES.md rounds to 3621.8
    for rel in ("BTC_USDT_USDT-1h-mark.feather", "BTC_USDT_USDT-1h-funding_rate.feather"):
        import_file(data(folder, rel), "freqtrade", "binance", "BTCUSDT", cat)
    mark = cat.read("mark_bars", "binance", "BTCUSDT", interval_ns=HOUR)
    assert len(mark) == 56_084
    assert (mark["ts_ns"][0], mark["ts_ns"][-1]) == (ns("2019-12-23 11:00"), ns("2026-05-17 06:00"))
    mday = cat.read("mark_bars", "binance", "BTCUSDT", ns("2020-03-13"), ns("2020-03-14"), HOUR)
    assert mday["low"].min() == pytest.approx(3801.8, abs=0.05)  # SOURCES.md figure, rounded
    funding = cat.read("funding", "binance", "BTCUSDT")
    assert len(funding) == 7_323
    assert funding["ts_ns"][np.argmin(funding["funding_rate"])] == ns("2020-03-13 08:00")
    assert funding["funding_rate"].min() == -0.003
    assert funding["ts_ns"][np.argmax(funding["funding_rate"])] == ns("2020-02-12 00:00")
    md = load_market_data(cat, "binance", "BTCUSDT", ns("2020-03-13"), ns("2020-03-14"))
    assert len(md.bars) == 24
    # the mark candle opening 2020-03-12 23:00 is known at 2020-03-13 00:00
    assert md.mark["ts_ns"][0] == ns("2020-03-13 00:00")
    assert md.mark["price"][0] == mark["close"][mark["ts_ns"] == ns("2020-03-12 23:00")][0]
    assert len(md.funding) == 3
    frame = cat.datasets().set_index("kind")
    assert frame.loc["bars", "rows"] == 58_623
    assert frame.loc["funding", "end"] == pd.Timestamp("2026-05-17 00:00", tz="UTC")


@pytest.mark.parametrize(
    ("rel", "kind", "rows", "first", "last"),
    [
        (
            ("Harthor_marketlab", "BTC_USDT_USDT-5m-futures.feather"),
            "bars",
            119_724,
            "2024-12-31 00:00",
            "2026-02-19 16:55",
        ),
        (
            ("shin-ltp_freqtrade", "BTC_USDT_USDT-5m-futures.feather"),
            "bars",
            122_688,
            "2023-11-01 00:00",
            "2024-12-30 23:55",
        ),
        (
            ("huckhuck12_freqtrade-futures-lab", "BTC_USDT_USDT-1h-mark.feather"),
            "mark_bars",
            32_545,
            "2022-05-01 00:00",
            "2026-01-16 00:00",
        ),
        (
            ("huckhuck12_freqtrade-futures-lab", "BTC_USDT_USDT-1h-funding_rate.feather"),
            "funding",
            284,
            "2025-10-13 08:00",
            "2026-01-15 16:00",
        ),
        (
            ("touhoufan2024_user_data", "BTC_USDT_USDT-15m-futures.feather"),
            "bars",
            119_838,
            "2022-01-01 00:00",
            "2025-06-02 07:15",
        ),
        (
            (
                "touhoufan2024_user_data",
                "funding_2024-08-20_2025-01-02",
                "BTC_USDT_USDT-8h-funding_rate.feather",
            ),
            "funding",
            404,
            "2024-08-20 16:00",
            "2025-01-02 00:00",
        ),
        (
            ("mohsenjfar_trade", "BTC_USDT_USDT-15m-futures.feather"),
            "bars",
            73_777,
            "2023-11-29 00:00",
            "2026-01-05 12:00",
        ),
        (
            ("mohsenjfar_trade", "BTC_USDT_USDT-1h-mark.feather"),
            "mark_bars",
            18_805,
            "2023-12-18 00:00",
            "2026-02-08 12:00",
        ),
        (
            ("freqtrade_testdata_futures", "XRP_USDT_USDT-8h-funding_rate.feather"),
            "funding",
            91,
            "2021-11-18 00:00:00.017",
            None,
        ),
    ],
)
def test_freqtrade_files(tmp_path: Path, rel, kind, rows, first, last) -> None:
    cat, s = imported(tmp_path, rel, "freqtrade", "x", "BTCUSDT")
    interval = s[kind].interval_ns
    got = cat.read(kind, "x", "BTCUSDT", interval_ns=interval)
    assert len(got) == rows
    assert got["ts_ns"][0] == ns(first)
    if last is not None:
        assert got["ts_ns"][-1] == ns(last)
    if kind != "funding":
        assert len(s[kind].gaps) == 0


def test_bitmex_2016_parquet(tmp_path: Path) -> None:
    cat, s = imported(
        tmp_path,
        ("Celeborn2BeAlive_bitmex-xbtusd-history", "XBTUSD-1m-2016-12-31_2019-06-04.parquet"),
        "bitmex_parquet",
        "bitmex",
        "XBTUSD",
    )
    assert cat.datasets().loc[0, "rows"] == 1_274_400
    assert cat.last_ts_ns("bars", "bitmex", "XBTUSD", MINUTE) == ns("2019-06-04 23:58")
    assert len(s["bars"].gaps) == 0
    first = cat.read("bars", "bitmex", "XBTUSD", end_ns=ns("2017-01-01 00:02"), interval_ns=MINUTE)
    np.testing.assert_array_equal(first["open"], [968.29, 968.29, 968.70])
    assert first["ts_ns"][0] == ns("2016-12-31 23:59")
    # 12,993 contracts of 1 USD at close 968.70 = 13.4128... BTC
    assert first["volume_base"][1] == pytest.approx(12_993 / 968.70, rel=1e-15)
    assert cat.metadata("bars", "bitmex", "XBTUSD", MINUTE)["allow_open_outside_range"] == "true"


def test_bitmex_2020_crash_day(tmp_path: Path) -> None:
    cat, _ = imported(
        tmp_path,
        ("sxiaojian88_bitmex-xbtusd-history", "XBTUSD-1m-2020-01-01_2023-07-07.parquet"),
        "bitmex_parquet",
        "bitmex",
        "XBTUSD",
    )
    assert cat.datasets().loc[0, "rows"] == 1_847_960
    day = cat.read("bars", "bitmex", "XBTUSD", ns("2020-03-13"), ns("2020-03-14"), MINUTE)
    assert len(day) == 1_440
    assert day["ts_ns"][np.argmin(day["low"])] == ns("2020-03-13 02:15")
    assert day["low"].min() == 3_596.0


def test_bitmex_original_json_matches_converted_parquet(tmp_path: Path) -> None:
    folder = "sxiaojian88_bitmex-xbtusd-history"
    cat, _ = imported(
        tmp_path,
        (folder, "crash_days_original_json", "XBTUSD-2020-03-13-1m.json"),
        "bitmex_json",
        "bitmex",
        "XBTUSD",
    )
    # the converted parquet holds the same day: re-importing it must merge without conflict
    import_file(
        data(folder, "XBTUSD-1m-2020-01-01_2023-07-07.parquet"),
        "bitmex_parquet",
        "bitmex",
        "XBTUSD",
        cat,
    )
    day = cat.read("bars", "bitmex", "XBTUSD", ns("2020-03-13"), ns("2020-03-14"), MINUTE)
    assert len(day) == 1_440
    assert day["open"][0] == 4346.0
    assert cat.datasets().loc[0, "rows"] == 1_847_960


def test_hftbacktest_2023_capture_trades_mark_index_funding(tmp_path: Path) -> None:
    folder = ("nkaz001_hftbacktest_examples", "usdm")
    cat, s = imported(
        tmp_path, (*folder, "btcusdt_20230404.dat.gz"), "binance_ws", "binance", "BTCUSDT"
    )
    assert len(s["trades"].records) == 2_197
    assert len(s["mark"].records) == 99
    assert len(s["funding"].records) == 0  # 00:00 funding not passed inside this file
    first = s["trades"].records[0]
    assert (int(first["ts_ns"]), float(first["price"]), float(first["qty_base"])) == (
        1_680_652_700_452_000_000,
        28_145.10,
        0.002,
    )
    assert first["side"] == Side.SELL  # m = true: buyer was maker
    assert s["index"].records["price"][0] == 28_159.75642857
    streams = import_file(
        data(*folder, "btcusdt_20230405.dat.gz"), "binance_ws", "binance", "BTCUSDT", cat
    )
    by = {x.kind: x for x in streams}
    assert len(by["trades"].records) == 10_738
    assert len(by["mark"].records) == 415
    [event] = by["funding"].records
    assert event["ts_ns"] == ns("2023-04-05 00:00")
    trades = cat.read("trades", "binance", "BTCUSDT")
    assert len(trades) == 2_197 + 10_738
    assert trades["ts_ns"][0] == ns("2023-04-04 23:58:20.452")
    md = load_market_data(cat, "binance", "BTCUSDT", with_trades=True)
    assert len(md.trades) == 12_935
    assert len(md.mark) == len(md.index) == 514
    assert md.funding["funding_rate"].tolist() == [event["funding_rate"]]


def test_hftbacktest_coinm_capture_needs_face_value(tmp_path: Path) -> None:
    path = data("nkaz001_hftbacktest_examples", "cm", "btcusd_perp_20240808.gz")
    cat = Catalog(tmp_path / "c")
    with pytest.raises(
        ValueError, match="BTCUSD_PERP is a COIN-M contract whose q is in contracts"
    ):
        import_file(path, "binance_ws", "binance", "BTCUSD_PERP", cat)
    assert not (tmp_path / "c").exists()
    [trades] = import_file(
        path, "binance_ws", "binance", "BTCUSD_PERP", cat, inverse_face_value_quote=100.0
    )
    assert len(trades.records) == 2_286
    first = trades.records[0]
    assert first["qty_base"] == pytest.approx(4 * 100 / 61_804.8, rel=1e-15)


def test_lean_binance_coinm_minute_zip_and_funding(tmp_path: Path) -> None:
    folder = ("QuantConnect_Lean_cryptofuture", "binance")
    cat, s = imported(
        tmp_path,
        (*folder, "minute", "btcusd", "20221213_trade.zip"),
        "lean_zip",
        "binance",
        "BTCUSD_PERP",
        inverse_face_value_quote=100.0,
    )
    bars = cat.read("bars", "binance", "BTCUSD_PERP", interval_ns=MINUTE)
    assert len(bars) == 1_439
    assert bars["ts_ns"][0] == ns("2022-12-13 00:00")
    assert bars["open"][0] == 17_204.0
    assert bars["volume_base"][0] == pytest.approx(4_242 * 100 / 17_207.6, rel=1e-15)
    assert s["bars"].gaps.gaps == [(ns("2022-12-13 04:29"), ns("2022-12-13 04:30"), 1.0)]
    import_file(
        data(*folder, "margin_interest", "btcusd.csv"),
        "lean_funding",
        "binance",
        "BTCUSD_PERP",
        cat,
    )
    funding = cat.read("funding", "binance", "BTCUSD_PERP")
    assert len(funding) == 12  # 9 in 2020-12-29..31 + 3 on 2022-12-13
    assert funding["funding_rate"][0] == 0.00020030
    assert funding["ts_ns"][-1] == ns("2022-12-13 16:00")


def test_ftx_nautilus_bars(tmp_path: Path) -> None:
    cat, s = imported(
        tmp_path,
        ("nautilus_trader_ftx_btc-perp", "btc-perp-20211231-20220201_1m.csv.gz"),
        "nautilus_bars",
        "ftx",
        "BTC-PERP",
    )
    bars = cat.read("bars", "ftx", "BTC-PERP", interval_ns=MINUTE)
    assert len(bars) == 45_031
    assert (bars["ts_ns"][0], bars["ts_ns"][-1]) == (ns("2021-12-31 23:01"), ns("2022-02-01 05:31"))
    assert len(s["bars"].gaps) == 0
    assert bars["volume_base"][0] == pytest.approx(2_300_413.7295 / 46_377.0, rel=1e-15)


def test_spot_proxy_gaps_are_reported_not_filled(tmp_path: Path) -> None:
    cat, s = imported(
        tmp_path,
        ("Roshan7869_algotrading", "BTC_USDT-1h.feather"),
        "freqtrade",
        "binance_spot",
        "BTCUSDT",
    )
    assert len(s["bars"].records) == 73_265
    assert len(s["bars"].gaps) == 27
    assert s["bars"].gaps.missing_bars == 122.0
    assert (
        cat.metadata("bars", "binance_spot", "BTCUSDT", HOUR)["gaps"] == "27 gaps, 122 missing bars"
    )


def test_every_freqtrade_file_imports(tmp_path: Path) -> None:
    root = shared_path("data")
    files = sorted(root.rglob("*.feather"))
    assert len(files) == 28
    cat = Catalog(tmp_path / "c")
    kinds = {}
    for n, path in enumerate(files):
        for stream in import_file(path, "freqtrade", "x", f"S{n}", cat):
            kinds[stream.kind] = kinds.get(stream.kind, 0) + len(stream.records)
    assert set(kinds) == {"bars", "mark_bars", "funding"}
    assert kinds["funding"] == 1_247 + 7_323 + 284 + 404 + 414 + 2_349 + 91
    assert int(cat.datasets()["rows"].sum()) == sum(kinds.values())


def test_lean_bybit_linear_minute_zip(tmp_path: Path) -> None:
    _, s = imported(
        tmp_path,
        ("QuantConnect_Lean_cryptofuture", "bybit", "minute", "btcusdt", "20221213_trade.zip"),
        "lean_zip",
        "bybit",
        "BTCUSDT",
    )
    bars = s["bars"].records
    assert len(bars) == 721
    assert bars["ts_ns"][-1] == ns("2022-12-13 12:00")
    assert bars["volume_base"][0] == 78.677


def test_hftbacktest_2024_usdm_capture(tmp_path: Path) -> None:
    _cat, s = imported(
        tmp_path,
        ("nkaz001_hftbacktest_examples", "usdm", "btcusdt_20240808.gz"),
        "binance_ws",
        "binance",
        "BTCUSDT",
    )
    trades = s["trades"].records
    assert len(trades) == 21_313
    assert "mark" not in s
    assert trades["ts_ns"][0] >= ns("2024-08-08 23:54:16")
    assert trades["ts_ns"][-1] < ns("2024-08-09 00:00:02")
