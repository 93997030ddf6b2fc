"""ADL queue kernels: rank accounts by the venue's score and allocate a liquidated quantity."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def adl_queue_order_nb(scores: np.ndarray) -> np.ndarray:
    """Queue order of accounts: highest score first, ties in input order; NaN scores left out.

    Formula
    -------
    order = indices of the finite scores, sorted by score descending with a stable sort (equal
    scores keep the caller's order, e.g. accounts listed oldest position first).

    Source
    ------
    MECHANICS.md §6 (BitMEX ADL: "ranks the positions from highest to lowest"; OKX: "ranked by
    profit/leverage"). No stored venue page states a tie rule; the caller's order decides.

    Cases
    -----
    None in cases.json (tests/unit/swap/test_swap_adl_queue.py: BitMEX's worked example).
    """
    finite = np.flatnonzero(np.isfinite(scores))
    # stable sort of −score keeps equal scores in input order
    ordered = np.argsort(-scores[finite], kind="mergesort")
    return finite[ordered]


@njit(cache=True)
def allocate_adl_nb(
    order: np.ndarray, contracts: np.ndarray, liquidated: float, closed: np.ndarray
) -> float:
    """Allocate ``liquidated`` contracts along the queue ``order``; returns what is unallocated.

    Formula
    -------
    Walking the queue, account k closes c_k = min(|contracts_k|, still needed) and the need drops
    by c_k, until nothing is needed or the queue ends; ``closed`` (zeroed here) receives c_k per
    account, the return value is the quantity no account could take.

    Source
    ------
    BitMEX ADL examples (bitmex.com/app/autoDeleveragingExamples): a short of 20 liquidated at
    650 against longs ranked 2 (10), 5 (20), ...: "Account 2 will have their entire position of
    10 contracts closed, while the remaining 10 contracts ... will be assigned to account 5",
    which keeps 10 of 20. All at the bankruptcy price of the liquidated order (MECHANICS.md §6).
    """
    closed[:] = 0.0
    need = liquidated
    for k in order:
        if need <= 0.0:
            break
        take = min(abs(contracts[k]), need)
        closed[k] = take
        need -= take
    return max(need, 0.0)


@njit(cache=True)
def adl_percentile_nb(
    order: np.ndarray, contracts: np.ndarray, step: float, out: np.ndarray
) -> None:
    """BitMEX queue indicator: cumulative share of the queue's contracts, rounded up to ``step``.

    Formula
    -------
    For the k-th account of the queue: ceil((Σ_{j≤k} |q_j| / Σ |q|) / step) · step (step 0.2:
    the five 20 % lights). Accounts outside the queue get NaN.

    Source
    ------
    BitMEX ADL examples: quantities 10, 20, 30, 10, 10, 20 in rank order show 20 %, 40 %, 60 %,
    80 %, 80 %, 100 % (cumulative 10, 30, 60, 70, 80, 100 of 100 contracts).
    """
    out[:] = np.nan
    total = 0.0
    for k in order:
        total += abs(contracts[k])
    if not total > 0.0:
        return
    cumulative = 0.0
    for k in order:
        cumulative += abs(contracts[k])
        share = cumulative / total
        # a share on a bucket edge stays in it (60 % of the queue is the 60 % light)
        out[k] = min(np.ceil(share / step - 1e-9), 1.0 / step) * step
