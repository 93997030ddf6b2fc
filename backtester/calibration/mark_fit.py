"""Out-of-sample fit of a mark model, and alignment of mark, trade and index candles for it.

:mod:`backtester.calibration.mark` fits and scores a mark model on the same rows. A profile's
source line must state an error the fit did not see, so this module

* fits the span and sampling step on the rows before a split time and scores the fitted model on
  the rows after it (:func:`fit_out_of_sample`): the model is causal, so the replay runs over
  every row and the rows before the split only warm the moving average up for the scored ones;
* reports the median, 99th percentile and maximum of |model − recorded| in basis points of the
  recorded mark, next to the same figures for mark = last (:class:`OutOfSampleFit`);
* builds :class:`~backtester.calibration.mark.AlignedMarks` from candles when no tick capture
  exists (:func:`align_candle_closes`): one row per candle close, the index taken from an index
  series or a stated proxy (e.g. spot candles), no book (the last price stands in for the mid).

See ``docs/mark_calibration.md`` for the figures measured on the shared data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtester.calibration.mark import (
    DEFAULT_SAMPLE_STEPS_NS,
    DEFAULT_SPANS,
    HOUR_NS,
    SECOND_NS,
    AlignedMarks,
    MarkCalibration,
    MarkReplay,
    check_span_fit,
    format_step,
)


@dataclass(frozen=True)
class OutOfSampleFit:
    """A mark model fitted before ``split_ns`` and scored after it.

    Attributes
    ----------
    fit
        The fitted model, with its in-sample RMSE (rows from the warm-up end to ``split_ns``).
    split_ns
        First timestamp of the out-of-sample rows (int64 ns UTC).
    n_out
        Out-of-sample rows scored.
    median_abs_error_bp, p99_abs_error_bp, max_abs_error_bp
        |model − recorded| / recorded × 1e4 over the out-of-sample rows: median, 99th percentile
        (numpy's linear interpolation), maximum.
    last_median_abs_error_bp, last_p99_abs_error_bp
        The same two figures for mark = last price on the same rows (the baseline).
    """

    fit: MarkCalibration
    split_ns: int
    n_out: int
    median_abs_error_bp: float
    p99_abs_error_bp: float
    max_abs_error_bp: float
    last_median_abs_error_bp: float
    last_p99_abs_error_bp: float

    def summary(self) -> str:
        """One line: fitted model, out-of-sample error, the mark = last baseline."""
        return (
            f"{self.fit.label} fitted before the split (in-sample RMSE {self.fit.rmse_bp:.3f} bp, "
            f"n={self.fit.n_samples}); out of sample (n={self.n_out}): median "
            f"{self.median_abs_error_bp:.4f} bp, p99 {self.p99_abs_error_bp:.3f} bp, max "
            f"{self.max_abs_error_bp:.3f} bp; mark = last: median "
            f"{self.last_median_abs_error_bp:.4f} bp, p99 {self.last_p99_abs_error_bp:.3f} bp "
            f"[{self.fit.data_source}]"
        )


def abs_error_bp(model_mark: np.ndarray, recorded_mark: np.ndarray) -> np.ndarray:
    """|model − recorded| / recorded × 1e4, per row (basis points of the recorded mark)."""
    model = np.asarray(model_mark, dtype=np.float64)
    recorded = np.asarray(recorded_mark, dtype=np.float64)
    return np.abs(model - recorded) / recorded * 1e4


def fit_out_of_sample(
    data: AlignedMarks,
    split_ns: int,
    method: str = "BINANCE_MEDIAN",
    *,
    average: str = "ema",
    basis_price: str = "last",
    spans: Sequence[float] = DEFAULT_SPANS,
    sample_steps_ns: Sequence[int] = DEFAULT_SAMPLE_STEPS_NS,
    warmup_ns: int = 60 * SECOND_NS,
    initial: str = "first_sample",
) -> OutOfSampleFit:
    """Fit span and step on the rows before ``split_ns``; score the fitted model after it.

    Formula
    -------
    (span, step) = argmin over the grid of sqrt(mean (model − recorded)²) over the rows with
    first + warm-up ≤ ts < split (ties: smaller step, then smaller span); out-of-sample error
    e = |model − recorded| / recorded × 1e4 bp over the rows with ts ≥ split, reported as
    median, 99th percentile and maximum.

    The defaults replay what the engine computes: an EMA of last − index (the engine has no
    book), started at the first sample (``initial="first_sample"``: a run starts cold).

    Source
    ------
    DESIGN.md "Mark price" (the span is calibrated against real marks and the calibration is
    reported); MECHANICS.md §2.1 (OKX), §2.3 (Binance median mark).

    Cases
    -----
    None in cases.json (tests/unit/calibration/test_calibration_mark_fit.py recovers a known
    span on a synthetic series; tests/realdata/test_realdata_mark_calibration.py on the
    captures).
    """
    check_span_fit(method, average, basis_price, initial)
    split_ns = int(split_ns)
    replay = MarkReplay(data, method, average, basis_price, warmup_ns, initial)
    ts = data.ts_ns
    in_sample = replay.scored & (ts < split_ns)
    out_sample = ts >= split_ns
    if not in_sample.any() or not out_sample.any():
        raise ValueError(
            f"split_ns: {split_ns} leaves {int(in_sample.sum())} in-sample row(s) after the "
            f"warm-up and {int(out_sample.sum())} out-of-sample row(s); expected both > 0 "
            f"(data spans {int(ts[0])} .. {int(ts[-1])})"
        )
    recorded = data.mark_price
    best: tuple[float, float, int] | None = None
    for step in (int(s) for s in sample_steps_ns):
        for span in (float(s) for s in spans):
            errors = replay.model(span, step)[in_sample] - recorded[in_sample]
            rmse = math.sqrt(float(np.mean(errors * errors)))
            # strict < keeps the first minimum: smaller step, then smaller span
            if math.isfinite(rmse) and (best is None or rmse < best[0]):
                best = (rmse, span, step)
    if best is None:
        raise ValueError(f"{data.source}: no grid point produced a complete model mark")
    _, span, step = best
    replay.scored = in_sample
    fit = replay.result(span, step)
    model_errors = abs_error_bp(replay.model(span, step), recorded)[out_sample]
    last_errors = abs_error_bp(data.last_price, recorded)[out_sample]
    return OutOfSampleFit(
        fit=fit,
        split_ns=split_ns,
        n_out=int(out_sample.sum()),
        median_abs_error_bp=float(np.median(model_errors)),
        p99_abs_error_bp=float(np.percentile(model_errors, 99)),
        max_abs_error_bp=float(np.max(model_errors)),
        last_median_abs_error_bp=float(np.median(last_errors)),
        last_p99_abs_error_bp=float(np.percentile(last_errors, 99)),
    )


def align_candle_closes(
    mark_bars: np.ndarray,
    trade_bars: np.ndarray,
    index_bars: np.ndarray,
    interval_ns: int,
    *,
    source: str,
    funding_interval_ns: int = 8 * HOUR_NS,
) -> AlignedMarks:
    """One row per close time shared by the mark, trade and index candles of ``interval_ns``.

    ``*_bars`` are BAR_DTYPE records (``ts_ns`` = candle open); a row holds the three closes at
    open + ``interval_ns``. No book: ``mid_price`` = last close. No funding term: rate 0 (use
    INDEX_EMA_BASIS, not BINANCE_MEDIAN, on candles). Candles of another spacing are refused,
    and hours missing from any series drop out (the EMA then bridges the gap as one step).
    """
    interval_ns = int(interval_ns)
    if interval_ns <= 0:
        raise ValueError(f"interval_ns: expected > 0, got {interval_ns}")
    closes = []
    for name, bars in (("mark_bars", mark_bars), ("trade_bars", trade_bars)):
        closes.append(_closes(name, bars, interval_ns))
    closes.append(_closes("index_bars", index_bars, interval_ns))
    ts = closes[0][0]
    for other_ts, _ in closes[1:]:
        ts = np.intersect1d(ts, other_ts)
    if len(ts) < 2:
        raise ValueError(f"{source}: fewer than 2 close times shared by the three candle series")
    picked = [values[np.searchsorted(times, ts)] for times, values in closes]
    mark, last, index = picked
    return AlignedMarks(
        ts_ns=ts,
        mark_price=mark,
        index_price=index,
        last_price=last,
        mid_price=last,
        funding_rate=np.zeros(len(ts)),
        next_funding_ns=ts.copy(),
        funding_interval_ns=int(funding_interval_ns),
        source=f"{source} ({format_step(interval_ns)} closes)",
    )


def _closes(name: str, bars: np.ndarray, interval_ns: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(bars, np.ndarray) or bars.dtype.names is None:
        raise TypeError(f"{name}: expected BAR_DTYPE records (ts_ns, open, high, low, close)")
    if not {"ts_ns", "close"} <= set(bars.dtype.names):
        raise TypeError(f"{name}: expected BAR_DTYPE records (ts_ns, open, high, low, close)")
    ts = bars["ts_ns"].astype(np.int64)
    steps = np.diff(ts)
    bad = np.flatnonzero((steps <= 0) | (steps % interval_ns != 0))
    if len(bad):
        row = int(bad[0]) + 1
        raise ValueError(
            f"{name}: row {row} opens {int(steps[bad[0]])} ns after the previous candle; "
            f"expected increasing candles on the {format_step(interval_ns)} grid"
        )
    return ts + interval_ns, bars["close"].astype(np.float64)


__all__ = ["OutOfSampleFit", "abs_error_bp", "align_candle_closes", "fit_out_of_sample"]
