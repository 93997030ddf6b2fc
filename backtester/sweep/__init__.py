"""Parameter sweeps: grid or random search, run on local processes or Dask, resumable.

A sweep turns a base job (:mod:`backtester.jobs`: one JSON-serialisable dict describing one
backtest) and a parameter space into many jobs, runs the missing ones and stores one small JSON
file per job as it finishes, so an interrupted sweep resumes where it stopped.

One module per part:

* :mod:`~backtester.sweep.grid` — the parameter space (``fast=5:50:5``), grid and random
  combinations, the job of one combination;
* :mod:`~backtester.sweep.identity` — what a stored result depends on besides the job (the
  strategy's sources, the data files, the engine version);
* :mod:`~backtester.sweep.store` — the result store (``results/<key>.json``);
* :mod:`~backtester.sweep.executors` — running the jobs: serial, local worker processes, Dask;
* :mod:`~backtester.sweep.ranking` — ranking by a metric (on the records, no pandas table) and
  the results table;
* :mod:`~backtester.sweep.walk_forward` — in-sample / out-of-sample windows.

The sweep page (``sweep.html``) is drawn by :mod:`backtester.report.sweep_page`.
"""

from backtester.sweep.executors import (
    QUIET_SCHEDULER,
    WORKER_ATTEMPTS,
    JobError,
    JobFunction,
    SweepRun,
    WorkerDied,
    run_jobs,
)
from backtester.sweep.grid import (
    RUN_SETTINGS,
    apply_combination,
    grid_combinations,
    parse_space,
    parse_values,
    random_combinations,
)
from backtester.sweep.ranking import (
    RANK_METRICS,
    SweepFailed,
    check_rank_by,
    check_some_ok,
    rank_records,
    record_row,
    results_frame,
    usd_twin,
)
from backtester.sweep.store import SweepStore, job_key
from backtester.sweep.walk_forward import (
    Window,
    parse_duration,
    parse_walk_forward,
    run_walk_forward,
    walk_forward_windows,
)

__all__ = [
    "QUIET_SCHEDULER",
    "RANK_METRICS",
    "RUN_SETTINGS",
    "WORKER_ATTEMPTS",
    "JobError",
    "JobFunction",
    "SweepFailed",
    "SweepRun",
    "SweepStore",
    "Window",
    "WorkerDied",
    "apply_combination",
    "check_rank_by",
    "check_some_ok",
    "grid_combinations",
    "job_key",
    "parse_duration",
    "parse_space",
    "parse_values",
    "parse_walk_forward",
    "random_combinations",
    "rank_records",
    "record_row",
    "results_frame",
    "run_jobs",
    "run_walk_forward",
    "usd_twin",
    "walk_forward_windows",
]
