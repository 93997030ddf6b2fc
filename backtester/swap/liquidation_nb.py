"""Liquidation kernels: bankruptcy and liquidation prices, the size of a partial step.

Isolated positions have closed forms; the cross-margin price is found by a solver.

Every liquidation price here is the price where the same rule's trigger in ``margin_nb``
(``liquidation_buffer_nb`` = 1) holds with equality, so the engine's trigger check and the price it
reports agree.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from backtester.enums import ContractKind, PartialLiquidationRule
from backtester.swap.margin_nb import (
    liquidation_buffer_nb,
    liquidation_requirement_nb,
    liquidation_rule_terms_nb,
)
from backtester.swap.pnl_nb import pnl_nb, position_value_nb
from backtester.swap.tier_nb import contracts_from_tier_size_nb, tier_index_nb, tier_size_nb

# Bracket search range of the cross solver: no overflow to inf (numpy warns on it when the
# kernels run as plain Python under NUMBA_DISABLE_JIT) and no denormal prices.
PRICE_SEARCH_MIN = 1e-290
PRICE_SEARCH_MAX = 1e290

CrossBook = tuple[
    npt.NDArray[np.integer],  # contract_kinds
    npt.NDArray[np.float64],  # contracts_signed
    npt.NDArray[np.float64],  # face_values
    npt.NDArray[np.float64],  # entry_prices
    npt.NDArray[np.float64],  # mark_prices
    npt.NDArray[np.void],  # tiers
    npt.NDArray[np.integer],  # tier_offsets
    npt.NDArray[np.integer],  # tier_counts
    npt.NDArray[np.integer],  # tier_bases
    npt.NDArray[np.float64],  # liquidation_fee_rates
]
"""The cross positions of one settle currency, one array per field (a numba tuple), as
:func:`liquidation_price_cross_nb` takes them."""


@njit(cache=True)
def price_at_margin_balance_nb(
    contract_kind: int,
    side: int,
    contracts_abs: float,
    face_value: float,
    entry_price: float,
    margin_settle: float,
    target_balance_settle: float,
) -> float:
    """Price at which margin + PnL equals a fixed amount (NaN if no positive price does).

    Formula
    -------
    linear P = E − s·(M − T)/(N·F); inverse 1/P = 1/E + s·(M − T)/(N·F).

    Source
    ------
    Derived from the PnL definitions of MECHANICS.md §1.2; T = 0 is the bankruptcy price (§5.3),
    T = MM at entry value is the Bybit simple form (ft ``Bybit.dry_run_liquidation_price``).

    Cases
    -----
    bybit_bankruptcy_linear_long, ft_bybit_liq_iso_long_5x, ft_bybit_liq_iso_short_5x,
    bybit_inverse_cross_liq.
    """
    nf = contracts_abs * face_value
    if not nf > 0.0 or not entry_price > 0.0:
        return np.nan
    excess = margin_settle - target_balance_settle
    if contract_kind == ContractKind.INVERSE:
        inv = 1.0 / entry_price + side * excess / nf
        if not inv > 0.0:
            return np.nan
        return 1.0 / inv
    price = entry_price - side * excess / nf
    if not price > 0.0:
        return np.nan
    return price


@njit(cache=True)
def bankruptcy_price_nb(
    contract_kind: int,
    side: int,
    contracts_abs: float,
    face_value: float,
    entry_price: float,
    margin_settle: float,
) -> float:
    """Isolated bankruptcy price: margin + PnL = 0 (NaN when the position can never go bankrupt).

    Formula
    -------
    linear long E − M/(N·F), short E + M/(N·F); inverse 1/(1/E + s·M/(N·F)). With M = IM:
    linear E·(1 ∓ 1/lev), inverse long E·lev/(lev + 1), short E·lev/(lev − 1).

    Source
    ------
    MECHANICS.md §5.3 (OKEx-swap-guide VIII "closed at its bankruptcy price (at which all margins
    are lost)"; Bybit "10,000 × (1 − 2 %) = 9,800"; help.mcs.io Bankruptcy-Price).

    Cases
    -----
    bybit_bankruptcy_linear_long.
    """
    return price_at_margin_balance_nb(
        contract_kind, side, contracts_abs, face_value, entry_price, margin_settle, 0.0
    )


@njit(cache=True)
def bankruptcy_price_with_close_fee_nb(
    contract_kind: int,
    side: int,
    contracts_abs: float,
    face_value: float,
    entry_price: float,
    margin_settle: float,
    fee_rate: float,
) -> float:
    """Bankruptcy price including the close fee at that price (Bybit): margin + PnL − fee = 0.

    Formula
    -------
    inverse BP = N·F·(1 + s·fee)/(M + s·N·F/E) (Bybit: BP_long = 1.00075·Q/(Q/E + balance));
    linear BP = (s·N·F·E − M)/(N·F·(s − fee)).

    Source
    ------
    MECHANICS.md §5.2, §5.3 (Bybit-inv-liq).

    Cases
    -----
    bybit_inverse_cross_bankruptcy.
    """
    return _closed_form_price_nb(
        contract_kind, side, contracts_abs, face_value, entry_price, margin_settle, fee_rate, 0.0
    )


@njit(cache=True)
def _closed_form_price_nb(
    contract_kind: int,
    side: int,
    contracts_abs: float,
    face_value: float,
    entry_price: float,
    margin_settle: float,
    k: float,
    c: float,
) -> float:
    """Price P with margin + PnL(P) = k·PV(P) − c (NaN if no positive solution)."""
    nf = contracts_abs * face_value
    if not nf > 0.0 or not entry_price > 0.0:
        return np.nan
    if contract_kind == ContractKind.INVERSE:
        # M + s·NF·(1/E − 1/P) = k·NF/P − c  →  P = NF·(k + s)/(M + c + s·NF/E)
        num = nf * (k + side)
        den = margin_settle + c + side * nf / entry_price
    else:
        # M + s·NF·(P − E) = k·NF·P − c  →  P = (M + c − s·NF·E)/(NF·(k − s))
        num = margin_settle + c - side * nf * entry_price
        den = nf * (k - side)
    if den == 0.0:
        return np.nan
    price = num / den
    if not price > 0.0 or math.isinf(price):
        return np.nan
    return price


@njit(cache=True)
def liquidation_price_nb(
    rule: int,
    contract_kind: int,
    side: int,
    contracts_abs: float,
    face_value: float,
    entry_price: float,
    margin_settle: float,
    maintenance_margin_rate: float,
    maintenance_amount_settle: float,
    liquidation_fee_rate: float,
) -> float:
    """Isolated liquidation price: where the rule's trigger holds with equality.

    NaN when no positive price triggers (e.g. a linear long with margin ≥ notional).

    Formula
    -------
    Solve margin + PnL(P) = k·PV(P) − c with k = MMR + a·fee and c = cum or 0 by the rule's
    terms (``margin_nb.liquidation_rule_terms_nb``): k = MMR + fee, c = cum (OKX_MGN_RATIO,
    BITMEX, BYBIT), k = MMR + fee, c = 0 (OKX_LEGACY), k = MMR, c = cum (BINANCE):
    linear P = (M + c − s·N·F·E)/(N·F·(k − s)); inverse P = N·F·(k + s)/(M + c + s·N·F/E).
    OKX long linear (E − M/(F·N))/(1 − k), inverse (1 + k)/(1/E + M/(F·N)); Binance USDⓈ-M
    (WB + cum − s·N·E)/(N·MMR − s·N); Binance COIN-M Q·CM·(MMR + s)/(WB + cum + s·Q·CM/E).

    Source
    ------
    MECHANICS.md §5.2 (Binance-liq-USDM official formula; Binance-liq-COINM derived; OKEx IX
    glossary "(1 + Maintenance Rate) / (1/Entry + Fixed Margin/Face/Quantity)"; ft
    ``dry_run_liquidation_price``), trigger §5.1.

    Cases
    -----
    binance_liq_cross_btc_2020, binance_liq_cross_eth_2020, ft_binance_liq_iso_eth,
    ft_binance_liq_iso_btc, ft_binance_liq_iso_short_5x, ft_binance_liq_iso_long_5x,
    ft_okx_liq_iso_short_3x, ft_okx_liq_iso_long_3x, phemex_liq_iso_long.
    """
    # the rule's terms, from the one table that also drives the trigger (margin_nb)
    _, fee_coefficient, uses_maintenance_amount = liquidation_rule_terms_nb(rule)
    k = maintenance_margin_rate + fee_coefficient * liquidation_fee_rate
    c = maintenance_amount_settle if uses_maintenance_amount else 0.0
    return _closed_form_price_nb(
        contract_kind, side, contracts_abs, face_value, entry_price, margin_settle, k, c
    )


@njit(cache=True)
def round_liquidation_price_nb(price: float, side: int, tick_size: float) -> float:
    """Round a liquidation price to the tick on the conservative side (long up, short down).

    Formula
    -------
    long ⌈P/tick⌉·tick, short ⌊P/tick⌋·tick (unchanged when tick ≤ 0 or P is NaN).

    Source
    ------
    MECHANICS.md §5.2 (Bybit-inv-liq: formula 5,739.08, displayed 5,739.50 — a long's price
    rounded up to the 0.5 tick; interpretation noted in cases.json).

    Cases
    -----
    bybit_inverse_cross_liq.
    """
    if not tick_size > 0.0 or math.isnan(price):
        return price
    q = price / tick_size
    # snap values within 1e-9 of a tick to it, so an exact tick does not move by float noise
    r = round(q)
    if abs(q - r) <= 1e-9 * max(1.0, abs(q)):
        return r * tick_size
    if side > 0:
        return math.ceil(q) * tick_size
    return math.floor(q) * tick_size


@njit(cache=True)
def bybit_inverse_liquidation_price_nb(
    side: int,
    contracts_usd: float,
    entry_price: float,
    balance_coin: float,
    order_margin_coin: float,
    maintenance_margin_rate: float,
    taker_fee_rate: float,
) -> float:
    """Bybit inverse (cross) liquidation price in Bybit's published form.

    Maintenance is measured on the entry value (Q/E·MMR) plus the close fee at the bankruptcy
    price (Q·fee/BP), a fixed amount, so the price is where margin + PnL equals it. Unrounded;
    Bybit shows it rounded to the tick (:func:`round_liquidation_price_nb`).

    Formula
    -------
    Q·(1/E − 1/LP) = −(Balance − OrderMargin − Q/E·MMR − Q·fee/BP),
    BP = Q·(1 + s·fee)/(s·Q/E + Balance − OrderMargin).

    Source
    ------
    MECHANICS.md §5.2 (Bybit-inv-liq).

    Cases
    -----
    bybit_inverse_cross_liq, bybit_inverse_cross_bankruptcy.
    """
    margin = balance_coin - order_margin_coin
    bp = bankruptcy_price_with_close_fee_nb(
        ContractKind.INVERSE, side, contracts_usd, 1.0, entry_price, margin, taker_fee_rate
    )
    if math.isnan(bp):
        return np.nan
    requirement = (
        contracts_usd / entry_price * maintenance_margin_rate + contracts_usd * taker_fee_rate / bp
    )
    return price_at_margin_balance_nb(
        ContractKind.INVERSE, side, contracts_usd, 1.0, entry_price, margin, requirement
    )


@njit(cache=True)
def _cross_excess_nb(
    rule: int, book: CrossBook, wallet_balance_settle: float, instrument: int, price: float
) -> float:
    """Return margin balance minus the liquidation requirement with ``instrument`` at ``price``."""
    (
        contract_kinds, contracts_signed, face_values, entry_prices, mark_prices, tiers,
        tier_offsets, tier_counts, tier_bases, liquidation_fee_rates,
    ) = book  # fmt: skip
    balance = wallet_balance_settle
    requirement = 0.0
    for i in range(contracts_signed.shape[0]):
        q = contracts_signed[i]
        if q == 0.0:
            continue
        p = price if i == instrument else mark_prices[i]
        kind = contract_kinds[i]
        n = abs(q)
        balance += pnl_nb(kind, q, face_values[i], entry_prices[i], p)
        pv = position_value_nb(kind, n, face_values[i], p)
        mmr = 0.0
        cum = 0.0
        if tier_counts[i] > 0:
            size = tier_size_nb(tier_bases[i], kind, n, face_values[i], p)
            row = tier_index_nb(tiers, tier_offsets[i], tier_counts[i], size)
            mmr = tiers[row]["maintenance_margin_rate"]
            cum = tiers[row]["maintenance_amount_settle"]
        mm = pv * mmr - cum
        requirement += liquidation_requirement_nb(rule, mm, pv, mmr, liquidation_fee_rates[i])
    return balance - requirement


@njit(cache=True)
def _cross_bracket_nb(
    rule: int,
    book: CrossBook,
    wallet_balance_settle: float,
    instrument: int,
    start: float,
    start_hit: bool,
) -> tuple[float, float]:
    """Return ``(safe, hit)`` prices bracketing the trigger, NaN for an end not found.

    "safe" has excess > 0, "hit" excess ≤ 0. From a safe start the price steps by factors of 2
    toward liquidation (a long down, a short up) until the trigger holds; from a start where it
    already holds, away from liquidation until it no longer does.
    """
    long = book[1][instrument] > 0.0
    step = 0.5 if long != start_hit else 2.0
    safe = np.nan if start_hit else start
    hit = start if start_hit else np.nan
    p = start
    for _ in range(1100):
        if p < PRICE_SEARCH_MIN or p > PRICE_SEARCH_MAX:
            break
        p = p * step
        e = _cross_excess_nb(rule, book, wallet_balance_settle, instrument, p)
        if start_hit:
            if e > 0.0:
                safe = p
                break
            hit = p
        else:
            if e <= 0.0:
                hit = p
                break
            safe = p
    return safe, hit


@njit(cache=True)
def liquidation_price_cross_nb(  # noqa: PLR0913  # engine entry point: one array per position field
    rule: int,
    contract_kinds: np.ndarray,
    contracts_signed: np.ndarray,
    face_values: np.ndarray,
    entry_prices: np.ndarray,
    mark_prices: np.ndarray,
    tiers: np.ndarray,
    tier_offsets: np.ndarray,
    tier_counts: np.ndarray,
    tier_bases: np.ndarray,
    liquidation_fee_rates: np.ndarray,
    wallet_balance_settle: float,
    instrument: int,
) -> float:
    """Cross-margin liquidation price of ``instrument`` (others held at their marks).

    Solved by bracketed bisection on excess(P) = margin balance − liquidation requirement, summed
    over every position of the settle currency, with each position's tier recomputed at the
    candidate price. Returns the first price (coming from the mark) at which the trigger holds —
    for a long the highest P with excess ≤ 0, for a short the lowest — to float precision. NaN if
    the instrument has no position or no positive price triggers. Tiers are per position (not
    per underlying).

    Formula
    -------
    wallet + Σ PnL_i(P_i) = Σ requirement_i(P_i), requirement from ``liquidation_requirement_nb``
    (MM_i = PV_i·MMR_tier − cum_tier).

    Source
    ------
    MECHANICS.md §5.2 (OKX cross: "solve mgnRatio(P) = 1 over all positions of the settlement
    currency"; Binance-liq-USDM: "if the notional at the liquidation price lies in another
    bracket, recompute with that bracket's MMR and cum").

    Cases
    -----
    binance_liq_cross_btc_2020, binance_liq_cross_eth_2020 (through the closed form; the
    property tests check the solver agrees with it).
    """
    if instrument < 0 or instrument >= contracts_signed.shape[0]:
        return np.nan
    q = contracts_signed[instrument]
    if q == 0.0 or math.isnan(q):
        return np.nan
    start = mark_prices[instrument]
    if not start > 0.0:
        start = entry_prices[instrument]
    if not start > 0.0:
        return np.nan
    book = (
        contract_kinds, contracts_signed, face_values, entry_prices, mark_prices, tiers,
        tier_offsets, tier_counts, tier_bases, liquidation_fee_rates,
    )  # fmt: skip
    e0 = _cross_excess_nb(rule, book, wallet_balance_settle, instrument, start)
    if math.isnan(e0):
        return np.nan
    safe, hit = _cross_bracket_nb(rule, book, wallet_balance_settle, instrument, start, e0 <= 0.0)
    if math.isnan(safe) or math.isnan(hit):
        return np.nan
    for _ in range(2200):
        mid = 0.5 * (safe + hit)
        if mid == safe or mid == hit:  # noqa: SIM109  (explicit float compares in numba)
            break
        e = _cross_excess_nb(rule, book, wallet_balance_settle, instrument, mid)
        if e <= 0.0:
            hit = mid
        else:
            safe = mid
    return hit


@njit(cache=True)
def partial_liquidation_contracts_nb(
    partial_rule: int,
    min_tier: int,
    tiers: np.ndarray,
    tier_offset: int,
    tier_count: int,
    tier_basis: int,
    contract_kind: int,
    contracts_abs: float,
    face_value: float,
    mark_price: float,
) -> float:
    """Contracts to close in one partial-liquidation step (0.0 → no partial step: full takeover).

    The position's tier is looked up at the mark; positions in a tier numbered below
    ``min_tier`` (or rule NONE) are taken over in full. Otherwise the position is reduced to the
    maximum size of the target tier: tier 1 (TO_TIER_1), two tiers lower (TWO_TIERS_PER_STEP) or
    one tier lower (ONE_TIER_PER_STEP), never below tier 1.

    Formula
    -------
    close = N − contracts(max_size of target tier), floored at 0.

    Source
    ------
    MECHANICS.md §5.4 (OKEx-swap-guide VIII "liquidated until it is at Tier 1": 15,000 − 2,000
    = 13,000; Chinese version "降低两个档位"; BitMEX step-down of risk limits).

    Cases
    -----
    okx_partial_liq_example.
    """
    if partial_rule == PartialLiquidationRule.NONE or tier_count <= 0 or not contracts_abs > 0.0:
        return 0.0
    size = tier_size_nb(tier_basis, contract_kind, contracts_abs, face_value, mark_price)
    row = tier_index_nb(tiers, tier_offset, tier_count, size)
    if tiers[row]["tier"] < min_tier:
        return 0.0
    if partial_rule == PartialLiquidationRule.TO_TIER_1:
        target = tier_offset
    elif partial_rule == PartialLiquidationRule.TWO_TIERS_PER_STEP:
        target = max(tier_offset, row - 2)
    elif partial_rule == PartialLiquidationRule.ONE_TIER_PER_STEP:
        target = max(tier_offset, row - 1)
    else:
        return 0.0
    if target >= row:
        return 0.0
    keep = contracts_from_tier_size_nb(
        tier_basis, contract_kind, tiers[target]["max_size"], face_value, mark_price
    )
    if math.isnan(keep):
        return 0.0
    close = contracts_abs - keep
    if close <= 0.0:
        return 0.0
    return close


@njit(cache=True)
def is_past_every_tier_nb(
    rule: int,
    tiers: np.ndarray,
    tier_offset: int,
    tier_count: int,
    margin_balance_settle: float,
    position_value_settle: float,
    liquidation_fee_rate: float,
) -> bool:
    """Whether a position is past the liquidation threshold of even the lowest tier.

    Then no partial step can make it compliant: the whole position is taken over at the
    bankruptcy price and the full margin is lost, with no partial step at the mark first.

    Formula
    -------
    buffer at tier 1 = margin balance / requirement(MM₁ = PV·MMR₁ − cum₁, fee) ≤ 1; for the OKEx
    2019 rule: (margin + UPL)/PV < MMR₁ + fee rate.

    Source
    ------
    MECHANICS.md §5.4 (OKEx-swap-guide VIII: "full liquidation at bankruptcy price when tier ≤ 2
    and MR < tier MMR, or tier ≥ 3 and MR < tier-1 MMR"; the fee is on the MMR side, §4.2).

    Cases
    -----
    okx_partial_liq_example (the partial branch; the takeover branch in the engine tests).
    """
    if tier_count <= 0:
        return False
    first = tiers[tier_offset]
    mmr = first["maintenance_margin_rate"]
    mm = position_value_settle * mmr - first["maintenance_amount_settle"]
    buffer = liquidation_buffer_nb(
        rule, margin_balance_settle, mm, position_value_settle, mmr, liquidation_fee_rate
    )
    return buffer <= 1.0
