"""Data with trade ticks for part of the span: orders fill on trades where trades printed and
on the bar's intrabar path where none did (the sample: 1-minute bars for two months, ticks
for 2024-03-05 only). Before, an order placed on a bars-only day waited for the first tick."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest
from backtester.data.sample import BAR_INTERVAL_NS, TRADES_DAY_START_NS, load_sample

DAY_NS = 86_400 * 1_000_000_000
# bar open times at which the strategy places one market buy of 1 contract: a bars-only day
# before the trade day, two minutes inside it, and a bars-only day after it
ORDER_BARS_NS = (
    TRADES_DAY_START_NS - 3 * DAY_NS + 600 * BAR_INTERVAL_NS,
    TRADES_DAY_START_NS + 600 * BAR_INTERVAL_NS,
    TRADES_DAY_START_NS + 601 * BAR_INTERVAL_NS,
    TRADES_DAY_START_NS + 2 * DAY_NS + 600 * BAR_INTERVAL_NS,
)


class BuyAtBars(Strategy):
    """One market buy at the close of each bar listed in ORDER_BARS_NS."""

    def on_bar(self, ctx, bar):
        if int(bar["ts_ns"]) in ORDER_BARS_NS:
            ctx.market(1.0)


@pytest.fixture(scope="module")
def mixed():
    data = load_sample("BTC-USDT-SWAP", with_trades=True)
    result = backtest(BuyAtBars, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0, leverage=1)
    return data, result


def test_every_order_fills_at_the_next_price_of_its_own_stretch(mixed):
    data, result = mixed
    fills = result.records["fills"]
    orders = result.records["orders"]
    assert len(orders) == 4
    assert len(fills) == 4
    assert (orders["status"] == 2).all()  # FILLED
    bars = data.bars
    trades = data.trades
    for k, open_ns in enumerate(ORDER_BARS_NS):
        close_ns = open_ns + BAR_INTERVAL_NS
        fill = fills[fills["order_id"] == k][0]
        in_trade_day = trades["ts_ns"][0] <= close_ns <= trades["ts_ns"][-1]
        if in_trade_day:
            # the first trade at or after the order's bar close (trades at the close time are
            # replayed before the bar, so the order meets the first one after it)
            first = int(np.searchsorted(trades["ts_ns"], close_ns, side="right"))
            assert fill["ts_ns"] == trades["ts_ns"][first]
            assert fill["price"] == trades["price"][first]
        else:
            # bars only: the next bar's open, booked at that open (= the order's bar close)
            nxt = int(np.searchsorted(bars["ts_ns"], close_ns))
            assert bars["ts_ns"][nxt] == close_ns
            assert fill["price"] == bars["open"][nxt]
            assert fill["ts_ns"] == close_ns


def test_the_position_adds_up_in_order(mixed):
    _, result = mixed
    fills = result.records["fills"]
    assert list(fills["order_id"]) == [0, 1, 2, 3]
    assert list(fills["position_after_contracts"]) == [1.0, 2.0, 3.0, 4.0]


def test_bars_only_data_fills_as_before():
    """Without ticks nothing changes: the same orders fill at the next bar's open."""
    data = load_sample("BTC-USDT-SWAP", with_trades=False)
    result = backtest(BuyAtBars, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0, leverage=1)
    fills = result.records["fills"]
    assert len(fills) == 4
    for k, open_ns in enumerate(ORDER_BARS_NS):
        nxt = int(np.searchsorted(data.bars["ts_ns"], open_ns + BAR_INTERVAL_NS))
        assert fills["price"][k] == data.bars["open"][nxt]
