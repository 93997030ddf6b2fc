"""The Dask executor: a real 2-worker LocalCluster gives the same records as local processes."""

from __future__ import annotations

import pytest

from backtester import sweep

pytestmark = pytest.mark.slow  # a Dask LocalCluster


def test_dask_local_cluster_matches_local_processes_and_resumes(tmp_path) -> None:
    jobs = [{"index": i, "leverage": float(i + 1), "params": {"fast": i}} for i in range(8)]
    local = sweep.run_jobs(dict, jobs, sweep.SweepStore(tmp_path / "local"), executor="serial")
    store = sweep.SweepStore(tmp_path / "dask")
    dask = sweep.run_jobs(dict, jobs, store, executor="dask", workers=2)
    assert dask.executed == 8
    assert [r["metrics"] for r in dask.records] == [r["metrics"] for r in local.records]
    for job in jobs[2:5]:
        store.path(sweep.job_key(job)).unlink()
    resumed = sweep.run_jobs(dict, jobs, store, executor="dask", workers=2)
    assert resumed.executed == 3
    assert [r["metrics"] for r in resumed.records] == [r["metrics"] for r in local.records]
