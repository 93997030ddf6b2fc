"""Pinned whole runs of the example strategies on the bundled sample data.

Key figures plus SHA-256 digests of the FILL, FUNDING_PAYMENT, LIQUIDATION and LEDGER records
(``backtester.results.record_digest``, field by field). A change here is a behaviour change of
the engine, the swap model or the sample: review the diff, then update the pinned values (print
them with the same calls) in the same change.

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


def test_golden_sma_cross_inverse_sample():
    data = load_sample("BTC-USD-SWAP", with_trades=False)
    result = backtest(
        load_strategy("sma_cross"), data, "okx:BTC-USD-SWAP", initial_balance=1.0, leverage=20
    )
    assert len(result.records["fills"]) == 3355
    assert len(result.records["funding_payments"]) == 179
    assert result.final_balance_settle == 0.9944930022221741
    assert result.final_equity_settle == 0.9944921517392836
    assert digests(result) == {
        "fills": "d3f61639c32e19a84b6abdc676cfdaa863ca8b7d03578276520085d51a3aaa89",
        "funding_payments": "e221be60964fd498724fcdddbf6e0ee6928c15fc334f69d3c750e733e0898afb",
        "liquidations": "e15d04590be20e4f4b18d492cb5713876aa39cc157d5b9e3952f5d39edbfb11e",
        "ledger": "22ccb0f6b74806b8967cdaea80fe419a53f954a63691560ff360eb9f4ba94b98",
    }


def test_golden_high_leverage_liquidations_sample():
    data = load_sample("BTC-USDT-SWAP", with_trades=False)
    result = backtest(
        load_strategy("high_leverage"),
        data,
        "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0,
        leverage=50,
    )
    assert len(result.records["fills"]) == 211
    assert len(result.records["liquidations"]) == 46
    assert result.final_balance_settle == 2633.2962602881075
    assert digests(result) == {
        "fills": "ae548700ad6b31e96ba6cfeabbf7c6f7c50285bb35fada8afdc6117e94b9279b",
        "funding_payments": "aa4b61a76e5976e06be286d7c27a519721448ac6805d981cd29c0b12d91e099d",
        "liquidations": "6d9723d4e9eb59018976949d17531d332eaa7af21af169157f00397e5a2a1a8e",
        "ledger": "d439ccf9625981c4a60c0a02df7b88606314a982482c14d299009fe0e6aa49fb",
    }
