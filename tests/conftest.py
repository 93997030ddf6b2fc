"""Test-session setup shared by every test folder.

Numba's on-disk cache is keyed per source file, so a kernel module that imports an edited kernel
from another module can run stale machine code. Keying ``NUMBA_CACHE_DIR`` on a hash of every
kernel source defeats that (STYLE.md C15). This must run before numba is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
GOLDEN_PINS = REPO_ROOT / "tests" / "golden" / "pins"


def _kernel_sources_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "backtester").rglob("*.py")):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO_ROOT / ".numba_cache" / _kernel_sources_hash()))

from hypothesis import HealthCheck, settings  # noqa: E402  (after the numba cache is set)

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=20)  # fast local runs
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def shared_path(*parts: str) -> Path:
    """Path under ``../shared``; skips the calling test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data folder beside the repository), not present")
    return path


@pytest.fixture
def shared() -> type:
    """Access to ``../shared`` files for real-data tests (skips when absent)."""

    class _Shared:
        root = SHARED
        path = staticmethod(shared_path)

    return _Shared


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the pinned values of the golden tests (tests/golden/pins/*.json) from "
        "this run instead of comparing; review and commit the JSON diff with the reason",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(name, values)``: compare a JSON-able dict with ``tests/golden/pins/<name>.json``
    (exactly: floats are written with their shortest round-trip repr), or rewrite the file
    under ``--update-golden``."""
    update = request.config.getoption("--update-golden")

    def check(name: str, values: dict) -> None:
        path = GOLDEN_PINS / f"{name}.json"
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"{path} missing: run `python -m pytest tests/golden --update-golden`")
        expected = json.loads(path.read_text(encoding="utf-8"))
        assert values == expected, f"golden pins {path.name} moved (see tests/golden docstring)"

    return check
