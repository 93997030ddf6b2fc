"""OKEx 2019-20 coin-margined swap rules in whole runs (issue 12): daily settlement on fixed
margin, takeover past the threshold of every tier.

Every expected figure is derived here from the formulas of MECHANICS.md (cited per test), not
from the engine's output.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity
from backtester.swap import get_contract

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
CONTRACT = "okx_coinm_2019:BTC-USD-SWAP"
FACE = 100.0  # USD per contract (MECHANICS.md §1.1)
MMR_TIER_1 = 0.005  # OKX-tiers-2019 tier 1 (MECHANICS.md §4.3)
FEE_RATE = 0.00075  # forced-liquidation fee rate of the okx_coinm_2019 profile (§5.1)
TAKER = 0.00075


def hourly_bars(closes: list[float]) -> np.ndarray:
    bars = np.zeros(len(closes), dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(len(closes)) * HOUR_NS
    bars["close"] = closes
    bars["open"] = np.r_[closes[0], closes[:-1]]
    bars["high"] = np.maximum(bars["open"], bars["close"])
    bars["low"] = np.minimum(bars["open"], bars["close"])
    return bars


class OpenAndWatch(Strategy):
    """Opens ``contracts`` on the first bar; records (time, liquidation price) at every bar."""

    contracts = 100.0

    def on_start(self, ctx):
        WATCH.clear()

    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1:
            ctx.market(self.contracts)
        WATCH.append((ctx.time_ns, ctx.position, ctx.liquidation_price))


WATCH: list = []


def test_contract_rules_used_below():
    spec = get_contract(CONTRACT)
    assert spec.tier_table(DAY0).rows[0]["maintenance_margin_rate"] == MMR_TIER_1
    assert spec.liquidation_fee_rate == FEE_RATE
    assert spec.taker_fee_rate == TAKER
    assert spec.face_value == FACE


def test_settlement_on_fixed_margin_keeps_the_liquidation_price_and_liquidates():
    """20x long of 100 contracts from 50,000 settled at 49,000 (issue 12 item 1).

    OKEx-swap-guide IX (MECHANICS.md §5.2): long LP = (1 + k)/(1/E + M/(F·N)), k = MMR + fee,
    M = F·N/(E·lev) → LP = (1 + k)·E·lev/(lev + 1) = 1.00575 × 50,000 × 20/21 = 47,892.86.
    At settlement (§7) the negative UPL U = F·N·(1/E − 1/S) comes out of the fixed margin and
    the reference becomes S: 1/S + (M + U)/(F·N) = 1/E + M/(F·N), so LP is unchanged. Keeping
    the margin whole instead would give (1 + k)/(1/49,000 + 1/(20·50,000)) = 46,979.74, and the
    mark of 47,850 below would not liquidate.
    """
    entry, settle, lev, n = 50_000.0, 49_000.0, 20.0, 100.0
    k = MMR_TIER_1 + FEE_RATE
    liq = (1 + k) * entry * lev / (lev + 1)
    assert liq == pytest.approx(47_892.857142857, rel=1e-12)
    margin = FACE * n / (entry * lev)
    settled = FACE * n * (1 / entry - 1 / settle)
    kept_whole = (1 + k) / (1 / settle + margin / (FACE * n))
    assert kept_whole == pytest.approx(46_979.74, abs=0.005)
    # bar k runs from DAY0 + k h to DAY0 + (k + 1) h; the order at bar 0's close fills at bar
    # 1's open (01:00); the 08:00 settlement takes the mark in force at 08:00, the close of the
    # 07:00-08:00 candle (49,000); the 09:00-10:00 candle falls from 48,500 to 47,850, its low
    # at 09:20 on the candle path (the adverse extreme at t0 + Δ/3)
    closes = [entry, entry, *[settle] * 6, 48_500.0, 47_850.0, 47_850.0]
    assert kept_whole < 47_850.0 < liq
    data = MarketData("BTC-USD-SWAP", bars=hourly_bars(closes), bar_interval_ns=HOUR_NS)
    balance = 1.0
    result = backtest(OpenAndWatch, data, CONTRACT, initial_balance=balance, leverage=lev)
    fills = result.records["fills"]
    assert fills[0]["price"] == entry
    (s,) = result.records["settlements"]
    assert s["ts_ns"] == DAY0 + 8 * HOUR_NS
    assert s["settlement_price"] == settle
    assert s["settled_pnl_settle"] == pytest.approx(settled, rel=1e-12)
    assert s["margin_deducted_settle"] == pytest.approx(-settled, rel=1e-12)
    # the liquidation price the strategy sees is the same before and after the settlement
    watched = {t: (q, p) for t, q, p in WATCH}
    assert watched[DAY0 + 7 * HOUR_NS] == (n, pytest.approx(liq, rel=1e-12))
    assert watched[DAY0 + 8 * HOUR_NS] == (n, pytest.approx(liq, rel=1e-12))
    # the 47,850 mark (the low of the 09:00 candle, at 09:20) liquidates in full at the
    # bankruptcy price, E·lev/(lev + 1) (§5.3), whatever part of the loss was settled before
    (liquidation,) = result.records["liquidations"]
    assert liquidation["ts_ns"] == DAY0 + 9 * HOUR_NS + HOUR_NS // 3
    assert liquidation["mark_price"] == 47_850.0
    assert not liquidation["is_partial"]
    assert liquidation["liquidation_price"] == pytest.approx(liq, rel=1e-12)
    bankrupt = entry * lev / (lev + 1)
    assert liquidation["bankruptcy_price"] == pytest.approx(bankrupt, rel=1e-12)
    assert fills[-1]["liquidity"] == Liquidity.LIQUIDATION
    assert fills[-1]["price"] == pytest.approx(bankrupt, rel=1e-12)
    # the trader loses exactly the margin: settled part + takeover = −M
    ledger = result.records["ledger"]
    kinds = [LedgerKind.SETTLEMENT, LedgerKind.LIQUIDATION_LOSS, LedgerKind.LIQUIDATION_FEE]
    lost = ledger["amount_settle"][np.isin(ledger["kind"], kinds)].sum()
    assert lost == pytest.approx(-margin, rel=1e-12)
    open_fee = TAKER * FACE * n / entry
    assert result.final_balance_settle == pytest.approx(balance - margin - open_fee, rel=1e-12)


class ShortFrom(Strategy):
    """Sells ``contracts`` at the first bar at or after ``start_ns`` and holds."""

    contracts = 100.0
    start_ns = 0

    def on_bar(self, ctx, bar):
        if not getattr(self, "opened", False) and ctx.time_ns >= self.start_ns:
            ctx.market(-self.contracts)
            self.opened = True


def test_sample_data_short_through_settlements_never_drives_the_wallet_negative():
    """The issue's case: 20x short of 100 contracts on the bundled sample from 2024-02-24 04:00.

    Before the fix the settled losses came out of the free balance while the fixed margin stayed
    whole, and the takeover then cost the margin again: the wallet ended at −0.0103 BTC from
    0.01. Now the position loses exactly its margin M = F·N/(E·lev) (E = the fill price), and
    the wallet ends at balance − M − taker fee at E + Σ funding received.
    """
    from backtester.data.sample import load_sample

    data = load_sample("BTC-USD-SWAP", with_trades=False)
    start = np.datetime64("2024-02-24T04:00", "ns").astype(np.int64)
    balance, lev, n = 0.01, 20.0, 100.0
    result = backtest(
        ShortFrom,
        data,
        CONTRACT,
        initial_balance=balance,
        leverage=lev,
        params={"contracts": n, "start_ns": int(start)},
    )
    ledger = result.records["ledger"]
    assert (ledger["balance_after_settle"] >= 0.0).all()
    fills = result.records["fills"]
    entry = fills[0]["price"]
    assert fills[0]["side"] == -1
    assert fills[0]["qty_contracts"] == n
    settlements = result.records["settlements"]
    assert (settlements["settled_pnl_settle"] < 0).any()  # the short lost across settlements
    (liquidation,) = result.records["liquidations"]
    assert not liquidation["is_partial"]
    margin = FACE * n / (entry * lev)
    kinds = [LedgerKind.SETTLEMENT, LedgerKind.LIQUIDATION_LOSS, LedgerKind.LIQUIDATION_FEE]
    # every settlement of this short is a loss, so all of it came out of the margin
    assert (settlements["settled_pnl_settle"] <= 0).all()
    lost = ledger["amount_settle"][np.isin(ledger["kind"], kinds)].sum()
    assert lost == pytest.approx(-margin, rel=1e-9)
    payments = result.records["funding_payments"]
    # funding recomputed from position × mark × rate (inverse: −q·F/mark·rate, MECHANICS.md §3)
    funding = (
        -payments["position_contracts"] * FACE / payments["mark_price"] * payments["funding_rate"]
    ).sum()
    open_fee = TAKER * FACE * n / entry
    expected = balance - margin - open_fee + funding
    assert result.final_balance_settle == pytest.approx(expected, rel=1e-9)
    assert result.final_balance_settle > 0.0


@pytest.mark.parametrize("mark", [48_000.0, 47_700.0])
def test_tier_3_position_steps_down_or_past_every_tier_is_taken_over_whole(mark):
    """20x long of 15,000 contracts from 50,000: tier 3 (12,001–22,000, MMR 1.5 %) of the
    OKX rule of Sept 2019; tier 1 is 0–2,000 at 0.5 % (MECHANICS.md §4.3).

    Margin ratio (§4.2) MR(P) = (M + F·N·(1/E − 1/P))/(F·N/P) = P·(lev + 1)/(lev·E) − 1.
    Tier-3 trigger MR < 1.5 % + 0.075 % → P < 48,369.05; the lowest tier's requirement
    MR < 0.5 % + 0.075 % → P < 47,892.86; bankruptcy E·lev/(lev + 1) = 47,619.05.
    - mark 48,000: MR = 0.8 % ≥ 0.575 % → one partial step to tier 1 at the mark (close
      15,000 − 2,000 = 13,000, §5.4); the rest keeps MR 0.8 % (margin released pro rata), safe.
    - mark 47,700: MR = 0.17 % < 0.575 %, past every tier → the whole position is taken over
      at the bankruptcy price and the full margin M = F·N/(E·lev) = 1.5 BTC is lost.
    """
    entry, lev, n = 50_000.0, 20.0, 15_000.0
    spec = get_contract(CONTRACT)
    rows = spec.tier_table(DAY0).rows
    assert (rows[0]["max_size"], rows[2]["tier"], rows[2]["maintenance_margin_rate"]) == (
        2_000.0,
        3,
        0.015,
    )
    assert rows[2]["min_size"] <= n <= rows[2]["max_size"]
    ratio = mark * (lev + 1) / (lev * entry) - 1
    trigger_3 = (1 + 0.015 + FEE_RATE) * entry * lev / (lev + 1)
    assert trigger_3 == pytest.approx(48_369.05, abs=0.005)
    assert mark < trigger_3
    bankrupt = entry * lev / (lev + 1)
    margin = FACE * n / (entry * lev)
    closes = [entry, entry, entry, mark, mark]
    data = MarketData("BTC-USD-SWAP", bars=hourly_bars(closes), bar_interval_ns=HOUR_NS)
    result = backtest(
        OpenAndWatch, data, CONTRACT, initial_balance=2.0, leverage=lev, params={"contracts": n}
    )
    liquidations = result.records["liquidations"]
    ledger = result.records["ledger"]
    kinds = [LedgerKind.LIQUIDATION_LOSS, LedgerKind.LIQUIDATION_FEE]
    lost = ledger["amount_settle"][np.isin(ledger["kind"], kinds)].sum()
    assert liquidations[0]["tier"] == 3
    assert liquidations[0]["margin_ratio"] == pytest.approx(ratio, rel=1e-9)
    if ratio >= MMR_TIER_1 + FEE_RATE:
        (step,) = liquidations
        assert step["is_partial"]
        assert (step["contracts_before"], step["contracts_after"]) == (n, 2_000.0)
        assert step["fill_price"] == mark
        # the record carries the position's bankruptcy price at the step: E·lev/(lev + 1)
        assert step["bankruptcy_price"] == pytest.approx(bankrupt, rel=1e-12)
        # realised at the mark on 13,000 contracts, and the fee on their value at the mark
        realised = FACE * 13_000 * (1 / entry - 1 / mark)
        fee = FEE_RATE * FACE * 13_000 / mark
        assert lost == pytest.approx(realised - fee, rel=1e-12)
        assert result.records["equity"]["position_contracts"][-1] == 2_000.0
    else:
        (takeover,) = liquidations
        assert not takeover["is_partial"]
        assert (takeover["contracts_before"], takeover["contracts_after"]) == (n, 0.0)
        assert takeover["fill_price"] == pytest.approx(bankrupt, rel=1e-12)
        assert lost == pytest.approx(-margin, rel=1e-12)
