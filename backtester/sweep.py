"""Parameter sweeps: grid or random search, run on local processes or Dask, resumable.

One *job* is a JSON-serialisable dict that fully describes one backtest (strategy reference,
data selection, contract, leverage, margin mode, fees, strategy parameters). A sweep turns a
base job and a parameter space into many jobs, runs the missing ones and stores one small JSON
file per job as it finishes, so an interrupted sweep resumes where it stopped.

Execution
---------
* ``executor="local"`` (default): a ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method (no fork of a process holding numba/dask threads); a pool initializer
  loads the market data once per process.
* ``executor="dask"``: a ``distributed.LocalCluster(n_workers=N, threads_per_worker=1,
  processes=True)`` or an existing scheduler (``tcp://host:8786``); data is preloaded on every
  worker with ``client.run`` and also cached lazily in a module-level dict, so a worker that
  joins later loads it on its first job. Dask is imported only here, and only when used.
* ``executor="serial"``: in this process (debugging).

Store layout (``<sweep dir>/``)::

    sweep.json              the base job and the parameter space (for the record)
    results/<key>.json      one per job: {"key", "job", "status": "ok"|"error", "metrics", "error"}

``<key>`` is the first 16 hex digits of the SHA-256 of the job's canonical JSON, so the same job
always maps to the same file whatever the order or executor. Files are written to a temporary
name and moved into place (atomic on POSIX): a killed sweep leaves whole files only.

Walk-forward
------------
:func:`walk_forward_windows` cuts the data span into consecutive in-sample/out-of-sample windows
(``train=60d,test=20d``, stepping by the test length); :func:`run_walk_forward` runs the grid on
each in-sample window, picks the winner by the ranking metric and reports that winner's
out-of-sample result. Each out-of-sample run starts flat and cold (indicators warm up inside the
test window).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib
import importlib.util
import itertools
import json
import math
import multiprocessing
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtester.checks import suggestion

JobFunction = Callable[[dict[str, Any]], dict[str, Any]]

#: Sweep dimensions that are run settings, not strategy parameters.
RUN_SETTINGS = ("leverage", "margin_mode", "maker_fee_rate", "taker_fee_rate", "profile")

_DAY_NS = 86_400_000_000_000
_DURATION_UNITS = {"d": _DAY_NS, "h": 3_600_000_000_000, "m": 60_000_000_000, "w": 7 * _DAY_NS}


# --------------------------------------------------------------------------- parameter space


def parse_scalar(text: str) -> int | float | bool | str:
    """Read ``"5"`` as int, ``"0.5"``/``"1e-4"`` as float, ``"true"``/``"false"`` as bool."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip()


def parse_values(name: str, text: str) -> list[Any]:
    """Values of one sweep dimension.

    ``start:stop:step`` is an inclusive range (``5:50:5`` → 5, 10, …, 50; integers when all three
    are integers), ``a,b,c`` a list, anything else a single value.

    Raises
    ------
    ValueError
        Naming the dimension for a malformed range, a step ≤ 0 or an empty range.
    """
    text = text.strip()
    if not text:
        raise ValueError(f"{name}: empty value; expected start:stop:step or a,b,c")
    if ":" in text and "," not in text and "://" not in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"{name}: range {text!r} must be start:stop:step (e.g. 5:50:5)")
        numbers = [parse_scalar(p) for p in parts]
        if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
            raise ValueError(f"{name}: range {text!r} must be numbers start:stop:step")
        start, stop, step = numbers
        if step <= 0:
            raise ValueError(f"{name}: step must be > 0 in {text!r}")
        if stop < start:
            raise ValueError(f"{name}: stop < start in {text!r}")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if all(isinstance(n, int) for n in numbers):
            return [int(start + i * step) for i in range(count)]
        # round to the step's decimals so 0.1:0.3:0.1 gives 0.1, 0.2, 0.3 (not 0.30000000000000004)
        decimals = max(_decimals(str(p)) for p in parts)
        return [round(float(start) + i * float(step), decimals) for i in range(count)]
    return [parse_scalar(v) for v in text.split(",") if v.strip()]


def _decimals(text: str) -> int:
    text = text.strip().lower()
    if "e" in text:
        return 12
    return len(text.partition(".")[2])


def parse_space(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["fast=5:50:5", "slow=50,100"]`` → ``{"fast": [5, …, 50], "slow": [50, 100]}``."""
    space: dict[str, list[Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"grid: expected name=values (e.g. fast=5:50:5), got {item!r}")
        if name in space:
            raise ValueError(f"grid: dimension {name!r} given twice")
        space[name] = parse_values(name, text)
    return space


def grid_combinations(space: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the space, in row-major order of the dimensions as given."""
    names = list(space)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*space.values())]


def random_combinations(
    space: dict[str, Sequence[Any]], samples: int, seed: int = 0
) -> list[dict[str, Any]]:
    """``samples`` distinct combinations drawn uniformly from the grid (fixed ``seed``).

    Returns the whole grid when it has no more than ``samples`` combinations.
    """
    if samples <= 0:
        raise ValueError(f"samples: expected a value > 0, got {samples}")
    sizes = [len(v) for v in space.values()]
    total = math.prod(sizes)
    if total <= samples:
        return grid_combinations(space)
    rng = np.random.default_rng(seed)
    picks = sorted(int(i) for i in rng.choice(total, size=samples, replace=False))
    names = list(space)
    combos = []
    for flat in picks:
        combo: dict[str, Any] = {}
        for name, size in zip(reversed(names), reversed(sizes), strict=True):
            flat, position = divmod(flat, size)
            combo[name] = space[name][position]
        combos.append({name: combo[name] for name in names})
    return combos


def apply_combination(base_job: dict[str, Any], combo: dict[str, Any]) -> dict[str, Any]:
    """The job for one combination: run settings go to the top level, the rest to ``params``."""
    job = json.loads(json.dumps(base_job))
    params = dict(job.get("params") or {})
    for name, value in combo.items():
        if name in RUN_SETTINGS:
            job[name] = value
        else:
            params[name] = value
    job["params"] = params
    return job


def job_key(job: dict[str, Any]) -> str:
    """Stable 16-hex-digit key of a job (SHA-256 of its canonical JSON)."""
    text = json.dumps(job, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- result store


class SweepStore:
    """One JSON file per finished job under ``<directory>/results``, written atomically.

    Parameters
    ----------
    directory
        The sweep directory (created if missing).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.results_dir = self.directory / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """File of one job's result."""
        return self.results_dir / f"{key}.json"

    def has(self, key: str) -> bool:
        """Whether the job with this key has a stored result (ok or error)."""
        return self.path(key).is_file()

    def get(self, key: str) -> dict[str, Any]:
        """The stored record of one job."""
        return json.loads(self.path(key).read_text())

    def put(self, key: str, record: dict[str, Any]) -> Path:
        """Store one job's record: temporary file in the same directory, then ``os.replace``."""
        target = self.path(key)
        temporary = target.with_name(f".{key}.{uuid.uuid4().hex}.tmp")
        with open(temporary, "w") as handle:
            json.dump(record, handle, sort_keys=True, default=_json_default)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return target

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        """Write ``sweep.json`` (what was swept), atomically."""
        target = self.directory / "sweep.json"
        temporary = target.with_name(f".sweep.{uuid.uuid4().hex}.tmp")
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=_json_default))
        os.replace(temporary, target)
        return target

    def read_manifest(self) -> dict[str, Any]:
        """The ``sweep.json`` written by :meth:`write_manifest`."""
        path = self.directory / "sweep.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.directory}: not a sweep directory (no sweep.json)")
        return json.loads(path.read_text())

    def records(self) -> list[dict[str, Any]]:
        """Every stored record, sorted by key."""
        return [json.loads(p.read_text()) for p in sorted(self.results_dir.glob("*.json"))]


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)


# --------------------------------------------------------------------------- execution


@dataclass
class SweepRun:
    """Outcome of :func:`run_jobs`.

    Attributes
    ----------
    records
        The stored record of every requested job, in the order of the jobs.
    executed
        How many jobs were computed by this call (the others were already stored).
    failed
        How many of the executed jobs raised (their record has ``status == "error"``).
    """

    records: list[dict[str, Any]]
    executed: int
    failed: int


def _record(key: str, job: dict[str, Any], outcome: dict[str, Any] | BaseException) -> dict:
    if isinstance(outcome, BaseException):
        message = f"{type(outcome).__name__}: {outcome}".splitlines()[0]
        return {"key": key, "job": job, "status": "error", "metrics": {}, "error": message}
    return {"key": key, "job": job, "status": "ok", "metrics": outcome, "error": ""}


def run_jobs(
    function: JobFunction,
    jobs: Sequence[dict[str, Any]],
    store: SweepStore,
    *,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    preload: Callable[[], None] | None = None,
    progress: bool = False,
    retry_errors: bool = False,
) -> SweepRun:
    """Run the jobs that have no stored result and store each one as it finishes.

    Parameters
    ----------
    function
        Top-level (picklable) function ``job -> metrics dict``; run in worker processes.
    jobs
        The jobs; duplicates (same key) are run once.
    store
        Where results are kept; jobs already stored are not run again.
    executor
        ``"local"`` (process pool), ``"dask"`` or ``"serial"``.
    workers
        Processes (local) or Dask workers for a new LocalCluster; default: CPU count.
    scheduler
        Address of an existing Dask scheduler (implies ``executor="dask"``).
    preload
        Top-level function run once in each worker before its first job (loads data).
    progress
        Show a tqdm progress bar.
    retry_errors
        Run again jobs whose stored record is an error.

    Returns
    -------
    SweepRun
        The records in job order and how many jobs were executed now.
    """
    if executor not in ("local", "dask", "serial"):
        raise ValueError(f"executor: unknown value {executor!r}; expected local, dask or serial")
    if scheduler:
        executor = "dask"
    if workers is not None and workers < 1:
        raise ValueError(f"workers: expected a value >= 1, got {workers}")
    keys = [job_key(job) for job in jobs]
    missing: dict[str, dict[str, Any]] = {}
    for key, job in zip(keys, jobs, strict=True):
        if key in missing:
            continue
        if store.has(key) and (not retry_errors or store.get(key)["status"] == "ok"):
            continue
        missing[key] = job
    failed = 0
    bar = _progress_bar(len(missing), progress)
    try:
        for key, outcome in _execute(function, missing, executor, workers, scheduler, preload):
            record = _record(key, missing[key], outcome)
            failed += record["status"] == "error"
            store.put(key, record)
            bar.update(1)
    finally:
        bar.close()
    return SweepRun([store.get(key) for key in keys], len(missing), failed)


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="run", disable=not (enabled and sys.stderr.isatty()))


def _execute(
    function: JobFunction,
    jobs: dict[str, dict[str, Any]],
    executor: str,
    workers: int | None,
    scheduler: str | None,
    preload: Callable[[], None] | None,
) -> Iterable[tuple[str, dict[str, Any] | BaseException]]:
    if not jobs:
        return
    if executor == "serial":
        if preload is not None:
            preload()
        for key, job in jobs.items():
            yield key, _call(function, job)
    elif executor == "local":
        yield from _execute_local(function, jobs, workers, preload)
    else:
        yield from _execute_dask(function, jobs, workers, scheduler, preload)


def _call(function: JobFunction, job: dict[str, Any]) -> dict[str, Any] | BaseException:
    try:
        return function(job)
    except Exception as error:  # a failing combination is recorded, the sweep goes on
        return error


def _run_preload(preload: Callable[[], None] | None) -> None:
    if preload is not None:
        preload()


def _execute_local(
    function: JobFunction,
    jobs: dict[str, dict[str, Any]],
    workers: int | None,
    preload: Callable[[], None] | None,
) -> Iterable[tuple[str, dict[str, Any] | BaseException]]:
    count = min(workers or os.cpu_count() or 1, len(jobs))
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=count,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_run_preload,
        initargs=(preload,),
    ) as pool:
        futures = {pool.submit(_call, function, job): key for key, job in jobs.items()}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


QUIET_SCHEDULER = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
"""``scheduler_kwargs`` of the LocalClusters started here: no dashboard, HTTP on a free port."""


def _execute_dask(
    function: JobFunction,
    jobs: dict[str, dict[str, Any]],
    workers: int | None,
    scheduler: str | None,
    preload: Callable[[], None] | None,
) -> Iterable[tuple[str, dict[str, Any] | BaseException]]:
    from backtester.extras import require

    # dask is imported here only (the "dask" extra)
    distributed = require("distributed", "dask", "sweep --executor dask / --scheduler")

    cluster = None
    if scheduler:
        client = distributed.Client(scheduler)
    else:
        cluster = distributed.LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # the scheduler's HTTP server (health, metrics) otherwise takes port 8787 and
            # warns when another cluster holds it: any free local port will do
            scheduler_kwargs=QUIET_SCHEDULER,
            silence_logs=50,
        )
        client = distributed.Client(cluster)
    try:
        if preload is not None:
            client.run(_run_preload, preload)
        futures = {
            client.submit(_call, function, job, key=f"backtest-{key}", pure=False): key
            for key, job in jobs.items()
        }
        for future, outcome in distributed.as_completed(futures, with_results=True):
            yield futures[future], outcome
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- ranking and output


def results_frame(records: Sequence[dict[str, Any]], dimensions: Sequence[str]) -> pd.DataFrame:
    """One row per record: the swept dimensions, ``status``, ``error`` and every metric."""
    rows = []
    for record in records:
        job = record["job"]
        row: dict[str, Any] = {}
        for name in dimensions:
            row[name] = job.get(name) if name in RUN_SETTINGS else job.get("params", {}).get(name)
        row["status"] = record["status"]
        row["error"] = record["error"]
        row.update(
            {
                k: v
                for k, v in record["metrics"].items()
                if isinstance(v, int | float | str | bool) or v is None
            }
        )
        row["key"] = record["key"]
        rows.append(row)
    return pd.DataFrame(rows)


class SweepFailed(RuntimeError):
    """Every combination failed, so there is nothing to rank (``backtester`` exit code 1)."""


def check_some_ok(records: Sequence[dict[str, Any]], what: str) -> None:
    """Raise :class:`SweepFailed` (with the first error) when no record has status ``ok``."""
    errors = [r for r in records if r["status"] != "ok"]
    if records and len(errors) == len(records):
        raise SweepFailed(
            f"{what}: all {len(records)} combinations failed; first error: {errors[0]['error']}"
        )


def rank(frame: pd.DataFrame, rank_by: str, *, ascending: bool = False) -> pd.DataFrame:
    """Sort by a numeric column (best first; NaN and errors last). A column that is missing or
    not numeric → ``ValueError`` suggesting the numeric ones."""
    metrics = [
        c
        for c in frame.columns
        if c not in ("status", "error", "key") and pd.api.types.is_numeric_dtype(frame[c])
    ]
    if rank_by not in metrics:
        what = "not a numeric metric" if rank_by in frame.columns else "unknown metric"
        raise ValueError(f"rank-by: {what} {rank_by!r}; {suggestion(rank_by, metrics)}")
    values = pd.to_numeric(frame[rank_by], errors="coerce")
    order = values.sort_values(ascending=ascending, na_position="last", kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def write_sweep_html(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    rank_by: str,
    heatmap: Sequence[str] = (),
    title: str = "Sweep",
    liquidation_column: str = "liquidations",
) -> Path:
    """A self-contained HTML page: ranked table, heatmap over two parameters, distributions.

    The heatmap shows, for each pair of values of the two ``heatmap`` parameters, the best
    ``rank_by`` value over the other swept dimensions. The distribution panel shows the
    histogram of ``rank_by`` and how many combinations were liquidated at least once.
    """
    import plotly.graph_objects as go  # plotly is only needed for the page

    figures = []
    ok = frame[frame["status"] == "ok"]
    values = pd.to_numeric(ok.get(rank_by), errors="coerce") if len(ok) else pd.Series([])
    if len(heatmap) == 2 and len(ok):
        x_name, y_name = heatmap
        pivot = (
            ok.assign(_metric=values)
            .groupby([y_name, x_name])["_metric"]
            .max()
            .unstack(x_name)
            .sort_index()
        )
        figure = go.Figure(
            go.Heatmap(
                z=pivot.to_numpy(),
                x=[str(v) for v in pivot.columns],
                y=[str(v) for v in pivot.index],
                colorscale="RdYlGn",
                colorbar={"title": rank_by},
            )
        )
        figure.update_layout(
            title=f"{rank_by} by {x_name} × {y_name} (best over other dimensions)",
            xaxis_title=x_name,
            yaxis_title=y_name,
        )
        figures.append(figure)
    histogram = go.Figure(go.Histogram(x=values.to_numpy(), nbinsx=30, name=rank_by))
    histogram.update_layout(title=f"Distribution of {rank_by}", xaxis_title=rank_by)
    figures.append(histogram)
    liquidated = 0
    if liquidation_column in ok.columns:
        counts = pd.to_numeric(ok[liquidation_column], errors="coerce").fillna(0)
        liquidated = int((counts > 0).sum())
        bars = go.Figure(
            go.Bar(
                x=["not liquidated", "liquidated at least once"],
                y=[len(ok) - liquidated, liquidated],
            )
        )
        bars.update_layout(title="Combinations liquidated")
        figures.append(bars)
    parts = [
        figure.to_html(full_html=False, include_plotlyjs=(i == 0))
        for i, figure in enumerate(figures)
    ]
    errors = int((frame["status"] == "error").sum())
    table = frame.drop(columns=["key"], errors="ignore").head(50).to_html(index=False, border=0)
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;"
        "border-bottom:1px solid #ddd;text-align:right}</style></head><body>"
        f"<h1>{title}</h1><p>{len(frame)} combinations, {errors} failed, {liquidated} "
        f"liquidated at least once; ranked by {rank_by}.</p>"
        + "".join(parts)
        + f"<h2>Top {min(50, len(frame))}</h2>{table}</body></html>"
    )
    path = Path(path)
    path.write_text(html)
    return path


# --------------------------------------------------------------------------- walk-forward


def parse_duration(text: str, name: str) -> int:
    """``"60d"``, ``"12h"``, ``"2w"``, ``"90m"`` → nanoseconds."""
    text = text.strip()
    unit = text[-1:].lower()
    if unit not in _DURATION_UNITS or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"{name}: expected a duration like 60d, 12h, 2w or 90m, got {text!r}")
    return int(text[:-1]) * _DURATION_UNITS[unit]


def parse_walk_forward(text: str) -> tuple[int, int, int]:
    """``"train=60d,test=20d[,step=20d]"`` → (train_ns, test_ns, step_ns); step defaults to test."""
    parts: dict[str, int] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in ("train", "test", "step"):
            raise ValueError(
                f"walk-forward: expected train=<duration>,test=<duration>[,step=<duration>], "
                f"got {text!r}"
            )
        parts[name] = parse_duration(value, f"walk-forward {name}")
    if "train" not in parts or "test" not in parts:
        raise ValueError(f"walk-forward: both train= and test= are required, got {text!r}")
    return parts["train"], parts["test"], parts.get("step", parts["test"])


@dataclass(frozen=True)
class Window:
    """One walk-forward split: in-sample [train_start, train_end), out-of-sample after it."""

    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


def walk_forward_windows(
    start_ns: int, end_ns: int, train_ns: int, test_ns: int, step_ns: int | None = None
) -> list[Window]:
    """Consecutive windows ``[s, s+train)`` then ``[s+train, s+train+test)``, s += step.

    Only windows whose test part ends by ``end_ns`` are returned.

    Raises
    ------
    ValueError
        When not even one window fits in ``[start_ns, end_ns)``.
    """
    step_ns = step_ns or test_ns
    windows = []
    start = start_ns
    while start + train_ns + test_ns <= end_ns:
        windows.append(
            Window(start, start + train_ns, start + train_ns, start + train_ns + test_ns)
        )
        start += step_ns
    if not windows:
        days = (end_ns - start_ns) / _DAY_NS
        raise ValueError(
            f"walk-forward: train + test ({(train_ns + test_ns) / _DAY_NS:g} days) does not fit "
            f"in the data span ({days:g} days)"
        )
    return windows


def run_walk_forward(
    function: JobFunction,
    base_job: dict[str, Any],
    combos: Sequence[dict[str, Any]],
    windows: Sequence[Window],
    store: SweepStore,
    *,
    rank_by: str,
    ascending: bool = False,
    **run_options: Any,
) -> tuple[pd.DataFrame, int]:
    """Pick the in-sample winner of each window and run it out of sample.

    Returns
    -------
    (pandas.DataFrame, int)
        One row per window (window bounds, the winning combination, its in-sample
        ``rank_by`` and every out-of-sample metric prefixed ``oos_``), and the number of jobs
        executed now.
    """
    dimensions = list(combos[0]) if combos else []

    def windowed(job: dict[str, Any], start_ns: int, end_ns: int) -> dict[str, Any]:
        job = json.loads(json.dumps(job))
        # "within" names the whole selection, so a worker loads it once and cuts every window
        # from it (load_data) instead of reading the catalog again per window
        within = {"start_ns": job["data"].get("start_ns"), "end_ns": job["data"].get("end_ns")}
        job["data"] = {**job["data"], "start_ns": start_ns, "end_ns": end_ns, "within": within}
        return job

    in_sample = [
        windowed(apply_combination(base_job, combo), w.train_start_ns, w.train_end_ns)
        for w in windows
        for combo in combos
    ]
    first = run_jobs(function, in_sample, store, **run_options)
    winners = []
    for index, window in enumerate(windows):
        chunk = first.records[index * len(combos) : (index + 1) * len(combos)]
        check_some_ok(chunk, f"walk-forward window {index + 1} in sample")
        ranked = rank(results_frame(chunk, dimensions), rank_by, ascending=ascending)
        best = ranked.iloc[0]
        combo = {name: _plain(best[name]) for name in dimensions}
        winners.append((window, combo, best[rank_by], best["status"]))
    out_jobs = [
        windowed(apply_combination(base_job, combo), w.test_start_ns, w.test_end_ns)
        for w, combo, _, _ in winners
    ]
    second = run_jobs(function, out_jobs, store, **run_options)
    rows = []
    for (window, combo, in_value, status), record in zip(winners, second.records, strict=True):
        row: dict[str, Any] = {
            "train_start": pd.Timestamp(window.train_start_ns, unit="ns", tz="UTC"),
            "test_start": pd.Timestamp(window.test_start_ns, unit="ns", tz="UTC"),
            "test_end": pd.Timestamp(window.test_end_ns, unit="ns", tz="UTC"),
            **combo,
            f"is_{rank_by}": in_value if status == "ok" else float("nan"),
            "oos_status": record["status"],
        }
        row.update({f"oos_{k}": v for k, v in record["metrics"].items() if _is_scalar(v)})
        rows.append(row)
    return pd.DataFrame(rows), first.executed + second.executed


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float | str | bool) or value is None


# --------------------------------------------------------------------------- backtest jobs

_DATA_CACHE: dict[str, Any] = {}
_STRATEGY_CACHE: dict[str, type] = {}
_DATA_LOADS = 0


def load_strategy(reference: str) -> type:
    """The strategy class named by ``path/to/file.py[:Class]`` or ``package.module:Class``.

    A file with one Strategy subclass needs no class name.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        When the class is missing or ambiguous (naming the classes found).
    """
    if reference in _STRATEGY_CACHE:
        return _STRATEGY_CACHE[reference]
    if ".py:" in reference or (":" in reference and not Path(reference).exists()):
        target, _, class_name = reference.rpartition(":")
    else:
        target, class_name = reference, ""
    is_file = target.endswith(".py") or Path(target).exists()
    if is_file and not Path(target).is_file():
        raise FileNotFoundError(f"strategy: no such file {target!r}")
    from backtester.jit import JitStrategy
    from backtester.signal_module import signal_module_strategy
    from backtester.strategy import Strategy

    if is_file:
        path = Path(target)
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        name = f"_backtester_strategy_{path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"strategy: cannot import {str(path)!r} as a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as error:
            raise ValueError(
                f"strategy: cannot import module {target!r} ({error}); expected a .py file or "
                f"package.module:Class"
            ) from None
    found = {
        k: v
        for k, v in vars(module).items()
        if isinstance(v, type)
        and issubclass(v, (Strategy, JitStrategy))
        and v not in (Strategy, JitStrategy)
        and v.__module__ == module.__name__
    }
    signals = None if found or class_name else signal_module_strategy(module)
    if signals is not None:  # a signals module: signals(bars, **params) -> entries, exits
        found = {signals.__name__: signals}
    if class_name:
        if class_name not in found:
            raise ValueError(
                f"strategy: {reference!r} has no Strategy subclass {class_name!r}; "
                f"{suggestion(class_name, found)}"
            )
        cls = found[class_name]
    elif len(found) == 1:
        cls = next(iter(found.values()))
    else:
        what = ", ".join(sorted(found)) or "none"
        hint = (
            f"name one as {target}:ClassName"
            if found
            else "expected a Strategy or JitStrategy subclass, or a function "
            "signals(bars, **params) returning entries, exits (see backtester.signal_module)"
        )
        raise ValueError(
            f"strategy: {reference!r} defines {len(found)} Strategy subclasses ({what}); {hint}"
        )
    _STRATEGY_CACHE[reference] = cls
    return cls


def strategy_parameters(cls: type) -> dict[str, Any]:
    """Parameter names and defaults of a strategy class (``Strategy.parameters()``)."""
    return dict(cls.parameters())


def coerce_parameter(cls: type, name: str, value: Any) -> Any:
    """Convert ``value`` (often text) to the type of the strategy's class attribute ``name``.

    Raises
    ------
    ValueError
        For an unknown parameter (with a suggestion) or a value of the wrong type.
    """
    params = strategy_parameters(cls)
    if name not in params:
        raise ValueError(
            f"param: {cls.__name__} has no parameter {name!r}; "
            f"{suggestion(name, params) if params else 'it has no parameters'}"
        )
    default = params[name]
    kind = type(default)
    if isinstance(value, str):
        parsed = parse_scalar(value)
    else:
        parsed = value
    if kind is bool:
        if isinstance(parsed, bool):
            return parsed
    elif kind is int:
        if isinstance(parsed, int) and not isinstance(parsed, bool):
            return parsed
        if isinstance(parsed, float) and parsed.is_integer():
            return int(parsed)
    elif kind is float:
        if isinstance(parsed, int | float) and not isinstance(parsed, bool):
            return float(parsed)
    elif kind is str:
        return str(value)
    elif isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f"param {name}: expected JSON for a {kind.__name__} (default {default!r}), "
                f"got {value!r}"
            ) from None
    else:
        return value
    raise ValueError(f"param {name}: expected {kind.__name__} (default {default!r}), got {value!r}")


def load_data(selection: dict[str, Any]) -> Any:
    """The MarketData of a data selection, cached per process (a worker loads it once).

    ``selection``: ``{"source": "sample" | <catalog exchange>, "symbol", "start_ns",
    "end_ns", "interval_ns", "catalog"}`` (times may be ``None``). A walk-forward window also
    has ``"within": {"start_ns", "end_ns"}``, the span of the whole selection: that is loaded
    (once) and the window is cut from it with :func:`slice_market_data`, which keeps the same
    ``start_ns <= ts_ns < end_ns`` rule as the catalog.
    """
    global _DATA_LOADS
    key = json.dumps(selection, sort_keys=True)
    if key not in _DATA_CACHE:
        within = selection.get("within")
        if within is not None:
            whole = {k: v for k, v in selection.items() if k != "within"}
            whole.update(start_ns=within["start_ns"], end_ns=within["end_ns"])
            _DATA_CACHE[key] = slice_market_data(
                load_data(whole), selection.get("start_ns"), selection.get("end_ns")
            )
        else:
            _DATA_CACHE[key] = _load_data_uncached(selection)
            _DATA_LOADS += 1
    return _DATA_CACHE[key]


def _load_data_uncached(selection: dict[str, Any]) -> Any:
    from backtester.data.catalog import Catalog

    source = selection["source"]
    start_ns, end_ns = selection.get("start_ns"), selection.get("end_ns")
    with_trades = bool(selection.get("with_trades"))
    if source == "sample":
        from backtester.data import sample

        root = selection.get("catalog") or sample.SAMPLE_CATALOG
        if not Catalog(root).exists("bars", "sample", selection["symbol"], sample.BAR_INTERVAL_NS):
            # no committed copy: the generator gives identical arrays, cut here
            market = sample.load_sample(
                selection["symbol"], catalog_root=root, with_trades=with_trades
            )
            return slice_market_data(market, start_ns, end_ns)
    else:
        root = selection.get("catalog") or "data/catalog"
    return Catalog(root).load_market_data(
        source,
        selection["symbol"],
        start_ns,
        end_ns,
        bar_interval_ns=selection.get("interval_ns") or 0,
        with_trades=with_trades,
    )


def slice_market_data(market: Any, start_ns: int | None, end_ns: int | None) -> Any:
    """The part of a MarketData with ``start_ns <= ts_ns < end_ns`` in every stream."""
    from dataclasses import replace

    if start_ns is None and end_ns is None:
        return market
    lo = -(2**63) if start_ns is None else start_ns
    hi = 2**63 - 1 if end_ns is None else end_ns
    streams = {}
    for name in ("trades", "bars", "index", "mark", "funding"):
        array = getattr(market, name)
        streams[name] = array[(array["ts_ns"] >= lo) & (array["ts_ns"] < hi)]
    interval = market.bar_interval_ns if len(streams["bars"]) else 0
    return replace(market, **streams, bar_interval_ns=interval)


def preload_data(selection: dict[str, Any]) -> Callable[[], None]:
    """A picklable zero-argument callable that loads ``selection`` into the worker cache."""
    return _Preload(selection)


@dataclass(frozen=True)
class _Preload:
    selection: dict[str, Any]

    def __call__(self) -> None:
        load_data(self.selection)


def build_contract(job: dict[str, Any]) -> Any:
    """The ContractSpec of a job: ``contract`` name, optionally another ``profile``, fees.

    A ``profile`` selects the built-in contract ``<profile>:<symbol>`` when there is one, else
    the same instrument under that venue profile's rules.
    """
    from dataclasses import replace

    from backtester.swap import get_contract, get_profile, list_contracts

    contract = get_contract(job["contract"])
    profile = job.get("profile")
    if profile:
        same_instrument = f"{profile}:{contract.symbol}"
        if same_instrument in list_contracts():
            contract = get_contract(same_instrument)
        else:  # the venue's rules on this instrument (its own tiers and fees kept)
            contract = replace(contract, profile=get_profile(profile))
    maker, taker = job.get("maker_fee_rate"), job.get("taker_fee_rate")
    if maker is not None or taker is not None:
        contract = contract.with_fees(
            contract.maker_fee_rate if maker is None else float(maker),
            contract.taker_fee_rate if taker is None else float(taker),
        )
    return contract


def run_backtest_job(job: dict[str, Any]) -> Any:
    """Run one job and return the :class:`~backtester.results.Result`."""
    from backtester.engine.backtest import backtest
    from backtester.signal_module import SignalModule

    cls = load_strategy(job["strategy"])
    params = {name: coerce_parameter(cls, name, v) for name, v in (job.get("params") or {}).items()}
    run = cls.backtest if issubclass(cls, SignalModule) else partial(backtest, cls)
    return run(
        load_data(job["data"]),
        build_contract(job),
        initial_balance=float(job["initial_balance"]),
        leverage=float(job.get("leverage", 10.0)),
        margin_mode=str(job.get("margin_mode", "isolated")),
        params=params,
    )


def summarise_result(result: Any) -> dict[str, Any]:
    """Scalar metrics of a Result (``compute_metrics``: ``sharpe``, ``total_return``,
    ``max_drawdown``, ``liquidations``, ...) plus ``fill_count``."""
    from backtester.report.metrics import compute_metrics

    metrics: dict[str, Any] = {}
    for name, value in compute_metrics(result).items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, int | float | bool | str):
            metrics[name] = value
    metrics["fill_count"] = len(result.records["fills"])
    return metrics


def evaluate_backtest(job: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point: run one job, return its scalar metrics (and worker bookkeeping)."""
    metrics = summarise_result(run_backtest_job(job))
    metrics["worker_pid"] = os.getpid()
    metrics["worker_data_loads"] = _DATA_LOADS
    return metrics
