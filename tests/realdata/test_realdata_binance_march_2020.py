"""Binance BTCUSDT perpetual, March 2020, through the engine with the venue's own mark and
funding history (freqtrade files of SOURCES.md "Roshan7869_algotrading": 1h futures candles,
1h mark candles, 8-hourly funding rates).

Binance's profile marks with the median of index-based prices; there is no index history here,
so the run replays the recorded mark (``mark_price_method_used == "HISTORICAL"``): each mark
candle becomes a point at its close. Checked:

* funding: at every funding time the position pays ``contracts · face · mark · rate`` (positive
  rate: longs pay), with the mark in force at that instant, including the −0.3 % of
  2020-03-13 08:00 (a long receives);
* liquidation on the mark, never on the last price: a long whose liquidation price lies
  between the last-price low of 2020-03-13 (3,621.81) and the mark's low (3,801.8) survives,
  although the traded price went below its liquidation price.
"""

from __future__ import annotations

import numpy as np
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


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


@pytest.fixture(scope="module")
def march(tmp_path_factory: pytest.TempPathFactory):
    catalog = Catalog(tmp_path_factory.mktemp("binance") / "catalog")
    for name in (
        "BTC_USDT_USDT-1h-futures.feather",
        "BTC_USDT_USDT-1h-mark.feather",
        "BTC_USDT_USDT-1h-funding_rate.feather",
    ):
        import_file(shared_path("data", FOLDER, name), "freqtrade", "binance", "BTCUSDT", catalog)
    return load_market_data(
        catalog, "binance", "BTCUSDT", ns("2020-03-01"), ns("2020-04-01"), bar_interval_ns=HOUR
    )


class HoldLong(Strategy):
    """Buys ``contracts`` at the first close; records the liquidation price it was given."""

    contracts = 0.2  # BTC (USDⓈ-M: one contract is one BTC)

    def on_start(self, ctx):
        self.liquidation_prices = []

    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == ns("2020-03-01"):
            ctx.market(self.contracts)
        elif ctx.position:
            LIQUIDATION_PRICE.append(ctx.liquidation_price)


LIQUIDATION_PRICE: list[float] = []


def test_funding_is_paid_on_the_recorded_mark_and_the_long_survives_the_last_price_wick(
    march,
):
    from backtester.swap import get_contract

    spec = get_contract("binance_usdm:BTCUSDT")
    LIQUIDATION_PRICE.clear()
    # 1.75x: the liquidation price lands between the last-price low (3,621.81) and the mark's
    # real low of the day (3,801.8 intra-hour, SOURCES.md; the hourly closes stay higher), so
    # Binance itself did not liquidate such a long either
    result = backtest(
        HoldLong, march, "binance_usdm:BTCUSDT", initial_balance=1_000.0, leverage=1.75
    )
    assert result.config["mark_price_method_used"] == ["HISTORICAL"]
    fills = result.records["fills"]
    assert len(fills) == 1  # the entry only: no liquidation, no ADL
    assert len(result.records["liquidations"]) == 0
    q = 0.2 * spec.face_value  # BTC

    liq = float(LIQUIDATION_PRICE[-1])
    last_low = float(march.bars["low"].min())
    mark_low = float(march.mark["price"].min())
    assert last_low == pytest.approx(3621.81, abs=1e-9)  # SOURCES.md figure
    assert last_low < liq < 3801.8 < mark_low
    assert len(set(LIQUIDATION_PRICE)) == 1  # fixed while the isolated position is unchanged

    # funding: value at the mark in force × rate, longs pay a positive rate
    payments = result.records["funding_payments"]
    rates = march.funding
    held = rates[rates["ts_ns"] > fills[0]["ts_ns"]]
    assert len(payments) == len(held) == 92
    mark_ts, mark_px = march.mark["ts_ns"], march.mark["price"]
    for payment, rate in zip(payments, held, strict=True):
        in_force = mark_px[np.searchsorted(mark_ts, rate["ts_ns"], side="right") - 1]
        assert payment["ts_ns"] == rate["ts_ns"]
        assert payment["mark_price"] == in_force
        assert payment["payment_settle"] == pytest.approx(
            -q * in_force * rate["funding_rate"], rel=1e-12
        )
    worst = payments[payments["ts_ns"] == ns("2020-03-13 08:00")]
    assert worst["funding_rate"][0] == -0.003
    assert worst["payment_settle"][0] > 0  # the long receives
    ledger = result.records["ledger"]
    funding_total = ledger[ledger["kind"] == LedgerKind.FUNDING]["amount_settle"].sum()
    assert funding_total == pytest.approx(payments["payment_settle"].sum(), rel=1e-12)
    assert 1_000.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, rel=1e-14
    )
