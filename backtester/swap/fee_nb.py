"""Trading fee of a fill: fee rate times the position value at the fill price."""

from __future__ import annotations

from numba import njit

from backtester.swap.pnl_nb import position_value_nb


@njit(cache=True)
def fee_nb(
    contract_kind: int, contracts_abs: float, face_value: float, price: float, fee_rate: float
) -> float:
    """Fee of a fill in the settle currency; > 0 paid, < 0 rebate.

    Formula
    -------
    fee = rate × N·F·P (linear) or rate × N·F/P (inverse).

    Source
    ------
    MECHANICS.md §7 (matrixport OKX broker page; ccxt okx.py fees.swap maker 0.0002 / taker
    0.0005).

    Cases
    -----
    okx_fee_swap_lv1 (rates), phemex_liq_iso_long (close fee in margin).
    """
    return fee_rate * position_value_nb(contract_kind, contracts_abs, face_value, price)
