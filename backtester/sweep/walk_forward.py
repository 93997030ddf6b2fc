"""Walk-forward: in-sample / out-of-sample windows, the in-sample winner run out of sample.

:func:`walk_forward_windows` cuts the data span into consecutive in-sample/out-of-sample windows
(``train=60d,test=20d``, stepping by the test length); :func:`run_walk_forward` runs the grid on
each in-sample window, picks the winner by the ranking metric and reports that winner's
out-of-sample result. Each out-of-sample run starts flat and cold (indicators warm up inside the
test window).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from backtester.sweep.executors import JobFunction, run_jobs
from backtester.sweep.grid import apply_combination
from backtester.sweep.ranking import check_some_ok, rank_records, record_row
from backtester.sweep.store import SweepStore

_DAY_NS = 86_400_000_000_000
_DURATION_UNITS = {"d": _DAY_NS, "h": 3_600_000_000_000, "m": 60_000_000_000, "w": 7 * _DAY_NS}


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
        best = record_row(
            rank_records(chunk, rank_by, dimensions, ascending=ascending)[0], dimensions
        )
        combo = {name: best[name] for name in dimensions}
        winners.append((window, combo, best.get(rank_by), best["status"]))
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


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float | str | bool) or value is None
