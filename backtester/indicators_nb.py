"""Kernels of the context's indicators: one pass over a chunk's bars per (field, window/span).

See :mod:`backtester.indicators` for the definitions and how they are read in O(1) per bar.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _neumaier_add_nb(total: float, comp: float, v: float) -> tuple[float, float]:
    """Add ``v`` to the running sum ``total`` with compensation ``comp``; return both.

    Neumaier's variant of Kahan summation: the low-order bits lost by ``total + v`` are kept in
    ``comp`` whichever of the two is larger in magnitude.
    """
    t = total + v
    if abs(total) >= abs(v):
        comp += (total - t) + v
    else:
        comp += (v - t) + total
    return t, comp


@njit(cache=True)
def rolling_mean_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Return the rolling mean of ``x`` over ``window`` values (NaN while fewer).

    out[j] = (x[j-window+1] + … + x[j]) / window for j >= window - 1, NaN before.

    A running sum (add the value entering, subtract the one leaving) with Neumaier
    compensation: the error stays within a few ulps of a fresh sum of the window however long
    the series.
    """
    n = len(x)
    out = np.full(n, np.nan)
    total = 0.0
    comp = 0.0
    for j in range(n):
        total, comp = _neumaier_add_nb(total, comp, x[j])
        if j >= window:
            total, comp = _neumaier_add_nb(total, comp, -x[j - window])
        if j >= window - 1:
            out[j] = (total + comp) / window
    return out


@njit(cache=True)
def ema_nb(x: np.ndarray, alpha: float, first: int, seed: float) -> np.ndarray:
    """Return the EMA of ``x`` from index ``first`` on (NaN before ``first``).

    out[j] for j >= first: e = seed (NaN: the first value), e += alpha·(x[j] − e).
    """
    n = len(x)
    out = np.full(n, np.nan)
    e = seed
    for j in range(first, n):
        v = x[j]
        if math.isnan(e):
            e = v
        else:
            e += alpha * (v - e)
        out[j] = e
    return out
