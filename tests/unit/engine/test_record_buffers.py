"""The record-buffer pool: zeroed buffers, memory back to the pool when the last view is gone,
reused memory zeroed again, the idle cap, and byte-identical records on recycled memory."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from backtester import backtest_signals, dtypes
from backtester.data.market import MarketData
from backtester.engine import buffers

ROWS = 100_000  # 7.2 MB of equity rows: pooled (>= 1 MiB)


@pytest.fixture(autouse=True)
def empty_pool():
    buffers.release_pool()
    yield
    buffers.release_pool()


def test_a_buffer_is_zeroed_writable_and_of_the_dtype():
    array = buffers.record_buffer(ROWS, dtypes.EQUITY_DTYPE)
    assert array.dtype == dtypes.EQUITY_DTYPE
    assert array.shape == (ROWS,)
    assert array.flags.writeable
    assert array.flags.c_contiguous
    assert array.flags.aligned
    assert not array.view(np.uint8).any()


def test_memory_returns_when_the_last_view_is_gone():
    array = buffers.record_buffer(ROWS, dtypes.EQUITY_DTYPE)
    rows = array[:10]  # what a Result holds: a trimmed view
    del array
    assert buffers.pooled_bytes() == 0  # the view keeps the block in use
    del rows
    assert buffers.pooled_bytes() == ROWS * dtypes.EQUITY_DTYPE.itemsize


def test_reused_memory_is_zeroed_again():
    array = buffers.record_buffer(ROWS, dtypes.FILL_DTYPE)
    array.view(np.uint8)[:] = 0xFF
    address = array.__array_interface__["data"][0]
    del array
    again = buffers.record_buffer(ROWS, dtypes.FILL_DTYPE)
    assert again.__array_interface__["data"][0] == address  # the same block
    assert not again.view(np.uint8).any()


def test_unzeroed_reuse_only_for_a_dtype_without_padding():
    # zeroed=False (the equity buffer, whose counted rows are written whole): a reused block
    # keeps its bytes for a packed dtype, and is zeroed anyway where padding bytes exist
    packed = dtypes.EQUITY_DTYPE
    assert packed.itemsize == sum(f[0].itemsize for f in packed.fields.values())
    padded = dtypes.FILL_DTYPE
    assert padded.itemsize > sum(f[0].itemsize for f in padded.fields.values())
    fresh = buffers.record_buffer(ROWS, packed, zeroed=False)
    assert not fresh.view(np.uint8).any()  # new memory is zero
    for dtype, zeroed in ((packed, False), (padded, True)):
        array = buffers.record_buffer(ROWS, dtype)
        array.view(np.uint8)[:] = 0xAB
        del array
        again = buffers.record_buffer(ROWS, dtype, zeroed=False)
        if zeroed:
            assert not again.view(np.uint8).any()
        else:
            assert np.all(again.view(np.uint8) == 0xAB)
        del again


def test_a_block_serves_sizes_up_to_twice_smaller_only():
    del_me = buffers.record_buffer(4 * ROWS, dtypes.EQUITY_DTYPE)
    big = del_me.__array_interface__["data"][0]
    del del_me
    small = buffers.record_buffer(ROWS, dtypes.EQUITY_DTYPE)  # 4x smaller: a new block
    assert small.__array_interface__["data"][0] != big
    assert buffers.pooled_bytes() == 4 * ROWS * dtypes.EQUITY_DTYPE.itemsize


def test_small_buffers_are_not_pooled():
    array = buffers.record_buffer(100, dtypes.EQUITY_DTYPE)
    assert array.nbytes < buffers.POOL_MIN_BYTES
    del array
    assert buffers.pooled_bytes() == 0


def test_idle_memory_is_capped(monkeypatch):
    monkeypatch.setattr(buffers, "POOL_MAX_BYTES", 3 * ROWS * dtypes.EQUITY_DTYPE.itemsize)
    arrays = [buffers.record_buffer(ROWS, dtypes.EQUITY_DTYPE) for _ in range(5)]
    del arrays
    assert buffers.pooled_bytes() == 3 * ROWS * dtypes.EQUITY_DTYPE.itemsize
    assert buffers.release_pool() == 3 * ROWS * dtypes.EQUITY_DTYPE.itemsize
    assert buffers.pooled_bytes() == 0


def test_records_on_recycled_memory_are_byte_identical():
    """A second run on the first run's recycled (and poisoned) memory writes the same bytes,
    padding included: the pool zeroes what it hands out again."""
    n = 150_000
    minute = 60_000_000_000
    rng = np.random.default_rng(3)
    close = np.round(40_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n))), 1)
    rows = np.zeros(n, dtypes.BAR_DTYPE)
    rows["ts_ns"] = 1_704_067_200_000_000_000 + np.arange(n) * minute
    rows["open"] = np.r_[close[0], close[:-1]]
    rows["close"] = close
    rows["high"] = np.maximum(rows["open"], close) + 5.0
    rows["low"] = np.minimum(rows["open"], close) - 5.0
    index = np.zeros(n, dtypes.PRICE_DTYPE)
    index["ts_ns"] = rows["ts_ns"] + minute
    index["price"] = close * (1 - 1e-4)
    funding = np.zeros(n // 480, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = rows["ts_ns"][0] + (np.arange(n // 480) + 1) * 480 * minute
    funding["funding_rate"] = 1e-4
    bars = MarketData(
        "BTC-USDT-SWAP", bars=rows, bar_interval_ns=minute, index=index, funding=funding
    )
    sma = np.convolve(close, np.ones(30) / 30)[: len(close)]
    d = np.diff(np.sign(close - sma))
    entries, exits = np.r_[False, d > 0], np.r_[False, d < 0]

    def run():
        return backtest_signals(entries, exits, bars, "okx:BTC-USDT-SWAP", initial_balance=1e5)

    first = run()
    expected = {name: array.tobytes() for name, array in first.records.items()}
    assert len(first.records["fills"]) > 10_000
    del first
    returned = buffers.pooled_bytes()
    assert returned > 0  # the first run's buffers came back
    for block in buffers._idle:
        block[:] = 0xAB  # poison: stale bytes anywhere would show
    second = run()
    assert buffers.pooled_bytes() < returned  # the second run took recycled blocks
    for name, array in second.records.items():
        assert array.tobytes() == expected[name], name


def test_a_buffer_held_in_a_reference_cycle_returns_at_collection():
    class Holder:
        pass

    holder = Holder()
    holder.self = holder  # a cycle: only the cyclic collector frees it
    holder.rows = buffers.record_buffer(ROWS, dtypes.EQUITY_DTYPE)[:5]
    del holder
    assert buffers.pooled_bytes() == 0
    gc.collect()
    assert buffers.pooled_bytes() == ROWS * dtypes.EQUITY_DTYPE.itemsize
