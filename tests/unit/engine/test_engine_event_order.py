"""The order of events at equal timestamps (``EventKind``), on small hand-built streams.

Each test builds hourly candles by hand and checks the sequence of ledger rows (kind, time)
and the prices they were booked at against values written out here, from the rule: a bar's
path (open at t0, extremes at t0 + Δ/3 and t0 + 2Δ/3, close at t0 + Δ) → trades → index →
mark → funding → ADL → bar close (strategy) → next bar open (orders placed at the close fill
here, booked at the open's time).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData, candle_path_points
from backtester.enums import EventKind, LedgerKind, PathPoint, PriceStream
from backtester.report.liquidations import liquidation_report
from backtester.swap.contract import get_contract

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC


def candles(opens, highs, lows, closes, start=DAY0) -> np.ndarray:
    bars = np.zeros(len(closes), dtypes.BAR_DTYPE)
    bars["ts_ns"] = start + np.arange(len(closes)) * HOUR_NS
    bars["open"], bars["high"], bars["low"], bars["close"] = opens, highs, lows, closes
    return bars


def flat_bars(closes, start=DAY0) -> np.ndarray:
    opens = np.r_[closes[0], closes[:-1]]
    return candles(
        opens, np.maximum(opens, closes), np.minimum(opens, closes), np.array(closes), start
    )


class Schedule(Strategy):
    """Target position by bar close time: ``plan = {hour: contracts}`` (market orders)."""

    plan: ClassVar[dict] = {}

    def on_bar(self, ctx, bar):
        hour = int((bar["ts_ns"] + HOUR_NS - DAY0) // HOUR_NS)  # this bar's close, in hours
        if hour in self.plan:
            ctx.market(self.plan[hour] - ctx.position)


def ledger_rows(result) -> list[tuple[str, int]]:
    ledger = result.records["ledger"]
    return [
        (LedgerKind(int(k)).name, int((t - DAY0) // (HOUR_NS // 60)))  # minutes after DAY0
        for k, t in zip(ledger["kind"], ledger["ts_ns"], strict=True)
    ]


def test_the_order_is_defined_once_with_bar_open_last():
    assert [k.name for k in sorted(EventKind)] == [
        "BAR_PATH",
        "TRADE",
        "INDEX",
        "MARK",
        "FUNDING",
        "DELEVERAGE",
        "BAR",
        "BAR_OPEN",
    ]


def test_an_entry_at_a_bar_open_pays_the_funding_of_that_bar_close_and_an_exit_does_not():
    # a short decided at the 07:00 close fills at the 07:00 open (booked 07:00) and pays the
    # 08:00 funding; its exit decided at the 08:00 close fills at the 08:00 open, after the
    # 08:00 funding (a position opened or closed at T after the funding timestamp: the one
    # held at T pays)
    closes = [30_000.0 + 10.0 * k for k in range(10)]
    funding = np.zeros(2, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = [DAY0 + 8 * HOUR_NS, DAY0 + 9 * HOUR_NS]
    funding["funding_rate"] = [0.0001, 0.0001]
    data = MarketData(
        "BTC-USDT-SWAP", bars=flat_bars(closes), bar_interval_ns=HOUR_NS, funding=funding
    )
    Schedule.plan = {7: -2.0, 8: 0.0}
    result = backtest(
        Schedule, data, "okx:BTC-USDT-SWAP", initial_balance=1_000.0, mark_price_method="last"
    )
    assert ledger_rows(result) == [
        ("FEE", 7 * 60),  # entry at the 07:00 open
        ("FUNDING", 8 * 60),  # paid by the short held at 08:00
        ("TRADE_PNL", 8 * 60),  # exit at the 08:00 open, after the funding
        ("FEE", 8 * 60),
    ]
    fills = result.records["fills"]
    # opens: bar k opens at the close of bar k - 1
    assert fills["price"].tolist() == [closes[6], closes[7]]
    payment = result.records["funding_payments"][0]
    # the mark in force at 08:00 is the close of the bar that closes at 08:00 (07:00 candle)
    assert payment["mark_price"] == closes[7]
    assert payment["payment_settle"] == pytest.approx(2 * 0.01 * closes[7] * 0.0001, rel=1e-12)


def test_the_computed_mark_uses_the_bar_that_closes_at_the_index_time():
    # okx: mark = index + EMA(last − index), α = 2/(span + 1), one sample per index point
    # here (one an hour, the sampling step is 60 s). The basis at T uses the close of the bar
    # that closes at T, not the previous one.
    closes = np.array([100.0, 104.0, 90.0, 95.0, 120.0])
    index = np.zeros(len(closes), dtypes.PRICE_DTYPE)
    index["ts_ns"] = DAY0 + (np.arange(len(closes)) + 1) * HOUR_NS
    index["price"] = closes - np.array([1.0, -2.0, 3.0, 0.5, 4.0])
    data = MarketData(
        "BTC-USDT-SWAP",
        bars=flat_bars(list(closes)),
        bar_interval_ns=HOUR_NS,
        index=index,
    )
    Schedule.plan = {}
    result = backtest(
        Schedule,
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        equity_interval_ns=HOUR_NS,
    )
    alpha = 2.0 / (get_contract("okx:BTC-USDT-SWAP").profile.mark_ema_span + 1.0)
    expected, ema = [], None
    for c, i in zip(closes, index["price"], strict=True):
        basis = c - i
        ema = basis if ema is None else ema + alpha * (basis - ema)
        expected.append(i + ema)
    equity = result.records["equity"]
    rows = np.searchsorted(equity["ts_ns"], index["ts_ns"])
    assert equity["ts_ns"][rows].tolist() == index["ts_ns"].tolist()
    np.testing.assert_allclose(equity["mark_price"][rows], expected, rtol=0, atol=1e-9)


def test_a_position_opened_at_a_bar_open_is_liquidated_on_that_candles_mark_path():
    # a 50x long entered at the 01:00 open; the 01:00 mark candle's low (29,000) crosses its
    # liquidation price (~29,520: margin 1/50 of the entry, maintenance 0.4%): liquidated
    # inside that candle at its adverse extreme, visited first at 01:20 — not at a later close
    closes = [30_000.0, 30_000.0, 30_000.0, 30_000.0]
    bars = flat_bars(closes)
    mark_candles = candles(
        [30_000.0] * 4, [30_050.0] * 4, [29_990.0, 29_000.0, 29_990.0, 29_990.0], closes
    )
    data = MarketData(
        "BTC-USDT-SWAP",
        bars=bars,
        bar_interval_ns=HOUR_NS,
        mark=candle_path_points(mark_candles, HOUR_NS),
        mark_interval_ns=HOUR_NS,
    )
    Schedule.plan = {1: 10.0}  # decided at the 01:00 close of bar 0: fills at bar 1's open
    result = backtest(
        Schedule,
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        leverage=50,
        mark_price_method="historical",
    )
    rows = ledger_rows(result)
    assert rows[0] == ("FEE", 60)  # entry at the 01:00 open
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert int(liq["ts_ns"][0]) == DAY0 + HOUR_NS + HOUR_NS // 3
    assert liq["mark_price"][0] == 29_000.0
    assert liq["trigger_stream"][0] == PriceStream.MARK
    assert liq["trigger_point"][0] == PathPoint.LOW
    assert int(liq["trigger_candle_ns"][0]) == DAY0 + HOUR_NS
    assert liquidation_report(result)["trigger"].tolist() == [
        "triggered on the low of the 2024-01-01 01:00 mark candle"
    ]
    assert len(rows) > 1
    assert all(t == 60 + 20 for _, t in rows[1:])  # every liquidation row at 01:20


def test_a_short_sees_the_high_of_the_mark_candle_first():
    # the same candle for a short: the high (adverse) is visited at Δ/3, the low at 2Δ/3
    closes = [30_000.0] * 3
    mark_candles = candles([30_000.0] * 3, [30_050.0, 31_000.0, 30_050.0], [29_000.0] * 3, closes)
    data = MarketData(
        "BTC-USDT-SWAP",
        bars=flat_bars(closes),
        bar_interval_ns=HOUR_NS,
        mark=candle_path_points(mark_candles, HOUR_NS),
        mark_interval_ns=HOUR_NS,
    )
    Schedule.plan = {1: -10.0}
    result = backtest(
        Schedule,
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        leverage=50,
        mark_price_method="historical",
    )
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert int(liq["ts_ns"][0]) == DAY0 + HOUR_NS + HOUR_NS // 3
    assert liq["mark_price"][0] == 31_000.0
    assert liq["trigger_point"][0] == PathPoint.HIGH
