"""Entries carrying their exits: ctx.market(..., stop_loss=, take_profit=) places reduce-only
exits once the entry has filled, one cancels the other, and both go when the position does.

Linear OKX BTC-USDT-SWAP (face 0.01 BTC, tick 0.1), one-minute bars; a market order placed at a
bar close fills at the next bar's open; a triggered stop / take-profit on the bar path fills at
its trigger when the path passes through it without a gap.
"""

from __future__ import annotations

import pytest

from backtester.enums import OrderStatus, OrderType
from tests.unit.ux.scripted_bars import FLAT, run

ENTRY_BAR = (30_000.0, 30_100.0, 29_900.0, 30_050.0)  # entry fills at its open, 30,000
UP_THROUGH_TP = (30_050.0, 31_100.0, 30_000.0, 31_050.0)
DOWN_THROUGH_SL = (30_050.0, 30_060.0, 29_400.0, 29_450.0)


def test_take_profit_fills_and_cancels_the_stop():
    result = run(
        [FLAT, ENTRY_BAR, UP_THROUGH_TP, FLAT],
        {0: lambda c: c.market(1, stop_loss_distance=500, take_profit_distance=1_000)},
    )
    orders = result.records["orders"]
    fills = result.records["fills"]
    # entry at 30,000; exits from the fill: stop 30,000 - 500, target 30,000 + 1,000
    stop, target = orders[1], orders[2]
    assert (stop["order_type"], stop["trigger_price"]) == (OrderType.STOP_MARKET, 29_500.0)
    assert (target["order_type"], target["trigger_price"]) == (OrderType.TAKE_PROFIT, 31_000.0)
    assert stop["reduce_only"]
    assert target["reduce_only"]
    assert stop["qty_contracts"] == target["qty_contracts"] == 1.0
    assert target["status"] == OrderStatus.FILLED
    assert stop["status"] == OrderStatus.CANCELLED
    assert [f["price"] for f in fills] == [30_000.0, 31_000.0]
    assert fills[-1]["position_after_contracts"] == 0.0
    # realised PnL of the exit: 1 x 0.01 x (31,000 - 30,000) = 10 USDT
    assert fills[-1]["realised_pnl_settle"] == pytest.approx(10.0, rel=1e-12)
    assert result.rejections.empty


def test_stop_loss_sized_in_money_fills_and_cancels_the_target():
    # notional 3,000 USDT at 30,000 = 3,000 / (0.01 x 30,000) = 10 contracts
    result = run(
        [FLAT, ENTRY_BAR, DOWN_THROUGH_SL, FLAT],
        {0: lambda c: c.market(notional=3_000, stop_loss=29_500.0, take_profit=31_000.0)},
    )
    orders = result.records["orders"]
    fills = result.records["fills"]
    assert orders[0]["qty_contracts"] == 10.0
    assert orders[1]["qty_contracts"] == 10.0
    assert orders[1]["status"] == OrderStatus.FILLED
    assert orders[2]["status"] == OrderStatus.CANCELLED
    assert fills[-1]["price"] == 29_500.0
    # 10 x 0.01 x (29,500 - 30,000) = -50 USDT
    assert fills[-1]["realised_pnl_settle"] == pytest.approx(-50.0, rel=1e-12)


def test_a_short_entry_mirrors_the_exits():
    result = run(
        [FLAT, ENTRY_BAR, FLAT],
        {0: lambda c: c.market(-2, stop_loss_distance=250.05, take_profit_distance=400)},
    )
    orders = result.records["orders"]
    # short at 30,000: stop above at 30,250.05 -> nearest tick 30,250.1 (round half up on
    # 302500.5 ticks), target below at 29,600
    assert orders[1]["side"] == 1
    assert orders[2]["side"] == 1
    assert orders[1]["trigger_price"] == pytest.approx(30_250.1, abs=1e-9)
    assert orders[2]["trigger_price"] == 29_600.0
    assert orders[1]["qty_contracts"] == 2.0


def test_closing_the_position_cancels_both_exits():
    result = run(
        [FLAT, ENTRY_BAR, FLAT, FLAT, FLAT],
        {
            0: lambda c: c.market(1, stop_loss=29_000.0, take_profit=32_000.0),
            2: lambda c: c.close_position(),
        },
    )
    orders = result.records["orders"]
    assert orders[1]["status"] == OrderStatus.CANCELLED
    assert orders[2]["status"] == OrderStatus.CANCELLED
    assert result.records["fills"][-1]["position_after_contracts"] == 0.0
    assert result.open_position_at_end is None


def test_an_off_tick_stop_is_refused_when_the_entry_is_placed():
    with pytest.raises(ValueError, match=r"stop_loss: 29873\.27 is off the 0\.1 tick; nearest"):
        run([FLAT, ENTRY_BAR], {0: lambda c: c.market(1, stop_loss=29_873.27)})
