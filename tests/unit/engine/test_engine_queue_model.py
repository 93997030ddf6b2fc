"""Queue-position model on trade ticks (``queue_model=True``; orders_nb module notes).

A resting limit starts behind ``queue_ahead_base`` base coin (per order, ``ctx.limit(...,
queue_ahead_base=)``, or the run's ``queue_initial_base`` option). Trades exactly at the limit
consume that queue first and only their excess fills
the order; trades through the limit fill it whatever the queue. OKX BTC-USDT-SWAP: linear, face
value 0.01 BTC, lot 0.01 contracts (0.01 BTC traded = 1 contract).
"""

from __future__ import annotations

import numpy as np

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import Liquidity, OrderStatus

SECOND_NS = 1_000_000_000
T0 = 1_704_067_200_000_000_000
LIMIT = 29_990.0


def ticks(rows: list[tuple[float, float]]) -> MarketData:
    """Trades one second apart from ``(price, qty_base)`` pairs."""
    t = np.zeros(len(rows), dtypes.TRADE_DTYPE)
    t["ts_ns"] = T0 + np.arange(len(rows)) * SECOND_NS
    t["price"] = [r[0] for r in rows]
    t["qty_base"] = [r[1] for r in rows]
    return MarketData("BTC-USDT-SWAP", trades=t)


class QueuedBuy(Strategy):
    """Buys ``contracts`` at ``price`` after the first trade, behind ``queue`` base coin."""

    contracts = 5.0
    price = LIMIT
    queue = 0.0

    def on_trade(self, ctx, trade):
        if trade["ts_ns"] == T0:
            ctx.limit(self.contracts, self.price, queue_ahead_base=self.queue)


def run(rows, queue=0.0, contracts=5.0, queue_model=True):
    return backtest(
        QueuedBuy,
        ticks(rows),
        "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0,
        params={"queue": queue, "contracts": contracts},
        queue_model=queue_model,
    )


def fill_rows(result) -> list[tuple[int, float, float]]:
    """(trade index, price, contracts) of every fill."""
    fills = result.records["fills"]
    return [
        (int((f["ts_ns"] - T0) // SECOND_NS), float(f["price"]), float(f["qty_contracts"]))
        for f in fills
    ]


AT_PRICE = [
    (30_000.0, 1.0),
    (LIMIT, 0.04),  # queue 0.10 -> 0.06
    (LIMIT, 0.05),  # -> 0.01
    (LIMIT, 0.03),  # 0.01 consumes the queue, the excess 0.02 fills 2 contracts
    (LIMIT, 0.02),  # at the front now: 2 more
    (LIMIT, 0.05),  # the last contract
    (LIMIT, 0.05),
]


def test_trades_at_the_price_fill_only_after_the_queue_ahead_is_consumed():
    result = run(AT_PRICE, queue=0.1)
    assert fill_rows(result) == [(3, LIMIT, 2.0), (4, LIMIT, 2.0), (5, LIMIT, 1.0)]
    assert list(result.records["fills"]["liquidity"]) == [Liquidity.MAKER] * 3
    order = result.records["orders"][0]
    assert OrderStatus(int(order["status"])) == OrderStatus.FILLED
    assert (order["filled_contracts"], order["average_fill_price"]) == (5.0, LIMIT)


def test_a_queue_longer_than_the_volume_at_the_price_never_fills():
    result = run(AT_PRICE, queue=0.5)  # 0.24 BTC trades at the price in all
    assert fill_rows(result) == []
    order = result.records["orders"][0]
    assert OrderStatus(int(order["status"])) == OrderStatus.NEW
    assert order["filled_contracts"] == 0.0


def test_empty_queue_fills_the_first_trade_at_the_price_up_to_its_size():
    result = run([(30_000.0, 1.0), (LIMIT, 0.02), (LIMIT, 0.01)], queue=0.0)
    assert fill_rows(result) == [(1, LIMIT, 2.0), (2, LIMIT, 1.0)]
    order = result.records["orders"][0]
    assert OrderStatus(int(order["status"])) == OrderStatus.PARTIALLY_FILLED
    assert order["filled_contracts"] == 3.0


def test_without_the_queue_model_trades_at_the_price_never_fill():
    result = run(AT_PRICE, queue=0.0, queue_model=False)
    assert fill_rows(result) == []
    assert OrderStatus(int(result.records["orders"][0]["status"])) == OrderStatus.NEW


def test_a_trade_through_the_price_fills_at_once_and_empties_the_queue():
    rows = [
        (30_000.0, 1.0),
        (LIMIT, 0.5),  # at the price: 0.5 of the 1000 BTC queue
        (29_985.0, 0.03),  # through the limit: the level was swept, 3 contracts fill
        (LIMIT, 0.01),  # nothing is ahead any more: 1 contract
        (30_000.0, 1.0),
    ]
    result = run(rows, queue=1_000.0)
    assert fill_rows(result) == [(2, LIMIT, 3.0), (3, LIMIT, 1.0)]
    order = result.records["orders"][0]
    assert OrderStatus(int(order["status"])) == OrderStatus.PARTIALLY_FILLED
    assert order["filled_contracts"] == 4.0


def test_trades_of_unknown_size_cannot_consume_the_queue():
    rows = [(30_000.0, 0.0), (LIMIT, 0.0), (LIMIT, 0.0), (29_989.0, 0.0)]
    result = run(rows, queue=0.0)
    # at the price nothing fills (no size to consume); through the price the whole order fills
    assert fill_rows(result) == [(3, LIMIT, 5.0)]
    assert OrderStatus(int(result.records["orders"][0]["status"])) == OrderStatus.FILLED


class PlainBuy(Strategy):
    """Buys 5 contracts at LIMIT after the first trade, with the run's queue assumption."""

    def on_trade(self, ctx, trade):
        if trade["ts_ns"] == T0:
            ctx.limit(5.0, LIMIT)


def test_the_run_option_sets_the_queue_ahead_of_every_new_limit():
    rows = [(30_000.0, 0.01), (LIMIT, 0.08), (LIMIT, 0.04), (LIMIT, 0.05)]
    result = backtest(
        PlainBuy,
        ticks(rows),
        "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0,
        queue_model=True,
        queue_initial_base=0.1,
    )
    fills = result.records["fills"]
    # 0.1 BTC ahead: 0.08 + 0.02 of the next trade consume it, 0.02 BTC = 2 contracts fill,
    # then 0.05 BTC = 5 contracts are offered for the remaining 3
    assert list(fills["qty_contracts"]) == [2.0, 3.0]
    assert list(fills["price"]) == [LIMIT, LIMIT]


def test_a_negative_queue_assumption_is_refused_with_its_name():
    import pytest

    with pytest.raises(ValueError, match="queue_initial_base"):
        backtest(
            PlainBuy,
            ticks([(30_000.0, 0.01)]),
            "okx:BTC-USDT-SWAP",
            initial_balance=10_000.0,
            queue_initial_base=-1.0,
        )
