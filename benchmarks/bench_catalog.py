"""Catalog read throughput and memory: full read vs streamed row groups.

Writes a synthetic trade set ten times larger than the chunk size into a temporary catalog,
then reports (median of several runs) rows/s read from the catalog into replay arrays for
``Catalog.read`` and ``Catalog.iter_chunks``, and the peak memory of one streamed pass vs one
full read. Peak memory is measured in a fresh subprocess per mode (``ru_maxrss`` growth after
imports, which counts Arrow's allocator too) and with ``tracemalloc`` (numpy allocations).
Prints figures only; no assertions.

Run: ``.venv/bin/python benchmarks/bench_catalog.py [--rows 2000000] [--chunk 200000]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from backtester import dtypes
from backtester.data import Catalog

EXCHANGE, SYMBOL = "bench", "BTC-USDT-SWAP"


def synthetic_trades(rows: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    trades = np.empty(rows, dtype=dtypes.TRADE_DTYPE)
    start = 1_672_531_200_000_000_000
    trades["ts_ns"] = start + np.cumsum(rng.integers(0, 200_000_000, rows))  # ~0.1 s apart
    trades["price"] = 20_000.0 * np.exp(np.cumsum(rng.normal(0, 1e-5, rows)))
    trades["qty_base"] = rng.exponential(0.05, rows) + 0.001
    trades["side"] = rng.choice(np.array([-1, 1], dtype=np.int8), rows)
    return trades


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(root: str, mode: str, chunk: int) -> None:
    """Child process: one pass, print peak RSS growth (MiB) and tracemalloc peak (MiB)."""
    cat = Catalog(root)
    cat.datasets()  # warm imports and caches before the baseline
    with open("/proc/self/clear_refs", "w") as handle:  # reset the peak-RSS mark (Linux)
        handle.write("5")
    base = _rss_kib("VmRSS")
    tracemalloc.start()
    total = 0.0
    if mode == "full":
        arr = cat.read("trades", EXCHANGE, SYMBOL)
        total = float(arr["qty_base"].sum())
    else:
        for part in cat.iter_chunks("trades", EXCHANGE, SYMBOL, chunk_rows=chunk):
            total += float(part["qty_base"].sum())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    grown = _rss_kib("VmHWM") - base
    print(f"{grown / 1024:.1f} {peak / 2**20:.1f} {total:.6f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--chunk", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--measure", nargs=2, metavar=("ROOT", "MODE"))
    args = parser.parse_args()
    if args.measure:
        measure(args.measure[0], args.measure[1], args.chunk)
        return
    with tempfile.TemporaryDirectory() as root:
        cat = Catalog(root)
        trades = synthetic_trades(args.rows)
        t0 = time.perf_counter()
        files = cat.write("trades", EXCHANGE, SYMBOL, trades, source="bench_catalog synthetic")
        write_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in files)
        print(
            f"data set: {args.rows:,} trades ({args.rows // args.chunk}x chunk of "
            f"{args.chunk:,}), {len(files)} daily files, {size / 2**20:.1f} MiB on disk; "
            f"write {args.rows / write_s:,.0f} rows/s"
        )
        full, streamed = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            arr = cat.read("trades", EXCHANGE, SYMBOL)
            full.append(time.perf_counter() - t0)
            assert len(arr) == args.rows
            del arr
            t0 = time.perf_counter()
            n = sum(
                len(c) for c in cat.iter_chunks("trades", EXCHANGE, SYMBOL, chunk_rows=args.chunk)
            )
            streamed.append(time.perf_counter() - t0)
            assert n == args.rows
        t_full, t_stream = statistics.median(full), statistics.median(streamed)
        print(f"read (full)     : median {t_full:.3f} s = {args.rows / t_full:,.0f} rows/s")
        print(f"iter_chunks     : median {t_stream:.3f} s = {args.rows / t_stream:,.0f} rows/s")
        mem = {}
        for mode in ("full", "stream"):
            out = subprocess.run(
                [sys.executable, __file__, "--chunk", str(args.chunk), "--measure", root, mode],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            mem[mode] = (float(out[0]), float(out[1]))
        records_mib = args.rows * dtypes.TRADE_DTYPE.itemsize / 2**20
        print(f"records in memory (all rows): {records_mib:.1f} MiB")
        for mode, (rss, traced) in mem.items():
            print(
                f"peak memory {mode:6s}: RSS growth {rss:.1f} MiB, "
                f"tracemalloc peak {traced:.1f} MiB"
            )
        print(f"ratio full/stream RSS growth: {mem['full'][0] / max(mem['stream'][0], 0.1):.1f}x")


if __name__ == "__main__":
    main()
