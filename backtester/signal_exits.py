"""Signals with exits: ``backtest_signals(..., sl_stop=, tp_stop=, tsl_stop=)``.

An entry signal opens the position with a market order at the next bar's open, as on the plain
signal path, and the stop-loss / take-profit of the entry (fractions of its fill price, one
value or one per bar read at the entry's bar) are placed when it fills, one cancelling the
other (:mod:`backtester.protection`). ``tsl_stop`` (vectorbt's name) is a trailing stop, a
fraction below the highest price since the fill for a long (above the lowest for a short),
instead of the fixed ``sl_stop``; an entry with both is refused. Exits need that fill-time
step, which the signal kernel does not have: these runs go through the Python driver (about a
microsecond per bar instead of nanoseconds); without sl/tp this strategy gives the kernel's
records (a test checks it).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from backtester.strategy import Context, Strategy

if TYPE_CHECKING:
    from backtester.engine.rows import RowView

__all__ = ["SignalsWithExits", "as_stop_array"]


def as_stop_array(values: Any, n: int, name: str) -> npt.NDArray[np.float64]:
    """Return ``values`` (None, a number or one per bar) as n fractions (NaN: no exit)."""
    if values is None:
        return np.full(n, np.nan)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(
            f"{name}: expected a number or shape ({n},) (one per bar), got {array.shape}"
        )
    bad = np.flatnonzero(~np.isnan(array) & ~(array > 0))
    if len(bad):
        raise ValueError(
            f"{name}: expected fractions > 0 of the fill price (NaN: none), got "
            f"{float(array[bad[0]])!r} at bar {bad[0]}"
        )
    return array


class SignalsWithExits(Strategy):
    """The signal path's rule with per-entry stop-loss / take-profit fractions.

    The rule of :func:`~backtester.engine.signals_nb.signal_delta_nb`, in contracts: a long
    (short) position is closed on ``close_long`` (``close_short``), then a finite ``amount``
    sets the target position; the orders that open or add to a position carry the exits.
    """

    amount: npt.NDArray[np.float64] = np.zeros(0)
    close_long: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    close_short: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    sl_stop: npt.NDArray[np.float64] = np.zeros(0)
    tp_stop: npt.NDArray[np.float64] = np.zeros(0)
    tsl_stop: npt.NDArray[np.float64] = np.zeros(0)

    def on_start(self, ctx: Context) -> None:
        """Start counting the bars (``k``: the bar's number, the signal arrays' row)."""
        self.k = -1

    def on_bar(self, ctx: Context, bar: RowView) -> None:
        """Act on bar ``k``'s signals at its close."""
        self.k += 1
        k = self.k
        position = ctx.position
        want = math.nan
        if (self.close_long[k] and position > 0.0) or (self.close_short[k] and position < 0.0):
            want = 0.0
        amount = float(self.amount[k])
        if not math.isnan(amount):
            want = amount
        if math.isnan(want) or want == position:
            return
        if want == 0.0:
            ctx.market(-position)
            return
        sl, tp = float(self.sl_stop[k]), float(self.tp_stop[k])
        tsl = float(self.tsl_stop[k]) if len(self.tsl_stop) else math.nan
        ctx.market(
            want - position,
            stop_loss_fraction=None if math.isnan(sl) else sl,
            take_profit_fraction=None if math.isnan(tp) else tp,
            trailing_stop_fraction=None if math.isnan(tsl) else tsl,
        )
