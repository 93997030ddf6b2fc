"""Time the first run of `backtester run` in a fresh process, and its start to the first event.

Cold (empty numba cache: everything compiles) and warm (the cache the cold run wrote), the
overhead before the strategy's first event (wall time, and the process's CPU time then, which
other jobs on a shared machine do not inflate), plus `backtester --help`.

Run: ``python benchmarks/bench_startup.py [--repeat 2] [--no-cold]``. Each measurement is a
new Python process, as a user's command is; the numba cache lives in a temporary
NUMBA_CACHE_DIR so the cold run is really cold and the repository's cache is left alone.

"Before the first event" is the time from starting the command to the strategy's first
``on_bar`` (a strategy written to the temporary folder notes the time there and then runs like
``sma_cross.py``): imports, data loading and the load of the compiled replay from the cache.
Python's own bytecode cache is used as a user's install has it (``PYTHONDONTWRITEBYTECODE`` is
cleared for the measured runs). With scipy installed (the dev extras), numba used to import
``scipy.linalg`` when it loaded its registries, ~0.3 s; ``backtester.numba_startup`` defers it.
With ``--no-cold`` the warm runs use the user's numba cache (compiled once if needed) instead of
a temporary one, and no cold run is timed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FIRST_EVENT = '''
import os, time
import sys
sys.path.insert(0, {strategies!r})
from sma_cross import SmaCross


class FirstEvent(SmaCross):
    """SmaCross that writes the wall and CPU times of its first bar to $BENCH_FIRST_EVENT_FILE."""

    def on_bar(self, ctx, bar):
        if not getattr(self, "_seen", False):
            self._seen = True
            with open(os.environ["BENCH_FIRST_EVENT_FILE"], "w") as out:
                out.write(repr(time.time()) + " " + repr(time.process_time()))
        super().on_bar(ctx, bar)
'''


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """Return the wall time of one command in a fresh process (SystemExit if it fails)."""
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    """Time the runs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2, help="warm runs (median)")
    parser.add_argument(
        "--repo", type=Path, default=REPO,
        help="the checkout to time (default: this one), e.g. another worktree as the baseline",
    )  # fmt: skip
    parser.add_argument("--strategy", default=None, help="default: the repo's sma_cross.py")
    parser.add_argument(
        "--no-cold", action="store_true",
        help="skip the cold run (minutes on a loaded machine); warm runs use the user's cache",
    )  # fmt: skip
    args = parser.parse_args()
    repo = args.repo.resolve()
    strategy_file = args.strategy or str(repo / "strategies" / "sma_cross.py")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        if not args.no_cold:
            env["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        out = Path(tmp) / "reports"
        run = [sys.executable, "-m", "backtester", "run", strategy_file, "--data", "sample",
               "--out", str(out)]  # fmt: skip
        help_seconds = timed([sys.executable, "-m", "backtester", "--help"], env, repo)
        # with --no-cold, one untimed run fills the user's cache if this version never ran
        cold = timed(run, env, repo)
        if args.no_cold:
            cold = math.nan
        warm = statistics.median(timed(run, env, repo) for _ in range(args.repeat))
        strategy = Path(tmp) / "first_event.py"
        strategy.write_text(FIRST_EVENT.format(strategies=str(repo / "strategies")))
        marker = Path(tmp) / "first_event.txt"
        first = [sys.executable, "-m", "backtester", "run", str(strategy), "--data", "sample",
                 "--out", str(out)]  # fmt: skip
        before, before_cpu = [], []
        for _ in range(args.repeat):
            start = time.time()
            timed(first, {**env, "BENCH_FIRST_EVENT_FILE": str(marker)}, repo)
            wall_at, cpu_at = (float(v) for v in marker.read_text().split())
            before.append(wall_at - start)
            before_cpu.append(cpu_at)
    print(f"backtester --help                     {help_seconds:8.2f} s")
    print(f"backtester run, cold cache            {cold:8.2f} s  (compiles every kernel)")
    print(f"backtester run, warm cache            {warm:8.2f} s  (median of {args.repeat})")
    print(
        f"warm run, start to the first on_bar   {statistics.median(before):8.2f} s  "
        f"(median of {args.repeat}; process CPU time then "
        f"{statistics.median(before_cpu):.2f} s)"
    )


if __name__ == "__main__":
    main()
