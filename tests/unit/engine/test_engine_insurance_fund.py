"""The venue's insurance fund across a run and the OKEx weekly clawback (issue 12 item 5).

Expected figures are derived here from MECHANICS.md §5.3, §5.5 and §6, not from the engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind
from backtester.report.summary import format_summary

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000  # Monday 2024-01-01 00:00 UTC
FRIDAY_0800 = DAY0 + (4 * 24 + 8) * HOUR_NS  # OKEx weekly clawback: Friday 16:00 HKT
CONTRACT = "okx_coinm_2019:BTC-USD-SWAP"
FACE, N, LEV, TAKER = 100.0, 100.0, 20.0, 0.00075
N_BARS = 110


class BuyEach(Strategy):
    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1:
            ctx.market(N)


def instrument(symbol, closes, marks) -> MarketData:
    bars = np.zeros(N_BARS, dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(N_BARS) * HOUR_NS
    bars["close"] = closes
    bars["open"] = np.r_[closes[0], closes[:-1]]
    bars["high"] = np.maximum(bars["open"], bars["close"])
    bars["low"] = np.minimum(bars["open"], bars["close"])
    mark = np.zeros(N_BARS, dtypes.PRICE_DTYPE)
    # the recorded mark half an hour after each bar close
    mark["ts_ns"] = DAY0 + (np.arange(N_BARS) + 1) * HOUR_NS + HOUR_NS // 2
    mark["price"] = marks
    return MarketData(symbol, bars=bars, bar_interval_ns=HOUR_NS, mark=mark)


def scenario():
    """A: long 100 from 50,000 (20x isolated); at the 31:00 close the last price is 47,000 and
    the mark at 31:30 is 47,800 → taken over at the bankruptcy price 50,000·20/21 = 47,619.05
    and unwound by the fund at 47,000: a deficit. B: long 100 from 50,000 rising to 60,000 by
    hour 80 and flat after, its profit settled daily at 08:00 UTC."""
    a_close = np.full(N_BARS, 50_000.0)
    a_close[30:] = 47_000.0
    a_mark = np.full(N_BARS, 50_000.0)
    a_mark[30:] = 47_800.0
    b_close = np.full(N_BARS, 60_000.0)
    b_close[:2] = 50_000.0
    b_close[2:80] = np.linspace(50_000.0, 60_000.0, 78)
    return [instrument("A-USD-SWAP", a_close, a_mark), instrument("B-USD-SWAP", b_close, b_close)]


HISTORY = pd.Series([0.0005, 5.0], index=pd.to_datetime(["2023-12-31", "2024-01-10"], utc=True))


@pytest.mark.parametrize(
    ("fund_option", "fund_start", "pool"),
    [(0.001, 0.001, None), (HISTORY, 0.0005, None), (0.001, 0.001, 1.0)],
)
def test_deficit_beyond_the_fund_is_clawed_back_from_the_week_profit(
    fund_option, fund_start, pool, tmp_path
):
    entry = 50_000.0
    bankrupt = entry * LEV / (LEV + 1)  # inverse long, margin = IM (§5.3)
    # the fund takes the long at the bankruptcy price and sells at the last price (§5.5)
    delta = FACE * N * (1 / bankrupt - 1 / 47_000.0)
    assert delta < 0
    uncovered = -(fund_start + delta)
    assert uncovered > 0
    margin = FACE * N / (entry * LEV)
    open_fee = TAKER * FACE * N / entry
    # the account's net profit over the week (all instruments): A loses its margin, B's rise is
    # settled (50,000 → 60,000), both paid the opening fee
    profit = FACE * N * (1 / entry - 1 / 60_000.0) - margin - 2 * open_fee
    pool_total = profit if pool is None else pool
    rate = uncovered / pool_total  # max(0, deficit − fund)/Σ profits (§6)
    clawback = rate * profit
    result = backtest(
        BuyEach,
        scenario(),
        [CONTRACT, CONTRACT],
        initial_balance=1.0,
        leverage=LEV,
        mark_price_method="historical",
        insurance_fund_settle=fund_option,
        clawback_profit_pool_settle=pool,
    )
    (liq,) = result.records["liquidations"]
    assert liq["ts_ns"] == DAY0 + 31 * HOUR_NS + HOUR_NS // 2
    assert liq["fill_price"] == pytest.approx(bankrupt, rel=1e-12)
    assert liq["market_price"] == 47_000.0
    assert liq["insurance_fund_delta_settle"] == pytest.approx(delta, rel=1e-9)
    assert liq["insurance_fund_after_settle"] == 0.0
    ledger = result.records["ledger"]
    rows = ledger[ledger["kind"] == LedgerKind.CLAWBACK]
    assert len(rows) == 1
    assert rows[0]["ts_ns"] == FRIDAY_0800
    assert rows[0]["instrument"] == -1
    assert rows[0]["amount_settle"] == pytest.approx(-clawback, rel=1e-9)
    (record,) = result.records["adl"]
    assert record["kind"] == LedgerKind.CLAWBACK
    assert record["rate"] == pytest.approx(rate, rel=1e-9)
    assert record["amount_settle"] == pytest.approx(clawback, rel=1e-9)
    fund = result.config["insurance_fund"]
    assert fund["start_settle"] == fund_start
    assert fund["end_settle"] == 0.0
    assert fund["uncovered_deficit_pending_settle"] == 0.0
    assert fund["clawback_period"] == "week"
    summary = format_summary(result)
    assert "insurance fund (end)" in summary
    assert "clawback" in summary
    if pool is None:
        # the HTML report's metrics table carries the fund balance and the clawback
        html = result.to_html(tmp_path / "report.html").read_text()
        assert "venue insurance fund, start → end" in html
        assert "clawback (fund deficit)" in html


def test_no_clawback_while_the_fund_covers_and_a_surplus_feeds_it():
    """Fund of 1 BTC: the same deficit leaves 1 + delta in it and nothing is clawed back.
    With the default (+inf) the fund always covers."""
    entry = 50_000.0
    delta = FACE * N * (1 / (entry * LEV / (LEV + 1)) - 1 / 47_000.0)
    result = backtest(
        BuyEach,
        scenario(),
        [CONTRACT, CONTRACT],
        initial_balance=1.0,
        leverage=LEV,
        mark_price_method="historical",
        insurance_fund_settle=1.0,
    )
    (liq,) = result.records["liquidations"]
    assert liq["insurance_fund_after_settle"] == pytest.approx(1.0 + delta, rel=1e-12)
    assert not (result.records["ledger"]["kind"] == LedgerKind.CLAWBACK).any()
    assert result.config["insurance_fund"]["end_settle"] == pytest.approx(1.0 + delta, rel=1e-12)
    default = backtest(
        BuyEach,
        scenario(),
        [CONTRACT, CONTRACT],
        initial_balance=1.0,
        leverage=LEV,
        mark_price_method="historical",
    )
    assert default.config["insurance_fund"]["start_settle"] == np.inf
    assert not (default.records["ledger"]["kind"] == LedgerKind.CLAWBACK).any()


def test_insurance_fund_option_errors_name_the_problem():
    data = scenario()
    with pytest.raises(ValueError, match="insurance_fund_settle: expected a balance >= 0"):
        backtest(BuyEach, data, [CONTRACT] * 2, initial_balance=1.0, insurance_fund_settle=-1.0)
    late = pd.Series([1.0], index=pd.to_datetime(["2024-02-01"], utc=True))
    with pytest.raises(ValueError, match="insurance_fund_settle: the history starts at"):
        backtest(BuyEach, data, [CONTRACT] * 2, initial_balance=1.0, insurance_fund_settle=late)
    with pytest.raises(ValueError, match="clawback_period"):
        backtest(BuyEach, data, [CONTRACT] * 2, initial_balance=1.0, clawback_period="month")
