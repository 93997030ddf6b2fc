"""The bundled sample market: a seeded, deterministic synthetic BTC perpetual market.

The sample lets the first run, the examples and the tests work offline. It is **synthetic** (no
venue data is redistributed) but shaped like the real thing, so that margin, funding and
liquidation all have something to do:

* 2024-02-01 → 2024-03-31 (two months), 1-minute last-trade bars of an inverse
  ``BTC-USD-SWAP`` (100 USD face, OKX-style) and a linear ``BTC-USDT-SWAP`` (0.01 BTC face);
* 1-minute index points (USD index; the USDT index differs by a small USDT/USD basis);
* a premium (last − index)/index per symbol that mean-reverts (Ornstein–Uhlenbeck) around a
  target that follows momentum, and that drives funding every 8 h (00/08/16 UTC): the rate is
  :func:`backtester.swap.funding_nb.funding_rate_nb` of the time-averaged 1-minute premium with
  interest 0.01 %, clamp 0.05 % and cap ±0.375 % (OKX/Binance style, MECHANICS.md §3.1–§3.2).
  The rates are stored with ``source = HISTORICAL``: in the sample they stand for venue history;
* volatility clustering: GARCH(1,1) variance per minute with Student-t shocks, a 5-second
  sub-minute path from which each bar's open/high/low/close are taken, volumes that grow with
  volatility;
* one crash on 2024-03-05 from 14:00 UTC: the index falls about 25 % in 100 minutes, then
  rebounds part of the way; the perpetual trades at a discount and prints a last-trade wick a
  few percent below the index at the bottom (visible as a long lower shadow in one bar), while
  a mark of ``index + EMA(last − index)`` falls much less. Any 20x long opened before it is
  liquidated;
* trade ticks for that whole day (2024-03-05), from the same path; that day's bars are the
  candles of those ticks, so bars and trades agree exactly.

Every number comes from ``numpy.random.Generator(PCG64(seed))`` and fixed arithmetic (no
wall clock); prices are rounded to a 0.5 USD grid and quantities to 1e-8 BTC (bar volumes
outside the trade day to 1e-4 BTC), so regenerating gives bit-identical arrays. The committed
copy lives in the repository catalog ``data/catalog`` under exchange ``"sample"`` (about 7 MB);
regenerate it with ``python -m backtester.data.sample``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from backtester import dtypes
from backtester.data.market import MarketData
from backtester.enums import FundingRateSource, Side
from backtester.swap.funding_nb import funding_rate_nb

SAMPLE_EXCHANGE = "sample"
"""Catalog exchange name of the sample."""

SAMPLE_SYMBOLS = ("BTC-USD-SWAP", "BTC-USDT-SWAP")
"""Symbols of the sample: inverse (100 USD face) and linear (0.01 BTC face)."""

SAMPLE_CONTRACTS = {"BTC-USD-SWAP": "okx:BTC-USD-SWAP", "BTC-USDT-SWAP": "okx:BTC-USDT-SWAP"}
"""Built-in contract (``backtester.swap.get_contract`` name) each sample symbol is modelled on."""

SAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "data" / "catalog"
"""The repository catalog that holds the committed sample."""

DEFAULT_SEED = 7
"""Seed of the committed sample (chosen because its quarter trends up, like Q1 2024)."""

START_NS = int(np.datetime64("2024-02-01T00:00", "ns").astype(np.int64))
"""First bar open time (2024-02-01 00:00 UTC)."""

END_NS = int(np.datetime64("2024-04-01T00:00", "ns").astype(np.int64))
"""End of the sample (exclusive): 2024-04-01 00:00 UTC."""

BAR_INTERVAL_NS = 60_000_000_000
"""Bar length: 1 minute."""

FUNDING_INTERVAL_NS = 8 * 3_600_000_000_000
"""Funding every 8 h at 00/08/16 UTC."""

CRASH_START_NS = int(np.datetime64("2024-03-05T14:00", "ns").astype(np.int64))
"""Start of the crash (2024-03-05 14:00 UTC)."""

CRASH_DURATION_MIN = 100
"""Minutes from the start of the crash to its bottom."""

TRADES_DAY_START_NS = int(np.datetime64("2024-03-05T00:00", "ns").astype(np.int64))
"""Start of the one day (the crash day) that has trade ticks."""

FUNDING_INTEREST_RATE = 0.0001
"""Interest I per 8 h (0.01 %, Binance/OKX default; MECHANICS.md §3.2)."""

FUNDING_CLAMP_RATE = 0.0005
"""Damper clamp on I − P (0.05 %; MECHANICS.md §3.2)."""

FUNDING_CAP_RATE = 0.00375
"""Cap/floor ±0.375 % (OKX BTC; MECHANICS.md §3.1)."""

PRICE_STEP = 0.5
"""Grid of every generated price (quote). The contracts' tick is 0.1 (OKX); prices on a 0.5 grid
(BitMEX XBTUSD's tick) are valid ticks and keep the committed Parquet files small (a 0.5 step is
exact in binary, so the low mantissa bits are zero and compress)."""

_SUBSTEPS = 12  # 5-second points per minute
_MINUTE_NS = BAR_INTERVAL_NS
_FACE = {"BTC-USD-SWAP": 100.0, "BTC-USDT-SWAP": 0.01}
_INVERSE = {"BTC-USD-SWAP": True, "BTC-USDT-SWAP": False}
# Per-symbol shape parameters: mean premium, base volume (BTC per minute), trade rate (per
# minute), depth of the last-trade wick at the crash bottom, log-mean of contracts per trade.
_PARAMS = {
    "BTC-USD-SWAP": {"premium": 1.5e-4, "volume": 2.0, "rate": 15.0, "wick": 0.040, "qty": 3.75},
    "BTC-USDT-SWAP": {"premium": 1.0e-4, "volume": 6.0, "rate": 30.0, "wick": 0.030, "qty": 2.3},
}


def _round_tick(values: np.ndarray) -> np.ndarray:
    return np.round(values / PRICE_STEP) * PRICE_STEP  # exact: PRICE_STEP is a power of two


def _crash_offset(t_min: np.ndarray, crash_min: float) -> np.ndarray:
    """Deterministic log-price shape of the crash: −25 % in 100 min, rebound to −14 %."""
    depth, rebound, rebound_tau = np.log(0.75), np.log(0.86), 90.0
    tau = (t_min - crash_min) / CRASH_DURATION_MIN
    out = np.zeros_like(t_min)
    falling = (tau >= 0.0) & (tau < 1.0)
    out[falling] = depth * 0.5 * (1.0 - np.cos(np.pi * tau[falling]))
    after = tau >= 1.0
    since = (t_min[after] - crash_min - CRASH_DURATION_MIN) / rebound_tau
    out[after] = depth + (rebound - depth) * (1.0 - np.exp(-since))
    return out


def _garch_sigma(
    rng: np.random.Generator, n: int, crash_minute: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-minute volatility (GARCH(1,1), Student-t(5) shocks) and the unit shocks."""
    sigma_bar = 0.55 / np.sqrt(525_600.0)  # 55 % a year, per minute
    alpha, beta = 0.06, 0.93
    omega = sigma_bar**2 * (1.0 - alpha - beta)
    shocks = rng.standard_t(5.0, size=n) * np.sqrt(3.0 / 5.0)
    variance = np.empty(n)
    var = sigma_bar**2
    for m, z in enumerate(shocks.tolist()):
        if m == crash_minute:
            var *= 16.0  # volatility x4 when the crash starts, decaying through beta
        variance[m] = var
        var = omega + alpha * var * z * z + beta * var
    hours = (np.arange(n) % 1440) / 60.0
    seasonal = 1.0 + 0.25 * np.cos(2.0 * np.pi * (hours - 15.0) / 24.0)  # US afternoon busiest
    return np.sqrt(variance) * seasonal, shocks, float(sigma_bar)


def _ou(rng: np.random.Generator, n: int, half_life: float, std: float) -> np.ndarray:
    """Zero-mean Ornstein–Uhlenbeck path at 1-minute steps (exact discretisation)."""
    phi = 0.5 ** (1.0 / half_life)
    noise = rng.standard_normal(n) * std * np.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    x = rng.standard_normal() * std
    for m, e in enumerate(noise.tolist()):
        out[m] = x
        x = phi * x + e
    return out


def _premium(
    rng: np.random.Generator,
    momentum: np.ndarray,
    mean: float,
    shared: np.ndarray,
    crash: np.ndarray,
) -> np.ndarray:
    """Premium (last − index)/index per minute: OU around a momentum-following target."""
    n = len(momentum)
    slow = _ou(rng, n, half_life=3 * 1440.0, std=2.5e-4)
    target = np.clip(mean + slow + 0.03 * momentum, -0.01, 0.01)
    phi = 0.5 ** (1.0 / 240.0)  # 4 h half-life
    noise = (0.7 * shared + 0.3 * rng.standard_normal(n)) * 2.0e-4 * np.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    p = target[0]
    for m, (tgt, e) in enumerate(zip(target.tolist(), noise.tolist(), strict=True)):
        out[m] = p
        p = tgt + phi * (p - tgt) + e
    result: np.ndarray = out + crash
    return result


def _ema(values: np.ndarray, span: float) -> np.ndarray:
    alpha = 2.0 / (span + 1.0)
    out = np.empty_like(values)
    acc = float(values[0])
    for i, v in enumerate(values.tolist()):
        acc += alpha * (v - acc)
        out[i] = acc
    return out


def _bars_from_path(
    rng: np.random.Generator, path: np.ndarray, sigma: np.ndarray, volume_base: np.ndarray
) -> np.ndarray:
    """OHLC of each minute from its 5-second points, widened by the trades between them."""
    n = len(sigma)
    grid = path.reshape(n, _SUBSTEPS)
    extra = np.abs(rng.standard_normal((n, 2))) * (0.3 * sigma)[:, None]
    bars = np.zeros(n, dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = START_NS + np.arange(n, dtype=np.int64) * _MINUTE_NS
    bars["open"] = _round_tick(grid[:, 0])
    bars["close"] = _round_tick(grid[:, -1])
    high = np.maximum(_round_tick(grid.max(axis=1) * (1.0 + extra[:, 0])), bars["open"])
    low = np.minimum(_round_tick(grid.min(axis=1) * (1.0 - extra[:, 1])), bars["open"])
    bars["high"] = np.maximum(high, bars["close"])
    bars["low"] = np.minimum(low, bars["close"])
    bars["volume_base"] = volume_base
    return bars


def _volume(
    rng: np.random.Generator, symbol: str, sigma: np.ndarray, sigma_bar: float, close: np.ndarray
) -> np.ndarray:
    """Per-minute traded quantity in BTC, in whole contracts, growing with volatility."""
    base = _PARAMS[symbol]["volume"]
    raw = base * (sigma / sigma_bar) ** 1.2 * np.exp(rng.normal(-0.08, 0.4, len(sigma)))
    if _INVERSE[symbol]:
        contracts = np.maximum(1.0, np.round(raw * close / _FACE[symbol]))
        volume: np.ndarray = np.round(contracts * _FACE[symbol] / close, 4)  # 1e-4 BTC: small file
        return volume
    contracts = np.maximum(1.0, np.round(raw / _FACE[symbol]))
    return np.round(contracts * _FACE[symbol], 8)


def _trades_for_day(
    rng: np.random.Generator,
    symbol: str,
    fine_log: np.ndarray,
    sigma: np.ndarray,
    sigma_bar: float,
    first_minute: int,
) -> np.ndarray:
    """Trade ticks of one day, sampled from the 5-second path (log prices, one day + 1 point)."""
    params = _PARAMS[symbol]
    minutes = 1440
    rate = params["rate"] * sigma[first_minute : first_minute + minutes] / sigma_bar
    counts = 1 + rng.poisson(np.minimum(rate, 400.0))
    total = int(counts.sum())
    minute_of = np.repeat(np.arange(minutes), counts)
    offsets_ms = rng.integers(0, 60_000, total)
    order = np.lexsort((offsets_ms, minute_of))
    offsets_ms = offsets_ms[order]
    t_ms = minute_of * 60_000 + offsets_ms
    fine_t_ms = np.arange(len(fine_log)) * (60_000 // _SUBSTEPS)
    fair = np.exp(np.interp(t_ms, fine_t_ms, fine_log))
    side = np.where(rng.random(total) < 0.5, Side.BUY, Side.SELL).astype(np.int8)
    half_spread = PRICE_STEP * (0.5 + rng.integers(0, 3, total))
    price = _round_tick(fair * (1.0 + rng.normal(0.0, 2e-5, total)) + side * half_spread)
    contracts = np.ceil(np.exp(rng.normal(params["qty"], 1.2, total)))
    if _INVERSE[symbol]:
        qty = np.round(contracts * _FACE[symbol] / price, 8)
    else:
        qty = np.round(contracts * _FACE[symbol], 8)
    trades = np.zeros(total, dtype=dtypes.TRADE_DTYPE)
    trades["ts_ns"] = TRADES_DAY_START_NS + t_ms.astype(np.int64) * 1_000_000
    trades["price"] = price
    trades["qty_base"] = qty
    trades["side"] = side
    return trades


def _bars_from_trades(trades: np.ndarray, first_bar_ns: int, minutes: int) -> np.ndarray:
    """1-minute candles of trade ticks (every minute has at least one trade)."""
    idx = (trades["ts_ns"] - first_bar_ns) // _MINUTE_NS
    starts = np.searchsorted(idx, np.arange(minutes), "left")
    ends = np.searchsorted(idx, np.arange(minutes), "right")
    bars = np.zeros(minutes, dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = first_bar_ns + np.arange(minutes, dtype=np.int64) * _MINUTE_NS
    price = trades["price"]
    bars["open"] = price[starts]
    bars["close"] = price[ends - 1]
    bars["high"] = np.maximum.reduceat(price, starts)
    bars["low"] = np.minimum.reduceat(price, starts)
    bars["volume_base"] = np.round(np.add.reduceat(trades["qty_base"], starts), 8)
    return bars


def premium_samples(bars: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-minute premium samples ``(close − index)/index`` at each minute boundary.

    The sample at time ``t`` pairs the close of the bar ending at ``t`` (the last trade before
    ``t``) with the index point at ``t``. Both arrays must be on the same 1-minute grid (index
    point ``i`` at bar ``i``'s open time).

    Returns
    -------
    (ts_ns, premium)
        Sample times (bar close times) and premiums as fractions.
    """
    close = bars["close"][:-1]
    idx = index["price"][1 : len(bars)]
    return bars["ts_ns"][:-1] + _MINUTE_NS, (close - idx) / idx


def funding_from_premium(sample_ts_ns: np.ndarray, premium: np.ndarray) -> np.ndarray:
    """Funding events every 8 h from 1-minute premium samples.

    Formula
    -------
    ``P`` = mean of the premium samples in ``(T − 8 h, T]``;
    ``F = funding_rate_nb(P, 0.01 %, 0.05 %, 0.375 %, −0.375 %)`` =
    P + clamp(I − P, ±0.05 %), capped at ±0.375 %; rounded to 1e-10.

    Source
    ------
    MECHANICS.md §3.1 (OKX-funding: MA of 1-minute premiums, BTC cap ±0.375 %), §3.2
    (Binance-docs-copy: I = 0.01 %, clamp 0.05 %).

    Returns
    -------
    numpy.ndarray
        ``FUNDING_RATE_DTYPE`` rows for every 8-hour instant whose window is fully sampled,
        ``source = HISTORICAL`` (the sample stands for venue history).
    """
    per_window = FUNDING_INTERVAL_NS // _MINUTE_NS
    first = int(sample_ts_ns[0])
    instants = []
    rates = []
    t = (first // FUNDING_INTERVAL_NS + 1) * FUNDING_INTERVAL_NS
    while True:
        hi = int(np.searchsorted(sample_ts_ns, t, "right"))
        lo = int(np.searchsorted(sample_ts_ns, t - FUNDING_INTERVAL_NS, "right"))
        if hi > len(sample_ts_ns) or int(sample_ts_ns[hi - 1]) != t:
            break
        if hi - lo == per_window:
            average = float(np.mean(premium[lo:hi]))
            rate = funding_rate_nb(
                average,
                FUNDING_INTEREST_RATE,
                FUNDING_CLAMP_RATE,
                FUNDING_CAP_RATE,
                -FUNDING_CAP_RATE,
            )
            instants.append(t)
            rates.append(round(rate, 10))
        t += FUNDING_INTERVAL_NS
    funding = np.zeros(len(instants), dtype=dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = instants
    funding["funding_rate"] = rates
    funding["funding_interval_ns"] = FUNDING_INTERVAL_NS
    funding["source"] = int(FundingRateSource.HISTORICAL)
    return funding


def generate_sample(seed: int = DEFAULT_SEED) -> dict[str, dict[str, npt.NDArray[np.void]]]:
    """Generate the sample market in memory.

    Parameters
    ----------
    seed
        Seed of ``numpy.random.Generator(PCG64(seed))``; the same seed gives identical arrays.

    Returns
    -------
    dict
        ``{symbol: {"bars": BAR_DTYPE, "trades": TRADE_DTYPE, "index": PRICE_DTYPE,
        "funding": FUNDING_RATE_DTYPE}}`` for each of :data:`SAMPLE_SYMBOLS`. Bars are 1-minute
        (open time), index points are 1-minute (time known), trades cover 2024-03-05 only.
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    n = (END_NS - START_NS) // _MINUTE_NS
    crash_minute = (CRASH_START_NS - START_NS) // _MINUTE_NS
    day_minute = (TRADES_DAY_START_NS - START_NS) // _MINUTE_NS

    # Index: GARCH minute volatility, 5-second Brownian-bridge sub-steps, trend, crash shape.
    sigma, shocks, sigma_bar = _garch_sigma(rng, n, crash_minute)
    sub = rng.standard_normal((n, _SUBSTEPS)) / np.sqrt(_SUBSTEPS)
    bridge = sub - sub.mean(axis=1, keepdims=True) + (shocks / _SUBSTEPS)[:, None]
    drift = np.log(1.45) / n / _SUBSTEPS
    increments = (sigma[:, None] * bridge + drift).ravel()
    t_min = np.arange(n * _SUBSTEPS + 1) / _SUBSTEPS
    log_index = np.log(42_300.0) + np.concatenate([[0.0], np.cumsum(increments)])
    log_index += _crash_offset(t_min, float(crash_minute))

    index_usd = np.exp(log_index[::_SUBSTEPS][:n])
    usdt_basis = 2.0e-4 + _ou(rng, n, half_life=1440.0, std=1.5e-4)  # USDT below USD
    momentum = np.log(index_usd) - _ema(np.log(index_usd), span=1440.0)
    shared = rng.standard_normal(n)
    crash_bump = np.zeros(n)
    since = np.arange(n) - crash_minute
    falling = (since >= 0) & (since < CRASH_DURATION_MIN)
    crash_bump[falling] = -0.005 * since[falling] / CRASH_DURATION_MIN
    after = since >= CRASH_DURATION_MIN
    crash_bump[after] = -0.005 * np.exp(-(since[after] - CRASH_DURATION_MIN) / 30.0)

    wick_centre = crash_minute + CRASH_DURATION_MIN + 32.5 / 60.0  # mid-minute, minute bottom
    wick_shape = np.exp(-np.abs(t_min - wick_centre) * 60.0 / 20.0)  # 20-second spike

    out: dict[str, dict[str, np.ndarray]] = {}
    for symbol in SAMPLE_SYMBOLS:
        params = _PARAMS[symbol]
        log_idx = log_index.copy()
        if not _INVERSE[symbol]:
            basis_fine = np.interp(t_min, np.arange(n), usdt_basis)
            log_idx = log_idx + np.log1p(basis_fine)
        index = np.zeros(n, dtype=dtypes.PRICE_DTYPE)
        index["ts_ns"] = START_NS + np.arange(n, dtype=np.int64) * _MINUTE_NS
        index["price"] = _round_tick(np.exp(log_idx[::_SUBSTEPS][:n]))

        premium = _premium(rng, momentum, params["premium"], shared, crash_bump)
        premium_fine = np.interp(t_min, np.arange(n), premium)
        noise = rng.normal(0.0, 1.5e-5, len(t_min))
        fine_log = log_idx + np.log1p(premium_fine) + np.log1p(-params["wick"] * wick_shape) + noise
        path = np.exp(fine_log[:-1])
        closes = _round_tick(path.reshape(n, _SUBSTEPS)[:, -1])
        volume = _volume(rng, symbol, sigma, sigma_bar, closes)
        bars = _bars_from_path(rng, path, sigma, volume)

        day = slice(day_minute * _SUBSTEPS, (day_minute + 1440) * _SUBSTEPS + 1)
        trades = _trades_for_day(rng, symbol, fine_log[day], sigma, sigma_bar, day_minute)
        bars[day_minute : day_minute + 1440] = _bars_from_trades(trades, TRADES_DAY_START_NS, 1440)

        sample_ts, samples = premium_samples(bars, index)
        out[symbol] = {
            "bars": bars,
            "trades": trades,
            "index": index,
            "funding": funding_from_premium(sample_ts, samples),
        }
    return out


def _source(seed: int) -> str:
    return f"synthetic: backtester.data.sample.generate_sample(seed={seed})"


def write_sample(
    catalog: object | None = None, seed: int = DEFAULT_SEED, overwrite: bool = False
) -> list[Path]:
    """Write the sample into a catalog as exchange ``"sample"``.

    Parameters
    ----------
    catalog
        A :class:`backtester.data.catalog.Catalog`, or a root path (default: the repository
        catalog :data:`SAMPLE_CATALOG`).
    seed
        Generator seed.
    overwrite
        Delete the stored sample symbols first (needed after the generator changed; without it
        the catalog refuses rows that differ from the stored ones).

    Returns
    -------
    list[Path]
        The Parquet files written.
    """
    from backtester.data.catalog import Catalog

    if catalog is None:
        catalog = Catalog(SAMPLE_CATALOG)
    elif not isinstance(catalog, Catalog):
        catalog = Catalog(str(catalog))
    data = generate_sample(seed)
    if overwrite:
        for symbol in SAMPLE_SYMBOLS:
            directory = catalog.root / SAMPLE_EXCHANGE / quote(symbol, safe="-_.")
            if directory.is_dir():
                shutil.rmtree(directory)
    written: list[Path] = []
    meta = {"generator": "backtester.data.sample", "seed": str(seed), "synthetic": "true"}
    with catalog.transaction():  # the sample appears whole or not at all
        for symbol, streams in data.items():
            meta_symbol = {**meta, "contract": SAMPLE_CONTRACTS[symbol]}
            for kind, records in streams.items():
                interval = BAR_INTERVAL_NS if kind == "bars" else 0
                written += catalog.write(
                    kind,
                    SAMPLE_EXCHANGE,
                    symbol,
                    records,
                    source=_source(seed),
                    interval_ns=interval,
                    metadata=meta_symbol,
                )
    return written


def sample_market_data(
    symbol: str, seed: int = DEFAULT_SEED, with_trades: bool = True
) -> MarketData:
    """Generate the sample of ``symbol`` in memory (no catalog), as :class:`MarketData`."""
    _check_symbol(symbol)
    streams = generate_sample(seed)[symbol]
    return MarketData(
        symbol=symbol,
        trades=streams["trades"] if with_trades else np.zeros(0, dtypes.TRADE_DTYPE),
        bars=streams["bars"],
        bar_interval_ns=BAR_INTERVAL_NS,
        index=streams["index"],
        funding=streams["funding"],
        exchange=SAMPLE_EXCHANGE,
        sources={"generated": _source(seed)},
    )


def _check_symbol(symbol: str) -> None:
    if symbol not in SAMPLE_SYMBOLS:
        raise ValueError(f"symbol: the sample has {', '.join(SAMPLE_SYMBOLS)}, got {symbol!r}")


def load_sample(
    symbol: str = "BTC-USD-SWAP",
    *,
    catalog_root: str | Path | None = None,
    with_trades: bool = True,
) -> MarketData:
    """Load the sample market of ``symbol``.

    Reads the committed copy from the catalog (default :data:`SAMPLE_CATALOG`); if it is
    missing, regenerates it in memory with :data:`DEFAULT_SEED` (identical arrays).

    Parameters
    ----------
    symbol
        ``"BTC-USD-SWAP"`` (inverse, 100 USD face) or ``"BTC-USDT-SWAP"`` (linear, 0.01 BTC).
    catalog_root
        Catalog directory to read from.
    with_trades
        Include the trade ticks of 2024-03-05.

    Returns
    -------
    MarketData
        1-minute bars, index points, funding (and trades); no mark series: the engine
        computes the mark.
    """
    from backtester.data.catalog import Catalog
    from backtester.data.loader import load_market_data

    _check_symbol(symbol)
    catalog = Catalog(SAMPLE_CATALOG if catalog_root is None else catalog_root)
    if catalog.exists("bars", SAMPLE_EXCHANGE, symbol, BAR_INTERVAL_NS):
        return load_market_data(
            catalog,
            SAMPLE_EXCHANGE,
            symbol,
            bar_interval_ns=BAR_INTERVAL_NS,
            with_trades=with_trades,
        )
    return sample_market_data(symbol, DEFAULT_SEED, with_trades=with_trades)


def main(argv: list[str] | None = None) -> int:
    """Regenerate the committed sample: ``python -m backtester.data.sample [--root DIR]``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--root", default=str(SAMPLE_CATALOG), help="catalog directory")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    written = write_sample(args.root, seed=args.seed, overwrite=True)
    size = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files, {size / 1e6:.2f} MB under {args.root}/{SAMPLE_EXCHANGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
