"""BitMEX XBTUSD on 2020-03-12 ("Black Thursday") through the whole engine.

A 10x isolated long of 10,000 contracts (1 USD each, inverse, settled in XBT) opened on the
11th is carried into the crash. With no index history for 2020 the mark is the last price
(``mark_price_method_used == "LAST"``), and a 1-minute candle is replayed as its path (open at
``t0``, the extreme adverse to the position at ``t0 + Δ/3``, the other at ``t0 + 2Δ/3``, the
close at ``t0 + Δ``; README "Data"), so the liquidation check runs at each point of that path.
Checked against the BitMEX rule written out here (MECHANICS.md 4.2): liquidation when the
margin balance ≤ maintenance margin rate × position value + close commission, i.e. for an
inverse long of q contracts entered at E with margin M:

    M + q·(1/E − 1/P) = (mmr + fee) · q/P   →   P_liq = q·(1 + mmr + fee) / (M + q/E)

and the position is taken over at the bankruptcy price (margin balance = 0): P_bk = q/(M + q/E),
so the whole margin M is lost.
The data (SOURCES.md: sxiaojian88_bitmex-xbtusd-history) has minutes whose low trades below
the liquidation price while the close stays above it: with the mark taken from the last price,
the first such low liquidates (inside that minute, at its low), not the first close below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtester import Strategy, backtest
from backtester.data.importers import read_file
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity
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


def test_the_crash_liquidates_the_long_at_the_first_path_point_through_the_bitmex_price(
    crash_bars, result
):
    spec = get_contract("bitmex:XBTUSD")
    assert result.config["mark_price_method_used"] == ["LAST"]
    fills = result.records["fills"]
    entry = fills[0]
    assert entry["liquidity"] == Liquidity.TAKER
    # filled at the next bar's open and booked at the open's time
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

    # the first point of the candle paths at or below the liquidation price, after the entry:
    # per candle open (t0), low (t0 + Δ/3, adverse to a long), high (t0 + 2Δ/3), close (t0 + Δ)
    t0 = crash_bars["ts_ns"][1:]
    times = np.stack([t0, t0 + MINUTE // 3, t0 + 2 * MINUTE // 3, t0 + MINUTE], axis=1).ravel()
    prices = np.stack([crash_bars[f][1:] for f in ("open", "low", "high", "close")], axis=1).ravel()
    first = np.flatnonzero(prices <= p_liq)[0]
    assert liq["ts_ns"] == times[first]
    assert liq["mark_price"] == prices[first]
    # a wick: that candle (or an earlier one) closed above the liquidation price, so a model
    # reduced to closes would have liquidated later
    closes_at = crash_bars["ts_ns"] + MINUTE
    first_close = np.flatnonzero((closes_at > entry["ts_ns"]) & (crash_bars["close"] <= p_liq))[0]
    assert closes_at[first_close] > liq["ts_ns"]

    # taken over at the bankruptcy price: the whole position margin is lost (the loss and the
    # liquidation fee together), and the insurance fund gains what the position is worth
    # between the bankruptcy price and the mark at which the engine closes it
    takeover = fills[fills["liquidity"] == Liquidity.LIQUIDATION]
    assert len(takeover) == 1
    assert takeover[0]["price"] == pytest.approx(p_bk, rel=1e-12)
    ledger = result.records["ledger"]
    loss = ledger[ledger["kind"] == LedgerKind.LIQUIDATION_LOSS]["amount_settle"].sum()
    liq_fee = ledger[ledger["kind"] == LedgerKind.LIQUIDATION_FEE]["amount_settle"].sum()
    mark = float(liq["mark_price"])
    assert loss + liq_fee == pytest.approx(-margin, rel=1e-9)
    assert liq["insurance_fund_delta_settle"] == pytest.approx(
        q * (1.0 / p_bk - 1.0 / mark), rel=1e-9
    )
    assert 1.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, rel=1e-15
    )
