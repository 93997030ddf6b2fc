"""The signal kernel equals the general loop on random signals and settings (hypothesis).

For random entry/exit arrays over small minute-bar markets, random leverage (from safe to
liquidating), direction, size, margin mode, contract profile, mark method and engine options,
``backtest_signals(..., replay="auto")`` (the kernel of :mod:`backtester.engine.signals_nb`)
gives the same bytes in every record array as ``replay="events"`` (the general jitted loop).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester import backtest_signals
from backtester.engine.signals_nb import run_signals_nb
from tests.unit.engine.test_signal_kernel import (
    MINUTE_NS,
    assert_same_records,
    probe_kernel,
    synthetic,
)

N_BARS = 2_000
SEEDS = (0, 1, 2)
VOLS = (5e-4, 1.5e-3)

# contract, data symbol, initial balance, base size (about 0.1 of the wallet), lot size
PROFILES = [
    ("okx:BTC-USDT-SWAP", "BTC-USDT-SWAP", 10_000.0, 10.0, 0.01),
    ("okx:BTC-USD-SWAP", "BTC-USD-SWAP", 1.0, 20.0, 1.0),
    ("binance_usdm:BTCUSDT", "BTCUSDT", 10_000.0, 0.1, 0.001),
    ("binance_coinm:BTCUSD_PERP", "BTCUSD_PERP", 1.0, 20.0, 1.0),
    ("bitmex:XBTUSD", "XBTUSD", 1.0, 2_000.0, 1.0),
    ("okx_coinm_2019:BTC-USD-SWAP", "BTC-USD-SWAP", 1.0, 20.0, 1.0),
]
MARK_METHODS = [
    "profile",
    "index_ema_basis",
    "last",
    "historical",
    "funding_basis",
    "binance_median",
]


def signals(seed: int, entry_density: float, exit_density: float, hold: int):
    """Random entries and exits; ``hold`` > 1 clusters them in runs of about that many bars
    (long holding periods, the case where liquidations happen)."""
    rng = np.random.default_rng(seed)
    n_blocks = -(-N_BARS // hold)
    entries = np.repeat(rng.random(n_blocks) < entry_density, hold)[:N_BARS]
    exits = np.repeat(rng.random(n_blocks) < exit_density, hold)[:N_BARS]
    # a few isolated single-bar flips, so entries and exits also meet on one bar
    flips = rng.integers(0, N_BARS, 5)
    entries[flips] = ~entries[flips]
    exits[flips[::2]] = True
    return entries, exits


@settings(max_examples=25)
@given(
    data_seed=st.sampled_from(SEEDS),
    vol=st.sampled_from(VOLS),
    signal_seed=st.integers(0, 2**32 - 1),
    entry_density=st.floats(0.001, 0.6),
    exit_density=st.floats(0.0, 0.6),
    hold=st.sampled_from([1, 1, 5, 40]),
    profile=st.sampled_from(PROFILES),
    size_factor=st.floats(0.05, 40.0),
    leverage=st.floats(1.0, 100.0),
    direction=st.sampled_from(["long", "short"]),
    margin_mode=st.sampled_from(["isolated", "cross"]),
    mark=st.sampled_from(MARK_METHODS),
    margin_call=st.sampled_from([1.0, 1.5, 3.0]),
    latency_ns=st.sampled_from([0, 0, 10_000_000_000, 90_000_000_000]),
    equity_interval_ns=st.sampled_from([None, 0, 5 * MINUTE_NS, 7 * MINUTE_NS + 1]),
)
def test_signal_kernel_records_equal_the_general_loop(
    data_seed,
    vol,
    signal_seed,
    entry_density,
    exit_density,
    hold,
    profile,
    size_factor,
    leverage,
    direction,
    margin_mode,
    mark,
    margin_call,
    latency_ns,
    equity_interval_ns,
):
    contract, symbol, balance, base_size, lot = profile
    data = synthetic(N_BARS, data_seed, symbol=symbol, vol=vol, mark=True)
    entries, exits = signals(signal_seed, entry_density, exit_density, hold)
    contracts = max(lot, round(base_size * size_factor / lot) * lot)
    kwargs = {
        "initial_balance": balance,
        "contracts": contracts,
        "direction": direction,
        "leverage": leverage,
        "margin_mode": margin_mode,
        "mark_price_method": mark,
        "margin_call_buffer_ratio": margin_call,
        "latency_ns": latency_ns,
        "equity_interval_ns": equity_interval_ns,
    }
    case = f"{contract} {kwargs}"
    auto = backtest_signals(entries, exits, data, contract, replay="auto", **kwargs)
    events = backtest_signals(entries, exits, data, contract, replay="events", **kwargs)
    assert_same_records(case, auto, events)
    assert len(auto.records["equity"]) >= 1


@pytest.mark.parametrize("vol", VOLS)
@pytest.mark.parametrize("seed", SEEDS)
def test_the_leverage_range_reaches_liquidation_on_every_market(seed, vol):
    # the property's top leverage liquidates a held position on each of its markets, so the
    # random examples above include liquidating runs (and the kernel really replays them)
    data = synthetic(N_BARS, seed, vol=vol, mark=True)
    entries = np.zeros(N_BARS, dtype=bool)
    entries[::100] = True
    exits = np.zeros(N_BARS, dtype=bool)
    liquidations = 0
    for direction in ("long", "short"):
        applies, kernel, result = probe_kernel(
            entries, exits, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0,
            contracts=10.0, leverage=100.0, direction=direction,
        )  # fmt: skip
        assert applies
        assert kernel is run_signals_nb
        liquidations += len(result.records["liquidations"])
    assert liquidations > 0  # each market trends, so one side at least is liquidated
