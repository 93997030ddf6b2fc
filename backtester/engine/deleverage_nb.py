"""Auto-deleveraging (ADL) and clawback applied to the strategy's own positions.

The venue's other traders are not simulated, so the replay cannot know when the insurance fund
runs dry. An ADL or clawback episode is therefore a **scenario input**: one row of a
``DELEVERAGE_EVENT_DTYPE`` stream (``MarketData.deleverage``), taken from a historical
announcement or written as a stress scenario. What this module decides is whether the strategy's
own position is hit, using the venue's rule, and what that does to the account:

ADL (``LedgerKind.ADL``)
    The position on instrument ``i`` is closed, in full or by the event's ``contracts``, at the
    event price (the bankruptcy price of the liquidated counter-order, BitMEX/Binance practice,
    MECHANICS.md §6; OKX summaries say the mark price, §9 item 9, so an OKX scenario puts the
    mark there) when it is on the
    deleveraged side (``event.side``: +1 longs, −1 shorts, 0 both), is in profit at the event
    price, and its ranking score (:func:`adl_ranking_nb`) is ≥ ``event.threshold``, the cut-off of
    the venue's queue in this scenario. No fee is charged (see :func:`apply_adl_nb`).
CLAWBACK (``LedgerKind.CLAWBACK``)
    ``event.threshold`` is the clawback rate; the strategy gives up that fraction of its net profit
    on instrument ``i`` over the settlement day just closed (:func:`clawback_profit_nb`),
    MECHANICS.md §6 (OKEx "take a portion of the profit in equal percentage from all profited
    traders"; "users that have a net profit for the day").

Every cash movement goes through ``ledger_nb``, so ``initial balance + Σ ledger = balance`` holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from backtester.dtypes import METRICS_DTYPE
from backtester.engine.cash_nb import close_position_nb, settle_due_nb
from backtester.engine.metrics_nb import (
    cross_metrics_nb,
    cross_wallet_nb,
    position_bankruptcy_price_nb,
    tier_row_nb,
)
from backtester.engine.records_nb import fill_record_nb, ledger_nb
from backtester.enums import AdlRule, ContractKind, LedgerKind, Liquidity, MarginMode
from backtester.swap.insurance_nb import (
    bitmex_adl_ranking_nb,
    clawback_rate_nb,
    next_period_end_ns_nb,
)
from backtester.swap.margin_nb import initial_margin_nb, maintenance_margin_nb, margin_ratio_nb
from backtester.swap.pnl_nb import pnl_nb, position_value_nb
from backtester.swap.settlement_nb import DAY_NS, next_settlement_ns_nb

# ``state``: the run's EngineState StructRef (engine/state_nb.py), ``Any`` to mypy; ``event``: a
# DELEVERAGE_EVENT_DTYPE record.

APPLIED = 1
"""Return value of :func:`apply_deleverage_event_nb` when the episode changed the account."""

NOT_APPLIED = 0
"""Return value when the strategy was not hit (flat, wrong side, loss, below the cut-off)."""


@njit(cache=True)
def signed_value_nb(
    contract_kind: int, contracts_signed: float, face_value: float, price: float
) -> float:
    """Return the signed position value at ``price`` such that PnL = value(exit) − value(entry).

    Formula
    -------
    linear q·F·P; inverse −q·F/P (BitMEX's sign for XBTUSD: a long's value is negative). 0 for
    a price that is not finite and > 0 (a position that can never go bankrupt has bankrupt
    value 0, i.e. effective leverage 1 for a long).

    Source
    ------
    MECHANICS.md §6 (BitMEX-docs-copy: "Mark Value = Position Value at Mark Price", "Bankrupt
    Value", "Avg Entry Value"), §1.2 (PnL formulas the sign convention reproduces).
    """
    if not (np.isfinite(price) and price > 0.0):
        return 0.0
    if contract_kind == ContractKind.INVERSE:
        return -contracts_signed * face_value / price
    return contracts_signed * face_value * price


@njit(cache=True)
def okx_adl_ranking_nb(roi: float, margin_ratio: float) -> float:
    """Return the OKX ADL ranking of a profitable position (higher first; NaN: not ranked).

    Formula
    -------
    ranking = ROI / margin ratio for ROI > 0 (ROI = UPL / position margin; margin ratio as the
    venue defines it, isolated: of the position, cross: of the account); NaN for ROI ≤ 0, which
    this engine never deleverages.

    Source
    ------
    MECHANICS.md §6 (OKX-ADL: "opposing positions ranked by profit/leverage (isolated: ROI /
    margin ratio; cross: ROI / account margin ratio)").
    """
    if not roi > 0.0 or not margin_ratio > 0.0:
        return np.nan
    return roi / margin_ratio


@njit(cache=True)
def adl_ranking_nb(state: Any, i: int, price: float) -> float:
    """Return the ranking score of the position on instrument ``i`` by its ``adl_rule``.

    The venue ranks at the mark, so the position's ``mark_price`` is used (``price``, the event
    price, only stands in while no mark is known). PnL% / ROI is measured from ``entry_price``
    (average entry); the bankruptcy price and margin balance from ``reference_price`` and the
    margin, as the engine's accounting does.

    Rules
    -----
    ADL_OKX
        :func:`okx_adl_ranking_nb`: isolated ROI = UPL/``margin_settle``, margin ratio of the
        position (``margin_ratio_nb`` at the mark with its tier); cross ROI = UPL/initial margin
        at the mark and the account's cross margin ratio (``cross_metrics_nb``).
    ADL_BITMEX and every other rule (CLAWBACK, NONE: the profile has no ranking of its own, so
        the BitMEX formula stands in; Binance profiles use ADL_BITMEX, MECHANICS.md §6)
        ``bitmex_adl_ranking_nb`` of the signed values (:func:`signed_value_nb`) at the mark,
        the average entry and the bankruptcy price; the bankruptcy margin is ``margin_settle``
        (isolated) or the cross wallet, balance − isolated margins (cross).

    Returns NaN for a flat position or where the formula is undefined (never ≥ a threshold).
    """
    s = state.positions[i]
    q = s["contracts"]
    if q == 0.0:
        return np.nan
    p = state.params[i]
    kind = p["contract_kind"]
    face = p["face_value"]
    mark = s["mark_price"] if np.isfinite(s["mark_price"]) else price
    isolated = s["margin_mode"] == MarginMode.ISOLATED
    upl_entry = pnl_nb(kind, q, face, s["entry_price"], mark)
    if p["adl_rule"] == AdlRule.ADL_OKX:
        if isolated:
            row = tier_row_nb(state, i, abs(q), mark)
            pv = position_value_nb(kind, abs(q), face, mark)
            mm = maintenance_margin_nb(
                pv,
                state.tiers[row]["maintenance_margin_rate"],
                state.tiers[row]["maintenance_amount_settle"],
            )
            balance = s["margin_settle"] + pnl_nb(kind, q, face, s["reference_price"], mark)
            ratio = margin_ratio_nb(
                p["liquidation_rule"], balance, mm, pv, p["liquidation_fee_rate"]
            )
            margin = s["margin_settle"]
        else:
            m = np.zeros(1, METRICS_DTYPE)[0]
            cross_metrics_nb(state, m)
            ratio = m["margin_ratio"]
            margin = initial_margin_nb(kind, abs(q), face, mark, s["leverage"])
        if not margin > 0.0:
            return np.nan
        return okx_adl_ranking_nb(upl_entry / margin, ratio)
    margin = s["margin_settle"] if isolated else cross_wallet_nb(state)
    bankrupt = position_bankruptcy_price_nb(s, p, margin)
    return bitmex_adl_ranking_nb(
        signed_value_nb(kind, q, face, mark),
        signed_value_nb(kind, q, face, s["entry_price"]),
        signed_value_nb(kind, q, face, bankrupt),
    )


@njit(cache=True)
def adl_record_nb(
    state: Any,
    ts_ns: int,
    instrument: int,
    kind: int,
    contracts: float,
    price: float,
    rate: float,
    amount: float,
) -> int:
    """Write one ADL_DTYPE row and return its index.

    Mutates: ``account[0]['n_adl']``, ``state.adl``.
    """
    acc = state.account[0]
    n = acc["n_adl"]
    row = state.adl[n]
    row["ts_ns"] = ts_ns
    row["instrument"] = instrument
    row["kind"] = kind
    row["contracts"] = contracts
    row["price"] = price
    row["rate"] = rate
    row["amount_settle"] = amount
    acc["n_adl"] = n + 1
    return n  # type: ignore[no-any-return]  # numba record field


@njit(cache=True)
def apply_adl_nb(state: Any, i: int, ts: int, event: np.void) -> int:
    """Auto-deleverage the position on instrument ``i`` if the episode hits it.

    Hit when all hold: the position is open; ``event['side']`` is 0 or its side; it is in profit
    at the event price (PnL from ``entry_price`` to ``event['price']`` > 0) — except under
    ADL_BITMEX, whose queue also holds losing positions ranked by PNL% ÷ effective leverage
    (BitMEX ADL page: "Ranking = PNL Percentage / Effective Leverage (if PNL percentage < 0)");
    its :func:`adl_ranking_nb` score ≥ ``event['threshold']``.

    Effect
    ------
    ``c = min(|q|, event['contracts'])`` contracts are closed at ``event['price']`` (all of them
    when ``event['contracts']`` is 0 or NaN): venues deleverage the queue's accounts in rank
    order, each by what the liquidated order still needs, so a position is often reduced, not
    closed (BitMEX ADL example: "the remaining 10 contracts ... assigned to account 5", which
    keeps 10 of 20). A FILL row (``order_id`` −1, ``Liquidity.ADL``, fee 0, realised PnL =
    pnl_nb(reference → event price) of the closed contracts), a TRADE_PNL ledger row (the kind
    ``apply_fill_nb`` uses, so PnL attribution counts it as trading PnL), the closed share
    c/|q| of the isolated margin released (it stays in the wallet, no cash moves; entry and
    reference prices of the rest are unchanged), and one ADL_DTYPE row: kind ADL, contracts
    closed, price, rate = ranking score, ``amount_settle`` = PnL at the mark − PnL at the event
    price of the closed contracts (profit given up against closing at the mark; negative when
    the bankruptcy price is the better one, as it usually is for the deleveraged side; 0
    without a mark). Resting orders are not touched here (BitMEX cancels them:
    "Open orders will be cancelled"; the caller has the order arrays).

    Fee: none. MECHANICS.md §6 gives the close price of ADL but no fee rule; BitMEX's ADL page
    (support.bitmex.com "What is Auto-Deleveraging") describes the close at the bankruptcy price
    with no commission, and no venue page read charges one. Unverified, like MECHANICS.md §9.

    Returns :data:`APPLIED` (1) or :data:`NOT_APPLIED` (0).
    Mutates: position row, account, fills, ledger, ADL rows.
    """
    s = state.positions[i]
    p = state.params[i]
    q = s["contracts"]
    if q == 0.0:
        return NOT_APPLIED
    side = int(np.sign(q))
    hit_side = int(event["side"])
    if hit_side != 0 and hit_side != side:
        return NOT_APPLIED
    kind = p["contract_kind"]
    face = p["face_value"]
    price = event["price"]
    # BitMEX ranks losing positions too (PNL% / effective leverage < 0, after every profitable
    # one): a cut-off below their score reaches them; other rules rank profitable positions only
    if (
        p["adl_rule"] != AdlRule.ADL_BITMEX
        and not pnl_nb(kind, q, face, s["entry_price"], price) > 0.0
    ):
        return NOT_APPLIED
    score = adl_ranking_nb(state, i, price)
    if not score >= event["threshold"]:
        return NOT_APPLIED
    closed = abs(q)
    wanted = event["contracts"]
    if wanted > 0.0 and wanted < closed:  # NaN and 0 compare False: the whole position
        closed = wanted
    part = side * closed  # signed contracts closed
    realised = pnl_nb(kind, part, face, s["reference_price"], price)
    given_up = 0.0
    if np.isfinite(s["mark_price"]):
        given_up = pnl_nb(kind, part, face, s["reference_price"], s["mark_price"]) - realised
    if closed < abs(q):
        s["margin_settle"] = s["margin_settle"] * (1.0 - closed / abs(q))
        s["contracts"] = q - part
    else:
        close_position_nb(s)
        s["margin_call_active"] = False
    fill_id = fill_record_nb(state, ts, -1, i, -side, Liquidity.ADL, price, closed, 0.0, realised)
    if realised != 0.0:
        ledger_nb(state, ts, LedgerKind.TRADE_PNL, i, realised, fill_id)
    adl_record_nb(state, ts, i, LedgerKind.ADL, closed, price, score, given_up)
    return APPLIED


@njit(cache=True)
def clawback_profit_nb(state: Any, instrument: int, ts: int) -> float:
    """Return the net profit of ``instrument`` over the settlement day that closed last.

    The day is (T − 1 day, T], T = the last settlement instant ≤ ``ts`` on the daily grid at
    ``settlement_offset_ns`` (08:00 UTC for OKEx; profiles without daily settlement use the same
    grid, 00:00 UTC with offset 0). Net profit = Σ ``amount_settle`` of the instrument's ledger
    rows in that day of every kind but DEPOSIT and MARGIN_TRANSFER (trading PnL, fees, funding,
    liquidation, settlement, earlier clawbacks), plus the SETTLEMENT row of T itself when the
    loop applied it after T (at the first event of the instrument at or after T, ≤ ``ts``).
    Unrealised PnL counts only as far as a daily settlement moved it to the balance, so put a
    clawback at the settlement instant (OKEx credits "RPL less the clawback" at settlement).

    Source
    ------
    MECHANICS.md §6 (OKEx clawback: "users that have a net profit for the day"; computed at the
    settlement). Ledger rows are in time order, so the scan stops at the first row ≤ T − 1 day.
    """
    ledger = state.ledger
    end = next_settlement_ns_nb(ts, state.params[instrument]["settlement_offset_ns"]) - DAY_NS
    start = end - DAY_NS
    total = 0.0
    for k in range(state.account[0]["n_ledger"] - 1, -1, -1):
        row = ledger[k]
        row_ts = row["ts_ns"]
        if row_ts <= start:
            break
        if row["instrument"] != instrument:
            continue
        kind = row["kind"]
        if kind == LedgerKind.DEPOSIT or kind == LedgerKind.MARGIN_TRANSFER:
            continue
        if row_ts <= end or (kind == LedgerKind.SETTLEMENT and row_ts <= ts):
            total += row["amount_settle"]
    return total


@njit(cache=True)
def clawback_cap_nb(state: Any, wanted: float) -> float:
    """Return the part of a clawback of ``wanted`` (settle, > 0) the account can pay.

    The rest is added to ``account['clawback_not_taken_settle']`` (reported after the run).

    Formula
    -------
    taken = min(wanted, max(0, balance − Σ isolated margins)).

    Why: OKEx takes the clawback out of the profit it credits at the settlement ("RPL less the
    Clawback amount", MECHANICS.md §6), so it never exceeds what the account holds. A scenario
    event later than the settlement instant finds the day's profit possibly lost since (spent
    as margin of a position liquidated in between): it takes only the free wallet, never the
    margin locked in isolated positions, and never drives the wallet below zero.

    Mutates: ``account['clawback_not_taken_settle']``.
    """
    acc = state.account[0]
    free = cross_wallet_nb(state)
    taken = wanted
    if not free >= wanted:
        taken = max(0.0, free)
        acc["clawback_not_taken_settle"] += wanted - taken
    return taken


@njit(cache=True)
def apply_clawback_nb(state: Any, i: int, ts: int, event: np.void) -> int:
    """Take ``rate`` × the strategy's net profit of the day just closed on instrument ``i``.

    Formula
    -------
    amount = rate · max(0, clawback_profit_nb(...)), rate = ``event['threshold']`` ∈ [0, 1],
    capped at the free wallet (:func:`clawback_cap_nb`: the day's profit may have been lost
    between the settlement and the event).

    Every instrument's daily settlement due by ``ts`` is applied first (the loop settles an
    instrument at its own next event), so the period's profit includes the settlement at the
    clawback instant.

    Effect: a CLAWBACK ledger row of −amount (ref_id = the ADL row) and an ADL_DTYPE row (kind
    CLAWBACK, contracts 0, price NaN, rate, ``amount_settle`` = amount). Nothing is written when
    the amount is 0 (no profit, rate 0, no free wallet). Returns :data:`APPLIED` or
    :data:`NOT_APPLIED`.
    Mutates: account (``clawback_not_taken_settle`` too), ``adl``, ``ledger``.

    Source
    ------
    MECHANICS.md §6 (OKEx "full account clawback", ``user clawback = user profit × rate``;
    the rate itself is ``insurance_nb.clawback_rate_nb`` of the venue-wide deficit, a scenario
    input here).
    """
    rate = event["threshold"]
    if not rate > 0.0:
        return NOT_APPLIED
    profit = clawback_profit_nb(state, i, ts)
    if not profit > 0.0:
        return NOT_APPLIED
    amount = clawback_cap_nb(state, rate * profit)
    if not amount > 0.0:
        return NOT_APPLIED
    n = adl_record_nb(state, ts, i, LedgerKind.CLAWBACK, 0.0, np.nan, rate, amount)
    ledger_nb(state, ts, LedgerKind.CLAWBACK, i, -amount, n)
    return APPLIED


@njit(cache=True)
def apply_deleverage_event_nb(state: Any, i: int, ts: int, event: np.void) -> int:
    """Apply one DELEVERAGE_EVENT_DTYPE row of instrument ``i`` at ``ts`` to the strategy.

    Dispatches on ``event['kind']``: ADL → :func:`apply_adl_nb`, CLAWBACK →
    :func:`apply_clawback_nb`; any other kind is ignored (``MarketData`` refuses it on load).

    Returns :data:`APPLIED` (1) when the account changed (the caller maps it to a wake-up: an
    ADL close writes a fill, so WakeReason.FILL suits it; a clawback only a ledger row) or
    :data:`NOT_APPLIED` (0). Writes at most one fill, one ledger and one ADL row, so the caller's
    buffer head-room check needs one free row in each.
    Mutates: position row, account, fills, ADL rows, ledger.
    """
    kind = event["kind"]
    if kind == LedgerKind.ADL:
        return apply_adl_nb(state, i, ts, event)
    if kind == LedgerKind.CLAWBACK:
        return apply_clawback_nb(state, i, ts, event)
    return NOT_APPLIED


@njit(cache=True)
def account_profit_nb(state: Any, start_ns: int, end_ns: int) -> float:
    """Return the net profit of the whole account (every instrument) over (start, end].

    Σ ``amount_settle`` of the rows in the period of every kind but DEPOSIT, MARGIN_TRANSFER
    and CLAWBACK: trading PnL, fees, funding, liquidation, settlement. Unrealised PnL counts as
    far as a daily settlement moved it to the balance (the OKEx clawback runs at the settlement
    instant). Source: MECHANICS.md §6 (OKEx: "users with a net profit (realised + unrealised)
    across all contracts of the period").
    """
    ledger = state.ledger
    total = 0.0
    for k in range(state.account[0]["n_ledger"] - 1, -1, -1):
        row = ledger[k]
        if row["ts_ns"] <= start_ns:
            break
        if row["ts_ns"] > end_ns:
            continue
        kind = row["kind"]
        if (
            kind == LedgerKind.DEPOSIT
            or kind == LedgerKind.MARGIN_TRANSFER
            or kind == LedgerKind.CLAWBACK
        ):
            continue
        total += row["amount_settle"]
    return total


@njit(cache=True)
def apply_period_clawback_nb(state: Any, ts: int) -> int:
    """Socialise, at the end of a clawback period, the deficit the insurance fund could not cover.

    Formula
    -------
    rate = max(0, deficit − fund)/Σ profits (``clawback_rate_nb``; the deficit here is what
    was left after the fund was drained to 0, so fund = 0); Σ profits =
    ``account['clawback_profit_pool_settle']`` — the venue's profitable accounts over the
    period — or, when NaN, the strategy's own profit (it is then the only profitable account
    the replay knows of); the pool is never less than the strategy's own profit.
    clawback = rate × the account's net profit over the period (:func:`account_profit_nb`, all
    instruments), when positive, capped at the free wallet (:func:`clawback_cap_nb`).

    Every instrument's daily settlement due by ``ts`` is applied first (the loop settles an
    instrument at its own next event), so the period's profit includes the settlement at the
    clawback instant.

    Effect: a CLAWBACK ledger row (instrument −1, account level) of −clawback and an ADL_DTYPE
    row (kind CLAWBACK, instrument −1, rate, amount); the uncovered deficit restarts at 0 and
    the next period end is set. Returns :data:`APPLIED` when a clawback was taken.

    Source
    ------
    MECHANICS.md §6 (OKEx full-account clawback: "take a portion of the profit in equal
    percentage from all profited traders", weekly, all contract types; Aug 2018 ≈ 18 %).
    """
    acc = state.account[0]
    for j in range(len(state.positions)):
        if state.params[j]["daily_settlement"] and ts >= state.positions[j]["next_settlement_ns"]:
            settle_due_nb(state, j, ts)
    end = acc["next_clawback_ns"]
    period = acc["clawback_period_ns"]
    start = end - period
    acc["next_clawback_ns"] = next_period_end_ns_nb(ts, period, acc["clawback_offset_ns"])
    deficit = acc["uncovered_deficit_settle"]
    acc["uncovered_deficit_settle"] = 0.0
    if not deficit > 0.0:
        return NOT_APPLIED
    profit = account_profit_nb(state, start, end)
    if not profit > 0.0:
        return NOT_APPLIED
    pool = acc["clawback_profit_pool_settle"]
    if not (np.isfinite(pool) and pool > profit):
        pool = profit
    rate = clawback_rate_nb(deficit, 0.0, pool)
    amount = rate * profit
    if amount > 0.0:
        amount = clawback_cap_nb(state, amount)
    if not amount > 0.0:
        return NOT_APPLIED
    n = adl_record_nb(state, ts, -1, LedgerKind.CLAWBACK, 0.0, np.nan, rate, amount)
    ledger_nb(state, ts, LedgerKind.CLAWBACK, -1, -amount, n)
    return APPLIED
