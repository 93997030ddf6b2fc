"""Venue profiles: built-ins, validation and the TOML/JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backtester.enums import AdlRule, LiquidationRule, MarkPriceMethod, PartialLiquidationRule
from backtester.swap.profiles import (
    VenueProfile,
    dump_profile,
    get_profile,
    list_profiles,
    load_profile,
    profile_to_dict,
)

HOUR_NS = 3_600_000_000_000
NAMES = ["binance_coinm", "binance_usdm", "bitmex", "okx", "okx_coinm_2019"]


def test_builtin_names() -> None:
    assert list_profiles() == NAMES


def test_okx_coinm_2019_rules() -> None:
    p = get_profile("okx_coinm_2019")
    assert p.liquidation_rule == LiquidationRule.OKX_LEGACY
    assert p.partial_liquidation_rule == PartialLiquidationRule.TO_TIER_1
    assert p.partial_liquidation_min_tier == 3
    assert (p.daily_settlement, p.settlement_offset_ns) == (True, 8 * HOUR_NS)
    assert p.adl_rule == AdlRule.CLAWBACK
    assert p.liquidation_fee_rate == 0.00075
    assert p.funding_interval_ns == 8 * HOUR_NS


def test_other_builtins() -> None:
    okx = get_profile("okx")
    assert okx.liquidation_rule == LiquidationRule.OKX_MGN_RATIO
    assert okx.partial_liquidation_rule == PartialLiquidationRule.TWO_TIERS_PER_STEP
    assert "era-dependent" in okx.sources["partial_liquidation_rule"]
    assert okx.liquidation_fee_equals_taker
    assert okx.liquidation_fee_for(0.0004) == 0.0004
    assert (okx.maker_fee_rate, okx.taker_fee_rate, okx.adl_rule) == (
        0.0002,
        0.0005,
        AdlRule.ADL_OKX,
    )
    assert not okx.daily_settlement
    bitmex = get_profile("bitmex")
    assert bitmex.liquidation_rule == LiquidationRule.BITMEX
    assert bitmex.mark_price_method == MarkPriceMethod.FUNDING_BASIS
    assert bitmex.partial_liquidation_rule == PartialLiquidationRule.ONE_TIER_PER_STEP
    assert (bitmex.adl_rule, bitmex.taker_fee_rate) == (AdlRule.ADL_BITMEX, 0.00075)
    for name in ("binance_usdm", "binance_coinm"):
        binance = get_profile(name)
        assert binance.liquidation_rule == LiquidationRule.BINANCE
        assert binance.mark_price_method == MarkPriceMethod.BINANCE_MEDIAN
        assert binance.liquidation_fee_rate == 0.003
        assert binance.liquidation_fee_for(0.0005) == 0.003


@pytest.mark.parametrize("name", NAMES)
def test_every_rule_value_has_a_source(name: str) -> None:
    p = get_profile(name)
    for key in ("liquidation_rule", "liquidation_fee_rate", "mark_price_method", "adl_rule",
                "maker_fee_rate", "taker_fee_rate", "funding_interval_ns"):  # fmt: skip
        assert len(p.sources[key]) > 10, key


def test_unknown_profile_suggests_a_name() -> None:
    with pytest.raises(ValueError, match="did you mean") as error:
        get_profile("binanse_usdm")
    assert "unknown venue profile 'binanse_usdm'; did you mean 'binance_usdm'?" in str(error.value)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize("name", NAMES)
def test_round_trip(tmp_path: Path, name: str, suffix: str) -> None:
    profile = get_profile(name)
    path = dump_profile(profile, tmp_path / f"{name}{suffix}")
    loaded = load_profile(path)
    assert loaded == profile
    assert profile_to_dict(loaded) == profile_to_dict(profile)


def _write(tmp_path: Path, changes: dict, drop: str | None = None) -> Path:
    data = profile_to_dict(get_profile("okx"))
    data.update(changes)
    if drop:
        del data[drop]
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("changes", "drop", "expected"),
    [
        (
            {"liquidation_rulle": "BINANCE"},
            None,
            "unknown key 'liquidation_rulle'; did you mean 'liquidation_rule'",
        ),
        (
            {"liquidation_rule": "BINANSE"},
            None,
            "liquidation_rule: unknown value 'BINANSE'; did you mean 'BINANCE'",
        ),
        ({"taker_fee_rate": 0.5}, None, "taker_fee_rate: expected a value in [-0.01, 0.01]"),
        (
            {"partial_liquidation_min_tier": 0},
            None,
            "partial_liquidation_min_tier: expected an integer >= 1, got 0",
        ),
        (
            {"settlement_offset_ns": 25 * HOUR_NS},
            None,
            "settlement_offset_ns: expected an integer [0, 86399999999999]",
        ),
        ({"funding_interval_ns": 8.5}, None, "funding_interval_ns: expected an integer, got 8.5"),
        ({"daily_settlement": "yes"}, None, "daily_settlement: expected true or false"),
        ({"mark_ema_span": 0.0}, None, "mark_ema_span: expected a value >= 1 for INDEX_EMA_BASIS"),
        (
            {"sources": {"taker_fee": "x"}},
            None,
            "sources: unknown field 'taker_fee'; did you mean 'taker_fee_rate'",
        ),
        ({}, "adl_rule", "missing key(s) ['adl_rule']"),
    ],
)
def test_load_errors_name_file_and_key(
    tmp_path: Path, changes: dict, drop: str | None, expected: str
) -> None:
    path = _write(tmp_path, changes, drop)
    with pytest.raises((ValueError, TypeError)) as error:
        load_profile(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_load_errors_for_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.toml: cannot parse"):
        load_profile(bad)
    other = tmp_path / "p.yaml"
    other.write_text("x")
    with pytest.raises(ValueError, match=r"expected a \.toml or \.json file"):
        load_profile(other)
    with pytest.raises(ValueError, match="does not exist"):
        load_profile(tmp_path / "missing.toml")


def test_replace_validates_again() -> None:
    p = get_profile("okx").replace(name="okx_vip", taker_fee_rate=0.0003)
    assert (p.name, p.taker_fee_rate) == ("okx_vip", 0.0003)
    assert isinstance(p, VenueProfile)
    with pytest.raises(ValueError, match="did you mean 'taker_fee_rate'"):
        get_profile("okx").replace(taker_fee=0.0003)
