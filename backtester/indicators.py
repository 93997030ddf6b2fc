"""Indicators of the strategy context that cost O(1) per bar: ``ctx.sma`` and ``ctx.ema``.

Recomputing over the whole history on every call cost 707 s for 86k bars with one
``ctx.ema(50)`` per bar (issue 16). Here each (instrument, field, window/span) is computed once
per chunk of the replay for all of the chunk's bars, in one jitted pass
(:mod:`backtester.indicators_nb`), and a call reads the value at the bar that closed last: a
dictionary look-up and an array read. The value at a bar depends only on that bar and earlier
ones, so computing the chunk ahead reads nothing the strategy could not see.

Definitions (the usual ones; pandas ``rolling(w).mean()`` and ``ewm(span, adjust=False)``):

* SMA over ``w`` bars: ``(x[n-w+1] + … + x[n]) / w``, NaN while fewer than ``w`` bars closed.
  The window sum is a running sum with Neumaier compensation, so it agrees with a fresh sum of
  the window to within a few ulps — not necessarily bit for bit with ``window.mean()``, whose
  pairwise summation rounds differently.
* EMA with span ``s``: ``α = 2 / (s + 1)``, ``e[0] = x[0]``, ``e[n] = e[n-1] + α·(x[n] − e[n-1])``.

In a chunked replay the SMA reads the values leaving its window from the bars kept across
chunks, so it needs ``w <= history_bars`` (else ValueError naming ``history_bars``); the EMA
continues from its value at the end of the previous chunk. An EMA first read in a later chunk
(or not read during a whole chunk) is seeded with the first bar still kept in the history.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING, Any

import numpy as np

from backtester.indicators_nb import ema_nb, rolling_mean_nb

if TYPE_CHECKING:
    from backtester.engine.driver import Run

__all__ = ["Indicators"]

_SMA, _EMA = 0, 1


class Indicators:
    """Indicator values of one run, per (instrument, field, window/span) and chunk."""

    def __init__(self, run: Run) -> None:
        self._run = run
        # key -> (bars array of the chunk, first row of the instrument's block, values,
        #         bars counted from the run's start at the block's last row)
        self._cache: dict[tuple[int, str, float, int], tuple[Any, int, array[float], int]] = {}
        self._c_bar = run.positions["c_bar"]
        # c_bar + bar_count_offset counts from the instrument's first row in the first chunk
        # (its block starts after the earlier instruments' bars): that row is bar 0
        self._first_row = list(run._bar_starts)
        # the contexts' fast path, per instrument, of the close: window/span -> the values
        # indexed by the instrument's bar cursor ``c_bar`` itself (``values[c_bar]`` is the
        # value at the bar that closed last, NaN before the chunk's first bar closes), so a
        # call is one dict look-up, one cursor read and one array read (see _build)
        self.sma_close: list[dict[int, array[float]]] = [{} for _ in range(run.n_instruments)]
        self.ema_close: list[dict[float, array[float]]] = [{} for _ in range(run.n_instruments)]

    def new_chunk(self) -> None:
        """Forget the fast-path entries: the stream arrays were replaced.

        The contexts' fast-path entries refer to the old ones (the full cache keeps them for
        the EMA's continuation). Emptied in place: the contexts hold these dicts.
        """
        for sma in self.sma_close:
            sma.clear()
        for ema in self.ema_close:
            ema.clear()

    def sma(self, i: int, window: int, field: str) -> float:
        """Return the simple moving average of the last ``window`` values of ``field``.

        NaN while fewer values exist.
        """
        entry = self._cache.get((i, field, window, _SMA))
        if entry is None or entry[0] is not self._run.bars:
            entry = self._build(i, window, field, _SMA)
        k = self._c_bar.item(i) - entry[1]
        value = entry[2][k - 1] if k > 0 else math.nan
        closed = k + entry[1] + self._run.bar_count_offset[i] - self._first_row[i]
        if value != value and closed >= window:
            raise ValueError(
                f"window: {window} bars is more than the history kept in a chunked replay "
                "(history_bars); raise history_bars"
            )
        return value

    def ema(self, i: int, span: float, field: str) -> float:
        """Exponential moving average, α = 2/(span+1), seeded with the first value."""
        entry = self._cache.get((i, field, span, _EMA))
        if entry is None or entry[0] is not self._run.bars:
            entry = self._build(i, span, field, _EMA)
        k = self._c_bar.item(i) - entry[1]
        return entry[2][k - 1] if k > 0 else math.nan

    def _build(
        self, i: int, length: float, field: str, kind: int
    ) -> tuple[Any, int, array[float], int]:
        """Compute the indicator over instrument ``i``'s bars of the current chunk."""
        if kind == _SMA and not (isinstance(length, (int, np.integer)) and length > 0):
            raise ValueError(f"window: expected an integer > 0, got {length!r}")
        if kind == _EMA and not (isinstance(length, (int, float, np.number)) and length > 0):
            raise ValueError(f"span: expected a number > 0, got {length!r}")
        run = self._run
        bars = run.bars
        if field not in (bars.dtype.names or ()) or field == "ts_ns":
            names = [n for n in bars.dtype.names or () if n != "ts_ns"]
            raise ValueError(f"field: expected a bar field {names}, got {field!r}")
        start = run._bar_starts[i]
        end = int(run.positions[i]["e_bar"])
        x = np.ascontiguousarray(bars[field][start:end], dtype=np.float64)
        offset = run.bar_count_offset[i]
        key = (i, field, length, kind)
        if kind == _SMA:
            values = rolling_mean_nb(x, int(length))
        else:
            first, seed = 0, math.nan
            previous = self._cache.get(key)
            if previous is not None and len(previous[2]):
                # continue from the previous chunk's last value when its last bar is kept here
                j = previous[3] - start - offset  # row of the first bar after it
                if 0 <= j <= len(x):
                    first, seed = j, previous[2][-1]
            values = ema_nb(x, 2.0 / (float(length) + 1.0), first, seed)
        # a compact array of Python-readable doubles: indexing one costs ~25 ns against
        # ~140 ns for a numpy scalar read, which is most of a call at one call per bar
        entry = (bars, start, array("d", values.tobytes()), start + len(x) + offset)
        self._cache[key] = entry
        if field == "close":
            # start + 1 leading NaNs: the value of bar row r (closed when c_bar = r + 1) sits
            # at index r + 1, so the context indexes with the cursor as it is
            padded = array("d", [math.nan]) * (start + 1)
            padded.extend(entry[2])
            if kind == _SMA:
                self.sma_close[i][int(length)] = padded  # an integer: checked above
            else:
                self.ema_close[i][length] = padded
        return entry
