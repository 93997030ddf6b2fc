"""Invariants of the engine over random bars and random order streams (hypothesis).

* the ledger conserves: initial balance + Σ ledger amounts = final balance, row by row;
* with isolated margin only, the wallet never goes negative (no isolated loss exceeds its
  margin plus the fees reserved at acceptance);
* every strategy fill lies inside the range of the bar it happened in;
* ADL closes and clawbacks (random scenario events) keep all of the above, and the ledger's
  CLAWBACK rows equal the clawback records.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity

MINUTE_NS = 60_000_000_000
T0 = 1_704_067_200_000_000_000
DAY_NS = 86_400_000_000_000


@st.composite
def scenarios(draw):
    n = draw(st.integers(3, 30))
    steps = draw(st.lists(st.floats(-0.03, 0.03), min_size=n, max_size=n))
    close = np.round(20_000.0 * np.exp(np.cumsum(steps)), 1)
    open_ = np.r_[20_000.0, close[:-1]]
    wick_up = draw(st.lists(st.floats(0.0, 0.02), min_size=n, max_size=n))
    wick_down = draw(st.lists(st.floats(0.0, 0.02), min_size=n, max_size=n))
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    bars["open"] = open_
    bars["close"] = close
    bars["high"] = np.round(np.maximum(open_, close) * (1 + np.array(wick_up)), 1)
    bars["low"] = np.round(np.minimum(open_, close) * (1 - np.array(wick_down)), 1)
    actions = draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.sampled_from(["market", "limit", "stop", "take_profit", "close", "cancel"]),
                st.integers(-40, 40).filter(lambda v: v != 0),
                st.floats(-0.03, 0.03),
                st.booleans(),
            ),
            max_size=12,
        )
    )
    # an opening market order on the first bar, so the later episodes often meet a position
    actions = [(0, "market", draw(st.integers(-40, 40).filter(bool)), 0.0, False), *actions]
    leverage = draw(st.sampled_from([1.0, 5.0, 20.0, 50.0, 100.0]))
    funding_rate = draw(st.floats(-0.003, 0.003))
    episodes = draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.booleans(),  # ADL (else clawback)
                st.sampled_from([-1, 0, 1]),
                st.floats(-0.02, 0.02),
                st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]),
            ),
            max_size=3,
        )
    )
    deleverage = np.zeros(len(episodes), dtypes.DELEVERAGE_EVENT_DTYPE)
    # ADL episodes (within the bars) first, then the next day's clawbacks: time order
    in_time_order = sorted(episodes, key=lambda e: (not e[1], e[0]))
    for row, (at, adl, side, offset, threshold) in zip(deleverage, in_time_order, strict=True):
        # ADL within the bars; a clawback the next day takes a share of this day's profit
        row["ts_ns"] = bars["ts_ns"][at] + MINUTE_NS // 2 + (0 if adl else DAY_NS)
        row["kind"] = LedgerKind.ADL if adl else LedgerKind.CLAWBACK
        row["side"] = side if adl else 0
        row["price"] = round(float(close[at]) * (1 + offset), 1) if adl else np.nan
        row["threshold"] = threshold
    return bars, actions, leverage, funding_rate, deleverage


class RandomOrders(Strategy):
    actions: list = []  # noqa: RUF012  (set per example through params)

    def on_bar(self, ctx, bar):
        k = len(ctx.closes) - 1
        for at, kind, size, offset, reduce_only in self.actions:
            if at != k:
                continue
            price = round(float(bar["close"]) * (1 + offset), 1)
            if kind == "market":
                ctx.market(size / 10, reduce_only=reduce_only)
            elif kind == "limit":
                ctx.limit(size / 10, price, reduce_only=reduce_only)
            elif kind == "stop":
                ctx.stop(size / 10, price, reduce_only=reduce_only)
            elif kind == "take_profit":
                ctx.take_profit(size / 10, price, reduce_only=reduce_only)
            elif kind == "close":
                ctx.close_position()
            else:
                for order in ctx.open_orders()[:1]:
                    ctx.cancel(int(order["order_id"]))


@settings(max_examples=60)
@given(scenarios())
def test_ledger_conserves_wallet_stays_positive_and_fills_stay_in_range(scenario):
    bars, actions, leverage, funding_rate, deleverage = scenario
    funding = np.zeros(1, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = bars["ts_ns"][len(bars) // 2]
    funding["funding_rate"] = funding_rate
    data = MarketData(
        "BTC-USDT-SWAP",
        bars=bars,
        bar_interval_ns=MINUTE_NS,
        funding=funding,
        deleverage=deleverage,
    )
    balance = 1_000.0
    result = backtest(
        RandomOrders,
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=balance,
        leverage=leverage,
        params={"actions": actions},
    )
    ledger = result.records["ledger"]
    np.testing.assert_allclose(
        balance + np.cumsum(ledger["amount_settle"]),
        ledger["balance_after_settle"],
        rtol=0,
        atol=1e-9,
    )
    assert abs(balance + ledger["amount_settle"].sum() - result.final_balance_settle) < 1e-9
    assert (ledger["balance_after_settle"] >= -1e-9).all()
    adl = result.records["adl"]
    clawbacks = ledger[ledger["kind"] == LedgerKind.CLAWBACK]["amount_settle"]
    # the ledger row is the cash movement (< 0); the record the amount taken (> 0)
    np.testing.assert_array_equal(
        np.sort(-clawbacks), np.sort(adl[adl["kind"] == LedgerKind.CLAWBACK]["amount_settle"])
    )
    assert (clawbacks <= 0).all()
    fills = result.records["fills"]
    assert (fills[fills["liquidity"] == Liquidity.ADL]["fee_settle"] == 0).all()
    own = fills[
        (fills["liquidity"] != Liquidity.LIQUIDATION) & (fills["liquidity"] != Liquidity.ADL)
    ]
    bar_of_fill = (own["ts_ns"] - T0) // MINUTE_NS - 1
    assert (bar_of_fill >= 0).all()
    assert (own["price"] >= bars["low"][bar_of_fill] - 1e-9).all()
    assert (own["price"] <= bars["high"][bar_of_fill] + 1e-9).all()
