"""Sweeps of real backtests on the sample data: local processes and a 2-worker Dask LocalCluster
give identical metrics; a resumed sweep computes only the missing combinations; the `sweep` and
`report` commands write the ranked table and the HTML page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # Dask LocalCluster and command subprocesses

REPO = Path(__file__).resolve().parents[3]

STRATEGY_SOURCE = """
from backtester.strategy import Strategy


class SmaCross(Strategy):
    fast = 10
    slow = 30

    def on_bar(self, ctx, bar):
        if len(ctx.closes) < self.slow:
            return
        fast, slow = ctx.sma(self.fast), ctx.sma(self.slow)
        if fast > slow and ctx.position <= 0:
            ctx.market(1 - ctx.position)
        elif fast < slow and ctx.position >= 0:
            ctx.market(-1 - ctx.position)
"""


@pytest.fixture(scope="module")
def strategy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("strategy") / "sma_cross.py"
    path.write_text(STRATEGY_SOURCE)
    return path


@pytest.fixture(scope="module")
def base_job(strategy_file: Path) -> dict:
    from backtester.cli.options import default_contract
    from backtester.jobs import load_data

    selection = {"source": "sample", "symbol": "BTC-USD-SWAP", "start_ns": None,
                 "end_ns": None, "interval_ns": 0, "catalog": None}  # fmt: skip
    data = load_data(selection)
    selection["start_ns"] = data.start_ns
    selection["end_ns"] = data.start_ns + 10 * 86_400_000_000_000  # ten days keep it fast
    return {
        "strategy": str(strategy_file), "data": selection,
        "contract": default_contract("sample", "BTC-USD-SWAP"), "profile": None,
        "leverage": 10.0, "margin_mode": "isolated", "maker_fee_rate": None,
        "taker_fee_rate": None, "initial_balance": 1.0, "params": {},
    }  # fmt: skip


def _metrics(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r["metrics"].items() if not k.startswith("worker_")} for r in records]


def test_dask_matches_local_and_resume_runs_only_missing(base_job: dict, tmp_path: Path) -> None:
    from backtester import sweep
    from backtester.jobs import evaluate_backtest, preload_data

    space = {"fast": [5, 10], "slow": [20, 40], "leverage": [5.0, 50.0]}
    jobs = [sweep.apply_combination(base_job, c) for c in sweep.grid_combinations(space)]
    preload = preload_data(base_job["data"])
    local = sweep.run_jobs(evaluate_backtest, jobs, sweep.SweepStore(tmp_path / "local"),
                           executor="local", workers=2, preload=preload)  # fmt: skip
    assert local.executed == 8
    assert local.failed == 0, [r["error"] for r in local.records]
    store = sweep.SweepStore(tmp_path / "dask")
    dask = sweep.run_jobs(evaluate_backtest, jobs, store, executor="dask", workers=2,
                          preload=preload)  # fmt: skip
    assert dask.executed == 8
    assert _metrics(dask.records) == _metrics(local.records)
    # data is loaded once per worker process, not once per run
    loads: dict[int, int] = {}
    for record in local.records + dask.records:
        pid = record["metrics"]["worker_pid"]
        loads[pid] = max(loads.get(pid, 0), record["metrics"]["worker_data_loads"])
    assert set(loads.values()) == {1}
    # different combinations give different outcomes (the sweep really varies the parameters)
    assert len({json.dumps(m, sort_keys=True) for m in _metrics(local.records)}) > 1
    for job in jobs[1:4]:
        store.path(sweep.job_key(job)).unlink()
    resumed = sweep.run_jobs(evaluate_backtest, jobs, store, executor="dask", workers=2,
                             preload=preload)  # fmt: skip
    assert resumed.executed == 3
    assert _metrics(resumed.records) == _metrics(local.records)


def test_sweep_and_report_commands(base_job: dict, strategy_file: Path, tmp_path: Path) -> None:
    import pandas as pd

    start = pd.Timestamp(base_job["data"]["start_ns"], unit="ns", tz="UTC")
    end = pd.Timestamp(base_job["data"]["end_ns"], unit="ns", tz="UTC")
    out = tmp_path / "sweep"
    args = [
        sys.executable, "-m", "backtester.cli", "sweep", str(strategy_file), "--data", "sample",
        "--start", start.isoformat(), "--end", end.isoformat(),
        "--grid", "fast=5:10:5", "slow=20,40", "--workers", "2", "--out", str(out),
        "--reports", "1",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "4 combinations, 4 executed now, 0 already stored" in done.stdout
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4
    assert set(zip(table["fast"], table["slow"], strict=True)) == {
        (5, 20), (5, 40), (10, 20), (10, 40),
    }  # fmt: skip
    ranked = pd.to_numeric(table["sharpe"]).dropna()
    assert len(ranked) == 4
    assert list(ranked) == sorted(ranked, reverse=True)
    assert "liquidations" in table.columns
    page = (out / "sweep.html").read_text()
    assert "Plotly.newPlot" in page
    assert "liquidated at least once" in page
    # the best combination's run report, linked from its row, sharing the sweep's plotly.js
    links = re.findall(r"<a href='(runs/[0-9a-f]+/report\.html)'>report</a>", page)
    assert len(links) == 1
    run_page = (out / links[0]).read_text()
    assert '<script src="../../plotly-' in run_page
    assert len(list(out.glob("plotly-*.min.js"))) == 1
    assert str(REPO) not in run_page  # no absolute machine paths
    again = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "4 combinations, 0 executed now, 4 already stored" in again.stdout
    report = subprocess.run(
        [sys.executable, "-m", "backtester.cli", "report", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "4 stored combinations" in report.stdout
    bad = subprocess.run(
        [*args[:-4], "--grid", "fastt=5,10", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "did you mean 'fast'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def _span_args(base_job: dict) -> list[str]:
    import pandas as pd

    start = pd.Timestamp(base_job["data"]["start_ns"], unit="ns", tz="UTC")
    end = pd.Timestamp(base_job["data"]["end_ns"], unit="ns", tz="UTC")
    return ["--data", "sample", "--start", start.isoformat(), "--end", end.isoformat()]


def test_sweep_command_on_an_existing_dask_cluster_matches_serial(
    base_job: dict, strategy_file: Path, tmp_path: Path
) -> None:
    import distributed
    import pandas as pd

    from backtester import sweep

    command = [sys.executable, "-m", "backtester.cli", "sweep", str(strategy_file),
               *_span_args(base_job), "--grid", "fast=5,10", "leverage=5,50"]  # fmt: skip
    serial = subprocess.run([*command, "--executor", "serial", "--out", str(tmp_path / "serial")],
                            capture_output=True, text=True, cwd=REPO, timeout=600)  # fmt: skip
    assert serial.returncode == 0, serial.stderr
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50,
                                  scheduler_kwargs=sweep.QUIET_SCHEDULER) as cluster:  # fmt: skip
        on_dask = subprocess.run(
            [*command, "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "dask")],
            capture_output=True, text=True, cwd=REPO, timeout=600,
        )  # fmt: skip
        assert on_dask.returncode == 0, on_dask.stderr
        assert "4 combinations, 4 executed now, 0 already stored, 0 failed now" in on_dask.stdout
        with distributed.Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
        assert len(worker_pids) == 2
    tables = [pd.read_csv(tmp_path / name / "results.csv") for name in ("serial", "dask")]
    assert len(tables[0]) == 4
    pd.testing.assert_frame_equal(tables[0], tables[1])
    # the runs really happened in the cluster's worker processes
    records = [json.loads(p.read_text()) for p in (tmp_path / "dask" / "results").glob("*.json")]
    assert {r["metrics"]["worker_pid"] for r in records} <= worker_pids
    assert {r["metrics"]["worker_data_loads"] for r in records} == {1}


def test_walk_forward_command_runs_in_sample_winners_out_of_sample(
    base_job: dict, strategy_file: Path, tmp_path: Path
) -> None:
    import pandas as pd

    out = tmp_path / "wf"
    command = [sys.executable, "-m", "backtester.cli", "sweep", str(strategy_file),
               *_span_args(base_job), "--grid", "fast=5,10", "--executor", "serial",
               "--walk-forward", "train=4d,test=2d", "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    # ten days: windows start at day 0, 2, 4 (train 4 d + test 2 d); 3 x 2 in sample + 3 out
    assert "walk-forward: 3 windows, 9 runs executed now" in done.stdout
    frame = pd.read_csv(out / "walk_forward.csv")
    start = pd.Timestamp(base_job["data"]["start_ns"], unit="ns", tz="UTC")
    assert list(pd.to_datetime(frame["test_start"])) == [
        start + pd.Timedelta(days=d) for d in (4, 6, 8)
    ]
    assert set(frame["fast"]) <= {5, 10}
    assert list(frame["oos_status"]) == ["ok", "ok", "ok"]
    # the walk-forward page: one row per window, out-of-sample returns compounded
    page = (out / "walk_forward.html").read_text()
    assert page.count("<tr><td>") == 3
    stitched = float((1.0 + frame["oos_total_return"]).prod() - 1.0)
    assert f"Stitched out-of-sample return {stitched * 100:.2f} %" in page
    # each in-sample winner has the best in-sample sharpe of its window
    records = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    for _, row in frame.iterrows():
        train_end = int((pd.Timestamp(row["test_start"])).value)
        in_sample = [r for r in records if r["job"]["data"]["end_ns"] == train_end
                     and r["job"]["data"]["end_ns"] - r["job"]["data"]["start_ns"]
                     == 4 * 86_400_000_000_000]  # fmt: skip
        assert len(in_sample) == 2
        best = max(r["metrics"]["sharpe"] for r in in_sample)
        assert row["is_sharpe"] == pytest.approx(best, rel=1e-12)
    # every window is cut from one load of the whole span per worker process
    assert set(frame["oos_worker_data_loads"]) == {1}
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "walk-forward: 3 windows, 0 runs executed now" in again.stdout
