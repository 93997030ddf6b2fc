"""Child process of the catalog fault tests (run as a script, never imported by pytest).

Usage::

    python catalog_child.py import ROOT SEED ROWS       # write ROWS bars (one transaction)
    python catalog_child.py count ROOT                  # print how many fsync/replace calls
                                                        # a 6-month write makes
    python catalog_child.py kill ROOT N                 # the 6-month write, SIGKILLed at the
                                                        # N-th fsync/replace call
    python catalog_child.py hold ROOT DIR               # the 6-month write inside a
                                                        # transaction held open until DIR/go

The kill is a real ``SIGKILL`` of this process at a file-system call of the real catalog code:
``os.fsync`` and ``os.replace`` are wrapped so that the N-th call kills the process first.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

from backtester import dtypes
from backtester.data import Catalog

MINUTE = 60_000_000_000
T0 = 1_672_531_200_000_000_000  # 2023-01-01
STEP = 6 * 60 * MINUTE  # 6-hour bars: 6 months = 730 rows over 6 files


def six_months() -> np.ndarray:
    n = 730
    bars = np.zeros(n, dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n, dtype=np.int64) * STEP
    bars["open"] = bars["close"] = 100.0 + np.arange(n)
    bars["high"] = bars["open"] + 1
    bars["low"] = bars["open"] - 1
    bars["volume_base"] = 1.0
    return bars


def interleaved(seed: int, rows: int) -> np.ndarray:
    """Bars of January 2023 in blocks of 10 minutes, even blocks for seed 0 and odd blocks for
    seed 1: two seeds never share a timestamp (and each has consecutive minutes)."""
    bars = np.zeros(rows, dtype=dtypes.BAR_DTYPE)
    i = np.arange(rows, dtype=np.int64)
    bars["ts_ns"] = T0 + ((i // 10) * 20 + seed * 10 + i % 10) * MINUTE
    bars["open"] = bars["close"] = 100.0 + seed
    bars["high"] = bars["open"] + 1
    bars["low"] = bars["open"] - 1
    return bars


def main() -> None:
    mode, root = sys.argv[1], sys.argv[2]
    catalog = Catalog(root)
    if mode == "import":
        seed, rows = int(sys.argv[3]), int(sys.argv[4])
        bars = interleaved(seed, rows)
        # several small writes, as an importer of many files would do
        for part in np.array_split(bars, 10):
            catalog.write("bars", "x", "S", part, source=f"writer {seed}", interval_ns=MINUTE)
        return
    if mode == "hold":  # stage the six months, then wait inside the transaction for "go"
        folder = sys.argv[3]
        with catalog.transaction():
            catalog.write("bars", "x", "S", six_months(), source="held", interval_ns=STEP)
            open(os.path.join(folder, "ready"), "w").close()
            for _ in range(1200):
                if os.path.exists(os.path.join(folder, "go")):
                    break
                time.sleep(0.1)
        return
    calls = {"n": 0}
    kill_at = int(sys.argv[3]) if mode == "kill" else -1

    def wrap(function):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)

        return wrapped

    os.fsync = wrap(os.fsync)
    os.replace = wrap(os.replace)
    catalog.write("bars", "x", "S", six_months(), source="six months", interval_ns=STEP)
    if mode == "count":
        print(calls["n"])


if __name__ == "__main__":
    main()
