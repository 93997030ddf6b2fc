"""Market data of a long span, served one time window at a time (chunked replay).

:class:`MarketDataStream` cuts the catalog streams of one or several instruments into
consecutive windows of **event time** and yields, per window, one :class:`MarketData` per
instrument. The engine (:class:`~backtester.engine.driver.Run`) replays one window, then swaps
in the next, so the input arrays in memory are bounded by the window size, whatever the span.
Build one with :func:`stream_market_data`.

Which rows a window holds
-------------------------
The union of the windows is exactly ``load_market_data(catalog, exchange, symbol, start_ns,
end_ns, ...)`` (:mod:`backtester.data.loader`) of each instrument, every row in exactly one
window, and replaying the windows one after the other applies the events in the same order as
the unstreamed replay. With window boundaries ``T_0 = start < T_1 < ... `` (event time):

* every stream by the time of its last event at a boundary: trades, bars **by close time**
  (``ts_ns + bar_interval_ns``), index, mark and funding points: ``T_k < t <= T_k+1``
  (``start <= t`` in the first window).

This is the replay's tie rule (:class:`~backtester.enums.EventKind`): at an instant ``T`` every
event but the opening of the next bar (``BAR_OPEN``, the last kind) belongs to what happened up
to ``T``, so the window that ends at ``T`` holds them, and a bar opening at ``T`` (its close
after ``T``) is in the next window, whose first event it is. A bar's path events (open,
extremes) lie inside its window when the boundaries are multiples of the bar interval (funding
times are); index/mark candle paths (four points per candle) are cut by point time.

Funding look-ahead
------------------
The funding-basis mark (``FUNDING_BASIS``, and the funding term of ``BINANCE_MEDIAN``) reads the
*next* funding row (the predicted rate and the time until it, ``funding_mark_nb``). The replay
only looks inside the current window, so a window must end at a funding time: then the next
funding row of every mark computed in the window (ts ≤ T_k+1) lies in the window. With
``snap_to_funding=True`` (the default) each boundary ``start + k·chunk_ns`` is moved forward to
the first instant at which every instrument that still has funding rows has one (its next
funding row is exactly at the boundary); the search looks up to ``max(chunk_ns, 1 day)`` ahead,
so a window spans at most ``chunk_ns + max(chunk_ns, 1 day)``. When no such instant exists in
that range (instruments with unrelated funding schedules), the boundary stays unsnapped and a
mark computed between an instrument's last funding row of the window and the boundary uses
``until = 0`` and the last applied rate (the mark equals the index there), unlike the unstreamed
replay; the ``snapped`` list of :attr:`MarketDataStream.boundaries` tells which boundaries were
snapped.
The funding rows of the span are read once at construction (3 rows a day per instrument:
~11,000 per decade), everything else per window.

Iterating reads each stream sequentially: the partition files of the span in order, one row
group (``ROW_GROUP_ROWS`` rows) decoded at a time and kept only until its last row has gone
into a window, so the memory is one window plus one row group per stream, and every row group
is decoded once. :meth:`MarketDataStream.window` (random access) reads through
:meth:`Catalog.read`, which touches only the files and row groups overlapping the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from backtester import dtypes
from backtester.data.intervals import interval_label
from backtester.data.loader import bar_interval, bars_to_points, price_points
from backtester.data.market import MarketData

if TYPE_CHECKING:
    from backtester.data.catalog import Catalog

__all__ = ["MarketDataStream"]

_NO_TS = np.iinfo(np.int64).max
_DAY_NS = 86_400_000_000_000


def stream_market_data(
    catalog: Catalog,
    exchange: str,
    symbols: str | list[str],
    start_ns: int | None = None,
    end_ns: int | None = None,
    bar_interval_ns: int = 0,
    with_trades: bool = False,
    *,
    chunk_ns: int = 7 * 86_400_000_000_000,
    snap_to_funding: bool = True,
) -> MarketDataStream:
    """Serve the market data of one or several instruments in windows of ``chunk_ns``.

    What :func:`~backtester.data.loader.load_market_data` loads, cut into windows of event
    time (a :class:`MarketDataStream`).

    Pass the stream as ``data`` to :func:`~backtester.engine.backtest.backtest`: the replay
    then holds one window of input rows at a time (chunked replay), whatever the span.
    ``chunk_ns`` (> 0, default one week) is the window length; with ``snap_to_funding``
    each boundary moves forward to the next common funding time so the funding-basis mark
    is exact (see the module docstring). Raises ``ValueError`` naming the argument
    (``chunk_ns`` <= 0, a symbol without market data, an empty span).
    """
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    return MarketDataStream(
        catalog,
        exchange,
        names,
        start_ns,
        end_ns,
        bar_interval_ns,
        with_trades,
        chunk_ns,
        snap_to_funding,
    )


class MarketDataStream:
    """One MarketData per instrument per window of event time (see the module docstring).

    Parameters
    ----------
    catalog
        The catalog to read.
    exchange
        Venue name as stored.
    symbols
        Instrument symbols (one MarketData each, in this order).
    start_ns, end_ns
        Span as in :meth:`Catalog.load_market_data` (``start_ns <= ts_ns < end_ns``, bars by
        open time); ``None`` = from the first / to the last stored row.
    bar_interval_ns
        Candle length (0: the single stored interval per symbol, as ``load_market_data``).
    with_trades
        Also stream the trade ticks.
    chunk_ns
        Window length in event time (> 0), before snapping to a funding time.
    snap_to_funding
        Move boundaries to common funding times (exact funding-basis marks; see above).

    Iterating gives ``list[MarketData]`` (one per symbol) per window with at least one event;
    the stream can be iterated several times (each pass reads the catalog again).
    """

    def __init__(
        self,
        catalog: Catalog,
        exchange: str,
        symbols: list[str],
        start_ns: int | None,
        end_ns: int | None,
        bar_interval_ns: int,
        with_trades: bool,
        chunk_ns: int,
        snap_to_funding: bool = True,
    ) -> None:
        if isinstance(chunk_ns, bool) or not isinstance(chunk_ns, (int, np.integer)):
            raise TypeError(f"chunk_ns: expected an integer number of ns, got {chunk_ns!r}")
        if chunk_ns <= 0:
            raise ValueError(f"chunk_ns: expected a window length > 0 ns, got {chunk_ns}")
        if bar_interval_ns < 0:
            raise ValueError(f"bar_interval_ns: expected >= 0, got {bar_interval_ns}")
        if not symbols:
            raise ValueError("symbols: expected at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols: duplicates in {symbols!r}")
        if start_ns is not None and end_ns is not None and end_ns <= start_ns:
            raise ValueError(f"end_ns: expected a value > start_ns ({start_ns}), got {end_ns}")
        self.catalog = catalog
        self.exchange = exchange
        self.symbols = list(symbols)
        self.chunk_ns = int(chunk_ns)
        self.with_trades = bool(with_trades)
        self.snap_to_funding = bool(snap_to_funding)
        self.bar_intervals: list[int] = []
        self.sources: list[dict[str, str]] = []
        # candle length of the index/mark stream when it is read from candles (0: points)
        self._path_intervals: list[dict[str, int]] = []
        for symbol in self.symbols:
            stored = catalog.intervals("bars", exchange, symbol)
            interval = bar_interval(catalog, exchange, symbol, bar_interval_ns)
            if interval not in stored and stored:
                raise ValueError(
                    f"bar_interval_ns: {exchange}:{symbol} has no bars at "
                    f"{interval_label(interval)}; stored: "
                    f"{', '.join(interval_label(i) for i in stored)}"
                )
            self.bar_intervals.append(int(interval) if interval in stored else 0)
            self.sources.append(self._sources(symbol, self.bar_intervals[-1]))
            self._path_intervals.append(
                {
                    which: (
                        0
                        if which not in self.sources[-1] or catalog.exists(which, exchange, symbol)
                        else catalog.intervals(f"{which}_bars", exchange, symbol)[0]
                    )
                    for which in ("index", "mark")
                }
            )
            if not self.sources[-1]:
                raise ValueError(
                    f"symbols: no market data for {exchange}:{symbol} in {catalog}; available: "
                    f"{catalog.available_text(exchange, symbol)}"
                )
        self._start = start_ns
        self._end = end_ns
        firsts, lasts = [], []
        self.has_trades: list[bool] = []
        self.has_index: list[bool] = []
        self.has_mark: list[bool] = []
        for k, symbol in enumerate(self.symbols):
            first, last, kinds = self._extent(symbol, self.bar_intervals[k], self.sources[k])
            firsts.append(first)
            lasts.append(last)
            self.has_trades.append("trades" in kinds)
            self.has_index.append("index" in kinds)
            self.has_mark.append("mark" in kinds)
        if min(firsts) == _NO_TS:
            raise ValueError(
                f"start_ns, end_ns: no rows of {exchange}:{', '.join(self.symbols)} in "
                f"[{start_ns}, {end_ns})"
            )
        self.start_ns = min(firsts)
        """First timestamp over all streams (bars by open time), as ``MarketData.start_ns``."""
        self.end_ns = max(lasts)
        """Last timestamp over all streams (bars by close time), as ``MarketData.end_ns``."""
        self._funding = [self._read_funding(s) for s in self.symbols]
        self.has_funding: list[bool] = [len(f) > 0 for f in self._funding]
        """Per instrument: whether the catalog holds funding rows over the span."""
        self.boundaries, self.snapped = self._boundaries()

    # ------------------------------------------------------------------ set-up
    def _sources(self, symbol: str, interval: int) -> dict[str, str]:
        c, ex = self.catalog, self.exchange
        out: dict[str, str] = {}
        if interval:
            out["bars"] = str(c.dataset_dir("bars", ex, symbol, interval))
        if self.with_trades and c.exists("trades", ex, symbol):
            out["trades"] = str(c.dataset_dir("trades", ex, symbol))
        for which in ("index", "mark"):
            if c.exists(which, ex, symbol):
                out[which] = str(c.dataset_dir(which, ex, symbol))
            else:
                steps = c.intervals(f"{which}_bars", ex, symbol)
                if steps:
                    out[which] = str(c.dataset_dir(f"{which}_bars", ex, symbol, steps[0]))
        if c.exists("funding", ex, symbol):
            out["funding"] = str(c.dataset_dir("funding", ex, symbol))
        return out

    def _first_row_ts(
        self, kind: str, symbol: str, lo: int | None, hi: int | None, interval: int = 0
    ) -> tuple[int, int]:
        """Return (first, last) ``ts_ns`` of a stream within [lo, hi), or (_NO_TS, -1) if empty.

        Reads one row group at each end (not the whole range).
        """
        c = self.catalog
        first = _NO_TS
        for rows in c.iter_chunks(kind, self.exchange, symbol, lo, hi, interval, chunk_rows=1):
            first = int(rows["ts_ns"][0])
            break
        if first == _NO_TS:
            return first, -1
        files = c.files_in_range(kind, self.exchange, symbol, lo, hi, interval)
        last = -1
        for path in reversed(files):
            groups = list(c.selected_groups([path], lo, hi))
            for handle, g, _ in reversed(groups):
                ts = handle.read_row_group(g, columns=["ts_ns"]).column("ts_ns").to_numpy()
                if hi is not None:
                    ts = ts[ts < hi]
                if lo is not None:
                    ts = ts[ts >= lo]
                if len(ts):
                    return first, int(ts.max())
        return first, last

    def _extent(
        self, symbol: str, interval: int, sources: dict[str, str]
    ) -> tuple[int, int, set[str]]:
        """Return the first and last event of one symbol in the span, and its streams there.

        Bars count by open for the first event and by close for the last; the streams are
        those with rows in the span.
        """
        lo, hi = self._start, self._end
        first, last = _NO_TS, -1
        kinds: set[str] = set()
        for name in sources:
            if name == "bars":
                f, la = self._first_row_ts("bars", symbol, lo, hi, interval)
                la = la + interval if la >= 0 else la
            elif name in ("index", "mark") and not self.catalog.exists(name, self.exchange, symbol):
                step = self.catalog.intervals(f"{name}_bars", self.exchange, symbol)[0]
                f, la = self._first_row_ts(
                    f"{name}_bars",
                    symbol,
                    None if lo is None else lo - step,
                    None if hi is None else hi - step,
                    step,
                )
                f = f + step if f != _NO_TS else f
                la = la + step if la >= 0 else la
            else:
                f, la = self._first_row_ts(name, symbol, lo, hi)
            if f != _NO_TS:
                kinds.add(name)
            first, last = min(first, f), max(last, la)
        return first, last, kinds

    def _read_funding(self, symbol: str) -> npt.NDArray[np.void]:
        if not self.catalog.exists("funding", self.exchange, symbol):
            return np.zeros(0, dtype=dtypes.FUNDING_RATE_DTYPE)
        return self.catalog.read("funding", self.exchange, symbol, self._start, self._end)

    def _snap(self, nominal: int) -> tuple[int, bool]:
        """Return the window boundary at or after ``nominal`` and whether it is a funding time.

        The first instant in [nominal, nominal + max(chunk_ns, 1 day)) where every instrument
        with funding rows left has its next one exactly there; (nominal, False) if none.
        """
        limit = nominal + max(self.chunk_ns, _DAY_NS)
        heads = []
        for f in self._funding:
            ts = f["ts_ns"]
            k = int(np.searchsorted(ts, nominal, "left"))
            heads.append((ts, k))
        candidates = sorted({int(ts[k]) for ts, k in heads if k < len(ts) and int(ts[k]) < limit})
        for c in candidates:
            ok = True
            for ts, _ in heads:
                j = int(np.searchsorted(ts, c, "left"))
                if j < len(ts) and int(ts[j]) != c:
                    ok = False
                    break
            if ok:
                return c, True
        return nominal, False

    def _boundaries(self) -> tuple[list[int], list[bool]]:
        """Window boundaries in event time: [T_0, T_1, ..., T_n] with T_n > every event."""
        bounds, snapped = [self.start_ns], [False]
        stop = self.end_ns + 1
        while bounds[-1] < stop:
            nominal = bounds[-1] + self.chunk_ns
            if nominal >= stop:
                bounds.append(stop)
                snapped.append(False)
                break
            t, was_snapped = self._snap(nominal) if self.snap_to_funding else (nominal, False)
            if t >= stop:
                t, was_snapped = stop, False
            bounds.append(t)
            snapped.append(was_snapped)
        return bounds, snapped

    # ------------------------------------------------------------------ windows
    def __len__(self) -> int:
        """Return the number of windows before skipping empty ones (iterating gives <= that)."""
        return len(self.boundaries) - 1

    def __iter__(self) -> Iterator[list[MarketData]]:
        # one sequential reader per stream and pass: each row group is decoded once
        readers = [self._readers(i) for i in range(len(self.symbols))]
        for k in range(len(self.boundaries) - 1):
            t0, t1 = self.boundaries[k], self.boundaries[k + 1]
            window = [
                self._window_of(i, t0, t1, k == 0, readers[i]) for i in range(len(self.symbols))
            ]
            if any(_n_events(d) for d in window):
                yield window

    def _readers(self, i: int) -> dict[str, _Sequential]:
        c, ex, symbol = self.catalog, self.exchange, self.symbols[i]
        lo, hi = self._start, self._end
        out = {}
        for name in self.sources[i]:
            if name == "funding":
                continue
            kind, interval, shift = name, 0, 0
            if name == "bars":
                interval = self.bar_intervals[i]
            elif name in ("index", "mark") and not c.exists(name, ex, symbol):
                kind = f"{name}_bars"
                interval = shift = c.intervals(kind, ex, symbol)[0]
            g_lo = None if lo is None else lo - shift
            g_hi = None if hi is None else hi - shift
            files = c.files_in_range(kind, ex, symbol, g_lo, g_hi, interval)
            out[name] = _Sequential(c.iter_groups(kind, files, g_lo, g_hi), shift)
        return out

    def window(self, k: int) -> list[MarketData]:
        """Return the MarketData of window ``k`` (may be empty), one per symbol."""
        t0, t1 = self.boundaries[k], self.boundaries[k + 1]
        first = k == 0
        return [self._window_of(i, t0, t1, first) for i in range(len(self.symbols))]

    def _clip(self, lo: int, hi: int) -> tuple[int, int]:
        if self._start is not None:
            lo = max(lo, self._start)
        if self._end is not None:
            hi = min(hi, self._end)
        return lo, max(lo, hi)

    def _window_of(
        self, i: int, t0: int, t1: int, first: bool, readers: dict[str, _Sequential] | None = None
    ) -> MarketData:
        c, ex, symbol = self.catalog, self.exchange, self.symbols[i]
        sources = self.sources[i]
        interval = self.bar_intervals[i]
        # every stream by event time in (t0, t1] (module notes; EventKind)
        p_lo, p_hi = self._clip(t0 if first else t0 + 1, t1 + 1)
        bars = np.zeros(0, dtype=dtypes.BAR_DTYPE)
        if interval:
            b_lo, b_hi = self._clip((t0 if first else t0 + 1) - interval, t1 + 1 - interval)
            if readers is not None:
                bars = readers["bars"].take(b_lo, b_hi, dtypes.BAR_DTYPE)
            elif b_lo < b_hi:
                bars = c.read("bars", ex, symbol, b_lo, b_hi, interval_ns=interval)
        trades = np.zeros(0, dtype=dtypes.TRADE_DTYPE)
        if "trades" in sources:
            t_lo, t_hi = p_lo, p_hi
            if readers is not None:
                trades = readers["trades"].take(t_lo, t_hi, dtypes.TRADE_DTYPE)
            elif t_lo < t_hi:
                trades = c.read("trades", ex, symbol, t_lo, t_hi)
        points = {}
        for which in ("index", "mark"):
            points[which] = np.zeros(0, dtype=dtypes.PRICE_DTYPE)
            if which in sources and readers is not None:
                points[which] = readers[which].take(p_lo, p_hi, dtypes.PRICE_DTYPE)
            elif which in sources and p_lo < p_hi:
                points[which] = price_points(c, which, ex, symbol, p_lo, p_hi)[0]
        funding = self._funding[i]
        ts = funding["ts_ns"]
        funding = funding[
            int(np.searchsorted(ts, p_lo, "left")) : int(np.searchsorted(ts, p_hi, "left"))
        ]
        return MarketData(
            symbol=symbol,
            trades=trades,
            bars=bars,
            bar_interval_ns=interval if len(bars) else 0,
            index=points["index"],
            mark=points["mark"],
            funding=funding,
            exchange=ex,
            sources=dict(sources),
            index_interval_ns=self._path_intervals[i]["index"],
            mark_interval_ns=self._path_intervals[i]["mark"],
        )

    def __repr__(self) -> str:
        return (
            f"MarketDataStream({self.exchange}:{','.join(self.symbols)}, "
            f"[{self.start_ns}, {self.end_ns}], chunk_ns={self.chunk_ns}, "
            f"windows={len(self)})"
        )


class _Sequential:
    """Rows of one stream for increasing, non-overlapping ranges [lo, hi).

    Read from an iterator of row groups in time order (``Catalog.iter_groups``): each group is
    decoded once and held until its last row is taken, so memory is one window plus one row
    group. With ``shift`` > 0 the groups are index/mark candles, served as their path (four points a
    candle, ``bars_to_points``) and selected by point time.
    """

    def __init__(self, groups: Iterator[np.ndarray], shift: int) -> None:
        self._groups = groups
        self._shift = shift
        self._pending: np.ndarray | None = None

    def _next(self) -> np.ndarray | None:
        for group in self._groups:
            return bars_to_points(group, self._shift) if self._shift else group
        return None

    def take(self, lo: int, hi: int, dtype: np.dtype) -> npt.NDArray[np.void]:
        parts = []
        while True:
            if self._pending is None or not len(self._pending):
                self._pending = self._next()
                if self._pending is None:
                    break
            ts = self._pending["ts_ns"]
            a = int(np.searchsorted(ts, lo, "left"))
            b = int(np.searchsorted(ts, hi, "left"))
            if b > a:
                parts.append(self._pending[a:b])
            if b < len(ts):
                self._pending = self._pending[b:]
                break
            self._pending = None
        if not parts:
            return np.zeros(0, dtype=dtype)
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()


def _n_events(d: MarketData) -> int:
    return len(d.trades) + len(d.bars) + len(d.index) + len(d.mark) + len(d.funding)
