"""Data behind the report's charts, free of plotly.

Min/max downsampling of long series and the venue's liquidation threshold line on the
margin-ratio chart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from backtester.results import Result

__all__ = ["MAX_POINTS", "downsample_minmax", "liquidation_threshold"]

MAX_POINTS = 20_000


def downsample_minmax(
    x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a series to at most ``max_points`` points keeping each bucket's min and max.

    The series is cut into ``max_points // 2`` equal-count buckets; from each, the points with the
    lowest and highest ``y`` are kept in time order, so spikes (and liquidation wicks) stay
    visible. Series already short enough are returned unchanged.
    """
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts = edges[:-1]
    safe = np.where(np.isnan(y), np.inf, y)
    mins = np.minimum.reduceat(safe, starts)
    safe_max = np.where(np.isnan(y), -np.inf, y)
    maxs = np.maximum.reduceat(safe_max, starts)
    bucket_of = np.repeat(np.arange(buckets), np.diff(edges))
    is_min = safe == mins[bucket_of]
    is_max = safe_max == maxs[bucket_of]
    # first index attaining the min / max in each bucket
    first_min = np.full(buckets, -1)
    first_max = np.full(buckets, -1)
    idx_min = np.flatnonzero(is_min)
    idx_max = np.flatnonzero(is_max)
    first_min[bucket_of[idx_min][::-1]] = idx_min[::-1]
    first_max[bucket_of[idx_max][::-1]] = idx_max[::-1]
    keep = np.unique(np.concatenate([first_min[first_min >= 0], first_max[first_max >= 0]]))
    return x[keep], y[keep]


def liquidation_threshold(result: Result) -> tuple[float, str] | None:
    """Return where the venue's displayed margin ratio triggers liquidation, and its label.

    For the first instrument, at tier 1 (larger positions trigger elsewhere):
    ``margin_nb.margin_ratio_threshold_nb``, the same rule terms as the engine's trigger.
    1 for OKX mgnRatio and Binance; MMR + fee for OKEx 2019-20; (MMR + fee) / MMR for BitMEX
    and Bybit.
    """
    from backtester.report.metrics import contract_attr
    from backtester.swap.margin_nb import margin_ratio_threshold_nb

    rule = contract_attr(result, 0, "liquidation_rule")
    tiers = contract_attr(result, 0, "tiers")
    fee = contract_attr(result, 0, "liquidation_fee_rate")
    equity = result.records["equity"]
    if rule is None or tiers is None or fee is None or len(equity) == 0:
        return None
    rows = tiers.at(int(equity["ts_ns"][0])).rows
    mmr = float(rows["maintenance_margin_rate"][0])
    level = float(margin_ratio_threshold_nb(int(rule), mmr, float(fee)))
    if level == 1.0:
        return 1.0, "liquidation threshold (1)"
    return level, f"liquidation threshold at tier 1 ({level:.4g})"
