"""Daily-settlement kernels: the next settlement instant and the PnL moved to the balance."""

from __future__ import annotations

from numba import njit

from backtester.swap.pnl_nb import pnl_nb

DAY_NS = 86_400_000_000_000


@njit(cache=True)
def next_settlement_ns_nb(ts_ns: int, settlement_offset_ns: int) -> int:
    """Next daily settlement instant strictly after ``ts_ns``.

    Formula
    -------
    next = (⌊(ts − offset)/day⌋ + 1)·day + offset (offset = time of day, ns after 00:00 UTC).

    Source
    ------
    MECHANICS.md §7 (OKEx-swap-guide I: daily settlement at 16:00 HKT = 08:00 UTC).

    Cases
    -----
    okex_daily_settlement (timing in the unit tests).
    """
    n = (ts_ns - settlement_offset_ns) // DAY_NS
    return (n + 1) * DAY_NS + settlement_offset_ns


@njit(cache=True)
def settlement_pnl_nb(
    contract_kind: int,
    contracts_signed: float,
    face_value: float,
    reference_price: float,
    settlement_price: float,
) -> float:
    """Unrealised PnL moved to the balance at a daily settlement (then the reference resets).

    Formula
    -------
    settled = PnL(q, reference price → settlement price) (linear or inverse definition).

    Source
    ------
    MECHANICS.md §7 (OKEx-swap-guide: "UPL is moved to RPL … the settlement reference price is
    reset to the settlement price, so UPL restarts at 0; equity unchanged").

    Cases
    -----
    okex_daily_settlement.
    """
    return pnl_nb(contract_kind, contracts_signed, face_value, reference_price, settlement_price)
