"""PnL attribution sums exactly (==) to final − initial balance."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester import dtypes
from backtester.enums import FundingRateSource, LedgerKind, Liquidity
from backtester.report.attribution import ATTRIBUTION_LINES, pnl_attribution
from backtester.results import Result


def test_hand_made_attribution_sums_exactly(hand_result) -> None:
    attribution = pnl_attribution(hand_result)
    total = hand_result.final_balance_settle - hand_result.initial_balance_settle
    assert list(attribution.index) == list(ATTRIBUTION_LINES)
    assert math.fsum(attribution.tolist()) == total
    assert attribution.attrs["total_settle"] == total
    assert attribution.attrs["exact"] is True
    fills = hand_result.records["fills"]
    assert attribution["maker_fees_settle"] == -fills["fee_settle"][1]
    assert attribution["taker_fees_settle"] == math.fsum(
        [-fills["fee_settle"][0], -fills["fee_settle"][2]]
    )
    liq = hand_result.records["liquidations"][0]
    assert attribution["liquidation_fee_settle"] == -liq["fee_settle"]
    payments = hand_result.records["funding_payments"]["payment_settle"]
    assert attribution["funding_paid_settle"] < 0 < attribution["funding_received_settle"]
    assert math.isclose(
        attribution["funding_paid_settle"] + attribution["funding_received_settle"],
        math.fsum(payments),
        rel_tol=1e-12,
    )
    assert attribution.attrs["funding_rate_sources"] == {"historical": 10, "computed": 4}
    assert attribution["insurance_fund_settle"] == 0.0


# realistic money magnitudes: zero, or 1e-8 .. 1e4 of either sign (fees to large PnL)
amounts = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-8, max_value=1e4),
    st.floats(min_value=-1e4, max_value=-1e-8),
)


@settings(max_examples=300, deadline=None)
@given(
    initial=st.floats(min_value=1e-3, max_value=1e7, allow_nan=False),
    rows=st.lists(
        st.tuples(st.sampled_from(list(LedgerKind)), amounts, st.sampled_from(list(Liquidity))),
        max_size=60,
    ),
)
def test_random_ledgers_sum_exactly(initial: float, rows: list) -> None:
    ledger = np.zeros(len(rows), dtype=dtypes.LEDGER_DTYPE)
    fills = np.zeros(len(rows), dtype=dtypes.FILL_DTYPE)
    balance = initial
    for i, (kind, amount, liquidity) in enumerate(rows):
        balance = balance + amount
        ledger[i] = (i, kind, 0, amount, balance, i)
        fills[i]["fill_id"] = i
        fills[i]["liquidity"] = liquidity
    funding = np.zeros(3, dtype=dtypes.FUNDING_PAYMENT_DTYPE)
    funding["source"] = FundingRateSource.COMPUTED
    result = Result(
        ["X"], "USDT", initial, {"ledger": ledger, "fills": fills, "funding_payments": funding}
    )
    attribution = pnl_attribution(result)
    assert math.fsum(attribution.tolist()) == result.final_balance_settle - initial
    assert attribution.attrs["exact"] is True
    assert attribution.attrs["funding_rate_sources"] == {"historical": 0, "computed": 3}
    # each line is the fsum of its rows' balance changes; the remainder is only rounding
    assert abs(attribution["rounding_settle"]) <= 1e-9 * (abs(initial) + 1e4 * (len(rows) + 1))


def test_empty_ledger_is_all_zero() -> None:
    result = Result(["X"], "USDT", 100.0, {})
    attribution = pnl_attribution(result)
    assert attribution.tolist() == [0.0] * len(ATTRIBUTION_LINES)
    assert attribution.attrs["total_settle"] == 0.0
