"""Quiet bars change nothing: records and what the strategy sees equal a bar-by-bar replay.

On a quiet bar the driver calls ``on_bar`` without the engine and replays the bars afterwards
(``engine/replay_gen_nb.py``). Each seeded scenario runs twice, with quiet bars and with every
bar through the generator (``driver.QUIET_BARS = False``), and must give the same records byte
for byte and the same observations (each bar's time and close, the position the callback read,
and on drawn bars the account, mark, SMA and EMA). The scenarios put orders, stops, take-profits,
liquidations (high leverage, volatile bars), funding points, index points (points or candles,
so the mark moves inside the stretches), the LAST mark method (no index) and cross margin
inside the stretches, so a bound that promises a quiet bar where something happens fails here:
the replay reports the broken stretch, or the records or observations differ.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data.market import MarketData, candle_path_points
from backtester.engine import driver

MINUTE_NS = 60_000_000_000
T0 = 1_704_067_200_000_000_000
READS = ("equity", "mark_price", "time_ns", "balance", "unrealised_pnl", "sma", "ema")


class Probe(Strategy):
    """Places the drawn orders and reads the drawn attributes; logs what it saw."""

    actions: dict = {}  # noqa: RUF012  (set per scenario through params)
    reads: dict = {}  # noqa: RUF012

    def on_start(self, ctx):
        self.k = 0
        self.log = []
        self.quiet_bars = 0

    def on_bar(self, ctx, bar):
        k = self.k
        self.k = k + 1
        self.quiet_bars += type(ctx) is driver.QuietContext
        self.log.append((bar["ts_ns"], bar["close"], ctx.position))
        read = self.reads.get(k)
        if read == "sma":
            self.log.append(ctx.sma(5))
        elif read == "ema":
            self.log.append(ctx.ema(7))
        elif read is not None:
            self.log.append(getattr(ctx, read))
        action = self.actions.get(k)
        if action is None:
            return
        kind, size, offset = action
        price = round(bar["close"] * (1 + offset), 1)
        if kind == "market":
            ctx.market(size)
        elif kind == "limit":
            ctx.limit(size, price)
        elif kind == "stop":
            ctx.stop(size, price, reduce_only=True)
        elif kind == "bracket":
            ctx.market(size, stop_loss_fraction=abs(offset) + 0.001, take_profit_fraction=0.01)
        elif kind == "close":
            ctx.close_position()
        else:
            for order in ctx.open_orders()[:1]:
                ctx.cancel(int(order["order_id"]))


class ProbeWithCallbacks(Probe):
    """The same with the event callbacks subscribed (they wake the strategy too)."""

    def on_liquidation(self, ctx, liquidation):
        self.log.append(("liquidation", liquidation["ts_ns"], ctx.position))

    def on_funding(self, ctx, payment):
        self.log.append(("funding", payment["ts_ns"], payment["payment_settle"]))

    def on_fill(self, ctx, fill):
        self.log.append(("fill", fill["ts_ns"], fill["price"]))


def scenario(seed: int) -> tuple[MarketData, dict, dict, float, str, type[Probe]]:
    """Bars with long calm stretches and some violent moves, index points or candles or none,
    funding every few hours, and a sparse random order stream."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(600, 1500))
    vol = np.where(rng.random(n) < 0.01, 0.03, 5e-4)
    close = np.round(20_000.0 * np.exp(np.cumsum(rng.normal(0, vol))), 1)
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    bars["open"] = np.r_[20_000.0, close[:-1]]
    bars["close"] = close
    wick = np.abs(rng.normal(0, 3e-4, n)) * close
    bars["high"] = np.round(np.maximum(bars["open"], close) + wick, 1)
    bars["low"] = np.round(np.minimum(bars["open"], close) - wick, 1)
    bars["volume_base"] = 1.0
    kwargs: dict = {}
    index_kind = seed % 3  # 0: index points, 1: index candles, 2: none (the mark is the last)
    if index_kind == 0:
        every = int(rng.integers(1, 4))
        index = np.zeros(n // every, dtypes.PRICE_DTYPE)
        index["ts_ns"] = bars["ts_ns"][::every][: len(index)] + MINUTE_NS
        index["price"] = close[::every][: len(index)] * (1 + rng.normal(0, 2e-4, len(index)))
        kwargs["index"] = index
    elif index_kind == 1:
        candles = bars.copy()
        for name in ("open", "high", "low", "close"):
            candles[name] = np.round(bars[name] * (1 - 1e-4), 1)
        kwargs["index"] = candle_path_points(candles, MINUTE_NS)
        kwargs["index_interval_ns"] = MINUTE_NS
    every = int(rng.integers(60, 300))
    funding = np.zeros(n // every, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = T0 + (np.arange(len(funding)) + 1) * every * MINUTE_NS
    funding["funding_rate"] = rng.normal(0, 1e-3, len(funding))
    data = MarketData(
        "BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS, funding=funding, **kwargs
    )
    kinds = ["market", "market", "limit", "stop", "bracket", "close", "cancel"]
    actions = {
        int(k): (
            str(rng.choice(kinds)),
            float(rng.choice([-1, 1]) * rng.integers(1, 40)),
            float(rng.uniform(-0.01, 0.01)),
        )
        for k in rng.choice(n, size=int(rng.integers(3, 25)), replace=False)
    }
    actions[0] = ("market", float(rng.choice([-30.0, 30.0])), 0.0)
    reads = {int(k): str(rng.choice(READS)) for k in rng.choice(n, size=20, replace=False)}
    leverage = float(rng.choice([3.0, 20.0, 75.0]))
    margin_mode = "cross" if seed % 5 == 4 else "isolated"
    probe = ProbeWithCallbacks if seed % 2 else Probe
    return data, actions, reads, leverage, margin_mode, probe


def run(seed: int, quiet: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    data, actions, reads, leverage, margin_mode, probe = scenario(seed)
    monkeypatch.setattr(driver, "QUIET_BARS", quiet)
    seen: list = []

    class Recorded(probe):  # type: ignore[valid-type, misc]
        def on_stop(self, ctx):
            seen.append((self.log, self.quiet_bars))

    result = backtest(
        Recorded, data, "okx:BTC-USDT-SWAP", initial_balance=2_000.0, leverage=leverage,
        margin_mode=margin_mode, params={"actions": actions, "reads": reads},
    )  # fmt: skip
    return result.records, seen[0][0], seen[0][1]


@pytest.mark.parametrize("seed", range(15))
def test_quiet_bars_replay_exactly_as_bar_by_bar(seed, monkeypatch):
    records, log, quiet_bars = run(seed, True, monkeypatch)
    reference, reference_log, reference_quiet = run(seed, False, monkeypatch)
    assert reference_quiet == 0
    # the quiet path ran (most bars of these scenarios are calm; an open cross position has
    # no safe band, so those runs are quiet only while flat)
    assert quiet_bars >= (0 if scenario(seed)[4] == "cross" else 100)
    assert log == reference_log
    assert records.keys() == reference.keys()
    for name, rows in reference.items():
        assert records[name].dtype == rows.dtype, name
        assert records[name].tobytes() == rows.tobytes(), name


def test_scenarios_cover_the_events_a_stretch_must_stop_at(monkeypatch):
    """The seeds above meet liquidations, funding payments, fills of resting orders and
    margin in both modes, so the equality above is tested where it matters."""
    fills = liquidations = funding = 0
    for seed in range(15):
        records, _, _ = run(seed, True, monkeypatch)
        fills += len(records["fills"])
        liquidations += len(records["liquidations"])
        funding += len(records["funding_payments"])
    assert liquidations >= 2
    assert funding >= 20
    assert fills >= 60


class Crossing(Strategy):
    """SMA 5/20 always-in reversal with running sums, as the on_bar benchmark: mostly quiet
    bars, a position open on most of them."""

    def on_start(self, ctx):
        self.closes = []
        self.log = []

    def on_bar(self, ctx, bar):
        closes = self.closes
        closes.append(bar["close"])
        self.log.append((bar["ts_ns"], ctx.position))
        if len(closes) < 20:
            return
        fast = sum(closes[-5:]) / 5
        slow = sum(closes[-20:]) / 20
        position = ctx.position
        if fast > slow and position <= 0:
            ctx.market(1 - position)
        elif fast < slow and position >= 0:
            ctx.market(-1 - position)


@pytest.mark.parametrize("seed", range(3))
def test_quiet_stretches_with_an_index_point_at_every_close(seed, monkeypatch):
    """An index point at each bar's close (the INDEX_EMA_BASIS mark moving every bar) is where
    the signal kernel, which replays a quiet stretch, runs its bars in its inner folded loop:
    that loop must stop at the stretch's last bar (else the replay reports a broken stretch)
    and leave the records of the bar-by-bar replay."""
    rng = np.random.default_rng(100 + seed)
    n = 3000
    close = np.round(30_000.0 * np.exp(np.cumsum(rng.normal(0, 4e-4, n))), 1)
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE_NS
    bars["open"] = np.r_[30_000.0, close[:-1]]
    bars["close"] = close
    bars["high"] = np.maximum(bars["open"], close) + 3.0
    bars["low"] = np.minimum(bars["open"], close) - 3.0
    index = np.zeros(n, dtypes.PRICE_DTYPE)
    index["ts_ns"] = bars["ts_ns"] + MINUTE_NS
    index["price"] = close * (1 - 1e-4)
    funding = np.zeros(n // 480, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = T0 + (np.arange(len(funding)) + 1) * 480 * MINUTE_NS
    funding["funding_rate"] = 1e-4
    data = MarketData(
        "BTC-USDT-SWAP", bars=bars, bar_interval_ns=MINUTE_NS, index=index, funding=funding
    )
    seen: list = []

    class Recorded(Crossing):
        def on_stop(self, ctx):
            seen.append(self.log)

    outputs = []
    for quiet in (True, False):
        monkeypatch.setattr(driver, "QUIET_BARS", quiet)
        result = backtest(Recorded, data, "okx:BTC-USDT-SWAP", initial_balance=1e5, leverage=5)
        outputs.append(result.records)
    records, reference = outputs
    log, reference_log = seen
    assert len(reference["fills"]) > 20
    assert log == reference_log
    for name, rows in reference.items():
        assert records[name].tobytes() == rows.tobytes(), name
