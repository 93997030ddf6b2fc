"""Mark-price kernels: EMA of the basis, funding-basis (fair) mark, median and clipped marks."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def ema_alpha_nb(span: float) -> float:
    """Smoothing factor of an EMA with span N (NaN if span < 0).

    Formula
    -------
    α = 2/(N + 1).

    Source
    ------
    MECHANICS.md §2.4 (Thalex EMA30: "each additional second contributes 2/31").

    Cases
    -----
    None in cases.json (unit tests only).
    """
    if span < 0.0:
        return np.nan
    return 2.0 / (span + 1.0)


@njit(cache=True)
def ema_update_nb(previous: float, value: float, alpha: float, initialised: bool) -> float:
    """One EMA step; returns ``value`` itself when the EMA is not initialised yet.

    Formula
    -------
    ema = previous + α·(value − previous).

    Source
    ------
    MECHANICS.md §2.1 (OKX "Mark price = Spot index price + EMA(basis)").

    Cases
    -----
    None in cases.json (unit tests only).
    """
    if not initialised:
        return value
    return previous + alpha * (value - previous)


@njit(cache=True)
def funding_basis_mark_nb(
    index_price: float, funding_rate: float, time_until_funding_ns: int, funding_interval_ns: int
) -> float:
    """Fair-price mark from the funding basis (BitMEX, Binance 2019-20, Binance/Aevo Price1).

    Returns the index itself when the interval is ≤ 0.

    Formula
    -------
    mark = index·(1 + rate·time until funding/funding interval).

    Source
    ------
    MECHANICS.md §2.2, §2.3 (BitMEX-fair; Binance-docs-copy; Binance-mark Price1).

    Cases
    -----
    binance_mark_basis_2019, aevo_mark_price1.
    """
    if funding_interval_ns <= 0:
        return index_price
    basis = funding_rate * (float(time_until_funding_ns) / float(funding_interval_ns))
    return index_price * (1.0 + basis)


@njit(cache=True)
def median_mark_nb(price1: float, price2: float, last_price: float) -> float:
    """Median of three prices (Binance mark = median(Price1, Price2, contract price)).

    Formula
    -------
    median(p1, p2, last) = max(min(p1, p2), min(max(p1, p2), last)).

    Source
    ------
    MECHANICS.md §2.3 (Binance-mark: "If Price1 < Price2 < Contract Price, take Price2").

    Cases
    -----
    None in cases.json (unit tests only).
    """
    lo = min(price1, price2)
    hi = max(price1, price2)
    return max(lo, min(hi, last_price))


@njit(cache=True)
def clip_mark_nb(last_price: float, best_bid: float, best_ask: float) -> float:
    """Last price clipped into the best bid/ask (legacy Deribit futures mark).

    Formula
    -------
    mark = min(max(last, bid), ask).

    Source
    ------
    MECHANICS.md §2.4 (deribit.com/docs/mark-price).

    Cases
    -----
    deribit_mark_legacy_1, deribit_mark_legacy_2.
    """
    return min(max(last_price, best_bid), best_ask)
