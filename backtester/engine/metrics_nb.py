"""Margin metrics of the positions and of the cross account, at their marks.

Reads the engine state (POSITION_STATE_DTYPE rows, the ACCOUNT_STATE_DTYPE row, the contract
params and tier rows) and writes METRICS_DTYPE records (``state.metrics[0]``, and
``state.scratch[0]`` for one position inside an account sum); changes nothing else. Every
formula is a swap kernel's (``backtester.swap.margin_nb``, ``pnl_nb``, ``liquidation_nb``).
PnL is measured from ``reference_price`` (the entry price until a daily settlement resets it).
Isolated positions hold ``margin_settle``; cross positions share the wallet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from backtester.enums import MarginMode
from backtester.swap.liquidation_nb import (
    bankruptcy_price_nb,
    liquidation_price_cross_nb,
    liquidation_price_nb,
)
from backtester.swap.margin_nb import (
    initial_margin_nb,
    liquidation_buffer_nb,
    maintenance_margin_nb,
    margin_ratio_nb,
)
from backtester.swap.pnl_nb import pnl_nb, position_value_nb
from backtester.swap.tier_nb import tier_index_nb, tier_size_nb

# ``state`` below is the run's EngineState StructRef (engine/state_nb.py), ``Any`` to mypy: its
# numba type is built per combination of array types. Records (``np.void``) are row views.


@njit(cache=True)
def tier_row_nb(state: Any, instrument: int, contracts_abs: float, price: float) -> int:
    """Return the absolute tier row of a position of ``contracts_abs`` at ``price``."""
    p = state.params[instrument]
    size = tier_size_nb(p["tier_basis"], p["contract_kind"], contracts_abs, p["face_value"], price)
    return tier_index_nb(state.tiers, p["tier_offset"], p["tier_count"], size)


@njit(cache=True, inline="always")
def clear_metrics_nb(out: np.void) -> None:
    """Set the metrics record ``out`` to those of no position (buffer inf, ratio NaN).

    Field by field: a whole-record assignment costs more, and this runs at mark updates and
    equity rows.
    """
    out["unrealised_pnl_settle"] = 0.0
    out["position_value_settle"] = 0.0
    out["maintenance_margin_settle"] = 0.0
    out["maintenance_margin_rate"] = 0.0
    out["margin_balance_settle"] = 0.0
    out["liquidation_buffer"] = np.inf
    out["margin_ratio"] = np.nan
    out["tier"] = 0
    out["maintenance_amount_settle"] = 0.0


@njit(cache=True, inline="always")
def position_metrics_nb(state: Any, instrument: int, out: np.void) -> None:
    """Write UPL, value, maintenance margin, MMR and tier of one position at its mark.

    Margin balance, buffer and ratio are left at 0, inf and NaN (the position's part of an
    account; :func:`isolated_buffer_nb` completes them for an isolated position).
    Mutates: ``out`` (METRICS_DTYPE record).
    """
    s = state.positions[instrument]
    clear_metrics_nb(out)
    q = s["contracts"]
    mark = s["mark_price"]
    if q == 0.0 or not np.isfinite(mark):
        return
    p = state.params[instrument]
    tier = state.tiers[tier_row_nb(state, instrument, abs(q), mark)]
    upl, pv, mm = metrics_at_tier_nb(s, p, tier)
    out["unrealised_pnl_settle"] = upl
    out["position_value_settle"] = pv
    out["maintenance_margin_settle"] = mm
    out["maintenance_margin_rate"] = tier["maintenance_margin_rate"]
    out["tier"] = tier["tier"]
    out["maintenance_amount_settle"] = tier["maintenance_amount_settle"]


@njit(cache=True, inline="always")
def metrics_at_tier_nb(s: np.void, p: np.void, tier: np.void) -> tuple[float, float, float]:
    """Return (UPL, position value, maintenance margin) of position record ``s`` at its mark.

    The formulas of :func:`position_metrics_nb` for contract params ``p`` and tier row
    ``tier``, which a caller that knows the tier (the signal kernel, while the size is
    unchanged on a contracts-based table) uses to skip the tier search. Records and scalars
    only: an inlined function's array arguments get reference-count updates on every call.
    """
    q = s["contracts"]
    mark = s["mark_price"]
    kind = p["contract_kind"]
    face = p["face_value"]
    pv = position_value_nb(kind, abs(q), face, mark)
    upl = pnl_nb(kind, q, face, s["reference_price"], mark)
    mm = maintenance_margin_nb(
        pv, tier["maintenance_margin_rate"], tier["maintenance_amount_settle"]
    )
    return upl, pv, mm


@njit(cache=True)
def isolated_margins_nb(state: Any) -> float:
    """Return Σ margin of isolated positions (locked inside the wallet balance)."""
    positions = state.positions
    total = 0.0
    for i in range(len(positions)):
        if positions[i]["margin_mode"] == MarginMode.ISOLATED:
            total += positions[i]["margin_settle"]
    return total


@njit(cache=True)
def cross_wallet_nb(state: Any) -> float:
    """Return the cross wallet: balance − Σ isolated margins (shared by the cross positions)."""
    return state.account[0]["balance_settle"] - isolated_margins_nb(state)  # type: ignore[no-any-return]  # numba record field


@njit(cache=True, inline="always")
def is_open_cross_nb(s: np.void) -> bool:
    """Whether position record ``s`` is an open cross-margin position."""
    return s["margin_mode"] == MarginMode.CROSS and s["contracts"] != 0.0  # type: ignore[no-any-return]  # numba record field


@njit(cache=True)
def cross_metrics_nb(state: Any, out: np.void) -> int:
    """Write margin balance, maintenance and buffer of the cross-margin positions (one ccy).

    Returns the first cross instrument with a position (its rule is used), or -1 if none.
    Mutates: ``out``, ``state.scratch[0]``.
    """
    scratch = state.scratch[0]
    clear_metrics_nb(out)
    first = -1
    for i in range(len(state.positions)):
        if not is_open_cross_nb(state.positions[i]):
            continue
        if first < 0:
            first = i
        position_metrics_nb(state, i, scratch)
        out["unrealised_pnl_settle"] += scratch["unrealised_pnl_settle"]
        out["position_value_settle"] += scratch["position_value_settle"]
        out["maintenance_margin_settle"] += scratch["maintenance_margin_settle"]
    if first < 0:
        return -1
    p = state.params[first]
    pv = out["position_value_settle"]
    mm = out["maintenance_margin_settle"]
    mmr = mm / pv if pv > 0 else 0.0
    balance = cross_wallet_nb(state) + out["unrealised_pnl_settle"]
    fee = p["liquidation_fee_rate"]
    rule = p["liquidation_rule"]
    out["maintenance_margin_rate"] = mmr
    out["margin_balance_settle"] = balance
    out["liquidation_buffer"] = liquidation_buffer_nb(rule, balance, mm, pv, mmr, fee)
    out["margin_ratio"] = margin_ratio_nb(rule, balance, mm, pv, fee)
    return first


@njit(cache=True, inline="always")
def isolated_buffer_nb(state: Any, instrument: int, out: np.void) -> None:
    """Write the metrics of an isolated position incl. margin balance, buffer and ratio.

    Mutates: ``out``.
    """
    position_metrics_nb(state, instrument, out)
    s = state.positions[instrument]
    if s["contracts"] == 0.0:
        return
    balance, buffer, ratio = isolated_ratio_at_nb(
        s,
        state.params[instrument],
        out["unrealised_pnl_settle"],
        out["position_value_settle"],
        out["maintenance_margin_settle"],
        out["maintenance_margin_rate"],
    )
    out["margin_balance_settle"] = balance
    out["liquidation_buffer"] = buffer
    out["margin_ratio"] = ratio


@njit(cache=True, inline="always")
def isolated_ratio_at_nb(
    s: np.void, p: np.void, upl: float, pv: float, mm: float, mmr: float
) -> tuple[float, float, float]:
    """Return (margin balance, liquidation buffer, margin ratio) of isolated position ``s``.

    ``p``: its contract params; ``upl``, ``pv``, ``mm``, ``mmr``: its UPL, position value,
    maintenance margin and MMR. Margin balance = ``margin_settle`` + UPL.
    """
    fee = p["liquidation_fee_rate"]
    rule = p["liquidation_rule"]
    balance = s["margin_settle"] + upl
    buffer = liquidation_buffer_nb(rule, balance, mm, pv, mmr, fee)
    ratio = margin_ratio_nb(rule, balance, mm, pv, fee)
    return balance, buffer, ratio


@njit(cache=True)
def available_nb(state: Any) -> float:
    """Return the wallet balance free for new margin.

    Free = balance − isolated margins − cross initial margin + cross UPL.
    Mutates: ``state.scratch[0]``.
    """
    scratch = state.scratch[0]
    free = cross_wallet_nb(state)
    for i in range(len(state.positions)):
        s = state.positions[i]
        if not is_open_cross_nb(s):
            continue
        p = state.params[i]
        position_metrics_nb(state, i, scratch)
        im = initial_margin_nb(
            p["contract_kind"], abs(s["contracts"]), p["face_value"], s["mark_price"], s["leverage"]
        )
        free += scratch["unrealised_pnl_settle"] - im
    return free


@njit(cache=True)
def position_bankruptcy_price_nb(s: np.void, p: np.void, margin: float) -> float:
    """Return the bankruptcy price of open position record ``s`` holding ``margin``.

    ``bankruptcy_price_nb`` with PnL from the reference price (``p``: the contract params):
    where margin + PnL = 0. ``margin``: the isolated margin, or a cross position's share of
    the cross wallet.
    """
    q = s["contracts"]
    kind = p["contract_kind"]
    face = p["face_value"]
    return bankruptcy_price_nb(kind, int(np.sign(q)), abs(q), face, s["reference_price"], margin)


@njit(cache=True)
def isolated_liquidation_price_nb(state: Any, instrument: int) -> float:
    """Return the liquidation price of an isolated position.

    liquidation_price_nb with the tier of the position's size *at the liquidation price*
    (where the trigger is checked), found by starting from the tier at the mark and moving to
    the tier at the price found until they agree (at most one pass per tier; a table by
    contracts needs none). Binance "Liquidation Price Calculation": MMR and cum are those of
    the bracket of the notional at the liquidation price, not at entry.
    """
    s = state.positions[instrument]
    p = state.params[instrument]
    tiers = state.tiers
    q = s["contracts"]
    if q == 0.0:
        return np.nan
    price = s["mark_price"] if np.isfinite(s["mark_price"]) else s["reference_price"]
    row = tier_row_nb(state, instrument, abs(q), price)
    liq = np.nan
    for _ in range(max(1, p["tier_count"])):
        liq = liquidation_price_nb(
            p["liquidation_rule"],
            p["contract_kind"],
            int(np.sign(q)),
            abs(q),
            p["face_value"],
            s["reference_price"],
            s["margin_settle"],
            tiers[row]["maintenance_margin_rate"],
            tiers[row]["maintenance_amount_settle"],
            p["liquidation_fee_rate"],
        )
        if not (np.isfinite(liq) and liq > 0.0):
            break
        at_liq = tier_row_nb(state, instrument, abs(q), liq)
        if at_liq == row:
            break
        row = at_liq
    return liq


@njit(cache=True)
def cross_liquidation_price_nb(state: Any, instrument: int) -> float:
    """Return the cross-margin liquidation price of ``instrument`` (others at their marks).

    ``liquidation_price_cross_nb`` over the cross positions of the account: wallet = balance −
    isolated margins, PnL from each position's reference price (the entry until a daily
    settlement resets it), the rule of ``instrument``'s profile. NaN when flat or isolated.
    """
    positions = state.positions
    params = state.params
    s = positions[instrument]
    if s["contracts"] == 0.0 or s["margin_mode"] != MarginMode.CROSS:
        return np.nan
    n = len(positions)
    kinds = np.zeros(n, np.int64)
    contracts = np.zeros(n)
    faces = np.zeros(n)
    references = np.zeros(n)
    marks = np.zeros(n)
    offsets = np.zeros(n, np.int64)
    counts = np.zeros(n, np.int64)
    bases = np.zeros(n, np.int64)
    fees = np.zeros(n)
    for i in range(n):
        r = positions[i]
        p = params[i]
        kinds[i] = p["contract_kind"]
        faces[i] = p["face_value"]
        offsets[i] = p["tier_offset"]
        counts[i] = p["tier_count"]
        bases[i] = p["tier_basis"]
        fees[i] = p["liquidation_fee_rate"]
        if not is_open_cross_nb(r):
            continue
        contracts[i] = r["contracts"]
        references[i] = r["reference_price"]
        marks[i] = r["mark_price"] if np.isfinite(r["mark_price"]) else r["reference_price"]
    return liquidation_price_cross_nb(
        params[instrument]["liquidation_rule"],
        kinds,
        contracts,
        faces,
        references,
        marks,
        state.tiers,
        offsets,
        counts,
        bases,
        fees,
        cross_wallet_nb(state),
        instrument,
    )
