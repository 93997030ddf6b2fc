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

    def make_state(self) -> tuple[Any, ...]:
        # the first bar's row is 0: one instrument, its bars first in the replayed stream
        size = np.array([float(self.contracts), float(self.direction), 0.0])
        return (self.entries, self.exits, size)


def _as_signal(values: Any, n: int, name: str) -> npt.NDArray[np.bool_]:
    array = np.asarray(values)
    if array.dtype != np.bool_:
        raise TypeError(f"{name}: expected a boolean array, got dtype {array.dtype}")
    if array.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},) (one value per bar), got {array.shape}")
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
    **options: Any,
) -> Result:
    """Backtest boolean entry/exit signals over ``data.bars``.

    Parameters
    ----------
    entries, exits
        Boolean arrays, one value per bar of ``data.bars``; acted on at that bar's close.
    data, contract, initial_balance, leverage, margin_mode, **options
        As for :func:`backtester.engine.backtest.backtest`.
    contracts
        Position size opened on an entry, in contracts (> 0).
    direction
        ``"long"`` or ``"short"``.

    Returns
    -------
    Result
        As :func:`~backtester.engine.backtest.backtest`; ``config["strategy"]`` names the
        signal path.
    """
    n = len(data.bars)
    if direction not in ("long", "short"):
        raise ValueError(f"direction: expected 'long' or 'short', got {direction!r}")
    params = {
        "entries": _as_signal(entries, n, "entries"),
        "exits": _as_signal(exits, n, "exits"),
        "contracts": check_positive(contracts, "contracts"),
        "direction": 1 if direction == "long" else -1,
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
