"""Importers on small files written in the documented formats of each source."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from backtester.data import Catalog, DataValidationError, detect_time_unit, find_gaps, to_ns
from backtester.data.importers import import_file, read_file
from backtester.enums import Side

T0_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
MIN_MS = 60_000


def test_detect_time_unit_by_magnitude() -> None:
    assert detect_time_unit(np.array([1_672_531_200])) == "s"
    assert detect_time_unit(np.array([T0_MS])) == "ms"
    assert detect_time_unit(np.array([T0_MS * 1000])) == "us"
    assert detect_time_unit(np.array([T0_MS * 1_000_000])) == "ns"
    with pytest.raises(
        DataValidationError,
        match=r"ts row 2: timestamp 1672531200000000 looks "
        r"like microseconds but row 1 is in milliseconds",
    ):
        detect_time_unit(np.array([T0_MS, T0_MS * 1000]), "ts")
    np.testing.assert_array_equal(to_ns(np.array([T0_MS]), "auto"), [T0_MS * 1_000_000])


def test_find_gaps_reports_without_filling() -> None:
    ts = np.array([0, 1, 2, 5, 6, 10]) * 60_000_000_000 + T0_MS * 1_000_000
    report = find_gaps(ts, 60_000_000_000)
    assert report.gaps == [
        (ts[2] + 60_000_000_000, ts[3], 2.0),
        (ts[4] + 60_000_000_000, ts[5], 3.0),
    ]
    assert report.missing_bars == 5.0
    assert "2 gaps, 5 missing bars" in str(report)


KLINE = "{t},100.0,101.0,99.5,100.5,12.5,{c},1250.0,42,6.0,600.0,0\n"


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("scale", [1, 1000])  # ms (futures) and µs (spot since 2025)
def test_binance_klines_with_and_without_header(tmp_path: Path, header: bool, scale: int) -> None:
    path = tmp_path / "BTCUSDT-1m-2023-01-01.csv"
    lines = (
        [
            "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
            "taker_buy_volume,taker_buy_quote_volume,ignore\n"
        ]
        if header
        else []
    )
    lines += [
        KLINE.format(t=(T0_MS + i * MIN_MS) * scale, c=(T0_MS + i * MIN_MS + 59_999) * scale)
        for i in range(3)
    ]
    path.write_text("".join(lines))
    [stream] = read_file(path, "binance_klines")
    assert stream.kind == "bars"
    assert stream.interval_ns == 60_000_000_000
    assert stream.metadata["time_unit"] == ("ms" if scale == 1 else "us")
    np.testing.assert_array_equal(
        stream.records["ts_ns"], (T0_MS + np.arange(3) * MIN_MS) * 1_000_000
    )
    np.testing.assert_array_equal(stream.records["volume_base"], [12.5] * 3)


def test_binance_mark_klines_folder_and_coinm_volume(tmp_path: Path) -> None:
    folder = tmp_path / "markPriceKlines"
    folder.mkdir()
    path = folder / "BTCUSDT-1h-2023-01-01.csv"
    path.write_text(KLINE.format(t=T0_MS, c=T0_MS + 3_599_999))
    [stream] = read_file(path, "binance_klines")
    assert (stream.kind, stream.interval_ns) == ("mark_bars", 3_600_000_000_000)
    assert stream.records["volume_base"][0] == 0.0
    coinm = tmp_path / "BTCUSD_PERP-1h-2023-01-01.csv"
    coinm.write_text(KLINE.format(t=T0_MS, c=T0_MS + 3_599_999))
    [bars] = read_file(coinm, "binance_klines", coin_margined=True)
    assert bars.records["volume_base"][0] == 1250.0


def test_binance_aggtrades_and_funding(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2023-01-01.csv"
    path.write_text(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
        f"1,16500.1,0.010,10,11,{T0_MS},true\n2,16500.2,0.250,12,12,{T0_MS},false\n"
        f"3,16499.0,1.5,13,15,{T0_MS + 7},True\n"
    )
    cat = Catalog(tmp_path / "cat")
    [stream] = import_file(path, "binance_aggtrades", "binance", "BTCUSDT", cat)
    np.testing.assert_array_equal(stream.records["side"], [Side.SELL, Side.BUY, Side.SELL])
    np.testing.assert_array_equal(stream.records["qty_base"], [0.01, 0.25, 1.5])
    assert len(cat.read("trades", "binance", "BTCUSDT")) == 3
    funding = tmp_path / "BTCUSDT-fundingRate-2023-01.csv"
    funding.write_text(
        "calc_time,funding_interval_hours,last_funding_rate\n"
        f"{T0_MS},8,0.00010000\n{T0_MS + 8 * 3_600_000},8,-0.00012345\n"
    )
    [f] = read_file(funding, "binance_funding")
    np.testing.assert_array_equal(f.records["funding_rate"], [0.0001, -0.00012345])
    np.testing.assert_array_equal(f.records["funding_interval_ns"], [8 * 3_600_000_000_000] * 2)


def test_okx_trades_contracts_to_base_and_funding(tmp_path: Path) -> None:
    path = tmp_path / "BTC-USDT-SWAP-trades-2023-01-01.csv"
    path.write_text(
        "instrument_name,trade_id,side,price,size,created_time\n"
        f"BTC-USDT-SWAP,12,sell,16600.0,3,{T0_MS + 5}\n"
        f"BTC-USDT-SWAP,11,buy,16601.0,20,{T0_MS}\n"
    )
    [stream] = read_file(path, "okx_trades", contract_kind="linear", face_value=0.01)
    np.testing.assert_array_equal(stream.records["ts_ns"], [T0_MS * 10**6, (T0_MS + 5) * 10**6])
    np.testing.assert_allclose(stream.records["qty_base"], [0.2, 0.03], rtol=1e-15)
    np.testing.assert_array_equal(stream.records["side"], [Side.BUY, Side.SELL])
    inverse = tmp_path / "BTC-USD-SWAP-trades.csv"
    inverse.write_text(
        "instrument_name,trade_id,side,price,size,created_time\n"
        f"BTC-USD-SWAP,1,buy,20000.0,5,{T0_MS}\n"
    )
    [inv] = read_file(inverse, "okx_trades", contract_kind="inverse", face_value=100.0)
    assert inv.records["qty_base"][0] == 5 * 100 / 20000.0
    funding = tmp_path / "BTC-USDT-SWAP-funding.csv"
    funding.write_text(
        "instrument_name,funding_rate,real_funding_rate,funding_time\n"
        f"BTC-USDT-SWAP,0.0001,0.00009,{T0_MS}\n"
    )
    [f] = read_file(funding, "okx_funding")
    assert f.records["funding_rate"][0] == 0.00009
    assert f.metadata["rate_column"] == "real_funding_rate"


def test_tardis_derivative_ticker_funding_from_rollover(tmp_path: Path) -> None:
    us = T0_MS * 1000
    hour_us = 3_600_000_000
    rows = [  # (timestamp, funding_timestamp, funding_rate, index, mark)
        (us - 2_000_000, us, 0.0001, 16500.0, 16501.0),
        (us - 1_000_000, us, 0.00012, 16502.0, 16503.0),
        (us - 1_000_000, us, 0.00013, 16502.5, 16503.5),  # same time: last message wins
        (us + 1_000_000, us + 8 * hour_us, 0.00002, 16504.0, 16505.0),
    ]
    path = tmp_path / "derivative_ticker.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
        "predicted_funding_rate,open_interest,last_price,index_price,mark_price\n"
        + "".join(
            f"binance-futures,BTCUSDT,{t},{t + 5},{ft},{r},,1,1,{i},{m}\n"
            for t, ft, r, i, m in rows
        )
    )
    streams = {s.kind: s for s in read_file(path, "tardis_derivative_ticker")}
    np.testing.assert_array_equal(streams["index"].records["price"], [16500.0, 16502.5, 16504.0])
    np.testing.assert_array_equal(streams["mark"].records["price"], [16501.0, 16503.5, 16505.0])
    [event] = streams["funding"].records
    assert (int(event["ts_ns"]), float(event["funding_rate"])) == (T0_MS * 10**6, 0.00013)


def test_binance_ws_capture_orders_by_trade_id(tmp_path: Path) -> None:
    def trade(t_id: int, t_ms: int, price: str, m: bool) -> str:
        data = {
            "e": "trade",
            "E": t_ms + 3,
            "T": t_ms,
            "s": "BTCUSDT",
            "t": t_id,
            "p": price,
            "q": "0.010",
            "X": "MARKET",
            "m": m,
        }
        return f"{t_ms * 1000 + 9} " + json.dumps({"stream": "btcusdt@trade", "data": data})

    def mark(e_ms: int, nxt: int, r: str) -> str:
        data = {
            "e": "markPriceUpdate",
            "E": e_ms,
            "s": "BTCUSDT",
            "p": "100.5",
            "P": "100",
            "i": "100.25",
            "r": r,
            "T": nxt,
        }
        return f"{e_ms * 1000} " + json.dumps({"stream": "btcusdt@markPrice@1s", "data": data})

    lines = [
        '1 {"lastUpdateId": 5, "bids": [], "asks": []}',
        trade(2, T0_MS - 500, "100.2", False),
        trade(1, T0_MS - 500, "100.1", True),  # received late, earlier id
        mark(T0_MS - 1000, T0_MS, "0.0001"),
        mark(T0_MS, T0_MS + 8 * 3_600_000, "0.0002"),
    ]
    path = tmp_path / "btcusdt.dat.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    streams = {s.kind: s for s in read_file(path, "binance_ws")}
    np.testing.assert_array_equal(streams["trades"].records["price"], [100.1, 100.2])
    np.testing.assert_array_equal(streams["trades"].records["side"], [Side.SELL, Side.BUY])
    assert streams["trades"].metadata["skipped_messages"] == "1"
    [event] = streams["funding"].records
    assert (int(event["ts_ns"]), float(event["funding_rate"])) == (T0_MS * 10**6, 0.0001)
    np.testing.assert_array_equal(streams["index"].records["price"], [100.25, 100.25])


def test_generic_csv_with_mapping(tmp_path: Path) -> None:
    path = tmp_path / "any.csv"
    path.write_text(
        "when,px,amount,aggressor\n2023-01-01T00:00:00Z,10.0,1.0,B\n"
        "2023-01-01T00:00:01Z,10.5,2.0,S\n"
    )
    [stream] = read_file(
        path,
        "generic",
        kind="trades",
        columns={"ts_ns": "when", "price": "px", "qty_base": "amount", "side": "aggressor"},
        side_values={"b": 1, "s": -1},
    )
    np.testing.assert_array_equal(stream.records["ts_ns"], [T0_MS * 10**6, (T0_MS + 1000) * 10**6])
    np.testing.assert_array_equal(stream.records["side"], [1, -1])
    with pytest.raises(ValueError, match=r"columns: map the required field\(s\) \['qty_base'\]"):
        read_file(path, "generic", kind="trades", columns={"ts_ns": "when", "price": "px"})
    with pytest.raises(ValueError, match="format: unknown value 'generik'; did you mean 'generic'"):
        read_file(path, "generik")
    with pytest.raises(TypeError, match=r"format: expected a format name .* got Catalog"):
        import_file(path, Catalog(tmp_path / "c"), "x", "S", "cat")
