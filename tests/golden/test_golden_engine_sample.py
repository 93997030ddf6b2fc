"""Pinned whole runs of the example strategies on the bundled sample data.

Key figures plus SHA-256 digests of the FILL, FUNDING_PAYMENT, LIQUIDATION and LEDGER records
(``backtester.results.record_digest``, field by field), pinned in ``tests/golden/pins/*.json``.
A change here is a behaviour change of the engine, the swap model or the sample: find out why,
then rewrite the pins with ``python -m pytest tests/golden --update-golden`` and commit the
reviewed JSON diff in the same change, saying in the message why the records moved.

Changed by the timing fix of issue 11 (branch ``timing``): fills at a bar's open booked at the
open's time, the bar's intrabar path replayed as events (extremes at Δ/3 and 2Δ/3, close), the
equal-timestamp order of ``EventKind`` (the close of a bar before the index point of its close
time), and the liquidation record's trigger fields (a new dtype, so every liquidations digest).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from backtester import Strategy, backtest
from backtester.data.sample import load_sample
from backtester.results import record_digest

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"

pytestmark = pytest.mark.golden


def load_strategy(name: str) -> type[Strategy]:
    spec = importlib.util.spec_from_file_location(f"golden_{name}", STRATEGIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Strategy) and v is not Strategy
    )


def digests(result) -> dict[str, str]:
    return {
        k: record_digest(result.records[k])
        for k in ("fills", "funding_payments", "liquidations", "ledger")
    }


def test_golden_sma_cross_inverse_sample(golden):
    data = load_sample("BTC-USD-SWAP", with_trades=False)
    result = backtest(
        load_strategy("sma_cross"), data, "okx:BTC-USD-SWAP", initial_balance=1.0, leverage=20
    )
    golden(
        "sma_cross_inverse_sample",
        {
            "fills": len(result.records["fills"]),
            "funding_payments": len(result.records["funding_payments"]),
            "final_balance_settle": result.final_balance_settle,
            "final_equity_settle": result.final_equity_settle,
            "digests": digests(result),
        },
    )


def test_golden_high_leverage_liquidations_sample(golden):
    data = load_sample("BTC-USDT-SWAP", with_trades=False)
    result = backtest(
        load_strategy("high_leverage"),
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        leverage=50,
    )
    golden(
        "high_leverage_liquidations_sample",
        {
            "fills": len(result.records["fills"]),
            "liquidations": len(result.records["liquidations"]),
            "final_balance_settle": result.final_balance_settle,
            "digests": digests(result),
        },
    )
