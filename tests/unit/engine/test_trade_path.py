"""The trade fast path (engine/trade_path_nb.py) against the general loop: identical records.

The jitted loop replays quiet trades (no working order of the instrument, mark inside the
safe band, before the next other event or account work) in a tight inner loop. Here the same
strategy runs twice on seeded random ticks: through the normal jitted kernel (fast path on)
and through ``run_until_nb`` recompiled with the fast path switched off (``quiet_run_nb``
replaced by a function that never takes it). Every record array must be equal field by field,
and so must what the callbacks saw (a checksum of the last price, mark, time, position and
wake row at every callback, kept in the strategy's state). The scenarios put every bound of
the fast path inside its runs: orders placed mid-run and resting through runs (market,
limits with and without the queue model, stops, take-profits, stop-limits, trailing stops,
cancels, a latency), a crash that liquidates an isolated position under the LAST mark (the safe band
left), index and funding times between trades (some equal to a trade's time), equity rows
every 17 min, daily settlement and weekly clawback (OKEx 2019 coin-margined profile), two
instruments whose trades interleave, cross margin. A wrong bound moves a fill, a funding
payment, a liquidation or an equity row, or changes what a callback saw.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest
from numba import njit

from backtester import JitStrategy, backtest, dtypes
from backtester.callbacks import LOOP_CALLBACKS
from backtester.data.market import MarketData
from backtester.engine import loop_nb
from backtester.engine.order_entry_nb import place_order_nb
from backtester.enums import OrderType, Side, TimeInForce
from backtester.jit import (
    cancel,
    close_position,
    fill,
    funding_payment,
    last_price,
    limit,
    mark_price,
    market,
    order_count,
    position,
    round_price,
    stop,
    take_profit,
    time_ns,
    trade,
    trailing_stop,
)
from backtester.results import record_digest

SECOND_NS = 1_000_000_000
HOUR_NS = 3600 * SECOND_NS
T0 = 1_700_006_400 * SECOND_NS  # 2023-11-15 00:00 UTC (a Wednesday)
LAST_STATE: list[np.ndarray] = []


@njit
def fuzz_on_trade(ctx, st, i, row):
    """Orders chosen by a hash of the row; a checksum of what the callback sees."""
    price = trade(ctx, row).price
    q = position(ctx, i)
    st[1] = st[1] * 0.5 + last_price(ctx, i) + 1e-3 * mark_price(ctx, i)
    st[1] += 1e-9 * (time_ns(ctx) - T0) + 7.0 * q + 0.25 * i + 1e-6 * row
    st[4] += 1.0
    if row >= st[3] and i == 0:  # the crash: long, to be liquidated
        if st[9] == 0.0:  # no old stop or limit may close it first
            st[9] = 1.0
            for order_id in range(order_count(ctx)):
                cancel(ctx, order_id)
        if q <= 0.0:
            st[2] = market(ctx, i, 5.0 - q)
        return
    h = (row * 2654435761 + int(st[0]) * 97 + i * 31) % 1000
    side = 1.0 if (h // 13) % 2 == 0 else -1.0
    if h < 4:
        st[2] = market(ctx, i, side * (1.0 + h))
    elif h < 7:
        st[2] = limit(ctx, i, side * 2.0, round_price(ctx, i, price * (1.0 - side * 0.002)))
    elif h == 7 and q != 0.0:
        st[2] = stop(ctx, i, -q, round_price(ctx, i, price * (0.99 if q > 0.0 else 1.01)))
    elif h == 8:
        cancel(ctx, int(st[2]))
    elif h == 9:
        close_position(ctx, i)
    elif h == 10 and q != 0.0:
        st[2] = trailing_stop(ctx, i, -q, price * 0.004)
    elif h == 11 and q != 0.0:
        st[2] = take_profit(ctx, i, -q, round_price(ctx, i, price * (1.01 if q > 0.0 else 0.99)))
    elif h == 12 or h == 13:  # a stop-limit / take-profit-limit, 1 % away, limit 0.1 % beyond
        typ = OrderType.STOP_LIMIT if h == 12 else OrderType.TAKE_PROFIT_LIMIT
        away = side if h == 12 else -side  # a buy stop above the price, a buy take-profit below
        trigger = round_price(ctx, i, price * (1.0 + away * 0.01))
        limit_price = round_price(ctx, i, trigger * (1.0 + side * 0.001))
        st[2] = place_order_nb(
            ctx.account, ctx.orders, ctx.work, i, typ, Side.BUY if side > 0 else Side.SELL,
            2.0, limit_price, trigger, TimeInForce.GTC, False, False, 0, np.nan,
        )  # fmt: skip


@njit
def fuzz_on_fill(ctx, st, row):
    st[5] = st[5] * 0.5 + fill(ctx, row).price + 1e-9 * (time_ns(ctx) - T0)


@njit
def fuzz_on_funding(ctx, st, row):
    st[6] += 1.0 + funding_payment(ctx, row).payment_settle


@njit
def fuzz_on_liquidation(ctx, st, row):
    st[7] += 1.0


@njit
def fuzz_on_rejected(ctx, st, row):
    st[8] += 1.0


class Fuzz(JitStrategy):
    seed = 0
    crash_row = 10**9
    on_trade = fuzz_on_trade
    on_fill = fuzz_on_fill
    on_funding = fuzz_on_funding
    on_liquidation = fuzz_on_liquidation
    on_order_rejected = fuzz_on_rejected

    def make_state(self) -> np.ndarray:
        st = np.zeros(10)
        st[0] = self.seed
        st[3] = self.crash_row
        LAST_STATE[:] = [st]
        return st


@njit
def never_quiet_nb(state, i, on_trade, user_state):
    """The fast path switched off: the general loop handles every trade."""
    return False


def _general_loop() -> Any:
    """``run_until_nb`` recompiled with the fast path off (same code, one global replaced)."""
    fn = loop_nb.run_until_nb.py_func
    namespace = {**fn.__globals__, "quiet_run_nb": never_quiet_nb}
    copy = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__)
    return njit(copy)


GENERAL_LOOP = _general_loop()


class FuzzGeneral(Fuzz):
    """The same strategy replayed by the general loop (through the replay_kernel hook)."""

    def replay_kernel(self, run: Any) -> Any:
        callbacks = [self.callback(name) or loop_nb.no_callback_nb for name in LOOP_CALLBACKS]
        return GENERAL_LOOP, (*callbacks, self.make_state())


def random_trades(rng: np.random.Generator, n: int, span_s: int, start: float) -> np.ndarray:
    """``n`` trades over about ``span_s`` seconds (gaps of 0 included), a random walk with a
    40 % crash over the last fifth."""
    t = np.zeros(n, dtypes.TRADE_DTYPE)
    gaps = rng.integers(0, 2 * span_s // n + 1, n) * SECOND_NS
    t["ts_ns"] = T0 + np.cumsum(gaps)
    walk = np.cumsum(rng.normal(0.0, 1.5e-3, n))
    crash = np.clip((np.arange(n) - 0.8 * n) / (0.2 * n), 0.0, 1.0) * np.log(0.6)
    t["price"] = np.round(start * np.exp(walk + crash), 1)
    t["qty_base"] = rng.uniform(0.001, 0.5, n)
    return t


def random_points(rng: np.random.Generator, trades: np.ndarray, n: int) -> np.ndarray:
    """Index points at random times between the trades (some at a trade's time)."""
    ts = np.unique(rng.choice(trades["ts_ns"], n) + rng.integers(0, 2, n) * SECOND_NS // 2)
    p = np.zeros(len(ts), dtypes.PRICE_DTYPE)
    p["ts_ns"] = ts
    rows = np.searchsorted(trades["ts_ns"], ts, side="right") - 1
    p["price"] = trades["price"][np.maximum(rows, 0)] * (1.0 - 1e-4)
    return p


def random_funding(rng: np.random.Generator, trades: np.ndarray, n: int) -> np.ndarray:
    """Funding events at random times inside the span (one at a trade's time)."""
    lo, hi = int(trades["ts_ns"][0]), int(trades["ts_ns"][-1])
    ts = np.sort(rng.integers(lo, hi, n))
    ts[0] = trades["ts_ns"][len(trades) // 3]
    f = np.zeros(n, dtypes.FUNDING_RATE_DTYPE)
    f["ts_ns"] = np.unique(ts) if len(np.unique(ts)) == n else ts + np.arange(n)
    f["funding_rate"] = rng.normal(0.0, 3e-4, n)
    f["funding_interval_ns"] = 8 * HOUR_NS
    return f


def scenario(name: str, seed: int) -> tuple[list[MarketData], list[str], dict[str, Any]]:
    """Data, contracts and options of a named scenario."""
    rng = np.random.default_rng(seed)
    opts: dict[str, Any] = {"equity_interval_ns": 17 * 60 * SECOND_NS, "leverage": 20.0}
    if name == "last mark":
        trades = random_trades(rng, 4000, 2 * 86400, 30_000.0)
        return [MarketData("BTC-USDT-SWAP", trades=trades)], ["okx:BTC-USDT-SWAP"], opts
    if name == "index and funding":
        trades = random_trades(rng, 4000, 2 * 86400, 30_000.0)
        data = MarketData(
            "BTC-USDT-SWAP",
            trades=trades,
            index=random_points(rng, trades, 300),
            funding=random_funding(rng, trades, 7),
        )
        opts.update(queue_model=True, queue_initial_base=0.3)
        return [data], ["okx:BTC-USDT-SWAP"], opts
    if name == "settlement and clawback":
        trades = random_trades(rng, 5000, 9 * 86400, 8_000.0)
        opts.update(insurance_fund_settle=0.0, clawback_period="week")
        data = MarketData("BTC-USD-SWAP", trades=trades)
        return [data], ["okx_coinm_2019:BTC-USD-SWAP"], opts
    if name == "two instruments":
        btc = random_trades(rng, 3000, 2 * 86400, 30_000.0)
        usdm = random_trades(rng, 3000, 2 * 86400, 30_100.0)
        data = [
            MarketData("BTC-USDT-SWAP", trades=btc),
            MarketData("BTCUSDT", trades=usdm, index=random_points(rng, usdm, 200)),
        ]
        opts["latency_ns"] = 2 * SECOND_NS
        return data, ["okx:BTC-USDT-SWAP", "binance_usdm:BTCUSDT"], opts
    assert name == "cross margin"
    trades = random_trades(rng, 4000, 2 * 86400, 30_000.0)
    opts.update(margin_mode="cross", initial_balance=300.0)  # the crash liquidates the account
    return [MarketData("BTC-USDT-SWAP", trades=trades)], ["okx:BTC-USDT-SWAP"], opts


def run(strategy: type[Fuzz], name: str, seed: int) -> tuple[Any, np.ndarray]:
    data, contracts, opts = scenario(name, seed)
    n = sum(len(d.trades) for d in data)
    params = {"seed": seed, "crash_row": int(0.8 * n / len(data))}
    opts.setdefault("initial_balance", 1e6 if "coinm" not in contracts[0] else 100.0)
    result = backtest(
        strategy,
        data if len(data) > 1 else data[0],
        contracts if len(contracts) > 1 else contracts[0],
        params=params,
        **opts,
    )
    return result, LAST_STATE[0].copy()


SCENARIOS = ["last mark", "index and funding", "settlement and clawback", "two instruments"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", [*SCENARIOS, "cross margin"])
def test_fast_path_gives_the_general_loops_records(name: str, seed: int) -> None:
    fast, fast_seen = run(Fuzz, name, seed)
    general, general_seen = run(FuzzGeneral, name, seed)
    records = fast.records
    # the scenario reaches what it is meant to exercise
    assert len(records["fills"]) > 10
    assert len(records["liquidations"]) >= 1
    assert len(records["equity"]) > 100
    if name == "index and funding":
        assert len(records["funding_payments"]) >= 1
    if name == "settlement and clawback":
        assert len(records["settlements"]) >= 1
    assert fast_seen[4] == sum(len(d.trades) for d in scenario(name, seed)[0])  # every trade
    for kind in sorted(records):
        assert record_digest(records[kind]) == record_digest(general.records[kind]), kind
    np.testing.assert_array_equal(fast_seen, general_seen)
