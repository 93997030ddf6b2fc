"""The progress line of ``backtester run``: what the command is doing, on stderr.

A run that lasts more than a second shows one line, rewritten in place about ten times a
second: a spinner and the phase — ``loading data``, ``starting the replay (compiling on a
first run)``, ``replaying 2024-01-05 13:00 UTC  45%`` (the simulated time of the replay and
the share of the data's span it has reached), ``writing the report``. The line is erased when
the command ends, so the summary printed after it stays clean.

The replay is read, not driven: a daemon thread polls the simulated time (``ts_ns``) of the
run most recently started in the process (:func:`backtester.engine.driver.latest_run`), so the
engine pays nothing for it. The numba loop holds the interpreter lock while it runs; the
Python path hands it back at every bar or trade it calls the strategy for, and the compiler
runs Python code, so the line keeps moving in both. A replay that stays inside numba — a
signal run, a JitStrategy — shows its last state until it returns (known limitation: a long
tick replay of a jitted strategy shows "starting the replay" throughout; releasing the lock
would need ``nogil`` on the loop).

Shown only when stderr is a terminal (a log file gets no carriage returns), unless
``BACKTESTER_PROGRESS=1`` forces it, from the start (``0`` turns it off).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

__all__ = ["RunProgress", "line_erased", "progress_wanted"]

_SPINNER = "|/-\\"
_ACTIVE: list[RunProgress] = []  # the line being drawn in this process, if any


@contextmanager
def line_erased() -> Iterator[None]:
    """Erase the progress line, if one is drawn, and hold it off while the block prints.

    The message then starts at column 0; the next redraw draws the line below it.
    """
    held = list(_ACTIVE)
    for progress in held:
        progress._lock.acquire()
    try:
        for progress in held:
            if progress._shown:
                progress.stream.write("\r\x1b[K")
                progress.stream.flush()
                progress._shown = False
        yield
    finally:
        for progress in held:
            progress._lock.release()


def progress_wanted(stream: TextIO | None = None) -> bool:
    """Tell whether to show progress on ``stream`` (stderr by default).

    ``BACKTESTER_PROGRESS`` "1"/"0" decides when set, else whether the stream is a terminal.
    """
    forced = os.environ.get("BACKTESTER_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    target = sys.stderr if stream is None else stream
    return bool(getattr(target, "isatty", lambda: False)())


class RunProgress:
    """The progress line of one command (a context manager).

    Parameters
    ----------
    start_ns, end_ns
        The data's span (int ns UTC): the replay's share is ``(ts - start) / (end - start)``.
    stream
        Where the line goes (stderr).
    delay_s
        Nothing is shown before this many seconds (a fast command prints no progress).
    interval_s
        Time between two redraws.
    enabled
        False: a no-op (no thread).
    """

    def __init__(
        self,
        start_ns: int,
        end_ns: int,
        *,
        stream: TextIO | None = None,
        delay_s: float = 1.0,
        interval_s: float = 0.1,
        enabled: bool = True,
    ) -> None:
        self.start_ns = int(start_ns)
        self.end_ns = int(end_ns)
        self.stream = sys.stderr if stream is None else stream
        self.delay_s = delay_s
        self.interval_s = interval_s
        self.enabled = enabled
        if enabled and os.environ.get("BACKTESTER_PROGRESS", "").strip() == "1":
            self.delay_s = 0.0  # forced: from the start
        self._phase = "loading data"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False
        self._frame = 0
        self._lock = threading.Lock()  # one writer of the line at a time

    def phase(self, text: str) -> None:
        """Set what the command does now (``"replay"`` shows the replay's simulated time)."""
        self._phase = text

    def line(self) -> str:
        """Return the text of the line now, without the spinner."""
        if self._phase != "replay":
            return self._phase
        from backtester.engine.driver import latest_run

        run = latest_run()
        ts = int(run.account[0]["ts_ns"]) if run is not None else 0
        if ts <= 0:  # the Run exists, no event replayed yet: compiling or loading the cache
            return "starting the replay (compiling on a first run)"
        when = datetime.fromtimestamp(ts / 1e9, UTC).strftime("%Y-%m-%d %H:%M UTC")
        span = max(1, self.end_ns - self.start_ns)
        share = min(1.0, max(0.0, (ts - self.start_ns) / span))
        return f"replaying {when} {share:4.0%}"

    def draw(self) -> None:
        """Write the line once (the thread calls it every ``interval_s``)."""
        char = _SPINNER[self._frame % len(_SPINNER)]
        self._frame += 1
        text = f"\r{char} {self.line()}\x1b[K"
        with self._lock:
            self.stream.write(text)
            self.stream.flush()
            self._shown = True

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self.interval_s):
            if time.monotonic() - started >= self.delay_s:
                self.draw()

    def __enter__(self) -> RunProgress:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
            self._thread.start()
            _ACTIVE.append(self)
        return self

    def close(self) -> None:
        """Stop the redraws and erase the line (what is printed next starts at column 0)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
