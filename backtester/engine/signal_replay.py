"""The signal path's engine entry point: replay a run with the signal rule at every bar close.

:func:`replay_signals` is what ``backtest_signals`` runs (through ``backtest``): the signal
kernel (:func:`~backtester.engine.signals_nb.run_signals_nb`) where it applies — one instrument
on bars, no trade ticks, no ADL/clawback events, not chunked — else the general jitted loop with
:func:`signal_on_bar_nb` as its ``on_bar`` (:mod:`backtester.engine.jit_replay`). Both place
the same market order (:func:`~backtester.engine.signals_nb.signal_market_nb`) at the same
instant, so their records are byte-identical (``tests/unit/engine/test_signal_kernel.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from numba import njit

from backtester.engine.jit_replay import Dispatcher, replay_kernel
from backtester.engine.order_entry_nb import ORDER_HEADROOM
from backtester.engine.signals_nb import run_signals_nb, signal_market_nb
from backtester.parameters import class_parameters, set_parameters

if TYPE_CHECKING:
    from backtester.engine.driver import Run

__all__ = ["SignalRule", "replay_signals", "signal_kernel", "signal_kernel_applies"]

# rows reserved in each small record buffer before a kernel run (~100 events per head-room
# check; the pages are only touched when written)
SMALL_BUFFER_ROWS = 2048

# (amount, close_long, close_short, unit): the arrays of signals_nb.signal_delta_nb
Signals = tuple[
    npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.int64]
]


@njit(cache=True)
def signal_on_bar_nb(ctx: Any, signals: Signals, instrument: int, row: int) -> None:
    """Place the signal rule's market order at the close of bar row ``row``.

    The general loop's ``on_bar`` (``ctx``: the EngineState StructRef). ``row`` is the row of
    the replayed bar stream; ``signals[3][1]`` is the first bar's row, so the bar's number is
    their difference.
    """
    signal_market_nb(ctx, instrument, signals, row - signals[3][1])


class SignalRule:
    """The signal arrays of one backtest, as the strategy ``backtest`` runs.

    Parameters
    ----------
    **params
        ``amount`` (target per bar, NaN: keep), ``close_long`` / ``close_short`` (exits),
        ``entries`` (bars with an amount, when the caller counted them; -1: count them),
        ``unit`` (a ``signals_nb.UNIT_*``), ``replay`` (``"auto"`` or ``"events"``).
    """

    amount: npt.NDArray[np.float64] = np.zeros(0)
    close_long: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    close_short: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    entries = -1
    unit = 0
    replay = "auto"

    def __init__(self, **params: object) -> None:
        set_parameters(self, params)

    @classmethod
    def parameters(cls) -> dict[str, object]:
        """Return the parameter names and their defaults."""
        return class_parameters(cls, object)

    @classmethod
    def subscribed(cls) -> set[str]:
        """Return the callbacks the rule stands for: it acts at bar closes."""
        return {"on_bar"}

    def signals(self) -> Signals:
        """Return the arrays of ``signal_delta_nb``.

        The first bar's row is 0: one instrument, its bars first in the replayed stream.
        """
        unit = np.array([int(self.unit), 0], dtype=np.int64)
        return (self.amount, self.close_long, self.close_short, unit)

    def orders_at_most(self) -> int:
        """Return the most orders the rule can place: one per bar with a signal."""
        amounts = self.entries
        if amounts < 0:
            amounts = len(self.amount) - int(np.count_nonzero(np.isnan(self.amount)))
        return (
            amounts
            + int(np.count_nonzero(self.close_long))
            + int(np.count_nonzero(self.close_short))
        )


def signal_kernel_applies(run: Run) -> bool:
    """Return True when the signal kernel can replay ``run``.

    One instrument, bars, no trades, no ADL/clawback scenario events, not chunked.
    """
    return (
        run.n_instruments == 1
        and len(run.trades) == 0
        and len(run.deleverage) == 0
        and run._chunks is None  # the driver's chunk iterator: None for an in-memory replay
    )


def signal_kernel(run: Run, rule: SignalRule) -> tuple[Dispatcher, tuple[Any, ...]]:
    """Return ``(kernel, arguments)`` replaying ``run`` with ``rule``.

    The signal kernel when it applies and ``rule.replay`` is ``"auto"``, else the general
    jitted loop with :func:`signal_on_bar_nb`.
    """
    signals = rule.signals()
    if rule.replay == "events" or not signal_kernel_applies(run):
        return replay_kernel({"on_bar": signal_on_bar_nb}, signals)
    # one order per signal bar at most, each filled once or liquidated: reserve the rows
    # instead of regrowing (and copying) the buffers a dozen times on a long run
    n = rule.orders_at_most()
    # and room in the small buffers (liquidations, settlements, ADL, funding payments): the
    # kernel checks the head-room once per ``free // need`` events, free being the smallest
    # buffer's, so 64 rows meant a check (and an integer division) every 3 events
    run.reserve(
        orders=n + ORDER_HEADROOM,
        fills=2 * n + 1024,
        ledger=4 * n + 2 * len(run.funding) + 4096,
        funding_payments=len(run.funding) + SMALL_BUFFER_ROWS,
        liquidations=SMALL_BUFFER_ROWS,
        settlements=SMALL_BUFFER_ROWS,
        adl=SMALL_BUFFER_ROWS,
    )
    return run_signals_nb, (signals, -1)


def replay_signals(run: Run, rule: SignalRule) -> None:
    """Replay ``run`` to its end with the signal rule (the kernel of :func:`signal_kernel`)."""
    kernel, arguments = signal_kernel(run, rule)
    run.run_kernel(kernel, arguments, rule.subscribed())
