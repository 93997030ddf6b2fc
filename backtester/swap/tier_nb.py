"""Tier lookup kernels: a position's size in a tier table's unit and the tier that contains it."""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.enums import ContractKind, TierBasis


@njit(cache=True)
def tier_size_nb(
    tier_basis: int, contract_kind: int, contracts_abs: float, face_value: float, price: float
) -> float:
    """Size of a position in the unit of a tier table.

    Formula
    -------
    CONTRACTS: N. NOTIONAL_QUOTE: N·F·P (linear) or N·F (inverse: F is quote per contract).
    NOTIONAL_COIN: N·F/P (inverse) or N·F (linear: F is base coin per contract).

    Source
    ------
    MECHANICS.md §1.1 and §4.3 (OKX-v5 get-position-tiers: contracts; Binance-liq-USDM: USDT
    notional; Binance-liq-COINM: BTC notional "100 * 100 / 25,000 = 0.4 BTC").

    Cases
    -----
    binance_coinm_mm (coin notional), okx_usdt_tier_1, okx_usdt_tier_7 (via swap-specs tests).
    """
    if tier_basis == TierBasis.CONTRACTS:
        return contracts_abs
    if tier_basis == TierBasis.NOTIONAL_QUOTE:
        if contract_kind == ContractKind.INVERSE:
            return contracts_abs * face_value
        return contracts_abs * face_value * price
    if tier_basis == TierBasis.NOTIONAL_COIN:
        if contract_kind == ContractKind.INVERSE:
            if price <= 0.0:
                return np.nan
            return contracts_abs * face_value / price
        return contracts_abs * face_value
    return np.nan


@njit(cache=True)
def contracts_from_tier_size_nb(
    tier_basis: int, contract_kind: int, size: float, face_value: float, price: float
) -> float:
    """Inverse of :func:`tier_size_nb`: the contract count whose tier size is ``size``.

    Formula
    -------
    CONTRACTS: S. NOTIONAL_QUOTE: S/(F·P) linear, S/F inverse. NOTIONAL_COIN: S·P/F inverse,
    S/F linear.

    Source
    ------
    Derived from :func:`tier_size_nb` (MECHANICS.md §4.3).

    Cases
    -----
    okx_partial_liq_example (through ``partial_liquidation_contracts_nb``).
    """
    if face_value <= 0.0:
        return np.nan
    if tier_basis == TierBasis.CONTRACTS:
        return size
    if tier_basis == TierBasis.NOTIONAL_QUOTE:
        if contract_kind == ContractKind.INVERSE:
            return size / face_value
        if price <= 0.0:
            return np.nan
        return size / (face_value * price)
    if tier_basis == TierBasis.NOTIONAL_COIN:
        if contract_kind == ContractKind.INVERSE:
            return size * price / face_value
        return size / face_value
    return np.nan


@njit(cache=True)
def tier_index_nb(tiers: np.ndarray, tier_offset: int, tier_count: int, size: float) -> int:
    """Absolute row index (into ``tiers``) of the tier containing ``size``.

    The last row with ``min_size <= size`` (lower bound inclusive, as Binance and freqtrade
    ``get_maintenance_ratio_and_amt``; OKX contract tables use min = previous max + 1, so the same
    rule holds). Sizes above the last tier map to the last tier, sizes below the first (or NaN) to
    the first. Returns -1 when the table is empty.

    Formula
    -------
    idx = max{i : tiers[i].min_size <= size}, clamped to the table.

    Source
    ------
    MECHANICS.md §4.3 (Binance-liq-USDM brackets; OKX-tiers-2019; ft).

    Cases
    -----
    mmr_tier cases (covered by the swap-specs tests), okx_partial_liq_example.
    """
    if tier_count <= 0:
        return -1
    idx = tier_offset
    for i in range(tier_offset, tier_offset + tier_count):
        if tiers[i]["min_size"] <= size:
            idx = i
        else:
            break
    return idx
