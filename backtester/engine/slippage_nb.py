"""Taker slippage rate of one fill: a fixed rate plus an optional square-root market impact.

The per-instrument row ``slippage[i] = (fixed_rate, impact_coefficient, max_rate)`` is built
before the run from the user's :class:`~backtester.engine.slippage.SlippageModel`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from backtester.enums import ContractKind


@njit(cache=True)
def contracts_base_nb(
    contract_kind: int, contracts: float, face_value: float, price: float
) -> float:
    """Return the base coin in ``contracts`` at ``price``: linear q·face; inverse q·face/price."""
    if contract_kind == ContractKind.INVERSE:
        return contracts * face_value / price
    return contracts * face_value


@njit(cache=True)
def taker_slippage_rate_nb(
    slip: npt.NDArray[np.float64],
    contract_kind: int,
    face_value: float,
    contracts: float,
    price: float,
    volume_base: float,
) -> float:
    """Return the fraction of the price a taker fill of ``contracts`` moves against the order.

    Formula
    -------
    rate = min(fixed + Y·sqrt(Q / V), max_rate), with Q the fill in base coin and V the base
    coin traded by the tick or bar the fill happens on. Without an impact term (Y = 0) the rate
    is min(fixed, max_rate). When V is unknown or 0 (a tick without size, a zero-volume bar) an
    impact model cannot size the impact, and the rate is ``max_rate`` (the model's ceiling: the
    conservative choice, stated in the model's docstring).

    Source
    ------
    The square-root law of market impact, I = Y·σ·sqrt(Q/V) (Tóth et al. 2011, "Anomalous price
    impact and the critical nature of liquidity", Phys. Rev. X 1, 021006; Almgren et al. 2005,
    "Direct estimation of equity market impact"); here Y absorbs σ (one coefficient per
    instrument, in price fraction).

    Cases
    -----
    None in cases.json (hand-derived tests in tests/unit/engine/test_engine_slippage.py).
    """
    fixed: float = slip[0]
    coefficient: float = slip[1]
    cap: float = slip[2]
    if coefficient == 0.0:
        return min(fixed, cap)
    if not volume_base > 0.0:
        return cap
    q = contracts_base_nb(contract_kind, contracts, face_value, price)
    impact: float = coefficient * np.sqrt(q / volume_base)
    return min(fixed + impact, cap)
