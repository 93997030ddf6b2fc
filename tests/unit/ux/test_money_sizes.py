"""Orders sized in money (notional, base coin, fraction of equity) for linear and inverse
contracts, rounded toward zero to the lot; the contract's facts and round_price on ctx.

Expected sizes are the contract-value formulas worked by hand (OKX contract specifications:
BTC-USDT-SWAP 1 contract = 0.01 BTC, lot 0.01; BTC-USD-SWAP 1 contract = 100 USD, lot 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.sizing import round_price, round_to_lot

MINUTE_NS = 60_000_000_000
T0 = 1_700_000_000_000_000_000


def bars(symbol: str, n: int = 3, price: float = 30_000.0) -> MarketData:
    rows = np.zeros(n, dtypes.BAR_DTYPE)
    rows["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    rows["open"] = rows["close"] = price
    rows["high"], rows["low"] = price + 10.0, price - 10.0
    return MarketData(symbol, bars=rows, bar_interval_ns=MINUTE_NS)


class OneOrder(Strategy):
    """Places ``order(ctx)`` at the first bar close and records the contract facts."""

    order = None

    def on_bar(self, ctx, bar):
        if len(ctx.closes) == 1:
            self.facts = (ctx.tick_size, ctx.lot_size, ctx.min_size, ctx.contract_value,
                          ctx.contract_kind)  # fmt: skip
            self.order(ctx)


def placed(contract: str, symbol: str, order, balance: float) -> tuple[float, tuple]:
    class Probe(OneOrder):
        pass

    Probe.order = staticmethod(order)
    seen = {}

    def on_bar(self, ctx, bar, _base=OneOrder.on_bar):
        _base(self, ctx, bar)
        if len(ctx.closes) == 1:
            seen["facts"] = self.facts

    Probe.on_bar = on_bar
    result = backtest(Probe, bars(symbol), contract, initial_balance=balance, leverage=10)
    orders = result.records["orders"]
    return float(orders[0]["qty_contracts"] * orders[0]["side"]), seen["facts"]


LINEAR = ("okx:BTC-USDT-SWAP", "BTC-USDT-SWAP", 10_000.0)
INVERSE = ("okx:BTC-USD-SWAP", "BTC-USD-SWAP", 1.0)


@pytest.mark.parametrize(
    ("contract", "order", "expected"),
    [
        # linear: notional / (0.01 x 30,000) = 1,000 / 300 = 3.333 -> 3.33 (lot 0.01)
        (LINEAR, lambda c: c.market(notional=1_000), 3.33),
        # linear: base / 0.01 = 0.1 / 0.01 = 10
        (LINEAR, lambda c: c.market(base=0.1), 10.0),
        # linear: 0.5 x 10,000 USDT / 300 = 16.667 -> 16.66, sold
        (LINEAR, lambda c: c.market(equity_fraction=-0.5), -16.66),
        # inverse: notional / 100 USD = 1,050 / 100 = 10.5 -> 10 (lot 1)
        (INVERSE, lambda c: c.market(notional=1_050), 10.0),
        # inverse: base x price / 100 = 0.1 x 30,000 / 100 = 30
        (INVERSE, lambda c: c.market(base=-0.1), -30.0),
        # inverse: 0.5 x 1 BTC x 30,000 / 100 = 150
        (INVERSE, lambda c: c.market(equity_fraction=0.5), 150.0),
        # a limit converts at its own price: 1,000 / (0.01 x 25,000) = 4
        (LINEAR, lambda c: c.limit(None, 25_000.0, notional=1_000), 4.0),
    ],
)
def test_money_sizes_convert_with_the_contract_value(contract, order, expected):
    qty, _ = placed(*contract[:2], order, contract[2])
    assert qty == pytest.approx(expected, abs=1e-12)


def test_ctx_exposes_the_contract_facts():
    _, facts = placed(*LINEAR[:2], lambda c: c.market(1), LINEAR[2])
    assert facts == (0.1, 0.01, 0.01, 0.01, "linear")
    _, facts = placed(*INVERSE[:2], lambda c: c.market(1), INVERSE[2])
    assert facts == (0.1, 1.0, 1.0, 100.0, "inverse")


def test_a_money_size_below_one_lot_raises_naming_it():
    # inverse: 50 USD / 100 USD per contract = 0.5 contracts < lot 1
    expected = r"notional=50: 0\.5 contracts at 30000, less than one lot"
    with pytest.raises(ValueError, match=expected):
        placed(*INVERSE[:2], lambda c: c.market(notional=50), INVERSE[2])


def test_two_sizes_at_once_raise():
    expected = r"exactly one of contracts, notional=.*got contracts, base"
    with pytest.raises(ValueError, match=expected):
        placed(*LINEAR[:2], lambda c: c.market(1, base=0.1), LINEAR[2])


def test_round_price_nearest_and_passive_sides():
    assert round_price(49_873.27, 0.1) == 49_873.3
    assert round_price(49_873.27, 0.1, -1) == 49_873.2  # buy: down
    assert round_price(49_873.21, 0.1, 1) == 49_873.3  # sell: up
    assert round_price(49_873.3, 0.1, 1) == 49_873.3  # already on the grid: unchanged
    assert round_price(0.30000000000000004, 0.1, 1) == 0.3  # float noise is not a step
    assert round_to_lot(3.339, 0.01) == 3.33
    assert round_to_lot(-16.667, 0.01) == -16.66
    assert round_to_lot(0.29999999999, 0.1) == 0.3
