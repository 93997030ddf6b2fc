"""Candle interval labels (catalog directory names and the command line).

As in ``bars-1m`` and ``--interval 15m``.
"""

from __future__ import annotations

import re

__all__ = ["interval_label", "parse_interval"]

_UNITS = (
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
)
_LABEL_RE = re.compile(r"^(\d+)(d|h|m|s|ns)$")


def interval_label(interval_ns: int) -> str:
    """Short label of a candle interval: 60e9 → ``"1m"``, 3600e9 → ``"1h"``, 1 → ``"1ns"``."""
    if interval_ns <= 0:
        raise ValueError(f"interval_ns: expected a value > 0, got {interval_ns}")
    for suffix, size in _UNITS:
        if interval_ns % size == 0:
            return f"{interval_ns // size}{suffix}"
    return f"{interval_ns}ns"


def parse_interval(label: str) -> int:
    """Inverse of :func:`interval_label` (``"15m"`` → 900e9 ns)."""
    match = _LABEL_RE.match(label)
    if not match:
        raise ValueError(f"interval: cannot parse {label!r}; expected e.g. '1m', '1h', '8h', '1d'")
    number, unit = int(match.group(1)), match.group(2)
    return number * (1 if unit == "ns" else dict(_UNITS)[unit])
