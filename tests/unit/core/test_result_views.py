"""Result's record-kind tables (``result.fills`` ...) and price-series views."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from backtester import dtypes
from backtester.results import PriceSeriesView, RecordStore, Result, SpilledSeries


def _fills_result() -> Result:
    fills = np.zeros(2, dtype=dtypes.FILL_DTYPE)
    fills["ts_ns"] = [1_000_000_000, 2_000_000_000]
    fills["price"] = [100.0, 101.5]
    return Result(["BTCUSDT"], "USDT", 100.0, {"fills": fills})


def test_record_kind_attributes_are_the_cached_frames() -> None:
    result = _fills_result()
    fills = result.fills
    assert fills is result.frame("fills")  # built once, the same object again
    assert list(fills["price"]) == [100.0, 101.5]
    assert str(fills.index[1]) == "1970-01-01 00:00:02+00:00"
    for kind in ("orders", "funding_payments", "settlements", "adl", "equity"):
        assert getattr(result, kind) is result.frame(kind)
        assert len(getattr(result, kind)) == 0


def test_record_kind_attributes_are_read_only_and_documented() -> None:
    result = _fills_result()
    with pytest.raises(AttributeError, match=r"Result\.fills is read-only"):
        result.fills = result.fills.iloc[:1]
    assert Result.fills.__doc__ == "Every fill, including liquidation and ADL fills."
    assert Result.equity.kind == "equity"


def test_price_series_views_pickle_as_plain_dicts() -> None:
    store = RecordStore({})
    for k, name in enumerate(("last", "mark", "index")):
        series = np.zeros(1, dtype=dtypes.PRICE_DTYPE)
        series["price"] = 10.0 + k
        store[f"price-0-{name}"] = series
    view = SpilledSeries(store, 0)
    assert isinstance(view, PriceSeriesView)
    assert list(view) == ["last", "mark", "index"]
    assert len(view) == 3
    with pytest.raises(KeyError):
        view["close"]
    copy = pickle.loads(pickle.dumps(view))
    assert type(copy) is dict
    assert [float(copy[name]["price"][0]) for name in ("last", "mark", "index")] == [
        10.0,
        11.0,
        12.0,
    ]
