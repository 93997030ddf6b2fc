"""A fixed BTCUSDT long held through 2023 on Binance history: every funding payment is
position × mark in force × rate, recomputed here from the raw freqtrade files (SOURCES.md
"Roshan7869_algotrading": 1h trade and mark candles, 8-hourly funding rates).

The mark in force at a funding time T is the close of the mark candle that closes at T (the
candle path ends at T before the funding of T: ``EventKind``). The position is opened at the
2023-01-01 00:00 open, after that instant's funding, so the first payment is 08:00.
"""

from __future__ import annotations

import pandas as pd
import pytest

from backtester import Strategy, backtest
from backtester.data import Catalog
from backtester.data.importers import import_file
from backtester.data.loader import load_market_data
from backtester.enums import LedgerKind
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata

HOUR = 3_600_000_000_000
FOLDER = "Roshan7869_algotrading"
START = "2023-01-01"
END = "2024-01-01"
QTY = 0.5  # BTC


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def read(name: str) -> pd.DataFrame:
    frame = pd.read_feather(shared_path("data", FOLDER, name))
    dates = frame["date"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    frame["ts_ns"] = dates.astype("int64")
    return frame.set_index("ts_ns").sort_index()


class Hold(Strategy):
    def on_bar(self, ctx, bar):
        if ctx.position == 0 and bar["ts_ns"] == ns(START) - HOUR:
            ctx.market(QTY)


def test_every_payment_of_a_year_is_position_times_mark_times_rate(tmp_path):
    catalog = Catalog(tmp_path / "catalog")
    for name in (
        "BTC_USDT_USDT-1h-futures.feather",
        "BTC_USDT_USDT-1h-mark.feather",
        "BTC_USDT_USDT-1h-funding_rate.feather",
    ):
        import_file(shared_path("data", FOLDER, name), "freqtrade", "binance", "BTCUSDT", catalog)
    data = load_market_data(
        catalog, "binance", "BTCUSDT", ns(START) - HOUR, ns(END), bar_interval_ns=HOUR
    )
    result = backtest(
        Hold,
        data,
        "binance_usdm:BTCUSDT",
        initial_balance=100_000.0,
        leverage=2.0,
        mark_price_method="historical",
    )
    fills = result.records["fills"]
    assert len(fills) == 1
    assert int(fills["ts_ns"][0]) == ns(START)
    mark = read("BTC_USDT_USDT-1h-mark.feather")
    rates = read("BTC_USDT_USDT-1h-funding_rate.feather")["open"]
    rates = rates[(rates.index > ns(START)) & (rates.index < ns(END))]
    assert len(rates) == 3 * 365 - 1  # 00/08/16 UTC, without 2023-01-01 00:00
    payments = result.records["funding_payments"]
    assert payments["ts_ns"].tolist() == rates.index.tolist()
    # mark in force at T: the close of the mark candle opening at T − 1h
    mark_at = mark["close"].reindex(rates.index - HOUR).to_numpy()
    expected = -QTY * mark_at * rates.to_numpy()  # positive rate: the long pays
    assert payments["mark_price"].tolist() == mark_at.tolist()
    assert payments["payment_settle"].tolist() == pytest.approx(expected.tolist(), rel=1e-12)
    ledger = result.records["ledger"]
    funding_rows = ledger[ledger["kind"] == LedgerKind.FUNDING]
    assert funding_rows["amount_settle"].tolist() == payments["payment_settle"].tolist()
    assert len(result.records["liquidations"]) == 0
