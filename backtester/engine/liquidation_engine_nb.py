"""The liquidation engine: the check after a mark update, and both liquidation paths.

An isolated position is liquidated on its own (:func:`liquidate_isolated_nb`), the cross
positions of the account together (:func:`liquidate_cross_nb`): resting orders are cancelled,
profiles with a partial-liquidation rule step the position down tiers at the mark, and what is
left is taken over at the bankruptcy price (:func:`takeover_nb`, shared by both paths). The
formulas are the swap kernels' (``backtester.swap.liquidation_nb``, ``insurance_nb``); the
metrics come from :mod:`backtester.engine.metrics_nb` (``state.metrics[0]`` holds those of the
position or account being checked, refreshed between steps).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from backtester.engine.metrics_nb import (
    cross_liquidation_price_nb,
    cross_metrics_nb,
    cross_wallet_nb,
    is_open_cross_nb,
    isolated_buffer_nb,
    isolated_liquidation_price_nb,
    position_bankruptcy_price_nb,
    position_metrics_nb,
)
from backtester.engine.order_entry_nb import cancel_instrument_orders_nb
from backtester.engine.records_nb import fill_record_nb, ledger_nb
from backtester.enums import LedgerKind, Liquidity, MarginMode, WakeReason
from backtester.swap.fee_nb import fee_nb
from backtester.swap.insurance_nb import fund_after_delta_nb, insurance_fund_delta_nb
from backtester.swap.liquidation_nb import is_past_every_tier_nb, partial_liquidation_contracts_nb
from backtester.swap.margin_nb import liquidation_requirement_nb
from backtester.swap.pnl_nb import pnl_nb

# ``state``: the run's EngineState StructRef (engine/state_nb.py), ``Any`` to mypy.

MAX_PARTIAL_STEPS = 1000  # a bound on the partial steps of one liquidation (never reached)


@njit(cache=True)
def liquidation_row_nb(
    state: Any,
    ts_ns: int,
    instrument: int,
    side: int,
    tier: int,
    before: float,
    after: float,
    fund_delta: float,
) -> int:
    """Start one LIQUIDATION row (partial when ``after`` != 0); return its index.

    The venue's insurance fund (``account['insurance_fund_settle']``) takes ``fund_delta``;
    what it cannot cover adds to ``account['uncovered_deficit_settle']`` (fund_after_delta_nb).
    The caller fills in the prices (:func:`set_liquidation_prices_nb`).
    """
    acc = state.account[0]
    n = acc["n_liquidations"]
    r = state.liquidations[n]
    r["ts_ns"] = ts_ns
    r["instrument"] = instrument
    r["side"] = side
    r["is_partial"] = after != 0.0
    r["tier"] = tier
    r["contracts_before"] = before
    r["contracts_after"] = after
    r["mark_price"] = state.positions[instrument]["mark_price"]
    r["insurance_fund_delta_settle"] = fund_delta
    # the fund absorbs the delta down to 0; the rest waits for the period's clawback
    fund, uncovered = fund_after_delta_nb(acc["insurance_fund_settle"], fund_delta)
    acc["insurance_fund_settle"] = fund
    acc["uncovered_deficit_settle"] += uncovered
    r["insurance_fund_after_settle"] = fund
    acc["n_liquidations"] = n + 1
    return n  # type: ignore[no-any-return]  # numba record field


@njit(cache=True)
def set_liquidation_prices_nb(
    r: np.void,
    liq_price: float,
    bankrupt: float,
    fill_price: float,
    market: float,
    ratio: float,
    loss: float,
    fee: float,
) -> None:
    """Fill the prices, margin ratio, loss and fee of LIQUIDATION record ``r``."""
    r["liquidation_price"] = liq_price
    r["bankruptcy_price"] = bankrupt
    r["fill_price"] = fill_price
    r["market_price"] = market
    r["margin_ratio"] = ratio
    r["loss_settle"] = loss
    r["fee_settle"] = fee


@njit(cache=True)
def book_partial_step_nb(
    state: Any,
    i: int,
    ts: int,
    step: float,
    tier: int,
    liq_price: float,
    bankrupt: float,
    ratio: float,
) -> None:
    """Book one partial-liquidation step of position ``i`` at its mark.

    ``step`` contracts are closed: the realised PnL as LIQUIDATION_LOSS and the liquidation
    fee (rate × value at the mark) as LIQUIDATION_FEE, a LIQUIDATION fill and a partial
    liquidation record (``tier``, the liquidation and bankruptcy prices at the trigger, the
    venue's margin ``ratio``). The isolated and the cross steps share it; the caller adjusts
    the position margin (isolated) before. Mutates: the position, account, records.
    """
    s = state.positions[i]
    p = state.params[i]
    kind = p["contract_kind"]
    face = p["face_value"]
    mark = s["mark_price"]
    side = int(np.sign(s["contracts"]))
    before = abs(s["contracts"])
    realised = pnl_nb(kind, side * step, face, s["reference_price"], mark)
    fee = fee_nb(kind, step, face, mark, p["liquidation_fee_rate"])
    s["contracts"] = side * (before - step)
    fill_id = fill_record_nb(
        state, ts, -1, i, -side, Liquidity.LIQUIDATION, mark, step, fee, realised
    )
    ledger_nb(state, ts, LedgerKind.LIQUIDATION_LOSS, i, realised, fill_id)
    ledger_nb(state, ts, LedgerKind.LIQUIDATION_FEE, i, -fee, fill_id)
    n = liquidation_row_nb(state, ts, i, side, tier, before, before - step, 0.0)
    set_liquidation_prices_nb(
        state.liquidations[n], liq_price, bankrupt, mark, s["last_price"], ratio, -realised, fee
    )


@njit(cache=True)
def takeover_nb(
    state: Any,
    i: int,
    ts: int,
    price: float,
    left_at_mark: float,
    tier: int,
    liq_price: float,
    ratio: float,
) -> None:
    """Take position ``i`` over at its bankruptcy ``price``.

    The position is closed; the trader's loss is −PnL(reference → ``price``). The
    liquidation fee is the part of the loss worth liquidation_fee_rate × value at the mark,
    capped by ``left_at_mark`` (the margin left at the mark: the position's, or its
    share of the cross margin balance). Insurance-fund delta = insurance_fund_delta_nb(``price``
    → last trade price): the fund takes the position at the bankruptcy price, so what was left
    of the margin at the market — the clearance fee included (Binance: "the liquidation
    clearance fee" and "a portion of the remaining collateral … will go to the insurance
    fund", Binance-docs-copy; MECHANICS.md §5.1, §5.5) — is its gain, and a market beyond the
    bankruptcy price its loss. The fee is the label of part of the trader's loss, not an extra
    amount. ``liq_price`` (at the trigger), ``tier`` and ``ratio`` go to the record.
    Mutates: the position (flat; its margin is left to the caller), account, records.
    """
    s = state.positions[i]
    p = state.params[i]
    q = s["contracts"]
    kind = p["contract_kind"]
    face = p["face_value"]
    side = int(np.sign(q))
    before = abs(q)
    total = pnl_nb(kind, q, face, s["reference_price"], price)
    fee = min(fee_nb(kind, before, face, s["mark_price"], p["liquidation_fee_rate"]), left_at_mark)
    fee = min(fee, max(0.0, -total))
    market = s["last_price"] if np.isfinite(s["last_price"]) else s["mark_price"]
    delta = insurance_fund_delta_nb(kind, side, before, face, price, market)
    s["contracts"] = 0.0
    s["entry_price"] = np.nan
    s["reference_price"] = np.nan
    loss = total + fee
    fill_id = fill_record_nb(
        state, ts, -1, i, -side, Liquidity.LIQUIDATION, price, before, fee, loss
    )
    ledger_nb(state, ts, LedgerKind.LIQUIDATION_LOSS, i, loss, fill_id)
    if fee != 0.0:
        ledger_nb(state, ts, LedgerKind.LIQUIDATION_FEE, i, -fee, fill_id)
    n = liquidation_row_nb(state, ts, i, side, tier, before, 0.0, delta)
    set_liquidation_prices_nb(
        state.liquidations[n], liq_price, price, price, market, ratio, -loss, fee
    )


@njit(cache=True)
def partial_step_contracts_nb(state: Any, i: int) -> float:
    """Return the contracts one partial-liquidation step of position ``i`` closes at its mark.

    ``partial_liquidation_contracts_nb`` of the profile's partial rule (0: no step).
    """
    s = state.positions[i]
    p = state.params[i]
    return partial_liquidation_contracts_nb(
        p["partial_liquidation_rule"],
        p["partial_liquidation_min_tier"],
        state.tiers,
        p["tier_offset"],
        p["tier_count"],
        p["tier_basis"],
        p["contract_kind"],
        abs(s["contracts"]),
        p["face_value"],
        s["mark_price"],
    )


@njit(cache=True)
def partial_step_nb(state: Any, i: int, ts: int) -> bool:
    """Close one partial-liquidation step of isolated position ``i`` at the mark.

    Returns False when the profile has no partial step for this size, or when the position is
    past the threshold of even the lowest tier (``is_past_every_tier_nb``: no step can make it
    compliant), so the whole position is taken over at the bankruptcy price next.
    """
    s = state.positions[i]
    p = state.params[i]
    m = state.metrics[0]
    q = s["contracts"]
    step = partial_step_contracts_nb(state, i)
    balance = m["margin_balance_settle"]
    if not (step > 0.0 and step < abs(q)) or balance <= 0.0:
        # no partial step for this size, or the mark is already past bankruptcy: take over
        return False
    if is_past_every_tier_nb(
        p["liquidation_rule"],
        state.tiers,
        p["tier_offset"],
        p["tier_count"],
        balance,
        m["position_value_settle"],
        p["liquidation_fee_rate"],
    ):
        return False
    liq_price = isolated_liquidation_price_nb(state, i)
    # the bankruptcy price of the position at this step, for the record (the step itself
    # closes at the mark)
    bankrupt = position_bankruptcy_price_nb(s, p, s["margin_settle"])
    before = abs(q)
    s["margin_settle"] = s["margin_settle"] * ((before - step) / before)
    book_partial_step_nb(state, i, ts, step, m["tier"], liq_price, bankrupt, m["margin_ratio"])
    return True


@njit(cache=True)
def full_takeover_nb(state: Any, i: int, ts: int) -> None:
    """Take isolated position ``i`` over at its bankruptcy price; the trader loses the margin.

    Loss = −pnl(reference → bankruptcy price) = the position margin (:func:`takeover_nb`;
    the fee capped by the margin balance left at the mark). A position that cannot go
    bankrupt (no finite positive bankruptcy price) is taken over at its mark.
    """
    s = state.positions[i]
    p = state.params[i]
    m = state.metrics[0]
    liq_price = isolated_liquidation_price_nb(state, i)
    bankrupt = position_bankruptcy_price_nb(s, p, s["margin_settle"])
    if not (np.isfinite(bankrupt) and bankrupt > 0.0):
        bankrupt = s["mark_price"]
    left_at_mark = max(0.0, m["margin_balance_settle"])
    takeover_nb(state, i, ts, bankrupt, left_at_mark, m["tier"], liq_price, m["margin_ratio"])
    s["margin_settle"] = 0.0


@njit(cache=True)
def liquidate_isolated_nb(state: Any, i: int, ts: int) -> None:
    """Liquidate isolated position ``i``: cancel its orders, step down tiers, else take over.

    Mutates: everything it records into; ``state.metrics[0]`` is refreshed between steps.
    """
    cancel_instrument_orders_nb(state, i, ts)
    m = state.metrics[0]
    for _ in range(MAX_PARTIAL_STEPS):
        if not partial_step_nb(state, i, ts):
            break
        isolated_buffer_nb(state, i, m)
        if m["liquidation_buffer"] > 1.0:
            return
    full_takeover_nb(state, i, ts)


@njit(cache=True)
def cross_bankruptcy_prices_nb(state: Any, out: np.ndarray) -> float:
    """Write the bankruptcy price of every cross position at the account's bankruptcy point.

    The cross margin balance at the marks, MB = wallet + Σ UPL_i, is shared among the cross
    positions by position value at the mark, e_i = MB·PV_i/ΣPV; position i's share of the
    wallet is then M_i = e_i − UPL_i (Σ M_i = wallet), and its bankruptcy price is where
    M_i + PnL_i(P) = 0 (``bankruptcy_price_nb``). Taking every position over at these prices
    costs the account exactly its cross wallet. One position: M = the wallet, the venue's
    cross bankruptcy price (Bybit cross example, MECHANICS.md §5.3). Several positions: the
    split by value is this engine's choice (no venue page gives one), stated here.
    A position that cannot go bankrupt (NaN) gets its mark.

    Writes ``out[i]`` (NaN for non-cross or flat rows); returns MB.
    Mutates: ``out``, ``state.scratch[0]``.
    """
    positions = state.positions
    scratch = state.scratch[0]
    wallet = cross_wallet_nb(state)
    total_upl = 0.0
    total_pv = 0.0
    for i in range(len(positions)):
        out[i] = np.nan
        if not is_open_cross_nb(positions[i]):
            continue
        position_metrics_nb(state, i, scratch)
        total_upl += scratch["unrealised_pnl_settle"]
        total_pv += scratch["position_value_settle"]
    balance = wallet + total_upl
    for i in range(len(positions)):
        s = positions[i]
        if not is_open_cross_nb(s):
            continue
        p = state.params[i]
        position_metrics_nb(state, i, scratch)
        pv = scratch["position_value_settle"]
        share = balance * pv / total_pv if total_pv > 0.0 else 0.0
        bankrupt = position_bankruptcy_price_nb(s, p, share - scratch["unrealised_pnl_settle"])
        out[i] = bankrupt if (np.isfinite(bankrupt) and bankrupt > 0.0) else s["mark_price"]
    return balance


@njit(cache=True)
def is_cross_past_every_tier_nb(state: Any) -> bool:
    """Whether the cross account is past the threshold even at every position's lowest tier.

    ``is_past_every_tier_nb`` summed over the cross positions: MB ≤ Σ requirement_i at tier
    1, so no partial step can make it compliant (MECHANICS.md §5.4).
    """
    scratch = state.scratch[0]
    tiers = state.tiers
    balance = cross_wallet_nb(state)
    requirement = 0.0
    for i in range(len(state.positions)):
        if not is_open_cross_nb(state.positions[i]):
            continue
        p = state.params[i]
        position_metrics_nb(state, i, scratch)
        balance += scratch["unrealised_pnl_settle"]
        pv = scratch["position_value_settle"]
        rule = p["liquidation_rule"]
        fee = p["liquidation_fee_rate"]
        if p["tier_count"] <= 0:
            requirement += liquidation_requirement_nb(
                rule, scratch["maintenance_margin_settle"], pv,
                scratch["maintenance_margin_rate"], fee,
            )  # fmt: skip
            continue
        first = tiers[p["tier_offset"]]
        mmr = first["maintenance_margin_rate"]
        mm = pv * mmr - first["maintenance_amount_settle"]
        requirement += liquidation_requirement_nb(rule, mm, pv, mmr, fee)
    return balance <= requirement


@njit(cache=True)
def cross_partial_step_nb(state: Any, ts: int, bankrupt: np.ndarray) -> bool:
    """Run one partial-liquidation step of the cross account at the marks (OKEx 2019 rule).

    The cross position with the highest tier that its profile steps down
    (``partial_liquidation_contracts_nb``) is reduced at its mark to the target tier; the
    realised PnL and the liquidation fee (rate × value at the mark) go to the wallet. Returns
    False — full takeover next — when no position has a step or the account is past the
    threshold of every tier (``is_cross_past_every_tier_nb``) or its margin balance is ≤ 0.
    ``bankrupt``: work array, one row per instrument.
    """
    m = state.metrics[0]
    scratch = state.scratch[0]
    if m["margin_balance_settle"] <= 0.0:
        return False
    if is_cross_past_every_tier_nb(state):
        return False
    best = -1
    best_tier = -1
    best_step = 0.0
    for i in range(len(state.positions)):
        s = state.positions[i]
        if not is_open_cross_nb(s):
            continue
        step = partial_step_contracts_nb(state, i)
        if not (step > 0.0 and step < abs(s["contracts"])):
            continue
        position_metrics_nb(state, i, scratch)
        if scratch["tier"] > best_tier:
            best, best_tier, best_step = i, scratch["tier"], step
    if best < 0:
        return False
    liq_price = cross_liquidation_price_nb(state, best)
    cross_bankruptcy_prices_nb(state, bankrupt)
    book_partial_step_nb(
        state, best, ts, best_step, best_tier, liq_price, bankrupt[best], m["margin_ratio"]
    )
    return True


@njit(cache=True)
def cross_takeover_nb(state: Any, ts: int, bankrupt: np.ndarray) -> None:
    """Take every cross position over at the account's bankruptcy point.

    The account loses its whole cross wallet (balance − isolated margins → 0): each position
    is closed at its price from :func:`cross_bankruptcy_prices_nb` (:func:`takeover_nb`), its
    fee capped by its share of the margin balance left at the mark (by position value).
    Liquidation prices in the records are those at the trigger.
    """
    positions = state.positions
    m = state.metrics[0]
    scratch = state.scratch[0]
    n = len(positions)
    liq_prices = np.full(n, np.nan)
    for i in range(n):
        liq_prices[i] = cross_liquidation_price_nb(state, i)
    balance = cross_bankruptcy_prices_nb(state, bankrupt)
    total_pv = 0.0
    for i in range(n):
        if is_open_cross_nb(positions[i]):
            position_metrics_nb(state, i, scratch)
            total_pv += scratch["position_value_settle"]
    ratio = m["margin_ratio"]
    for i in range(n):
        if not is_open_cross_nb(positions[i]):
            continue
        position_metrics_nb(state, i, scratch)
        pv = scratch["position_value_settle"]
        left_at_mark = max(0.0, balance * pv / total_pv) if total_pv > 0.0 else 0.0
        takeover_nb(state, i, ts, bankrupt[i], left_at_mark, scratch["tier"], liq_prices[i], ratio)


@njit(cache=True)
def liquidate_cross_nb(state: Any, ts: int) -> None:
    """Liquidate the cross account per the venue's rule for cross accounts.

    The account is frozen (every cross instrument's resting orders cancelled). Profiles with a
    partial-liquidation rule (OKEx 2019: to tier 1; OKX: two tiers a step; BitMEX) step the
    largest-tier position down at its mark (:func:`cross_partial_step_nb`) while the account is
    not past the threshold of every tier, re-checking the cross buffer after each step; when a
    step leaves the account above its requirement the liquidation ends. Otherwise — and always
    with the Binance rule (NONE: "all positions at the bankruptcy price") — every cross position
    is taken over at the account's bankruptcy point (:func:`cross_takeover_nb`) and the account
    loses its cross wallet; what the market fill would have gained or lost against the
    bankruptcy prices is the insurance fund's.

    Source: MECHANICS.md §5.4 (OKEx-swap-guide VIII; Binance 2019-20), §5.3, §5.5.
    Mutates: everything it records into; ``state.metrics[0]`` is refreshed between steps.
    """
    positions = state.positions
    m = state.metrics[0]
    for i in range(len(positions)):
        if is_open_cross_nb(positions[i]):
            cancel_instrument_orders_nb(state, i, ts)
    bankrupt = np.full(len(positions), np.nan)
    for _ in range(MAX_PARTIAL_STEPS):
        if not cross_partial_step_nb(state, ts, bankrupt):
            break
        if cross_metrics_nb(state, m) < 0:
            return
        if m["liquidation_buffer"] > 1.0:
            return
    cross_takeover_nb(state, ts, bankrupt)


@njit(cache=True)
def check_liquidation_nb(state: Any, instrument: int, ts: int) -> int:
    """Run the liquidation check after a mark update of ``instrument`` (never on a trade wick).

    Returns WakeReason bits (LIQUIDATION and/or MARGIN_CALL). The margin call fires once per
    episode: when the liquidation buffer first drops below ``margin_call_buffer_ratio``.
    Mutates: ``state.metrics[0]`` (the checked metrics), and what a liquidation records.
    """
    s = state.positions[instrument]
    m = state.metrics[0]
    if s["contracts"] == 0.0:
        s["margin_call_active"] = False
        return 0
    if s["margin_mode"] == MarginMode.ISOLATED:
        isolated_buffer_nb(state, instrument, m)
    else:
        cross_metrics_nb(state, m)
    if m["maintenance_margin_settle"] > 0.0 and m["liquidation_buffer"] <= 1.0:
        if s["margin_mode"] == MarginMode.ISOLATED:
            liquidate_isolated_nb(state, instrument, ts)
        else:
            liquidate_cross_nb(state, ts)
        s["margin_call_active"] = False
        return WakeReason.LIQUIDATION
    if m["liquidation_buffer"] < state.account[0]["margin_call_buffer_ratio"]:
        if not s["margin_call_active"]:
            s["margin_call_active"] = True
            return WakeReason.MARGIN_CALL
    else:
        s["margin_call_active"] = False
    return 0
