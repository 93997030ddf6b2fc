"""An exception inside a strategy callback names the strategy file, the line and the replay
time; the CLI prints that one line (exit 1) and the full traceback with --debug."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.errors import StrategyError

MINUTE_NS = 60_000_000_000
T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC


def flat(n: int) -> MarketData:
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = 30_000.0
    return MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS)


class Broken(Strategy):
    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 3:
            return 1 / 0  # at the third bar's close
        return None


def test_the_error_names_file_line_and_bar_time():
    with pytest.raises(StrategyError) as caught:
        backtest(Broken, flat(5), "okx:BTC-USDT-SWAP", initial_balance=1_000.0)
    error = caught.value
    assert isinstance(error, ZeroDivisionError)  # still the original kind
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert error.filename == __file__
    # the third bar opens at T0 + 2 min and closes at T0 + 3 min = 22:16:20
    assert "Broken.on_bar raised ZeroDivisionError: division by zero" in str(error)
    assert f"{__file__}:{error.lineno}" in str(error)
    assert "replay time 2023-11-14 22:16:20 UTC" in str(error)
    assert "1 / 0" in str(error)


@pytest.mark.slow  # subprocesses
def test_cli_prints_one_line_and_the_traceback_with_debug(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(
        "from backtester import Strategy\n\n\nclass Broken(Strategy):\n"
        "    def on_bar(self, ctx, bar):\n        raise RuntimeError('boom')\n"
    )
    args = [sys.executable, "-m", "backtester", "run", str(path), "--data", "sample",
            "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"backtester: error: Broken.on_bar raised RuntimeError: boom at {path}:6"
    )
    assert "(replay time 20" in lines[0]
    debug = subprocess.run([*args, "--debug"], capture_output=True, text=True, timeout=600,
                           check=False)  # fmt: skip
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "raise RuntimeError('boom')" in debug.stderr
