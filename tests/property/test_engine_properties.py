"""Invariants of the engine over random bars and random order streams (hypothesis).

* the ledger conserves: initial balance + Σ ledger amounts = final balance, row by row;
* with isolated margin only, the wallet never goes negative (no isolated loss exceeds its
  margin plus the fees reserved at acceptance) — also on profiles with the OKEx daily
  settlement (hourly bars cross 08:00 UTC), where a negative UPL settled out of the fixed
  margin must not let the position lose its margin a second time (issue 12 item 1);
* every strategy fill lies inside the range of the bar it happened in;
* ADL closes and clawbacks (random scenario events) keep all of the above, and the ledger's
  CLAWBACK rows equal the clawback records.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import ContractKind, LedgerKind, Liquidity
from backtester.swap import get_contract

MINUTE_NS = 60_000_000_000
T0 = 1_704_067_200_000_000_000
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 86_400_000_000_000

# (contract, contracts per unit of a drawn size): the OKX USDT swap without daily settlement,
# the same contract on a profile with the 08:00 UTC settlement, and the OKEx 2019
# coin-margined swap (inverse, settlement, partial liquidation).
OKX_USDT = get_contract("okx:BTC-USDT-SWAP")
OKX_USDT_SETTLED = replace(OKX_USDT, profile=replace(OKX_USDT.profile, daily_settlement=True))
VENUES = [
    (OKX_USDT, 0.1),
    (OKX_USDT_SETTLED, 0.1),
    (get_contract("okx_coinm_2019:BTC-USD-SWAP"), 1.0),
]


@st.composite
def scenarios(draw):
    n = draw(st.integers(3, 30))
    interval = draw(st.sampled_from([MINUTE_NS, HOUR_NS, 4 * HOUR_NS]))
    steps = draw(st.lists(st.floats(-0.03, 0.03), min_size=n, max_size=n))
    close = np.round(20_000.0 * np.exp(np.cumsum(steps)), 1)
    open_ = np.r_[20_000.0, close[:-1]]
    wick_up = draw(st.lists(st.floats(0.0, 0.02), min_size=n, max_size=n))
    wick_down = draw(st.lists(st.floats(0.0, 0.02), min_size=n, max_size=n))
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    # hourly bars start at 04:00 UTC, so most runs cross the 08:00 UTC daily settlement with
    # the opening order filled (at 06:00); 4-hour bars cross several
    start = T0 + (4 * HOUR_NS if interval == HOUR_NS else 0)
    bars["ts_ns"] = start + np.arange(n) * interval
    bars["open"] = open_
    bars["close"] = close
    bars["high"] = np.round(np.maximum(open_, close) * (1 + np.array(wick_up)), 1)
    bars["low"] = np.round(np.minimum(open_, close) * (1 - np.array(wick_down)), 1)
    actions = draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.sampled_from(["market", "limit", "stop", "take_profit", "close", "cancel"]),
                st.integers(-40, 40).filter(lambda v: v != 0),
                st.floats(-0.03, 0.03),
                st.booleans(),
            ),
            max_size=12,
        )
    )
    # an opening market order on the first bar, so the later episodes often meet a position
    actions = [(0, "market", draw(st.integers(-40, 40).filter(bool)), 0.0, False), *actions]
    leverage = draw(st.sampled_from([1.0, 5.0, 20.0, 50.0, 100.0]))
    funding_rate = draw(st.floats(-0.003, 0.003))
    episodes = draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.booleans(),  # ADL (else clawback)
                st.sampled_from([-1, 0, 1]),
                st.floats(-0.02, 0.02),
                st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]),
            ),
            max_size=3,
        )
    )
    deleverage = np.zeros(len(episodes), dtypes.DELEVERAGE_EVENT_DTYPE)

    # ADL within the bars; a clawback the next day takes a share of this day's profit. In time
    # order (a clawback for an early bar can come before an ADL of a late one on long bars)
    def event_ns(episode: tuple) -> int:
        at, adl = episode[0], episode[1]
        return int(bars["ts_ns"][at]) + interval // 2 + (0 if adl else DAY_NS)

    in_time_order = sorted(episodes, key=lambda e: (event_ns(e), not e[1]))
    for row, episode in zip(deleverage, in_time_order, strict=True):
        at, adl, side, offset, threshold = episode
        row["ts_ns"] = event_ns(episode)
        row["kind"] = LedgerKind.ADL if adl else LedgerKind.CLAWBACK
        row["side"] = side if adl else 0
        row["price"] = round(float(close[at]) * (1 + offset), 1) if adl else np.nan
        row["threshold"] = threshold
    # with hourly and 4-hour bars an ADL inside the bars can come after a clawback a day on
    deleverage = deleverage[np.argsort(deleverage["ts_ns"], kind="stable")]
    contract, scale = draw(st.sampled_from(VENUES))
    # The wallet holds a small multiple of the opening order's margin and fee, so an isolated
    # loss beyond the position's margin shows as a negative wallet.
    contracts = abs(actions[0][2]) * scale
    price = float(close[0])
    if contract.contract_kind == ContractKind.INVERSE:
        value = contracts * contract.face_value / price
    else:
        value = contracts * contract.face_value * price
    cushion = draw(st.sampled_from([1.2, 1.5, 3.0, 20.0]))
    balance = value * (1.0 / leverage + 2.0 * contract.taker_fee_rate) * cushion
    return bars, interval, actions, leverage, funding_rate, deleverage, (contract, balance, scale)


class RandomOrders(Strategy):
    actions: list = []  # noqa: RUF012  (set per example through params)
    scale = 0.1  # contracts per unit of a drawn size

    def on_bar(self, ctx, bar):
        k = len(ctx.closes) - 1
        for at, kind, size, offset, reduce_only in self.actions:
            if at != k:
                continue
            price = round(float(bar["close"]) * (1 + offset), 1)
            if kind == "market":
                ctx.market(size * self.scale, reduce_only=reduce_only)
            elif kind == "limit":
                ctx.limit(size * self.scale, price, reduce_only=reduce_only)
            elif kind == "stop":
                ctx.stop(size * self.scale, price, reduce_only=reduce_only)
            elif kind == "take_profit":
                ctx.take_profit(size * self.scale, price, reduce_only=reduce_only)
            elif kind == "close":
                ctx.close_position()
            else:
                for order in ctx.open_orders()[:1]:
                    ctx.cancel(int(order["order_id"]))


def run_scenario(scenario):
    """Backtest :class:`RandomOrders` on a drawn scenario, one funding payment at mid-run."""
    bars, interval, actions, leverage, funding_rate, deleverage, venue = scenario
    contract, balance, scale = venue
    funding = np.zeros(1, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = bars["ts_ns"][len(bars) // 2]
    funding["funding_rate"] = funding_rate
    data = MarketData(
        contract.symbol, bars=bars, bar_interval_ns=interval, funding=funding,
        deleverage=deleverage,
    )  # fmt: skip
    return backtest(
        RandomOrders, data, contract, initial_balance=balance, leverage=leverage,
        params={"actions": actions, "scale": scale},
    )  # fmt: skip


@settings(max_examples=80)
@given(scenarios())
def test_ledger_conserves_wallet_stays_positive_and_fills_stay_in_range(scenario):
    bars, interval, *_ = scenario
    balance = scenario[-1][1]
    result = run_scenario(scenario)
    ledger = result.records["ledger"]
    np.testing.assert_allclose(
        balance + np.cumsum(ledger["amount_settle"]),
        ledger["balance_after_settle"],
        rtol=0,
        atol=1e-9 * balance,
    )
    final = result.final_balance_settle
    assert abs(balance + ledger["amount_settle"].sum() - final) < 1e-9 * balance
    assert (ledger["balance_after_settle"] >= -1e-9 * balance).all()
    adl = result.records["adl"]
    clawbacks = ledger[ledger["kind"] == LedgerKind.CLAWBACK]["amount_settle"]
    # the ledger row is the cash movement (< 0); the record the amount taken (> 0)
    np.testing.assert_array_equal(
        np.sort(-clawbacks), np.sort(adl[adl["kind"] == LedgerKind.CLAWBACK]["amount_settle"])
    )
    assert (clawbacks <= 0).all()
    fills = result.records["fills"]
    assert (fills[fills["liquidity"] == Liquidity.ADL]["fee_settle"] == 0).all()
    own = fills[
        (fills["liquidity"] != Liquidity.LIQUIDATION) & (fills["liquidity"] != Liquidity.ADL)
    ]
    # a fill is booked at the time of its point on the candle path (README "Data"): inside
    # bar k, or at a boundary t0 + kΔ, which is bar k's open and bar k-1's close
    offset = own["ts_ns"] - bars["ts_ns"][0]
    k = offset // interval
    on_boundary = offset % interval == 0
    assert (k >= 1).all()  # orders are placed at the first close at the earliest
    n = len(bars)
    inside = np.minimum(k, n - 1)
    before = np.where(on_boundary, k - 1, inside)
    after = np.where(on_boundary & (k < n), inside, before)
    low = np.minimum(bars["low"][before], bars["low"][after])
    high = np.maximum(bars["high"][before], bars["high"][after])
    assert (own["price"] >= low - 1e-9).all()
    assert (own["price"] <= high + 1e-9).all()


class HoldOne(Strategy):
    """Opens one position on the first bar and holds it."""

    contracts = 1.0

    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1:
            ctx.market(self.contracts)


@st.composite
def held_positions(draw):
    n = draw(st.integers(10, 60))
    interval = draw(st.sampled_from([HOUR_NS, 4 * HOUR_NS]))
    drift = draw(st.floats(-0.01, 0.01))
    steps = draw(st.lists(st.floats(-0.02, 0.02), min_size=n, max_size=n))
    close = np.round(20_000.0 * np.exp(np.cumsum(np.array(steps) + drift)), 1)
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * interval
    bars["open"] = np.r_[20_000.0, close[:-1]]
    bars["close"] = close
    bars["high"] = np.maximum(bars["open"], close)
    bars["low"] = np.minimum(bars["open"], close)
    contract, scale = draw(st.sampled_from(VENUES[1:]))
    contracts = draw(st.integers(1, 50)) * scale * draw(st.sampled_from([-1, 1]))
    leverage = draw(st.sampled_from([5.0, 20.0, 50.0, 100.0]))
    return bars, interval, contract, contracts, leverage


@settings(max_examples=80)
@given(held_positions())
def test_isolated_position_loses_at_most_its_margin_across_daily_settlements(case):
    """One isolated position held through 08:00 UTC settlements on a wallet that holds only
    its margin and fees: a full takeover costs exactly the margin posted at the fill (hand:
    IM = N·F·P/lev linear, N·F/(P·lev) inverse) however much of the loss was settled before,
    and the wallet never goes below zero (issue 12 item 1, MECHANICS.md §7, §5.3)."""
    bars, interval, contract, contracts, leverage = case
    n_abs = abs(contracts)
    price = float(bars["close"][0])  # the fill: the next bar's open
    inverse = contract.contract_kind == ContractKind.INVERSE
    value = n_abs * contract.face_value / price if inverse else n_abs * contract.face_value * price
    balance = value * (1.0 / leverage + 2.0 * contract.taker_fee_rate) * 1.0001
    data = MarketData(contract.symbol, bars=bars, bar_interval_ns=interval)
    result = backtest(
        HoldOne,
        data,
        contract,
        initial_balance=balance,
        leverage=leverage,
        params={"contracts": contracts},
    )
    fills = result.records["fills"]
    assert fills[0]["liquidity"] != Liquidity.LIQUIDATION
    assert fills[0]["price"] == price
    ledger = result.records["ledger"]
    assert (ledger["balance_after_settle"] >= -1e-9 * balance).all()
    liquidations = result.records["liquidations"]
    if len(liquidations) == 0:
        return
    assert not liquidations["is_partial"].any()  # tier 1 sizes only
    margin = value / leverage
    # a positive settled UPL goes to the free balance (the fixed margin stays); a negative one
    # comes out of the fixed margin, so: Σ negative settlements + the takeover = −margin
    amounts = ledger["amount_settle"]
    settled = amounts[ledger["kind"] == LedgerKind.SETTLEMENT]
    takeover = amounts[
        np.isin(ledger["kind"], [LedgerKind.LIQUIDATION_LOSS, LedgerKind.LIQUIDATION_FEE])
    ].sum()
    assert not (ledger["kind"] == LedgerKind.TRADE_PNL).any()
    assert np.minimum(settled, 0.0).sum() + takeover == pytest.approx(-margin, rel=1e-9)


def _value(inverse: bool, contracts: float, face: float, price: float) -> float:
    """Position value in the settle currency (MECHANICS.md §1.2)."""
    return contracts * face / price if inverse else contracts * face * price


def _pnl(inverse: bool, signed: float, face: float, entry: float, exit_: float) -> float:
    """Inverse s·N·F·(1/entry − 1/exit); linear s·N·F·(exit − entry) (MECHANICS.md §1.2)."""
    if inverse:
        return signed * face * (1.0 / entry - 1.0 / exit_)
    return signed * face * (exit_ - entry)


@settings(max_examples=60)
@given(scenarios())
def test_ledger_agrees_with_an_independent_recomputation(scenario):
    """Recompute, outside the engine, from the fills, the funding rates and the bars:

    * every fee = fee rate (maker/taker by the fill's liquidity) × value at the fill price
      (MECHANICS.md §7), in the fill and in its FEE ledger row;
    * every realised PnL by replaying the fills: the reference price is the entry (arithmetic
      mean linear, harmonic inverse, §1.2) reset to the settlement price at each daily
      settlement (§7); compared with the TRADE_PNL (own and ADL fills) or LIQUIDATION rows;
    * every settled PnL = PnL(position, reference → settlement price);
    * every funding payment = −position × value at the mark × rate, the position from the
      replay and the mark the last bar close before the funding time (no index: the profile's
      mark falls back to the last price; funding before the bar at equal times, §3).
    """
    bars, interval, _, _, funding_rate, _, (contract, balance, _) = scenario
    result = run_scenario(scenario)
    inverse = contract.contract_kind == ContractKind.INVERSE
    face = contract.face_value
    fills = result.records["fills"]
    ledger = result.records["ledger"]
    settlements = result.records["settlements"]
    payments = result.records["funding_payments"]

    def ledger_rows(kind, ref):
        rows = ledger[(ledger["kind"] == kind) & (ledger["ref_id"] == ref)]
        return rows["amount_settle"]

    fill_kinds = [LedgerKind.FEE, LedgerKind.TRADE_PNL, LedgerKind.LIQUIDATION_LOSS,
                  LedgerKind.LIQUIDATION_FEE]  # fmt: skip

    def fill_row(f):
        """Place of a fill in the ledger's event order: its first ledger row (a fill without
        money movement: before every row of its time)."""
        rows = np.flatnonzero(
            (ledger["ref_id"] == f["fill_id"]) & np.isin(ledger["kind"], fill_kinds)
        )
        if len(rows):
            return int(rows[0])
        return int(np.searchsorted(ledger["ts_ns"], f["ts_ns"], side="left")) - 0.5

    tol = 1e-12 * balance
    # fees
    for f in fills[
        (fills["liquidity"] == Liquidity.MAKER) | (fills["liquidity"] == Liquidity.TAKER)
    ]:
        rate = (
            contract.maker_fee_rate
            if f["liquidity"] == Liquidity.MAKER
            else contract.taker_fee_rate
        )
        fee = rate * _value(inverse, f["qty_contracts"], face, f["price"])
        assert f["fee_settle"] == pytest.approx(fee, rel=1e-12, abs=tol)
        rows = ledger_rows(LedgerKind.FEE, f["fill_id"])
        assert rows.sum() == pytest.approx(-fee, rel=1e-12, abs=tol)
    # replay of fills and settlements in time order (a settlement before the fills at its time)
    events = [(int(s["ts_ns"]), 0, k) for k, s in enumerate(settlements)]
    events += [(int(f["ts_ns"]), 1, k) for k, f in enumerate(fills)]
    events.sort()
    q = 0.0
    ref = np.nan
    history = []  # (ts, position after) for the funding check
    for _ts, what, k in events:
        if what == 0:
            s = settlements[k]
            assert s["position_contracts"] == pytest.approx(q, abs=1e-9)
            assert s["previous_reference_price"] == pytest.approx(ref, rel=1e-12)
            settled = _pnl(inverse, q, face, ref, s["settlement_price"])
            assert s["settled_pnl_settle"] == pytest.approx(settled, rel=1e-9, abs=tol)
            ref = s["settlement_price"]
            continue
        f = fills[k]
        side, qty, price = int(f["side"]), float(f["qty_contracts"]), float(f["price"])
        realised = 0.0
        rest = qty
        if q != 0.0 and np.sign(q) != side:
            closed = min(qty, abs(q))
            realised = _pnl(inverse, np.sign(q) * closed, face, ref, price)
            rest = qty - closed
            q = np.sign(q) * (abs(q) - closed)
            if abs(q) < 0.5 * contract.lot_size:  # sizes are lot multiples: float dust
                q, ref = 0.0, np.nan
        if rest > 0.5 * contract.lot_size:
            if q == 0.0:
                ref = price
            elif inverse:
                ref = (abs(q) + rest) / (abs(q) / ref + rest / price)
            else:
                ref = (abs(q) * ref + rest * price) / (abs(q) + rest)
            q = q + side * rest
        assert f["position_after_contracts"] == pytest.approx(q, abs=1e-9)
        if f["liquidity"] == Liquidity.LIQUIDATION:
            rows = ledger_rows(LedgerKind.LIQUIDATION_LOSS, f["fill_id"])
            if f["position_after_contracts"] == 0.0:  # takeover: loss and fee rows together
                rows = np.r_[rows, ledger_rows(LedgerKind.LIQUIDATION_FEE, f["fill_id"])]
        else:
            rows = ledger_rows(LedgerKind.TRADE_PNL, f["fill_id"])
        assert rows.sum() == pytest.approx(realised, rel=1e-9, abs=tol)
        history.append((fill_row(f), q))
    # funding
    # the position held at the funding time: after the fills booked before the payment in the
    # ledger's event order (fills at a candle's path points up to T come first, fills at the
    # open of the candle starting at T after it); the mark in force at T: the close of the
    # candle that closes at T (no index: the mark is the last price; README "Data")
    closes_at = bars["ts_ns"] + interval
    for p in payments:
        ts = int(p["ts_ns"])
        funding_row = int(
            np.flatnonzero((ledger["kind"] == LedgerKind.FUNDING) & (ledger["ts_ns"] == ts))[0]
        )
        before = [pos for row, pos in history if row < funding_row]
        position = before[-1] if before else 0.0
        visible = np.flatnonzero(closes_at <= ts)
        assert len(visible) > 0
        mark = float(bars["close"][visible[-1]])
        assert p["mark_price"] == mark
        expected = -position * _value(inverse, 1.0, face, mark) * p["funding_rate"]
        assert p["payment_settle"] == pytest.approx(expected, rel=1e-12, abs=tol)
        rows = ledger[(ledger["kind"] == LedgerKind.FUNDING) & (ledger["ts_ns"] == ts)]
        assert rows["amount_settle"].sum() == pytest.approx(expected, rel=1e-12, abs=tol)
    if len(payments) == 0 and funding_rate != 0.0:
        # no payment only when flat at the funding time (or no mark yet)
        ts = int(bars["ts_ns"][len(bars) // 2])  # run_scenario's funding time
        start_t = np.searchsorted(ledger["ts_ns"], ts, side="left")
        end_t = np.searchsorted(ledger["ts_ns"], ts, side="right")
        before = [pos for row, pos in history if row < start_t]
        # the position at the funding instant is one of: the one before T, or one after a fill at T
        candidates = [before[-1] if before else 0.0]
        candidates += [pos for row, pos in history if start_t <= row < end_t]
        assert 0.0 in candidates or not (closes_at <= ts).any()
