"""ccxt and dask are extras: without them the command says which extra to install (and the
README's first command, a run on the sample, needs neither)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each test runs Python in a subprocess

BLOCK = "import sys\nfor name in {names!r}: sys.modules[name] = None  # as if not installed\n"


def run_without(names: list[str], body: str) -> subprocess.CompletedProcess[str]:
    code = BLOCK.format(names=names) + body
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


def test_fetch_without_ccxt_names_the_fetch_extra():
    done = run_without(
        ["ccxt"],
        "from backtester.cli import main\nsys.exit(main(['fetch', 'okx', 'BTC-USDT-SWAP']))",
    )
    assert done.returncode == 2, done.stderr
    assert "backtester fetch needs ccxt, which is not installed" in done.stderr
    assert 'pip install "perpetual-swap-backtester[fetch]"' in done.stderr


def test_dask_executor_without_distributed_names_the_dask_extra():
    body = (
        "from backtester.sweep.executors import _execute_dask\n"
        "try:\n"
        "    list(_execute_dask(print, {}, 1, None, None))\n"
        "except ImportError as error:\n"
        "    print('ERROR', error)\n"
    )
    done = run_without(["dask", "distributed"], body)
    assert done.returncode == 0, done.stderr
    assert "needs distributed, which is not installed" in done.stdout
    assert 'pip install "perpetual-swap-backtester[dask]"' in done.stdout


def test_a_run_on_the_sample_needs_neither(tmp_path):
    body = (
        "from backtester.cli import main\n"
        f"code = main(['run', {str(tmp_path / 's.py')!r}, '--data', 'sample', "
        f"'--out', {str(tmp_path / 'out')!r}])\n"
        "assert 'ccxt' not in sys.modules or sys.modules['ccxt'] is None\n"
        "sys.exit(code)\n"
    )
    (tmp_path / "s.py").write_text(
        "from backtester import Strategy\n\nclass Idle(Strategy):\n"
        "    def on_bar(self, ctx, bar):\n        pass\n"
    )
    done = run_without(["ccxt", "dask", "distributed"], body)
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout
