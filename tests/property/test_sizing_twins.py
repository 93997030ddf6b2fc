"""The Python sizing helpers (``backtester.sizing``, called by ``ctx`` without numba's dispatch
cost) and their numba twins (``backtester.sizing_nb``, called by jitted strategies and the
signal path) give the same number for every amount a double holds to the step (up to 10^12
steps; beyond that Python's correctly rounded ``round`` and numpy's scaled ``np.round`` may
differ by one unit in the last place, which the test allows): one rounding rule on two paths."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from backtester.sizing import round_price, round_to_lot
from backtester.sizing_nb import round_price_nb, round_to_lot_nb

STEPS = st.sampled_from([0.0, 1e-8, 0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 100.0])
AMOUNTS = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False, allow_infinity=False)


def assert_same(python: float, numba: float, amount: float, step: float) -> None:
    if step == 0.0 or abs(amount) / step <= 1e12:
        assert python == numba
    else:
        assert abs(python - numba) <= np.spacing(max(abs(python), abs(numba)))


@given(AMOUNTS, STEPS)
def test_round_to_lot_twins_agree(contracts, lot):
    assert_same(round_to_lot(contracts, lot), round_to_lot_nb(contracts, lot), contracts, lot)


@given(AMOUNTS, STEPS, st.sampled_from([-1, 0, 1]))
def test_round_price_twins_agree(price, tick, direction):
    python, numba = round_price(price, tick, direction), round_price_nb(price, tick, direction)
    assert_same(python, numba, price, tick)


def test_twins_round_the_tick_boundaries_alike():
    # hand cases: 49,873.27 on a 0.1 tick is 49,873.3 to nearest/up and 49,873.2 down;
    # 2.5 lots of 1 truncate to 2 (a size is never rounded up)
    for direction, expected in ((0, 49_873.3), (1, 49_873.3), (-1, 49_873.2)):
        assert round_price(49_873.27, 0.1, direction) == expected
        assert round_price_nb(49_873.27, 0.1, direction) == expected
    assert round_to_lot(2.5, 1.0) == round_to_lot_nb(2.5, 1.0) == 2.0
    assert round_to_lot(-2.5, 1.0) == round_to_lot_nb(-2.5, 1.0) == -2.0
