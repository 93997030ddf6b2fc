"""Signal path: ``backtest_signals(entries, exits, ...)`` from boolean arrays over the bars.

At the close of bar ``k``, ``entries[k]`` opens (or flips into) a position of ``contracts`` in
``direction`` and ``exits[k]`` closes it (an exit wins over an entry on the same bar). The orders
are market orders filled at the next bar's open, exactly as a Strategy placing them in
``on_bar`` would, so both paths give identical trades. The signals are read by a jitted
``on_bar`` inside the replay loop (the jit path), so a run costs no Python per bar.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from backtester.checks import check_positive
from backtester.data.market import MarketData
from backtester.engine.backtest import backtest
from backtester.engine.order_entry_nb import ORDER_HEADROOM
from backtester.engine.signals_nb import run_signals_nb
from backtester.jit import JitStrategy, market
from backtester.results import Result
from backtester.swap.contract import ContractSpec

__all__ = ["backtest_signals"]


@njit(cache=True)
def signal_on_bar_nb(ctx, signals, instrument, row) -> None:
    """At the close of bar ``k``: an exit closes the position, else an entry goes to the
    target size (``direction · contracts``), both by market order."""
    entries, exits, size = signals
    k = row - np.int64(size[2])
    position = ctx.positions[instrument]["contracts"]
    if exits[k]:
        if position != 0.0:
            market(ctx, instrument, -position)
    elif entries[k]:
        target = size[1] * size[0]
        if position != target:
            market(ctx, instrument, target - position)


class _Signals(JitStrategy):
    """Reads the signal arrays at each bar close, inside the jitted loop."""

    on_bar = signal_on_bar_nb
    entries: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    exits: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    contracts = 1.0
    direction = 1
    replay = "auto"

    def replay_kernel(self, run: Any) -> Any:
        """The signal kernel (:func:`~backtester.engine.signals_nb.run_signals_nb`) when the
        run is one instrument on bars without ADL/clawback events, else None (general loop)."""
        if self.replay == "events" or not signal_kernel_applies(run):
            return None
        # one order per signal bar at most, each filled once or liquidated: reserve the rows
        # instead of regrowing (and copying) the buffers a dozen times on a long run
        n = int(np.count_nonzero(self.entries)) + int(np.count_nonzero(self.exits))
        run.reserve(
            orders=n + ORDER_HEADROOM,
            fills=2 * n + 1024,
            ledger=4 * n + 2 * len(run.funding) + 4096,
        )
        size = np.array([float(self.contracts), float(self.direction)])
        return run_signals_nb, (self.entries, self.exits, size)

    def make_state(self) -> tuple[Any, ...]:
        # the first bar's row is 0: one instrument, its bars first in the replayed stream
        size = np.array([float(self.contracts), float(self.direction), 0.0])
        return (self.entries, self.exits, size)


def signal_kernel_applies(run: Any) -> bool:
    """True when the signal kernel can replay ``run`` (a Run): one instrument, bars, no
    trades, no ADL/clawback scenario events, not chunked."""
    return (
        run.n_instruments == 1
        and len(run.trades) == 0
        and len(run.deleverage) == 0
        and run._chunks is None
    )


def _as_signal(values: Any, n: int, name: str) -> npt.NDArray[np.bool_]:
    array = np.asarray(values)
    if array.dtype != np.bool_:
        raise TypeError(f"{name}: expected a boolean array, got dtype {array.dtype}")
    if array.ndim not in (1, 2) or array.shape[0] != n:
        raise ValueError(
            f"{name}: expected shape ({n},) or ({n}, columns) (one row per bar), got {array.shape}"
        )
    return array


def backtest_signals(
    entries: npt.ArrayLike,
    exits: npt.ArrayLike,
    data: MarketData,
    contract: ContractSpec | str,
    *,
    initial_balance: float,
    contracts: float = 1.0,
    direction: str = "long",
    leverage: float = 10.0,
    margin_mode: str = "isolated",
    replay: str = "auto",
    sl_stop: Any = None,
    tp_stop: Any = None,
    **options: Any,
) -> Result | list[Result]:
    """Backtest boolean entry/exit signals over ``data.bars``.

    Parameters
    ----------
    entries, exits
        Boolean arrays with one row per bar of ``data.bars``, acted on at that bar's close:
        shape ``(bars,)`` for one backtest, or ``(bars, columns)`` for a sweep — one backtest
        per column (e.g. one per parameter set of the indicator that made the signals), on the
        same data and compiled loop. A 1-D array is broadcast against a 2-D one.
    data, contract, initial_balance, leverage, margin_mode, **options
        As for :func:`backtester.engine.backtest.backtest`.
    contracts
        Position size opened on an entry, in contracts (> 0).
    direction
        ``"long"`` or ``"short"``.
    replay
        ``"auto"`` (default): the signal kernel (:mod:`backtester.engine.signals_nb`) where it
        applies — one instrument on bars, no trade ticks, no ADL/clawback events — else the
        general jitted loop; ``"events"``: always the general loop. Both give identical
        records; ``"events"`` exists to check that.
    sl_stop, tp_stop
        Stop-loss / take-profit of each entry as a fraction of its fill price (a number, or
        one per bar read at the entry's bar; NaN: none), placed as reduce-only exits when the
        entry fills, one cancelling the other. With either, the run goes through the Python
        driver (:mod:`backtester.signal_exits`): 1-D signals only.

    Returns
    -------
    Result or list of Result
        As :func:`~backtester.engine.backtest.backtest` (one per column for 2-D signals);
        ``config["strategy"]`` names the signal path.
    """
    n = len(data.bars)
    if direction not in ("long", "short"):
        raise ValueError(f"direction: expected 'long' or 'short', got {direction!r}")
    entry_array = _as_signal(entries, n, "entries")
    exit_array = _as_signal(exits, n, "exits")
    size = check_positive(contracts, "contracts")
    sign = 1 if direction == "long" else -1
    if replay not in ("auto", "events"):
        raise ValueError(f"replay: expected 'auto' or 'events', got {replay!r}")
    if sl_stop is not None or tp_stop is not None:
        from backtester.signal_exits import SignalsWithExits, as_stop_array

        if entry_array.ndim != 1 or exit_array.ndim != 1:
            raise ValueError("sl_stop, tp_stop: need 1-D entries and exits (one backtest)")
        params = {
            "entries": entry_array, "exits": exit_array,
            "sl_stop": as_stop_array(sl_stop, n, "sl_stop"),
            "tp_stop": as_stop_array(tp_stop, n, "tp_stop"),
            "contracts": size, "direction": sign,
        }  # fmt: skip
        return backtest(
            SignalsWithExits, data, contract, initial_balance=initial_balance,
            leverage=leverage, margin_mode=margin_mode, params=params, **options,
        )  # fmt: skip

    def run(entry_column: npt.NDArray[np.bool_], exit_column: npt.NDArray[np.bool_]) -> Result:
        params = {
            "entries": np.ascontiguousarray(entry_column),
            "exits": np.ascontiguousarray(exit_column),
            "contracts": size,
            "direction": sign,
            "replay": replay,
        }
        return backtest(
            _Signals,
            data,
            contract,
            initial_balance=initial_balance,
            leverage=leverage,
            margin_mode=margin_mode,
            params=params,
            **options,
        )

    if entry_array.ndim == 1 and exit_array.ndim == 1:
        return run(entry_array, exit_array)
    columns = {a.shape[1] for a in (entry_array, exit_array) if a.ndim == 2}
    if len(columns) != 1:
        raise ValueError(
            f"entries, exits: 2-D signals need the same number of columns, got "
            f"{entry_array.shape} and {exit_array.shape}"
        )
    (n_columns,) = columns
    entry_2d = entry_array if entry_array.ndim == 2 else entry_array[:, None]
    exit_2d = exit_array if exit_array.ndim == 2 else exit_array[:, None]
    return [
        run(entry_2d[:, min(k, entry_2d.shape[1] - 1)], exit_2d[:, min(k, exit_2d.shape[1] - 1)])
        for k in range(n_columns)
    ]
