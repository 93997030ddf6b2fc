"""Partial fills of resting limits against trade sizes on ticks (orders_nb fill-size model).

Runs go through ``backtest`` with hand-made trade arrays. OKX BTC-USDT-SWAP is linear with a face
value of 0.01 BTC and a lot of 0.01 contracts, so a trade of 0.03 BTC is 3 contracts; OKX
BTC-USD-SWAP is inverse with a face value of 100 USD and a lot of 1 contract, so 0.01 BTC at
30 010 is 3.001 contracts.
"""

from __future__ import annotations

import numpy as np

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.engine.orders_nb import accept_orders_nb
from backtester.engine.state_nb import engine_state
from backtester.enums import Liquidity, OrderStatus, OrderType, RejectReason, Side

SECOND_NS = 1_000_000_000
T0 = 1_704_067_200_000_000_000
LINEAR = "okx:BTC-USDT-SWAP"
INVERSE = "okx:BTC-USD-SWAP"
MINUTE_NS = 60 * SECOND_NS


def ticks(rows: list[tuple[float, float]], symbol: str = "BTC-USDT-SWAP") -> MarketData:
    """Trades one second apart from ``(price, qty_base)`` pairs."""
    t = np.zeros(len(rows), dtypes.TRADE_DTYPE)
    t["ts_ns"] = T0 + np.arange(len(rows)) * SECOND_NS
    t["price"] = [r[0] for r in rows]
    t["qty_base"] = [r[1] for r in rows]
    return MarketData(symbol, trades=t)


class TickScript(Strategy):
    """Runs ``actions[k](ctx)`` after trade k; logs the order state after each fill."""

    actions: dict = {}  # noqa: RUF012  (replaced per test through params)
    log: dict = {}  # noqa: RUF012  (a fresh dict per test collects what the callbacks saw)

    def on_start(self, ctx):
        self.seen = 0
        self.log["after_fill"] = []
        self.log["rejected"] = []

    def on_trade(self, ctx, trade):
        action = self.actions.get(self.seen)
        self.seen += 1
        if action is not None:
            action(ctx)

    def on_fill(self, ctx, fill):
        working = ctx.open_orders()
        mine = working[working["order_id"] == fill["order_id"]]
        status = OrderStatus(int(mine[0]["status"])) if len(mine) else None
        self.log["after_fill"].append((int(fill["order_id"]), status))

    def on_order_rejected(self, ctx, order):
        self.log["rejected"].append(int(order["order_id"]))


def run(rows, actions, contract=LINEAR, balance=10_000.0, **options):
    log: dict = {}
    symbol = "BTC-USDT-SWAP" if contract == LINEAR else "BTC-USD-SWAP"
    result = backtest(
        TickScript,
        ticks(rows, symbol),
        contract,
        initial_balance=balance,
        params={"actions": actions, "log": log},
        **options,
    )
    return result, log


def fill_rows(result) -> list[tuple[int, int, float, float]]:
    """(order id, trade index, price, contracts) of every fill."""
    fills = result.records["fills"]
    return [
        (int(f["order_id"]), int((f["ts_ns"] - T0) // SECOND_NS), float(f["price"]), float(q))
        for f, q in zip(fills, fills["qty_contracts"], strict=True)
    ]


def test_limit_fills_trade_by_trade_up_to_each_trade_size():
    rows = [
        (30_000.0, 1.0),
        (29_989.0, 0.03),  # 3 contracts through the limit
        (29_985.0, 0.04),  # 4 contracts
        (30_000.0, 1.0),  # above the limit: nothing
        (29_980.0, 0.05),  # 5 contracts, 3 left to fill
        (29_970.0, 0.05),
    ]
    result, log = run(rows, {0: lambda c: c.limit(10, 29_990.0)})
    assert fill_rows(result) == [
        (0, 1, 29_990.0, 3.0),
        (0, 2, 29_990.0, 4.0),
        (0, 4, 29_990.0, 3.0),
    ]
    fills = result.records["fills"]
    assert list(fills["liquidity"]) == [Liquidity.MAKER] * 3
    assert list(fills["position_after_contracts"]) == [3.0, 7.0, 10.0]
    assert log["after_fill"] == [
        (0, OrderStatus.PARTIALLY_FILLED),
        (0, OrderStatus.PARTIALLY_FILLED),
        (0, None),
    ]
    order = result.records["orders"][0]
    assert OrderStatus(int(order["status"])) == OrderStatus.FILLED
    assert (order["filled_contracts"], order["average_fill_price"]) == (10.0, 29_990.0)


def test_unfilled_rest_stays_working_as_partially_filled():
    rows = [(30_000.0, 1.0), (29_989.0, 0.03), (30_010.0, 2.0)]
    result, _ = run(rows, {0: lambda c: c.limit(10, 29_990.0)})
    order = result.records["orders"][0]
    assert OrderStatus(int(order["status"])) == OrderStatus.PARTIALLY_FILLED
    assert order["filled_contracts"] == 3.0
    assert result.records["fills"]["qty_contracts"].tolist() == [3.0]


def test_sell_limit_partial_fills_on_an_inverse_contract_carry_sub_lot_sizes():
    # 0.01 BTC at 30 010 = 3.001 contracts of 100 USD -> 3 (0.001 carried);
    # 0.0066 BTC at 30 020 = 1.98132 (+0.001) -> 1 (0.98232 carried);
    # 0.001 BTC at 30 005 = 0.30005 (+0.98232 = 1.28) covers the last contract.
    rows = [(29_990.0, 1.0), (30_010.0, 0.01), (30_020.0, 0.0066), (30_005.0, 0.001)]
    result, _ = run(rows, {0: lambda c: c.limit(-5, 30_000.0)}, contract=INVERSE, balance=1.0)
    assert fill_rows(result) == [
        (0, 1, 30_000.0, 3.0),
        (0, 2, 30_000.0, 1.0),
        (0, 3, 30_000.0, 1.0),
    ]
    assert list(result.records["fills"]["side"]) == [Side.SELL] * 3
    order = result.records["orders"][0]
    assert OrderStatus(int(order["status"])) == OrderStatus.FILLED
    assert order["filled_contracts"] == 5.0


def test_one_trade_is_shared_by_the_strategys_resting_orders():
    def place(c):
        c.limit(3, 29_990.0)
        c.limit(3, 29_995.0)

    rows = [(30_000.0, 1.0), (29_980.0, 0.04), (29_980.0, 0.1)]
    result, _ = run(rows, {0: place})
    # the 4-contract trade fills the first-accepted order (3) then 1 of the second
    assert fill_rows(result) == [
        (0, 1, 29_990.0, 3.0),
        (1, 1, 29_995.0, 1.0),
        (1, 2, 29_995.0, 2.0),
    ]
    assert result.records["fills"]["position_after_contracts"].tolist() == [3.0, 4.0, 6.0]


def test_trade_of_unknown_size_fills_the_whole_order():
    rows = [(30_000.0, 0.0), (29_989.0, 0.0)]
    result, _ = run(rows, {0: lambda c: c.limit(10, 29_990.0)})
    assert fill_rows(result) == [(0, 1, 29_990.0, 10.0)]
    assert OrderStatus(int(result.records["orders"][0]["status"])) == OrderStatus.FILLED


def test_market_order_fills_in_full_at_the_next_trade_price_whatever_its_size():
    rows = [(30_000.0, 1.0), (30_005.0, 0.01), (30_010.0, 0.01)]
    result, _ = run(rows, {0: lambda c: c.market(50)})
    assert fill_rows(result) == [(0, 1, 30_005.0, 50.0)]
    assert result.records["fills"][0]["liquidity"] == Liquidity.TAKER


def test_reduce_only_limit_partially_fills_then_stops_at_the_flat_position():
    def close(c):
        c.limit(-10, 30_010.0, reduce_only=True)

    rows = [
        (30_000.0, 1.0),
        (30_000.0, 1.0),  # the market buy of 4 fills here
        (30_020.0, 0.03),  # 3 of the reduce-only sell
        (30_020.0, 0.05),  # 1 more closes the position: the order is done
        (30_020.0, 0.05),
    ]
    result, _ = run(rows, {0: lambda c: c.market(4), 1: close})
    assert fill_rows(result) == [
        (0, 1, 30_000.0, 4.0),
        (1, 2, 30_010.0, 3.0),
        (1, 3, 30_010.0, 1.0),
    ]
    order = result.records["orders"][1]
    assert OrderStatus(int(order["status"])) == OrderStatus.FILLED
    assert order["filled_contracts"] == 4.0
    assert result.records["fills"]["position_after_contracts"].tolist() == [4.0, 1.0, 0.0]


def test_bars_fill_resting_limits_in_full_whatever_the_bar_volume():
    bars = np.zeros(3, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(3) * MINUTE_NS
    bars["open"] = [30_000.0, 30_000.0, 30_000.0]
    bars["high"] = [30_010.0, 30_010.0, 30_010.0]
    bars["low"] = [29_995.0, 29_995.0, 29_900.0]
    bars["close"] = [30_000.0, 30_000.0, 29_950.0]
    bars["volume_base"] = 0.01  # one contract's worth per bar

    class OnFirstBar(Strategy):
        def on_bar(self, ctx, bar):
            if len(ctx.closes) == 1:
                ctx.limit(10, 29_990.0)

    data = MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS)
    result = backtest(OnFirstBar, data, LINEAR, initial_balance=10_000.0, queue_model=True)
    fills = result.records["fills"]
    assert [(float(f["price"]), float(f["qty_contracts"])) for f in fills] == [(29_990.0, 10.0)]
    assert OrderStatus(int(result.records["orders"][0]["status"])) == OrderStatus.FILLED


def test_order_cancelled_before_validation_stays_cancelled_and_is_never_rejected():
    def place_and_cancel(c):
        too_big = c.limit(1_000_000, 29_990.0)  # would be rejected: insufficient margin
        c.cancel(too_big)
        kept = c.limit(1, 29_990.0)
        small = c.limit(2, 29_990.0)
        c.cancel(small)
        assert kept == 1

    rows = [(30_000.0, 1.0), (29_980.0, 1.0)]
    result, log = run(rows, {0: place_and_cancel})
    orders = result.records["orders"]
    assert [OrderStatus(int(s)) for s in orders["status"]] == [
        OrderStatus.CANCELLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
    ]
    assert [RejectReason(int(r)) for r in orders["reject_reason"]] == [RejectReason.NONE] * 3
    assert log["rejected"] == []
    assert fill_rows(result) == [(1, 1, 29_990.0, 1.0)]


def test_accept_leaves_cancelled_rows_out_of_the_active_list():
    account = np.zeros(1, dtypes.ACCOUNT_STATE_DTYPE)
    positions = np.zeros(1, dtypes.POSITION_STATE_DTYPE)
    params = np.zeros(1, dtypes.CONTRACT_PARAMS_DTYPE)
    tiers = np.zeros(1, dtypes.TIER_DTYPE)
    orders = np.zeros(4, dtypes.ORDER_DTYPE)
    work = np.zeros(4, dtypes.ORDER_WORK_DTYPE)
    active = np.full(4, -1, dtype=np.int64)
    orders[0]["order_type"] = OrderType.LIMIT
    orders[0]["status"] = OrderStatus.CANCELLED
    orders[0]["qty_contracts"] = 1.0
    orders[0]["price"] = 30_000.0
    account[0]["n_orders"] = 1
    state = engine_state(
        account=account,
        positions=positions,
        params=params,
        tiers=tiers,
        orders=orders,
        work=work,
        active=active,
    )
    rejected = accept_orders_nb(state, T0)
    assert rejected == 0
    assert OrderStatus(int(orders[0]["status"])) == OrderStatus.CANCELLED
    assert int(account[0]["n_active"]) == 0
    assert int(account[0]["n_orders_seen"]) == 1
    assert active.tolist() == [-1, -1, -1, -1]
    assert int(orders[0]["ts_updated_ns"]) == T0
