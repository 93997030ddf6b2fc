"""PnL attribution: the wallet balance change split by cause, summed from the ledger.

Every figure comes from the LEDGER records (STYLE.md C9). Each line is the correctly rounded exact
sum (``math.fsum``) of the booked ``amount_settle`` of its ledger rows, so a line equals the sum of
the records it comes from (the fees line equals the fills' fees). The engine adds those amounts to
the balance one by one in floating point, so ``balance_after`` can drift from the exact sum by a
few units in the last place; that drift is its own ``rounding_settle`` line (usually 0.0 or about
1e-16 of the balance), chosen so that ``math.fsum(attribution) == final_balance − initial_balance``
holds exactly (``==``). (One float can always carry that remainder unless the balance change
itself is smaller than the accumulated rounding, i.e. zero to within a few ulps of the balance;
``series.attrs["exact"]`` reports whether the identity holds.) :func:`effective_changes` gives
the per-row balance change if needed.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from backtester.enums import FundingRateSource, LedgerKind, Liquidity

if TYPE_CHECKING:
    from backtester.results import Result

__all__ = ["ATTRIBUTION_LINES", "effective_changes", "pnl_attribution"]

ATTRIBUTION_LINES = (
    "trading_pnl_settle",
    "maker_fees_settle",
    "taker_fees_settle",
    "other_fees_settle",
    "funding_paid_settle",
    "funding_received_settle",
    "liquidation_loss_settle",
    "liquidation_fee_settle",
    "insurance_fund_settle",
    "settlement_settle",
    "clawback_settle",
    "adl_settle",
    "deposit_settle",
    "margin_transfer_settle",
    "rounding_settle",
)
"""Index of the Series returned by :func:`pnl_attribution`, in display order."""

_KIND_LINE = {
    LedgerKind.DEPOSIT: "deposit_settle",
    LedgerKind.TRADE_PNL: "trading_pnl_settle",
    LedgerKind.LIQUIDATION_LOSS: "liquidation_loss_settle",
    LedgerKind.LIQUIDATION_FEE: "liquidation_fee_settle",
    LedgerKind.INSURANCE_FUND: "insurance_fund_settle",
    LedgerKind.SETTLEMENT: "settlement_settle",
    LedgerKind.CLAWBACK: "clawback_settle",
    LedgerKind.ADL: "adl_settle",
    LedgerKind.MARGIN_TRANSFER: "margin_transfer_settle",
}


def effective_changes(ledger: np.ndarray, initial_balance_settle: float) -> np.ndarray:
    """Balance change of each ledger row: ``balance_after[k] − balance_after[k − 1]``.

    Parameters
    ----------
    ledger
        LEDGER_DTYPE records in ledger order.
    initial_balance_settle
        Wallet balance before the first row.

    Returns
    -------
    numpy.ndarray
        float64, one value per row. Their exact (``math.fsum``) sum is the correctly rounded
        ``balance_after[-1] − initial`` whenever each difference is exact (Sterbenz / Fast2Sum:
        the balance is at least as large as the amount, the normal case).
    """
    after = np.asarray(ledger["balance_after_settle"], dtype=np.float64)
    before = np.empty_like(after)
    if len(after):
        before[0] = initial_balance_settle
        before[1:] = after[:-1]
    return after - before


def _line_of_rows(result: Result, changes: np.ndarray) -> list[str]:
    ledger = result.records["ledger"]
    fills = result.records["fills"]
    liquidity_by_fill = dict(
        zip(fills["fill_id"].tolist(), fills["liquidity"].tolist(), strict=True)
    )
    lines = []
    for kind, ref, change in zip(
        ledger["kind"].tolist(), ledger["ref_id"].tolist(), changes.tolist(), strict=True
    ):
        kind = LedgerKind(kind)
        if kind == LedgerKind.FEE:
            liquidity = liquidity_by_fill.get(ref)
            if liquidity == Liquidity.MAKER:
                lines.append("maker_fees_settle")
            elif liquidity == Liquidity.TAKER:
                lines.append("taker_fees_settle")
            else:
                lines.append("other_fees_settle")
        elif kind == LedgerKind.FUNDING:
            lines.append("funding_received_settle" if change > 0 else "funding_paid_settle")
        else:
            lines.append(_KIND_LINE[kind])
    return lines


def _rounding_line(values: list[float], target: float) -> float:
    """Float ``r`` with ``math.fsum(values + [r]) == target``, nearest to the exact residual."""
    exact = Fraction(target) - sum((Fraction(v) for v in values), Fraction(0))
    r = float(exact)
    for _ in range(64):
        total = math.fsum([*values, r])
        if total == target:
            return r
        r = math.nextafter(r, math.inf if total < target else -math.inf)
    return r


def pnl_attribution(result: Result) -> pd.Series:
    """Split the wallet balance change into its causes.

    Parameters
    ----------
    result
        The backtest :class:`~backtester.results.Result` whose ledger rows are summed.

    Returns
    -------
    pandas.Series
        Index :data:`ATTRIBUTION_LINES`, values in the settle currency, signed as they changed
        the balance (fees and funding paid < 0). Fees are split by the liquidity of the fill the
        ledger row refers to (maker, taker; liquidation/ADL fills go to ``other_fees``).
        ``rounding_settle`` is the floating-point drift of the running balance (module
        docstring), so that
        ``math.fsum(series) == result.final_balance_settle − result.initial_balance_settle``
        exactly. ``series.attrs`` holds ``total_settle`` (final − initial),
        ``settle_currency`` and ``funding_rate_sources`` — the number of funding payments whose
        rate was historical vs computed from the premium index — and
        ``funding_computed_settle``, the net funding of the computed ones.
    """
    ledger = result.records["ledger"]
    changes = np.asarray(ledger["amount_settle"], dtype=np.float64)
    lines = _line_of_rows(result, changes)
    grouped: dict[str, list[float]] = {name: [] for name in ATTRIBUTION_LINES}
    for line, change in zip(lines, changes.tolist(), strict=True):
        grouped[line].append(change)
    values = {name: math.fsum(grouped[name]) for name in ATTRIBUTION_LINES[:-1]}
    total = result.final_balance_settle - float(result.initial_balance_settle)
    values["rounding_settle"] = _rounding_line(list(values.values()), total)
    series = pd.Series(values, name="pnl_attribution", dtype=np.float64)
    sources = result.records["funding_payments"]["source"]
    series.attrs["total_settle"] = total
    series.attrs["exact"] = math.fsum(series.tolist()) == total
    series.attrs["settle_currency"] = result.settle_currency
    series.attrs["funding_rate_sources"] = {
        member.name.lower(): int(np.count_nonzero(sources == member))
        for member in FundingRateSource
    }
    # the funding lines' share whose rate was computed from the premium (no history)
    payments = result.records["funding_payments"]["payment_settle"]
    series.attrs["funding_computed_settle"] = math.fsum(
        payments[sources == int(FundingRateSource.COMPUTED)].tolist()
    )
    return series
