"""Focused unit tests of the swap exchange-rule kernels (``backtester/swap/*_nb.py``).

The worked examples of ``../shared/reference/cases.json`` are in ``test_swap_cases.py``; these
tests cover signs, edge cases, NaN/zero-position behaviour and hand-computed values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtester.dtypes import TIER_DTYPE
from backtester.enums import ContractKind, LiquidationRule, PartialLiquidationRule, TierBasis
from backtester.swap.fee_nb import fee_nb
from backtester.swap.funding_nb import (
    funding_payment_nb,
    funding_rate_nb,
    interest_rate_nb,
    premium_index_nb,
)
from backtester.swap.insurance_nb import (
    adl_threshold_nb,
    binance_adl_ranking_nb,
    bitmex_adl_ranking_nb,
    clawback_rate_nb,
    insurance_fund_delta_nb,
    is_adl_triggered_nb,
)
from backtester.swap.liquidation_nb import (
    bankruptcy_price_nb,
    bankruptcy_price_with_close_fee_nb,
    bybit_inverse_liquidation_price_nb,
    liquidation_price_cross_nb,
    liquidation_price_nb,
    partial_liquidation_contracts_nb,
    round_liquidation_price_nb,
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
from backtester.swap.settlement_nb import next_settlement_ns_nb, settlement_pnl_nb
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


# --------------------------------------------------------------------------- liquidation_nb


def test_bankruptcy_price_closed_forms() -> None:
    # margin = IM at 10x: linear E·(1 ∓ 1/lev), inverse long E·lev/(lev+1), short E·lev/(lev−1)
    im_lin = initial_margin_nb(LIN, 2.0, 0.5, 1000.0, 10.0)
    assert bankruptcy_price_nb(LIN, 1, 2.0, 0.5, 1000.0, im_lin) == pytest.approx(900.0)
    assert bankruptcy_price_nb(LIN, -1, 2.0, 0.5, 1000.0, im_lin) == pytest.approx(1100.0)
    im_inv = initial_margin_nb(INV, 50.0, 100.0, 1000.0, 10.0)
    assert bankruptcy_price_nb(INV, 1, 50.0, 100.0, 1000.0, im_inv) == pytest.approx(10_000 / 11)
    assert bankruptcy_price_nb(INV, -1, 50.0, 100.0, 1000.0, im_inv) == pytest.approx(10_000 / 9)


def test_bankruptcy_price_nan_when_never_bankrupt() -> None:
    # 1x linear long and ≤ 1x inverse short cannot lose all their margin at a positive price
    assert math.isnan(bankruptcy_price_nb(LIN, 1, 1.0, 1.0, 100.0, 100.0))
    assert math.isnan(bankruptcy_price_nb(INV, -1, 1.0, 100.0, 100.0, 1.0))
    assert math.isnan(bankruptcy_price_nb(LIN, 1, 0.0, 1.0, 100.0, 1.0))  # no position
    assert math.isnan(bankruptcy_price_nb(INV, 1, 1.0, 100.0, NAN, 0.1))


def test_bankruptcy_with_close_fee_is_worse_than_without() -> None:
    plain = bankruptcy_price_nb(INV, 1, 10_000.0, 1.0, 8000.0, 0.5)
    with_fee = bankruptcy_price_with_close_fee_nb(INV, 1, 10_000.0, 1.0, 8000.0, 0.5, 0.00075)
    assert with_fee == pytest.approx(1.00075 * 10_000 / (10_000 / 8000 + 0.5))
    assert with_fee > plain
    assert bankruptcy_price_with_close_fee_nb(INV, 1, 10_000.0, 1.0, 8000.0, 0.5, 0.0) == plain


@pytest.mark.parametrize("rule", list(LiquidationRule))
def test_liquidation_price_okx_glossary_inverse(rule: LiquidationRule) -> None:
    # OKEx IX glossary: isolated long (1 + k)/(1/E + M/(F·N)), short (1 − k)/(1/E − M/(F·N))
    n, f, e, m, mmr, fee = 100.0, 100.0, 10_000.0, 0.02, 0.005, 0.0005
    k = mmr if rule == LiquidationRule.BINANCE else mmr + fee
    long = liquidation_price_nb(int(rule), INV, 1, n, f, e, m, mmr, 0.0, fee)
    short = liquidation_price_nb(int(rule), INV, -1, n, f, e, m, mmr, 0.0, fee)
    assert long == pytest.approx((1 + k) / (1 / e + m / (f * n)), rel=1e-13)
    assert short == pytest.approx((1 - k) / (1 / e - m / (f * n)), rel=1e-13)


def test_liquidation_price_cum_only_where_the_rule_uses_it() -> None:
    args = (LIN, 1, 10.0, 1.0, 100.0, 200.0, 0.01)
    okx_legacy = liquidation_price_nb(int(LiquidationRule.OKX_LEGACY), *args, 5.0, 0.001)
    assert okx_legacy == liquidation_price_nb(int(LiquidationRule.OKX_LEGACY), *args, 0.0, 0.001)
    binance = liquidation_price_nb(int(LiquidationRule.BINANCE), *args, 5.0, 0.001)
    assert binance == pytest.approx((200 + 5 - 1000) / (10 * 0.01 - 10))
    assert binance < liquidation_price_nb(int(LiquidationRule.BINANCE), *args, 0.0, 0.001)


def test_liquidation_price_nan_cases() -> None:
    rule = int(LiquidationRule.BINANCE)
    assert math.isnan(liquidation_price_nb(rule, LIN, 1, 1.0, 1.0, 100.0, 150.0, 0.01, 0.0, 0.0))
    assert math.isnan(liquidation_price_nb(rule, INV, -1, 1.0, 100.0, 100.0, 2.0, 0.01, 0.0, 0.0))
    assert math.isnan(liquidation_price_nb(rule, LIN, 1, 0.0, 1.0, 100.0, 1.0, 0.01, 0.0, 0.0))


def test_round_liquidation_price_to_tick() -> None:
    assert round_liquidation_price_nb(5739.08, 1, 0.5) == 5739.5
    assert round_liquidation_price_nb(5739.08, -1, 0.5) == 5739.0
    assert round_liquidation_price_nb(5739.5, 1, 0.5) == 5739.5  # already on a tick
    assert round_liquidation_price_nb(0.3 + 0.6, 1, 0.1) == pytest.approx(0.9)  # float noise
    assert round_liquidation_price_nb(123.456, 1, 0.0) == 123.456
    assert math.isnan(round_liquidation_price_nb(NAN, 1, 0.5))


def test_bybit_inverse_liquidation_price_published_example() -> None:
    # Bybit help: balance 0.5 BTC, long 10,000 USD @ 8,000, MMR 0.5 %, fee 0.075 %: 5,739.08
    price = bybit_inverse_liquidation_price_nb(1, 10_000.0, 8000.0, 0.5, 0.0, 0.005, 0.00075)
    assert price == pytest.approx(5739.0835, abs=1e-4)
    # a short's liquidation price lies above its entry
    short = bybit_inverse_liquidation_price_nb(-1, 10_000.0, 8000.0, 0.5, 0.0, 0.005, 0.00075)
    assert short > 8000.0


def _cross(rule, kinds, qty, faces, entries, marks, tiers, offsets, counts, fees, wallet, i):
    return liquidation_price_cross_nb(
        int(rule),
        np.array(kinds, dtype=np.int8),
        np.array(qty, dtype=np.float64),
        np.array(faces, dtype=np.float64),
        np.array(entries, dtype=np.float64),
        np.array(marks, dtype=np.float64),
        tiers,
        np.array(offsets, dtype=np.int32),
        np.array(counts, dtype=np.int32),
        np.full(len(qty), int(TierBasis.NOTIONAL_QUOTE), dtype=np.int8),
        np.array(fees, dtype=np.float64),
        float(wallet),
        i,
    )


def test_cross_liquidation_recomputes_the_tier_at_the_candidate_price() -> None:
    # Binance-style brackets with cum: notional 0–50k 0.4 %, 50k+ 0.5 % (cum 50)
    tiers = make_tiers([(0, 50_000, 0.004, 0.0), (50_000, np.inf, 0.005, 50.0)])
    # short 1 unit @ 40,000 with 12,000 wallet: the liquidation price lies in tier 2 (> 50k)
    price = _cross(
        LiquidationRule.BINANCE,
        [LIN],
        [-1.0],
        [1.0],
        [40_000.0],
        [40_000.0],
        tiers,
        [0],
        [2],
        [0.0],
        12_000.0,
        0,
    )
    # closed form in tier 2: (WB + cum − s·N·E)/(N·MMR − s·N) with s = −1
    assert price == pytest.approx((12_000 + 50 + 40_000) / (0.005 + 1), rel=1e-12)
    assert price > 50_000.0


def test_cross_liquidation_with_two_positions_and_nan_cases() -> None:
    tiers = make_tiers([(0, np.inf, 0.01, 0.0)])
    rule = LiquidationRule.BINANCE
    # long A (1 @ 100, mark 100) and short B (1 @ 50, mark 60: UPnL −10, MM 0.6), wallet 30
    price = _cross(
        rule,
        [LIN, LIN],
        [1.0, -1.0],
        [1.0, 1.0],
        [100.0, 50.0],
        [100.0, 60.0],
        tiers,
        [0, 0],
        [1, 1],
        [0.0, 0.0],
        30.0,
        0,
    )
    # 30 − 10 + (P − 100) = 0.01·P + 0.6  →  P = 80.6/0.99
    assert price == pytest.approx(80.6 / 0.99, rel=1e-12)
    assert math.isnan(
        _cross(
            rule,
            [LIN, LIN],
            [0.0, -1.0],
            [1.0, 1.0],
            [100.0, 50.0],
            [100.0, 60.0],
            tiers,
            [0, 0],
            [1, 1],
            [0.0, 0.0],
            30.0,
            0,
        )
    )
    assert math.isnan(  # out-of-range instrument index
        _cross(rule, [LIN], [1.0], [1.0], [100.0], [100.0], tiers, [0], [1], [0.0], 30.0, 3)
    )
    # a fully collateralised linear long is never liquidated
    assert math.isnan(
        _cross(rule, [LIN], [1.0], [1.0], [100.0], [100.0], tiers, [0], [1], [0.0], 500.0, 0)
    )


def test_cross_liquidation_already_triggered_at_the_mark() -> None:
    tiers = make_tiers([(0, np.inf, 0.01, 0.0)])
    # long 1 @ 100 with wallet 5, mark already at 90: trigger price is above the mark
    price = _cross(
        LiquidationRule.BINANCE,
        [LIN],
        [1.0],
        [1.0],
        [100.0],
        [90.0],
        tiers,
        [0],
        [1],
        [0.0],
        5.0,
        0,
    )
    assert price == pytest.approx(95.0 / 0.99, rel=1e-12)


@pytest.mark.parametrize(
    ("rule", "held", "expected"),
    [
        (PartialLiquidationRule.TO_TIER_1, 15_000.0, 13_000.0),  # OKEx VIII example
        (PartialLiquidationRule.TWO_TIERS_PER_STEP, 35_000.0, 35_000.0 - 9_999.0),  # 4 → 2
        (PartialLiquidationRule.TWO_TIERS_PER_STEP, 15_000.0, 13_000.0),  # 3 → 1
        (PartialLiquidationRule.ONE_TIER_PER_STEP, 35_000.0, 35_000.0 - 20_000.0),  # 4 → 3
        (PartialLiquidationRule.TO_TIER_1, 5_000.0, 0.0),  # tier 2 < min tier 3: full takeover
        (PartialLiquidationRule.NONE, 15_000.0, 0.0),
    ],
)
def test_partial_liquidation_contracts(
    rule: PartialLiquidationRule, held: float, expected: float
) -> None:
    tiers = make_tiers(
        [
            (0, 2000, 0.005, 0),
            (2001, 9999, 0.01, 0),
            (10_000, 20_000, 0.015, 0),
            (20_001, 50_000, 0.02, 0),
        ]
    )
    got = partial_liquidation_contracts_nb(
        int(rule), 3, tiers, 0, 4, int(TierBasis.CONTRACTS), INV, held, 100.0, 7000.0
    )
    assert got == expected


def test_partial_liquidation_on_a_notional_table() -> None:
    # USDT notional brackets; linear 0.001 BTC contracts at 50,000: 1 contract = 50 USDT
    tiers = make_tiers(
        [(0, 50_000, 0.004, 0), (50_000, 250_000, 0.005, 50), (250_000, 1e6, 0.01, 1300)]
    )
    got = partial_liquidation_contracts_nb(
        int(PartialLiquidationRule.TO_TIER_1),
        2,
        tiers,
        0,
        3,
        int(TierBasis.NOTIONAL_QUOTE),
        LIN,
        6000.0,
        0.001,
        50_000.0,
    )
    assert got == pytest.approx(6000.0 - 1000.0)


# --------------------------------------------------------------------------- settlement_nb


def test_next_settlement_instant() -> None:
    day = 86_400_000_000_000
    eight = 8 * 3_600_000_000_000
    t0 = 1_577_836_800_000_000_000  # 2020-01-01 00:00 UTC
    assert next_settlement_ns_nb(t0, eight) == t0 + eight
    assert next_settlement_ns_nb(t0 + eight, eight) == t0 + eight + day  # strictly after
    assert next_settlement_ns_nb(t0 + eight - 1, eight) == t0 + eight
    assert next_settlement_ns_nb(-1, 0) == 0  # before the epoch


def test_settlement_pnl_and_reset() -> None:
    settled = settlement_pnl_nb(INV, 42.0, 100.0, 300.0, 280.0)
    assert settled == pytest.approx(42 * 100 * (1 / 300 - 1 / 280))
    assert settlement_pnl_nb(INV, 42.0, 100.0, 280.0, 280.0) == 0.0
    assert settlement_pnl_nb(LIN, -3.0, 0.01, 100.0, 90.0) == pytest.approx(0.3)


# --------------------------------------------------------------------------- insurance_nb


def test_insurance_fund_delta_signs() -> None:
    # long liquidated at bankruptcy 90: the fund sells at 92 (gain) or 88 (pays)
    assert insurance_fund_delta_nb(LIN, 1, 10.0, 1.0, 90.0, 92.0) == pytest.approx(20.0)
    assert insurance_fund_delta_nb(LIN, 1, 10.0, 1.0, 90.0, 88.0) == pytest.approx(-20.0)
    # short liquidated at bankruptcy 110: the fund buys back at 108 (gain)
    assert insurance_fund_delta_nb(LIN, -1, 10.0, 1.0, 110.0, 108.0) == pytest.approx(20.0)
    assert insurance_fund_delta_nb(INV, -1, 100.0, 100.0, 110.0, 108.0) > 0


def test_clawback_rate() -> None:
    assert clawback_rate_nb(8.0, 0.0, 9.0) == pytest.approx(8 / 9)
    assert clawback_rate_nb(8.0, 10.0, 9.0) == 0.0  # fund covers it
    assert clawback_rate_nb(8.0, 0.0, 4.0) == 1.0  # at most the whole profit
    assert clawback_rate_nb(8.0, 0.0, 0.0) == 0.0  # nobody to claw back from
    # Aug 2018: ≈1,200 BTC uncovered over ≈6,700 BTC profit → ≈18 %
    assert clawback_rate_nb(3700.0, 2500.0, 6700.0) == pytest.approx(0.179, abs=1e-3)


def test_adl_threshold_and_trigger() -> None:
    assert adl_threshold_nb(400_000.0, 0.3, 50_000.0) == 280_000.0
    assert adl_threshold_nb(100_000.0, 0.3, 50_000.0) == 50_000.0  # the USD 50K floor wins
    assert is_adl_triggered_nb(200_000.0, 280_000.0)
    assert not is_adl_triggered_nb(300_000.0, 280_000.0)
    assert is_adl_triggered_nb(0.0, -10.0)  # depleted


def test_bitmex_adl_ranking() -> None:
    # PNL% = +50 %, effective leverage = 150/(150 − 50) = 1.5 → 0.75
    assert bitmex_adl_ranking_nb(150.0, 100.0, 50.0) == pytest.approx(0.75)
    # losing: PNL% = −20 %, leverage 80/(80 − 50) → −0.2/(8/3)
    assert bitmex_adl_ranking_nb(80.0, 100.0, 50.0) == pytest.approx(-0.2 / (80 / 30))
    assert math.isnan(bitmex_adl_ranking_nb(80.0, 0.0, 50.0))
    assert math.isnan(bitmex_adl_ranking_nb(50.0, 100.0, 50.0))


def test_binance_adl_ranking() -> None:
    # UPnL 50 on wallet 100: PnlPercent 0.5; MM 15/(100 + 50) = 0.1 → 0.05
    assert binance_adl_ranking_nb(50.0, 100.0, 15.0) == pytest.approx(0.05)
    assert binance_adl_ranking_nb(-20.0, 100.0, 15.0) == 0.0  # losing positions rank 0
    assert binance_adl_ranking_nb(0.5, 0.2, 0.1) == pytest.approx(0.5 * 0.1 / 0.7)  # WB < 1
    assert binance_adl_ranking_nb(5.0, -10.0, 1.0) == 0.0  # no equity


def test_is_past_every_tier_at_the_lowest_tier_requirement():
    """OKEx 2019 rule (MECHANICS.md §5.4): past every tier when (M + UPL)/PV < MMR₁ + fee."""
    from backtester.swap.liquidation_nb import is_past_every_tier_nb

    tiers = np.zeros(3, TIER_DTYPE)
    tiers["tier"] = [1, 2, 3]
    tiers["maintenance_margin_rate"] = [0.005, 0.01, 0.015]
    pv, fee = 30.0, 0.00075
    # MR 0.58 % ≥ 0.575 %: a step to tier 1 is still possible; 0.57 % is past every tier
    assert not is_past_every_tier_nb(LiquidationRule.OKX_LEGACY, tiers, 0, 3, 0.0058 * pv, pv, fee)
    assert is_past_every_tier_nb(LiquidationRule.OKX_LEGACY, tiers, 0, 3, 0.0057 * pv, pv, fee)
    # the instrument's table starts at its offset: tier "1" there is 1 %
    assert is_past_every_tier_nb(LiquidationRule.OKX_LEGACY, tiers, 1, 2, 0.0058 * pv, pv, fee)
    assert not is_past_every_tier_nb(LiquidationRule.OKX_LEGACY, tiers, 0, 0, 0.0, pv, fee)
