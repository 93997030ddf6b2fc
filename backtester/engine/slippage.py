"""Pluggable slippage: a small protocol with a parameters object and a Null default.

A model is evaluated before the run (STYLE.md C8) to one row per instrument,
``(fixed_rate, impact_coefficient, max_rate)`` (:func:`slippage_row`); the kernel
(:func:`~backtester.engine.slippage_nb.taker_slippage_rate_nb`) turns it into the fraction by
which each taker fill moves against the order (buy higher, sell lower):
``min(fixed + Y·sqrt(Q/V), max_rate)`` with Q the fill and V the volume of the tick or bar it
fills on (both in base coin). Market and stop-market fills slip without bound on ticks and at a
bar's open; a stop filled inside a bar stays within the bar's range; a marketable limit never
fills beyond its limit. Resting (maker) fills never slip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from backtester.checks import check_in_range

__all__ = [
    "FixedRateSlippage",
    "NullSlippage",
    "SlippageModel",
    "SlippageParams",
    "SquareRootImpactSlippage",
    "slippage_row",
]


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
        """Return 0: no slippage."""
        return 0.0


@dataclass(frozen=True)
class FixedRateSlippage:
    """A fixed fraction of the price, e.g. ``FixedRateSlippage(0.0005)`` = 5 bp."""

    rate: float

    def __post_init__(self) -> None:
        check_in_range(self.rate, "FixedRateSlippage.rate", 0.0, 0.1)

    def slippage_rate(self, params: SlippageParams) -> float:
        """Return the fixed rate."""
        return float(self.rate)


@dataclass(frozen=True)
class SquareRootImpactSlippage:
    """Square-root market impact on the traded volume of the tick or bar a fill happens on.

    rate = min(fixed_rate + coefficient·sqrt(Q / V), max_rate), Q the taker fill and V the
    volume traded by that tick or bar, both in base coin. ``coefficient`` is the impact of
    trading the whole volume (Q = V) in price fraction, e.g. 0.001: a fill of 1 % of the bar's
    volume slips 0.001·0.1 = 1 bp. When V is 0 or unknown (a tick without size, a zero-volume
    bar) the impact cannot be sized and the fill slips by ``max_rate`` (conservative).

    Source: the square-root law of market impact, I ≈ Y·σ·sqrt(Q/V) (Tóth et al. 2011, Phys.
    Rev. X 1, 021006; Almgren et al. 2005); ``coefficient`` stands for Y·σ over the bar.
    """

    coefficient: float
    max_rate: float = 0.01
    fixed_rate: float = 0.0

    def __post_init__(self) -> None:
        check_in_range(self.coefficient, "SquareRootImpactSlippage.coefficient", 0.0, 1.0)
        check_in_range(self.max_rate, "SquareRootImpactSlippage.max_rate", 0.0, 0.1)
        check_in_range(self.fixed_rate, "SquareRootImpactSlippage.fixed_rate", 0.0, 0.1)

    def slippage_rate(self, params: SlippageParams) -> float:
        """Return the fixed part of the rate."""
        return float(self.fixed_rate)

    def impact(self, params: SlippageParams) -> tuple[float, float]:
        """(coefficient, max_rate) of the volume-dependent part."""
        return float(self.coefficient), float(self.max_rate)


def slippage_row(model: SlippageModel, params: SlippageParams) -> tuple[float, float, float]:
    """``(fixed_rate, impact_coefficient, max_rate)`` of ``model`` for one instrument.

    A model with only ``slippage_rate`` has no impact term and no cap (``max_rate`` = inf);
    one that also defines ``impact(params) -> (coefficient, max_rate)`` adds the square-root
    term.
    """
    fixed = float(model.slippage_rate(params))
    impact = getattr(model, "impact", None)
    if impact is None:
        return fixed, 0.0, float("inf")
    coefficient, cap = impact(params)
    return fixed, float(coefficient), float(cap)
