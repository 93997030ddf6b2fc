"""Focused unit tests of the swap exchange-rule kernels (``backtester/swap/*_nb.py``).

The worked examples of ``../shared/reference/cases.json`` are in ``test_swap_cases.py``; these
tests cover signs, edge cases, NaN/zero-position behaviour and hand-computed values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtester.dtypes import TIER_DTYPE
from backtester.enums import ContractKind, LiquidationRule, TierBasis
from backtester.swap.fee_nb import fee_nb
from backtester.swap.funding_nb import (
    funding_payment_nb,
    funding_rate_nb,
    interest_rate_nb,
    premium_index_nb,
)
from backtester.swap.margin_nb import (
    initial_margin_nb,
    is_liquidation_triggered_nb,
    liquidation_buffer_nb,
    maintenance_margin_nb,
    margin_ratio_nb,
)
from backtester.swap.mark_nb import (
    clip_mark_nb,
    ema_alpha_nb,
    ema_update_nb,
    funding_basis_mark_nb,
    median_mark_nb,
)
from backtester.swap.pnl_nb import average_entry_price_nb, pnl_nb, position_value_nb
from backtester.swap.tier_nb import contracts_from_tier_size_nb, tier_index_nb, tier_size_nb

LIN = int(ContractKind.LINEAR)
INV = int(ContractKind.INVERSE)
NAN = float("nan")


def make_tiers(bounds: list[tuple[float, float, float, float]]) -> np.ndarray:
    """Tier rows from (min_size, max_size, mmr, cum) tuples, numbered from 1."""
    rows = np.zeros(len(bounds), dtype=TIER_DTYPE)
    for i, (lo, hi, mmr, cum) in enumerate(bounds):
        rows[i]["tier"] = i + 1
        rows[i]["min_size"] = lo
        rows[i]["max_size"] = hi
        rows[i]["maintenance_margin_rate"] = mmr
        rows[i]["initial_margin_rate"] = 2 * mmr
        rows[i]["max_leverage"] = 1 / (2 * mmr)
        rows[i]["maintenance_amount_settle"] = cum
    return rows


# --------------------------------------------------------------------------- tier_nb


def test_tier_size_units() -> None:
    assert tier_size_nb(int(TierBasis.CONTRACTS), INV, 15.0, 100.0, 50_000.0) == 15.0
    assert tier_size_nb(int(TierBasis.NOTIONAL_QUOTE), LIN, 2.0, 0.01, 50_000.0) == 1000.0
    assert tier_size_nb(int(TierBasis.NOTIONAL_QUOTE), INV, 2.0, 100.0, 50_000.0) == 200.0
    assert tier_size_nb(int(TierBasis.NOTIONAL_COIN), INV, 100.0, 100.0, 25_000.0) == 0.4
    assert tier_size_nb(int(TierBasis.NOTIONAL_COIN), LIN, 3.0, 0.01, 25_000.0) == 0.03
    assert math.isnan(tier_size_nb(int(TierBasis.NOTIONAL_COIN), INV, 1.0, 100.0, 0.0))


@pytest.mark.parametrize("basis", list(TierBasis))
@pytest.mark.parametrize("kind", [LIN, INV])
def test_contracts_from_tier_size_inverts_tier_size(basis: TierBasis, kind: int) -> None:
    size = tier_size_nb(int(basis), kind, 1234.0, 0.5, 321.0)
    assert contracts_from_tier_size_nb(int(basis), kind, size, 0.5, 321.0) == pytest.approx(
        1234.0, rel=1e-14
    )


def test_tier_index_lower_bound_inclusive_and_clamped() -> None:
    # Binance-style notional brackets: floor inclusive.
    tiers = make_tiers(
        [(0, 50_000, 0.004, 0), (50_000, 250_000, 0.005, 50), (250_000, 1e6, 0.01, 1300)]
    )
    assert tier_index_nb(tiers, 0, 3, 0.0) == 0
    assert tier_index_nb(tiers, 0, 3, 49_999.99) == 0
    assert tier_index_nb(tiers, 0, 3, 50_000.0) == 1
    assert tier_index_nb(tiers, 0, 3, 264_000.0) == 2
    assert tier_index_nb(tiers, 0, 3, 5e9) == 2  # above the last tier: last tier
    assert tier_index_nb(tiers, 0, 3, -1.0) == 0  # below the first: first
    assert tier_index_nb(tiers, 0, 0, 10.0) == -1  # empty table


def test_tier_index_uses_offset_into_shared_array() -> None:
    a = make_tiers([(0, 10, 0.01, 0), (11, 20, 0.02, 0)])
    b = make_tiers([(0, 1000, 0.005, 0), (1001, 5000, 0.01, 0), (5001, 9000, 0.02, 0)])
    tiers = np.concatenate([a, b])
    assert tier_index_nb(tiers, 2, 3, 1000.0) == 2
    assert tier_index_nb(tiers, 2, 3, 1000.5) == 2  # OKX: min = previous max + 1
    assert tier_index_nb(tiers, 2, 3, 1001.0) == 3
    assert tier_index_nb(tiers, 2, 3, 99_999.0) == 4
    assert tier_index_nb(tiers, 0, 2, 99_999.0) == 1


# --------------------------------------------------------------------------- pnl_nb


def test_position_value() -> None:
    assert position_value_nb(LIN, 10.0, 0.01, 20_000.0) == pytest.approx(2000.0, rel=1e-15)
    assert position_value_nb(INV, 10.0, 100.0, 20_000.0) == 0.05
    assert math.isnan(position_value_nb(INV, 10.0, 100.0, 0.0))


def test_pnl_signs() -> None:
    assert pnl_nb(LIN, 2.0, 1.0, 100.0, 110.0) == 20.0
    assert pnl_nb(LIN, -2.0, 1.0, 100.0, 110.0) == -20.0
    assert pnl_nb(INV, 100.0, 1.0, 100.0, 200.0) == pytest.approx(0.5, rel=1e-15)
    assert pnl_nb(INV, -100.0, 1.0, 100.0, 200.0) == pytest.approx(-0.5, rel=1e-15)
    # inverse long loses more coin going down than it gains going up by the same amount
    assert pnl_nb(INV, 1.0, 100.0, 100.0, 50.0) == pytest.approx(-1.0, rel=1e-15)
    assert pnl_nb(INV, 1.0, 100.0, 100.0, 150.0) == pytest.approx(1 / 3, rel=1e-15)


def test_pnl_zero_position_and_bad_prices() -> None:
    assert pnl_nb(INV, 0.0, 100.0, NAN, 0.0) == 0.0
    assert pnl_nb(LIN, 0.0, 1.0, NAN, 5.0) == 0.0
    assert math.isnan(pnl_nb(INV, 1.0, 100.0, 100.0, 0.0))
    assert math.isnan(pnl_nb(LIN, 1.0, 1.0, NAN, 5.0))


def test_average_entry_price() -> None:
    assert average_entry_price_nb(LIN, 1.0, 100.0, 3.0, 200.0) == 175.0
    assert average_entry_price_nb(INV, 1.0, 60_000.0, 1.0, 40_000.0) == pytest.approx(48_000.0)
    assert average_entry_price_nb(INV, 0.0, NAN, 5.0, 123.0) == 123.0  # opening a position
    assert average_entry_price_nb(LIN, 5.0, 123.0, 0.0, NAN) == 123.0  # nothing added
    assert math.isnan(average_entry_price_nb(LIN, 0.0, 1.0, 0.0, 1.0))


# --------------------------------------------------------------------------- fee_nb


def test_fee_paid_and_rebate() -> None:
    assert fee_nb(LIN, 10.0, 0.01, 20_000.0, 0.0005) == pytest.approx(1.0, rel=1e-14)
    assert fee_nb(LIN, 10.0, 0.01, 20_000.0, -0.0002) == pytest.approx(-0.4, rel=1e-14)
    assert fee_nb(INV, 100.0, 100.0, 20_000.0, 0.0005) == pytest.approx(0.00025, rel=1e-14)
    assert fee_nb(INV, 0.0, 100.0, 20_000.0, 0.0005) == 0.0


# --------------------------------------------------------------------------- margin_nb


def test_initial_and_maintenance_margin() -> None:
    assert initial_margin_nb(INV, 100.0, 100.0, 10_000.0, 10.0) == pytest.approx(0.1, rel=1e-15)
    assert math.isnan(initial_margin_nb(LIN, 1.0, 1.0, 100.0, 0.0))
    assert maintenance_margin_nb(264_000.0, 0.01, 1300.0) == pytest.approx(1340.0, rel=1e-15)


def test_margin_ratio_per_rule() -> None:
    bal, mm, pv, fee = 50.0, 20.0, 1000.0, 0.01
    assert margin_ratio_nb(int(LiquidationRule.OKX_LEGACY), bal, mm, pv, fee) == 0.05
    assert margin_ratio_nb(int(LiquidationRule.OKX_MGN_RATIO), bal, mm, pv, fee) == 50 / 30
    assert margin_ratio_nb(int(LiquidationRule.BINANCE), bal, mm, pv, fee) == 0.4
    assert margin_ratio_nb(int(LiquidationRule.BITMEX), bal, mm, pv, fee) == 2.5
    assert margin_ratio_nb(int(LiquidationRule.BYBIT), bal, mm, pv, fee) == 2.5
    # Binance with a non-positive margin balance: ratio is infinite (liquidated)
    assert margin_ratio_nb(int(LiquidationRule.BINANCE), -1.0, mm, pv, fee) == math.inf


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (LiquidationRule.OKX_LEGACY, 50 / (1000 * (0.02 + 0.01))),
        (LiquidationRule.OKX_MGN_RATIO, 50 / (15 + 10)),
        (LiquidationRule.BINANCE, 50 / 15),
        (LiquidationRule.BITMEX, 50 / 25),
        (LiquidationRule.BYBIT, 50 / 25),
    ],
)
def test_liquidation_buffer_per_rule(rule: LiquidationRule, expected: float) -> None:
    # PV 1000, MMR 2 %, cum 5 → MM 15; fee 1 %
    got = liquidation_buffer_nb(int(rule), 50.0, 15.0, 1000.0, 0.02, 0.01)
    assert got == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("rule", list(LiquidationRule))
def test_trigger_is_buffer_at_most_one(rule: LiquidationRule) -> None:
    # binary-exact inputs: PV 1024, MMR 2^-6, fee 2^-7, MM 16 → requirement 24 (BINANCE: 16)
    req = 16.0 if rule == LiquidationRule.BINANCE else 24.0
    args = (16.0, 1024.0, 0.015625, 0.0078125)
    assert is_liquidation_triggered_nb(int(rule), req, *args)  # equality triggers
    assert is_liquidation_triggered_nb(int(rule), req - 1e-9, *args)
    assert not is_liquidation_triggered_nb(int(rule), req + 1e-9, *args)
    assert is_liquidation_triggered_nb(int(rule), -5.0, *args)  # negative balance
    assert liquidation_buffer_nb(int(rule), req, *args) == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("rule", list(LiquidationRule))
def test_trigger_false_without_position_or_on_nan(rule: LiquidationRule) -> None:
    assert not is_liquidation_triggered_nb(int(rule), -5.0, 0.0, 0.0, 0.01, 0.001)
    assert liquidation_buffer_nb(int(rule), -5.0, 0.0, 0.0, 0.01, 0.001) == math.inf
    assert not is_liquidation_triggered_nb(int(rule), NAN, 10.0, 1000.0, 0.01, 0.001)
    assert not is_liquidation_triggered_nb(int(rule), 1.0, 10.0, NAN, 0.01, 0.001)


# --------------------------------------------------------------------------- funding_nb


def test_funding_payment_signs() -> None:
    # positive rate: long pays, short receives; negative rate: reverse
    assert funding_payment_nb(LIN, 10.0, 1.0, 2.0, 0.0001) == pytest.approx(-0.002, rel=1e-14)
    assert funding_payment_nb(LIN, -10.0, 1.0, 2.0, 0.0001) == pytest.approx(0.002, rel=1e-14)
    assert funding_payment_nb(LIN, 10.0, 1.0, 2.0, -0.0001) == pytest.approx(0.002, rel=1e-14)
    assert funding_payment_nb(INV, -15000.0, 1.0, 750.0, 0.0025) == pytest.approx(0.05)
    assert funding_payment_nb(INV, 0.0, 1.0, 750.0, 0.0025) == 0.0
    assert funding_payment_nb(INV, 0.0, 1.0, NAN, NAN) == 0.0


def test_interest_premium_and_rate() -> None:
    assert interest_rate_nb(0.01, 0.0025, 3.0) == pytest.approx(0.0025, rel=1e-15)
    assert math.isnan(interest_rate_nb(0.01, 0.0025, 0.0))
    assert premium_index_nb(101.0, 102.0, 100.0) == pytest.approx(0.01, rel=1e-14)
    assert premium_index_nb(98.0, 99.0, 100.0) == pytest.approx(-0.01, rel=1e-14)
    assert premium_index_nb(99.5, 100.5, 100.0) == 0.0  # index inside the impact spread
    assert math.isnan(premium_index_nb(99.5, 100.5, 0.0))
    # clamp: P far above I → F = P − 0.05 %
    assert funding_rate_nb(0.003, 0.0001, 0.0005, NAN, NAN) == pytest.approx(0.0025, rel=1e-12)
    assert funding_rate_nb(-0.003, 0.0001, 0.0005, NAN, NAN) == pytest.approx(-0.0025, rel=1e-12)
    # cap and floor
    assert funding_rate_nb(0.01, 0.0001, 0.0005, 0.00375, -0.00375) == 0.00375
    assert funding_rate_nb(-0.01, 0.0001, 0.0005, 0.00375, -0.00375) == -0.00375
    assert funding_rate_nb(0.01, 0.0001, 0.0005, math.inf, -math.inf) == pytest.approx(0.0095)


# --------------------------------------------------------------------------- mark_nb


def test_ema() -> None:
    assert ema_alpha_nb(30.0) == 2 / 31
    assert math.isnan(ema_alpha_nb(-2.0))
    assert ema_update_nb(NAN, 5.0, 0.5, False) == 5.0
    assert ema_update_nb(4.0, 6.0, 0.25, True) == 4.5
    ema = 0.0
    for i, x in enumerate([1.0, 2.0, 3.0]):
        ema = ema_update_nb(ema, x, 0.5, i > 0)
    assert ema == 2.25


def test_mark_variants() -> None:
    hour = 3_600_000_000_000
    assert funding_basis_mark_nb(10_000.0, 0.0003, 4 * hour, 8 * hour) == pytest.approx(10_001.5)
    assert funding_basis_mark_nb(10_000.0, 0.0003, 4 * hour, 0) == 10_000.0
    assert median_mark_nb(1.0, 2.0, 3.0) == 2.0
    assert median_mark_nb(3.0, 1.0, 2.0) == 2.0
    assert median_mark_nb(2.0, 3.0, 1.0) == 2.0
    assert clip_mark_nb(5.0, 4.0, 6.0) == 5.0
    assert clip_mark_nb(7.0, 4.0, 6.0) == 6.0
    assert clip_mark_nb(3.0, 4.0, 6.0) == 4.0
