"""The compiled replay is cached once per installation and never written under the package.

Regression for issue 15: ``replay_gen_nb`` took the no-op callback dispatcher as an argument,
whose type names an object of the compiling process, so every process missed numba's on-disk
cache, recompiled the Python path's generator (~5 s) and appended another ~8 MB entry under
``backtester/engine/__pycache__``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import backtester

PACKAGE_DIR = Path(backtester.__file__).resolve().parent
REPO = PACKAGE_DIR.parent

RUN = """
from backtester.data.sample import load_sample
from backtester.engine.backtest import backtest
from backtester.strategy import Strategy


class Flip(Strategy):
    def on_bar(self, ctx, bar):
        if len(ctx.closes) % 50 == 0:
            ctx.market(1.0 if ctx.position <= 0 else -2.0)


data = load_sample("BTC-USD-SWAP", with_trades=False)
result = backtest(Flip, data, contract="okx:BTC-USD-SWAP", initial_balance=1.0, leverage=5)
print(len(result.fills))
"""


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _run() -> str:
    out = subprocess.run(
        [sys.executable, "-c", RUN],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.slow
def test_python_strategy_run_hits_the_cache_and_writes_nothing_under_the_package():
    # importing backtester set NUMBA_CACHE_DIR (the user cache, shared with this test process,
    # so a suite that already compiled leaves the first run little to do); the child inherits it
    cache_dir = Path(os.environ["NUMBA_CACHE_DIR"])
    assert PACKAGE_DIR not in cache_dir.parents
    package_before = {p for p in _snapshot(PACKAGE_DIR) if p.endswith((".nbi", ".nbc"))}

    fills_first = _run()  # warms the cache if this installation never ran the Python path
    cache_after_first = _snapshot(cache_dir)
    fills_second = _run()  # warm cache: must load, not compile or write
    cache_after_second = _snapshot(cache_dir)

    assert int(fills_first) > 0
    assert fills_second == fills_first
    assert any(name.endswith(".nbc") for name in cache_after_first)
    # a miss would add an entry (new .nbc, rewritten .nbi): nothing may change
    assert cache_after_second == cache_after_first
    package_after = {p for p in _snapshot(PACKAGE_DIR) if p.endswith((".nbi", ".nbc"))}
    assert package_after == package_before == set()


def test_the_cache_folder_is_keyed_by_every_source_file(tmp_path):
    # numba invalidates a cached function only when its own file changes; a kernel inlined from
    # another module would keep its old code, so the folder changes with any source file
    from backtester import _source_key

    package = tmp_path / "pkg"
    (package / "engine").mkdir(parents=True)
    (package / "engine" / "loop_nb.py").write_text("def loop(): return kernel()\n")
    (package / "account_nb.py").write_text("def kernel(): return 1\n")
    (package / "engine" / "__pycache__").mkdir()
    first = _source_key(str(package))
    assert len(first) == 16
    (package / "engine" / "__pycache__" / "x.nbi").write_bytes(b"cache files do not count")
    assert _source_key(str(package)) == first
    (package / "account_nb.py").write_text("def kernel(): return 2\n")  # only the callee
    second = _source_key(str(package))
    assert second != first
    (package / "account_nb.py").write_text("def kernel(): return 1\n")
    assert _source_key(str(package)) == first  # the content, not the file's time
    # this process's cache folder is <base>/<key of the installed sources>
    cache_dir = Path(os.environ["NUMBA_CACHE_DIR"])
    assert cache_dir.name == _source_key(str(PACKAGE_DIR))
