"""Sweeps never return stale results: a stored result is keyed on the strategy's source (and
the project modules it imports), the data files and the engine version besides the job, so an
edit recomputes and an unchanged sweep says it reused its stored results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from backtester import sweep

REPO = Path(__file__).resolve().parents[3]

STRATEGY = """
from backtester.strategy import Strategy
from strategies.sizing_rules import SIZE  # a project module (the cwd is on the path)


class Flip(Strategy):
    fast = 10
    slow = 30

    def on_bar(self, ctx, bar):
        fast, slow = ctx.sma(self.fast), ctx.sma(self.slow)
        if fast > slow and ctx.position <= 0:
            ctx.market(SIZE - ctx.position)
        elif fast < slow and ctx.position >= 0:
            ctx.market(-SIZE - ctx.position)
"""


def project(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "strategies").mkdir()
    strategy = tmp_path / "strategies" / "flip.py"
    strategy.write_text(STRATEGY)
    helper = tmp_path / "strategies" / "sizing_rules.py"
    helper.write_text("SIZE = 1.0\n")
    return strategy, helper


def test_the_key_follows_the_strategy_its_helpers_and_the_data(tmp_path):
    strategy, helper = project(tmp_path)
    partition = tmp_path / "catalog" / "okx" / "BTC-USDT-SWAP" / "bars-1m" / "2024-01.parquet"
    partition.parent.mkdir(parents=True)
    partition.write_bytes(b"x" * 10)
    job = {
        "strategy": str(strategy),
        "params": {"fast": 10},
        "data": {"source": "okx", "symbol": "BTC-USDT-SWAP", "catalog": str(tmp_path / "catalog")},
    }
    first = sweep.job_key(job)
    assert sweep.job_key(job) == first  # nothing changed: the same key
    strategy.write_text(STRATEGY.replace("fast = 10", "fast = 12"))
    edited = sweep.job_key(job)
    assert edited != first
    helper.write_text("SIZE = 2.0\n")  # a module the strategy imports from the project
    helper_edited = sweep.job_key(job)
    assert helper_edited != edited
    partition.write_bytes(b"y" * 11)  # the catalog file rewritten (an import, a fetch)
    assert sweep.job_key(job) != helper_edited
    assert sweep.job_key({**job, "params": {"fast": 11}}) != sweep.job_key(job)


def cli_sweep(strategy: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backtester", "sweep", str(strategy), "--data", "sample",
         "--symbol", "BTC-USDT-SWAP", "--grid", "fast=10", "--executor", "serial",
         "--out", str(out)],
        capture_output=True, text=True, cwd=strategy.parent.parent, timeout=600, check=False,
        env={**os.environ, "BACKTESTER_PROGRESS": "0"},
    )  # fmt: skip


def test_an_edited_helper_module_is_recomputed_by_the_cli(tmp_path):
    strategy, helper = project(tmp_path)
    out = tmp_path / "sweep"
    done = cli_sweep(strategy, out)
    assert done.returncode == 0, done.stderr
    assert "1 combinations, 1 executed now, 0 already stored" in done.stdout
    before = pd.read_csv(out / "results.csv")["total_return"].iloc[0]
    # the console table: the parameter, the rank metric, a few key metrics (not every column)
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("fast"))
    assert header.split() == [
        "fast", "sharpe", "total_return", "max_drawdown", "liquidations", "fill_count", "status",
    ]  # fmt: skip
    again = cli_sweep(strategy, out)
    assert "1 combinations, 0 executed now, 1 already stored" in again.stdout
    assert "reused 1 stored results: same parameters, strategy source" in again.stdout
    helper.write_text("SIZE = 2.0\n")  # twice the position: another return
    edited = cli_sweep(strategy, out)
    assert edited.returncode == 0, edited.stderr
    assert "1 combinations, 1 executed now, 0 already stored" in edited.stdout
    after = pd.read_csv(out / "results.csv")["total_return"].iloc[0]
    assert after != before
