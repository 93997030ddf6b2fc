"""The engine's mark equals the calibration replay (``mark_calibration_nb.replay_mark_nb``) on
the same inputs: the mark model exists in the loop (``loop_nb.update_mark_from_index_nb``) and
in the calibration tool, and a fitted span is only worth something if both compute the same
mark. Index points at every bar close, flat bars (so the last price at the close is the close),
a sampling step of three bars so the bucket rule is exercised."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import MarkAverage, MarkPriceMethod, Status
from backtester.swap.contract import get_contract
from backtester.swap.mark_calibration_nb import replay_mark_nb

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000
BARS = 120
SPAN = 4.0
SAMPLE_NS = 3 * HOUR_NS
FUNDING_EVERY_NS = 4 * HOUR_NS


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(13)
    closes = 30_000.0 + np.cumsum(rng.normal(0.0, 40.0, BARS)).round(1)
    basis = rng.normal(5.0, 8.0, BARS).round(2)  # last − index, varying so the average matters
    ts = DAY0 + (np.arange(BARS) + 1) * HOUR_NS  # bar k closes (and its index point is) here
    funding_ts = DAY0 + np.arange(1, BARS // 4 + 3) * FUNDING_EVERY_NS  # beyond the last close
    funding_rate = rng.normal(1e-4, 3e-4, len(funding_ts))
    return {
        "closes": closes, "index": closes - basis, "ts": ts,
        "funding_ts": funding_ts, "funding_rate": funding_rate,
    }  # fmt: skip


def market(x: dict[str, np.ndarray], interval_ns: int) -> MarketData:
    bars = np.zeros(BARS, dtypes.BAR_DTYPE)
    bars["ts_ns"] = x["ts"] - HOUR_NS
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = x["closes"]
    index = np.zeros(BARS, dtypes.PRICE_DTYPE)
    index["ts_ns"] = x["ts"]
    index["price"] = x["index"]
    funding = np.zeros(len(x["funding_ts"]), dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = x["funding_ts"]
    funding["funding_rate"] = x["funding_rate"]
    funding["funding_interval_ns"] = interval_ns
    return MarketData("BTCUSDT", bars=bars, bar_interval_ns=HOUR_NS, index=index, funding=funding)


def engine_marks(contract_name: str, x: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    spec = get_contract(contract_name)
    profile = dataclasses.replace(spec.profile, mark_ema_span=SPAN, mark_sample_ns=SAMPLE_NS)
    spec = dataclasses.replace(spec, profile=profile)
    marks: list[float] = []

    class RecordMark(Strategy):
        def on_bar(self, ctx, bar):
            marks.append(ctx.mark_price)

    backtest(RecordMark, market(x, profile.funding_interval_ns), spec, initial_balance=1_000.0)
    return np.array(marks), profile.funding_interval_ns


def replayed(x: dict[str, np.ndarray], method: MarkPriceMethod, interval_ns: int, sample_ns: int):
    # the next funding at or after each index point (funding runs after the index at one
    # instant) and its rate: the rate known ahead, as the venue publishes it
    nxt = np.searchsorted(x["funding_ts"], x["ts"], side="left")
    out = np.empty(BARS)
    status = replay_mark_nb(
        x["ts"], x["index"], x["closes"], x["closes"], x["funding_rate"][nxt],
        x["funding_ts"][nxt], int(method), int(MarkAverage.EMA), SPAN, sample_ns, interval_ns,
        np.nan, out,
    )  # fmt: skip
    assert status == Status.OK
    return out


@pytest.mark.parametrize(
    ("contract", "method"),
    [
        ("okx:BTC-USDT-SWAP", MarkPriceMethod.INDEX_EMA_BASIS),
        ("binance_usdm:BTCUSDT", MarkPriceMethod.BINANCE_MEDIAN),
    ],
)
def test_engine_mark_equals_the_calibration_replay(contract, method) -> None:
    x = inputs()
    got, interval_ns = engine_marks(contract, x)
    assert len(got) == BARS
    expected = replayed(x, method, interval_ns, SAMPLE_NS)
    np.testing.assert_array_equal(got, expected)
    # the comparison can fail: sampling every event gives another mark
    assert not np.array_equal(got, replayed(x, method, interval_ns, 0))
