"""Margin check of an order placed beside working orders that already close the position."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import OrderStatus, RejectReason

MINUTE_NS = 60_000_000_000
T0 = 1_704_067_200_000_000_000


class ShortThenTwoBuys(Strategy):
    """Bar 0: sell 0.1; bar 1: buy 0.1 twice (the first closes the short, the second opens)."""

    def on_bar(self, ctx, bar):
        k = len(ctx.closes) - 1
        if k == 0:
            ctx.market(-0.1)
        if k == 1:
            ctx.market(0.1)
            ctx.market(0.1)


def test_second_buy_against_a_short_the_first_closes_is_checked_for_margin():
    """okx:BTC-USDT-SWAP (face 0.01 BTC, taker 0.05 %), flat 20,000, 50x.

    Short 0.1: IM = 0.1·0.01·20,000/50 = 0.4 USDT, fee 0.001. Wallet 0.5 → free after the fill
    0.499 − 0.4 = 0.099. The first buy closes the short; the second would open a 0.1 long
    needing 0.4 + 0.001 — more than is free (even without the first buy's reservation), so it is
    refused. It used to be accepted as "closing" too and the account could lose more than it had.
    """
    bars = np.zeros(4, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(4) * MINUTE_NS
    for f in ("open", "high", "low", "close"):
        bars[f] = 20_000.0
    data = MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS)
    im = 0.1 * 0.01 * 20_000.0 / 50
    fee = 0.0005 * 0.1 * 0.01 * 20_000.0
    assert 0.5 - fee - im < im + fee
    result = backtest(ShortThenTwoBuys, data, "okx:BTC-USDT-SWAP", initial_balance=0.5, leverage=50)
    orders = result.records["orders"]
    assert list(orders["status"][:2]) == [OrderStatus.FILLED, OrderStatus.FILLED]
    assert orders[2]["status"] == OrderStatus.REJECTED
    assert orders[2]["reject_reason"] == RejectReason.INSUFFICIENT_MARGIN
    assert result.records["equity"]["position_contracts"][-1] == 0.0
    assert result.final_balance_settle == pytest.approx(0.5 - 2 * fee, rel=1e-12)
