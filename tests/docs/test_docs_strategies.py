"""Every file in ``strategies/`` runs on the sample data and does what its docstring says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from backtester import JitStrategy, Strategy, backtest
from backtester.data.sample import load_sample
from backtester.enums import Liquidity

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"


def load_strategy(name: str) -> type[Strategy] | type[JitStrategy]:
    spec = importlib.util.spec_from_file_location(f"strategies_{name}", STRATEGIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type)
        and issubclass(v, (Strategy, JitStrategy))
        and v not in (Strategy, JitStrategy)
    ]
    assert len(classes) == 1
    return classes[0]


def conserves(result) -> bool:
    ledger = result.records["ledger"]
    return abs(
        result.initial_balance_settle + ledger["amount_settle"].sum() - result.final_balance_settle
    ) < 1e-9 * max(1.0, result.initial_balance_settle)


def test_every_strategy_file_is_covered():
    assert sorted(p.stem for p in STRATEGIES.glob("*.py")) == [
        "ema_trend_ticks",
        "funding_carry",
        "grid_maker",
        "high_leverage",
        "sma_cross",
        "sma_signals",  # a signals module: run by tests/unit/ux/test_cli_strategy_kinds.py
    ]


@pytest.fixture(scope="module")
def bars_usdt():
    return load_sample("BTC-USDT-SWAP", with_trades=False)


def test_sma_cross_runs_on_the_inverse_sample():
    data = load_sample("BTC-USD-SWAP", with_trades=False)
    result = backtest(
        load_strategy("sma_cross"), data, "okx:BTC-USD-SWAP", initial_balance=1.0, leverage=20
    )
    fills = result.records["fills"]
    assert len(fills) > 100
    assert set(np.abs(fills["position_after_contracts"]).tolist()) == {1.0}
    assert result.settle_currency == "BTC"
    assert conserves(result)


def test_funding_carry_receives_funding(bars_usdt):
    result = backtest(
        load_strategy("funding_carry"), bars_usdt, "okx:BTC-USDT-SWAP", initial_balance=10_000.0
    )
    payments = result.records["funding_payments"]["payment_settle"]
    assert len(payments) > 50
    assert payments.sum() > 0  # it holds the receiving side
    assert conserves(result)


def test_high_leverage_meets_liquidations_on_the_crash(bars_usdt):
    result = backtest(
        load_strategy("high_leverage"),
        bars_usdt,
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        leverage=50,
    )
    liquidations = result.records["liquidations"]
    crash_day = np.datetime64("2024-03-05").astype("datetime64[ns]").astype(np.int64)
    on_crash = liquidations[
        (liquidations["ts_ns"] >= crash_day) & (liquidations["ts_ns"] < crash_day + 86_400 * 10**9)
    ]
    assert len(on_crash) >= 1
    assert (on_crash["mark_price"] <= on_crash["liquidation_price"]).all()
    assert conserves(result)


def test_grid_maker_quotes_on_trades():
    data = load_sample("BTC-USDT-SWAP", with_trades=True)
    result = backtest(
        load_strategy("grid_maker"), data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0
    )
    fills = result.records["fills"]
    own = fills[fills["liquidity"] != Liquidity.LIQUIDATION]
    assert len(own) > 10
    assert (own["liquidity"] == Liquidity.MAKER).all()
    # each maker fill is at its quote, and a trade at that instant printed through it
    trades = data.trades
    for fill in own:
        at = trades[trades["ts_ns"] == fill["ts_ns"]]["price"]
        if fill["side"] > 0:
            assert (at < fill["price"]).any()
        else:
            assert (at > fill["price"]).any()
    assert conserves(result)


def test_ema_trend_ticks_enters_on_breakouts_with_a_stop_behind_each_entry():
    from backtester.enums import OrderStatus, OrderType

    data = load_sample("BTC-USDT-SWAP", with_trades=True)
    result = backtest(
        load_strategy("ema_trend_ticks"), data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0
    )
    orders = result.records["orders"]
    entries = orders[orders["order_type"] == OrderType.MARKET]
    stops = orders[orders["order_type"] == OrderType.STOP_MARKET]
    assert len(entries) > 5
    # one stop per filled entry, reduce-only, on the other side, 0.4 % beyond the entry fill
    fills = result.records["fills"]
    entry_fills = fills[np.isin(fills["order_id"], entries["order_id"])]
    assert len(stops) == len(entry_fills)
    assert stops["reduce_only"].all()
    for fill, stop_order in zip(entry_fills, stops, strict=True):
        assert stop_order["side"] == -fill["side"]
        expected = round(fill["price"] * (1 - fill["side"] * 0.004), 1)
        assert stop_order["trigger_price"] == pytest.approx(expected, rel=1e-12)
    # every stop ends filled (the position was stopped out) or cancelled by the next entry,
    # except possibly the last one, still working at the end of the data
    assert set(stops["status"][:-1].tolist()) <= {OrderStatus.FILLED, OrderStatus.CANCELLED}
    assert conserves(result)
