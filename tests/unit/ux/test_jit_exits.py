"""The jit helpers place_exits / one_cancels_other protect an entry like ctx.market(...,
stop_loss=, take_profit=) does on the Python path: the same orders and fills on the same bars."""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import OrderStatus
from backtester.jit import JitStrategy, fill, market, one_cancels_other, place_exits, position

MINUTE_NS = 60_000_000_000
T0 = 1_700_000_000_000_000_000
FLAT = (30_000.0, 30_010.0, 29_990.0, 30_000.0)
ENTRY_BAR = (30_000.0, 30_100.0, 29_900.0, 30_050.0)
UP_THROUGH_TP = (30_050.0, 31_100.0, 30_000.0, 31_050.0)


def bars() -> MarketData:
    ohlc = [FLAT, ENTRY_BAR, UP_THROUGH_TP, FLAT]
    rows = np.zeros(len(ohlc), dtypes.BAR_DTYPE)
    rows["ts_ns"] = T0 + np.arange(len(ohlc)) * MINUTE_NS
    for k, (o, h, low, c) in enumerate(ohlc):
        rows[k]["open"], rows[k]["high"], rows[k]["low"], rows[k]["close"] = o, h, low, c
    return MarketData("BTC-USDT-SWAP", bars=rows, bar_interval_ns=MINUTE_NS)


@njit
def on_bar(ctx, state, i, row):
    if state[0] == 0.0:
        state[0] = 1.0
        market(ctx, i, 1.0)


@njit
def on_fill(ctx, state, fill_row):
    if one_cancels_other(ctx, fill_row, np.int64(state[1]), np.int64(state[2])):
        return
    entry = fill(ctx, fill_row)
    if position(ctx, entry.instrument) != 0.0 and state[1] < 0:
        ids = place_exits(ctx, entry.instrument, entry.price - 500.0, entry.price + 1_000.0)
        state[1], state[2] = ids[0], ids[1]


class JitProtected(JitStrategy):
    on_bar = on_bar
    on_fill = on_fill

    def make_state(self):
        return np.array([0.0, -1.0, -1.0])


class PyProtected(Strategy):
    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1:
            ctx.market(1, stop_loss_distance=500, take_profit_distance=1_000)


def test_jit_exits_equal_the_python_protection():
    jit = backtest(JitProtected, bars(), "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    py = backtest(PyProtected, bars(), "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    orders = jit.records["orders"]
    assert orders[2]["status"] == OrderStatus.FILLED  # take-profit at 31,000
    assert orders[1]["status"] == OrderStatus.CANCELLED  # its stop, cancelled
    for name in ("fills", "ledger"):
        np.testing.assert_array_equal(jit.records[name], py.records[name])
    for field in ("order_type", "side", "status", "trigger_price", "qty_contracts"):
        np.testing.assert_array_equal(orders[field], py.records["orders"][field])
