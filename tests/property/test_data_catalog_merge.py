"""Catalog merge invariants: writing overlapping pieces in any order stores the same rows."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from backtester import dtypes
from backtester.data import Catalog

MINUTE = 60_000_000_000
T0 = 1_672_531_200_000_000_000
DAY = 1440 * MINUTE


def bars(n: int) -> np.ndarray:
    out = np.zeros(n, dtype=dtypes.BAR_DTYPE)
    out["ts_ns"] = T0 + np.arange(n, dtype=np.int64) * 7 * 60 * MINUTE  # 7 h apart: many months
    out["open"] = out["close"] = 100.0 + np.arange(n)
    out["high"] = out["open"] + 1
    out["low"] = out["open"] - 1
    out["volume_base"] = np.arange(n) * 0.5
    return out


@pytest.mark.slow  # one Parquet transaction per step, examples from the hypothesis profile
@given(
    st.lists(st.tuples(st.integers(0, 299), st.integers(1, 120)), min_size=1, max_size=6),
)
def test_overlapping_pieces_in_any_order_equal_one_write(pieces) -> None:
    full = bars(300)
    interval = 7 * 60 * MINUTE
    with tempfile.TemporaryDirectory() as root:
        cat = Catalog(root)
        covered = np.zeros(len(full), dtype=bool)
        for start, length in pieces:
            part = full[start : start + length]
            cat.write("bars", "x", "S", part, source="p", interval_ns=interval)
            covered[start : start + length] = True
        got = cat.read("bars", "x", "S", interval_ns=interval)
        expected = full[covered]
        for name in full.dtype.names:
            np.testing.assert_array_equal(got[name], expected[name])
        assert cat.last_ts_ns("bars", "x", "S", interval) == int(expected["ts_ns"][-1])


@pytest.mark.slow
@given(st.integers(1, 199), st.integers(0, 5))
@example(61, 1)  # a re-download starting inside the burst of rows 50..59 (was refused)
@example(55, 0)  # a download cut inside the burst, resumed from its timestamp
@example(55, 3)
def test_trades_resume_from_last_timestamp(cut, back) -> None:
    rng = np.random.default_rng(3)
    trades = np.zeros(200, dtype=dtypes.TRADE_DTYPE)
    trades["ts_ns"] = T0 + np.sort(rng.integers(0, 3 * DAY, 200)) // 10 * 10  # some repeats
    trades["ts_ns"][50:60] = trades["ts_ns"][50]  # a burst in one millisecond
    trades["price"] = 100.0 + np.arange(200)
    trades["qty_base"] = 1.0
    with tempfile.TemporaryDirectory() as root:
        cat = Catalog(root)
        cat.write("trades", "x", "S", trades[:cut], source="a")
        last = cat.last_ts_ns("trades", "x", "S")
        # a resumed download restarts at the last stored timestamp (inclusive), or `back`
        # rows earlier still (overlapping re-download)
        first_new = max(int(np.searchsorted(trades["ts_ns"], last, "left")) - back, 0)
        cat.write("trades", "x", "S", trades[first_new:], source="b")
        got = cat.read("trades", "x", "S")
        np.testing.assert_array_equal(got["price"], trades["price"])
