"""Run.place packs its order rows with struct: the bytes must be numpy's own for the same values.

The expected bytes come from numpy's tuple assignment to a structured row (the way the rows
were written before), so a packer that put a field at the wrong offset, with the wrong width
or sign, or left padding non-zero, fails here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtester import dtypes
from backtester.engine.driver import _ORDER_ROW, _WORK_ROW, _row_struct

ORDER_VALUES = [
    # order id, instrument, created / updated (ns), type, side, TIF, reduce/post only, status,
    # reject reason, price, trigger, qty, filled, average fill, tag
    (7, 1, 1_600_000_000_123_456_789, 1_600_000_000_123_456_789, 1, -1, 2, True, False, 0, 0,
     math.nan, 101.5, 3.25, 0.0, math.nan, -(2**40)),
    (0, 0, 0, 0, 3, 1, 0, False, True, 0, 0, 99.75, math.nan, 1e-8, 0.0, math.nan, 2**62),
]  # fmt: skip
WORK_VALUES = [
    (0, 0.0, False, 12.5, 0.0, 3.0, 0.0, 0.0),
    (0, 0.0, False, 0.0, 0.0, 0.0, 0.015, 27_000.5),
]


def _numpy_bytes(dtype: np.dtype, values: tuple[object, ...]) -> bytes:
    rows = np.zeros(1, dtype=dtype)
    rows[0] = values
    return rows.tobytes()


@pytest.mark.parametrize("values", ORDER_VALUES)
def test_order_row_bytes_are_numpys(values: tuple[object, ...]) -> None:
    assert _ORDER_ROW.size == dtypes.ORDER_DTYPE.itemsize
    assert _ORDER_ROW.pack(*values) == _numpy_bytes(dtypes.ORDER_DTYPE, values)


@pytest.mark.parametrize("values", WORK_VALUES)
def test_work_row_bytes_are_numpys(values: tuple[object, ...]) -> None:
    assert _WORK_ROW.size == dtypes.ORDER_WORK_DTYPE.itemsize
    assert _WORK_ROW.pack(*values) == _numpy_bytes(dtypes.ORDER_WORK_DTYPE, values)


def test_pack_into_writes_the_row_in_place() -> None:
    """pack_into at row * size of the array's bytes is the row numpy reads back."""
    orders = np.zeros(3, dtype=dtypes.ORDER_DTYPE)
    _ORDER_ROW.pack_into(orders.view(np.uint8).data, 2 * _ORDER_ROW.size, *ORDER_VALUES[0])
    assert orders[2]["ts_created_ns"] == 1_600_000_000_123_456_789
    assert orders[2]["side"] == -1
    assert orders[2]["trigger_price"] == 101.5
    assert orders[2]["tag"] == -(2**40)
    assert orders[:2].tobytes() == bytes(2 * _ORDER_ROW.size)  # other rows untouched


def test_row_struct_refuses_an_unknown_field_type() -> None:
    with pytest.raises(KeyError):
        _row_struct(np.dtype([("a", "<f4")]))
