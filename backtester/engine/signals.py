"""Signal path: ``backtest_signals(entries, exits, ...)`` from arrays over the bars.

Signals in both directions on one account, as vectorbt's ``from_signals``: at the close of bar
``k``, ``entries[k]`` opens (or reverses into) a long of ``contracts``, ``short_entries[k]`` a
short; ``exits[k]`` closes a long and ``short_exits[k]`` a short (an exit wins over an entry of
its side on the same bar; a long and a short entry on the same bar cancel out). Or a target
position per bar (``target=``, NaN = keep) in contracts, quote notional, base coin or a
fraction of the equity. The orders are market orders filled at the next bar's open, exactly as
a Strategy placing them in ``on_bar`` would, so both paths give identical trades. The rule is
:func:`~backtester.engine.signals_nb.signal_delta_nb`, run inside the replay by the engine's
signal entry point (:func:`~backtester.engine.signal_replay.replay_signals`), so a run costs
no Python per bar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from backtester.checks import check_positive
from backtester.data.market import MarketData
from backtester.engine.backtest import backtest
from backtester.engine.buffers import record_buffer
from backtester.engine.signal_replay import SignalRule
from backtester.engine.signals_nb import (
    UNIT_BASE,
    UNIT_CONTRACTS,
    UNIT_EQUITY_FRACTION,
    UNIT_NOTIONAL,
    entry_amounts_nb,
)
from backtester.results import Result
from backtester.swap.contract import ContractSpec

__all__ = ["backtest_signals"]


def _as_signal(values: Any, n: int, name: str) -> npt.NDArray[np.bool_]:
    """Return ``values`` as a checked boolean signal array of one row per bar."""
    array = np.asarray(values)
    if array.dtype != np.bool_:
        raise TypeError(f"{name}: expected a boolean array, got dtype {array.dtype}")
    if array.ndim not in (1, 2) or array.shape[0] != n:
        raise ValueError(
            f"{name}: expected shape ({n},) or ({n}, columns) (one row per bar), got {array.shape}"
        )
    return array


_UNITS = {
    "contracts": UNIT_CONTRACTS,
    "notional": UNIT_NOTIONAL,
    "base": UNIT_BASE,
    "equity_fraction": UNIT_EQUITY_FRACTION,
}


def backtest_signals(  # noqa: PLR0913  (the public entry point: vectorbt's from_signals keywords)
    entries: npt.ArrayLike | None,
    exits: npt.ArrayLike | None,
    data: MarketData,
    contract: ContractSpec | str,
    *,
    initial_balance: float,
    short_entries: npt.ArrayLike | None = None,
    short_exits: npt.ArrayLike | None = None,
    target: npt.ArrayLike | None = None,
    target_unit: str = "contracts",
    contracts: float = 1.0,
    direction: str = "long",
    leverage: float = 10.0,
    margin_mode: str = "isolated",
    replay: str = "auto",
    plots: Mapping[str, npt.ArrayLike] | None = None,
    sl_stop: Any = None,
    tp_stop: Any = None,
    tsl_stop: Any = None,
    **options: Any,
) -> Result | list[Result]:
    """Backtest signals over ``data.bars``, long and short on one account.

    Parameters
    ----------
    entries, exits
        Boolean arrays with one row per bar of ``data.bars``, acted on at that bar's close:
        ``entries`` opens (or reverses into) a position of ``contracts`` in ``direction``
        (default long), ``exits`` closes a position of that direction; an exit wins over an
        entry on the same bar. Shape ``(bars,)`` for one backtest, or ``(bars, columns)`` for a
        sweep — one backtest per column (e.g. one per parameter set of the indicator that made
        the signals), on the same data and compiled loop. A 1-D array is broadcast against a
        2-D one. ``None`` when ``target`` is given.
    short_entries, short_exits
        The same for short positions (with ``entries``/``exits`` as the long side), as
        vectorbt's ``from_signals``: an always-in reversal is one call, one account. A long
        and a short entry on the same bar cancel out.
    target
        Instead of signals: the target position per bar (float array; NaN = keep the
        position, 0 = flat), signed, in ``target_unit``: ``"contracts"``, ``"notional"``
        (quote currency), ``"base"`` (base coin) or ``"equity_fraction"`` (position value as a
        fraction of the account equity at that bar's close); converted at the bar's close
        price with the contract's face value (table in :mod:`backtester.sizing`) and rounded
        toward zero to the lot.
    data, contract, initial_balance, leverage, margin_mode, **options
        As for :func:`backtester.engine.backtest.backtest`.
    contracts
        Position size opened on an entry, in contracts (> 0).
    direction
        ``"long"`` or ``"short"``: the side of ``entries``/``exits`` when no short signals
        are given (``direction="short"`` with only ``entries``/``exits`` trades shorts).
    replay
        ``"auto"`` (default): the signal kernel (:mod:`backtester.engine.signals_nb`) where it
        applies — one instrument on bars, no trade ticks, no ADL/clawback events — else the
        general jitted loop; ``"events"``: always the general loop. Both give identical
        records; ``"events"`` exists to check that.
    plots
        Indicator arrays to draw on the report's price chart, ``{name: values}`` with one
        value per bar (the indicator that made the signals), stamped at each bar's close;
        kept in ``result.plots``.
    sl_stop, tp_stop
        Stop-loss / take-profit of each entry as a fraction of its fill price (a number, or
        one per bar read at the entry's bar; NaN: none), placed as reduce-only exits when the
        entry fills, one cancelling the other. With either, the run goes through the Python
        driver (:mod:`backtester.signal_exits`): 1-D signals in contracts only.
    tsl_stop
        A trailing stop instead of ``sl_stop`` (vectorbt's name): the fraction of the best
        price since the entry's fill (the highest for a long) at which the exit triggers,
        ratcheting on each bar's path and never loosening (a number or one per bar).

    Returns
    -------
    Result or list of Result
        As :func:`~backtester.engine.backtest.backtest` (one per column for 2-D signals);
        ``config["strategy"]`` names the signal path.
    """
    n = len(data.bars)
    if direction not in ("long", "short"):
        raise ValueError(f"direction: expected 'long' or 'short', got {direction!r}")
    if target_unit not in _UNITS:
        raise ValueError(f"target_unit: expected one of {sorted(_UNITS)}, got {target_unit!r}")
    if replay not in ("auto", "events"):
        raise ValueError(f"replay: expected 'auto' or 'events', got {replay!r}")
    size = check_positive(contracts, "contracts")
    signals = {"entries": entries, "exits": exits, "short_entries": short_entries,
               "short_exits": short_exits}  # fmt: skip
    columns: dict[str, npt.NDArray[Any]]
    if target is not None:
        columns = {"amount": _target_amounts(target, signals, n)}
        unit = _UNITS[target_unit]
    else:
        columns = _signal_columns(signals, direction, n)
        unit = UNIT_CONTRACTS
    widths = {a.shape[1] for a in columns.values() if a.ndim == 2}
    if len(widths) > 1:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in columns.items())
        raise ValueError(f"2-D signals need the same number of columns, got {shapes}")
    series = _plot_series(plots, data, n)
    run_options = {
        "initial_balance": initial_balance, "leverage": leverage, "margin_mode": margin_mode,
        **options,
    }  # fmt: skip

    if sl_stop is not None or tp_stop is not None or tsl_stop is not None:
        from backtester.signal_exits import SignalsWithExits, as_stop_array

        if widths or "amount" in columns:
            raise ValueError(
                "sl_stop, tp_stop, tsl_stop: need 1-D signals (not target=), one backtest"
            )
        amount, close_long, close_short, _ = _column_orders(columns, direction, size, 0)
        params: dict[str, object] = {
            "amount": amount, "close_long": close_long, "close_short": close_short,
            "sl_stop": as_stop_array(sl_stop, n, "sl_stop"),
            "tp_stop": as_stop_array(tp_stop, n, "tp_stop"),
            "tsl_stop": as_stop_array(tsl_stop, n, "tsl_stop"),
        }  # fmt: skip
        result = backtest(SignalsWithExits, data, contract, params=params, **run_options)
        result.plots.update(series)
        return result

    def run(k: int) -> Result:
        amount, close_long, close_short, entries = _column_orders(columns, direction, size, k)
        params: dict[str, object] = {
            "amount": amount,
            "close_long": close_long,
            "close_short": close_short,
            "entries": entries,
            "unit": unit,
            "replay": replay,
        }
        result = backtest(SignalRule, data, contract, params=params, **run_options)
        result.plots.update(series)
        return result

    if not widths:
        return run(0)
    (n_columns,) = widths
    return [run(k) for k in range(n_columns)]


def _target_amounts(
    target: npt.ArrayLike, signals: dict[str, npt.ArrayLike | None], n: int
) -> npt.NDArray[np.float64]:
    """Return the checked ``target=`` array (no signal may be given beside it)."""
    given = [name for name, v in signals.items() if v is not None]
    if given:
        raise ValueError(
            f"target: give either a target array or signals, not both (also got {given})"
        )
    amounts = np.asarray(target, dtype=np.float64)
    if amounts.ndim not in (1, 2) or amounts.shape[0] != n:
        raise ValueError(
            f"target: expected shape ({n},) or ({n}, columns) (one row per bar), "
            f"got {amounts.shape}"
        )
    if np.isinf(amounts).any():
        raise ValueError("target: infinite values (use NaN to keep the position)")
    return amounts


def _signal_columns(
    signals: dict[str, npt.ArrayLike | None], direction: str, n: int
) -> dict[str, npt.NDArray[np.bool_]]:
    """Return the checked signal arrays by name (short ones only when either is given)."""
    entries, exits = signals["entries"], signals["exits"]
    if entries is None or exits is None:
        raise ValueError("entries, exits: both are required unless target= is given")
    sides = {"entries": entries, "exits": exits}
    short_entries, short_exits = signals["short_entries"], signals["short_exits"]
    if short_entries is not None or short_exits is not None:
        if direction != "long":
            raise ValueError(
                "direction: with short_entries/short_exits, entries/exits are the long side "
                f"(direction='long'), got {direction!r}"
            )
        none = np.zeros(n, bool)
        sides["short_entries"] = short_entries if short_entries is not None else none
        sides["short_exits"] = short_exits if short_exits is not None else none
    return {name: _as_signal(values, n, name) for name, values in sides.items()}


def _plot_series(
    plots: Mapping[str, npt.ArrayLike] | None, data: MarketData, n: int
) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Return the indicator arrays to draw, each stamped at its bar's close."""
    series = {}
    for name, values in (plots or {}).items():
        array = np.asarray(values, dtype=np.float64)
        if array.shape != (n,):
            raise ValueError(
                f"plots[{name!r}]: expected one value per bar, shape ({n},), got {array.shape}"
            )
        close_ns = np.asarray(data.bars["ts_ns"], dtype=np.int64) + int(data.bar_interval_ns)
        series[str(name)] = (close_ns, array)
    return series


def _column(columns: dict[str, npt.NDArray[Any]], name: str, k: int) -> npt.NDArray[Any]:
    """Return column ``k`` of a 2-D input (its last column beyond), a 1-D one as it is."""
    a = columns[name]
    return a if a.ndim == 1 else a[:, min(k, a.shape[1] - 1)]


def _column_orders(
    columns: dict[str, npt.NDArray[Any]], direction: str, size: float, k: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_], int]:
    """Return ``(amount, close_long, close_short, entries)`` of backtest ``k``.

    The signal rule's input: ``amount`` is the target position per bar (NaN: keep), the
    closes the exits of each side; ``entries`` the bars with an amount (-1: not counted, a
    ``target=`` array).
    """
    n = len(next(iter(columns.values())))
    none = np.zeros(n, dtype=bool)
    if "amount" in columns:
        return np.ascontiguousarray(_column(columns, "amount", k)), none, none, -1
    entries, exits = _column(columns, "entries", k), _column(columns, "exits", k)
    sides: tuple[npt.NDArray[Any], ...]
    if "short_entries" in columns:
        sides = (entries, exits, _column(columns, "short_entries", k))
        sides += (_column(columns, "short_exits", k),)
    elif direction == "long":
        sides = (entries, exits, none, none)
    else:
        sides = (none, none, entries, exits)
    long_entries, close_long, short_entries, close_short = (
        np.ascontiguousarray(side, dtype=bool) for side in sides
    )
    # pooled memory (engine.buffers): a fresh 8 MB array cost its page faults on every call
    amount: npt.NDArray[np.float64] = record_buffer(n, np.dtype(np.float64), zeroed=False).view(
        np.float64
    )
    count = entry_amounts_nb(long_entries, close_long, short_entries, close_short, size, amount)
    return amount, close_long, close_short, count
