"""Replay of a mark-price model over time-aligned arrays, for calibration against recorded marks.

One event per row: the index price, the price whose basis is averaged (last trade or book mid),
the last trade price, the funding rate shown and the next funding time, all as of ``ts_ns``. The
basis ``basis_price − index`` is sampled at the first event of every ``sample_ns`` bucket
(``ts_ns // sample_ns``), averaged (EMA or SMA over ``span`` samples) and the model mark is
evaluated at every event.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.enums import MarkAverage, MarkPriceMethod, Status
from backtester.swap.mark_nb import (
    ema_alpha_nb,
    ema_update_nb,
    funding_basis_mark_nb,
    median_mark_nb,
)


@njit(cache=True)
def _averaging_nb(method: int, average: int, span: float) -> int:
    """Return 1 when ``method`` averages the basis, 0 when not, -1 for an invalid combination.

    Invalid: a method other than the four of :func:`replay_mark_nb`, or an averaging method with
    ``span`` < 1 or an ``average`` other than EMA and SMA.
    """
    uses_average = method == MarkPriceMethod.INDEX_EMA_BASIS or (
        method == MarkPriceMethod.BINANCE_MEDIAN
    )
    if not (
        uses_average or method == MarkPriceMethod.FUNDING_BASIS or method == MarkPriceMethod.LAST
    ):
        return -1
    if uses_average and not span >= 1.0:
        return -1
    if uses_average and not (average == MarkAverage.EMA or average == MarkAverage.SMA):
        return -1
    return 1 if uses_average else 0


@njit(cache=True)
def replay_mark_nb(  # noqa: PLR0913  # calibration entry point: one array per aligned column
    ts_ns: np.ndarray,
    index_price: np.ndarray,
    basis_price: np.ndarray,
    last_price: np.ndarray,
    funding_rate: np.ndarray,
    next_funding_ns: np.ndarray,
    method: int,
    average: int,
    span: float,
    sample_ns: int,
    funding_interval_ns: int,
    initial_basis: float,
    out: np.ndarray,
) -> int:
    """Compute the model mark price at every event of aligned arrays into ``out``; return a Status.

    Formula
    -------
    basis_k = basis_price − index at sample k (the first event of each ``sample_ns`` bucket;
    every event when ``sample_ns`` ≤ 0); MA = EMA with α = 2/(span+1) (or SMA of the last
    ``span`` samples). INDEX_EMA_BASIS: mark = index + MA. FUNDING_BASIS: mark = index·(1 + rate ·
    time until funding / interval). BINANCE_MEDIAN: median(price1 = funding-basis mark, price2 =
    index + MA, last). LAST: mark = last. ``initial_basis`` (if finite) is the MA state *after*
    the first row's sample, e.g. the first recorded mark − index (warm start: the first row's
    sample is not applied again; an SMA window is pre-filled with it); NaN starts the MA at the
    first sample.
    A NaN basis sample leaves the MA unchanged.

    Source
    ------
    MECHANICS.md §2.1 (OKX index + EMA(basis)), §2.2 (BitMEX-fair), §2.3 (Binance-mark median).

    Cases
    -----
    None in cases.json (synthetic recovery tests: tests/unit/calibration/test_calibration_mark.py).

    Returns
    -------
    Status.OK, or Status.ERROR (``out`` left NaN) when the arrays differ in length, ``span`` < 1
    for an averaging method, or the method is not one of the four above.
    """
    n = ts_ns.shape[0]
    out[:] = np.nan
    if (
        index_price.shape[0] != n
        or basis_price.shape[0] != n
        or last_price.shape[0] != n
        or funding_rate.shape[0] != n
        or next_funding_ns.shape[0] != n
        or out.shape[0] != n
    ):
        return Status.ERROR
    averaging = _averaging_nb(method, average, span)
    if averaging < 0:
        return Status.ERROR
    uses_average = averaging == 1
    alpha = ema_alpha_nb(span)
    window = max(int(np.round(span)), 1)
    ring = np.empty(window)
    ring_sum = 0.0
    ring_count = 0
    ring_pos = 0
    ma = initial_basis
    initialised = np.isfinite(initial_basis)
    if initialised and average == MarkAverage.SMA:
        ring[:] = initial_basis
        ring_sum = initial_basis * window
        ring_count = window
    warm_start = initialised
    last_bucket = np.int64(0)
    for i in range(n):
        if uses_average:
            bucket = ts_ns[i] // sample_ns if sample_ns > 0 else np.int64(i)
            if i == 0 and warm_start:
                last_bucket = bucket  # initial_basis already includes the first row's sample
            elif i == 0 or bucket != last_bucket:
                last_bucket = bucket
                basis = basis_price[i] - index_price[i]
                if np.isfinite(basis):
                    if average == MarkAverage.EMA:
                        ma = ema_update_nb(ma, basis, alpha, initialised)
                    else:
                        if ring_count == window:
                            ring_sum -= ring[ring_pos]
                        else:
                            ring_count += 1
                        ring[ring_pos] = basis
                        ring_sum += basis
                        ring_pos = (ring_pos + 1) % window
                        ma = ring_sum / ring_count
                    initialised = True
        if method == MarkPriceMethod.LAST:
            out[i] = last_price[i]
            continue
        price1 = funding_basis_mark_nb(
            index_price[i], funding_rate[i], next_funding_ns[i] - ts_ns[i], funding_interval_ns
        )
        if method == MarkPriceMethod.FUNDING_BASIS:
            out[i] = price1
            continue
        if not initialised:
            continue
        price2 = index_price[i] + ma
        if method == MarkPriceMethod.INDEX_EMA_BASIS:
            out[i] = price2
        else:
            out[i] = median_mark_nb(price1, price2, last_price[i])
    return Status.OK


@njit(cache=True)
def mark_errors_nb(
    model_mark: np.ndarray, recorded_mark: np.ndarray, scored: np.ndarray
) -> tuple[float, float, float, float, int]:
    """Error of a model mark against the recorded mark over the ``scored`` rows.

    Formula
    -------
    e = model − recorded; RMSE = sqrt(mean e²); max |e|; the same two of e/recorded (relative,
    ×1e4 = bp).
    Rows where either mark is NaN count as missing: the result is NaN with n = 0 when any scored
    row is missing, so an incomplete model never wins a fit.

    Source
    ------
    Calibration metric (DESIGN.md "Mark price": "the span is calibrated against real mark
    candles and the calibration is reported").

    Cases
    -----
    None in cases.json.

    Returns
    -------
    (rmse_quote, max_abs_error_quote, rmse_relative, max_abs_error_relative, n_scored).
    """
    sse = 0.0
    sse_rel = 0.0
    worst = 0.0
    worst_rel = 0.0
    count = 0
    for i in range(model_mark.shape[0]):
        if not scored[i]:
            continue
        error = model_mark[i] - recorded_mark[i]
        if not np.isfinite(error):
            return np.nan, np.nan, np.nan, np.nan, 0
        sse += error * error
        relative = error / recorded_mark[i]
        sse_rel += relative * relative
        worst = max(worst, abs(error))
        worst_rel = max(worst_rel, abs(relative))
        count += 1
    if count == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    return np.sqrt(sse / count), worst, np.sqrt(sse_rel / count), worst_rel, count
