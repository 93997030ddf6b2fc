"""Position value, PnL and average entry price of linear and inverse contracts."""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.enums import ContractKind


@njit(cache=True)
def position_value_nb(
    contract_kind: int, contracts_abs: float, face_value: float, price: float
) -> float:
    """Value of a position in the settle currency.

    Formula
    -------
    linear N·F·P (quote); inverse N·F/P (coin). NaN for an inverse contract at price ≤ 0.

    Source
    ------
    MECHANICS.md §1.2 (BitMEX-examples "XBT Entry Value = 15,000 * 1 USD * 1/750 = 20 XBT";
    OKEx-usdt-guide).

    Cases
    -----
    bitmex_pnl_inv_01, binance_coinm_mm, bitmex_funding_amount_inverse.
    """
    if contract_kind == ContractKind.INVERSE:
        if price <= 0.0:
            return np.nan
        return contracts_abs * face_value / price
    return contracts_abs * face_value * price


@njit(cache=True)
def pnl_nb(
    contract_kind: int,
    contracts_signed: float,
    face_value: float,
    entry_price: float,
    exit_price: float,
) -> float:
    """Profit of a position closed (or marked) at ``exit_price``, in the settle currency.

    Formula
    -------
    linear q·F·(exit − entry); inverse q·F·(1/entry − 1/exit), q signed (+ long, − short).

    Source
    ------
    MECHANICS.md §1.2 (BitMEX-examples; OKEx-swap-guide IX; OKX-v5 get-positions ``upl``).

    Cases
    -----
    bitmex_pnl_inv_01, bitmex_upnl_inv_02, bitmex_rpnl_inv_03, bitmex_rpnl_inv_04,
    okex_swap_rpl_long, okex_swap_rpl_short, okex_usdt_rpl_long, okex_usdt_rpl_short,
    okex_usdt_upl_long, okex_usdt_upl_short, okex_usdt_margin_ratio_fixed.
    """
    if contracts_signed == 0.0:
        return 0.0
    if contract_kind == ContractKind.INVERSE:
        if entry_price <= 0.0 or exit_price <= 0.0:
            return np.nan
        return contracts_signed * face_value * (1.0 / entry_price - 1.0 / exit_price)
    return contracts_signed * face_value * (exit_price - entry_price)


@njit(cache=True)
def average_entry_price_nb(
    contract_kind: int,
    contracts_abs_old: float,
    entry_price_old: float,
    contracts_abs_added: float,
    fill_price: float,
) -> float:
    """Average entry price after adding ``contracts_abs_added`` at ``fill_price``.

    Formula
    -------
    linear (N0·E0 + N1·p)/(N0 + N1) (arithmetic mean); inverse (N0 + N1)/(N0/E0 + N1/p)
    (contract-weighted harmonic mean, keeps the coin cost exact). NaN when both sizes are 0.

    Source
    ------
    MECHANICS.md §1.2 (galoy GRAFANA.md; OKX-v5 ``avgPx``).

    Cases
    -----
    galoy_avg_entry_inverse_1.
    """
    total = contracts_abs_old + contracts_abs_added
    if total <= 0.0:
        return np.nan
    if contracts_abs_old <= 0.0:
        return fill_price
    if contracts_abs_added <= 0.0:
        return entry_price_old
    if contract_kind == ContractKind.INVERSE:
        return total / (contracts_abs_old / entry_price_old + contracts_abs_added / fill_price)
    return (contracts_abs_old * entry_price_old + contracts_abs_added * fill_price) / total
