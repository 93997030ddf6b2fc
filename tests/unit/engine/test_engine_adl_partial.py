"""Partial ADL: a deleverage event carries the quantity the queue still needs (issue 12 item 4).

Kernel level on the arrays ``Run`` builds (helpers of test_engine_deleverage), then a replay.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity, MarginMode, Side
from tests.unit.engine.test_engine_deleverage import (
    APPLIED,
    DAY0,
    HOUR_NS,
    INITIAL,
    State,
    adl_event,
    long_linear,
)
from tests.unit.engine.test_engine_funding_settlement import hourly_bars


def with_contracts(event: np.void, contracts: float) -> np.void:
    event["contracts"] = contracts
    return event


def test_adl_of_part_of_an_isolated_long() -> None:
    st = long_linear()  # 2 BTC long at 30,000, isolated margin 6,000, mark 33,000
    ts = DAY0 + HOUR_NS
    assert st.apply(ts, with_contracts(adl_event(Side.BUY, 32_000.0, -np.inf), 0.5)) == APPLIED
    s = st.positions[0]
    assert s["contracts"] == 1.5
    assert s["entry_price"] == 30_000.0  # the rest keeps its entry and reference prices
    assert s["reference_price"] == 30_000.0
    assert s["margin_settle"] == pytest.approx(6_000.0 * 1.5 / 2.0, rel=1e-15)
    fill = st.fills[1]
    assert (fill["liquidity"], fill["qty_contracts"], fill["price"]) == (
        Liquidity.ADL,
        0.5,
        32_000.0,
    )
    assert fill["realised_pnl_settle"] == 0.5 * (32_000.0 - 30_000.0)
    assert fill["position_after_contracts"] == 1.5
    assert st.balance() == INITIAL - 30.0 + 1_000.0
    rec = st.adl[0]
    assert rec["contracts"] == 0.5
    # given up against the mark on the closed half-BTC: 0.5·(33,000 − 32,000)
    assert rec["amount_settle"] == pytest.approx(500.0, rel=1e-12)
    st.assert_identity()


def test_a_quantity_above_the_position_or_zero_closes_all() -> None:
    for contracts in (5.0, 0.0, math.nan):
        st = long_linear()
        st.apply(DAY0, with_contracts(adl_event(Side.BUY, 32_000.0, -np.inf), contracts))
        assert st.positions[0]["contracts"] == 0.0
        assert st.adl[0]["contracts"] == 2.0


def test_bitmex_rule_deleverages_a_losing_position_below_a_negative_cut_off() -> None:
    """binance_usdm (ADL_BITMEX): long 2 BTC at 30,000, mark 29,000, isolated margin 6,000 ->
    bankrupt price 27,000. Values: mark 58,000, entry 60,000, bankrupt 54,000; PNL% =
    −2,000/60,000; leverage 58,000/4,000 = 14.5; ranking = PNL% / 14.5 = −0.0022989."""
    st = State("binance_usdm:BTCUSDT", 10.0, MarginMode.ISOLATED)
    st.fill(DAY0, Side.BUY, 2.0, 30_000.0)
    st.positions[0]["mark_price"] = 29_000.0
    score = (-2_000.0 / 60_000.0) / 14.5
    assert st.apply(DAY0, adl_event(Side.BUY, 29_500.0, score * 0.999)) == 0  # above: kept
    assert st.apply(DAY0, adl_event(Side.BUY, 29_500.0, score * 1.001)) == APPLIED
    assert st.adl[0]["rate"] == pytest.approx(score, rel=1e-12)
    assert st.fills[1]["realised_pnl_settle"] == 2.0 * (29_500.0 - 30_000.0)


CLOSES = [30_000.0, 30_300.0, 30_600.0, 30_900.0]


class Long10(Strategy):
    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == DAY0:
            ctx.market(10.0)


def test_replay_partial_adl_leaves_the_rest_open() -> None:
    events = np.zeros(1, dtypes.DELEVERAGE_EVENT_DTYPE)
    events[0] = (DAY0 + 3 * HOUR_NS, LedgerKind.ADL, 1, 30_700.0, 0.0, 4.0)
    data = MarketData(
        "BTC-USDT-SWAP", bars=hourly_bars(CLOSES), bar_interval_ns=HOUR_NS, deleverage=events
    )
    result = backtest(Long10, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    fills = result.records["fills"]
    assert list(fills["liquidity"]) == [Liquidity.TAKER, Liquidity.ADL]
    assert (fills[1]["qty_contracts"], fills[1]["position_after_contracts"]) == (4.0, 6.0)
    entry = fills[0]["price"]
    # 4 contracts × 0.01 BTC × (30,700 − entry)
    assert fills[1]["realised_pnl_settle"] == pytest.approx(4 * 0.01 * (30_700.0 - entry))
    assert result.records["adl"][0]["contracts"] == 4.0
    assert result.records["equity"][-1]["position_contracts"] == 6.0
    ledger = result.records["ledger"]
    assert 10_000.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, rel=1e-15
    )


def test_market_data_refuses_a_negative_adl_quantity() -> None:
    events = np.zeros(1, dtypes.DELEVERAGE_EVENT_DTYPE)
    events[0] = (DAY0, LedgerKind.ADL, 1, 30_000.0, 0.0, -1.0)
    with pytest.raises(ValueError, match=r"row 0: contracts = -1\.0, expected contracts >= 0"):
        MarketData("BTC-USDT-SWAP", bars=hourly_bars(CLOSES), bar_interval_ns=HOUR_NS,
                   deleverage=events)  # fmt: skip
