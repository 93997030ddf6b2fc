"""The sweep page and the walk-forward page.

Sweep page (``sweep.html``): a one-line summary (combinations, failed, liquidated), the ranked
table with the rank metric and the swept parameters first and a few key metrics next (every
metric stays in ``results.csv``, linked), each row linked to its own run report when one was
written (``backtester sweep --reports N`` writes them for the top N under ``runs/<key>/``),
the heatmap of the rank metric over two parameters (best over the other dimensions) with the
cells where a combination was liquidated marked ✕, and the distribution of the rank metric.

Walk-forward page (``walk_forward.html``): one row per window with the in-sample choice, its
in-sample score and the out-of-sample result, and the stitched out-of-sample equity (each test
window's total return compounded onto the previous ones, valued at the window ends).

Every user-supplied string (sweep name, parameter names and values, metric names) goes
through :func:`backtester.report.escape.esc`; charts are SVG (no WebGL).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from backtester.io import atomic_write
from backtester.report.escape import esc
from backtester.report.page import CSS, fmt_number, fmt_pct, plotly_script_tag

__all__ = ["KEY_METRICS", "write_sweep_page", "write_walk_forward_page"]

KEY_METRICS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "trades",
    "win_rate",
    "fees_settle",
    "funding_paid_settle",
    "liquidations",
)
"""Metrics shown after the rank metric and parameters (when present)."""
_PERCENT = {"total_return", "cagr", "max_drawdown", "win_rate", "annual_volatility", "exposure"}
MAX_ROWS = 200


def _cell(name: str, value: Any) -> str:
    if isinstance(value, float) and name.removeprefix("oos_").removeprefix("is_") in _PERCENT:
        return fmt_pct(value)
    return fmt_number(value, 6)


def _figure(chart_id: str, figure: go.Figure) -> str:
    figure.update_layout(template="plotly_white", margin={"l": 70, "r": 20, "t": 50, "b": 50})
    return str(figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=chart_id,
        config={"displaylogo": False, "responsive": True},
    ))  # fmt: skip


def _page(title: str, script: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{CSS}</style>",
        script,
        "</head><body>",
        *body,
        "</body></html>",
    ])  # fmt: skip


def heatmap_figure(
    ok: pd.DataFrame, rank_by: str, x_name: str, y_name: str, liquidation_column: str
) -> go.Figure:
    """Best ``rank_by`` per (x, y) cell; ✕ on cells where any combination was liquidated."""
    values = pd.to_numeric(ok[rank_by], errors="coerce")
    frame = ok.assign(_metric=values)
    pivot = frame.groupby([y_name, x_name])["_metric"].max().unstack(x_name).sort_index()
    pivot = pivot.reindex(sorted(pivot.columns), axis=1)
    xs = [str(v) for v in pivot.columns]
    ys = [str(v) for v in pivot.index]
    figure = go.Figure(
        go.Heatmap(
            z=pivot.to_numpy(), x=xs, y=ys, colorscale="RdYlGn",
            colorbar={"title": {"text": esc(rank_by)}},
            hovertemplate=f"{esc(x_name)} %{{x}}<br>{esc(y_name)} %{{y}}<br>"
            f"{esc(rank_by)} %{{z:.4g}}<extra></extra>",
        )
    )  # fmt: skip
    if liquidation_column in frame.columns:
        counts = pd.to_numeric(frame[liquidation_column], errors="coerce").fillna(0)
        hit = frame.assign(_liq=counts > 0).groupby([y_name, x_name])["_liq"].any()
        flagged: list[tuple[Any, Any]] = hit[hit].index.tolist()  # (y, x) of liquidated cells
        cells = [(str(x), str(y)) for y, x in flagged]
        if cells:
            figure.add_trace(go.Scatter(
                x=[c[0] for c in cells], y=[c[1] for c in cells], mode="text",
                text=["✕"] * len(cells),
                textfont={"size": 16, "color": "black"}, name="liquidated at least once",
                hovertemplate="liquidated at least once<extra></extra>", showlegend=True,
            ))  # fmt: skip
    figure.update_layout(
        title={"text": esc(f"{rank_by} by {x_name} × {y_name} (best over other dimensions; "
                           "✕ = a combination was liquidated)")},
        xaxis_title=esc(x_name), yaxis_title=esc(y_name), height=480,
        xaxis={"type": "category"}, yaxis={"type": "category"},
        legend={"orientation": "h", "y": -0.2},
    )  # fmt: skip
    return figure


def write_sweep_page(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    rank_by: str,
    dimensions: Sequence[str],
    heatmap: Sequence[str] = (),
    title: str = "Sweep",
    liquidation_column: str = "liquidations",
    reports: Mapping[str, str] | None = None,
    plotly_js: str = "shared",
    shared_dir: str | Path | None = None,
) -> Path:
    """Write the sweep page (module docstring) for a ranked results frame; returns the path.

    Parameters
    ----------
    frame
        The rows in :func:`backtester.sweep.ranking.rank_records` order (best first), with
        ``status``, ``error`` and ``key`` columns.
    reports
        Run report path relative to the page, by result key, for the rows that have one.
    plotly_js, shared_dir
        As :func:`backtester.report.page.plotly_script_tag` (default: one shared copy in the
        page's folder).
    """
    path = Path(path)
    reports = dict(reports or {})
    ok = frame[frame["status"] == "ok"]
    errors = int((frame["status"] != "ok").sum())
    liquidated = 0
    if liquidation_column in ok.columns:
        liquidated = int((pd.to_numeric(ok[liquidation_column], errors="coerce") > 0).sum())
    body = [
        f"<h1>{esc(title)}</h1>",
        f"<p id='summary'>{len(frame)} combinations, {errors} failed, {liquidated} liquidated "
        f"at least once; ranked by <b>{esc(rank_by)}</b>. Every metric of every combination: "
        "<a href='results.csv'>results.csv</a>.</p>",
    ]
    figures: list[str] = []
    if len(heatmap) == 2 and len(ok):
        x_name, y_name = heatmap
        figures.append(_figure("heatmap", heatmap_figure(ok, rank_by, x_name, y_name,
                                                         liquidation_column)))  # fmt: skip
    values = (
        pd.to_numeric(ok[rank_by], errors="coerce")
        if len(ok)
        else pd.Series(np.zeros(0, dtype=np.float64))
    )
    histogram = go.Figure(go.Histogram(x=values.to_numpy(), nbinsx=30, name=esc(rank_by)))
    histogram.update_layout(title={"text": esc(f"Distribution of {rank_by}")}, height=320,
                            xaxis_title=esc(rank_by), yaxis_title="combinations")  # fmt: skip
    figures.append(_figure("distribution", histogram))
    metrics = [m for m in KEY_METRICS if m in frame.columns and m != rank_by]
    columns = [rank_by, *[d for d in dimensions if d != rank_by], *metrics]
    head = ["#", *columns, "status", "report"]
    rows = []
    for number, row in enumerate(frame.head(MAX_ROWS).itertuples(index=False), start=1):
        record = dict(zip(frame.columns, row, strict=True))
        key = str(record.get("key", ""))
        link = reports.get(key)
        status = record.get("status", "")
        status_text = status if status == "ok" else f"{status}: {record.get('error', '')}"
        cells = [f"<td>{number}</td>"]
        cells += [f"<td>{esc(_cell(c, record.get(c)))}</td>" for c in columns]
        cells.append(f"<td class='l'>{esc(status_text)}</td>")
        anchor = f"<a href='{esc(link)}'>report</a>" if link else ""
        cells.append(f"<td class='l'>{anchor}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    shown = min(MAX_ROWS, len(frame))
    body.append(f"<h2>Ranking (top {shown} of {len(frame)})</h2>")
    if not reports:
        body.append("<p class='note'>No run reports were written for this sweep; "
                    "<code>backtester sweep ... --reports N</code> writes them for the top N "
                    "and links them here.</p>")  # fmt: skip
    body.append(f"<div class='scroll'><table id='ranking'><thead><tr>{header}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table></div>")  # fmt: skip
    body.append("<h2>Charts</h2>")
    body.extend(figures)
    script = plotly_script_tag(plotly_js, path, Path(shared_dir) if shared_dir else None)
    atomic_write(path, _page(title, script, body).encode("utf-8"))
    return path


def stitched_equity(frame: pd.DataFrame) -> pd.Series:
    """Out-of-sample wealth (start 1) at each test window's end: Π(1 + oos total return).

    A window whose out-of-sample run failed adds nothing (wealth carried, stated on the page).
    """
    if "oos_total_return" in frame.columns:
        returns = pd.to_numeric(frame["oos_total_return"], errors="coerce").fillna(0.0)
    else:  # every out-of-sample run failed: no return column
        returns = pd.Series(np.zeros(len(frame), dtype=np.float64))
    wealth = np.cumprod(1.0 + returns.to_numpy(dtype=np.float64))
    index = pd.to_datetime(frame["test_end"], utc=True)
    start = pd.to_datetime(frame["test_start"], utc=True).iloc[:1]
    return pd.Series(np.concatenate([[1.0], wealth]), index=[*start, *index], name="oos_wealth")


def write_walk_forward_page(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    rank_by: str,
    dimensions: Sequence[str],
    title: str = "Walk-forward",
    plotly_js: str = "shared",
    shared_dir: str | Path | None = None,
) -> Path:
    """Write the walk-forward page (module docstring) for :func:`run_walk_forward`'s frame."""
    path = Path(path)
    wealth = stitched_equity(frame) if len(frame) else pd.Series(dtype=float)
    failed = int((frame.get("oos_status", pd.Series([], dtype=str)) != "ok").sum())
    total = float(wealth.iloc[-1] - 1.0) if len(wealth) else math.nan
    body = [
        f"<h1>{esc(title)}</h1>",
        f"<p id='summary'>{len(frame)} windows; each picks the in-sample best by "
        f"<b>{esc(rank_by)}</b> and runs it on the following out-of-sample window. "
        f"Stitched out-of-sample return {esc(fmt_pct(total))}"
        + (f"; {failed} out-of-sample runs failed (counted as 0 %)" if failed else "")
        + ". All columns: <a href='walk_forward.csv'>walk_forward.csv</a>.</p>",
    ]
    columns = ["train_start", "test_start", "test_end", *dimensions, f"is_{rank_by}",
               "oos_status", f"oos_{rank_by}", "oos_total_return", "oos_max_drawdown",
               "oos_liquidations"]  # fmt: skip
    columns = [c for c in dict.fromkeys(columns) if c in frame.columns]
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for c in columns:
            value = record.get(c)
            text = f"{value:%Y-%m-%d %H:%M}" if isinstance(value, pd.Timestamp) else _cell(c, value)
            cells.append(f"<td>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body.append("<h2>Windows</h2>")
    body.append(f"<div class='scroll'><table id='windows'><thead><tr>{header}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table></div>")  # fmt: skip
    figure = go.Figure(go.Scatter(
        x=[t.value // 1_000_000 for t in wealth.index], y=wealth.to_numpy(), mode="lines+markers",
        name="out-of-sample wealth", line={"shape": "linear"},
    ))  # fmt: skip
    figure.update_layout(title={"text": "Stitched out-of-sample equity (start = 1)"}, height=360)
    figure.update_xaxes(type="date")
    body.append("<h2>Out-of-sample equity</h2>")
    body.append(_figure("oos-equity", figure))
    script = plotly_script_tag(plotly_js, path, Path(shared_dir) if shared_dir else None)
    atomic_write(path, _page(title, script, body).encode("utf-8"))
    return path
