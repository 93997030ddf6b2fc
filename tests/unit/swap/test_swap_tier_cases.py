"""Every ``mmr_tier`` reference case of cases.json, evaluated by the project's tier tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backtester.enums import TierBasis
from backtester.swap.tier_tables import (
    binance_btcusd_perp_schedule,
    binance_btcusdt_schedule,
    bitmex_risk_limits,
    okx_btc_usd_swap_2019,
    okx_btc_usdt_swap_2026_table,
)
from backtester.swap.tiers import TierTable, maintenance_amount, make_tier_rows

CASES_PATH = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "cases.json"
CASES = (
    [c for c in json.loads(CASES_PATH.read_text()) if c["topic"] == "mmr_tier"]
    if CASES_PATH.exists()
    else []
)

# expected key -> how to read it from a tier row
ROW_FIELDS = {
    "mmr": "maintenance_margin_rate",
    "mm": "maintenance_margin_rate",
    "imr": "initial_margin_rate",
    "im": "initial_margin_rate",
    "cum": "maintenance_amount_settle",
    "cum_coin": "maintenance_amount_settle",
    "max_leverage": "max_leverage",
    "tier": "tier",
}


def _row_values(row, expected: dict) -> dict:
    out = {}
    for key in expected:
        if key == "steps":  # BitMEX: risk-limit steps above the base = tier - 1
            out[key] = int(row["tier"]) - 1
        else:
            out[key] = row[ROW_FIELDS[key]].item()
    return out


def _binance_usdt_at(date: str):
    return binance_btcusdt_schedule().at(date)


def evaluate(case: dict) -> list[dict]:
    """Computed values for a case: one dict per table era the case applies to."""
    inputs, expected, case_id = case["inputs"], case["expected"], case["id"]
    if case_id == "bitmex_risk_limit_step":
        table = bitmex_risk_limits(
            base_risk_limit_coin=inputs["base_risk_limit_coin"],
            step_coin=inputs["step_coin"],
            base_maintenance_margin_rate=inputs["base_mm"],
            base_initial_margin_rate=inputs["base_im"],
        )
        return [_row_values(table.lookup(inputs["position_value_coin"]), expected)]
    if case_id in ("binance_cum_level3", "binance_cum_level5_2020", "binance_coinm_cum_level5"):
        suffix = "_coin" if case_id.startswith("binance_coinm") else ""
        cum = maintenance_amount(
            inputs[f"floor_n{suffix}"],
            inputs["mmr_n"],
            inputs["mmr_prev"],
            inputs[f"cum_prev{suffix}"],
        )
        return [{f"cum_n{suffix}": cum}]
    if case_id == "binance_mmr_264k":  # table_era "2020 FAQ"
        return [_row_values(_binance_usdt_at("2020-06-01").lookup(264_000), expected)]
    if case_id == "binance_cum_500k":  # table_era "2020-2022": every table of those years
        dates = ("2020-06-01", "2021-06-01", "2022-05-21", "2022-12-01")
        return [_row_values(_binance_usdt_at(d).lookup(500_000), expected) for d in dates]
    if case_id == "binance_coinm_300btc":  # the newer page's era (11.605 BTC)
        table = binance_btcusd_perp_schedule().at("2021-06-01")
        return [_row_values(table.lookup(inputs["position_coin"]), expected)]
    if case_id.startswith("okx_tier_2019_"):
        return [_row_values(okx_btc_usd_swap_2019().lookup(inputs["contracts"]), expected)]
    if case_id.startswith("okx_usdt_tier_"):
        return [_row_values(okx_btc_usdt_swap_2026_table().lookup(inputs["contracts"]), expected)]
    if case_id.startswith("binance_btcusdt_tier_"):
        table = _binance_usdt_at(inputs["table"])
        return [_row_values(table.lookup(inputs["notional_quote"]), expected)]
    if case_id.startswith("ft_binance_mmr_"):
        tiers = inputs["tiers_[min,max,mmr,maxlev,cum]"]
        rows = make_tier_rows(
            (k + 1, low, high, mmr, None, lev, cum)
            for k, (low, high, mmr, lev, cum) in enumerate(tiers)
        )
        table = TierTable(TierBasis.NOTIONAL_QUOTE, rows, 0, f"case {case_id}")
        return [_row_values(table.lookup(inputs["notional_quote"]), expected)]
    raise KeyError(case_id)


EVALUATED_IDS = {
    "bitmex_risk_limit_step",
    "binance_mmr_264k",
    "binance_cum_500k",
    "binance_cum_level3",
    "binance_cum_level5_2020",
    "binance_coinm_cum_level5",
    "binance_coinm_300btc",
    "okx_tier_2019_10000",
    "okx_tier_2019_1890000",
    "okx_usdt_tier_1",
    "okx_usdt_tier_7",
    "binance_btcusdt_tier_2022",
    "binance_btcusdt_tier_2025",
    "ft_binance_mmr_1",
    "ft_binance_mmr_2",
}


@pytest.mark.parametrize(
    "case",
    CASES
    or [pytest.param(None, marks=pytest.mark.skip(reason=f"needs {CASES_PATH}, not present"))],
    ids=[c["id"] for c in CASES] or ["cases_json_absent"],
)
def test_mmr_tier_case(case: dict) -> None:
    tolerance = case["tolerance"]
    for computed in evaluate(case):
        assert computed.keys() == case["expected"].keys()
        for key, expected in case["expected"].items():
            assert computed[key] == pytest.approx(expected, rel=0, abs=tolerance), (
                f"{case['id']}: {key} = {computed[key]!r}, expected {expected!r} ± {tolerance}"
            )


def test_every_mmr_tier_case_is_evaluated() -> None:
    if not CASES:
        pytest.skip(f"needs {CASES_PATH}, not present")
    assert {c["id"] for c in CASES} == EVALUATED_IDS


def test_binance_coinm_300btc_older_era_gives_the_2021_page_value() -> None:
    """The case's note: the 2021 page says 11.81 BTC; our 2020-08-10 table reproduces it."""
    row = binance_btcusd_perp_schedule().at("2020-12-01").lookup(300.0)
    assert row["maintenance_margin_rate"] == 0.125
    assert row["maintenance_amount_settle"] == pytest.approx(11.81, abs=1e-12)
