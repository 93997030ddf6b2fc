"""`backtester import` writes a file into the catalog through the importers; `data` shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[3]


def backtester(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backtester.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )  # fmt: skip


def test_import_freqtrade_file_then_list(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=5, freq="1min", tz="UTC").delete(3)
    frame = pd.DataFrame(
        {"date": times, "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 2.0}
    )
    frame.to_feather(tmp_path / "BTC_USDT_USDT-1m-futures.feather")
    args = ["--exchange", "binance", "--symbol", "BTCUSDT", "--catalog", "cat"]
    done = backtester("import", "BTC_USDT_USDT-1m-futures.feather", "--format", "freqtrade",
                      *args, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "BTC_USDT_USDT-1m-futures.feather: bars 4 rows, 1 gaps, 1 missing bars"
    )
    listing = backtester("data", "--catalog", "cat", cwd=tmp_path)
    assert listing.stdout.splitlines()[1].split()[:5] == ["binance", "BTCUSDT", "bars", "1m", "4"]
    wrong = backtester("import", "BTC_USDT_USDT-1m-futures.feather", "--format", "freqtrad",
                       *args, cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 2
    assert "did you mean 'freqtrade'?" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    missing = backtester("import", "nope.feather", "--format", "freqtrade", *args, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such file 'nope.feather'" in missing.stderr
