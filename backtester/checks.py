"""Validation helpers for user input at the API boundary (STYLE.md C13).

Each helper raises ``ValueError`` or ``TypeError`` whose message names the field, the value
received and what was expected, so a user can fix the input without reading our code. They are
for user input only; kernels never raise on data conditions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from difflib import get_close_matches
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: `backtester --help` needs none of it
    import numpy as np


def check_finite(value: float, name: str) -> float:
    """Return ``value`` as float if it is a finite number, else raise ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number


def check_positive(value: float, name: str) -> float:
    """Return ``value`` if it is finite and > 0, else raise naming ``name``."""
    number = check_finite(value, name)
    if number <= 0:
        raise ValueError(f"{name}: expected a value > 0, got {value!r}")
    return number


def check_non_negative(value: float, name: str) -> float:
    """Return ``value`` if it is finite and >= 0, else raise naming ``name``."""
    number = check_finite(value, name)
    if number < 0:
        raise ValueError(f"{name}: expected a value >= 0, got {value!r}")
    return number


def check_in_range(
    value: float,
    name: str,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` if it lies in the given range, else raise with the allowed range."""
    number = check_finite(value, name)
    above_low = number >= low if low_inclusive else number > low
    below_high = number <= high if high_inclusive else number < high
    if not (above_low and below_high):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ValueError(
            f"{name}: expected a value in {left}{low:g}, {high:g}{right}, got {value!r}"
        )
    return number


def check_choice(value: str, name: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise with a suggestion."""
    options = list(choices)
    if value in options:
        return value
    raise ValueError(f"{name}: unknown value {value!r}; {suggestion(value, options)}")


def suggestion(value: str, options: Iterable[str]) -> str:
    """Return a "Did you mean" hint for ``value`` among ``options``, or the list of options."""
    options = sorted(options)
    close = get_close_matches(value, options, n=1)
    if close:
        return f"did you mean {close[0]!r}? (expected one of {', '.join(map(repr, options))})"
    return f"expected one of {', '.join(map(repr, options))}"


def check_dtype(array: object, dtype: np.dtype, name: str) -> np.ndarray:
    """Return ``array`` if it is a numpy array of exactly ``dtype``, else raise ``TypeError``."""
    import numpy as np

    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name}: expected a numpy structured array, got {type(array).__name__}")
    if array.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {array.dtype}")
    return array


class RunDataWarning(UserWarning):
    """A run replaced missing data by a computed or fallback series.

    Funding from the premium, mark = last price; the same text is in
    ``Result.config["warnings"]``, the summary and the report.
    """
