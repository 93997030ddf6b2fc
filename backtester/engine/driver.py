"""The Python driver of one run: owns the state and buffers, calls the strategy at wake-ups.

:class:`Run` concatenates the instruments' streams, builds the state arrays, and alternates
between :func:`~backtester.engine.loop_nb.run_until_nb` (numba, many events) and the strategy's
callbacks (Python, one wake-up). Orders the strategy places are written as ORDER_DTYPE rows and
validated by :func:`~backtester.engine.orders_nb.accept_orders_nb` after the callback. When a
record buffer is full the loop returns BUFFER_FULL and the driver doubles it (STYLE.md C6).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from backtester import dtypes
from backtester.checks import check_finite, check_positive
from backtester.data.market import MarketData
from backtester.engine.account_nb import (
    M_RATIO,
    M_UPL,
    N_METRICS,
    available_nb,
    cross_metrics_nb,
    isolated_buffer_nb,
    isolated_liquidation_price_nb,
)
from backtester.engine.loop_nb import record_equity_nb, run_until_nb
from backtester.engine.orders_nb import accept_orders_nb
from backtester.enums import (
    MarginMode,
    OrderStatus,
    Status,
    TimeInForce,
    WakeReason,
)
from backtester.strategy import Context, Strategy
from backtester.swap.settlement_nb import next_settlement_ns_nb

_WAKE_BITS = {
    "on_bar": WakeReason.BAR,
    "on_trade": WakeReason.TRADE,
    "on_fill": WakeReason.FILL,
    "on_funding": WakeReason.FUNDING,
    "on_liquidation": WakeReason.LIQUIDATION,
    "on_margin_call": WakeReason.MARGIN_CALL,
}
_BUFFERS = ("fills", "funding_payments", "liquidations", "settlements", "ledger", "equity")
_COUNTERS = (
    "n_fills",
    "n_funding_payments",
    "n_liquidations",
    "n_settlements",
    "n_ledger",
    "n_equity",
)
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}


def _concat(arrays: list[npt.NDArray[np.void]], dtype: np.dtype) -> npt.NDArray[np.void]:
    if not arrays:
        return np.zeros(0, dtype=dtype)
    return np.ascontiguousarray(np.concatenate(arrays)) if len(arrays) > 1 else arrays[0]


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
        Taker slippage fraction per instrument.
    latency_ns, bar_path, queue_model, margin_call_buffer_ratio, equity_interval_ns
        Engine options (see :func:`backtester.engine.backtest.backtest`).
    """

    def __init__(
        self,
        data: list[MarketData],
        params: npt.NDArray[np.void],
        tiers: npt.NDArray[np.void],
        initial_balance: float,
        leverage: list[float],
        margin_modes: list[int],
        slippage_rates: list[float],
        *,
        latency_ns: int,
        bar_path: int,
        queue_model: bool,
        margin_call_buffer_ratio: float,
        equity_interval_ns: int,
    ) -> None:
        self.data = data
        self.n_instruments = len(data)
        self.params = params
        self.tiers = tiers
        self.slippage = np.asarray(slippage_rates, dtype=np.float64)
        self.positions = np.zeros(self.n_instruments, dtype=dtypes.POSITION_STATE_DTYPE)
        streams: dict[str, list[npt.NDArray[np.void]]] = {
            "trades": [],
            "bars": [],
            "index": [],
            "mark": [],
            "funding": [],
        }
        cursor_names = {
            "trades": "trade",
            "bars": "bar",
            "index": "index",
            "mark": "mark",
            "funding": "funding",
        }
        offsets = dict.fromkeys(streams, 0)
        start_ns = min(d.start_ns for d in data)
        for i, d in enumerate(data):
            s = self.positions[i]
            for name in streams:
                array = getattr(d, name)
                streams[name].append(array)
                short = cursor_names[name]
                s[f"c_{short}"] = offsets[name]
                s[f"e_{short}"] = offsets[name] + len(array)
                offsets[name] += len(array)
            s["bar_interval_ns"] = d.bar_interval_ns
            s["fill_on_trades"] = len(d.trades) > 0
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
        self.trades = _concat(streams["trades"], dtypes.TRADE_DTYPE)
        self.bars = _concat(streams["bars"], dtypes.BAR_DTYPE)
        self.index = _concat(streams["index"], dtypes.PRICE_DTYPE)
        self.mark = _concat(streams["mark"], dtypes.PRICE_DTYPE)
        self.funding = _concat(streams["funding"], dtypes.FUNDING_RATE_DTYPE)
        self._bar_starts = [int(self.positions[i]["c_bar"]) for i in range(self.n_instruments)]
        self.account = np.zeros(1, dtype=dtypes.ACCOUNT_STATE_DTYPE)
        a = self.account[0]
        a["balance_settle"] = initial_balance
        a["latency_ns"] = latency_ns
        a["bar_path"] = bar_path
        a["queue_model"] = queue_model
        a["margin_call_buffer_ratio"] = margin_call_buffer_ratio
        a["equity_interval_ns"] = equity_interval_ns
        a["next_equity_ns"] = start_ns
        order_capacity = 64
        self.orders = np.zeros(order_capacity, dtype=dtypes.ORDER_DTYPE)
        self.work = np.zeros(order_capacity, dtype=dtypes.ORDER_WORK_DTYPE)
        self.active = np.zeros(order_capacity, dtype=np.int64)
        n_bars = len(self.bars) + len(self.trades) // 100
        self.buffers = {
            "fills": np.zeros(1024, dtype=dtypes.FILL_DTYPE),
            "funding_payments": np.zeros(
                max(64, len(self.funding) + 8), dtypes.FUNDING_PAYMENT_DTYPE
            ),
            "liquidations": np.zeros(64, dtype=dtypes.LIQUIDATION_DTYPE),
            "settlements": np.zeros(64, dtype=dtypes.SETTLEMENT_DTYPE),
            "ledger": np.zeros(4096, dtype=dtypes.LEDGER_DTYPE),
            "equity": np.zeros(max(1024, n_bars + 16), dtype=dtypes.EQUITY_DTYPE),
        }
        self._metrics = np.zeros(N_METRICS)
        self._scratch = np.zeros(N_METRICS)
        self._dirty = False
        self._wants_rejected = False
        self._args: tuple[Any, ...] | None = None
        self._entry: Any = None
        self._caps = np.zeros(len(_BUFFERS), dtype=np.int64)

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
                grown = np.zeros(2 * len(buffer) + 64, dtype=buffer.dtype)
                grown[: len(buffer)] = buffer
                self.buffers[name] = grown
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
    def place(
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
    ) -> int:
        """Write a new ORDER_DTYPE row (validated after the callback); returns its order id."""
        if time_in_force not in _TIF:
            raise ValueError(
                f"time_in_force: expected 'GTC', 'IOC' or 'FOK', got {time_in_force!r}"
            )
        a = self.account[0]
        row = int(a["n_orders"])
        if row >= len(self.orders):
            self._grow_orders()
        o = self.orders[row]
        o["order_id"] = row
        o["instrument"] = instrument
        o["ts_created_ns"] = a["ts_ns"]
        o["ts_updated_ns"] = a["ts_ns"]
        o["order_type"] = order_type
        o["side"] = side
        o["time_in_force"] = _TIF[time_in_force]
        o["reduce_only"] = reduce_only
        o["post_only"] = post_only
        o["status"] = OrderStatus.NEW
        o["price"] = math.nan if price is None else check_finite(price, "price")
        o["trigger_price"] = math.nan if trigger is None else check_finite(trigger, "trigger")
        o["qty_contracts"] = qty
        o["filled_contracts"] = 0.0
        o["average_fill_price"] = math.nan
        o["tag"] = tag
        a["n_orders"] = row + 1
        a["next_order_id"] = row + 1
        self._dirty = True
        return row

    def _working_position(self, order_id: int) -> int:
        a = self.account[0]
        for k in range(int(a["n_active"])):
            if int(self.active[k]) == order_id:
                return k
        return -1

    def cancel(self, order_id: int) -> bool:
        """Cancel a working (or just placed) order."""
        a = self.account[0]
        if not 0 <= order_id < int(a["n_orders"]):
            return False
        o = self.orders[order_id]
        if order_id >= int(a["n_orders_seen"]):
            o["status"] = OrderStatus.CANCELLED
            return True
        k = self._working_position(order_id)
        if k < 0:
            return False
        n = int(a["n_active"])
        self.active[k : n - 1] = self.active[k + 1 : n]
        a["n_active"] = n - 1
        o["status"] = OrderStatus.CANCELLED
        o["ts_updated_ns"] = a["ts_ns"]
        return True

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
        )

    def set_leverage(self, instrument: int, leverage: float) -> None:
        """Change leverage while flat (ValueError otherwise or above the tier's maximum)."""
        leverage = check_positive(leverage, "leverage")
        s = self.positions[instrument]
        if s["contracts"] != 0.0:
            raise ValueError("set_leverage: only while the position is flat (close it first)")
        max_leverage = float(self.params[instrument]["max_leverage"])
        if not 1.0 <= leverage <= max_leverage:
            raise ValueError(
                f"leverage: expected a value in [1, {max_leverage:g}], got {leverage!r}"
            )
        s["leverage"] = leverage

    def transfer_margin(self, instrument: int, amount_settle: float) -> None:
        """Add (> 0) or remove (< 0) isolated position margin."""
        s = self.positions[instrument]
        if s["margin_mode"] != MarginMode.ISOLATED or s["contracts"] == 0.0:
            raise ValueError("add_margin/remove_margin: needs an open isolated position")
        if amount_settle > 0 and amount_settle > self.account_summary()["available"]:
            raise ValueError(f"amount_settle: {amount_settle!r} exceeds the available balance")
        if amount_settle < 0:
            isolated_buffer_nb(self.positions, self.params, self.tiers, instrument, self._metrics)
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

    def open_orders(self, instrument: int) -> npt.NDArray[np.void]:
        """Copy of the working orders of ``instrument``."""
        a = self.account[0]
        rows = self.active[: int(a["n_active"])]
        orders = self.orders[rows]
        return orders[orders["instrument"] == instrument].copy()

    # ------------------------------------------------------------------ views
    def history(self, field: str, instrument: int) -> npt.NDArray[np.float64]:
        """Bar field values seen so far (read-only view)."""
        start = self._bar_starts[instrument]
        end = int(self.positions[instrument]["c_bar"])
        view = self.bars[field][start:end]
        view.flags.writeable = False
        return view

    def account_summary(self) -> dict[str, float]:
        """Balance, equity and available balance now."""
        available = available_nb(
            self.account, self.positions, self.params, self.tiers, self._scratch
        )
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
        m = self._metrics
        if s["margin_mode"] == MarginMode.ISOLATED:
            isolated_buffer_nb(self.positions, self.params, self.tiers, instrument, m)
            upl, ratio = float(m[M_UPL]), float(m[M_RATIO])
            liq = float(
                isolated_liquidation_price_nb(self.positions, self.params, self.tiers, instrument)
            )
        else:
            isolated_buffer_nb(self.positions, self.params, self.tiers, instrument, m)
            upl = float(m[M_UPL])
            cross_metrics_nb(
                self.account, self.positions, self.params, self.tiers, m, self._scratch
            )
            ratio = float(m[M_RATIO])
            liq = math.nan
        return {"unrealised_pnl": upl, "margin_ratio": ratio, "liquidation_price": liq}

    # ------------------------------------------------------------------ the run
    def _accept(self, strategy: Strategy, ctx: Context) -> None:
        """Validate orders placed in a callback; call on_order_rejected for refused ones."""
        wants = self._wants_rejected
        self._dirty = False
        for _ in range(10_000):
            a = self.account[0]
            first, last = int(a["n_orders_seen"]), int(a["n_orders"])
            if first == last:
                return
            if int(a["n_active"]) + (last - first) > len(self.active):
                self._grow_orders()
            # rows cancelled before validation stay cancelled: validate the rest only
            cancelled = [
                r for r in range(first, last) if self.orders[r]["status"] == OrderStatus.CANCELLED
            ]
            accept_orders_nb(
                self.account,
                self.positions,
                self.params,
                self.tiers,
                self.orders,
                self.work,
                self.active,
                a["ts_ns"],
                self._scratch,
            )
            for r in cancelled:
                self.cancel_accepted(r)
            if wants:
                for r in range(first, last):
                    if self.orders[r]["status"] == OrderStatus.REJECTED:
                        strategy.on_order_rejected(ctx, self.orders[r])

    def cancel_accepted(self, row: int) -> None:
        """Re-cancel an order that was cancelled before validation."""
        k = self._working_position(row)
        if k >= 0:
            a = self.account[0]
            n = int(a["n_active"])
            self.active[k : n - 1] = self.active[k + 1 : n]
            a["n_active"] = n - 1
        if self.orders[row]["status"] != OrderStatus.REJECTED:
            self.orders[row]["status"] = OrderStatus.CANCELLED

    def _loop_arguments(self) -> tuple[Any, ...]:
        return (
            self.trades, self.bars, self.index, self.mark, self.funding, self.params,
            self.tiers, self.slippage, self.account, self.positions, self.orders, self.work,
            self.active, self.buffers["fills"], self.buffers["funding_payments"],
            self.buffers["liquidations"], self.buffers["settlements"], self.buffers["ledger"],
            self.buffers["equity"], self._capacities(),
        )  # fmt: skip

    def _call_loop(self, args: tuple[Any, ...]) -> int:
        """Call run_until_nb; after the first call, through its compiled entry point.

        Resolving the argument types of ~15 structured arrays costs tens of µs per call in the
        dispatcher; the compiled entry point skips that (the types never change within a run:
        grown buffers keep their dtype and layout).
        """
        entry = self._entry
        if entry is not None:
            return int(entry(*args))
        status = int(run_until_nb(*args))
        if len(run_until_nb.signatures) >= 1:
            for signature in run_until_nb.signatures:
                candidate = run_until_nb.overloads[signature]
                if tuple(signature) == tuple(run_until_nb.typeof_pyval(a) for a in args):
                    self._entry = candidate.entry_point
        return status

    def run(self, strategy: Strategy) -> None:
        """Replay everything, calling the strategy at its wake-ups."""
        subscribed = strategy.subscribed()
        self._wants_rejected = "on_order_rejected" in subscribed
        mask = 0
        for name, bit in _WAKE_BITS.items():
            if name in subscribed:
                mask |= int(bit)
        self.account[0]["wake_mask"] = mask
        self._bar_only = not (subscribed & {"on_liquidation", "on_funding", "on_fill"})
        ctx = Context(self)
        seen = {"fills": 0, "funding_payments": 0, "liquidations": 0}
        strategy.on_start(ctx)
        self._accept(strategy, ctx)
        while True:
            if self._args is None:
                self._args = self._loop_arguments()
            status = self._call_loop(self._args)
            if status == Status.BUFFER_FULL:
                self._grow_buffers()
                continue
            if status == Status.END_OF_DATA:
                break
            self._dispatch(strategy, ctx, subscribed, seen)
            if self._dirty:
                self._accept(strategy, ctx)
        strategy.on_stop(ctx)
        self._accept(strategy, ctx)
        self._grow_buffers()
        a = self.account[0]
        record_equity_nb(
            self.account,
            self.positions,
            self.params,
            self.tiers,
            self.buffers["equity"],
            a["ts_ns"],
            self._metrics,
            self._scratch,
        )

    def _dispatch(
        self, strategy: Strategy, ctx: Context, subscribed: set[str], seen: dict[str, int]
    ) -> None:
        a = self.account[0]
        reason = int(a["wake_reason"])
        i = int(a["wake_instrument"])
        ictx = ctx if i == 0 else Context(self, i)
        if reason == WakeReason.BAR and self._bar_only:
            strategy.on_bar(ictx, self.bars[int(a["wake_ref"])])
            return
        liquidations = self.buffers["liquidations"]
        if "on_liquidation" in subscribed:
            for k in range(seen["liquidations"], int(a["n_liquidations"])):
                strategy.on_liquidation(ctx.on(int(liquidations[k]["instrument"])), liquidations[k])
        seen["liquidations"] = int(a["n_liquidations"])
        payments = self.buffers["funding_payments"]
        if "on_funding" in subscribed:
            for k in range(seen["funding_payments"], int(a["n_funding_payments"])):
                strategy.on_funding(ictx, payments[k])
        seen["funding_payments"] = int(a["n_funding_payments"])
        fills = self.buffers["fills"]
        if "on_fill" in subscribed:
            for k in range(seen["fills"], int(a["n_fills"])):
                if fills[k]["order_id"] >= 0:
                    strategy.on_fill(ctx.on(int(fills[k]["instrument"])), fills[k])
        seen["fills"] = int(a["n_fills"])
        if reason & WakeReason.MARGIN_CALL and "on_margin_call" in subscribed:
            summary = self.position_summary(i)
            strategy.on_margin_call(ictx, {"instrument": i, **summary})
        if reason & WakeReason.BAR and "on_bar" in subscribed:
            strategy.on_bar(ictx, self.bars[int(a["wake_ref"])])
        if reason & WakeReason.TRADE and "on_trade" in subscribed:
            strategy.on_trade(ictx, self.trades[int(a["wake_ref"])])

    def records(self) -> dict[str, npt.NDArray[np.void]]:
        """Trimmed copies of every record buffer, by Result record kind."""
        a = self.account[0]
        out = {"orders": self.orders[: int(a["n_orders"])].copy()}
        for name, counter in zip(_BUFFERS, _COUNTERS, strict=True):
            out[name] = self.buffers[name][: int(a[counter])].copy()
        return out


__all__ = ["Run"]
