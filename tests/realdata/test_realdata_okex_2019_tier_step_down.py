"""A tier-10 OKEx 2019 position stepped down its tiers by partial liquidation on a real crash.

The path is BitMEX XBTUSD, 1-minute candles of 2020-03-12 08:00 → 2020-03-13 07:00 (SOURCES.md:
sxiaojian88_bitmex-xbtusd-history; "Black Thursday"), replayed as the price of the OKEx
coin-margined BTC-USD-SWAP (inverse, 100 USD face, ``okx_coinm_2019``): both are USD prices of
BTC, and the contract count is the OKEx one (N contracts = 100·N USD). No index exists for
2020, so the mark is the last price (``mark_price_method="last"``), each candle replayed as its
path: open at ``t0``, the low at ``t0 + Δ/3`` (adverse to a long), the high at ``t0 + 2Δ/3``,
the close at ``t0 + Δ`` (README "Data").

A 90,000-contract long (tier 10 of the 18 Sept 2019 rule, MMR 5 %, at most 18x) at 12x is
opened at the 08:01 open.
Everything expected is computed here from the OKX pages, not from the engine:

* tier rule of 18 Sept 2019 (https://okx.com/en-au/help/adjustment-of-perpetual-swap-tiered-
  maintenance-margin-ratio-schedule-9-11-2019): tier k holds up to ``2,000 + (k − 1)·10,000``
  contracts, maintenance margin rate ``0.5 %·k``;
* OKEx margin ratio of an inverse long (OKEx swap guide, glossary):
  ``(M + f·N·(1/E − 1/P)) / (f·N/P)``, liquidation when it reaches ``MMR_k + fee`` (fee =
  the profile's 0.075 %);
* partial liquidation from tier 3 (guide VIII): the English guide reduces the position to tier
  1 in one step (the profile's ``TO_TIER_1``), the Chinese one by two tiers a step
  (``TWO_TIERS_PER_STEP``); each step closes contracts at the mark, the position margin
  shrinks with the position (so the margin ratio is unchanged and the lower tier's requirement
  is met, until the price falls further); below tier 3, or when even tier 1's requirement is
  not met, the rest is taken over at the bankruptcy price ``P_bk = f·N / (M + f·N/E)``.

The expected instant of each step is the first path point, in the raw candles, at or below
that step's trigger price; every step is in ``result.records["liquidations"]`` and in the
liquidation report with its trigger line.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from backtester import Strategy, backtest, backtest_signals
from backtester.data.importers import read_file
from backtester.data.market import MarketData
from backtester.enums import LedgerKind, Liquidity, PartialLiquidationRule
from backtester.report.liquidations import liquidation_report
from backtester.swap import get_contract
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata

MINUTE = 60_000_000_000
FACE = 100.0  # USD per contract (OKEx swap guide)
CONTRACTS = 90_000.0  # tier 10: 82,001-92,000
LEVERAGE = 12.0
FEE = 0.00075  # the profile's forced-liquidation fee rate
BALANCE = 300.0  # BTC


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def tier_of(contracts: float) -> int:
    """Tier (1-based) of a position of ``contracts`` under the 18 Sept 2019 rule."""
    if contracts <= 2_000:
        return 1
    return math.ceil((contracts - 2_000) / 10_000) + 1


def tier_max(k: int) -> float:
    return 2_000.0 + (k - 1) * 10_000.0


def mmr(k: int) -> float:
    return 0.005 * k


@pytest.fixture(scope="module")
def crash_bars() -> np.ndarray:
    path = shared_path(
        "data", "sxiaojian88_bitmex-xbtusd-history", "XBTUSD-1m-2020-01-01_2023-07-07.parquet"
    )
    (stream,) = [s for s in read_file(path, "bitmex_parquet") if s.kind == "bars"]
    bars = stream.records
    return bars[
        (bars["ts_ns"] >= ns("2020-03-12 08:00")) & (bars["ts_ns"] < ns("2020-03-13 07:00"))
    ]


class CarryLong(Strategy):
    """Buys CONTRACTS at the first close and holds."""

    def on_bar(self, ctx, bar):
        if bar["ts_ns"] == ns("2020-03-12 08:00"):
            ctx.market(CONTRACTS)


def contract(rule: PartialLiquidationRule):
    spec = get_contract("okx_coinm_2019:BTC-USD-SWAP")
    if rule == spec.profile.partial_liquidation_rule:
        return spec
    return dataclasses.replace(
        spec, profile=dataclasses.replace(spec.profile, partial_liquidation_rule=rule)
    )


def expected_steps(bars: np.ndarray, rule: PartialLiquidationRule) -> list[dict]:
    """The liquidation steps of the OKEx rule on the candle paths, by hand (see the module
    docstring): one dict per step, in order."""
    entry = float(bars["open"][1])  # filled at the 08:01 open
    n = CONTRACTS
    margin = FACE * n / entry / LEVERAGE
    names = ("open", "low", "high", "close")
    points = [
        (int(t0) + offset, float(bar[name]), name, int(t0))
        for bar, t0 in zip(bars[1:], bars["ts_ns"][1:], strict=True)
        for name, offset in zip(names, (0, MINUTE // 3, 2 * MINUTE // 3, MINUTE), strict=True)
    ]
    steps = []
    for ts, price, point, candle in points:
        while n > 0:
            k = tier_of(n)
            ratio = (margin + FACE * n * (1 / entry - 1 / price)) / (FACE * n / price)
            if ratio > mmr(k) + FEE:
                break
            liquidation_price = FACE * n * (1 + mmr(k) + FEE) / (margin + FACE * n / entry)
            bankruptcy = FACE * n / (margin + FACE * n / entry)
            target = 1 if rule == PartialLiquidationRule.TO_TIER_1 else max(1, k - 2)
            if k >= 3 and ratio > mmr(1) + FEE:
                keep = tier_max(target)
                closed = n - keep
                steps.append({
                    "ts": ts, "point": point, "candle": candle, "mark": price, "tier": k,
                    "before": n, "after": keep,
                    "partial": True, "liquidation_price": liquidation_price,
                    "bankruptcy_price": bankruptcy, "fill_price": price,
                    "loss": -FACE * closed * (1 / entry - 1 / price),
                    "fee": FEE * FACE * closed / price,
                })  # fmt: skip
                margin *= keep / n
                n = keep
                continue
            steps.append({
                "ts": ts, "point": point, "candle": candle, "mark": price, "tier": k,
                "before": n, "after": 0.0, "partial": False,
                "liquidation_price": liquidation_price, "bankruptcy_price": bankruptcy,
                "fill_price": bankruptcy, "loss_and_fee": margin,
            })  # fmt: skip
            n = 0.0
        if n == 0:
            break
    return steps


RULES = [PartialLiquidationRule.TO_TIER_1, PartialLiquidationRule.TWO_TIERS_PER_STEP]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_a_tier_10_long_is_stepped_down_at_the_first_path_points_through_each_trigger(
    crash_bars, rule
):
    spec = contract(rule)
    # the engine's table on that date is the 18 Sept 2019 rule written out above
    table = spec.tier_table(ns("2020-03-12 08:00"))
    for k in (1, 2, 3, 4, 6, 8, 10, 11):
        row = table.rows[k - 1]
        assert row["max_size"] == tier_max(k)
        assert row["maintenance_margin_rate"] == pytest.approx(mmr(k), abs=1e-15)
    assert tier_of(CONTRACTS) == 10
    assert spec.profile.partial_liquidation_min_tier == 3
    assert spec.profile.liquidation_fee_rate == FEE

    data = MarketData("BTC-USD-SWAP", bars=crash_bars, bar_interval_ns=MINUTE, exchange="okx")
    result = backtest(
        CarryLong, data, spec, initial_balance=BALANCE, leverage=LEVERAGE,
        mark_price_method="last",
    )  # fmt: skip
    steps = expected_steps(crash_bars, rule)
    partial = [s for s in steps if s["partial"]]
    # a real step-down: the profile's rule in one step to tier 1, the two-tier rule
    # 10 → 8 → 6 → 4 → 2 over four candles (10:30-10:36); then the takeover of the rest
    assert [s["tier"] for s in partial] == ([10] if rule == RULES[0] else [10, 8, 6, 4])
    assert len({s["candle"] for s in steps}) == (2 if rule == RULES[0] else 5)
    assert not steps[-1]["partial"]

    fills = result.records["fills"]
    assert fills[0]["price"] == crash_bars["open"][1]
    assert fills[0]["ts_ns"] == ns("2020-03-12 08:01")
    liquidations = result.records["liquidations"]
    assert len(liquidations) == len(steps)
    for got, want in zip(liquidations, steps, strict=True):
        assert got["ts_ns"] == want["ts"]
        assert got["mark_price"] == want["mark"]
        assert bool(got["is_partial"]) == want["partial"]
        assert got["tier"] == want["tier"]
        assert got["contracts_before"] == want["before"]
        assert got["contracts_after"] == want["after"]
        assert got["liquidation_price"] == pytest.approx(want["liquidation_price"], rel=1e-12)
        assert got["bankruptcy_price"] == pytest.approx(want["bankruptcy_price"], rel=1e-12)
        assert got["fill_price"] == pytest.approx(want["fill_price"], rel=1e-12)
        if want["partial"]:
            assert got["loss_settle"] == pytest.approx(want["loss"], rel=1e-12)
            assert got["fee_settle"] == pytest.approx(want["fee"], rel=1e-12)
        else:
            # the rest of the position margin is lost, loss and fee together
            assert got["loss_settle"] + got["fee_settle"] == pytest.approx(
                want["loss_and_fee"], rel=1e-9
            )
    # the steps' fills: at the mark for each partial step, at the bankruptcy price last
    taken = fills[fills["liquidity"] == Liquidity.LIQUIDATION]
    assert taken["qty_contracts"].tolist() == [s["before"] - s["after"] for s in steps]
    assert taken["price"].tolist() == pytest.approx([s["fill_price"] for s in steps], rel=1e-12)
    ledger = result.records["ledger"]
    losses = ledger[ledger["kind"] == LedgerKind.LIQUIDATION_LOSS]["amount_settle"]
    assert len(losses) == len(steps)

    # the liquidation report: one row per step, with the candle and the point that triggered it
    report = liquidation_report(result)
    assert report["kind"].tolist() == ["partial" if s["partial"] else "full" for s in steps]
    assert report["tier"].tolist() == [s["tier"] for s in steps]
    for line, want in zip(report["trigger"], steps, strict=True):
        candle = pd.Timestamp(want["candle"], unit="ns", tz="UTC")
        assert line == (
            f"triggered on the {want['point']} of the {candle.strftime('%Y-%m-%d %H:%M')} "
            "trade candle (mark = last price)"
        )

    # the signal path (its kernel) gives the same steps
    entries = np.zeros(len(crash_bars), dtype=bool)
    entries[0] = True
    signals = backtest_signals(
        entries, np.zeros(len(crash_bars), dtype=bool), data, spec, initial_balance=BALANCE,
        contracts=CONTRACTS, leverage=LEVERAGE, mark_price_method="last",
    )  # fmt: skip
    assert signals.records["liquidations"].tobytes() == liquidations.tobytes()
