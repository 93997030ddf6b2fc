"""Funding computed from the premium with each venue's clamp and cap (MECHANICS.md §3).

Every expected rate is worked out by hand from F = P + clamp(I − P, ±clamp), then the cap.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester.enums import FundingRateSource
from backtester.swap.funding_rules import (
    FUNDING_RULES,
    computed_funding,
    funding_rule,
    premium_from_impact_prices,
    premium_from_last_price,
)

MIN = 60_000_000_000
H = 60 * MIN
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC


def _samples(premiums_per_window: list[float], start: int = DAY0) -> tuple[np.ndarray, np.ndarray]:
    """1-minute samples at start + 1 min ... covering one 8 h window per premium value."""
    ts = start + MIN * np.arange(1, 480 * len(premiums_per_window) + 1, dtype=np.int64)
    return ts, np.repeat(premiums_per_window, 480)


@pytest.mark.parametrize(
    ("premium", "expected"),
    [
        (0.0003, 0.0001),  # 0.0003 + clamp(0.0001 − 0.0003 = −0.0002, ±0.0005) = 0.0001
        (-0.0004, 0.0001),  # −0.0004 + clamp(0.0005) = 0.0001 (the band: −0.04 % .. 0.06 %)
        (0.002, 0.0015),  # 0.002 + clamp(−0.0019) = 0.002 − 0.0005
        (-0.002, -0.0015),  # −0.002 + clamp(0.0021) = −0.002 + 0.0005
        (0.01, 0.003),  # 0.0095, capped at +0.3 %
        (-0.01, -0.003),
    ],
)
def test_binance_clamp_and_cap(premium: float, expected: float) -> None:
    ts, values = _samples([premium])
    [event] = computed_funding(ts, values, FUNDING_RULES["binance_usdm"])
    assert event["ts_ns"] == DAY0 + 8 * H
    assert event["funding_rate"] == pytest.approx(expected, abs=1e-15)
    assert event["funding_interval_ns"] == 8 * H
    assert event["source"] == FundingRateSource.COMPUTED


def test_okx_rate_is_the_mean_premium_within_the_caps() -> None:
    # window 1: half at 0.001, half at 0.002 -> mean 0.0015, no interest, no damper
    ts, _ = _samples([0.0, 0.0])
    values = np.r_[np.full(240, 0.001), np.full(240, 0.002), np.full(480, 0.006)]
    events = computed_funding(ts, values, FUNDING_RULES["okx"])
    assert events["ts_ns"].tolist() == [DAY0 + 8 * H, DAY0 + 16 * H]
    assert events["funding_rate"][0] == pytest.approx(0.0015, abs=1e-15)
    assert events["funding_rate"][1] == 0.00375  # 0.006 capped at 0.375 %


def test_bitmex_pays_the_previous_window_on_its_own_grid() -> None:
    """BitMEX: 04/12/20 UTC, the rate paid at T averaged over (T − 16 h, T − 8 h]."""
    start = DAY0 + 4 * H
    ts, values = _samples([0.0002, 0.003, 0.0], start=start)
    events = computed_funding(ts, values, FUNDING_RULES["bitmex"])
    # 12:00 needs (20:00 prev day, 04:00] -> not covered; 20:00 uses (04:00, 12:00]: P = 0.0002
    # -> 0.0002 + clamp(−0.0001) = 0.0001; 04:00 next day uses (12:00, 20:00]: P = 0.003 ->
    # 0.003 − 0.0005 = 0.0025 (no cap found for BitMEX)
    assert events["ts_ns"].tolist() == [DAY0 + 20 * H, DAY0 + 28 * H]
    assert events["funding_rate"][0] == pytest.approx(0.0001, abs=1e-15)
    assert events["funding_rate"][1] == pytest.approx(0.0025, abs=1e-15)


def test_a_window_not_covered_from_its_start_gives_no_event() -> None:
    ts, values = _samples([0.001, 0.001], start=DAY0 + 2 * H)  # starts 02:00
    events = computed_funding(ts, values, FUNDING_RULES["okx"])
    # 08:00 window (00:00, 08:00] starts before the data: skipped; 16:00 and 00:00 complete
    assert events["ts_ns"].tolist() == [DAY0 + 16 * H]


def test_premium_from_last_price_on_the_sample_grid() -> None:
    trades_ts = np.array([DAY0 + 10_000_000_000, DAY0 + 70_000_000_000], dtype=np.int64)
    trades = np.array([101.0, 102.0])
    index_ts = np.array([DAY0, DAY0 + 90_000_000_000], dtype=np.int64)
    index = np.array([100.0, 100.0])
    ts, premium = premium_from_last_price(trades_ts, trades, index_ts, index, MIN)
    # grid from the first instant both are known (00:00:10) rounded up to 00:01, to 00:01:30
    assert ts.tolist() == [DAY0 + MIN]
    assert premium.tolist() == [pytest.approx(0.01)]  # (101 − 100)/100 at 00:01


def test_premium_from_impact_prices_by_hand() -> None:
    got = premium_from_impact_prices(
        np.array([100.5, 99.0, 99.8]), np.array([100.7, 99.5, 100.1]), np.array([100.0] * 3)
    )
    # bid above index: (100.5 − 100)/100; ask below index: −(100 − 99.5)/100; inside: 0
    np.testing.assert_allclose(got, [0.005, -0.005, 0.0], atol=1e-15)


def test_unknown_profile_is_named() -> None:
    with pytest.raises(ValueError, match="profile 'mine': no funding rule"):
        funding_rule("mine")
