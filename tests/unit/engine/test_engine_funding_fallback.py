"""Funding computed from the premium when the data has no funding stream, and the mark
fallback: labelled in the records, the ledger and the attribution, warned once per run, listed
in the summary and the HTML report."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.checks import RunDataWarning
from backtester.data.market import MarketData
from backtester.report.attribution import pnl_attribution
from backtester.report.html import write_html
from backtester.report.summary import format_summary

MIN = 60_000_000_000
H = 60 * MIN
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
PREMIUM = 0.001  # last = index × 1.001 throughout


def market(with_index: bool = True) -> MarketData:
    """1-minute bars from 00:00 to 17:00, index points at every bar close, no funding."""
    n = 17 * 60
    index = 40_000.0 + 10.0 * np.sin(np.arange(n) / 50.0)
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(n, dtype=np.int64) * MIN
    close = index * (1.0 + PREMIUM)
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = close
    bars["volume_base"] = 1.0
    points = np.zeros(n, dtypes.PRICE_DTYPE)
    points["ts_ns"] = bars["ts_ns"] + MIN  # known at the bar's close, with the close
    points["price"] = index
    return MarketData(
        "BTC-USDT-SWAP",
        bars=bars,
        bar_interval_ns=MIN,
        index=points if with_index else np.zeros(0, dtypes.PRICE_DTYPE),
    )


class Hold(Strategy):
    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == DAY0:
            ctx.market(10.0)


def run(data: MarketData):
    return backtest(Hold, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0, leverage=5)


def test_funding_is_computed_from_the_premium_with_the_okx_rule_and_labelled() -> None:
    with pytest.warns(RunDataWarning, match="funding computed from the premium") as caught:
        result = run(market())
    assert len([w for w in caught if issubclass(w.category, RunDataWarning)]) == 1
    payments = result.records["funding_payments"]
    # OKX: F = clamp(mean premium, ±0.375 %) = 0.001; 08:00 and 16:00 (00:00 has no window)
    assert payments["ts_ns"].tolist() == [DAY0 + 8 * H, DAY0 + 16 * H]
    np.testing.assert_allclose(payments["funding_rate"], [PREMIUM, PREMIUM], rtol=1e-12)
    assert set(payments["source"].tolist()) == {1}  # FundingRateSource.COMPUTED
    # a long of 10 contracts × 0.01 BTC pays value at the mark in force × 0.001
    for row in payments:
        expected = -10 * 0.01 * row["mark_price"] * PREMIUM
        assert row["payment_settle"] == pytest.approx(expected, rel=1e-12)
    ledger = result.ledger
    funding_rows = ledger[ledger["kind"] == "FUNDING"]
    assert funding_rows["funding_source"].tolist() == ["COMPUTED", "COMPUTED"]
    assert set(ledger.loc[ledger["kind"] != "FUNDING", "funding_source"]) == {""}
    attribution = pnl_attribution(result)
    assert attribution.attrs["funding_rate_sources"] == {"historical": 0, "computed": 2}
    assert attribution.attrs["funding_computed_settle"] == pytest.approx(
        payments["payment_settle"].sum(), rel=1e-15
    )
    assert result.config["funding_source_used"][0].startswith("computed from the premium")
    summary = format_summary(result)
    assert "(funding computed from premium)" in summary
    assert "warning: BTC-USDT-SWAP: funding computed from the premium" in summary


def test_a_historical_funding_stream_is_used_without_warning() -> None:
    data = market()
    funding = np.zeros(1, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = DAY0 + 8 * H
    funding["funding_rate"] = 0.0002
    data.funding = funding
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunDataWarning)
        result = run(data)
    assert result.records["funding_payments"]["funding_rate"].tolist() == [0.0002]
    assert result.records["funding_payments"]["source"].tolist() == [0]
    assert result.config["warnings"] == []


def test_without_index_no_funding_and_mark_last_are_warned_and_reported(tmp_path) -> None:
    with pytest.warns(RunDataWarning) as caught:
        result = run(market(with_index=False))
    [warning] = [w for w in caught if issubclass(w.category, RunDataWarning)]
    text = str(warning.message)
    assert "no funding stream and no index to compute the premium" in text
    assert "mark price last instead of the profile's index_ema_basis" in text
    assert len(result.records["funding_payments"]) == 0
    assert len(result.config["warnings"]) == 2
    summary = format_summary(result)
    assert summary.count("warning: ") == 2
    page = write_html(result, tmp_path / "r.html").read_text()
    assert "Warning: BTC-USDT-SWAP: mark price last instead of the profile" in page
