"""Reports over a real backtest of the bundled sample market (inverse BTC-USD-SWAP)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtester import Strategy, backtest
from backtester.data.sample import load_sample
from backtester.enums import LedgerKind
from backtester.report.attribution import pnl_attribution
from backtester.report.liquidations import liquidation_report
from backtester.report.load import load_run
from backtester.report.metrics import compute_metrics

DAY_NS = 86_400_000_000_000

pytestmark = pytest.mark.slow  # two months of 1-minute bars through a Python on_bar


class FlipEveryDays(Strategy):
    """Long, flat, long... switching every ``days`` days; 20x so the March crash liquidates."""

    days = 3
    contracts = 2_000.0

    def on_bar(self, ctx, bar):
        period = int(ctx.time_ns // (self.days * DAY_NS))
        if getattr(self, "period", None) == period:
            return
        self.period = period
        if period % 2 == 0 and ctx.position == 0:
            ctx.market(self.contracts)
        elif period % 2 == 1 and ctx.position != 0:
            ctx.close_position()


@pytest.fixture(scope="module")
def sample_result():
    data = load_sample("BTC-USD-SWAP", with_trades=False)
    return backtest(
        FlipEveryDays, data, "okx_coinm_2019:BTC-USD-SWAP", initial_balance=1.0, leverage=20.0
    )


def test_attribution_of_a_real_run_sums_exactly(sample_result) -> None:
    attribution = pnl_attribution(sample_result)
    total = sample_result.final_balance_settle - sample_result.initial_balance_settle
    assert math.fsum(attribution.tolist()) == total
    assert attribution.attrs["exact"] is True
    ledger = sample_result.records["ledger"]
    fees = ledger["amount_settle"][ledger["kind"] == LedgerKind.FEE]
    assert math.fsum(
        attribution[["maker_fees_settle", "taker_fees_settle", "other_fees_settle"]].tolist()
    ) == pytest.approx(math.fsum(fees), rel=1e-12)
    payments = sample_result.records["funding_payments"]
    assert len(payments) > 0
    assert sum(attribution.attrs["funding_rate_sources"].values()) == len(payments)
    assert attribution["funding_paid_settle"] + attribution["funding_received_settle"] == (
        pytest.approx(math.fsum(payments["payment_settle"]), rel=1e-12, abs=1e-15)
    )


def test_metrics_and_liquidations_of_a_real_run(sample_result, tmp_path) -> None:
    metrics = compute_metrics(sample_result)
    liquidations = sample_result.records["liquidations"]
    assert metrics["liquidations"] == len(liquidations) >= 1
    assert metrics["trades"] > 3
    assert "final_equity_usd" in metrics  # inverse contract
    report = liquidation_report(sample_result)
    assert len(report) == len(liquidations)
    np.testing.assert_array_equal(report["fill_price"], liquidations["fill_price"])
    directory = sample_result.save(tmp_path / "run")
    assert load_run(directory).fingerprint() == sample_result.fingerprint()
