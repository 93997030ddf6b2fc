"""Funding payments at the mark and OKEx 2019 daily settlement (equity unchanged)."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC


def hourly_bars(closes: list[float]) -> np.ndarray:
    bars = np.zeros(len(closes), dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(len(closes)) * HOUR_NS
    bars["close"] = closes
    bars["open"] = np.r_[closes[0], closes[:-1]]
    bars["high"] = np.maximum(bars["open"], bars["close"])
    bars["low"] = np.minimum(bars["open"], bars["close"])
    return bars


class HoldLong(Strategy):
    contracts = 5.0
    close_at = -1

    def on_bar(self, ctx, bar):
        k = len(ctx.closes) - 1
        if k == 0:
            ctx.market(self.contracts)
        if k == self.close_at:
            ctx.close_position()

    def on_funding(self, ctx, payment):
        FUNDING_SEEN.append(float(payment["payment_settle"]))


FUNDING_SEEN: list = []


def test_funding_is_paid_at_the_mark_with_the_documented_tie_order():
    closes = [30_000.0, 30_100.0, 30_200.0, 30_300.0, 30_400.0]
    funding = np.zeros(2, dtypes.FUNDING_RATE_DTYPE)
    # at 03:00 (= close of bar 2: its path ends before the funding, EventKind) and at 04:00
    funding["ts_ns"] = [DAY0 + 3 * HOUR_NS, DAY0 + 4 * HOUR_NS]
    funding["funding_rate"] = [0.0001, -0.0002]
    data = MarketData(
        "BTC-USDT-SWAP", bars=hourly_bars(closes), bar_interval_ns=HOUR_NS, funding=funding
    )
    FUNDING_SEEN.clear()
    result = backtest(HoldLong, data, "okx:BTC-USDT-SWAP", initial_balance=1_000.0)
    payments = result.records["funding_payments"]
    assert len(payments) == 2
    # mark (LAST, no index) in force at 03:00 is the close of the bar that closes at 03:00 (the
    # prices traded up to 03:00 are known at 03:00) → 30,200; at 04:00 → 30,300. The long was
    # opened at the 01:00 open (order placed at the close of bar 0), so it pays both.
    assert payments[0]["mark_price"] == 30_200.0
    assert payments[0]["payment_settle"] == pytest.approx(-5 * 0.01 * 30_200.0 * 0.0001, rel=1e-12)
    assert payments[1]["payment_settle"] == pytest.approx(5 * 0.01 * 30_300.0 * 0.0002, rel=1e-12)
    assert pytest.approx(list(payments["payment_settle"]), rel=1e-15) == FUNDING_SEEN
    ledger = result.records["ledger"]
    funding_rows = ledger[ledger["kind"] == LedgerKind.FUNDING]
    np.testing.assert_array_equal(funding_rows["amount_settle"], payments["payment_settle"])


def test_daily_settlement_moves_upl_to_balance_and_keeps_equity():
    # okx_coinm_2019: inverse 100 USD contracts, settlement 08:00 UTC
    closes = [10_000.0 + 100.0 * k for k in range(12)]
    data = MarketData("BTC-USD-SWAP", bars=hourly_bars(closes), bar_interval_ns=HOUR_NS)
    result = backtest(
        HoldLong,
        data,
        "okx_coinm_2019:BTC-USD-SWAP",
        initial_balance=1.0,
        params={"contracts": 100.0, "close_at": 10},
    )
    settlements = result.records["settlements"]
    assert len(settlements) == 1
    s = settlements[0]
    entry = 10_000.0  # bar 1 open (= bar 0 close)
    assert s["ts_ns"] == DAY0 + 8 * HOUR_NS
    assert s["previous_reference_price"] == entry
    mark = s["settlement_price"]
    # settled at 08:00 after the prices of 08:00 (EventKind: bar path, index, mark, funding,
    # then the settlement, before the bar close is shown): the close of the 07:00 bar
    assert mark == 10_700.0
    assert s["settled_pnl_settle"] == pytest.approx(100 * 100 * (1 / entry - 1 / mark), rel=1e-12)
    # equity just before and at the settlement instant is the same
    equity = result.records["equity"]
    at = np.flatnonzero(equity["ts_ns"] == DAY0 + 8 * HOUR_NS)[0]
    before = equity[at - 1]
    assert equity[at]["equity_settle"] - before["equity_settle"] == pytest.approx(
        100 * 100 * (1 / 10_600.0 - 1 / 10_700.0), rel=1e-9
    )
    # total trading result = settlement + realised from the reset reference = pnl(entry → exit)
    exit_price = result.records["fills"][-1]["price"]
    ledger = result.records["ledger"]
    trading = ledger["amount_settle"][
        np.isin(ledger["kind"], [LedgerKind.SETTLEMENT, LedgerKind.TRADE_PNL])
    ].sum()
    assert trading == pytest.approx(100 * 100 * (1 / entry - 1 / exit_price), rel=1e-12)
