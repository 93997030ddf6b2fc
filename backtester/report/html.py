"""The HTML report of a run: entry points and the min/max downsampling of long series.

The page itself (sections, charts, tables) is built in :mod:`backtester.report.page`; it works
offline (no CDN links, no external fonts), with plotly.js inlined or shared by relative path.
Every user-supplied name goes through :func:`backtester.report.escape.esc`. Long series are
downsampled for display with min/max-preserving buckets (:func:`downsample_minmax`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from backtester.results import Result

__all__ = ["build_figures", "downsample_minmax", "write_html"]

MAX_POINTS = 20_000
SECONDARY_MAX_POINTS = 10_000  # equity, margin, mark-vs-last: half, to keep 1 M bars < 10 MB
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1280px;padding:12px 20px;color:#222;background:#fff}
h1{font-size:1.4em;margin:.4em 0}
h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:4px 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}.scroll{max-height:360px;overflow:auto;border:1px solid #eee}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:8px}pre{font-size:12px;background:#f7f7f7;
padding:8px;overflow:auto}
"""


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


def _threshold(result: Result) -> tuple[float, str] | None:
    """Where the venue's displayed margin ratio triggers liquidation (first instrument).

    BINANCE (MM / balance), BITMEX, BYBIT and OKX_MGN_RATIO ratios trigger at 1; OKX_LEGACY's
    (margin + UPL) / position value triggers at MMR + liquidation fee rate, shown for the
    lowest tier (larger positions trigger higher).
    """
    from backtester.enums import LiquidationRule
    from backtester.report.metrics import _contract_attr

    rule = _contract_attr(result, 0, "liquidation_rule")
    if rule is None:
        return None
    if int(rule) != LiquidationRule.OKX_LEGACY:
        return 1.0, "liquidation threshold (1)"
    tiers = _contract_attr(result, 0, "tiers")
    fee = _contract_attr(result, 0, "liquidation_fee_rate")
    equity = result.records["equity"]
    if tiers is None or fee is None or len(equity) == 0:
        return None
    rows = tiers.at(int(equity["ts_ns"][0])).rows
    level = float(rows["maintenance_margin_rate"][0]) + float(fee)
    return level, f"tier-1 MMR + liquidation fee ({level:.4g})"


def build_figures(result: Result) -> list[tuple[str, go.Figure]]:
    """The report's charts as (id, ``plotly.graph_objects.Figure``) pairs, in page order
    (:mod:`.page`; the page itself writes their JSON specs without plotly.py)."""
    from backtester.report.page import build_figures as page_figures
    from backtester.report.plotly_spec import to_figure

    return [(chart_id, to_figure(spec)) for chart_id, spec in page_figures(result)]


def write_html(
    result: Result,
    path: str | Path,
    *,
    plotly_js: str = "inline",
    shared_dir: str | Path | None = None,
    trades: pd.DataFrame | None = None,
) -> Path:
    """Write the report to ``path`` (parent folders created) and return the path.

    Sections and options: :mod:`backtester.report.page`. ``plotly_js="inline"`` (default)
    makes one self-contained file; ``"shared"`` writes plotly.js once into ``shared_dir``
    (default: the page's folder) and loads it by a relative path. ``trades``: the result's
    round trips when the caller has them already (``round_trips(result)``, unchanged), so
    they are not rebuilt.
    """
    from backtester.report.outputs import _atomic_write
    from backtester.report.page import render_report

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(
        result, target, plotly_js=plotly_js,
        shared_dir=Path(shared_dir) if shared_dir is not None else None, trades=trades,
    )  # fmt: skip
    _atomic_write(target, text.encode("utf-8"))
    return target
