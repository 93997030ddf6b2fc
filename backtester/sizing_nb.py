"""Jitted twins of :mod:`backtester.sizing` for ``JitStrategy`` callbacks.

Same formulas, same rounding: sizes toward zero to the lot, prices to the tick.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from backtester.enums import ContractKind

_INVERSE = int(ContractKind.INVERSE)
_STEP_EPS = 1e-9


@njit(cache=True)
def _decimals_nb(step: float) -> int:
    return max(0, -math.floor(math.log10(step)) + 3)


@njit(cache=True)
def round_to_lot_nb(contracts: float, lot: float) -> float:
    """``contracts`` rounded toward zero to a multiple of ``lot`` (sign kept)."""
    if not lot > 0.0:
        return contracts
    steps = math.floor(abs(contracts) / lot + _STEP_EPS)
    if steps == 0:
        return 0.0
    return math.copysign(np.round(steps * lot, _decimals_nb(lot)), contracts)


@njit(cache=True)
def round_price_nb(price: float, tick: float, direction: int) -> float:
    """``price`` on the tick grid: nearest (0), down (-1) or up (+1)."""
    if not tick > 0.0:
        return price
    steps = price / tick
    if direction < 0:
        k = math.floor(steps + _STEP_EPS)
    elif direction > 0:
        k = math.ceil(steps - _STEP_EPS)
    else:
        k = math.floor(steps + 0.5 + _STEP_EPS)  # ties (up to float noise) round up
    return float(np.round(k * tick, _decimals_nb(tick)))


@njit(cache=True)
def contracts_for_money_nb(
    kind: int, face: float, lot: float, price: float, notional: float, base: float
) -> float:
    """Return the signed contracts for ``notional`` (quote) or ``base`` (coin) at ``price``.

    ``base`` is used when ``notional`` is NaN. Linear notional/(face·p), base/face; inverse
    notional/face, base·p/face; rounded toward zero to the lot. NaN for a price that is not
    positive.
    """
    if not price > 0.0:
        return np.nan
    if not np.isnan(notional):
        raw = notional / face if kind == _INVERSE else notional / (face * price)
    else:
        raw = base * price / face if kind == _INVERSE else base / face
    return round_to_lot_nb(raw, lot)
