"""The run report page: header, grouped metrics, charts, periods, round trips, configuration.

Sections, in page order (README "The report" says what each means):

1. header — strategy class, parameters, instrument, contract, venue profile, span, margin mode,
   leverage, initial balance;
2. key metrics grouped into returns, risk, trades and perpetual costs, formatted (%, money with
   its currency, durations); inverse contracts show the coin and the USD column with a note;
3. charts on one linked time axis: price with round trips drawn as entry→exit segments
   coloured by PnL and liquidations marked with their trigger; equity and drawdown on two
   panels; distance to liquidation; mark vs last; cumulative funding; the PnL waterfall;
4. periods — monthly/yearly returns, worst drawdowns, rolling Sharpe and volatility, the
   buy-and-hold benchmark, funding per month;
5. round trips (:mod:`backtester.report.trades`) and their summary by exit reason;
6. liquidations, configuration (paths relative to the project or the catalog).

Charts use SVG traces only (no ``scattergl``: they draw where WebGL is off), each series
reduced to at most :data:`CHART_POINTS` points by min/max buckets, so the data payload is
bounded whatever the run's length (the page says so). plotly.js is either inlined
(``plotly_js="inline"``, one self-contained file) or written once as ``plotly-<version>.min.js``
into a shared folder that the page loads by a relative path (``plotly_js="shared"``, the default
of ``backtester run``: one copy per output folder, shared by every run and sweep page in it).
Charts are built as plain plotly JSON specs (:mod:`backtester.report.plotly_spec`), not
``go.Figure`` objects, whose per-property validation cost half a second per report.
Every user-supplied string goes through :func:`backtester.report.escape.esc`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from backtester import dtypes
from backtester.enums import ContractKind
from backtester.io import atomic_write
from backtester.report.chart_data import downsample_minmax, liquidation_threshold
from backtester.report.escape import esc
from backtester.report.plotly_spec import figure_div, scatter, template_script

if TYPE_CHECKING:
    from backtester.results import Result

__all__ = [
    "CHART_POINTS",
    "build_figures",
    "notebook_html",
    "plotly_script_tag",
    "relative_paths",
    "render_report",
]

CHART_POINTS = 2_400
"""Points per line after min/max bucketing: a min and a max per pixel of the ~1,200 px plot."""
MAX_SEGMENTS = 1_000
"""Round trips drawn on the price chart at most (the largest |PnL| first); all are in the table."""
MAX_TABLE_ROWS = 500
"""Rows of the round-trip table in the page (the run folder's trades.csv has all of them)."""

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1280px;padding:12px 20px;color:#222;background:#fff}
h1{font-size:1.45em;margin:.4em 0 .1em}h2{font-size:1.15em;margin:1.4em 0 .4em;
border-bottom:1px solid #ddd}h3{font-size:1em;margin:.8em 0 .3em}
p.note{color:#555;font-size:12px;margin:.3em 0}
p.warning{color:#7a4100;background:#fff4e5;border-left:3px solid #f0a030;padding:3px 8px}
table{border-collapse:collapse;font-size:12px;margin:4px 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}.scroll{max-height:420px;overflow:auto}
.groups{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px;
align-items:start}
.groups.usd{grid-template-columns:repeat(auto-fill,minmax(440px,1fr))}
.groups table{width:100%}.pos{color:#1a7f37}.neg{color:#c62828}
.header td{text-align:left;border:none;padding:1px 10px 1px 0}.header th{background:none;
border:none;text-align:left;color:#666;font-weight:normal;padding:1px 10px 1px 0}
"""
_GREEN, _RED = "#1a9850", "#d73027"


# --------------------------------------------------------------------------- formatting


def fmt_pct(value: float, digits: int = 2) -> str:
    """0.0123 → ``1.23 %``; NaN → ``n/a``."""
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else ("∞" if value > 0 else "−∞")
    return f"{value * 100:.{digits}f} %"


def fmt_money(value: float, currency: str) -> str:
    """Format a money amount with its currency: 8 significant digits (coins), 2 decimals (USD)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    value = value + 0.0  # -0.0 shows as 0
    if currency.upper() in ("USD", "USDT", "USDC", "BUSD"):
        return f"{value:,.2f} {currency}"
    return f"{value:.8g} {currency}"


def fmt_number(value: Any, digits: int = 4) -> str:
    """Plain number with ``digits`` significant digits (ints as they are)."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if isinstance(value, float | np.floating):
        return f"{float(value):.{digits}g}"
    return str(value)


def fmt_duration(value: Any) -> str:
    """Format a Timedelta or a number of days as ``3 d 04:05`` / ``04:05:00``."""
    if value is None or value is pd.NaT:
        return ""
    if not isinstance(value, pd.Timedelta):
        if isinstance(value, float) and not math.isfinite(value):
            return "n/a"
        value = pd.Timedelta(days=float(value))
    if pd.isna(value):
        return ""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d}:{minutes:02d}"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _signed_class(value: float) -> str:
    if not isinstance(value, float | int) or not math.isfinite(value) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


# --------------------------------------------------------------------------- facts of the run


def strategy_name(result: Result) -> str:
    """Return the strategy's class name (``SmaCross``), not the loader's module path."""
    return str(result.config.get("strategy", "backtest")).rpartition(".")[2] or "backtest"


def relative_paths(value: Any, roots: list[Path] | None = None) -> Any:
    """Replace absolute paths in a configuration by paths relative to the project or catalog.

    A string that is an absolute path becomes relative to the first of ``roots`` (default: the
    current directory) that contains it, else its last two components with ``…/`` in front; so
    no page shows where the machine keeps its files.
    """
    roots = roots if roots is not None else [Path.cwd()]
    if isinstance(value, dict):
        return {k: relative_paths(v, roots) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relative_paths(v, roots) for v in value]
    if isinstance(value, str) and os.path.isabs(value.split(":")[0] if ".py:" in value else value):
        path_text, sep, suffix = value.partition(".py:")
        path = Path(path_text + (".py" if sep else ""))
        for root in roots:
            try:
                return str(path.relative_to(root)) + (":" + suffix if sep else "")
            except ValueError:
                continue
        return "…/" + "/".join(path.parts[-2:]) + (":" + suffix if sep else "")
    return value


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list | tuple) and value else value


def header_facts(result: Result) -> list[tuple[str, str]]:
    """(label, text) pairs of the header: what was run, on what, with which rules."""
    from backtester.report.metrics import contract_attr

    config = result.config
    facts = [("strategy", strategy_name(result))]
    params = config.get("params") or {}
    facts.append(("parameters", ", ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)"))
    facts.append(("instrument", ", ".join(result.instruments)))
    contracts = config.get("contracts") or []
    if contracts:
        facts.append(("contract", ", ".join(str(c) for c in contracts)))
    profile = contract_attr(result, 0, "profile")
    if profile is not None:
        facts.append(("venue profile", str(getattr(profile, "name", profile))))
    kind = result.contract_kinds[0] if result.contract_kinds else None
    if kind is not None:
        facts.append((
            "contract kind",
            f"{ContractKind(kind).name.lower()} (settled in {result.settle_currency})",
        ))  # fmt: skip
    equity = result.records["equity"]
    if len(equity):
        first = pd.Timestamp(int(equity["ts_ns"][0]), unit="ns", tz="UTC")
        last = pd.Timestamp(int(equity["ts_ns"][-1]), unit="ns", tz="UTC")
        facts.append((
            "span",
            f"{first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} UTC ({fmt_duration(last - first)})",
        ))  # fmt: skip
    if config.get("margin_mode") is not None:
        facts.append(("margin mode", str(_first(config["margin_mode"]))))
    if config.get("leverage") is not None:
        facts.append(("leverage", f"{fmt_number(float(_first(config['leverage'])))}×"))
    facts.append(
        ("initial balance", fmt_money(float(result.initial_balance_settle), result.settle_currency))
    )
    return facts


def metric_groups(
    result: Result, metrics: dict[str, Any]
) -> list[tuple[str, list[tuple[str, str, str | None]]]]:
    """Return groups of (label, settle text, usd text or None), in display order."""
    cur = result.settle_currency
    usd = "initial_balance_usd" in metrics

    def money(key: str) -> tuple[str, str | None]:
        value = metrics.get(f"{key}_settle", math.nan)
        return fmt_money(value, cur), (
            fmt_money(metrics.get(f"{key}_usd", math.nan), "USD") if usd else None
        )

    def pct(key: str) -> tuple[str, str | None]:
        return fmt_pct(metrics.get(key, math.nan)), (
            fmt_pct(metrics.get(f"{key}_usd", math.nan)) if usd else None
        )

    def num(key: str) -> tuple[str, str | None]:
        return fmt_number(metrics.get(key, math.nan), 3), (
            fmt_number(metrics.get(f"{key}_usd", math.nan), 3) if usd else None
        )

    def plain(text: str) -> tuple[str, None]:
        return text, None

    final_usd = metrics.get("final_equity_usd")
    groups = [
        ("Returns", [
            ("total return", *pct("total_return")),
            ("CAGR (365-day year)", *pct("cagr")),
            ("final equity", fmt_money(metrics.get("final_equity_settle", math.nan), cur),
             fmt_money(final_usd, "USD") if usd and final_usd is not None else None),
            ("initial balance", fmt_money(metrics.get("initial_balance_settle", math.nan), cur),
             fmt_money(metrics.get("initial_balance_usd", math.nan), "USD") if usd else None),
        ]),
        ("Risk", [
            ("max drawdown", *pct("max_drawdown")),
            ("longest drawdown", fmt_duration(metrics.get("max_drawdown_duration_days", 0.0)),
             fmt_duration(metrics.get("max_drawdown_duration_days_usd", 0.0)) if usd else None),
            ("annual volatility", *pct("annual_volatility")),
            ("Sharpe (daily, rf 0)", *num("sharpe")),
            ("Sortino", *num("sortino")),
            ("Calmar", *num("calmar")),
            ("exposure (time in market)", *plain(fmt_pct(metrics.get("exposure", math.nan)))),
        ]),
        ("Trades", [
            ("closing fills", *plain(fmt_number(metrics.get("trades", 0)))),
            ("win rate (closing fills)", *plain(fmt_pct(metrics.get("win_rate", math.nan)))),
            ("profit factor", *plain(fmt_number(metrics.get("profit_factor", math.nan), 3))),
            ("average closing fill", *money("average_trade")),
            ("turnover", *money("turnover")),
            ("turnover / initial balance", *plain(
                fmt_number(metrics.get("turnover_ratio", math.nan), 3) + "×")),
        ]),
        ("Perpetual costs", [
            ("fees", *money("fees")),
            ("funding paid", *money("funding_paid")),
            ("funding received", *money("funding_received")),
            ("liquidations", *plain(fmt_number(metrics.get("liquidations", 0)))),
            ("liquidation cost", *money("liquidation_cost")),
            ("clawback / ADL", *money("clawback_adl")),
            ("clawback (fund deficit)", *money("clawback")),
            ("venue insurance fund, start → end", *plain(_fund_text(metrics, cur))),
            ("worst margin ratio (venue's)", *plain(
                fmt_number(metrics.get("worst_margin_ratio", math.nan), 4))),
        ]),
    ]  # fmt: skip
    return groups


def _fund_text(metrics: dict[str, Any], currency: str) -> str:
    """Describe the venue's insurance fund over the run.

    The ``insurance_fund_settle`` option of ``backtest``: unlimited by default, i.e. every
    deficit covered, no clawback.
    """
    start = metrics.get("insurance_fund_start_settle", math.nan)
    end = metrics.get("insurance_fund_end_settle", math.nan)
    if math.isinf(start):
        return "unlimited (default: the fund covers every deficit)"
    return f"{fmt_money(start, currency)} → {fmt_money(end, currency)}"


# --------------------------------------------------------------------------- charts


def _times(ts_ns: np.ndarray) -> np.ndarray:
    """Epoch milliseconds as float64 (plotly date axes; compact base64 in the page)."""
    return np.asarray(ts_ns, dtype=np.int64) // 1_000_000 * 1.0


def _bucket(
    ts: np.ndarray, y: np.ndarray, points: int = CHART_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    return downsample_minmax(np.asarray(ts), np.asarray(y, dtype=np.float64), points)


def _layout(
    title: str, height: int = 360, time_axis: bool = True, **axes: dict[str, Any]
) -> dict[str, Any]:
    """Return the layout every chart shares (title, margins, legend on top, one font).

    ``axes``: ``xaxis``, ``yaxis2``, ... as plotly names them (x axes of a time chart are
    dates).
    """
    layout: dict[str, Any] = {
        "title": {"text": esc(title), "x": 0.01},
        "height": height,
        "margin": {"l": 70, "r": 20, "t": 40, "b": 30},
        "legend": {"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        "font": {"family": "Arial, sans-serif", "size": 11},
        "hovermode": "x unified" if time_axis else "closest",
    }
    if time_axis:
        axes.setdefault("xaxis", {})
    for name, axis in axes.items():
        layout[name] = {**axis, "type": "date"} if time_axis and name.startswith("x") else axis
    return layout


def _price_figure(result: Result, index: int, trades: pd.DataFrame) -> dict[str, Any]:
    symbol = result.instruments[index]
    data: list[dict[str, Any]] = []
    streams = dict(result.price_series.get(symbol, {}))
    if not len(streams.get("mark", [])) and index == 0 and len(result.records["equity"]):
        equity = result.records["equity"]
        mark = np.zeros(len(equity), dtype=dtypes.PRICE_DTYPE)
        mark["ts_ns"] = equity["ts_ns"]
        mark["price"] = equity["mark_price"]
        streams["mark"] = mark
    colors = {"last": "#444", "mark": "#1f77b4", "index": "#9467bd"}
    for name in ("last", "mark", "index"):
        array = streams.get(name)
        if array is None or len(array) == 0:
            continue
        x, y = _bucket(array["ts_ns"], array["price"])
        data.append(scatter(
            _times(x), y, mode="lines", name=f"{name} price",
            line={"width": 1, "color": colors[name]}, opacity=0.9 if name == "last" else 0.6,
        ))  # fmt: skip
    if index == 0:  # indicators the strategy registered (ctx.plot / plots=), on its price axis
        for name, (ts, values) in result.plots.items():
            finite = np.isfinite(np.asarray(values, dtype=np.float64))
            x, y = _bucket(np.asarray(ts)[finite], np.asarray(values, dtype=np.float64)[finite])
            data.append(scatter(_times(x), y, mode="lines", name=esc(name), line={"width": 1.2}))
    mine = trades[(trades["instrument"] == symbol) & trades["exit_price"].notna()]
    shown = len(mine)
    if len(mine) > MAX_SEGMENTS:
        mine = mine.loc[mine["pnl_settle"].abs().sort_values(ascending=False).index[:MAX_SEGMENTS]]
    for label, color, subset in (
        ("winning round trips", _GREEN, mine[mine["pnl_settle"] > 0]),
        ("losing round trips", _RED, mine[mine["pnl_settle"] <= 0]),
    ):
        if len(subset) == 0:
            continue
        n = len(subset)
        xs = np.full(3 * n, np.nan)
        ys = np.full(3 * n, np.nan)
        xs[0::3] = subset["entry_time"].astype("int64").to_numpy() // 1_000_000
        xs[1::3] = subset["exit_time"].astype("int64").to_numpy() // 1_000_000
        ys[0::3] = subset["entry_price"].to_numpy()
        ys[1::3] = subset["exit_price"].to_numpy()
        data.append(scatter(
            xs, ys, mode="lines+markers", name=label, connectgaps=False,
            line={"color": color, "width": 2}, marker={"size": 4, "color": color},
            hoverinfo="skip",
        ))  # fmt: skip
    liq = result.records["liquidations"]
    liq = liq[liq["instrument"] == index]
    if len(liq):
        text = [
            f"{'partial' if p else 'full'} liquidation: mark {m:.6g} at trigger, "
            f"liquidation price {lp:.6g}, bankruptcy {bp:.6g}, fill {fp:.6g}"
            for p, m, lp, bp, fp in zip(
                liq["is_partial"], liq["mark_price"], liq["liquidation_price"],
                liq["bankruptcy_price"], liq["fill_price"], strict=True,
            )
        ]  # fmt: skip
        data.append(scatter(
            _times(liq["ts_ns"]), liq["mark_price"], mode="markers", name="liquidation (mark)",
            marker={"symbol": "x", "size": 13, "color": "black", "line": {"width": 2}},
            text=text, hovertemplate="%{text}<extra></extra>",
        ))  # fmt: skip
    title = f"{symbol} price and round trips"
    if shown > len(mine):
        title += f" (the {len(mine)} largest of {shown} drawn)"
    return {"data": data, "layout": _layout(title, height=420)}


def _equity_figure(result: Result) -> dict[str, Any]:
    equity = result.records["equity"]
    ts = np.asarray(equity["ts_ns"])
    values = np.asarray(equity["equity_settle"], dtype=np.float64)
    peak = np.fmax.accumulate(values) if len(values) else values
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peak > 0, values / peak - 1.0, np.nan)
    x, y = _bucket(ts, values)
    data = [scatter(_times(x), y, name=f"equity ({esc(result.settle_currency)})",
                    line={"color": "#1f77b4", "width": 1.5}, xaxis="x", yaxis="y")]  # fmt: skip
    x, y = _bucket(ts, np.asarray(equity["balance_settle"], dtype=np.float64))
    data.append(scatter(
        _times(x), y, name="wallet balance", line={"color": "#999", "width": 1, "dash": "dot"},
        xaxis="x", yaxis="y",
    ))  # fmt: skip
    x, y = _bucket(ts, drawdown)
    data.append(scatter(
        _times(x), y, name="drawdown", fill="tozeroy", line={"color": _RED, "width": 1},
        fillcolor="rgba(215,48,39,0.2)", xaxis="x2", yaxis="y2",
    ))  # fmt: skip
    low = float(np.nanmin(drawdown)) if len(drawdown) and np.isfinite(drawdown).any() else 0.0
    # ticks with enough decimals for shallow drawdowns (".0%" showed "0%, 0%, 0%, -1%")
    digits = 0 if low < -0.05 else (1 if low < -0.005 else 2)
    # two rows on one time axis (plotly's make_subplots(rows=2, shared_xaxes=True,
    # row_heights=[0.65, 0.35], vertical_spacing=0.04): 0.96 of the height split 65/35)
    layout = _layout(
        "Equity and drawdown", height=460,
        xaxis={"anchor": "y", "domain": [0.0, 1.0], "matches": "x2", "showticklabels": False},
        yaxis={"anchor": "x", "domain": [0.376, 1.0],
               "title": {"text": esc(result.settle_currency)}},
        xaxis2={"anchor": "y2", "domain": [0.0, 1.0]},
        yaxis2={"anchor": "x2", "domain": [0.0, 0.336], "title": {"text": "drawdown"},
                "tickformat": f".{digits}%"},
    )  # fmt: skip
    return {"data": data, "layout": layout}


def _threshold(result: Result) -> tuple[float, str] | None:
    return liquidation_threshold(result)


def liquidation_distance(result: Result) -> np.ndarray:
    """Share of the margin balance above what the venue requires: 0 at liquidation, 1 far away.

    One direction for every venue, from the venue's own margin ratio ``r`` in the equity
    records and its tier-1 trigger level ``L`` (:func:`_threshold`): Binance ``r`` = MM /
    margin balance rises to ``L`` = 1 → ``1 − r/L``; every other venue's ratio falls to ``L``
    → ``1 − L/r`` (OKX mgnRatio ``L`` = 1; OKEx 2019 ``L`` = MMR + fee; BitMEX, Bybit margin
    balance / MM with ``L`` = (MMR + fee) / MMR). NaN when flat.
    """
    from backtester.report.metrics import ratio_rises_to_liquidation

    ratio = np.asarray(result.records["equity"]["margin_ratio"], dtype=np.float64)
    threshold = _threshold(result)
    level = threshold[0] if threshold else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        if ratio_rises_to_liquidation(result):
            return 1.0 - ratio / level
        return 1.0 - level / ratio


def _margin_figure(result: Result) -> dict[str, Any]:
    equity = result.records["equity"]
    ts = np.asarray(equity["ts_ns"])
    distance = liquidation_distance(result)
    ratio = np.asarray(equity["margin_ratio"], dtype=np.float64)
    data: list[dict[str, Any]] = []
    finite = np.isfinite(distance)
    if finite.any():
        # min/max buckets keep each bucket's minimum: the closest approach is never lost
        x, y = _bucket(ts[finite], distance[finite])
        keep = np.searchsorted(ts[finite], x)
        data.append(scatter(
            _times(x), y, mode="lines", name="distance to liquidation",
            line={"color": "#ff7f0e", "width": 1}, customdata=ratio[finite][keep],
            hovertemplate="%{y:.2%} of margin left; venue margin ratio %{customdata:.4g}"
            "<extra></extra>",
        ))  # fmt: skip
    liq = result.records["liquidations"]
    if len(liq):
        data.append(scatter(
            _times(liq["ts_ns"]), np.zeros(len(liq)), mode="markers", name="liquidation",
            marker={"symbol": "x", "size": 12, "color": "black"},
            customdata=np.asarray(liq["margin_ratio"], dtype=np.float64),
            hovertemplate="liquidated; venue margin ratio %{customdata:.4g}<extra></extra>",
        ))  # fmt: skip
    layout = _layout(
        "Distance to liquidation (share of margin balance above the requirement)", height=300,
        yaxis={"tickformat": ".0%", "rangemode": "tozero"},
    )  # fmt: skip
    # the liquidation level: a dashed line across the plot at 0 (plotly's add_hline)
    layout["shapes"] = [{
        "type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": 0.0, "y1": 0.0,
        "line": {"dash": "dash", "color": _RED},
    }]  # fmt: skip
    return {"data": data, "layout": layout}


def _mark_last_figure(result: Result) -> dict[str, Any]:
    equity = result.records["equity"]
    ts = np.asarray(equity["ts_ns"])
    basis = np.asarray(equity["mark_price"] - equity["last_price"], dtype=np.float64)
    x, y = _bucket(ts, basis)
    data = [scatter(_times(x), y, name="mark − last", line={"width": 1, "color": "#7f7f7f"})]
    return {"data": data, "layout": _layout("Mark minus last price (quote currency)", height=260)}


def _funding_figure(result: Result) -> dict[str, Any]:
    payments = result.records["funding_payments"]
    x, y = _bucket(payments["ts_ns"], np.cumsum(payments["payment_settle"]))
    data = [scatter(_times(x), y, name="cumulative funding",
                    line={"shape": "hv", "color": "#2ca02c"})]  # fmt: skip
    title = f"Cumulative funding ({result.settle_currency}; < 0 paid)"
    return {"data": data, "layout": _layout(title, height=260)}


def _rolling_figure(returns: pd.Series, benchmark: pd.Series, window: int) -> dict[str, Any]:
    from backtester.report.periods import rolling_sharpe, rolling_volatility

    x = _times(pd.DatetimeIndex(returns.index).as_unit("ns").asi8)
    blue = {"color": "#1f77b4"}
    sharpe = rolling_sharpe(returns, window).to_numpy()
    vol = rolling_volatility(returns, window).to_numpy()
    data = [
        scatter(x, sharpe, name="strategy Sharpe", line=blue, xaxis="x", yaxis="y"),
        scatter(x, vol, name="strategy volatility", line=blue, xaxis="x2", yaxis="y2"),
    ]
    if len(benchmark):
        xb = _times(pd.DatetimeIndex(benchmark.index).as_unit("ns").asi8)
        data.append(scatter(xb, rolling_volatility(benchmark, window).to_numpy(),
                            name="buy-and-hold volatility", line={"color": "#999", "dash": "dot"},
                            xaxis="x2", yaxis="y2"))  # fmt: skip
    # two panels side by side (plotly's make_subplots(rows=1, cols=2): 0.1 between them),
    # each titled above its centre
    titles = (f"rolling Sharpe ({window} days)", f"rolling volatility ({window} days, annualised)")
    layout = _layout(
        "Rolling risk", height=300,
        xaxis={"anchor": "y", "domain": [0.0, 0.45]}, yaxis={"anchor": "x", "domain": [0.0, 1.0]},
        xaxis2={"anchor": "y2", "domain": [0.55, 1.0]},
        yaxis2={"anchor": "x2", "domain": [0.0, 1.0], "tickformat": ".0%"},
    )  # fmt: skip
    layout["annotations"] = [
        {"font": {"size": 16}, "showarrow": False, "text": esc(text), "x": centre,
         "xanchor": "center", "xref": "paper", "y": 1.0, "yanchor": "bottom", "yref": "paper"}
        for text, centre in zip(titles, (0.225, 0.775), strict=True)
    ]  # fmt: skip
    return {"data": data, "layout": layout}


def _attribution_figure(attribution: pd.Series, currency: str) -> dict[str, Any]:
    shown = attribution[attribution != 0.0]
    data = [{
        "type": "waterfall",
        "x": [*[str(k).removesuffix("_settle").replace("_", " ") for k in shown.index], "total"],
        "y": [*(float(v) for v in shown.tolist()), 0.0],
        "measure": [*["relative"] * len(shown), "total"],
    }]  # fmt: skip
    title = f"Where the balance change came from ({currency})"
    return {"data": data, "layout": _layout(title, time_axis=False)}


def build_figures(
    result: Result, trades: pd.DataFrame | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Return the report's charts as (id, plotly JSON spec) pairs, in page order.

    See :mod:`backtester.report.plotly_spec`; ``plotly_spec.to_figure`` makes a ``go.Figure``.
    """
    from backtester.report.attribution import pnl_attribution
    from backtester.report.trades import round_trips

    trades = round_trips(result) if trades is None else trades
    figures: list[tuple[str, Any]] = [
        (f"price-{i}", _price_figure(result, i, trades)) for i in range(len(result.instruments))
    ]
    figures += [
        ("equity", _equity_figure(result)),
        ("margin", _margin_figure(result)),
        ("mark-last", _mark_last_figure(result)),
        ("funding", _funding_figure(result)),
        ("attribution", _attribution_figure(pnl_attribution(result), result.settle_currency)),
    ]
    return figures


# --------------------------------------------------------------------------- tables


def _table(headers: list[str], rows: list[list[Any]], table_id: str, left: int = 1) -> str:
    """Return an HTML table; cells are (text, css class) or text; every text is escaped."""
    out = [f'<table id="{esc(table_id)}"><thead><tr>']
    out += [f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(headers)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            text, cls = cell if isinstance(cell, tuple) else (cell, "")
            cls = f"{cls} l".strip() if i < left else cls
            out.append(f'<td class="{cls}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _money_cell(value: float) -> tuple[str, str]:
    return (f"{value:.8g}" if math.isfinite(value) else "", _signed_class(value))


def _monthly_table(monthly: pd.DataFrame) -> str:
    """Monthly returns as a heatmap table: cell colour by sign and size (no chart library)."""
    from backtester.report.periods import MONTHS

    scale = float(np.nanmax(np.abs(monthly[list(MONTHS)].to_numpy()))) if monthly.size else 0.0
    out = ['<table id="monthly-table"><thead><tr><th class="l">year</th>']
    out += [f"<th>{m}</th>" for m in MONTHS] + ["<th>Year</th></tr></thead><tbody>"]
    for year, row in monthly.iterrows():
        out.append(f'<tr><td class="l">{esc(year)}</td>')
        for name in [*MONTHS, "Year"]:
            value = row[name]
            if not math.isfinite(value):
                out.append("<td></td>")
                continue
            alpha = 0.15 + 0.65 * min(1.0, abs(value) / scale) if scale > 0 else 0.15
            rgb = "26,152,80" if value > 0 else "215,48,39"
            style = f"background:rgba({rgb},{alpha:.2f})" if name != "Year" else "font-weight:bold"
            out.append(f'<td style="{style}">{esc(fmt_pct(value, 2))}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _round_trip_rows(trades: pd.DataFrame) -> list[list[Any]]:
    return [
        [
            t.trade_id, t.instrument, t.side, f"{t.entry_time:%Y-%m-%d %H:%M}",
            "" if pd.isna(t.exit_time) else f"{t.exit_time:%Y-%m-%d %H:%M}",
            fmt_duration(t.duration), fmt_number(t.size_contracts, 6),
            fmt_number(t.entry_price, 8), fmt_number(t.exit_price, 8),
            _money_cell(t.pnl_settle), _money_cell(t.price_pnl_settle), _money_cell(t.fees_settle),
            _money_cell(t.funding_settle), _money_cell(t.liquidation_settle),
            _money_cell(t.unrealised_pnl_settle), t.exit_reason,
        ]
        # rows of a frame carry no column types: Any
        for t in cast(Iterable[Any], trades.head(MAX_TABLE_ROWS).itertuples(index=False))
    ]  # fmt: skip


# --------------------------------------------------------------------------- plotly.js


def plotly_script_tag(mode: str, page_path: Path, shared_dir: Path | None = None) -> str:
    """Return the ``<script>`` that provides plotly.js to a page.

    ``"inline"``: the library itself (about 4.6 MB) inside the page. ``"shared"``: written once
    as ``plotly-<version>.min.js`` into ``shared_dir`` (default: the page's folder) if it is not
    there yet, and loaded by a path relative to the page.
    """
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    if mode == "inline":
        return f"<script>{get_plotlyjs()}</script>"
    if mode != "shared":
        raise ValueError(f"plotly_js: expected 'inline' or 'shared', got {mode!r}")
    folder = Path(shared_dir) if shared_dir is not None else page_path.parent
    name = f"plotly-{get_plotlyjs_version()}.min.js"
    target = folder / name
    if not target.is_file():
        atomic_write(target, get_plotlyjs().encode("utf-8"))
    relative = os.path.relpath(target, page_path.parent).replace(os.sep, "/")
    return f'<script src="{esc(relative)}"></script>'


_LINK_AXES_JS = """
<script>
// one time axis for every chart of class time-chart: zooming one zooms the others
(function(){const charts=[...document.querySelectorAll('.time-chart .js-plotly-plot')];
let busy=false;charts.forEach(c=>c.on('plotly_relayout',e=>{if(busy)return;
const r0=e['xaxis.range[0]'],r1=e['xaxis.range[1]'],auto=e['xaxis.autorange'];
const range=e['xaxis.range']||(r0!==undefined?[r0,r1]:null);if(!range&&!auto)return;
busy=true;Promise.all(charts.filter(o=>o!==c).map(o=>{const u={};
const axes=Object.keys(o._fullLayout).filter(k=>/^xaxis\\d*$/.test(k));
axes.forEach(a=>{if(range){u[a+'.range']=range}else{u[a+'.autorange']=true}});
return Plotly.relayout(o,u)})).finally(()=>{busy=false})}))})();
</script>
"""


# --------------------------------------------------------------------------- the page


def _figure_html(chart_id: str, figure: dict[str, Any], time_axis: bool) -> str:
    body = figure_div(chart_id, figure, {"displaylogo": False, "responsive": True})
    return f'<div class="{"time-chart" if time_axis else "chart"}">{body}</div>'


def _config_rows(config: dict[str, Any]) -> list[list[Any]]:
    flat: list[list[Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list) and len(value) == 1:
            walk(prefix, value[0])
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                walk(f"{prefix}[{i}]", item)
        else:
            flat.append([prefix, "" if value is None else str(value)])

    walk("", config)
    return flat


def notebook_html(result: Result) -> str:
    """Return the header and grouped metrics as an HTML fragment (``Result._repr_html_``)."""
    from backtester.report.metrics import compute_metrics

    metrics = compute_metrics(result)
    return f"<div>{_header_html(result)}{_metrics_html(result, metrics)}</div>"


def _header_html(result: Result) -> str:
    facts = header_facts(result)
    title = f"{strategy_name(result)} on {', '.join(result.instruments)}"
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    return f"<h1>{esc(title)}</h1><table class='header' id='header'>{rows}</table>"


def _metrics_html(result: Result, metrics: dict[str, Any]) -> str:
    usd = "initial_balance_usd" in metrics
    parts = [f"<div class='groups{' usd' if usd else ''}' id='metrics'>"]
    for group, rows in metric_groups(result, metrics):
        headers = [group, result.settle_currency, *(["USD"] if usd else [])]
        body = [[label, coin, *([u or ""] if usd else [])] for label, coin, u in rows]
        parts.append(_table(headers, body, f"metrics-{group.split()[-1].lower()}"))
    parts.append("</div>")
    if usd:
        parts.append(
            "<p class='note'>Inverse contract: the account holds "
            f"{esc(result.settle_currency)}, so the coin column measures the strategy in coin "
            f"and the USD column values the same equity at the mark price — a run that loses "
            f"{esc(result.settle_currency)} can still gain in USD when the coin rises.</p>"
        )
    return "".join(parts)


def render_report(
    result: Result,
    path: Path,
    *,
    plotly_js: str = "inline",
    shared_dir: Path | None = None,
    trades: pd.DataFrame | None = None,
) -> str:
    """Return the whole report page as text (module docstring: sections and options).

    ``trades``: ``round_trips(result)`` when the caller has built it already.
    """
    from backtester.report.attribution import pnl_attribution
    from backtester.report.liquidations import liquidation_report
    from backtester.report.metrics import compute_metrics
    from backtester.report.periods import (
        benchmark_returns,
        funding_by_month,
        monthly_returns,
        worst_drawdowns,
    )
    from backtester.report.trades import exit_reason_summary, round_trips

    metrics = compute_metrics(result)
    attribution = pnl_attribution(result)
    trades = round_trips(result) if trades is None else trades
    returns = result.returns("1D")
    benchmark = benchmark_returns(result)
    cur = result.settle_currency
    title = f"{strategy_name(result)} — {', '.join(result.instruments)}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta name='viewport' content='width=device-width'><title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        plotly_script_tag(plotly_js, path, shared_dir),
        template_script(),  # the charts' template, once for the page
        "</head><body>",
        _header_html(result),
        "<h2>Key metrics</h2>",
        _metrics_html(result, metrics),
    ]
    sources = attribution.attrs["funding_rate_sources"]
    parts.append(
        "<p class='note'>Returns and ratios use daily equity (last sample of each UTC day, "
        "365 days a year, risk-free rate 0). Funding rates: "
        + ", ".join(f"{esc(k)} {v}" for k, v in sources.items())
        + ". Charts show at most "
        f"{CHART_POINTS:,} points per line (min and max of each time bucket kept, so spikes "
        "and the closest approach to liquidation stay visible); the tables and the run "
        "folder's files hold every record.</p>"
    )
    # what the run computed or fell back on (funding from the premium, mark = last price)
    parts.extend(
        f"<p class='warning'>Warning: {esc(str(text))}</p>"
        for text in result.config.get("warnings", [])
    )
    from backtester.rejections import notes_html

    parts.append(notes_html(result))  # rejected orders, a position open at the end
    parts.append("<h2>Charts</h2>")
    for chart_id, figure in build_figures(result, trades):
        parts.append(_figure_html(chart_id, figure, chart_id != "attribution"))
    # ------------------------------------------------------------------ periods
    parts.append("<h2>Periods</h2><h3>Monthly and yearly returns</h3>")
    parts.append(_monthly_table(monthly_returns(returns)))
    parts.append("<h3>Worst drawdowns</h3>")
    dd = worst_drawdowns(returns)
    parts.append(_table(
        ["start (peak)", "trough", "recovery", "depth", "length"],
        [[f"{r.start:%Y-%m-%d}", f"{r.trough:%Y-%m-%d}",
          "not recovered" if pd.isna(r.recovery) else f"{r.recovery:%Y-%m-%d}",
          fmt_pct(r.depth), fmt_duration(r.length_days)]
         for r in cast(Iterable[Any], dd.itertuples())],
        "drawdowns-table", left=3,
    ))  # fmt: skip
    parts.append(_benchmark_html(result, returns, benchmark))
    if len(returns) >= 3:
        window = 30 if len(returns) >= 60 else max(2, len(returns) // 3)
        parts.append(_figure_html("rolling", _rolling_figure(returns, benchmark, window), False))
    parts.append(f"<h3>Funding per month ({esc(cur)})</h3>")
    funding = funding_by_month(result)
    parts.append(_table(
        ["month", "paid", "received", "net", "payments"],
        [[m, _money_cell(r.paid_settle), _money_cell(r.received_settle),
          _money_cell(r.net_settle), r.payments] for m, r in funding.iterrows()],
        "funding-month-table",
    ))  # fmt: skip
    # ------------------------------------------------------------------ round trips
    parts.append(f"<h2>Round trips ({len(trades)})</h2>")
    summary = exit_reason_summary(trades)
    parts.append(_table(
        ["exit reason", "round trips", "wins", "win rate", f"PnL ({cur})",
         f"mean PnL ({cur})", "fees", "funding", "mean duration"],
        [[reason, r.trades, r.wins, fmt_pct(r.win_rate), _money_cell(r.pnl_settle),
          _money_cell(r.mean_pnl_settle), _money_cell(r.fees_settle),
          _money_cell(r.funding_settle), fmt_duration(r.mean_duration)]
         for reason, r in summary.iterrows()],
        "exit-reasons-table",
    ))  # fmt: skip
    unattributed = trades.attrs.get("unattributed_settle") or {}
    if unattributed:
        parts.append(
            "<p class='note'>Ledger amounts outside any round trip: "
            + ", ".join(f"{esc(k)} {v:.8g} {esc(cur)}" for k, v in unattributed.items())
            + "</p>"
        )
    if len(trades) > MAX_TABLE_ROWS:
        parts.append(f"<p class='note'>First {MAX_TABLE_ROWS:,} of {len(trades):,} round trips; "
                     "all are in trades.csv of the run folder.</p>")  # fmt: skip
    parts.append(
        "<div class='scroll'>"
        + _table(
            ["#", "instrument", "side", "entry", "exit", "duration", "size (contracts)",
             "entry price", "exit price", f"PnL ({cur})", "price", "fees", "funding",
             "liquidation", "unrealised", "exit reason"],
            _round_trip_rows(trades), "trades-table", left=3,
        )
        + "</div>"
    )  # fmt: skip
    # ------------------------------------------------------------------ liquidations, config
    liquidations = liquidation_report(result)
    parts.append(f"<h2>Liquidations ({len(liquidations)})</h2>")
    if len(liquidations):
        hidden = ("margin_ratio_path", "margin_ratio_path_times", "ts_ns")
        columns = [c for c in liquidations.columns if c not in hidden]
        parts.append("<div class='scroll'>" + _table(
            columns,
            [[_liquidation_cell(v) for v in row]
             for row in liquidations[columns].itertuples(index=False)],
            "liquidations-table",
        ) + "</div>")  # fmt: skip
    else:
        parts.append("<p>None.</p>")
    parts.append("<h2>Configuration</h2>")
    shown = relative_paths({k: v for k, v in result.config.items() if not k.startswith("_")})
    parts.append(_table(["setting", "value"], _config_rows(shown), "config", left=2))
    parts.append(_LINK_AXES_JS)
    parts.append("</body></html>")
    return "\n".join(parts)


def _liquidation_cell(value: Any) -> str:
    """Format a liquidations-table cell: numbers to 8 digits, NaT empty.

    The last-price delay is signed (``−01:00:00``: the last price triggers an hour before the
    mark).
    """
    if value is pd.NaT:
        return ""
    if isinstance(value, pd.Timedelta):
        return "−" + fmt_duration(-value) if value < pd.Timedelta(0) else fmt_duration(value)
    return fmt_number(value, 8) if isinstance(value, float) else str(value)


def _benchmark_html(result: Result, returns: pd.Series, benchmark: pd.Series) -> str:
    from backtester.report.metrics import cagr, max_drawdown, sharpe_ratio
    from backtester.report.periods import beta as beta_to

    if len(benchmark) == 0 or len(returns) == 0:
        return "<h3>Benchmark</h3><p>No buy-and-hold benchmark (face value or prices unknown).</p>"
    aligned = pd.concat([returns.rename("s"), benchmark.rename("b")], axis=1).dropna()
    s, b = aligned["s"].to_numpy(), aligned["b"].to_numpy()
    var = float(np.var(b, ddof=1)) if len(b) > 1 else 0.0
    beta = beta_to(returns, benchmark)
    corr = float(np.corrcoef(s, b)[0, 1]) if len(b) > 1 and np.std(s) > 0 and var > 0 else math.nan
    lev = _first(result.config.get("leverage", 1.0))
    rows = [
        ["total return", fmt_pct(float(np.prod(1 + s) - 1)), fmt_pct(float(np.prod(1 + b) - 1))],
        ["CAGR", fmt_pct(cagr(s, 365.0)), fmt_pct(cagr(b, 365.0))],
        ["Sharpe", fmt_number(sharpe_ratio(s, 365.0), 3), fmt_number(sharpe_ratio(b, 365.0), 3)],
        ["max drawdown", fmt_pct(max_drawdown(s)), fmt_pct(max_drawdown(b))],
        ["beta to buy-and-hold", fmt_number(beta, 3), ""],
        ["correlation", fmt_number(corr, 3), ""],
    ]
    return (
        f"<h3>Benchmark: buy-and-hold {esc(result.instruments[0])} long at "
        f"{esc(fmt_number(float(lev)))}× (no fees or funding)</h3>"
        + _table(["", "strategy", "buy-and-hold"], rows, "benchmark-table")
    )
