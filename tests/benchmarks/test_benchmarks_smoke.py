"""Smoke runs of the benchmark scripts at tiny sizes: they must keep running as the code moves,
and the cases that must agree do (speed itself is measured by hand, never asserted here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_bench_engine_runs_every_case_and_the_signal_paths_agree():
    out = run("bench_engine.py", "--bars", "3000", "--ticks", "6000", "--repeat", "1")
    cases = dict(re.findall(r"^(\S.*?)\s+median .*\((\d+) fills;", out, re.M))
    assert set(cases) == {
        "bars, Python on_bar",
        "bars, empty on_bar",
        "bars, ctx.ema + ctx.sma on_bar",
        "signal path",
        "signal path, general loop",
        "signal path, SMA 200/1000, hourly equity",
        "ticks, jitted on_trade",
        "ticks, Python on_trade",
    }
    # the signal kernel and the general loop trade the same signals identically
    assert cases["signal path"] == cases["signal path, general loop"]
    assert int(cases["signal path"]) > 100
    # the Python and jitted tick strategies are the same EMA rule
    assert cases["ticks, jitted on_trade"] == cases["ticks, Python on_trade"]
    assert re.search(r"^bare numba: [\d.,]+ M bars/s", out, re.M)
    assert re.search(r"^ctx.ema \+ ctx.sma / empty on_bar: [\d.]+x", out, re.M)


def test_bench_catalog_reads_back_every_row():
    out = run("bench_catalog.py", "--rows", "20000", "--chunk", "5000", "--runs", "1")
    assert re.search(r"^iter_chunks\s+: median [\d.]+ s = [\d,]+ rows/s", out, re.M)
    assert "ratio full/stream RSS growth" in out


def test_bench_engine_memory_streams_to_the_same_fills():
    out = run("bench_engine_memory.py", "--smoke")
    rows = re.findall(r"^\s+([\d.]+) y .* (unstreamed|streamed)\s.*fills (\d+)$", out, re.M)
    # two spans streamed, then the shorter loaded whole; the script itself exits non-zero
    # when the streamed and the unstreamed run of the same span differ
    assert [(span, mode) for span, mode, _ in rows] == [
        ("0.10", "streamed"),
        ("0.30", "streamed"),
        ("0.10", "unstreamed"),
    ]
    assert rows[0][2] == rows[2][2]
    assert int(rows[0][2]) > 0
    assert int(rows[1][2]) > int(rows[0][2])
