"""The report's charts as plain plotly JSON specs (backtester.report.plotly_spec): valid for
plotly (its own validation), laid out as plotly's make_subplots would, arrays exact."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from backtester.report import plotly_spec
from backtester.report.html import write_html
from backtester.report.page import _rolling_figure, build_figures
from backtester.report.periods import benchmark_returns


def test_every_chart_is_a_valid_plotly_figure(hand_result) -> None:
    figures = dict(build_figures(hand_result))
    assert list(figures) == ["price-0", "equity", "margin", "mark-last", "funding", "attribution"]
    for chart_id, spec in figures.items():
        figure = plotly_spec.to_figure(spec)  # plotly validates every property (ValueError)
        assert isinstance(figure, go.Figure), chart_id
        assert len(figure.data) == len(spec["data"]) >= 1, chart_id
        # SVG traces only: the report draws without WebGL
        assert {t.type for t in figure.data} <= {"scatter", "waterfall"}, chart_id
    names = [t["name"] for t in figures["equity"]["data"]]
    assert names == ["equity (BTC)", "wallet balance", "drawdown"]


def test_subplot_layouts_match_plotly_make_subplots(hand_result) -> None:
    """Axis domains written by hand equal plotly's own grid computation."""
    equity = dict(build_figures(hand_result))["equity"]["layout"]
    grid = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.04
    ).layout
    for axis in ("xaxis", "yaxis", "xaxis2", "yaxis2"):
        np.testing.assert_allclose(equity[axis]["domain"], grid[axis].domain, atol=1e-12)
        assert equity[axis]["anchor"] == grid[axis].anchor
    assert equity["xaxis"]["matches"] == grid.xaxis.matches == "x2"
    assert equity["xaxis"]["type"] == equity["xaxis2"]["type"] == "date"

    returns = hand_result.returns("1D")
    rolling = _rolling_figure(returns, benchmark_returns(hand_result), 3)["layout"]
    titles = ("rolling Sharpe (3 days)", "rolling volatility (3 days, annualised)")
    grid = make_subplots(rows=1, cols=2, subplot_titles=titles).layout
    for axis in ("xaxis", "yaxis", "xaxis2", "yaxis2"):
        np.testing.assert_allclose(rolling[axis]["domain"], grid[axis].domain, atol=1e-12)
    for ours, theirs in zip(rolling["annotations"], grid.annotations, strict=True):
        assert ours["text"] == theirs.text
        assert abs(ours["x"] - theirs.x) < 1e-12
        assert ours["y"] == theirs.y


def test_typed_arrays_round_trip_nan_included() -> None:
    values = np.array([1.5, np.nan, -2.25e300, 0.0])
    encoded = plotly_spec.encode_array(values)
    assert encoded["dtype"] == "f8"
    back = np.frombuffer(base64.b64decode(encoded["bdata"]), dtype="<f8")
    np.testing.assert_array_equal(back, values)  # NaN kept: a gap in a line
    # strided views (a field of a record array) are written in order
    records = np.zeros(3, dtype=[("a", "f8"), ("b", "f8")])
    records["b"] = [1.0, 2.0, 3.0]
    back = base64.b64decode(plotly_spec.encode_array(records["b"])["bdata"])
    np.testing.assert_array_equal(np.frombuffer(back, dtype="<f8"), [1.0, 2.0, 3.0])


def test_json_is_safe_in_a_script_and_has_no_nan() -> None:
    text = plotly_spec.to_json({"name": "</script><b>&", "y": [1.0, float("nan")]})
    assert "</script>" not in text
    assert "<b>" not in text
    assert json.loads(text) == {"name": "</script><b>&", "y": [1.0, None]}


def test_template_is_plotlys_own() -> None:
    assert plotly_spec.template() == pio.templates["plotly_white"].to_plotly_json()


def test_page_defines_the_template_once_and_draws_every_chart(hand_result, tmp_path) -> None:
    text = write_html(hand_result, tmp_path / "report.html", plotly_js="shared").read_text()
    assert text.count(f"var {plotly_spec.TEMPLATE_VARIABLE}=") == 1
    charts = re.findall(r'Plotly\.newPlot\("([a-z0-9-]+)"', text)
    expected = [chart_id for chart_id, _ in build_figures(hand_result)]
    assert charts[: len(expected)] == expected
    assert charts[len(expected) :] == ["rolling"]  # the periods section's chart
    assert text.count(f'"template":{plotly_spec.TEMPLATE_VARIABLE}') == len(charts)
