"""Foundation schemas: dtypes carry units, Result and MarketData validate their inputs."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import dtypes
from backtester.checks import check_choice, check_in_range, check_positive
from backtester.data.market import MarketData
from backtester.enums import LedgerKind
from backtester.results import Result

UNIT_SUFFIXES = ("_ns", "_contracts", "_base", "_quote", "_settle", "_rate", "_ratio")


def test_money_fields_carry_their_unit() -> None:
    for name, dtype in dtypes.ALL_RECORD_DTYPES.items():
        for field in dtype.names or ():
            if field.startswith(("amount", "payment", "balance", "equity", "fee", "loss")):
                assert field.endswith(UNIT_SUFFIXES), f"{name}.{field} has no unit suffix"


def test_result_rejects_wrong_dtype_naming_the_record_kind() -> None:
    with pytest.raises(TypeError, match=r"records\['fills'\]"):
        Result(["X"], "USDT", 100.0, {"fills": np.zeros(2, dtype=dtypes.LEDGER_DTYPE)})


def test_result_final_balance_and_fingerprint() -> None:
    ledger = np.zeros(2, dtype=dtypes.LEDGER_DTYPE)
    ledger["kind"] = [LedgerKind.TRADE_PNL, LedgerKind.FEE]
    ledger["amount_settle"] = [5.0, -0.25]
    ledger["balance_after_settle"] = [105.0, 104.75]
    result = Result(["BTCUSDT"], "USDT", 100.0, {"ledger": ledger})
    assert result.final_balance_settle == 104.75
    assert list(result.ledger["kind"]) == ["TRADE_PNL", "FEE"]
    same = Result(["BTCUSDT"], "USDT", 100.0, {"ledger": ledger.copy()})
    assert result.fingerprint() == same.fingerprint()
    ledger2 = ledger.copy()
    ledger2["amount_settle"][1] = -0.26
    other = Result(["BTCUSDT"], "USDT", 100.0, {"ledger": ledger2})
    assert result.fingerprint() != other.fingerprint()


def test_market_data_names_the_unsorted_row() -> None:
    trades = np.zeros(3, dtype=dtypes.TRADE_DTYPE)
    trades["ts_ns"] = [10, 30, 20]
    trades["price"] = 1.0
    with pytest.raises(ValueError, match=r"trades row 2: ts_ns 20 < previous 30"):
        MarketData("BTCUSDT", trades=trades)


def test_market_data_span_uses_bar_close() -> None:
    bars = np.zeros(2, dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = [0, 60]
    data = MarketData("X", bars=bars, bar_interval_ns=60)
    assert (data.start_ns, data.end_ns) == (0, 120)


def test_market_data_rejects_wrong_dtype() -> None:
    with pytest.raises(TypeError, match="TRADE_DTYPE"):
        MarketData("X", trades=np.zeros(1, dtype=dtypes.PRICE_DTYPE))


def test_checks_name_the_field_and_range() -> None:
    with pytest.raises(ValueError, match=r"leverage: expected a value > 0, got -1"):
        check_positive(-1, "leverage")
    with pytest.raises(ValueError, match=r"leverage: expected a value in \[1, 100\], got 125"):
        check_in_range(125, "leverage", 1, 100)
    with pytest.raises(ValueError, match="did you mean 'isolated'"):
        check_choice("isolatd", "margin_mode", ["isolated", "cross"])
