"""The Python driver of one run: owns the state and buffers, calls the strategy at wake-ups.

:class:`Run` concatenates the instruments' streams, builds the state arrays, and alternates
between :func:`~backtester.engine.loop_nb.run_until_nb` (numba, many events) and the strategy's
callbacks (Python, one wake-up). Orders the strategy places are written as ORDER_DTYPE rows and
validated by :func:`~backtester.engine.orders_nb.accept_orders_nb` after the callback. When a
record buffer is full the loop returns BUFFER_FULL and the driver doubles it (STYLE.md C6).
In a chunked replay, END_OF_DATA of one chunk swaps in the next chunk's stream arrays
(:meth:`Run._next_chunk`) and the replay continues, so the input held in memory is one chunk.
"""

from __future__ import annotations

import math
import struct
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from backtester import dtypes
from backtester.callbacks import LOOP_CALLBACKS, WAKE_REASONS
from backtester.checks import check_finite, check_non_negative, check_positive
from backtester.data.market import MarketData
from backtester.engine.buffers import record_buffer
from backtester.engine.loop_nb import record_equity_nb
from backtester.engine.metrics_nb import (
    available_nb,
    cross_liquidation_price_nb,
    cross_metrics_nb,
    isolated_buffer_nb,
    isolated_liquidation_price_nb,
)
from backtester.engine.order_entry_nb import ORDER_HEADROOM, cancel_order_nb
from backtester.engine.orders_nb import accept_orders_nb
from backtester.engine.replay_gen_nb import (
    QUIET_UNTIL,
    SKIP_TO,
    WAKE_INSTRUMENT_SHIFT,
    WAKE_REASON_MASK,
    WAKE_REF_SHIFT,
    YIELD_BUFFER_FULL,
    YIELD_END_OF_DATA,
    YIELD_QUIET_BROKEN,
    new_control,
    replay_gen_nb,
)
from backtester.engine.rows import RowView
from backtester.engine.state_nb import new_engine_state_nb
from backtester.enums import (
    MarginMode,
    OrderStatus,
    Status,
    TimeInForce,
    WakeReason,
)
from backtester.indicators import Indicators
from backtester.protection import Protections
from backtester.swap.contract import check_leverage_value
from backtester.swap.insurance_nb import next_period_end_ns_nb
from backtester.swap.settlement_nb import next_settlement_ns_nb

# in the order of the loop's ``capacities`` (see min_free_nb)
_BUFFERS = (
    "fills", "funding_payments", "liquidations", "settlements", "ledger", "equity", "adl",
)  # fmt: skip
_COUNTERS = (
    "n_fills", "n_funding_payments", "n_liquidations", "n_settlements", "n_ledger", "n_equity",
    "n_adl",
)  # fmt: skip
# stream attribute of MarketData -> cursor suffix in POSITION_STATE_DTYPE (c_<suffix>, e_<suffix>)
_STREAMS = {
    "trades": "trade", "bars": "bar", "index": "index", "mark": "mark", "funding": "funding",
    "deleverage": "deleverage",
}  # fmt: skip
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}

# The Run most recently set up in this process, for the progress line of `backtester run`
# (backtester.progress), which reads its simulated time from another thread; a weak
# reference, so it keeps no finished run alive.
_latest_run: weakref.ReferenceType[Run] | None = None


def latest_run() -> Run | None:
    """Return the Run most recently set up in this process (None before any, or once gone)."""
    return None if _latest_run is None else _latest_run()


# Run.place writes whole rows as tuples in these field orders
assert dtypes.ORDER_DTYPE.names == (
    "order_id", "instrument", "ts_created_ns", "ts_updated_ns", "order_type", "side",
    "time_in_force", "reduce_only", "post_only", "status", "reject_reason", "price",
    "trigger_price", "qty_contracts", "filled_contracts", "average_fill_price", "tag",
)  # fmt: skip
# Run._replay tells a first-instrument bar or trade wake-up by the code's low bits alone:
# the end-of-data and buffer-full codes must never look like one
assert all(
    code & ((1 << WAKE_REF_SHIFT) - 1) not in (WakeReason.BAR, WakeReason.TRADE)
    for code in (YIELD_END_OF_DATA, YIELD_BUFFER_FULL)
)
assert dtypes.ORDER_WORK_DTYPE.names == (
    "active_from_ns", "queue_ahead_base", "is_taker", "queue_initial_base",
    "fill_credit_contracts", "trail_offset_quote", "trail_rate", "trail_extreme_price",
)  # fmt: skip


# struct codes of the field types of the rows Run.place packs (little-endian, like the arrays)
_STRUCT_CODES = {"<i8": "q", "<i4": "i", "|i1": "b", "|b1": "?", "<f8": "d"}


def _row_struct(dtype: np.dtype) -> struct.Struct:
    """Return a Struct packing one row of ``dtype`` byte for byte (padding as zero bytes).

    ``Struct.pack_into`` writes a row in ~0.5 µs where assigning a tuple to a structured
    array's row converts field by field (~6 µs in a running replay, its caches cold).
    """
    fields = dtype.fields
    assert dtype.names is not None, dtype  # a structured dtype
    assert fields is not None, dtype
    fmt, offset = "<", 0
    for name in dtype.names:
        field, field_offset = fields[name][:2]
        fmt += "x" * (field_offset - offset) + _STRUCT_CODES[field.str]
        offset = field_offset + field.itemsize
    fmt += "x" * (dtype.itemsize - offset)
    packer = struct.Struct(fmt)
    assert packer.size == dtype.itemsize, (fmt, dtype)
    return packer


_ORDER_ROW = _row_struct(dtypes.ORDER_DTYPE)
_WORK_ROW = _row_struct(dtypes.ORDER_WORK_DTYPE)


# Quiet bars (engine/replay_gen_nb.py): on by default; False runs every bar through the
# generator (the reference the differential test compares with).
QUIET_BARS = True
_BAR_WAKE = int(WakeReason.BAR)


class PythonStrategy(Protocol):
    """What the driver calls on a Python strategy (:class:`~backtester.strategy.Strategy`)."""

    def subscribed(self) -> set[str]:
        """Return the names of the callbacks the strategy defines."""

    def on_start(self, ctx: Any) -> None:
        """Run once before the first event."""

    def on_bar(self, ctx: Any, bar: RowView) -> None:
        """Run at each bar close."""

    def on_trade(self, ctx: Any, trade: RowView) -> None:
        """Run at each trade."""

    def on_funding(self, ctx: Any, payment: np.void) -> None:
        """Run after a funding payment."""

    def on_fill(self, ctx: Any, fill: np.void) -> None:
        """Run after a fill."""

    def on_margin_call(self, ctx: Any, info: dict[str, float]) -> None:
        """Run once per margin-call episode."""

    def on_liquidation(self, ctx: Any, liquidation: np.void) -> None:
        """Run after a liquidation."""

    def on_adl(self, ctx: Any, record: np.void) -> None:
        """Run after an ADL or clawback."""

    def on_order_rejected(self, ctx: Any, order: np.void) -> None:
        """Run after an order was rejected."""

    def on_stop(self, ctx: Any) -> None:
        """Run once after the last event."""


class QuietContext:
    """The ``ctx`` of ``on_bar`` on a quiet bar (one the engine has not replayed yet).

    ``ctx.position`` is read without the engine (nothing can change it on a quiet bar), and
    ``ctx.sma`` / ``ctx.ema`` of the close from the indicator values of the bar; any other
    attribute first brings the engine up to this bar (:meth:`Run._sync_quiet`, which ends the
    stretch of quiet bars) and is then the strategy's own context's. So a strategy sees the
    same values as on a bar the engine stopped at; only ``isinstance(ctx, Context)`` differs.
    """

    __slots__ = ("_ctx", "_ema_close", "_run", "_sma_close", "_view", "position", "synced")

    def __init__(self, run: Run, ctx: Any) -> None:
        self._run = run
        self._ctx = ctx
        self._view = run._bar_view
        self._sma_close = run.indicators.sma_close[0]
        self._ema_close = run.indicators.ema_close[0]
        self.synced = True

    def arm(self, position: float) -> None:
        """Start a stretch: the position is ``position`` (contracts) until it ends."""
        # object.__setattr__: the class's own __setattr__ (for the strategy's attributes)
        # costs ~0.3 µs a call, paid at every stretch
        _set = object.__setattr__
        _set(self, "position", position)
        _set(self, "_view", self._run._bar_view)
        _set(self, "synced", False)

    def disarm(self) -> None:
        """End the stretch: from now on every attribute is the real context's."""
        if not self.synced:
            object.__setattr__(self, "synced", True)
            del self.position

    def __getattr__(self, name: str) -> Any:
        if not self.synced:
            self._run._sync_quiet()
        return getattr(self._ctx, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in QuietContext.__slots__:
            object.__setattr__(self, name, value)
            return
        if not self.synced:
            self._run._sync_quiet()
        setattr(self._ctx, name, value)

    def sma(self, window: int, field: str = "close") -> float:
        """Return ``ctx.sma`` (:meth:`~backtester.strategy.Context.sma`) at this bar."""
        if not self.synced and field == "close":
            values = self._sma_close.get(window)
            if values is not None:
                # the value at the bar whose close is being shown: the cursor c_bar will be
                # its row + 1 (see Indicators._build); the view in a local: one slot read less
                view = self._view
                value: float = values[view._start + view._row + 1]
                if value == value:
                    return value
        return float(self.__getattr__("sma")(window, field))

    def ema(self, span: int, field: str = "close") -> float:
        """Return ``ctx.ema`` (:meth:`~backtester.strategy.Context.ema`) at this bar."""
        if not self.synced and field == "close":
            values = self._ema_close.get(span)
            if values is not None:
                view = self._view
                value: float = values[view._start + view._row + 1]
                return value
        return float(self.__getattr__("ema")(span, field))


# NaN amounts and False exits shared by every run's quiet stretches (only read): a run
# sliced them instead of allocating 9 bytes a bar (~5 ms of page faults on 1 M bars)
_NO_SIGNALS: list[npt.NDArray[Any]] = [np.zeros(0), np.zeros(0, dtype=np.bool_)]


def _no_signal_rows(n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Return ``n`` NaN amounts and ``n`` False exits (C-contiguous, never written)."""
    if len(_NO_SIGNALS[0]) < n:
        # writeable: a read-only array is another numba type (another compiled generator)
        _NO_SIGNALS[:] = [np.full(n, np.nan), np.zeros(n, dtype=np.bool_)]
    return _NO_SIGNALS[0][:n], _NO_SIGNALS[1][:n]


def _concat(arrays: list[npt.NDArray[np.void]], dtype: np.dtype) -> npt.NDArray[np.void]:
    if not arrays:
        return np.zeros(0, dtype=dtype)
    return np.ascontiguousarray(np.concatenate(arrays)) if len(arrays) > 1 else arrays[0]


def _equity_rows(data: list[MarketData], interval_ns: int, n_events: int) -> int:
    """Return the equity rows a run writes at most, plus the loop's head-room.

    One per interval with an event, and the final row; the head-room keeps the buffer from
    being regrown (and copied) near the end.
    """
    rows = n_events
    if interval_ns > 0:
        span = max(d.end_ns for d in data) - min(d.start_ns for d in data)
        rows = min(rows, span // interval_ns + 2)
    return max(1024, int(rows) + 256)


class Run:
    """State, buffers and the wake-up protocol of one backtest (internal; use ``backtest``).

    Parameters
    ----------
    data
        One MarketData per instrument.
    params, tiers
        CONTRACT_PARAMS_DTYPE rows (one per instrument, tier_offset set) and the shared tier rows.
    initial_balance
        Wallet balance at the start, settle currency.
    leverage, margin_modes
        Per instrument.
    slippage_rates
        Taker slippage per instrument: a fraction, or a ``(fixed rate, impact coefficient, max
        rate)`` row (:func:`~backtester.engine.slippage.slippage_row`).
    latency_ns, bar_path, queue_model, queue_initial_base, margin_call_buffer_ratio,
    equity_interval_ns
        Engine options (see :func:`backtester.engine.backtest.backtest`).
    chunks
        Chunked replay: the next chunks of the data (``data`` is the first), e.g. the rest of
        a :class:`~backtester.data.stream.MarketDataStream`. When every cursor of a chunk has
        reached its end, the next chunk's streams replace the current ones and the replay
        continues; state, orders and records carry over. The chunks must partition the data
        in replay order (the stream's windows do, see :mod:`backtester.data.stream`).
    history_bars
        Bars per instrument kept from one chunk into the next (default 10,000) for history
        windows: ``ctx.closes`` / ``ctx.history`` then reach back at most ``history_bars`` bars
        before the chunk's first bar (``ctx.sma(n)`` needs ``n <= history_bars``; ``ctx.ema``,
        incremental, continues exactly), and a jitted ``bar(ctx, i, k)`` is valid for
        ``k <= history_bars``. Trades keep no history across chunks.
    tier_switches
        TIER_SWITCH_DTYPE rows (sorted by instrument, then date): the dated tier tables that
        take effect after the start, their rows already in ``tiers``.
    insurance_fund_settle, clawback_period_ns, clawback_offset_ns, clawback_profit_pool_settle
        The venue's insurance fund at the start and the clawback period grid (0: none) and
        profit pool (see :func:`backtester.engine.deleverage_nb.apply_period_clawback_nb`).
    start_ns, bar_intervals, fill_on_trades
        For chunked replay, the span's values (first timestamp; per instrument, candle length
        and whether orders fill on trades), which the first chunk alone may not show.
    """

    def __init__(  # noqa: PLR0913  (backtest()'s engine options, passed on by name)
        self,
        data: list[MarketData],
        params: npt.NDArray[np.void],
        tiers: npt.NDArray[np.void],
        initial_balance: float,
        leverage: list[float],
        margin_modes: list[int],
        slippage_rates: list[float] | list[tuple[float, float, float]],
        *,
        latency_ns: int,
        bar_path: int,
        queue_model: bool,
        queue_initial_base: float = 0.0,
        margin_call_buffer_ratio: float,
        equity_interval_ns: int,
        chunks: Iterator[list[MarketData]] | None = None,
        history_bars: int = 10_000,
        start_ns: int | None = None,
        bar_intervals: list[int] | None = None,
        fill_on_trades: list[bool] | None = None,
        tier_switches: npt.NDArray[np.void] | None = None,
        insurance_fund_settle: float = math.inf,
        clawback_period_ns: int = 0,
        clawback_offset_ns: int = 0,
        clawback_profit_pool_settle: float = math.nan,
    ) -> None:
        if history_bars < 0:
            raise ValueError(f"history_bars: expected an integer >= 0, got {history_bars!r}")
        self.data = data
        self._chunks = chunks
        self.history_bars = int(history_bars)
        self.n_chunks = 1
        # called with the run at the end of every window of a chunked replay, before the next
        # one is read (backtest() spills the records there: engine/spill.py)
        self.on_window_end: Callable[[Run], None] | None = None
        self.n_instruments = len(data)
        self.plots: dict[str, tuple[list[int], list[float]]] = {}  # ctx.plot series
        self.params = params
        self.tiers = tiers
        if tier_switches is None:
            tier_switches = np.zeros(0, dtype=dtypes.TIER_SWITCH_DTYPE)
        self.tier_switches = tier_switches
        # one (fixed rate, impact coefficient, max rate) row per instrument; a plain rate per
        # instrument is a fixed rate without impact or cap
        slip = np.asarray(slippage_rates, dtype=np.float64)
        if slip.ndim == 1:
            slip = np.column_stack([slip, np.zeros(len(slip)), np.full(len(slip), np.inf)])
        self.slippage = np.ascontiguousarray(slip)
        self.positions = np.zeros(self.n_instruments, dtype=dtypes.POSITION_STATE_DTYPE)
        self._contracts_view = self.positions["contracts"].data  # never reallocated
        if start_ns is None:
            start_ns = min(d.start_ns for d in data)
        self._bar_starts = [0] * self.n_instruments
        # bars closed since the start of the run = c_bar + bar_count_offset[i] (across chunks)
        self.bar_count_offset = [0] * self.n_instruments
        self._load_streams(data, first=True)
        for i, d in enumerate(data):
            s = self.positions[i]
            s["bar_interval_ns"] = d.bar_interval_ns if bar_intervals is None else bar_intervals[i]
            s["fill_on_trades"] = len(d.trades) > 0 if fill_on_trades is None else fill_on_trades[i]
            s["leverage"] = leverage[i]
            s["margin_mode"] = margin_modes[i]
            for name in (
                "entry_price",
                "reference_price",
                "last_price",
                "mark_price",
                "index_price",
                "funding_rate",
            ):
                s[name] = math.nan
            if params[i]["daily_settlement"]:
                s["next_settlement_ns"] = next_settlement_ns_nb(
                    start_ns - 1, int(params[i]["settlement_offset_ns"])
                )
        self.account = np.zeros(1, dtype=dtypes.ACCOUNT_STATE_DTYPE)
        a = self.account[0]
        a["balance_settle"] = initial_balance
        a["latency_ns"] = latency_ns
        a["bar_path"] = bar_path
        a["queue_model"] = queue_model
        a["queue_initial_base"] = queue_initial_base
        a["margin_call_buffer_ratio"] = margin_call_buffer_ratio
        a["equity_interval_ns"] = equity_interval_ns
        a["next_equity_ns"] = start_ns
        a["next_tier_switch_ns"] = np.iinfo(np.int64).max
        switch_instruments = tier_switches["instrument"]
        for i in range(self.n_instruments):
            rows = np.flatnonzero(switch_instruments == i)
            s = self.positions[i]
            s["c_tier_switch"] = rows[0] if len(rows) else 0
            s["e_tier_switch"] = rows[-1] + 1 if len(rows) else 0
            if len(rows):
                a["next_tier_switch_ns"] = min(
                    int(a["next_tier_switch_ns"]), int(tier_switches["valid_from_ns"][rows[0]])
                )
        a["insurance_fund_settle"] = insurance_fund_settle
        a["clawback_period_ns"] = clawback_period_ns
        a["clawback_offset_ns"] = clawback_offset_ns
        a["clawback_profit_pool_settle"] = clawback_profit_pool_settle
        if clawback_period_ns > 0:
            a["next_clawback_ns"] = next_period_end_ns_nb(
                start_ns - 1, clawback_period_ns, clawback_offset_ns
            )
        order_capacity = 64
        self.orders = np.zeros(order_capacity, dtype=dtypes.ORDER_DTYPE)
        self.work = np.zeros(order_capacity, dtype=dtypes.ORDER_WORK_DTYPE)
        self.active = np.zeros(order_capacity, dtype=np.int64)
        n_bars = len(self.bars) + len(self.trades) // 100
        # Room for some hundred events between head-room checks in the signal kernel, which
        # also replays the Python path's quiet bars: it checks once per ``free // need``
        # events (need ~20, free: the smallest buffer's room), and runs bars in its inner loop
        # only with room for four events more (64-row buffers meant neither).
        small = 512
        self.buffers = {
            "fills": np.zeros(1024, dtype=dtypes.FILL_DTYPE),
            "funding_payments": np.zeros(len(self.funding) + small, dtypes.FUNDING_PAYMENT_DTYPE),
            "liquidations": np.zeros(small, dtype=dtypes.LIQUIDATION_DTYPE),
            "settlements": np.zeros(small, dtype=dtypes.SETTLEMENT_DTYPE),
            "adl": np.zeros(len(self.deleverage) + small, dtype=dtypes.ADL_DTYPE),
            "ledger": np.zeros(4096, dtype=dtypes.LEDGER_DTYPE),
            # every row counted is written whole (equity_row_nb), the rest never read
            "equity": record_buffer(
                _equity_rows(data, equity_interval_ns, n_bars),
                dtype=dtypes.EQUITY_DTYPE,
                zeroed=False,
            ),
        }
        self._metrics = np.zeros(1, dtype=dtypes.METRICS_DTYPE)
        self._scratch = np.zeros(1, dtype=dtypes.METRICS_DTYPE)
        self._args: tuple[Any, ...] | None = None
        self._caps = np.zeros(len(_BUFFERS), dtype=np.int64)
        self.indicators: Indicators = Indicators(self)  # ctx.sma / ctx.ema state, O(1) per bar
        self.protections = Protections(self)  # stop_loss= / take_profit= of entry orders
        self.wants_fills = False  # the strategy has on_fill (see Protections._restore_mask)
        # the strategy contexts, one per instrument, built by run() with the user API's type
        self._contexts: list[Any] = []
        # quiet bars (engine/replay_gen_nb.py): the generator's control slots, the generator
        # and the arguments it was made with, the bar row before which no stretch is tried
        self.quiet_bars = QUIET_BARS
        self._control = new_control(enabled=QUIET_BARS)
        self._ctl = self._control.data  # item reads as Python ints, ~30 ns
        # byte views of self.orders / self.work for Run.place, and the array they view
        self._rows_of: npt.NDArray[np.void] | None = None
        self._order_bytes = self._work_bytes = memoryview(b"")
        # the account fields Run.place reads and writes, as memoryviews (the account array is
        # never reallocated): an item costs ~30 ns where a field of the row costs ~0.5-1 µs
        self._account_fields = {
            name: self.account[name].data
            for name in ("n_orders", "next_order_id", "ts_ns", "queue_initial_base")
        }
        self._gen: Iterator[int] | None = None
        self._gen_args: tuple[Any, ...] | None = None
        self._quiet: QuietContext | None = None
        self._quiet_after = 0
        self._quiet_misses = 0
        global _latest_run  # one slot per process, read by the progress line
        _latest_run = weakref.ref(self)

    # ------------------------------------------------------------------ streams
    def _load_streams(self, data: list[MarketData], *, first: bool) -> None:
        """Concatenate the instruments' streams and point their cursors at their blocks.

        Each instrument's cursors ``c_*`` / ends ``e_*`` bound its block.

        After the first chunk (``first=False``), the last ``history_bars`` bars each instrument
        has seen are kept in front of its new bars as already-replayed rows (the cursor starts
        after them), so history windows (``ctx.closes``, ``ctx.sma``, a jitted
        ``bar(ctx, i, k)``) reach across the chunk boundary.
        """
        streams: dict[str, list[npt.NDArray[np.void]]] = {name: [] for name in _STREAMS}
        offsets = dict.fromkeys(_STREAMS, 0)
        for i, d in enumerate(data):
            s = self.positions[i]
            if d.symbol != self.data[i].symbol:
                raise ValueError(
                    f"data: chunk instrument {i} is {d.symbol!r}, expected {self.data[i].symbol!r}"
                )
            s["index_interval_ns"] = d.index_interval_ns
            s["mark_interval_ns"] = d.mark_interval_ns
            for name, short in _STREAMS.items():
                array = getattr(d, name)
                seen = 0
                if name == "bars" and not first:
                    end = int(s["c_bar"])
                    kept = self.bars[max(self._bar_starts[i], end - self.history_bars) : end]
                    if len(kept):
                        seen = len(kept)
                        array = np.concatenate([kept, array]) if len(array) else kept.copy()
                    self._bar_starts[i] = offsets[name]
                    # the cursor moves from `end` to after the kept rows; the count carries on
                    self.bar_count_offset[i] += end - (offsets[name] + seen)
                elif name == "bars":
                    self._bar_starts[i] = offsets[name]
                streams[name].append(array)
                s[f"c_{short}"] = offsets[name] + seen
                s[f"e_{short}"] = offsets[name] + len(array)
                offsets[name] += len(array)
        self.trades: npt.NDArray[np.void] = _concat(streams["trades"], dtypes.TRADE_DTYPE)
        self.bars: npt.NDArray[np.void] = _concat(streams["bars"], dtypes.BAR_DTYPE)
        if not first:
            self.indicators.new_chunk()
        self.index: npt.NDArray[np.void] = _concat(streams["index"], dtypes.PRICE_DTYPE)
        self.mark: npt.NDArray[np.void] = _concat(streams["mark"], dtypes.PRICE_DTYPE)
        self.funding: npt.NDArray[np.void] = _concat(streams["funding"], dtypes.FUNDING_RATE_DTYPE)
        self.deleverage: npt.NDArray[np.void] = _concat(
            streams["deleverage"], dtypes.DELEVERAGE_EVENT_DTYPE
        )
        self._bar_view: RowView = RowView(self.bars)
        self._trade_view: RowView = RowView(self.trades)
        self._args = None
        if not first:
            # the quiet bound and the row the next stretch waits for are rows of the previous
            # chunk's bars
            self._ctl[QUIET_UNTIL] = -1
            self._quiet_after = 0

    def _next_chunk(self) -> bool:
        """Swap in the next chunk at the end of the current one (True), or False at the end.

        Every cursor has reached its end here, so only the stream arrays and cursors change;
        state, orders and record buffers carry over.
        """
        if self._chunks is None:
            return False
        if self.on_window_end is not None:
            self.on_window_end(self)
        for chunk in self._chunks:
            if len(chunk) != self.n_instruments:
                raise ValueError(
                    f"data: a chunk has {len(chunk)} instruments, expected {self.n_instruments}"
                )
            self._load_streams(chunk, first=False)
            self.n_chunks += 1
            return True
        self._chunks = None
        return False

    # ------------------------------------------------------------------ capacity
    def _capacities(self) -> npt.NDArray[np.int64]:
        self._caps[:] = [len(self.buffers[name]) for name in _BUFFERS]
        return self._caps

    def _grow_buffers(self) -> None:
        a = self.account[0]
        for name, counter in zip(_BUFFERS, _COUNTERS, strict=True):
            buffer = self.buffers[name]
            if (
                len(buffer) - int(a[counter])
                < 8 * (int(a["n_active"]) + 2 * self.n_instruments) + 16
            ):
                grown = record_buffer(2 * len(buffer) + 64, buffer.dtype)
                grown[: len(buffer)] = buffer
                self.buffers[name] = grown
        if len(self.orders) - int(a["n_orders"]) < ORDER_HEADROOM:
            self._grow_orders()
        self._args = None

    def reserve(self, orders: int = 0, **records: int) -> None:
        """Grow the order arrays and the named record buffers to at least the rows given.

        ``orders`` rows, and ``fills=``, ``ledger=``, ... rows of each record buffer, before a
        run whose record counts are known in advance (the signal path): saves the
        regrow-and-copy rounds. Untouched rows cost no memory until written.
        """
        for name, rows in records.items():
            buffer = self.buffers[name]
            if rows > len(buffer):
                grown = record_buffer(rows, buffer.dtype)
                grown[: len(buffer)] = buffer
                self.buffers[name] = grown
        if orders > len(self.orders):
            n = len(self.orders)
            for name in ("orders", "work", "active"):
                old = getattr(self, name)
                grown = np.zeros(orders, dtype=old.dtype)
                grown[:n] = old
                setattr(self, name, grown)
        self._args = None

    def _grow_orders(self) -> None:
        n = len(self.orders)
        for name in ("orders", "work", "active"):
            old = getattr(self, name)
            grown = np.zeros(2 * n, dtype=old.dtype)
            grown[:n] = old
            setattr(self, name, grown)
        self._args = None

    # ------------------------------------------------------------------ orders
    def place(  # noqa: PLR0913  (one order row's fields, by name as ctx's order methods)
        self,
        instrument: int,
        order_type: int,
        side: int,
        qty: float,
        *,
        price: float | None = None,
        trigger: float | None = None,
        time_in_force: str = "GTC",
        reduce_only: bool = False,
        post_only: bool = False,
        tag: int = 0,
        queue_ahead_base: float | None = None,
        trail: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> int:
        """Write a new ORDER_DTYPE row (validated after the callback); return its order id.

        ``trail``: a trailing stop's (distance quote, fraction, starting extreme price), 0 for
        the ones not given (the ORDER_WORK_DTYPE ``trail_*`` fields).
        """
        if time_in_force not in _TIF:
            raise ValueError(
                f"time_in_force: expected 'GTC', 'IOC' or 'FOK', got {time_in_force!r}"
            )
        account = self._account_fields
        row = account["n_orders"][0]
        if row >= len(self.orders):
            self._grow_orders()
        orders, work = self.orders, self.work
        if self._rows_of is not orders:
            # byte views of the order arrays, for the packers (remade once the arrays grew)
            self._order_bytes = orders.view(np.uint8).data
            self._work_bytes = work.view(np.uint8).data
            self._rows_of = orders
        # the row packed in the field order checked at import (_row_struct); a jitted call
        # (place_order_nb, the jit path's writer) costs ~40 µs of argument typing from Python
        ts = account["ts_ns"][0]
        _ORDER_ROW.pack_into(
            self._order_bytes, row * _ORDER_ROW.size,
            row, instrument, ts, ts, int(order_type), int(side), int(_TIF[time_in_force]),
            bool(reduce_only), bool(post_only), int(OrderStatus.NEW), 0,
            math.nan if price is None else check_finite(price, "price"),
            math.nan if trigger is None else check_finite(trigger, "trigger"),
            float(qty), 0.0, math.nan, int(tag),
        )  # fmt: skip
        queue = (
            account["queue_initial_base"][0]
            if queue_ahead_base is None
            else check_non_negative(queue_ahead_base, "queue_ahead_base")
        )
        _WORK_ROW.pack_into(
            self._work_bytes, row * _WORK_ROW.size, 0, 0.0, False, queue, 0.0, *trail
        )
        account["n_orders"][0] = row + 1
        account["next_order_id"][0] = row + 1
        self._ctl[QUIET_UNTIL] = -1  # the quiet bars promised assumed no new order
        return int(row)

    def cancel(self, order_id: int) -> bool:
        """Cancel a working (or just placed) order; False when it is not working."""
        self._ctl[QUIET_UNTIL] = -1
        return bool(cancel_order_nb(self._state(), int(order_id)))

    def amend(
        self, order_id: int, *, price: float | None, contracts: float | None, trigger: float | None
    ) -> int:
        """Cancel-replace: a new order with the changed fields; returns the new id."""
        if not 0 <= order_id < int(self.account[0]["n_orders"]):
            raise ValueError(f"order_id: no order {order_id!r}")
        old = self.orders[order_id].copy()
        if not self.cancel(order_id):
            raise ValueError(
                f"order_id: order {order_id} is not working (status "
                f"{OrderStatus(int(old['status'])).name})"
            )
        qty = float(old["qty_contracts"] - old["filled_contracts"])
        if contracts is not None:
            qty = check_positive(abs(contracts), "contracts")
        tif = TimeInForce(int(old["time_in_force"])).name
        return self.place(
            int(old["instrument"]),
            int(old["order_type"]),
            int(old["side"]),
            qty,
            price=float(old["price"]) if price is None and not math.isnan(old["price"]) else price,
            trigger=(
                float(old["trigger_price"])
                if trigger is None and not math.isnan(old["trigger_price"])
                else trigger
            ),
            time_in_force=tif,
            reduce_only=bool(old["reduce_only"]),
            post_only=bool(old["post_only"]),
            tag=int(old["tag"]),
            # a trailing stop keeps its trail and the extreme it reached (its trigger is
            # recomputed from them when the new order is accepted)
            trail=(
                float(self.work[order_id]["trail_offset_quote"]),
                float(self.work[order_id]["trail_rate"]),
                float(self.work[order_id]["trail_extreme_price"]),
            ),
        )

    def set_leverage(self, instrument: int, leverage: float) -> None:
        """Change leverage while flat (ValueError otherwise or above the tier's maximum)."""
        leverage = check_positive(leverage, "leverage")
        s = self.positions[instrument]
        if s["contracts"] != 0.0:
            raise ValueError("set_leverage: only while the position is flat (close it first)")
        # the one rule of every entry point, against the tier table in force now
        s["leverage"] = check_leverage_value(
            leverage, float(self.params[instrument]["max_leverage"]), self.data[instrument].symbol
        )

    def transfer_margin(self, instrument: int, amount_settle: float) -> None:
        """Add (> 0) or remove (< 0) isolated position margin."""
        s = self.positions[instrument]
        if s["margin_mode"] != MarginMode.ISOLATED or s["contracts"] == 0.0:
            raise ValueError("add_margin/remove_margin: needs an open isolated position")
        if amount_settle > 0 and amount_settle > self.account_summary()["available"]:
            raise ValueError(f"amount_settle: {amount_settle!r} exceeds the available balance")
        if amount_settle < 0:
            isolated_buffer_nb(self._state(), instrument, self._metrics[0])
            p = self.params[instrument]
            from backtester.swap.margin_nb import initial_margin_nb

            price = s["mark_price"]
            initial = initial_margin_nb(
                int(p["contract_kind"]),
                abs(float(s["contracts"])),
                float(p["face_value"]),
                float(price),
                float(s["leverage"]),
            )
            if s["margin_settle"] + amount_settle < initial:
                raise ValueError(
                    f"amount_settle: removing {-amount_settle!r} would leave "
                    f"{s['margin_settle'] + amount_settle!r}, below the initial margin {initial!r}"
                )
        s["margin_settle"] = s["margin_settle"] + amount_settle
        self._ctl[QUIET_UNTIL] = -1  # the safe band was the old margin's

    def open_orders(self, instrument: int) -> npt.NDArray[np.void]:
        """Return a copy of the working orders of ``instrument``."""
        a = self.account[0]
        rows = self.active[: int(a["n_active"])]
        orders = self.orders[rows]
        working: npt.NDArray[np.void] = orders[orders["instrument"] == instrument].copy()
        return working

    # ------------------------------------------------------------------ views
    def plot(self, name: str, ts_ns: int, value: float) -> None:
        """Append one point of an indicator series the strategy registered (ctx.plot)."""
        times, values = self.plots.setdefault(name, ([], []))
        times.append(ts_ns)
        values.append(value)

    def plot_arrays(self) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """Return the registered indicator series as (ts_ns, value) arrays."""
        return {
            name: (np.asarray(t, dtype=np.int64), np.asarray(v, dtype=np.float64))
            for name, (t, v) in self.plots.items()
        }

    def context(self, instrument: int) -> Any:
        """Return the strategy context of one instrument (one object per instrument and run)."""
        return self._contexts[instrument]

    def history(self, field: str, instrument: int) -> npt.NDArray[np.float64]:
        """Return the bar field's values seen so far (a read-only view).

        In a chunked replay, from at most ``history_bars`` bars before the current chunk.
        """
        start = self._bar_starts[instrument]
        end = int(self.positions[instrument]["c_bar"])
        view: npt.NDArray[np.float64] = self.bars[field][start:end]
        view.flags.writeable = False
        return view

    def account_summary(self) -> dict[str, float]:
        """Balance, equity and available balance now."""
        available = available_nb(self._state())
        upl = 0.0
        for i in range(self.n_instruments):
            upl += self.position_summary(i)["unrealised_pnl"]
        balance = float(self.account[0]["balance_settle"])
        return {"balance": balance, "equity": balance + upl, "available": float(available)}

    def position_summary(self, instrument: int) -> dict[str, float]:
        """UPL, margin ratio and liquidation price of one position."""
        s = self.positions[instrument]
        if s["contracts"] == 0.0:
            return {"unrealised_pnl": 0.0, "margin_ratio": math.nan, "liquidation_price": math.nan}
        m = self._metrics[0]
        state = self._state()
        isolated_buffer_nb(state, instrument, m)
        upl = float(m["unrealised_pnl_settle"])
        if s["margin_mode"] == MarginMode.ISOLATED:
            ratio = float(m["margin_ratio"])
            liq = float(isolated_liquidation_price_nb(state, instrument))
        else:
            cross_metrics_nb(state, m)
            ratio = float(m["margin_ratio"])
            liq = float(cross_liquidation_price_nb(state, instrument))
        return {"unrealised_pnl": upl, "margin_ratio": ratio, "liquidation_price": liq}

    # ------------------------------------------------------------------ the run
    def _accept(self, on_rejected: Callable[[int], None] | None) -> None:
        """Validate orders placed outside the replay (``on_start``, ``on_stop``).

        Calls ``on_rejected(row)`` for refused ones (orders it places are validated in turn).
        """
        for _ in range(10_000):
            a = self.account[0]
            first, last = int(a["n_orders_seen"]), int(a["n_orders"])
            if first == last:
                return
            self._grow_buffers()
            accept_orders_nb(self._state(), a["ts_ns"])
            if on_rejected is not None:
                for r in range(first, last):
                    if self.orders[r]["status"] == OrderStatus.REJECTED:
                        on_rejected(r)
        raise RuntimeError("on_order_rejected kept placing rejected orders (10,000 rounds)")

    def _set_masks(self, subscribed: set[str], *, jitted: bool) -> None:
        """Set the WakeReason bits of the subscribed callbacks.

        The wake mask (Python callbacks, run at wake-ups) or the callback mask (jitted
        callbacks, run inside the loop).
        """
        mask = 0
        for name, bit in WAKE_REASONS.items():
            if name in subscribed:
                mask |= int(bit)
        a = self.account[0]
        self.wants_fills = not jitted and "on_fill" in subscribed
        a["wake_mask"] = 0 if jitted else mask
        a["callback_mask"] = mask if jitted else 0

    def _finish(self) -> None:
        """Write the final equity row, after ``on_stop`` and its orders.

        It is also the row due at the last instant, if one was: no event ran after it.
        """
        self._grow_buffers()
        self.account[0]["equity_pending"] = False
        record_equity_nb(self._loop_arguments()[0], self.account[0]["ts_ns"])

    def _state(self) -> Any:
        """Return the EngineState of the current arrays, for a kernel called from Python.

        The one of the running replay when there is one (building one costs ~40 µs of typing).
        """
        return self._args[0] if self._args is not None else self._loop_arguments()[0]

    def _loop_arguments(self) -> tuple[Any, ...]:
        """Return (EngineState, capacities), the arguments of the replay kernels.

        Rebuilt after any array was replaced (grown).
        """
        state = new_engine_state_nb(
            self.trades, self.bars, self.index, self.mark, self.funding, self.deleverage,
            self.params, self.tiers, self.slippage, self.account, self.positions, self.orders,
            self.work, self.active, self.buffers["fills"], self.buffers["funding_payments"],
            self.buffers["liquidations"], self.buffers["settlements"], self.buffers["adl"],
            self.buffers["ledger"], self.buffers["equity"], self._metrics, self._scratch,
            self.tier_switches,
        )  # fmt: skip
        return state, self._capacities()

    def run(self, strategy: PythonStrategy, context: Callable[[Run, int], Any]) -> None:
        """Replay everything, calling the strategy at its wake-ups.

        ``context(run, instrument)`` builds the ``ctx`` the callbacks receive (the user API's
        :class:`~backtester.strategy.Context`; the engine does not import the user API).
        """
        self._contexts = [context(self, i) for i in range(self.n_instruments)]
        subscribed = strategy.subscribed()
        self._set_masks(subscribed, jitted=False)
        quiet_ok = self.quiet_bars and self.n_instruments == 1 and "on_bar" in subscribed
        self._control[:] = new_control(enabled=quiet_ok)
        if quiet_ok:
            self._quiet = QuietContext(self, self._contexts[0])

        def rejected(row: int) -> None:
            order = self.orders[row]
            strategy.on_order_rejected(self._contexts[int(order["instrument"])], order)

        on_rejected = rejected if "on_order_rejected" in subscribed else None
        ctx = self._contexts[0]
        try:
            strategy.on_start(ctx)
            self._accept(on_rejected)
            while self._replay(strategy, subscribed) == YIELD_BUFFER_FULL:
                self._grow_buffers()
            strategy.on_stop(ctx)
            self._accept(on_rejected)
        except Exception as error:
            self._raise_strategy_error(error, type(strategy).__name__)
        self._finish()

    def _raise_strategy_error(self, error: Exception, name: str) -> None:
        """Re-raise ``error``, as a StrategyError when it came from the strategy's code.

        The StrategyError names the strategy's file, line and the replay time; other errors
        are re-raised unchanged.
        """
        from backtester.errors import strategy_error

        wrapped = strategy_error(error, int(self.account[0]["ts_ns"]), name)
        if wrapped is None:
            raise error
        raise wrapped from error

    def run_jit(self, strategy: Any) -> None:
        """Replay everything with a jitted strategy's callbacks run inside the loop.

        ``strategy`` is a :class:`~backtester.jit.JitStrategy` instance (read through its
        ``subscribed()``, ``callback(name)`` and ``make_state()``); the compiled replay comes
        from the engine (:func:`~backtester.engine.jit_replay.replay_kernel`), no wake-up
        returns to Python.
        """
        from backtester.engine.jit_replay import replay_kernel

        self._set_masks(strategy.subscribed(), jitted=True)
        user_state = strategy.make_state()
        rejected = strategy.callback("on_order_rejected")
        on_rejected = (
            None
            if rejected is None
            else lambda row: rejected(self._loop_arguments()[0], user_state, row)
        )
        self._grow_buffers()
        if strategy.callback("on_start") is not None:
            strategy.callback("on_start")(self._loop_arguments()[0], user_state)
        self._accept(on_rejected)
        # compiled once per strategy source and loaded from numba's cache by later processes;
        # callbacks without a source file (a notebook cell) compile the loop each process
        kernel, arguments = replay_kernel(
            {name: strategy.callback(name) for name in LOOP_CALLBACKS}, user_state
        )
        self._drive(kernel, arguments)
        if strategy.callback("on_stop") is not None:
            strategy.callback("on_stop")(self._loop_arguments()[0], user_state)
        self._accept(on_rejected)
        self._finish()

    def run_kernel(self, kernel: Any, arguments: tuple[Any, ...], subscribed: set[str]) -> None:
        """Replay everything with ``kernel(state, capacities, *arguments)``.

        A compiled replay handling the callbacks ``subscribed`` inside (the signal path,
        :func:`~backtester.engine.signal_replay.replay_signals`); no start or stop callbacks.
        """
        self._set_masks(subscribed, jitted=True)
        self._grow_buffers()
        self._drive(kernel, arguments)
        self._finish()

    def _drive(self, kernel: Any, arguments: tuple[Any, ...]) -> None:
        """Call ``kernel(state, capacities, *arguments)`` until the end of the data.

        The buffers grow after a BUFFER_FULL; the next chunk comes in at the end of one.
        """
        while True:
            state, capacities = self._loop_arguments()
            status = kernel(state, capacities, *arguments)
            if status == Status.END_OF_DATA:
                if self._next_chunk():
                    continue
                break
            self._grow_buffers()
        self._grow_buffers()

    def _replay(self, strategy: PythonStrategy, subscribed: set[str]) -> int:
        """Drive the replay generator until the end of data or a full buffer; return its code.

        The common wake-ups (a bar or a trade of one instrument and nothing else) call the
        callback directly; the rest go through :meth:`_dispatch`. When a callback replaced an
        array (more order rows), a new generator continues from the state in the arrays.
        After a bar of the first instrument, the quiet bars that follow run without the engine
        (:meth:`_quiet_stretch`).

        This loop runs once per bar or tick, so its body is kept to a few local operations
        (a Python ``on_bar`` should cost little more than the callback itself): constants are
        locals, and a bar or trade of the first instrument is recognised by one comparison of
        the code's low bits (instrument 0 and the reason alone).
        """
        contexts = self._contexts
        bar_view, trade_view = self._bar_view, self._trade_view
        on_bar = strategy.on_bar if "on_bar" in subscribed else None
        on_trade = strategy.on_trade if "on_trade" in subscribed else None
        low_mask = (1 << WAKE_REF_SHIFT) - 1  # instrument and reason bits
        instrument_mask = (1 << (WAKE_REF_SHIFT - WAKE_INSTRUMENT_SHIFT)) - 1
        # the low bits of a first-instrument bar (trade) wake-up; -1 (never equal) when the
        # strategy has no such callback
        bar_code = int(WakeReason.BAR) if on_bar is not None else -1
        trade_code = int(WakeReason.TRADE) if on_trade is not None else -1
        first_ctx = contexts[0]
        ctl = self._ctl
        # the views' current blocks, kept in locals: this loop runs once per bar or tick
        b_start = b_end = t_start = t_end = 0
        while True:
            gen = self._generator()
            args = self._args
            for code in gen:
                low = code & low_mask
                if low == bar_code:
                    k = code >> WAKE_REF_SHIFT
                    if not b_start <= k < b_end:
                        b_start, b_end = bar_view.block(k)
                    bar_view._row = k - b_start
                    on_bar(first_ctx, bar_view)  # type: ignore[misc]  # bar_code is -1 if None
                    if ctl[QUIET_UNTIL] > k and k >= self._quiet_after and self._args is args:
                        self._quiet_stretch(on_bar, k)  # type: ignore[arg-type]  # as above
                        b_start, b_end = bar_view._start, bar_view._end
                elif low == trade_code:
                    k = code >> WAKE_REF_SHIFT
                    if not t_start <= k < t_end:
                        t_start, t_end = trade_view.block(k)
                    trade_view._row = k - t_start
                    on_trade(first_ctx, trade_view)  # type: ignore[misc]  # trade_code is -1
                elif code < 0:
                    if code == YIELD_END_OF_DATA and self._next_chunk():
                        # new stream arrays: new views, and a new generator over them
                        bar_view, trade_view = self._bar_view, self._trade_view
                        b_start = b_end = t_start = t_end = 0
                        break
                    self._check_quiet_code(code)
                    self._gen = None
                    return int(code)
                elif code & WAKE_REASON_MASK == bar_code:  # another instrument's bar
                    ctx = contexts[(code >> WAKE_INSTRUMENT_SHIFT) & instrument_mask]
                    on_bar(ctx, bar_view.move(code >> WAKE_REF_SHIFT))  # type: ignore[misc]
                    b_start, b_end = bar_view._start, bar_view._end
                elif code & WAKE_REASON_MASK == trade_code:
                    ctx = contexts[(code >> WAKE_INSTRUMENT_SHIFT) & instrument_mask]
                    on_trade(ctx, trade_view.move(code >> WAKE_REF_SHIFT))  # type: ignore[misc]
                    t_start, t_end = trade_view._start, trade_view._end
                else:
                    self._dispatch(strategy, subscribed, code)
                    b_start, b_end = bar_view._start, bar_view._end
                    t_start, t_end = trade_view._start, trade_view._end
                # a callback replaced an array, or a quiet stretch its generator
                if self._args is not args or self._gen is not gen:
                    break

    def _generator(self) -> Iterator[int]:
        """Return the replay generator, a new one when the arrays it was made over changed."""
        if self._gen is None or self._args is None or self._args is not self._gen_args:
            self._args = self._gen_args = self._loop_arguments()
            state, capacities = self._args
            self._gen = replay_gen_nb(state, capacities, self._control, self._no_signals())
        return self._gen

    def _no_signals(self) -> tuple[npt.NDArray[Any], ...]:
        """Return the signal arrays of no signal over the bars (quiet stretches' replay).

        ``signal_delta_nb``'s ``(amount, close_long, close_short, unit)``: NaN amounts and
        no exits for every bar row of the loaded streams, the dtypes of the signal path's (one
        compiled kernel for both).
        """
        amounts, closes = _no_signal_rows(len(self.bars))
        return (amounts, closes, closes, np.zeros(2, dtype=np.int64))

    def _check_quiet_code(self, code: int) -> None:
        """Raise on YIELD_QUIET_BROKEN: a bar the driver ran as quiet was not.

        An engine bug: ``quiet_until_nb`` must only promise bars on which nothing but their
        close happens.
        """
        if code == YIELD_QUIET_BROKEN:
            a = self.account[0]
            raise RuntimeError(
                "internal error: a quiet bar stretch met another event (wake reason "
                f"{WakeReason(int(a['wake_reason']) & WAKE_REASON_MASK)!r} at "
                f"{int(a['ts_ns'])} ns); please report it. Run with the engine option "
                "driver.QUIET_BARS = False meanwhile"
            )

    def _quiet_stretch(self, on_bar: Callable[[Any, RowView], None], k: int) -> None:
        """Call ``on_bar`` for the quiet bars after row ``k`` straight from the bar arrays.

        The generator promised (``control[QUIET_UNTIL]``) that up to that row nothing but the
        bars' closes happens as long as the strategy changes nothing. The callback gets a
        :class:`QuietContext`: ``position`` is known, anything else brings the engine up to
        the bar first (:meth:`_sync_quiet`), and then the stretch ends there. At its last bar
        the engine replays the stretch in one resumption, and tells how far the next one goes.
        A stretch that ends at its first bar (the strategy reads the account on every bar)
        makes the next tries wait, doubling: it costs more than a plain wake-up.
        """
        quiet = self._quiet
        assert quiet is not None  # run() made it when quiet bars are enabled
        ctl = self._ctl
        view = self._bar_view
        contracts = self._contracts_view  # item reads as Python floats
        row = k
        try:
            while ctl[QUIET_UNTIL] > k:
                until = ctl[QUIET_UNTIL]
                quiet.arm(contracts[0])
                row = k + 1
                while row <= until and not quiet.synced:
                    if not view._start <= row < view._end:
                        view.move(row)
                    start = view._start
                    stop = min(until + 1, view._end)
                    for r in range(row - start, stop - start):
                        view._row = r
                        on_bar(quiet, view)
                        if quiet.synced:
                            break
                    row = start + view._row + 1
                if quiet.synced:
                    self._note_quiet_miss(row - 1 == k + 1)
                    return
                self._quiet_misses = 0
                k = until
                self._sync_quiet(k)
        except BaseException:
            if not quiet.synced:
                # the error names the replay time of the bar it came from
                self._sync_quiet()
            raise

    def _note_quiet_miss(self, at_first_bar: bool) -> None:
        """Note how a stretch the strategy ended went.

        When it ended at its first bar, the next try waits (2, 4, ... 1024 bars), so a
        strategy that reads the account every bar pays for a plain wake-up and little more.
        """
        if not at_first_bar:
            self._quiet_misses = 0
            return
        self._quiet_misses = min(self._quiet_misses + 1, 10)
        self._quiet_after = self._bar_view.row + (1 << self._quiet_misses)

    def _sync_quiet(self, row: int | None = None) -> None:
        """Bring the engine up to the wake-up of bar ``row`` of a quiet stretch.

        ``row`` defaults to the bar the quiet context's strategy is at. The generator replays
        the stretch without yielding its earlier closes; the quiet context then hands
        everything to the real context.
        """
        if row is None:
            row = self._bar_view.row
        self._ctl[SKIP_TO] = row
        if self._quiet is not None:
            self._quiet.disarm()
        while True:
            code = next(self._generator())
            if code == YIELD_BUFFER_FULL:
                self._grow_buffers()
                continue
            if code != (row << WAKE_REF_SHIFT) | _BAR_WAKE:
                self._check_quiet_code(YIELD_QUIET_BROKEN if code >= 0 else code)
                raise RuntimeError(f"internal error: quiet stretch ended by code {code}")
            return

    def _dispatch(self, strategy: PythonStrategy, subscribed: set[str], code: int) -> None:
        """Run the callbacks of a wake-up other than a plain bar or trade.

        Rejected orders; else, in the loop's order: the new liquidation, ADL/clawback,
        funding and fill records (:meth:`_record_callbacks`), the margin call, then the bar
        or trade.
        """
        a = self.account[0]
        reason = code & WAKE_REASON_MASK
        if reason == WakeReason.ORDER_UPDATE:
            for r in range(code >> WAKE_REF_SHIFT, int(a["n_orders_seen"])):
                if self.orders[r]["status"] == OrderStatus.REJECTED:
                    o = self.orders[r]
                    strategy.on_order_rejected(self._contexts[int(o["instrument"])], o)
            return
        self._record_callbacks(strategy, subscribed)
        i = int(a["wake_instrument"])
        ictx = self._contexts[i]
        if reason & WakeReason.MARGIN_CALL and "on_margin_call" in subscribed:
            summary = self.position_summary(i)
            strategy.on_margin_call(ictx, {"instrument": i, **summary})
        if reason & WakeReason.BAR and "on_bar" in subscribed:
            strategy.on_bar(ictx, self._bar_view.move(code >> WAKE_REF_SHIFT))
        if reason & WakeReason.TRADE and "on_trade" in subscribed:
            strategy.on_trade(ictx, self._trade_view.move(code >> WAKE_REF_SHIFT))

    def _record_callbacks(self, strategy: PythonStrategy, subscribed: set[str]) -> None:
        """Hand the records written since the last wake-up to their callbacks.

        Liquidations, ADL/clawback records, funding payments, then fills (which also place or
        cancel the exits attached to entries, :class:`~backtester.protection.Protections`);
        each kind is marked seen whether or not the strategy listens to it.
        """
        a = self.account[0]
        contexts = self._contexts
        liquidations = self.buffers["liquidations"]
        if "on_liquidation" in subscribed:
            for k in range(int(a["n_liquidations_seen"]), int(a["n_liquidations"])):
                strategy.on_liquidation(
                    contexts[int(liquidations[k]["instrument"])], liquidations[k]
                )
        a["n_liquidations_seen"] = a["n_liquidations"]
        adl = self.buffers["adl"]
        if "on_adl" in subscribed:
            for k in range(int(a["n_adl_seen"]), int(a["n_adl"])):
                # an account-level clawback (instrument −1) goes to the first instrument's context
                strategy.on_adl(contexts[max(0, int(adl[k]["instrument"]))], adl[k])
        a["n_adl_seen"] = a["n_adl"]
        payments = self.buffers["funding_payments"]
        if "on_funding" in subscribed:
            for k in range(int(a["n_funding_seen"]), int(a["n_funding_payments"])):
                strategy.on_funding(contexts[int(payments[k]["instrument"])], payments[k])
        a["n_funding_seen"] = a["n_funding_payments"]
        fills = self.buffers["fills"]
        first_fill = int(a["n_fills_seen"])
        if "on_fill" in subscribed:
            for k in range(int(a["n_fills_seen"]), int(a["n_fills"])):
                if fills[k]["order_id"] >= 0:
                    strategy.on_fill(contexts[int(fills[k]["instrument"])], fills[k])
        if self.protections.active:  # place / cancel the exits attached to entries
            self.protections.after_fills(first_fill, int(a["n_fills"]))
        a["n_fills_seen"] = a["n_fills"]

    def records(self) -> dict[str, npt.NDArray[np.void]]:
        """Every record buffer trimmed to its rows, by Result record kind."""
        a = self.account[0]
        # trimmed views, not copies: the run is over and nothing writes these buffers again
        out = {"orders": self.orders[: int(a["n_orders"])]}
        for name, counter in zip(_BUFFERS, _COUNTERS, strict=True):
            out[name] = self.buffers[name][: int(a[counter])]
        return out

    def release(self) -> None:
        """Drop the run's references to its buffers and contexts once its records are taken.

        The contexts refer back to the run, so without this the buffers would live until the
        cyclic garbage collector runs, and their memory could not return to the record-buffer
        pool (:mod:`backtester.engine.buffers`) in time for the next run of a sweep.
        """
        self.buffers = {}
        self._contexts = []
        self._args = self._gen_args = self._gen = self._quiet = None


__all__ = ["Run"]
