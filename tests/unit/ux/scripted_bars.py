"""Shared by the exit tests (stop-loss/take-profit, trailing stop, exits from the fill): a
scripted strategy run on hand-built one-minute bars of linear OKX BTC-USDT-SWAP (face 0.01 BTC,
tick 0.1), the candle at row k spanning [T0 + k min, T0 + (k+1) min)."""

from __future__ import annotations

import numpy as np

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData

MINUTE_NS = 60_000_000_000
SECOND_NS = 1_000_000_000
T0 = 1_700_000_000_000_000_000
CONTRACT = "okx:BTC-USDT-SWAP"
FLAT = (30_000.0, 30_010.0, 29_990.0, 30_000.0)


def bars(ohlc) -> MarketData:
    """One-minute bars from (open, high, low, close) tuples, from T0."""
    rows = np.zeros(len(ohlc), dtypes.BAR_DTYPE)
    rows["ts_ns"] = T0 + np.arange(len(ohlc)) * MINUTE_NS
    for k, (o, h, low, c) in enumerate(ohlc):
        rows[k]["open"], rows[k]["high"], rows[k]["low"], rows[k]["close"] = o, h, low, c
    return MarketData("BTC-USDT-SWAP", bars=rows, bar_interval_ns=MINUTE_NS)


class Scripted(Strategy):
    """Calls ``actions[k](ctx)`` at the close of bar k."""

    actions: dict = {}  # noqa: RUF012  (set per test)

    def on_bar(self, ctx, bar):
        action = self.actions.get(len(ctx.closes) - 1)
        if action is not None:
            action(ctx)


def run(ohlc, actions):
    """Backtest :class:`Scripted` with ``actions`` on ``bars(ohlc)``, 10,000 USDT."""
    return backtest(Scripted, bars(ohlc), CONTRACT, initial_balance=10_000.0,
                    params={"actions": actions})  # fmt: skip
