"""Dated tier tables switch at their effective date during a run; the liquidation price uses
the bracket of the notional at the liquidation price."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import TierBasis
from backtester.swap.contract import get_contract
from backtester.swap.tiers import TierSchedule, TierTable, make_tier_rows

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC


def flat_market(price: float, hours: int) -> MarketData:
    bars = np.zeros(hours, dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(hours) * HOUR_NS
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = price
    mark = np.zeros(hours, dtypes.PRICE_DTYPE)
    mark["ts_ns"] = bars["ts_ns"] + HOUR_NS
    mark["price"] = price
    return MarketData("BTCUSDT", bars=bars, bar_interval_ns=HOUR_NS, mark=mark)


class BuyOnce(Strategy):
    qty = 1.0

    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == DAY0:
            ctx.market(self.qty)
        elif ctx.position:
            SEEN.append((int(bar["ts_ns"]) + HOUR_NS, ctx.liquidation_price))


SEEN: list = []


def table(mmr: float, valid_from_ns: int) -> TierTable:
    # one bracket: [min, max, mmr, imr, max leverage, cum] by USDT notional
    imr = max(mmr, 0.01)
    rows = make_tier_rows([(1, 0.0, 1e12, mmr, imr, 1.0 / imr, 0.0)])
    return TierTable(TierBasis.NOTIONAL_QUOTE, rows, valid_from_ns, "test")


def test_a_table_taking_effect_mid_run_liquidates_at_its_date():
    # 20x long at 30,000: margin 1,500 on a 30,000 notional. Under MMR 0.4% the margin
    # balance (1,500) is far above maintenance (120); from 05:00 the new table's MMR 6% asks
    # 1,800 > 1,500: liquidated at the first mark point at or after 05:00, at 30,000 flat
    switch_ns = DAY0 + 5 * HOUR_NS
    spec = get_contract("binance_usdm:BTCUSDT")
    spec = replace(spec, tiers=TierSchedule((table(0.004, 0), table(0.06, switch_ns))))
    result = backtest(
        BuyOnce,
        flat_market(30_000.0, 10),
        spec,
        initial_balance=10_000.0,
        leverage=20.0,
        mark_price_method="historical",
    )
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert int(liq["ts_ns"][0]) == switch_ns
    # Binance isolated liquidation price with MMR 6%, cum 0: (WB − Q·EP)/(Q·MMR − Q)
    assert liq["liquidation_price"][0] == pytest.approx(
        (1_500.0 - 30_000.0) / (0.06 - 1.0), rel=1e-12
    )


def test_the_liquidation_price_uses_the_bracket_at_the_liquidation_price():
    # Binance BTCUSDT brackets in force on 2024-01-01 (2022-11-25 table): 0–50k at 0.4% (cum
    # 0), 50k–250k at 0.5% (cum 50). A 1 BTC long at 58,000, 5x: the notional at entry is in
    # bracket 2, but the liquidation price (~46.6k) is in bracket 1, whose MMR and cum apply
    spec = get_contract("binance_usdm:BTCUSDT")
    SEEN.clear()
    backtest(
        BuyOnce,
        flat_market(58_000.0, 4),
        spec,
        initial_balance=100_000.0,
        leverage=5.0,
        mark_price_method="historical",
    )
    wb = 58_000.0 / 5.0
    expected = (wb + 0.0 - 58_000.0) / (0.004 - 1.0)  # bracket 1
    assert expected < 50_000.0
    with_bracket_2 = (wb + 50.0 - 58_000.0) / (0.005 - 1.0)
    assert abs(with_bracket_2 - expected) > 1.0  # the two brackets give different prices
    assert [p for _, p in SEEN] == pytest.approx([expected] * len(SEEN), rel=1e-12)
    assert len(SEEN) == 3  # the closes of bars 1-3 (filled at bar 1's open)


def test_tiers_stored_in_the_catalog_are_used_by_runs_of_that_symbol(tmp_path):
    from backtester import jobs
    from backtester.data.catalog import Catalog

    catalog = Catalog(tmp_path / "catalog")
    stored_from = DAY0 + 5 * HOUR_NS
    rows = make_tier_rows([(1, 0.0, 1e12, 0.06, 0.06, 1 / 0.06, 0.0)])
    catalog.write_tiers(
        "binance", "BTCUSDT", rows, int(TierBasis.NOTIONAL_QUOTE), stored_from, "fetch test"
    )
    job = {
        "contract": "binance_usdm:BTCUSDT",
        "data": {"source": "binance", "symbol": "BTCUSDT", "catalog": str(catalog.root)},
    }
    with pytest.warns(UserWarning, match="tier tables from the catalog"):
        spec = jobs.build_contract(job)
    table = spec.tiers.at(stored_from)
    assert table.valid_from_ns == stored_from
    assert table.source == "fetch test"
    assert table.rows["maintenance_margin_rate"].tolist() == [0.06]
    # before its date the built-in brackets still apply
    assert spec.tiers.at(stored_from - 1).rows["maintenance_margin_rate"][0] == 0.004
    # and a run switches to it at its date: the 20x long of the test above is liquidated then
    result = backtest(
        BuyOnce,
        flat_market(30_000.0, 10),
        spec,
        initial_balance=10_000.0,
        leverage=20.0,
        mark_price_method="historical",
    )
    assert result.records["liquidations"]["ts_ns"].tolist() == [stored_from]
