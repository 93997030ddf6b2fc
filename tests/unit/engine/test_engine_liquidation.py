"""Liquidation is checked on the mark, never on a trade wick; partial steps and takeover."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity
from backtester.swap import get_contract

SECOND_NS = 1_000_000_000
T0 = 1_700_000_000_000_000_000 - (1_700_000_000_000_000_000 % (60 * SECOND_NS))


def market(trades: list[tuple[int, float]], index: list[tuple[int, float]]) -> MarketData:
    t = np.zeros(len(trades), dtypes.TRADE_DTYPE)
    t["ts_ns"] = [T0 + s * SECOND_NS for s, _ in trades]
    t["price"] = [p for _, p in trades]
    t["qty_base"] = 0.1
    i = np.zeros(len(index), dtypes.PRICE_DTYPE)
    i["ts_ns"] = [T0 + s * SECOND_NS for s, _ in index]
    i["price"] = [p for _, p in index]
    return MarketData("BTC-USDT-SWAP", trades=t, index=i)


class BuyOnce(Strategy):
    contracts = 10.0

    def on_start(self, ctx):
        self.calls = []

    def on_trade(self, ctx, trade):
        if not self.calls:
            ctx.market(self.contracts)
        self.calls.append(int(trade["ts_ns"]))

    def on_margin_call(self, ctx, info):
        MARGIN_CALLS.append((ctx.time_ns, info))


MARGIN_CALLS: list = []


INDEX_FLAT = [(s, 30_000.0) for s in range(0, 301, 60)]


def run(data, leverage=50.0, contracts=10.0):
    return backtest(
        BuyOnce,
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        leverage=leverage,
        params={"contracts": contracts},
    )


def test_trade_wick_through_the_liquidation_price_does_not_liquidate():
    trades = [(1, 30_000.0), (2, 30_000.0), (90, 28_000.0), (95, 30_000.0), (150, 30_000.0)]
    result = run(market(trades, INDEX_FLAT))
    assert result.records["fills"][0]["price"] == 30_000.0
    assert len(result.records["liquidations"]) == 0
    assert result.records["equity"]["position_contracts"][-1] == 10.0


def test_mark_crossing_liquidates_although_trades_do_not():
    trades = [(1, 30_000.0), (2, 30_000.0), (90, 30_000.0), (150, 30_000.0)]
    index = [(0, 30_000.0), (60, 30_000.0), (120, 29_000.0), (180, 29_000.0)]
    result = run(market(trades, index))
    liquidations = result.records["liquidations"]
    assert len(liquidations) == 1
    liq = liquidations[0]
    assert liq["ts_ns"] == T0 + 120 * SECOND_NS
    # mark = index + EMA(last − index): 29,000 + (2/11)·1,000
    assert liq["mark_price"] == pytest.approx(29_000.0 + 2.0 / 11.0 * 1_000.0, rel=1e-12)
    assert liq["mark_price"] <= liq["liquidation_price"]
    assert not liq["is_partial"]
    spec = get_contract("okx:BTC-USDT-SWAP")
    margin = 10 * spec.face_value * 30_000.0 / 50.0
    # takeover at the bankruptcy price: the trader loses exactly the position margin
    assert liq["loss_settle"] + liq["fee_settle"] == pytest.approx(margin, rel=1e-9)
    assert liq["bankruptcy_price"] == pytest.approx(30_000.0 * (1 - 1 / 50), rel=1e-9)
    fill = result.records["fills"][-1]
    assert fill["liquidity"] == Liquidity.LIQUIDATION
    assert fill["position_after_contracts"] == 0.0
    open_fee = result.records["fills"][0]["fee_settle"]
    assert result.final_balance_settle == pytest.approx(1_000.0 - margin - open_fee, rel=1e-12)
    kinds = set(result.records["ledger"]["kind"].tolist())
    assert {LedgerKind.LIQUIDATION_LOSS, LedgerKind.FEE} <= kinds
    # insurance fund: unwound at the last trade 30,000 vs bankruptcy 29,400 → the fund gains
    assert liq["insurance_fund_delta_settle"] == pytest.approx(10 * 0.01 * 600.0, rel=1e-9)


def test_margin_call_fires_once_before_liquidation():
    trades = [(1, 30_000.0), (2, 30_000.0), (90, 30_000.0), (150, 30_000.0), (210, 30_000.0)]
    # mark at 120 s = 29,500 + (2/11)·500 → buffer (60 − 40.9)/(MM 11.84 + fee 1.48) ≈ 1.43
    index = [(0, 30_000.0), (60, 30_000.0), (120, 29_500.0), (180, 29_450.0), (240, 29_500.0)]
    MARGIN_CALLS.clear()
    result = run(market(trades, index))
    assert len(result.records["liquidations"]) == 0
    assert [ts for ts, _ in MARGIN_CALLS] == [T0 + 120 * SECOND_NS]
    info = MARGIN_CALLS[0][1]
    assert info["instrument"] == 0
    assert 1.0 < info["margin_ratio"] < 1.5
    assert info["liquidation_price"] == pytest.approx(29_500.0, rel=0.01)


class BigLong(Strategy):
    def on_trade(self, ctx, trade):
        if ctx.position == 0 and not getattr(self, "done", False):
            ctx.market(30_000)
            self.done = True


def test_partial_liquidation_steps_down_then_the_rest_is_taken_over():
    # okx_coinm_2019 BTC-USD-SWAP: 30,000 contracts = tier 5 (>= min tier 3 → partial first)
    trades = [(1, 10_000.0), (2, 10_000.0), (90, 10_000.0), (150, 10_000.0)]
    index = [(0, 10_000.0), (60, 10_000.0), (120, 9_000.0), (180, 8_000.0), (240, 5_000.0)]
    t = market(trades, index)
    data = MarketData("BTC-USD-SWAP", trades=t.trades, index=t.index)
    result = backtest(
        BigLong, data, "okx_coinm_2019:BTC-USD-SWAP", initial_balance=40.0, leverage=10.0
    )
    liquidations = result.records["liquidations"]
    assert len(liquidations) >= 2
    assert liquidations[0]["is_partial"]
    assert liquidations[0]["contracts_after"] < liquidations[0]["contracts_before"]
    assert not liquidations[-1]["is_partial"]
    assert liquidations[-1]["contracts_after"] == 0.0
    ledger = result.records["ledger"]
    assert 40.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, abs=1e-12
    )
