"""Hostile names in every HTML page: run report, notebook view, sweep page, walk-forward page.

Every user-supplied string reaches a page through backtester.report.escape (issue 17, stored
XSS): strategy, parameter names and values, symbol, configuration values, sweep title,
swept parameter names and values, metric names.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from backtester.report.escape import esc, script_json
from backtester.report.html import write_html
from backtester.report.sweep_page import write_sweep_page, write_walk_forward_page

HOSTILE = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>"


def assert_safe(text: str) -> None:
    """No tag or attribute of the hostile name survived anywhere in the page."""
    assert "<script>alert(1)" not in text
    assert "<img src=x" not in text
    assert "</script><img" not in text
    # every <script> element of the page is plotly's or ours: none opens inside a string
    assert len(re.findall(r"<script>alert", text, flags=re.IGNORECASE)) == 0


def test_escape_helpers() -> None:
    assert esc(HOSTILE) == (
        "&quot;&#x27;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    )
    assert "</script>" not in script_json({"name": HOSTILE})
    assert script_json({"a": "<&>"}) == '{"a": "\\u003c\\u0026\\u003e"}'


def test_hostile_names_in_the_run_report(make_hand_result, tmp_path) -> None:
    result = make_hand_result(strategy=f"mod.{HOSTILE}")
    symbol = HOSTILE
    result.instruments = [symbol]
    result.price_series = {symbol: result.price_series["BTC-USD-SWAP"]}
    result.settle_currency = "BTC"
    result.config["params"] = {HOSTILE: HOSTILE}
    result.config["contracts"] = [HOSTILE]
    result.config["data"] = [{"sources": {"bars": f"/tmp/{HOSTILE}/bars"}}]
    for mode in ("inline", "shared"):
        text = write_html(result, tmp_path / mode / "report.html", plotly_js=mode).read_text()
        assert_safe(text)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # shown, as text
    assert_safe(result._repr_html_())


def test_hostile_names_in_the_sweep_and_walk_forward_pages(tmp_path) -> None:
    frame = pd.DataFrame({
        HOSTILE: [HOSTILE, "b", "c"],
        "slow": [1, 2, 3],
        "sharpe": [1.5, 0.5, np.nan],
        "liquidations": [0, 2, 0],
        "status": ["ok", "ok", "error"],
        "error": ["", "", HOSTILE],
        "key": ["k1", HOSTILE, "k3"],
    })  # fmt: skip
    page = write_sweep_page(
        frame, tmp_path / "sweep.html", rank_by="sharpe", dimensions=[HOSTILE, "slow"],
        heatmap=[HOSTILE, "slow"], title=f"Sweep {HOSTILE}",
        reports={HOSTILE: f"runs/{HOSTILE}/report.html"},
    )  # fmt: skip
    text = page.read_text()
    assert_safe(text)
    assert "<title>Sweep &quot;&#x27;&gt;&lt;script&gt;" in text
    walk = pd.DataFrame({
        "train_start": pd.to_datetime(["2024-01-01"], utc=True),
        "test_start": pd.to_datetime(["2024-02-01"], utc=True),
        "test_end": pd.to_datetime(["2024-02-21"], utc=True),
        HOSTILE: [HOSTILE],
        "is_sharpe": [1.0],
        "oos_status": ["ok"],
        "oos_total_return": [0.1],
    })  # fmt: skip
    page = write_walk_forward_page(
        walk, tmp_path / "wf.html", rank_by="sharpe", dimensions=[HOSTILE],
        title=f"Walk-forward {HOSTILE}",
    )  # fmt: skip
    assert_safe(page.read_text())


@pytest.mark.parametrize("name", ["sweep.html", "wf.html"])
def test_pages_share_one_plotly(tmp_path, name) -> None:
    frame = pd.DataFrame({"fast": [1, 2], "sharpe": [1.0, 2.0], "status": ["ok", "ok"],
                          "error": ["", ""], "key": ["a", "b"]})  # fmt: skip
    if name == "sweep.html":
        page = write_sweep_page(frame, tmp_path / name, rank_by="sharpe", dimensions=["fast"])
    else:
        walk = pd.DataFrame({
            "train_start": pd.to_datetime(["2024-01-01"], utc=True),
            "test_start": pd.to_datetime(["2024-02-01"], utc=True),
            "test_end": pd.to_datetime(["2024-02-21"], utc=True),
            "fast": [1], "oos_status": ["ok"], "oos_total_return": [0.1],
        })  # fmt: skip
        page = write_walk_forward_page(walk, tmp_path / name, rank_by="sharpe", dimensions=["fast"])
    shared = list(tmp_path.glob("plotly-*.min.js"))
    assert len(shared) == 1
    assert f'<script src="{shared[0].name}"></script>' in page.read_text()
    assert page.stat().st_size < 100_000
