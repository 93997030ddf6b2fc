"""Periods, rolling ratios, benchmark and pandas results against quantstats/empyrical."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtester.report.metrics import compute_metrics
from backtester.report.periods import (
    MONTHS,
    benchmark_returns,
    beta,
    funding_by_month,
    monthly_returns,
    rolling_sharpe,
    rolling_volatility,
    worst_drawdowns,
)

empyrical = pytest.importorskip("empyrical")


@pytest.fixture
def daily_returns() -> pd.Series:
    rng = np.random.default_rng(11)
    index = pd.date_range("2023-11-14", periods=430, freq="1D", tz="UTC")
    return pd.Series(rng.normal(0.0005, 0.02, len(index)), index=index)


def test_monthly_returns_equal_quantstats(daily_returns) -> None:
    qs = pytest.importorskip("quantstats")
    ours = monthly_returns(daily_returns)
    theirs = qs.stats.monthly_returns(daily_returns.tz_localize(None), eoy=True, compounded=True)
    assert list(ours.index) == [2023, 2024, 2025]
    for year in ours.index:
        for number, month in enumerate(MONTHS, start=1):
            value = ours.loc[year, month]
            if math.isnan(value):  # no day of that month in the data; quantstats shows 0
                assert theirs.loc[str(year)].iloc[number - 1] == 0.0
                continue
            assert value == pytest.approx(theirs.loc[str(year), month.upper()], rel=1e-12)
        assert ours.loc[year, "Year"] == pytest.approx(theirs.loc[str(year), "EOY"], rel=1e-12)
    # and by hand: January 2024 compounds its 31 days
    january = daily_returns["2024-01"]
    assert len(january) == 31
    assert ours.loc[2024, "Jan"] == pytest.approx(np.prod(1 + january.to_numpy()) - 1, rel=1e-12)


def test_worst_drawdowns_equal_quantstats(daily_returns) -> None:
    qs = pytest.importorskip("quantstats")
    ours = worst_drawdowns(daily_returns, count=5)
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(daily_returns))
    depth = pd.to_numeric(details["max drawdown"]) / 100.0  # quantstats reports percent
    top = details.assign(depth=depth).sort_values("depth").head(5)
    np.testing.assert_allclose(ours["depth"], top["depth"], rtol=1e-9)
    valleys = pd.to_datetime(top["valley"]).dt.date.tolist()
    assert [t.date() for t in ours["trough"]] == valleys
    assert (ours["depth"] == ours["depth"].sort_values()).all()
    deepest = ours.iloc[0]
    wealth = np.cumprod(1 + daily_returns.to_numpy())
    assert deepest["depth"] == pytest.approx(
        empyrical.max_drawdown(daily_returns.to_numpy()), rel=1e-12
    )
    if deepest["recovered"]:
        at = daily_returns.index.get_loc(deepest["recovery"])
        before = daily_returns.index.get_loc(deepest["start"])
        assert wealth[at] >= wealth[before]
        assert deepest["length_days"] == (deepest["recovery"] - deepest["start"]).days


def test_rolling_ratios_equal_empyrical(daily_returns) -> None:
    window = 30
    sharpe = rolling_sharpe(daily_returns, window)
    vol = rolling_volatility(daily_returns, window)
    theirs_sharpe = empyrical.roll_sharpe_ratio(daily_returns, window, annualization=365)
    theirs_vol = empyrical.roll_annual_volatility(daily_returns, window, annualization=365)
    assert sharpe.iloc[: window - 1].isna().all()
    np.testing.assert_allclose(sharpe.dropna().to_numpy(), np.asarray(theirs_sharpe), rtol=1e-9)
    np.testing.assert_allclose(vol.dropna().to_numpy(), np.asarray(theirs_vol), rtol=1e-9)


def test_benchmark_is_leveraged_buy_and_hold(hand_result) -> None:
    hand_result.config["leverage"] = [10.0]  # the 20 % crash wipes it out: stays at 0
    wiped = benchmark_returns(hand_result)
    wealth = np.cumprod(1.0 + wiped.to_numpy())
    first_zero = int(np.argmax(wealth == 0.0))
    assert first_zero > 0
    assert (wealth[first_zero:] == 0.0).all()
    assert (wiped.to_numpy()[first_zero + 1 :] == 0.0).all()
    hand_result.config["leverage"] = [1.5]
    bench = benchmark_returns(hand_result)
    equity = hand_result.records["equity"]
    mark = equity["mark_price"]
    # by hand: 1.5 × 1 BTC of 100-USD contracts at the first mark, inverse PnL, daily last mark
    contracts = 1.0 * 1.5 * mark[0] / 100.0
    wealth = 1.0 + contracts * 100.0 * (1.0 / mark[0] - 1.0 / mark)
    days = pd.to_datetime(equity["ts_ns"], unit="ns", utc=True).floor("1D")
    daily = pd.Series(wealth, index=days).groupby(level=0).last()
    expected = np.concatenate([[1.0], daily.to_numpy()])
    np.testing.assert_allclose(bench.to_numpy(), expected[1:] / expected[:-1] - 1.0, rtol=1e-12)
    returns = hand_result.returns("1D")
    assert list(bench.index) == list(returns.index)
    assert beta(returns, bench) == pytest.approx(
        empyrical.beta(returns.to_numpy(), bench.to_numpy()), rel=1e-9
    )


def test_funding_by_month(hand_result) -> None:
    payments = hand_result.records["funding_payments"]
    table = funding_by_month(hand_result)
    assert list(table.index) == ["2020-01"]
    amounts = payments["payment_settle"]
    assert table.loc["2020-01", "paid_settle"] == math.fsum(amounts[amounts < 0])
    assert table.loc["2020-01", "received_settle"] == math.fsum(amounts[amounts > 0])
    assert table.loc["2020-01", "payments"] == len(payments)


def test_result_pandas_views(hand_result) -> None:
    for frame in (hand_result.ledger, hand_result.fills, hand_result.equity, hand_result.trades):
        assert isinstance(frame.index, pd.DatetimeIndex)
        assert str(frame.index.tz) == "UTC"
    fills = hand_result.fills
    assert fills.index[1] == pd.Timestamp(int(hand_result.records["fills"]["ts_ns"][1]), tz="UTC")
    returns = hand_result.returns("1D")
    equity = hand_result.records["equity"]
    day_one = equity[equity["ts_ns"] < equity["ts_ns"][0] + 86_400_000_000_000]
    assert returns.iloc[0] == day_one["equity_settle"][-1] / 1.0 - 1.0
    metrics = compute_metrics(hand_result)
    assert metrics["sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(returns.to_numpy(), annualization=365), rel=1e-12
    )
    assert len(hand_result.returns("1h")) == len(equity)
    text = repr(hand_result)
    assert text.startswith("<Result HandMade on BTC-USD-SWAP: 2020-01-01 00:00")
    assert "4 fills, 1 liquidations" in text
    html = hand_result._repr_html_()
    assert "<h1>HandMade on BTC-USD-SWAP</h1>" in html
    assert "Perpetual costs" in html
