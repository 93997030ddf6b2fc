"""Fills on trade ticks: market at the next trade, limits through the price, queue model."""

from __future__ import annotations

import numpy as np

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import Liquidity, OrderStatus

SECOND_NS = 1_000_000_000
T0 = 1_704_067_200_000_000_000


def ticks(prices: list[float], qty: float = 0.05) -> MarketData:
    t = np.zeros(len(prices), dtypes.TRADE_DTYPE)
    t["ts_ns"] = T0 + np.arange(len(prices)) * SECOND_NS
    t["price"] = prices
    t["qty_base"] = qty
    return MarketData("BTC-USDT-SWAP", trades=t)


class OnFirstTrade(Strategy):
    kind = "market"
    price = 0.0

    def on_trade(self, ctx, trade):
        if ctx.time_ns == T0:
            if self.kind == "market":
                ctx.market(1)
            else:
                ctx.limit(1, self.price)


def run(prices, **kwargs):
    params = kwargs.pop("params", {})
    return backtest(
        OnFirstTrade,
        ticks(prices),
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        params=params,
        **kwargs,
    )


def test_market_order_takes_the_next_trade_price():
    result = run([30_000.0, 30_005.0, 30_010.0])
    fill = result.records["fills"][0]
    assert (fill["price"], fill["ts_ns"]) == (30_005.0, T0 + SECOND_NS)


def test_latency_moves_the_fill_to_a_later_trade():
    result = run([30_000.0, 30_005.0, 30_010.0], latency_ns=int(1.5 * SECOND_NS))
    assert result.records["fills"][0]["price"] == 30_010.0


def test_limit_fills_only_when_a_trade_prints_through_it():
    prices = [30_000.0, 29_990.0, 29_990.0, 29_989.9, 30_000.0]
    result = run(prices, params={"kind": "limit", "price": 29_990.0})
    fill = result.records["fills"][0]
    assert fill["price"] == 29_990.0
    assert fill["ts_ns"] == T0 + 3 * SECOND_NS  # the first trade below the limit
    assert fill["liquidity"] == Liquidity.MAKER


def test_queue_model_fills_once_the_volume_at_the_price_exceeds_the_queue():
    prices = [30_000.0, 29_990.0, 29_990.0, 30_000.0]
    result = run(prices, params={"kind": "limit", "price": 29_990.0}, queue_model=True)
    fill = result.records["fills"][0]
    # queue ahead starts empty: the first trade at the price fills the order
    assert fill["ts_ns"] == T0 + SECOND_NS
    plain = run(prices, params={"kind": "limit", "price": 29_990.0})
    assert len(plain.records["fills"]) == 0
    assert plain.records["orders"][0]["status"] == OrderStatus.NEW
