"""Kernel modules (``backtester/**/*_nb.py``) import only numpy, numba, the schema modules and
other kernel modules (DESIGN.md "Decisions"; STYLE.md C1/C2), so they stay jit-compilable and
free of Python-object dependencies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "backtester"
# typing / collections.abc: annotations of the typed kernels only (``Any`` for the EngineState
# StructRef, ``Iterator`` for the replay generator), no object enters compiled code
ALLOWED_TOP = {"numpy", "numba", "math", "__future__", "typing", "collections"}
ALLOWED_MODULES = {"backtester.dtypes", "backtester.enums"}
KERNEL_FILES = sorted(PACKAGE.rglob("*_nb.py"))


def is_allowed(module: str) -> bool:
    """Whether a kernel module may import ``module``."""
    if module.split(".")[0] in ALLOWED_TOP or module in ALLOWED_MODULES:
        return True
    return module.startswith("backtester.") and module.rsplit(".", 1)[-1].endswith("_nb")


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, as if it lived in ``package``.

    Relative imports are resolved; ``from <package> import name`` counts as importing the
    submodule ``<package>.name`` (importing a package runs its non-kernel ``__init__``).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            if (REPO / base.replace(".", "/")).is_dir():
                found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, base))
    return found


def test_kernel_modules_found() -> None:
    names = {p.name for p in KERNEL_FILES}
    assert {"pnl_nb.py", "margin_nb.py", "liquidation_nb.py", "tier_nb.py"} <= names


@pytest.mark.parametrize(
    "path", KERNEL_FILES, ids=[p.relative_to(PACKAGE).as_posix() for p in KERNEL_FILES]
)
def test_kernel_imports_only_allowed_modules(path: Path) -> None:
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    imports = imported_modules(path.read_text(encoding="utf-8"), package)
    bad = [f"line {line}: {mod}" for line, mod in imports if not is_allowed(mod)]
    assert bad == [], f"{path.relative_to(REPO)} imports non-kernel modules: {bad}"


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("import numpy as np", True),
        ("import math", True),
        ("from numba import njit", True),
        ("from backtester.enums import Side", True),
        ("from backtester.dtypes import TIER_DTYPE", True),
        ("from backtester.swap.pnl_nb import pnl_nb", True),
        ("from backtester.swap import pnl_nb", True),
        ("from .pnl_nb import pnl_nb", True),
        ("import pandas as pd", False),
        ("from backtester.swap.tiers import TierTable", False),
        ("from backtester.swap import ContractSpec", False),
        ("from . import tiers", False),
        ("import backtester.results", False),
    ],
)
def test_import_checker_itself(source: str, allowed: bool) -> None:
    imports = imported_modules(source, "backtester.swap")
    assert len(imports) == 1
    assert is_allowed(imports[0][1]) is allowed
