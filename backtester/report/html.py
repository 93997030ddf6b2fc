"""The HTML report: one self-contained, offline file with plotly charts and tables.

plotly.js is inlined once (``include_plotlyjs=True`` on the first chart only); there are no CDN
links and no external fonts, so the file opens without a network. Every user-supplied name
(strategy, parameters, symbols, config values) goes through :func:`html.escape`. Long price and
equity series are downsampled for display with min/max-preserving buckets (at most
``max_points`` per series, the extremes of each bucket kept), while every fill and liquidation is
drawn as a marker.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from backtester.enums import Liquidity, Side

if TYPE_CHECKING:
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


def _times(ts_ns: np.ndarray) -> np.ndarray:
    """Milliseconds since the epoch as float64 (UTC).

    Plotly date axes take epoch milliseconds; a float64 array is embedded as compact base64,
    where datetime strings would take about four times the space.
    """
    return np.asarray(ts_ns, dtype=np.int64) // 1_000_000 * 1.0


def _layout(fig: go.Figure, title: str, height: int = 380, time_axis: bool = True) -> go.Figure:
    fig.update_layout(
        title={"text": html.escape(title), "x": 0.01},
        height=height,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.15},
        template="plotly_white",
        font={"family": "Arial, sans-serif"},
    )
    if time_axis:  # x values are epoch milliseconds (see _times)
        fig.update_xaxes(type="date")
    return fig


def _price_figure(result: Result, index: int) -> go.Figure:
    symbol = result.instruments[index]
    fig = go.Figure()
    streams = dict(result.price_series.get(symbol, {}))
    mark = streams.get("mark")
    if (mark is None or len(mark) == 0) and index == 0 and len(result.records["equity"]):
        # the engine computed the mark; the equity records carry it for the first instrument
        equity = result.records["equity"]
        streams["mark"] = np.rec.fromarrays(
            [equity["ts_ns"], equity["mark_price"]], names=["ts_ns", "price"]
        )
    for name in ("last", "mark", "index"):
        array = streams.get(name)
        if array is None or len(array) == 0:
            continue
        x, y = downsample_minmax(np.asarray(array["ts_ns"]), np.asarray(array["price"], float))
        fig.add_trace(go.Scattergl(x=_times(x), y=y, mode="lines", name=f"{name} price"))
    fills = result.records["fills"]
    fills = fills[fills["instrument"] == index]
    for side, label, marker in (
        (Side.BUY, "buys", "triangle-up"),
        (Side.SELL, "sells", "triangle-down"),
    ):
        mine = fills[(fills["side"] == side) & (fills["liquidity"] <= Liquidity.TAKER)]
        if len(mine):
            fig.add_trace(go.Scattergl(
                x=_times(mine["ts_ns"]), y=mine["price"], mode="markers", name=label,
                marker={"symbol": marker, "size": 9,
                        "color": "#1a9850" if side == Side.BUY else "#d73027"},
            ))  # fmt: skip
    liq = result.records["liquidations"]
    liq = liq[liq["instrument"] == index]
    if len(liq):
        fig.add_trace(go.Scatter(
            x=_times(liq["ts_ns"]), y=liq["fill_price"], mode="markers", name="liquidations",
            marker={"symbol": "x", "size": 14, "color": "black"},
        ))  # fmt: skip
    return _layout(fig, f"{symbol}: prices, entries, exits and liquidations", 440)


def _equity_figure(result: Result) -> go.Figure:
    equity = result.records["equity"]
    ts = np.asarray(equity["ts_ns"])
    values = np.asarray(equity["equity_settle"], dtype=np.float64)
    peak = np.fmax.accumulate(values) if len(values) else values
    drawdown = np.where(peak > 0, values / np.where(peak == 0, 1, peak) - 1.0, 0.0)
    fig = go.Figure()
    x, y = downsample_minmax(ts, values, SECONDARY_MAX_POINTS)
    fig.add_trace(go.Scattergl(x=_times(x), y=y, name=f"equity ({result.settle_currency})"))
    x, y = downsample_minmax(ts, drawdown, SECONDARY_MAX_POINTS)
    fig.add_trace(
        go.Scattergl(
            x=_times(x),
            y=y,
            name="drawdown",
            yaxis="y2",
            fill="tozeroy",
            line={"color": "rgba(215,48,39,0.6)", "width": 1},
            fillcolor="rgba(215,48,39,0.15)",
        )
    )
    fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "tickformat": ".0%",
                              "showgrid": False})  # fmt: skip
    return _layout(fig, "Equity and drawdown")


def _attribution_figure(attribution: pd.Series, currency: str) -> go.Figure:
    shown = attribution[attribution != 0.0]
    fig = go.Figure(go.Waterfall(
        x=[*[str(k).removesuffix("_settle") for k in shown.index], "total"],
        y=[*shown.tolist(), 0.0],
        measure=[*["relative"] * len(shown), "total"],
    ))  # fmt: skip
    return _layout(fig, f"PnL attribution ({currency})", time_axis=False)


def _funding_figure(result: Result) -> go.Figure:
    payments = result.records["funding_payments"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=_times(payments["ts_ns"]), y=np.cumsum(payments["payment_settle"]),
        name="cumulative funding", line={"shape": "hv"},
    ))  # fmt: skip
    return _layout(fig, f"Cumulative funding ({result.settle_currency}; < 0 paid)")


def _margin_figure(result: Result, threshold: tuple[float, str] | None) -> go.Figure:
    equity = result.records["equity"]
    x, y = downsample_minmax(
        np.asarray(equity["ts_ns"]),
        np.asarray(equity["margin_ratio"], dtype=np.float64),
        SECONDARY_MAX_POINTS,
    )
    fig = go.Figure(go.Scattergl(x=_times(x), y=y, name="margin ratio"))
    if threshold is not None and len(x):
        fig.add_hline(
            y=threshold[0],
            line={"dash": "dash", "color": "#d73027"},
            annotation_text=html.escape(threshold[1]),
        )
    return _layout(fig, "Margin ratio (venue definition) against the maintenance threshold")


def _mark_last_figure(result: Result) -> go.Figure:
    equity = result.records["equity"]
    ts = np.asarray(equity["ts_ns"])
    fig = go.Figure()
    for field in ("last_price", "mark_price"):
        x, y = downsample_minmax(
            ts, np.asarray(equity[field], dtype=np.float64), SECONDARY_MAX_POINTS
        )
        fig.add_trace(go.Scattergl(x=_times(x), y=y, name=field.replace("_", " ")))
    basis = np.asarray(equity["mark_price"] - equity["last_price"], dtype=np.float64)
    x, y = downsample_minmax(ts, basis, SECONDARY_MAX_POINTS)
    fig.add_trace(
        go.Scattergl(
            x=_times(x),
            y=y,
            name="mark − last (right axis)",
            yaxis="y2",
            line={"width": 1, "color": "rgba(120,120,120,0.6)"},
        )
    )
    fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "showgrid": False})
    return _layout(fig, "Mark vs last price")


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
    """The report's charts as (id, figure) pairs, in page order."""
    from backtester.report.attribution import pnl_attribution

    figures = [(f"price-{i}", _price_figure(result, i)) for i in range(len(result.instruments))]
    figures += [
        ("equity", _equity_figure(result)),
        ("attribution", _attribution_figure(pnl_attribution(result), result.settle_currency)),
        ("funding", _funding_figure(result)),
        ("margin", _margin_figure(result, _threshold(result))),
        ("mark-last", _mark_last_figure(result)),
    ]
    return figures


def _table(frame: pd.DataFrame, table_id: str) -> str:
    body = frame.to_html(
        index=False, escape=True, border=0, na_rep="", float_format="{:.8g}".format
    )
    body = body.replace('<table class="dataframe">', f'<table id="{table_id}">', 1)
    body = re.sub(r">\s+<", "><", body)  # pandas indents every cell; 10k rows add up
    return f'<div class="scroll">{body}</div>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_html(result: Result, path: str | Path) -> Path:
    """Write the report to ``path`` (parent folders created) and return the path.

    The file contains: the run's title and key metrics, price (last/mark/index) with entries,
    exits and liquidation markers, equity and drawdown, the PnL attribution waterfall,
    cumulative funding, margin ratio against the maintenance threshold, mark vs last, and tables
    of metrics, attribution, fills, funding payments and liquidations, plus the configuration.
    """
    from backtester.report.attribution import pnl_attribution
    from backtester.report.liquidations import liquidation_report
    from backtester.report.metrics import compute_metrics

    target = Path(path)
    metrics = compute_metrics(result)
    attribution = pnl_attribution(result)
    strategy = str(result.config.get("strategy", "backtest"))
    title = f"{strategy} — {', '.join(result.instruments)}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts.append("<h2>Key metrics</h2>")
    metric_frame = pd.DataFrame(
        {"metric": list(metrics), "value": [_fmt(v) for v in metrics.values()]}
    )
    att_frame = pd.DataFrame({"line": list(attribution.index), "amount": attribution.to_numpy()})
    parts.append(f"<div class='grid'>{_table(metric_frame, 'metrics-table')}"
                 f"{_table(att_frame, 'attribution-table')}</div>")  # fmt: skip
    sources = attribution.attrs["funding_rate_sources"]
    parts.append(
        "<p>Funding rates: "
        + ", ".join(f"{html.escape(k)} {v}" for k, v in sources.items())
        + f". Balance change {attribution.attrs['total_settle']:.10g} "
        f"{html.escape(result.settle_currency)}.</p>"
    )
    parts.extend(
        f"<p class='warning'>Warning: {html.escape(str(text))}</p>"
        for text in result.config.get("warnings", [])
    )
    first = True
    for chart_id, figure in build_figures(result):
        parts.append(figure.to_html(
            full_html=False, include_plotlyjs=first, div_id=chart_id,
            config={"displaylogo": False, "responsive": True},
        ))  # fmt: skip
        first = False
    liquidations = liquidation_report(result).drop(columns=["margin_ratio_path_times"])
    liquidations["margin_ratio_path"] = [
        " ".join(f"{v:.4g}" for v in path) for path in liquidations["margin_ratio_path"]
    ]
    from backtester.rejections import notes_html

    parts.append(notes_html(result))  # rejected orders, position open at the end
    parts.append(f"<h2>Liquidations ({len(liquidations)})</h2>")
    parts.append(_table(liquidations, "liquidations-table"))
    fills = result.fills.drop(columns=["ts_ns"])
    parts.append(f"<h2>Trades / fills ({len(fills)})</h2>")
    parts.append(_table(fills, "fills-table"))
    funding = result.funding_payments.drop(columns=["ts_ns"])
    parts.append(f"<h2>Funding payments ({len(funding)})</h2>")
    parts.append(_table(funding, "funding-table"))
    parts.append("<h2>Configuration</h2>")
    config_text = json.dumps(result.config, indent=2, default=str, sort_keys=True)
    parts.append(f"<pre id='config'>{html.escape(config_text)}</pre>")
    parts.append("</body></html>")
    target.parent.mkdir(parents=True, exist_ok=True)
    from backtester.report.outputs import _atomic_write

    _atomic_write(target, "\n".join(parts).encode("utf-8"))
    return target
