"""Download market data with ccxt into the catalog (the only module that imports ccxt).

What it fetches, per symbol, and where it goes in the :class:`~backtester.data.catalog.Catalog`:

============ ================================================ ===================================
kind         ccxt call                                        catalog stream
============ ================================================ ===================================
bars         ``fetch_ohlcv(symbol, tf, since, limit)``        ``bars-<tf>`` (last-trade candles)
mark_bars    ``fetch_ohlcv(..., params={"price": "mark"})``   ``mark_bars-<tf>``
index_bars   ``fetch_ohlcv(..., params={"price": "index"})``  ``index_bars-<tf>``
trades       ``fetch_trades(symbol, since, limit)``           ``trades``
funding      ``fetch_funding_rate_history(symbol, since)``    ``funding`` (source HISTORICAL)
tiers        ``fetch_leverage_tiers([symbol])`` or            a dated tier snapshot
             ``fetch_market_leverage_tiers(symbol)``          (:meth:`Catalog.write_tiers`)
============ ================================================ ===================================

Behaviour
---------
* **Pagination** by ``since`` (ms): each page is converted (ms → ns, ccxt structures → our
  dtypes) and written to the catalog before the next request. A :class:`Fetcher` used on its
  own commits page by page (an interruption loses at most one page); :func:`fetch_to_catalog`
  (and ``backtester fetch``) runs in one catalog transaction: every kind and month of the
  fetch becomes visible together, or nothing does.
* **Span check**: :func:`fetch_to_catalog` compares what each kind got with the span asked
  (:func:`verify_span`) and raises :class:`IncompleteFetchError` naming the missing part when
  the venue returned less (history kept for a few months only, an API ignoring the start).
* **OKX trades** come from the history endpoint, paged backwards by trade id: ccxt's default
  ``okx.fetch_trades`` returns only the latest ~100 trades whatever ``since`` says.
* **Resume**: a download starts after :meth:`Catalog.last_ts_ns` of the stream when that is
  later than the requested start; re-running an interrupted download fetches only the rest.
* **Rate limit**: at least ``exchange.rateLimit`` ms between two requests (ccxt's own throttle
  is switched off by :func:`create_exchange` so the wait is not doubled); ``sleep`` and
  ``clock`` are injectable for tests.
* **Retries**: ``ccxt.RateLimitExceeded``, ``ccxt.RequestTimeout`` and other
  ``ccxt.NetworkError`` are retried with exponential back-off (``backoff_base_s · 2^k``, capped
  at ``backoff_max_s``), at most ``max_retries`` times; then :class:`FetchError`.
* **Missing methods**: a kind whose ccxt method the exchange lacks (``exchange.has[...]`` false)
  raises :class:`UnsupportedMethodError` naming the exchange and the method, before any
  request.
* A tqdm progress bar over the requested time span, shown only on a terminal.

Candles are stored only once closed (open + interval ≤ end); the candle still forming at the
end of the download is left for the next run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from backtester import dtypes
from backtester.data.catalog import Catalog
from backtester.data.intervals import interval_label
from backtester.enums import FundingRateSource, Side
from backtester.extras import require

ccxt = require("ccxt", "fetch", "backtester.data.fetch")  # the "fetch" extra

MS_NS = 1_000_000
"""Nanoseconds per millisecond (ccxt timestamps are ms)."""

CANDLE_KINDS = {"bars": None, "mark_bars": "mark", "index_bars": "index"}
"""Candle kinds and the ccxt ``params['price']`` that selects them."""

KINDS = ("bars", "mark_bars", "index_bars", "trades", "funding", "tiers")
"""Everything :func:`fetch_to_catalog` can download."""

_HAS = {
    "bars": ("fetchOHLCV",),
    "mark_bars": ("fetchMarkOHLCV", "fetchOHLCV"),
    "index_bars": ("fetchIndexOHLCV", "fetchOHLCV"),
    "trades": ("fetchTrades",),
    "funding": ("fetchFundingRateHistory",),
}
_TRADE_FLUSH_ROWS = 200_000
"""Complete trades gathered before one catalog write on the backwards-paged OKX history."""

_HISTORY_TRADES = "fetch_trades[history-trades]"
"""The method named in the source of trades read from the OKX history pages."""

OKX_IDS = ("okx", "okex", "okex5")
"""ccxt ids of OKX: trades come from the history endpoint (see ``_fetch_okx_history_trades``)."""

_RETRYABLE = (ccxt.RateLimitExceeded, ccxt.RequestTimeout, ccxt.NetworkError)


class FetchError(RuntimeError):
    """A download failed (after retries, or on a non-retryable exchange error)."""


class UnsupportedMethodError(FetchError):
    """The exchange does not offer the ccxt method a kind of data needs."""


class IncompleteFetchError(FetchError):
    """The venue returned less than the span asked for; the message names the missing part."""


def create_exchange(exchange_id: str, **config: Any) -> Any:
    """Create a ccxt exchange instance by id (``"okx"``, ``"binance"``...), ccxt throttle off.

    :class:`Fetcher` waits ``exchange.rateLimit`` ms between requests itself.
    """
    if exchange_id not in ccxt.exchanges:
        known = ("okx", "binance", "binanceusdm", "binancecoinm", "bybit", "bitmex")
        examples = ", ".join(e for e in known if e in ccxt.exchanges)  # what this ccxt has
        raise ValueError(f"exchange: ccxt has no exchange {exchange_id!r} (e.g. {examples})")
    return getattr(ccxt, exchange_id)({"enableRateLimit": False, **config})


def ms_to_ns(ms: int | float | None, what: str) -> int:
    """Convert a ccxt millisecond timestamp to int ns; refuse ``None`` and non-integers."""
    if ms is None or isinstance(ms, bool) or not float(ms).is_integer():
        raise FetchError(f"{what}: expected an integer millisecond timestamp, got {ms!r}")
    return int(ms) * MS_NS


def ohlcv_to_bars(rows: Sequence[Sequence[Any]], what: str = "ohlcv") -> np.ndarray:
    """Convert ccxt OHLCV ``[[ts_ms, open, high, low, close, volume], ...]`` to ``BAR_DTYPE``.

    A missing volume (``None``, as for mark/index candles on some venues) becomes 0.
    """
    bars = np.zeros(len(rows), dtype=dtypes.BAR_DTYPE)
    for i, row in enumerate(rows):
        if len(row) < 5:
            raise FetchError(
                f"{what} row {i}: expected [ts, open, high, low, close, volume], got {row!r}"
            )
        bars[i]["ts_ns"] = ms_to_ns(row[0], f"{what} row {i}")
        for j, name in enumerate(("open", "high", "low", "close"), start=1):
            if row[j] is None:
                raise FetchError(f"{what} row {i}: {name} is missing in {row!r}")
            bars[i][name] = float(row[j])
        volume = row[5] if len(row) > 5 else None
        bars[i]["volume_base"] = 0.0 if volume is None else float(volume)
    return bars


def trades_to_records(trades: Sequence[dict[str, Any]], what: str = "trades") -> np.ndarray:
    """Convert ccxt trade dicts (``timestamp, price, amount, side``) to ``TRADE_DTYPE``.

    ``amount`` is taken as base-coin quantity (ccxt's unified unit for linear markets; for
    inverse swaps it is the contract count on some venues — see the docstring of
    :func:`fetch_to_catalog`). ``side`` ``"buy"``/``"sell"`` is the taker side; anything else
    is ``Side.NONE``.
    """
    out = np.zeros(len(trades), dtype=dtypes.TRADE_DTYPE)
    sides = {"buy": Side.BUY, "sell": Side.SELL}
    for i, trade in enumerate(trades):
        out[i]["ts_ns"] = ms_to_ns(trade.get("timestamp"), f"{what} row {i} timestamp")
        out[i]["price"] = float(trade["price"])
        out[i]["qty_base"] = float(trade["amount"])
        out[i]["side"] = int(sides.get(trade.get("side") or "", Side.NONE))
    return out


def funding_to_records(
    history: Sequence[dict[str, Any]], previous_ts_ns: int | None = None, what: str = "funding"
) -> np.ndarray:
    """Convert ccxt funding history (``timestamp, fundingRate``) to ``FUNDING_RATE_DTYPE``.

    ``funding_interval_ns`` is the time since the previous funding event (``previous_ts_ns`` for
    the first row; 0 = unknown when there is none). ``source`` is HISTORICAL.
    """
    out = np.zeros(len(history), dtype=dtypes.FUNDING_RATE_DTYPE)
    prev = previous_ts_ns
    for i, item in enumerate(history):
        ts = ms_to_ns(item.get("timestamp"), f"{what} row {i} timestamp")
        rate = item.get("fundingRate")
        if rate is None:
            raise FetchError(f"{what} row {i}: fundingRate is missing in {item!r}")
        out[i]["ts_ns"] = ts
        out[i]["funding_rate"] = float(rate)
        out[i]["funding_interval_ns"] = 0 if prev is None else ts - prev
        out[i]["source"] = int(FundingRateSource.HISTORICAL)
        prev = ts
    return out


@dataclass
class Fetcher:
    """Paginated, rate-limited, resumable downloads from one ccxt exchange into a catalog.

    Parameters
    ----------
    exchange
        A ccxt exchange instance (or any object with the same methods and ``id``, ``has``,
        ``rateLimit``).
    catalog
        Where pages are written.
    exchange_name
        Catalog exchange name (default ``exchange.id``).
    sleep, clock
        ``time.sleep`` and ``time.monotonic`` by default; injectable for tests.
    max_retries, backoff_base_s, backoff_max_s
        Retry policy for network / rate-limit errors (see module docstring).
    limit
        Rows requested per page (``None``: the exchange's default).
    progress
        Show a tqdm bar; ``None`` = only when stderr is a terminal.
    """

    exchange: Any
    catalog: Catalog
    exchange_name: str | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    limit: int | None = None
    progress: bool | None = None
    requests: int = field(default=0, init=False)
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    """Per kind: what the last download asked and got (``since``, ``first``, ``last``,
    ``rows``, ``stored_last``), checked by :func:`verify_span`."""
    _last_request: float | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        """Catalog exchange name."""
        return self.exchange_name or str(self.exchange.id)

    # ------------------------------------------------------------------ plumbing

    def require(self, kind: str) -> None:
        """Raise :class:`UnsupportedMethodError` if the exchange lacks the method for ``kind``."""
        has = getattr(self.exchange, "has", {}) or {}
        needed = _HAS.get(kind)
        if kind == "tiers":
            if has.get("fetchLeverageTiers") or has.get("fetchMarketLeverageTiers"):
                return
            needed = ("fetchLeverageTiers",)
        if needed is None:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        if not has.get(needed[0]):
            raise UnsupportedMethodError(
                f"exchange {self.exchange.id!r} does not support {needed[0]} (ccxt "
                f"exchange.has[{needed[0]!r}] is {has.get(needed[0])!r}), needed for {kind!r}"
            )

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``exchange.<method>`` with the rate-limit wait and retries with back-off."""
        for attempt in range(self.max_retries + 1):
            wait = float(getattr(self.exchange, "rateLimit", 0) or 0) / 1000.0
            if self._last_request is not None and wait > 0:
                remaining = wait - (self.clock() - self._last_request)
                if remaining > 0:
                    self.sleep(remaining)
            self._last_request = self.clock()
            self.requests += 1
            try:
                return getattr(self.exchange, method)(*args, **kwargs)
            except _RETRYABLE as error:
                if attempt == self.max_retries:
                    raise FetchError(
                        f"{self.exchange.id} {method}{args!r}: still failing after "
                        f"{self.max_retries} retries: {type(error).__name__}: {error}"
                    ) from error
                self.sleep(min(self.backoff_max_s, self.backoff_base_s * 2.0**attempt))
            except ccxt.BaseError as error:
                raise FetchError(
                    f"{self.exchange.id} {method}{args!r}: {type(error).__name__}: {error}"
                ) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _bar(self, total: int, desc: str) -> tqdm:
        show = sys.stderr.isatty() if self.progress is None else self.progress
        return tqdm(
            total=max(total, 0) // MS_NS, desc=desc, unit="ms", disable=not show, leave=False
        )

    def _start(self, kind: str, symbol: str, start_ns: int, interval_ns: int, step_ns: int) -> int:
        last = self.catalog.last_ts_ns(kind, self.name, symbol, interval_ns)
        since = start_ns if last is None else max(start_ns, last + step_ns)
        self.coverage[kind] = {
            "since": since, "first": None, "last": None, "rows": 0, "stored_last": last,
        }  # fmt: skip
        return since

    def _covered(self, kind: str, ts_ns: np.ndarray) -> None:
        """Record rows written for ``kind`` (for :func:`verify_span`)."""
        if len(ts_ns) == 0:
            return
        cov = self.coverage[kind]
        lo, hi = int(ts_ns.min()), int(ts_ns.max())
        cov["first"] = lo if cov["first"] is None else min(cov["first"], lo)
        cov["last"] = hi if cov["last"] is None else max(cov["last"], hi)
        cov["rows"] += len(ts_ns)

    # ------------------------------------------------------------------ kinds

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        start_ns: int,
        end_ns: int,
        kind: str = "bars",
        catalog_symbol: str | None = None,
    ) -> int:
        """Download closed candles with open time in ``[start_ns, end_ns − interval]``.

        ``kind`` ``"bars"`` (last trade), ``"mark_bars"`` or ``"index_bars"``. Returns the number
        of rows written.
        """
        if kind not in CANDLE_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(CANDLE_KINDS)}, got {kind!r}")
        self.require(kind)
        interval_ns = int(ccxt.Exchange.parse_timeframe(timeframe)) * 1_000_000_000
        target = catalog_symbol or symbol
        params = {} if CANDLE_KINDS[kind] is None else {"price": CANDLE_KINDS[kind]}
        since = self._start(kind, target, start_ns, interval_ns, interval_ns)
        written = 0
        label = f"{self.name} {target} {kind}-{interval_label(interval_ns)}"
        with self._bar(end_ns - since, label) as bar:
            while since + interval_ns <= end_ns:
                rows = self.call(
                    "fetch_ohlcv", symbol, timeframe, since // MS_NS, self.limit, params
                )
                bars = ohlcv_to_bars(rows or [], f"{label} page since {since}")
                bars = bars[(bars["ts_ns"] >= since) & (bars["ts_ns"] + interval_ns <= end_ns)]
                if len(bars) == 0:
                    break
                written += self._store(kind, "fetch_ohlcv", symbol, target, bars, interval_ns)
                new_since = int(bars["ts_ns"][-1]) + interval_ns
                bar.update((new_since - since) // MS_NS)
                since = new_since
        return written

    def fetch_trades(
        self, symbol: str, start_ns: int, end_ns: int, catalog_symbol: str | None = None
    ) -> int:
        """Download trades with ``start_ns <= ts < end_ns``; returns the rows written.

        A page is written only up to its last complete millisecond (trades sharing the page's
        final millisecond are fetched again by the next page), so no trade is lost or doubled.
        """
        self.require("trades")
        target = catalog_symbol or symbol
        since = self._start("trades", target, start_ns, 0, MS_NS)
        if str(getattr(self.exchange, "id", "")) in OKX_IDS:
            return self._fetch_okx_history_trades(symbol, target, since, end_ns)
        written = 0
        label = f"{self.name} {target} trades"
        with self._bar(end_ns - since, label) as bar:
            while since < end_ns:
                page = self.call("fetch_trades", symbol, since // MS_NS, self.limit)
                trades = trades_to_records(page or [], f"{label} page since {since}")
                trades = trades[np.argsort(trades["ts_ns"], kind="stable")]
                trades = trades[(trades["ts_ns"] >= since) & (trades["ts_ns"] < end_ns)]
                if len(trades) == 0:
                    break
                full_page = self.limit is not None and len(page) >= self.limit
                last = int(trades["ts_ns"][-1])
                if full_page:
                    complete = trades[trades["ts_ns"] < last]
                    if len(complete) == 0:
                        raise FetchError(
                            f"{label}: more than limit={self.limit} trades at ts {last} ns; "
                            "raise the page limit"
                        )
                    trades, new_since = complete, last
                else:
                    new_since = last + MS_NS
                written += self._store("trades", "fetch_trades", symbol, target, trades)
                bar.update((new_since - since) // MS_NS)
                since = new_since
        return written

    def _fetch_okx_history_trades(self, symbol: str, target: str, since: int, end_ns: int) -> int:
        """OKX trades through the history endpoint, paged backwards from ``end_ns``.

        ccxt's ``okx.fetch_trades`` ignores ``since`` on its default endpoint (the latest ~100
        trades). ``GET /api/v5/market/history-trades`` pages by time (``type=2``,
        ``after`` = trades before a ms timestamp) or by trade id (``type=1``, ``after`` = ids
        below): the first page is taken by time before ``end_ns``, the next ones by the
        smallest trade id seen, so no trade of a millisecond split across pages is lost.
        Rows are written oldest-last in slices that never share a timestamp with the slice
        written before (the trades of the oldest millisecond seen wait for the next page).
        """
        label = f"{self.name} {target} trades"
        base = {"method": "publicGetMarketHistoryTrades"}
        params: dict[str, Any] = {**base, "type": "2", "after": str(end_ns // MS_NS)}
        pending: list[np.ndarray] = []
        ready: list[np.ndarray] = []  # complete rows, newest slice first
        written = 0
        with self._bar(end_ns - since, label) as bar:
            previous = end_ns
            while True:
                page = self.call("fetch_trades", symbol, None, self.limit or 100, params)
                if not page:
                    break
                ids = [int(t.get("id") or 0) for t in page]
                order = sorted(range(len(page)), key=lambda i: (page[i]["timestamp"], ids[i]))
                trades = trades_to_records([page[i] for i in order], f"{label} page")
                oldest = int(trades["ts_ns"][0])
                # this page's trades are older (lower ids) than the pending ones, also inside
                # one millisecond: first, then a stable sort keeps the trade-id order
                joined = np.concatenate([trades[trades["ts_ns"] >= since], *pending])
                joined = joined[np.argsort(joined["ts_ns"], kind="stable")]
                # everything newer than the oldest millisecond of this page is complete
                ready.append(joined[joined["ts_ns"] > oldest])
                pending = [joined[joined["ts_ns"] <= oldest]]
                if sum(len(r) for r in ready) >= _TRADE_FLUSH_ROWS:  # bounded memory
                    written += self._store(
                        "trades", _HISTORY_TRADES, symbol, target, np.concatenate(ready[::-1])
                    )
                    ready = []
                bar.update(max(0, previous - oldest) // MS_NS)
                previous = oldest
                if oldest < since:
                    break
                params = {**base, "type": "1", "after": str(min(ids))}
        rest = np.concatenate([*pending, *ready[::-1]]) if pending or ready else None
        if rest is not None and len(rest):
            written += self._store("trades", _HISTORY_TRADES, symbol, target, rest)
        return written

    def _store(
        self,
        kind: str,
        method: str,
        symbol: str,
        target: str,
        records: np.ndarray,
        interval_ns: int = 0,
    ) -> int:
        """Write ``records`` fetched by ``method`` to the catalog and count them as covered.

        Returns the number of rows written.
        """
        self.catalog.write(
            kind, self.name, target, records, source=self._source(method, symbol),
            interval_ns=interval_ns,
        )  # fmt: skip
        self._covered(kind, records["ts_ns"])
        return len(records)

    def fetch_funding(
        self, symbol: str, start_ns: int, end_ns: int, catalog_symbol: str | None = None
    ) -> int:
        """Download funding-rate history with ``start_ns <= ts < end_ns``; returns rows written."""
        self.require("funding")
        target = catalog_symbol or symbol
        previous = self.catalog.last_ts_ns("funding", self.name, target)
        since = self._start("funding", target, start_ns, 0, MS_NS)
        written = 0
        label = f"{self.name} {target} funding"
        with self._bar(end_ns - since, label) as bar:
            while since < end_ns:
                page = self.call("fetch_funding_rate_history", symbol, since // MS_NS, self.limit)
                page = sorted(page or [], key=lambda item: item.get("timestamp") or 0)
                records = funding_to_records(page, previous, f"{label} page since {since}")
                keep = (records["ts_ns"] >= since) & (records["ts_ns"] < end_ns)
                records = records[keep]
                if len(records) == 0:
                    break
                written += self._store(
                    "funding", "fetch_funding_rate_history", symbol, target, records
                )
                previous = int(records["ts_ns"][-1])
                bar.update((previous + MS_NS - since) // MS_NS)
                since = previous + MS_NS
        return written

    def fetch_tiers(
        self,
        symbol: str,
        basis: int,
        valid_from_ns: int,
        catalog_symbol: str | None = None,
    ) -> Path:
        """Snapshot the current leverage tiers, stored as valid from ``valid_from_ns``.

        ``basis`` is the :class:`~backtester.enums.TierBasis` of ccxt's min/maxNotional for this
        venue (OKX: contracts; Binance USDⓈ-M: quote notional; COIN-M: coin notional).
        """
        from backtester.data.importers.tiers import tiers_from_ccxt

        self.require("tiers")
        has = getattr(self.exchange, "has", {}) or {}
        if has.get("fetchLeverageTiers"):
            response = self.call("fetch_leverage_tiers", [symbol])
        else:
            response = self.call("fetch_market_leverage_tiers", symbol)
        source = self._source("fetch_leverage_tiers", symbol)
        table = tiers_from_ccxt(response, symbol, basis, valid_from_ns, source)
        return self.catalog.write_tiers(
            self.name, catalog_symbol or symbol, table.rows, int(table.basis), valid_from_ns,
            source,
        )  # fmt: skip

    def _source(self, method: str, symbol: str) -> str:
        return f"ccxt {ccxt.__version__} {self.exchange.id}.{method}({symbol!r})"


def _utc(ts_ns: int) -> str:
    import pandas as pd

    return str(pd.Timestamp(int(ts_ns), unit="ns", tz="UTC"))


def verify_span(
    label: str,
    kind: str,
    coverage: dict[str, Any],
    start_ns: int | None,
    end_ns: int,
    interval_ns: int,
) -> None:
    """Raise :class:`IncompleteFetchError` when a download covers less than the span asked.

    ``coverage`` is :attr:`Fetcher.coverage` of ``kind``. Checked: rows at all (unless the
    stored stream already reached the end); the end — the last closed candle (one candle of
    slack for a venue still publishing it), the last funding within 1.5 funding intervals of
    the end; the start, when given and nothing was stored before — the first candle on the
    first grid time at or after it, the first funding within 1.5 intervals, the first trade
    within an hour. Trades have no end check: a quiet market may not trade.
    """
    since = coverage["since"]
    if since >= end_ns:
        return  # the stored stream already reached the end: nothing was asked
    first, last, rows = coverage["first"], coverage["last"], coverage["rows"]
    asked = f"[{_utc(since)}, {_utc(end_ns)})"
    hint = (
        "the venue keeps less history than asked or its API ignores the start time; nothing "
        "was stored (the fetch is one transaction): fetch a span the venue has"
    )
    if last is None:
        raise IncompleteFetchError(f"{label}: the venue returned no rows for {asked}; {hint}")
    fresh = start_ns is not None and coverage["stored_last"] is None
    missing = None
    if kind in CANDLE_KINDS:
        last_closed = (end_ns // interval_ns) * interval_ns - interval_ns
        if last < last_closed - interval_ns:
            missing = (last + interval_ns, end_ns)
        grid_first = -(-since // interval_ns) * interval_ns
        if fresh and first > grid_first:
            missing = missing or (since, first)
    elif kind == "funding":
        step = 8 * 3_600_000_000_000
        if end_ns - last > 1.5 * step:
            missing = (last + step, end_ns)
        if fresh and first - since > 1.5 * step:
            missing = missing or (since, first)
    elif kind == "trades" and fresh and first - since > 3_600_000_000_000:
        missing = (since, first)
    if missing is not None:
        raise IncompleteFetchError(
            f"{label}: asked {asked}, the venue returned {rows:,} rows from {_utc(first)} to "
            f"{_utc(last)}: missing {_utc(missing[0])} → {_utc(missing[1])}; {hint}"
        )


def _resolve_symbol(exchange: Any, symbol: str) -> str:
    """Return the ccxt unified symbol for a unified symbol or a venue id (``BTC-USDT-SWAP``)."""
    exchange.load_markets()
    if symbol in exchange.markets:
        return symbol
    by_id = getattr(exchange, "markets_by_id", None) or {}
    if symbol in by_id:
        found = by_id[symbol]
        return str((found[0] if isinstance(found, list) else found)["symbol"])
    raise ValueError(
        f"symbol: {exchange.id} has no market {symbol!r} (unified like 'BTC/USDT:USDT' or the "
        "venue id like 'BTC-USDT-SWAP')"
    )


def fetch_to_catalog(
    exchange: str | Any,
    symbol: str,
    *,
    kinds: Iterable[str] = ("bars", "index_bars", "mark_bars", "funding"),
    start_ns: int | None = None,
    end_ns: int | None = None,
    interval_ns: int = 60_000_000_000,
    catalog: str | Path | Catalog = "data/catalog",
    tier_basis: int | None = None,
    fetcher_options: dict[str, Any] | None = None,
) -> dict[str, int | str]:
    """Download several kinds of one symbol into a catalog (what ``backtester fetch`` runs).

    Parameters
    ----------
    exchange
        ccxt exchange id or instance.
    symbol
        Unified ccxt symbol or the venue's id; the catalog stores it under the name given.
    kinds
        Subset of :data:`KINDS`.
    start_ns, end_ns
        Time span (ns UTC). ``start_ns`` ``None`` = from the exchange's earliest data (or where
        the stored stream ends); ``end_ns`` defaults to now.
    interval_ns
        Candle length for candle kinds (must be a ccxt timeframe: 1m, 5m, 1h, 8h, 1d...).
    catalog
        Catalog or its root directory.
    tier_basis
        :class:`~backtester.enums.TierBasis` of the venue's tier table (needed for ``tiers``).
    fetcher_options
        Extra :class:`Fetcher` arguments (``limit``, ``max_retries``, ``progress``...).

    Returns
    -------
    dict
        Rows written per kind (the tier snapshot path for ``tiers``).

    Notes
    -----
    For inverse swaps ccxt reports trade ``amount`` in contracts on some venues; convert with
    the contract's face value before treating it as base coin.
    """
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"kinds: unknown {unknown}; expected some of {', '.join(KINDS)}")
    instance = create_exchange(exchange) if isinstance(exchange, str) else exchange
    cat = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
    fetcher = Fetcher(instance, cat, **(fetcher_options or {}))
    for kind in kinds:
        fetcher.require(kind)  # fail before any download
    if "tiers" in kinds and tier_basis is None:
        raise ValueError("tier_basis: needed to fetch tiers (TierBasis of the venue's table)")
    ccxt_symbol = _resolve_symbol(instance, symbol) if hasattr(instance, "load_markets") else symbol
    end = time.time_ns() if end_ns is None else int(end_ns)
    start = 0 if start_ns is None else int(start_ns)
    timeframe = interval_label(interval_ns)
    result: dict[str, int | str] = {}
    # one transaction: every kind and month of the fetch becomes visible together, or (on an
    # error or a kill) none of it does
    with cat.transaction():
        for kind in kinds:
            if kind in CANDLE_KINDS:
                result[kind] = fetcher.fetch_ohlcv(ccxt_symbol, timeframe, start, end, kind, symbol)
            elif kind == "trades":
                result[kind] = fetcher.fetch_trades(ccxt_symbol, start, end, symbol)
            elif kind == "funding":
                result[kind] = fetcher.fetch_funding(ccxt_symbol, start, end, symbol)
            else:
                path = fetcher.fetch_tiers(ccxt_symbol, int(tier_basis or 0), end, symbol)
                result[kind] = str(path)
                continue
            # a venue that returned less than asked fails the whole fetch (nothing stored)
            verify_span(
                f"{fetcher.name} {symbol} {kind}", kind, fetcher.coverage[kind], start_ns, end,
                interval_ns,
            )  # fmt: skip
    return result


fetch = fetch_to_catalog
