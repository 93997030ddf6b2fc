"""Trailing stops: ``ctx.market(..., trailing_stop_distance=)`` / ``trailing_stop_fraction=``
and ``ctx.trailing_stop(...)``. The trigger follows the favourable extreme of the price path
(each trade; each bar's open, extremes and close in path order), never loosens, and is one
cancels the other with the take-profit.

Linear OKX BTC-USDT-SWAP (face 0.01 BTC, tick 0.1), one-minute bars. A candle [t0, t0+60 s) is
replayed as open at t0, the extreme adverse to the position at t0+20 s, the other at t0+40 s,
the close at t0+60 s (docs/ARCHITECTURE.md, events at one instant). A market order placed at a
bar close fills at the next bar's open. Every expected price and time below is derived by hand
from those rules: a long's trailing level is max(price seen since the fill) - distance,
rounded down to the tick; a stop crossed on a path segment fills at its level.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import OrderStatus, OrderType
from backtester.jit import (
    JitStrategy,
    fill,
    market,
    one_cancels_other,
    place_exits,
    position,
    trailing_stop,
)
from tests.unit.ux.scripted_bars import CONTRACT, FLAT, MINUTE_NS, SECOND_NS, T0, bars, run

# long from 30,000 (bar 1's open), trail 500: the path is open -> low -> high -> close
RISE_1 = (30_000.0, 30_400.0, 29_800.0, 30_300.0)  # low 29,800 > 29,500; high -> stop 29,900
RISE_2 = (30_300.0, 31_000.0, 30_200.0, 30_900.0)  # low 30,200 > 29,900; high -> stop 30,500
FALL = (30_900.0, 30_950.0, 30_400.0, 30_600.0)  # open -> low crosses 30,500: exit there


def test_a_long_trailing_stop_ratchets_on_each_high_and_exits_on_the_pullback():
    result = run(
        [FLAT, RISE_1, RISE_2, FALL, FLAT], {0: lambda c: c.market(1, trailing_stop_distance=500)}
    )
    orders = result.records["orders"]
    fills = result.records["fills"]
    trail = orders[1]
    assert trail["order_type"] == OrderType.TRAILING_STOP_MARKET
    assert trail["reduce_only"]
    assert trail["status"] == OrderStatus.FILLED
    # the highest price seen before the exit is bar 2's high, 31,000: level 31,000 - 500
    assert trail["trigger_price"] == 30_500.0
    assert [f["price"] for f in fills] == [30_000.0, 30_500.0]
    # bar 3 opens at T0 + 3 min; its low (adverse to the long) is the point at +20 s
    assert fills[1]["ts_ns"] == T0 + 3 * MINUTE_NS + 20 * SECOND_NS
    # 1 contract x 0.01 BTC x (30,500 - 30,000) = 5 USDT
    assert fills[1]["realised_pnl_settle"] == pytest.approx(5.0, rel=1e-12)
    assert result.trades["exit_reason"].tolist() == ["trailing_stop"]


def test_the_trail_covers_the_rest_of_the_entry_bar():
    # entry at bar 1's open 30,000; path open -> low 29,900 (stop 29,500 not hit) -> high
    # 30,600 (stop 30,100) -> close 30,050, which crosses 30,100: exit at the entry bar's close
    entry_bar = (30_000.0, 30_600.0, 29_900.0, 30_050.0)
    result = run([FLAT, entry_bar, FLAT], {0: lambda c: c.market(1, trailing_stop_distance=500)})
    fills = result.records["fills"]
    assert [f["price"] for f in fills] == [30_000.0, 30_100.0]
    assert [f["ts_ns"] for f in fills] == [T0 + MINUTE_NS, T0 + 2 * MINUTE_NS]


def test_a_short_trailing_fraction_mirrors_it():
    # short from 30,000, trail 1 %: level min(price) * 1.01 rounded up to the tick. The path
    # of a short is open -> high -> low -> close.
    # bar 1: high 30,200 < 30,300 (30,000 x 1.01); low 29,000 -> level 29,290; close 29,100
    # bar 2: open 29,100 -> high 29,400 crosses 29,290: the stop fills there at +20 s
    result = run(
        [FLAT, (30_000.0, 30_200.0, 29_000.0, 29_100.0), (29_100.0, 29_400.0, 29_050.0, 29_300.0)],
        {0: lambda c: c.market(-1, trailing_stop_fraction=0.01)},
    )
    orders = result.records["orders"]
    fills = result.records["fills"]
    assert orders[1]["side"] == 1
    assert orders[1]["trigger_price"] == pytest.approx(29_290.0, abs=1e-9)
    assert fills[1]["price"] == pytest.approx(29_290.0, abs=1e-9)
    assert fills[1]["ts_ns"] == T0 + 2 * MINUTE_NS + 20 * SECOND_NS
    # short: 1 x 0.01 x (30,000 - 29,290) = 7.1 USDT
    assert fills[1]["realised_pnl_settle"] == pytest.approx(7.1, rel=1e-9)


def test_the_take_profit_cancels_the_trailing_stop():
    # trail 500, target 30,800: bar 2's path open 30,300 -> low 30,200 -> high 31,000 crosses
    # the target (30,000 + 800) at +40 s, before the trailing stop (at 29,900) could fill; the
    # trailing stop is cancelled
    result = run(
        [FLAT, RISE_1, RISE_2, FLAT],
        {0: lambda c: c.market(1, trailing_stop_distance=500, take_profit_distance=800)},
    )
    orders = result.records["orders"]
    fills = result.records["fills"]
    assert (orders[1]["order_type"], orders[2]["order_type"]) == (
        OrderType.TRAILING_STOP_MARKET,
        OrderType.TAKE_PROFIT,
    )
    assert orders[2]["status"] == OrderStatus.FILLED
    assert orders[1]["status"] == OrderStatus.CANCELLED
    assert fills[1]["price"] == 30_800.0
    assert fills[1]["ts_ns"] == T0 + 2 * MINUTE_NS + 40 * SECOND_NS


def test_the_trigger_never_loosens_when_the_price_falls_without_reaching_it():
    # after bar 1 the level is 29,900; bar 2 falls to 29,950 and closes 30,000 (no new high):
    # the level stays 29,900 and nothing fills
    result = run(
        [FLAT, RISE_1, (30_300.0, 30_350.0, 29_950.0, 30_000.0), FLAT],
        {0: lambda c: c.market(1, trailing_stop_distance=500)},
    )
    orders = result.records["orders"]
    assert orders[1]["status"] == OrderStatus.NEW
    assert orders[1]["trigger_price"] == 29_900.0
    assert len(result.records["fills"]) == 1


def test_both_a_fixed_and_a_trailing_stop_are_refused():
    with pytest.raises(ValueError, match="give one of a price, stop_loss_distance"):
        run([FLAT, FLAT], {0: lambda c: c.market(1, stop_loss=29_000.0, trailing_stop_distance=5)})


def ticks(prices) -> MarketData:
    t = np.zeros(len(prices), dtypes.TRADE_DTYPE)
    t["ts_ns"] = T0 + np.arange(len(prices)) * SECOND_NS
    t["price"] = prices
    t["qty_base"] = 0.05
    return MarketData("BTC-USDT-SWAP", trades=t)


class TrailOnTicks(Strategy):
    """Buys on the first trade; once filled, a standalone trailing stop of 100 USDT."""

    def on_trade(self, ctx, trade):
        if ctx.time_ns == T0:
            ctx.market(1)

    def on_fill(self, ctx, fill):
        if fill["order_id"] == 0:
            ctx.trailing_stop(-1, distance=100.0)


def test_a_trailing_stop_follows_trade_ticks():
    # entry fills at the second trade, 30,010; the stop is accepted there (extreme 30,010,
    # level 29,910), then 30,050 -> 29,950, 30,200 -> 30,100; 30,150 and 30,120 stay above;
    # 30,099 prints through 30,100: the stop-market fills at that trade's price
    prices = [30_000.0, 30_010.0, 30_050.0, 30_200.0, 30_150.0, 30_120.0, 30_099.0, 30_090.0]
    result = backtest(TrailOnTicks, ticks(prices), CONTRACT, initial_balance=1_000.0)
    fills = result.records["fills"]
    orders = result.records["orders"]
    assert orders[1]["order_type"] == OrderType.TRAILING_STOP_MARKET
    assert orders[1]["trigger_price"] == 30_100.0
    assert [(f["price"], f["ts_ns"]) for f in fills] == [
        (30_010.0, T0 + SECOND_NS),
        (30_099.0, T0 + 6 * SECOND_NS),
    ]


def test_a_trailing_stop_without_a_trail_is_refused():
    with pytest.raises(ValueError, match="give one of distance="):
        run([FLAT, FLAT], {0: lambda c: c.trailing_stop(-1)})


@njit
def jit_on_bar(ctx, state, i, row):
    if state[0] == 0.0:
        state[0] = 1.0
        market(ctx, i, 1.0)


@njit
def jit_on_fill(ctx, state, fill_row):
    if one_cancels_other(ctx, fill_row, np.int64(state[1]), np.int64(state[2])):
        return
    entry = fill(ctx, fill_row)
    i = entry.instrument
    q = position(ctx, i)
    if q != 0.0 and state[1] < 0:
        state[1] = trailing_stop(ctx, i, -q, 500.0, np.nan, entry.price)
        state[2] = place_exits(ctx, i, np.nan, entry.price + 800.0)[1]


class JitTrailing(JitStrategy):
    on_bar = jit_on_bar
    on_fill = jit_on_fill

    def make_state(self):
        return np.array([0.0, -1.0, -1.0])


def test_the_jit_helper_trails_like_the_python_exit():
    # the same bars as the take-profit test, on both paths: same orders and fills
    data = bars([FLAT, RISE_1, RISE_2, FLAT])
    jit = backtest(JitTrailing, data, CONTRACT, initial_balance=10_000.0)
    py = run(
        [FLAT, RISE_1, RISE_2, FLAT],
        {0: lambda c: c.market(1, trailing_stop_distance=500, take_profit_distance=800)},
    )
    orders = jit.records["orders"]
    assert orders[1]["order_type"] == OrderType.TRAILING_STOP_MARKET
    assert (orders[1]["status"], orders[2]["status"]) == (OrderStatus.CANCELLED, OrderStatus.FILLED)
    for name in ("fills", "ledger"):
        np.testing.assert_array_equal(jit.records[name], py.records[name])
    for field in ("order_type", "side", "status", "trigger_price", "qty_contracts"):
        np.testing.assert_array_equal(orders[field], py.records["orders"][field])


def recomputed_trailing_exit(bars_, k, fill, fraction, tick, interval):
    """(price, ts) where a long's trailing stop of ``fraction`` entered at bar ``k``'s open
    (price ``fill``) exits, walking each candle's path open -> low -> high -> close at
    t0, t0 + interval/3, t0 + 2 interval/3, t0 + interval (None if it never does)."""
    best = fill

    def level():
        return np.floor(best * (1 - fraction) / tick + 1e-9) * tick

    for j in range(k, len(bars_)):
        b = bars_[j]
        t0 = int(b["ts_ns"])
        if j > k:  # the open: a gap through the level fills at the open
            if b["open"] <= level() + 1e-9:
                return float(b["open"]), t0
            best = max(best, float(b["open"]))
        if b["low"] <= level() + 1e-9:
            return level(), t0 + interval // 3
        best = max(best, float(b["high"]))
        if b["close"] <= level() + 1e-9:
            return level(), t0 + interval
    return None


def test_the_signal_path_tsl_stop_matches_a_recomputation_from_the_bars():
    from backtester import backtest_signals
    from backtester.data.sample import load_sample

    data = load_sample("BTC-USDT-SWAP", with_trades=False)
    close = data.bars["close"]
    fast = np.convolve(close, np.ones(20) / 20)[: len(close)]
    slow = np.convolve(close, np.ones(120) / 120)[: len(close)]
    above = fast > slow
    cross = np.r_[False, above[1:] != above[:-1]]
    result = backtest_signals(cross & above, cross & ~above, data, CONTRACT,
                              initial_balance=1e4, tsl_stop=0.004)  # fmt: skip
    orders = result.records["orders"]
    fills = result.records["fills"]
    trails = orders[orders["order_type"] == OrderType.TRAILING_STOP_MARKET]
    filled = trails[trails["status"] == OrderStatus.FILLED]
    assert len(filled) > 10
    bar_row = {int(t): r for r, t in enumerate(data.bars["ts_ns"])}
    for trail in trails:
        entry = orders[int(trail["order_id"]) - 1]
        assert entry["order_type"] == OrderType.MARKET
        assert entry["ts_updated_ns"] in bar_row  # filled at a bar's open
        expected = recomputed_trailing_exit(
            data.bars, bar_row[int(entry["ts_updated_ns"])], float(entry["average_fill_price"]),
            0.004, 0.1, data.bar_interval_ns,
        )  # fmt: skip
        if trail["status"] == OrderStatus.FILLED:
            fill = fills[fills["order_id"] == trail["order_id"]][0]
            assert expected is not None
            assert fill["price"] == pytest.approx(expected[0], abs=1e-6)
            assert fill["ts_ns"] == expected[1]
        else:  # cancelled by the exit signal before it would have fired
            assert trail["status"] == OrderStatus.CANCELLED
            assert expected is None or expected[1] > trail["ts_updated_ns"]


def test_an_amended_trailing_stop_keeps_its_trail_and_extreme():
    # long from 30,000, trail 500: after bar 1 (high 30,400) the level is 29,900. Amended at
    # bar 1's close, the new order keeps the extreme 30,400 (level 29,900; from the last price
    # 30,300 it would be 29,800), so bar 2's dip to 29,850 fills it at 29,900 (at +20 s)
    def amend(c):
        (working,) = c.open_orders()
        c.amend(int(working["order_id"]), contracts=1)

    dip = (30_300.0, 30_350.0, 29_850.0, 30_000.0)
    result = run(
        [FLAT, RISE_1, dip, FLAT],
        {0: lambda c: c.market(1, trailing_stop_distance=500), 1: amend},
    )
    orders = result.records["orders"]
    assert orders[1]["status"] == OrderStatus.CANCELLED
    assert orders[2]["order_type"] == OrderType.TRAILING_STOP_MARKET
    assert orders[2]["status"] == OrderStatus.FILLED
    fill = result.records["fills"][-1]
    assert (fill["price"], fill["ts_ns"]) == (29_900.0, T0 + 2 * MINUTE_NS + 20 * SECOND_NS)
