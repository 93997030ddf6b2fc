"""Appending output records (fills, ledger rows).

Every money movement goes through :func:`ledger_nb`, which changes the wallet balance and writes
the LEDGER row in one place, so ``initial balance + Σ ledger = final balance`` holds by
construction (STYLE.md C9). Buffers are preallocated; the loop checks their head-room before each
event and returns ``Status.BUFFER_FULL`` instead of writing past the end (C6).
"""

from __future__ import annotations

from typing import Any

from numba import njit

# ``state``: the run's EngineState StructRef (engine/state_nb.py), ``Any`` to mypy.


@njit(cache=True)
def ledger_nb(
    state: Any, ts_ns: int, kind: int, instrument: int, amount_settle: float, ref_id: int
) -> None:
    """Add ``amount_settle`` to the wallet balance and write one LEDGER row.

    Mutates: ``account[0]['balance_settle']``, ``account[0]['n_ledger']``, ``state.ledger``.
    """
    acc = state.account[0]
    acc["balance_settle"] = acc["balance_settle"] + amount_settle
    n = acc["n_ledger"]
    row = state.ledger[n]
    row["ts_ns"] = ts_ns
    row["kind"] = kind
    row["instrument"] = instrument
    row["amount_settle"] = amount_settle
    row["balance_after_settle"] = acc["balance_settle"]
    row["ref_id"] = ref_id
    acc["n_ledger"] = n + 1


@njit(cache=True)
def fill_record_nb(
    state: Any,
    ts_ns: int,
    order_id: int,
    instrument: int,
    side: int,
    liquidity: int,
    price: float,
    qty: float,
    fee: float,
    pnl: float,
) -> int:
    """Write one FILL row and return its ``fill_id``.

    The position after the fill is the instrument's position row as it is now (the caller
    updates it first). Mutates: ``account[0]['n_fills']``, ``account[0]['next_fill_id']``,
    ``state.fills``.
    """
    acc = state.account[0]
    n = acc["n_fills"]
    row = state.fills[n]
    fill_id = acc["next_fill_id"]
    row["fill_id"] = fill_id
    row["order_id"] = order_id
    row["instrument"] = instrument
    row["ts_ns"] = ts_ns
    row["side"] = side
    row["liquidity"] = liquidity
    row["price"] = price
    row["qty_contracts"] = qty
    row["fee_settle"] = fee
    row["realised_pnl_settle"] = pnl
    row["position_after_contracts"] = state.positions[instrument]["contracts"]
    acc["n_fills"] = n + 1
    acc["next_fill_id"] = fill_id + 1
    return fill_id  # type: ignore[no-any-return]  # numba record field
