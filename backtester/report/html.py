"""The HTML report of a run: its entry points.

The page itself (sections, charts, tables) is built in :mod:`backtester.report.page`; it works
offline (no CDN links, no external fonts), with plotly.js inlined or shared by relative path.
Every user-supplied name goes through :func:`backtester.report.escape.esc`. Long series are
downsampled for display with min/max-preserving buckets
(:func:`backtester.report.chart_data.downsample_minmax`, re-exported here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from backtester.io import atomic_write
from backtester.report.chart_data import downsample_minmax

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from backtester.results import Result

__all__ = ["build_figures", "downsample_minmax", "write_html"]


def build_figures(result: Result) -> list[tuple[str, go.Figure]]:
    """Return the report's charts as (id, ``plotly.graph_objects.Figure``) pairs, in page order.

    See :mod:`.page`; the page itself writes their JSON specs without plotly.py.
    """
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
    from backtester.report.page import render_report

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(
        result, target, plotly_js=plotly_js,
        shared_dir=Path(shared_dir) if shared_dir is not None else None, trades=trades,
    )  # fmt: skip
    atomic_write(target, text.encode("utf-8"))
    return target
