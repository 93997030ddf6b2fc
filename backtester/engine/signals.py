"""Signal path: ``backtest_signals(entries, exits, ...)`` from boolean arrays over the bars.

At the close of bar ``k``, ``entries[k]`` opens (or flips into) a position of ``contracts`` in
``direction`` and ``exits[k]`` closes it (an exit wins over an entry on the same bar). The orders
are market orders filled at the next bar's open, exactly as a Strategy placing them in
``on_bar`` would, so both paths give identical trades.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from backtester.checks import check_positive
from backtester.data.market import MarketData
from backtester.engine.backtest import backtest
from backtester.results import Result
from backtester.strategy import Context, Strategy
from backtester.swap.contract import ContractSpec

__all__ = ["backtest_signals"]


class _Signals(Strategy):
    """Reads the signal arrays at each bar close."""

    entries: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    exits: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    contracts = 1.0
    direction = 1

    def on_start(self, ctx: Context) -> None:
        self._k = -1

    def on_bar(self, ctx: Context, bar: np.void) -> None:
        self._k += 1
        k = self._k
        position = ctx.position
        if self.exits[k]:
            if position != 0:
                ctx.market(-position)
        elif self.entries[k]:
            target = self.direction * self.contracts
            if position != target:
                ctx.market(target - position)


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
