"""Running a sweep's jobs: in this process, on local worker processes, or on Dask.

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
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from backtester.sweep.identity import IdentityCache
from backtester.sweep.store import SweepStore, job_key

JobFunction = Callable[[dict[str, Any]], dict[str, Any]]
Outcome = tuple[str, dict[str, Any] | BaseException]
"""A job's key and its metrics, or what it raised."""


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


def _record(
    key: str, job: dict[str, Any], outcome: dict[str, Any] | BaseException
) -> dict[str, Any]:
    """Return the stored record of one finished job: its metrics, or its error's first line."""
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


@dataclass
class _Worker:
    """One local worker process, the job it runs (None when idle) and its peak memory."""

    process: BaseProcess
    key: str | None = None
    rss: int = 0


class _LocalPool:
    """The worker processes of one local sweep, each sent one job at a time.

    ``queue`` holds the jobs not yet sent (``pop()`` takes the next one); ``attempts`` counts
    the sends of each job, so a job whose worker died is retried up to
    :data:`WORKER_ATTEMPTS` times.
    """

    def __init__(
        self,
        function: JobFunction,
        jobs: dict[str, dict[str, Any]],
        workers: int | None,
        preload: Callable[[], None] | None,
    ) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.function, self.jobs, self.preload = function, jobs, preload
        self.count = min(workers or os.cpu_count() or 1, len(jobs))
        self.queue = list(jobs.items())[::-1]
        self.attempts: dict[str, int] = {}
        self.live: dict[Connection, _Worker] = {}

    def start(self) -> None:
        """Start one worker process and send it the next job."""
        parent_end, child_end = self.context.Pipe()
        process = self.context.Process(
            target=_worker_main, args=(child_end, self.function, self.preload), daemon=True
        )
        process.start()
        child_end.close()
        self.live[parent_end] = _Worker(process)
        self.dispatch(parent_end)

    def dispatch(self, connection: Connection) -> None:
        """Send the next job to the worker at ``connection``, or mark it idle."""
        worker = self.live[connection]
        if not self.queue:
            worker.key = None
            return
        key, job = self.queue.pop()
        self.attempts[key] = self.attempts.get(key, 0) + 1
        worker.key, worker.rss = key, 0
        connection.send((key, job))

    def busy(self) -> bool:
        """Return whether a worker is running a job."""
        return any(w.key is not None for w in self.live.values())

    def poll(self) -> Iterator[Outcome]:
        """Wait up to one poll interval; yield the outcome of each job that ended meanwhile."""
        sentinels = {w.process.sentinel: c for c, w in self.live.items()}
        ready = wait([*self.live, *sentinels], timeout=_POLL_S)
        for worker in self.live.values():
            if worker.key is not None and worker.process.pid is not None:
                worker.rss = max(worker.rss, _rss_bytes(worker.process.pid))
        for item in ready:
            # a process sentinel (int) stands for its worker's pipe
            connection = sentinels.get(item) if isinstance(item, int) else item
            if isinstance(connection, Connection) and connection in self.live:
                yield from self._ready(connection, item is connection)

    def _ready(self, connection: Connection, readable: bool) -> Iterator[Outcome]:
        """Take the outcome a worker sent, or handle the death of its process."""
        message = None
        if readable:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                message = None  # died while sending: handled as a death below
        if message is not None:
            got_key, status, payload = message
            yield got_key, payload if status == "ok" else JobError(payload)
            self.dispatch(connection)
            return
        worker = self.live.pop(connection)
        worker.process.join(timeout=5)
        connection.close()
        if worker.key is not None:
            key = worker.key
            if self.attempts[key] < WORKER_ATTEMPTS:
                self.queue.append((key, self.jobs[key]))  # retried next, on a fresh worker
            else:
                cause = _death_cause(worker.process.exitcode, worker.rss)
                message = f"{cause} while running this combination ({self.attempts[key]} attempts)"
                yield key, WorkerDied(message)
        if self.queue and len(self.live) < self.count:
            self.start()

    def close(self) -> None:
        """Ask every worker to stop, then kill those still alive after 2 s."""
        for connection in self.live:
            with contextlib.suppress(OSError, BrokenPipeError):
                connection.send(None)
        for connection, worker in self.live.items():
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            connection.close()


def _execute_local(
    function: JobFunction,
    jobs: dict[str, dict[str, Any]],
    workers: int | None,
    preload: Callable[[], None] | None,
) -> Iterable[Outcome]:
    """Run the jobs on worker processes that the sweep watches one by one.

    Each worker runs one job at a time, so when a worker process dies (SIGKILL by the OOM
    killer, a crash in native code) the sweep knows which combination it was running: that
    combination is retried once on a fresh worker (:data:`WORKER_ATTEMPTS`), then recorded
    as failed with the cause (signal or exit code, last memory seen), and the sweep goes on
    with the others. Workers end with the sweep's process even when it is SIGKILLed
    (``PR_SET_PDEATHSIG`` on Linux, else a watcher thread), so none is left behind.
    """
    pool = _LocalPool(function, jobs, workers, preload)
    try:
        for _ in range(pool.count):
            pool.start()
        while pool.busy():
            yield from pool.poll()
    finally:
        pool.close()


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
