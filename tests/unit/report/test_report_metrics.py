"""Metrics agree with empyrical-reloaded (daily returns, annualization=365 for 24/7 markets)."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from backtester.report import metrics as m

PERIODS = 365  # 24/7 market; empyrical's default DAILY is 252, so it is passed explicitly


def _series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {
        "random": rng.normal(0.001, 0.02, 500),
        "losses": rng.normal(-0.002, 0.03, 300),
        "mixed_short": np.array([0.01, -0.02, 0.015, -0.005, 0.0]),
        "flat_then_drop": np.array([0.0, 0.0, 0.0, -0.1, 0.02, 0.0]),
        "crash": np.concatenate([rng.normal(0.0, 0.01, 50), [-0.5], rng.normal(0.0, 0.01, 50)]),
    }


def _close(ours: float, theirs: float) -> None:
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-15), (ours, theirs)


@pytest.mark.parametrize("name", list(_series()))
def test_return_metrics_match_empyrical(name: str) -> None:
    r = _series()[name]
    _close(m.sharpe_ratio(r, PERIODS), empyrical.sharpe_ratio(r, annualization=PERIODS))
    _close(m.sortino_ratio(r, PERIODS), empyrical.sortino_ratio(r, annualization=PERIODS))
    _close(m.max_drawdown(r), empyrical.max_drawdown(r))
    _close(m.cagr(r, PERIODS), empyrical.cagr(r, annualization=PERIODS))
    _close(m.annual_volatility(r, PERIODS), empyrical.annual_volatility(r, annualization=PERIODS))


def test_flat_series_gives_nan_sharpe_and_zero_drawdown() -> None:
    r = np.zeros(10)
    assert math.isnan(m.sharpe_ratio(r, PERIODS))
    assert m.max_drawdown(r) == 0.0
    assert m.cagr(r, PERIODS) == 0.0
    assert math.isnan(m.sortino_ratio(r, PERIODS))


def test_sortino_without_losses_is_inf_like_empyrical() -> None:
    r = np.array([0.01, 0.02, 0.0])
    assert m.sortino_ratio(r, PERIODS) == math.inf
    assert empyrical.sortino_ratio(r, annualization=PERIODS) == math.inf


def test_regular_returns_resample_daily_and_start_from_initial() -> None:
    index = pd.to_datetime(["2020-01-01 06:00", "2020-01-01 18:00", "2020-01-03 12:00"], utc=True)
    equity = pd.Series([101.0, 102.0, 99.0], index=index)
    grid, returns = m.regular_returns(equity, 100.0)
    assert grid.tolist() == [100.0, 102.0, 102.0, 99.0]
    np.testing.assert_array_equal(returns, [102.0 / 100.0 - 1.0, 0.0, 99.0 / 102.0 - 1.0])


def test_compute_metrics_on_hand_made_run(hand_result) -> None:
    stats = m.compute_metrics(hand_result)
    equity = hand_result.records["equity"]
    assert stats["total_return"] == equity["equity_settle"][-1] / 1.0 - 1.0
    assert stats["liquidations"] == 1
    liq = hand_result.records["liquidations"][0]
    assert stats["liquidation_cost_settle"] == liq["loss_settle"] + liq["fee_settle"]
    assert stats["trades"] == 2
    assert stats["win_rate"] == 0.0
    assert stats["exposure"] == 110 / 240
    fills = hand_result.records["fills"]
    assert stats["fees_settle"] == pytest.approx(float(fills["fee_settle"].sum()), rel=1e-15)
    assert stats["worst_margin_ratio"] == np.nanmin(equity["margin_ratio"])
    # inverse contract: USD figures exist, valued at the equity records' mark price
    assert stats["final_equity_usd"] == equity["equity_settle"][-1] * equity["mark_price"][-1]
    _, returns = m.regular_returns(m.equity_series(hand_result), 1.0)
    assert len(returns) == 10  # ten UTC days
    assert stats["sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(returns, annualization=PERIODS), rel=1e-12
    )
    assert stats["max_drawdown"] == pytest.approx(empyrical.max_drawdown(returns), rel=1e-12)
    assert stats["max_drawdown_duration_days"] > 5.0


def test_result_stats_is_series_of_metrics(hand_result) -> None:
    stats = hand_result.stats
    assert stats["liquidations"] == 1
    assert stats["settle_currency"] == "BTC"


def test_bad_periods_per_year_names_the_argument(hand_result) -> None:
    with pytest.raises(ValueError, match="periods_per_year"):
        m.compute_metrics(hand_result, periods_per_year=0)


def test_drawdown_duration_runs_from_peak_to_recovery() -> None:
    index = pd.to_datetime(
        ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-05", "2020-01-06", "2020-01-07"],
        utc=True,
    )
    equity = pd.Series([100.0, 110.0, 90.0, 105.0, 111.0, 112.0], index=index)
    assert m._drawdown_duration_days(equity) == 4.0
    still_under = pd.Series([100.0, 110.0, 90.0, 105.0], index=index[:4])
    assert m._drawdown_duration_days(still_under) == 3.0
    rising = pd.Series([1.0, 2.0, 3.0], index=index[:3])
    assert m._drawdown_duration_days(rising) == 0.0
