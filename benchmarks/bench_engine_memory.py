"""Streamed replay: peak memory by span, window size and tick count (records spilled to disk).

A streamed replay (``Catalog.stream_market_data`` → ``backtest``) holds one window of input
*and of records* in memory: each window's records go to Parquet row groups in the records
folder (:mod:`backtester.engine.spill`), so the peak must not grow with the span. This
benchmark measures it, each run in a fresh subprocess so each peak is honest:

* **bars** (default): a Parquet catalog of synthetic minute bars (minute index, 8-hourly
  funding) of ``--years`` (default 6) is written to a temporary folder; the same Python
  ``on_bar`` EMA strategy on ``binance_usdm:BTCUSDT`` (median mark: index, funding
  look-ahead, liquidation checks on) replays 1, 3 and 6 years of it with an **equity row per
  minute** (``equity_interval_ns`` = 1 min: 525,600 rows a year), for each window size of
  ``--chunk-days`` (default 1 and 7 days); and the unstreamed run (everything loaded) of the
  shortest span for comparison.
* **ticks** (``--ticks 10e6 100e6``): trade ticks every 100 ms (10 a second), a minute index
  and 8-hourly funding, replayed by a jitted ``on_trade`` EMA strategy (orders placed
  inside the compiled loop), equity row per minute.

Each subprocess first runs a short streamed backtest (imports, compiled kernels), resets the
kernel's peak-RSS mark (``/proc/self/clear_refs``; without it ``ru_maxrss`` of the whole
process), then reports the peak resident set (``VmHWM``) of the measured ``backtest`` call — the
absolute figure (the target: < 500 MB at any span with per-minute equity rows, < 2 GB for
1 B ticks) and the growth over the RSS before the call — plus the time, the records folder's
size on disk, and the memory of reading the whole equity back (``result.records["equity"]``,
which the user asks for: it is the span's size, 72 bytes a row).

Usage::

    python benchmarks/bench_engine_memory.py                       # bars: 1, 3, 6 years
    python benchmarks/bench_engine_memory.py --years 1 --chunk-days 7
    python benchmarks/bench_engine_memory.py --ticks 10e6 100e6 --chunk-days 1
    python benchmarks/bench_engine_memory.py --smoke               # ~1 min

The catalog folders are temporary (``--keep DIR`` keeps and reuses them: writing 100 M ticks
takes minutes).

Measured on the project's 2-core VM (shared with other jobs, so the times are noisy; peak RSS
of the ``backtest`` call, absolute, and its growth over the ~280 MB the warm process holds):

==========================  ==========  ============  =========  ================
data                        window      peak RSS      growth     records on disk
==========================  ==========  ============  =========  ================
1 y minute bars (525,600)   1 d / 7 d   314 / 330 MB  +39 / +50  37 MB
3 y minute bars             1 d / 7 d   324 / 333 MB  +44 / +56  112 MB
6 y minute bars (3.15 M)    1 d / 7 d   349 / 353 MB  +71 / +77  215 MB
1 y minute bars, unstreamed all         387 MB        +102
10 M ticks                  6 h / 1 d   419 / 503 MB  +63 / +148 1.3 MB
100 M ticks                 6 h / 1 d   441 / 521 MB  +84 / +161 13 MB
1 B ticks (3.2 y)           6 h / 1 d   601 / 535 MB  +120 / +179 123 MB
==========================  ==========  ============  =========  ================

Before the records were spilled, the 6-year streamed run peaked at 1,522 MB (+947 MB). The
window sets the memory: about 4 times the window's input rows (the window being replayed, the
next one being assembled from its row groups, their concatenation), ~135 bytes per tick of a
window. What still grows with the span is small: the order rows (the strategy's orders stay in
memory: 16,384 rows, 3 MB, after 15,146 orders in six years) and allocator retention, ~20 MB
over six years. The 1 B-tick 6-hour run started from a process that had compiled its kernels
(481 MB before the call), hence its higher absolute peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit

from backtester.data.loader import load_market_data
from backtester.data.stream import stream_market_data
from backtester.jit import market, position, trade

MINUTE = 60_000_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
YEAR = 365 * DAY
T0 = 1_577_836_800_000_000_000  # 2020-01-01 UTC
EX, SYM = "bench", "BTCUSDT"
TICK_NS = 100_000_000  # a trade every 100 ms
CONTRACT = "binance_usdm:BTCUSDT"


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


def write_tick_catalog(root: Path, n_ticks: int, seed: int = 4) -> None:
    """Trade ticks every ``TICK_NS`` (random walk, 0.1 tick size), a minute index and
    8-hourly funding, written month by month (one ``Catalog.write`` per month and stream, so
    the writer holds one month: 26.8 M ticks, 0.86 GB)."""
    from backtester import dtypes
    from backtester.data import Catalog

    cat = Catalog(root)
    rng = np.random.default_rng(seed)
    last = 40_000.0
    lo = 0
    month = np.datetime64("2020-01", "M")
    while lo < n_ticks:
        month += 1
        end_ns = int(month.astype("datetime64[ns]").astype(np.int64))
        hi = min(n_ticks, -(-(end_ns - T0) // TICK_NS))
        n = hi - lo
        trades = np.zeros(n, dtypes.TRADE_DTYPE)
        trades["ts_ns"] = T0 + (lo + np.arange(n, dtype=np.int64)) * TICK_NS
        walk = last * np.exp(np.cumsum(rng.normal(0.0, 4e-5, n)))
        trades["price"] = np.round(walk, 1)
        trades["qty_base"] = 0.01
        trades["side"] = np.where(rng.random(n) < 0.5, 1, -1)
        last = float(trades["price"][-1])
        cat.write("trades", EX, SYM, trades, source="bench")
        first_minute = -(-int(trades["ts_ns"][0] - T0) // MINUTE)
        minutes = np.arange(first_minute, (int(trades["ts_ns"][-1]) - T0) // MINUTE + 1)
        at = np.searchsorted(trades["ts_ns"], T0 + minutes * MINUTE, "right") - 1
        index = np.zeros(len(minutes), dtypes.PRICE_DTYPE)
        index["ts_ns"] = T0 + minutes * MINUTE
        index["price"] = np.round(trades["price"][np.maximum(at, 0)] * (1 - 1e-4), 2)
        cat.write("index", EX, SYM, index, source="bench")
        del trades, walk, index
        lo = hi
    span = n_ticks * TICK_NS
    n_funding = span // (8 * HOUR) + 1
    funding = np.zeros(n_funding, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = T0 + np.arange(n_funding, dtype=np.int64) * 8 * HOUR
    funding["funding_rate"] = np.resize([1e-4, -5e-5, 2e-4], n_funding)
    funding["funding_interval_ns"] = 8 * HOUR
    cat.write("funding", EX, SYM, funding, source="bench")


@njit
def _ema_on_trade(ctx, state, i, row):
    """EMA of the trade price with a 0.2 % band: long above, short below (0.01 BTC)."""
    price = trade(ctx, row).price
    if state[0] == 0.0:
        state[0] = price
        return
    state[0] += 2e-4 * (price - state[0])
    q = position(ctx, i)
    if price > state[0] * 1.002 and q <= 0.0:
        market(ctx, i, 0.01 - q)
    elif price < state[0] * 0.998 and q >= 0.0:
        market(ctx, i, -0.01 - q)


def _tick_strategy():
    from backtester import JitStrategy

    class EmaTicks(JitStrategy):
        on_trade = _ema_on_trade

        def make_state(self):
            return np.zeros(1)

    return EmaTicks


def _folder_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def child(root: str, kind: str, mode: str, span_ns: int, chunk_ns: int) -> None:
    """One measured run (in its own process); prints a JSON line."""
    import gc

    from backtester import backtest
    from backtester.data import Catalog

    cat = Catalog(root)
    trades = kind == "ticks"
    strategy = _tick_strategy() if trades else _strategy()
    options = {"initial_balance": 100_000.0, "leverage": 5.0, "equity_interval_ns": MINUTE}
    # compile / warm up on a short stream, so the baseline includes the kernels' memory
    warm = stream_market_data(
        cat, EX, SYM, T0, T0 + (2 * HOUR if trades else 2 * DAY), with_trades=trades, chunk_ns=HOUR
    )
    backtest(strategy, warm, CONTRACT, **options).close()
    if mode == "unstreamed":
        small = load_market_data(cat, EX, SYM, T0, T0 + HOUR, with_trades=trades)
        backtest(strategy, small, CONTRACT, **options)
        del small
    del warm
    gc.collect()
    with tempfile.TemporaryDirectory(prefix="bench_records_") as records:
        reset = _reset_peak()
        start_mib = _status_mib("VmRSS")
        start = time.perf_counter()
        if mode == "unstreamed":
            data = load_market_data(cat, EX, SYM, T0, T0 + span_ns, with_trades=trades)
            result = backtest(strategy, data, CONTRACT, **options)
            del data
        else:
            data = stream_market_data(
                cat, EX, SYM, T0, T0 + span_ns, with_trades=trades, chunk_ns=chunk_ns
            )
            result = backtest(
                strategy, data, CONTRACT, records_directory=Path(records) / "r", **options
            )
        seconds = time.perf_counter() - start
        peak = _status_mib("VmHWM")
        store = result.records
        count = getattr(store, "count", None)
        equity_rows = count("equity") if count else len(store["equity"])
        fills = count("fills") if count else len(store["fills"])
        folder = _folder_mib(Path(records) / "r") if mode != "unstreamed" else 0.0
        final = result.final_equity_settle
        # reading the whole equity back (the span's size) as a user would
        gc.collect()
        _reset_peak()
        before_read = _status_mib("VmRSS")
        equity = result.records["equity"]
        read_peak = _status_mib("VmHWM") - before_read
        assert len(equity) == equity_rows
    print(
        json.dumps(
            {
                "kind": kind,
                "mode": mode,
                "span_days": span_ns / DAY,
                "chunk_days": chunk_ns / DAY,
                "seconds": seconds,
                "peak_mib": peak,
                "start_mib": start_mib,
                "peak_reset": reset,
                "equity_rows": equity_rows,
                "fills": fills,
                "final_equity": final,
                "records_mib": folder,
                "read_equity_mib": read_peak,
                "windows": result.config.get("stream", {}).get("windows", 1),
            }
        )
    )


def _measure(root: Path, kind: str, mode: str, span_ns: int, chunk_ns: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(root), kind, mode, str(span_ns), str(chunk_ns)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if out.returncode != 0:
        raise SystemExit(f"child {kind} {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print(r: dict, events: int, unit: str) -> None:
    growth = r["peak_mib"] - r["start_mib"]
    window = "all in memory" if r["mode"] == "unstreamed" else f"window {r['chunk_days']:g} d"
    print(
        f"  {r['span_days'] / 365:5.2f} y {events / 1e6:8.1f} M {unit:<5} {r['mode']:<10} "
        f"{window:<14} peak {r['peak_mib']:7.1f} MiB (+{growth:6.1f} over "
        f"{r['start_mib']:5.1f})  {growth * 2**20 / events:6.1f} B/{unit[:-1]}  "
        f"{r['seconds']:7.1f} s  {events / r['seconds'] / 1e6:5.2f} M {unit}/s  "
        f"equity rows {r['equity_rows']:,}  records on disk {r['records_mib']:6.1f} MiB  "
        f"windows {r['windows']}  reading the equity back +{r['read_equity_mib']:.0f} MiB  "
        f"fills {r['fills']}",
        flush=True,
    )


def run_bars(root: Path, years: list[float], chunk_days: list[float], unstreamed: bool) -> None:
    longest = max(years)
    n_bars = int(longest * YEAR // MINUTE)
    marker = root / f"bars-{n_bars}"
    if not marker.exists():
        start = time.perf_counter()
        write_catalog(root, n_bars)
        marker.write_text("written")
        print(
            f"catalog: {n_bars:,} minute bars + index + funding ({longest:g} y) written in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    how = "VmHWM reset after the warm-up" if _reset_peak() else "ru_maxrss"
    print(f"peak RSS of the backtest call ({how}); equity row per minute:", flush=True)
    first = None
    for span in years:
        span_ns = int(span * YEAR)
        n = span_ns // MINUTE
        for days in chunk_days:
            r = _measure(root, "bars", "streamed", span_ns, int(days * DAY))
            first = first or r
            _print(r, n, "bars")
    if unstreamed:
        span_ns = int(min(years) * YEAR)
        plain = _measure(root, "bars", "unstreamed", span_ns, 0)
        _print(plain, span_ns // MINUTE, "bars")
        # the streamed replay of the same span trades exactly the same
        same = (plain["fills"], plain["final_equity"]) == (first["fills"], first["final_equity"])
        if not same:
            raise SystemExit(f"streamed result differs from the unstreamed: {first} vs {plain}")


def run_ticks(root: Path, counts: list[int], chunk_days: list[float]) -> None:
    n_max = max(counts)
    marker = root / f"ticks-{n_max}"
    if not marker.exists():
        start = time.perf_counter()
        write_tick_catalog(root, n_max)
        marker.write_text("written")
        print(
            f"catalog: {n_max:,} trade ticks (every {TICK_NS / 1e6:g} ms, "
            f"{n_max * TICK_NS / DAY:,.0f} days) + minute index + funding written in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    print("peak RSS of the backtest call; jitted on_trade, equity row per minute:", flush=True)
    for n in counts:
        for days in chunk_days:
            r = _measure(root, "ticks", "streamed", n * TICK_NS, int(days * DAY))
            _print(r, n, "ticks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--years", type=float, nargs="+", default=[1.0, 3.0, 6.0])
    parser.add_argument("--chunk-days", type=float, nargs="+", default=[1.0, 7.0])
    parser.add_argument("--ticks", type=float, nargs="*", help="tick counts, e.g. 10e6 100e6")
    parser.add_argument("--no-unstreamed", action="store_true")
    parser.add_argument("--keep", type=Path, help="catalog folder to keep and reuse")
    parser.add_argument("--smoke", action="store_true", help="0.1 and 0.3 years, 1-day window")
    parser.add_argument("--child", nargs=5, metavar=("ROOT", "KIND", "MODE", "SPAN", "CHUNK"))
    args = parser.parse_args()
    if args.child:
        root, kind, mode, span, chunk = args.child
        child(root, kind, mode, int(span), int(chunk))
        return
    if args.smoke:
        args.years, args.chunk_days = [0.1, 0.3], [1.0]
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        if args.ticks:
            run_ticks(root / "ticks", [int(n) for n in args.ticks], args.chunk_days)
        else:
            run_bars(root / "bars", args.years, args.chunk_days, not args.no_unstreamed)


if __name__ == "__main__":
    main()
