"""HTML report content: self-contained, escaped, downsampled, all trades kept."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go

from backtester.report.html import downsample_minmax, write_html


def test_report_is_self_contained(hand_result, tmp_path) -> None:
    text = write_html(hand_result, tmp_path / "r.html").read_text()
    assert text.count("Plotly.newPlot") >= 6
    assert len(re.findall(r"<script[^>]+src=", text)) == 0  # plotly.js inlined, no CDN
    # (plotly.js contains URLs in its own code, e.g. map tiles; none is loaded by the page)
    assert "<link" not in text
    assert "@import" not in text
    assert "url(http" not in text
    assert text.count('id="liquidations-table"') == 1
    assert text.count("<tr>") >= 1 + 4 + 14  # liquidation + fills + funding rows


def test_strategy_name_is_escaped(make_hand_result, tmp_path) -> None:
    result = make_hand_result(strategy="<script>alert(1)</script>")
    text = write_html(result, tmp_path / "r.html").read_text()
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>x</b>" not in text  # parameter values too


def test_downsample_keeps_extremes_and_bounds_points() -> None:
    rng = np.random.default_rng(3)
    y = np.cumsum(rng.normal(size=1_000_000))
    y[123_457] = 1e6
    y[876_543] = -1e6
    x = np.arange(len(y))
    dx, dy = downsample_minmax(x, y, max_points=20_000)
    assert len(dx) <= 20_000
    assert dy.max() == 1e6
    assert dy.min() == -1e6
    assert np.all(np.diff(dx) > 0)
    _, short_y = downsample_minmax(x[:10], y[:10])
    np.testing.assert_array_equal(short_y, y[:10])


def test_plot_returns_figure(hand_result) -> None:
    figure = hand_result.plot()
    assert isinstance(figure, go.Figure)
    names = [trace.name for trace in figure.data]
    assert names == ["equity (BTC)", "wallet balance", "drawdown"]
    assert {trace.type for trace in figure.data} == {"scatter"}  # SVG, no WebGL
    assert figure.data[2].yaxis == "y2"  # drawdown on its own panel


def test_summary_names_the_strategy_class(hand_result) -> None:
    from backtester.report.summary import format_summary

    first = format_summary(hand_result).splitlines()[0]
    assert first.startswith("HandMade on BTC-USD-SWAP")
    assert "PnL attribution (BTC)" in first


def test_distance_to_liquidation_one_direction_for_every_venue(hand_result) -> None:
    from backtester.report.page import liquidation_distance

    ratio = hand_result.records["equity"]["margin_ratio"]
    # OKEx 2019 (okx_coinm_2019 profile): trigger at tier-1 MMR 0.5 % + liquidation fee 0.075 %
    distance = liquidation_distance(hand_result)
    held = np.isfinite(ratio)
    np.testing.assert_allclose(distance[held], 1.0 - 0.00575 / ratio[held], rtol=1e-15)
    assert np.isnan(distance[~held]).all()  # flat: no distance
    # Binance: ratio = maintenance margin / margin balance, liquidation at 1
    hand_result.config["contracts"] = ["binance_usdm:BTCUSDT"]
    np.testing.assert_allclose(liquidation_distance(hand_result)[held], 1.0 - ratio[held])
    # OKX mgnRatio: margin balance / requirement, liquidation at 1
    hand_result.config["contracts"] = ["okx:BTC-USD-SWAP"]
    np.testing.assert_allclose(liquidation_distance(hand_result)[held], 1.0 - 1.0 / ratio[held])
    # BitMEX: margin balance / MM, liquidation at MM + close commission: tier-1 risk limit
    # MMR 0.40 %, commission 0.075 % (bitmex.toml) → the ratio at the trigger is 0.475 / 0.40
    hand_result.config["contracts"] = ["bitmex:XBTUSD"]
    np.testing.assert_allclose(
        liquidation_distance(hand_result)[held], 1.0 - (0.00475 / 0.004) / ratio[held]
    )


def test_relative_paths_hide_the_machine(tmp_path) -> None:
    from backtester.report.page import relative_paths

    config = {
        "strategy": f"{tmp_path}/strategies/sma.py:SmaCross",
        "data": [{"sources": {"bars": f"{tmp_path}/data/catalog/okx/BTC/bars-1m"}}],
        "elsewhere": "/home/someone/secret/project/file.parquet",
        "name": "not/a/path",
    }
    shown = relative_paths(config, [tmp_path])
    assert shown["strategy"] == "strategies/sma.py:SmaCross"
    assert shown["data"][0]["sources"]["bars"] == "data/catalog/okx/BTC/bars-1m"
    assert shown["elsewhere"] == "…/project/file.parquet"
    assert shown["name"] == "not/a/path"
