"""Record buffers: zeroed structured arrays for the engine's output, recycled between runs.

Why recycle: a run writes its equity rows (72 bytes per bar) and other records into memory it
has just allocated, and on Linux every first touch of a 4 KiB page is a page fault: measured at
~1.8 µs per page on the project's VM, ~32 ns per equity row, more than the replay's own work
per bar (a 1M-bar signal run: 51 ms with an equity row per bar, 20 ms with hourly rows).
numpy's transparent-huge-page advice would make the faults rarer but stalls on page compaction
once memory is fragmented, as it is after a few runs (measured 2.3× slower), so it is switched
off for these buffers. A sweep runs the same shapes again and again: the memory of a buffer
whose arrays are all gone returns to a small pool, and the next run of a similar size gets it
already mapped, zeroed again (a memset runs at memory speed).

How: a buffer is a view of a pooled raw block through a ``memoryview``, so every array derived
from it (the record views a :class:`~backtester.results.Result` holds, numba's references)
keeps that view alive; a ``weakref.finalize`` on the view returns the block when the last of
them is gone. The pool keeps at most :data:`POOL_MAX_BYTES` of idle blocks (released with
:func:`release_pool`); buffers below :data:`POOL_MIN_BYTES` are plain allocations.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque

import numpy as np
import numpy.typing as npt

POOL_MIN_BYTES = 1 << 20
"""Buffers smaller than this (1 MiB) are not pooled: their page faults cost little."""

POOL_MAX_BYTES = 1 << 29
"""Idle memory the pool keeps at most (512 MiB); the least recently freed blocks go first."""

_lock = threading.Lock()
_idle: list[np.ndarray] = []  # raw uint8 blocks, most recently freed last (under _lock)
# Blocks given back and not yet in _idle. A finalizer runs wherever the last reference goes,
# possibly inside the garbage collector while this module holds _lock (a cycle collected on an
# allocation there): it only appends here (atomic, no lock), and the holders of _lock move
# the blocks over.
_returned: deque[np.ndarray] = deque()


def _unadvised_zeros(nbytes: int) -> np.ndarray:
    """Return ``np.zeros(nbytes, uint8)`` without numpy's transparent-huge-page advice.

    See the module notes for why.
    """
    core = getattr(np, "_core", None) or np.core
    set_advice = getattr(core.multiarray, "_set_madvise_hugepage", None)
    if set_advice is None:
        return np.zeros(nbytes, dtype=np.uint8)
    previous = set_advice(False)
    try:
        return np.zeros(nbytes, dtype=np.uint8)
    finally:
        set_advice(previous)


def _collect_returned() -> None:
    """Move the given-back blocks to the idle list and enforce the cap (with _lock held)."""
    while _returned:
        _idle.append(_returned.popleft())
    total = sum(len(b) for b in _idle)
    while _idle and total > POOL_MAX_BYTES:
        total -= len(_idle.pop(0))


def _take_block(nbytes: int) -> tuple[np.ndarray, bool]:
    """Return an idle block of ``nbytes`` to ``2 * nbytes`` (the smallest such), or a new one.

    Also whether it was reused (then it holds old bytes).
    """
    with _lock:
        _collect_returned()
        best = -1
        for k, block in enumerate(_idle):
            if nbytes <= len(block) <= 2 * nbytes and (best < 0 or len(block) < len(_idle[best])):
                best = k
        if best >= 0:
            return _idle.pop(best), True
    return _unadvised_zeros(nbytes), False


def _give_back(block: np.ndarray) -> None:
    _returned.append(block)


def release_pool() -> int:
    """Drop every idle block (returns the bytes released); buffers in use are unaffected."""
    with _lock:
        _collect_returned()
        total = sum(len(b) for b in _idle)
        _idle.clear()
    return total


def pooled_bytes() -> int:
    """Bytes of idle memory the pool holds now."""
    with _lock:
        _collect_returned()
        return sum(len(b) for b in _idle)


def record_buffer(rows: int, dtype: np.dtype, *, zeroed: bool = True) -> npt.NDArray[np.void]:
    """Return a zeroed array of ``rows`` records of ``dtype`` (like ``np.zeros``).

    Its memory is taken from the pool when at least 1 MiB is asked for (see the module notes).
    With ``zeroed=False`` a reused block keeps its old bytes (the memset of a 1 M-row equity
    buffer is ~2 ms of a signal run), for a caller that writes every field of each row before
    it is read; honoured only for a dtype without padding bytes (those must stay zero, see
    :class:`~backtester.results.RecordStore`).
    """
    dtype = np.dtype(dtype)
    nbytes = int(rows) * dtype.itemsize
    if nbytes < POOL_MIN_BYTES:
        return _unadvised_zeros(nbytes).view(dtype)
    block, reused = _take_block(nbytes)
    fields = (dtype.fields or {}).values()
    packed = dtype.fields is None or dtype.itemsize == sum(field[0].itemsize for field in fields)
    if reused and (zeroed or not packed):
        block[:nbytes] = 0
    view = block.data[:nbytes]
    array = np.frombuffer(view, dtype=dtype)
    weakref.finalize(array, _give_back, block)
    return array
