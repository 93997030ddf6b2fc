"""First-run time of `backtester run` in a fresh process: cold (empty numba cache: everything
compiles) and warm (the cache the cold run wrote), the overhead before the strategy's first
event, plus `backtester --help`.

Run: ``python benchmarks/bench_startup.py [--repeat 2]``. Each measurement is a new Python
process, as a user's command is; the numba cache lives in a temporary NUMBA_CACHE_DIR so the
cold run is really cold and the repository's cache is left alone.

"Before the first event" is the time from starting the command to the strategy's first
``on_bar`` (a strategy written to the temporary folder notes the time there and then runs like
``sma_cross.py``): imports, data loading and the load of the compiled replay from the cache.
Python's own bytecode cache is used as a user's install has it (``PYTHONDONTWRITEBYTECODE`` is
cleared for the measured runs); with scipy installed (the dev extras), numba imports
``scipy.linalg`` when it loads its registries, about 0.3 s that a plain install does not pay.
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

FIRST_EVENT = '''
import os, time
import sys
sys.path.insert(0, {strategies!r})
from sma_cross import SmaCross


class FirstEvent(SmaCross):
    """SmaCross that writes the wall time of its first bar to $BENCH_FIRST_EVENT_FILE."""

    def on_bar(self, ctx, bar):
        if not getattr(self, "_seen", False):
            self._seen = True
            with open(os.environ["BENCH_FIRST_EVENT_FILE"], "w") as out:
                out.write(repr(time.time()))
        super().on_bar(ctx, bar)
'''


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
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        out = Path(tmp) / "reports"
        run = [sys.executable, "-m", "backtester", "run", args.strategy, "--data", "sample",
               "--out", str(out)]  # fmt: skip
        help_seconds = timed([sys.executable, "-m", "backtester", "--help"], env, REPO)
        cold = timed(run, env, REPO)
        warm = statistics.median(timed(run, env, REPO) for _ in range(args.repeat))
        strategy = Path(tmp) / "first_event.py"
        strategy.write_text(FIRST_EVENT.format(strategies=str(REPO / "strategies")))
        marker = Path(tmp) / "first_event.txt"
        first = [sys.executable, "-m", "backtester", "run", str(strategy), "--data", "sample",
                 "--out", str(out)]  # fmt: skip
        before = []
        for _ in range(args.repeat):
            start = time.time()
            timed(first, {**env, "BENCH_FIRST_EVENT_FILE": str(marker)}, REPO)
            before.append(float(marker.read_text()) - start)
    print(f"backtester --help                     {help_seconds:8.2f} s")
    print(f"backtester run, cold cache            {cold:8.2f} s  (compiles every kernel)")
    print(f"backtester run, warm cache            {warm:8.2f} s  (median of {args.repeat})")
    print(
        f"warm run, start to the first on_bar   {statistics.median(before):8.2f} s  "
        f"(median of {args.repeat})"
    )


if __name__ == "__main__":
    main()
