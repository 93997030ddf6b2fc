"""The strategy API: a :class:`Strategy` subclass and the :class:`Context` it acts through.

Parameters are class attributes, behaviour is callbacks; the context reads the account and
places orders.

A strategy only pays for the events it listens to: the replay loop hands control back to Python
for a callback only when the subclass defines it (a strategy without ``on_trade`` is never woken
per trade). Example::

    class SmaCross(Strategy):
        fast = 10
        slow = 30

        def on_bar(self, ctx, bar):
            if len(ctx.closes) < self.slow:
                return
            fast, slow = ctx.sma(self.fast), ctx.sma(self.slow)
            if fast > slow and ctx.position <= 0:
                ctx.market(1 - ctx.position)     # buy: close a short and go long 1 contract
            elif fast < slow and ctx.position >= 0:
                ctx.market(-1 - ctx.position)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from backtester.callbacks import CALLBACKS
from backtester.checks import check_finite, check_positive
from backtester.enums import ContractKind, MarginMode, OrderType, Side
from backtester.parameters import class_parameters, set_parameters
from backtester.sizing import contracts_for, round_price

if TYPE_CHECKING:
    from backtester.engine.driver import Run
    from backtester.engine.rows import RowView

__all__ = ["Context", "Strategy"]


class Strategy:
    """Base class of a strategy: parameters are class attributes, behaviour is callbacks.

    Override only the callbacks you need; each receives the :class:`Context` ``ctx`` first.

    ``on_start(ctx)``
        Once, before the first event (no prices are known yet).
    ``on_bar(ctx, bar)``
        At each bar close. ``bar`` is a :class:`~backtester.engine.rows.RowView` of the
        BAR_DTYPE row: ``bar["close"]``, ``bar["ts_ns"]`` (its open time), ...; it moves on
        after the callback (keep values or ``bar.record()``, not the view). On a bar where
        nothing but the bar can happen (no working order, the mark far from liquidation, no
        funding inside) ``ctx`` is a light stand-in, ``engine.driver.QuietContext``, that
        answers ``ctx.position`` (and ``ctx.sma`` / ``ctx.ema`` of the close) without the
        engine and anything else as ``ctx`` itself; only ``isinstance(ctx, Context)`` differs.
    ``on_trade(ctx, trade)``
        At each trade tick (a RowView of the TRADE_DTYPE row). One Python call per tick.
    ``on_funding(ctx, payment)``
        After a funding payment on an open position (a FUNDING_PAYMENT_DTYPE row).
    ``on_fill(ctx, fill)``
        After each fill of one of the strategy's orders (a FILL_DTYPE row).
    ``on_margin_call(ctx, info)``
        Once per episode when the liquidation buffer (margin balance ÷ the margin at which the
        venue liquidates) drops below the run's ``margin_call_buffer_ratio``; ``info`` is a dict
        with ``instrument``, ``margin_ratio``, ``liquidation_price``.
    ``on_liquidation(ctx, liquidation)``
        After a forced (partial) liquidation (a LIQUIDATION_DTYPE row).
    ``on_adl(ctx, record)``
        After an auto-deleveraging close or a clawback of the strategy's position (an
        ADL_DTYPE row; scenario events of ``MarketData.deleverage``).
    ``on_order_rejected(ctx, order)``
        When the exchange refuses an order (an ORDER_DTYPE row with its ``reject_reason``).
    ``on_stop(ctx)``
        Once, after the last event.

    Parameters
    ----------
    **params
        Overrides of the class-attribute parameters; unknown names raise ``ValueError`` with a
        "did you mean" suggestion.
    """

    def __init__(self, **params: object) -> None:
        set_parameters(self, params)

    @classmethod
    def parameters(cls) -> dict[str, object]:
        """Parameter names and default values (public non-callable class attributes)."""
        return class_parameters(cls, Strategy)

    @classmethod
    def subscribed(cls) -> set[str]:
        """Names of the callbacks this class overrides."""
        return {name for name in CALLBACKS if getattr(cls, name) is not getattr(Strategy, name)}

    def on_start(self, ctx: Context) -> None:
        """Run once before the first event."""

    def on_bar(self, ctx: Context, bar: RowView) -> None:
        """Run at each bar close."""

    def on_trade(self, ctx: Context, trade: RowView) -> None:
        """Run at each trade tick (only if overridden)."""

    def on_funding(self, ctx: Context, payment: np.void) -> None:
        """Run after each funding payment."""

    def on_fill(self, ctx: Context, fill: np.void) -> None:
        """Run after each fill of a strategy order."""

    def on_margin_call(self, ctx: Context, info: dict[str, float]) -> None:
        """Run when the position approaches liquidation (once per episode)."""

    def on_liquidation(self, ctx: Context, liquidation: np.void) -> None:
        """Run after a forced liquidation."""

    def on_adl(self, ctx: Context, record: np.void) -> None:
        """Run after an ADL close or a clawback."""

    def on_order_rejected(self, ctx: Context, order: np.void) -> None:
        """Run when an order is rejected."""

    def on_stop(self, ctx: Context) -> None:
        """Run once after the last event."""


def _side_of(contracts: float) -> tuple[int, float]:
    contracts = check_finite(contracts, "contracts")
    if contracts == 0:
        raise ValueError("contracts: expected a non-zero signed size (> 0 buys, < 0 sells), got 0")
    return (Side.BUY if contracts > 0 else Side.SELL), abs(contracts)


class Context:
    """What a strategy sees and does: prices, position, account, history and orders.

    Properties refer to one instrument (the first by default; ``ctx.on(i)`` gives the context of
    instrument ``i``). Sizes are in contracts (signed: > 0 long/buy, < 0 short/sell), prices in
    quote per base, money in the settle currency.
    """

    def __init__(self, run: Run, instrument: int = 0) -> None:
        self._run = run
        self._i = instrument
        # field views of the state arrays (never reallocated during a run), as memoryviews
        # (``ndarray.data``):
        # ``view[i]`` gives a Python float in ~30 ns (numpy's ``.item(i)`` ~80 ns), which
        # matters at one callback per bar or tick
        self._contracts = run.positions["contracts"].data
        self._mark = run.positions["mark_price"].data
        self._last = run.positions["last_price"].data
        self._account = run.account
        self._indicators = run.indicators
        self._sma_close = run.indicators.sma_close[instrument]
        self._ema_close = run.indicators.ema_close[instrument]
        # the bar cursors through a memoryview: an item read costs less than ndarray.item
        self._c_bar = run.positions["c_bar"].data

    def on(self, instrument: int) -> Context:
        """Return the context of instrument number ``instrument`` (order of the ``data`` list)."""
        if not 0 <= instrument < self._run.n_instruments:
            raise ValueError(
                f"instrument: expected 0..{self._run.n_instruments - 1}, got {instrument!r}"
            )
        context: Context = self._run.context(instrument)
        return context

    # ------------------------------------------------------------------ prices and time
    @property
    def time_ns(self) -> int:
        """Timestamp of the event just processed (int ns UTC)."""
        return int(self._account[0]["ts_ns"])

    @property
    def mark_price(self) -> float:
        """Current mark price (the price liquidation is checked on)."""
        return self._mark[self._i]

    @property
    def index_price(self) -> float:
        """Last index price (NaN when the data has no index)."""
        return float(self._run.positions[self._i]["index_price"])

    @property
    def last_price(self) -> float:
        """Last traded price (trade tick or bar close)."""
        return self._last[self._i]

    @property
    def funding_rate(self) -> float:
        """Rate of the last funding event seen (NaN before the first)."""
        return float(self._run.positions[self._i]["funding_rate"])

    @property
    def closes(self) -> npt.NDArray[np.float64]:
        """Closes of the bars seen so far (a read-only numpy view, oldest first)."""
        return self._run.history("close", self._i)

    def history(self, field: str = "close") -> npt.NDArray[np.float64]:
        """Return a bar field (``open``, ``high``, ``low``, ``close``, ``volume_base``) so far."""
        return self._run.history(field, self._i)

    def plot(self, name: str, value: float) -> None:
        """Record ``value`` of the indicator ``name`` at the current time for the report.

        Every registered series is drawn on the price chart of the HTML report (line, same
        price axis) and kept in ``result.plots[name]`` as (ts_ns, values).
        """
        self._run.plot(str(name), int(self._account[0]["ts_ns"]), float(value))

    def sma(self, window: int, field: str = "close") -> float:
        """Return the simple moving average of the last ``window`` values of a bar field.

        NaN while fewer; O(1) per bar (running sum, see :mod:`backtester.indicators`).
        """
        # fast path of the close: one dict look-up, one cursor read, one array read (the
        # values are indexed by the cursor, see Indicators._build); the rest, the first call
        # of a chunk and the warm-up (NaN) in Indicators.sma
        if field == "close":
            values = self._sma_close.get(window)  # emptied when a new chunk loads
            if values is not None:
                value = values[self._c_bar[self._i]]
                if value == value:
                    return value
        return self._indicators.sma(self._i, window, field)

    def ema(self, span: int, field: str = "close") -> float:
        """Return the exponential moving average of a bar field, alpha = 2/(span+1).

        Seeded with the first value: e[n] = e[n-1] + alpha·(x[n] - e[n-1]); O(1) per bar (see
        :mod:`backtester.indicators`).
        """
        if field == "close":
            values = self._ema_close.get(span)
            if values is not None:
                return values[self._c_bar[self._i]]
        return self._indicators.ema(self._i, span, field)

    # ------------------------------------------------------------------ the contract
    @property
    def tick_size(self) -> float:
        """Price increment of the contract (quote); prices off this grid are rejected."""
        return float(self._run.params[self._i]["tick_size_quote"])

    @property
    def lot_size(self) -> float:
        """Size increment of an order (contracts); other sizes are rejected."""
        return float(self._run.params[self._i]["lot_size_contracts"])

    @property
    def min_size(self) -> float:
        """Smallest order size (contracts)."""
        return float(self._run.params[self._i]["min_size_contracts"])

    @property
    def contract_value(self) -> float:
        """Face value of one contract: base coin for linear, quote for inverse.

        OKX BTC-USDT-SWAP 0.01 BTC, OKX BTC-USD-SWAP 100 USD.
        """
        return float(self._run.params[self._i]["face_value"])

    @property
    def contract_kind(self) -> str:
        """``"linear"`` (value and PnL in quote) or ``"inverse"`` (in coin)."""
        return ContractKind(int(self._run.params[self._i]["contract_kind"])).name.lower()

    def round_price(self, price: float, side: str | None = None) -> float:
        """Return ``price`` on the tick grid.

        Nearest, or the passive side for an order's ``side`` (``"buy"`` rounds down,
        ``"sell"`` up), e.g. 49,873.27 -> 49,873.3 on a 0.1 tick.
        """
        direction = {None: 0, "buy": -1, "sell": 1}.get(side)
        if direction is None:
            raise ValueError(f"side: expected 'buy', 'sell' or None, got {side!r}")
        return round_price(check_finite(price, "price"), self.tick_size, direction)

    def size(
        self,
        *,
        notional: float | None = None,
        equity_fraction: float | None = None,
        base: float | None = None,
        price: float | None = None,
    ) -> float:
        """Signed contracts for one money amount, rounded toward zero to the lot.

        ``notional``: quote currency (USDT, USD); ``base``: coin (BTC); ``equity_fraction``:
        a position value of that fraction of :attr:`equity`. Converted at ``price`` (default
        the last price) with the contract value, linear or inverse (formulas in
        :mod:`backtester.sizing`). ValueError when the amount is less than one lot.
        """
        return self._order_size(None, notional, equity_fraction, base, price)

    def _order_size(
        self,
        contracts: float | None,
        notional: float | None,
        equity_fraction: float | None,
        base: float | None,
        price: float | None,
    ) -> float:
        """Return the order size in contracts from exactly one of the four ways of giving it."""
        if contracts is not None and notional is None and equity_fraction is None and base is None:
            return contracts  # the common case, without building the dict below
        given = {
            name: value
            for name, value in (
                ("contracts", contracts), ("notional", notional),
                ("equity_fraction", equity_fraction), ("base", base),
            )
            if value is not None
        }  # fmt: skip
        if len(given) != 1:
            raise ValueError(
                "order size: give exactly one of contracts, notional=, equity_fraction=, base=; "
                f"got {', '.join(given) or 'none'}"
            )
        if contracts is not None:
            return contracts
        ((name, amount),) = given.items()
        amount = check_finite(amount, name)
        if price is None or not math.isfinite(price):
            price = self.last_price
        if not math.isfinite(price):
            raise ValueError(
                f"{name}: no price yet to convert {amount!r} to contracts (before the first "
                "bar or trade); give contracts, or a limit price"
            )
        p = self._run.params[self._i]
        equity = self.equity if equity_fraction is not None else math.nan
        values = [math.nan, math.nan, math.nan]
        values[("notional", "base", "equity_fraction").index(name)] = amount
        args = (int(p["contract_kind"]), float(p["face_value"]))
        qty = contracts_for(*args, float(p["lot_size_contracts"]), price, equity, *values)
        if qty == 0.0:
            raw = contracts_for(*args, 0.0, price, equity, *values)
            raise ValueError(
                f"{name}={amount:g}: {raw:.6g} contracts at {price:g}, less than one lot "
                f"({float(p['lot_size_contracts']):g} contracts)"
            )
        return qty

    # ------------------------------------------------------------------ position and account
    @property
    def position(self) -> float:
        """Signed position in contracts."""
        return self._contracts[self._i]

    @property
    def entry_price(self) -> float:
        """Average entry price of the open position (NaN when flat)."""
        return float(self._run.positions[self._i]["entry_price"])

    @property
    def leverage(self) -> float:
        """Leverage of this instrument."""
        return float(self._run.positions[self._i]["leverage"])

    @property
    def balance(self) -> float:
        """Wallet balance (realised), settle currency."""
        return float(self._run.account[0]["balance_settle"])

    @property
    def equity(self) -> float:
        """Balance + unrealised PnL at the mark."""
        return self._run.account_summary()["equity"]

    @property
    def available(self) -> float:
        """Balance free for new margin (after isolated margins, cross margin, open orders)."""
        return self._run.account_summary()["available"]

    @property
    def unrealised_pnl(self) -> float:
        """Unrealised PnL of this instrument's position at the mark."""
        return self._run.position_summary(self._i)["unrealised_pnl"]

    @property
    def margin_ratio(self) -> float:
        """The venue-defined margin ratio of this position (see LiquidationRule)."""
        return self._run.position_summary(self._i)["margin_ratio"]

    @property
    def liquidation_price(self) -> float:
        """Isolated liquidation price of the position (NaN when flat or cross)."""
        return self._run.position_summary(self._i)["liquidation_price"]

    @property
    def position_margin(self) -> float:
        """Isolated position margin (0 for cross)."""
        return float(self._run.positions[self._i]["margin_settle"])

    def open_orders(self) -> npt.NDArray[np.void]:
        """Working orders of this instrument (a copy of their ORDER_DTYPE rows)."""
        return self._run.open_orders(self._i)

    # ------------------------------------------------------------------ orders
    def market(  # noqa: PLR0913  (the user API: one documented keyword per size and exit option)
        self,
        contracts: float | None = None,
        *,
        notional: float | None = None,
        equity_fraction: float | None = None,
        base: float | None = None,
        reduce_only: bool = False,
        tag: int = 0,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        stop_loss_distance: float | None = None,
        take_profit_distance: float | None = None,
        stop_loss_fraction: float | None = None,
        take_profit_fraction: float | None = None,
        trailing_stop_distance: float | None = None,
        trailing_stop_fraction: float | None = None,
    ) -> int:
        """Place a market order; return its order id.

        The size is ``contracts`` (signed), or a money size: ``notional=`` (quote), ``base=``
        (coin) or ``equity_fraction=`` (signed; see :meth:`size`), converted at the last price
        and rounded toward zero to the lot.

        ``stop_loss`` / ``take_profit`` (prices) or ``stop_loss_distance`` /
        ``take_profit_distance`` (quote, from the fill price) or ``stop_loss_fraction`` /
        ``take_profit_fraction`` (of the fill price) attach reduce-only exits placed when the
        entry fills, one cancelling the other (:mod:`backtester.protection`). A trailing stop
        instead of the fixed one: ``trailing_stop_distance`` (quote) or
        ``trailing_stop_fraction``, trailing the best price since the fill
        (:meth:`trailing_stop`).
        """
        contracts = self._order_size(contracts, notional, equity_fraction, base, None)
        side, qty = _side_of(contracts)
        order_id = self._run.place(
            self._i, OrderType.MARKET, side, qty, reduce_only=reduce_only, tag=tag
        )
        self._protect(
            order_id, stop_loss, take_profit, stop_loss_distance, take_profit_distance,
            stop_loss_fraction, take_profit_fraction, trailing_stop_distance,
            trailing_stop_fraction,
        )  # fmt: skip
        return order_id

    def _protect(
        self,
        order_id: int,
        stop_loss: float | None,
        take_profit: float | None,
        stop_loss_distance: float | None,
        take_profit_distance: float | None,
        stop_loss_fraction: float | None = None,
        take_profit_fraction: float | None = None,
        trailing_stop_distance: float | None = None,
        trailing_stop_fraction: float | None = None,
    ) -> None:
        if (
            stop_loss is None and take_profit is None and stop_loss_distance is None
            and take_profit_distance is None and stop_loss_fraction is None
            and take_profit_fraction is None and trailing_stop_distance is None
            and trailing_stop_fraction is None
        ):  # fmt: skip
            return  # no exits attached (the common case: no tuple, no generator)
        self._run.protections.add(
            order_id,
            self._i,
            stop_loss=stop_loss,
            take_profit=take_profit,
            stop_loss_distance=stop_loss_distance,
            take_profit_distance=take_profit_distance,
            tag=int(self._run.orders[order_id]["tag"]),
            stop_loss_fraction=stop_loss_fraction,
            take_profit_fraction=take_profit_fraction,
            trailing_stop_distance=trailing_stop_distance,
            trailing_stop_fraction=trailing_stop_fraction,
        )

    def limit(  # noqa: PLR0913  (the user API: one documented keyword per size and exit option)
        self,
        contracts: float | None,
        price: float,
        *,
        notional: float | None = None,
        equity_fraction: float | None = None,
        base: float | None = None,
        post_only: bool = False,
        time_in_force: str = "GTC",
        reduce_only: bool = False,
        tag: int = 0,
        queue_ahead_base: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        stop_loss_distance: float | None = None,
        take_profit_distance: float | None = None,
        trailing_stop_distance: float | None = None,
        trailing_stop_fraction: float | None = None,
    ) -> int:
        """Place a limit order at ``price``; ``time_in_force`` "GTC", "IOC" or "FOK".

        ``queue_ahead_base``: resting size (base coin) assumed ahead of the order at its price
        under the queue model (default: the run's ``queue_initial_base``). A money size
        (``notional=``, ``base=``, ``equity_fraction=``, with ``contracts`` None) is converted
        at ``price``. Exits as for :meth:`market` (``stop_loss=``, ``take_profit=``, ...).
        """
        contracts = self._order_size(contracts, notional, equity_fraction, base, price)
        side, qty = _side_of(contracts)
        order_id = self._run.place(
            self._i,
            OrderType.LIMIT,
            side,
            qty,
            price=price,
            post_only=post_only,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            tag=tag,
            queue_ahead_base=queue_ahead_base,
        )
        self._protect(
            order_id, stop_loss, take_profit, stop_loss_distance, take_profit_distance,
            None, None, trailing_stop_distance, trailing_stop_fraction,
        )  # fmt: skip
        return order_id

    def stop(
        self,
        contracts: float,
        trigger: float,
        *,
        limit: float | None = None,
        reduce_only: bool = False,
        tag: int = 0,
    ) -> int:
        """Place a stop order: buy when the price rises to ``trigger`` (sell when it falls to it).

        A market order then, or a limit at ``limit`` when given.
        """
        side, qty = _side_of(contracts)
        kind = OrderType.STOP_MARKET if limit is None else OrderType.STOP_LIMIT
        return self._run.place(
            self._i, kind, side, qty, price=limit, trigger=trigger, reduce_only=reduce_only, tag=tag
        )

    def trailing_stop(
        self,
        contracts: float,
        *,
        distance: float | None = None,
        fraction: float | None = None,
        reduce_only: bool = True,
        tag: int = 0,
    ) -> int:
        """Place a trailing stop-market order.

        A sell (``contracts`` < 0, protecting a long) triggers when the price falls
        ``distance`` (quote) or ``fraction`` below the highest price since the order was
        accepted, starting from the last price then; a buy mirrors it above the lowest price.
        The trigger follows every trade and each bar's open, extremes and close in path
        order, rounded away from the price to the tick, and never loosens
        (``order["trigger_price"]`` is the current one). Formula:
        :func:`~backtester.engine.orders_nb.trail_level_nb`.
        """
        side, qty = _side_of(contracts)
        if distance is not None and fraction is None:
            value, name = distance, "distance"
        elif fraction is not None and distance is None:
            value, name = fraction, "fraction"
        else:
            raise ValueError("trailing_stop: give one of distance= (quote) or fraction=")
        if not (math.isfinite(value) and value > 0 and (fraction is None or value < 1)):
            raise ValueError(f"trailing_stop: expected {name} > 0 (fraction < 1), got {value!r}")
        trail = (0.0, float(value), 0.0) if distance is None else (float(value), 0.0, 0.0)
        return self._run.place(
            self._i, OrderType.TRAILING_STOP_MARKET, side, qty, reduce_only=reduce_only,
            tag=tag, trail=trail,
        )  # fmt: skip

    def take_profit(
        self,
        contracts: float,
        trigger: float,
        *,
        limit: float | None = None,
        reduce_only: bool = True,
        tag: int = 0,
    ) -> int:
        """Take-profit: sell when the price rises to ``trigger`` (buy when it falls to it)."""
        side, qty = _side_of(contracts)
        kind = OrderType.TAKE_PROFIT if limit is None else OrderType.TAKE_PROFIT_LIMIT
        return self._run.place(
            self._i, kind, side, qty, price=limit, trigger=trigger, reduce_only=reduce_only, tag=tag
        )

    def buy(self, contracts: float, price: float | None = None, **kwargs: Any) -> int:
        """Buy ``contracts`` (> 0): a limit at ``price``, else a market order."""
        contracts = check_positive(contracts, "contracts")
        if price is None:
            return self.market(contracts, **kwargs)
        return self.limit(contracts, price, **kwargs)

    def sell(self, contracts: float, price: float | None = None, **kwargs: Any) -> int:
        """Sell ``contracts`` (> 0): a limit at ``price``, else a market order."""
        contracts = check_positive(contracts, "contracts")
        if price is None:
            return self.market(-contracts, **kwargs)
        return self.limit(-contracts, price, **kwargs)

    def close_position(self) -> int | None:
        """Market order that closes this instrument's position (None when flat)."""
        q = self.position
        if q == 0:
            return None
        return self.market(-q, reduce_only=True)

    def cancel(self, order_id: int) -> bool:
        """Cancel a working order; False when it is no longer working."""
        return self._run.cancel(order_id)

    def amend(
        self,
        order_id: int,
        *,
        price: float | None = None,
        contracts: float | None = None,
        trigger: float | None = None,
    ) -> int:
        """Replace a working order with new price/size/trigger (cancel + new order).

        Returns the new order id (the old one is CANCELLED).
        """
        return self._run.amend(order_id, price=price, contracts=contracts, trigger=trigger)

    def set_leverage(self, leverage: float) -> None:
        """Leverage for this instrument; only while flat (the venue recomputes margin then)."""
        self._run.set_leverage(self._i, leverage)

    def add_margin(self, amount_settle: float) -> None:
        """Move ``amount_settle`` from the available balance into the isolated position."""
        self._run.transfer_margin(self._i, check_positive(amount_settle, "amount_settle"))

    def remove_margin(self, amount_settle: float) -> None:
        """Move ``amount_settle`` from the isolated position margin back to the balance."""
        self._run.transfer_margin(self._i, -check_positive(amount_settle, "amount_settle"))

    @property
    def margin_mode(self) -> str:
        """Margin mode of the instrument: ``"isolated"`` or ``"cross"``."""
        return MarginMode(int(self._run.positions[self._i]["margin_mode"])).name.lower()
