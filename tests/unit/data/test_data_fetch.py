"""The ccxt downloader against a stand-in exchange: ccxt's methods and structures, no network."""

from __future__ import annotations

import ccxt
import numpy as np
import pytest

from backtester.data.catalog import Catalog
from backtester.data.fetch import (
    Fetcher,
    FetchError,
    UnsupportedMethodError,
    fetch_to_catalog,
    funding_to_records,
    ohlcv_to_bars,
    trades_to_records,
)
from backtester.data.loader import load_market_data
from backtester.enums import FundingRateSource, Side, TierBasis
from backtester.results import record_digest

T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MIN_MS = 60_000
HOUR8_MS = 8 * 3_600_000
MS = 1_000_000


class StandInExchange:
    """Implements the ccxt calls the fetcher uses, over a fixed in-memory market.

    Responses follow ccxt's documented unified structures: OHLCV lists
    ``[ts_ms, o, h, l, c, v]``, trade dicts ``{timestamp, price, amount, side}``, funding
    dicts ``{timestamp, fundingRate}``, leverage tiers ``{symbol: [tier dict, ...]}``.
    """

    id = "standin"
    rateLimit = 100  # ms, ccxt's attribute name

    def __init__(self, minutes=25, page=10, trades_per_ms=None, fail_after=None, has=None):
        self.has = {
            "fetchOHLCV": True,
            "fetchMarkOHLCV": True,
            "fetchIndexOHLCV": True,
            "fetchTrades": True,
            "fetchFundingRateHistory": True,
            "fetchLeverageTiers": True,
            **(has or {}),
        }
        self.page = page
        self.minutes = minutes
        self.calls: list[tuple] = []
        self.fail_after = fail_after  # raise a non-retryable error on this call number
        self.errors: list[Exception] = []  # raised first, one per call
        self.trades = []
        counts = trades_per_ms or [1, 3, 1, 2, 1, 1, 4, 1, 1, 2, 1, 1]
        for i, n in enumerate(counts * 3):
            for k in range(n):
                self.trades.append(
                    {
                        "timestamp": T0_MS + 7 * i,
                        "datetime": None,
                        "symbol": "BTC/USDT:USDT",
                        "price": 42_000.0 + i + 0.5 * k,
                        "amount": 0.01 * (k + 1),
                        "side": "buy" if (i + k) % 2 else "sell",
                    }
                )

    def _record(self, *call):
        self.calls.append(call)
        if self.errors:
            raise self.errors.pop(0)
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise ccxt.ExchangeNotAvailable("maintenance")  # a NetworkError: retried...
        return None

    def _price(self, minute, params):
        base = 42_000.0 + 10 * minute
        return base + {"mark": 1.0, "index": -1.0}.get(params.get("price"), 0.0)

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        params = params or {}
        self._record("fetch_ohlcv", symbol, timeframe, since, limit, dict(params))
        step = ccxt.Exchange.parse_timeframe(timeframe) * 1000
        first = max(0, -(-(since - T0_MS) // step)) if since is not None else 0
        rows = []
        for m in range(first, min(first + (limit or self.page), self.minutes)):
            p = self._price(m, params)
            volume = None if params.get("price") else 1.5 + m
            rows.append([T0_MS + m * step, p, p + 5.0, p - 5.0, p + 2.0, volume])
        return rows

    def fetch_trades(self, symbol, since=None, limit=None, params=None):
        self._record("fetch_trades", symbol, since, limit)
        rows = [t for t in self.trades if since is None or t["timestamp"] >= since]
        return [dict(t) for t in rows[: limit or self.page]]

    def fetch_funding_rate_history(self, symbol=None, since=None, limit=None, params=None):
        self._record("fetch_funding_rate_history", symbol, since, limit)
        rows = []
        for k in range(12):
            ts = T0_MS + k * HOUR8_MS
            if since is None or ts >= since:
                rate = 0.0001 * (k % 4 - 1)
                rows.append({"symbol": symbol, "timestamp": ts, "fundingRate": rate, "info": {}})
        return rows[: limit or self.page]

    def fetch_leverage_tiers(self, symbols=None, params=None):
        self._record("fetch_leverage_tiers", tuple(symbols or ()))
        tiers = [
            {
                "tier": 1,
                "symbol": "BTC/USDT:USDT",
                "currency": "USDT",
                "minNotional": 0.0,
                "maxNotional": 50_000.0,
                "maintenanceMarginRate": 0.004,
                "maxLeverage": 125.0,
                "info": {"cum": "0.0"},
            },
            {
                "tier": 2,
                "symbol": "BTC/USDT:USDT",
                "currency": "USDT",
                "minNotional": 50_000.0,
                "maxNotional": 250_000.0,
                "maintenanceMarginRate": 0.005,
                "maxLeverage": 100.0,
                "info": {"cum": "50.0"},
            },
        ]
        return {"BTC/USDT:USDT": tiers}


class Recorder:
    """Injected sleep and clock: records the waits, never sleeps, time advances by the waits."""

    def __init__(self):
        self.sleeps: list[float] = []
        self.now = 0.0

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def _fetcher(exchange, root, **kw):
    rec = Recorder()
    fetcher = Fetcher(exchange, Catalog(root), sleep=rec.sleep, clock=rec.clock, **kw)
    return fetcher, rec


END_NS = (T0_MS + 25 * MIN_MS) * MS


def test_conversions_ms_to_ns_and_fields():
    bars = ohlcv_to_bars([[T0_MS, 1.0, 2.0, 0.5, 1.5, None]])
    assert bars["ts_ns"][0] == T0_MS * MS
    assert bars["volume_base"][0] == 0.0  # mark/index candles have no volume
    assert (bars["open"][0], bars["high"][0], bars["low"][0], bars["close"][0]) == (
        1.0,
        2.0,
        0.5,
        1.5,
    )
    trades = trades_to_records(
        [{"timestamp": T0_MS + 5, "price": "42000.5", "amount": 0.25, "side": "sell"}]
    )
    assert trades["ts_ns"][0] == (T0_MS + 5) * MS
    assert trades["price"][0] == 42000.5
    assert trades["qty_base"][0] == 0.25
    assert trades["side"][0] == Side.SELL
    funding = funding_to_records(
        [
            {"timestamp": T0_MS, "fundingRate": 0.0001},
            {"timestamp": T0_MS + HOUR8_MS, "fundingRate": -2e-4},
        ]
    )
    assert funding["funding_interval_ns"].tolist() == [0, HOUR8_MS * MS]
    assert funding["funding_rate"].tolist() == [0.0001, -0.0002]
    assert np.all(funding["source"] == FundingRateSource.HISTORICAL)
    with pytest.raises(FetchError, match="integer millisecond"):
        trades_to_records([{"timestamp": None, "price": 1.0, "amount": 1.0, "side": "buy"}])


@pytest.mark.parametrize(
    ("kind", "offset"), [("bars", 0.0), ("mark_bars", 1.0), ("index_bars", -1.0)]
)
def test_ohlcv_paginates_across_pages(tmp_path, kind, offset):
    ex = StandInExchange(minutes=25, page=10)
    fetcher, rec = _fetcher(ex, tmp_path)
    written = fetcher.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS, kind=kind)
    assert written == 25
    sinces = [c[3] for c in ex.calls]
    assert sinces == [T0_MS, T0_MS + 10 * MIN_MS, T0_MS + 20 * MIN_MS]
    expected_params = {} if kind == "bars" else {"price": kind.split("_")[0]}
    assert all(c[5] == expected_params for c in ex.calls)
    stored = Catalog(tmp_path).read(kind, "standin", "BTC/USDT:USDT", interval_ns=60 * 10**9)
    assert len(stored) == 25
    assert np.all(np.diff(stored["ts_ns"]) == MIN_MS * MS)
    assert stored["open"][24] == 42_000.0 + 240 + offset
    # the rate limit: 100 ms between consecutive requests
    assert rec.sleeps == [0.1, 0.1]


def test_candle_still_forming_is_not_stored(tmp_path):
    ex = StandInExchange(minutes=25, page=10)
    fetcher, _ = _fetcher(ex, tmp_path)
    end = (T0_MS + 12 * MIN_MS + 30_000) * MS  # minute 12 is still open at the end
    assert fetcher.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, end) == 12


def test_rate_limit_error_then_success_backs_off_increasingly(tmp_path):
    ex = StandInExchange(minutes=5, page=10)
    ex.errors = [
        ccxt.RateLimitExceeded("429 too many requests"),
        ccxt.RequestTimeout("timeout"),
        ccxt.RateLimitExceeded("429 too many requests"),
    ]
    fetcher, rec = _fetcher(ex, tmp_path, backoff_base_s=2.0)
    assert fetcher.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS) == 5
    # back-off 2, 4, 8 s (the rate-limit wait is covered by the back-off), then the 0.1 s
    # rate-limit wait before the next page
    assert rec.sleeps == [2.0, 4.0, 8.0, 0.1]
    assert len(ex.calls) == 5  # 3 failures, 1 success, 1 empty page


def test_retries_exhausted_raise_fetch_error(tmp_path):
    ex = StandInExchange(minutes=5)
    ex.errors = [ccxt.RateLimitExceeded("429")] * 4
    fetcher, rec = _fetcher(ex, tmp_path, max_retries=3, backoff_base_s=1.0, backoff_max_s=3.0)
    with pytest.raises(FetchError, match="after 3 retries: RateLimitExceeded"):
        fetcher.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS)
    assert rec.sleeps == [1.0, 2.0, 3.0]  # capped at backoff_max_s


def test_non_retryable_exchange_error_is_not_retried(tmp_path):
    ex = StandInExchange(minutes=5)
    ex.errors = [ccxt.BadSymbol("no such market")]
    fetcher, rec = _fetcher(ex, tmp_path)
    with pytest.raises(FetchError, match="BadSymbol: no such market"):
        fetcher.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS)
    assert len(ex.calls) == 1
    assert rec.sleeps == []


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    whole, _ = _fetcher(StandInExchange(minutes=25, page=10), tmp_path / "whole")
    whole.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS)

    broken_exchange = StandInExchange(minutes=25, page=10, fail_after=1)
    broken_exchange.errors = []
    broken, _ = _fetcher(broken_exchange, tmp_path / "resumed", max_retries=1)
    with pytest.raises(FetchError, match="ExchangeNotAvailable"):
        broken.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS)
    catalog = Catalog(tmp_path / "resumed")
    assert len(catalog.read("bars", "standin", "BTC/USDT:USDT", interval_ns=60 * 10**9)) == 10

    again = StandInExchange(minutes=25, page=10)
    resumed, _ = _fetcher(again, tmp_path / "resumed")
    assert resumed.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS) == 15
    assert again.calls[0][3] == T0_MS + 10 * MIN_MS  # fetched only the rest
    a = Catalog(tmp_path / "whole").read("bars", "standin", "BTC/USDT:USDT", interval_ns=60 * 10**9)
    b = catalog.read("bars", "standin", "BTC/USDT:USDT", interval_ns=60 * 10**9)
    assert record_digest(a) == record_digest(b)
    # nothing left: a third run requests nothing
    third = StandInExchange(minutes=25, page=10)
    done, _ = _fetcher(third, tmp_path / "resumed")
    assert done.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS) == 0
    assert third.calls == []


def test_trades_paginate_without_losing_or_doubling_same_millisecond(tmp_path):
    ex = StandInExchange(page=5)
    fetcher, _ = _fetcher(ex, tmp_path, limit=5)
    end = (T0_MS + 10_000) * MS
    written = fetcher.fetch_trades("BTC/USDT:USDT", T0_MS * MS, end)
    stored = Catalog(tmp_path).read("trades", "standin", "BTC/USDT:USDT")
    assert written == len(stored) == len(ex.trades)
    assert stored["price"].tolist() == [t["price"] for t in ex.trades]
    assert stored["qty_base"].tolist() == [t["amount"] for t in ex.trades]
    assert len(ex.calls) > 5


def test_trades_resume(tmp_path):
    whole_ex = StandInExchange(page=5)
    whole, _ = _fetcher(whole_ex, tmp_path / "a", limit=5)
    end = (T0_MS + 10_000) * MS
    whole.fetch_trades("BTC/USDT:USDT", T0_MS * MS, end)
    ex = StandInExchange(page=5, fail_after=3)
    broken, _ = _fetcher(ex, tmp_path / "b", limit=5, max_retries=0)
    with pytest.raises(FetchError):
        broken.fetch_trades("BTC/USDT:USDT", T0_MS * MS, end)
    resumed, _ = _fetcher(StandInExchange(page=5), tmp_path / "b", limit=5)
    resumed.fetch_trades("BTC/USDT:USDT", T0_MS * MS, end)
    a = Catalog(tmp_path / "a").read("trades", "standin", "BTC/USDT:USDT")
    b = Catalog(tmp_path / "b").read("trades", "standin", "BTC/USDT:USDT")
    assert record_digest(a) == record_digest(b)


def test_funding_history_paginates_with_intervals(tmp_path):
    ex = StandInExchange(page=5)
    fetcher, _ = _fetcher(ex, tmp_path)
    end = (T0_MS + 12 * HOUR8_MS) * MS
    assert fetcher.fetch_funding("BTC/USDT:USDT", T0_MS * MS, end) == 12
    stored = Catalog(tmp_path).read("funding", "standin", "BTC/USDT:USDT")
    assert stored["funding_interval_ns"].tolist() == [0] + [HOUR8_MS * MS] * 11
    assert stored["funding_rate"][:4].tolist() == [-0.0001, 0.0, 0.0001, 0.0002]
    sinces = [c[2] for c in ex.calls]
    assert sinces == [T0_MS] + [T0_MS + k * HOUR8_MS + 1 for k in (4, 9, 11)]


def test_missing_method_names_exchange_and_method(tmp_path):
    ex = StandInExchange(has={"fetchFundingRateHistory": False})
    fetcher, _ = _fetcher(ex, tmp_path)
    with pytest.raises(UnsupportedMethodError, match="'standin' does not support fetchFundingRate"):
        fetcher.fetch_funding("BTC/USDT:USDT", T0_MS * MS, END_NS)
    assert ex.calls == []
    with pytest.raises(UnsupportedMethodError, match="fetchFundingRateHistory"):
        fetch_to_catalog(ex, "BTC/USDT:USDT", kinds=["bars", "funding"], catalog=tmp_path)
    assert ex.calls == []  # refused before any download


def test_leverage_tiers_snapshot(tmp_path):
    ex = StandInExchange()
    fetcher, _ = _fetcher(ex, tmp_path)
    path = fetcher.fetch_tiers("BTC/USDT:USDT", TierBasis.NOTIONAL_QUOTE, T0_MS * MS)
    assert path.exists()
    (valid_from, basis, rows, source) = Catalog(tmp_path).read_tiers("standin", "BTC/USDT:USDT")[0]
    assert valid_from == T0_MS * MS
    assert basis == TierBasis.NOTIONAL_QUOTE
    assert rows["maintenance_margin_rate"].tolist() == [0.004, 0.005]
    assert rows["maintenance_amount_settle"].tolist() == [0.0, 50.0]
    assert "fetch_leverage_tiers" in source


def test_fetch_to_catalog_several_kinds(tmp_path):
    ex = StandInExchange(minutes=25, page=10)
    result = fetch_to_catalog(
        ex,
        "BTC/USDT:USDT",
        kinds=["bars", "mark_bars", "index_bars", "funding"],
        start_ns=T0_MS * MS,
        end_ns=END_NS,
        catalog=tmp_path,
        fetcher_options={"sleep": lambda s: None, "progress": False},
    )
    assert result == {"bars": 25, "mark_bars": 25, "index_bars": 25, "funding": 1}
    data = load_market_data(Catalog(tmp_path), "standin", "BTC/USDT:USDT")
    assert len(data.bars) == 25
    # each index candle is replayed as its path: open at t0 + 1 ns, high, low, close at t0 + 1m
    assert len(data.index) == 4 * 25
    assert data.index_interval_ns == MIN_MS * MS
    assert data.index["ts_ns"][:4].tolist() == [
        T0_MS * MS + 1,
        (T0_MS + MIN_MS // 3) * MS,
        (T0_MS + 2 * MIN_MS // 3) * MS,
        (T0_MS + MIN_MS) * MS,
    ]
    with pytest.raises(ValueError, match="kinds: unknown"):
        fetch_to_catalog(ex, "BTC/USDT:USDT", kinds=["ohlc"], catalog=tmp_path)


class MarketTiersExchange(StandInExchange):
    """Like OKX in ccxt: no fetchLeverageTiers, but fetchMarketLeverageTiers(symbol)."""

    def fetch_market_leverage_tiers(self, symbol, params=None):
        self._record("fetch_market_leverage_tiers", symbol)
        rows = StandInExchange.fetch_leverage_tiers(self, [symbol])["BTC/USDT:USDT"]
        self.calls.pop()  # count one call
        for row in rows:
            row["info"] = {"imr": "0.01"}
        return rows


def test_market_leverage_tiers_fallback_and_no_tier_method(tmp_path):
    ex = MarketTiersExchange(has={"fetchLeverageTiers": False, "fetchMarketLeverageTiers": True})
    fetcher, _ = _fetcher(ex, tmp_path)
    fetcher.fetch_tiers("BTC/USDT:USDT", TierBasis.CONTRACTS, T0_MS * MS)
    assert [c[0] for c in ex.calls] == ["fetch_market_leverage_tiers"]
    rows = Catalog(tmp_path).read_tiers("standin", "BTC/USDT:USDT")[0][2]
    assert rows["initial_margin_rate"].tolist() == [0.01, 0.01]
    none = StandInExchange(has={"fetchLeverageTiers": False})
    fetcher, _ = _fetcher(none, tmp_path)
    with pytest.raises(
        UnsupportedMethodError, match="'standin' does not support fetchLeverageTiers"
    ):
        fetcher.fetch_tiers("BTC/USDT:USDT", TierBasis.CONTRACTS, T0_MS * MS)


def test_progress_bar_counts_the_span(tmp_path, capsys):
    ex = StandInExchange(minutes=25, page=10)
    fetcher, _ = _fetcher(ex, tmp_path, progress=True)
    assert fetcher.fetch_ohlcv("BTC/USDT:USDT", "1m", T0_MS * MS, END_NS) == 25
    err = capsys.readouterr().err
    assert "standin BTC/USDT:USDT bars-1m" in err
    assert "/1500000 " in err  # total = 25 minutes in ms
