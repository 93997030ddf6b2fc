"""Stop-loss and take-profit attached to an entry order (Python strategies).

``ctx.market(..., stop_loss=..., take_profit=...)`` (also ``ctx.limit``) records the wanted
exits with the entry order. When the entry's fill is seen, the engine places them as
reduce-only orders for the position the entry opened:

* ``stop_loss``: a STOP_MARKET on the other side, triggered at that price;
* ``take_profit``: a TAKE_PROFIT (market) on the other side, triggered at that price;

given either as prices or, with ``stop_loss_distance`` / ``take_profit_distance``, as distances
in quote from the entry's average fill price (long: stop ``fill − d``, target ``fill + d``;
short the reverse), or with ``stop_loss_fraction`` / ``take_profit_fraction`` as fractions of
it (long: ``fill·(1 − f)``, ``fill·(1 + f)``), rounded to the nearest tick.

A trailing stop (``trailing_stop_distance`` in quote, or ``trailing_stop_fraction``) replaces
the fixed stop: a TRAILING_STOP_MARKET that starts from the entry's fill price and follows the
favourable extreme of the price path (each trade, and each bar's open, extremes and close in
path order), never loosening: a long's stop is ``max price seen − d`` (or ``·(1 − f)``),
rounded down to the tick (:func:`~backtester.engine.orders_nb.trail_level_nb`). The pair is
one-cancels-the-other: when one fills, the other is cancelled; when the position is closed or
reversed by anything else (the strategy, a liquidation), both are cancelled. Their size is the
position the entry left, at most the entry's fill (reduce-only orders never open a position).

Timing. The exits are placed at the wake-up of the entry's fill, at the fill's instant: on
trade data right after the trade that filled it; on bar data after the bar point where it
filled (a market entry at the bar's open), so the rest of that bar's path (its extremes and
close, replayed as later events) is checked against them. Explicit prices are checked against
the tick when the entry is placed (ValueError naming the nearest valid price), so an exit is
never lost to a PRICE_OFF_TICK rejection later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

from backtester.enums import OrderStatus, OrderType, Side, WakeReason
from backtester.sizing import round_price

if TYPE_CHECKING:
    from backtester.engine.driver import Run

__all__ = ["ExitRequest", "Protections"]


class ExitRequest(TypedDict, total=False):
    """The exits an entry order asks for (keyword arguments of :meth:`Protections.add`).

    Prices and distances in quote, fractions of the entry's fill price; None = not given.
    """

    stop_loss: float | None
    take_profit: float | None
    stop_loss_distance: float | None
    take_profit_distance: float | None
    stop_loss_fraction: float | None
    take_profit_fraction: float | None
    trailing_stop_distance: float | None
    trailing_stop_fraction: float | None


@dataclass
class _Wanted:
    instrument: int
    stop_loss: float
    take_profit: float
    stop_distance: float
    profit_distance: float
    tag: int
    stop_fraction: float = math.nan
    profit_fraction: float = math.nan
    trail_distance: float = math.nan
    trail_fraction: float = math.nan


class Protections:
    """Exits wanted by entry orders and the live exit pairs of one run."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._wanted: dict[int, _Wanted] = {}  # entry order id -> exits to place
        # exit order id -> (sibling exit id or -1, instrument, sign of the protected position)
        self._pairs: dict[int, tuple[int, int, float]] = {}

    @property
    def active(self) -> bool:
        """True while an entry waits for its exits or an exit pair is working."""
        return bool(self._wanted or self._pairs)

    def check_price(self, instrument: int, price: float | None, name: str) -> float:
        """``price`` (NaN for None), raising when it is off the contract's tick grid."""
        if price is None:
            return math.nan
        value = float(price)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}: expected a price > 0, got {price!r}")
        tick = float(self._run.params[instrument]["tick_size_quote"])
        nearest = round_price(value, tick)
        if abs(nearest - value) > 1e-9 * tick:
            raise ValueError(
                f"{name}: {value!r} is off the {tick:g} tick; nearest {nearest!r} "
                "(ctx.round_price rounds to the tick, or give a *_distance)"
            )
        return value

    def add(
        self,
        entry_id: int,
        instrument: int,
        *,
        tag: int,
        **exits: Unpack[ExitRequest],
    ) -> None:
        """Record the exits of ``entry_id`` (placed when its fill is seen)."""
        stop_loss = exits.get("stop_loss")
        take_profit = exits.get("take_profit")
        stop_loss_distance = exits.get("stop_loss_distance")
        take_profit_distance = exits.get("take_profit_distance")
        stop_loss_fraction = exits.get("stop_loss_fraction")
        take_profit_fraction = exits.get("take_profit_fraction")
        trailing_stop_distance = exits.get("trailing_stop_distance")
        trailing_stop_fraction = exits.get("trailing_stop_fraction")
        for name, value in (
            ("stop_loss_distance", stop_loss_distance),
            ("take_profit_distance", take_profit_distance),
            ("stop_loss_fraction", stop_loss_fraction),
            ("take_profit_fraction", take_profit_fraction),
            ("trailing_stop_distance", trailing_stop_distance),
            ("trailing_stop_fraction", trailing_stop_fraction),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a distance > 0, got {value!r}")
        if trailing_stop_fraction is not None and not trailing_stop_fraction < 1:
            raise ValueError(
                f"trailing_stop_fraction: expected a fraction in (0, 1), got "
                f"{trailing_stop_fraction!r}"
            )
        stops = [
            stop_loss, stop_loss_distance, stop_loss_fraction, trailing_stop_distance,
            trailing_stop_fraction,
        ]  # fmt: skip
        if sum(v is not None for v in stops) > 1:
            raise ValueError(
                "stop_loss: give one of a price, stop_loss_distance, stop_loss_fraction, "
                "trailing_stop_distance or trailing_stop_fraction"
            )
        targets = [take_profit, take_profit_distance, take_profit_fraction]
        if sum(v is not None for v in targets) > 1:
            raise ValueError(
                "take_profit: give one of a price, take_profit_distance or take_profit_fraction"
            )
        wanted = _Wanted(
            instrument,
            self.check_price(instrument, stop_loss, "stop_loss"),
            self.check_price(instrument, take_profit, "take_profit"),
            math.nan if stop_loss_distance is None else float(stop_loss_distance),
            math.nan if take_profit_distance is None else float(take_profit_distance),
            tag,
            math.nan if stop_loss_fraction is None else float(stop_loss_fraction),
            math.nan if take_profit_fraction is None else float(take_profit_fraction),
            math.nan if trailing_stop_distance is None else float(trailing_stop_distance),
            math.nan if trailing_stop_fraction is None else float(trailing_stop_fraction),
        )
        self._wanted[entry_id] = wanted
        # the driver must hear of fills now, whether or not the strategy has on_fill
        self._run.account[0]["wake_mask"] |= int(WakeReason.FILL)

    def after_fills(self, first: int, last: int) -> None:
        """Act on fills ``first..last-1``.

        Place the exits of filled entries, cancel the sibling of a filled exit, drop pairs
        whose position is gone.
        """
        run = self._run
        fills = run.buffers["fills"]
        for k in range(first, last):
            order_id = int(fills[k]["order_id"])
            if order_id in self._pairs:
                sibling = self._pairs.pop(order_id)[0]
                if sibling >= 0:
                    self._pairs.pop(sibling, None)
                    run.cancel(sibling)
        for order_id in list(self._wanted):
            order = run.orders[order_id]
            status = int(order["status"])
            finished = (OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED)
            if status in finished and order["filled_contracts"] == 0.0:
                del self._wanted[order_id]  # never filled: nothing to protect
                continue
            if status != OrderStatus.FILLED and not (
                status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED)
                and order["filled_contracts"] > 0.0
            ):
                continue
            self._place(order_id, self._wanted.pop(order_id))
        # exits whose position was closed or reversed by something else
        for exit_id, (sibling, i, sign) in list(self._pairs.items()):
            q = float(run.positions[i]["contracts"])
            if q == 0.0 or math.copysign(1.0, q) != sign:
                self._pairs.pop(exit_id, None)
                run.cancel(exit_id)
                if sibling >= 0:
                    self._pairs.pop(sibling, None)
                    run.cancel(sibling)
        if not self.active:
            self._restore_mask()

    def _place(self, entry_id: int, wanted: _Wanted) -> None:
        run = self._run
        order = run.orders[entry_id]
        i = wanted.instrument
        q = float(run.positions[i]["contracts"])
        side = int(order["side"])
        if q == 0.0 or math.copysign(1.0, q) != side:
            return  # the entry only reduced or closed a position: nothing to protect
        size = min(abs(q), float(order["filled_contracts"]))
        fill = float(order["average_fill_price"])
        tick = float(run.params[i]["tick_size_quote"])
        stop, target = wanted.stop_loss, wanted.take_profit
        if not math.isnan(wanted.stop_distance):
            stop = round_price(fill - side * wanted.stop_distance, tick)
        if not math.isnan(wanted.profit_distance):
            target = round_price(fill + side * wanted.profit_distance, tick)
        # fractions of the fill price (the signal path's sl_stop / tp_stop)
        if not math.isnan(wanted.stop_fraction):
            stop = round_price(fill * (1.0 - side * wanted.stop_fraction), tick)
        if not math.isnan(wanted.profit_fraction):
            target = round_price(fill * (1.0 + side * wanted.profit_fraction), tick)
        exit_side = int(Side.SELL if side == Side.BUY else Side.BUY)
        ids = []
        if not (math.isnan(wanted.trail_distance) and math.isnan(wanted.trail_fraction)):
            # the engine computes and ratchets its trigger, starting from the fill price
            trail = (
                0.0 if math.isnan(wanted.trail_distance) else wanted.trail_distance,
                0.0 if math.isnan(wanted.trail_fraction) else wanted.trail_fraction,
                fill,
            )
            ids.append(
                run.place(
                    i, OrderType.TRAILING_STOP_MARKET, exit_side, size, reduce_only=True,
                    tag=wanted.tag, trail=trail,
                )
            )  # fmt: skip
        for kind, trigger in ((OrderType.STOP_MARKET, stop), (OrderType.TAKE_PROFIT, target)):
            if math.isnan(trigger):
                continue
            if not trigger > 0:
                raise ValueError(
                    f"order {entry_id}: its exit at distance gives a trigger {trigger!r} <= 0 "
                    f"(fill {fill!r})"
                )
            ids.append(
                run.place(
                    i, kind, exit_side, size, trigger=trigger, reduce_only=True, tag=wanted.tag
                )
            )
        sign = math.copysign(1.0, q)
        if len(ids) == 2:
            self._pairs[ids[0]] = (ids[1], i, sign)
            self._pairs[ids[1]] = (ids[0], i, sign)
        elif ids:
            self._pairs[ids[0]] = (-1, i, sign)

    def _restore_mask(self) -> None:
        """Back to the strategy's own wake mask (FILL only if it has on_fill)."""
        a = self._run.account[0]
        if not self._run.wants_fills:
            a["wake_mask"] = int(a["wake_mask"]) & ~int(WakeReason.FILL)
