"""The bar and trade a strategy callback receives: a view of the current stream row.

``on_bar(ctx, bar)`` runs once per bar, so reading ``bar["close"]`` must be cheap. A numpy
record (``np.void``) costs ~0.4 µs per field read, more than the engine's whole per-bar work;
:class:`RowView` reads from plain Python lists of a block of rows (~20 ns a field) that are
converted from the numpy columns a block at a time, so the memory they take does not grow
with the replay. A column is converted when first read in a block: a strategy reading only
the close pays for the close (converting the six fields cost ~0.3 µs per bar).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["RowView"]

BLOCK_ROWS = 16_384


class RowView:
    """The current row of a stream (a BAR_DTYPE or TRADE_DTYPE array), read by field name.

    ``view["close"]`` gives a Python float (``ts_ns`` an int), exactly the value of the numpy
    row. The view is **moved** to the next row after the callback returns: keep values, or
    ``view.record()`` (a numpy record copy), not the view itself.
    """

    __slots__ = ("_array", "_columns", "_end", "_names", "_row", "_start")

    def __init__(self, array: npt.NDArray[np.void]) -> None:
        self._array = array
        self._names = tuple(array.dtype.names or ())
        self._columns: dict[str, list[float | int]] = {}
        self._row = 0
        self._start = 0
        self._end = 0

    def move(self, row: int) -> RowView:
        """Point the view at ``row`` of the stream (converting the next block if needed)."""
        if not self._start <= row < self._end:
            start = row - row % BLOCK_ROWS
            self._columns = {}  # filled field by field as they are read (_column)
            self._start, self._end = start, min(start + BLOCK_ROWS, len(self._array))
        self._row = row - self._start
        return self

    def block(self, row: int) -> tuple[int, int]:
        """Move to ``row`` and return the rows ``(start, end)`` of its block.

        Within the block, the driver's per-event loop then sets ``_row = row - start`` itself
        (a store, where a call to :meth:`move` costs ~0.1 µs a bar or tick).
        """
        self.move(row)
        return self._start, self._end

    def __getitem__(self, name: str) -> float | int:
        try:
            return self._columns[name][self._row]
        except KeyError:
            return self._column(name)[self._row]

    def _column(self, name: str) -> list[float | int]:
        """Convert field ``name`` of the current block to a Python list (first read)."""
        if name not in self._names:
            raise KeyError(f"{name!r}: not a field of this row (fields: {self._names})")
        column: list[float | int] = self._array[name][self._start : self._end].tolist()
        self._columns[name] = column
        return column

    def record(self) -> np.void:
        """Return a copy of the row as a numpy record (stays valid after the callback)."""
        row: np.void = self._array[self._start + self._row].copy()
        return row

    @property
    def row(self) -> int:
        """Index of the row in the replayed stream."""
        return self._start + self._row

    def keys(self) -> tuple[str, ...]:
        """Field names."""
        return self._names

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={self[n]!r}" for n in self._names)
        return f"RowView({fields})"
