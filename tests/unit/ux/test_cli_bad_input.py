"""Bad input the README promises exit code 2 for: leverage above the contract's maximum (said
before the run) and a misspelt --data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs the command in a subprocess

REPO = Path(__file__).resolve().parents[3]


def backtester(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backtester", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600, check=False)  # fmt: skip


def test_leverage_above_the_tier_maximum_exits_2_before_running():
    done = backtester("run", "strategies/sma_cross.py", "--data", "sample", "--leverage", "500")
    assert done.returncode == 2, done.stderr
    # OKX BTC-USD-SWAP tier 1 allows 100x (the contract's tier table in backtester/swap)
    assert done.stderr.strip() == (
        "backtester: error: leverage: expected a value in [1, 100] for okx:BTC-USD-SWAP, got 500"
    )


def test_a_misspelt_sample_is_suggested():
    done = backtester("run", "strategies/sma_cross.py", "--data", "sampel")
    assert done.returncode == 2, done.stderr
    assert "did you mean 'sample'?" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_dates_outside_the_data_give_the_data_span():
    done = backtester("run", "strategies/sma_cross.py", "--data", "sample", "--start", "2030-01-01")
    assert done.returncode == 2, done.stderr
    # the sample spans February and March 2024 (backtester/data/sample.py)
    assert "start/end: no market data for sample:BTC-USD-SWAP in [2030-01-01T00:00:00" in (
        done.stderr
    )
    assert "the data covers 2024-02-01 00:00:00 to 2024-04-01 00:00:00" in done.stderr
