"""The progress line of `backtester run`: the replay's simulated time and share of the data's
span, read from the real run; drawn on stderr and erased before the summary; nothing written
when stderr is not a terminal (a log file gets no carriage returns)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.progress import RunProgress, line_erased

MINUTE_NS = 60_000_000_000
T0 = 1_699_999_980_000_000_000  # 2023-11-14 22:13:00 UTC
REPO = Path(__file__).resolve().parents[3]


def flat_bars(n: int) -> MarketData:
    rows = np.zeros(n, dtypes.BAR_DTYPE)
    rows["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    for name in ("open", "high", "low", "close"):
        rows[name] = 30_000.0
    return MarketData("BTC-USDT-SWAP", bars=rows, bar_interval_ns=MINUTE_NS)


def test_the_line_reads_the_replays_simulated_time():
    data = flat_bars(100)  # span T0 .. T0 + 100 min (the last bar's close)
    stream = io.StringIO()
    progress = RunProgress(data.start_ns, data.end_ns, stream=stream, delay_s=0.0,
                           interval_s=0.005)  # fmt: skip
    lines = {}

    class Reads(Strategy):
        def on_bar(self, ctx, bar):
            closed = len(ctx.closes)
            if closed in (1, 50, 100):
                lines[closed] = progress.line()
            if closed == 50:  # let the drawing thread run (no timing asserted)
                deadline = time.monotonic() + 60
                while "\r" not in stream.getvalue() and time.monotonic() < deadline:
                    time.sleep(0.005)

    with progress:
        assert progress.line() == "loading data"
        progress.phase("replay")
        backtest(Reads, data, "okx:BTC-USDT-SWAP", initial_balance=1e4)
        progress.phase("writing the report")
        assert progress.line() == "writing the report"
        # a warning printed meanwhile starts at column 0: the line is erased first
        with line_erased():
            stream.write("backtester: warning: something\n")
        deadline = time.monotonic() + 60  # the line comes back below the warning
        while stream.getvalue().endswith("something\n") and time.monotonic() < deadline:
            time.sleep(0.005)
    # bar k closes at T0 + k min: k / 100 of the span
    assert lines[1] == "replaying 2023-11-14 22:14 UTC   1%"
    assert lines[50] == "replaying 2023-11-14 23:03 UTC  50%"
    assert lines[100] == "replaying 2023-11-14 23:53 UTC 100%"
    text = stream.getvalue()
    assert "\x1b[K\r\x1b[Kbacktester: warning: something\n" in text
    assert text.startswith("\r")  # each redraw rewrites the line in place
    assert text.endswith("\r\x1b[K")  # erased at the end


def cli_run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The command's output as written: bytes decoded without newline translation (text mode
    would turn the line's carriage returns into newlines)."""
    tmp_path.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "backtester", "run", str(REPO / "strategies/sma_cross.py"),
         "--data", "sample", "--out", str(tmp_path)],
        capture_output=True, cwd=tmp_path, timeout=600, check=False,
        env={**os.environ, **env},
    )  # fmt: skip
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def test_the_cli_draws_the_line_when_asked_and_never_into_a_log(tmp_path):
    forced = cli_run(tmp_path / "forced", BACKTESTER_PROGRESS="1")
    assert forced.returncode == 0, forced.stderr
    assert "\r" in forced.stderr
    drawn = forced.stderr.split("\r")
    assert any(p.endswith(("loading data\x1b[K", "writing the report\x1b[K")) for p in drawn)
    assert forced.stderr.endswith("\r\x1b[K")  # erased before the summary
    assert "report:" in forced.stdout  # the summary is unaffected
    plain = cli_run(tmp_path / "plain", BACKTESTER_PROGRESS="")  # stderr is a pipe here
    assert plain.returncode == 0, plain.stderr
    assert "\r" not in plain.stderr
