"""Margin kernels: initial and maintenance margin, venue margin ratios and the liquidation trigger.

Every venue's trigger is expressed through one number, the *liquidation buffer*: the margin
balance divided by the margin at which that venue liquidates (> 1 safe, ≤ 1 triggered). The
liquidation-price kernels in ``liquidation_nb`` solve buffer = 1 for the same rule.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.enums import LiquidationRule
from backtester.swap.pnl_nb import position_value_nb


@njit(cache=True)
def initial_margin_nb(
    contract_kind: int, contracts_abs: float, face_value: float, price: float, leverage: float
) -> float:
    """Initial margin of a position at ``price`` with ``leverage``; NaN when leverage ≤ 0.

    Formula
    -------
    IM = position value / leverage (N·F·P/lev linear, N·F/(P·lev) inverse).

    Source
    ------
    MECHANICS.md §4.1 (OKEx-usdt-guide "0.0001 × 10,000 × 10,000 / 10 = 1,000 USDT"; Bybit
    "12,000/(8,000 × 50) = 0.03 BTC").

    Cases
    -----
    okex_usdt_initial_margin, bybit_inverse_initial_margin, bybit_bankruptcy_linear_long.
    """
    if leverage <= 0.0:
        return np.nan
    return position_value_nb(contract_kind, contracts_abs, face_value, price) / leverage


@njit(cache=True)
def maintenance_margin_nb(
    position_value_settle: float,
    maintenance_margin_rate: float,
    maintenance_amount_settle: float,
) -> float:
    """Maintenance margin of a position (Binance "tax bracket" form; cum = 0 for OKX/BitMEX).

    Formula
    -------
    MM = PV·MMR − cum.

    Source
    ------
    MECHANICS.md §4.3 (Binance-liq-USDM, Binance-liq-COINM; BitMEX-docs-copy risk limits).

    Cases
    -----
    binance_coinm_mm, bitmex_risk_limit_mm_300, bitmex_risk_limit_mm_180.
    """
    return position_value_settle * maintenance_margin_rate - maintenance_amount_settle


@njit(cache=True)
def margin_ratio_nb(
    rule: int,
    margin_balance_settle: float,
    maintenance_margin_settle: float,
    position_value_settle: float,
    liquidation_fee_rate: float,
) -> float:
    """The margin ratio as the venue displays it (inf where its denominator is ≤ 0).

    Formula
    -------
    OKX_LEGACY (margin + UPL)/PV; OKX_MGN_RATIO (margin + UPL)/(MM + fee·PV);
    BINANCE MM/margin balance; BITMEX, BYBIT margin balance/MM.

    Source
    ------
    MECHANICS.md §4.2 (OKEx-usdt-guide fixed margin ratio; OKX "Tiered maintenance margin ratio
    rules" mgnRatio; Binance-liq-USDM; BitMEX-docs-copy).

    Cases
    -----
    okex_usdt_margin_ratio_fixed.
    """
    if rule == LiquidationRule.OKX_LEGACY:
        num = margin_balance_settle
        den = position_value_settle
    elif rule == LiquidationRule.OKX_MGN_RATIO:
        num = margin_balance_settle
        den = maintenance_margin_settle + liquidation_fee_rate * position_value_settle
    elif rule == LiquidationRule.BINANCE:
        num = maintenance_margin_settle
        den = margin_balance_settle
    else:
        num = margin_balance_settle
        den = maintenance_margin_settle
    if den <= 0.0:
        return np.inf
    return num / den


@njit(cache=True)
def liquidation_requirement_nb(
    rule: int,
    maintenance_margin_settle: float,
    position_value_settle: float,
    maintenance_margin_rate: float,
    liquidation_fee_rate: float,
) -> float:
    """Margin balance at or below which the venue liquidates (the buffer's denominator).

    Formula
    -------
    OKX_LEGACY PV·(MMR + fee); OKX_MGN_RATIO, BITMEX, BYBIT MM + fee·PV; BINANCE MM.

    Source
    ------
    MECHANICS.md §4.2, §5.1 (OKEx-swap-guide IX; OKX mgnRatio; Binance-liq-USDM; BitMEX MM +
    close commission; Bybit MM incl. estimated close fee).

    Cases
    -----
    okex_usdt_margin_ratio_fixed ("liquidation_threshold" = MMR + fee).
    """
    if rule == LiquidationRule.OKX_LEGACY:
        return position_value_settle * (maintenance_margin_rate + liquidation_fee_rate)
    if rule == LiquidationRule.BINANCE:
        return maintenance_margin_settle
    return maintenance_margin_settle + liquidation_fee_rate * position_value_settle


@njit(cache=True)
def liquidation_buffer_nb(
    rule: int,
    margin_balance_settle: float,
    maintenance_margin_settle: float,
    position_value_settle: float,
    maintenance_margin_rate: float,
    liquidation_fee_rate: float,
) -> float:
    """Margin balance ÷ the margin at which the venue liquidates: > 1 safe, ≤ 1 triggered.

    Returns +inf when the requirement is ≤ 0 (no position, or nothing to maintain).

    Formula
    -------
    buffer = margin balance / requirement, requirement from :func:`liquidation_requirement_nb`
    (OKX_LEGACY (margin+UPL)/(PV·(MMR+fee)); OKX_MGN_RATIO (margin+UPL)/(MM + fee·PV);
    BINANCE balance/MM; BITMEX and BYBIT balance/(MM + fee·PV)).

    Source
    ------
    MECHANICS.md §4.2 and §5.1.

    Cases
    -----
    okex_usdt_margin_ratio_fixed.
    """
    req = liquidation_requirement_nb(
        rule,
        maintenance_margin_settle,
        position_value_settle,
        maintenance_margin_rate,
        liquidation_fee_rate,
    )
    if not req > 0.0:
        return np.inf
    return margin_balance_settle / req


@njit(cache=True)
def is_liquidation_triggered_nb(
    rule: int,
    margin_balance_settle: float,
    maintenance_margin_settle: float,
    position_value_settle: float,
    maintenance_margin_rate: float,
    liquidation_fee_rate: float,
) -> bool:
    """Whether the venue's liquidation trigger holds (buffer ≤ 1, on a non-zero position).

    False when the position value is not > 0, the requirement is not > 0, or an input is NaN.

    Formula
    -------
    PV > 0 and requirement > 0 and margin balance ≤ requirement.

    Source
    ------
    MECHANICS.md §5.1 (OKX: MR ≤ MMR + fee ⇔ mgnRatio ≤ 100 %; Binance: margin balance ≤ MM;
    BitMEX/Bybit: margin ≤ MM incl. close fee).

    Cases
    -----
    okex_usdt_margin_ratio_fixed.
    """
    if not position_value_settle > 0.0:
        return False
    req = liquidation_requirement_nb(
        rule,
        maintenance_margin_settle,
        position_value_settle,
        maintenance_margin_rate,
        liquidation_fee_rate,
    )
    if not req > 0.0:
        return False
    return margin_balance_settle <= req
