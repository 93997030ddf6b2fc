"""``backtester run`` writes its outputs where it is told and nothing under the package
(issue 15: a compiled-code cache beside the sources grew a working copy by 8 MB a run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import backtester

PACKAGE_DIR = Path(backtester.__file__).resolve().parent
REPO = PACKAGE_DIR.parent


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time (ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _run(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backtester", "run", "strategies/sma_cross.py", "--data",
         "sample", "--out", str(out)],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_backtester_run_writes_nothing_under_the_package(tmp_path):
    before_first = _snapshot(PACKAGE_DIR)
    first = _run(tmp_path / "first")  # may compile (a cold cache) and write Python bytecode
    assert first.returncode == 0, first.stderr[-2000:]
    after_first = _snapshot(PACKAGE_DIR)
    changed = {p for p in after_first if after_first[p] != before_first.get(p)}
    # only Python's own bytecode of a source edited since its last import may appear
    assert all(Path(p).parent.name == "__pycache__" and p.endswith(".pyc") for p in changed), (
        sorted(changed)
    )

    second = _run(tmp_path / "second")  # a second run in a fresh process: nothing at all
    assert second.returncode == 0, second.stderr[-2000:]
    assert _snapshot(PACKAGE_DIR) == after_first
    # the outputs went to --out: one run folder with its report and records
    out = tmp_path / "second"
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert (run_dir / "report.html").stat().st_size > 0
    assert (run_dir / "fills.parquet").stat().st_size > 0
    assert len(list(out.glob("plotly-*.min.js"))) == 1  # plotly.js shared beside the run
