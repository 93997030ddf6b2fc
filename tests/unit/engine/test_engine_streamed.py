"""Chunked replay: a backtest over a catalog stream gives the records of the unstreamed run.

The data are written to a real Parquet catalog (``Catalog.write``) in a temporary directory;
the streamed run (``Catalog.stream_market_data`` → ``backtest``) must give records identical to
the run over ``Catalog.load_market_data`` of the same span — fills, ledger, funding payments,
liquidations and equity — for a Python ``on_bar`` strategy using ``ctx.sma`` across chunk
boundaries, a jitted bar strategy reading ``bar(ctx, i, k)``, and a Python ``on_trade``
strategy whose limit orders rest across boundaries. Chunk lengths include boundaries exactly
at a bar close and exactly at a funding time; the Binance profile's median mark reads the
next funding row, so the funding look-ahead at a boundary is exercised.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from backtester import JitStrategy, Strategy, backtest, dtypes
from backtester.data import Catalog
from backtester.data.loader import load_market_data
from backtester.data.stream import MarketDataStream, stream_market_data
from backtester.jit import bar, bar_count, market, position

MINUTE = 60_000_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
SECOND = 1_000_000_000
T0 = 1_672_531_200_000_000_000  # 2023-01-01 00:00 UTC (a funding time)
EX, SYM = "binance", "BTCUSDT"
RECORDS = ("orders", "fills", "ledger", "funding_payments", "liquidations", "equity")


def _path(n: int, seed: int, crash_at: int, sigma: float = 0.0015) -> np.ndarray:
    """A random walk, rising for 400 steps (+27 %) before a 30 % crash in 3 steps at ``crash_at``
    (liquidates a long at 40x)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, sigma, n)
    steps[max(0, crash_at - 400) : crash_at] += 0.0006
    steps[crash_at : crash_at + 3] -= 0.12
    return 20_000.0 * np.exp(np.cumsum(steps))


def _funding(span_ns: int) -> np.ndarray:
    n = span_ns // (8 * HOUR) + 1
    f = np.zeros(n, dtypes.FUNDING_RATE_DTYPE)
    f["ts_ns"] = T0 + np.arange(n) * 8 * HOUR
    f["funding_rate"] = np.resize([1e-4, -3e-4, 2e-4, 5e-4, -1e-4], n)
    f["funding_interval_ns"] = 8 * HOUR
    return f


@pytest.fixture(scope="module")
def bar_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """5 days of minute bars, a minute index (basis ~ +0.05 %), 8-hourly funding."""
    cat = Catalog(tmp_path_factory.mktemp("bar_catalog"))
    n = 5 * 1440
    close = np.round(_path(n, 11, 3 * 1440 + 100), 1)
    open_ = np.r_[20_000.0, close[:-1]]
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE
    bars["open"] = open_
    bars["close"] = close
    bars["high"] = np.maximum(open_, close) + 3.0
    bars["low"] = np.minimum(open_, close) - 3.0
    bars["volume_base"] = 2.0
    cat.write("bars", EX, SYM, bars, source="unit", interval_ns=MINUTE)
    index = np.zeros(n, dtypes.PRICE_DTYPE)
    index["ts_ns"] = bars["ts_ns"] + MINUTE  # known at the candle's close
    index["price"] = np.round(close * 0.9995, 2)
    cat.write("index", EX, SYM, index, source="unit")
    cat.write("funding", EX, SYM, _funding(n * MINUTE), source="unit")
    return cat


@pytest.fixture(scope="module")
def trade_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Two days of trades every 7 s, a minute index, 8-hourly funding."""
    cat = Catalog(tmp_path_factory.mktemp("trade_catalog"))
    n = 2 * DAY // (7 * SECOND)
    trades = np.zeros(n, dtypes.TRADE_DTYPE)
    trades["ts_ns"] = T0 + np.arange(n) * 7 * SECOND
    trades["price"] = np.round(_path(n, 5, n + 10, sigma=0.0003), 1)  # no crash
    trades["qty_base"] = 0.01
    trades["side"] = np.where(np.arange(n) % 3 == 0, -1, 1)
    cat.write("trades", EX, SYM, trades, source="unit")
    minutes = 2 * 1440
    index = np.zeros(minutes, dtypes.PRICE_DTYPE)
    index["ts_ns"] = T0 + (np.arange(minutes) + 1) * MINUTE
    at = np.searchsorted(trades["ts_ns"], index["ts_ns"], "right") - 1
    index["price"] = np.round(trades["price"][at] * 1.0003, 2)
    cat.write("index", EX, SYM, index, source="unit")
    cat.write("funding", EX, SYM, _funding(2 * DAY), source="unit")
    return cat


# ---------------------------------------------------------------- strategies
class SmaLong(Strategy):
    """Long 0.5 BTC at 40x when the 30-bar SMA is above the 200-bar SMA, flat otherwise;
    the crash liquidates the long."""

    fast = 30
    slow = 200

    def on_bar(self, ctx, bar):
        fast, slow = ctx.sma(self.fast), ctx.sma(self.slow)
        if fast != fast or slow != slow:  # NaN while the history is short
            return
        if fast > slow and ctx.position == 0:
            ctx.market(0.5)
        elif fast < slow and ctx.position > 0:
            ctx.close_position()


@njit
def momentum_on_bar(ctx, p, i, row):
    """Long when the close is above the close ``lag`` bars ago, short when below."""
    lag = int(p[0])
    if bar_count(ctx, i) <= lag:
        return
    now = bar(ctx, i, 0).close
    then = bar(ctx, i, lag).close
    q = position(ctx, i)
    if now > then * 1.002 and q <= 0:
        market(ctx, i, 0.3 - q)
    elif now < then * 0.998 and q >= 0:
        market(ctx, i, -0.3 - q)


class MomentumJit(JitStrategy):
    lag = 120
    on_bar = momentum_on_bar

    def make_state(self):
        return np.array([float(self.lag)])


class Grid(Strategy):
    """A 0.2 BTC long, then a bid and an offer 0.8 % around the last fill price; a filled
    side is replaced and the other side re-centred, so orders rest for a while, across chunk
    boundaries. The position stays between 0.1 and 0.3 BTC (it pays or receives funding)."""

    def on_start(self, ctx):
        self.bid = self.ask = None
        self.centre = None

    def on_trade(self, ctx, trade):
        if self.centre is None:
            self.centre = trade["price"]
            ctx.market(0.2)

    def on_fill(self, ctx, fill):
        self.centre = float(fill["price"])
        for order in (self.bid, self.ask):
            if order is not None:
                ctx.cancel(order)
        self._quote(ctx)

    def _quote(self, ctx):
        c = self.centre
        bid = round(c * 0.992, 1)
        ask = round(c * 1.008, 1)
        q = ctx.position
        self.bid = ctx.limit(0.02, bid) if q < 0.3 else None
        self.ask = ctx.limit(-0.02, ask) if q > 0.1 else None


# ---------------------------------------------------------------- helpers
def _assert_same_rows(a: np.ndarray, b: np.ndarray, name: str) -> None:
    """Field by field (aligned input dtypes have padding bytes that ``read`` leaves as is)."""
    assert a.dtype == b.dtype, name
    assert len(a) == len(b), (name, len(a), len(b))
    for field in a.dtype.names:
        assert a[field].tobytes() == b[field].tobytes(), (name, field)


def _assert_same_records(streamed, plain) -> None:
    for kind in RECORDS:
        a, b = streamed.records[kind], plain.records[kind]
        assert a.dtype == b.dtype, kind
        assert len(a) == len(b), (kind, len(a), len(b))
        assert a.tobytes() == b.tobytes(), kind
    assert streamed.final_balance_settle == plain.final_balance_settle


def _run(strategy, data, **options):
    return backtest(
        strategy,
        data,
        "binance_usdm:BTCUSDT",
        initial_balance=10_000.0,
        leverage=40.0,
        **options,
    )


# ---------------------------------------------------------------- bars
@pytest.mark.parametrize(
    ("chunk_ns", "snap"),
    [
        (DAY, True),  # boundaries at midnight: a bar close and a funding time at once
        (7 * HOUR + 13 * MINUTE, True),  # snapped forward to the next funding time
        (90 * MINUTE, True),  # every 90 min -> snapped to 8-hourly funding times
    ],
)
def test_python_on_bar_sma_streamed_equals_unstreamed(bar_catalog, chunk_ns, snap):
    plain_data = load_market_data(bar_catalog, EX, SYM)
    stream = stream_market_data(bar_catalog, EX, SYM, chunk_ns=chunk_ns, snap_to_funding=snap)
    plain = _run(SmaLong, plain_data)
    streamed = _run(SmaLong, stream)
    assert streamed.config["stream"]["windows"] >= 5
    assert len(plain.records["fills"]) >= 6
    assert len(plain.records["liquidations"]) >= 1
    assert len(plain.records["funding_payments"]) >= 3
    _assert_same_records(streamed, plain)


def test_windows_partition_the_span_and_boundaries_sit_on_funding_times(bar_catalog):
    plain = load_market_data(bar_catalog, EX, SYM)
    stream = stream_market_data(bar_catalog, EX, [SYM], chunk_ns=7 * HOUR + 13 * MINUTE)
    windows = [w[0] for w in stream]
    # 5 days, one window per 8 h: the bar closing at the end is in the last window (every
    # stream by event time in (t0, t1], a bar by its close)
    assert len(windows) == 15
    assert all(stream.snapped[1:-1])
    assert all((t - T0) % (8 * HOUR) == 0 for t in stream.boundaries[:-1])
    for name in ("bars", "index", "funding"):
        joined = np.concatenate([getattr(w, name) for w in windows])
        _assert_same_rows(joined, getattr(plain, name), name)
    # a window holds one boundary's index point, funding row and the bar closing then; the
    # bar opening at the boundary (its BAR_OPEN event is the last of that instant) is next
    t1 = stream.boundaries[1]
    assert windows[0].funding["ts_ns"][-1] == t1
    assert windows[0].index["ts_ns"][-1] == t1
    assert windows[0].bars["ts_ns"][-1] + MINUTE == t1
    assert windows[1].bars["ts_ns"][0] == t1
    assert max(len(w.bars) for w in windows) == 480
    assert stream.start_ns == plain.start_ns
    assert stream.end_ns == plain.end_ns


def test_unsnapped_boundaries_at_bar_closes_are_exact_without_funding_marks(bar_catalog):
    """okx's mark (index + EMA basis) does not read the next funding row: unsnapped 90-minute
    windows (boundaries at bar closes, some at funding times) give identical records."""
    stream = stream_market_data(bar_catalog, EX, SYM, chunk_ns=90 * MINUTE, snap_to_funding=False)
    assert len(stream) == 81  # the last: the final bar close, after the final index point
    assert not any(stream.snapped)
    options = {"initial_balance": 10_000.0, "leverage": 40.0}
    plain = backtest(
        SmaLong, load_market_data(bar_catalog, EX, SYM), "okx:BTC-USDT-SWAP", **options
    )
    streamed = backtest(SmaLong, stream, "okx:BTC-USDT-SWAP", **options)
    assert len(plain.records["fills"]) >= 6
    _assert_same_records(streamed, plain)


def test_history_bars_bounds_what_ctx_sees(bar_catalog):
    """With fewer history bars than the slow SMA, the value leaving the window after a
    boundary is not kept: ctx.sma says so (naming history_bars) instead of restarting quietly;
    with enough history the streamed run is identical."""
    stream = stream_market_data(bar_catalog, EX, SYM, chunk_ns=DAY)
    plain = _run(SmaLong, load_market_data(bar_catalog, EX, SYM))
    with pytest.raises(ValueError, match=r"window: 200 bars is more than .*\(history_bars\)"):
        _run(SmaLong, stream, history_bars=50)
    _assert_same_records(_run(SmaLong, stream, history_bars=200), plain)
    with pytest.raises(ValueError, match="history_bars"):
        _run(SmaLong, stream, history_bars=-1)


@pytest.mark.parametrize("chunk_ns", [DAY, 5 * HOUR])
def test_jit_bar_lookback_streamed_equals_unstreamed(bar_catalog, chunk_ns):
    plain = _run(MomentumJit, load_market_data(bar_catalog, EX, SYM))
    streamed = _run(MomentumJit, stream_market_data(bar_catalog, EX, SYM, chunk_ns=chunk_ns))
    assert streamed.config["stream"]["windows"] >= 5
    assert len(plain.records["fills"]) >= 10
    assert len(plain.records["funding_payments"]) >= 5
    _assert_same_records(streamed, plain)


# ---------------------------------------------------------------- trades
@pytest.mark.parametrize("chunk_ns", [8 * HOUR, 3 * HOUR + 7 * SECOND])
def test_python_on_trade_grid_with_resting_limits_streamed_equals_unstreamed(
    trade_catalog, chunk_ns
):
    plain_data = load_market_data(trade_catalog, EX, SYM, with_trades=True)
    stream = stream_market_data(trade_catalog, EX, SYM, with_trades=True, chunk_ns=chunk_ns)
    plain = _run(Grid, plain_data)
    streamed = _run(Grid, stream)
    assert streamed.config["stream"]["windows"] == 6
    fills = plain.records["fills"]
    assert len(fills) >= 10
    assert len(plain.records["funding_payments"]) == 6
    # some limit order was placed in one window and filled in a later one
    orders = plain.records["orders"]
    created = orders["ts_created_ns"][fills["order_id"]]
    window_of = np.searchsorted(np.asarray(stream.boundaries), fills["ts_ns"], "right")
    created_window = np.searchsorted(np.asarray(stream.boundaries), created, "right")
    assert np.any(window_of > created_window)
    _assert_same_records(streamed, plain)


def test_streamed_price_series_is_sampled_per_equity_interval(trade_catalog):
    stream = stream_market_data(trade_catalog, EX, SYM, with_trades=True, chunk_ns=8 * HOUR)
    plain_data = load_market_data(trade_catalog, EX, SYM, with_trades=True)
    result = _run(Grid, stream, equity_interval_ns=HOUR)
    last = result.price_series[SYM]["last"]
    assert len(last) == 48  # one point an hour over two days
    # each is the last trade of its hour
    trades = plain_data.trades
    at = np.searchsorted(trades["ts_ns"], T0 + (np.arange(48) + 1) * HOUR, "left") - 1
    assert last["ts_ns"].tolist() == trades["ts_ns"][at].tolist()
    assert last["price"].tolist() == trades["price"][at].tolist()
    index = result.price_series[SYM]["index"]
    assert len(index) == 49  # minute points T0 + 1 min ... T0 + 48 h: 49 hour buckets
    assert index["ts_ns"][-2:].tolist() == [T0 + 48 * HOUR - MINUTE, T0 + 48 * HOUR]


# ---------------------------------------------------------------- arguments
def test_bad_stream_arguments_name_the_argument(bar_catalog):
    with pytest.raises(ValueError, match="chunk_ns: expected a window length > 0"):
        stream_market_data(bar_catalog, EX, SYM, chunk_ns=0)
    with pytest.raises(ValueError, match="chunk_ns"):
        stream_market_data(bar_catalog, EX, SYM, chunk_ns=-DAY)
    with pytest.raises(TypeError, match="chunk_ns"):
        stream_market_data(bar_catalog, EX, SYM, chunk_ns=1.5e12)
    with pytest.raises(ValueError, match=r"symbols: no market data for binance:ETHUSDT"):
        stream_market_data(bar_catalog, EX, ["BTCUSDT", "ETHUSDT"], chunk_ns=DAY)
    with pytest.raises(ValueError, match="end_ns: expected a value > start_ns"):
        stream_market_data(bar_catalog, EX, SYM, T0 + DAY, T0, chunk_ns=DAY)
    with pytest.raises(ValueError, match="bar_interval_ns: binance:BTCUSDT has no bars at 5m"):
        stream_market_data(bar_catalog, EX, SYM, bar_interval_ns=5 * MINUTE, chunk_ns=DAY)
    with pytest.raises(ValueError, match=r"start_ns, end_ns: no rows"):
        stream_market_data(bar_catalog, EX, SYM, T0 + 30 * DAY, T0 + 31 * DAY, chunk_ns=DAY)
    with pytest.raises(ValueError, match="symbols: expected at least one symbol"):
        stream_market_data(bar_catalog, EX, [], chunk_ns=DAY)


def test_a_sub_span_streams_the_rows_load_market_data_reads(bar_catalog):
    start, end = T0 + DAY + 17 * MINUTE, T0 + 3 * DAY + 5 * MINUTE
    stream = stream_market_data(bar_catalog, EX, SYM, start, end, chunk_ns=6 * HOUR)
    assert isinstance(stream, MarketDataStream)
    plain = load_market_data(bar_catalog, EX, SYM, start, end)
    windows = [w[0] for w in stream]
    for name in ("bars", "index", "funding"):
        joined = np.concatenate([getattr(w, name) for w in windows])
        _assert_same_rows(joined, getattr(plain, name), name)
    _assert_same_records(_run(SmaLong, stream), _run(SmaLong, plain))


def test_catalog_is_read_by_window_not_whole(bar_catalog: Catalog):
    """Each window reads only its rows: the largest window array is bounded by the window
    length (8 h of minute bars), not by the 5-day span."""
    stream = stream_market_data(bar_catalog, EX, SYM, chunk_ns=HOUR)
    sizes = [len(w[0].bars) + len(w[0].index) for w in stream]
    assert max(sizes) <= 2 * 480
    assert sum(sizes) == 2 * 5 * 1440
