"""Margin kernels: initial and maintenance margin, venue margin ratios and the liquidation trigger.

Every venue's trigger is expressed through one number, the *liquidation buffer*: the margin
balance divided by the margin at which that venue liquidates (> 1 safe, ≤ 1 triggered). The
liquidation-price kernels in ``liquidation_nb`` solve buffer = 1 for the same rule.

One source per rule: :func:`liquidation_rule_terms_nb` is the only place that maps a
:class:`~backtester.enums.LiquidationRule` to its terms (how its ratio is formed, which terms its
requirement holds); the margin ratio, the requirement, the isolated liquidation price
(``liquidation_nb.liquidation_price_nb``) and the report's threshold line
(:func:`margin_ratio_threshold_nb`) all read it, and it refuses a value it does not know.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.enums import LiquidationRule, MarginRatioForm
from backtester.swap.pnl_nb import position_value_nb

# plain ints for the terms tuple (numba types one int field for every branch; globals are
# frozen as constants at compile time)
_BALANCE_OVER_VALUE = int(MarginRatioForm.BALANCE_OVER_VALUE)
_BALANCE_OVER_REQUIREMENT = int(MarginRatioForm.BALANCE_OVER_REQUIREMENT)
_MAINTENANCE_OVER_BALANCE = int(MarginRatioForm.MAINTENANCE_OVER_BALANCE)
_BALANCE_OVER_MAINTENANCE = int(MarginRatioForm.BALANCE_OVER_MAINTENANCE)


@njit(cache=True)
def initial_margin_nb(
    contract_kind: int, contracts_abs: float, face_value: float, price: float, leverage: float
) -> float:
    """Return the initial margin of a position at ``price`` with ``leverage`` (NaN if lev ≤ 0).

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
def liquidation_rule_terms_nb(rule: int) -> tuple[int, float, bool]:
    """Return a liquidation rule's terms: (ratio form, fee coefficient, uses maintenance amount).

    The requirement (the margin balance at or below which the venue liquidates) is
    ``PV·(MMR + a·fee) − c`` with ``a`` the fee coefficient and ``c`` the maintenance amount
    (cum) when the rule uses it, else 0; the ratio form (:class:`~backtester.enums.MarginRatioForm`)
    says how the venue displays the margin ratio. Adding a rule means adding its row here.

    Formula
    -------
    OKX_LEGACY (BALANCE_OVER_VALUE, 1, no cum): requirement PV·(MMR + fee);
    OKX_MGN_RATIO (BALANCE_OVER_REQUIREMENT, 1, cum): MM + fee·PV;
    BINANCE (MAINTENANCE_OVER_BALANCE, 0, cum): MM = PV·MMR − cum;
    BITMEX, BYBIT (BALANCE_OVER_MAINTENANCE, 1, cum): MM + fee·PV (close commission / fee).

    Source
    ------
    MECHANICS.md §4.2, §5.1 (OKEx-swap-guide IX; OKX mgnRatio; Binance-liq-USDM; BitMEX MM +
    close commission; Bybit MM incl. estimated close fee).

    Cases
    -----
    okex_usdt_margin_ratio_fixed.

    Raises
    ------
    ValueError
        On a value that is not a :class:`~backtester.enums.LiquidationRule` (no silent default).
    """
    if rule == LiquidationRule.OKX_LEGACY:
        return _BALANCE_OVER_VALUE, 1.0, False
    if rule == LiquidationRule.OKX_MGN_RATIO:
        return _BALANCE_OVER_REQUIREMENT, 1.0, True
    if rule == LiquidationRule.BINANCE:
        return _MAINTENANCE_OVER_BALANCE, 0.0, True
    if rule == LiquidationRule.BITMEX or rule == LiquidationRule.BYBIT:
        return _BALANCE_OVER_MAINTENANCE, 1.0, True
    raise ValueError("liquidation_rule: expected a LiquidationRule value (0-4)")


@njit(cache=True)
def margin_ratio_nb(
    rule: int,
    margin_balance_settle: float,
    maintenance_margin_settle: float,
    position_value_settle: float,
    liquidation_fee_rate: float,
) -> float:
    """Return the margin ratio as the venue displays it (inf where its denominator is ≤ 0).

    Formula
    -------
    By the rule's ratio form (:func:`liquidation_rule_terms_nb`): OKX_LEGACY (margin + UPL)/PV;
    OKX_MGN_RATIO (margin + UPL)/(MM + fee·PV); BINANCE MM/margin balance; BITMEX, BYBIT margin
    balance/MM.

    Source
    ------
    MECHANICS.md §4.2 (OKEx-usdt-guide fixed margin ratio; OKX "Tiered maintenance margin ratio
    rules" mgnRatio; Binance-liq-USDM; BitMEX-docs-copy).

    Cases
    -----
    okex_usdt_margin_ratio_fixed.
    """
    form, fee_coefficient, _ = liquidation_rule_terms_nb(rule)
    if form == MarginRatioForm.BALANCE_OVER_VALUE:
        num = margin_balance_settle
        den = position_value_settle
    elif form == MarginRatioForm.BALANCE_OVER_REQUIREMENT:
        num = margin_balance_settle
        fee_settle = fee_coefficient * liquidation_fee_rate * position_value_settle
        den = maintenance_margin_settle + fee_settle
    elif form == MarginRatioForm.MAINTENANCE_OVER_BALANCE:
        num = maintenance_margin_settle
        den = margin_balance_settle
    else:  # BALANCE_OVER_MAINTENANCE: the terms function returns no other form
        num = margin_balance_settle
        den = maintenance_margin_settle
    if den <= 0.0:
        return np.inf
    return num / den


@njit(cache=True)
def margin_ratio_threshold_nb(
    rule: int, maintenance_margin_rate: float, liquidation_fee_rate: float
) -> float:
    """Return the displayed margin ratio at which the rule liquidates a position with cum = 0.

    That is a position without a maintenance amount (e.g. tier 1); the ratio *rises* to it under
    MAINTENANCE_OVER_BALANCE (Binance) and falls to it under every other form.

    Formula
    -------
    With k = MMR + a·fee (a from :func:`liquidation_rule_terms_nb`), trigger balance ≤ PV·k:
    BALANCE_OVER_VALUE k; BALANCE_OVER_REQUIREMENT 1; MAINTENANCE_OVER_BALANCE MMR/k;
    BALANCE_OVER_MAINTENANCE k/MMR.

    Source
    ------
    MECHANICS.md §4.2, §5.1 (the same triggers as :func:`liquidation_requirement_nb`).

    Cases
    -----
    okex_usdt_margin_ratio_fixed ("liquidation_threshold" = MMR + fee).
    """
    form, fee_coefficient, _ = liquidation_rule_terms_nb(rule)
    k = maintenance_margin_rate + fee_coefficient * liquidation_fee_rate
    if form == MarginRatioForm.BALANCE_OVER_VALUE:
        return k
    if form == MarginRatioForm.BALANCE_OVER_REQUIREMENT:
        return 1.0
    if form == MarginRatioForm.MAINTENANCE_OVER_BALANCE:
        return maintenance_margin_rate / k
    return k / maintenance_margin_rate


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
    PV·(MMR + a·fee) − c (terms from :func:`liquidation_rule_terms_nb`): OKX_LEGACY
    PV·(MMR + fee); OKX_MGN_RATIO, BITMEX, BYBIT MM + fee·PV; BINANCE MM.

    Source
    ------
    MECHANICS.md §4.2, §5.1 (OKEx-swap-guide IX; OKX mgnRatio; Binance-liq-USDM; BitMEX MM +
    close commission; Bybit MM incl. estimated close fee).

    Cases
    -----
    okex_usdt_margin_ratio_fixed ("liquidation_threshold" = MMR + fee).
    """
    _, fee_coefficient, uses_maintenance_amount = liquidation_rule_terms_nb(rule)
    if not uses_maintenance_amount:
        return position_value_settle * (
            maintenance_margin_rate + fee_coefficient * liquidation_fee_rate
        )
    # MM = PV·MMR − cum already holds the maintenance amount
    fee_settle = fee_coefficient * liquidation_fee_rate * position_value_settle
    return maintenance_margin_settle + fee_settle


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
    PV > 0 and buffer ≤ 1 (:func:`liquidation_buffer_nb`), i.e. requirement > 0 and margin
    balance ≤ requirement: for a finite requirement > 0, balance/requirement rounds to ≤ 1
    exactly when balance ≤ requirement (the quotient of two doubles is never the tie 1 + 2⁻⁵³).

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
    buffer = liquidation_buffer_nb(
        rule,
        margin_balance_settle,
        maintenance_margin_settle,
        position_value_settle,
        maintenance_margin_rate,
        liquidation_fee_rate,
    )
    return buffer <= 1.0
