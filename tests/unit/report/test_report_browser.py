"""The HTML report in a real headless Chromium, offline: charts draw, tables fill, no errors.

Uses the Debian ``chromium`` package (``apt-get install chromium``; ``.ci/run`` installs it) driven
by the python ``playwright`` package — never ``playwright install``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from backtester.report.attribution import pnl_attribution

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-webgl",  # the charts must draw without WebGL (SVG traces only)
    "--disable-3d-apis",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium absent (install the Debian 'chromium' package)",
    ),
]


def png_pixel_variance(data: bytes) -> float:
    """Variance of the bytes of a PNG's decoded scanlines (8-bit RGB/RGBA, non-interlaced)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8
            channels = {2: 3, 6: 4}[color]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        filter_type = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    pixels = b"".join(rows)
    mean = sum(pixels) / len(pixels)
    return sum((b - mean) ** 2 for b in pixels[:: max(1, len(pixels) // 200_000)]) / (
        len(pixels[:: max(1, len(pixels) // 200_000)])
    )


def plot_area_variance(page, chart_id: str) -> float:
    """Pixel variance inside a chart's plotting area (its first drag rectangle, not the axes).

    An empty plotly chart (white with grid lines) measures about 7 here.
    """
    area = page.locator(f"#{chart_id} .nsewdrag").first
    area.scroll_into_view_if_needed()
    return png_pixel_variance(page.screenshot(clip=area.bounding_box()))


def test_report_renders_offline_in_chromium(hand_result, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    path = hand_result.to_html(tmp_path / "report.html")
    errors: list[str] = []
    blocked: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1366, "height": 768})

            def block(route) -> None:
                blocked.append(route.request.url)
                route.abort()

            context.route(lambda url: not url.startswith("file:"), block)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.resolve().as_uri())
            page.wait_for_function(
                "() => { const d = [...document.querySelectorAll('.js-plotly-plot')];"
                " return d.length > 0 && d.every(x => x._fullLayout &&"
                " x.querySelector('.main-svg')); }",
                timeout=60_000,
            )
            charts = page.evaluate(
                "() => [...document.querySelectorAll('.js-plotly-plot')].map(d => "
                "[d.id, d.querySelectorAll('.main-svg').length, d.data.length])"
            )
            waterfall_bars = page.evaluate(
                "() => document.querySelectorAll('#attribution .waterfalllayer .point').length"
            )
            liquidation_rows = page.evaluate(
                "() => document.querySelectorAll('#liquidations-table tbody tr').length"
            )
            trade_rows = page.evaluate(
                "() => document.querySelectorAll('#trades-table tbody tr').length"
            )
            monthly_rows = page.evaluate(
                "() => document.querySelectorAll('#monthly-table tbody tr').length"
            )
            webgl = page.evaluate("() => !!document.createElement('canvas').getContext('webgl')")
            chart_variance = {
                chart_id: plot_area_variance(page, chart_id)
                for chart_id in ("price-0", "equity", "margin")
            }
            # zoom the price chart: every time chart follows (linked x axes)
            page.evaluate(
                "() => Plotly.relayout('price-0', {'xaxis.range': "
                "['2020-01-03 00:00', '2020-01-05 00:00']})"
            )
            page.wait_for_timeout(500)
            ranges = page.evaluate(
                "() => ['equity', 'margin', 'funding'].map(id => {"
                " const l = document.getElementById(id)._fullLayout;"
                " return [l.xaxis.range, l.xaxis2 ? l.xaxis2.range : null]; })"
            )
            title = page.title()
            png = page.screenshot(full_page=False)
            (tmp_path / "screenshot.png").write_bytes(png)
        finally:
            browser.close()
    assert errors == []
    assert blocked == []  # the page requested nothing from the network
    zoom = ["2020-01-03", "2020-01-05"]
    for main, lower in ranges:
        assert [v[:10] for v in main] == zoom
        assert lower is None or [v[:10] for v in lower] == zoom  # the drawdown panel too
    ids = [c[0] for c in charts]
    assert ids == [
        "price-0", "equity", "margin", "mark-last", "funding", "attribution", "rolling"
    ]  # fmt: skip
    assert webgl is False  # really without WebGL, so the lines below are SVG
    assert all(v > 20.0 for v in chart_variance.values()), chart_variance  # empty: ~7
    assert all(svgs >= 1 and traces >= 1 for _, svgs, traces in charts)
    attribution = pnl_attribution(hand_result)
    assert waterfall_bars == int((attribution != 0.0).sum()) + 1  # non-zero lines + total
    assert liquidation_rows == 1
    assert trade_rows == 2  # two round trips
    assert monthly_rows == 1  # January 2020
    assert title.startswith("HandMade — BTC-USD-SWAP")
    assert png_pixel_variance(png) > 0.0


def _open(playwright, path: Path, errors: list[str], viewport: dict | None = None):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
    context = browser.new_context(offline=True, viewport=viewport or {"width": 1366, "height": 768})
    context.route(lambda url: not url.startswith("file:"), lambda route: route.abort())
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_function(
        "() => { const d = [...document.querySelectorAll('.js-plotly-plot')];"
        " return d.length > 0 && d.every(x => x._fullLayout && x.querySelector('.main-svg')); }",
        timeout=60_000,
    )
    return browser, page


def test_sweep_page_in_chromium(tmp_path) -> None:
    import numpy as np
    import pandas as pd
    from playwright.sync_api import sync_playwright

    from backtester.report.sweep_page import write_sweep_page

    rng = np.random.default_rng(5)
    rows = [
        {"fast": f, "slow": s, "sharpe": float(rng.normal()), "liquidations": int(f == 5),
         "total_return": float(rng.normal(0, 0.1)), "status": "ok", "error": "",
         "key": f"k{f}-{s}"}
        for f in (5, 10, 15) for s in (20, 40, 60)
    ]  # fmt: skip
    frame = pd.DataFrame(rows).sort_values("sharpe", ascending=False).reset_index(drop=True)
    (tmp_path / "runs" / "k10-20").mkdir(parents=True)
    (tmp_path / "runs" / "k10-20" / "report.html").write_text("<html></html>")
    path = write_sweep_page(
        frame, tmp_path / "sweep.html", rank_by="sharpe", dimensions=["fast", "slow"],
        heatmap=["fast", "slow"], reports={"k10-20": "runs/k10-20/report.html"},
    )  # fmt: skip
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser, page = _open(playwright, path, errors)
        try:
            headers = page.evaluate(
                "() => [...document.querySelectorAll('#ranking thead th')].map(t => t.textContent)"
            )
            rows_shown = page.evaluate(
                "() => document.querySelectorAll('#ranking tbody tr').length"
            )
            marks = page.evaluate(
                "() => [...document.querySelectorAll('#heatmap .textpoint text')]"
                ".map(t => t.textContent)"
            )
            link = page.evaluate("() => document.querySelector('#ranking a').getAttribute('href')")
            variance = plot_area_variance(page, "heatmap")
        finally:
            browser.close()
    assert errors == []
    assert headers[:4] == ["#", "sharpe", "fast", "slow"]  # rank metric and parameters first
    assert rows_shown == 9
    assert marks == ["✕"] * 3  # the three fast=5 cells were liquidated
    assert link == "runs/k10-20/report.html"
    assert variance > 20.0


@pytest.mark.slow
def test_sample_report_in_chromium_and_screenshot(tmp_path) -> None:
    """A real run on the bundled sample: size bound, sections present, README screenshot.

    ``BACKTESTER_SCREENSHOT=docs/report.png python -m pytest -q
    tests/unit/report/test_report_browser.py -k screenshot`` regenerates the README's image.
    """
    import os
    import shutil

    from playwright.sync_api import sync_playwright

    from backtester import backtest
    from backtester.data.sample import load_sample
    from backtester.jobs import load_strategy
    from backtester.report.outputs import save_run

    cls = load_strategy(str(Path(__file__).resolve().parents[3] / "strategies" / "sma_cross.py"))
    data = load_sample("BTC-USD-SWAP", with_trades=False)
    # the README's first command (default parameters, 3,000+ round trips): at most 1 MB
    default = backtest(cls, data, "okx:BTC-USD-SWAP", initial_balance=1.0, leverage=10.0)
    assert len(default.trades) > 3_000
    busy = save_run(default, tmp_path / "reports" / "default") / "report.html"
    assert busy.stat().st_size <= 1_000_000, busy.stat().st_size
    result = backtest(cls, data, "okx:BTC-USD-SWAP", initial_balance=1.0, leverage=10.0,
                      params={"fast": 240, "slow": 1440})  # fmt: skip
    directory = save_run(result, tmp_path / "reports" / "sma")
    report = directory / "report.html"
    assert report.stat().st_size <= 1_000_000  # plus the shared plotly.js
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser, page = _open(playwright, report, errors, {"width": 1280, "height": 1500})
        try:
            counts = page.evaluate(
                "() => ['#trades-table', '#monthly-table', '#drawdowns-table',"
                " '#benchmark-table', '#exit-reasons-table', '#metrics-returns']"
                ".map(s => document.querySelectorAll(s + ' tbody tr').length)"
            )
            variance = {c: plot_area_variance(page, c) for c in ("price-0", "equity")}
            page.evaluate("() => window.scrollTo(0, 0)")
            png = page.screenshot(full_page=False)
        finally:
            browser.close()
    assert errors == []
    trades = result.trades
    assert counts[0] == len(trades)
    assert counts[1] == 1  # 2024
    assert all(c > 0 for c in counts), counts
    assert all(v > 20.0 for v in variance.values()), variance
    (tmp_path / "report.png").write_bytes(png)
    target = os.environ.get("BACKTESTER_SCREENSHOT")
    if target:
        shutil.copyfile(tmp_path / "report.png", target)
