"""Round trips: the fills grouped into trades, each with its PnL split by cause from the ledger.

A round trip on one instrument starts with the fill that opens a position from flat and ends with
the fill that brings it back to flat (or flips it: that fill closes one round trip and opens the
next with the remainder). Adds and partial closes inside stay in the same round trip.

Every money column sums ledger rows (STYLE.md C9: every figure sums from the ledger):

- ``price_pnl_settle``: TRADE_PNL rows of the round trip's fills (ADL closes included) plus the
  SETTLEMENT rows booked while it was open (daily settlement moves unrealised PnL to the balance
  before the closing fill, so both are the price move);
- ``fees_settle``: FEE rows of its fills (< 0 paid, > 0 rebate). A flipping fill's fee is split
  in proportion to the contracts that closed and opened (the part for the new round trip is the
  fee minus the closing part, so the two add up to the booked row);
- ``funding_settle``: FUNDING rows paid or received while it was open;
- ``liquidation_settle``: LIQUIDATION_LOSS, LIQUIDATION_FEE and INSURANCE_FUND rows of its
  liquidation fills;
- ``clawback_settle``: CLAWBACK rows (the venue took part of the profit) booked on the
  instrument while it was open, or after it, before the next round trip opened;
- ``unrealised_pnl_settle``: for the round trip still open at the end of the data only, the
  unrealised PnL of the last equity sample (not in the ledger; 0 for closed ones);
- ``pnl_settle``: the sum of the above.

A FUNDING or SETTLEMENT row is given to the round trip on its instrument whose side is the sign
of the position recorded with it and which was open at that instant: entered before it, and
closed at it or later (at equal timestamps funding and settlement come before fills, see
DESIGN.md). Ledger rows that belong to no round trip (deposits, margin transfers, or a row the
rule cannot place) are not dropped silently: their sums by kind are in
``frame.attrs["unattributed_settle"]`` and the report shows them.

Exit reasons: ``signal`` (a market or limit order of the strategy), ``stop`` (stop-market,
stop-limit), ``take_profit`` (take-profit orders), ``liquidation``, ``adl`` (auto-deleveraging
closed it), ``end_of_data`` (still open when the data ended).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtester.enums import ContractKind, LedgerKind, Liquidity, OrderType

if TYPE_CHECKING:
    from backtester.results import Result

__all__ = ["EXIT_REASONS", "MONEY_COLUMNS", "exit_reason_summary", "round_trips"]

EXIT_REASONS = (
    "signal", "stop", "trailing_stop", "take_profit", "liquidation", "adl", "end_of_data",
)  # fmt: skip
"""Values of the ``exit_reason`` column."""

MONEY_COLUMNS = (
    "price_pnl_settle",
    "fees_settle",
    "funding_settle",
    "liquidation_settle",
    "clawback_settle",
    "unrealised_pnl_settle",
)
"""The parts of ``pnl_settle``, in settle currency (signed as they changed the balance)."""

_ORDER_REASON: dict[int, str] = {
    OrderType.MARKET: "signal",
    OrderType.LIMIT: "signal",
    OrderType.STOP_MARKET: "stop",
    OrderType.STOP_LIMIT: "stop",
    OrderType.TRAILING_STOP_MARKET: "trailing_stop",
    OrderType.TAKE_PROFIT: "take_profit",
    OrderType.TAKE_PROFIT_LIMIT: "take_profit",
}
_FILL_KIND_COLUMN: dict[int, str] = {
    LedgerKind.TRADE_PNL: "price_pnl_settle",
    LedgerKind.FEE: "fees_settle",
    LedgerKind.LIQUIDATION_LOSS: "liquidation_settle",
    LedgerKind.LIQUIDATION_FEE: "liquidation_settle",
    LedgerKind.INSURANCE_FUND: "liquidation_settle",
}
_TIME_KIND_COLUMN: dict[int, str] = {
    LedgerKind.FUNDING: "funding_settle",
    LedgerKind.SETTLEMENT: "price_pnl_settle",
}
_COLUMNS = [
    "trade_id",
    "instrument",
    "side",
    "entry_time",
    "exit_time",
    "duration",
    "size_contracts",
    "max_position_contracts",
    "entry_price",
    "exit_price",
    "fills",
    "liquidations",
    "pnl_settle",
    *MONEY_COLUMNS,
    "exit_reason",
    "is_open",
]


def _average(prices: list[float], sizes: list[float], inverse: bool) -> float:
    """Size-weighted average price; harmonic for inverse contracts (their entry price is)."""
    total = math.fsum(sizes)
    if total <= 0.0:
        return math.nan
    if min(prices) == max(prices):
        return prices[0]  # one price: exactly it (the weighted formula may round off by an ulp)
    if inverse:
        return total / math.fsum(s / p for s, p in zip(sizes, prices, strict=True))
    return math.fsum(s * p for s, p in zip(sizes, prices, strict=True)) / total


class _Trip:
    __slots__ = (
        "entries", "exits", "fills", "instrument", "is_open", "liquidations", "max_position",
        "money", "reason", "side", "ts_entry", "ts_exit",
    )  # fmt: skip

    def __init__(self, instrument: int, side: int, ts: int) -> None:
        self.instrument = instrument
        self.side = side
        self.ts_entry = ts
        self.ts_exit = -1
        self.entries: tuple[list[float], list[float]] = ([], [])
        self.exits: tuple[list[float], list[float]] = ([], [])
        self.money: dict[str, list[float]] = {c: [] for c in MONEY_COLUMNS}
        self.fills = 0
        self.liquidations = 0
        self.max_position = 0.0
        self.reason = "end_of_data"
        self.is_open = True


def round_trips(result: Result) -> pd.DataFrame:
    """Return the result's round trips, one row each, in the order they opened.

    See the module docstring for the columns.

    Parameters
    ----------
    result
        The backtest :class:`~backtester.results.Result` whose fills and ledger are grouped.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``entry_time`` (UTC ``DatetimeIndex``), columns: ``trade_id``,
        ``instrument`` (symbol), ``side`` (long/short), ``entry_time``, ``exit_time`` (NaT while
        open), ``duration``, ``size_contracts`` (contracts opened in total),
        ``max_position_contracts``, ``entry_price`` / ``exit_price`` (size-weighted, harmonic
        for inverse contracts; quote currency), ``fills``, ``liquidations`` (liquidation fills,
        partial ones included), ``pnl_settle`` and its parts :data:`MONEY_COLUMNS`,
        ``exit_reason`` (:data:`EXIT_REASONS`), ``is_open``. ``attrs["unattributed_settle"]``
        holds the ledger amounts by kind that belong to no round trip.
    """
    fills = result.records["fills"]
    orders = result.records["orders"]
    order_type = dict(zip(orders["order_id"].tolist(), orders["order_type"].tolist(), strict=True))
    walk = _FillWalk(_ledger_by_fill(result.records["ledger"]), order_type)
    columns = zip(
        fills["fill_id"].tolist(), fills["order_id"].tolist(), fills["instrument"].tolist(),
        fills["ts_ns"].tolist(), fills["side"].tolist(), fills["liquidity"].tolist(),
        fills["price"].tolist(), fills["qty_contracts"].tolist(),
        fills["position_after_contracts"].tolist(), strict=True,
    )  # fmt: skip
    for row in columns:
        walk.add(row)
    trips = walk.trips
    unattributed = _place_time_rows(result, trips)
    for name, values in walk.orphans.items():
        unattributed[name] = math.fsum([unattributed.get(name, 0.0), *values])
    if trips and len(result.records["equity"]) and len(result.instruments) == 1:
        last = trips[-1]
        if last.is_open:
            upl = float(result.records["equity"]["unrealised_pnl_settle"][-1])
            last.money["unrealised_pnl_settle"].append(upl)
    frame = _trips_frame(result, trips)
    frame.attrs["unattributed_settle"] = unattributed
    frame.attrs["settle_currency"] = result.settle_currency
    return frame


def _ledger_by_fill(ledger: npt.NDArray[np.void]) -> dict[int, list[tuple[int, float]]]:
    """Return the fill-related ledger rows as ``{fill id: [(kind, amount), ...]}``."""
    by_fill: dict[int, list[tuple[int, float]]] = {}
    for kind, ref, amount in zip(
        ledger["kind"].tolist(), ledger["ref_id"].tolist(), ledger["amount_settle"].tolist(),
        strict=True,
    ):  # fmt: skip
        if kind in _FILL_KIND_COLUMN:
            by_fill.setdefault(ref, []).append((kind, amount))
    return by_fill


# the FILL_DTYPE fields the walk reads, as Python scalars: fill_id, order_id, instrument, ts_ns,
# side, liquidity, price, qty_contracts, position_after_contracts (a tuple: one per fill, and
# a named tuple would cost a fifth more time over a million fills)
_FillRow = tuple[int, int, int, int, int, int, float, float, float]


class _FillWalk:
    """The fills, in order, grouped into round trips (module docstring).

    Per instrument: the round trip open now and the position before the next fill. A close
    without a known opening keeps its ledger rows in ``orphans`` (never dropped).
    """

    def __init__(
        self, by_fill: dict[int, list[tuple[int, float]]], order_type: dict[int, int]
    ) -> None:
        self.by_fill = by_fill
        self.order_type = order_type
        self.trips: list[_Trip] = []
        self.orphans: dict[str, list[float]] = {}
        self.current: dict[int, _Trip] = {}
        self.position: dict[int, float] = {}

    def add(self, fill: _FillRow) -> None:
        """Book one fill: it closes, opens, or closes and opens (a flip) round trips."""
        fill_id, order_id, inst, ts, side, liquidity, price, qty, after = fill
        before = self.position.get(inst, 0.0)
        self.position[inst] = after
        ends = after == 0.0 or after * before < 0  # closed to flat or flipped
        closed = min(abs(before), qty) if before * side < 0 else 0.0
        if ends:
            closed = abs(before)  # the whole old position closed
        opened = max(0.0, qty - closed) if after != 0.0 else 0.0
        booked = self.by_fill.get(fill_id, [])
        closing_fee: list[float] = []
        trip = self.current.get(inst)
        if closed > 0.0 and trip is None:  # a close without a known opening: never dropped
            for kind, amount in booked:
                self.orphans.setdefault(LedgerKind(kind).name.lower(), []).append(amount)
            booked = []
        if closed > 0.0 and trip is not None:
            share = closed / qty if qty > 0 else 1.0
            closing_fee = self._close(
                trip, (price, closed), liquidity, booked, share if opened > 0.0 else 1.0
            )
            if ends:
                self._end(trip, ts, liquidity, order_id)
                del self.current[inst]
        if opened > 0.0:
            self._open(fill, opened, closed, booked, closing_fee)
        trip = self.current.get(inst)
        if trip is not None:
            trip.max_position = max(trip.max_position, abs(after))

    def _close(
        self,
        trip: _Trip,
        exit_fill: tuple[float, float],
        liquidity: int,
        booked: list[tuple[int, float]],
        fee_share: float,
    ) -> list[float]:
        """Book the closing part of a fill; return the part of its fee that the close pays.

        ``exit_fill``: (price, contracts closed); ``fee_share``: the closed share of a flipping
        fill's contracts (1 otherwise).
        """
        trip.fills += 1
        trip.exits[0].append(exit_fill[0])
        trip.exits[1].append(exit_fill[1])
        if liquidity == Liquidity.LIQUIDATION:
            trip.liquidations += 1
        closing_fee = []
        for kind, amount in booked:
            part = amount * fee_share if kind == LedgerKind.FEE else amount
            if kind == LedgerKind.FEE:
                closing_fee.append(part)
            trip.money[_FILL_KIND_COLUMN[kind]].append(part)
        return closing_fee

    def _end(self, trip: _Trip, ts: int, liquidity: int, order_id: int) -> None:
        """End ``trip`` at ``ts`` with the exit reason of the fill that closed it."""
        trip.is_open = False
        trip.ts_exit = ts
        if liquidity == Liquidity.LIQUIDATION:
            trip.reason = "liquidation"
        elif liquidity == Liquidity.ADL:
            trip.reason = "adl"
        else:
            trip.reason = _ORDER_REASON.get(self.order_type.get(order_id, -1), "signal")

    def _open(
        self,
        fill: _FillRow,
        opened: float,
        closed: float,
        booked: list[tuple[int, float]],
        closing_fee: list[float],
    ) -> None:
        """Book the opening part of ``fill`` on the open round trip (a new one from flat).

        Its fee is the booked fee minus the part the close paid, so the two add up to the row;
        its other rows only when the fill closed nothing (else the close took them).
        """
        _, _, inst, ts, _, _, price, _, after = fill
        trip = self.current.get(inst)
        if trip is None:
            trip = _Trip(inst, 1 if after > 0 else -1, ts)
            self.current[inst] = trip
            self.trips.append(trip)
        trip.fills += 1
        trip.entries[0].append(price)
        trip.entries[1].append(opened)
        for kind, amount in booked:
            if kind == LedgerKind.FEE:
                trip.money["fees_settle"].append(amount - closing_fee[0] if closing_fee else amount)
            elif closed == 0.0:
                trip.money[_FILL_KIND_COLUMN[kind]].append(amount)


def _trips_frame(result: Result, trips: list[_Trip]) -> pd.DataFrame:
    """Return the round trips as the frame of :func:`round_trips` (without its ``attrs``)."""
    inverse = [k == ContractKind.INVERSE for k in result.contract_kinds]
    rows = []
    end_ns = int(result.records["equity"]["ts_ns"][-1]) if len(result.records["equity"]) else -1
    for number, trip in enumerate(trips):
        money = {c: math.fsum(trip.money[c]) for c in MONEY_COLUMNS}
        inv = trip.instrument < len(inverse) and inverse[trip.instrument]
        exit_ns = trip.ts_exit if not trip.is_open else end_ns
        rows.append({
            "trade_id": number,
            "instrument": result.instruments[trip.instrument]
            if trip.instrument < len(result.instruments) else str(trip.instrument),
            "side": "long" if trip.side > 0 else "short",
            "entry_time": trip.ts_entry,
            "exit_time": trip.ts_exit if not trip.is_open else None,
            "duration": exit_ns - trip.ts_entry if exit_ns >= trip.ts_entry else None,
            "size_contracts": math.fsum(trip.entries[1]),
            "max_position_contracts": trip.max_position,
            "entry_price": _average(*trip.entries, inv),
            "exit_price": _average(*trip.exits, inv) if trip.exits[1] else math.nan,
            "fills": trip.fills,
            "liquidations": trip.liquidations,
            "pnl_settle": math.fsum(money.values()),
            **money,
            "exit_reason": trip.reason,
            "is_open": trip.is_open,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    for name in ("entry_time", "exit_time"):
        frame[name] = pd.to_datetime(frame[name].astype("Int64"), unit="ns", utc=True)
    frame["duration"] = pd.to_timedelta(frame["duration"].astype("Int64"), unit="ns")
    for name in ("trade_id", "fills", "liquidations"):
        frame[name] = frame[name].astype(np.int64)
    frame["is_open"] = frame["is_open"].astype(bool)
    frame.index = pd.DatetimeIndex(frame["entry_time"], name="time")
    return frame


def _place_time_rows(result: Result, trips: list[_Trip]) -> dict[str, float]:
    """Give FUNDING, SETTLEMENT and CLAWBACK rows to the round trip open at their time.

    Returns the sums by ledger kind name of the rows no round trip takes.
    """
    ledger = result.records["ledger"]
    funding = result.records["funding_payments"]
    settlements = result.records["settlements"]
    by_instrument: dict[int, list[_Trip]] = {}
    for trip in trips:
        by_instrument.setdefault(trip.instrument, []).append(trip)
    left: dict[str, list[float]] = {}
    for kind, inst, ts, ref, amount in zip(
        ledger["kind"].tolist(), ledger["instrument"].tolist(), ledger["ts_ns"].tolist(),
        ledger["ref_id"].tolist(), ledger["amount_settle"].tolist(), strict=True,
    ):  # fmt: skip
        if kind in _FILL_KIND_COLUMN:
            continue
        owner: _Trip | None = None
        candidates = by_instrument.get(inst, [])
        if kind in _TIME_KIND_COLUMN:
            records = funding if kind == LedgerKind.FUNDING else settlements
            held = float(records["position_contracts"][ref]) if 0 <= ref < len(records) else 0.0
            side = 1 if held > 0 else -1
            owner = _open_at(candidates, ts, side)
            column = _TIME_KIND_COLUMN[kind]
        elif kind == LedgerKind.CLAWBACK:
            # profit clawed back for a past period: the latest round trip entered before it
            earlier = [t for t in candidates if t.ts_entry <= ts]
            owner = earlier[-1] if earlier else None
            column = "clawback_settle"
        if owner is None:
            left.setdefault(LedgerKind(kind).name.lower(), []).append(amount)
            continue
        owner.money[column].append(amount)
    return {name: math.fsum(values) for name, values in left.items()}


def _open_at(candidates: list[_Trip], ts: int, side: int) -> _Trip | None:
    """Return the round trip of ``side`` entered before ``ts`` and not closed before it.

    Failing that (a position opened and paid funding at one instant), one entered at ``ts``.
    """
    same_instant = None
    for trip in reversed(candidates):
        if trip.side != side:
            continue
        closed_after = trip.is_open or trip.ts_exit >= ts
        if trip.ts_entry < ts and closed_after:
            return trip
        if trip.ts_entry == ts and same_instant is None:
            same_instant = trip
    return same_instant


def exit_reason_summary(trades: pd.DataFrame) -> pd.DataFrame:
    """Per exit reason: count, wins, win rate, total / mean PnL, mean duration.

    Parameters
    ----------
    trades
        The frame of :func:`round_trips`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``exit_reason`` (in :data:`EXIT_REASONS` order, only those present), with
        ``trades``, ``wins`` (pnl_settle > 0), ``win_rate`` (fraction), ``pnl_settle``,
        ``mean_pnl_settle``, ``fees_settle``, ``funding_settle``, ``mean_duration``.
    """
    rows: list[dict[str, Any]] = []
    for reason in EXIT_REASONS:
        mine = trades[trades["exit_reason"] == reason]
        if len(mine) == 0:
            continue
        pnl = mine["pnl_settle"].to_numpy(dtype=np.float64)
        wins = int(np.count_nonzero(pnl > 0))
        rows.append({
            "exit_reason": reason,
            "trades": len(mine),
            "wins": wins,
            "win_rate": wins / len(mine),
            "pnl_settle": math.fsum(pnl.tolist()),
            "mean_pnl_settle": math.fsum(pnl.tolist()) / len(mine),
            "fees_settle": math.fsum(mine["fees_settle"].tolist()),
            "funding_settle": math.fsum(mine["funding_settle"].tolist()),
            "mean_duration": mine["duration"].mean(),
        })  # fmt: skip
    columns = ["exit_reason", "trades", "wins", "win_rate", "pnl_settle", "mean_pnl_settle",
               "fees_settle", "funding_settle", "mean_duration"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).set_index("exit_reason")
