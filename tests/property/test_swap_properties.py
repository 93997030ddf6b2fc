"""Hypothesis invariants of the swap exchange-rule kernels (``backtester/swap/*_nb.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from backtester.dtypes import TIER_DTYPE
from backtester.enums import ContractKind, LiquidationRule, TierBasis
from backtester.swap.fee_nb import fee_nb
from backtester.swap.funding_nb import funding_payment_nb
from backtester.swap.liquidation_nb import (
    bankruptcy_price_nb,
    liquidation_price_cross_nb,
    liquidation_price_nb,
)
from backtester.swap.margin_nb import (
    initial_margin_nb,
    is_liquidation_triggered_nb,
    liquidation_buffer_nb,
    liquidation_requirement_nb,
    maintenance_margin_nb,
)
from backtester.swap.pnl_nb import average_entry_price_nb, pnl_nb, position_value_nb

RULES = [int(r) for r in LiquidationRule]
KINDS = [int(k) for k in ContractKind]

rules = st.sampled_from(RULES)
kinds = st.sampled_from(KINDS)
sides = st.sampled_from([1, -1])
contracts = st.floats(1.0, 1e5)
faces = st.sampled_from([0.0001, 0.01, 1.0, 10.0, 100.0])
prices = st.floats(1.0, 1e5)
leverages = st.floats(1.5, 100.0)
mmrs = st.floats(0.001, 0.05)
fees = st.floats(0.0, 0.002)
unit = st.floats(0.0, 1.0)


def buffer_at(rule, kind, side, n, face, entry, margin, mmr, cum, fee, price) -> float:
    balance = margin + pnl_nb(kind, side * n, face, entry, price)
    pv = position_value_nb(kind, n, face, price)
    mm = maintenance_margin_nb(pv, mmr, cum)
    return liquidation_buffer_nb(rule, balance, mm, pv, mmr, fee)


def triggered_at(rule, kind, side, n, face, entry, margin, mmr, cum, fee, price) -> bool:
    balance = margin + pnl_nb(kind, side * n, face, entry, price)
    pv = position_value_nb(kind, n, face, price)
    mm = maintenance_margin_nb(pv, mmr, cum)
    return bool(is_liquidation_triggered_nb(rule, balance, mm, pv, mmr, fee))


@given(rules, kinds, sides, contracts, faces, prices, leverages, mmrs, fees)
def test_liquidation_price_between_entry_and_bankruptcy(
    rule, kind, side, n, face, entry, lev, mmr, fee
) -> None:
    margin = initial_margin_nb(kind, n, face, entry, lev)
    assume(buffer_at(rule, kind, side, n, face, entry, margin, mmr, 0.0, fee, entry) > 1.0)
    lp = liquidation_price_nb(rule, kind, side, n, face, entry, margin, mmr, 0.0, fee)
    bp = bankruptcy_price_nb(kind, side, n, face, entry, margin)
    assert math.isfinite(lp)
    assert math.isfinite(bp)
    lo, hi = (bp, entry) if side > 0 else (entry, bp)
    assert lo * (1 - 1e-12) <= lp <= hi * (1 + 1e-12)


@given(rules, kinds, sides, contracts, faces, prices, leverages, mmrs, fees, unit)
def test_liquidation_price_round_trips_through_the_trigger(
    rule, kind, side, n, face, entry, lev, mmr, fee, u
) -> None:
    margin = initial_margin_nb(kind, n, face, entry, lev)
    cum = 0.5 * u * mmr * position_value_nb(kind, n, face, entry)
    lp = liquidation_price_nb(rule, kind, side, n, face, entry, margin, mmr, cum, fee)
    assume(math.isfinite(lp))
    args = (rule, kind, side, n, face, entry, margin, mmr, cum, fee)
    assume(position_value_nb(kind, n, face, lp) * mmr - cum > 0)  # a real requirement at LP
    assert buffer_at(*args, lp) == pytest.approx(1.0, rel=1e-7)
    into = lp * (1 - 1e-6 * side)  # a step towards liquidation
    out = lp * (1 + 1e-6 * side)
    assert triggered_at(*args, into)
    assert not triggered_at(*args, out)


@given(kinds, sides, contracts, faces, prices, leverages, fees, unit)
def test_isolated_loss_bounded_by_margin_plus_fees(kind, side, n, face, entry, lev, fee, u) -> None:
    margin = initial_margin_nb(kind, n, face, entry, lev)
    bp = bankruptcy_price_nb(kind, side, n, face, entry, margin)
    assume(math.isfinite(bp))
    # any close at or on the safe side of the bankruptcy price (up to entry and beyond)
    close = bp + (entry * 2 - bp) * u if side > 0 else bp - (bp - entry / 2) * u
    assume(close > 0)
    paid = fee_nb(kind, n, face, entry, fee) + fee_nb(kind, n, face, close, fee)
    loss = -pnl_nb(kind, side * n, face, entry, close) + paid
    assert loss <= (margin + paid) * (1 + 1e-9)


@given(kinds, contracts, faces, prices, st.floats(-0.01, 0.01))
def test_funding_between_equal_long_and_short_nets_to_zero(kind, n, face, mark, rate) -> None:
    long_pays = funding_payment_nb(kind, n, face, mark, rate)
    short_gets = funding_payment_nb(kind, -n, face, mark, rate)
    assert long_pays + short_gets == 0.0
    if rate > 0:
        assert long_pays < 0 < short_gets


@given(
    kinds,
    sides,
    faces,
    st.lists(st.tuples(contracts, prices), min_size=1, max_size=8),
    prices,
)
def test_pnl_of_average_entry_equals_sum_of_fill_pnls(kind, side, face, fills, exit_price) -> None:
    total, avg = 0.0, float("nan")
    for n, price in fills:
        avg = average_entry_price_nb(kind, total, avg, n, price)
        total += n
    combined = pnl_nb(kind, side * total, face, avg, exit_price)
    per_fill = sum(pnl_nb(kind, side * n, face, p, exit_price) for n, p in fills)
    scale = sum(position_value_nb(kind, n, face, p) for n, p in fills) + position_value_nb(
        kind, total, face, exit_price
    )
    assert combined == pytest.approx(per_fill, abs=1e-10 * scale)


def _one_tier(mmr: float, cum: float) -> np.ndarray:
    rows = np.zeros(1, dtype=TIER_DTYPE)
    rows[0]["tier"] = 1
    rows[0]["max_size"] = np.inf
    rows[0]["maintenance_margin_rate"] = mmr
    rows[0]["maintenance_amount_settle"] = cum
    return rows


@given(rules, kinds, sides, contracts, faces, prices, leverages, mmrs, fees, unit, unit)
def test_cross_solver_matches_isolated_closed_form_for_one_position(
    rule, kind, side, n, face, entry, lev, mmr, fee, u, m
) -> None:
    margin = initial_margin_nb(kind, n, face, entry, lev)
    cum = 0.5 * u * mmr * position_value_nb(kind, n, face, entry)
    iso = liquidation_price_nb(rule, kind, side, n, face, entry, margin, mmr, cum, fee)
    mark = entry * (0.8 + 0.4 * m)  # solver starts from a mark that need not be the entry
    cross = liquidation_price_cross_nb(
        rule,
        np.array([kind], dtype=np.int8),
        np.array([side * n]),
        np.array([face]),
        np.array([entry]),
        np.array([mark]),
        _one_tier(mmr, cum),
        np.array([0], dtype=np.int32),
        np.array([1], dtype=np.int32),
        np.array([TierBasis.CONTRACTS], dtype=np.int8),
        np.array([fee]),
        margin,
        0,
    )
    if math.isnan(iso):
        assert math.isnan(cross)
    else:
        assert cross == pytest.approx(iso, rel=1e-9)


def _binance_like_tiers(first_cap: float, mmr1: float) -> np.ndarray:
    """Four notional brackets with Binance's continuous cum (cum_n = floor_n·ΔMMR + cum_{n−1})."""
    floors = [0.0, first_cap, first_cap * 5, first_cap * 20]
    rates = [mmr1, mmr1 * 1.25, mmr1 * 2.5, mmr1 * 5]
    rows = np.zeros(4, dtype=TIER_DTYPE)
    cum = 0.0
    for k in range(4):
        if k:
            cum += floors[k] * (rates[k] - rates[k - 1])
        rows[k]["tier"] = k + 1
        rows[k]["min_size"] = floors[k]
        rows[k]["max_size"] = floors[k + 1] if k < 3 else np.inf
        rows[k]["maintenance_margin_rate"] = rates[k]
        rows[k]["maintenance_amount_settle"] = cum
    return rows


@given(
    rules,
    st.lists(
        st.tuples(kinds, sides, contracts, prices, st.floats(0.7, 1.3)), min_size=1, max_size=3
    ),
    st.floats(0.001, 0.02),
    fees,
    st.floats(0.01, 2.0),
)
def test_cross_solver_price_is_where_the_account_trigger_starts(
    rule, positions, mmr1, fee, wallet_fraction
) -> None:
    k = len(positions)
    kind_arr = np.array([p[0] for p in positions], dtype=np.int8)
    qty = np.array([p[1] * p[2] for p in positions])
    face = np.where(kind_arr == ContractKind.INVERSE, 100.0, 0.01)
    entry = np.array([p[3] for p in positions])
    mark = entry * np.array([p[4] for p in positions])
    tiers = _binance_like_tiers(50_000.0, mmr1)
    bases = np.where(
        kind_arr == ContractKind.INVERSE, TierBasis.NOTIONAL_COIN, TierBasis.NOTIONAL_QUOTE
    )
    if bool(np.any(kind_arr == ContractKind.INVERSE)):
        tiers["min_size"] /= 50_000.0  # coin brackets for inverse contracts
        tiers["max_size"] /= 50_000.0
        tiers["maintenance_amount_settle"] /= 50_000.0
    notional = sum(
        position_value_nb(int(kind_arr[i]), abs(qty[i]), face[i], entry[i]) for i in range(k)
    )
    wallet = wallet_fraction * notional
    args = (
        rule, kind_arr, qty, face, entry, mark, tiers, np.zeros(k, dtype=np.int32),
        np.full(k, 4, dtype=np.int32), bases.astype(np.int8), np.full(k, fee), wallet, 0,
    )  # fmt: skip
    price = liquidation_price_cross_nb(*args)
    assume(math.isfinite(price))

    def account_triggered(p0: float) -> bool:
        balance, requirement = wallet, 0.0
        for i in range(k):
            p = p0 if i == 0 else mark[i]
            kind, n = int(kind_arr[i]), abs(qty[i])
            balance += pnl_nb(kind, qty[i], face[i], entry[i], p)
            pv = position_value_nb(kind, n, face[i], p)
            # pv is the quote (linear) or coin (inverse) notional: the tables' unit here
            row = tiers[np.searchsorted(tiers["min_size"], pv, side="right") - 1]
            mmr, cum = row["maintenance_margin_rate"], row["maintenance_amount_settle"]
            mm = maintenance_margin_nb(pv, mmr, cum)
            requirement += liquidation_requirement_nb(rule, mm, pv, mmr, fee)
        return balance <= requirement

    side = 1 if qty[0] > 0 else -1
    # the solver returns the trigger's boundary to float precision: just past it (towards
    # liquidation) the account is liquidated, just before it is not
    assert account_triggered(price * (1 - 1e-8 * side))
    assert not account_triggered(price * (1 + 1e-8 * side))
