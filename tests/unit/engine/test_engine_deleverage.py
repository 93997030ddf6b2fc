"""ADL and clawback applied to the strategy's own position (engine/deleverage_nb).

The kernel is called directly on state arrays built the way ``engine.driver.Run`` builds them
(POSITION_STATE_DTYPE rows with NaN prices, a length-1 ACCOUNT_STATE_DTYPE row, the contract's
``to_params`` rows); positions are opened with ``apply_fill_nb``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtester import dtypes
from backtester.data.market import MarketData
from backtester.engine.cash_nb import apply_fill_nb, apply_settlement_nb
from backtester.engine.deleverage_nb import APPLIED, NOT_APPLIED, apply_deleverage_event_nb
from backtester.engine.metrics_nb import isolated_margins_nb
from backtester.engine.records_nb import ledger_nb
from backtester.engine.state_nb import engine_state
from backtester.enums import AdlRule, LedgerKind, Liquidity, MarginMode, Side
from backtester.swap import get_contract
from backtester.swap.margin_nb import margin_ratio_nb

HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
INITIAL = 100_000.0


class State:
    """The arrays ``Run.__init__`` builds for one instrument, plus an ADL buffer."""

    def __init__(self, contract, leverage, mode=MarginMode.ISOLATED, balance=INITIAL):
        self.params, self.tiers = get_contract(contract).to_params(DAY0)
        self.positions = np.zeros(1, dtypes.POSITION_STATE_DTYPE)
        s = self.positions[0]
        for name in (
            "entry_price",
            "reference_price",
            "last_price",
            "mark_price",
            "index_price",
            "funding_rate",
        ):
            s[name] = math.nan
        s["leverage"] = leverage
        s["margin_mode"] = mode
        self.account = np.zeros(1, dtypes.ACCOUNT_STATE_DTYPE)
        self.account[0]["balance_settle"] = balance
        self.initial = balance
        self.fills = np.zeros(16, dtypes.FILL_DTYPE)
        self.ledger = np.zeros(32, dtypes.LEDGER_DTYPE)
        self.adl = np.zeros(8, dtypes.ADL_DTYPE)
        self.settlements = np.zeros(4, dtypes.SETTLEMENT_DTYPE)
        self.state = engine_state(
            params=self.params,
            tiers=self.tiers,
            positions=self.positions,
            account=self.account,
            fills=self.fills,
            ledger=self.ledger,
            adl=self.adl,
            settlements=self.settlements,
        )

    @property
    def p(self):
        return self.params[0]

    def fill(self, ts, side, qty, price):
        apply_fill_nb(
            self.state,
            0,
            ts,
            0,
            int(side),
            qty,
            price,
            self.p["taker_fee_rate"],
            int(Liquidity.TAKER),
        )

    def apply(self, ts, event):
        return apply_deleverage_event_nb(self.state, 0, ts, event)

    def n(self, counter):
        return int(self.account[0][counter])

    def ledger_rows(self):
        return self.ledger[: self.n("n_ledger")]

    def balance(self):
        return float(self.account[0]["balance_settle"])

    def assert_identity(self):
        assert self.balance() == pytest.approx(
            self.initial + float(self.ledger_rows()["amount_settle"].sum()), rel=1e-15, abs=1e-12
        )


def same(a, b):
    """Field-by-field equality of two record arrays (NaN equals NaN; padding bytes ignored)."""
    return all(np.array_equal(a[name], b[name], equal_nan=True) for name in a.dtype.names)


def event(kind, side, price, threshold, ts=DAY0):
    e = np.zeros(1, dtypes.DELEVERAGE_EVENT_DTYPE)
    e["ts_ns"] = ts
    e["kind"] = kind
    e["side"] = side
    e["price"] = price
    e["threshold"] = threshold
    return e[0]


def adl_event(side, price, threshold):
    return event(LedgerKind.ADL, side, price, threshold)


# --------------------------------------------------------------------------- ADL


def long_linear(mode=MarginMode.ISOLATED, balance=INITIAL):
    # binance_usdm:BTCUSDT: linear, face 1 BTC, taker 0.05 %, AdlRule.ADL_BITMEX
    st = State("binance_usdm:BTCUSDT", 10.0, mode, balance)
    assert st.p["adl_rule"] == AdlRule.ADL_BITMEX
    st.fill(DAY0, Side.BUY, 2.0, 30_000.0)  # fee 2·30,000·0.0005 = 30; IM 6,000
    st.positions[0]["mark_price"] = 33_000.0
    return st


def test_adl_closes_a_profitable_isolated_long_at_the_event_price_without_fee():
    st = long_linear()
    assert st.positions[0]["margin_settle"] == pytest.approx(6_000.0, rel=1e-15)
    ts = DAY0 + HOUR_NS
    # BitMEX ranking at the mark 33,000: values 66,000 (mark), 60,000 (entry), bankruptcy
    # 30,000 − 6,000/2 = 27,000 → 54,000. PNL% 0.1, leverage 66,000/12,000 = 5.5 → 0.55
    assert st.apply(ts, adl_event(Side.BUY, 32_000.0, 0.55 - 1e-9)) == APPLIED
    s = st.positions[0]
    assert s["contracts"] == 0.0
    assert s["margin_settle"] == 0.0
    assert math.isnan(s["entry_price"])
    assert math.isnan(s["reference_price"])
    assert isolated_margins_nb(st.state) == 0.0
    # realised 2·(32,000 − 30,000) = 4,000, no fee
    assert st.balance() == INITIAL - 30.0 + 4_000.0
    assert st.n("n_fills") == 2
    fill = st.fills[1]
    assert fill["order_id"] == -1
    assert fill["fill_id"] == 1
    assert fill["liquidity"] == Liquidity.ADL
    assert fill["side"] == Side.SELL
    assert fill["price"] == 32_000.0
    assert fill["qty_contracts"] == 2.0
    assert fill["fee_settle"] == 0.0
    assert fill["realised_pnl_settle"] == 4_000.0
    assert fill["position_after_contracts"] == 0.0
    rows = st.ledger_rows()
    assert rows["kind"].tolist() == [LedgerKind.FEE, LedgerKind.TRADE_PNL]
    assert rows[1]["amount_settle"] == 4_000.0
    assert rows[1]["ref_id"] == 1
    assert rows[1]["ts_ns"] == ts
    assert rows[1]["balance_after_settle"] == INITIAL - 30.0 + 4_000.0
    assert st.n("n_adl") == 1
    rec = st.adl[0]
    assert rec["ts_ns"] == ts
    assert rec["instrument"] == 0
    assert rec["kind"] == LedgerKind.ADL
    assert rec["contracts"] == 2.0
    assert rec["price"] == 32_000.0
    assert rec["rate"] == pytest.approx(0.55, rel=1e-12)
    # profit given up against closing at the mark: 6,000 − 4,000
    assert rec["amount_settle"] == pytest.approx(2_000.0, rel=1e-12)
    st.assert_identity()


def test_adl_cross_wallet_beyond_the_position_value_ranks_as_leverage_one():
    # wallet 99,970 > 2·30,000: bankruptcy price < 0, bankrupt value 0 → leverage 66,000/66,000
    st = long_linear(MarginMode.CROSS)
    assert st.apply(DAY0, adl_event(Side.BUY, 31_000.0, 0.0)) == APPLIED
    assert st.adl[0]["rate"] == pytest.approx(0.1, rel=1e-12)


def test_adl_side_zero_hits_either_side():
    st = long_linear()
    assert st.apply(DAY0, adl_event(Side.NONE, 32_000.0, 0.5)) == APPLIED
    assert st.positions[0]["contracts"] == 0.0


def test_adl_cross_long_uses_the_cross_wallet_for_the_bankruptcy_price():
    st = long_linear(MarginMode.CROSS, balance=10_000.0)
    wallet = 10_000.0 - 30.0
    bankrupt = 30_000.0 - wallet / 2.0
    expected = 0.1 * 66_000.0 / (66_000.0 - 2.0 * bankrupt)
    assert st.apply(DAY0, adl_event(Side.BUY, 31_000.0, expected * (1 - 1e-9))) == APPLIED
    assert st.adl[0]["rate"] == pytest.approx(expected, rel=1e-12)
    assert st.balance() == wallet + 2_000.0
    assert st.positions[0]["contracts"] == 0.0
    st.assert_identity()


def test_adl_inverse_short_bitmex():
    # bitmex:XBTUSD: inverse, face 1 USD; short 10,000 @ 40,000 at 20x isolated
    st = State("bitmex:XBTUSD", 20.0)
    st.fill(DAY0, Side.SELL, 10_000.0, 40_000.0)
    margin = 10_000.0 / 40_000.0 / 20.0
    assert st.positions[0]["margin_settle"] == pytest.approx(margin, rel=1e-15)
    st.positions[0]["mark_price"] = 36_000.0
    bankrupt = 1.0 / (1.0 / 40_000.0 - margin / 10_000.0)
    v_mark, v_entry, v_bankrupt = 10_000.0 / 36_000.0, 10_000.0 / 40_000.0, 10_000.0 / bankrupt
    score = (v_mark - v_entry) / v_entry * v_mark / (v_mark - v_bankrupt)
    assert score == pytest.approx(0.7663, abs=1e-4)
    balance0 = st.balance()
    assert st.apply(DAY0, adl_event(Side.SELL, 35_000.0, score * (1 + 1e-9))) == NOT_APPLIED
    assert st.apply(DAY0, adl_event(Side.SELL, 35_000.0, score * (1 - 1e-9))) == APPLIED
    realised = -10_000.0 * (1.0 / 40_000.0 - 1.0 / 35_000.0)
    assert st.balance() == pytest.approx(balance0 + realised, rel=1e-14)
    assert st.fills[1]["side"] == Side.BUY
    assert st.fills[1]["realised_pnl_settle"] == pytest.approx(realised, rel=1e-14)
    assert st.adl[0]["rate"] == pytest.approx(score, rel=1e-12)
    assert st.positions[0]["margin_settle"] == 0.0
    st.assert_identity()


def test_adl_okx_ranks_roi_over_margin_ratio():
    # okx:BTC-USDT-SWAP: linear, face 0.01 BTC, AdlRule.ADL_OKX, mgnRatio rule
    st = State("okx:BTC-USDT-SWAP", 10.0)
    p = st.p
    assert p["adl_rule"] == AdlRule.ADL_OKX
    st.fill(DAY0, Side.BUY, 100.0, 30_000.0)  # margin 100·0.01·30,000/10 = 3,000
    st.positions[0]["mark_price"] = 33_000.0
    pv = 33_000.0
    mm = pv * st.tiers[0]["maintenance_margin_rate"]
    ratio = margin_ratio_nb(
        p["liquidation_rule"], 3_000.0 + 3_000.0, mm, pv, p["liquidation_fee_rate"]
    )
    score = (3_000.0 / 3_000.0) / ratio
    assert st.apply(DAY0, adl_event(Side.BUY, 31_000.0, score * (1 + 1e-9))) == NOT_APPLIED
    assert st.apply(DAY0, adl_event(Side.BUY, 31_000.0, score * (1 - 1e-9))) == APPLIED
    assert st.adl[0]["rate"] == pytest.approx(score, rel=1e-12)
    assert st.fills[1]["realised_pnl_settle"] == pytest.approx(1_000.0, rel=1e-12)
    st.assert_identity()


@pytest.mark.parametrize(
    ("why", "side", "price", "threshold"),
    [
        ("wrong side", Side.SELL, 32_000.0, 0.0),
        # (a loss at the event price no longer exempts a position under ADL_BITMEX, which
        # ranks at the mark and queues losing positions too: test_engine_adl_partial.py)
        ("score below the threshold", Side.BUY, 32_000.0, 0.56),
    ],
)
def test_adl_not_hit_changes_nothing(why, side, price, threshold):
    st = long_linear()
    account, positions = st.account.copy(), st.positions.copy()
    assert st.apply(DAY0, adl_event(side, price, threshold)) == NOT_APPLIED, why
    assert same(st.account, account)
    assert same(st.positions, positions)
    assert st.positions[0]["contracts"] == 2.0


def test_adl_on_a_flat_position_changes_nothing():
    st = State("binance_usdm:BTCUSDT", 10.0)
    account = st.account.copy()
    assert st.apply(DAY0, adl_event(Side.NONE, 30_000.0, -np.inf)) == NOT_APPLIED
    assert same(st.account, account)


# --------------------------------------------------------------------------- clawback

SETTLE = DAY0 + 8 * HOUR_NS  # okx_coinm_2019 daily settlement 08:00 UTC


def coinm_day():
    """okx_coinm_2019 BTC-USD-SWAP (inverse, face 100 USD, daily settlement, CLAWBACK rule).

    Rows before the closed day (ts ≤ SETTLE − 1 day), the day's trades and its settlement.
    Returns the state and the day's expected net profit.
    """
    st = State("okx_coinm_2019:BTC-USD-SWAP", 10.0, balance=10.0)
    assert st.p["adl_rule"] == AdlRule.CLAWBACK
    fee_rate = st.p["taker_fee_rate"]
    # previous day: a profitable round trip at SETTLE − 1 day exactly (excluded)
    st.fill(SETTLE - DAY_NS, Side.BUY, 10.0, 40_000.0)
    st.fill(SETTLE - DAY_NS, Side.SELL, 10.0, 50_000.0)
    # the day: open 100 @ 40,000, close 50 @ 44,000, settlement of the rest at 42,000
    st.fill(DAY0 + HOUR_NS, Side.BUY, 100.0, 40_000.0)
    st.fill(DAY0 + 2 * HOUR_NS, Side.SELL, 50.0, 44_000.0)
    day = -100 * 100 / 40_000.0 * fee_rate
    day += 50 * 100 * (1 / 40_000.0 - 1 / 44_000.0) - 50 * 100 / 44_000.0 * fee_rate
    return st, day


def settle(st, ts, mark):
    st.positions[0]["mark_price"] = mark
    apply_settlement_nb(st.state, 0, ts)


def test_clawback_takes_the_rate_of_the_closed_day_net_profit():
    st, day = coinm_day()
    settle(st, SETTLE, 42_000.0)
    day += 50 * 100 * (1 / 40_000.0 - 1 / 42_000.0)
    # rows that must not count: a deposit and another instrument's PnL inside the day
    ledger_nb(st.state, DAY0 + 3 * HOUR_NS, LedgerKind.DEPOSIT, 0, 1.0, -1)
    ledger_nb(st.state, DAY0 + 3 * HOUR_NS, LedgerKind.TRADE_PNL, 1, 5.0, -1)
    balance0 = st.balance()
    positions = st.positions.copy()
    assert st.apply(SETTLE, event(LedgerKind.CLAWBACK, 0, np.nan, 0.2, SETTLE)) == APPLIED
    amount = 0.2 * day
    assert day > 0
    assert st.balance() == pytest.approx(balance0 - amount, rel=1e-15)
    row = st.ledger_rows()[-1]
    assert row["kind"] == LedgerKind.CLAWBACK
    assert row["instrument"] == 0
    assert row["amount_settle"] == pytest.approx(-amount, rel=1e-12)
    assert row["ref_id"] == 0
    assert row["ts_ns"] == SETTLE
    assert st.n("n_adl") == 1
    rec = st.adl[0]
    assert rec["kind"] == LedgerKind.CLAWBACK
    assert rec["contracts"] == 0.0
    assert math.isnan(rec["price"])
    assert rec["rate"] == 0.2
    assert rec["amount_settle"] == pytest.approx(amount, rel=1e-12)
    assert same(st.positions, positions)
    assert st.n("n_fills") == 4
    st.assert_identity()


def test_clawback_after_the_settlement_instant_counts_the_late_settlement_row_only():
    st, day = coinm_day()
    # the loop applies the 08:00 settlement at the instrument's first event after it (09:00),
    # then a fill at 09:00 belongs to the new day
    settle(st, SETTLE + HOUR_NS, 43_000.0)
    day += 50 * 100 * (1 / 40_000.0 - 1 / 43_000.0)
    st.fill(SETTLE + HOUR_NS, Side.SELL, 50.0, 45_000.0)
    balance0 = st.balance()
    ts = SETTLE + 3 * HOUR_NS
    assert st.apply(ts, event(LedgerKind.CLAWBACK, 0, np.nan, 0.5, ts)) == APPLIED
    assert st.adl[0]["amount_settle"] == pytest.approx(0.5 * day, rel=1e-12)
    assert st.balance() == pytest.approx(balance0 - 0.5 * day, rel=1e-15)
    st.assert_identity()


@pytest.mark.parametrize(("mark", "rate"), [(30_000.0, 0.2), (42_000.0, 0.0)])
def test_clawback_without_profit_or_rate_writes_nothing(mark, rate):
    st, _ = coinm_day()
    settle(st, SETTLE, mark)  # at 30,000 the settlement loss outweighs the day's gains
    account = st.account.copy()
    assert st.apply(SETTLE, event(LedgerKind.CLAWBACK, 0, np.nan, rate, SETTLE)) == NOT_APPLIED
    assert same(st.account, account)


@pytest.mark.parametrize("closed", [10.0, 5.0])
def test_clawback_is_capped_at_the_free_wallet_when_the_day_profit_was_lost_since(closed):
    """The day's profit is lost after the settlement, before the clawback event: the clawback
    takes only the free wallet (balance − isolated margin), never the wallet below zero nor the
    margin of the position still open (OKEx credits "RPL less the clawback", MECHANICS.md §6).

    Hand figures (inverse, face 100 USD, taker 0.075 %, 10x): open 10 @ 40,000, fee
    1,000/40,000·0.00075, margin 1,000/40,000/10 = 0.0025; settlement at 44,000 credits
    1,000·(1/40,000 − 1/44,000) (margin unchanged); the day's profit = that − the fee. After
    the settlement, ``closed`` contracts are sold at 36,000: PnL closed·100·(1/44,000 −
    1/36,000) from the settlement reference, fee closed·100/36,000·0.00075; the rest keeps
    its share of the margin, 0.0025·(10 − closed)/10.
    """
    st = State("okx_coinm_2019:BTC-USD-SWAP", 10.0, balance=0.003)
    st.fill(DAY0 + HOUR_NS, Side.BUY, 10.0, 40_000.0)
    settle(st, SETTLE, 44_000.0)
    st.fill(SETTLE + HOUR_NS, Side.SELL, closed, 36_000.0)
    fee_open = 1_000 / 40_000.0 * 0.00075
    settled = 1_000 * (1 / 40_000.0 - 1 / 44_000.0)
    day = settled - fee_open
    balance = 0.003 - fee_open + settled
    balance += closed * 100 * (1 / 44_000.0 - 1 / 36_000.0) - closed * 100 / 36_000.0 * 0.00075
    margin = 0.0025 * (10.0 - closed) / 10.0
    assert st.positions[0]["margin_settle"] == pytest.approx(margin, rel=1e-12, abs=1e-18)
    assert st.balance() == pytest.approx(balance, rel=1e-12)
    free = balance - margin
    wanted = 1.0 * day
    assert 0.0 < free < wanted  # 0.000182639 (flat) / 0.001468308 (5 left) < 0.002253977
    ts = SETTLE + 3 * HOUR_NS
    assert st.apply(ts, event(LedgerKind.CLAWBACK, 0, np.nan, 1.0, ts)) == APPLIED
    assert st.adl[0]["amount_settle"] == pytest.approx(free, rel=1e-12)
    assert st.adl[0]["rate"] == 1.0
    assert st.ledger_rows()[-1]["amount_settle"] == pytest.approx(-free, rel=1e-12)
    assert st.balance() == pytest.approx(margin, rel=1e-12, abs=1e-15)
    assert st.positions[0]["margin_settle"] == pytest.approx(margin, rel=1e-12, abs=1e-18)
    assert st.account[0]["clawback_not_taken_settle"] == pytest.approx(wanted - free, rel=1e-12)
    st.assert_identity()
    # a second clawback of the same day finds no free wallet: nothing taken, all reported
    assert st.apply(ts, event(LedgerKind.CLAWBACK, 0, np.nan, 0.5, ts)) == NOT_APPLIED
    assert st.n("n_adl") == 1
    # the first clawback (−free) counts in the day's net profit only if inside the day; it is
    # after the settlement, so the second wants 0.5 · day again
    assert st.account[0]["clawback_not_taken_settle"] == pytest.approx(
        wanted - free + 0.5 * day, rel=1e-12
    )


# --------------------------------------------------------------------------- MarketData


def events(rows):
    out = np.zeros(len(rows), dtypes.DELEVERAGE_EVENT_DTYPE)
    for k, (ts, kind, side, price, threshold) in enumerate(rows):
        out[k] = (ts, kind, side, price, threshold, 0.0)
    return out


def index_points():
    out = np.zeros(2, dtypes.PRICE_DTYPE)
    out["ts_ns"] = [DAY0, DAY0 + HOUR_NS]
    out["price"] = 30_000.0
    return out


def test_market_data_deleverage_defaults_to_empty_and_does_not_extend_the_span():
    assert MarketData("X").deleverage.dtype == dtypes.DELEVERAGE_EVENT_DTYPE
    assert len(MarketData("X").deleverage) == 0
    late = events([(DAY0 + 5 * HOUR_NS, LedgerKind.ADL, 1, 30_000.0, 0.5)])
    data = MarketData("X", index=index_points(), deleverage=late)
    assert data.end_ns == DAY0 + HOUR_NS
    assert data.deleverage["price"][0] == 30_000.0


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [(DAY0 + 1, LedgerKind.ADL, 1, 1.0, 0.0), (DAY0, LedgerKind.ADL, 1, 1.0, 0.0)],
            r"deleverage row 1: ts_ns \d+ < previous",
        ),
        ([(DAY0, LedgerKind.FEE, 0, 1.0, 0.0)], "row 0: kind = 2, expected LedgerKind.ADL"),
        ([(DAY0, LedgerKind.ADL, 2, 1.0, 0.0)], "row 0: side = 2, expected -1"),
        ([(DAY0, LedgerKind.ADL, 1, np.nan, 0.0)], "row 0: price = nan, expected a finite"),
        ([(DAY0, LedgerKind.ADL, 1, 1.0, np.nan)], "row 0: threshold = nan, expected a ranking"),
        ([(DAY0, LedgerKind.CLAWBACK, 1, np.nan, 0.1)], "row 0: side = 1, expected 0 for a claw"),
        ([(DAY0, LedgerKind.CLAWBACK, 0, 1.0, 0.1)], "row 0: price = 1.0, expected NaN"),
        ([(DAY0, LedgerKind.CLAWBACK, 0, np.nan, 1.5)], "row 0: threshold = 1.5, expected a claw"),
    ],
)
def test_market_data_refuses_bad_deleverage_rows(rows, message):
    with pytest.raises(ValueError, match=message):
        MarketData("X", index=index_points(), deleverage=events(rows))


def test_market_data_refuses_a_wrong_deleverage_dtype():
    expected = r"deleverage: expected a numpy array of backtester\.dtypes\.DELEVERAGE_EVENT_DTYPE"
    with pytest.raises(TypeError, match=expected):
        MarketData("X", deleverage=np.zeros(1, dtypes.PRICE_DTYPE))
