"""Build :class:`~backtester.data.market.MarketData` from the catalog.

The catalog stores and reads streams; this module chooses which streams make one instrument's
market data (bars at one interval, index/mark points or candle paths, funding, trades) and
cuts them to a span. :mod:`backtester.data.stream` serves the same in windows of a long span.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from backtester import dtypes
from backtester.data.intervals import interval_label
from backtester.data.market import MarketData, candle_path_points

if TYPE_CHECKING:
    from backtester.data.catalog import Catalog

__all__ = ["bars_to_points", "load_market_data", "path_interval", "price_points"]


def bars_to_points(bars: np.ndarray, interval_ns: int) -> np.ndarray:
    """Return index/mark candles as their replayed path, four ``PRICE_DTYPE`` points a candle.

    Open at ``t0 + 1 ns``, high, low, close at ``t0 + interval``
    (:func:`backtester.data.market.candle_path_points`).
    """
    return candle_path_points(bars, interval_ns)


def price_points(
    catalog: Catalog,
    which: str,
    exchange: str,
    symbol: str,
    start_ns: int | None,
    end_ns: int | None,
) -> tuple[np.ndarray, str]:
    """Return (points, source directory) of the ``index`` or ``mark`` price of one instrument.

    The point stream if stored, else the finest stored ``<which>_bars`` replayed as paths and
    selected by the time each point is known; ``("", empty)`` when neither is stored.
    """
    if catalog.exists(which, exchange, symbol):
        return (
            catalog.read(which, exchange, symbol, start_ns, end_ns),
            str(catalog.dataset_dir(which, exchange, symbol)),
        )
    intervals = catalog.intervals(f"{which}_bars", exchange, symbol)
    if not intervals:
        return np.zeros(0, dtype=dtypes.PRICE_DTYPE), ""
    step = intervals[0]  # the finest stored candle
    lo = None if start_ns is None else start_ns - step
    bars = catalog.read(f"{which}_bars", exchange, symbol, lo, end_ns, interval_ns=step)
    points = bars_to_points(bars, step)
    ts = points["ts_ns"]
    a = 0 if start_ns is None else int(np.searchsorted(ts, start_ns, "left"))
    b = len(ts) if end_ns is None else int(np.searchsorted(ts, end_ns, "left"))
    return points[a:b], str(catalog.dataset_dir(f"{which}_bars", exchange, symbol, step))


def path_interval(catalog: Catalog, which: str, exchange: str, symbol: str, source: str) -> int:
    """Candle length of the index/mark stream read from candles (0: points or none)."""
    if not source or catalog.exists(which, exchange, symbol):
        return 0
    return catalog.intervals(f"{which}_bars", exchange, symbol)[0]


def bar_interval(catalog: Catalog, exchange: str, symbol: str, bar_interval_ns: int) -> int:
    """Return the bar interval (ns) to read: the one given, or with 0 the single one stored.

    0 when none is given and none is stored (no bars); ``ValueError`` listing them when none is
    given and several are stored.
    """
    if bar_interval_ns:
        return bar_interval_ns
    intervals = catalog.intervals("bars", exchange, symbol)
    if len(intervals) > 1:
        raise ValueError(
            f"bar_interval_ns: {exchange}:{symbol} has bars at several intervals "
            f"({', '.join(interval_label(i) for i in intervals)}); pass one of "
            f"{', '.join(str(i) for i in intervals)}"
        )
    return intervals[0] if intervals else 0


def load_market_data(
    catalog: Catalog,
    exchange: str,
    symbol: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    bar_interval_ns: int = 0,
    with_trades: bool = False,
) -> MarketData:
    """Build the :class:`MarketData` of one instrument from the streams stored in ``catalog``.

    Every stream is read under one hold of the catalog's read lock
    (:meth:`~backtester.data.catalog.Catalog.reading`), so a concurrent import is seen whole
    or not at all.

    * bars: the ``bars`` stream at ``bar_interval_ns``; with 0 the single stored interval
      (several stored → ``ValueError`` listing them; none → no bars).
    * index / mark: the point stream if stored, else the finest stored ``index_bars`` /
      ``mark_bars``, each candle replayed as its path (open at ``t0 + 1 ns``, the extremes
      at a third and two thirds of the interval, the close at its end:
      :func:`~backtester.data.market.candle_path_points`; ``index_interval_ns`` /
      ``mark_interval_ns`` of the result say so).
    * funding: the ``funding`` stream; trades only with ``with_trades=True``.

    Every stream is cut to ``start_ns <= ts_ns < end_ns`` (points by the time they are
    known). ``sources`` names the catalog directory of each stream.
    """
    with catalog.reading():
        return _load(catalog, exchange, symbol, start_ns, end_ns, bar_interval_ns, with_trades)


def _load(
    catalog: Catalog,
    exchange: str,
    symbol: str,
    start_ns: int | None,
    end_ns: int | None,
    bar_interval_ns: int,
    with_trades: bool,
) -> MarketData:
    sources: dict[str, str] = {}
    bars = np.zeros(0, dtype=dtypes.BAR_DTYPE)
    bar_interval_ns = bar_interval(catalog, exchange, symbol, bar_interval_ns)
    if bar_interval_ns:
        bars = catalog.read("bars", exchange, symbol, start_ns, end_ns, interval_ns=bar_interval_ns)
        sources["bars"] = str(catalog.dataset_dir("bars", exchange, symbol, bar_interval_ns))
    trades = np.zeros(0, dtype=dtypes.TRADE_DTYPE)
    if with_trades:
        trades = catalog.read("trades", exchange, symbol, start_ns, end_ns)
        sources["trades"] = str(catalog.dataset_dir("trades", exchange, symbol))
    index, index_src = price_points(catalog, "index", exchange, symbol, start_ns, end_ns)
    mark, mark_src = price_points(catalog, "mark", exchange, symbol, start_ns, end_ns)
    sources.update({n: s for n, s in (("index", index_src), ("mark", mark_src)) if s})
    funding = np.zeros(0, dtype=dtypes.FUNDING_RATE_DTYPE)
    if catalog.exists("funding", exchange, symbol):
        funding = catalog.read("funding", exchange, symbol, start_ns, end_ns)
        sources["funding"] = str(catalog.dataset_dir("funding", exchange, symbol))
    if not sources:
        raise FileNotFoundError(
            f"catalog {catalog.root}: no market data for {exchange}:{symbol}; available: "
            f"{catalog.available_text(exchange, symbol)}"
        )
    return MarketData(
        symbol=symbol,
        trades=trades,
        bars=bars,
        bar_interval_ns=bar_interval_ns if len(bars) else 0,
        index=index,
        mark=mark,
        funding=funding,
        exchange=exchange,
        sources=sources,
        index_interval_ns=path_interval(catalog, "index", exchange, symbol, index_src),
        mark_interval_ns=path_interval(catalog, "mark", exchange, symbol, mark_src),
    )
