"""Signals in both directions on one account, and target positions (issue 15).

Expected fills are derived here from the bars and the rule as documented (orders at a bar's
close fill at the next bar's open; a reversal trades twice the size), the Python path runs the
same rule through ``Strategy.on_bar`` as an independent implementation, and the signal kernel
and the general loop must agree byte for byte.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtester import Strategy, backtest, backtest_signals
from backtester.enums import Side
from backtester.swap.contract import get_contract
from tests.unit.engine.test_signal_kernel import assert_same_records, synthetic

CONTRACT = "okx:BTC-USDT-SWAP"  # linear: 1 contract = 0.01 BTC, lot 0.01 contracts


def signed(fills: np.ndarray) -> np.ndarray:
    """Signed contracts of fill records (+ buy, - sell)."""
    return np.where(fills["side"] == Side.BUY, 1.0, -1.0) * fills["qty_contracts"]


def crossings(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    """Bars where SMA(fast) crosses above / below SMA(slow)."""
    fast_sma = np.convolve(close, np.ones(fast) / fast)[: len(close)]
    slow_sma = np.convolve(close, np.ones(slow) / slow)[: len(close)]
    above = fast_sma > slow_sma
    above[:slow] = False
    cross = np.r_[False, above[1:] != above[:-1]]
    cross[: slow + 1] = False
    return cross & above, cross & ~above


class AlwaysIn(Strategy):
    """The same reversal rule in Python: long on an up-cross, short on a down-cross."""

    up: object = None
    down: object = None
    contracts = 2.0

    def on_start(self, ctx):
        self.k = -1

    def on_bar(self, ctx, bar):
        self.k += 1
        if self.up[self.k] and ctx.position != self.contracts:
            ctx.market(self.contracts - ctx.position)
        elif self.down[self.k] and ctx.position != -self.contracts:
            ctx.market(-self.contracts - ctx.position)


def test_always_in_reversal_is_one_call_with_hand_derived_fills():
    data = synthetic(n_bars=2_000, seed=21)
    bars = data.bars
    up, down = crossings(bars["close"], 20, 100)
    assert up.sum() > 5
    assert down.sum() > 5
    kwargs = {"initial_balance": 1e6, "leverage": 5.0, "contracts": 2.0}
    auto = backtest_signals(
        up, np.zeros(len(bars), bool), data, CONTRACT, short_entries=down, **kwargs
    )
    events = backtest_signals(
        up, np.zeros(len(bars), bool), data, CONTRACT, short_entries=down, replay="events",
        **kwargs,
    )  # fmt: skip
    assert_same_records("always-in reversal", auto, events)

    fills = auto.records["fills"]
    signal_bars = np.flatnonzero(up | down)
    # one fill per signal bar: at the next bar's open, 2 contracts first, then 4 (reversal)
    assert len(fills) == len(signal_bars)
    expected_price = bars["open"][signal_bars + 1]
    expected_ts = bars["ts_ns"][signal_bars + 1]
    np.testing.assert_array_equal(fills["price"], expected_price)
    np.testing.assert_array_equal(fills["ts_ns"], expected_ts)
    expected_qty = np.full(len(signal_bars), 4.0)
    expected_qty[0] = 2.0
    np.testing.assert_array_equal(fills["qty_contracts"], expected_qty)
    sides = np.where(up[signal_bars], 1.0, -1.0)
    np.testing.assert_array_equal(np.sign(signed(fills)), sides)

    # the Python path, an independent implementation of the same rule, trades the same way
    python = backtest(
        AlwaysIn, data, CONTRACT, initial_balance=1e6, leverage=5.0,
        params={"up": up, "down": down, "contracts": 2.0},
    )  # fmt: skip
    np.testing.assert_array_equal(python.records["fills"]["price"], fills["price"])
    np.testing.assert_array_equal(signed(python.records["fills"]), signed(fills))
    assert python.final_balance_settle == pytest.approx(auto.final_balance_settle, rel=1e-12)


def test_exit_wins_over_entry_of_its_side_and_opposite_entries_cancel():
    data = synthetic(n_bars=50, seed=2)
    n = len(data.bars)
    entries = np.zeros(n, bool)
    exits = np.zeros(n, bool)
    short_entries = np.zeros(n, bool)
    short_exits = np.zeros(n, bool)
    entries[5] = True  # long 1
    entries[10] = exits[10] = True  # exit wins: flat, no new long
    entries[15] = short_entries[15] = True  # cancel out: nothing
    short_entries[20] = True  # short 1
    short_exits[30] = True  # flat
    result = backtest_signals(
        entries, exits, data, CONTRACT, short_entries=short_entries, short_exits=short_exits,
        initial_balance=1e5, leverage=5.0,
    )  # fmt: skip
    fills = result.records["fills"]
    np.testing.assert_array_equal(fills["ts_ns"], data.bars["ts_ns"][[6, 11, 21, 31]])
    np.testing.assert_array_equal(signed(fills), [1.0, -1.0, -1.0, 1.0])


def test_target_in_money_and_equity_fraction_converted_at_the_close():
    data = synthetic(n_bars=60, seed=4, funding=False)
    bars = data.bars
    spec = get_contract(CONTRACT)
    face, lot = spec.face_value, spec.lot_size
    n = len(bars)

    def lots(raw: float) -> float:
        return math.copysign(math.floor(abs(raw) / lot + 1e-9) * lot, raw)

    target = np.full(n, np.nan)
    target[3] = 1_000.0  # 1,000 USDT long
    target[9] = -500.0  # 500 USDT short
    target[20] = 0.0  # flat
    result = backtest_signals(
        None, None, data, CONTRACT, target=target, target_unit="notional",
        initial_balance=1e5, leverage=5.0,
    )  # fmt: skip
    fills = result.records["fills"]
    first = lots(1_000.0 / (face * bars["close"][3]))
    second = lots(-500.0 / (face * bars["close"][9]))
    np.testing.assert_allclose(signed(fills), [first, second - first, -second], rtol=1e-12)
    np.testing.assert_array_equal(fills["ts_ns"], bars["ts_ns"][[4, 10, 21]])

    fraction = np.full(n, np.nan)
    fraction[3] = 0.5  # a position worth half the equity (flat before: equity = balance)
    result = backtest_signals(
        None, None, data, CONTRACT, target=fraction, target_unit="equity_fraction",
        initial_balance=20_000.0, leverage=5.0,
    )  # fmt: skip
    expected = lots(0.5 * 20_000.0 / (face * bars["close"][3]))
    assert signed(result.records["fills"])[0] == pytest.approx(expected, rel=1e-12)


def test_inverse_target_in_base_coin():
    data = synthetic(n_bars=40, seed=5, symbol="BTC-USD-SWAP", funding=False)
    bars = data.bars
    target = np.full(len(bars), np.nan)
    target[2] = 0.25  # 0.25 BTC long on a 100 USD contract: 0.25 * close / 100 contracts
    result = backtest_signals(
        None, None, data, "okx:BTC-USD-SWAP", target=target, target_unit="base",
        initial_balance=1.0, leverage=5.0,
    )  # fmt: skip
    lot = get_contract("okx:BTC-USD-SWAP").lot_size
    expected = math.floor(0.25 * bars["close"][2] / 100.0 / lot + 1e-9) * lot
    assert signed(result.records["fills"])[0] == pytest.approx(expected, rel=1e-12)


def test_bad_combinations_are_refused_naming_the_argument():
    data = synthetic(n_bars=20, seed=1)
    n = len(data.bars)
    with pytest.raises(ValueError, match="target: give either a target array or signals"):
        backtest_signals(
            np.zeros(n, bool), None, data, CONTRACT, target=np.zeros(n), initial_balance=1e4
        )
    with pytest.raises(ValueError, match="entries, exits: both are required"):
        backtest_signals(np.zeros(n, bool), None, data, CONTRACT, initial_balance=1e4)
    with pytest.raises(ValueError, match="target_unit: expected one of"):
        backtest_signals(
            None, None, data, CONTRACT, target=np.zeros(n), target_unit="usd", initial_balance=1e4
        )
    with pytest.raises(ValueError, match=r"target: expected shape \(20,\)"):
        backtest_signals(None, None, data, CONTRACT, target=np.zeros(5), initial_balance=1e4)
