"""--rank-by is checked before the first run of a sweep (exit 2 with a suggestion, nothing
run), against the metric names every run produces; those names are checked here against real
runs on a linear and an inverse contract, so the list cannot drift from the metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backtester import backtest, jobs, sweep
from backtester.data.sample import load_sample
from backtester.strategy import Strategy

REPO = Path(__file__).resolve().parents[3]


class Flip(Strategy):
    def on_bar(self, ctx, bar):
        if len(ctx.closes) % 500 == 0:
            ctx.market(1 if ctx.position <= 0 else -2)


def numeric_metrics(symbol: str, contract: str, balance: float) -> set[str]:
    data = load_sample(symbol, with_trades=False)
    metrics = jobs.summarise_result(backtest(Flip, data, contract, initial_balance=balance))
    return {k for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def test_the_names_are_those_of_real_runs():
    linear = numeric_metrics("BTC-USDT-SWAP", "okx:BTC-USDT-SWAP", 1e4)
    assert linear == set(sweep.RANK_METRICS)
    inverse = numeric_metrics("BTC-USD-SWAP", "okx:BTC-USD-SWAP", 1.0)
    twins = {sweep.usd_twin(m) for m in sweep.RANK_METRICS} - {None}
    assert inverse == set(sweep.RANK_METRICS) | twins


def test_check_rank_by():
    sweep.check_rank_by("sharpe", ["fast"], inverse=False)
    sweep.check_rank_by("fast", ["fast"], inverse=False)  # a swept parameter
    sweep.check_rank_by("total_return_usd", [], inverse=True)
    with pytest.raises(ValueError, match="unknown metric 'sharp'; did you mean 'sharpe'"):
        sweep.check_rank_by("sharp", [], inverse=False)
    with pytest.raises(ValueError, match=r"inverse .* only; use 'fees_settle'"):
        sweep.check_rank_by("fees_usd", [], inverse=False)


def test_the_cli_refuses_a_bad_rank_by_before_running(tmp_path):
    out = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, "-m", "backtester", "sweep", str(REPO / "strategies/sma_cross.py"),
         "--data", "sample", "--grid", "fast=5,10", "--rank-by", "sharp", "--executor",
         "serial", "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False,
        env={**os.environ, "BACKTESTER_PROGRESS": "0"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "rank-by: unknown metric 'sharp'; did you mean 'sharpe'" in done.stderr
    assert not (out / "results").exists() or not any((out / "results").iterdir())  # nothing ran
