"""Funding computed from the premium when the venue's funding history is missing.

A backtest needs the funding rate at every funding time. When the data has no funding stream,
:func:`computed_funding` derives it the way the venue does: premium samples
(:func:`premium_from_last_price`, or :func:`premium_from_impact_prices` where bid/ask or impact
prices exist) are averaged over the funding window, then the venue's damper (clamp) and
cap/floor apply (:func:`~backtester.swap.funding_nb.funding_rate_nb`). The rows carry
``source = FundingRateSource.COMPUTED``, so the ledger's funding payments, the attribution and
the report say the rate was computed, not historical.

The venue rules live in :data:`FUNDING_RULES`, keyed by profile name, each with its source.
Where this module is silent the rule is the venue's formula of MECHANICS.md §3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backtester import dtypes
from backtester.enums import FundingRateSource
from backtester.swap.funding_nb import funding_rate_nb

HOUR_NS = 3_600_000_000_000
MINUTE_NS = 60_000_000_000


@dataclass(frozen=True)
class FundingRule:
    """How one venue turns premium samples into a funding rate.

    Attributes
    ----------
    interest_rate
        Interest component I per funding interval (fraction; 0.0001 = 0.01 %).
    clamp_rate
        Damper: F = P + clamp(I − P, −clamp, +clamp) (0: F = P).
    cap_rate, floor_rate
        Bounds of F (NaN: none).
    interval_ns
        Funding interval; funding times are ``offset_ns + k · interval_ns`` (ns UTC).
    offset_ns
        Offset of the funding grid from midnight UTC (BitMEX: 4 h).
    sample_ns
        Spacing of the premium samples averaged over the window.
    previous_window
        True: the rate paid at T is the average over (T − 2·interval, T − interval] (announced
        one interval ahead: BitMEX, OKEx from 18 Jul 2019); False: over (T − interval, T].
    source
        Where the values come from.
    """

    interest_rate: float
    clamp_rate: float
    cap_rate: float
    floor_rate: float
    interval_ns: int
    offset_ns: int
    sample_ns: int
    previous_window: bool
    source: str


def _eight_hourly(
    interest_rate: float,
    clamp_rate: float,
    cap_rate: float,
    *,
    previous_window: bool,
    source: str,
    offset_ns: int = 0,
) -> FundingRule:
    """Return a rule on the 8-hour grid from minute premium samples, bounded by ±``cap_rate``.

    Every venue of :data:`FUNDING_RULES` pays every 8 hours, its rate bounded symmetrically
    (floor = −cap; NaN: no bound).
    """
    return FundingRule(
        interest_rate=interest_rate,
        clamp_rate=clamp_rate,
        cap_rate=cap_rate,
        floor_rate=-cap_rate,
        interval_ns=8 * HOUR_NS,
        offset_ns=offset_ns,
        sample_ns=MINUTE_NS,
        previous_window=previous_window,
        source=source,
    )


FUNDING_RULES: dict[str, FundingRule] = {
    "binance_usdm": _eight_hourly(
        0.0001,
        0.0005,
        0.003,
        previous_window=False,
        source=(
            "MECHANICS.md 3.2 (Binance-docs-copy): F = P + clamp(I − P, ±0.05 %), I = 0.01 % per "
            "8 h, premium time-weighted to the funding time (Binance samples every 5 s; one "
            "sample a minute here); cap ±0.3 %: the BTCUSDT bounds seen in the 2020 funding "
            "history (shared/data SOURCES.md), later caps are per symbol and not stored"
        ),
    ),
    "binance_coinm": _eight_hourly(
        0.0001,
        0.0005,
        0.003,
        previous_window=False,
        source=(
            "MECHANICS.md 3.2: the USDⓈ-M formula (I = 0.01 %, clamp ±0.05 %); the COIN-M cap "
            "was not found, the USDⓈ-M BTCUSDT ±0.3 % is used"
        ),
    ),
    "okx": _eight_hourly(
        0.0,
        0.0,
        0.00375,
        previous_window=False,
        source=(
            "MECHANICS.md 3.1 (OKX-funding): F = clamp(MA(premium − interest), a, b), interest "
            "0, MA of 1-minute premiums over the interval, BTC caps ±0.375 %"
        ),
    ),
    "okx_coinm_2019": _eight_hourly(
        0.0,
        0.0,
        0.003,
        previous_window=True,
        source=(
            "MECHANICS.md 3.1 (OKX-funding-2019): BTC caps ±0.3 % (July 2019); from 18 Jul 2019 "
            "the rate paid at T is fixed over the previous interval (cross-cycle)"
        ),
    ),
    "bitmex": _eight_hourly(
        0.0001,
        0.0005,
        np.nan,
        previous_window=True,
        offset_ns=4 * HOUR_NS,
        source=(
            "MECHANICS.md 3.3 (BitMEX-examples): I = (0.06 % − 0.03 %)/3 = 0.01 %, F = P + "
            "clamp(I − P, ±0.05 %), P = 8-hour mean of the minutely premium of the previous "
            "window, 04/12/20 UTC; the cap was not found (none applied)"
        ),
    ),
}


def funding_rule(profile_name: str) -> FundingRule:
    """Return the funding rule of a venue profile (raises naming the profiles that have one)."""
    try:
        return FUNDING_RULES[profile_name]
    except KeyError:
        raise ValueError(
            f"profile {profile_name!r}: no funding rule to compute funding from the premium; "
            f"expected one of {sorted(FUNDING_RULES)}"
        ) from None


def value_as_of(ts_from: np.ndarray, values: np.ndarray, ts_at: np.ndarray) -> np.ndarray:
    """Return the latest value at or before each ``ts_at`` (NaN before the first)."""
    at = np.searchsorted(ts_from, ts_at, side="right") - 1
    out = np.full(len(ts_at), np.nan)
    known = at >= 0
    out[known] = values[at[known]]
    return out


def premium_from_last_price(
    price_ts_ns: np.ndarray,
    price: np.ndarray,
    index_ts_ns: np.ndarray,
    index_price: np.ndarray,
    sample_ns: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Premium samples (last − index)/index on the grid of ``sample_ns`` multiples.

    Formula
    -------
    P(t) = (last(t) − index(t))/index(t), each the latest value at or before t, for every
    t = k · sample_ns from the first instant where both are known to the last input time.
    Without a book this stands for the venue's mid or impact prices (the report says so).

    Source
    ------
    MECHANICS.md 3.1 (OKX premium: mid − index over index), 3.5 (Deribit: (mark − index)/index).
    """
    sample_ns = int(sample_ns)
    if sample_ns <= 0:
        raise ValueError(f"sample_ns: expected > 0, got {sample_ns}")
    if not len(price_ts_ns) or not len(index_ts_ns):
        return np.zeros(0, np.int64), np.zeros(0)
    first = max(int(price_ts_ns[0]), int(index_ts_ns[0]))
    last = max(int(price_ts_ns[-1]), int(index_ts_ns[-1]))
    start = -(-first // sample_ns) * sample_ns
    grid = np.arange(start, last + 1, sample_ns, dtype=np.int64)
    p = value_as_of(np.asarray(price_ts_ns), np.asarray(price, dtype=np.float64), grid)
    i = value_as_of(np.asarray(index_ts_ns), np.asarray(index_price, dtype=np.float64), grid)
    return grid, (p - i) / i


def premium_from_impact_prices(
    impact_bid_price: np.ndarray, impact_ask_price: np.ndarray, index_price: np.ndarray
) -> npt.NDArray[np.float64]:
    """Premium index from impact (or best) bid/ask prices, per row.

    Formula
    -------
    P = [max(0, impact bid − index) − max(0, index − impact ask)]/index (NaN if index ≤ 0).

    Source
    ------
    MECHANICS.md 3.1–3.3 (OKX-v5 ``premium``; Binance-docs-copy; BitMEX) — the vector form of
    :func:`~backtester.swap.funding_nb.premium_index_nb`.
    """
    bid = np.asarray(impact_bid_price, dtype=np.float64)
    ask = np.asarray(impact_ask_price, dtype=np.float64)
    index = np.asarray(index_price, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        up = np.maximum(0.0, bid - index)
        down = np.maximum(0.0, index - ask)
        return np.where(index > 0.0, (up - down) / index, np.nan)


def computed_funding(
    sample_ts_ns: np.ndarray, premium: np.ndarray, rule: FundingRule
) -> npt.NDArray[np.void]:
    """Funding events computed from premium samples with the venue's rule.

    Formula
    -------
    For every funding time T = offset + k · interval inside the samples' span whose window
    W = (T − interval, T] (or (T − 2·interval, T − interval] with ``previous_window``) is fully
    covered (first sample ≤ start of W + ``sample_ns``):
    P̄ = mean of the finite samples in W; F = funding_rate_nb(P̄, I, clamp, cap, floor) =
    P̄ + clamp(I − P̄, ±clamp), clipped to [floor, cap].

    Source
    ------
    MECHANICS.md 3.1 (OKX: MA of 1-minute premiums), 3.2 (Binance: time-weighted premium,
    I = 0.01 %, clamp 0.05 %), 3.3 (BitMEX: 8-hour mean of the previous window).

    Returns
    -------
    numpy.ndarray
        ``FUNDING_RATE_DTYPE`` rows, ``source = COMPUTED``, ``funding_interval_ns`` = interval.
    """
    ts = np.asarray(sample_ts_ns, dtype=np.int64)
    values = np.asarray(premium, dtype=np.float64)
    if len(ts) != len(values):
        raise ValueError(f"premium: {len(values)} values for {len(ts)} sample times")
    out = np.zeros(0, dtype=dtypes.FUNDING_RATE_DTYPE)
    if not len(ts):
        return out
    interval, offset = int(rule.interval_ns), int(rule.offset_ns)
    lag = interval if rule.previous_window else 0
    first_t = ((int(ts[0]) - offset) // interval + 1) * interval + offset
    rows = []
    t = first_t
    while t <= int(ts[-1]):
        lo_excl, hi_incl = t - lag - interval, t - lag
        covered = int(ts[0]) <= lo_excl + int(rule.sample_ns)
        lo = int(np.searchsorted(ts, lo_excl, side="right"))
        hi = int(np.searchsorted(ts, hi_incl, side="right"))
        window = values[lo:hi]
        window = window[np.isfinite(window)]
        if covered and len(window):
            mean = float(np.mean(window))
            rate = funding_rate_nb(
                mean, rule.interest_rate, rule.clamp_rate, rule.cap_rate, rule.floor_rate
            )
            rows.append((t, rate))
        t += interval
    out = np.zeros(len(rows), dtype=dtypes.FUNDING_RATE_DTYPE)
    if rows:
        out["ts_ns"] = [r[0] for r in rows]
        out["funding_rate"] = [r[1] for r in rows]
        out["funding_interval_ns"] = interval
        out["source"] = int(FundingRateSource.COMPUTED)
    return out


__all__ = [
    "FUNDING_RULES",
    "FundingRule",
    "computed_funding",
    "funding_rule",
    "premium_from_impact_prices",
    "premium_from_last_price",
    "value_as_of",
]
