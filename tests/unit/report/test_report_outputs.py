"""save_run / load_run round trip, file layout, summary text and the liquidation report."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from backtester.report.liquidations import liquidation_report
from backtester.report.load import load_run
from backtester.report.outputs import CSV_KINDS, save_run
from backtester.report.summary import format_summary


def test_save_and_load_are_bit_identical(hand_result, tmp_path) -> None:
    directory = hand_result.save(tmp_path / "run")
    loaded = load_run(directory)
    assert loaded.fingerprint() == hand_result.fingerprint()
    assert loaded.initial_balance_settle == hand_result.initial_balance_settle
    assert loaded.instruments == hand_result.instruments
    assert loaded.contract_kinds == hand_result.contract_kinds
    assert loaded.config == hand_result.config
    for name, array in hand_result.price_series["BTC-USD-SWAP"].items():
        np.testing.assert_array_equal(
            loaded.price_series["BTC-USD-SWAP"][name]["price"], array["price"]
        )


def test_run_directory_layout(hand_result, tmp_path) -> None:
    directory = save_run(hand_result, tmp_path / "run", csv=True)
    for kind in CSV_KINDS:
        assert (directory / f"{kind}.parquet").is_file()
        frame = pd.read_csv(directory / f"{kind}.csv")
        assert len(frame) == len(hand_result.records[kind])
    # plotly.js once in the output folder, loaded by the report through a relative path
    from plotly.offline import get_plotlyjs_version

    shared = tmp_path / f"plotly-{get_plotlyjs_version()}.min.js"
    assert shared.stat().st_size > 1_000_000
    report = (directory / "report.html").read_text()
    assert f'<script src="../{shared.name}"></script>' in report
    assert (directory / "report.html").stat().st_size < 300_000
    trades = pd.read_csv(directory / "trades.csv")
    assert trades["exit_reason"].tolist() == ["signal", "liquidation"]
    parquet = pd.read_parquet(directory / "trades.parquet")
    assert parquet["exit_reason"].tolist() == ["signal", "liquidation"]
    alone = save_run(hand_result, tmp_path / "alone" / "run", self_contained=True)
    assert (alone / "report.html").stat().st_size > 1_000_000  # plotly.js inlined
    assert not list((tmp_path / "alone").glob("plotly-*.js"))
    assert not list(directory.glob(".*.tmp"))  # atomic writes left no temp files
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["metrics"]["liquidations"] == 1
    assert math.fsum(summary["pnl_attribution"].values()) == (
        hand_result.final_balance_settle - hand_result.initial_balance_settle
    )
    assert json.loads((directory / "config.json").read_text())["strategy"] == "tests.HandMade"
    fills = pd.read_csv(directory / "fills.csv")
    assert fills["liquidity"].tolist() == ["TAKER", "MAKER", "TAKER", "LIQUIDATION"]
    assert fills["price"].to_numpy().tolist() == hand_result.records["fills"]["price"].tolist()


def test_load_run_on_missing_directory_names_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"result\.json"):
        load_run(tmp_path)


def test_load_run_refuses_another_format_or_a_missing_record_file(hand_result, tmp_path) -> None:
    directory = save_run(hand_result, tmp_path / "run", self_contained=True)
    meta_path = directory / "result.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ValueError, match=r"result\.json: format_version 99, expected 1"):
        load_run(directory)
    meta_path.write_text(json.dumps(meta))
    (directory / "settlements.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"settlements\.parquet not found"):
        load_run(directory)


def test_liquidation_report_rows_and_margin_path(hand_result) -> None:
    report = liquidation_report(hand_result, path_samples=5)
    record = hand_result.records["liquidations"][0]
    assert len(report) == 1
    row = report.iloc[0]
    assert row["instrument"] == "BTC-USD-SWAP"
    assert row["side"] == "BUY"
    assert row["kind"] == "full"
    assert row["bankruptcy_price"] == record["bankruptcy_price"]
    assert row["loss_settle"] == record["loss_settle"]
    equity = hand_result.records["equity"]
    np.testing.assert_array_equal(row["margin_ratio_path"], equity["margin_ratio"][156:161])
    assert row["margin_ratio_path_times"][-1] == row["time"]


def test_format_summary_shows_metrics_and_attribution(hand_result) -> None:
    text = format_summary(hand_result)
    assert "PnL attribution (BTC)" in text
    assert "liquidation loss" in text
    assert "Sharpe" in text
    change = hand_result.final_balance_settle - hand_result.initial_balance_settle
    assert f"{change:.8g}" in text
    assert "final equity (USD)" in text


def test_parquet_only_unless_csv_is_asked_for(hand_result, tmp_path) -> None:
    directory = save_run(hand_result, tmp_path / "run")
    assert not list(directory.glob("*.csv"))
    for kind in CSV_KINDS:
        assert (directory / f"{kind}.parquet").is_file()
