"""`backtester --help` and `python -m backtester` start without the heavy imports (numba,
pandas, the engine): what makes the answer come back in well under a second. Checked by what
is imported, never by timing."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # fresh interpreters in subprocesses

PROBE = """
import sys
from backtester.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
heavy = sorted(m for m in ("numba", "numpy", "pandas", "pyarrow",
                           "backtester.engine.backtest", "ccxt", "dask") if m in sys.modules)
print("HEAVY", heavy)
"""


def test_help_imports_nothing_heavy():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert "run        backtest one strategy" in done.stdout


def test_python_dash_m_backtester_is_the_command():
    done = subprocess.run([sys.executable, "-m", "backtester", "profiles", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage: backtester profiles" in done.stdout


def test_the_public_names_still_import_from_the_package():
    import backtester

    assert backtester.Strategy.__name__ == "Strategy"
    assert callable(backtester.backtest)
    assert "backtest_signals" in dir(backtester)
