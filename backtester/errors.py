"""Errors raised inside a strategy, pointed at the strategy's code and the replay time."""

from __future__ import annotations

import sys
import sysconfig
import traceback
from pathlib import Path
from types import TracebackType

import pandas as pd

__all__ = ["StrategyError", "strategy_error"]

_PACKAGE = Path(__file__).resolve().parent
_LIBRARIES = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_path("stdlib"), sysconfig.get_path("purelib"), sys.prefix}
    if p
)


class StrategyError(Exception):
    """An exception from a strategy callback, with where (file, line) and when it happened.

    When is the replay time; the original exception is its ``__cause__``.

    The raised object is also an instance of the original exception's class where Python
    allows it (``except ValueError`` still catches a ValueError from the strategy).
    """

    def __init__(self, message: str, filename: str, lineno: int, time_ns: int) -> None:
        super().__init__(message)
        self.filename = filename
        self.lineno = lineno
        self.time_ns = time_ns

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_SUBCLASSES: dict[type, type[StrategyError]] = {}


def _error_class(base: type[BaseException]) -> type[StrategyError]:
    """StrategyError that is also a ``base`` (plain StrategyError when they cannot mix)."""
    if base not in _SUBCLASSES:
        try:
            _SUBCLASSES[base] = type("StrategyError", (StrategyError, base), {})
        except TypeError:  # incompatible instance layouts (e.g. OSError)
            _SUBCLASSES[base] = StrategyError
    return _SUBCLASSES[base]


def _user_frame(tb: TracebackType | None) -> traceback.FrameSummary | None:
    """Return the innermost frame outside this package and the installed libraries."""
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        path = str(Path(frame.filename).resolve())
        if path.startswith(str(_PACKAGE)) or path.startswith(_LIBRARIES):
            continue
        return frame
    return None


def strategy_error(error: BaseException, time_ns: int, name: str) -> StrategyError | None:
    """Return the :class:`StrategyError` for ``error`` raised by strategy ``name`` at ``time_ns``.

    ``time_ns`` is the replay time. None when no frame of the traceback is the user's code (an
    error of the engine itself is left as it is).
    """
    frame = _user_frame(error.__traceback__)
    if frame is None:
        return None
    when = (
        pd.Timestamp(int(time_ns), unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
        if time_ns > 0
        else "before the first event"
    )
    detail = str(error).strip().splitlines()
    message = (
        f"{name}.{frame.name} raised {type(error).__name__}"
        + (f": {detail[0]}" if detail else "")
        + f" at {frame.filename}:{frame.lineno} (replay time {when})"
        + (f": {frame.line}" if frame.line else "")
    )
    cls = _error_class(type(error))
    try:
        return cls(message, frame.filename, frame.lineno or 0, int(time_ns))
    except TypeError:
        return StrategyError(message, frame.filename, frame.lineno or 0, int(time_ns))
