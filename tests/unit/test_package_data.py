"""The package data declared in pyproject.toml matches the files the package holds: every
pattern matches at least one file, and every non-Python file under backtester/ is shipped."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "backtester"


def test_package_data_patterns_match_real_files() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["backtester"]
    shipped: set[Path] = set()
    for pattern in patterns:
        matched = {p for p in PACKAGE.glob(pattern) if p.is_file()}
        assert matched, f"package-data pattern {pattern!r} matches no file under backtester/"
        shipped |= matched
    data_files = {
        p
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert data_files - shipped == set(), "package files not declared in package-data"
