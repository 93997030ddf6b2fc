"""The signal kernel (``run_signals_nb``) gives the general loop's records, byte for byte.

``backtest_signals(..., replay="auto")`` replays one instrument on bars with the dedicated
kernel of :mod:`backtester.engine.signals_nb`; ``replay="events"`` forces the general jitted
loop (``run_until_jit_nb``) with the signal ``on_bar``. Every record array (orders, fills,
funding payments, liquidations, settlements, ADL, ledger, equity) must be equal as bytes
(``tobytes()``, padding included) across contract profiles, mark methods, margin modes,
liquidations, rejections, options and 2-D sweeps; where the kernel does not apply (trade
ticks, ADL scenario events) ``"auto"`` falls back and still equals ``"events"``.

A failure names the case, the record array, its first differing row and both rows.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

from backtester import backtest, backtest_signals, dtypes
from backtester.data.market import MarketData
from backtester.data.sample import load_sample
from backtester.engine import signal_replay
from backtester.engine.jit_replay import replay_kernel
from backtester.engine.signal_replay import SignalRule, signal_kernel_applies, signal_on_bar_nb
from backtester.engine.signals_nb import run_signals_nb
from backtester.engine.slippage import FixedRateSlippage
from backtester.enums import LedgerKind, OrderStatus
from backtester.results import Result

MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
T0 = int(np.datetime64("2024-01-01T00:00", "ns").astype(np.int64))
RECORD_NAMES = tuple(dtypes.ALL_RECORD_DTYPES)


# ---------------------------------------------------------------------------- data
@cache
def synthetic(
    n_bars: int = 3_000,
    seed: int = 1,
    *,
    symbol: str = "BTC-USDT-SWAP",
    vol: float = 5e-4,
    index: bool = True,
    mark: bool = False,
    funding: bool = True,
    trades: bool = False,
    deleverage: bool = False,
    interval_ns: int = MINUTE_NS,
    trend: float = 0.0,
) -> MarketData:
    """Bars (1 min by default) of a random walk near 40,000 with (optionally) an index point
    at each bar close, a recorded mark stream, funding every 8 h (random rates of both signs),
    four trade ticks per bar (open, high, low, close) and one ADL episode; ``trend`` is a
    log-price drift per bar. Cached: the engine does not write its inputs."""
    rng = np.random.default_rng(seed)
    close = np.round(40_000 * np.exp(np.cumsum(rng.normal(trend, vol, n_bars))), 1)
    bars = np.zeros(n_bars, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n_bars) * interval_ns
    bars["open"] = np.r_[close[0], close[:-1]]
    bars["close"] = close
    spread = np.round(np.abs(rng.normal(0, vol * 40_000, n_bars)), 1) + 0.5
    bars["high"] = np.maximum(bars["open"], close) + spread
    bars["low"] = np.minimum(bars["open"], close) - spread
    bars["volume_base"] = 10.0
    streams: dict[str, Any] = {}
    if index:
        points = np.zeros(n_bars, dtypes.PRICE_DTYPE)
        points["ts_ns"] = bars["ts_ns"] + interval_ns
        points["price"] = np.round(close * (1 + rng.normal(-1e-4, 3e-4, n_bars)), 2)
        streams["index"] = points
    if mark:
        # a recorded mark every 30 s: off the bar close times as well as on them
        marks = np.zeros(2 * n_bars, dtypes.PRICE_DTYPE)
        marks["ts_ns"] = T0 + (np.arange(2 * n_bars) + 1) * (interval_ns // 2)
        marks["price"] = np.round(np.repeat(close, 2) * (1 + rng.normal(0, 4e-4, 2 * n_bars)), 2)
        streams["mark"] = marks
    if funding:
        n_funding = n_bars * interval_ns // (8 * HOUR_NS)
        rates = np.zeros(n_funding, dtypes.FUNDING_RATE_DTYPE)
        rates["ts_ns"] = T0 + (np.arange(n_funding) + 1) * 8 * HOUR_NS
        rates["funding_rate"] = np.round(rng.normal(1e-4, 3e-4, n_funding), 6)
        streams["funding"] = rates
    if trades:
        ticks = np.zeros(4 * n_bars, dtypes.TRADE_DTYPE)
        ticks["ts_ns"] = np.repeat(bars["ts_ns"], 4) + np.tile(
            np.array([0, 15, 30, 45]) * 1_000_000_000, n_bars
        )
        ticks["price"] = np.column_stack(
            [bars["open"], bars["high"], bars["low"], bars["close"]]
        ).ravel()
        ticks["qty_base"] = 0.5
        ticks["side"] = np.tile(np.array([1, 1, -1, -1], dtype=np.int8), n_bars)
        streams["trades"] = ticks
    if deleverage:
        events = np.zeros(1, dtypes.DELEVERAGE_EVENT_DTYPE)
        at = T0 + (n_bars // 2) * interval_ns
        events[0] = (at, LedgerKind.ADL, 1, close[n_bars // 2], 0.0, 0.0)
        streams["deleverage"] = events
    return MarketData(symbol, bars=bars, bar_interval_ns=interval_ns, **streams)


def random_signals(n: int, density: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random(n) < density, rng.random(n) < density


def sma_signals(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    """Fast SMA above the slow one: enter; below: exit (both False before the slow window)."""
    fast_sma = np.convolve(close, np.ones(fast) / fast)[: len(close)]
    slow_sma = np.convolve(close, np.ones(slow) / slow)[: len(close)]
    valid = np.arange(len(close)) >= slow - 1
    return valid & (fast_sma > slow_sma), valid & (fast_sma < slow_sma)


# ---------------------------------------------------------------------------- comparison
def differences(case: str, auto: Result, events: Result) -> list[str]:
    """One line per record array whose bytes differ: length, or first differing row and both
    rows (with the differing fields)."""
    out = []
    for name in RECORD_NAMES:
        a, e = auto.records[name], events.records[name]
        if a.dtype != e.dtype:
            out.append(f"{case}: {name}: dtype {a.dtype} (auto) != {e.dtype} (events)")
            continue
        if a.tobytes() == e.tobytes():
            continue
        n = min(len(a), len(e))
        rows = [k for k in range(n) if a[k].tobytes() != e[k].tobytes()]
        first = rows[0] if rows else n
        line = f"{case}: {name}: {len(a)} rows (auto) vs {len(e)} (events); first row {first}"
        if first < n:
            fields = [f for f in a.dtype.names if a[first][f].tobytes() != e[first][f].tobytes()]
            line += f" (fields {fields}): auto {a[first]!r} | events {e[first]!r}"
        out.append(line)
    return out


def assert_same_records(case: str, auto: Result, events: Result) -> None:
    problems = differences(case, auto, events)
    assert not problems, "\n".join(problems)


def both(case: str, entries, exits, data, contract, **kwargs) -> Result:
    """``backtest_signals`` with ``replay="auto"`` and ``"events"``; asserts byte-identical
    records and returns the auto Result (or the list for 2-D signals)."""
    auto = backtest_signals(entries, exits, data, contract, replay="auto", **kwargs)
    events = backtest_signals(entries, exits, data, contract, replay="events", **kwargs)
    if isinstance(auto, list):
        assert len(auto) == len(events)
        for k, (a, e) in enumerate(zip(auto, events, strict=True)):
            assert_same_records(f"{case}[column {k}]", a, e)
    else:
        assert_same_records(case, auto, events)
    return auto


def probe_kernel(entries, exits, data, contract, **kwargs) -> tuple[bool, Any, Result]:
    """Run the signal rule through ``backtest`` as ``backtest_signals`` does and return
    (signal_kernel_applies(run), the kernel the engine chose for replay="auto" or None for the
    general loop, Result): the engine's choice (signal_replay.signal_kernel) is recorded by a
    wrapper around it."""
    decisions: list[tuple[bool, Any]] = []
    chosen = signal_replay.signal_kernel

    def recording(run: Any, rule: Any) -> Any:
        kernel, arguments = chosen(run, rule)
        decisions.append((signal_kernel_applies(run), kernel))
        return kernel, arguments

    size = float(kwargs.pop("contracts", 1.0))
    sign = 1.0 if kwargs.pop("direction", "long") == "long" else -1.0
    no = np.zeros(len(entries), dtype=bool)
    params = {
        "amount": np.where(entries & ~exits, sign * size, np.nan),
        "close_long": np.ascontiguousarray(exits if sign > 0 else no),
        "close_short": np.ascontiguousarray(exits if sign < 0 else no),
        "unit": 0,
        "replay": "auto",
    }
    signal_replay.signal_kernel = recording
    try:
        result = backtest(SignalRule, data, contract, params=params, **kwargs)
    finally:
        signal_replay.signal_kernel = chosen
    assert len(decisions) == 1
    applies, kernel = decisions[0]
    if kernel is not run_signals_nb:
        # the general loop with the signal rule as its on_bar: reported as None
        assert kernel is replay_kernel({"on_bar": signal_on_bar_nb}, None)[0]
        kernel = None
    return applies, kernel, result


# ---------------------------------------------------------------------------- the kernel is used
def test_auto_uses_the_signal_kernel_on_bars_and_gives_the_signal_path_result():
    data = synthetic()
    entries, exits = random_signals(len(data.bars), 0.05, seed=3)
    applies, kernel, probed = probe_kernel(
        entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0, contracts=5.0
    )
    assert applies is True
    assert kernel is run_signals_nb
    auto = both(
        "kernel used", entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0,
        contracts=5.0,
    )  # fmt: skip
    assert_same_records("probe vs backtest_signals", probed, auto)
    assert len(auto.records["fills"]) > 50


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("trade ticks", {"trades": True}),
        ("ADL scenario event", {"deleverage": True}),
    ],
)
def test_where_the_kernel_does_not_apply_auto_falls_back_and_equals_events(case, options):
    data = synthetic(1_500, seed=5, **options)
    entries, exits = random_signals(len(data.bars), 0.08, seed=6)
    # a long held across the ADL episode at bar 750 (its price is above this entry)
    exits[600:760] = False
    entries[600] = True
    kwargs = {"initial_balance": 10_000.0, "contracts": 20.0, "leverage": 20.0}
    applies, kernel, _ = probe_kernel(entries, exits, data, "okx:BTC-USDT-SWAP", **kwargs)
    assert applies is False
    assert kernel is None
    result = both(case, entries, exits, data, "okx:BTC-USDT-SWAP", **kwargs)
    assert len(result.records["fills"]) > 20
    if options.get("deleverage"):
        assert len(result.records["adl"]) == 1


# ---------------------------------------------------------------------------- random signals
@pytest.mark.parametrize("direction", ["long", "short"])
@pytest.mark.parametrize("density", [0.5, 0.02], ids=["dense", "sparse"])
def test_random_signals_on_minute_bars_with_index_and_funding(direction, density):
    data = synthetic()
    entries, exits = random_signals(len(data.bars), density, seed=11)
    result = both(
        f"random {direction} {density}", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0, contracts=3.0, direction=direction, leverage=5.0,
    )  # fmt: skip
    assert len(result.records["fills"]) > 10
    assert len(result.records["funding_payments"]) > 0
    assert len(result.records["equity"]) == len(data.bars) + 1


def test_dense_signals_over_many_bars_grow_every_record_buffer():
    # a trade every other bar: > 4,096 ledger rows and > 1,024 fills, more than the record
    # buffers start with (the kernel returns BUFFER_FULL unless the driver reserved the rows)
    data = synthetic(12_000, seed=2)
    entries = np.arange(12_000) % 2 == 0
    exits = ~entries
    result = both(
        "dense 12k", entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=100_000.0,
        contracts=1.0,
    )  # fmt: skip
    assert len(result.records["fills"]) > 5_000
    assert len(result.records["ledger"]) > 5_000


# ---------------------------------------------------------------------------- liquidation, cross
@pytest.mark.parametrize("direction", ["long", "short"])
def test_high_leverage_isolated_positions_are_liquidated_identically(direction):
    data = synthetic(3_000, seed=4, vol=1e-3)
    entries, exits = random_signals(len(data.bars), 0.2, seed=8)
    exits &= np.random.default_rng(9).random(len(data.bars)) < 0.05  # long holding periods
    result = both(
        f"isolated 100x {direction}", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0, contracts=10.0, direction=direction, leverage=100.0,
    )  # fmt: skip
    assert len(result.records["liquidations"]) > 0


def test_more_liquidations_than_their_buffer_holds():
    # re-entering a 100x long at every bar close on a falling market: a liquidation every few
    # bars, > 64 rows, more than the liquidation buffer starts with, so the kernel stops with
    # BUFFER_FULL and resumes
    data = synthetic(3_000, seed=6, trend=-5e-4)
    entries = np.ones(len(data.bars), dtype=bool)
    exits = np.zeros(len(data.bars), dtype=bool)
    result = both(
        "many liquidations", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=100_000.0, contracts=10.0, leverage=100.0,
    )  # fmt: skip
    assert len(result.records["liquidations"]) > 64


@pytest.mark.parametrize("direction", ["long", "short"])
def test_cross_margin(direction):
    data = synthetic(3_000, seed=4, vol=1e-3)
    entries, exits = random_signals(len(data.bars), 0.2, seed=12)
    exits &= np.random.default_rng(13).random(len(data.bars)) < 0.05
    result = both(
        f"cross 3x {direction}", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0, contracts=10.0, leverage=3.0, margin_mode="cross",
        direction=direction,
    )  # fmt: skip
    assert len(result.records["fills"]) > 10


@pytest.mark.parametrize("direction", ["long", "short"])
def test_cross_margin_at_high_leverage_is_liquidated(direction):
    # 100x cross on a small wallet: the whole account backs the position and runs out; the
    # later entries are then rejected
    data = synthetic(3_000, seed=4, vol=1.5e-3)
    entries = np.zeros(len(data.bars), dtype=bool)
    entries[::50] = True
    exits = np.zeros(len(data.bars), dtype=bool)
    result = both(
        f"cross 100x {direction}", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=100.0, contracts=20.0, leverage=100.0, margin_mode="cross",
        direction=direction,
    )  # fmt: skip
    assert len(result.records["liquidations"]) > 0
    assert np.any(result.records["orders"]["status"] == OrderStatus.REJECTED)


@pytest.mark.parametrize("ratio", [1.0, 4.0])
def test_margin_call_buffer_ratio_changes_nothing_between_the_paths(ratio):
    data = synthetic(3_000, seed=4, vol=1e-3)
    entries, exits = random_signals(len(data.bars), 0.2, seed=14)
    exits &= np.random.default_rng(15).random(len(data.bars)) < 0.05
    result = both(
        f"margin_call_buffer_ratio {ratio}", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0, contracts=10.0, leverage=50.0, margin_call_buffer_ratio=ratio,
    )  # fmt: skip
    assert len(result.records["liquidations"]) > 0


@pytest.mark.parametrize(
    ("contract", "symbol", "balance", "size"),
    [
        ("okx:BTC-USDT-SWAP", "BTC-USDT-SWAP", 10_000.0, 10.0),
        ("okx:BTC-USD-SWAP", "BTC-USD-SWAP", 1.0, 20.0),
    ],
)
@pytest.mark.parametrize("ratio", [1.0, 3.0])
@pytest.mark.parametrize("direction", ["long", "short"])
def test_quiet_stretches_run_many_bars_at_a_time(contract, symbol, balance, size, ratio, direction):
    # Sparse signals and an hourly equity row: between them the kernel runs the quiet bars
    # many at a time (a bar's close, the next open, its path and its index point per step)
    # while the mark stays inside the position's safe band. At 60x on a volatile walk the
    # mark leaves the band inside such stretches (margin calls and liquidations there), and
    # the position is flat for long spells after an exit or a liquidation.
    data = synthetic(6_000, seed=81, vol=1.5e-3, symbol=symbol)
    entries = np.zeros(len(data.bars), dtype=bool)
    entries[::400] = True
    exits = np.zeros(len(data.bars), dtype=bool)
    exits[250::400] = True
    result = both(
        f"quiet stretches {contract} {direction} ratio {ratio}", entries, exits, data,
        contract, initial_balance=balance, contracts=size, direction=direction,
        leverage=60.0, margin_call_buffer_ratio=ratio, equity_interval_ns=HOUR_NS,
    )  # fmt: skip
    assert len(result.records["liquidations"]) > 0
    assert 90 < len(result.records["equity"]) < 110  # 100 hours


# ---------------------------------------------------------------------------- contract profiles
PROFILES = [
    # (contract, data symbol, initial balance, contracts): about 0.1 of the wallet per unit
    ("okx:BTC-USDT-SWAP", "BTC-USDT-SWAP", 10_000.0, 10.0),
    ("okx:BTC-USD-SWAP", "BTC-USD-SWAP", 1.0, 20.0),
    ("binance_usdm:BTCUSDT", "BTCUSDT", 10_000.0, 0.1),
    ("binance_coinm:BTCUSD_PERP", "BTCUSD_PERP", 1.0, 20.0),
    ("bitmex:XBTUSD", "XBTUSD", 1.0, 2_000.0),
    ("okx_coinm_2019:BTC-USD-SWAP", "BTC-USD-SWAP", 1.0, 20.0),
]


@pytest.mark.parametrize("margin_mode", ["isolated", "cross"])
@pytest.mark.parametrize(("contract", "symbol", "balance", "size"), PROFILES)
def test_contract_profiles(contract, symbol, balance, size, margin_mode):
    data = synthetic(3_000, seed=21, symbol=symbol)
    entries, exits = random_signals(len(data.bars), 0.05, seed=22)
    result = both(
        f"{contract} {margin_mode}", entries, exits, data, contract, initial_balance=balance,
        contracts=size, leverage=10.0, margin_mode=margin_mode,
    )  # fmt: skip
    assert len(result.records["fills"]) > 10
    assert len(result.records["funding_payments"]) > 0


@pytest.mark.parametrize(("contract", "symbol", "balance", "size"), PROFILES)
def test_contract_profiles_at_high_leverage_liquidate(contract, symbol, balance, size):
    data = synthetic(3_000, seed=31, symbol=symbol, vol=1.5e-3)
    entries = np.zeros(len(data.bars), dtype=bool)
    entries[::50] = True  # re-enter after each liquidation, never exit
    exits = np.zeros(len(data.bars), dtype=bool)
    result = both(
        f"{contract} 75x", entries, exits, data, contract, initial_balance=balance,
        contracts=size, leverage=75.0,
    )  # fmt: skip
    assert len(result.records["liquidations"]) > 0


TIERED = [
    # (contract, symbol, balance, contracts, high leverage): positions past tier 1 (tier 3 on
    # the OKX tables, where okx_coinm_2019 liquidates partially) or at a notional-based tier
    # boundary that the mark crosses (Binance USDⓈ-M 250k USDT, COIN-M 10 BTC, BitMEX 300 XBT)
    ("okx:BTC-USDT-SWAP", "BTC-USDT-SWAP", 1e6, 6_000.0, 45.0),
    ("okx:BTC-USD-SWAP", "BTC-USD-SWAP", 30.0, 12_000.0, 45.0),
    ("binance_usdm:BTCUSDT", "BTCUSDT", 1e6, 6.2, 24.0),
    ("binance_coinm:BTCUSD_PERP", "BTCUSD_PERP", 30.0, 4_010.0, 45.0),
    ("bitmex:XBTUSD", "XBTUSD", 1_000.0, 12_030_000.0, 50.0),
    ("okx_coinm_2019:BTC-USD-SWAP", "BTC-USD-SWAP", 30.0, 15_000.0, 45.0),
]


@pytest.mark.parametrize("direction", ["long", "short"])
@pytest.mark.parametrize(("contract", "symbol", "balance", "size", "high"), TIERED)
def test_positions_beyond_the_first_tier(contract, symbol, balance, size, high, direction):
    data = synthetic(3_000, seed=91, symbol=symbol, vol=1e-3)
    entries = np.zeros(len(data.bars), dtype=bool)
    entries[::60] = True
    exits = np.zeros(len(data.bars), dtype=bool)
    exits[30::300] = True
    for leverage in (10.0, high):
        result = both(
            f"{contract} {size} contracts {leverage}x {direction}", entries, exits, data,
            contract, initial_balance=balance, contracts=size, leverage=leverage,
            direction=direction,
        )  # fmt: skip
        assert len(result.records["fills"]) >= 20
    if contract != "binance_usdm:BTCUSDT":  # its tier 3 at 24x is not reached by this market
        assert len(result.records["liquidations"]) > 0
    if contract.startswith("okx"):
        assert np.any(result.records["liquidations"]["is_partial"])


def test_daily_settlement_profile_writes_settlements():
    # okx_coinm_2019 settles at 08:00 UTC each day; 3 days of bars with a position held
    data = synthetic(3 * 1_440, seed=41, symbol="BTC-USD-SWAP")
    entries, exits = random_signals(len(data.bars), 0.05, seed=42)
    exits &= np.random.default_rng(43).random(len(data.bars)) < 0.01
    result = both(
        "daily settlement", entries, exits, data, "okx_coinm_2019:BTC-USD-SWAP",
        initial_balance=1.0, contracts=30.0, leverage=10.0,
    )  # fmt: skip
    assert len(result.records["settlements"]) > 0
    assert len(result.records["funding_payments"]) > 0


def test_hourly_bars_over_a_hundred_days_of_daily_settlement():
    # hourly bars (another bar interval), > 64 settlements: more than their buffer starts with
    data = synthetic(100 * 24, seed=44, symbol="BTC-USD-SWAP", interval_ns=HOUR_NS, vol=3e-3)
    entries, exits = random_signals(len(data.bars), 0.1, seed=45)
    exits &= np.random.default_rng(46).random(len(data.bars)) < 0.02
    result = both(
        "hourly settlement", entries, exits, data, "okx_coinm_2019:BTC-USD-SWAP",
        initial_balance=1.0, contracts=30.0, leverage=10.0,
    )  # fmt: skip
    assert len(result.records["settlements"]) > 64
    assert len(result.records["equity"]) == len(data.bars) + 1


# ---------------------------------------------------------------------------- mark methods
@pytest.mark.parametrize(
    "method",
    ["profile", "index_ema_basis", "last", "historical", "funding_basis", "binance_median"],
)
@pytest.mark.parametrize("leverage", [5.0, 80.0])
def test_mark_price_methods(method, leverage):
    data = synthetic(3_000, seed=51, mark=True, vol=1e-3)
    entries, exits = random_signals(len(data.bars), 0.1, seed=52)
    exits &= np.random.default_rng(53).random(len(data.bars)) < 0.1
    result = both(
        f"mark {method} {leverage}x", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0, contracts=10.0, leverage=leverage, mark_price_method=method,
    )  # fmt: skip
    assert result.config["mark_price_method_used"] == [
        "INDEX_EMA_BASIS" if method == "profile" else method.upper()
    ]
    assert len(result.records["fills"]) > 10
    if leverage == 80.0:
        assert len(result.records["liquidations"]) > 0


@pytest.mark.parametrize(("mark", "used"), [(True, "HISTORICAL"), (False, "LAST")])
def test_profile_mark_without_an_index_falls_back(mark, used):
    data = synthetic(2_000, seed=54, index=False, mark=mark, vol=1e-3)
    entries, exits = random_signals(len(data.bars), 0.1, seed=55)
    result = both(
        f"no index, mark={mark}", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0, contracts=10.0, leverage=60.0,
    )  # fmt: skip
    assert result.config["mark_price_method_used"] == [used]
    assert len(result.records["fills"]) > 10


@cache
def irregular(seed: int, late_ns: int) -> MarketData:
    """Bars with 15 % of them missing, index points at random times (not on bar closes) and a
    thinned recorded mark, both starting ``late_ns`` after the first bar (the mark is NaN
    until then)."""
    base = synthetic(3_000, seed, mark=True, vol=1e-3)
    rng = np.random.default_rng(seed)
    bars = base.bars[rng.random(len(base.bars)) > 0.15].copy()
    index = np.zeros(2_500, dtypes.PRICE_DTYPE)
    index["ts_ns"] = np.sort(T0 + late_ns + rng.integers(0, 3_000 * MINUTE_NS - late_ns, 2_500))
    drawn = np.interp(index["ts_ns"], base.bars["ts_ns"], base.bars["close"])
    index["price"] = np.round(drawn * (1 + rng.normal(0, 3e-4, 2_500)), 2)
    mark = base.mark[base.mark["ts_ns"] >= T0 + late_ns]
    mark = mark[rng.random(len(mark)) > 0.5].copy()
    return MarketData(
        "BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS, index=index, mark=mark,
        funding=base.funding,
    )  # fmt: skip


@pytest.mark.parametrize("method", ["profile", "historical", "last", "funding_basis"])
@pytest.mark.parametrize("late_ns", [0, 300 * MINUTE_NS], ids=["index from the start", "late"])
def test_irregular_streams(method, late_ns):
    data = irregular(5, late_ns)
    n = len(data.bars)
    entries, exits = random_signals(n, 0.2, seed=7)
    exits &= np.random.default_rng(8).random(n) < 0.1
    for margin_mode in ("isolated", "cross"):
        result = both(
            f"irregular {method} {late_ns} {margin_mode}", entries, exits, data,
            "okx:BTC-USDT-SWAP", initial_balance=10_000.0, contracts=10.0, leverage=60.0,
            mark_price_method=method, margin_mode=margin_mode,
        )  # fmt: skip
        assert len(result.records["fills"]) > 50
        if margin_mode == "isolated":
            assert len(result.records["liquidations"]) > 0


@pytest.mark.parametrize("n_bars", [1, 2, 3])
def test_a_few_bars(n_bars):
    data = synthetic(n_bars, seed=3)
    for entries in (np.ones(n_bars, dtype=bool), np.zeros(n_bars, dtype=bool)):
        exits = np.zeros(n_bars, dtype=bool)
        result = both(
            f"{n_bars} bars", entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=1e4
        )
        assert len(result.records["orders"]) == int(entries[0])
        assert len(result.records["fills"]) == int(entries[0] and n_bars > 1)
        assert len(result.records["equity"]) == n_bars + 1


def test_bars_only_without_funding_or_index():
    data = synthetic(2_000, seed=56, index=False, funding=False)
    entries, exits = random_signals(len(data.bars), 0.1, seed=57)
    result = both("bars only", entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    assert len(result.records["fills"]) > 10
    assert len(result.records["funding_payments"]) == 0


@pytest.mark.parametrize("bar_path", ["conservative", "nearest"])
@pytest.mark.parametrize("ratio", [1.0, 3.0])
@pytest.mark.parametrize("direction", ["long", "short"])
def test_last_price_mark_on_bars_only_liquidates_identically(bar_path, ratio, direction):
    # mechanics off (bars only: the mark is the last price): the kernel replays a quiet bar's
    # path in one step, with the liquidation check's fast exit after each point, and stops
    # at the first point that needs the full check (a liquidation, a margin-call episode)
    data = synthetic(3_000, seed=58, index=False, funding=False, vol=1e-3)
    entries, exits = random_signals(len(data.bars), 0.1, seed=59)
    result = both(
        f"bars only, LAST mark, {bar_path}, margin call {ratio}, {direction}", entries, exits,
        data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0, contracts=10.0, leverage=80.0,
        bar_path=bar_path, margin_call_buffer_ratio=ratio, direction=direction,
    )  # fmt: skip
    assert result.config["mark_price_method_used"] == ["LAST"]
    assert len(result.records["liquidations"]) > 0


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "options",
    [
        {"equity_interval_ns": 0},
        {"equity_interval_ns": 15 * MINUTE_NS},
        {"equity_interval_ns": 7 * MINUTE_NS + 13_000_000_000},
        {"latency_ns": 20_000_000_000},
        {"latency_ns": 150_000_000_000},
        {"slippage": FixedRateSlippage(0.0005)},
        {"bar_path": "nearest"},
        {"latency_ns": 1, "slippage": FixedRateSlippage(0.002), "equity_interval_ns": HOUR_NS},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
@pytest.mark.parametrize("leverage", [5.0, 80.0])
def test_engine_options(options, leverage):
    data = synthetic(3_000, seed=61, vol=1e-3)
    entries, exits = random_signals(len(data.bars), 0.1, seed=62)
    exits &= np.random.default_rng(63).random(len(data.bars)) < 0.2
    result = both(
        f"options {options} {leverage}x", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0, contracts=10.0, leverage=leverage, **options,
    )  # fmt: skip
    assert len(result.records["fills"]) > 10
    interval = options.get("equity_interval_ns")
    if interval == 0:
        assert len(result.records["equity"]) == 1  # the final row only
    elif interval is not None:
        assert 1 < len(result.records["equity"]) < len(data.bars)


# ---------------------------------------------------------------------------- orders
def test_orders_too_large_for_the_margin_are_rejected_identically():
    data = synthetic(2_000, seed=71)
    entries, exits = random_signals(len(data.bars), 0.1, seed=72)
    result = both(
        "rejected", entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=1_000.0,
        contracts=5_000.0, leverage=10.0,
    )  # fmt: skip
    orders = result.records["orders"]
    assert len(orders) > 10
    assert np.all(orders["status"] == OrderStatus.REJECTED)
    assert len(result.records["fills"]) == 0


def test_sometimes_rejected_as_the_wallet_shrinks():
    # a size the wallet affords at first; losses at 50x then leave too little margin
    data = synthetic(3_000, seed=73, vol=1e-3)
    entries, exits = random_signals(len(data.bars), 0.3, seed=74)
    result = both(
        "partly rejected", entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=1_000.0,
        contracts=10.0, leverage=50.0,
    )  # fmt: skip
    status = result.records["orders"]["status"]
    assert np.any(status == OrderStatus.FILLED)
    assert np.any(status == OrderStatus.REJECTED)


def test_entry_and_exit_on_the_same_bar():
    data = synthetic(2_000, seed=75)
    n = len(data.bars)
    entries = np.ones(n, dtype=bool)  # always in, except where an exit wins
    exits = np.zeros(n, dtype=bool)
    exits[::7] = True
    exits[::11] = True
    result = both(
        "entry and exit together", entries, exits, data, "okx:BTC-USDT-SWAP",
        initial_balance=10_000.0, contracts=2.0,
    )  # fmt: skip
    fills = result.records["fills"]
    assert len(fills) > 300
    # every exit bar closes, the next bar's entry reopens: as many buys as sells (± the end)
    buys = int(np.sum(fills["side"] == 1))
    sells = int(np.sum(fills["side"] == -1))
    assert abs(buys - sells) <= 1


def test_entries_and_exits_on_the_first_and_last_bars():
    data = synthetic(500, seed=76)
    entries = np.zeros(500, dtype=bool)
    exits = np.zeros(500, dtype=bool)
    entries[[0, 200, 498, 499]] = True
    exits[[1, 499]] = True
    result = both(
        "edges", entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0,
        contracts=1.0,
    )  # fmt: skip
    assert len(result.records["orders"]) == 4  # 0 open, 1 close, 200 open, 499 close
    assert len(result.records["fills"]) == 3  # the order placed at the last close never fills


def test_no_signals_at_all():
    data = synthetic(500, seed=77)
    none = np.zeros(500, dtype=bool)
    result = both("no signals", none, none, data, "okx:BTC-USDT-SWAP", initial_balance=1e4)
    assert len(result.records["orders"]) == 0
    assert len(result.records["equity"]) == 501


# ---------------------------------------------------------------------------- 2-D sweeps
def test_two_dimensional_signals_per_column_equal_events():
    data = synthetic(3_000, seed=81, vol=1e-3)
    close = data.bars["close"]
    pairs = [sma_signals(close, fast, slow) for fast, slow in ((3, 10), (5, 30), (10, 60))]
    entries = np.column_stack([p[0] for p in pairs])
    exits = np.column_stack([p[1] for p in pairs])
    sweep = both(
        "sweep", entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0,
        contracts=10.0, leverage=60.0,
    )  # fmt: skip
    assert len(sweep) == 3
    counts = [len(r.records["fills"]) for r in sweep]
    assert counts[0] > counts[1] > counts[2] > 10
    # a 1-D exit column broadcast against 2-D entries
    both(
        "broadcast", entries, pairs[0][1], data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0,
        contracts=10.0,
    )  # fmt: skip


# ---------------------------------------------------------------------------- sample data
@pytest.fixture(scope="module")
def sample_linear() -> MarketData:
    return load_sample("BTC-USDT-SWAP", with_trades=False)


@pytest.mark.parametrize("margin_mode", ["isolated", "cross"])
def test_sma_crossings_on_the_sample(sample_linear, margin_mode):
    entries, exits = sma_signals(sample_linear.bars["close"], 20, 120)
    applies, kernel, _ = probe_kernel(
        entries, exits, sample_linear, "okx:BTC-USDT-SWAP", initial_balance=1_000.0,
        contracts=10.0, leverage=20.0, margin_mode=margin_mode,
    )  # fmt: skip
    assert (applies, kernel) == (True, run_signals_nb)
    for direction in ("long", "short"):
        result = both(
            f"sample SMA {margin_mode} {direction}", entries, exits, sample_linear,
            "okx:BTC-USDT-SWAP", initial_balance=1_000.0, contracts=10.0, leverage=20.0,
            margin_mode=margin_mode, direction=direction,
        )  # fmt: skip
        assert len(result.records["fills"]) > 100
        assert len(result.records["funding_payments"]) > 10


def test_the_sample_crash_liquidates_a_high_leverage_long(sample_linear):
    # any 20x long open before the 2024-03-05 crash is liquidated (see backtester.data.sample)
    n = len(sample_linear.bars)
    entries = np.zeros(n, dtype=bool)
    entries[::720] = True  # (re-)enter twice a day, never exit
    exits = np.zeros(n, dtype=bool)
    result = both(
        "sample crash 50x", entries, exits, sample_linear, "okx:BTC-USDT-SWAP",
        initial_balance=1_000.0, contracts=20.0, leverage=50.0,
    )  # fmt: skip
    assert len(result.records["liquidations"]) > 0


def test_inverse_sample_with_its_trade_day_falls_back_and_equals_events():
    data = load_sample("BTC-USD-SWAP", with_trades=True)
    assert len(data.trades) > 0
    entries, exits = sma_signals(data.bars["close"], 20, 120)
    applies, kernel, _ = probe_kernel(
        entries, exits, data, "okx:BTC-USD-SWAP", initial_balance=1.0, contracts=20.0
    )
    assert (applies, kernel) == (False, None)
    result = both(
        "inverse sample with trades", entries, exits, data, "okx:BTC-USD-SWAP",
        initial_balance=1.0, contracts=20.0,
    )  # fmt: skip
    assert len(result.records["fills"]) > 100
