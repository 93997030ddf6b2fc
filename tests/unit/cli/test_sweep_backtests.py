"""Sweeps of real backtests on the sample data: local processes and a 2-worker Dask LocalCluster
give identical metrics; a resumed sweep computes only the missing combinations; the `sweep` and
`report` commands write the ranked table and the HTML page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    for module in (
        "backtester.strategy",
        "backtester.engine.backtest",
        "backtester.report.metrics",
    ):
        pytest.importorskip(module, reason=f"{module} (engine/reports helpers) not written yet")
    from backtester import sweep
    from backtester.cli import _default_contract

    selection = {"source": "sample", "symbol": "BTC-USD-SWAP", "start_ns": None,
                 "end_ns": None, "interval_ns": 0, "catalog": None}  # fmt: skip
    data = sweep.load_data(selection)
    selection["start_ns"] = data.start_ns
    selection["end_ns"] = data.start_ns + 10 * 86_400_000_000_000  # ten days keep it fast
    return {
        "strategy": str(strategy_file), "data": selection,
        "contract": _default_contract("sample", "BTC-USD-SWAP"), "profile": None,
        "leverage": 10.0, "margin_mode": "isolated", "maker_fee_rate": None,
        "taker_fee_rate": None, "initial_balance": 1.0, "params": {},
    }  # fmt: skip


def _metrics(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r["metrics"].items() if not k.startswith("worker_")} for r in records]


def test_dask_matches_local_and_resume_runs_only_missing(base_job: dict, tmp_path: Path) -> None:
    from backtester import sweep

    space = {"fast": [5, 10], "slow": [20, 40], "leverage": [5.0, 50.0]}
    jobs = [sweep.apply_combination(base_job, c) for c in sweep.grid_combinations(space)]
    preload = sweep.preload_data(base_job["data"])
    local = sweep.run_jobs(sweep.evaluate_backtest, jobs, sweep.SweepStore(tmp_path / "local"),
                           executor="local", workers=2, preload=preload)  # fmt: skip
    assert local.executed == 8
    assert local.failed == 0, [r["error"] for r in local.records]
    store = sweep.SweepStore(tmp_path / "dask")
    dask = sweep.run_jobs(sweep.evaluate_backtest, jobs, store, executor="dask", workers=2,
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
    resumed = sweep.run_jobs(sweep.evaluate_backtest, jobs, store, executor="dask", workers=2,
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
