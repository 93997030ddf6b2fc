"""The command line runs every kind of strategy: a Strategy class, the shipped JitStrategy
example (trades loaded because it listens to them) and a signals module (a function returning
entries and exits), through the real `backtester` command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtester.data.sample import load_sample
from backtester.engine.signals import backtest_signals

pytestmark = pytest.mark.slow  # each test runs the command in a subprocess

REPO = Path(__file__).resolve().parents[3]


def backtester(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backtester", *args],
        capture_output=True, text=True, cwd=cwd, timeout=600, check=False,
    )  # fmt: skip


def run_dir(out: Path) -> Path:
    (directory,) = [p for p in out.iterdir() if p.is_dir()]
    return directory


def test_the_jit_example_runs_from_the_cli_on_the_sample_ticks(tmp_path):
    done = backtester(
        "run", str(REPO / "strategies/ema_trend_ticks.py"), "--data", "sample",
        "--out", str(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = json.loads((run_dir(tmp_path) / "config.json").read_text())
    assert config["strategy"].endswith(".EmaTrendTicks")
    assert config["job"]["data"]["with_trades"] is True  # on_trade: trades loaded by itself
    fills = pd.read_parquet(run_dir(tmp_path) / "fills.parquet")
    assert len(fills) > 10  # the sample's tick day trades


def test_a_signals_module_runs_and_equals_backtest_signals(tmp_path):
    done = backtester(
        "run", str(REPO / "strategies/sma_signals.py"), "--data", "sample",
        "--symbol", "BTC-USDT-SWAP", "--param", "fast=10", "--param", "slow=40",
        "--out", str(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    fills = pd.read_parquet(run_dir(tmp_path) / "fills.parquet")
    # the same signals computed independently (pandas rolling means) through the API
    data = load_sample("BTC-USDT-SWAP", with_trades=False)
    close = pd.Series(data.bars["close"])
    above = (close.rolling(10).mean() > close.rolling(40).mean()).to_numpy()
    cross = np.r_[False, above[1:] != above[:-1]]
    expected = backtest_signals(
        cross & above, cross & ~above, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0
    )
    want = expected.records["fills"]
    assert len(fills) == len(want) > 10
    np.testing.assert_array_equal(fills["price"].to_numpy(), want["price"])
    np.testing.assert_array_equal(fills["ts_ns"].to_numpy(), want["ts_ns"])


def test_a_signals_module_param_typo_is_a_usage_error(tmp_path):
    done = backtester(
        "run", str(REPO / "strategies/sma_signals.py"), "--data", "sample", "--param", "fats=3",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no parameter 'fats'; did you mean 'fast'?" in done.stderr


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("x = 1\n", "or a function signals(bars, **params) returning entries, exits"),
        ("def signals(bars, fast):\n    return None\n", "must take the bars as its one argument"),
    ],
)
def test_a_file_without_a_strategy_says_what_is_expected(tmp_path, body, fragment):
    path = tmp_path / "nothing.py"
    path.write_text(body)
    done = backtester("run", str(path), "--data", "sample", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert fragment in done.stderr
