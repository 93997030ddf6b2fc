"""Auto-deleveraging queues: rank the opposing accounts and split a liquidated quantity.

When a liquidated order cannot be closed in the market and the insurance fund cannot cover it,
the venue closes it against the opposing side's accounts in the order of its ADL ranking, each
by as much as is still needed, at the bankruptcy price of the liquidated order (BitMEX, Binance;
OKX summaries say the mark price). :func:`allocate_adl_queue` does that for a set of accounts;
:func:`bitmex_adl_scores` computes BitMEX's ranking, which also ranks losing positions
(PNL% ÷ effective leverage, below every profitable one). In a replay only the strategy's own
position exists, so the quantity the queue still needs when it reaches that position is the
``contracts`` field of a deleverage scenario event (``DELEVERAGE_EVENT_DTYPE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backtester.swap.adl_nb import adl_percentile_nb, adl_queue_order_nb, allocate_adl_nb
from backtester.swap.insurance_nb import bitmex_adl_ranking_nb


@dataclass(frozen=True)
class AdlAllocation:
    """The result of one ADL allocation (arrays in the caller's account order).

    Attributes
    ----------
    order
        Account indices in queue order (highest score first); unranked (NaN) accounts absent.
    closed_contracts
        Contracts each account has closed at ``price``.
    remaining_contracts
        |position| − closed, per account.
    unallocated_contracts
        What the whole queue could not take (> 0 only when the queue is exhausted).
    percentile
        BitMEX's queue indicator per account before the allocation (cumulative share of the
        queue's contracts rounded up to 20 %), NaN outside the queue.
    price
        The close price (bankruptcy price of the liquidated order).
    """

    order: npt.NDArray[np.int64]
    closed_contracts: npt.NDArray[np.float64]
    remaining_contracts: npt.NDArray[np.float64]
    unallocated_contracts: float
    percentile: npt.NDArray[np.float64]
    price: float


def allocate_adl_queue(
    scores: Sequence[float] | np.ndarray,
    contracts: Sequence[float] | np.ndarray,
    liquidated_contracts: float,
    price: float,
) -> AdlAllocation:
    """Order accounts by ADL score and allocate a liquidated quantity along the queue.

    Parameters
    ----------
    scores
        Ranking score per account on the side opposite to the liquidated order (higher first;
        NaN: not in the queue, e.g. OKX's losing positions). Equal scores keep this order: no
        stored venue page states a tie rule, so list tied accounts as the venue would (e.g.
        oldest position first).
    contracts
        Position size per account (contracts; the sign is ignored).
    liquidated_contracts
        Size of the liquidated order to close against the queue (contracts, ≥ 0).
    price
        Bankruptcy price of the liquidated order (where every allocated contract closes).

    Formula
    -------
    :func:`~backtester.swap.adl_nb.adl_queue_order_nb`, then
    :func:`~backtester.swap.adl_nb.allocate_adl_nb`: c_k = min(|q_k|, still needed) along the
    queue.

    Source
    ------
    MECHANICS.md §6; BitMEX ADL examples (bitmex.com/app/autoDeleveragingExamples).
    """
    score = np.asarray(scores, dtype=np.float64)
    size = np.asarray(contracts, dtype=np.float64)
    if score.ndim != 1 or size.shape != score.shape:
        raise ValueError(
            f"scores, contracts: expected two 1-D arrays of one length, got shapes "
            f"{score.shape} and {size.shape}"
        )
    if not np.all(np.isfinite(size)):
        row = int(np.flatnonzero(~np.isfinite(size))[0])
        raise ValueError(f"contracts: row {row} is {size[row]}; expected a finite size")
    liquidated = float(liquidated_contracts)
    if not liquidated >= 0.0:
        raise ValueError(f"liquidated_contracts: expected >= 0, got {liquidated_contracts!r}")
    if not (np.isfinite(price) and price > 0.0):
        raise ValueError(f"price: expected a finite bankruptcy price > 0, got {price!r}")
    order = adl_queue_order_nb(score)
    closed = np.zeros(len(size))
    unallocated = allocate_adl_nb(order, size, liquidated, closed)
    percentile = np.empty(len(size))
    adl_percentile_nb(order, size, 0.2, percentile)
    return AdlAllocation(
        order=order,
        closed_contracts=closed,
        remaining_contracts=np.abs(size) - closed,
        unallocated_contracts=float(unallocated),
        percentile=percentile,
        price=float(price),
    )


def bitmex_adl_scores(
    mark_value: Sequence[float] | np.ndarray,
    entry_value: Sequence[float] | np.ndarray,
    bankrupt_value: Sequence[float] | np.ndarray,
) -> npt.NDArray[np.float64]:
    """BitMEX ADL ranking per account, losing positions included.

    Formula
    -------
    PNL% = (mark value − avg entry value)/|avg entry value|; effective leverage =
    |mark value|/(mark value − bankrupt value); ranking = PNL% × leverage (PNL% > 0), PNL% ÷
    leverage (PNL% < 0) (``insurance_nb.bitmex_adl_ranking_nb``).

    Source
    ------
    BitMEX "What is Auto-Deleveraging" (support.bitmex.com): "Ranking if PNL percentage < 0 =
    PNL Percentage / Effective Leverage"; MECHANICS.md §6.
    """
    mark = np.asarray(mark_value, dtype=np.float64)
    entry = np.asarray(entry_value, dtype=np.float64)
    bankrupt = np.asarray(bankrupt_value, dtype=np.float64)
    return np.array(
        [bitmex_adl_ranking_nb(m, e, b) for m, e, b in zip(mark, entry, bankrupt, strict=True)]
    )


__all__ = ["AdlAllocation", "allocate_adl_queue", "bitmex_adl_scores"]
