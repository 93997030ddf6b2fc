"""Parameter sweeps: grid or random search, run on local processes or Dask, resumable.

One *job* is a JSON-serialisable dict that fully describes one backtest (strategy reference,
data selection, contract, leverage, margin mode, fees, strategy parameters). A sweep turns a
base job and a parameter space into many jobs, runs the missing ones and stores one small JSON
file per job as it finishes, so an interrupted sweep resumes where it stopped.

Execution
---------
* ``executor="local"`` (default): worker processes started with the ``spawn`` start method (no
  fork of a process holding numba/dask threads), each loading the market data once and running
  one job at a time. A combination whose worker dies (SIGKILL by the OOM killer) is retried
  once, then recorded as failed with the cause; workers end with the sweep's process.
* ``executor="dask"``: a ``distributed.LocalCluster(n_workers=N, threads_per_worker=1,
  processes=True)`` or an existing scheduler (``tcp://host:8786``); data is preloaded on every
  worker with ``client.run`` and also cached lazily in a module-level dict, so a worker that
  joins later loads it on its first job. Dask is imported only here, and only when used. A
  LocalCluster started here retries a task whose worker died once
  (``distributed.scheduler.allowed-failures`` = 1) and the combination is then recorded as
  failed (``KilledWorker``); on an existing scheduler its own setting applies. Per-task memory:
  each worker has ``memory_limit`` (LocalCluster's default: the machine's memory divided among
  the workers; the nanny restarts a worker above 95 % of it, which counts as a death).
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

import contextlib
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
import warnings
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


def job_key(job: dict[str, Any], identity: dict[str, Any] | None = None) -> str:
    """Stable 16-hex-digit key of a job: SHA-256 of its canonical JSON together with what its
    result depends on besides (the strategy's sources, the data files, the engine version:
    :func:`backtester.sweep_identity.job_identity`, computed when ``identity`` is None), so
    that an edited strategy or changed data is never answered with a stored result."""
    from backtester.sweep_identity import job_identity

    if identity is None:
        identity = job_identity(job)
    text = json.dumps([job, identity], sort_keys=True, separators=(",", ":"), default=str)
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
        """The stored record of one job (``ValueError`` naming the file if it is corrupt)."""
        return self._load(self.path(key))

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: corrupt stored sweep result ({error})") from None
        if not isinstance(record, dict) or "status" not in record:
            raise ValueError(f"{path}: corrupt stored sweep result (not a result record)")
        return record

    def usable(self, key: str) -> dict[str, Any] | None:
        """The stored record of a job, or None when there is none or it is corrupt.

        A corrupt file (truncated by a full disk, edited by hand) is named in a warning and
        the job counts as not run, so the sweep computes it again and replaces the file.
        """
        if not self.has(key):
            return None
        try:
            return self.get(key)
        except ValueError as error:
            warnings.warn(f"{error}; computing it again", stacklevel=3)
            return None

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
        """Every stored record, sorted by key; a corrupt file is skipped with a warning
        naming it (rerun the sweep to compute it again)."""
        out = []
        for path in sorted(self.results_dir.glob("*.json")):
            try:
                out.append(self._load(path))
            except ValueError as error:
                warnings.warn(f"{error}; skipped (rerun the sweep to compute it)", stacklevel=2)
        return out


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
        text = (
            str(outcome)
            if isinstance(outcome, JobError)
            else f"{type(outcome).__name__}: {outcome}"
        )
        message = text.splitlines()[0] if text else type(outcome).__name__
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
    from backtester.sweep_identity import IdentityCache

    identity = IdentityCache()  # the sources and files read once per (strategy, data)
    keys = [job_key(job, identity(job)) for job in jobs]
    missing: dict[str, dict[str, Any]] = {}
    for key, job in zip(keys, jobs, strict=True):
        if key in missing:
            continue
        stored = store.usable(key)
        if stored is not None and (not retry_errors or stored["status"] == "ok"):
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


class WorkerDied(RuntimeError):
    """The worker process running a combination died (killed by a signal or exited)."""


class JobError(RuntimeError):
    """A job raised in a worker process; the text is ``"<ExceptionType>: <message>"``."""


WORKER_ATTEMPTS = 2
"""Attempts of a combination whose worker process dies: the first death is retried once (a
worker killed by the OOM killer while another job used the memory may succeed alone), the
second is recorded as failed with the cause."""

_POLL_S = 0.5


def _death_cause(exitcode: int | None, last_rss: int) -> str:
    import signal

    if exitcode is not None and exitcode < 0:
        number = -exitcode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        what = f"killed by {name} ({number})"
        if number == signal.SIGKILL:
            what += ", as the out-of-memory killer does"
    else:
        what = f"exited with code {exitcode}"
    memory = f"; last seen using {last_rss / 2**20:,.0f} MiB" if last_rss else ""
    return f"worker process {what}{memory}"


def _rss_bytes(pid: int) -> int:
    """Resident memory of a live process (Linux /proc; 0 where unavailable)."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _die_with_parent() -> None:
    """Make this worker end when the sweep's process ends, however it ends (even SIGKILL)."""
    import signal
    import threading

    parent = os.getppid()
    try:  # Linux: the kernel sends SIGKILL to this process when its parent dies
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:  # elsewhere: notice the re-parenting within a poll interval
        import time

        while os.getppid() == parent:
            time.sleep(_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker_main(connection: Any, function: JobFunction, preload: Any) -> None:
    """Loop of one local worker process: run the jobs it is sent, send back the outcomes."""
    _die_with_parent()
    _run_preload(preload)
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        key, job = task
        outcome = _call(function, job)
        if isinstance(outcome, BaseException):  # its text: an exception may not pickle
            connection.send((key, "error", f"{type(outcome).__name__}: {outcome}"))
        else:
            connection.send((key, "ok", outcome))


def _execute_local(
    function: JobFunction,
    jobs: dict[str, dict[str, Any]],
    workers: int | None,
    preload: Callable[[], None] | None,
) -> Iterable[tuple[str, dict[str, Any] | BaseException]]:
    """Run the jobs on worker processes that the sweep watches one by one.

    Each worker runs one job at a time, so when a worker process dies (SIGKILL by the OOM
    killer, a crash in native code) the sweep knows which combination it was running: that
    combination is retried once on a fresh worker (:data:`WORKER_ATTEMPTS`), then recorded
    as failed with the cause (signal or exit code, last memory seen), and the sweep goes on
    with the others. Workers end with the sweep's process even when it is SIGKILLed
    (``PR_SET_PDEATHSIG`` on Linux, else a watcher thread), so none is left behind.
    """
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    count = min(workers or os.cpu_count() or 1, len(jobs))
    queue = list(jobs.items())[::-1]  # pop() takes the first job
    attempts: dict[str, int] = {}
    live: dict[Any, dict[str, Any]] = {}  # connection → {process, key, rss}

    def start() -> None:
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=_worker_main, args=(child_end, function, preload), daemon=True
        )
        process.start()
        child_end.close()
        live[parent_end] = {"process": process, "key": None, "rss": 0}

    def dispatch(connection: Any) -> None:
        worker = live[connection]
        if queue:
            key, job = queue.pop()
            attempts[key] = attempts.get(key, 0) + 1
            worker["key"], worker["rss"] = key, 0
            connection.send((key, job))
        else:
            worker["key"] = None

    try:
        for _ in range(count):
            start()
        for connection in list(live):
            dispatch(connection)
        while any(w["key"] is not None for w in live.values()):
            sentinels = {w["process"].sentinel: c for c, w in live.items()}
            ready = wait([*live, *sentinels], timeout=_POLL_S)
            for worker in live.values():
                if worker["key"] is not None:
                    worker["rss"] = max(worker["rss"], _rss_bytes(worker["process"].pid))
            for item in ready:
                connection = sentinels.get(item, item)
                if connection not in live:
                    continue
                worker = live[connection]
                key = worker["key"]
                message = None
                if item is connection:
                    try:
                        message = connection.recv()
                    except (EOFError, OSError):
                        message = None  # died while sending: handled as a death below
                if message is not None:
                    got_key, status, payload = message
                    yield got_key, payload if status == "ok" else JobError(payload)
                    dispatch(connection)
                    continue
                process = worker["process"]
                process.join(timeout=5)
                del live[connection]
                connection.close()
                if key is not None:
                    cause = _death_cause(process.exitcode, worker["rss"])
                    if attempts[key] < WORKER_ATTEMPTS:
                        queue.append((key, jobs[key]))  # retried next, on a fresh worker
                    else:
                        yield (
                            key,
                            WorkerDied(
                                f"{cause} while running this combination ({attempts[key]} attempts)"
                            ),
                        )
                if queue and len(live) < count:
                    start()
                    new = next(reversed(live))
                    dispatch(new)
    finally:
        for connection in live:
            with contextlib.suppress(OSError, BrokenPipeError):
                connection.send(None)
        for connection, worker in live.items():
            worker["process"].join(timeout=2)
            if worker["process"].is_alive():
                worker["process"].kill()
                worker["process"].join(timeout=5)
            connection.close()


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
        import dask

        # a task whose worker dies is retried once on another worker, then KilledWorker; one
        # task per worker thread at a time (worker-saturation 1), so a death is blamed on the
        # task that was running and not on tasks merely queued on that worker
        settings = {
            "distributed.scheduler.allowed-failures": WORKER_ATTEMPTS - 1,
            "distributed.scheduler.worker-saturation": 1.0,
        }
        with dask.config.set(settings):
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
        finished = distributed.as_completed(futures, with_results=True, raise_errors=False)
        for future, outcome in finished:
            if future.status == "error":  # raise_errors=False yields (type, exception, tb)
                outcome = outcome[1]
            if isinstance(outcome, distributed.KilledWorker):
                outcome = WorkerDied(  # the record names the cause in our words
                    "worker process died while running this combination, on every attempt "
                    f"the scheduler allowed (Dask KilledWorker: {str(outcome).splitlines()[0]})"
                )
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


RANK_METRICS = (
    "annual_volatility", "average_trade_settle", "cagr", "calmar", "clawback_adl_settle",
    "clawback_settle", "exposure", "fees_settle", "fill_count", "final_balance_settle",
    "final_equity_settle", "funding_paid_settle", "funding_received_settle",
    "initial_balance_settle", "insurance_fund_end_settle", "insurance_fund_start_settle",
    "liquidation_cost_settle", "liquidations", "max_drawdown", "max_drawdown_duration_days",
    "periods_per_year", "profit_factor", "sharpe", "sortino", "total_return", "trades",
    "turnover_contracts", "turnover_ratio", "turnover_settle", "uncovered_deficit_pending_settle",
    "win_rate", "worst_margin_ratio",
)  # fmt: skip
"""The numeric metrics of every run (:func:`summarise_result`); an inverse contract adds the
``*_usd`` twin of each money and return figure (a test checks both against real runs)."""


def check_rank_by(rank_by: str, dimensions: Sequence[str], inverse: bool) -> None:
    """Refuse an unknown ``--rank-by`` before the first run (``ValueError`` with a suggestion):
    a metric of :data:`RANK_METRICS`, its ``_usd`` twin on an inverse contract, or a swept
    numeric dimension."""
    known = [*RANK_METRICS, *dimensions]
    twins = {usd_twin(m): m for m in RANK_METRICS if usd_twin(m)}
    if inverse:
        known += list(twins)
    if rank_by in known:
        return
    if rank_by in twins:
        raise ValueError(
            f"rank-by: {rank_by!r} exists for inverse (coin-margined) contracts only; "
            f"use {twins[rank_by]!r}"
        )
    raise ValueError(f"rank-by: unknown metric {rank_by!r}; {suggestion(rank_by, known)}")


def usd_twin(metric: str) -> str | None:
    """The name of ``metric``'s USD value on an inverse contract (report.metrics: money
    figures ``*_settle`` -> ``*_usd``, the return block ``+ _usd``), None when it has none."""
    if metric.endswith("_settle"):
        return metric[: -len("_settle")] + "_usd"
    if metric in (
        "exposure", "fill_count", "liquidations", "periods_per_year", "profit_factor", "trades",
        "turnover_contracts", "turnover_ratio", "win_rate", "worst_margin_ratio",
    ):  # fmt: skip
        return None
    return metric + "_usd"


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
    dimensions: Sequence[str] | None = None,
    reports: dict[str, str] | None = None,
    plotly_js: str = "shared",
) -> Path:
    """The sweep page: :func:`backtester.report.sweep_page.write_sweep_page`.

    ``dimensions`` default to the ``heatmap`` parameters; ``reports`` maps result keys to run
    report paths relative to the page.
    """
    from backtester.report.sweep_page import write_sweep_page

    return write_sweep_page(
        frame, path, rank_by=rank_by, dimensions=list(dimensions or heatmap), heatmap=heatmap,
        title=title, liquidation_column=liquidation_column, reports=reports,
        plotly_js=plotly_js,
    )  # fmt: skip


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
    data = job.get("data") or {}
    if data.get("source") not in (None, "sample"):
        contract = with_catalog_tiers(
            contract, data.get("catalog") or "data/catalog", data["source"], data["symbol"]
        )
    maker, taker = job.get("maker_fee_rate"), job.get("taker_fee_rate")
    if maker is not None or taker is not None:
        contract = contract.with_fees(
            contract.maker_fee_rate if maker is None else float(maker),
            contract.taker_fee_rate if taker is None else float(taker),
        )
    return contract


def no_market_data_error(selection: dict[str, Any], advice: str) -> ValueError:
    """The one message for a start/end range that holds no market data, ``advice`` after it."""
    span = [
        pd.Timestamp(v, unit="ns", tz="UTC").isoformat() if v is not None else "open"
        for v in (selection.get("start_ns"), selection.get("end_ns"))
    ]
    return ValueError(
        f"start/end: no market data for {selection['source']}:{selection['symbol']} in "
        f"[{span[0]}, {span[1]}); {advice}"
    )


def check_job(job: dict[str, Any], data: Any) -> None:
    """Refuse a job whose settings or data range cannot run, before running it.

    The same checks the engine makes at its start (leverage in ``[1, max leverage of the
    contract's tier 1 at the data's start]``, margin mode, initial balance > 0), plus a data
    range holding at least one event; raises ``ValueError`` naming the setting, so the command
    line reports bad input (exit code 2) and not a failed run.
    """
    from backtester.checks import check_positive

    sel = job["data"]
    try:
        start_ns = data.start_ns
    except ValueError:
        raise no_market_data_error(
            sel,
            f"choose a range inside the stored data (backtester data {sel['source']} "
            f"{sel['symbol']})",
        ) from None
    check_positive(job["initial_balance"], "initial_balance")
    leverage = check_positive(job.get("leverage", 10.0), "leverage")
    mode = job.get("margin_mode", "isolated")
    if mode not in ("isolated", "cross"):
        raise ValueError(
            f"margin_mode: got {mode!r}; {suggestion(str(mode), ['isolated', 'cross'])}"
        )
    build_contract(job).check_leverage(leverage, at_ns=start_ns)  # the engine's one rule


def with_catalog_tiers(contract: Any, root: Any, exchange: str, symbol: str) -> Any:
    """``contract`` with the tier tables that ``backtester fetch`` stored in the catalog for
    ``exchange:symbol`` added to its dated schedule (a stored table replaces a built-in one of
    the same date; the run switches tables at their dates). Tables of another basis than the
    contract's are not used, with a warning naming them; so is every table that is used."""
    import warnings
    from dataclasses import replace

    from backtester.data.catalog import Catalog
    from backtester.enums import TierBasis
    from backtester.swap.tiers import TierSchedule, TierTable

    stored = Catalog(root).read_tiers(exchange, symbol)
    if not stored:
        return contract
    tables = {t.valid_from_ns: t for t in contract.tiers.tables}
    used, skipped = [], []
    for valid_from, basis, rows, source in stored:
        if basis != int(contract.tiers.basis):
            skipped.append(f"{pd.Timestamp(valid_from, tz='UTC')} ({TierBasis(basis).name})")
            continue
        tables[valid_from] = TierTable(TierBasis(basis), rows, valid_from, source)
        used.append(str(pd.Timestamp(valid_from, tz="UTC")))
    if skipped:
        warnings.warn(
            f"catalog tiers of {exchange}:{symbol} not used (basis differs from the contract's "
            f"{contract.tiers.basis.name}): {', '.join(skipped)}",
            stacklevel=2,
        )
    if not used:
        return contract
    warnings.warn(
        f"{contract.name}: tier tables from the catalog ({exchange}:{symbol}) valid from "
        f"{', '.join(used)} replace or extend the built-in schedule",
        stacklevel=2,
    )
    return replace(contract, tiers=TierSchedule(tuple(tables.values())))


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
    """Scalar metrics of a Result (``sharpe``, ``total_return``, ``max_drawdown``,
    ``liquidations``, ... as ``compute_metrics`` gives them) plus ``fill_count``.

    Computed from the record arrays by ``summary_metrics`` (no pandas table of the records:
    a sweep ranks thousands of runs); ``start``/``end`` as ``compute_metrics`` writes them."""
    from backtester.report.metrics import summary_metrics

    ts = result.records["equity"]["ts_ns"]
    texts = {  # placed as compute_metrics places them (after these keys)
        "settle_currency": {
            "start": str(pd.Timestamp(int(ts[0]), unit="ns", tz="UTC")) if len(ts) else "",
            "end": str(pd.Timestamp(int(ts[-1]), unit="ns", tz="UTC")) if len(ts) else "",
        },
        "periods_per_year": {"frequency": "1D"},
    }
    summary: dict[str, Any] = {}
    for name, value in summary_metrics(result).items():
        summary[name] = value
        summary.update(texts.get(name, {}))
    metrics: dict[str, Any] = {}
    for name, value in summary.items():
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
