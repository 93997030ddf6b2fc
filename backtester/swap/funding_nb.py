"""Funding kernels: the payment of a position and the funding-rate formula from the premium."""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.swap.pnl_nb import position_value_nb


@njit(cache=True)
def funding_payment_nb(
    contract_kind: int,
    contracts_signed: float,
    face_value: float,
    mark_price: float,
    funding_rate: float,
) -> float:
    """Funding received (> 0) or paid (< 0) by a position at a funding timestamp.

    Formula
    -------
    payment = −sign(q)·PV(mark)·rate; positive rate: longs pay shorts (zero-sum).

    Source
    ------
    MECHANICS.md §3 (OKX-funding "Funding fee = position value × current funding rate";
    BitMEX-examples "Mark Value × Funding Rate = 20 XBT × 0.25% = 0.05 XBT"; ft
    ``calculate_funding_fees``).

    Cases
    -----
    bitmex_funding_amount_inverse, bitmex_funding_pnl_guide, ft_funding_fee_1, ft_funding_fee_2.
    """
    if contracts_signed == 0.0:
        return 0.0
    value = position_value_nb(contract_kind, abs(contracts_signed), face_value, mark_price)
    if contracts_signed > 0.0:
        return -value * funding_rate
    return value * funding_rate


@njit(cache=True)
def interest_rate_nb(
    quote_interest_daily_rate: float, base_interest_daily_rate: float, intervals_per_day: float
) -> float:
    """Interest component I of the funding rate, per funding interval (NaN if intervals ≤ 0).

    Formula
    -------
    I = (quote interest − base interest)/intervals per day.

    Source
    ------
    MECHANICS.md §3.3, §3.4 (BitMEX-examples "(1.00% − 0.25%) / 3 = 0.25%"; Bybit-funding
    "(0.06% − 0.03%)/3 = 0.01%").

    Cases
    -----
    bitmex_funding_rate_interest, bybit_interest_rate.
    """
    if intervals_per_day <= 0.0:
        return np.nan
    return (quote_interest_daily_rate - base_interest_daily_rate) / intervals_per_day


@njit(cache=True)
def premium_index_nb(impact_bid_price: float, impact_ask_price: float, index_price: float) -> float:
    """Premium index P from impact bid/ask prices (NaN if index ≤ 0).

    Formula
    -------
    P = [max(0, impact bid − index) − max(0, index − impact ask)]/index.

    Source
    ------
    MECHANICS.md §3.1–§3.3 (OKX-v5 get-funding-rate ``premium``; Binance-docs-copy; BitMEX).

    Cases
    -----
    None in cases.json (unit tests only).
    """
    if not index_price > 0.0:
        return np.nan
    up = max(0.0, impact_bid_price - index_price)
    down = max(0.0, index_price - impact_ask_price)
    return (up - down) / index_price


@njit(cache=True)
def funding_rate_nb(
    premium_index: float,
    interest_rate: float,
    clamp_rate: float,
    cap_rate: float,
    floor_rate: float,
) -> float:
    """Funding rate from premium and interest, with the damper clamp and the cap/floor.

    A NaN or infinite cap/floor means "no cap"/"no floor".

    Formula
    -------
    F = P + clamp(I − P, −clamp, +clamp), then clipped to [floor, cap].

    Source
    ------
    MECHANICS.md §3.2–§3.4 (Binance-docs-copy, BitMEX-examples, Bybit-funding; OKX-funding caps).

    Cases
    -----
    binance_funding_band_hi, binance_funding_band_lo.
    """
    diff = interest_rate - premium_index
    if diff > clamp_rate:
        diff = clamp_rate
    elif diff < -clamp_rate:
        diff = -clamp_rate
    rate = premium_index + diff
    if not np.isnan(cap_rate) and rate > cap_rate:
        rate = cap_rate
    if not np.isnan(floor_rate) and rate < floor_rate:
        rate = floor_rate
    return rate
