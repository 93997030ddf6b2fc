"""Exits attached to an entry are live from the entry's fill instant, also for the rest of the
bar in which it filled: a market entry at the bar's open (its stop is matched on the bar's
extremes and close) and a limit entry filled on the way down an intrabar path segment (its
stop is matched on the rest of that same segment).

Linear OKX BTC-USDT-SWAP (face 0.01 BTC, tick 0.1), one-minute bars. A candle [t0, t0+60 s)
is replayed as open at t0, then its two extremes at t0+20 s and t0+40 s (with a position the
adverse one first; flat, the one nearer the open first) and its close at t0+60 s
(docs/ARCHITECTURE.md). A resting limit or stop crossed on a segment fills at its level,
stamped at the segment's end.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from backtester import backtest
from backtester.enums import OrderStatus, OrderType
from backtester.jit import JitStrategy, fill, limit, place_exits, position
from tests.unit.ux.scripted_bars import CONTRACT, FLAT, MINUTE_NS, SECOND_NS, T0, bars, run

# flat at its open: the high (100 away) is nearer than the low (600 away), so the path is
# open 30,000 -> high 30,100 (+20 s) -> low 29,400 (+40 s) -> close 29,600 (+60 s)
DROP = (30_000.0, 30_100.0, 29_400.0, 29_600.0)


def test_a_market_entry_at_the_open_is_protected_on_the_rest_of_its_bar():
    # entry at bar 1's open, 30,000; stop 30,000 - 500 = 29,500; long, so the path is
    # open -> low 29,400 (+20 s, crosses 29,500: the stop fills there) -> high -> close
    result = run([FLAT, (30_000.0, 30_100.0, 29_400.0, 29_600.0), FLAT],
                 {0: lambda c: c.market(1, stop_loss_distance=500)})  # fmt: skip
    fills = result.records["fills"]
    assert [(f["price"], f["ts_ns"]) for f in fills] == [
        (30_000.0, T0 + MINUTE_NS),
        (29_500.0, T0 + MINUTE_NS + 20 * SECOND_NS),
    ]
    # 1 x 0.01 x (29,500 - 30,000) = -5 USDT
    assert fills[1]["realised_pnl_settle"] == pytest.approx(-5.0, rel=1e-12)


def test_a_limit_entry_filled_mid_segment_is_protected_on_the_rest_of_the_segment():
    # buy limit 29,900 fills on the segment high 30,100 -> low 29,400 (at +40 s); its stop
    # 29,900 - 400 = 29,500 lies further down the same segment: it fills there, also at +40 s
    result = run([FLAT, DROP, FLAT],
                 {0: lambda c: c.limit(1, 29_900.0, stop_loss_distance=400,
                                       take_profit_distance=1_000)})  # fmt: skip
    orders = result.records["orders"]
    fills = result.records["fills"]
    assert (orders[1]["order_type"], orders[1]["trigger_price"]) == (
        OrderType.STOP_MARKET,
        29_500.0,
    )
    assert orders[1]["status"] == OrderStatus.FILLED
    assert orders[2]["status"] == OrderStatus.CANCELLED  # its take-profit, one cancels other
    assert [(f["price"], f["ts_ns"]) for f in fills] == [
        (29_900.0, T0 + MINUTE_NS + 40 * SECOND_NS),
        (29_500.0, T0 + MINUTE_NS + 40 * SECOND_NS),
    ]
    # 1 x 0.01 x (29,500 - 29,900) = -4 USDT
    assert fills[1]["realised_pnl_settle"] == pytest.approx(-4.0, rel=1e-12)
    assert fills[1]["position_after_contracts"] == 0.0


def test_a_trailing_stop_starts_from_the_fill_inside_the_segment():
    # the same entry with a trail of 300: level 29,900 - 300 = 29,600, crossed further down
    # the segment (the low is 29,400): exit at 29,600 at +40 s
    result = run([FLAT, DROP, FLAT],
                 {0: lambda c: c.limit(1, 29_900.0, trailing_stop_distance=300)})  # fmt: skip
    fills = result.records["fills"]
    assert [(f["price"], f["ts_ns"]) for f in fills] == [
        (29_900.0, T0 + MINUTE_NS + 40 * SECOND_NS),
        (29_600.0, T0 + MINUTE_NS + 40 * SECOND_NS),
    ]


def test_an_exit_beyond_the_segment_waits():
    # stop 29,900 - 600 = 29,300 is below the low 29,400: nothing more fills on this bar
    result = run([FLAT, DROP, FLAT], {0: lambda c: c.limit(1, 29_900.0, stop_loss_distance=600)})
    orders = result.records["orders"]
    assert orders[1]["status"] == OrderStatus.NEW
    assert len(result.records["fills"]) == 1


@njit
def jit_on_bar(ctx, state, i, row):
    if state[0] == 0.0:
        state[0] = 1.0
        limit(ctx, i, 1.0, 29_900.0)


@njit
def jit_on_fill(ctx, state, fill_row):
    entry = fill(ctx, fill_row)
    if position(ctx, entry.instrument) > 0.0 and state[1] < 0:
        state[1] = place_exits(ctx, entry.instrument, entry.price - 400.0, np.nan)[0]


class JitLimitEntry(JitStrategy):
    on_bar = jit_on_bar
    on_fill = jit_on_fill

    def make_state(self):
        return np.array([0.0, -1.0])


def test_the_jit_path_matches_the_rest_of_the_segment_too():
    result = backtest(JitLimitEntry, bars([FLAT, DROP, FLAT]), CONTRACT, initial_balance=1e4)
    fills = result.records["fills"]
    assert [(f["price"], f["ts_ns"]) for f in fills] == [
        (29_900.0, T0 + MINUTE_NS + 40 * SECOND_NS),
        (29_500.0, T0 + MINUTE_NS + 40 * SECOND_NS),
    ]
