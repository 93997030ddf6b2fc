"""Mark-price calibration on real recorded marks (figures reported in docs/mark_calibration.md).

* Binance USDⓈ-M BTCUSDT websocket capture 2023-04-04 23:58:21 → 2023-04-05 00:06:54 (514
  ``@markPrice@1s`` updates with mark and index, trades, bookTicker): the Binance median mark with a
  ~5-minute moving average of the basis fits best; it beats mark = last by a wide margin.
* OKX BTC-USDT-SWAP 2022 1h mark candles vs 5m trade candles: no index, so only the mark − last
  deviation is measured (the span is not identifiable from these files).

Tolerances: the fit is deterministic (fixed grid, first minimum); RMSE figures are checked to
1e-3 quote (~0.0004 bp), far below the gaps between the models compared.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester.data.importers import read_file
from backtester.swap.calibration import (
    SECOND_NS,
    align_binance_capture,
    align_records,
    calibrate_mark_models,
    deviation_summary,
    mark_last_deviation,
)
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata

CAPTURE = ("nkaz001_hftbacktest_examples", "usdm")
OKX = "huckhuck12_freqtrade-futures-lab"


@pytest.fixture(scope="module")
def binance():
    folder = shared_path("data", *CAPTURE)
    data = align_binance_capture(
        [folder / "btcusdt_20230404.dat.gz", folder / "btcusdt_20230405.dat.gz"]
    )
    return data, calibrate_mark_models(data)


def test_capture_alignment(binance) -> None:
    data, _ = binance
    assert len(data) == 514
    assert data.ts_ns[0] == 1_680_652_701_000_000_000  # 2023-04-04 23:58:21.000 (E)
    assert data.ts_ns[-1] == 1_680_653_214_000_000_000  # 2023-04-05 00:06:54.000
    # the funding at 00:00 passes inside the capture: next funding time moves on by 8 h
    assert set(np.unique(data.next_funding_ns)) == {
        1_680_652_800_000_000_000,
        1_680_681_600_000_000_000,
    }
    assert data.last_price.min() == 28136.0
    assert data.last_price.max() == 28158.8
    basis = data.mark_price - data.index_price
    assert basis.mean() == pytest.approx(-12.2125, abs=1e-3)


def test_align_records_matches_the_capture_alignment(binance) -> None:
    data, _ = binance
    folder = shared_path("data", *CAPTURE)
    streams: dict[str, list[np.ndarray]] = {}
    for name in ("btcusdt_20230404.dat.gz", "btcusdt_20230405.dat.gz"):
        for stream in read_file(folder / name, "binance_ws"):
            streams.setdefault(stream.kind, []).append(stream.records)
    joined = {kind: np.concatenate(parts) for kind, parts in streams.items()}
    records = align_records(joined["mark"], joined["index"], joined["trades"])
    np.testing.assert_array_equal(records.ts_ns, data.ts_ns)
    np.testing.assert_array_equal(records.last_price, data.last_price)
    np.testing.assert_array_equal(records.index_price, data.index_price)


def test_binance_median_fits_best(binance) -> None:
    _, report = binance
    best = report.best
    assert (best.method, best.average, best.basis_price) == ("BINANCE_MEDIAN", "sma", "mid")
    assert (best.span, best.sample_step_ns) == (31.0, 10 * SECOND_NS)
    assert best.rmse_quote == pytest.approx(0.4716, abs=1e-3)
    assert best.rmse_bp == pytest.approx(0.1675, abs=1e-3)
    assert best.max_abs_error_quote == pytest.approx(3.7933, abs=1e-3)
    assert best.n_samples == 454
    ema = report.get("BINANCE_MEDIAN", "ema", "mid")
    assert (ema.span, ema.sample_step_ns) == (42.0, 10 * SECOND_NS)
    assert ema.rmse_quote == pytest.approx(0.4717, abs=1e-3)
    # all four median variants are within 0.001 quote of each other
    medians = [r.rmse_quote for r in report.results if r.method == "BINANCE_MEDIAN"]
    assert max(medians) - min(medians) < 1e-3


def test_best_model_beats_last_and_plain_ema_by_a_margin(binance) -> None:
    _, report = binance
    last = report.get("LAST")
    assert last.rmse_quote == pytest.approx(1.3265, abs=1e-3)
    assert report.best.rmse_quote < 0.4 * last.rmse_quote
    plain = report.get("INDEX_EMA_BASIS", "ema", "mid")
    assert plain.rmse_quote == pytest.approx(1.1892, abs=1e-3)
    assert report.best.rmse_quote < 0.5 * plain.rmse_quote
    funding_basis = report.get("FUNDING_BASIS")
    assert funding_basis.rmse_quote == pytest.approx(12.985, abs=1e-2)


def test_window_length_is_identified_not_the_step(binance) -> None:
    """Whatever the sampling step (2-30 s), the best SMA window covers 297-330 s of basis."""
    _, report = binance
    grid = report.grid["BINANCE_MEDIAN sma(mid)"]
    for step_s in (2, 3, 5, 10, 15, 30):
        row = grid.loc[step_s * SECOND_NS]
        window_s = row.idxmin() * step_s
        assert 295 <= window_s <= 330, (step_s, window_s)
        assert row.min() < 0.52


def test_okx_mark_candles_vs_last_trade_candles_2022() -> None:
    folder = shared_path("data", OKX)
    (mark,) = read_file(folder / "BTC_USDT_USDT-1h-mark.feather", "freqtrade")
    (trades,) = read_file(folder / "BTC_USDT_USDT-5m-futures.feather", "freqtrade")
    deviation = mark_last_deviation(mark.records, trades.records)
    stats = deviation_summary(deviation)
    assert len(deviation) == 5874
    assert stats.loc["deviation_bp", "mean"] == pytest.approx(-0.105, abs=1e-3)
    assert stats.loc["deviation_bp", "std"] == pytest.approx(1.672, abs=1e-3)
    assert stats.loc["deviation_bp", "1%"] == pytest.approx(-3.475, abs=1e-3)
    assert stats.loc["deviation_bp", "99%"] == pytest.approx(2.748, abs=1e-3)
    assert stats.loc["deviation_bp", "max_abs"] == pytest.approx(58.291, abs=1e-3)
    assert stats.loc["deviation_quote", "max_abs"] == pytest.approx(140.9, abs=1e-6)
    # the mark's hourly range is narrower than the trades' in most hours (smoothing)
    assert np.mean(deviation["mark_range_bp"] < deviation["last_range_bp"]) == pytest.approx(
        0.8185, abs=1e-3
    )
