"""Per-call cost of placing an order from Python: ``ctx.market`` and ``Run.place`` (issue 15).

A short ``LeanSma`` backtest gives a finished :class:`~backtester.engine.driver.Run`; a
:class:`~backtester.strategy.Context` over it then places ``--calls`` market orders (rows
reserved first, so no array grows inside the timing), and ``Run.place`` as many again. The
figures are the medians over ``--repeat`` rounds, in µs per call, CPU time. They are the
Python cost of the call alone: in a replay, an order also ends the stretch of quiet bars it
was placed in and costs the engine its acceptance and fill (``bench_whole_calls.py``).

Usage: ``python benchmarks/bench_place.py [--calls 20000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Time ``ctx.market`` and ``Run.place`` and print µs per call."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from bench_engine import LeanSma, synthetic

    from backtester import backtest
    from backtester.engine import driver
    from backtester.enums import OrderType, Side
    from backtester.strategy import Context

    bars, _ = synthetic(5_000, 10)
    strategy = type("Sma20x100", (LeanSma,), {"fast": 20, "slow": 100})
    backtest(strategy, bars, "okx:BTC-USDT-SWAP", initial_balance=1e6, leverage=5)
    run = driver.latest_run()
    assert run is not None
    run.reserve(orders=2 * args.calls * (args.repeat + 1))
    ctx = Context(run, 0)
    times: dict[str, list[float]] = {"ctx.market": [], "Run.place": []}
    for round_ in range(args.repeat + 1):  # the first round warms up
        start = time.process_time()
        for _ in range(args.calls):
            ctx.market(1.0)
        middle = time.process_time()
        for _ in range(args.calls):
            run.place(0, OrderType.MARKET, Side.BUY, 1.0)
        end = time.process_time()
        if round_:
            times["ctx.market"].append(middle - start)
            times["Run.place"].append(end - middle)
    for name, seconds in times.items():
        print(f"{name:<12} {statistics.median(seconds) / args.calls * 1e6:6.2f} µs a call (CPU)")


if __name__ == "__main__":
    main()
