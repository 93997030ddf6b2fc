"""Chunked replay: peak memory and run time of a streamed vs an unstreamed backtest.

Writes a Parquet catalog of synthetic minute bars with a minute index and 8-hourly funding
(``--bars`` rows, default 2,000,000 ≈ 3.8 years, ≥ 10× the one-week window), then runs the
same Python ``on_bar`` SMA strategy on ``binance_usdm:BTCUSDT`` (median mark: index, funding
look-ahead, liquidation checks on) twice, each in its own subprocess so each peak is honest:

* unstreamed: ``Catalog.load_market_data`` of the whole span → ``backtest``;
* streamed: ``Catalog.stream_market_data(chunk_ns=--chunk-days)`` → ``backtest``.

Each subprocess first runs a one-day backtest (imports, compiled kernels), resets the kernel's
peak-RSS mark (``/proc/self/clear_refs``, Linux; else ``ru_maxrss`` over the whole process),
then reports its peak resident set (VmHWM) minus its RSS at that point, and the wall time from
the data read to the Result. A second pair of subprocesses
reports the ``tracemalloc`` peak (numpy allocations included) from the data read to the
Result — slower, so its times are not reported (skipped with ``--smoke``).

``equity_interval_ns`` is one hour so the output records (which do grow with the span, by
design) stay small and do not mask the input memory; the unstreamed Result's price series
keeps every bar close (input-sized), the streamed one one point per hour.

Usage: ``python benchmarks/bench_engine_memory.py [--bars 2000000] [--chunk-days 7]``;
``--smoke`` runs 200,000 bars with a one-day window (< 30 s).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MINUTE = 60_000_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_577_836_800_000_000_000  # 2020-01-01 UTC
EX, SYM = "bench", "BTCUSDT"


def write_catalog(root: Path, n_bars: int, seed: int = 3) -> None:
    """Minute bars, index points at each bar close, funding every 8 h (written month by month
    through ``Catalog.write``, so the writer never holds more than a few months)."""
    from backtester import dtypes
    from backtester.data import Catalog

    cat = Catalog(root)
    rng = np.random.default_rng(seed)
    block = 200_000
    last = 40_000.0
    for lo in range(0, n_bars, block):
        n = min(block, n_bars - lo)
        close = np.round(last * np.exp(np.cumsum(rng.normal(0, 5e-4, n))), 1)
        bars = np.zeros(n, dtypes.BAR_DTYPE)
        bars["ts_ns"] = T0 + (lo + np.arange(n, dtype=np.int64)) * MINUTE
        bars["open"] = np.r_[last, close[:-1]]
        bars["close"] = close
        bars["high"] = np.maximum(bars["open"], close) + 5.0
        bars["low"] = np.minimum(bars["open"], close) - 5.0
        bars["volume_base"] = 1.0
        last = float(close[-1])
        cat.write("bars", EX, SYM, bars, source="bench", interval_ns=MINUTE)
        index = np.zeros(n, dtypes.PRICE_DTYPE)
        index["ts_ns"] = bars["ts_ns"] + MINUTE
        index["price"] = np.round(close * (1 - 1e-4), 2)
        cat.write("index", EX, SYM, index, source="bench")
    n_funding = n_bars * MINUTE // (8 * HOUR) + 1
    funding = np.zeros(n_funding, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = T0 + np.arange(n_funding, dtype=np.int64) * 8 * HOUR
    funding["funding_rate"] = np.resize([1e-4, -5e-5, 2e-4], n_funding)
    funding["funding_interval_ns"] = 8 * HOUR
    cat.write("funding", EX, SYM, funding, source="bench")


def _strategy():
    from backtester import Strategy

    class EmaCross(Strategy):
        """Fast/slow EMA of the close kept in floats (cheap per bar: the engine, not the
        strategy, is measured)."""

        def on_start(self, ctx):
            self.fast = self.slow = None

        def on_bar(self, ctx, bar):
            close = bar["close"]
            if self.fast is None:
                self.fast = self.slow = close
                return
            self.fast += 0.1 * (close - self.fast)
            self.slow += 0.01 * (close - self.slow)
            if self.fast > self.slow * 1.001 and ctx.position <= 0:
                ctx.market(0.01 - ctx.position)
            elif self.fast < self.slow * 0.999 and ctx.position >= 0:
                ctx.market(-0.01 - ctx.position)

    return EmaCross


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_mib(field: str) -> float:
    """``VmHWM`` (peak RSS since the last reset) or ``VmRSS`` from /proc/self/status;
    ru_maxrss (both) without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(root: str, mode: str, chunk_ns: int, traced: bool) -> None:
    """One measured run (in its own process); prints a JSON line."""
    import tracemalloc

    from backtester import backtest
    from backtester.data import Catalog

    cat = Catalog(root)
    strategy = _strategy()
    options = {"initial_balance": 100_000.0, "leverage": 5.0, "equity_interval_ns": HOUR}
    # compile / warm up on one day, so the baseline and the runs share the kernels' memory
    day = cat.load_market_data(EX, SYM, T0, T0 + DAY)
    backtest(strategy, day, "binance_usdm:BTCUSDT", **options)
    two_days = cat.stream_market_data(EX, SYM, T0, T0 + 2 * DAY, chunk_ns=DAY)
    backtest(strategy, two_days, "binance_usdm:BTCUSDT", **options)
    del day, two_days
    import gc

    gc.collect()
    reset = _reset_peak()
    start_mib = _status_mib("VmRSS")
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    if mode == "baseline":
        data = cat.load_market_data(EX, SYM, T0, T0 + DAY)
    elif mode == "unstreamed":
        data = cat.load_market_data(EX, SYM)
    else:
        data = cat.stream_market_data(EX, SYM, chunk_ns=chunk_ns)
    result = backtest(strategy, data, "binance_usdm:BTCUSDT", **options)
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else 0
    rss = _status_mib("VmHWM")
    print(
        json.dumps(
            {
                "mode": mode,
                "seconds": seconds,
                "rss_mib": rss,
                "peak_reset": reset,
                "start_mib": start_mib,
                "traced_mib": traced_peak / 2**20,
                "fills": len(result.records["fills"]),
                "final_balance": result.final_balance_settle,
                "windows": result.config.get("stream", {}).get("windows", 1),
            }
        )
    )


def _measure(root: Path, mode: str, chunk_ns: int, traced: bool) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(root), mode, str(chunk_ns)]
        + (["--traced"] if traced else []),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=2_000_000)
    parser.add_argument("--chunk-days", type=float, default=7.0)
    parser.add_argument("--smoke", action="store_true", help="200,000 bars, one-day window")
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "MODE", "CHUNK_NS"))
    parser.add_argument("--traced", action="store_true")
    args = parser.parse_args()
    if args.child:
        root, mode, chunk_ns = args.child
        child(root, mode, int(chunk_ns), args.traced)
        return
    n_bars, chunk_days = (200_000, 1.0) if args.smoke else (args.bars, args.chunk_days)
    chunk_ns = int(chunk_days * DAY)
    if n_bars * MINUTE < 10 * chunk_ns:
        raise SystemExit(f"--bars: {n_bars} minute bars are less than 10 windows of {chunk_days} d")
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        start = time.perf_counter()
        write_catalog(Path(tmp), n_bars)
        print(
            f"catalog: {n_bars:,} minute bars + {n_bars:,} index points + funding "
            f"({n_bars * MINUTE / DAY:,.0f} days) written in {time.perf_counter() - start:.1f} s; "
            f"window {chunk_days:g} d ({n_bars * MINUTE / chunk_ns:,.0f} windows)"
        )
        plain = _measure(Path(tmp), "unstreamed", chunk_ns, False)
        streamed = _measure(Path(tmp), "streamed", chunk_ns, False)
        if (plain["fills"], plain["final_balance"]) != (
            streamed["fills"],
            streamed["final_balance"],
        ):
            raise SystemExit(f"streamed result differs: {plain} vs {streamed}")
        how = "VmHWM, reset after the warm-up" if plain["peak_reset"] else "ru_maxrss"
        print(f"peak RSS ({how}) minus the RSS at the start of the measured run:")
        growth = {}
        for r in (plain, streamed):
            growth[r["mode"]] = r["rss_mib"] - r["start_mib"]
            rate = n_bars / r["seconds"] / 1e3
            print(
                f"  {r['mode']:<11} +{growth[r['mode']]:7.1f} MiB (peak {r['rss_mib']:6.1f}, "
                f"start {r['start_mib']:6.1f})  {r['seconds']:6.2f} s  {rate:5.0f}k bars/s"
                f"  windows {r['windows']}  fills {r['fills']}"
            )
        print(
            f"ratio unstreamed/streamed memory growth: "
            f"{growth['unstreamed'] / max(growth['streamed'], 0.1):.1f}x; "
            f"time streamed/unstreamed: {streamed['seconds'] / plain['seconds']:.2f}"
        )
        if args.smoke:
            return
        t_plain = _measure(Path(tmp), "unstreamed", chunk_ns, True)
        t_streamed = _measure(Path(tmp), "streamed", chunk_ns, True)
        print(
            f"tracemalloc peak (data read + run): unstreamed {t_plain['traced_mib']:.1f} MiB, "
            f"streamed {t_streamed['traced_mib']:.1f} MiB, ratio "
            f"{t_plain['traced_mib'] / max(t_streamed['traced_mib'], 1e-9):.1f}x"
        )


if __name__ == "__main__":
    main()
