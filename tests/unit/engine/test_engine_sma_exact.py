"""SMA crossover through the engine equals a plain reference loop (linear, taker fees, no funding).

Semantics pinned here: a market order placed at a bar close fills at the next bar's open as a
taker; fee = taker rate × contracts × face × price; PnL = closed contracts × face × (exit −
entry). Also: two runs give identical fingerprints, and the ledger conserves.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.swap import get_contract

MINUTE_NS = 60_000_000_000
T0 = 1_700_000_000_000_000_000


def make_bars(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    close = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 1)
    open_ = np.r_[30_000.0, close[:-1]]
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    bars["open"] = open_
    bars["close"] = close
    bars["high"] = np.round(np.maximum(open_, close) * 1.001, 1)
    bars["low"] = np.round(np.minimum(open_, close) * 0.999, 1)
    bars["volume_base"] = 1.0
    return bars


class SmaCross(Strategy):
    fast = 5
    slow = 20
    size = 3.0

    def on_bar(self, ctx, bar):
        if len(ctx.closes) < self.slow:
            return
        fast, slow = ctx.sma(self.fast), ctx.sma(self.slow)
        if fast > slow and ctx.position <= 0:
            ctx.market(self.size - ctx.position)
        elif fast < slow and ctx.position >= 0:
            ctx.market(-self.size - ctx.position)


def reference(bars: np.ndarray, fast: int, slow: int, size: float, face: float, taker: float):
    """Plain loop: signals at closes, fills at the next open."""
    closes = bars["close"]
    position, entry, balance = 0.0, np.nan, 0.0
    pending = 0.0
    fills = []
    for k in range(len(bars)):
        if pending != 0.0:
            price = bars["open"][k]
            qty = abs(pending)
            side = np.sign(pending)
            if position != 0.0 and np.sign(position) != side:
                closed = min(qty, abs(position))
                balance += np.sign(position) * closed * face * (price - entry)
                position += side * closed
                qty -= closed
            if qty > 0:
                entry = price
                position += side * qty
            balance -= taker * abs(pending) * face * price
            fills.append((price, abs(pending), side))
            pending = 0.0
        if k + 1 >= slow:
            f = closes[k + 1 - fast : k + 1].mean()
            s = closes[k + 1 - slow : k + 1].mean()
            if f > s and position <= 0:
                pending = size - position
            elif f < s and position >= 0:
                pending = -size - position
    return fills, balance


@pytest.fixture(scope="module")
def bars() -> np.ndarray:
    return make_bars(3000, seed=7)


def run(bars: np.ndarray):
    data = MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS)
    return backtest(SmaCross, data, "okx:BTC-USDT-SWAP", initial_balance=100_000.0, leverage=10)


def test_sma_cross_matches_reference_loop(bars):
    spec = get_contract("okx:BTC-USDT-SWAP")
    result = run(bars)
    fills, pnl = reference(bars, 5, 20, 3.0, spec.face_value, spec.taker_fee_rate)
    got = result.records["fills"]
    assert len(got) == len(fills) > 20
    np.testing.assert_array_equal(got["price"], [f[0] for f in fills])
    np.testing.assert_array_equal(got["qty_contracts"], [f[1] for f in fills])
    np.testing.assert_array_equal(got["side"], [f[2] for f in fills])
    assert result.final_balance_settle - 100_000.0 == pytest.approx(pnl, rel=1e-9)


def test_two_runs_are_identical(bars):
    assert run(bars).fingerprint() == run(bars).fingerprint()


def test_ledger_conserves_and_equity_is_sampled(bars):
    result = run(bars)
    ledger = result.records["ledger"]
    assert 100_000.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, abs=1e-9
    )
    np.testing.assert_allclose(
        100_000.0 + np.cumsum(ledger["amount_settle"]), ledger["balance_after_settle"], rtol=1e-12
    )
    # one equity sample at the first bar's open (the first instant of the run), then one at
    # the first event at or after each whole minute (these bars open 20 s past a minute, so
    # that is each bar's second path point, open + 40 s), and the final one
    equity = result.records["equity"]
    assert int(bars["ts_ns"][0]) % MINUTE_NS == 20 * 10**9
    assert len(equity) == len(bars) + 2
    assert int(equity["ts_ns"][0]) == int(bars["ts_ns"][0])
    np.testing.assert_array_equal(equity["ts_ns"][1:-1], bars["ts_ns"] + 40 * 10**9)
    assert result.config["mark_price_method_used"] == ["LAST"]


def test_unknown_parameter_suggests_a_name(bars):
    data = MarketData("BTC-USDT-SWAP", bars=bars[:50], bar_interval_ns=MINUTE_NS)
    with pytest.raises(ValueError, match="did you mean 'fast'"):
        backtest(SmaCross, data, "okx:BTC-USDT-SWAP", initial_balance=1.0, params={"fats": 3})
    with pytest.raises(ValueError, match="did you mean 'latency_ns'"):
        backtest(SmaCross, data, "okx:BTC-USDT-SWAP", initial_balance=1.0, latency=3)


def test_signal_path_gives_the_same_trades_as_the_strategy(bars):
    from backtester import backtest_signals

    closes = bars["close"]
    fast = np.convolve(closes, np.ones(5) / 5)[: len(closes)]
    slow = np.convolve(closes, np.ones(20) / 20)[: len(closes)]
    valid = np.arange(len(closes)) >= 19
    long_signal = valid & (fast > slow)
    short_signal = valid & (fast < slow)
    # long-only strategy and its signal equivalent
    data = MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS)
    result = backtest_signals(
        long_signal,
        short_signal,
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=100_000.0,
        contracts=3.0,
    )

    class LongOnly(Strategy):
        def on_bar(self, ctx, bar):
            k = len(ctx.closes) - 1
            if short_signal[k] and ctx.position != 0:
                ctx.market(-ctx.position)
            elif long_signal[k] and not short_signal[k] and ctx.position != 3.0:
                ctx.market(3.0 - ctx.position)

    reference = backtest(LongOnly, data, "okx:BTC-USDT-SWAP", initial_balance=100_000.0)
    for kind in ("fills", "ledger", "equity"):
        assert result.frame(kind).equals(reference.frame(kind))
    assert len(result.records["fills"]) > 20


def test_two_dimensional_signals_run_one_backtest_per_column(bars):
    from backtester import backtest_signals

    closes = bars["close"]
    data = MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS)
    entries, exits = [], []
    for window in (10, 20, 40):
        sma = np.convolve(closes, np.ones(window) / window)[: len(closes)]
        valid = np.arange(len(closes)) >= window - 1
        entries.append(valid & (closes > sma))
        exits.append(valid & (closes < sma))
    sweep = backtest_signals(
        np.column_stack(entries),
        np.column_stack(exits),
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=100_000.0,
    )
    assert len(sweep) == 3
    for k in range(3):
        single = backtest_signals(
            entries[k], exits[k], data, "okx:BTC-USDT-SWAP", initial_balance=100_000.0
        )
        assert sweep[k].fingerprint() == single.fingerprint()
    counts = [len(r.records["fills"]) for r in sweep]
    assert counts[0] > counts[1] > counts[2] > 10  # longer windows trade less
    # a 1-D exit broadcasts against 2-D entries
    broadcast = backtest_signals(
        np.column_stack(entries[:2]), exits[0], data, "okx:BTC-USDT-SWAP", initial_balance=1e5
    )
    assert broadcast[0].fingerprint() == sweep[0].fingerprint()
    with pytest.raises(ValueError, match="same number of columns"):
        backtest_signals(
            np.column_stack(entries),
            np.column_stack(exits[:2]),
            data,
            "okx:BTC-USDT-SWAP",
            initial_balance=1e5,
        )
    with pytest.raises(ValueError, match="one row per bar"):
        backtest_signals(entries[0][:-1], exits[0], data, "okx:BTC-USDT-SWAP", initial_balance=1e5)
