"""Smoke run of ``benchmarks/bench_whole_calls.py`` at a tiny size: every case runs in its own
process and returns a Result; speed itself is measured by hand, never asserted here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_whole_calls.py"


@pytest.mark.slow
def test_bench_whole_calls_runs_every_case():
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--bars",
            "5000",
            "--ticks",
            "20000",
            "--repeat",
            "1",
            "--processes",
            "2",
            "--no-cold",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = dict(re.findall(r"^(\S.*?)\s+median .*\((\d+) fills,", done.stdout, re.M))
    assert set(rows) == {"signals", "python on_bar", "jit on_trade", "jit on_trade, no mechanics"}
    assert all(int(fills) > 0 for fills in rows.values())
    # the index and funding streams change the mark and the cash, not this strategy's orders
    assert rows["jit on_trade"] == rows["jit on_trade, no mechanics"]
    assert "FAILED" not in done.stdout
    # the Python callback is also measured against the bare Python loop of its process
    assert re.search(r"^python on_bar .*x the bare Python loop", done.stdout, re.M)
    # each figure is the median of two fresh processes, whose target ratios are listed
    spreads = re.findall(r"ratio\w* per process: (\d+\.\d+), (\d+\.\d+)$", done.stdout, re.M)
    assert len(spreads) == 4
    assert all(float(r) > 0 for pair in spreads for r in pair)
    # each case's first call in a fresh process (warm cache; the cold one is skipped here)
    firsts = re.findall(r"first call in a fresh process: warm (\d+\.\d+) s", done.stdout)
    assert len(firsts) == 4
    assert all(float(s) > 0 for s in firsts)
