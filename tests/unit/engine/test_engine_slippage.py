"""Slippage on taker fills, on ticks and on bars: a fixed rate and a square-root impact.

Every expected price is worked out here: price·(1 ± rate), rate = min(fixed + Y·sqrt(Q/V),
cap), Q and V in base coin (OKX BTC-USDT-SWAP: 1 contract = 0.01 BTC).
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.engine.slippage import (
    FixedRateSlippage,
    SlippageParams,
    SquareRootImpactSlippage,
    slippage_row,
)
from backtester.enums import Liquidity

S = 1_000_000_000
MIN = 60 * S
T0 = 1_704_067_200_000_000_000
FACE = 0.01  # BTC per contract
TAKER = 0.0005  # OKX Lv1 taker fee


def ticks(prices: list[float], qty: float) -> MarketData:
    t = np.zeros(len(prices), dtypes.TRADE_DTYPE)
    t["ts_ns"] = T0 + np.arange(len(prices)) * S
    t["price"] = prices
    t["qty_base"] = qty
    return MarketData("BTC-USDT-SWAP", trades=t)


def bars(opens: list[float], volume: float) -> MarketData:
    b = np.zeros(len(opens), dtypes.BAR_DTYPE)
    b["ts_ns"] = T0 + np.arange(len(opens)) * MIN
    # a flat bar: the fill price lies outside [low, high] once it slips, as a market order of
    # size would (the bar's range is the trades printed, not what a taker would have paid)
    b["open"] = b["high"] = b["low"] = b["close"] = opens
    b["volume_base"] = volume
    return MarketData("BTC-USDT-SWAP", bars=b, bar_interval_ns=MIN)


class Enter(Strategy):
    contracts = 1.0
    kind = "market"
    price = 0.0

    def _enter(self, ctx):
        if self.kind == "market":
            ctx.market(self.contracts)
        else:
            ctx.limit(self.contracts, self.price)

    def on_trade(self, ctx, trade):
        if ctx.time_ns == T0:
            self._enter(ctx)

    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == T0:
            self._enter(ctx)


def first_fill(data: MarketData, slippage, **params) -> np.void:
    result = backtest(
        Enter, data, "okx:BTC-USDT-SWAP", initial_balance=100_000.0, leverage=10,
        slippage=slippage, params=params,
    )  # fmt: skip
    return result.records["fills"][0]


def test_fixed_rate_moves_a_market_buy_on_ticks() -> None:
    fill = first_fill(ticks([30_000.0, 30_010.0], 0.5), FixedRateSlippage(0.001))
    assert fill["price"] == pytest.approx(30_010.0 * 1.001, rel=1e-15)
    assert fill["liquidity"] == Liquidity.TAKER
    # the fee is charged on the slipped price: 1 contract × 0.01 BTC × price × 0.05 %
    assert fill["fee_settle"] == pytest.approx(FACE * 30_010.0 * 1.001 * TAKER, rel=1e-12)


def test_fixed_rate_moves_a_market_sell_at_the_bar_open() -> None:
    fill = first_fill(bars([30_000.0, 29_900.0, 29_950.0], 10.0), FixedRateSlippage(0.002),
                      contracts=-3.0)  # fmt: skip
    # placed at the first bar's close, filled at the second bar's open, 0.2 % lower
    assert fill["price"] == pytest.approx(29_900.0 * (1 - 0.002), rel=1e-15)
    assert fill["qty_contracts"] == 3.0


def test_square_root_impact_on_the_bar_volume() -> None:
    # Q = 100 contracts = 1 BTC, V = 4 BTC: rate = 0.002·sqrt(1/4) = 0.001
    model = SquareRootImpactSlippage(coefficient=0.002)
    fill = first_fill(bars([30_000.0, 30_000.0, 30_000.0], 4.0), model, contracts=100.0)
    assert fill["price"] == pytest.approx(30_000.0 * 1.001, rel=1e-15)


def test_square_root_impact_on_the_tick_size_with_a_fixed_part() -> None:
    # Q = 1 contract = 0.01 BTC, V = 0.25 BTC: sqrt(0.04) = 0.2; 0.0001 + 0.01·0.2 = 0.0021
    model = SquareRootImpactSlippage(coefficient=0.01, fixed_rate=0.0001)
    fill = first_fill(ticks([30_000.0, 31_000.0], 0.25), model, contracts=-1.0)
    assert fill["price"] == pytest.approx(31_000.0 * (1 - 0.0021), rel=1e-15)


def test_impact_is_capped_and_an_unknown_volume_takes_the_cap() -> None:
    # V = 0.01 BTC, Q = 1 BTC: 0.05·sqrt(100) = 0.5, capped at 0.3 %
    model = SquareRootImpactSlippage(coefficient=0.05, max_rate=0.003)
    fill = first_fill(bars([30_000.0, 30_000.0], 0.01), model, contracts=100.0)
    assert fill["price"] == pytest.approx(30_000.0 * 1.003, rel=1e-15)
    zero = first_fill(bars([30_000.0, 30_000.0], 0.0), model, contracts=1.0)
    assert zero["price"] == pytest.approx(30_000.0 * 1.003, rel=1e-15)


def test_a_marketable_limit_never_fills_beyond_its_limit() -> None:
    # buy limit 30_020 taking a trade at 30_010: 30_010·1.001 = 30_040.01 > limit -> 30_020
    fill = first_fill(
        ticks([30_000.0, 30_010.0], 0.5), FixedRateSlippage(0.001), kind="limit", price=30_020.0
    )
    assert fill["liquidity"] == Liquidity.TAKER
    assert fill["price"] == 30_020.0


def test_slippage_row_of_each_model() -> None:
    params = SlippageParams("BTC-USDT-SWAP", 0.1, 0)
    assert slippage_row(FixedRateSlippage(0.001), params) == (0.001, 0.0, float("inf"))
    model = SquareRootImpactSlippage(0.002, max_rate=0.004, fixed_rate=0.0003)
    assert slippage_row(model, params) == (0.0003, 0.002, 0.004)
    with pytest.raises(ValueError, match=r"SquareRootImpactSlippage\.max_rate"):
        SquareRootImpactSlippage(0.002, max_rate=0.5)
