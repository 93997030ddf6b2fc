"""Out-of-sample mark fit and candle alignment (backtester.calibration.mark_fit).

The recorded mark is generated here with pandas (``ewm(span=..., adjust=False)`` of the sampled
basis), so the fit must recover the span that made it, with ~0 error after the split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtester.calibration.mark import AlignedMarks
from backtester.calibration.mark_fit import abs_error_bp, align_candle_closes, fit_out_of_sample
from backtester.dtypes import BAR_DTYPE

S = 1_000_000_000
H = 3600 * S


def _series(n: int = 1200, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000 * S + np.arange(n, dtype=np.int64) * S
    index = 30_000.0 + np.cumsum(rng.normal(0.0, 3.0, n))
    basis = np.zeros(n)
    for i in range(1, n):
        basis[i] = 0.9 * basis[i - 1] + rng.normal(0.0, 2.0)
    return {"ts": ts, "index": index, "last": index + basis}


def _aligned(x: dict[str, np.ndarray], mark: np.ndarray) -> AlignedMarks:
    n = len(x["ts"])
    return AlignedMarks(
        ts_ns=x["ts"],
        mark_price=mark,
        index_price=x["index"],
        last_price=x["last"],
        mid_price=x["last"],
        funding_rate=np.zeros(n),
        next_funding_ns=x["ts"].copy(),
        funding_interval_ns=8 * H,
        source="synthetic",
    )


def test_fit_recovers_the_span_and_scores_only_after_the_split() -> None:
    x = _series()
    step = 5 * S
    # basis sampled at the first row of each 5 s bucket, EMA span 12 started at the first sample
    basis = pd.Series(x["last"] - x["index"])
    first_of_bucket = pd.Series(x["ts"] // step).diff().fillna(1).ne(0).to_numpy()
    ema = basis[first_of_bucket].ewm(span=12, adjust=False).mean()
    mark = x["index"] + ema.reindex(range(len(basis))).ffill().to_numpy()
    data = _aligned(x, mark)
    split = int(x["ts"][600])
    fit = fit_out_of_sample(
        data,
        split,
        "INDEX_EMA_BASIS",
        spans=range(1, 41),
        sample_steps_ns=(S, step, 10 * S),
        warmup_ns=60 * S,
    )
    assert (fit.fit.span, fit.fit.sample_step_ns) == (12.0, step)
    assert fit.fit.n_samples == 600 - 60  # rows 60..599: after the warm-up, before the split
    assert fit.n_out == 600
    assert fit.max_abs_error_bp < 1e-9
    # the baseline: |last − mark| / mark, recomputed here
    last_bp = np.abs(x["last"] - mark)[600:] / mark[600:] * 1e4
    assert fit.last_median_abs_error_bp == pytest.approx(np.median(last_bp), rel=1e-12)
    assert fit.last_p99_abs_error_bp == pytest.approx(np.percentile(last_bp, 99), rel=1e-12)
    assert "span 12 @ 5s" in fit.summary()


def test_out_of_sample_errors_are_not_used_by_the_fit() -> None:
    """A mark made with span 4 before the split and span 30 after it: the fit picks 4 and the
    out-of-sample error is then the (large) error of span 4 on the second half."""
    x = _series()
    basis = pd.Series(x["last"] - x["index"])
    short = basis.ewm(span=4, adjust=False).mean().to_numpy()
    long = basis.ewm(span=30, adjust=False).mean().to_numpy()
    mark = x["index"] + np.where(np.arange(len(basis)) < 600, short, long)
    fit = fit_out_of_sample(
        _aligned(x, mark),
        int(x["ts"][600]),
        "INDEX_EMA_BASIS",
        spans=range(1, 41),
        sample_steps_ns=(0,),
        warmup_ns=0,
    )
    assert fit.fit.span == 4.0
    expected = np.abs(short - long)[600:] / mark[600:] * 1e4
    assert fit.median_abs_error_bp == pytest.approx(np.median(expected), rel=1e-9)
    assert fit.max_abs_error_bp == pytest.approx(expected.max(), rel=1e-9)


def test_fit_refuses_a_split_without_rows_on_both_sides() -> None:
    x = _series(200)
    data = _aligned(x, x["last"].copy())
    with pytest.raises(ValueError, match=r"split_ns: .* leaves 0 in-sample row\(s\)"):
        fit_out_of_sample(data, int(x["ts"][30]), "INDEX_EMA_BASIS", warmup_ns=60 * S)
    with pytest.raises(ValueError, match="has no span to fit"):
        fit_out_of_sample(data, int(x["ts"][100]), "LAST")


def _bars(opens_h: list[int], closes: list[float]) -> np.ndarray:
    bars = np.zeros(len(opens_h), dtype=BAR_DTYPE)
    bars["ts_ns"] = np.array(opens_h, dtype=np.int64) * H
    bars["close"] = closes
    bars["open"] = bars["high"] = bars["low"] = closes
    return bars


def test_align_candle_closes_keeps_close_times_shared_by_all_three() -> None:
    mark = _bars([0, 1, 2, 3], [100.0, 101.0, 102.0, 103.0])
    trades = _bars([0, 1, 3], [100.5, 101.5, 103.5])  # hour 2 missing
    index = _bars([1, 2, 3, 4], [99.0, 100.0, 101.0, 102.0])
    data = align_candle_closes(mark, trades, index, H, source="t")
    assert data.ts_ns.tolist() == [2 * H, 4 * H]  # closes of the hours opened at 1 and 3
    assert data.mark_price.tolist() == [101.0, 103.0]
    assert data.last_price.tolist() == [101.5, 103.5]
    assert data.mid_price.tolist() == [101.5, 103.5]
    assert data.index_price.tolist() == [99.0, 101.0]
    assert data.source == "t (3600s closes)"


def test_align_candle_closes_refuses_off_grid_candles() -> None:
    mark = _bars([0, 1, 2], [1.0, 2.0, 3.0])
    mark["ts_ns"][2] += S  # 2 h + 1 s after the second candle
    good = _bars([0, 1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"mark_bars: row 2 opens 3601000000000 ns"):
        align_candle_closes(mark, good, good, H, source="t")


def test_abs_error_bp_by_hand() -> None:
    assert abs_error_bp(np.array([100.01]), np.array([100.0]))[0] == pytest.approx(1.0)
