"""Insurance-fund, clawback and auto-deleveraging kernels."""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.swap.pnl_nb import pnl_nb

WEEK_NS = 7 * 86_400_000_000_000
OKEX_CLAWBACK_OFFSET_NS = 86_400_000_000_000 + 8 * 3_600_000_000_000
"""Friday 08:00 UTC (16:00 HKT) after the Thursday 1970-01-01 epoch: the OKEx weekly clawback."""


@njit(cache=True)
def insurance_fund_delta_nb(
    contract_kind: int,
    side: int,
    contracts_abs: float,
    face_value: float,
    bankruptcy_price: float,
    fill_price: float,
) -> float:
    """Insurance-fund gain (> 0) or payment (< 0) when a taken-over position is unwound.

    The fund takes the liquidated position over at the bankruptcy price and closes it at the
    fill price, so its result is the PnL of that same-side position from bankruptcy to fill.

    Formula
    -------
    delta = PnL(side·N, entry = bankruptcy price, exit = fill price).

    Source
    ------
    MECHANICS.md §5.5 (OKX-ADL "liquidation surplus"; Binance "a portion of the remaining
    collateral … will go to the insurance fund"; Bybit "excess margin will be contributed").

    Cases
    -----
    okex_clawback_toy (the 8 USD deficit).
    """
    return pnl_nb(contract_kind, side * contracts_abs, face_value, bankruptcy_price, fill_price)


@njit(cache=True)
def clawback_rate_nb(
    deficit_settle: float, insurance_fund_settle: float, total_profit_settle: float
) -> float:
    """Share of every profitable trader's profit taken by a full-account clawback, in [0, 1].

    Formula
    -------
    rate = min(1, max(0, deficit − insurance fund)/Σ positive profits); 0 without profits.

    Source
    ------
    MECHANICS.md §6 (OKEx "take a portion of the profit in equal percentage from all profited
    traders"; derived formula).

    Cases
    -----
    okex_clawback_toy.
    """
    uncovered = deficit_settle - insurance_fund_settle
    if not uncovered > 0.0 or not total_profit_settle > 0.0:
        return 0.0
    return min(1.0, uncovered / total_profit_settle)


@njit(cache=True)
def adl_threshold_nb(fund_average_settle: float, drop_rate: float, drop_min_settle: float) -> float:
    """OKX ADL "volatility threshold" of the insurance fund.

    Formula
    -------
    threshold = 8-hour average − max(drop rate·average, minimum drop).

    Source
    ------
    MECHANICS.md §6 (OKX-ADL: "8-hour average minus the larger of 30 % or USD 50K").

    Cases
    -----
    okx_adl_trigger.
    """
    return fund_average_settle - max(drop_rate * fund_average_settle, drop_min_settle)


@njit(cache=True)
def is_adl_triggered_nb(fund_settle: float, threshold_settle: float) -> bool:
    """Whether OKX ADL is triggered: the fund is below its threshold, or depleted (≤ 0).

    Formula
    -------
    fund < threshold or fund ≤ 0.

    Source
    ------
    MECHANICS.md §6 (OKX-ADL: "drops below a volatility threshold … or is depleted").

    Cases
    -----
    okx_adl_trigger.
    """
    return fund_settle < threshold_settle or fund_settle <= 0.0


@njit(cache=True)
def bitmex_adl_ranking_nb(mark_value: float, entry_value: float, bankrupt_value: float) -> float:
    """BitMEX auto-deleveraging ranking score (higher is deleveraged first; NaN if undefined).

    Formula
    -------
    PNL% = (mark value − avg entry value)/|avg entry value|;
    effective leverage = |mark value|/(mark value − bankrupt value);
    ranking = PNL% × leverage if PNL% > 0 else PNL%/leverage.

    Source
    ------
    MECHANICS.md §6 (BitMEX-docs-copy ADL page).

    Cases
    -----
    None in cases.json (unit tests only).
    """
    if entry_value == 0.0:
        return np.nan
    cushion = mark_value - bankrupt_value
    if cushion == 0.0:
        return np.nan
    pnl_pct = (mark_value - entry_value) / abs(entry_value)
    leverage = abs(mark_value) / cushion
    if pnl_pct > 0.0:
        return pnl_pct * leverage
    if leverage == 0.0:
        return np.nan
    return pnl_pct / leverage


@njit(cache=True)
def binance_adl_ranking_nb(
    unrealised_pnl_settle: float, wallet_balance_settle: float, maintenance_margin_settle: float
) -> float:
    """Binance 2019-20 "counterparty liquidation" ranking (higher is deleveraged first).

    Formula
    -------
    PnlPercent = max(0, UPnL)/max(1, WB); MarginRatio = MM/(WB + UPnL), 0 if WB + UPnL ≤ 0;
    ranking = PnlPercent × MarginRatio.

    Source
    ------
    MECHANICS.md §6 (Binance-docs-copy, 2019-20 ADL section).

    Cases
    -----
    None in cases.json (unit tests only).
    """
    pnl_percent = max(0.0, unrealised_pnl_settle) / max(1.0, wallet_balance_settle)
    equity = wallet_balance_settle + unrealised_pnl_settle
    if not equity > 0.0:
        return 0.0
    return pnl_percent * (maintenance_margin_settle / equity)


@njit(cache=True)
def next_period_end_ns_nb(ts_ns: int, period_ns: int, offset_ns: int) -> int:
    """End of the clawback period that contains ``ts_ns`` (strictly after it).

    Formula
    -------
    next = (⌊(ts − offset)/period⌋ + 1)·period + offset.

    Source
    ------
    MECHANICS.md §6 (OKEx: clawback computed at the weekly Friday 16:00 HKT = 08:00 UTC
    delivery/settlement, period = one week, offset = 1 day 8 h after the Thursday epoch).
    """
    n = (ts_ns - offset_ns) // period_ns
    return (n + 1) * period_ns + offset_ns


@njit(cache=True)
def fund_after_delta_nb(fund_settle: float, delta_settle: float) -> tuple[float, float]:
    """(fund balance after a liquidation's delta, deficit the fund could not cover).

    Formula
    -------
    fund' = max(0, fund + delta); uncovered = max(0, −(fund + delta)).

    Source
    ------
    MECHANICS.md §5.5, §6 ("margin-call losses first hit the insurance fund; the rest is
    socialised"). An infinite fund (the default) never leaves a deficit.
    """
    after = fund_settle + delta_settle
    if after < 0.0:
        return 0.0, -after
    return after, 0.0
