"""BitMEX XBTUSD on 2020-03-12 ("Black Thursday") through the whole engine.

A 10x isolated long of 10,000 contracts (1 USD each, inverse, settled in XBT) opened on the
11th is carried into the crash. With no index history for 2020 the mark is the last price
(``mark_price_method_used == "LAST"``), so the liquidation check runs at each 1-minute close.
Checked against the BitMEX rule written out here (MECHANICS.md 4.2): liquidation when the
margin balance ≤ maintenance margin rate × position value + close commission, i.e. for an
inverse long of q contracts entered at E with margin M:

    M + q·(1/E − 1/P) = (mmr + fee) · q/P   →   P_liq = q·(1 + mmr + fee) / (M + q/E)

and the position is taken over at the bankruptcy price (margin balance = 0): P_bk = q/(M + q/E),
so the whole margin M is lost.
With the mark on the last price, the mark follows each 1-minute candle's path (open, the
adverse extreme at +20 s — the low for a long —, the other extreme, close: ``EventKind``), so
the long is liquidated inside the first minute whose open or low reaches P_liq, at that point
(SOURCES.md: sxiaojian88_bitmex-xbtusd-history); that minute closes above P_liq, where a
replay of the closes alone would have waited for a later minute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtester import Strategy, backtest
from backtester.data.importers import read_file
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity, PathPoint, PriceStream
from backtester.swap import get_contract
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata

MINUTE = 60_000_000_000
CONTRACTS = 10_000.0
LEVERAGE = 10.0


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


@pytest.fixture(scope="module")
def crash_bars() -> np.ndarray:
    path = shared_path(
        "data", "sxiaojian88_bitmex-xbtusd-history", "XBTUSD-1m-2020-01-01_2023-07-07.parquet"
    )
    (stream,) = [s for s in read_file(path, "bitmex_parquet") if s.kind == "bars"]
    bars = stream.records
    return bars[(bars["ts_ns"] >= ns("2020-03-11 12:00")) & (bars["ts_ns"] < ns("2020-03-13"))]


class CarryLong(Strategy):
    """Buys CONTRACTS at the first close and holds."""

    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == ns("2020-03-11 12:00"):
            ctx.market(CONTRACTS)


@pytest.fixture(scope="module")
def result(crash_bars):
    data = MarketData("XBTUSD", bars=crash_bars, bar_interval_ns=MINUTE, exchange="bitmex")
    return backtest(CarryLong, data, "bitmex:XBTUSD", initial_balance=1.0, leverage=LEVERAGE)


def test_the_crash_liquidates_the_long_at_the_first_close_through_the_bitmex_price(
    crash_bars, result
):
    spec = get_contract("bitmex:XBTUSD")
    assert result.config["mark_price_method_used"] == ["LAST"]
    fills = result.records["fills"]
    entry = fills[0]
    assert entry["liquidity"] == Liquidity.TAKER
    # filled at the next bar's open, booked at that open (12:01)
    assert entry["price"] == crash_bars["open"][1]
    assert entry["ts_ns"] == ns("2020-03-11 12:01")
    e = float(entry["price"])
    q = CONTRACTS
    margin = q / e / LEVERAGE  # initial margin, XBT (the fee is paid from the wallet)
    tier = spec.tiers.tables[0].rows[0]  # 10,000 USD ≈ 1.3 XBT: the lowest risk limit
    mmr = float(tier["maintenance_margin_rate"])
    fee = spec.profile.liquidation_fee_rate
    p_liq = q * (1.0 + mmr + fee) / (margin + q / e)
    p_bk = q / (margin + q / e)

    liquidations = result.records["liquidations"]
    assert len(liquidations) == 1
    liq = liquidations[0]
    assert not liq["is_partial"]
    assert liq["contracts_before"] == q
    assert liq["contracts_after"] == 0.0
    assert liq["liquidation_price"] == pytest.approx(p_liq, rel=1e-12)
    assert liq["bankruptcy_price"] == pytest.approx(p_bk, rel=1e-12)

    # the first minute after the entry's own open whose path reaches the liquidation price:
    # at its open (t0) if the open is through, else at its low (t0 + 20 s, adverse first)
    after = crash_bars["ts_ns"] > entry["ts_ns"]
    first = np.flatnonzero(after & (crash_bars["low"] <= p_liq))[0]
    t0 = int(crash_bars["ts_ns"][first])
    if crash_bars["open"][first] <= p_liq:
        assert (liq["ts_ns"], liq["mark_price"]) == (t0, crash_bars["open"][first])
        assert liq["trigger_point"] == PathPoint.OPEN
    else:
        assert (liq["ts_ns"], liq["mark_price"]) == (t0 + MINUTE // 3, crash_bars["low"][first])
        assert liq["trigger_point"] == PathPoint.LOW
    assert liq["trigger_stream"] == PriceStream.BARS
    assert int(liq["trigger_candle_ns"]) == t0
    # that minute closed above the liquidation price: the closes alone came later
    assert crash_bars["close"][first] > p_liq

    # taken over at the bankruptcy price: the whole position margin is lost,
    takeover = fills[fills["liquidity"] == Liquidity.LIQUIDATION]
    assert len(takeover) == 1
    assert takeover[0]["price"] == pytest.approx(p_bk, rel=1e-12)
    # booked as the loss plus the liquidation fee, together the whole margin,
    # which goes to the insurance fund (BitMEX keeps what is left between mark and bankruptcy)
    ledger = result.records["ledger"]
    loss = ledger[ledger["kind"] == LedgerKind.LIQUIDATION_LOSS]["amount_settle"].sum()
    liq_fee = ledger[ledger["kind"] == LedgerKind.LIQUIDATION_FEE]["amount_settle"].sum()
    mark = float(liq["mark_price"])
    # the liquidation fee: fee rate × value at the trigger mark, capped by the margin balance
    # left at that mark (the low of the minute is past the threshold, not at it)
    left_at_mark = max(0.0, margin + q * (1.0 / e - 1.0 / mark))
    assert -liq_fee == pytest.approx(min(fee * q / mark, left_at_mark), rel=1e-9)
    assert loss + liq_fee == pytest.approx(-margin, rel=1e-9)
    # the insurance fund takes the position over at the bankruptcy price and unwinds it at the
    # market (the last price, here the trigger point): a long, so it gains q·(1/P_bk − 1/P)
    assert liq["insurance_fund_delta_settle"] == pytest.approx(
        q * (1.0 / p_bk - 1.0 / mark), rel=1e-9
    )
    assert 1.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, rel=1e-15
    )
