"""Round trips (result.trades): built from the fills, every PnL column adds up to the ledger.

Expected values come from the records the engine wrote besides the ledger (fills' realised PnL
and fees, funding payments) or from the hand-made result's construction, never from
``round_trips`` itself.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtester import Strategy, backtest
from backtester.data.sample import load_sample
from backtester.enums import LedgerKind
from backtester.report.attribution import pnl_attribution
from backtester.report.trades import EXIT_REASONS, MONEY_COLUMNS, exit_reason_summary

DAY_NS = 86_400_000_000_000


def test_hand_made_round_trips(hand_result) -> None:
    trades = hand_result.trades
    fills = hand_result.records["fills"]
    funding = hand_result.records["funding_payments"]
    liq = hand_result.records["liquidations"][0]
    assert list(trades["side"]) == ["long", "long"]
    assert list(trades["exit_reason"]) == ["signal", "liquidation"]
    assert isinstance(trades.index, pd.DatetimeIndex)
    assert str(trades.index.tz) == "UTC"
    first, second = trades.iloc[0], trades.iloc[1]
    assert first["entry_time"] == pd.Timestamp(int(fills[0]["ts_ns"]), unit="ns", tz="UTC")
    assert first["exit_time"] == pd.Timestamp(int(fills[1]["ts_ns"]), unit="ns", tz="UTC")
    assert first["duration"] == pd.Timedelta(hours=50)
    assert first["entry_price"] == fills[0]["price"]
    assert first["exit_price"] == fills[1]["price"]
    assert first["price_pnl_settle"] == fills[1]["realised_pnl_settle"]
    assert first["fees_settle"] == pytest.approx(-(fills[0]["fee_settle"] + fills[1]["fee_settle"]))
    # funding at hours 16..56 belongs to the first trip (held 10..60), 104..160 to the second
    in_first = (funding["ts_ns"] > fills[0]["ts_ns"]) & (funding["ts_ns"] <= fills[1]["ts_ns"])
    assert first["funding_settle"] == pytest.approx(math.fsum(funding["payment_settle"][in_first]))
    assert second["funding_settle"] == pytest.approx(
        math.fsum(funding["payment_settle"][~in_first])
    )
    assert second["liquidation_settle"] == pytest.approx(
        fills[3]["realised_pnl_settle"] - liq["fee_settle"]
    )
    assert second["liquidations"] == 1
    assert second["fees_settle"] == -fills[2]["fee_settle"]
    assert second["size_contracts"] == 300.0
    for _, row in trades.iterrows():
        assert row["pnl_settle"] == pytest.approx(math.fsum(row[list(MONEY_COLUMNS)]))
    summary = exit_reason_summary(trades)
    assert list(summary.index) == ["signal", "liquidation"]
    assert summary.loc["liquidation", "pnl_settle"] == second["pnl_settle"]
    assert summary.loc["signal", "win_rate"] == (1.0 if first["pnl_settle"] > 0 else 0.0)


class DailyFlip(Strategy):
    """Long on even days, short on odd days (flips through one fill); 20x for the crash."""

    contracts = 200.0

    def on_bar(self, ctx, bar):
        day = int(ctx.time_ns // DAY_NS)
        if getattr(self, "day", None) == day:
            return
        self.day = day
        target = self.contracts if day % 2 == 0 else -self.contracts
        if ctx.position != target:
            ctx.market(target - ctx.position)


@pytest.fixture(scope="module")
def flip_result():
    data = load_sample("BTC-USD-SWAP", with_trades=False)
    return backtest(
        DailyFlip, data, "okx_coinm_2019:BTC-USD-SWAP", initial_balance=1.0, leverage=20.0
    )


@pytest.mark.slow
def test_round_trips_add_up_to_the_ledger(flip_result) -> None:
    result = flip_result
    trades = result.trades
    attribution = pnl_attribution(result)
    assert len(trades) > 20
    assert set(trades["exit_reason"]) <= set(EXIT_REASONS)
    assert trades.attrs["unattributed_settle"] == {}
    closed = trades[~trades["is_open"]]
    # overall: each column's total equals its ledger lines
    ledger = result.records["ledger"]

    def ledger_sum(*kinds: LedgerKind) -> float:
        return math.fsum(ledger["amount_settle"][np.isin(ledger["kind"], kinds)].tolist())

    tol = 1e-12
    assert math.fsum(trades["price_pnl_settle"]) == pytest.approx(
        ledger_sum(LedgerKind.TRADE_PNL, LedgerKind.SETTLEMENT), abs=tol
    )
    assert math.fsum(trades["fees_settle"]) == pytest.approx(ledger_sum(LedgerKind.FEE), abs=tol)
    assert math.fsum(trades["funding_settle"]) == pytest.approx(
        float(attribution["funding_paid_settle"] + attribution["funding_received_settle"]), abs=tol
    )
    assert math.fsum(trades["liquidation_settle"]) == pytest.approx(
        ledger_sum(
            LedgerKind.LIQUIDATION_LOSS, LedgerKind.LIQUIDATION_FEE, LedgerKind.INSURANCE_FUND
        ),
        abs=tol,
    )
    realised = math.fsum(closed["pnl_settle"]) + math.fsum(
        trades.loc[trades["is_open"], list(MONEY_COLUMNS[:-1])].to_numpy().ravel().tolist()
    )
    assert realised == pytest.approx(
        result.final_balance_settle - result.initial_balance_settle, abs=tol
    )
    # per round trip, from the fills and funding records (not the ledger)
    fills = result.records["fills"]
    funding = result.records["funding_payments"]
    settlements = result.records["settlements"]
    flips = 0
    for row in closed.itertuples():
        entry, exit_ = row.entry_time.value, row.exit_time.value
        inside = (fills["ts_ns"] > entry) & (fills["ts_ns"] <= exit_)
        opening = fills[fills["ts_ns"] == entry][0]
        closing = fills[fills["ts_ns"] == exit_][-1]
        realised_fills = fills[inside & (fills["liquidity"] <= 1)]
        expected_price = math.fsum(realised_fills["realised_pnl_settle"]) + math.fsum(
            settlements["settled_pnl_settle"][
                (settlements["ts_ns"] > entry) & (settlements["ts_ns"] <= exit_)
            ]
        )
        assert row.price_pnl_settle == pytest.approx(expected_price, abs=tol)
        # fee: the entry fill's share that opened this trip, every later fill's share closing it
        opened_share = abs(opening["position_after_contracts"]) / opening["qty_contracts"]
        fees = opening["fee_settle"] * opened_share
        for f in fills[inside & (fills["liquidity"] <= 1)]:
            if f["ts_ns"] == exit_ and f["position_after_contracts"] != 0.0:
                flips += 1
                share = 1.0 - abs(f["position_after_contracts"]) / f["qty_contracts"]
                fees += f["fee_settle"] * share
            else:
                fees += f["fee_settle"]
        assert row.fees_settle == pytest.approx(-fees, abs=tol)
        paid = (funding["ts_ns"] > entry) & (funding["ts_ns"] <= exit_)
        assert row.funding_settle == pytest.approx(
            math.fsum(funding["payment_settle"][paid]), abs=tol
        )
        assert row.exit_price == closing["price"] or row.exit_reason == "liquidation"
    assert flips > 10  # the flipping fills were exercised


@pytest.mark.slow
def test_trades_in_the_run_folder(flip_result, tmp_path) -> None:
    flip_result.save(tmp_path / "run")
    saved = pd.read_parquet(tmp_path / "run" / "trades.parquet")
    trades = flip_result.trades
    assert len(saved) == len(trades)
    np.testing.assert_allclose(saved["pnl_settle"], trades["pnl_settle"], rtol=0, atol=0)
    assert list(saved["exit_reason"]) == list(trades["exit_reason"])


class _Scripted(Strategy):
    actions: dict = {}  # noqa: RUF012  (set per run)

    def on_bar(self, ctx, bar):
        action = self.actions.get(len(ctx.closes) - 1)
        if action is not None:
            action(ctx)


def test_exit_reasons_stop_take_profit_and_end_of_data() -> None:
    """Linear OKX BTC-USDT-SWAP bars: a take-profit, a stop-loss, then a trade left open."""
    from backtester import dtypes
    from backtester.data.market import MarketData

    minute = 60_000_000_000
    flat = (30_000.0, 30_010.0, 29_990.0, 30_000.0)
    entry = (30_000.0, 30_100.0, 29_900.0, 30_050.0)  # a market order fills at its open
    up = (30_050.0, 31_100.0, 30_000.0, 31_050.0)  # through the take-profit at 31,000
    down = (30_050.0, 30_060.0, 29_400.0, 29_450.0)  # through the stop at 29,500
    ohlc = [flat, entry, up, flat, entry, down, flat, entry, flat, flat]
    rows = np.zeros(len(ohlc), dtypes.BAR_DTYPE)
    rows["ts_ns"] = 1_700_000_000_000_000_000 + np.arange(len(ohlc)) * minute
    for k, (o, h, low, c) in enumerate(ohlc):
        rows[k]["open"], rows[k]["high"], rows[k]["low"], rows[k]["close"] = o, h, low, c
    data = MarketData("BTC-USDT-SWAP", bars=rows, bar_interval_ns=minute)

    def enter(ctx):
        ctx.market(1, stop_loss_distance=500, take_profit_distance=1_000)

    result = backtest(
        _Scripted, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0,
        params={"actions": {0: enter, 3: enter, 6: lambda c: c.market(2)}},
    )  # fmt: skip
    trades = result.trades
    assert list(trades["exit_reason"]) == ["take_profit", "stop", "end_of_data"]
    assert list(trades["is_open"]) == [False, False, True]
    # 1 contract x 0.01 BTC x (31,000 - 30,000) and x (29,500 - 30,000), before fees
    assert trades["price_pnl_settle"].iloc[0] == pytest.approx(10.0, rel=1e-12)
    assert trades["price_pnl_settle"].iloc[1] == pytest.approx(-5.0, rel=1e-12)
    last = trades.iloc[2]
    assert pd.isna(last["exit_time"])
    assert last["size_contracts"] == 2.0
    upl = float(result.records["equity"]["unrealised_pnl_settle"][-1])
    assert last["unrealised_pnl_settle"] == upl
    assert last["pnl_settle"] == pytest.approx(upl + last["fees_settle"], rel=1e-12)
