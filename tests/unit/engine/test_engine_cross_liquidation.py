"""Cross-margin liquidation by the venue's rule (issue 12 item 3): OKEx 2019 partial steps then
takeover at the account's bankruptcy point, Binance takeover of every position at the bankruptcy
price, liquidation and bankruptcy prices in the records and in ``ctx.liquidation_price``.

Expected figures are derived here from MECHANICS.md §5.2–5.5, not from the engine's output.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC (no daily settlement before 08:00)
OKEX = "okx_coinm_2019:BTC-USD-SWAP"
FACE = 100.0
K_TIER_1 = 0.005 + 0.00075  # OKEx 2019 tier-1 MMR + forced-liquidation fee rate
TAKER = 0.00075


def hourly_bars(closes: list[float]) -> np.ndarray:
    bars = np.zeros(len(closes), dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(len(closes)) * HOUR_NS
    bars["close"] = closes
    bars["open"] = np.r_[closes[0], closes[:-1]]
    bars["high"] = np.maximum(bars["open"], bars["close"])
    bars["low"] = np.minimum(bars["open"], bars["close"])
    return bars


class OpenAll(Strategy):
    """Buys ``contracts`` of every instrument on the first bar; records ctx.liquidation_price."""

    contracts = 100.0

    def on_start(self, ctx):
        SEEN.clear()

    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1 and ctx.position == 0 and not ctx.open_orders().size:
            ctx.market(self.contracts)
        SEEN.append((ctx.time_ns, ctx.position, ctx.liquidation_price))


SEEN: list = []


def cross_run(closes, contracts, balance, contract=OKEX, symbol="BTC-USD-SWAP"):
    data = MarketData(symbol, bars=hourly_bars(closes), bar_interval_ns=HOUR_NS)
    return backtest(
        OpenAll,
        data,
        contract,
        initial_balance=balance,
        leverage=50.0,
        margin_mode="cross",
        params={"contracts": contracts},
    )


def test_okex_cross_single_position_taken_over_at_the_account_bankruptcy_price():
    """Long 100 contracts from 50,000 on a 0.01 BTC cross account.

    Wallet after the taker fee: W = 0.01 − 0.00075·100·100/50,000 = 0.00985 BTC. With one cross
    position the OKEx cross margin ratio (W + UPL)/(F·N/P) (§4.2) is the fixed-margin one with
    M = W, so LP = (1 + k)/(1/E + W/(F·N)) = 47,927.09 and the bankruptcy price
    BP = 1/(1/E + W/(F·N)) = 47,653.09 (§5.2, §5.3). A mark of 47,800 (tier 1: no partial step)
    takes the position over at BP: the account loses W and the wallet ends at 0; the fund gains
    PnL(BP → the last price 47,800) (§5.5).
    """
    entry, n, balance = 50_000.0, 100.0, 0.01
    wallet = balance - TAKER * FACE * n / entry
    lp = (1 + K_TIER_1) / (1 / entry + wallet / (FACE * n))
    bp = 1 / (1 / entry + wallet / (FACE * n))
    assert lp == pytest.approx(47_927.09, abs=0.005)
    assert bp == pytest.approx(47_653.09, abs=0.005)
    result = cross_run([entry, entry, entry, 47_800.0, 47_800.0], n, balance)
    seen = {t: (q, p) for t, q, p in SEEN}
    assert seen[DAY0 + 3 * HOUR_NS] == (n, pytest.approx(lp, rel=1e-9))
    (liq,) = result.records["liquidations"]
    # inside the bar of 03:00-04:00, at its low (the adverse extreme, at t0 + Δ/3 of the path)
    assert liq["ts_ns"] == DAY0 + 3 * HOUR_NS + HOUR_NS // 3
    assert not liq["is_partial"]
    assert liq["tier"] == 1
    assert liq["mark_price"] == 47_800.0
    assert liq["liquidation_price"] == pytest.approx(lp, rel=1e-9)
    assert liq["bankruptcy_price"] == pytest.approx(bp, rel=1e-12)
    assert liq["fill_price"] == pytest.approx(bp, rel=1e-12)
    fills = result.records["fills"]
    assert fills[-1]["liquidity"] == Liquidity.LIQUIDATION
    assert fills[-1]["price"] == pytest.approx(bp, rel=1e-12)
    # loss = W: the fee (0.075 % of the value at the mark) is part of it, capped by what was left
    left_at_mark = wallet + FACE * n * (1 / entry - 1 / 47_800.0)
    fee = min(0.00075 * FACE * n / 47_800.0, left_at_mark)
    assert liq["fee_settle"] == pytest.approx(fee, rel=1e-12)
    # the record splits the loss into trading loss and fee
    assert liq["loss_settle"] + liq["fee_settle"] == pytest.approx(wallet, rel=1e-12)
    assert liq["insurance_fund_delta_settle"] == pytest.approx(
        FACE * n * (1 / bp - 1 / 47_800.0), rel=1e-9
    )
    assert result.final_balance_settle == pytest.approx(0.0, abs=1e-15)
    ledger = result.records["ledger"]
    kinds = [LedgerKind.LIQUIDATION_LOSS, LedgerKind.LIQUIDATION_FEE]
    assert ledger["amount_settle"][np.isin(ledger["kind"], kinds)].sum() == pytest.approx(
        -wallet, rel=1e-12
    )
    assert not (ledger["kind"] == LedgerKind.INSURANCE_FUND).any()


@pytest.mark.parametrize("mark", [48_000.0, 47_700.0])
def test_okex_cross_tier_3_steps_down_at_the_mark_or_is_taken_over(mark):
    """Long 15,000 contracts (tier 3, MMR 1.5 %) from 50,000, cross wallet W = 1.5 BTC after the
    fee (= the 20x margin, so the ratios are those of the fixed-margin test):
    MR(P) = (W + F·N·(1/E − 1/P))·P/(F·N) = P·21/(20·E) − 1.
    - 48,000: MR 0.8 % < 1.575 % (tier 3) but ≥ 0.575 % (tier 1) → one partial step to tier 1
      at the mark (13,000 contracts, §5.4); the rest is safe (MR of the rest ≫ 0.575 %).
    - 47,700: MR 0.17 % < 0.575 %, past every tier → all 15,000 taken over at the account's
      bankruptcy price 1/(1/E + W/(F·N)) = 47,619.05; the wallet ends at 0.
    """
    entry, n = 50_000.0, 15_000.0
    wallet = 1.5
    balance = wallet + TAKER * FACE * n / entry
    result = cross_run([entry, entry, entry, mark, mark], n, balance)
    liquidations = result.records["liquidations"]
    ratio = mark * 21 / (20 * entry) - 1
    assert liquidations[0]["tier"] == 3
    assert liquidations[0]["margin_ratio"] == pytest.approx(ratio, rel=1e-9)
    # the cross liquidation price of the tier-3 position: MR(P) = 1.5 % + 0.075 %
    lp = (1 + 0.015 + 0.00075) * entry * 20 / 21
    assert liquidations[0]["liquidation_price"] == pytest.approx(lp, rel=1e-9)
    if ratio >= K_TIER_1:
        (step,) = liquidations
        assert step["is_partial"]
        assert (step["contracts_before"], step["contracts_after"]) == (n, 2_000.0)
        assert step["fill_price"] == mark
        realised = FACE * 13_000 * (1 / entry - 1 / mark)
        fee = 0.00075 * FACE * 13_000 / mark
        assert step["loss_settle"] == pytest.approx(-realised, rel=1e-12)
        assert step["fee_settle"] == pytest.approx(fee, rel=1e-12)
        assert result.final_balance_settle == pytest.approx(wallet + realised - fee, rel=1e-12)
        assert result.records["equity"]["position_contracts"][-1] == 2_000.0
    else:
        (takeover,) = liquidations
        assert not takeover["is_partial"]
        bp = 1 / (1 / entry + wallet / (FACE * n))
        assert bp == pytest.approx(entry * 20 / 21, rel=1e-12)
        assert takeover["bankruptcy_price"] == pytest.approx(bp, rel=1e-12)
        assert takeover["fill_price"] == pytest.approx(bp, rel=1e-12)
        assert result.final_balance_settle == pytest.approx(0.0, abs=1e-12)


def test_binance_cross_takes_every_position_over_at_the_bankruptcy_price():
    """Binance USDⓈ-M cross, long 1 BTC of each of two instruments from 20,000 on 1,000 USDT.

    W = 1,000 − 2·0.05 %·20,000 = 980. Binance: liquidation when W + ΣUPL ≤ Σ(notional·MMR −
    cum) (§4.2), tier 1 MMR 0.4 %, cum 0; then every position at the bankruptcy price (§5.4). The
    account's bankruptcy point shares the margin balance MB = W + ΣUPL by value at the mark:
    e_i = MB·PV_i/ΣPV, wallet share M_i = e_i − UPL_i, BP_i = E − M_i/Q (linear long, §5.3).
    Marks: A falls to 19,100, B stays at 20,000 → MB = 980 − 900 = 80 ≤ 0.004·39,100 = 156.4.
    The account loses W; each fund delta = Q·(market − BP_i) (§5.5; market = last price).
    """
    q, entry, balance = 1.0, 20_000.0, 1_000.0
    wallet = balance - 2 * 0.0005 * q * entry
    mark_a, mark_b = 19_100.0, 20_000.0
    upl = np.array([mark_a - entry, mark_b - entry]) * q
    pv = np.array([mark_a, mark_b]) * q
    mb = wallet + upl.sum()
    assert mb <= 0.004 * pv.sum()
    shares = mb * pv / pv.sum() - upl
    bp = entry - shares / q
    a = hourly_bars([entry, entry, entry, mark_a, mark_a])
    b = hourly_bars([entry, entry, entry, mark_b, mark_b])
    data = [
        MarketData("A-USDT", bars=a, bar_interval_ns=HOUR_NS),
        MarketData("B-USDT", bars=b, bar_interval_ns=HOUR_NS),
    ]
    result = backtest(
        OpenAll,
        data,
        ["binance_usdm:BTCUSDT"] * 2,
        initial_balance=balance,
        leverage=50.0,
        margin_mode="cross",
        params={"contracts": q},
    )
    liquidations = result.records["liquidations"]
    assert sorted(liquidations["instrument"].tolist()) == [0, 1]
    assert not liquidations["is_partial"].any()
    # inside the bar of 03:00-04:00, at its low (the adverse extreme, at t0 + Δ/3 of the path)
    assert (liquidations["ts_ns"] == DAY0 + 3 * HOUR_NS + HOUR_NS // 3).all()
    by = {int(r["instrument"]): r for r in liquidations}
    for i, mark in ((0, mark_a), (1, mark_b)):
        assert by[i]["mark_price"] == mark
        assert by[i]["bankruptcy_price"] == pytest.approx(bp[i], rel=1e-12)
        assert by[i]["fill_price"] == pytest.approx(bp[i], rel=1e-12)
        assert by[i]["insurance_fund_delta_settle"] == pytest.approx(
            q * (by[i]["market_price"] - bp[i]), rel=1e-9
        )
    lost = liquidations["loss_settle"].sum() + liquidations["fee_settle"].sum()
    assert lost == pytest.approx(wallet, rel=1e-12)
    assert result.final_balance_settle == pytest.approx(0.0, abs=1e-9)


def test_liquidation_report_shows_every_cross_step():
    """Tier-3 cross account (as above) stepped down at 48,300, then past every tier at 44,000:
    the report has the partial step and the takeover, each with its tier, trigger mark,
    liquidation and bankruptcy prices, quantity, loss, fee and fund effect.

    After the step (13,000 closed at 48,300, fee 0.075 % of its value) the wallet is
    W' = W + F·13,000·(1/E − 1/48,300) − fee; the takeover of the 2,000 left is at
    1/(1/E + W'/(F·2,000)) (§5.3).
    """
    from backtester.report.liquidations import liquidation_report

    entry, n, wallet = 50_000.0, 15_000.0, 1.5
    balance = wallet + TAKER * FACE * n / entry
    result = cross_run([entry, entry, entry, 48_300.0, 44_000.0, 44_000.0], n, balance)
    report = liquidation_report(result)
    assert list(report["kind"]) == ["partial", "full"]
    assert list(report["tier"]) == [3, 1]
    assert list(report["mark_price"]) == [48_300.0, 44_000.0]
    assert list(report["contracts_before"]) == [n, 2_000.0]
    assert list(report["contracts_after"]) == [2_000.0, 0.0]
    step_fee = 0.00075 * FACE * 13_000 / 48_300.0
    after_step = wallet + FACE * 13_000 * (1 / entry - 1 / 48_300.0) - step_fee
    bp = 1 / (1 / entry + after_step / (FACE * 2_000))
    # MR of the rest at 44,000 is below tier 1's 0.575 %: past every tier, taken over
    ratio = (after_step + FACE * 2_000 * (1 / entry - 1 / 44_000.0)) * 44_000.0 / (FACE * 2_000)
    assert 0 < ratio < K_TIER_1
    assert report["fee_settle"].iloc[0] == pytest.approx(step_fee, rel=1e-12)
    assert report["bankruptcy_price"].iloc[1] == pytest.approx(bp, rel=1e-12)
    assert report["loss_settle"].iloc[1] + report["fee_settle"].iloc[1] == pytest.approx(
        after_step, rel=1e-12
    )
    assert report["liquidation_price"].notna().all()
    assert report["insurance_fund_delta_settle"].iloc[1] == pytest.approx(
        FACE * 2_000 * (1 / bp - 1 / 44_000.0), rel=1e-9
    )
    assert (report["insurance_fund_after_settle"] == np.inf).all()
