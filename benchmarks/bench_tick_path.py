"""Where a jitted ``on_trade`` tick goes: the per-tick cost split by what the callback does.

Variants (jitted strategies on the synthetic ticks of ``bench_engine.py``, 0.1 s apart),
each with the mechanics (an index per minute: the index-EMA mark, its liquidation checks) and
without (trades only: mark = last price):

- ``no callback``: the replay alone (no on_trade subscribed);
- ``empty``: an on_trade that returns at once (the cost of calling it);
- ``ema``: the EMA of the trade price, no order call;
- ``ema + dead market()``: the same with a ``market()`` call that never runs (the cost of the
  call's presence);
- ``hold``: one market order at the first tick, then the EMA (a position open all along: the
  liquidation check per mark update);
- ``resting limit``: the EMA with a buy limit far under the price working all along (the
  trades inside the band of a working order);
- ``tick ema``: ``bench_engine.tick_ema_on_trade`` (places orders; the issue's case).

Timed with the thread's CPU time (``time.thread_time``; the machine is shared), variants
interleaved per round, medians over ``--repeat`` rounds, in ns per tick and as a ratio to the
bare numba tick loop (``bench_engine.bare_tick_loop_nb``) timed in the same rounds.

Usage: ``python benchmarks/bench_tick_path.py [--ticks 2000000] [--repeat 5] [--only ema]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import bare_tick_loop_nb, synthetic, tick_ema_on_trade

from backtester import JitStrategy, backtest
from backtester.data.market import MarketData
from backtester.jit import limit, market, position, round_price, trade


@njit(cache=True)
def empty_on_trade(ctx: Any, state: Any, i: int, row: int) -> None:
    """Return at once: the cost of the callback's call."""


@njit(cache=True)
def ema_on_trade(ctx: Any, state: Any, i: int, row: int) -> None:
    """EMA of the trade price, nothing else."""
    price = trade(ctx, row).price
    if state[0] == 0.0:
        state[0] = price
    state[0] += 0.001 * (price - state[0])


@njit(cache=True)
def ema_dead_market_on_trade(ctx: Any, state: Any, i: int, row: int) -> None:
    """The EMA, and a market order behind a condition that never holds."""
    price = trade(ctx, row).price
    if state[0] == 0.0:
        state[0] = price
    state[0] += 0.001 * (price - state[0])
    if price > state[0] * 1e6:
        market(ctx, i, 1.0)


@njit(cache=True)
def hold_on_trade(ctx: Any, state: Any, i: int, row: int) -> None:
    """One contract bought at the first tick and held; the EMA."""
    price = trade(ctx, row).price
    if state[0] == 0.0:
        state[0] = price
        if position(ctx, i) == 0.0:
            market(ctx, i, 1.0)
    state[0] += 0.001 * (price - state[0])


@njit(cache=True)
def resting_limit_on_trade(ctx: Any, state: Any, i: int, row: int) -> None:
    """A buy limit 10 % under the first price, resting all along; the EMA."""
    price = trade(ctx, row).price
    if state[0] == 0.0:
        state[0] = price
        limit(ctx, i, 1.0, round_price(ctx, i, 0.9 * price))
    state[0] += 0.001 * (price - state[0])


def strategy(name: str, callback: Any) -> type[JitStrategy]:
    """A JitStrategy class with ``callback`` as on_trade (None: no callback)."""
    return type(
        name, (JitStrategy,), {"on_trade": callback, "make_state": lambda self: np.zeros(1)}
    )


VARIANTS = {
    "no callback": strategy("NoCallback", None),
    "empty": strategy("Empty", empty_on_trade),
    "ema": strategy("Ema", ema_on_trade),
    "ema + dead market()": strategy("EmaDeadMarket", ema_dead_market_on_trade),
    "hold": strategy("Hold", hold_on_trade),
    "resting limit": strategy("RestingLimit", resting_limit_on_trade),
    "tick ema": strategy("TickEma", tick_ema_on_trade),
}


def cpu_seconds(fn: Any) -> float:
    """The thread's CPU time of one call of ``fn``."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="run only the variants containing this")
    args = parser.parse_args()
    _, ticks = synthetic(10, args.ticks)
    data = {"mechanics": ticks, "no mechanics": MarketData(ticks.symbol, trades=ticks.trades)}
    price = ticks.trades["price"]
    cases = {}
    for label, cls in VARIANTS.items():
        if args.only not in label:
            continue
        for mode, market_data in data.items():
            cases[f"{label}, {mode}"] = lambda cls=cls, market_data=market_data: backtest(
                cls, market_data, "okx:BTC-USDT-SWAP", initial_balance=1e6, leverage=5
            )
    fills = {name: len(fn().fills) for name, fn in cases.items()}  # warm-up (compiles)
    bare_fn = lambda: bare_tick_loop_nb(price)  # noqa: E731
    bare_fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    bare: list[float] = []
    for _ in range(args.repeat):
        bare.append(cpu_seconds(bare_fn))
        for name, fn in cases.items():
            times[name].append(cpu_seconds(fn))
    bare_s = statistics.median(bare)
    n = args.ticks
    print(f"bare tick loop: {bare_s / n * 1e9:6.2f} ns/tick (CPU, median of {args.repeat})")
    for name, samples in times.items():
        seconds = statistics.median(samples)
        print(
            f"{name:40s} {seconds / n * 1e9:7.2f} ns/tick  {seconds / bare_s:6.1f}x bare  "
            f"({fills[name]} fills)"
        )


if __name__ == "__main__":
    main()
