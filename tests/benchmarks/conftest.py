"""Every benchmark smoke test is ``slow`` (each runs a benchmark script in a subprocess); the
default test command still runs them, ``-m "not slow"`` leaves them out of quick local runs."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.slow)
