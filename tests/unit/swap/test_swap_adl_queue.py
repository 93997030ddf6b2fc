"""ADL queue: ranking and allocation of a liquidated quantity (issue 12 item 4).

The worked example is BitMEX's own (bitmex.com/app/autoDeleveragingExamples): six longs with
quantity and PnL ranking; a short of 20 liquidated at a bankruptcy price of 650.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester.swap.adl import allocate_adl_queue, bitmex_adl_scores

# account:        1   2   3   4   5   6
QUANTITY = [10.0, 10.0, 20.0, 30.0, 20.0, 10.0]
RANKING = [3.0, 6.0, 1.0, 4.0, 5.0, 2.0]


def test_bitmex_worked_example() -> None:
    result = allocate_adl_queue(RANKING, QUANTITY, 20.0, 650.0)
    # ranked highest first: accounts 2, 5, 4, 1, 6, 3 (0-based 1, 4, 3, 0, 5, 2)
    assert result.order.tolist() == [1, 4, 3, 0, 5, 2]
    # "Account 2 will have their entire position of 10 contracts closed, while the remaining
    # 10 contracts from the short liquidation will be assigned to account 5" (20 -> 10 left)
    assert result.closed_contracts.tolist() == [0.0, 10.0, 0.0, 0.0, 10.0, 0.0]
    assert result.remaining_contracts.tolist() == [10.0, 0.0, 20.0, 30.0, 10.0, 10.0]
    assert result.unallocated_contracts == 0.0
    assert result.price == 650.0
    # the published percentiles, in rank order: 20 %, 40 %, 60 %, 80 %, 80 %, 100 %
    np.testing.assert_allclose(
        result.percentile[result.order], [0.2, 0.4, 0.6, 0.8, 0.8, 1.0], atol=1e-12
    )


def test_a_liquidation_larger_than_the_queue_leaves_the_rest_unallocated() -> None:
    result = allocate_adl_queue(RANKING, QUANTITY, 120.0, 650.0)
    assert result.closed_contracts.tolist() == QUANTITY
    assert result.unallocated_contracts == 20.0  # 120 − 100 in the queue


def test_ties_keep_the_callers_order_and_unranked_accounts_stay_out() -> None:
    result = allocate_adl_queue([2.0, np.nan, 2.0, 5.0], [5.0, 50.0, 5.0, 3.0], 6.0, 100.0)
    assert result.order.tolist() == [3, 0, 2]  # 5.0 first, then the tie in input order
    assert result.closed_contracts.tolist() == [3.0, 0.0, 0.0, 3.0]
    assert np.isnan(result.percentile[1])


def test_bitmex_ranks_losing_positions_after_profitable_ones() -> None:
    """Linear longs of 1 BTC entered at 100 (entry value 100), mark 110 or 90.

    Profitable, bankrupt value 50 (2x): PNL% = 0.1, leverage = 110/(110 − 50) = 1.8333,
    ranking 0.18333. Losing at 90, bankrupt value 50: PNL% = −0.1, leverage = 90/40 = 2.25,
    ranking −0.1/2.25 = −0.04444. Losing at 90, bankrupt value 80: leverage 90/10 = 9, ranking
    −0.1/9 = −0.01111 (more leverage: a losing position ranks *higher*, PNL% ÷ leverage).
    """
    scores = bitmex_adl_scores([110.0, 90.0, 90.0], [100.0, 100.0, 100.0], [50.0, 50.0, 80.0])
    np.testing.assert_allclose(scores, [0.1 * 110 / 60, -0.1 / 2.25, -0.1 / 9], rtol=1e-12)
    result = allocate_adl_queue(scores, [1.0, 1.0, 1.0], 1.5, 95.0)
    assert result.order.tolist() == [0, 2, 1]
    assert result.closed_contracts.tolist() == [1.0, 0.0, 0.5]


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="liquidated_contracts: expected >= 0"):
        allocate_adl_queue([1.0], [1.0], -1.0, 10.0)
    with pytest.raises(ValueError, match="price: expected a finite bankruptcy price"):
        allocate_adl_queue([1.0], [1.0], 1.0, float("nan"))
    with pytest.raises(ValueError, match="shapes"):
        allocate_adl_queue([1.0, 2.0], [1.0], 1.0, 10.0)
