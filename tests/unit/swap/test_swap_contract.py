"""ContractSpec validation, leverage checks, built-ins and to_params."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from backtester.dtypes import CONTRACT_PARAMS_DTYPE, TIER_DTYPE
from backtester.enums import (
    AdlRule,
    ContractKind,
    LiquidationRule,
    MarkPriceMethod,
    PartialLiquidationRule,
    TierBasis,
)
from backtester.swap.contract import ContractSpec, get_contract, list_contracts
from backtester.swap.tiers import to_ns

HOUR_NS = 3_600_000_000_000
INV, LIN = ContractKind.INVERSE, ContractKind.LINEAR
CASES_PATH = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "cases.json"


def test_builtin_names() -> None:
    assert list_contracts() == [
        "binance_coinm:BTCUSD_PERP",
        "binance_usdm:BTCUSDT",
        "bitmex:XBTUSD",
        "okx:BTC-USD-SWAP",
        "okx:BTC-USDT-SWAP",
        "okx_coinm_2019:BTC-USD-SWAP",
    ]


@pytest.mark.parametrize(
    ("name", "kind", "face", "tick", "lot", "settle", "basis"),
    [
        ("okx_coinm_2019:BTC-USD-SWAP", INV, 100.0, 0.1, 1.0, "BTC", TierBasis.CONTRACTS),
        ("okx:BTC-USD-SWAP", INV, 100.0, 0.1, 1.0, "BTC", TierBasis.CONTRACTS),
        ("okx:BTC-USDT-SWAP", LIN, 0.01, 0.1, 0.01, "USDT", TierBasis.CONTRACTS),
        ("binance_usdm:BTCUSDT", LIN, 1.0, 0.1, 0.001, "USDT", TierBasis.NOTIONAL_QUOTE),
        ("binance_coinm:BTCUSD_PERP", INV, 100.0, 0.1, 1.0, "BTC", TierBasis.NOTIONAL_COIN),
        ("bitmex:XBTUSD", INV, 1.0, 0.5, 1.0, "XBT", TierBasis.NOTIONAL_COIN),
    ],
)
def test_builtin_specs(name, kind, face, tick, lot, settle, basis) -> None:
    spec = get_contract(name)
    assert spec.name == name
    assert (spec.contract_kind, spec.face_value, spec.tick_size, spec.lot_size) == (
        kind,
        face,
        tick,
        lot,
    )
    assert (spec.settle_currency, spec.tiers.basis) == (settle, basis)


def test_okx_lv1_fees_match_case() -> None:
    if not CASES_PATH.exists():
        pytest.skip(f"needs {CASES_PATH}, not present")
    case = next(c for c in json.loads(CASES_PATH.read_text()) if c["id"] == "okx_fee_swap_lv1")
    for name in ("okx:BTC-USDT-SWAP", "okx:BTC-USD-SWAP"):
        spec = get_contract(name)
        assert (spec.maker_fee_rate, spec.taker_fee_rate) == (
            case["expected"]["maker"],
            case["expected"]["taker"],
        )
    assert get_contract("bitmex:XBTUSD").taker_fee_rate == 0.00075


def test_unknown_contract_and_venue_suggest() -> None:
    with pytest.raises(
        ValueError, match="unknown contract 'okx:BTC-USDT-SWPA'; did you mean 'okx:BTC-USDT-SWAP'"
    ):
        get_contract("okx:BTC-USDT-SWPA")
    base = get_contract("okx:BTC-USDT-SWAP")
    with pytest.raises(ValueError, match="unknown venue profile 'okex'; did you mean 'okx'"):
        dataclasses.replace(base, profile="okex")
    assert dataclasses.replace(base, profile="bitmex").profile.name == "bitmex"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("face_value", -100.0, r"face_value: expected a finite value > 0, got -100.0"),
        ("lot_size", 0.0, r"lot_size: expected a finite value > 0, got 0.0"),
        ("min_size", -1.0, r"min_size: expected a finite value > 0, got -1.0"),
        ("tick_size", float("nan"), r"tick_size: expected a finite value > 0, got nan"),
        ("taker_fee_rate", 0.05, r"taker_fee_rate: expected a value in \[-0.01, 0.01\], got 0.05"),
        ("contract_kind", 5, r"contract_kind: expected one of \['LINEAR', 'INVERSE'\], got 5"),
        ("settle_currency", "", r"settle_currency: expected a currency code"),
    ],
)
def test_validation_names_field_and_range(field: str, value: object, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        dataclasses.replace(get_contract("okx:BTC-USD-SWAP"), **{field: value})


def test_check_leverage_against_the_tier_maximum() -> None:
    spec = get_contract("okx:BTC-USDT-SWAP")
    assert spec.check_leverage(100, 10, 60_000) == 100.0
    with pytest.raises(ValueError, match="leverage") as error:
        spec.check_leverage(150, 10, 60_000)
    assert "leverage: expected a value in [1, 100] for tier 1 of okx:BTC-USDT-SWAP" in str(
        error.value
    )
    assert "got 150" in str(error.value)
    with pytest.raises(ValueError, match=r"leverage: expected a value in \[1, 50\] for tier 3"):
        spec.check_leverage(60, 10_000, 60_000)
    with pytest.raises(ValueError, match=r"leverage: expected a value in \[1, 100\]"):
        spec.check_leverage(0.5, 10, 60_000)
    with pytest.raises(ValueError, match="contracts: expected a finite value >= 0, got -5"):
        spec.check_leverage(10, -5, 60_000)
    with pytest.raises(ValueError, match="price: expected a finite value > 0, got 0"):
        spec.check_leverage(10, 5, 0)
    # Binance USDⓈ-M in 2022: 30 BTC at 40,000 = 1.2M USDT -> tier 4, 20x
    usdm = get_contract("binance_usdm:BTCUSDT")
    assert usdm.check_leverage(20, 30, 40_000, at_ns="2022-06-01") == 20.0
    with pytest.raises(ValueError, match=r"\[1, 20\] for tier 4"):
        usdm.check_leverage(25, 30, 40_000, at_ns="2022-06-01")


def test_to_params_okx_coinm_2019() -> None:
    spec = get_contract("okx_coinm_2019:BTC-USD-SWAP")
    params, tiers = spec.to_params(to_ns("2019-06-15"))
    assert params.dtype == CONTRACT_PARAMS_DTYPE
    assert params.shape == (1,)
    assert tiers.dtype == TIER_DTYPE
    assert len(tiers) == 187
    p = params[0]
    assert p["contract_kind"] == ContractKind.INVERSE
    assert (p["face_value"], p["tick_size_quote"], p["lot_size_contracts"]) == (100.0, 0.1, 1.0)
    assert (p["maker_fee_rate"], p["taker_fee_rate"], p["liquidation_fee_rate"]) == (
        0.0002,
        0.00075,
        0.00075,
    )
    assert p["liquidation_rule"] == LiquidationRule.OKX_LEGACY
    assert p["partial_liquidation_rule"] == PartialLiquidationRule.TO_TIER_1
    assert p["partial_liquidation_min_tier"] == 3
    assert (p["tier_basis"], p["tier_offset"], p["tier_count"]) == (TierBasis.CONTRACTS, 0, 187)
    assert p["mark_price_method"] == MarkPriceMethod.INDEX_EMA_BASIS
    assert (p["mark_ema_span"], p["mark_sample_ns"]) == (10.0, 60_000_000_000)
    assert (p["funding_interval_ns"], p["daily_settlement"]) == (8 * HOUR_NS, True)
    assert p["settlement_offset_ns"] == 8 * HOUR_NS
    assert (p["adl_rule"], p["max_leverage"]) == (AdlRule.CLAWBACK, 100.0)
    later, later_tiers = spec.to_params("2019-10-01")
    assert later[0]["tier_count"] == 100 == len(later_tiers)
    assert later_tiers[0]["max_size"] == 2_000
    tiers[0]["max_size"] = 1.0  # a writable copy: the spec's table is untouched
    assert spec.tiers.at("2019-06-15").rows[0]["max_size"] == 999
    with pytest.raises(ValueError, match="precedes the first tier table"):
        spec.to_params("2019-01-01")


def test_to_params_liquidation_fee_follows_taker_where_the_venue_says_so() -> None:
    okx = get_contract("okx:BTC-USDT-SWAP").with_fees(0.0001, 0.0004)
    params, tiers = okx.to_params("2024-01-01")
    assert params[0]["liquidation_fee_rate"] == 0.0004
    assert params[0]["liquidation_rule"] == LiquidationRule.OKX_MGN_RATIO
    assert params[0]["daily_settlement"] == False  # noqa: E712  (numpy bool)
    assert len(tiers) == 99
    binance, _ = (
        get_contract("binance_usdm:BTCUSDT").with_fees(0.0001, 0.0004).to_params("2024-01-01")
    )
    assert binance[0]["liquidation_fee_rate"] == 0.003
    assert binance[0]["max_leverage"] == 125.0
    assert binance[0]["tier_basis"] == TierBasis.NOTIONAL_QUOTE


def test_a_single_table_is_wrapped_in_a_schedule() -> None:
    base = get_contract("okx:BTC-USD-SWAP")
    spec = dataclasses.replace(base, tiers=base.tiers.latest)
    assert len(spec.tiers) == 1
    assert spec.tiers.latest == base.tiers.latest
    with pytest.raises(TypeError, match="tiers: expected a TierSchedule or TierTable"):
        dataclasses.replace(base, tiers=[1, 2])
    assert isinstance(spec, ContractSpec)
