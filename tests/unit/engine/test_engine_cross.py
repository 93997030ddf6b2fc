"""Cross margin over two instruments in one settle currency, and isolated margin transfers."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind

SECOND_NS = 1_000_000_000
T0 = 1_704_067_200_000_000_000


def market(symbol: str, trades, index, t0: int = T0) -> MarketData:
    """Trades (0.1 base each) and index points, given as (seconds after ``t0``, price)."""
    t = np.zeros(len(trades), dtypes.TRADE_DTYPE)
    t["ts_ns"] = [t0 + s * SECOND_NS for s, _ in trades]
    t["price"] = [p for _, p in trades]
    t["qty_base"] = 0.1
    i = np.zeros(len(index), dtypes.PRICE_DTYPE)
    i["ts_ns"] = [t0 + s * SECOND_NS for s, _ in index]
    i["price"] = [p for _, p in index]
    return MarketData(symbol, trades=t, index=i)


class LongBoth(Strategy):
    contracts = 10.0

    def on_trade(self, ctx, trade):
        for i in (0, 1):
            c = ctx.on(i)
            if c.position == 0 and len(c.open_orders()) == 0 and not getattr(self, f"done{i}", 0):
                c.market(self.contracts)
                setattr(self, f"done{i}", 1)


TRADES = [(1, 30_000.0), (2, 30_000.0), (90, 30_000.0), (150, 30_000.0)]


def test_cross_account_liquidates_every_cross_position_together():
    falling = [(0, 30_000.0), (60, 30_000.0), (120, 26_000.0), (180, 26_000.0)]
    steady = [(0, 30_000.0), (60, 30_000.0), (120, 30_000.0), (180, 30_000.0)]
    data = [market("A-USDT-SWAP", TRADES, falling), market("B-USDT-SWAP", TRADES, steady)]
    result = backtest(
        LongBoth,
        data,
        ["okx:BTC-USDT-SWAP"] * 2,
        initial_balance=330.0,
        leverage=20.0,
        margin_mode="cross",
    )
    liquidations = result.records["liquidations"]
    assert sorted(liquidations["instrument"].tolist()) == [0, 1]
    assert (liquidations["ts_ns"] == T0 + 120 * SECOND_NS).all()
    ledger = result.records["ledger"]
    assert 330.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, abs=1e-9
    )
    assert result.final_balance_settle >= -1e-9
    assert result.instruments == ["A-USDT-SWAP", "B-USDT-SWAP"]


def test_cross_account_survives_when_the_other_position_carries_it():
    falling = [(0, 30_000.0), (60, 30_000.0), (120, 29_300.0), (180, 29_300.0)]
    steady = [(0, 30_000.0), (60, 30_000.0), (120, 30_000.0), (180, 30_000.0)]
    data = [market("A-USDT-SWAP", TRADES, falling), market("B-USDT-SWAP", TRADES, steady)]
    # isolated at 50x the falling position alone would be liquidated; cross with 100 USDT is not
    cross = backtest(
        LongBoth,
        data,
        ["okx:BTC-USDT-SWAP"] * 2,
        initial_balance=100.0,
        leverage=50.0,
        margin_mode="cross",
    )
    assert len(cross.records["liquidations"]) == 0
    isolated = backtest(
        LongBoth,
        data,
        ["okx:BTC-USDT-SWAP"] * 2,
        initial_balance=100.0,
        leverage=50.0,
        margin_mode="isolated",
    )
    assert isolated.records["liquidations"]["instrument"].tolist() == [0]


class AddMargin(Strategy):
    def on_trade(self, ctx, trade):
        if ctx.position == 0 and not getattr(self, "done", False):
            ctx.market(10)
            self.done = True
        elif ctx.position != 0 and not getattr(self, "added", False):
            before = ctx.liquidation_price
            ctx.add_margin(100.0)
            MARGINS.append((before, ctx.liquidation_price, ctx.position_margin))
            self.added = True


MARGINS: list = []


def test_adding_isolated_margin_moves_the_liquidation_price_away():
    falling = [(0, 30_000.0), (60, 30_000.0), (120, 29_000.0), (180, 29_000.0)]
    MARGINS.clear()
    result = backtest(
        AddMargin,
        market("A-USDT-SWAP", TRADES, falling),
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        leverage=50.0,
    )
    before, after, margin = MARGINS[0]
    assert after < before
    assert margin == pytest.approx(10 * 0.01 * 30_000.0 / 50.0 + 100.0, rel=1e-12)
    # with 160 USDT of margin the 29,000 index no longer liquidates the 3,000 USDT position
    assert len(result.records["liquidations"]) == 0
    kinds = set(result.records["ledger"]["kind"].tolist())
    assert LedgerKind.LIQUIDATION_LOSS not in kinds
