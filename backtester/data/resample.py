"""Resampling: trades → candles, candles → coarser candles, and aligning side streams.

* Candles are stamped with their **open** time ``floor(ts / interval) * interval`` (UTC epoch
  grid; a 1h candle opens on the hour). An interval without trades produces **no** candle: it is
  omitted and reported in the returned :class:`GapReport`, never invented (no forward-filled
  flat bars).
* Coarser candles take open of the first, max high, min low, close of the last and the summed
  volume of the finer candles inside each coarse interval. ``complete_only=True`` keeps only
  coarse candles all of whose fine candles exist (an hour built from three 15m bars is partial).
* :func:`align_to_span` cuts index / mark / funding streams to the span of the traded
  instrument, keeping the last point before the start so a price is known from the first event.
"""

from __future__ import annotations

import numpy as np

from backtester import dtypes
from backtester.data.validation import GapReport, find_gaps


def _check_interval(interval_ns: int, name: str) -> None:
    if not isinstance(interval_ns, int | np.integer) or interval_ns <= 0:
        raise ValueError(f"{name}: expected an integer number of ns > 0, got {interval_ns!r}")


def _group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index of each run of equal sorted keys, and the run's key."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, int)
    return starts, keys[starts]


def trades_to_bars(trades: np.ndarray, interval_ns: int) -> tuple[np.ndarray, GapReport]:
    """Candles of ``interval_ns`` from time-sorted ``TRADE_DTYPE`` trades, plus the gaps."""
    _check_interval(interval_ns, "interval_ns")
    if trades.dtype != dtypes.TRADE_DTYPE:
        raise TypeError(f"trades: expected TRADE_DTYPE, got {trades.dtype}")
    if len(trades) > 1 and np.any(np.diff(trades["ts_ns"]) < 0):
        raise ValueError("trades: timestamps must not decrease")
    keys = trades["ts_ns"] // interval_ns * interval_ns
    starts, opens = _group(keys)
    out = np.empty(len(starts), dtype=dtypes.BAR_DTYPE)
    if len(starts):
        ends = np.r_[starts[1:], len(trades)]
        price = trades["price"]
        out["ts_ns"] = opens
        out["open"] = price[starts]
        out["close"] = price[ends - 1]
        out["high"] = np.maximum.reduceat(price, starts)
        out["low"] = np.minimum.reduceat(price, starts)
        out["volume_base"] = np.add.reduceat(trades["qty_base"], starts)
    return out, find_gaps(out["ts_ns"], interval_ns)


def resample_bars(
    bars: np.ndarray, from_interval_ns: int, to_interval_ns: int, *, complete_only: bool = False
) -> tuple[np.ndarray, GapReport]:
    """Aggregate ``BAR_DTYPE`` candles to a coarser interval (a multiple of the finer one)."""
    _check_interval(from_interval_ns, "from_interval_ns")
    _check_interval(to_interval_ns, "to_interval_ns")
    if to_interval_ns % from_interval_ns:
        raise ValueError(
            f"to_interval_ns: {to_interval_ns} is not a multiple of from_interval_ns "
            f"{from_interval_ns}"
        )
    if bars.dtype != dtypes.BAR_DTYPE:
        raise TypeError(f"bars: expected BAR_DTYPE, got {bars.dtype}")
    off = np.flatnonzero(bars["ts_ns"] % from_interval_ns)
    if len(off):
        i = int(off[0])
        raise ValueError(
            f"bars row {i + 1:,}: ts_ns {int(bars['ts_ns'][i])} is not on the "
            f"{from_interval_ns} ns grid"
        )
    keys = bars["ts_ns"] // to_interval_ns * to_interval_ns
    starts, opens = _group(keys)
    out = np.empty(len(starts), dtype=dtypes.BAR_DTYPE)
    if len(starts):
        ends = np.r_[starts[1:], len(bars)]
        out["ts_ns"] = opens
        out["open"] = bars["open"][starts]
        out["close"] = bars["close"][ends - 1]
        out["high"] = np.maximum.reduceat(bars["high"], starts)
        out["low"] = np.minimum.reduceat(bars["low"], starts)
        out["volume_base"] = np.add.reduceat(bars["volume_base"], starts)
        if complete_only:
            out = out[(ends - starts) == to_interval_ns // from_interval_ns]
    return out, find_gaps(out["ts_ns"], to_interval_ns)


def align_to_span(
    stream: np.ndarray, start_ns: int, end_ns: int, *, keep_prior: bool = True
) -> np.ndarray:
    """Rows of a sorted stream with ``start_ns <= ts_ns < end_ns``.

    With ``keep_prior`` (prices: index, mark) the last row before ``start_ns`` is kept too, so
    the replay knows a price from its first event; use ``keep_prior=False`` for funding events.
    """
    ts = stream["ts_ns"]
    lo = int(np.searchsorted(ts, start_ns, "left"))
    hi = int(np.searchsorted(ts, end_ns, "left"))
    if keep_prior and lo > 0:
        lo -= 1
    return stream[lo:hi]
