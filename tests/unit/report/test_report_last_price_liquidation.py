"""The liquidation report's last-price model: when mark = last trade price would have
liquidated each step, and how the loss differs (``report.liquidations.last_price_comparison``).

Hand-built hourly candles: the trade candles' path is open at t0, the adverse extreme at
t0 + Δ/3 (the low for a long), the other at t0 + 2Δ/3, the close at t0 + Δ (README "Candles
are replayed as paths"); the expected instants below are read off that rule and the candles
written here, not from the engine.
"""

from __future__ import annotations

import pickle
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData, candle_path_points
from backtester.data.stream import stream_market_data
from backtester.report.liquidations import liquidation_report
from backtester.report.summary import format_summary
from backtester.swap.contract import get_contract
from tests.unit.engine.test_engine_cross import market

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
CONTRACT = "okx:BTC-USDT-SWAP"


def candles(opens, highs, lows, closes) -> np.ndarray:
    bars = np.zeros(len(closes), dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(len(closes)) * HOUR_NS
    bars["open"], bars["high"], bars["low"], bars["close"] = opens, highs, lows, closes
    return bars


class Schedule(Strategy):
    """Target position by bar close time: ``plan = {hour: contracts}`` (market orders)."""

    plan: ClassVar[dict] = {}

    def on_bar(self, ctx, bar):
        hour = int((bar["ts_ns"] + HOUR_NS - DAY0) // HOUR_NS)
        if hour in self.plan:
            ctx.market(self.plan[hour] - ctx.position)


def run(trade_candles, mark_candles=None, contracts=10.0, mark="historical"):
    data = MarketData(
        "BTC-USDT-SWAP",
        bars=trade_candles,
        bar_interval_ns=HOUR_NS,
        **(
            {}
            if mark_candles is None
            else {"mark": candle_path_points(mark_candles, HOUR_NS), "mark_interval_ns": HOUR_NS}
        ),
    )
    Schedule.plan = {1: contracts}  # decided at the 01:00 close: fills at the 01:00 open
    return backtest(
        Schedule,
        data,
        CONTRACT,
        initial_balance=1_000.0,
        leverage=50,
        mark_price_method=mark,
    )


def test_the_mark_crosses_two_hours_before_the_last_price(tmp_path):
    # long 10 contracts at 30,000, 50x: liquidation price ~29,520. The mark candle of 01:00
    # dips to 29,000 (liquidated at its low, 01:20); the trade candles stay at 30,000 until the
    # 03:00 candle, whose low 29,000 (visited first for a long, at 03:20) crosses it
    flat = [30_000.0] * 5
    trade = candles(flat, flat, [30_000.0, 30_000.0, 30_000.0, 29_000.0, 30_000.0], flat)
    mark = candles(flat, [30_050.0] * 5, [29_990.0, 29_000.0, 29_990.0, 29_990.0, 29_990.0], flat)
    result = run(trade, mark)
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert int(liq["ts_ns"][0]) == DAY0 + HOUR_NS + HOUR_NS // 3
    lp = float(liq["liquidation_price"][0])
    assert 29_000.0 < lp < 30_000.0  # crossed only by the two dips
    report = liquidation_report(result)
    row = report.iloc[0]
    expected = pd.Timestamp(DAY0 + 3 * HOUR_NS + HOUR_NS // 3, unit="ns", tz="UTC")
    assert row["last_price_trigger_time"] == expected
    assert row["last_price_delay"] == pd.Timedelta(hours=2)
    assert row["last_price_trigger"] == "low of the 2024-01-01 03:00 trade candle"
    # isolated: the same margin lost at either trigger
    margin = float(liq["loss_settle"][0] + liq["fee_settle"][0])
    assert row["last_price_loss_settle"] == margin
    assert row["loss_difference_settle"] == 0.0
    assert (
        "would have liquidated 2 h later (2024-01-01 03:20:00 UTC" in row["last_price_comparison"]
    )
    # the same columns in result.liquidations, and the sentence in the terminal summary
    frame = result.liquidations
    assert frame["last_price_trigger_time"].iloc[0] == expected
    assert frame["last_price_delay"].iloc[0] == pd.Timedelta(hours=2)
    summary = format_summary(result)
    assert "liquidation 2024-01-01 01:20:00 long full at " in summary
    assert "triggered on the low of the 2024-01-01 01:00 mark candle" in summary
    assert "a last-price model would have liquidated 2 h later" in summary
    # and in the HTML report's liquidations table
    html = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "last_price_trigger_time" in html
    assert "low of the 2024-01-01 03:00 trade candle" in html
    assert "<td>02:00:00</td>" in html  # the delay, signed (later than the mark)
    # a Result without the market data (unpickled in another process, loaded from a run
    # folder) says the comparison is not available, never a silent blank
    copy = pickle.loads(pickle.dumps(result))
    again = liquidation_report(copy).iloc[0]
    assert pd.isna(again["last_price_trigger_time"])
    assert again["last_price_trigger"].startswith(
        "not available: the Result does not hold the trade prices"
    )
    assert "last-price model not available" in format_summary(copy)


def test_the_last_price_never_crosses():
    # the same mark dip; the trade candles never go below 30,000 and close the data at 30,100
    # (04:00): a last-price model keeps the position, its unrealised PnL at the end is
    # 10 contracts · face · (30,100 − 30,000) instead of the margin lost
    closes = [30_000.0, 30_000.0, 30_000.0, 30_100.0]
    opens = [30_000.0] * 4
    trade = candles(opens, closes, opens, closes)
    mark = candles(opens, [30_050.0] * 4, [29_990.0, 29_000.0, 29_990.0, 29_990.0], opens)
    result = run(trade, mark)
    liq = result.records["liquidations"]
    assert len(liq) == 1
    row = liquidation_report(result).iloc[0]
    assert pd.isna(row["last_price_trigger_time"])
    assert pd.isna(row["last_price_delay"])
    assert row["last_price_trigger"] == "never within the data (to 2024-01-01 04:00 UTC)"
    face = get_contract(CONTRACT).face_value
    upl = 10.0 * face * (30_100.0 - 30_000.0)
    margin = float(liq["loss_settle"][0] + liq["fee_settle"][0])
    assert row["last_price_loss_settle"] == pytest.approx(-upl, rel=1e-12)
    assert row["loss_difference_settle"] == pytest.approx(-upl - margin, rel=1e-12)
    assert "would not have liquidated within the data" in row["last_price_comparison"]
    assert f"{-upl - margin:+.8g}" in row["last_price_comparison"]


def test_under_a_last_price_mark_the_instant_is_the_liquidation_itself():
    # mark = last price: the report's last-price instant is the run's own trigger (the 03:20
    # low of the 03:00 trade candle), delay 0
    flat = [30_000.0] * 5
    trade = candles(flat, flat, [30_000.0, 30_000.0, 30_000.0, 29_000.0, 30_000.0], flat)
    result = run(trade, mark="last")
    liq = result.records["liquidations"]
    assert len(liq) == 1
    row = liquidation_report(result).iloc[0]
    assert int(liq["ts_ns"][0]) == DAY0 + 3 * HOUR_NS + HOUR_NS // 3
    assert row["last_price_trigger_time"] == pd.Timestamp(int(liq["ts_ns"][0]), unit="ns", tz="UTC")
    assert row["last_price_delay"] == pd.Timedelta(0)
    assert row["last_price_comparison"].startswith(
        "(the run's mark is the last price) a last-price model would have liquidated at the "
        "same instant"
    )


def test_a_short_is_checked_on_the_high():
    # short 10 at 30,000: the trade candle of 02:00 has a high of 31,000 (visited first for a
    # short, at 02:20); its low 29,000 is irrelevant
    flat = [30_000.0] * 4
    trade = candles(flat, [30_000.0, 30_000.0, 31_000.0, 30_000.0], [29_000.0] * 4, flat)
    mark = candles(flat, [30_010.0, 31_000.0, 30_010.0, 30_010.0], [29_990.0] * 4, flat)
    result = run(trade, mark, contracts=-10.0)
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert int(liq["ts_ns"][0]) == DAY0 + HOUR_NS + HOUR_NS // 3
    row = liquidation_report(result).iloc[0]
    assert row["last_price_trigger_time"] == pd.Timestamp(
        DAY0 + 2 * HOUR_NS + HOUR_NS // 3, unit="ns", tz="UTC"
    )
    assert row["last_price_trigger"] == "high of the 2024-01-01 02:00 trade candle"
    assert row["last_price_delay"] == pd.Timedelta(hours=1)


SECOND_NS = 1_000_000_000
T0 = 1_700_000_000_000_000_000 - (1_700_000_000_000_000_000 % (60 * SECOND_NS))


def ticks_and_index(symbol, trades, index) -> MarketData:
    return market(symbol, trades, index, t0=T0)


class BuyOnce(Strategy):
    """A market order of ``contracts`` at the first trade (fills at the next one)."""

    contracts = 10.0

    def on_trade(self, ctx, trade):
        if not getattr(self, "done", False):
            ctx.market(self.contracts)
            self.done = True


def test_on_ticks_with_a_computed_mark_the_last_price_trigger_is_a_trade():
    # mark = index + EMA(last − index): the index falls to 29,000 at +120 s and the mark with
    # it (liquidated then); the trades stay at 30,000 until the tick of +7,320 s at 29,000,
    # two hours after the mark's trigger, the first trade at or below the liquidation price
    trades = [(1, 30_000.0), (2, 30_000.0), (90, 30_000.0), (150, 30_000.0)]
    trades += [(7_300, 29_990.0), (7_320, 29_000.0), (7_400, 30_000.0)]
    index = [(0, 30_000.0), (60, 30_000.0), (120, 29_000.0), (180, 29_000.0)]
    result = backtest(
        BuyOnce,
        ticks_and_index("BTC-USDT-SWAP", trades, index),
        CONTRACT,
        initial_balance=1_000.0,
        leverage=50.0,
    )
    assert result.config["mark_price_method_used"] != ["LAST"]
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert int(liq["ts_ns"][0]) == T0 + 120 * SECOND_NS
    assert 29_000.0 < liq["liquidation_price"][0] < 29_990.0
    row = liquidation_report(result).iloc[0]
    when = pd.Timestamp(T0 + 7_320 * SECOND_NS, unit="ns", tz="UTC")
    assert row["last_price_trigger_time"] == when
    assert row["last_price_trigger"] == f"trade of {when.isoformat()}"
    assert row["last_price_delay"] == pd.Timedelta(hours=2)
    assert row["last_price_comparison"].startswith(
        "a last-price model would have liquidated 2 h later"
    )


def test_inverse_never_crossed_loses_the_unrealised_pnl_in_coin():
    # OKEx 2019 coin-margined swap (face 100 USD), isolated long 10 contracts at 50,000, 20x:
    # the index falls to 45,000 (the mark with it: liquidated); the trades never leave
    # 50,000 and end at 50,500: a last-price model keeps the position, unrealised PnL
    # 10 · 100 · (1/50,000 − 1/50,500) BTC at the end instead of the margin lost
    trades = [(1, 50_000.0), (2, 50_000.0), (90, 50_000.0), (150, 50_000.0), (200, 50_500.0)]
    index = [(0, 50_000.0), (60, 50_000.0), (120, 45_000.0), (180, 45_000.0)]
    result = backtest(
        BuyOnce,
        ticks_and_index("BTC-USD-SWAP", trades, index),
        "okx_coinm_2019:BTC-USD-SWAP",
        initial_balance=1.0,
        leverage=20.0,
    )
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert result.records["fills"]["price"][0] == 50_000.0
    row = liquidation_report(result).iloc[0]
    end = pd.Timestamp(T0 + 200 * SECOND_NS, unit="ns", tz="UTC")
    assert row["last_price_trigger"] == f"never within the data (to {end:%Y-%m-%d %H:%M} UTC)"
    upl = 10.0 * 100.0 * (1.0 / 50_000.0 - 1.0 / 50_500.0)
    margin = float(liq["loss_settle"][0] + liq["fee_settle"][0])
    assert row["last_price_loss_settle"] == pytest.approx(-upl, rel=1e-12)
    assert row["loss_difference_settle"] == pytest.approx(-upl - margin, rel=1e-12)


def test_cross_margin_says_what_the_loss_difference_is_made_of():
    # the hand-built candles of the first test, in cross mode: the instant is the same, the
    # loss is not derived and the sentence says why
    flat = [30_000.0] * 5
    trade = candles(flat, flat, [30_000.0, 30_000.0, 30_000.0, 29_000.0, 30_000.0], flat)
    mark = candles(flat, [30_050.0] * 5, [29_990.0, 29_000.0, 29_990.0, 29_990.0, 29_990.0], flat)
    data = MarketData(
        "BTC-USDT-SWAP",
        bars=trade,
        bar_interval_ns=HOUR_NS,
        mark=candle_path_points(mark, HOUR_NS),
        mark_interval_ns=HOUR_NS,
    )
    Schedule.plan = {1: 10.0}
    result = backtest(
        Schedule,
        data,
        CONTRACT,
        initial_balance=100.0,
        leverage=50,
        margin_mode="cross",
        mark_price_method="historical",
    )
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert int(liq["ts_ns"][0]) == DAY0 + HOUR_NS + HOUR_NS // 3
    # wallet 100 on 10 · 0.01 BTC: the cross liquidation price is near 29,100, crossed by the
    # 03:00 trade candle's low (visited at 03:20)
    assert 29_000.0 < float(liq["liquidation_price"][0]) < 29_990.0
    row = liquidation_report(result).iloc[0]
    expected = pd.Timestamp(DAY0 + 3 * HOUR_NS + HOUR_NS // 3, unit="ns", tz="UTC")
    assert row["last_price_trigger_time"] == expected
    assert np.isnan(row["last_price_loss_settle"])
    assert np.isnan(row["loss_difference_settle"])
    assert "cross margin: the loss is not derived" in row["last_price_comparison"]


def test_never_crossed_after_two_entries_uses_the_average_entry():
    # long 5 at the 01:00 open (30,000), 5 more at the 02:00 open (30,200): average entry
    # 30,100. The mark candle of 03:00 dips to 29,000 (liquidated at 03:20); the trades never
    # go below 30,000 and the data ends at 30,300 (05:00): the last-price model's loss is
    # minus 10 · face · (30,300 − 30,100)
    opens = [30_000.0, 30_000.0, 30_200.0, 30_200.0, 30_300.0]
    closes = [30_000.0, 30_200.0, 30_200.0, 30_300.0, 30_300.0]
    trade = candles(opens, np.maximum(opens, closes), np.minimum(opens, closes), closes)
    mark = candles(opens, [30_400.0] * 5, [29_990.0, 29_990.0, 29_990.0, 29_000.0, 29_990.0], opens)
    data = MarketData(
        "BTC-USDT-SWAP",
        bars=trade,
        bar_interval_ns=HOUR_NS,
        mark=candle_path_points(mark, HOUR_NS),
        mark_interval_ns=HOUR_NS,
    )
    Schedule.plan = {1: 5.0, 2: 10.0}
    result = backtest(
        Schedule,
        data,
        CONTRACT,
        initial_balance=1_000.0,
        leverage=50,
        mark_price_method="historical",
    )
    assert result.records["fills"]["price"][:2].tolist() == [30_000.0, 30_200.0]
    liq = result.records["liquidations"]
    assert len(liq) == 1
    assert int(liq["ts_ns"][0]) == DAY0 + 3 * HOUR_NS + HOUR_NS // 3
    row = liquidation_report(result).iloc[0]
    assert row["last_price_trigger"] == "never within the data (to 2024-01-01 05:00 UTC)"
    upl = 10.0 * get_contract(CONTRACT).face_value * (30_300.0 - 30_100.0)
    assert row["last_price_loss_settle"] == pytest.approx(-upl, rel=1e-12)


def test_a_streamed_replay_says_the_comparison_is_not_available(tmp_path):
    # a streamed replay keeps only a thinned last-price series (bounded memory): the report
    # says the last-price model is not available instead of guessing from it
    from backtester.data import Catalog

    flat = [30_000.0] * 5
    trade = candles(flat, flat, [30_000.0, 30_000.0, 30_000.0, 29_000.0, 30_000.0], flat)
    catalog = Catalog(tmp_path / "catalog")
    catalog.write("bars", "okx", "BTC-USDT-SWAP", trade, source="unit", interval_ns=HOUR_NS)
    stream = stream_market_data(catalog, "okx", "BTC-USDT-SWAP", chunk_ns=2 * HOUR_NS)
    Schedule.plan = {1: 10.0}
    with backtest(
        Schedule, stream, CONTRACT, initial_balance=1_000.0, leverage=50, mark_price_method="last"
    ) as result:
        assert len(result.records["liquidations"]) == 1
        row = liquidation_report(result).iloc[0]
        assert pd.isna(row["last_price_trigger_time"])
        assert row["last_price_trigger"].startswith("not available: the Result does not hold")
        assert "last-price model not available" in format_summary(result)


def test_every_partial_step_has_its_instant():
    # OKEx 2019 coin-margined, cross, 15,000 contracts at 50,000 (tier 3), hourly candles,
    # mark = last price: stepped down at the 03:00 candle's low (48,300, visited at 03:20),
    # the rest taken over at the 04:00 candle's low (44,000, at 04:20). Under a last-price mark
    # each step's last-price instant is its own trigger, the second searched from the first's
    from tests.unit.engine.test_engine_cross_liquidation import OKEX, OpenAll, hourly_bars

    closes = [50_000.0] * 3 + [48_300.0, 44_000.0, 44_000.0]
    data = MarketData("BTC-USD-SWAP", bars=hourly_bars(closes), bar_interval_ns=HOUR_NS)
    result = backtest(
        OpenAll,
        data,
        OKEX,
        initial_balance=1.52,
        leverage=50.0,
        margin_mode="cross",
        params={"contracts": 15_000.0},
    )
    report = liquidation_report(result)
    assert report["kind"].tolist() == ["partial", "full"]
    # the candles' lows cross each step's liquidation price (a long's low is visited first)
    assert 48_300.0 <= report["liquidation_price"].iloc[0] < 50_000.0
    assert 44_000.0 <= report["liquidation_price"].iloc[1] < 48_300.0
    expected = [DAY0 + 3 * HOUR_NS + HOUR_NS // 3, DAY0 + 4 * HOUR_NS + HOUR_NS // 3]
    assert report["last_price_trigger_time"].tolist() == [
        pd.Timestamp(t, unit="ns", tz="UTC") for t in expected
    ]
    assert report["time"].tolist() == report["last_price_trigger_time"].tolist()
    assert report["last_price_delay"].tolist() == [pd.Timedelta(0)] * 2
    assert report["last_price_trigger"].tolist() == [
        "low of the 2024-01-01 03:00 trade candle",
        "low of the 2024-01-01 04:00 trade candle",
    ]
