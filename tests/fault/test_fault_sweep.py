"""Sweeps that survive dead workers: a combination whose worker is SIGKILLed is retried once,
then recorded as failed with the cause, and the sweep finishes the others (local processes and
a real Dask LocalCluster); a corrupt stored result is named and recomputed; no worker outlives
a SIGKILLed sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backtester import sweep

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import sweep_jobs  # noqa: E402  (workers import it by name)


def jobs_with_deaths(tmp_path: Path) -> list[dict]:
    return [
        {"x": 1},
        {"x": 2, "die": "always"},
        {"x": 3, "die": "once", "marker": str(tmp_path / "marker-3")},
        {"x": 4, "raise": True},
        {"x": 5},
    ]


def check_outcome(run: sweep.SweepRun, tmp_path: Path) -> None:
    by_x = {r["job"]["x"]: r for r in run.records}
    assert [by_x[x]["status"] for x in (1, 2, 3, 4, 5)] == ["ok", "error", "ok", "error", "ok"]
    assert [by_x[x]["metrics"].get("double") for x in (1, 3, 5)] == [2, 6, 10]
    assert (tmp_path / "marker-3").read_text() == "died once"  # x=3 died, then succeeded
    assert by_x[4]["error"] == "ValueError: bad combination x=4"
    assert run.executed == 5
    assert run.failed == 2


@pytest.mark.slow  # subprocesses
def test_local_sweep_survives_a_sigkilled_worker(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{HERE}{os.pathsep}{REPO}")
    store = sweep.SweepStore(tmp_path / "sweep")
    run = sweep.run_jobs(sweep_jobs.job, jobs_with_deaths(tmp_path), store, workers=2)
    check_outcome(run, tmp_path)
    died = next(r for r in run.records if r["job"]["x"] == 2)
    assert died["error"].startswith(
        "WorkerDied: worker process killed by SIGKILL (9), as the out-of-memory killer does"
    )
    assert died["error"].endswith("while running this combination (2 attempts)")
    # the failure is stored: a rerun does not run it again (unless --retry-errors)
    again = sweep.run_jobs(sweep_jobs.job, jobs_with_deaths(tmp_path), store, workers=2)
    assert again.executed == 0


@pytest.mark.slow
def test_dask_sweep_survives_a_sigkilled_worker(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{HERE}{os.pathsep}{REPO}")
    store = sweep.SweepStore(tmp_path / "sweep")
    run = sweep.run_jobs(
        sweep_jobs.job, jobs_with_deaths(tmp_path), store, executor="dask", workers=2
    )
    check_outcome(run, tmp_path)
    died = next(r for r in run.records if r["job"]["x"] == 2)
    assert died["error"].startswith(
        "WorkerDied: worker process died while running this combination, on every attempt the "
        "scheduler allowed (Dask KilledWorker: "
    )


def test_corrupt_stored_result_is_named_and_recomputed(tmp_path: Path) -> None:
    store = sweep.SweepStore(tmp_path / "sweep")
    jobs = [{"x": x} for x in range(4)]
    sweep.run_jobs(sweep_jobs.job, jobs, store, executor="serial")
    path = store.path(sweep.job_key(jobs[2]))
    path.write_text(path.read_text()[:20])  # truncated, as a full disk leaves it
    with pytest.warns(UserWarning, match=rf"{path}: corrupt stored sweep result .*computing it"):
        run = sweep.run_jobs(sweep_jobs.job, jobs, store, executor="serial")
    assert run.executed == 1
    assert [r["metrics"]["double"] for r in run.records] == [0, 2, 4, 6]
    path.write_text("{")
    with pytest.warns(UserWarning, match=rf"{path}: corrupt stored sweep result .*skipped"):
        assert len(store.records()) == 3


SCRIPT = """
import sys
from backtester import sweep
import sweep_jobs
jobs = [{"x": x, "sleep": 120, "pid_file": sys.argv[2]} for x in range(2)]
sweep.run_jobs(sweep_jobs.job, jobs, sweep.SweepStore(sys.argv[1]), workers=2)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as handle:
            state = next(line for line in handle if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return " Z " not in state and "zombie" not in state  # a zombie has ended


@pytest.mark.slow  # subprocesses
def test_no_worker_outlives_a_sigkilled_local_sweep(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{REPO}"}
    parent = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "sweep"), str(pid_file)], env=env
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pids = [int(p) for p in pid_file.read_text().split()] if pid_file.exists() else []
        if len(pids) == 2:
            break
        time.sleep(0.2)
    assert len(pids) == 2, "the workers did not start"
    assert all(alive(pid) for pid in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    assert [pid for pid in pids if alive(pid)] == []
