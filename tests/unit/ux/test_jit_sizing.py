"""The jit helpers size in money and round to the tick like ctx does (same formulas): OKX
BTC-USDT-SWAP 0.01 BTC per contract, lot 0.01, tick 0.1; BTC-USD-SWAP 100 USD, lot 1."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from backtester import backtest, dtypes
from backtester.data.market import MarketData
from backtester.jit import (
    JitStrategy,
    contracts_for_base,
    contracts_for_notional,
    market,
    round_price,
    stop,
)

MINUTE_NS = 60_000_000_000
T0 = 1_700_000_000_000_000_000


def flat(symbol: str) -> MarketData:
    bars = np.zeros(4, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(4) * MINUTE_NS
    bars["open"] = bars["close"] = 30_000.0
    bars["high"], bars["low"] = 30_010.0, 29_990.0
    return MarketData(symbol, bars=bars, bar_interval_ns=MINUTE_NS)


@njit
def on_bar(ctx, state, i, row):
    if state[0] == 0.0:
        state[0] = 1.0
        state[1] = contracts_for_notional(ctx, i, 1_000.0)
        state[2] = contracts_for_base(ctx, i, -0.1)
        state[3] = round_price(ctx, i, 29_873.27)
        state[4] = round_price(ctx, i, 29_873.27, -1)
        market(ctx, i, state[1])
        stop(ctx, i, -state[1], state[3], False)  # not reduce-only: placed before the fill


class Sized(JitStrategy):
    on_bar = on_bar

    def make_state(self):
        return np.zeros(5)


def run(contract, symbol, balance):
    captured = {}

    class Capture(Sized):
        def make_state(self):
            captured["state"] = np.zeros(5)
            return captured["state"]

    result = backtest(Capture, flat(symbol), contract, initial_balance=balance)
    return captured["state"], result


def test_linear_sizes_and_tick():
    state, result = run("okx:BTC-USDT-SWAP", "BTC-USDT-SWAP", 10_000.0)
    # 1,000 / (0.01 x 30,000) = 3.333 -> 3.33; -0.1 / 0.01 = -10
    assert state[1] == pytest.approx(3.33, abs=1e-12)
    assert state[2] == pytest.approx(-10.0, abs=1e-12)
    assert state[3] == pytest.approx(29_873.3, abs=1e-9)
    assert state[4] == pytest.approx(29_873.2, abs=1e-9)
    assert result.rejections.empty  # the stop's trigger is on the tick
    assert result.records["orders"][0]["qty_contracts"] == pytest.approx(3.33, abs=1e-12)


def test_inverse_sizes():
    state, _ = run("okx:BTC-USD-SWAP", "BTC-USD-SWAP", 1.0)
    # 1,000 / 100 = 10; -0.1 x 30,000 / 100 = -30
    assert state[1] == 10.0
    assert state[2] == -30.0
