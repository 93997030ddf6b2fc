"""Downloads that say what they got: a venue returning less than the span asked fails the fetch
(naming the gap, nothing stored); OKX trades come from the history endpoint, paged backwards
by trade id, with bursts split across pages kept whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from backtester.cli import main
from backtester.data import fetch as fetch_module
from backtester.data.catalog import Catalog
from backtester.data.fetch import IncompleteFetchError, fetch_to_catalog

T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MIN_MS = 60_000
HOUR8_MS = 8 * 3_600_000
MS = 1_000_000


class TruncatingExchange:
    """ccxt's call shapes over a market of 60 one-minute candles and 30 days of 8-hourly
    funding, from which it serves only what a real venue with short memory would: candles from
    minute ``keep_from`` on, funding from day ``funding_from`` on."""

    id = "truncating"
    rateLimit = 0

    def __init__(self, keep_from: int = 0, funding_from: int = 0, minutes: int = 60) -> None:
        self.has = {"fetchOHLCV": True, "fetchFundingRateHistory": True, "fetchTrades": True}
        self.keep_from, self.funding_from, self.minutes = keep_from, funding_from, minutes

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        step = int(timeframe[:-1]) * {"m": 1, "h": 60}[timeframe[-1]]  # in minutes
        first = max(self.keep_from, -(-(since - T0_MS) // (step * MIN_MS)) if since else 0)
        rows = []
        for m in range(first, min(first + 20, self.minutes // step)):
            p = 100.0 + m
            rows.append([T0_MS + m * step * MIN_MS, p, p + 1, p - 1, p, 1.0])
        return rows

    def fetch_funding_rate_history(self, symbol=None, since=None, limit=None, params=None):
        out = []
        for k in range(self.funding_from * 3, 90):
            ts = T0_MS + k * HOUR8_MS
            if since is None or ts >= since:
                out.append({"timestamp": ts, "fundingRate": 0.0001})
        return out[:20]


def fetch(ex, tmp_path: Path, kinds, minutes: int = 60, end_ms: int | None = None, step=1):
    return fetch_to_catalog(
        ex, "BTC-USDT-SWAP", kinds=kinds, start_ns=T0_MS * MS,
        end_ns=(end_ms or T0_MS + minutes * MIN_MS) * MS, interval_ns=step * MIN_MS * MS,
        catalog=tmp_path / "cat", fetcher_options={"sleep": lambda s: None, "progress": False},
    )  # fmt: skip


def test_complete_download_passes_the_span_check(tmp_path: Path) -> None:
    assert fetch(TruncatingExchange(), tmp_path, ["bars"]) == {"bars": 60}


def test_candles_missing_at_the_start_fail_the_fetch_and_store_nothing(tmp_path: Path) -> None:
    with pytest.raises(
        IncompleteFetchError,
        match=r"truncating BTC-USDT-SWAP bars: asked \[2024-01-01 00:00:00\+00:00, "
        r"2024-01-01 01:00:00\+00:00\), the venue returned 20 rows from 2024-01-01 00:40:00\+00:00"
        r" to 2024-01-01 00:59:00\+00:00: missing 2024-01-01 00:00:00\+00:00 → "
        r"2024-01-01 00:40:00\+00:00; .*nothing was stored",
    ):
        fetch(TruncatingExchange(keep_from=40), tmp_path, ["bars"])
    assert Catalog(tmp_path / "cat").datasets().empty


def test_candles_missing_at_the_end_name_the_gap(tmp_path: Path) -> None:
    # the venue stops at minute 30 of the 60 asked
    ex = TruncatingExchange(minutes=30)
    with pytest.raises(IncompleteFetchError, match=r"missing 2024-01-01 00:30:00\+00:00 → 2024-01"
                       r"-01 01:00:00\+00:00"):  # fmt: skip
        fetch(ex, tmp_path, ["bars"])


def test_short_funding_history_fails_the_whole_fetch(tmp_path: Path) -> None:
    """Funding kept from day 20 only (as OKX keeps ~3 months): the bars fetched first in the
    same command are not stored either (one transaction)."""
    ex = TruncatingExchange(funding_from=20, minutes=30 * 1440)
    end_ms = T0_MS + 30 * 86_400_000
    with pytest.raises(IncompleteFetchError, match=r"funding: .*missing 2024-01-01 00:00:00\+00:"
                       r"00 → 2024-01-21 00:00:00\+00:00"):  # fmt: skip
        fetch(ex, tmp_path, ["bars", "funding"], end_ms=end_ms, step=60)  # hourly bars
    assert Catalog(tmp_path / "cat").datasets().empty


def test_cli_fetch_exits_1_naming_the_gap(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(fetch_module, "create_exchange", lambda name: TruncatingExchange(40))
    code = main(["fetch", "okx", "BTC-USDT-SWAP", "--kinds", "bars", "--start", "2024-01-01",
                 "--end", "2024-01-01 01:00", "--catalog", str(tmp_path / "cat")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("backtester: error: IncompleteFetchError: truncating BTC-USDT-SWAP bars")
    assert "missing 2024-01-01 00:00:00+00:00 → 2024-01-01 00:40:00+00:00" in err


def test_fetch_offers_only_venues_the_installed_ccxt_has(capsys) -> None:
    import ccxt

    with pytest.raises(SystemExit):
        main(["fetch", "--help"])
    text = capsys.readouterr().out
    assert "okx" in text
    assert ("bitmex" in text) is ("bitmex" in ccxt.exchanges)
    assert main(["fetch", "zzzzzz", "BTC"]) == 2
    err = capsys.readouterr().err
    assert "ccxt has no exchange 'zzzzzz'; e.g. okx, binanceusdm" in err
    assert ("bitmex" in err) is ("bitmex" in ccxt.exchanges)


class OkxLike:
    """OKX's two trade endpoints as ccxt exposes them: the default one ignores ``since`` and
    returns the latest 100 trades; ``publicGetMarketHistoryTrades`` pages backwards by
    time (``type=2``: trades before ``after`` ms) or by trade id (``type=1``: ids below
    ``after``), newest first, 100 per page (ccxt then sorts a page by timestamp)."""

    id = "okx"
    rateLimit = 0

    def __init__(self) -> None:
        self.has = {"fetchTrades": True}
        self.trades = []
        tid = 1000
        for i in range(700):
            for _ in range(1 + (i % 9 == 0) * 6):  # bursts of 7 trades in one ms
                self.trades.append(
                    {"id": str(tid), "timestamp": T0_MS + 250 * i, "price": 100.0 + tid,
                     "amount": 1.0, "side": "buy"}
                )  # fmt: skip
                tid += 1
        self.calls = []

    def fetch_trades(self, symbol, since=None, limit=None, params=None):
        params = params or {}
        self.calls.append(dict(params))
        newest_first = self.trades[::-1]
        if params.get("method") != "publicGetMarketHistoryTrades":
            page = newest_first[:100]
        elif params["type"] == "2":
            page = [t for t in newest_first if t["timestamp"] < int(params["after"])][:limit]
        else:
            page = [t for t in newest_first if int(t["id"]) < int(params["after"])][:limit]
        return sorted((dict(t) for t in page), key=lambda t: t["timestamp"])  # stable, as ccxt


def test_okx_trades_come_from_the_history_endpoint_whole(tmp_path: Path) -> None:
    ex = OkxLike()
    start_ms, end_ms = T0_MS + 250 * 100, T0_MS + 250 * 650  # a window inside the history
    result = fetch_to_catalog(
        ex, "BTC-USDT-SWAP", kinds=["trades"], start_ns=start_ms * MS, end_ns=end_ms * MS,
        catalog=tmp_path, fetcher_options={"sleep": lambda s: None, "progress": False},
    )  # fmt: skip
    expected = [t for t in ex.trades if start_ms <= t["timestamp"] < end_ms]
    stored = Catalog(tmp_path).read("trades", "okx", "BTC-USDT-SWAP")
    assert result == {"trades": len(expected)}
    assert stored["price"].tolist() == [t["price"] for t in expected]  # in trade-id order
    assert all(c.get("method") == "publicGetMarketHistoryTrades" for c in ex.calls)
    assert ex.calls[0] == {"method": "publicGetMarketHistoryTrades", "type": "2",
                           "after": str(end_ms)}  # fmt: skip
    assert {c["type"] for c in ex.calls[1:]} == {"1"}
