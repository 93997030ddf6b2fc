"""``records_to_frame``: the pandas table of a record array, built column-wise (issue 15).

Each table is checked against one built row by row here, the plain way (each enum value
through its enum class, each instrument index through the list, each time through
``pd.to_datetime``): same columns, order, dtypes and values. The tables never share memory
with the records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtester import dtypes
from backtester.enums import LedgerKind, Liquidity, Side
from backtester.results import _ENUM_COLUMNS, records_to_frame

T0 = int(np.datetime64("2024-01-01T00:00", "ns").astype(np.int64))
SYMBOLS = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]


def row_by_row(records: np.ndarray, instruments: list[str] | None) -> pd.DataFrame:
    """The table built one value at a time."""
    frame = pd.DataFrame({name: records[name].copy() for name in records.dtype.names})
    for name in list(frame.columns):
        if name.startswith("ts") and name.endswith("_ns"):
            frame[name[:-3]] = pd.to_datetime(frame[name], unit="ns", utc=True)
        elif name in _ENUM_COLUMNS:
            enum_type = LedgerKind if records.dtype == dtypes.ADL_DTYPE and name == "kind" else None
            enum_type = enum_type or _ENUM_COLUMNS[name]
            frame[name] = [enum_type(int(v)).name for v in frame[name]]
        elif name == "instrument" and instruments is not None:
            frame[name] = [
                instruments[int(i)] if 0 <= i < len(instruments) else "" for i in frame[name]
            ]
    return frame


def filled(dtype: np.dtype, n: int, seed: int) -> np.ndarray:
    """``n`` records with every field set: enum fields cycling through their members,
    instrument indices in and out of the list, times a minute apart, numbers random."""
    rng = np.random.default_rng(seed)
    records = np.zeros(n, dtype)
    for name in dtype.names:
        if name.startswith("ts") and name.endswith("_ns"):
            records[name] = T0 + np.arange(n) * 60_000_000_000 + rng.integers(0, 1000, n)
        elif name in _ENUM_COLUMNS:
            enum_type = LedgerKind if dtype == dtypes.ADL_DTYPE and name == "kind" else None
            members = [int(m) for m in (enum_type or _ENUM_COLUMNS[name])]
            records[name] = np.resize(members, n)
        elif name == "instrument":
            records[name] = np.resize([0, 1, 2, -1, 1], n)
        elif np.issubdtype(dtype[name], np.floating):
            records[name] = rng.normal(0.0, 1e4, n)
            records[name][: min(n, 3)] = [np.nan, -0.0, np.inf][: min(n, 3)]
        elif np.issubdtype(dtype[name], np.integer) or dtype[name] == np.bool_:
            records[name] = rng.integers(0, 2, n).astype(dtype[name])
    return records


def assert_same_table(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.columns) == list(expected.columns)
    assert list(actual.dtypes) == list(expected.dtypes)
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)


@pytest.mark.parametrize("kind", sorted(dtypes.ALL_RECORD_DTYPES))
@pytest.mark.parametrize("n", [0, 1, 7, 40_000])
def test_every_record_kind_gives_the_row_by_row_table(kind, n):
    records = filled(dtypes.ALL_RECORD_DTYPES[kind], n, seed=len(kind) + n)
    for instruments in (SYMBOLS, None):
        assert_same_table(records_to_frame(records, instruments), row_by_row(records, instruments))


def test_equity_rows_bit_for_bit_and_not_shared():
    # the equity rows go through the blocked transpose (every field 8 bytes, packed): more
    # rows than one block, values with NaN, -0.0 and inf kept bit for bit
    records = filled(dtypes.EQUITY_DTYPE, 100_003, seed=5)
    frame = records_to_frame(records, SYMBOLS)
    for name in records.dtype.names:
        column = frame[name].to_numpy()
        assert column.dtype == records.dtype[name]
        assert column.tobytes() == np.ascontiguousarray(records[name]).tobytes(), name
        assert not np.shares_memory(column, records)
    assert frame["ts"].iloc[-1] == pd.Timestamp(int(records["ts_ns"][-1]), unit="ns", tz="UTC")
    before = records.copy()
    frame.loc[0, "balance_settle"] = 123.0
    assert records.tobytes() == before.tobytes()


def test_a_strided_slice_of_records_gives_its_rows():
    records = filled(dtypes.EQUITY_DTYPE, 1_000, seed=6)[::3]
    assert_same_table(records_to_frame(records), row_by_row(records, None))


def test_enum_names_of_fills():
    records = np.zeros(3, dtypes.FILL_DTYPE)
    records["side"] = [int(Side.BUY), int(Side.SELL), int(Side.BUY)]
    records["liquidity"] = [int(Liquidity.ADL), int(Liquidity.MAKER), int(Liquidity.LIQUIDATION)]
    frame = records_to_frame(records)
    assert frame["side"].tolist() == ["BUY", "SELL", "BUY"]
    assert frame["liquidity"].tolist() == ["ADL", "MAKER", "LIQUIDATION"]


def test_a_value_that_is_no_member_is_an_error_naming_the_column():
    records = np.zeros(2, dtypes.FILL_DTYPE)
    records["side"] = [int(Side.BUY), 7]
    with pytest.raises(ValueError, match="side: 7 is not a valid Side"):
        records_to_frame(records)
