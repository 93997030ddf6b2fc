"""Under the LAST mark method every trade moves the mark and runs the liquidation check; the
check's fast exit is skipped inside a safe band of marks (loop_nb.safe_mark_band_nb). The
margin call and the liquidation must still come at the first trade whose price crosses
their thresholds, computed here by hand, after the band was computed and left many times."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.swap import get_contract

SECOND_NS = 1_000_000_000
T0 = 1_700_000_000_000_000_000 - (1_700_000_000_000_000_000 % (60 * SECOND_NS))
CONTRACTS = 10.0
LEVERAGE = 50.0
ENTRY = 30_000.0
# OKX BTC-USDT-SWAP: face 0.01 BTC, tier-1 maintenance margin rate 0.4 %, and the margin
# ratio's liquidation fee = taker fee 0.05 % of the position value (OKX "margin ratio")
FACE = 0.01
MMR = 0.004
FEE = 0.0005


def buffer(price: float) -> float:
    """(margin + UPL) / (MM + fee · PV) of the isolated long, margin = entry value / leverage."""
    margin = CONTRACTS * FACE * ENTRY / LEVERAGE
    upl = CONTRACTS * FACE * (price - ENTRY)
    value = CONTRACTS * FACE * price
    return (margin + upl) / (value * (MMR + FEE))


class BuyOnce(Strategy):
    def on_start(self, ctx):
        self.margin_calls = []

    def on_trade(self, ctx, trade):
        if ctx.position == 0 and not getattr(self, "done", False):
            ctx.market(CONTRACTS)
            self.done = True

    def on_margin_call(self, ctx, info):
        MARGIN_CALLS.append(ctx.time_ns)


MARGIN_CALLS: list[int] = []


def path() -> np.ndarray:
    """One trade a second: the entry price twice, up 3 % in steps of 15 (the ±2 % band left
    and computed again), then down in steps of 15 (the band left every ~40 trades) far
    enough to liquidate."""
    up = ENTRY + 15.0 * np.arange(1, 61)
    down = up[-1] - 15.0 * np.arange(1, 121)
    prices = np.r_[ENTRY, ENTRY, up, down]
    t = np.zeros(len(prices), dtypes.TRADE_DTYPE)
    t["ts_ns"] = T0 + (np.arange(len(prices)) + 1) * SECOND_NS
    t["price"] = prices
    t["qty_base"] = 0.1
    return t


def run(margin_call_buffer_ratio: float):
    MARGIN_CALLS.clear()
    spec = get_contract("okx:BTC-USDT-SWAP")
    assert spec.face_value == FACE
    return backtest(
        BuyOnce,
        MarketData("BTC-USDT-SWAP", trades=path()),
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        leverage=LEVERAGE,
        margin_call_buffer_ratio=margin_call_buffer_ratio,
    )


def first_trade(condition) -> int:
    trades = path()
    hits = [int(t["ts_ns"]) for t in trades[2:] if condition(float(t["price"]))]
    return hits[0]


def test_liquidation_at_the_first_trade_through_the_threshold():
    result = run(1.0)
    assert result.records["fills"][0]["price"] == ENTRY
    liquidations = result.records["liquidations"]
    assert len(liquidations) >= 1
    expected = first_trade(lambda p: buffer(p) <= 1.0)
    assert liquidations[0]["ts_ns"] == expected
    # the trade before it was clear of the threshold (the crossing is not a coincidence)
    assert buffer(float(path()["price"][np.searchsorted(path()["ts_ns"], expected) - 1])) > 1.0
    assert liquidations[0]["mark_price"] == pytest.approx(
        path()["price"][np.searchsorted(path()["ts_ns"], expected)], rel=0, abs=0
    )


def test_margin_call_at_the_first_trade_below_its_ratio():
    result = run(1.5)
    expected = first_trade(lambda p: buffer(p) < 1.5)
    assert MARGIN_CALLS[:1] == [expected]
    assert result.records["liquidations"][0]["ts_ns"] == first_trade(lambda p: buffer(p) <= 1.0)
