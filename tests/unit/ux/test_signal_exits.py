"""The signal path with exits: sl_stop / tp_stop (fractions of the entry's fill price) place
reduce-only exits at the fill, one cancelling the other; without them the Python-driven path
gives the signal kernel's records bit for bit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest

from backtester import backtest_signals
from backtester.data.sample import load_sample
from backtester.enums import OrderStatus, OrderType


@pytest.fixture(scope="module")
def crossings():
    data = load_sample("BTC-USDT-SWAP", with_trades=False)
    close = pd.Series(data.bars["close"])
    above = (close.rolling(20).mean() > close.rolling(120).mean()).to_numpy()
    cross = np.r_[False, above[1:] != above[:-1]]
    return data, cross & above, cross & ~above


def test_without_exits_equals_the_kernel(crossings):
    data, entries, exits = crossings
    kernel = backtest_signals(entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=1e4)
    python = backtest_signals(entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=1e4,
                              sl_stop=np.full(len(entries), np.nan))  # fmt: skip
    assert len(kernel.records["fills"]) > 50
    assert python.fingerprint() == kernel.fingerprint()


def tick(fill: float, factor: str) -> float:
    """fill x factor in exact decimal arithmetic, to the nearest 0.1, ties up (the documented
    rounding of distances and fractions)."""
    exact = Decimal(repr(fill)) * Decimal(factor)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def test_stops_sit_at_the_fraction_of_each_fill(crossings):
    data, entries, exits = crossings
    result = backtest_signals(entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=1e4,
                              sl_stop=0.005, tp_stop=0.01)  # fmt: skip
    orders = result.records["orders"]
    entry_rows = np.flatnonzero((orders["order_type"] == OrderType.MARKET) & ~orders["reduce_only"])
    stops = orders[orders["order_type"] == OrderType.STOP_MARKET]
    targets = orders[orders["order_type"] == OrderType.TAKE_PROFIT]
    assert len(stops) == len(targets) > 20
    # each long entry's exits: fill x (1 - 0.5 %) and fill x (1 + 1 %), on the 0.1 tick
    fills = {int(o["order_id"]): float(o["average_fill_price"]) for o in orders[entry_rows]}
    for stop, target in zip(stops, targets, strict=True):
        entry = max(k for k in fills if k < stop["order_id"])
        assert stop["trigger_price"] == pytest.approx(tick(fills[entry], "0.995"), abs=1e-6)
        assert target["trigger_price"] == pytest.approx(tick(fills[entry], "1.01"), abs=1e-6)
        # one-cancels-the-other: never both filled
        assert not (stop["status"] == target["status"] == OrderStatus.FILLED)
    assert (stops["status"] == OrderStatus.FILLED).sum() > 0
    assert result.rejections.empty


def test_bad_fractions_raise(crossings):
    data, entries, exits = crossings
    with pytest.raises(ValueError, match=r"sl_stop: expected fractions > 0 .* got -0\.01 at bar 0"):
        backtest_signals(entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=1e4,
                         sl_stop=-0.01)  # fmt: skip
