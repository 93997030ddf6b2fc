"""Account and position accounting: fills, margin metrics, funding, settlement, liquidation.

All exchange formulas come from the swap kernels (``backtester.swap.*_nb``); this module only
applies them to the engine state (POSITION_STATE_DTYPE rows, the ACCOUNT_STATE_DTYPE row) and
writes the records. PnL is measured from ``reference_price`` (the entry price until a daily
settlement resets it). Isolated positions hold ``margin_settle``; cross positions use the wallet.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.engine.records_nb import fill_record_nb, ledger_nb
from backtester.enums import (
    LedgerKind,
    Liquidity,
    MarginMode,
    OrderStatus,
    WakeReason,
)
from backtester.swap.fee_nb import fee_nb
from backtester.swap.funding_nb import funding_payment_nb
from backtester.swap.insurance_nb import fund_after_delta_nb, insurance_fund_delta_nb
from backtester.swap.liquidation_nb import (
    bankruptcy_price_nb,
    is_past_every_tier_nb,
    liquidation_price_cross_nb,
    liquidation_price_nb,
    partial_liquidation_contracts_nb,
)
from backtester.swap.margin_nb import (
    initial_margin_nb,
    liquidation_buffer_nb,
    liquidation_requirement_nb,
    maintenance_margin_nb,
    margin_ratio_nb,
)
from backtester.swap.pnl_nb import average_entry_price_nb, pnl_nb, position_value_nb
from backtester.swap.settlement_nb import settlement_pnl_nb
from backtester.swap.tier_nb import tier_index_nb, tier_size_nb

# Output of position_metrics_nb / cross_metrics_nb, by index.
M_UPL = 0
M_PV = 1
M_MM = 2
M_MMR = 3
M_MARGIN_BALANCE = 4
M_BUFFER = 5
M_RATIO = 6
M_TIER = 7
M_CUM = 8
N_METRICS = 9


@njit(cache=True)
def tier_row_nb(params, tiers, instrument, contracts_abs, price) -> int:
    """Absolute tier row of a position of ``contracts_abs`` at ``price``."""
    p = params[instrument]
    size = tier_size_nb(p["tier_basis"], p["contract_kind"], contracts_abs, p["face_value"], price)
    return tier_index_nb(tiers, p["tier_offset"], p["tier_count"], size)


@njit(cache=True, inline="always")
def position_metrics_nb(positions, params, tiers, instrument, out) -> None:
    """UPL, value, maintenance margin, MMR, tier of one position at its mark price.

    Mutates: ``out`` (float array of N_METRICS).
    """
    s = positions[instrument]
    q = s["contracts"]
    mark = s["mark_price"]
    if q == 0.0 or not np.isfinite(mark):
        # element by element: a slice assignment ``out[:] = 0.0`` costs ~20 ns (this runs
        # at mark updates and equity rows)
        for k in range(N_METRICS):
            out[k] = 0.0
        out[M_BUFFER] = np.inf
        out[M_RATIO] = np.nan
        return
    p = params[instrument]
    row = tier_row_nb(params, tiers, instrument, abs(q), mark)
    tier = tiers[row]
    upl, pv, mm = metrics_at_tier_nb(s, p, tier)
    out[M_UPL] = upl
    out[M_PV] = pv
    out[M_MM] = mm
    out[M_MMR] = tier["maintenance_margin_rate"]
    out[M_MARGIN_BALANCE] = 0.0
    out[M_BUFFER] = np.inf
    out[M_RATIO] = np.nan
    out[M_TIER] = tier["tier"]
    out[M_CUM] = tier["maintenance_amount_settle"]


@njit(cache=True, inline="always")
def metrics_at_tier_nb(s, p, tier) -> tuple:
    """(UPL, position value, maintenance margin) of the open position record ``s`` at its
    mark (contract params ``p``, tier row ``tier``): the formulas of
    :func:`position_metrics_nb`, which a caller that knows the tier (the signal kernel, while
    the size is unchanged on a contracts-based table) uses to skip the tier search.

    Records and scalars only: an inlined function's array arguments get reference-count
    updates on every call.
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
def isolated_margins_nb(positions) -> float:
    """Σ margin of isolated positions (locked inside the wallet balance)."""
    total = 0.0
    for i in range(len(positions)):
        if positions[i]["margin_mode"] == MarginMode.ISOLATED:
            total += positions[i]["margin_settle"]
    return total


@njit(cache=True)
def cross_metrics_nb(account, positions, params, tiers, out, scratch) -> int:
    """Margin balance, maintenance and buffer of the cross-margin positions (one settle ccy).

    Returns the first cross instrument with a position (its rule is used), or -1 if none.
    Mutates: ``out``, ``scratch``.
    """
    for k in range(N_METRICS):
        out[k] = 0.0
    out[M_BUFFER] = np.inf
    out[M_RATIO] = np.nan
    first = -1
    for i in range(len(positions)):
        if positions[i]["margin_mode"] != MarginMode.CROSS or positions[i]["contracts"] == 0.0:
            continue
        if first < 0:
            first = i
        position_metrics_nb(positions, params, tiers, i, scratch)
        out[M_UPL] += scratch[M_UPL]
        out[M_PV] += scratch[M_PV]
        out[M_MM] += scratch[M_MM]
    if first < 0:
        return -1
    p = params[first]
    out[M_MMR] = out[M_MM] / out[M_PV] if out[M_PV] > 0 else 0.0
    out[M_MARGIN_BALANCE] = (
        account[0]["balance_settle"] - isolated_margins_nb(positions) + out[M_UPL]
    )
    fee = p["liquidation_fee_rate"]
    rule = p["liquidation_rule"]
    out[M_BUFFER] = liquidation_buffer_nb(
        rule, out[M_MARGIN_BALANCE], out[M_MM], out[M_PV], out[M_MMR], fee
    )
    out[M_RATIO] = margin_ratio_nb(rule, out[M_MARGIN_BALANCE], out[M_MM], out[M_PV], fee)
    return first


@njit(cache=True, inline="always")
def isolated_buffer_nb(positions, params, tiers, instrument, out) -> None:
    """Fill ``out`` with the metrics of an isolated position incl. buffer and ratio."""
    position_metrics_nb(positions, params, tiers, instrument, out)
    s = positions[instrument]
    if s["contracts"] == 0.0:
        return
    isolated_ratio_nb(s, params[instrument], out)


@njit(cache=True, inline="always")
def isolated_ratio_nb(s, p, out) -> None:
    """Margin balance, liquidation buffer and margin ratio of the isolated position record
    ``s`` from its metrics in ``out`` (the second half of :func:`isolated_buffer_nb`)."""
    balance, buffer, ratio = isolated_ratio_at_nb(
        s, p, out[M_UPL], out[M_PV], out[M_MM], out[M_MMR]
    )
    out[M_MARGIN_BALANCE] = balance
    out[M_BUFFER] = buffer
    out[M_RATIO] = ratio


@njit(cache=True, inline="always")
def isolated_ratio_at_nb(s, p, upl, pv, mm, mmr) -> tuple:
    """(margin balance, liquidation buffer, margin ratio) of the isolated position record
    ``s`` (contract params ``p``) with UPL, position value, maintenance margin and MMR."""
    fee = p["liquidation_fee_rate"]
    rule = p["liquidation_rule"]
    balance = s["margin_settle"] + upl
    buffer = liquidation_buffer_nb(rule, balance, mm, pv, mmr, fee)
    ratio = margin_ratio_nb(rule, balance, mm, pv, fee)
    return balance, buffer, ratio


@njit(cache=True)
def available_nb(account, positions, params, tiers, scratch) -> float:
    """Wallet balance free for new margin: balance − isolated margins − cross IM + cross UPL."""
    free = account[0]["balance_settle"] - isolated_margins_nb(positions)
    for i in range(len(positions)):
        s = positions[i]
        if s["margin_mode"] != MarginMode.CROSS or s["contracts"] == 0.0:
            continue
        p = params[i]
        position_metrics_nb(positions, params, tiers, i, scratch)
        im = initial_margin_nb(
            p["contract_kind"],
            abs(s["contracts"]),
            p["face_value"],
            s["mark_price"],
            s["leverage"],
        )
        free += scratch[M_UPL] - im
    return free


@njit(cache=True)
def apply_fill_nb(
    account,
    positions,
    params,
    fills,
    ledger,
    instrument,
    ts_ns,
    order_id,
    side,
    qty,
    price,
    fee_rate,
    liquidity,
) -> int:
    """Apply one fill to the position and the wallet; write FILL and LEDGER rows.

    Realised PnL = pnl_nb(closed part, reference → fill price); fee = fee_nb(qty at price).
    Isolated margin: released pro rata when reducing, initial_margin_nb added when increasing.
    Returns the fill id. Mutates: position row, account, ``fills``, ``ledger``.
    """
    s = positions[instrument]
    p = params[instrument]
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
            s["contracts"] = 0.0
            s["entry_price"] = np.nan
            s["reference_price"] = np.nan
            s["margin_settle"] = 0.0
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
        account,
        fills,
        ts_ns,
        order_id,
        instrument,
        side,
        liquidity,
        price,
        qty,
        fee,
        realised,
        s["contracts"],
    )
    if realised != 0.0:
        ledger_nb(account, ledger, ts_ns, LedgerKind.TRADE_PNL, instrument, realised, fill_id)
    if fee != 0.0:
        ledger_nb(account, ledger, ts_ns, LedgerKind.FEE, instrument, -fee, fill_id)
    return fill_id


@njit(cache=True)
def apply_funding_nb(
    account, positions, params, funding_payments, ledger, instrument, ts_ns, rate, source
) -> bool:
    """Pay or receive funding on an open position at the mark: funding_payment_nb.

    Returns True when a payment was made. Mutates: account, ``funding_payments``, ``ledger``.
    """
    s = positions[instrument]
    p = params[instrument]
    q = s["contracts"]
    if q == 0.0 or not np.isfinite(s["mark_price"]):
        return False
    payment = funding_payment_nb(p["contract_kind"], q, p["face_value"], s["mark_price"], rate)
    acc = account[0]
    n = acc["n_funding_payments"]
    row = funding_payments[n]
    row["ts_ns"] = ts_ns
    row["instrument"] = instrument
    row["funding_rate"] = rate
    row["mark_price"] = s["mark_price"]
    row["position_contracts"] = q
    row["payment_settle"] = payment
    row["source"] = source
    acc["n_funding_payments"] = n + 1
    ledger_nb(account, ledger, ts_ns, LedgerKind.FUNDING, instrument, payment, n)
    return True


@njit(cache=True)
def apply_settlement_nb(account, positions, params, settlements, ledger, instrument, ts_ns) -> None:
    """Daily settlement: UPL at the mark moves to the balance; the reference price resets.

    Equity is unchanged. In fixed-margin (isolated) mode a negative UPL is deducted from the
    position's fixed margin (MECHANICS.md §7, OKEx-swap-guide: "a negative UPL is deducted from
    the fixed margin at settlement"): margin + UPL, the liquidation price and the bankruptcy
    price stay where they were, so the position can never lose more than its margin. A
    positive UPL goes to the free balance (the fixed margin is unchanged).
    Mutates: position row, account, ``settlements``, ``ledger``.
    """
    s = positions[instrument]
    p = params[instrument]
    q = s["contracts"]
    if q == 0.0 or not np.isfinite(s["mark_price"]):
        return
    settled = settlement_pnl_nb(
        p["contract_kind"], q, p["face_value"], s["reference_price"], s["mark_price"]
    )
    acc = account[0]
    n = acc["n_settlements"]
    row = settlements[n]
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
    ledger_nb(account, ledger, ts_ns, LedgerKind.SETTLEMENT, instrument, settled, n)


@njit(cache=True)
def cancel_instrument_orders_nb(account, orders, active, instrument, ts_ns) -> None:
    """Cancel every resting order of ``instrument`` (before a liquidation).

    Mutates: ``orders`` status, ``active`` list and ``account[0]['n_active']``.
    """
    acc = account[0]
    keep = 0
    for k in range(acc["n_active"]):
        row = active[k]
        if orders[row]["instrument"] == instrument:
            orders[row]["status"] = OrderStatus.CANCELLED
            orders[row]["ts_updated_ns"] = ts_ns
        else:
            active[keep] = row
            keep += 1
    acc["n_active"] = keep


@njit(cache=True)
def liquidation_record_nb(
    account,
    liquidations,
    ts_ns,
    instrument,
    side,
    is_partial,
    tier,
    before,
    after,
    mark,
    liq_price,
    bankrupt,
    fill_price,
    market,
    ratio,
    loss,
    fee,
    fund_delta,
) -> int:
    """Write one LIQUIDATION row; returns its index.

    The venue's insurance fund (``account['insurance_fund_settle']``) takes ``fund_delta``;
    what it cannot cover adds to ``account['uncovered_deficit_settle']`` (fund_after_delta_nb).
    """
    acc = account[0]
    n = acc["n_liquidations"]
    r = liquidations[n]
    r["ts_ns"] = ts_ns
    r["instrument"] = instrument
    r["side"] = side
    r["is_partial"] = is_partial
    r["tier"] = tier
    r["contracts_before"] = before
    r["contracts_after"] = after
    r["mark_price"] = mark
    r["liquidation_price"] = liq_price
    r["bankruptcy_price"] = bankrupt
    r["fill_price"] = fill_price
    r["market_price"] = market
    r["margin_ratio"] = ratio
    r["loss_settle"] = loss
    r["fee_settle"] = fee
    r["insurance_fund_delta_settle"] = fund_delta
    # the fund absorbs the delta down to 0; the rest waits for the period's clawback
    fund, uncovered = fund_after_delta_nb(acc["insurance_fund_settle"], fund_delta)
    acc["insurance_fund_settle"] = fund
    acc["uncovered_deficit_settle"] += uncovered
    r["insurance_fund_after_settle"] = fund
    acc["n_liquidations"] = n + 1
    return n


@njit(cache=True)
def isolated_liquidation_price_nb(positions, params, tiers, instrument) -> float:
    """Liquidation price of an isolated position: liquidation_price_nb with the tier of the
    position's size *at the liquidation price* (where the trigger is checked), found by
    starting from the tier at the mark and moving to the tier at the price found until they
    agree (at most one pass per tier; a table by contracts needs none). Binance "Liquidation
    Price Calculation": MMR and cum are those of the bracket of the notional at the
    liquidation price, not at entry."""
    s = positions[instrument]
    p = params[instrument]
    q = s["contracts"]
    if q == 0.0:
        return np.nan
    price = s["mark_price"] if np.isfinite(s["mark_price"]) else s["reference_price"]
    row = tier_row_nb(params, tiers, instrument, abs(q), price)
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
        at_liq = tier_row_nb(params, tiers, instrument, abs(q), liq)
        if at_liq == row:
            break
        row = at_liq
    return liq


@njit(cache=True)
def book_partial_step_nb(
    account, s, p, fills, liquidations, ledger, i, ts, step, tier, liq_price, bankrupt, ratio
) -> None:
    """Book one partial-liquidation step of position row ``s`` (instrument ``i``, params row
    ``p``) at its mark: ``step`` contracts closed, the realised PnL as LIQUIDATION_LOSS and the
    liquidation fee (rate × value at the mark) as LIQUIDATION_FEE, a LIQUIDATION fill and a
    partial liquidation record (``tier``, the liquidation and bankruptcy prices at the trigger,
    the venue's margin ``ratio``). The isolated and the cross steps share it; the caller adjusts
    the position margin (isolated) before. Mutates: ``s``, account, fills, ledger, liquidations.
    """
    kind = p["contract_kind"]
    face = p["face_value"]
    mark = s["mark_price"]
    side = int(np.sign(s["contracts"]))
    before = abs(s["contracts"])
    realised = pnl_nb(kind, side * step, face, s["reference_price"], mark)
    fee = fee_nb(kind, step, face, mark, p["liquidation_fee_rate"])
    s["contracts"] = side * (before - step)
    fill_id = fill_record_nb(
        account, fills, ts, -1, i, -side, Liquidity.LIQUIDATION, mark, step, fee, realised,
        s["contracts"],
    )  # fmt: skip
    ledger_nb(account, ledger, ts, LedgerKind.LIQUIDATION_LOSS, i, realised, fill_id)
    ledger_nb(account, ledger, ts, LedgerKind.LIQUIDATION_FEE, i, -fee, fill_id)
    liquidation_record_nb(
        account, liquidations, ts, i, side, True, tier, before, before - step, mark, liq_price,
        bankrupt, mark, s["last_price"], ratio, -realised, fee, 0.0,
    )  # fmt: skip


@njit(cache=True)
def partial_step_nb(account, positions, params, tiers, fills, liquidations, ledger, i, ts, m):
    """Close one partial-liquidation step of isolated position ``i`` at the mark.

    Returns False when the profile has no partial step for this size, or when the position is
    past the threshold of even the lowest tier (``is_past_every_tier_nb``: no step can make it
    compliant), so the whole position is taken over at the bankruptcy price next.
    """
    s = positions[i]
    p = params[i]
    q = s["contracts"]
    kind = p["contract_kind"]
    face = p["face_value"]
    mark = s["mark_price"]
    step = partial_liquidation_contracts_nb(
        p["partial_liquidation_rule"],
        p["partial_liquidation_min_tier"],
        tiers,
        p["tier_offset"],
        p["tier_count"],
        p["tier_basis"],
        kind,
        abs(q),
        face,
        mark,
    )
    if not (step > 0.0 and step < abs(q)) or m[M_MARGIN_BALANCE] <= 0.0:
        # no partial step for this size, or the mark is already past bankruptcy: take over
        return False
    if is_past_every_tier_nb(
        p["liquidation_rule"],
        tiers,
        p["tier_offset"],
        p["tier_count"],
        m[M_MARGIN_BALANCE],
        m[M_PV],
        p["liquidation_fee_rate"],
    ):
        return False
    side = int(np.sign(q))
    liq_price = isolated_liquidation_price_nb(positions, params, tiers, i)
    # the bankruptcy price of the position at this step, for the record (the step itself
    # closes at the mark)
    bankrupt = bankruptcy_price_nb(
        kind, side, abs(q), face, s["reference_price"], s["margin_settle"]
    )
    before = abs(q)
    s["margin_settle"] = s["margin_settle"] * ((before - step) / before)
    book_partial_step_nb(
        account, s, p, fills, liquidations, ledger, i, ts, step, int(m[M_TIER]), liq_price,
        bankrupt, m[M_RATIO],
    )  # fmt: skip
    return True


@njit(cache=True)
def full_takeover_nb(account, positions, params, tiers, fills, liquidations, ledger, i, ts, m):
    """Take an isolated position over at its bankruptcy price; the trader loses the margin.

    Loss = −pnl(reference → bankruptcy price) = the position margin; the liquidation fee is
    the part of it worth liquidation_fee_rate × value at the mark (capped by what is left at the
    mark). Insurance-fund delta = insurance_fund_delta_nb(bankruptcy → last trade price).
    """
    s = positions[i]
    p = params[i]
    q = s["contracts"]
    kind = p["contract_kind"]
    face = p["face_value"]
    side = int(np.sign(q))
    before = abs(q)
    liq_price = isolated_liquidation_price_nb(positions, params, tiers, i)
    bankrupt = bankruptcy_price_nb(
        kind, side, before, face, s["reference_price"], s["margin_settle"]
    )
    if not (np.isfinite(bankrupt) and bankrupt > 0.0):
        bankrupt = s["mark_price"]
    total = pnl_nb(kind, q, face, s["reference_price"], bankrupt)
    left_at_mark = max(0.0, m[M_MARGIN_BALANCE])
    fee = min(fee_nb(kind, before, face, s["mark_price"], p["liquidation_fee_rate"]), left_at_mark)
    fee = min(fee, max(0.0, -total))
    market = s["last_price"] if np.isfinite(s["last_price"]) else s["mark_price"]
    delta = insurance_fund_delta_nb(kind, side, before, face, bankrupt, market)
    s["contracts"] = 0.0
    s["margin_settle"] = 0.0
    s["entry_price"] = np.nan
    s["reference_price"] = np.nan
    fill_id = fill_record_nb(
        account,
        fills,
        ts,
        -1,
        i,
        -side,
        Liquidity.LIQUIDATION,
        bankrupt,
        before,
        fee,
        total + fee,
        0.0,
    )
    ledger_nb(account, ledger, ts, LedgerKind.LIQUIDATION_LOSS, i, total + fee, fill_id)
    if fee != 0.0:
        ledger_nb(account, ledger, ts, LedgerKind.LIQUIDATION_FEE, i, -fee, fill_id)
    liquidation_record_nb(
        account,
        liquidations,
        ts,
        i,
        side,
        False,
        int(m[M_TIER]),
        before,
        0.0,
        s["mark_price"],
        liq_price,
        bankrupt,
        bankrupt,
        market,
        m[M_RATIO],
        -(total + fee),
        fee,
        delta,
    )


@njit(cache=True)
def liquidate_isolated_nb(
    account, positions, params, tiers, orders, active, fills, liquidations, ledger, i, ts, m
) -> None:
    """Liquidate isolated position ``i``: cancel its orders, step down tiers, else take over.

    Mutates: everything it records into; ``m`` is refreshed between partial steps.
    """
    cancel_instrument_orders_nb(account, orders, active, i, ts)
    for _ in range(1000):
        if not partial_step_nb(
            account, positions, params, tiers, fills, liquidations, ledger, i, ts, m
        ):
            break
        isolated_buffer_nb(positions, params, tiers, i, m)
        if m[M_BUFFER] > 1.0:
            return
    full_takeover_nb(account, positions, params, tiers, fills, liquidations, ledger, i, ts, m)


@njit(cache=True)
def cross_liquidation_price_nb(account, positions, params, tiers, instrument) -> float:
    """Cross-margin liquidation price of ``instrument`` (the other cross positions at their marks).

    ``liquidation_price_cross_nb`` over the cross positions of the account: wallet = balance −
    isolated margins, PnL from each position's reference price (the entry until a daily
    settlement resets it), the rule of ``instrument``'s profile. NaN when flat or isolated.
    """
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
        if r["margin_mode"] != MarginMode.CROSS or r["contracts"] == 0.0:
            continue
        contracts[i] = r["contracts"]
        references[i] = r["reference_price"]
        marks[i] = r["mark_price"] if np.isfinite(r["mark_price"]) else r["reference_price"]
    wallet = account[0]["balance_settle"] - isolated_margins_nb(positions)
    return liquidation_price_cross_nb(
        params[instrument]["liquidation_rule"],
        kinds,
        contracts,
        faces,
        references,
        marks,
        tiers,
        offsets,
        counts,
        bases,
        fees,
        wallet,
        instrument,
    )


@njit(cache=True)
def cross_bankruptcy_prices_nb(account, positions, params, tiers, out, scratch) -> float:
    """Bankruptcy price of every cross position at the account's bankruptcy point.

    The cross margin balance at the marks, MB = wallet + Σ UPL_i, is shared among the cross
    positions by position value at the mark, e_i = MB·PV_i/ΣPV; position i's share of the
    wallet is then M_i = e_i − UPL_i (Σ M_i = wallet), and its bankruptcy price is where
    M_i + PnL_i(P) = 0 (``bankruptcy_price_nb``). Taking every position over at these prices
    costs the account exactly its cross wallet. One position: M = the wallet, the venue's
    cross bankruptcy price (Bybit cross example, MECHANICS.md §5.3). Several positions: the
    split by value is this engine's choice (no venue page gives one), stated here.
    A position that cannot go bankrupt (NaN) gets its mark.

    Writes ``out[i]`` (NaN for non-cross or flat rows); returns MB.
    Mutates: ``out``, ``scratch``.
    """
    wallet = account[0]["balance_settle"] - isolated_margins_nb(positions)
    total_upl = 0.0
    total_pv = 0.0
    for i in range(len(positions)):
        out[i] = np.nan
        s = positions[i]
        if s["margin_mode"] != MarginMode.CROSS or s["contracts"] == 0.0:
            continue
        position_metrics_nb(positions, params, tiers, i, scratch)
        total_upl += scratch[M_UPL]
        total_pv += scratch[M_PV]
    balance = wallet + total_upl
    for i in range(len(positions)):
        s = positions[i]
        if s["margin_mode"] != MarginMode.CROSS or s["contracts"] == 0.0:
            continue
        p = params[i]
        position_metrics_nb(positions, params, tiers, i, scratch)
        share = balance * scratch[M_PV] / total_pv if total_pv > 0.0 else 0.0
        q = s["contracts"]
        bankrupt = bankruptcy_price_nb(
            p["contract_kind"],
            int(np.sign(q)),
            abs(q),
            p["face_value"],
            s["reference_price"],
            share - scratch[M_UPL],
        )
        out[i] = bankrupt if (np.isfinite(bankrupt) and bankrupt > 0.0) else s["mark_price"]
    return balance


@njit(cache=True)
def is_cross_past_every_tier_nb(account, positions, params, tiers, scratch) -> bool:
    """Whether the cross account is past the threshold even with every position at its lowest
    tier (``is_past_every_tier_nb`` summed over the cross positions: MB ≤ Σ requirement_i at
    tier 1), so no partial step can make it compliant (MECHANICS.md §5.4)."""
    balance = account[0]["balance_settle"] - isolated_margins_nb(positions)
    requirement = 0.0
    for i in range(len(positions)):
        s = positions[i]
        if s["margin_mode"] != MarginMode.CROSS or s["contracts"] == 0.0:
            continue
        p = params[i]
        position_metrics_nb(positions, params, tiers, i, scratch)
        balance += scratch[M_UPL]
        if p["tier_count"] <= 0:
            requirement += liquidation_requirement_nb(
                p["liquidation_rule"],
                scratch[M_MM],
                scratch[M_PV],
                scratch[M_MMR],
                p["liquidation_fee_rate"],
            )
            continue
        first = tiers[p["tier_offset"]]
        mmr = first["maintenance_margin_rate"]
        mm = scratch[M_PV] * mmr - first["maintenance_amount_settle"]
        requirement += liquidation_requirement_nb(
            p["liquidation_rule"], mm, scratch[M_PV], mmr, p["liquidation_fee_rate"]
        )
    return balance <= requirement


@njit(cache=True)
def cross_partial_step_nb(
    account, positions, params, tiers, fills, liquidations, ledger, ts, m, scratch, bankrupt
) -> bool:
    """One partial-liquidation step of the cross account at the marks (OKEx 2019 rule).

    The cross position with the highest tier that its profile steps down
    (``partial_liquidation_contracts_nb``) is reduced at its mark to the target tier; the
    realised PnL and the liquidation fee (rate × value at the mark) go to the wallet. Returns
    False — full takeover next — when no position has a step or the account is past the
    threshold of every tier (``is_cross_past_every_tier_nb``) or its margin balance is ≤ 0.
    """
    if m[M_MARGIN_BALANCE] <= 0.0:
        return False
    if is_cross_past_every_tier_nb(account, positions, params, tiers, scratch):
        return False
    best = -1
    best_tier = -1
    best_step = 0.0
    for i in range(len(positions)):
        s = positions[i]
        if s["margin_mode"] != MarginMode.CROSS or s["contracts"] == 0.0:
            continue
        p = params[i]
        step = partial_liquidation_contracts_nb(
            p["partial_liquidation_rule"],
            p["partial_liquidation_min_tier"],
            tiers,
            p["tier_offset"],
            p["tier_count"],
            p["tier_basis"],
            p["contract_kind"],
            abs(s["contracts"]),
            p["face_value"],
            s["mark_price"],
        )
        if not (step > 0.0 and step < abs(s["contracts"])):
            continue
        position_metrics_nb(positions, params, tiers, i, scratch)
        if int(scratch[M_TIER]) > best_tier:
            best, best_tier, best_step = i, int(scratch[M_TIER]), step
    if best < 0:
        return False
    i = best
    s = positions[i]
    p = params[i]
    liq_price = cross_liquidation_price_nb(account, positions, params, tiers, i)
    cross_bankruptcy_prices_nb(account, positions, params, tiers, bankrupt, scratch)
    book_partial_step_nb(
        account, s, p, fills, liquidations, ledger, i, ts, best_step, best_tier, liq_price,
        bankrupt[i], m[M_RATIO],
    )  # fmt: skip
    return True


@njit(cache=True)
def cross_takeover_nb(
    account, positions, params, tiers, fills, liquidations, ledger, ts, m, scratch, bankrupt
) -> None:
    """Take every cross position over at the account's bankruptcy point: the account loses its
    whole cross wallet (balance − isolated margins → 0).

    Each position is closed at its price from :func:`cross_bankruptcy_prices_nb`; loss =
    −PnL(reference → bankruptcy price); the liquidation fee is the part of it worth
    liquidation_fee_rate × value at the mark, capped by the position's share of the margin
    balance left at the mark. Insurance-fund delta = insurance_fund_delta_nb(bankruptcy → last
    trade price): the fund takes the positions at the bankruptcy prices, so what was left of the
    margin at the market — the clearance fee included (Binance: "the liquidation clearance fee"
    and "a portion of the remaining collateral … will go to the insurance fund",
    Binance-docs-copy; MECHANICS.md §5.1, §5.5) — is its gain, and a market beyond the
    bankruptcy prices its loss. The fee is the label of part of the trader's loss, not an extra
    amount. Liquidation prices in the records are those at the trigger.
    """
    n = len(positions)
    liq_prices = np.full(n, np.nan)
    for i in range(n):
        liq_prices[i] = cross_liquidation_price_nb(account, positions, params, tiers, i)
    balance = cross_bankruptcy_prices_nb(account, positions, params, tiers, bankrupt, scratch)
    total_pv = 0.0
    for i in range(n):
        if positions[i]["margin_mode"] == MarginMode.CROSS and positions[i]["contracts"] != 0.0:
            position_metrics_nb(positions, params, tiers, i, scratch)
            total_pv += scratch[M_PV]
    ratio = m[M_RATIO]
    for i in range(n):
        s = positions[i]
        if s["margin_mode"] != MarginMode.CROSS or s["contracts"] == 0.0:
            continue
        p = params[i]
        position_metrics_nb(positions, params, tiers, i, scratch)
        q = s["contracts"]
        side = int(np.sign(q))
        kind = p["contract_kind"]
        face = p["face_value"]
        before = abs(q)
        price = bankrupt[i]
        total = pnl_nb(kind, q, face, s["reference_price"], price)
        left_at_mark = max(0.0, balance * scratch[M_PV] / total_pv) if total_pv > 0.0 else 0.0
        fee = min(
            fee_nb(kind, before, face, s["mark_price"], p["liquidation_fee_rate"]), left_at_mark
        )
        fee = min(fee, max(0.0, -total))
        market = s["last_price"] if np.isfinite(s["last_price"]) else s["mark_price"]
        delta = insurance_fund_delta_nb(kind, side, before, face, price, market)
        s["contracts"] = 0.0
        s["entry_price"] = np.nan
        s["reference_price"] = np.nan
        fill_id = fill_record_nb(
            account,
            fills,
            ts,
            -1,
            i,
            -side,
            Liquidity.LIQUIDATION,
            price,
            before,
            fee,
            total + fee,
            0.0,
        )
        ledger_nb(account, ledger, ts, LedgerKind.LIQUIDATION_LOSS, i, total + fee, fill_id)
        if fee != 0.0:
            ledger_nb(account, ledger, ts, LedgerKind.LIQUIDATION_FEE, i, -fee, fill_id)
        liquidation_record_nb(
            account,
            liquidations,
            ts,
            i,
            side,
            False,
            int(scratch[M_TIER]),
            before,
            0.0,
            s["mark_price"],
            liq_prices[i],
            price,
            price,
            market,
            ratio,
            -(total + fee),
            fee,
            delta,
        )


@njit(cache=True)
def liquidate_cross_nb(
    account,
    positions,
    params,
    tiers,
    orders,
    active,
    fills,
    liquidations,
    ledger,
    ts,
    m,
    scratch,
) -> None:
    """Cross liquidation per the venue's rule for cross accounts.

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
    Mutates: everything it records into; ``m`` is refreshed between steps.
    """
    for i in range(len(positions)):
        s = positions[i]
        if s["margin_mode"] == MarginMode.CROSS and s["contracts"] != 0.0:
            cancel_instrument_orders_nb(account, orders, active, i, ts)
    bankrupt = np.full(len(positions), np.nan)
    for _ in range(1000):
        if not cross_partial_step_nb(
            account, positions, params, tiers, fills, liquidations, ledger, ts, m, scratch, bankrupt
        ):
            break
        if cross_metrics_nb(account, positions, params, tiers, m, scratch) < 0:
            return
        if m[M_BUFFER] > 1.0:
            return
    cross_takeover_nb(
        account, positions, params, tiers, fills, liquidations, ledger, ts, m, scratch, bankrupt
    )


@njit(cache=True)
def check_liquidation_nb(
    account,
    positions,
    params,
    tiers,
    orders,
    active,
    fills,
    liquidations,
    ledger,
    instrument,
    ts,
    m,
    scratch,
) -> int:
    """Liquidation check after a mark update of ``instrument`` (never on a trade wick).

    Returns WakeReason bits (LIQUIDATION and/or MARGIN_CALL). The margin call fires once per
    episode: when the liquidation buffer first drops below ``margin_call_buffer_ratio``.
    """
    s = positions[instrument]
    if s["contracts"] == 0.0:
        s["margin_call_active"] = False
        return 0
    if s["margin_mode"] == MarginMode.ISOLATED:
        isolated_buffer_nb(positions, params, tiers, instrument, m)
        if m[M_MM] > 0.0 and m[M_BUFFER] <= 1.0:
            liquidate_isolated_nb(
                account,
                positions,
                params,
                tiers,
                orders,
                active,
                fills,
                liquidations,
                ledger,
                instrument,
                ts,
                m,
            )
            s["margin_call_active"] = False
            return WakeReason.LIQUIDATION
    else:
        cross_metrics_nb(account, positions, params, tiers, m, scratch)
        if m[M_MM] > 0.0 and m[M_BUFFER] <= 1.0:
            liquidate_cross_nb(
                account,
                positions,
                params,
                tiers,
                orders,
                active,
                fills,
                liquidations,
                ledger,
                ts,
                m,
                scratch,
            )
            s["margin_call_active"] = False
            return WakeReason.LIQUIDATION
    if m[M_BUFFER] < account[0]["margin_call_buffer_ratio"]:
        if not s["margin_call_active"]:
            s["margin_call_active"] = True
            return WakeReason.MARGIN_CALL
    else:
        s["margin_call_active"] = False
    return 0
