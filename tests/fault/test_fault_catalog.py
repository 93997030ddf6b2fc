"""Fault injection on the catalog: concurrent writers and SIGKILL at any point of an import.

Each scenario runs the real catalog in child processes (``catalog_child.py``); the checks read
the catalog back from a fresh :class:`Catalog`, as the next process would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from backtester.data import Catalog
from backtester.data.catalog import CatalogRecoveryWarning

CHILD = Path(__file__).with_name("catalog_child.py")
REPO = Path(__file__).resolve().parents[2]
MINUTE = 60_000_000_000
T0 = 1_672_531_200_000_000_000
STEP = 6 * 60 * MINUTE

sys.path.insert(0, str(CHILD.parent))
import catalog_child  # noqa: E402  (the same data the children write)


def child(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def leftovers(root: Path) -> list[str]:
    """Staging directories and temporary files that a reopened catalog must not show."""
    txn = root / ".catalog" / "txn"
    staged = [p.name for p in txn.iterdir()] if txn.is_dir() else []
    temps = [p.name for p in root.rglob("*") if ".tmp" in p.name]
    return staged + temps


@pytest.mark.slow  # subprocesses
def test_two_concurrent_importers_into_one_month_keep_every_row(tmp_path: Path) -> None:
    rows = 2_000  # per writer, in 10 writes each, all into 2023-01
    procs = [child("import", str(tmp_path), str(seed), str(rows)) for seed in (0, 1)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    got = Catalog(tmp_path).read("bars", "x", "S", interval_ns=MINUTE)
    expected = np.sort(
        np.concatenate([catalog_child.interleaved(s, rows)["ts_ns"] for s in (0, 1)])
    )
    assert len(got) == 2 * rows
    np.testing.assert_array_equal(got["ts_ns"], expected)
    # each row carries the price of the writer that wrote it (no row overwritten by the other)
    minute = (got["ts_ns"] - T0) // MINUTE
    np.testing.assert_array_equal(got["close"], 100.0 + (minute // 10) % 2)
    assert Catalog(tmp_path).metadata("bars", "x", "S", MINUTE)["source"] in (
        "writer 0 | writer 1",
        "writer 1 | writer 0",
    )


def reopen_read(root: Path, interval_ns: int) -> np.ndarray:
    """Read as the next process would; a recovery it makes is announced by a warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = Catalog(root).read("bars", "x", "S", interval_ns=interval_ns)
    for warning in caught:
        assert issubclass(warning.category, CatalogRecoveryWarning), warning.message
        assert "recovered the transaction of a writer that died" in str(warning.message)
    return got


def _check_old_or_complete(root: Path, before: np.ndarray, full: np.ndarray) -> str:
    got = reopen_read(root, STEP)
    assert leftovers(root) == []
    if len(got) == len(before):
        np.testing.assert_array_equal(got, before)
        return "unchanged"
    np.testing.assert_array_equal(got, full)
    return "complete"


def _seed_catalog(root: Path) -> np.ndarray:
    full = catalog_child.six_months()
    Catalog(root).write("bars", "x", "S", full[:100], source="seed", interval_ns=STEP)
    return full


@pytest.mark.slow  # one child process per kill point
def test_sigkill_at_every_fsync_and_rename_of_a_multi_month_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    full = _seed_catalog(probe)
    proc = child("count", str(probe))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    calls = int(out)
    # 7 files (6 months + journal) fsync'd, 1 journal rename, 6 file renames (+ dir fsyncs)
    assert calls >= 14
    outcomes = []
    for kill_at in range(1, calls + 1):
        root = tmp_path / f"kill{kill_at}"
        _seed_catalog(root)
        before = Catalog(root).read("bars", "x", "S", interval_ns=STEP)
        proc = child("kill", str(root), str(kill_at))
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (kill_at, err)
        outcomes.append(_check_old_or_complete(root, before, full))
    # the commit point splits the calls: killed before it → unchanged, after it → completed
    assert "unchanged" in outcomes
    assert "complete" in outcomes
    first_complete = outcomes.index("complete")
    assert outcomes[first_complete:] == ["complete"] * (calls - first_complete)


@pytest.mark.slow  # one child process per kill point
def test_sigkill_at_random_instants_of_a_multi_month_import(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    probe = tmp_path / "probe"
    full = _seed_catalog(probe)
    start = time.perf_counter()
    proc = child("kill", str(probe), "0")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    duration = time.perf_counter() - start
    for trial, delay in enumerate(rng.uniform(0.5 * duration, 1.1 * duration, 6)):
        root = tmp_path / f"trial{trial}"
        _seed_catalog(root)
        before = Catalog(root).read("bars", "x", "S", interval_ns=STEP)
        proc = child("kill", str(root), "0")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=300)
        _check_old_or_complete(root, before, full)


@pytest.mark.parametrize("stage", ["staged", "committed"])
def test_leftover_staging_is_rolled_forward_or_back_on_open(tmp_path: Path, stage: str) -> None:
    """A staging directory left by a dead writer, with or without its journal."""
    import json
    import shutil

    full = _seed_catalog(tmp_path)
    proc = child("kill", str(tmp_path), "0")  # completes: the six months are stored
    proc.communicate(timeout=300)
    # stage the six months as a writer killed before (or after) its commit point leaves them

    staging = tmp_path / ".catalog" / "txn" / "12345-000000000000"
    files = sorted((tmp_path / "x" / "S" / "bars-6h").glob("*.parquet"))
    for path in files:
        target = staging / "files" / path.relative_to(tmp_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    if stage == "committed":
        rels = [str(p.relative_to(tmp_path)) for p in files]
        (staging / "COMMIT").write_text(json.dumps(rels))
    for path in files[1:]:
        path.unlink()  # as if the moves had not happened: only January is live
    with pytest.warns(CatalogRecoveryWarning, match="committed: completed|rolled back"):
        got = Catalog(tmp_path).read("bars", "x", "S", interval_ns=STEP)
    assert leftovers(tmp_path) == []
    if stage == "committed":
        np.testing.assert_array_equal(got, full)  # rolled forward
    else:
        jan = full[full["ts_ns"] < T0 + 31 * 1440 * MINUTE]
        np.testing.assert_array_equal(got, jan)  # the staged months are dropped


def test_readers_are_not_held_up_by_a_long_write_transaction(tmp_path: Path) -> None:
    """A fetch may stage pages for hours: reads in the meantime see the catalog as before
    it, without waiting; the next read after its commit sees all of it."""
    import threading

    root = tmp_path / "cat"
    full = _seed_catalog(root)
    before = Catalog(root).read("bars", "x", "S", interval_ns=STEP)
    proc = child("hold", str(root), str(tmp_path))
    deadline = time.monotonic() + 120
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "ready").exists(), proc.stderr.read() if proc.poll() is not None else ""
    got: list[np.ndarray] = []
    reader = threading.Thread(
        target=lambda: got.append(Catalog(root).read("bars", "x", "S", interval_ns=STEP))
    )
    reader.start()
    reader.join(timeout=60)  # deadlock detection, not a timing measurement
    assert not reader.is_alive(), "a read waited for the open write transaction"
    np.testing.assert_array_equal(got[0], before)  # the staged months are not visible yet
    (tmp_path / "go").touch()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    np.testing.assert_array_equal(Catalog(root).read("bars", "x", "S", interval_ns=STEP), full)
