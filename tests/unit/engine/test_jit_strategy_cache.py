"""Jitted strategies are compiled once per source: a second process loads the replay with
their callbacks from numba's cache (issue 15: every process recompiled it, seconds per run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backtester

PACKAGE_DIR = Path(backtester.__file__).resolve().parent
REPO = PACKAGE_DIR.parent

STRATEGY = """
import numpy as np
from numba import njit
from backtester.jit import JitStrategy, market, position, trade


@njit
def on_trade(ctx, state, i, row):
    price = trade(ctx, row).price
    if state[0] == 0.0:
        state[0] = price
    state[0] += 0.01 * (price - state[0])
    q = position(ctx, i)
    if price > state[0] * THRESHOLD and q <= 0:
        market(ctx, i, 1.0 - q)
    elif price < state[0] / THRESHOLD and q >= 0:
        market(ctx, i, -1.0 - q)


class TickEma(JitStrategy):
    on_trade = on_trade

    def make_state(self):
        return np.zeros(1)
"""

RUN = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from backtester import dtypes
from backtester.data.market import MarketData
from backtester.engine.backtest import backtest
import backtester.engine.jit_replay as jit_replay
from tickstrategy import TickEma

rng = np.random.default_rng(3)
trades = np.zeros(5_000, dtypes.TRADE_DTYPE)
trades["ts_ns"] = 1_700_000_000_000_000_000 + np.arange(5_000) * 1_000_000_000
trades["price"] = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, 5_000))), 1)
trades["qty_base"] = 0.01
data = MarketData("BTC-USDT-SWAP", trades=trades)
result = backtest(TickEma, data, "okx:BTC-USDT-SWAP", initial_balance=1e5, leverage=5)
(kernel,) = jit_replay._KERNELS.values()
print(json.dumps({
    "fills": len(result.fills),
    "prices": result.fills["price"].tolist(),
    "hits": sum(kernel.stats.cache_hits.values()),
    "misses": sum(kernel.stats.cache_misses.values()),
    "module": kernel.py_func.__module__,
}))
"""


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _run(folder: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", RUN, str(folder)],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_second_process_loads_the_compiled_strategy(tmp_path):
    folder = tmp_path / "strategy"
    folder.mkdir()
    (folder / "tickstrategy.py").write_text("THRESHOLD = 1.002\n" + STRATEGY)
    package_before = _snapshot(PACKAGE_DIR)

    first = _run(folder)  # compiles, unless an earlier session cached this very source
    second = _run(folder)
    assert first["fills"] > 0
    assert second["fills"] == first["fills"]
    assert second["prices"] == first["prices"]
    assert second["module"] == first["module"]
    assert first["hits"] + first["misses"] == 1
    assert second["hits"] == 1  # loaded from the cache: no compilation
    assert second["misses"] == 0

    # another source (another threshold) is another kernel, with its own trades
    (folder / "tickstrategy.py").write_text("THRESHOLD = 1.004\n" + STRATEGY)
    edited = _run(folder)
    assert edited["module"] != first["module"]
    assert edited["fills"] < first["fills"]  # a wider band trades less
    # nothing of it under the package: the generated module and its cache live in the
    # numba cache folder
    assert _snapshot(PACKAGE_DIR) == package_before


@pytest.mark.filterwarnings("ignore::backtester.checks.RunDataWarning")  # funding computed
def test_cached_kernel_replays_like_the_uncached_loop(tmp_path):
    """The generated, cached kernel (callbacks inlined) gives the records of the general
    jitted loop with the callbacks as arguments (the path of callbacks without a file)."""
    import backtester.engine.jit_replay as jit_replay
    from backtester import dtypes
    from backtester.data.market import MarketData
    from backtester.engine import driver
    from backtester.engine.backtest import backtest

    folder = tmp_path / "strategy"
    folder.mkdir()
    (folder / "tickstrategy_same.py").write_text("THRESHOLD = 1.002\n" + STRATEGY)
    sys.path.insert(0, str(folder))
    try:
        from tickstrategy_same import TickEma
    finally:
        sys.path.remove(str(folder))
    rng = np.random.default_rng(5)
    trades = np.zeros(3_000, dtypes.TRADE_DTYPE)
    trades["ts_ns"] = 1_700_000_000_000_000_000 + np.arange(3_000) * 1_000_000_000
    trades["price"] = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, 3_000))), 1)
    trades["qty_base"] = 0.01
    data = MarketData("BTC-USDT-SWAP", trades=trades)

    cached = backtest(TickEma, data, "okx:BTC-USDT-SWAP", initial_balance=1e5, leverage=5)
    original = driver.__dict__.get("cached_replay_kernel")

    saved = jit_replay.cached_replay_kernel
    jit_replay.cached_replay_kernel = lambda callbacks: None  # force the uncached loop
    try:
        uncached = backtest(TickEma, data, "okx:BTC-USDT-SWAP", initial_balance=1e5, leverage=5)
    finally:
        jit_replay.cached_replay_kernel = saved
    assert original is None  # the engine looks it up at run time (the patch above applies)
    assert len(cached.fills) > 10
    for kind in ("fills", "ledger", "equity", "orders"):
        ours, theirs = cached.records[kind], uncached.records[kind]
        assert len(ours) == len(theirs), kind
        for field in ours.dtype.names:  # field by field: NaN equals NaN there
            np.testing.assert_array_equal(ours[field], theirs[field], err_msg=f"{kind}.{field}")
