"""The jit API (``backtester.jit``): every accessor against a value derived by hand.

A scripted jitted strategy buys 2 contracts of linear OKX BTC-USDT-SWAP (face 0.01 BTC, taker
fee 0.05 %, tier 1 MMR 0.4 %, liquidation fee 0.05 %) at the close of the first one-minute bar
(filled at the next bar's open) and writes what the accessors return at every bar close and
fill into its state. The expected values are computed here from the scripted prices and the
contract's published figures: the entry at the open of bar 1, the fee, the isolated margin
N·F·E/L, the unrealised PnL N·F·(mark − E), the OKX isolated long liquidation price
(E − M/(F·N))/(1 − MMR − fee), the mark and index from the recorded streams, the bars from
the input rows. Records (trade, fill, order, funding payment, liquidation) are checked
against the input rows and the Result's records.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from numba import njit

import backtester.jit as jit
from backtester import JitStrategy, backtest, dtypes
from backtester.data.market import MarketData
from backtester.dtypes import field_names
from backtester.enums import OrderStatus, Side
from backtester.jit import (
    available_balance,
    balance,
    bar,
    bar_count,
    contract_value,
    entry_price,
    equity,
    fill,
    funding_payment,
    funding_rate,
    index_price,
    last_price,
    leverage,
    liquidation,
    liquidation_price,
    lot_size,
    mark_price,
    market,
    min_size,
    order,
    order_count,
    position,
    tick_size,
    time_ns,
    trade,
    unrealised_pnl,
)

REPO = Path(__file__).resolve().parents[3]
MINUTE_NS = 60_000_000_000
SECOND_NS = 1_000_000_000
T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC: no funding instant in the run
CONTRACT = "okx:BTC-USDT-SWAP"
FACE = 0.01  # BTC per contract (OKX BTC-USDT-SWAP contract specification)
TAKER = 0.0005  # OKX regular-user taker fee
MMR = 0.004  # tier 1 maintenance margin rate (OKX position tiers, BTC-USDT-SWAP)
LIQ_FEE = 0.0005  # OKX liquidation fee rate in the profile (= taker)
LEVERAGE = 10.0
BALANCE0 = 10_000.0
N = 2.0  # contracts bought

#             open      high      low       close
OHLC = [
    (30_000.0, 30_050.0, 29_950.0, 30_010.0),
    (30_020.0, 30_080.0, 29_990.0, 30_060.0),  # the entry fills at this open
    (30_060.0, 30_100.0, 30_000.0, 30_040.0),
    (30_040.0, 30_070.0, 29_900.0, 29_950.0),
    (29_950.0, 30_000.0, 29_800.0, 29_900.0),
    (29_900.0, 30_200.0, 29_880.0, 30_150.0),
]
# one mark and one index point half-way through each bar (recorded streams, replayed as is)
MARKS = [30_005.0, 30_031.5, 30_052.0, 29_990.5, 29_870.0, 30_101.0]
INDEXES = [30_001.0, 30_028.0, 30_049.5, 29_985.0, 29_866.5, 30_097.0]

# columns of the per-bar float rows the strategy writes
(POSITION, ENTRY, MARK, LAST, INDEX, BALANCE, EQUITY, AVAILABLE, LIQ, UPL, COUNT, CLOSE0,
 OPEN0, CLOSE1, HIGH2, LEVERAGE_, TICK, LOT, MIN, FACE_, FUNDING) = range(21)  # fmt: skip
N_COLUMNS = 21


@njit
def record_on_bar(ctx, state, i, row):
    rows, times, bar_times = state[0], state[1], state[2]
    n = bar_count(ctx, i)
    k = n - 1
    if k == 0:
        market(ctx, i, 2.0)
    r = rows[k]
    r[POSITION] = position(ctx, i)
    r[ENTRY] = entry_price(ctx, i)
    r[MARK] = mark_price(ctx, i)
    r[LAST] = last_price(ctx, i)
    r[INDEX] = index_price(ctx, i)
    r[BALANCE] = balance(ctx)
    r[EQUITY] = equity(ctx)
    r[AVAILABLE] = available_balance(ctx)
    r[LIQ] = liquidation_price(ctx, i)
    r[UPL] = unrealised_pnl(ctx, i)
    r[COUNT] = n
    latest = bar(ctx, i, 0)
    r[CLOSE0] = latest.close
    r[OPEN0] = latest.open
    r[CLOSE1] = bar(ctx, i, 1).close if n > 1 else np.nan
    r[HIGH2] = bar(ctx, i, 2).high if n > 2 else np.nan
    r[LEVERAGE_] = leverage(ctx, i)
    r[TICK] = tick_size(ctx, i)
    r[LOT] = lot_size(ctx, i)
    r[MIN] = min_size(ctx, i)
    r[FACE_] = contract_value(ctx, i)
    r[FUNDING] = funding_rate(ctx, i)
    times[k] = time_ns(ctx)
    bar_times[k] = latest.ts_ns


@njit
def record_on_fill(ctx, state, fill_row):
    out = state[3]
    f = fill(ctx, fill_row)
    o = order(ctx, f.order_id)
    out[0] = f.price
    out[1] = f.qty_contracts
    out[2] = f.side
    out[3] = f.position_after_contracts
    out[4] = f.fee_settle
    out[5] = o.status
    out[6] = o.average_fill_price
    out[7] = o.order_type
    out[8] = position(ctx, f.instrument)  # the fill is booked when on_fill runs
    out[9] = f.instrument
    out[10] = order_count(ctx)  # the entry is the only order placed


class Recorder(JitStrategy):
    on_bar = record_on_bar
    on_fill = record_on_fill

    def make_state(self):
        n = len(OHLC)
        return (
            np.full((n, N_COLUMNS), np.nan),
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            np.full(11, np.nan),
        )


def _points(values, offset_ns) -> np.ndarray:
    points = np.zeros(len(values), dtypes.PRICE_DTYPE)
    points["ts_ns"] = T0 + np.arange(len(values)) * MINUTE_NS + offset_ns
    points["price"] = values
    return points


def scripted_data(symbol: str = "BTC-USDT-SWAP", shift: float = 0.0) -> MarketData:
    """The scripted bars (prices moved by ``shift``) with the mark and index points."""
    rows = np.zeros(len(OHLC), dtypes.BAR_DTYPE)
    rows["ts_ns"] = T0 + np.arange(len(OHLC)) * MINUTE_NS
    for k, (o, h, low, c) in enumerate(OHLC):
        rows[k]["open"], rows[k]["high"], rows[k]["low"], rows[k]["close"] = o, h, low, c
    for name in ("open", "high", "low", "close"):
        rows[name] += shift
    return MarketData(
        symbol,
        bars=rows,
        bar_interval_ns=MINUTE_NS,
        mark=_points(MARKS, 30 * SECOND_NS),
        index=_points(INDEXES, 30 * SECOND_NS),
    )


@pytest.fixture(scope="module")
def recorded():
    state_holder = {}

    class Run(Recorder):
        def make_state(self):
            state_holder["state"] = super().make_state()
            return state_holder["state"]

    result = backtest(
        Run, scripted_data(), CONTRACT, initial_balance=BALANCE0, leverage=LEVERAGE,
        mark_price_method="historical",
    )  # fmt: skip
    return state_holder["state"], result


def test_the_run_is_the_scripted_one(recorded):
    _, result = recorded
    fills = result.records["fills"]
    assert len(fills) == 1
    assert fills[0]["price"] == OHLC[1][0]  # market order at bar 0's close, filled at bar 1's open
    assert len(result.records["funding_payments"]) == 0
    assert len(result.records["liquidations"]) == 0


def test_time_and_bars(recorded):
    (rows, times, bar_times, _), _ = recorded
    for k, (o, _high, _low, c) in enumerate(OHLC):
        assert times[k] == T0 + (k + 1) * MINUTE_NS  # on_bar runs at the bar's close
        assert bar_times[k] == T0 + k * MINUTE_NS  # a bar's ts_ns is its open time
        assert rows[k, COUNT] == k + 1
        assert rows[k, CLOSE0] == c
        assert rows[k, OPEN0] == o
        assert rows[k, LAST] == c  # the last traded price at a bar close is its close
        if k >= 1:
            assert rows[k, CLOSE1] == OHLC[k - 1][3]
        if k >= 2:
            assert rows[k, HIGH2] == OHLC[k - 2][1]


def test_recorded_mark_and_index(recorded):
    (rows, *_), _ = recorded
    for k in range(len(OHLC)):
        # the latest point of each stream before the bar's close: the one half-way through it
        assert rows[k, MARK] == MARKS[k]
        assert rows[k, INDEX] == INDEXES[k]


def test_position_account_and_liquidation_price(recorded):
    (rows, *_), _ = recorded
    entry = OHLC[1][0]
    fee = TAKER * N * FACE * entry
    margin = N * FACE * entry / LEVERAGE  # isolated initial margin N·F·E/L
    flat = rows[0]
    assert flat[POSITION] == 0.0  # the order is filled at the next bar's open
    assert np.isnan(flat[ENTRY])
    assert flat[BALANCE] == BALANCE0
    assert flat[EQUITY] == BALANCE0
    assert flat[AVAILABLE] == BALANCE0
    assert flat[UPL] == 0.0
    assert np.isnan(flat[LIQ])
    for k in range(1, len(OHLC)):
        r = rows[k]
        upl = N * FACE * (MARKS[k] - entry)
        assert r[POSITION] == N
        assert r[ENTRY] == entry
        assert r[BALANCE] == pytest.approx(BALANCE0 - fee, rel=1e-15)
        assert r[UPL] == pytest.approx(upl, rel=1e-12)
        assert r[EQUITY] == pytest.approx(BALANCE0 - fee + upl, rel=1e-15)
        assert r[AVAILABLE] == pytest.approx(BALANCE0 - fee - margin, rel=1e-15)
        # OKX isolated long, linear: (E − M/(F·N)) / (1 − (MMR + liquidation fee))
        liq = (entry - margin / (FACE * N)) / (1.0 - (MMR + LIQ_FEE))
        assert r[LIQ] == pytest.approx(liq, rel=1e-12)


def test_contract_grid_leverage_and_funding_rate(recorded):
    (rows, *_), _ = recorded
    assert (rows[:, LEVERAGE_] == LEVERAGE).all()
    assert (rows[:, TICK] == 0.1).all()  # OKX BTC-USDT-SWAP tickSz
    assert (rows[:, LOT] == 0.01).all()  # lotSz
    assert (rows[:, MIN] == 0.01).all()  # minSz
    assert (rows[:, FACE_] == FACE).all()  # ctVal
    # no funding event in the run: no rate seen yet (the rate itself: the funding test)
    assert np.isnan(rows[:, FUNDING]).all()


def test_fill_and_order_records(recorded):
    (*_, fill_row), result = recorded
    entry = OHLC[1][0]
    assert fill_row[0] == entry
    assert fill_row[1] == N
    assert fill_row[2] == Side.BUY
    assert fill_row[3] == N
    assert fill_row[4] == pytest.approx(TAKER * N * FACE * entry, rel=1e-15)
    assert fill_row[5] == OrderStatus.FILLED
    assert fill_row[6] == entry
    assert fill_row[8] == N
    assert fill_row[9] == 0
    assert fill_row[7] == result.records["orders"][0]["order_type"]
    assert fill_row[10] == len(result.records["orders"]) == 1


# ---------------------------------------------------------------- trades, two instruments
@njit
def record_trades(ctx, out, i, row):
    t = trade(ctx, row)
    k = int(out[0, 0])
    out[0, 0] += 1
    out[k + 1, 0] = float(t.ts_ns - T0)
    out[k + 1, 1] = t.price
    out[k + 1, 2] = t.qty_base
    out[k + 1, 3] = t.side
    out[k + 1, 4] = last_price(ctx, i)


class TradeRecorder(JitStrategy):
    on_trade = record_trades
    holder: dict = {}  # noqa: RUF012 (the test reads the state back)

    def make_state(self):
        self.holder["out"] = np.zeros((64, 5))
        return self.holder["out"]


def test_trade_record_and_last_price():
    trades = np.zeros(5, dtypes.TRADE_DTYPE)
    trades["ts_ns"] = T0 + np.arange(5) * SECOND_NS
    trades["price"] = [30_000.0, 30_000.5, 29_999.9, 30_001.2, 30_003.0]
    trades["qty_base"] = [0.5, 0.01, 1.25, 0.2, 3.0]
    trades["side"] = [Side.BUY, Side.SELL, Side.SELL, Side.BUY, Side.BUY]
    backtest(TradeRecorder, MarketData("BTC-USDT-SWAP", trades=trades), CONTRACT,
             initial_balance=BALANCE0)  # fmt: skip
    out = TradeRecorder.holder["out"]
    assert out[0, 0] == 5
    for k in range(5):
        assert out[k + 1, 0] == k * SECOND_NS
        assert out[k + 1, 1] == trades[k]["price"]
        assert out[k + 1, 2] == trades[k]["qty_base"]
        assert out[k + 1, 3] == trades[k]["side"]
        assert out[k + 1, 4] == trades[k]["price"]


@njit
def record_two_instruments(ctx, out, i, row):
    n = bar_count(ctx, i)
    out[i, n - 1, 0] = bar(ctx, i, 0).close
    out[i, n - 1, 1] = n


class TwoInstruments(JitStrategy):
    on_bar = record_two_instruments
    holder: dict = {}  # noqa: RUF012

    def make_state(self):
        self.holder["out"] = np.full((2, 8, 2), np.nan)
        return self.holder["out"]


def test_bar_of_the_second_instrument_reads_its_own_bars():
    # other prices: a read of the first instrument's rows would show
    first, second = scripted_data(), scripted_data("BTCUSDT", shift=1_000.0)
    backtest(TwoInstruments, [first, second], [CONTRACT, "binance_usdm:BTCUSDT"],
             initial_balance=BALANCE0, mark_price_method="historical")  # fmt: skip
    out = TwoInstruments.holder["out"]
    for k in range(len(OHLC)):
        assert out[0, k, 0] == OHLC[k][3]
        assert out[1, k, 0] == OHLC[k][3] + 1_000.0
        assert out[0, k, 1] == out[1, k, 1] == k + 1


@njit
def read_too_far(ctx, out, i, row):
    bar(ctx, i, bar_count(ctx, i))


class TooFar(JitStrategy):
    on_bar = read_too_far


def test_bar_beyond_the_history_raises():
    with pytest.raises(IndexError, match="beyond the closed bars"):
        backtest(TooFar, scripted_data(), CONTRACT, initial_balance=BALANCE0,
                 mark_price_method="historical")  # fmt: skip


# ---------------------------------------------------------------- funding and liquidation
@njit
def long_then_record(ctx, out, i, row):
    n = bar_count(ctx, i)
    if n == 1:
        market(ctx, i, 50.0)
    if n in (480, 481):  # the bar closing at 08:00 (funding instant), then the next
        out[14 + n - 480, 0] = funding_rate(ctx, i)
        out[14 + n - 480, 1] = float(time_ns(ctx) - T0)


@njit
def funding_seen(ctx, out, row):
    p = funding_payment(ctx, row)
    k = int(out[0, 0]) + 1
    out[0, 0] = k
    out[k, 0] = float(p.ts_ns - T0)
    out[k, 1] = p.payment_settle
    out[k, 2] = p.funding_rate
    out[k, 3] = p.position_contracts


@njit
def liquidation_seen(ctx, out, row):
    q = liquidation(ctx, row)
    k = int(out[0, 1]) + 1
    out[0, 1] = k
    out[k, 4] = q.fill_price
    out[k, 5] = q.contracts_before
    out[k, 6] = q.liquidation_price
    out[k, 7] = q.loss_settle
    out[k, 8] = float(q.ts_ns - T0)


class Crash(JitStrategy):
    on_bar = long_then_record
    on_funding = funding_seen
    on_liquidation = liquidation_seen
    holder: dict = {}  # noqa: RUF012

    def make_state(self):
        self.holder["out"] = np.zeros((16, 9))
        return self.holder["out"]


def test_funding_payment_and_liquidation_records_are_the_results_rows():
    n = 600  # ten hours of one-minute bars from 2024-01-01 00:00: funding at 08:00
    start = int(np.datetime64("2024-01-01T00:00", "ns").astype(np.int64))
    close = np.full(n, 40_000.0)
    close[500:] = 30_000.0  # a crash after the funding instant liquidates the 20x long
    rows = np.zeros(n, dtypes.BAR_DTYPE)
    rows["ts_ns"] = start + np.arange(n) * MINUTE_NS
    rows["open"] = np.r_[close[0], close[:-1]]
    rows["high"] = np.maximum(rows["open"], close)
    rows["low"] = np.minimum(rows["open"], close)
    rows["close"] = close
    funding = np.zeros(1, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = start + 480 * MINUTE_NS
    funding["funding_rate"] = 2e-4
    data = MarketData("BTC-USDT-SWAP", bars=rows, bar_interval_ns=MINUTE_NS, funding=funding)
    result = backtest(Crash, data, CONTRACT, initial_balance=BALANCE0, leverage=20.0)
    out = Crash.holder["out"]
    payments = result.records["funding_payments"]
    liquidations = result.records["liquidations"]
    assert len(payments) == 1
    assert len(liquidations) >= 1
    assert out[0, 0] == 1
    assert out[1, 0] == float(payments[0]["ts_ns"] - T0)
    # a long pays a positive rate: 50 contracts · 0.01 BTC · mark 40,000 · 0.0002 = 4 USDT
    assert out[1, 1] == payments[0]["payment_settle"] == pytest.approx(-4.0, rel=1e-12)
    assert out[1, 2] == 2e-4
    assert out[1, 3] == 50.0
    # funding_rate: NaN until the first funding event, then its rate (the bar closing at
    # 08:00 sees it: funding precedes the bar close at one instant)
    assert out[14, 1] == float(funding["ts_ns"][0] - T0)
    assert out[14, 0] == 2e-4
    assert out[15, 0] == 2e-4
    assert out[0, 1] == len(liquidations)
    first = liquidations[0]
    assert out[1, 4] == first["fill_price"]
    assert out[1, 5] == first["contracts_before"] == 50.0
    assert out[1, 6] == first["liquidation_price"]
    assert out[1, 7] == first["loss_settle"]
    assert out[1, 8] == float(first["ts_ns"] - T0)


# ---------------------------------------------------------------- the API's surface
def test_record_tuples_have_the_dtypes_fields():
    pairs = {
        jit.Trade: dtypes.TRADE_DTYPE, jit.Bar: dtypes.BAR_DTYPE, jit.Fill: dtypes.FILL_DTYPE,
        jit.FundingPayment: dtypes.FUNDING_PAYMENT_DTYPE,
        jit.Liquidation: dtypes.LIQUIDATION_DTYPE, jit.AdlRecord: dtypes.ADL_DTYPE,
        jit.Order: dtypes.ORDER_DTYPE,
    }  # fmt: skip
    for record, dtype in pairs.items():
        assert record._fields == field_names(dtype), record.__name__


def test_every_name_of_the_api_is_documented():
    module_doc = inspect.getdoc(jit) or ""
    for name in jit.__all__:
        obj = getattr(jit, name)
        if name != "CALLBACKS":
            doc = inspect.getdoc(getattr(obj, "py_func", obj)) or ""
            assert doc.strip(), f"backtester.jit.{name} has no docstring"
        assert re.search(rf"\b{name}\b", module_doc), f"{name} is not in the module docstring"


def _jitted_functions(tree: ast.AST) -> list[ast.FunctionDef]:
    def is_njit(node: ast.expr) -> bool:
        target = node.func if isinstance(node, ast.Call) else node
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        return name in ("njit", "jit")

    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and any(map(is_njit, node.decorator_list))
    ]


def _raw_state_reads(source: str) -> list[str]:
    """``ctx.<field>`` inside the ``@njit`` functions of ``source`` (the first argument of a
    jitted callback is its ctx, whatever its name)."""
    found = []
    for fn in _jitted_functions(ast.parse(source)):
        if not fn.args.args:
            continue
        ctx = fn.args.args[0].arg
        found.extend(
            f"{fn.name}: {ctx}.{node.attr} (line {node.lineno})"
            for node in ast.walk(fn)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == ctx
        )
    return found


def test_shipped_jit_strategies_and_the_readme_use_only_the_accessors():
    sources = {
        str(path.relative_to(REPO)): path.read_text(encoding="utf-8")
        for path in sorted((REPO / "strategies").glob("*.py"))
    }
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "@njit" in b]
    assert blocks, "README.md: expected a jit example (a python block with @njit)"
    sources.update({f"README.md jit block {k}": b for k, b in enumerate(blocks)})
    assert any(_jitted_functions(ast.parse(s)) for s in sources.values())
    offending = {name: reads for name, s in sources.items() if (reads := _raw_state_reads(s))}
    assert offending == {}


def test_the_raw_state_check_can_fail():
    source = (
        "from numba import njit\n@njit\ndef on_trade(c, s, i, row):\n    return c.trades[row]\n"
    )
    assert _raw_state_reads(source) == ["on_trade: c.trades (line 4)"]
