"""One source per liquidation rule: the terms table, its refusal of unknown values, and every
user of it (margin ratio, requirement, isolated liquidation price, the report's threshold)
agreeing with the venue formulas written out by hand here."""

from __future__ import annotations

import pytest

from backtester.enums import ContractKind, LiquidationRule, MarginRatioForm
from backtester.swap.liquidation_nb import liquidation_price_nb
from backtester.swap.margin_nb import (
    is_liquidation_triggered_nb,
    liquidation_requirement_nb,
    liquidation_rule_terms_nb,
    margin_ratio_nb,
    margin_ratio_threshold_nb,
)

UNKNOWN_RULE = max(LiquidationRule) + 1


def test_every_rule_has_terms() -> None:
    # MECHANICS.md §4.2/§5.1: which terms each venue's requirement holds
    expected = {
        LiquidationRule.OKX_LEGACY: (MarginRatioForm.BALANCE_OVER_VALUE, 1.0, False),
        LiquidationRule.OKX_MGN_RATIO: (MarginRatioForm.BALANCE_OVER_REQUIREMENT, 1.0, True),
        LiquidationRule.BINANCE: (MarginRatioForm.MAINTENANCE_OVER_BALANCE, 0.0, True),
        LiquidationRule.BITMEX: (MarginRatioForm.BALANCE_OVER_MAINTENANCE, 1.0, True),
        LiquidationRule.BYBIT: (MarginRatioForm.BALANCE_OVER_MAINTENANCE, 1.0, True),
    }
    assert set(expected) == set(LiquidationRule)  # a new rule needs its row here too
    for rule, terms in expected.items():
        assert liquidation_rule_terms_nb(int(rule)) == terms


@pytest.mark.parametrize(
    "call",
    [
        lambda r: liquidation_rule_terms_nb(r),
        lambda r: margin_ratio_nb(r, 50.0, 20.0, 1000.0, 0.01),
        lambda r: liquidation_requirement_nb(r, 20.0, 1000.0, 0.02, 0.01),
        lambda r: is_liquidation_triggered_nb(r, 50.0, 20.0, 1000.0, 0.02, 0.01),
        lambda r: margin_ratio_threshold_nb(r, 0.02, 0.01),
        lambda r: liquidation_price_nb(
            r, int(ContractKind.LINEAR), 1, 1.0, 1.0, 100.0, 10.0, 0.01, 0.0, 0.001
        ),
    ],
)
def test_an_unknown_rule_is_refused_not_defaulted(call) -> None:
    with pytest.raises(ValueError, match="liquidation_rule: expected a LiquidationRule"):
        call(UNKNOWN_RULE)


@pytest.mark.parametrize("rule", list(LiquidationRule))
def test_threshold_is_the_ratio_at_the_trigger(rule: LiquidationRule) -> None:
    # tier-1 position (cum 0), binary-exact: PV 1024, MMR 2^-6, fee 2^-7
    pv, mmr, fee = 1024.0, 0.015625, 0.0078125
    mm = pv * mmr  # 16
    # requirement by hand: Binance MM; every other venue MM + fee·PV (OKEx 2019: PV·(MMR + fee))
    balance = mm if rule == LiquidationRule.BINANCE else mm + fee * pv
    assert is_liquidation_triggered_nb(int(rule), balance, mm, pv, mmr, fee)
    level = margin_ratio_threshold_nb(int(rule), mmr, fee)
    by_hand = {
        LiquidationRule.OKX_LEGACY: mmr + fee,  # (margin + UPL)/PV ≤ MMR + fee
        LiquidationRule.OKX_MGN_RATIO: 1.0,  # mgnRatio ≤ 100 %
        LiquidationRule.BINANCE: 1.0,  # MM / margin balance ≥ 100 %
        LiquidationRule.BITMEX: (mmr + fee) / mmr,  # balance / MM at MM + close commission
        LiquidationRule.BYBIT: (mmr + fee) / mmr,
    }[rule]
    assert level == by_hand
    # the displayed ratio at the trigger balance is the threshold
    assert margin_ratio_nb(int(rule), balance, mm, pv, fee) == level


@pytest.mark.parametrize("rule", list(LiquidationRule))
def test_isolated_liquidation_price_hits_the_same_requirement(rule: LiquidationRule) -> None:
    # linear long 2 contracts × 0.5 face at 100, margin 10, MMR 1 %, cum 0.25, fee 0.1 %
    n, face, entry, margin, mmr, cum, fee = 2.0, 0.5, 100.0, 10.0, 0.01, 0.25, 0.001
    price = liquidation_price_nb(
        int(rule), int(ContractKind.LINEAR), 1, n, face, entry, margin, mmr, cum, fee
    )
    pv = n * face * price
    balance = margin + n * face * (price - entry)
    # by hand per venue (MECHANICS.md §5.2): k = MMR + fee except Binance; cum except OKEx 2019
    k = mmr if rule == LiquidationRule.BINANCE else mmr + fee
    c = 0.0 if rule == LiquidationRule.OKX_LEGACY else cum
    assert balance == pytest.approx(k * pv - c, rel=1e-12)
