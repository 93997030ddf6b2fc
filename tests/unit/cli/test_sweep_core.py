"""Sweep machinery: parameter spaces, job keys, the resumable store, executors, walk-forward.

The executor tests run a real picklable top-level function (``dict``, which returns a copy of
the job) so they exercise process pools, Dask and the store without needing the engine; the
end-to-end sweep of real backtests is in ``test_sweep_backtests.py``.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from backtester import sweep
from backtester.report.sweep_page import write_sweep_page

DAY = 86_400_000_000_000


def test_parse_values_ranges_lists_and_scalars() -> None:
    assert sweep.parse_values("fast", "5:50:5") == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert sweep.parse_values("slow", "50:300:125") == [50, 175, 300]
    assert sweep.parse_values("x", "0.1:0.3:0.1") == [0.1, 0.2, 0.3]
    assert sweep.parse_values("x", "1,2.5,true,okx") == [1, 2.5, True, "okx"]
    assert sweep.parse_values("x", "7") == [7]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5:50", "start:stop:step"),
        ("5:50:0", "step must be > 0"),
        ("50:5:5", "stop < start"),
        ("a:b:c", "must be numbers"),
        ("", "empty value"),
    ],
)
def test_parse_values_rejects_bad_ranges(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sweep.parse_values("fast", text)


def test_parse_space_and_grid_order() -> None:
    space = sweep.parse_space(["fast=5:15:5", "slow=50,100"])
    assert space == {"fast": [5, 10, 15], "slow": [50, 100]}
    combos = sweep.grid_combinations(space)
    assert combos[:3] == [
        {"fast": 5, "slow": 50},
        {"fast": 5, "slow": 100},
        {"fast": 10, "slow": 50},
    ]
    assert len(combos) == 6
    with pytest.raises(ValueError, match="given twice"):
        sweep.parse_space(["fast=1", "fast=2"])
    with pytest.raises(ValueError, match="name=values"):
        sweep.parse_space(["fast"])


def test_random_combinations_are_distinct_deterministic_and_in_grid() -> None:
    space = {"a": list(range(10)), "b": list(range(10)), "c": [1, 2]}
    first = sweep.random_combinations(space, 15, seed=3)
    again = sweep.random_combinations(space, 15, seed=3)
    other = sweep.random_combinations(space, 15, seed=4)
    assert first == again
    assert first != other
    assert len({json.dumps(c, sort_keys=True) for c in first}) == 15
    grid = sweep.grid_combinations(space)
    assert all(c in grid for c in first)
    assert sweep.random_combinations({"a": [1, 2]}, 5) == [{"a": 1}, {"a": 2}]


def test_apply_combination_routes_run_settings_and_params() -> None:
    base = {"strategy": "s.py", "leverage": 10.0, "params": {"slow": 60}, "data": {"x": 1}}
    job = sweep.apply_combination(base, {"fast": 5, "leverage": 20, "profile": "okx"})
    assert job["leverage"] == 20
    assert job["profile"] == "okx"
    assert job["params"] == {"slow": 60, "fast": 5}
    assert base["params"] == {"slow": 60}  # the base job is not changed


def test_job_key_is_stable_and_order_independent() -> None:
    a = {"x": 1, "params": {"fast": 5, "slow": 50}}
    b = {"params": {"slow": 50, "fast": 5}, "x": 1}
    assert sweep.job_key(a) == sweep.job_key(b)
    assert len(sweep.job_key(a)) == 16
    assert sweep.job_key(a) != sweep.job_key({"x": 1, "params": {"fast": 6, "slow": 50}})


def _jobs(count: int) -> list[dict]:
    return [{"index": i, "params": {"fast": i, "slow": 10 * i}} for i in range(count)]


def test_serial_run_stores_each_job_and_resumes(tmp_path) -> None:
    store = sweep.SweepStore(tmp_path / "s")
    jobs = _jobs(5)
    first = sweep.run_jobs(dict, jobs, store, executor="serial")
    assert first.executed == 5
    assert first.failed == 0
    assert [r["metrics"]["index"] for r in first.records] == [0, 1, 2, 3, 4]
    assert len(list(store.results_dir.glob("*.json"))) == 5
    assert not list(store.results_dir.glob("*.tmp"))
    store.path(sweep.job_key(jobs[1])).unlink()
    store.path(sweep.job_key(jobs[3])).unlink()
    second = sweep.run_jobs(dict, jobs, store, executor="serial")
    assert second.executed == 2
    assert [r["metrics"] for r in second.records] == [r["metrics"] for r in first.records]
    third = sweep.run_jobs(dict, jobs, store, executor="serial")
    assert third.executed == 0


def test_failing_job_is_recorded_not_fatal(tmp_path) -> None:
    store = sweep.SweepStore(tmp_path / "s")
    jobs = [{"a": 1}, {"b": 2}]
    # float(dict) raises TypeError: a real failure inside the job function
    run = sweep.run_jobs(float, jobs, store, executor="serial")
    assert run.executed == 2
    assert run.failed == 2
    assert run.records[0]["status"] == "error"
    assert run.records[0]["error"].startswith("TypeError:")
    assert sweep.run_jobs(float, jobs, store, executor="serial").executed == 0
    assert sweep.run_jobs(float, jobs, store, executor="serial", retry_errors=True).executed == 2


@pytest.mark.slow  # subprocesses
def test_local_process_pool_matches_serial(tmp_path) -> None:
    jobs = _jobs(6)
    serial = sweep.run_jobs(dict, jobs, sweep.SweepStore(tmp_path / "a"), executor="serial")
    local = sweep.run_jobs(
        dict, jobs, sweep.SweepStore(tmp_path / "b"), executor="local", workers=2
    )
    assert local.executed == 6
    assert [r["metrics"] for r in local.records] == [r["metrics"] for r in serial.records]
    assert [r["key"] for r in local.records] == [sweep.job_key(j) for j in jobs]


def test_results_frame_and_rank(tmp_path) -> None:
    records = [
        {"key": "a", "job": {"leverage": 5, "params": {"fast": 1}}, "status": "ok",
         "metrics": {"sharpe": 0.5}, "error": ""},
        {"key": "b", "job": {"leverage": 10, "params": {"fast": 2}}, "status": "ok",
         "metrics": {"sharpe": 1.5}, "error": ""},
        {"key": "c", "job": {"leverage": 20, "params": {"fast": 3}}, "status": "error",
         "metrics": {}, "error": "ValueError: x"},
    ]  # fmt: skip
    dims = ["fast", "leverage"]
    ranked_records = sweep.rank_records(records, "sharpe", dims)
    assert [r["key"] for r in ranked_records] == ["b", "a", "c"]  # 1.5 > 0.5, the error last
    ranked = sweep.results_frame(ranked_records, dims)
    assert list(ranked["fast"]) == [2, 1, 3]
    ascending = sweep.rank_records(records, "sharpe", dims, ascending=True)
    assert [r["job"]["params"]["fast"] for r in ascending] == [1, 2, 3]
    assert [r["key"] for r in sweep.rank_records(records, "leverage", dims)] == ["c", "b", "a"]
    with pytest.raises(ValueError, match="did you mean 'sharpe'"):
        sweep.rank_records(records, "sharp", dims)
    # text columns are not offered as metrics, and ranking by one is refused
    for record, venue in zip(records, ["okx", "okx", "binance"], strict=True):
        record["metrics"]["venue"] = venue
    with pytest.raises(ValueError, match="not a numeric metric 'venue'") as error:
        sweep.rank_records(records, "venue", dims)
    assert "'status'" not in str(error.value)
    with pytest.raises(ValueError, match="unknown metric 'venu'") as error:
        sweep.rank_records(records, "venu", dims)
    assert "'venue'" not in str(error.value)
    swept = ["fast", "leverage"]
    page = write_sweep_page(ranked, tmp_path / "s.html", rank_by="sharpe", dimensions=swept,
                            heatmap=swept)  # fmt: skip
    text = page.read_text()
    assert "Plotly.newPlot" in text
    assert "3 combinations, 1 failed" in text


def test_walk_forward_windows() -> None:
    assert sweep.parse_walk_forward("train=60d,test=20d") == (60 * DAY, 20 * DAY, 20 * DAY)
    assert sweep.parse_walk_forward("train=2w,test=12h,step=1d") == (
        14 * DAY, 12 * 3_600_000_000_000, DAY,
    )  # fmt: skip
    windows = sweep.walk_forward_windows(0, 100 * DAY, 60 * DAY, 20 * DAY)
    assert windows == [
        sweep.Window(0, 60 * DAY, 60 * DAY, 80 * DAY),
        sweep.Window(20 * DAY, 80 * DAY, 80 * DAY, 100 * DAY),
    ]
    with pytest.raises(ValueError, match="does not fit"):
        sweep.walk_forward_windows(0, 50 * DAY, 60 * DAY, 20 * DAY)
    with pytest.raises(ValueError, match="train= and test="):
        sweep.parse_walk_forward("train=60d")
    with pytest.raises(ValueError, match="duration like"):
        sweep.parse_walk_forward("train=60x,test=1d")


def test_run_walk_forward_picks_in_sample_winner(tmp_path) -> None:
    # dict echoes the job, so the metric "leverage" is the swept leverage: the highest wins
    base = {"data": {"start_ns": None, "end_ns": None}, "params": {}, "leverage": 1}
    combos = [{"leverage": 5}, {"leverage": 20}, {"leverage": 10}]
    windows = sweep.walk_forward_windows(0, 4 * DAY, 2 * DAY, DAY)
    store = sweep.SweepStore(tmp_path / "wf")
    frame, executed = sweep.run_walk_forward(
        dict, base, combos, windows, store, rank_by="leverage", executor="serial"
    )
    assert executed == 2 * 3 + 2
    assert list(frame["leverage"]) == [20, 20]
    assert list(frame["is_leverage"]) == [20, 20]
    assert list(frame["oos_status"]) == ["ok", "ok"]
    assert list(frame["test_start"]) == [
        pd.Timestamp(2 * DAY, unit="ns", tz="UTC"),
        pd.Timestamp(3 * DAY, unit="ns", tz="UTC"),
    ]
    oos = [json.loads(p.read_text()) for p in store.results_dir.glob("*.json")]
    test_windows = sorted(
        (r["job"]["data"]["start_ns"], r["job"]["data"]["end_ns"])
        for r in oos
        if r["job"]["data"]["end_ns"] - r["job"]["data"]["start_ns"] == DAY
    )
    assert test_windows == [(2 * DAY, 3 * DAY), (3 * DAY, 4 * DAY)]
    again, executed_again = sweep.run_walk_forward(
        dict, base, combos, windows, store, rank_by="leverage", executor="serial"
    )
    assert executed_again == 0
    assert again.equals(frame)
