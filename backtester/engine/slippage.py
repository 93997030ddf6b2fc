"""Pluggable slippage: a one-method protocol with a parameters object and a Null default.

A model is evaluated to one number per instrument before the run (STYLE.md C8): the fraction
by which a taker fill moves against the order (buy higher, sell lower), clipped to the bar's
range on bars. Resting (maker) fills never slip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from backtester.checks import check_in_range

__all__ = ["FixedRateSlippage", "NullSlippage", "SlippageModel", "SlippageParams"]


@dataclass(frozen=True)
class SlippageParams:
    """What a slippage model may look at: the instrument's symbol, tick and contract kind."""

    symbol: str
    tick_size: float
    contract_kind: int


class SlippageModel(Protocol):
    """Returns the taker slippage rate (fraction of the price, ≥ 0) for an instrument."""

    def slippage_rate(self, params: SlippageParams) -> float:
        """Fraction of the price a taker fill moves against the order."""
        ...


@dataclass(frozen=True)
class NullSlippage:
    """No slippage (the default)."""

    def slippage_rate(self, params: SlippageParams) -> float:
        """Always 0."""
        return 0.0


@dataclass(frozen=True)
class FixedRateSlippage:
    """A fixed fraction of the price, e.g. ``FixedRateSlippage(0.0005)`` = 5 bp."""

    rate: float

    def __post_init__(self) -> None:
        check_in_range(self.rate, "FixedRateSlippage.rate", 0.0, 0.1)

    def slippage_rate(self, params: SlippageParams) -> float:
        """The fixed rate."""
        return float(self.rate)
