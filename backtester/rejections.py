"""Rejected orders made loud: counted by reason, explained, warned about once per reason.

The engine refuses an order the way the exchange would (``ORDER_DTYPE.status == REJECTED``
with a :class:`~backtester.enums.RejectReason`), and before this module a run could lose its
stop-loss to a rejection with nothing said. After every run:

* :func:`explain_rejections` describes the first rejected order of each reason in the user's
  terms — the order, why, and what would have been accepted (the nearest tick price, the
  nearest lot multiple, the size the equity could carry, ...) — and ``backtest`` stores these
  notes in ``Result.config["rejections"]`` and emits one :class:`RejectedOrderWarning` per
  reason;
* :func:`rejection_counts` / :func:`rejected_orders` are the tables behind
  ``Result.rejections`` and ``Result.rejected_orders``;
* :func:`open_position_at_end` says what was still open when the data ended, with its
  unrealised PnL kept apart from the realised figures;
* :func:`format_notes` and :func:`notes_html` put both in the printed summary and the report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtester.enums import ContractKind, OrderStatus, OrderType, RejectReason, Side
from backtester.report.escape import esc  # the one escaping helper of every page

if TYPE_CHECKING:
    from backtester.results import Result
    from backtester.swap.contract import ContractSpec

__all__ = [
    "RejectedOrderWarning",
    "explain_rejections",
    "format_notes",
    "notes_html",
    "open_position_at_end",
    "rejected_orders",
    "rejection_counts",
    "warn_rejections",
]

FIRST_ROWS = 5
"""Rejected orders listed per reason in the summary and the report."""


class RejectedOrderWarning(UserWarning):
    """The exchange model refused an order (one warning per reason and run)."""


def _time(ts_ns: int) -> str:
    return pd.Timestamp(int(ts_ns), unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: float) -> str:
    """Format a price or size as a person writes it: thousands separators, no float noise."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:,.10f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _on_grid(value: float, step: float) -> float:
    """``value`` rounded to the nearest multiple of ``step`` (decimal-clean)."""
    if not step > 0:
        return value
    decimals = max(0, -math.floor(math.log10(step)) + 2)
    return round(round(value / step) * step, decimals)


def describe_order(order: np.void, symbol: str) -> str:
    """One order in words: ``"buy 3 contracts STOP_MARKET trigger 49,873.27 reduce-only"``."""
    side = "buy" if int(order["side"]) == Side.BUY else "sell"
    kind = OrderType(int(order["order_type"])).name
    text = f"{side} {_num(float(order['qty_contracts']))} contracts {symbol} {kind}"
    if math.isfinite(order["price"]):
        text += f" price {_num(float(order['price']))}"
    if math.isfinite(order["trigger_price"]):
        text += f" trigger {_num(float(order['trigger_price']))}"
    if order["reduce_only"]:
        text += " reduce-only"
    if order["post_only"]:
        text += " post-only"
    return text


def _position_before(fills: npt.NDArray[np.void], order: np.void) -> float:
    """Return the signed position of the order's instrument just before the order was placed.

    The ``position_after_contracts`` of the last earlier fill (fills of orders placed before
    it, or forced fills, at or before its time).
    """
    mask = (
        (fills["instrument"] == order["instrument"])
        & (fills["ts_ns"] <= order["ts_created_ns"])
        & (fills["order_id"] < order["order_id"])
    )
    if not mask.any():
        return 0.0
    return float(fills["position_after_contracts"][np.flatnonzero(mask)[-1]])


def _equity_before(equity: npt.NDArray[np.void], ts_ns: int) -> float:
    """Account equity at the last equity sample at or before ``ts_ns`` (NaN before the first)."""
    k = int(np.searchsorted(equity["ts_ns"], ts_ns, side="right")) - 1
    return float(equity["equity_settle"][k]) if k >= 0 else math.nan


def _reference_price(order: np.void, equity: npt.NDArray[np.void]) -> float:
    for name in ("price", "trigger_price"):
        if math.isfinite(order[name]):
            return float(order[name])
    k = int(np.searchsorted(equity["ts_ns"], order["ts_created_ns"], side="right")) - 1
    if k >= 0 and int(order["instrument"]) == 0:  # equity rows carry the first instrument's price
        return float(equity["last_price"][k])
    return math.nan


def _accepted(
    reason: RejectReason,
    order: np.void,
    spec: ContractSpec,
    leverage: float,
    fills: npt.NDArray[np.void],
    equity: npt.NDArray[np.void],
    settle: str,
) -> str:
    """Return why ``order`` was refused and what the exchange would have accepted instead."""
    qty = float(order["qty_contracts"])
    if reason == RejectReason.PRICE_OFF_TICK:
        return _off_tick(order, spec)
    if reason == RejectReason.SIZE_NOT_LOT_MULTIPLE:
        nearest = _on_grid(qty, spec.lot_size)
        return (
            f"size {_num(qty)} contracts is not a multiple of the lot {_num(spec.lot_size)}; "
            f"nearest {_num(nearest)} (money sizes notional=/base=/equity_fraction= are rounded "
            "to the lot)"
        )
    if reason == RejectReason.SIZE_BELOW_MINIMUM:
        return (
            f"size {_num(qty)} contracts is below the minimum order size "
            f"{_num(spec.min_size)} contracts"
        )
    if reason == RejectReason.REDUCE_ONLY_WOULD_INCREASE:
        position = _position_before(fills, order)
        return (
            f"the position was {_num(position)} contracts when it was placed, so a reduce-only "
            f"{'buy' if int(order['side']) == Side.BUY else 'sell'} could not reduce it; place "
            "exits after the entry has filled (on_fill), or give the entry its exits with "
            "ctx.market(..., stop_loss=..., take_profit=...)"
        )
    if reason == RejectReason.INSUFFICIENT_MARGIN:
        return _margin_short(order, spec, leverage, equity, settle)
    if reason == RejectReason.POST_ONLY_WOULD_TAKE:
        return (
            f"a post-only limit at {_num(float(order['price']))} would have taken liquidity; "
            "a limit on the passive side of the last price is accepted"
        )
    if reason == RejectReason.LEVERAGE_ABOVE_TIER_MAX:
        return (
            f"at {_num(qty)} contracts the position reaches a tier whose maximum leverage is "
            f"below the run's {_num(leverage)}; a smaller size or a lower leverage is accepted"
        )
    return _FIXED_EXPLANATION.get(reason, reason.name.replace("_", " ").lower())


_FIXED_EXPLANATION = {
    RejectReason.FOK_NOT_FILLABLE: (
        "a fill-or-kill order could not fill in full at once; IOC or GTC would have"
    ),
    RejectReason.POSITION_LIQUIDATING: (
        "the position was being liquidated; orders are refused until it is closed"
    ),
    RejectReason.INVALID_PRICE: "the price or trigger is missing, not finite or not positive",
}
"""Explanations of the reasons that depend on nothing but the reason."""


def _off_tick(order: np.void, spec: ContractSpec) -> str:
    """Return which price of ``order`` is off the tick and the nearest price on it."""
    parts = []
    for name, label in (("price", "price"), ("trigger_price", "trigger")):
        value = float(order[name])
        if math.isfinite(value):
            nearest = _on_grid(value, spec.tick_size)
            if abs(nearest - value) > 1e-9 * max(1.0, abs(value)):
                parts.append(
                    f"{label} {_num(value)} is off the {_num(spec.tick_size)} tick; nearest "
                    f"{_num(nearest)}"
                )
    text = "; ".join(parts) or f"a price is off the {_num(spec.tick_size)} tick"
    return text + " (ctx.round_price(p, side=...) rounds to the tick)"


def _margin_short(
    order: np.void,
    spec: ContractSpec,
    leverage: float,
    equity: npt.NDArray[np.void],
    settle: str,
) -> str:
    """Return the initial margin ``order`` needed, the equity and the size it would carry."""
    qty = float(order["qty_contracts"])
    price = _reference_price(order, equity)
    equity_now = _equity_before(equity, int(order["ts_created_ns"]))
    if not (math.isfinite(price) and price > 0 and math.isfinite(equity_now)):
        return f"the initial margin of {_num(qty)} contracts exceeds the available balance"
    # initial margin = notional / leverage; notional in settle currency:
    # linear qty·face·price (quote), inverse qty·face/price (coin)
    if spec.contract_kind == ContractKind.INVERSE:
        per_contract = spec.face_value / price
    else:
        per_contract = spec.face_value * price
    margin = qty * per_contract / leverage
    afford = max(0.0, equity_now) * leverage / per_contract
    afford = math.floor(afford / spec.lot_size) * spec.lot_size if spec.lot_size > 0 else afford
    return (
        f"its initial margin is about {_num(round(margin, 8))} {settle} "
        f"({_num(qty)} × face {_num(spec.face_value)} at {_num(price)} ÷ leverage "
        f"{_num(leverage)}), the account's equity was {_num(round(equity_now, 8))} {settle}: "
        f"at most about {_num(afford)} contracts (before fees and other margin) would "
        "have been accepted"
    )


def explain_rejections(
    records: Mapping[str, npt.NDArray[np.void]],
    specs: Sequence[ContractSpec],
    leverages: Sequence[float],
) -> dict[str, dict[str, Any]]:
    """Explain each reject reason of the run, in order of first occurrence.

    For each: the count and the first such order explained (``message``), with its time and id.

    Returns ``{reason name: {"count", "first_order_id", "first_time", "message"}}``
    (JSON-serialisable; ``backtest`` stores it in ``Result.config["rejections"]``).
    """
    orders = records["orders"]
    rejected = np.flatnonzero(orders["status"] == OrderStatus.REJECTED)
    out: dict[str, dict[str, Any]] = {}
    if len(rejected) == 0:
        return out
    reasons = orders["reject_reason"][rejected]
    settle = specs[0].settle_currency
    for value in pd.unique(reasons):
        rows = rejected[reasons == value]
        order = orders[rows[0]]
        reason = RejectReason(int(value))
        i = int(order["instrument"])
        why = _accepted(
            reason, order, specs[i], float(leverages[i]), records["fills"], records["equity"],
            settle,
        )  # fmt: skip
        out[reason.name] = {
            "count": len(rows),
            "first_order_id": int(order["order_id"]),
            "first_time": _time(int(order["ts_created_ns"])),
            "message": (
                f"{reason.name}: {describe_order(order, specs[i].symbol)} at "
                f"{_time(int(order['ts_created_ns']))} was rejected — {why}"
                + (f" ({len(rows) - 1:,} more with this reason)" if len(rows) > 1 else "")
            ),
        }
    return out


def warn_rejections(notes: dict[str, dict[str, Any]], stacklevel: int = 3) -> None:
    """One :class:`RejectedOrderWarning` per reason, with the first order explained."""
    for note in notes.values():
        warnings.warn(note["message"], RejectedOrderWarning, stacklevel=stacklevel)


def rejection_counts(orders: npt.NDArray[np.void]) -> pd.Series:
    """Rejected orders counted by reason name (most frequent first; empty when none)."""
    reasons = orders["reject_reason"][orders["status"] == OrderStatus.REJECTED]
    names = [RejectReason(int(v)).name for v in reasons]
    counts = pd.Series(names, dtype=object).value_counts(sort=True)
    counts.name = "rejected_orders"
    counts.index.name = "reject_reason"
    return counts.astype(np.int64)


def rejected_orders(result: Result) -> pd.DataFrame:
    """Return the rejected orders' rows (readable columns, as ``Result.orders``)."""
    frame = result.orders
    return frame[frame["status"] == OrderStatus.REJECTED.name].reset_index(drop=True)


def open_position_at_end(result: Result) -> dict[str, Any] | None:
    """Return the position left open when the data ended, or None when flat everywhere.

    ``{"positions": {symbol: signed contracts}, "unrealised_pnl_settle": UPL at the last mark,
    "realised_change_settle": final balance - initial balance}``. The UPL is in the final
    equity but in no realised figure (ledger, attribution, trades).
    """
    fills = result.records["fills"]
    positions: dict[str, float] = {}
    for i, symbol in enumerate(result.instruments):
        mine = np.flatnonzero(fills["instrument"] == i)
        if len(mine) and fills["position_after_contracts"][mine[-1]] != 0.0:
            positions[symbol] = float(fills["position_after_contracts"][mine[-1]])
    if not positions:
        return None
    equity = result.records["equity"]
    upl = float(equity["unrealised_pnl_settle"][-1]) if len(equity) else math.nan
    return {
        "positions": positions,
        "unrealised_pnl_settle": upl,
        "realised_change_settle": result.final_balance_settle - result.initial_balance_settle,
    }


def _first_rows(result: Result) -> pd.DataFrame:
    """Return the first ``FIRST_ROWS`` rejected orders of each reason, with their bar time."""
    frame = rejected_orders(result)
    if frame.empty:
        return frame
    first = frame.groupby("reject_reason", sort=False).head(FIRST_ROWS)
    columns = ["ts_created", "order_id", "instrument", "order_type", "side", "qty_contracts",
               "price", "trigger_price", "reduce_only", "reject_reason"]  # fmt: skip
    return first[columns].rename(columns={"ts_created": "time"}).reset_index(drop=True)


def format_notes(result: Result) -> str:
    """Return the summary's lines on rejected orders and a position left open ("" if neither)."""
    lines = []
    counts = rejection_counts(result.records["orders"])
    if len(counts):
        lines.append(
            f"rejected orders: {int(counts.sum()):,} ("
            + ", ".join(f"{name} {n:,}" for name, n in counts.items())
            + ")"
        )
        for name, note in result.config.get("rejections", {}).items():
            if name in counts.index:
                lines.append(f"  first {note['message']}")
        if not result.config.get("rejections"):
            lines.extend(
                f"  {row.time} order {row.order_id}: {row.reject_reason}"
                for row in _first_rows(result).itertuples()
            )
    still = open_position_at_end(result)
    if still is not None:
        held = ", ".join(f"{_num(q)} contracts {s}" for s, q in still["positions"].items())
        lines.append(
            f"open at the end: {held}; unrealised PnL {still['unrealised_pnl_settle']:.8g} "
            f"{result.settle_currency} (in the final equity, not in the realised "
            f"{still['realised_change_settle']:.8g})"
        )
    return "\n".join(lines)


def notes_html(result: Result) -> str:
    """Return the report's section on rejected orders and a position left open ("" if neither)."""
    parts = []
    counts = rejection_counts(result.records["orders"])
    if len(counts):
        parts.append(f"<h2 id='rejections'>Rejected orders ({int(counts.sum()):,})</h2><ul>")
        notes = result.config.get("rejections", {})
        for name, n in counts.items():
            message = notes.get(name, {}).get("message", "")
            parts.append(
                f"<li><b>{esc(name)}</b>: {n:,}"
                + (f" — first: {esc(message)}" if message else "")
                + "</li>"
            )
        parts.append("</ul>")
        first = _first_rows(result)
        body = first.to_html(index=False, escape=True, border=0, na_rep="")
        body = body.replace('<table class="dataframe">', '<table id="rejections-table">', 1)
        parts.append(f"<div class='scroll'>{body}</div>")
    still = open_position_at_end(result)
    if still is not None:
        held = ", ".join(
            f"{esc(_num(q))} contracts {esc(s)}" for s, q in still["positions"].items()
        )
        parts.append(
            f"<h2 id='open-position'>Open at the end</h2><p>{held}; unrealised PnL "
            f"{still['unrealised_pnl_settle']:.8g} {esc(result.settle_currency)} "
            "(in the final equity, not in the realised PnL: balance change "
            f"{still['realised_change_settle']:.8g}).</p>"
        )
    return "\n".join(parts)
