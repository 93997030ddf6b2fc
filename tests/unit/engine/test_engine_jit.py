"""The jit path: ``@njit`` callbacks inside the replay give the same Result as the Python path.

Exactness across paths (issue: "the Python, jit and signal paths give identical trades"): the
SMA crossover of ``test_engine_sma_exact`` written as a JitStrategy produces identical fill,
ledger and equity records; tick strategies with limits, cancels and rejected orders behave as
their Python twins; callbacks see fills, funding payments and liquidations in the same order.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from backtester import JitStrategy, Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import OrderStatus, RejectReason
from backtester.jit import bar, bar_count, cancel, fill, limit, market, order, position
from tests.unit.engine.test_engine_sma_exact import SmaCross as SmaCrossPy
from tests.unit.engine.test_engine_sma_exact import make_bars

MINUTE_NS = 60_000_000_000
SECOND_NS = 1_000_000_000
T0 = 1_700_000_000_000_000_000


@njit
def sma_on_bar(ctx, p, i, row):
    fast, slow, size = int(p[0]), int(p[1]), p[2]
    if bar_count(ctx, i) < slow:
        return
    f = mean_close(ctx, i, fast)
    s = mean_close(ctx, i, slow)
    q = position(ctx, i)
    if f > s and q <= 0:
        market(ctx, i, size - q)
    elif f < s and q >= 0:
        market(ctx, i, -size - q)


@njit
def mean_close(ctx, i, n):
    """Mean of the last n closes, summed oldest first (as numpy's mean of the slice)."""
    total = 0.0
    for k in range(n - 1, -1, -1):
        total += bar(ctx, i, k).close
    return total / n


class SmaCrossJit(JitStrategy):
    fast = 5
    slow = 20
    size = 3.0
    on_bar = sma_on_bar

    def make_state(self):
        return np.array([self.fast, self.slow, self.size], dtype=np.float64)


@pytest.fixture(scope="module")
def bar_data() -> MarketData:
    funding = np.zeros(6, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = T0 + (np.arange(6) + 1) * 480 * MINUTE_NS
    funding["funding_rate"] = [1e-4, -2e-4, 3e-4, 1e-4, 5e-5, -1e-4]
    return MarketData(
        "BTC-USDT-SWAP", bars=make_bars(3000, seed=7), bar_interval_ns=MINUTE_NS, funding=funding
    )


def test_jit_sma_cross_gives_the_python_paths_records(bar_data):
    py = backtest(SmaCrossPy, bar_data, "okx:BTC-USDT-SWAP", initial_balance=1e5)
    jit = backtest(SmaCrossJit, bar_data, "okx:BTC-USDT-SWAP", initial_balance=1e5)
    assert len(py.records["fills"]) > 20
    assert len(py.records["funding_payments"]) == 6
    for kind in ("orders", "fills", "ledger", "funding_payments", "equity"):
        assert jit.frame(kind).equals(py.frame(kind)), kind
    assert jit.final_balance_settle == py.final_balance_settle


def test_jit_parameters_are_checked_and_reach_the_state(bar_data):
    with pytest.raises(ValueError, match="did you mean 'slow'"):
        backtest(SmaCrossJit, bar_data, "okx:BTC-USDT-SWAP", initial_balance=1e5, params={"slw": 3})
    a = backtest(
        SmaCrossJit, bar_data, "okx:BTC-USDT-SWAP", initial_balance=1e5, params={"fast": 8}
    )
    b = backtest(SmaCrossPy, bar_data, "okx:BTC-USDT-SWAP", initial_balance=1e5, params={"fast": 8})
    assert a.frame("fills").equals(b.frame("fills"))


def test_a_callback_that_is_not_jitted_is_refused():
    class Bad(JitStrategy):
        on_bar = staticmethod(lambda ctx, s, i, row: None)

    with pytest.raises(TypeError, match="on_bar: expected a numba @njit function"):
        Bad()


# ---------------------------------------------------------------- ticks
def ticks(prices: list[float]) -> MarketData:
    t = np.zeros(len(prices), dtypes.TRADE_DTYPE)
    t["ts_ns"] = T0 + np.arange(len(prices)) * SECOND_NS
    t["price"] = prices
    return MarketData("BTC-USDT-SWAP", trades=t)


PRICES = [30_000.0, 29_990.0, 29_980.0, 29_950.0, 29_990.0, 30_050.0, 30_100.0, 30_020.0]


class MakerPy(Strategy):
    """Bids 2 below the first trade, cancels the rest when filled, offers at +100, and sends
    one order far too large to be accepted."""

    def on_start(self, ctx):
        self.log = []

    def on_trade(self, ctx, trade):
        if trade["ts_ns"] == T0:
            self.bid = ctx.limit(2.0, 29_960.0)
            self.spare = ctx.limit(1.0, 29_000.0)
            ctx.market(1e9)  # rejected: beyond the largest tier at this leverage

    def on_fill(self, ctx, fill):
        self.log.append(("fill", int(fill["order_id"]), float(fill["price"])))
        if fill["order_id"] == self.bid:
            ctx.cancel(self.spare)
            ctx.limit(-2.0, 30_060.0)

    def on_order_rejected(self, ctx, order):
        self.log.append(("rejected", int(order["order_id"]), int(order["reject_reason"])))


@njit
def maker_on_trade(ctx, s, i, row):
    if row == 0:
        s[0] = limit(ctx, i, 2.0, 29_960.0)
        s[1] = limit(ctx, i, 1.0, 29_000.0)
        market(ctx, i, 1e9)


@njit
def maker_on_fill(ctx, s, k):
    f = fill(ctx, k)
    n = int(s[2])
    s[3 + 3 * n] = 1.0
    s[4 + 3 * n] = f.order_id
    s[5 + 3 * n] = f.price
    s[2] = n + 1
    if f.order_id == s[0]:
        cancel(ctx, int(s[1]))
        limit(ctx, f.instrument, -2.0, 30_060.0)


@njit
def maker_on_rejected(ctx, s, r):
    n = int(s[2])
    s[3 + 3 * n] = 2.0
    s[4 + 3 * n] = r
    s[5 + 3 * n] = order(ctx, r).reject_reason
    s[2] = n + 1


class MakerJit(JitStrategy):
    on_trade = maker_on_trade
    on_fill = maker_on_fill
    on_order_rejected = maker_on_rejected

    def make_state(self):
        return np.zeros(3 + 3 * 16)


def test_jit_tick_strategy_matches_its_python_twin():
    data = ticks(PRICES)
    py_result = backtest(MakerPy, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    jit_result = backtest(MakerJit, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    for kind in ("orders", "fills", "ledger"):
        assert jit_result.frame(kind).equals(py_result.frame(kind)), kind
    orders = jit_result.records["orders"]
    assert list(orders["status"]) == [
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
    ]
    assert orders[2]["reject_reason"] == RejectReason.LEVERAGE_ABOVE_TIER_MAX
    fills = jit_result.records["fills"]
    assert list(fills["price"]) == [29_960.0, 30_060.0]
    assert jit_result.final_balance_settle == py_result.final_balance_settle


def test_jit_callbacks_see_events_in_the_python_order():
    data = ticks(PRICES)
    seen = {}

    class Logged(MakerJit):
        def make_state(self):
            seen["state"] = super().make_state()
            return seen["state"]

    backtest(Logged, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    s = seen["state"]
    n = int(s[2])
    log = [(int(s[3 + 3 * k]), int(s[4 + 3 * k]), float(s[5 + 3 * k])) for k in range(n)]
    assert log == [
        (2, 2, float(RejectReason.LEVERAGE_ABOVE_TIER_MAX)),
        (1, 0, 29_960.0),
        (1, 3, 30_060.0),
    ]


def test_jit_runs_are_deterministic():
    data = ticks(PRICES)
    a = backtest(MakerJit, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    b = backtest(MakerJit, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    assert a.fingerprint() == b.fingerprint()
