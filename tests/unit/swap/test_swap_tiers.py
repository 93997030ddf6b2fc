"""TierTable validation, TierSchedule versioning, loaders and the built-in tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backtester.data.importers.tiers import (
    load_binance_snapshot,
    load_binance_snapshots,
    load_okx_tier_csv,
    tiers_from_ccxt,
)
from backtester.dtypes import TIER_DTYPE
from backtester.enums import ContractKind, TierBasis
from backtester.swap.tier_tables import (
    binance_btcusd_perp_schedule,
    binance_btcusdt_schedule,
    bitmex_risk_limits,
    okx_btc_usd_swap_2019,
    okx_btc_usd_swap_2019_09,
    okx_btc_usd_swap_2020_table,
    okx_btc_usdt_swap_2026_table,
    okx_coinm_2019_schedule,
)
from backtester.swap.tiers import (
    TierSchedule,
    TierTable,
    maintenance_amounts,
    make_tier_rows,
    to_ns,
)

NOTIONAL = [
    (1, 0, 50_000, 0.004, None, 125),
    (2, 50_000, 250_000, 0.005, None, 100),
    (3, 250_000, 1_000_000, 0.01, None, 50),
]
CONTRACTS = [
    (1, 0, 999, 0.005, 0.01, 100),
    (2, 1_000, 9_999, 0.01, 0.02, 50),
    (3, 10_000, 14_999, 0.015, 0.0333, 30),
]


def _table(rows, basis=TierBasis.NOTIONAL_QUOTE) -> TierTable:
    return TierTable(basis, make_tier_rows(rows), 0, "test table")


def _with(rows, index, **changes):
    keys = ("tier", "min", "max", "mmr", "imr", "lev")
    out = [list(r) for r in rows]
    for key, value in changes.items():
        out[index][keys.index(key)] = value
    return [tuple(r) for r in out]


# --------------------------------------------------------------------------- validation


def test_valid_tables_are_accepted_and_read_only() -> None:
    table = _table(NOTIONAL)
    assert len(table) == 3
    assert table.rows["initial_margin_rate"][0] == pytest.approx(1 / 125)
    with pytest.raises(ValueError, match="read-only"):
        table.rows["min_size"][0] = 1.0
    assert len(_table(CONTRACTS, TierBasis.CONTRACTS)) == 3


def test_notional_gap_names_row_field_and_range() -> None:
    rows = _with(NOTIONAL, 1, min=60_000)
    with pytest.raises(ValueError, match="leaves a gap") as error:
        _table(rows)
    message = str(error.value)
    assert "row 1 (tier 2)" in message
    assert "min_size: 60000 leaves a gap after the previous tier's max_size 50000" in message
    assert "expected a value in [50000, 50000]" in message


def test_notional_overlap_names_row_field_and_range() -> None:
    rows = _with(NOTIONAL, 2, min=200_000)
    with pytest.raises(ValueError, match="overlaps") as error:
        _table(rows)
    message = str(error.value)
    assert "row 2 (tier 3)" in message
    assert "min_size: 200000 overlaps the previous tier's max_size 250000" in message
    assert "expected a value in [250000, 250000]" in message


def test_contract_table_allows_plus_one_lot_but_not_a_gap_or_overlap() -> None:
    # OKX USDT-SWAP style: next min = previous max + 0.01
    ok = _table(_with(CONTRACTS, 1, min=999.01), TierBasis.CONTRACTS)
    assert ok.rows["min_size"][1] == 999.01
    with pytest.raises(ValueError, match="min_size") as error:
        _table(_with(CONTRACTS, 1, min=1_500), TierBasis.CONTRACTS)
    assert "row 1 (tier 2): min_size: 1500 leaves a gap" in str(error.value)
    assert "expected a value in [999, 1000]" in str(error.value)
    with pytest.raises(ValueError, match="min_size") as error:
        _table(_with(CONTRACTS, 2, min=9_000), TierBasis.CONTRACTS)
    assert "row 2 (tier 3): min_size: 9000 overlaps" in str(error.value)
    assert "expected a value in [9999, 10000]" in str(error.value)


def test_decreasing_mmr_names_field_and_range() -> None:
    rows = _with(NOTIONAL, 2, mmr=0.003)
    with pytest.raises(ValueError, match="non-decreasing") as error:
        _table(rows)
    message = str(error.value)
    assert "row 2 (tier 3): maintenance_margin_rate" in message
    assert "expected a value in [0.005, 1] (non-decreasing), got 0.003" in message


def test_decreasing_imr_is_refused() -> None:
    rows = _with(CONTRACTS, 1, imr=0.009)
    with pytest.raises(ValueError, match=r"tier 2\): initial_margin_rate: expected a value in"):
        _table(rows, TierBasis.CONTRACTS)


@pytest.mark.parametrize(
    ("index", "changes", "expected"),
    [
        (1, {"tier": 3}, r"tier: expected 2 \(tiers numbered consecutively\), got 3"),
        (0, {"tier": 0}, r"tier: expected a number >= 1, got 0"),
        (0, {"min": 10}, r"min_size: expected 0 for the first tier, got 10"),
        (1, {"max": 50_000}, r"max_size: expected a value > min_size 50000"),
        (1, {"lev": 0.5, "imr": 0.5}, r"max_leverage: expected a value >= 1, got 0.5"),
        (1, {"mmr": 1.5}, r"maintenance_margin_rate: expected a value in \[0, 1\], got 1.5"),
        (0, {"imr": 0.001}, r"initial_margin_rate: expected a value in \[maintenance_margin_rate"),
    ],
)
def test_other_row_errors(index: int, changes: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        _table(_with(NOTIONAL, index, **changes))


def test_bad_rows_dtype_and_empty_table() -> None:
    with pytest.raises(TypeError, match="rows: expected dtype"):
        TierTable(TierBasis.CONTRACTS, np.zeros(2, dtype=np.float64), 0, "x")
    with pytest.raises(ValueError, match="rows: expected at least one tier"):
        TierTable(TierBasis.CONTRACTS, np.zeros(0, dtype=TIER_DTYPE), 0, "x")
    with pytest.raises(ValueError, match="source: expected a non-empty string"):
        TierTable(TierBasis.CONTRACTS, make_tier_rows(CONTRACTS), 0, "")
    with pytest.raises(ValueError, match="basis: expected one of"):
        TierTable(7, make_tier_rows(CONTRACTS), 0, "x")


# --------------------------------------------------------------------------- lookup


def test_lookup_lower_bound_inclusive_and_above_last_tier() -> None:
    table = _table(NOTIONAL)
    assert int(table.lookup(0.0)["tier"]) == 1
    assert int(table.lookup(49_999.99)["tier"]) == 1
    assert int(table.lookup(50_000.0)["tier"]) == 2
    assert int(table.lookup(5e9)["tier"]) == 3
    okx = okx_btc_usd_swap_2019()
    assert int(okx.lookup(999)["tier"]) == 1
    assert int(okx.lookup(1_000)["tier"]) == 2
    with pytest.raises(ValueError, match="size: expected a finite value >= 0"):
        table.lookup(-1.0)


def test_lookup_position_uses_the_basis_unit() -> None:
    # Binance COIN-M: 100 contracts x 100 USD / 25,000 = 0.4 BTC -> tier 1 [binance_coinm_mm]
    coinm = binance_btcusd_perp_schedule().latest
    row = coinm.lookup_position(ContractKind.INVERSE, 100, 100.0, 25_000.0)
    assert int(row["tier"]) == 1
    # 20 BTC notional (linear, 1 BTC face) at 30,000 = 600,000 USDT -> 2024 tier 3
    usdt = binance_btcusdt_schedule().at("2024-06-01")
    row = usdt.lookup_position(ContractKind.LINEAR, 20, 1.0, 30_000.0)
    assert (int(row["tier"]), row["maintenance_margin_rate"]) == (3, 0.0065)


# --------------------------------------------------------------------------- schedule


def test_schedule_at_picks_the_table_of_the_time() -> None:
    schedule = binance_btcusdt_schedule()
    t2020 = schedule.at("2020-06-01")
    assert t2020.valid_from_ns == to_ns("2019-09-13")
    assert len(t2020) == 5
    t2025 = schedule.at("2025-09-01")
    assert t2025.valid_from_ns == to_ns("2025-08-21")
    assert (t2025.rows["max_size"][0], t2025.rows["max_leverage"][0]) == (300_000, 150)
    assert schedule.at(to_ns("2022-05-21")).valid_from_ns == to_ns("2022-05-21")
    assert schedule.at(to_ns("2022-05-21") - 1).valid_from_ns == to_ns("2021-03-18T09:00Z")
    with pytest.raises(ValueError, match="ts_ns: 2019-01-01T00:00:00\\+00:00 precedes the first"):
        schedule.at("2019-01-01")


def test_schedule_refuses_duplicates_and_mixed_bases() -> None:
    a = TierTable(TierBasis.NOTIONAL_QUOTE, make_tier_rows(NOTIONAL), 5, "a")
    b = TierTable(TierBasis.NOTIONAL_QUOTE, make_tier_rows(NOTIONAL), 5, "b")
    c = TierTable(TierBasis.CONTRACTS, make_tier_rows(CONTRACTS), 9, "c")
    with pytest.raises(ValueError, match="two tables valid from"):
        TierSchedule((a, b))
    with pytest.raises(ValueError, match=r"tables\[1\].basis: expected NOTIONAL_QUOTE"):
        TierSchedule((a, c))
    with pytest.raises(ValueError, match="expected at least one TierTable"):
        TierSchedule(())
    early = TierTable(TierBasis.NOTIONAL_QUOTE, make_tier_rows(NOTIONAL), 1, "early")
    assert [t.source for t in TierSchedule((a, early)).tables] == ["early", "a"]


# --------------------------------------------------------------------------- Binance cum


def test_cum_formula_reproduces_the_published_maintenance_amounts() -> None:
    """MECHANICS.md §4.3 cum columns, from floors and MMRs alone."""
    published = {
        "2022-05-21": [0, 50, 1300, 16300, 266300, 1266300, 2516300, 5016300, 25016300, 100016300],
        "2024-05-30": [0, 50, 950, 11450, 131450, 481450, 2981450, 14481450, 26481450, 41481450,
                       121481450, 421481450],
        "2025-08-21": [0, 300, 1500, 12000, 132000, 482000, 2982000, 14482000, 26482000,
                       41482000, 121482000, 421482000],
    }  # fmt: skip
    schedule = binance_btcusdt_schedule()
    for date, cums in published.items():
        table = schedule.at(date)
        assert table.rows["maintenance_amount_settle"].tolist() == cums
    # the 2020 FAQ levels 3-5 [binance_cum_level3, binance_cum_level5_2020]
    assert schedule.at("2020-01-01").rows["maintenance_amount_settle"].tolist() == [
        0,
        50,
        1300,
        16300,
        141300,
    ]
    assert maintenance_amounts([0, 10, 20], [0.01, 0.02, 0.03]).tolist() == [0.0, 0.1, 0.3]


def test_coinm_eras_reproduce_both_published_cums() -> None:
    schedule = binance_btcusd_perp_schedule()
    old, new = schedule.tables
    assert old.rows["maintenance_amount_settle"][3:7].tolist() == [0.56, 1.81, 6.81, 11.81]
    assert new.rows["maintenance_amount_settle"][6] == 11.605


# --------------------------------------------------------------------------- generators


def test_okx_2019_schedule_rule() -> None:
    table = okx_btc_usd_swap_2019()
    assert len(table) == 187
    tier10 = table.rows[9]
    assert (tier10["min_size"], tier10["max_size"], tier10["maintenance_margin_rate"]) == (
        120_000,
        129_999,
        0.05,
    )
    assert tier10["max_leverage"] == 8
    last = table.rows[-1]
    assert (last["min_size"], last["max_size"], last["max_leverage"]) == (1_890_000, 1_899_999, 1)
    assert last["maintenance_margin_rate"] == pytest.approx(0.935, abs=1e-12)
    september = okx_btc_usd_swap_2019_09()
    tier3 = september.rows[2]  # the page's example: 22,000 contracts, 1.5 %, 2.0 %, 50x
    assert (tier3["max_size"], tier3["maintenance_margin_rate"]) == (22_000, 0.015)
    assert (tier3["initial_margin_rate"], tier3["max_leverage"]) == (0.02, 50.0)
    assert september.rows[-1]["maintenance_margin_rate"] == 0.5
    assert september.rows[0]["max_size"] == 2_000  # tier-1 max [okx_partial_liq_example]
    schedule = okx_coinm_2019_schedule()
    assert schedule.at("2019-07-01") == table
    assert schedule.at("2019-10-01") == september


def test_bitmex_risk_limit_steps() -> None:
    table = bitmex_risk_limits()
    assert table.rows["max_size"].tolist() == [200, 300, 400, 500]
    assert table.rows["maintenance_margin_rate"].tolist() == pytest.approx(
        [0.004, 0.008, 0.012, 0.016], abs=1e-15
    )
    assert table.rows["initial_margin_rate"].tolist() == pytest.approx(
        [0.010, 0.014, 0.018, 0.022], abs=1e-15
    )
    # [bitmex_risk_limit_mm_180]: 180 XBT at the base 0.40 % -> 0.72 XBT
    assert table.lookup(180)["maintenance_margin_rate"] * 180 == pytest.approx(0.72, abs=1e-12)
    with pytest.raises(ValueError, match="step_coin: expected a value > 0"):
        bitmex_risk_limits(step_coin=0)


def test_okx_usdt_and_usd_tables() -> None:
    usdt = okx_btc_usdt_swap_2026_table()
    assert len(usdt) == 99
    assert usdt.rows[1]["min_size"] == 1_000.01
    assert (usdt.rows[-1]["max_size"], usdt.rows[-1]["maintenance_margin_rate"]) == (
        1_940_000,
        0.4875,
    )
    usd = okx_btc_usd_swap_2020_table()
    assert usd.rows["maintenance_margin_rate"].tolist() == [0.005, 0.01, 0.015, 0.02]
    assert "galoy" in usd.source


# --------------------------------------------------------------------------- ccxt loader


def test_tiers_from_ccxt_okx_contract_basis_keeps_imr_and_no_cum() -> None:
    response = {
        "BTC/USDT:USDT": [
            {"tier": 1, "minNotional": 0, "maxNotional": 1000, "maintenanceMarginRate": 0.004,
             "maxLeverage": 100, "info": {"imr": "0.01", "minSz": "0", "maxSz": "1000"}},
            {"tier": 2, "minNotional": 1000.01, "maxNotional": 5000,
             "maintenanceMarginRate": 0.005, "maxLeverage": 66.66,
             "info": {"imr": "0.015", "minSz": "1000.01", "maxSz": "5000"}},
        ]
    }  # fmt: skip
    table = tiers_from_ccxt(response, "BTC/USDT:USDT", TierBasis.CONTRACTS, "2026-05-12")
    assert table.basis == TierBasis.CONTRACTS
    assert table.rows["initial_margin_rate"].tolist() == [0.01, 0.015]
    assert table.rows["maintenance_amount_settle"].tolist() == [0.0, 0.0]
    assert table.valid_from_ns == to_ns("2026-05-12")
    with pytest.raises(ValueError, match="did you mean 'BTC/USDT:USDT'"):
        tiers_from_ccxt(response, "BTC/USDT:USD", TierBasis.CONTRACTS)


def test_tiers_from_ccxt_binance_without_cum_computes_it() -> None:
    entries = [
        {"tier": k + 1, "minNotional": lo, "maxNotional": hi, "maintenanceMarginRate": mmr,
         "maxLeverage": lev, "info": {}}
        for k, (lo, hi, mmr, lev) in enumerate(
            [(0, 50_000, 0.004, 125), (50_000, 250_000, 0.005, 100), (250_000, None, 0.01, 50)]
        )
    ]  # fmt: skip
    table = tiers_from_ccxt(entries, "BTC/USDT", TierBasis.NOTIONAL_QUOTE)
    assert table.rows["maintenance_amount_settle"].tolist() == [0, 50, 1300]
    assert table.rows["max_size"][-1] == np.inf
    assert table.rows["initial_margin_rate"][0] == pytest.approx(0.008)
    bad = [dict(entries[0], maintenanceMarginRate="x")]
    with pytest.raises(ValueError, match="tier entry 0: maintenanceMarginRate: expected a number"):
        tiers_from_ccxt(bad, "BTC/USDT", TierBasis.NOTIONAL_QUOTE)


# --------------------------------------------------------------------------- file loaders


def test_load_binance_snapshot_from_a_dated_folder(tmp_path) -> None:
    folder = tmp_path / "2023-01-02_abcdef1234"
    folder.mkdir()
    entries = [
        {"tier": 1.0, "minNotional": 0.0, "maxNotional": 50000.0, "maintenanceMarginRate": 0.004,
         "maxLeverage": 125.0, "info": {"cum": "0.0"}},
        {"tier": 2.0, "minNotional": 50000.0, "maxNotional": 250000.0,
         "maintenanceMarginRate": 0.005, "maxLeverage": 100.0, "info": {"cum": "50.0"}},
    ]  # fmt: skip
    path = folder / "binance_leverage_tiers.json"
    path.write_text(json.dumps({"BTC/USDT:USDT": entries}))
    table = load_binance_snapshot(path, "BTCUSDT")
    assert table.valid_from_ns == to_ns("2023-01-02")
    assert table.rows["maintenance_amount_settle"].tolist() == [0.0, 50.0]
    assert load_binance_snapshots(tmp_path, "BTC/USDT").latest == table
    undated = tmp_path / "plain.json"
    undated.write_text(json.dumps({"BTC/USDT:USDT": entries}))
    with pytest.raises(ValueError, match="valid_from: not given and no '<YYYY-MM-DD>_<commit>'"):
        load_binance_snapshot(undated, "BTC/USDT")
    assert load_binance_snapshot(undated, "BTC/USDT", valid_from=7).valid_from_ns == 7
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable JSON tier snapshot"):
        load_binance_snapshot(broken, "BTC/USDT", valid_from=0)


def test_load_okx_tier_csv_checks_columns_and_numbers(tmp_path) -> None:
    good = tmp_path / "tiers.csv"
    good.write_text(
        "tier,minSz,maxSz,mmr,imr,maxLever\n1,0,1000,0.004,0.01,100\n2,1000.01,5000,0.005,0.015,66.66\n"
    )
    table = load_okx_tier_csv(good, valid_from="2026-05-12")
    assert table.rows["max_size"].tolist() == [1000.0, 5000.0]
    assert table.valid_from_ns == to_ns("2026-05-12")
    missing = tmp_path / "missing.csv"
    missing.write_text("tier,minSz,maxSz,mmr\n1,0,1000,0.004\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['imr', 'maxLever'\]"):
        load_okx_tier_csv(missing)
    bad = tmp_path / "bad.csv"
    bad.write_text("tier,minSz,maxSz,mmr,imr,maxLever\n1,0,abc,0.004,0.01,100\n")
    with pytest.raises(ValueError, match=r"bad\.csv, line 2: expected numbers"):
        load_okx_tier_csv(bad)


def test_to_ns_accepts_dates_and_refuses_junk() -> None:
    assert to_ns("1970-01-01T00:00:01Z") == 1_000_000_000
    assert to_ns(np.datetime64("2020-01-01", "ns")) == to_ns("2020-01-01")
    assert to_ns(5) == 5
    with pytest.raises(ValueError, match="valid_from: expected nanoseconds"):
        to_ns("yesterday-ish")
    with pytest.raises(TypeError, match="valid_from: expected nanoseconds"):
        to_ns(True)
