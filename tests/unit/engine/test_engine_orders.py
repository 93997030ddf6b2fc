"""Order types, time in force, reduce-only, post-only, rejections and intrabar fills on bars."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import Liquidity, OrderStatus, OrderType, RejectReason, Side

MINUTE_NS = 60_000_000_000
T0 = 1_700_000_000_000_000_000
CONTRACT = "okx:BTC-USDT-SWAP"  # linear, face 0.01 BTC, tick 0.1, lot 0.01, maker 2 bp, taker 5 bp


def bars_from(ohlc: list[tuple[float, float, float, float]]) -> MarketData:
    bars = np.zeros(len(ohlc), dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(len(ohlc)) * MINUTE_NS
    for k, (o, h, low, c) in enumerate(ohlc):
        bars[k]["open"], bars[k]["high"], bars[k]["low"], bars[k]["close"] = o, h, low, c
    return MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS)


class Scripted(Strategy):
    """Runs ``actions[k](ctx)`` at the close of bar k; records rejections."""

    actions: dict = {}  # noqa: RUF012  (replaced per test through params)

    def on_start(self, ctx):
        self.rejected = []

    def on_bar(self, ctx, bar):
        action = self.actions.get(len(ctx.closes) - 1)
        if action is not None:
            action(ctx)

    def on_order_rejected(self, ctx, order):
        self.rejected.append(RejectReason(int(order["reject_reason"])))


FLAT = (30_000.0, 30_010.0, 29_990.0, 30_000.0)


def run(ohlc, actions, balance=10_000.0, leverage=10.0, **options):
    data = bars_from(ohlc)
    return backtest(
        Scripted,
        data,
        CONTRACT,
        initial_balance=balance,
        leverage=leverage,
        params={"actions": actions},
        **options,
    )


def test_market_order_fills_at_next_open_as_taker():
    result = run([FLAT, (30_100.0, 30_200.0, 30_000.0, 30_150.0)], {0: lambda c: c.market(2)})
    fill = result.records["fills"][0]
    assert fill["price"] == 30_100.0
    assert fill["liquidity"] == Liquidity.TAKER
    assert fill["fee_settle"] == pytest.approx(2 * 0.01 * 30_100.0 * 0.0005, rel=1e-12)


def test_resting_limit_fills_at_its_price_as_maker():
    ohlc = [
        FLAT,
        (30_000.0, 30_050.0, 29_950.0, 30_000.0),
        (30_000.0, 30_020.0, 29_890.0, 29_900.0),
    ]
    result = run(ohlc, {0: lambda c: c.limit(1, 29_900.0)})
    fill = result.records["fills"][0]
    assert (fill["price"], fill["liquidity"]) == (29_900.0, Liquidity.MAKER)
    assert fill["fee_settle"] == pytest.approx(0.01 * 29_900.0 * 0.0002, rel=1e-12)
    assert result.records["orders"][0]["status"] == OrderStatus.FILLED


def test_limit_on_a_gap_fills_at_the_open_inside_the_bar():
    result = run(
        [FLAT, (29_800.0, 29_850.0, 29_700.0, 29_800.0)], {0: lambda c: c.limit(1, 29_950.0)}
    )
    fill = result.records["fills"][0]
    assert fill["price"] == 29_800.0


def test_stop_market_triggers_at_trigger_and_gaps_at_open():
    ohlc = [
        FLAT,
        (30_000.0, 30_300.0, 29_990.0, 30_200.0),
        (30_500.0, 30_600.0, 30_400.0, 30_500.0),
    ]
    result = run(ohlc, {0: lambda c: c.stop(1, 30_250.0), 1: lambda c: c.stop(1, 30_400.0)})
    fills = result.records["fills"]
    assert list(fills["price"]) == [30_250.0, 30_500.0]
    assert list(fills["liquidity"]) == [Liquidity.TAKER, Liquidity.TAKER]


def test_conservative_path_hits_the_stop_before_the_take_profit():
    ohlc = [FLAT, FLAT, (30_000.0, 30_500.0, 29_500.0, 30_000.0)]

    def protect(c):
        c.stop(-1, 29_700.0, reduce_only=True)
        c.take_profit(-1, 30_300.0)

    result = run(ohlc, {0: lambda c: c.market(1), 1: protect})
    fills = result.records["fills"]
    assert list(fills["price"]) == [30_000.0, 29_700.0]
    orders = result.records["orders"]
    assert orders[2]["order_type"] == OrderType.TAKE_PROFIT
    assert orders[2]["status"] == OrderStatus.CANCELLED  # reduce-only with nothing left
    nearest = run(ohlc, {0: lambda c: c.market(1), 1: protect}, bar_path="nearest")
    assert list(nearest.records["fills"]["price"]) == [30_000.0, 30_300.0]


def test_stop_limit_becomes_a_limit_after_the_trigger():
    ohlc = [
        FLAT,
        (30_000.0, 30_260.0, 29_990.0, 30_250.0),
        (30_250.0, 30_260.0, 30_190.0, 30_200.0),
    ]
    result = run(ohlc, {0: lambda c: c.stop(1, 30_250.0, limit=30_200.0)})
    fills = result.records["fills"]
    assert list(fills["price"]) == [30_200.0]
    assert fills[0]["liquidity"] == Liquidity.MAKER


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (lambda c: c.market(1, reduce_only=True), RejectReason.REDUCE_ONLY_WOULD_INCREASE),
        (lambda c: c.limit(1, 30_100.0, post_only=True), RejectReason.POST_ONLY_WOULD_TAKE),
        (lambda c: c.limit(1, 29_000.05), RejectReason.PRICE_OFF_TICK),
        (lambda c: c.market(0.005), RejectReason.SIZE_NOT_LOT_MULTIPLE),
        (lambda c: c.market(1_000), RejectReason.INSUFFICIENT_MARGIN),
        (lambda c: c.limit(1, 29_000.0, time_in_force="IOC"), RejectReason.FOK_NOT_FILLABLE),
    ],
)
def test_rejections_reach_on_order_rejected(action, reason):
    result = run([FLAT, FLAT], {0: action})
    order = result.records["orders"][0]
    assert order["status"] == OrderStatus.REJECTED
    assert order["reject_reason"] == reason
    assert len(result.records["fills"]) == 0


def test_leverage_above_the_tier_maximum_is_rejected():
    # 2,000 contracts is OKX BTC-USDT-SWAP tier 2 (max 66.66x): 100x is refused
    result = run([FLAT, FLAT], {0: lambda c: c.market(2_000)}, balance=1e6, leverage=100)
    assert result.records["orders"][0]["reject_reason"] == RejectReason.LEVERAGE_ABOVE_TIER_MAX
    ok = run([FLAT, FLAT], {0: lambda c: c.market(900)}, balance=1e6, leverage=100)
    assert ok.records["orders"][0]["status"] == OrderStatus.FILLED


def test_cancel_and_amend():
    ohlc = [FLAT, FLAT, (30_000.0, 30_010.0, 29_800.0, 29_900.0)]
    state = {}

    def place(c):
        state["a"] = c.limit(1, 29_950.0)
        state["b"] = c.limit(1, 29_960.0)

    def change(c):
        c.cancel(state["a"])
        state["c"] = c.amend(state["b"], price=29_850.0)

    result = run(ohlc, {0: place, 1: change})
    orders = result.records["orders"]
    assert [OrderStatus(int(s)) for s in orders["status"]] == [
        OrderStatus.CANCELLED,
        OrderStatus.CANCELLED,
        OrderStatus.FILLED,
    ]
    assert result.records["fills"][0]["price"] == 29_850.0


def test_reduce_only_is_capped_at_the_position():
    result = run(
        [FLAT, FLAT, FLAT], {0: lambda c: c.market(1), 1: lambda c: c.market(-3, reduce_only=True)}
    )
    fills = result.records["fills"]
    assert list(fills["qty_contracts"]) == [1.0, 1.0]
    assert fills[1]["side"] == Side.SELL
    assert fills[1]["position_after_contracts"] == 0.0


def test_latency_delays_the_fill_by_a_bar():
    ohlc = [
        FLAT,
        (30_100.0, 30_200.0, 30_000.0, 30_150.0),
        (30_300.0, 30_400.0, 30_200.0, 30_300.0),
    ]
    result = run(ohlc, {0: lambda c: c.market(1)}, latency_ns=1)
    assert result.records["fills"][0]["price"] == 30_300.0
