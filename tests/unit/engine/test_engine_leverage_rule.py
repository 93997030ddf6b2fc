"""One leverage rule at every entry point: ``backtest()``, ``ctx.set_leverage`` and the
command line's job check accept ``1 ≤ leverage ≤ tier-1 maximum`` and refuse the rest with
the same message (``ContractSpec.check_leverage`` / ``contract.check_leverage_value``)."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.jobs import check_job

HOUR_NS = 3_600_000_000_000
DAY0 = 1_704_067_200_000_000_000
CONTRACT = "okx:BTC-USDT-SWAP"  # tier 1 allows 100x (okx tier table in backtester/swap)


def market() -> MarketData:
    closes = [30_000.0, 30_100.0, 29_900.0]
    bars = np.zeros(len(closes), dtypes.BAR_DTYPE)
    bars["ts_ns"] = DAY0 + np.arange(len(closes)) * HOUR_NS
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = closes
    return MarketData("BTC-USDT-SWAP", bars=bars, bar_interval_ns=HOUR_NS)


def set_leverage_to(value: float) -> type[Strategy]:
    class SetLeverage(Strategy):
        def on_start(self, ctx):
            ctx.set_leverage(value)

    return SetLeverage


@pytest.mark.parametrize(
    ("leverage", "message"),
    [
        (0.5, r"leverage: expected a value in \[1, 100\] for .*BTC-USDT-SWAP, got 0\.5"),
        (150.0, r"leverage: expected a value in \[1, 100\] for .*BTC-USDT-SWAP, got 150"),
    ],
)
def test_backtest_and_set_leverage_refuse_the_same_values(leverage, message) -> None:
    with pytest.raises(ValueError, match=message + "$"):
        backtest(Strategy, market(), CONTRACT, initial_balance=1_000.0, leverage=leverage)
    # the callback's error comes wrapped with where it was raised
    with pytest.raises(ValueError, match=message + " at .*ctx.set_leverage"):
        backtest(set_leverage_to(leverage), market(), CONTRACT, initial_balance=1_000.0)


def test_the_bounds_themselves_are_accepted_everywhere() -> None:
    for leverage in (1.0, 100.0):
        result = backtest(Strategy, market(), CONTRACT, initial_balance=1_000.0, leverage=leverage)
        assert result.config["leverage"] in (leverage, [leverage])
        result = backtest(set_leverage_to(leverage), market(), CONTRACT, initial_balance=1_000.0)
        assert len(result.records["equity"]) > 0


def test_the_job_check_uses_the_same_rule() -> None:
    data = market()
    job = {
        "data": {"source": "sample", "symbol": "BTC-USDT-SWAP"},
        "contract": CONTRACT,
        "initial_balance": 1_000.0,
    }
    check_job({**job, "leverage": 1.0}, data)
    with pytest.raises(ValueError, match=r"\[1, 100\] for okx:BTC-USDT-SWAP, got 0\.5$"):
        check_job({**job, "leverage": 0.5}, data)
