"""The parameter space of a sweep.

``name=start:stop:step`` / ``a,b,c`` dimensions, grid and random combinations, and the job of
one combination.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from backtester.jobs import parse_scalar

#: Sweep dimensions that are run settings, not strategy parameters.
RUN_SETTINGS = ("leverage", "margin_mode", "maker_fee_rate", "taker_fee_rate", "profile")


def parse_values(name: str, text: str) -> list[Any]:
    """Values of one sweep dimension.

    ``start:stop:step`` is an inclusive range (``5:50:5`` → 5, 10, …, 50; integers when all three
    are integers), ``a,b,c`` a list, anything else a single value.

    Raises
    ------
    ValueError
        Naming the dimension for a malformed range, a step ≤ 0 or an empty range.
    """
    text = text.strip()
    if not text:
        raise ValueError(f"{name}: empty value; expected start:stop:step or a,b,c")
    if ":" in text and "," not in text and "://" not in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"{name}: range {text!r} must be start:stop:step (e.g. 5:50:5)")
        parsed = [parse_scalar(p) for p in parts]
        numbers = [n for n in parsed if isinstance(n, int | float) and not isinstance(n, bool)]
        if len(numbers) != 3:
            raise ValueError(f"{name}: range {text!r} must be numbers start:stop:step")
        start, stop, step = numbers
        if step <= 0:
            raise ValueError(f"{name}: step must be > 0 in {text!r}")
        if stop < start:
            raise ValueError(f"{name}: stop < start in {text!r}")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if all(isinstance(n, int) for n in numbers):
            return [int(start + i * step) for i in range(count)]
        # round to the step's decimals so 0.1:0.3:0.1 gives 0.1, 0.2, 0.3 (not 0.30000000000000004)
        decimals = max(_decimals(str(p)) for p in parts)
        return [round(float(start) + i * float(step), decimals) for i in range(count)]
    return [parse_scalar(v) for v in text.split(",") if v.strip()]


def _decimals(text: str) -> int:
    text = text.strip().lower()
    if "e" in text:
        return 12
    return len(text.partition(".")[2])


def parse_space(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["fast=5:50:5", "slow=50,100"]`` → ``{"fast": [5, …, 50], "slow": [50, 100]}``."""
    space: dict[str, list[Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"grid: expected name=values (e.g. fast=5:50:5), got {item!r}")
        if name in space:
            raise ValueError(f"grid: dimension {name!r} given twice")
        space[name] = parse_values(name, text)
    return space


def grid_combinations(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the space, in row-major order of the dimensions as given."""
    names = list(space)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*space.values())]


def random_combinations(
    space: Mapping[str, Sequence[Any]], samples: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Return ``samples`` distinct combinations drawn uniformly from the grid (fixed ``seed``).

    Returns the whole grid when it has no more than ``samples`` combinations.
    """
    if samples <= 0:
        raise ValueError(f"samples: expected a value > 0, got {samples}")
    sizes = [len(v) for v in space.values()]
    total = math.prod(sizes)
    if total <= samples:
        return grid_combinations(space)
    rng = np.random.default_rng(seed)
    picks = sorted(int(i) for i in rng.choice(total, size=samples, replace=False))
    names = list(space)
    combos = []
    for flat in picks:
        combo: dict[str, Any] = {}
        for name, size in zip(reversed(names), reversed(sizes), strict=True):
            flat, position = divmod(flat, size)
            combo[name] = space[name][position]
        combos.append({name: combo[name] for name in names})
    return combos


def apply_combination(base_job: dict[str, Any], combo: dict[str, Any]) -> dict[str, Any]:
    """Return the job of one combination: run settings at the top level, the rest in ``params``."""
    job: dict[str, Any] = json.loads(json.dumps(base_job))
    params = dict(job.get("params") or {})
    for name, value in combo.items():
        if name in RUN_SETTINGS:
            job[name] = value
        else:
            params[name] = value
    job["params"] = params
    return job
