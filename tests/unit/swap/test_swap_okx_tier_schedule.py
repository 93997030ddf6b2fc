"""OKX BTC-USD-SWAP tiers versioned by date (issue 12 item 8), each version with its source."""

from __future__ import annotations

import pytest

from backtester.swap.contract import get_contract
from backtester.swap.tier_tables import (
    okx_btc_usd_swap_2022_table,
    okx_btc_usd_swap_schedule,
)


def mmrs(table) -> list[float]:
    return table.rows["maintenance_margin_rate"].tolist()


def test_each_date_gets_its_version() -> None:
    schedule = okx_btc_usd_swap_schedule()
    assert len(schedule) == 4
    may_2019 = schedule.at("2019-07-01")
    # OKX-tiers-2019 (31 May 2019): tier 1 0-999 contracts 0.5 %, tier 3 10,000-14,999 1.5 %
    assert may_2019.rows[0]["max_size"] == 999
    assert mmrs(may_2019)[:3] == [0.005, 0.01, 0.015]
    assert may_2019.rows[2]["min_size"] == 10_000
    # before the first table's date the first table applies (the swap listed 2018-12-11)
    assert schedule.at("2018-12-20") is schedule.tables[0]
    assert "also applied before 2019-05-31" in schedule.tables[0].source
    sept_2019 = schedule.at("2019-10-01")
    # the 11 Sept 2019 rule: tier 3 max 2,000 + 2·10,000 = 22,000 at 0.5 % + 2·0.5 % = 1.5 %
    assert (sept_2019.rows[2]["max_size"], mmrs(sept_2019)[2]) == (22_000, 0.015)
    assert mmrs(schedule.at("2021-06-01")) == [0.005, 0.01, 0.015, 0.02]
    assert mmrs(schedule.at("2022-06-01")) == [0.004, 0.01, 0.015, 0.02]
    sources = [t.source for t in schedule.tables]
    assert len(set(sources)) == 4
    assert "galoy" in sources[2]
    assert "Jan 2022" in sources[3]


def test_galoy_live_account_implies_tier_1_mmr_of_0_4_percent() -> None:
    """Recompute galoy's January 2022 figures: 100 contracts of 100 USD at mark 42,892, equity
    0.141 BTC; OKX displayed 'Maintenance Margin Ratio = 0.000933' and 'Margin Ratio = 134'."""
    mmr = mmrs(okx_btc_usd_swap_2022_table())[0]
    value_btc = 100 * 100 / 42_892  # position value, coin-margined: face·N/mark
    assert value_btc * mmr == pytest.approx(0.000933, abs=5e-7)
    assert value_btc * 0.005 == pytest.approx(0.001166, abs=1e-6)  # 0.5 % would show 0.001166
    fee_rate = 0.0005  # taker-sized liquidation fee (OKX Lv1)
    assert 0.141 / (value_btc * (mmr + fee_rate)) == pytest.approx(134, abs=0.5)
    table = okx_btc_usd_swap_2022_table()
    assert (table.rows[0]["initial_margin_rate"], table.rows[0]["max_leverage"]) == (0.01, 100.0)


def test_the_contract_compiles_the_table_of_its_start_date() -> None:
    spec = get_contract("okx:BTC-USD-SWAP")
    for start, tier1 in (("2021-03-01", 0.005), ("2023-03-01", 0.004)):
        _, tiers = spec.to_params(start)
        assert tiers[0]["maintenance_margin_rate"] == tier1
    assert "0.4 %" in spec.sources["tiers"]
