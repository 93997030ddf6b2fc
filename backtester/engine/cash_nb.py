"""Cash movements of the account: fills, funding payments, daily settlement.

All exchange formulas come from the swap kernels (``backtester.swap.*_nb``); this module applies
them to the engine state (POSITION_STATE_DTYPE rows, the ACCOUNT_STATE_DTYPE row) and writes
the records, every amount through ``records_nb.ledger_nb``. PnL is measured from
``reference_price`` (the entry price until a daily settlement resets it). Isolated positions
hold ``margin_settle``; cross positions use the wallet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from backtester.engine.records_nb import fill_record_nb, ledger_nb
from backtester.enums import LedgerKind, MarginMode
from backtester.swap.fee_nb import fee_nb
from backtester.swap.funding_nb import funding_payment_nb
from backtester.swap.margin_nb import initial_margin_nb
from backtester.swap.pnl_nb import average_entry_price_nb, pnl_nb
from backtester.swap.settlement_nb import next_settlement_ns_nb, settlement_pnl_nb

# ``state``: the run's EngineState StructRef (engine/state_nb.py), ``Any`` to mypy.


@njit(cache=True)
def close_position_nb(s: np.void) -> None:
    """Mark position record ``s`` flat: no contracts, entry and reference prices, margin."""
    s["contracts"] = 0.0
    s["entry_price"] = np.nan
    s["reference_price"] = np.nan
    s["margin_settle"] = 0.0


@njit(cache=True)
def apply_fill_nb(
    state: Any,
    instrument: int,
    ts_ns: int,
    order_id: int,
    side: int,
    qty: float,
    price: float,
    fee_rate: float,
    liquidity: int,
) -> int:
    """Apply one fill to the position and the wallet; write FILL and LEDGER rows.

    Realised PnL = pnl_nb(closed part, reference → fill price); fee = fee_nb(qty at price).
    Isolated margin: released pro rata when reducing, initial_margin_nb added when increasing.
    Returns the fill id. Mutates: position row, account, fills, ledger.
    """
    s = state.positions[instrument]
    p = state.params[instrument]
    kind = p["contract_kind"]
    face = p["face_value"]
    q0 = s["contracts"]
    realised = 0.0
    rest = qty
    isolated = s["margin_mode"] == MarginMode.ISOLATED
    if q0 != 0.0 and np.sign(q0) != side:
        closed = min(qty, abs(q0))
        realised = pnl_nb(kind, np.sign(q0) * closed, face, s["reference_price"], price)
        remaining = abs(q0) - closed
        rest = qty - closed
        # sizes are lot multiples: a difference below half a lot is float dust (0.3 − 0.1 −
        # 0.2), not a position left open or opened on the other side
        half_lot = 0.5 * p["lot_size_contracts"]
        if remaining <= half_lot:
            remaining = 0.0
        if rest <= half_lot:
            rest = 0.0
        if isolated:
            s["margin_settle"] = s["margin_settle"] * (remaining / abs(q0))
        if remaining <= 0.0:
            close_position_nb(s)
        else:
            s["contracts"] = np.sign(q0) * remaining
    if rest > 0.0:
        q = s["contracts"]
        if q == 0.0:
            s["entry_price"] = price
            s["reference_price"] = price
        else:
            s["entry_price"] = average_entry_price_nb(kind, abs(q), s["entry_price"], rest, price)
            s["reference_price"] = average_entry_price_nb(
                kind, abs(q), s["reference_price"], rest, price
            )
        s["contracts"] = q + side * rest
        if isolated:
            s["margin_settle"] += initial_margin_nb(kind, rest, face, price, s["leverage"])
    fee = fee_nb(kind, qty, face, price, fee_rate)
    fill_id = fill_record_nb(
        state, ts_ns, order_id, instrument, side, liquidity, price, qty, fee, realised
    )
    if realised != 0.0:
        ledger_nb(state, ts_ns, LedgerKind.TRADE_PNL, instrument, realised, fill_id)
    if fee != 0.0:
        ledger_nb(state, ts_ns, LedgerKind.FEE, instrument, -fee, fill_id)
    return fill_id


@njit(cache=True)
def apply_funding_nb(state: Any, instrument: int, ts_ns: int, rate: float, source: int) -> bool:
    """Pay or receive funding on an open position at the mark: funding_payment_nb.

    Returns True when a payment was made. Mutates: account, funding payments, ledger.
    """
    s = state.positions[instrument]
    p = state.params[instrument]
    q = s["contracts"]
    if q == 0.0 or not np.isfinite(s["mark_price"]):
        return False
    payment = funding_payment_nb(p["contract_kind"], q, p["face_value"], s["mark_price"], rate)
    acc = state.account[0]
    n = acc["n_funding_payments"]
    row = state.funding_payments[n]
    row["ts_ns"] = ts_ns
    row["instrument"] = instrument
    row["funding_rate"] = rate
    row["mark_price"] = s["mark_price"]
    row["position_contracts"] = q
    row["payment_settle"] = payment
    row["source"] = source
    acc["n_funding_payments"] = n + 1
    ledger_nb(state, ts_ns, LedgerKind.FUNDING, instrument, payment, n)
    return True


@njit(cache=True)
def apply_settlement_nb(state: Any, instrument: int, ts_ns: int) -> None:
    """Daily settlement: UPL at the mark moves to the balance; the reference price resets.

    Equity is unchanged. In fixed-margin (isolated) mode a negative UPL is deducted from the
    position's fixed margin (MECHANICS.md §7, OKEx-swap-guide: "a negative UPL is deducted from
    the fixed margin at settlement"): margin + UPL, the liquidation price and the bankruptcy
    price stay where they were, so the position can never lose more than its margin. A
    positive UPL goes to the free balance (the fixed margin is unchanged).
    Mutates: position row, account, settlements, ledger.
    """
    s = state.positions[instrument]
    p = state.params[instrument]
    q = s["contracts"]
    if q == 0.0 or not np.isfinite(s["mark_price"]):
        return
    settled = settlement_pnl_nb(
        p["contract_kind"], q, p["face_value"], s["reference_price"], s["mark_price"]
    )
    acc = state.account[0]
    n = acc["n_settlements"]
    row = state.settlements[n]
    row["ts_ns"] = ts_ns
    row["instrument"] = instrument
    row["settlement_price"] = s["mark_price"]
    row["previous_reference_price"] = s["reference_price"]
    row["position_contracts"] = q
    row["settled_pnl_settle"] = settled
    deducted = 0.0
    if s["margin_mode"] == MarginMode.ISOLATED and settled < 0.0:
        deducted = -settled
        s["margin_settle"] += settled
    row["margin_deducted_settle"] = deducted
    acc["n_settlements"] = n + 1
    s["reference_price"] = s["mark_price"]
    ledger_nb(state, ts_ns, LedgerKind.SETTLEMENT, instrument, settled, n)


@njit(cache=True)
def settle_due_nb(state: Any, instrument: int, ts_ns: int) -> None:
    """Apply ``instrument``'s daily settlement due by ``ts_ns`` and set its next instant.

    The caller decides that it is due (the loop at the instrument's next event, the clawback
    for every instrument). Mutates: as :func:`apply_settlement_nb`, and
    ``positions[instrument]['next_settlement_ns']``.
    """
    apply_settlement_nb(state, instrument, ts_ns)
    state.positions[instrument]["next_settlement_ns"] = next_settlement_ns_nb(
        ts_ns, state.params[instrument]["settlement_offset_ns"]
    )
