"""Pinned whole runs of the example strategies on the bundled sample data.

Key figures plus SHA-256 digests of the FILL, FUNDING_PAYMENT, LIQUIDATION and LEDGER records
(``backtester.results.record_digest``, field by field). A change here is a behaviour change of
the engine, the swap model or the sample: review the diff, then update the pinned values (print
them with the same calls) in the same change.
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
    assert result.final_balance_settle == 0.9944905890422259
    assert result.final_equity_settle == 0.9944897690899775
    assert digests(result) == {
        "fills": "0e4365613d254d73fe5d4e0a72700f90bcba114e5855694fa592eeada6c15190",
        "funding_payments": "e1154e0136008cf276d6e191161a647fb82b72394e0b765b5ffdfc34fe5de441",
        "liquidations": "8b0da6ce59590359d73e42d7e554a29bbe13824ad5975dd7959aff4745e6d9e7",
        "ledger": "cf24100127fad253ac7d2211baf98ede7a6c68acbaa62761c1f957838a27a642",
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
    assert len(result.records["fills"]) == 205
    assert len(result.records["liquidations"]) == 43
    assert result.final_balance_settle == 2893.329617518105
    assert digests(result) == {
        "fills": "bf266a4987cd8cc3373a2d0367fb42db66285a443f3309e153ead5253650f1dc",
        "funding_payments": "601b958b9423f89612f05d14ce74f850b48eb7103abb84e0976c4c849eed960f",
        "liquidations": "289d157889d1e000ddb251eab817f545d40aeb7cebffe7b4861be41e6c5dd641",
        "ledger": "6d08c0a7d4ba024e13bd1e23150d6e5b247576f3b23d2402f1a1c8ce9cfa27d9",
    }
