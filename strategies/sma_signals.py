"""SMA crossover as a signals module: a function of the bars returning entry and exit arrays.

Long while the fast SMA of the close is above the slow one: enter when it crosses above, exit
when it crosses below (acted on at the bar's close, filled at the next bar's open). Run it:
``backtester run strategies/sma_signals.py --data sample --param fast=10``; the keyword
parameters of ``signals`` are the strategy's parameters (see ``backtester.signal_module``).
"""

from __future__ import annotations

import numpy as np


def sma(values: np.ndarray, n: int) -> np.ndarray:
    """Trailing mean of n values (NaN for the first n - 1)."""
    out = np.full(len(values), np.nan)
    if len(values) >= n:
        cumulative = np.cumsum(np.r_[0.0, values])
        out[n - 1 :] = (cumulative[n:] - cumulative[:-n]) / n
    return out


def signals(bars, fast=20, slow=120, contracts=1.0):
    """Entries where the fast SMA crosses above the slow one, exits where it crosses below."""
    close = bars["close"]
    above = sma(close, fast) > sma(close, slow)  # False while either is NaN
    cross = np.r_[False, above[1:] != above[:-1]]
    return {"entries": cross & above, "exits": cross & ~above, "contracts": contracts}
