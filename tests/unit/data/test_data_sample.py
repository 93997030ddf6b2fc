"""The bundled sample market: determinism, committed copy, and its statistics in numbers."""

from __future__ import annotations

import numpy as np
import pytest

from backtester.data import sample
from backtester.data.catalog import Catalog
from backtester.enums import FundingRateSource
from backtester.results import record_digest

MINUTE_NS = 60_000_000_000
KINDS = ("bars", "trades", "index", "funding")


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, np.ndarray]]:
    return sample.generate_sample()


def _digests(data: dict[str, dict[str, np.ndarray]]) -> dict[tuple[str, str], str]:
    return {(s, k): record_digest(data[s][k]) for s in sample.SAMPLE_SYMBOLS for k in KINDS}


def test_two_generations_are_identical(generated):
    assert _digests(sample.generate_sample()) == _digests(generated)


def test_other_seed_gives_other_data(generated):
    other = sample.generate_sample(seed=sample.DEFAULT_SEED + 1)
    assert record_digest(other["BTC-USD-SWAP"]["bars"]) != record_digest(
        generated["BTC-USD-SWAP"]["bars"]
    )


def test_committed_catalog_equals_fresh_generation(generated):
    catalog = Catalog(sample.SAMPLE_CATALOG)
    for symbol in sample.SAMPLE_SYMBOLS:
        assert catalog.exists("bars", "sample", symbol, MINUTE_NS), f"{symbol} not committed"
        for kind in KINDS:
            interval = MINUTE_NS if kind == "bars" else 0
            stored = catalog.read(kind, "sample", symbol, interval_ns=interval)
            assert record_digest(stored) == record_digest(generated[symbol][kind]), (symbol, kind)


def test_committed_sample_is_small():
    files = list((sample.SAMPLE_CATALOG / "sample").rglob("*.parquet"))
    total = sum(p.stat().st_size for p in files)
    assert len(files) >= 14  # 2 symbols x (2 months of bars, index, funding + 1 trade day)
    assert total < 8_000_000


@pytest.mark.parametrize("symbol", sample.SAMPLE_SYMBOLS)
def test_load_sample_catalog_and_fallback_identical(symbol, tmp_path):
    from_catalog = sample.load_sample(symbol)
    regenerated = sample.load_sample(symbol, catalog_root=tmp_path / "empty")
    assert from_catalog.sources["bars"].endswith("bars-1m")
    assert "generated" in regenerated.sources
    for name in ("bars", "trades", "index", "funding", "mark"):
        assert record_digest(getattr(from_catalog, name)) == record_digest(
            getattr(regenerated, name)
        ), name
    assert from_catalog.bar_interval_ns == regenerated.bar_interval_ns == MINUTE_NS
    assert len(from_catalog.mark) == 0  # the engine computes the mark


def test_write_sample_into_fresh_catalog(tmp_path, generated):
    written = sample.write_sample(tmp_path, seed=sample.DEFAULT_SEED)
    assert len(written) == 14
    catalog = Catalog(tmp_path)
    got = catalog.read("funding", "sample", "BTC-USDT-SWAP")
    assert record_digest(got) == record_digest(generated["BTC-USDT-SWAP"]["funding"])
    # writing again is an identical merge; overwrite replaces
    sample.write_sample(tmp_path, seed=sample.DEFAULT_SEED)
    with pytest.raises(ValueError, match=r"conflicting|differ"):
        sample.write_sample(tmp_path, seed=sample.DEFAULT_SEED + 1)
    sample.write_sample(tmp_path, seed=sample.DEFAULT_SEED + 1, overwrite=True)
    assert (
        catalog.read("bars", "sample", "BTC-USD-SWAP", interval_ns=MINUTE_NS)["close"][0]
        != (generated["BTC-USD-SWAP"]["bars"]["close"][0])
    )


def test_unknown_symbol_and_bad_seed_refused():
    with pytest.raises(ValueError, match="ETH-USD-SWAP"):
        sample.load_sample("ETH-USD-SWAP")
    with pytest.raises(ValueError, match="seed"):
        sample.generate_sample(seed=-1)


@pytest.mark.parametrize("symbol", sample.SAMPLE_SYMBOLS)
def test_bars_valid_and_on_grid(generated, symbol):
    bars = generated[symbol]["bars"]
    n = (sample.END_NS - sample.START_NS) // MINUTE_NS
    assert len(bars) == n == 60 * 1440
    assert np.all(np.diff(bars["ts_ns"]) == MINUTE_NS)
    assert np.all(bars["low"] <= np.minimum(bars["open"], bars["close"]))
    assert np.all(bars["high"] >= np.maximum(bars["open"], bars["close"]))
    assert np.all(bars["low"] > 0)
    assert np.all(bars["volume_base"] > 0)
    assert np.all(np.round(bars["close"] / sample.PRICE_STEP) * sample.PRICE_STEP == bars["close"])
    # clustering: absolute 1-minute returns are autocorrelated (GARCH), raw returns are not
    r = np.diff(np.log(bars["close"]))
    a = np.abs(r) - np.abs(r).mean()
    assert np.mean(a[1:] * a[:-1]) / np.mean(a * a) > 0.1
    assert abs(np.mean(r[1:] * r[:-1]) / np.mean(r * r)) < 0.1


@pytest.mark.parametrize("symbol", sample.SAMPLE_SYMBOLS)
def test_trades_match_the_bars_of_their_day(generated, symbol):
    trades, bars = generated[symbol]["trades"], generated[symbol]["bars"]
    assert 15_000 < len(trades) < 100_000
    assert trades["ts_ns"][0] >= sample.TRADES_DAY_START_NS
    assert trades["ts_ns"][-1] < sample.TRADES_DAY_START_NS + 1440 * MINUTE_NS
    assert np.all(np.diff(trades["ts_ns"]) >= 0)
    assert np.all(trades["ts_ns"] % 1_000_000 == 0)  # millisecond exchange timestamps
    assert set(np.unique(trades["side"]).tolist()) == {-1, 1}
    first = (sample.TRADES_DAY_START_NS - sample.START_NS) // MINUTE_NS
    day = bars[first : first + 1440]
    minute = (trades["ts_ns"] - sample.TRADES_DAY_START_NS) // MINUTE_NS
    starts = np.searchsorted(minute, np.arange(1440))
    ends = np.searchsorted(minute, np.arange(1440), "right")
    np.testing.assert_array_equal(day["open"], trades["price"][starts])
    np.testing.assert_array_equal(day["close"], trades["price"][ends - 1])
    np.testing.assert_array_equal(day["high"], np.maximum.reduceat(trades["price"], starts))
    np.testing.assert_array_equal(day["low"], np.minimum.reduceat(trades["price"], starts))
    np.testing.assert_allclose(
        day["volume_base"], np.add.reduceat(trades["qty_base"], starts), rtol=0, atol=1e-8
    )


@pytest.mark.parametrize("symbol", sample.SAMPLE_SYMBOLS)
def test_funding_follows_the_premium(generated, symbol):
    bars, index, funding = (generated[symbol][k] for k in ("bars", "index", "funding"))
    assert np.all(funding["source"] == FundingRateSource.HISTORICAL)
    assert np.all(funding["funding_interval_ns"] == 8 * 3600 * 10**9)
    hours = (funding["ts_ns"] // (3600 * 10**9)) % 24
    assert set(hours.tolist()) == {0, 8, 16}
    assert len(funding) == 60 * 3 - 1  # 2024-02-01 08:00 … 2024-03-31 16:00
    # independent recomputation: mean of (close − index)/index over (T − 8 h, T]
    premium = (bars["close"][:-1] - index["price"][1:]) / index["price"][1:]
    sample_ts = bars["ts_ns"][:-1] + MINUTE_NS
    for row in funding:
        window = (sample_ts > row["ts_ns"] - 8 * 3600 * 10**9) & (sample_ts <= row["ts_ns"])
        assert window.sum() == 480
        p = premium[window].mean()
        expected = np.clip(p + np.clip(0.0001 - p, -0.0005, 0.0005), -0.00375, 0.00375)
        assert row["funding_rate"] == pytest.approx(expected, abs=1e-9)
        if p > 0.0006:
            assert row["funding_rate"] > 0.0001
        elif p < -0.0004:
            assert row["funding_rate"] < 0.0001
        else:
            assert row["funding_rate"] == pytest.approx(0.0001, abs=1e-10)
    rates = funding["funding_rate"]
    assert rates.min() < -0.0005  # the crash window pays shorts
    assert rates.max() > 0.0005  # the rally pays longs' premium
    assert 0.2 < np.mean(rates != 0.0001) < 0.8  # the clamp band holds much of the time
    crash = int(np.searchsorted(funding["ts_ns"], sample.CRASH_START_NS))
    assert rates[crash] < 0  # 16:00 on the crash day: shorts pay longs
    assert rates.min() == rates[crash : crash + 3].min()  # most negative right after the crash


@pytest.mark.parametrize("symbol", sample.SAMPLE_SYMBOLS)
def test_crash_depth_and_mark_vs_last_wick(generated, symbol):
    bars, index = generated[symbol]["bars"], generated[symbol]["index"]
    c = (sample.CRASH_START_NS - sample.START_NS) // MINUTE_NS
    before = bars["high"][c - 120 : c].max()
    window = slice(c, c + 240)
    low_last = bars["low"][window].min()
    low_index = index["price"][window].min()
    assert -0.32 < low_last / before - 1 < -0.24
    assert -0.29 < low_index / before - 1 < -0.20
    # partial rebound: 6 h after the bottom the price is well above it, still below the start
    after = bars["close"][c + 100 + 360]
    assert low_last * 1.08 < after < before * 0.92
    # a 20x long opened before the crash (loss > ~4.5 %) is liquidated at the mark too
    bottom = c + int(np.argmin(bars["low"][window]))
    # mark = index + EMA(last − index), EMA over 1-minute samples (span 10, okx profile)
    basis = bars["close"][c - 600 : bottom + 1] - index["price"][c - 599 : bottom + 2]
    alpha = 2.0 / 11.0
    ema = basis[0]
    marks = []
    for b in basis[1:]:
        ema += alpha * (b - ema)
        marks.append(ema)
    mark_bottom = index["price"][bottom + 1] + marks[-1]
    assert mark_bottom / before - 1 < -0.2
    # the wick: last-trade low far below the mark and below the bar's own close
    assert mark_bottom / low_last - 1 > 0.02
    assert bars["close"][bottom] / bars["low"][bottom] - 1 > 0.02
