"""ADL and clawback scenario events inside the replay (``MarketData.deleverage``).

The kernels are tested in ``test_engine_deleverage.py``; here the events flow through the loop:
their place in the equal-timestamp order (after funding, before trades), resting orders
cancelled on an ADL close, the ``on_adl`` callback (Python and jit), and the ledger identity
initial + Σ ledger = final balance with the ADL close's PnL and the clawback included.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from backtester import JitStrategy, Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity, OrderStatus
from backtester.jit import adl_record
from tests.unit.engine.test_engine_funding_settlement import DAY0, HOUR_NS, hourly_bars


def scenario(rows: list[tuple[int, int, int, float, float]]) -> np.ndarray:
    out = np.zeros(len(rows), dtypes.DELEVERAGE_EVENT_DTYPE)
    for k, (ts, kind, side, price, threshold) in enumerate(rows):
        out[k] = (ts, kind, side, price, threshold, 0.0)  # contracts 0: the whole position
    return out


CLOSES = [30_000.0, 30_300.0, 30_600.0, 30_900.0, 31_200.0, 31_500.0]


class LongWithTakeProfit(Strategy):
    """Buys 10 contracts at the first close, then rests a take-profit far above."""

    def on_start(self, ctx):
        self.adl_seen = []

    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == DAY0:
            ctx.market(10.0)
        elif bar["ts_ns"] == DAY0 + HOUR_NS:  # the entry has filled: rest the take-profit
            self.tp = ctx.limit(-10.0, 40_000.0, reduce_only=True)

    def on_adl(self, ctx, record):
        self.adl_seen.append((int(record["kind"]), float(record["contracts"])))
        ADL_SEEN.append(self.adl_seen[-1])


ADL_SEEN: list = []


def data_with(events: np.ndarray) -> MarketData:
    return MarketData(
        "BTC-USDT-SWAP", bars=hourly_bars(CLOSES), bar_interval_ns=HOUR_NS, deleverage=events
    )


def test_an_adl_event_closes_the_profitable_long_at_its_price_and_cancels_its_orders():
    # the bar that opened at 02:00 closes at 03:00; the ADL at 03:00 comes before that bar
    events = scenario([(DAY0 + 3 * HOUR_NS, LedgerKind.ADL, 1, 30_700.0, 0.0)])
    ADL_SEEN.clear()
    result = backtest(
        LongWithTakeProfit, data_with(events), "okx:BTC-USDT-SWAP", initial_balance=10_000.0
    )
    fills = result.records["fills"]
    # entry at the open of the bar after 01:00 (= close of the first bar, 30,000)
    assert list(fills["liquidity"]) == [Liquidity.TAKER, Liquidity.ADL]
    assert fills[1]["price"] == 30_700.0
    assert fills[1]["qty_contracts"] == 10.0
    assert fills[1]["fee_settle"] == 0.0
    assert fills[1]["ts_ns"] == DAY0 + 3 * HOUR_NS
    adl = result.records["adl"]
    assert len(adl) == 1
    assert adl[0]["kind"] == LedgerKind.ADL
    assert adl[0]["contracts"] == 10.0
    assert [(int(LedgerKind.ADL), 10.0)] == ADL_SEEN
    orders = result.records["orders"]
    assert orders[1]["status"] == OrderStatus.CANCELLED  # the take-profit, cancelled by ADL
    assert result.records["equity"][-1]["position_contracts"] == 0.0
    ledger = result.records["ledger"]
    realised = ledger[ledger["kind"] == LedgerKind.TRADE_PNL]["amount_settle"]
    entry = fills[0]["price"]
    assert realised.sum() == pytest.approx(10 * 0.01 * (30_700.0 - entry), rel=1e-12)
    assert 10_000.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, rel=1e-15
    )


def test_an_adl_on_the_other_side_or_below_the_cut_off_leaves_the_position():
    events = scenario(
        [
            (DAY0 + 3 * HOUR_NS, LedgerKind.ADL, -1, 30_700.0, 0.0),  # shorts are hit
            (DAY0 + 4 * HOUR_NS, LedgerKind.ADL, 1, 31_000.0, 1e9),  # cut-off out of reach
        ]
    )
    result = backtest(
        LongWithTakeProfit, data_with(events), "okx:BTC-USDT-SWAP", initial_balance=10_000.0
    )
    assert len(result.records["adl"]) == 0
    assert list(result.records["fills"]["liquidity"]) == [Liquidity.TAKER]
    assert result.records["equity"][-1]["position_contracts"] == 10.0


@njit
def jit_on_adl(ctx, s, row):
    record = adl_record(ctx, row)
    s[1] += record.contracts
    s[2] = record.kind


def test_the_jit_path_sees_the_same_adl_and_clawback_records():
    from backtester.jit import market

    @njit
    def on_bar(ctx, s, i, row):
        if row == 0:
            market(ctx, i, 10.0)

    class LongJit(JitStrategy):
        on_adl = jit_on_adl

        def make_state(self):
            STATE["s"] = np.zeros(3)
            return STATE["s"]

    LongJit.on_bar = on_bar
    STATE: dict = {}

    class LongPy(Strategy):
        def on_bar(self, ctx, bar):
            if bar["ts_ns"] == DAY0:
                ctx.market(10.0)

    events = scenario(
        [
            (DAY0 + 3 * HOUR_NS, LedgerKind.ADL, 1, 30_700.0, 0.0),
            (DAY0 + 25 * HOUR_NS, LedgerKind.CLAWBACK, 0, np.nan, 0.5),
        ]
    )
    py = backtest(LongPy, data_with(events), "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    jit = backtest(LongJit, data_with(events), "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    for kind in ("fills", "ledger", "adl"):
        assert jit.frame(kind).equals(py.frame(kind)), kind
    assert STATE["s"][1] == 10.0  # the ADL close, seen by the jitted on_adl
    assert STATE["s"][2] == LedgerKind.CLAWBACK  # the last record it saw
    adl = py.records["adl"]
    assert list(adl["kind"]) == [LedgerKind.ADL, LedgerKind.CLAWBACK]
    # the clawback on day 2 takes half of day 1's net profit: the ADL close's PnL less the
    # entry fee
    ledger = py.records["ledger"]
    day1 = ledger[(ledger["ts_ns"] >= DAY0) & (ledger["ts_ns"] < DAY0 + 24 * HOUR_NS)]
    profit = day1["amount_settle"].sum()
    assert profit > 0
    clawback = ledger[ledger["kind"] == LedgerKind.CLAWBACK]
    assert len(clawback) == 1
    assert clawback[0]["amount_settle"] == pytest.approx(-0.5 * profit, rel=1e-12)
    assert 10_000.0 + ledger["amount_settle"].sum() == pytest.approx(
        py.final_balance_settle, rel=1e-15
    )


class TwoBuys(Strategy):
    """Buys 9 contracts at the first close (04:00 bar → fill 05:00), 5 more at the fourth
    (fill 08:00, after the daily settlement of that instant)."""

    def on_bar(self, ctx, bar):
        k = len(ctx.closes) - 1
        if k == 0:
            ctx.market(9.0)
        elif k == 3:
            ctx.market(5.0)


def test_a_clawback_after_the_day_profit_was_lost_is_capped_at_the_wallet_and_reported():
    """The hypothesis example that drove the wallet below zero (okx_coinm_2019, 50x): the
    08:00 settlement's profit is spent as margin of a bigger position, liquidated at 22:20;
    the next day's clawback (04:30, rate 0.5) wants half of the closed day's net profit but
    takes only what the wallet still holds, and the run says how much it could not take.

    Hand figures (inverse, face 100 USD, taker 0.075 %): the day (Dec 31 08:00, Jan 1 08:00]
    holds the entry fee 900/20,000·0.00075, the settlement of 9 contracts from 20,000 to the
    08:00 mark 20,156.9, 900·(1/20,000 − 1/20,156.9), and the second buy's fee
    500/20,156.9·0.00075 (booked at 08:00, after the settlement).
    """
    start = DAY0 + 4 * HOUR_NS
    n = 19
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = start + np.arange(n) * HOUR_NS
    closes = np.array([20_000.0] * 3 + [20_156.9] * 15 + [19_844.4])
    bars["open"] = np.r_[20_000.0, closes[:-1]]
    bars["close"] = closes
    bars["high"] = np.maximum(bars["open"], closes)
    bars["low"] = np.minimum(bars["open"], closes)
    ts = start + HOUR_NS // 2 + 24 * HOUR_NS  # 04:30 the next day
    data = MarketData(
        "BTC-USD-SWAP",
        bars=bars,
        bar_interval_ns=HOUR_NS,
        deleverage=scenario([(ts, LedgerKind.CLAWBACK, 0, np.nan, 0.5)]),
    )
    balance = 0.001161
    with pytest.warns(Warning, match="clawback capped at the free wallet") as caught:
        result = backtest(
            TwoBuys, data, "okx_coinm_2019:BTC-USD-SWAP", initial_balance=balance, leverage=50.0
        )
    assert sum("clawback capped" in str(w.message) for w in caught) == 1
    ledger = result.records["ledger"]
    assert (ledger["balance_after_settle"] >= 0.0).all()
    assert len(result.records["liquidations"]) == 1  # the 14 contracts, at 22:20
    day = 900 * (1 / 20_000.0 - 1 / 20_156.9) - 900 / 20_000.0 * 0.00075
    day -= 500 / 20_156.9 * 0.00075
    wanted = 0.5 * day  # 0.000148569
    assert ledger[-1]["kind"] == LedgerKind.CLAWBACK
    assert ledger[-1]["ts_ns"] == ts
    held = float(ledger[-2]["balance_after_settle"])  # the wallet after the liquidation
    assert 0.0 < held < wanted
    assert ledger[-1]["amount_settle"] == pytest.approx(-held, rel=1e-12)
    assert result.records["adl"][0]["amount_settle"] == pytest.approx(held, rel=1e-12)
    assert result.final_balance_settle == pytest.approx(0.0, abs=1e-15)
    not_taken = result.config["insurance_fund"]["clawback_not_taken_settle"]
    assert not_taken == pytest.approx(wanted - held, rel=1e-9)
    assert any("clawback capped" in w for w in result.config["warnings"])
