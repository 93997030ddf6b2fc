"""First-run time of `backtester run` in a fresh process: cold (empty numba cache: everything
compiles) and warm (the cache the cold run wrote), plus `backtester --help`.

Run: ``python benchmarks/bench_startup.py [--repeat 2]``. Each measurement is a new Python
process, as a user's command is; the numba cache lives in a temporary NUMBA_CACHE_DIR so the
cold run is really cold and the repository's cache is left alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2, help="warm runs (median)")
    parser.add_argument("--strategy", default=str(REPO / "strategies" / "sma_cross.py"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba")}
        out = Path(tmp) / "reports"
        run = [sys.executable, "-m", "backtester", "run", args.strategy, "--data", "sample",
               "--out", str(out)]  # fmt: skip
        help_seconds = timed([sys.executable, "-m", "backtester", "--help"], env, REPO)
        cold = timed(run, env, REPO)
        warm = statistics.median(timed(run, env, REPO) for _ in range(args.repeat))
    print(f"backtester --help           {help_seconds:8.2f} s")
    print(f"backtester run, cold cache  {cold:8.2f} s  (compiles every kernel)")
    print(f"backtester run, warm cache  {warm:8.2f} s  (median of {args.repeat})")


if __name__ == "__main__":
    main()
