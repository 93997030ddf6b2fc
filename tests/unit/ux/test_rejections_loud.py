"""Rejected orders are loud: counted by reason, explained once per reason with what would have
been accepted, in the summary and the report; a position left open is reported apart."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import RejectReason
from backtester.rejections import RejectedOrderWarning
from backtester.report.summary import format_summary

MINUTE_NS = 60_000_000_000
T0 = 1_699_999_980_000_000_000  # 2023-11-14 22:13:00 UTC, on the minute grid of the equity rows
CONTRACT = "okx:BTC-USDT-SWAP"  # linear, face 0.01 BTC, tick 0.1, lot 0.01


def flat_bars(n: int, price: float = 30_000.0, spread: float = 10.0) -> MarketData:
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    bars["open"] = bars["close"] = price
    bars["high"], bars["low"] = price + spread, price - spread
    return MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS)


class Breakout(Strategy):
    """The issue's first attempts: an off-tick stop, then a reduce-only stop before the fill."""

    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1:
            ctx.market(1)
            ctx.stop(-1, 29_873.27, reduce_only=True)  # off the 0.1 tick
        if len(ctx.closes) == 2:
            ctx.stop(-1, 29_000.0, reduce_only=True)  # fine: the position is open now
            ctx.stop(-1, 29_500.0, reduce_only=True)


def test_each_reason_warns_once_naming_order_and_accepted_value():
    with pytest.warns(RejectedOrderWarning) as caught:
        result = backtest(Breakout, flat_bars(5), CONTRACT, initial_balance=10_000.0)
    messages = [str(w.message) for w in caught if w.category is RejectedOrderWarning]
    assert len(messages) == 1
    # nearest tick: round(29873.27 / 0.1) * 0.1 = 29873.3 (hand arithmetic)
    assert "PRICE_OFF_TICK" in messages[0]
    assert "trigger 29,873.27 is off the 0.1 tick; nearest 29,873.3" in messages[0]
    assert "sell 1 contracts BTC-USDT-SWAP STOP_MARKET" in messages[0]
    assert "2023-11-14 22:14:00 UTC" in messages[0]  # T0 + 1 min: the close of bar 0
    assert result.rejections.to_dict() == {"PRICE_OFF_TICK": 1}
    assert len(result.rejected_orders) == 1


class ReduceFirst(Strategy):
    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1:
            ctx.stop(-1, 29_000.0, reduce_only=True)  # before the entry: nothing to reduce
            ctx.market(1)
            ctx.stop(-1, 29_000.0, reduce_only=True)


def test_reduce_only_before_the_entry_fill_says_position_and_the_fix():
    with pytest.warns(RejectedOrderWarning, match="REDUCE_ONLY_WOULD_INCREASE") as caught:
        result = backtest(ReduceFirst, flat_bars(5), CONTRACT, initial_balance=10_000.0)
    text = next(str(w.message) for w in caught if w.category is RejectedOrderWarning)
    assert "the position was 0 contracts" in text
    assert "stop_loss=" in text
    assert "(1 more with this reason)" in text
    assert result.rejections.to_dict() == {"REDUCE_ONLY_WOULD_INCREASE": 2}


class TooBig(Strategy):
    contracts = 100.0

    def on_bar(self, ctx, bar):
        ctx.market(self.contracts)


def test_insufficient_margin_counted_and_explained_with_affordable_size():
    with pytest.warns(RejectedOrderWarning, match="INSUFFICIENT_MARGIN") as caught:
        # no intrabar range: the reference price of the message (the mark of the last equity
        # row, here one on the bar's path) is 30,000 wherever the row falls
        result = backtest(
            TooBig, flat_bars(4, spread=0.0), CONTRACT, initial_balance=1_000.0, leverage=10.0
        )
    # 100 contracts x 0.01 BTC x 30,000 / 10 = 3,000 USDT of initial margin against 1,000:
    # 1,000 x 10 / (0.01 x 30,000) = 33.33 -> 33.33 contracts on the 0.01 lot
    text = next(str(w.message) for w in caught if w.category is RejectedOrderWarning)
    assert "initial margin is about 3,000 USDT" in text
    assert "at most about 33.33 contracts" in text
    # one order at each of the 4 bar closes (the last bar's close included)
    n_closes = 4
    assert result.rejections.to_dict() == {"INSUFFICIENT_MARGIN": n_closes}
    summary = format_summary(result)
    assert f"rejected orders: {n_closes} (INSUFFICIENT_MARGIN {n_closes})" in summary


class HoldToEnd(Strategy):
    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1:
            ctx.market(2)


def test_open_position_at_the_end_reported_with_unrealised_pnl_apart(tmp_path):
    bars = flat_bars(4)
    bars.bars["close"][-1] = 30_100.0
    bars.bars["high"][-1] = 30_110.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RejectedOrderWarning)  # no rejection here: no warning
        result = backtest(HoldToEnd, bars, CONTRACT, initial_balance=10_000.0)
    still = result.open_position_at_end
    assert still["positions"] == {"BTC-USDT-SWAP": 2.0}
    # bought at bar 1's open 30,000; UPL = 2 x 0.01 x (mark - 30,000)
    mark = float(result.records["equity"]["mark_price"][-1])
    assert still["unrealised_pnl_settle"] == pytest.approx(2 * 0.01 * (mark - 30_000.0))
    fee = 2 * 0.01 * 30_000.0 * 0.0005
    assert still["realised_change_settle"] == pytest.approx(-fee)
    summary = format_summary(result)
    assert "open at the end: 2 contracts BTC-USDT-SWAP; unrealised PnL" in summary
    report = result.to_html(tmp_path / "r.html").read_text()
    assert "Open at the end" in report
    assert result.rejections.empty


def test_report_lists_rejections_with_first_rows(tmp_path):
    with pytest.warns(RejectedOrderWarning):
        result = backtest(TooBig, flat_bars(4), CONTRACT, initial_balance=1_000.0)
    report = result.to_html(tmp_path / "r.html").read_text()
    assert "Rejected orders (4)" in report
    assert "rejections-table" in report
    assert report.count("INSUFFICIENT_MARGIN") >= 5  # the list line and four table rows
    assert result.config["rejections"]["INSUFFICIENT_MARGIN"]["count"] == 4
    assert RejectReason.INSUFFICIENT_MARGIN.name in result.rejections.index


@pytest.mark.slow  # subprocesses
def test_the_cli_warns_and_summarises_rejections(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "offtick.py"
    path.write_text(
        "from backtester import Strategy\n\n\nclass OffTick(Strategy):\n"
        "    def on_bar(self, ctx, bar):\n"
        "        if ctx.position == 0 and not ctx.open_orders().size:\n"
        "            ctx.market(1)\n"
        "            ctx.stop(-1, 12_345.67, reduce_only=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "backtester", "run", str(path), "--data", "sample",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "RejectedOrderWarning" in line]
    assert len(warning) == 1
    assert warning[0].startswith("backtester: warning: RejectedOrderWarning: PRICE_OFF_TICK: ")
    assert "trigger 12,345.67 is off the 0.1 tick; nearest 12,345.7" in warning[0]
    assert "rejected orders: 1 (PRICE_OFF_TICK 1)" in done.stdout
    assert "open at the end: 1 contracts BTC-USD-SWAP" in done.stdout
    (report,) = (tmp_path / "out").glob("*/report.html")
    assert "Rejected orders (1)" in report.read_text()
