"""``backtester.numba_startup``: numba's registries load without importing ``scipy.linalg``
(~0.3 s of a run's start), and a jitted function that does use BLAS (``np.dot``) still
compiles and gives numpy's result — the deferred check hands BLAS back to numba."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys
import numpy as np
import backtester  # installs the hook
from numba import njit

@njit
def add(a, b):
    return a + b

add(1.0, 2.0)  # loads numba's typing registries, numba.np.arraymath among them
assert "numba.np.arraymath" in sys.modules, "the registries did not load"
print("scipy.linalg before BLAS:", "scipy.linalg" in sys.modules)

@njit
def dot(a, b):
    return np.dot(a, b)

a = np.arange(6.0).reshape(2, 3)
b = np.arange(12.0).reshape(3, 4)
assert np.array_equal(dot(a, b), a @ b)
print("scipy.linalg after BLAS:", "scipy.linalg" in sys.modules)
"""


@pytest.mark.slow  # a fresh interpreter: the hook acts only before numba loads its registries
def test_registries_load_without_scipy_and_blas_still_works(tmp_path: Path) -> None:
    pytest.importorskip("scipy", reason="without scipy numba never imports it: nothing to defer")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, timeout=600,
        env={"NUMBA_CACHE_DIR": str(tmp_path), "PATH": "", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "scipy.linalg before BLAS: False",
        "scipy.linalg after BLAS: True",
    ]
