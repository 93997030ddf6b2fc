"""The market data of one instrument, as the engine replays it.

:class:`MarketData` is the hand-over point between the data layer (catalog, importers, sample
generator) and the engine: validated, time-sorted structured arrays in the dtypes of
:mod:`backtester.dtypes`, with the candle interval and where each stream came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from backtester import dtypes
from backtester.enums import LedgerKind


def _empty(dtype: np.dtype) -> npt.NDArray[np.void]:
    return np.zeros(0, dtype=dtype)


@dataclass
class MarketData:
    """Streams of one instrument, each sorted by ``ts_ns`` (int64 UTC nanoseconds).

    Parameters
    ----------
    symbol
        Instrument symbol as the venue writes it (``"BTC-USD-SWAP"``, ``"BTCUSDT"``).
    trades
        ``TRADE_DTYPE`` trade ticks (may be empty).
    bars
        ``BAR_DTYPE`` last-trade candles, ``ts_ns`` = open time; a bar is visible to the strategy
        at ``ts_ns + bar_interval_ns`` (may be empty).
    bar_interval_ns
        Candle length in ns (0 when there are no bars).
    index
        ``PRICE_DTYPE`` index prices, ``ts_ns`` = when the price is known; index candles enter
        as their path (:func:`candle_path_points`, with ``index_interval_ns`` set).
    mark
        ``PRICE_DTYPE`` historical mark prices (optional; replayed or used for validation);
        mark candles enter as their path, like index candles.
    funding
        ``FUNDING_RATE_DTYPE`` funding events; a position open at ``ts_ns`` pays or receives.
    exchange
        Venue name the data came from (``"okx"``, ``"binance"``, ``"bitmex"``, ``"sample"``).
    sources
        Provenance per stream name (file path, catalog partition, generator seed).
    deleverage
        ``DELEVERAGE_EVENT_DTYPE`` ADL / clawback episodes (optional scenario input, empty by
        default): the venue's other traders are not simulated, so an episode comes from a
        historical announcement or a stress scenario. Validated here (sorted ``ts_ns``, kind,
        side, price and threshold ranges) but not counted in :attr:`start_ns` / :attr:`end_ns`,
        which span the market data only.
    index_interval_ns, mark_interval_ns
        Candle length (ns) when ``index`` / ``mark`` are candle paths built by
        :func:`candle_path_points` (4 points a candle); 0 when they are plain points. The
        replay then knows which point of a candle each row is (for the liquidation report,
        and to visit the extreme adverse to the open position first).
    """

    symbol: str
    trades: npt.NDArray[np.void] = field(default_factory=lambda: _empty(dtypes.TRADE_DTYPE))
    bars: npt.NDArray[np.void] = field(default_factory=lambda: _empty(dtypes.BAR_DTYPE))
    bar_interval_ns: int = 0
    index: npt.NDArray[np.void] = field(default_factory=lambda: _empty(dtypes.PRICE_DTYPE))
    mark: npt.NDArray[np.void] = field(default_factory=lambda: _empty(dtypes.PRICE_DTYPE))
    funding: npt.NDArray[np.void] = field(default_factory=lambda: _empty(dtypes.FUNDING_RATE_DTYPE))
    exchange: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    deleverage: npt.NDArray[np.void] = field(
        default_factory=lambda: _empty(dtypes.DELEVERAGE_EVENT_DTYPE)
    )
    index_interval_ns: int = 0
    mark_interval_ns: int = 0

    _STREAMS = (
        ("trades", dtypes.TRADE_DTYPE),
        ("bars", dtypes.BAR_DTYPE),
        ("index", dtypes.PRICE_DTYPE),
        ("mark", dtypes.PRICE_DTYPE),
        ("funding", dtypes.FUNDING_RATE_DTYPE),
    )

    def __post_init__(self) -> None:
        for name, dtype in (*self._STREAMS, ("deleverage", dtypes.DELEVERAGE_EVENT_DTYPE)):
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.dtype != dtype:
                got = getattr(array, "dtype", type(array).__name__)
                raise TypeError(
                    f"MarketData({self.symbol!r}).{name}: expected a numpy array of "
                    f"backtester.dtypes.{dtype_name(dtype)}, got {got}"
                )
            ts = array["ts_ns"]
            if len(ts) > 1 and bool(np.any(ts[1:] < ts[:-1])):
                row = int(np.flatnonzero(ts[1:] < ts[:-1])[0]) + 1
                raise ValueError(
                    f"MarketData({self.symbol!r}).{name} row {row:,}: ts_ns {int(ts[row])} < "
                    f"previous {int(ts[row - 1])} (timestamps must not decrease)"
                )
        self._check_deleverage()
        for name in ("index_interval_ns", "mark_interval_ns"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"MarketData({self.symbol!r}).{name}: expected >= 0 (0 = points), got "
                    f"{getattr(self, name)}"
                )
        if len(self.bars) and self.bar_interval_ns <= 0:
            raise ValueError(
                f"MarketData({self.symbol!r}).bar_interval_ns: must be > 0 when bars are given, "
                f"got {self.bar_interval_ns}"
            )

    def _check_deleverage(self) -> None:
        """Field rules of the ADL / clawback episodes (see DELEVERAGE_EVENT_DTYPE)."""
        events = self.deleverage
        if not len(events):
            return
        where = f"MarketData({self.symbol!r}).deleverage"
        kind = events["kind"].astype(np.int64)
        side = events["side"].astype(np.int64)
        price = events["price"]
        threshold = events["threshold"]
        contracts = events["contracts"]
        is_adl = kind == int(LedgerKind.ADL)
        is_clawback = kind == int(LedgerKind.CLAWBACK)
        rules = (
            (
                ~(is_adl | is_clawback),
                "kind",
                f"LedgerKind.ADL ({int(LedgerKind.ADL)}) or LedgerKind.CLAWBACK "
                f"({int(LedgerKind.CLAWBACK)})",
            ),
            ((side < -1) | (side > 1), "side", "-1 (shorts), 0 (both) or +1 (longs)"),
            (is_adl & ~(np.isfinite(price) & (price > 0)), "price", "a finite price > 0 for ADL"),
            (is_adl & np.isnan(threshold), "threshold", "a ranking-score cut-off (not NaN)"),
            (
                is_adl & (contracts < 0.0),
                "contracts",
                "contracts >= 0 for ADL (0 or NaN: the whole position)",
            ),
            (is_clawback & (side != 0), "side", "0 for a clawback (every profitable position)"),
            (is_clawback & ~np.isnan(price), "price", "NaN for a clawback (no close price)"),
            (
                is_clawback & ~((threshold >= 0.0) & (threshold <= 1.0)),
                "threshold",
                "a clawback rate in [0, 1]",
            ),
        )
        for bad, name, expected in rules:
            if bool(np.any(bad)):
                row = int(np.flatnonzero(bad)[0])
                value = events[name][row].item()
                raise ValueError(f"{where} row {row:,}: {name} = {value!r}, expected {expected}")

    @property
    def start_ns(self) -> int:
        """First timestamp over all streams (bars by open time)."""
        firsts = [
            int(getattr(self, n)["ts_ns"][0]) for n, _ in self._STREAMS if len(getattr(self, n))
        ]
        if not firsts:
            raise ValueError(f"MarketData({self.symbol!r}) has no events in any stream")
        return min(firsts)

    @property
    def end_ns(self) -> int:
        """Last timestamp over all streams (bars by close time)."""
        lasts = []
        for name, _ in self._STREAMS:
            array = getattr(self, name)
            if len(array):
                end = int(array["ts_ns"][-1])
                lasts.append(end + self.bar_interval_ns if name == "bars" else end)
        if not lasts:
            raise ValueError(f"MarketData({self.symbol!r}) has no events in any stream")
        return max(lasts)


def candle_path_points(bars: npt.NDArray[np.void], interval_ns: int) -> npt.NDArray[np.void]:
    """Index or mark candles (``BAR_DTYPE``, ``ts_ns`` = open time) → their replayed path.

    Each candle ``[t0, t0 + Δ)`` becomes four ``PRICE_DTYPE`` points: the open at
    ``t0 + 1 ns`` (after the events of ``t0``, among them the fills at the open of the trade
    candle that starts then), the high at ``t0 + Δ//3``, the low at ``t0 + 2Δ//3`` and the
    close at ``t0 + Δ`` (when the candle is complete). The replay visits the two extremes in the
    order of the trade candles' intrabar path: the extreme adverse to the open position first
    (or the one nearer the open with ``bar_path="nearest"``, and with no position), swapping
    the stored high/low when needed (``index_interval_ns`` / ``mark_interval_ns`` of
    :class:`MarketData` tell it the rows are a path). So a liquidation on candle data happens
    inside the first candle whose range crosses the liquidation price, at the time of the
    crossing extreme, and funding at ``t0 + Δ`` uses the candle's close. Candles must be
    aligned to multiples of ``Δ`` from the epoch (every venue's are) and ``Δ >= 6 ns``.
    """
    if interval_ns < 6:
        raise ValueError(f"interval_ns: expected a candle length >= 6 ns, got {interval_ns}")
    n = len(bars)
    points = np.empty(4 * n, dtype=dtypes.PRICE_DTYPE)
    t0 = bars["ts_ns"].astype(np.int64)
    points["ts_ns"][0::4] = t0 + 1
    points["ts_ns"][1::4] = t0 + interval_ns // 3
    points["ts_ns"][2::4] = t0 + 2 * interval_ns // 3
    points["ts_ns"][3::4] = t0 + interval_ns
    points["price"][0::4] = bars["open"]
    points["price"][1::4] = bars["high"]
    points["price"][2::4] = bars["low"]
    points["price"][3::4] = bars["close"]
    if n and bool(np.any(t0 % interval_ns)):
        row = int(np.flatnonzero(t0 % interval_ns)[0])
        raise ValueError(
            f"candles row {row:,}: open time {int(t0[row])} ns is not a multiple of the interval "
            f"{interval_ns} ns (candles must be aligned to their interval from the epoch)"
        )
    return points


def dtype_name(dtype: np.dtype) -> str:
    """Name of a dtype constant in :mod:`backtester.dtypes` (for error messages)."""
    for name in dir(dtypes):
        if name.endswith("_DTYPE") and getattr(dtypes, name) == dtype:
            return name
    return str(dtype)
