"""Appending output records (fills, ledger, funding, liquidations, settlements, equity).

Every money movement goes through :func:`ledger_nb`, which changes the wallet balance and writes
the LEDGER row in one place, so ``initial balance + Σ ledger = final balance`` holds by
construction (STYLE.md C9). Buffers are preallocated; the loop checks their head-room before each
event and returns ``Status.BUFFER_FULL`` instead of writing past the end (C6).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def ledger_nb(account, ledger, ts_ns, kind, instrument, amount_settle, ref_id):
    """Add ``amount_settle`` to the wallet balance and write one LEDGER row.

    Mutates: ``account[0]['balance_settle']``, ``account[0]['n_ledger']``, ``ledger``.
    """
    acc = account[0]
    acc["balance_settle"] = acc["balance_settle"] + amount_settle
    n = acc["n_ledger"]
    row = ledger[n]
    row["ts_ns"] = ts_ns
    row["kind"] = kind
    row["instrument"] = instrument
    row["amount_settle"] = amount_settle
    row["balance_after_settle"] = acc["balance_settle"]
    row["ref_id"] = ref_id
    acc["n_ledger"] = n + 1


@njit(cache=True)
def fill_record_nb(
    account, fills, ts_ns, order_id, instrument, side, liquidity, price, qty, fee, pnl, after
):
    """Write one FILL row and return its ``fill_id``.

    Mutates: ``account[0]['n_fills']``, ``account[0]['next_fill_id']``, ``fills``.
    """
    acc = account[0]
    n = acc["n_fills"]
    row = fills[n]
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
    row["position_after_contracts"] = after
    acc["n_fills"] = n + 1
    acc["next_fill_id"] = fill_id + 1
    return fill_id
