"""Mark-price calibration: a mark generated with a known span (independently, with pandas) is
recovered exactly on the grid with ~0 error; alternatives, errors and the no-index deviation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtester.calibration.mark import (
    AlignedMarks,
    align_records,
    calibrate_mark_models,
    deviation_summary,
    evaluate_mark_model,
    fit_mark_span,
    mark_last_deviation,
    model_mark,
    span_grid,
)
from backtester.dtypes import BAR_DTYPE, FUNDING_RATE_DTYPE, PRICE_DTYPE, TRADE_DTYPE
from backtester.enums import MarkAverage, MarkPriceMethod, Status
from backtester.swap.mark_calibration_nb import mark_errors_nb, replay_mark_nb

S = 1_000_000_000
H = 3600 * S
STEPS = (1 * S, 2 * S, 5 * S, 10 * S)
SPANS = tuple(range(1, 61))


def synthetic_inputs(n: int = 900, seed: int = 7) -> dict[str, np.ndarray]:
    """Index random walk and a mean-reverting basis, one row per ~1 s (with ms jitter)."""
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000 * S + np.arange(n, dtype=np.int64) * S + rng.integers(0, 20, n) * 1_000_000
    index = 30_000.0 + np.cumsum(rng.normal(0.0, 3.0, n))
    basis = np.zeros(n)
    for i in range(1, n):
        basis[i] = 0.9 * basis[i - 1] + rng.normal(0.0, 2.0)
    mid = index + basis
    last = mid + rng.choice([-0.05, 0.05], n)
    return {"ts": ts, "index": index, "mid": mid, "last": last}


def aligned(x: dict[str, np.ndarray], mark: np.ndarray, rate: float = 0.0001) -> AlignedMarks:
    ts = x["ts"]
    return AlignedMarks(
        ts_ns=ts,
        mark_price=mark,
        index_price=x["index"],
        last_price=x["last"],
        mid_price=x["mid"],
        funding_rate=np.full(len(ts), rate),
        next_funding_ns=(ts // (8 * H) + 1) * 8 * H,
        funding_interval_ns=8 * H,
        source="synthetic",
    )


def sampled_basis(x: dict[str, np.ndarray], step_ns: int, basis_price: str = "mid") -> pd.Series:
    """Basis at the first row of each step bucket, forward-filled to every row (pandas)."""
    basis = pd.Series(x[basis_price] - x["index"])
    first = ~pd.Series(x["ts"] // step_ns).duplicated()
    return basis.where(first), first


def ema_mark(x: dict[str, np.ndarray], span: float, step_ns: int) -> np.ndarray:
    basis, first = sampled_basis(x, step_ns)
    ema = basis[first].ewm(span=span, adjust=False).mean()
    return x["index"] + ema.reindex(basis.index).ffill().to_numpy()


def sma_mark(x: dict[str, np.ndarray], window: int, step_ns: int) -> np.ndarray:
    basis, first = sampled_basis(x, step_ns)
    sma = basis[first].rolling(window, min_periods=1).mean()
    return x["index"] + sma.reindex(basis.index).ffill().to_numpy()


def test_ema_span_recovered_exactly_on_the_grid() -> None:
    x = synthetic_inputs()
    data = aligned(x, ema_mark(x, span=30, step_ns=S))
    fit = fit_mark_span(
        data, spans=SPANS, sample_steps_ns=STEPS, warmup_ns=0, initial="first_sample"
    )
    assert fit.method == "INDEX_EMA_BASIS"
    assert fit.span == 30.0
    assert fit.sample_step_ns == S
    assert fit.rmse_quote < 1e-9
    assert fit.max_abs_error_quote < 1e-8
    assert fit.n_samples == 900
    assert fit.mean_lag_ns == 14.5 * S
    # the neighbours on the grid are clearly worse
    grid = span_grid(
        data, spans=(29, 30, 31), sample_steps_ns=(S,), warmup_ns=0, initial="first_sample"
    )
    assert grid.loc[S, 30.0] < 1e-9
    assert grid.loc[S, 29.0] > 1e-3
    assert grid.loc[S, 31.0] > 1e-3


def test_ema_span_and_step_recovered_with_coarser_sampling() -> None:
    x = synthetic_inputs()
    data = aligned(x, ema_mark(x, span=12, step_ns=5 * S))
    fit = fit_mark_span(
        data, spans=SPANS, sample_steps_ns=STEPS, warmup_ns=0, initial="first_sample"
    )
    assert (fit.span, fit.sample_step_ns) == (12.0, 5 * S)
    assert fit.rmse_quote < 1e-9


def test_sma_window_recovered() -> None:
    x = synthetic_inputs()
    data = aligned(x, sma_mark(x, window=20, step_ns=2 * S))
    fit = fit_mark_span(
        data,
        average="sma",
        spans=SPANS,
        sample_steps_ns=STEPS,
        warmup_ns=0,
        initial="first_sample",
    )
    assert (fit.span, fit.sample_step_ns, fit.average) == (20.0, 2 * S, "sma")
    assert fit.rmse_quote < 1e-9


def test_golden_section_refines_a_fractional_span() -> None:
    x = synthetic_inputs()
    data = aligned(x, ema_mark(x, span=30.4, step_ns=S))
    coarse = fit_mark_span(
        data, spans=SPANS, sample_steps_ns=(S,), warmup_ns=0, initial="first_sample"
    )
    fine = fit_mark_span(
        data, spans=SPANS, sample_steps_ns=(S,), warmup_ns=0, initial="first_sample", refine=True
    )
    assert coarse.span == 30.0
    assert fine.span == pytest.approx(30.4, abs=2e-3)
    assert fine.rmse_quote < coarse.rmse_quote / 10


def test_recorded_initial_basis_makes_a_warm_start() -> None:
    x = synthetic_inputs()
    prior_basis = 5.0  # EMA state before the first row: a recording that starts mid-stream
    basis = pd.Series(np.r_[prior_basis, x["mid"] - x["index"]])
    mark = x["index"] + basis.ewm(span=30, adjust=False).mean().to_numpy()[1:]
    data = aligned(x, mark)
    warm = evaluate_mark_model(data, span=30, sample_step_ns=S, warmup_ns=0, initial="recorded")
    cold = evaluate_mark_model(data, span=30, sample_step_ns=S, warmup_ns=0, initial="first_sample")
    assert warm.max_abs_error_quote < 1e-9
    # a cold start is off by the prior state's weight at the first row, then decays
    first_gap = (1 - 2 / 31) * abs(prior_basis - (x["mid"][0] - x["index"][0]))
    assert cold.max_abs_error_quote == pytest.approx(first_gap, rel=1e-9)


def test_binance_median_span_recovered() -> None:
    x = synthetic_inputs()
    price2 = ema_mark(x, span=25, step_ns=S)
    data0 = aligned(x, price2)
    price1 = data0.index_price * (
        1 + data0.funding_rate * (data0.next_funding_ns - data0.ts_ns) / (8 * H)
    )
    lo, hi = np.minimum(price1, price2), np.maximum(price1, price2)
    mark = np.maximum(lo, np.minimum(hi, x["last"]))
    data = aligned(x, mark)
    fit = fit_mark_span(
        data,
        "BINANCE_MEDIAN",
        spans=SPANS,
        sample_steps_ns=STEPS,
        warmup_ns=0,
        initial="first_sample",
    )
    assert (fit.span, fit.sample_step_ns) == (25.0, S)
    assert fit.rmse_quote < 1e-9
    report = calibrate_mark_models(
        data,
        spans=SPANS,
        sample_steps_ns=(S,),
        warmup_ns=0,
        initial="first_sample",
        averages=("ema",),
        basis_prices=("mid",),
    )
    assert report.best.method == "BINANCE_MEDIAN"
    assert report.best.span == 25.0
    assert [r.method for r in report.results][-1] in ("FUNDING_BASIS", "LAST")
    assert report.get("LAST").rmse_quote > 100 * report.best.rmse_quote
    frame = report.to_frame()
    assert frame.loc[0, "method"] == "BINANCE_MEDIAN"
    assert frame.loc[0, "mean_lag_s"] == 12.0
    assert "BINANCE_MEDIAN ema(mid) span 25 @ 1s" in report.summary()


def test_funding_basis_mark_fits_exactly_without_parameters() -> None:
    x = synthetic_inputs(n=200)
    data0 = aligned(x, x["index"])
    mark = data0.index_price * (
        1 + data0.funding_rate * (data0.next_funding_ns - data0.ts_ns) / (8 * H)
    )
    result = evaluate_mark_model(aligned(x, mark), "FUNDING_BASIS", warmup_ns=0)
    assert result.rmse_quote < 1e-9
    assert np.isnan(result.span)
    assert result.sample_step_ns == 0
    assert result.label == "FUNDING_BASIS"
    last = evaluate_mark_model(aligned(x, x["last"]), "LAST", warmup_ns=10 * S)
    assert last.rmse_quote == 0.0
    assert last.n_samples == np.count_nonzero(x["ts"] >= x["ts"][0] + 10 * S)
    assert 185 <= last.n_samples <= 191


def test_errors_in_quote_and_bp() -> None:
    model = np.array([101.0, 99.0, 100.0, np.nan])
    recorded = np.array([100.0, 100.0, 100.0, 100.0])
    rmse, worst, rmse_rel, worst_rel, n = mark_errors_nb(
        model, recorded, np.array([True, True, True, False])
    )
    assert rmse == pytest.approx(np.sqrt(2 / 3))
    assert worst == 1.0
    assert rmse_rel * 1e4 == pytest.approx(np.sqrt(2 / 3) * 100)
    assert worst_rel * 1e4 == pytest.approx(100.0)
    assert n == 3
    # a missing model value inside the scored rows makes the whole fit invalid
    assert mark_errors_nb(model, recorded, np.ones(4, dtype=np.bool_))[4] == 0


def test_kernel_refuses_bad_parameters_with_a_status() -> None:
    n = 5
    ts = np.arange(n, dtype=np.int64) * S
    px = np.full(n, 100.0)
    out = np.zeros(n)
    args = (ts, px, px, px, np.zeros(n), ts + H)
    status = replay_mark_nb(
        *args, int(MarkPriceMethod.INDEX_EMA_BASIS), int(MarkAverage.EMA), 0.5, S, 8 * H,
        np.nan, out,
    )  # fmt: skip
    assert status == Status.ERROR
    assert np.isnan(out).all()
    status = replay_mark_nb(
        *args, int(MarkPriceMethod.HISTORICAL), int(MarkAverage.EMA), 5.0, S, 8 * H, np.nan, out
    )
    assert status == Status.ERROR
    status = replay_mark_nb(
        *args, int(MarkPriceMethod.INDEX_EMA_BASIS), int(MarkAverage.SMA), 3.0, 0, 8 * H,
        np.nan, out,
    )  # fmt: skip
    assert status == Status.OK
    np.testing.assert_array_equal(out, px)


def test_user_errors_name_the_field() -> None:
    x = synthetic_inputs(n=50)
    data = aligned(x, x["mid"])
    with pytest.raises(ValueError, match="method: unknown value 'EMA'"):
        evaluate_mark_model(data, "EMA")
    with pytest.raises(ValueError, match="average: unknown value 'wma'"):
        evaluate_mark_model(data, average="wma")
    with pytest.raises(ValueError, match=r"spans: 0\.5"):
        span_grid(data, spans=(0.5, 2))
    with pytest.raises(ValueError, match=r"warmup_ns: .* leaves no rows"):
        evaluate_mark_model(data, warmup_ns=3600 * S)
    with pytest.raises(ValueError, match="has no span to fit"):
        fit_mark_span(data, "LAST")
    ts = x["ts"].copy()
    ts[10] = ts[9]
    with pytest.raises(ValueError, match=r"ts_ns: row 10 .* strictly increasing"):
        AlignedMarks(ts, x["mid"], x["index"], x["last"], x["mid"], np.zeros(50), ts, 8 * H, "t")
    bad = x["index"].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="index_price: row 3 is nan"):
        AlignedMarks(x["ts"], x["mid"], bad, x["last"], x["mid"], np.zeros(50), x["ts"], 8 * H, "t")


def test_model_mark_matches_pandas_replay() -> None:
    x = synthetic_inputs(n=300)
    data = aligned(x, x["mid"])
    ours = model_mark(data, span=7, sample_step_ns=3 * S, initial="first_sample")
    np.testing.assert_allclose(ours, ema_mark(x, span=7, step_ns=3 * S), rtol=0, atol=1e-9)


def bars(ts_ns: np.ndarray, close: np.ndarray, spread: float) -> np.ndarray:
    out = np.zeros(len(ts_ns), dtype=BAR_DTYPE)
    out["ts_ns"] = ts_ns
    out["open"] = close
    out["close"] = close
    out["high"] = close + spread
    out["low"] = close - spread
    return out


def test_mark_last_deviation_pairs_closes_at_the_same_instant() -> None:
    five = 300 * S
    t_ts = np.arange(36, dtype=np.int64) * five  # three hours of 5 m candles
    t_close = 20_000.0 + np.arange(36, dtype=np.float64)
    m_ts = np.arange(3, dtype=np.int64) * H
    m_close = np.array([20_011.0 + 2.0, 20_023.0 - 4.0, 20_035.0])  # hour-end last ± offset
    dev = mark_last_deviation(bars(m_ts, m_close, 1.0), bars(t_ts, t_close, 0.5))
    np.testing.assert_allclose(dev["last_close"], [20_011.0, 20_023.0, 20_035.0])
    np.testing.assert_allclose(dev["deviation_quote"], [2.0, -4.0, 0.0])
    np.testing.assert_allclose(dev["deviation_bp"], [2e4 / 20_011.0, -4e4 / 20_023.0, 0.0])
    # trade range over the hour: 11 steps of 1 + 2 × 0.5
    np.testing.assert_allclose(dev["last_range_bp"], 12.0 / dev["last_close"] * 1e4)
    assert dev.index[0] == pd.Timestamp(H, unit="ns", tz="UTC")
    stats = deviation_summary(dev)
    assert stats.loc["deviation_quote", "max_abs"] == 4.0
    assert stats.loc["deviation_quote", "count"] == 3
    with pytest.raises(ValueError, match="not a multiple"):
        mark_last_deviation(bars(np.arange(3) * 420 * S, m_close, 1.0), bars(t_ts, t_close, 0.5))


def test_align_records_from_catalog_streams() -> None:
    ts = np.array([10, 20, 30, 40], dtype=np.int64) * S
    mark = np.zeros(4, dtype=PRICE_DTYPE)
    mark["ts_ns"], mark["price"] = ts, [100.0, 101.0, 102.0, 103.0]
    index = mark.copy()
    index["price"] = [99.0, 100.0, 101.0, 102.0]
    trades = np.zeros(3, dtype=TRADE_DTYPE)
    trades["ts_ns"] = np.array([15, 20, 31], dtype=np.int64) * S
    trades["price"] = [100.5, 101.5, 102.5]
    funding = np.zeros(1, dtype=FUNDING_RATE_DTYPE)
    funding["ts_ns"], funding["funding_rate"] = 35 * S, 0.001
    data = align_records(mark, index, trades, funding=funding, funding_interval_ns=100 * S)
    # the first mark (10 s) has no trade before it and is dropped
    np.testing.assert_array_equal(data.ts_ns, ts[1:])
    np.testing.assert_array_equal(data.last_price, [101.5, 101.5, 102.5])
    np.testing.assert_array_equal(data.mid_price, data.last_price)
    np.testing.assert_array_equal(data.next_funding_ns, np.array([35, 35, 135]) * S)
    np.testing.assert_array_equal(data.funding_rate, [0.001, 0.001, 0.001])
    plain = align_records(mark, index, trades)
    np.testing.assert_array_equal(plain.funding_rate, 0.0)
    with pytest.raises(ValueError, match="mark and index timestamps differ"):
        align_records(mark, index[:3], trades)
