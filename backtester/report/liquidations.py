"""Liquidation report: one row per full or partial liquidation.

With the margin path before it and what a last-price model (mark = last trade price) would
have done instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtester.enums import ContractKind, PathPoint, PriceStream, Side

if TYPE_CHECKING:
    from backtester.data.market import MarketData
    from backtester.results import Result

__all__ = ["last_price_comparison", "last_price_lines", "liquidation_report"]


def liquidation_report(result: Result, path_samples: int = 20) -> pd.DataFrame:
    """Tabulate every liquidation of a run.

    Parameters
    ----------
    result
        The backtest result.
    path_samples
        How many equity samples at or before the trigger form ``margin_ratio_path``.

    Returns
    -------
    pandas.DataFrame
        Columns: ``time`` (UTC), ``instrument`` (symbol), ``side`` (of the liquidated position),
        ``kind`` ("partial" | "full"), ``contracts_before``, ``contracts_after``, ``tier``,
        ``mark_price`` (at the trigger), ``liquidation_price``, ``bankruptcy_price``,
        ``fill_price``, ``market_price``, ``margin_ratio`` (venue's, at the trigger),
        ``loss_settle`` (> 0 is a loss), ``fee_settle``, ``insurance_fund_delta_settle``
        (> 0 the fund gained), ``insurance_fund_after_settle`` (the venue's fund after the
        step, see the ``insurance_fund_settle`` option of ``backtest``), ``margin_ratio_path``
        (list of the equity records' margin ratio over the last ``path_samples`` samples up to
        the trigger), ``margin_ratio_path_times`` (their UTC times) and ``trigger`` (which price
        update triggered it, e.g. "triggered on the low of the 2024-08-05 10:00 mark candle":
        :func:`trigger_text`), then the last-price columns of :func:`last_price_comparison`
        (``last_price_trigger_time``, ``last_price_delay``, ...). One row per step: a partial
        liquidation's steps and the takeover that may follow, and in cross mode one row per
        position taken over.
    """
    if path_samples < 1:
        raise ValueError(f"path_samples: expected >= 1, got {path_samples!r}")
    records = result.records["liquidations"]
    equity = result.records["equity"]
    eq_ts = np.asarray(equity["ts_ns"])
    eq_ratio = np.asarray(equity["margin_ratio"], dtype=np.float64)
    paths, times = [], []
    for ts in records["ts_ns"].tolist():
        end = int(np.searchsorted(eq_ts, ts, side="right"))
        start = max(0, end - path_samples)
        paths.append(eq_ratio[start:end].tolist())
        times.append(list(pd.to_datetime(eq_ts[start:end], unit="ns", utc=True)))
    symbols = result.instruments
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(records["ts_ns"], unit="ns", utc=True),
            "instrument": [
                symbols[i] if 0 <= i < len(symbols) else str(i)
                for i in records["instrument"].tolist()
            ],
            "side": [Side(int(s)).name for s in records["side"]],
            "kind": np.where(records["is_partial"], "partial", "full"),
            "contracts_before": records["contracts_before"],
            "contracts_after": records["contracts_after"],
            "tier": records["tier"],
            "mark_price": records["mark_price"],
            "liquidation_price": records["liquidation_price"],
            "bankruptcy_price": records["bankruptcy_price"],
            "fill_price": records["fill_price"],
            "market_price": records["market_price"],
            "margin_ratio": records["margin_ratio"],
            "loss_settle": records["loss_settle"],
            "fee_settle": records["fee_settle"],
            "insurance_fund_delta_settle": records["insurance_fund_delta_settle"],
            "insurance_fund_after_settle": records["insurance_fund_after_settle"],
            "margin_ratio_path": pd.Series(paths, dtype=object),
            "margin_ratio_path_times": pd.Series(times, dtype=object),
            "trigger": [
                trigger_text(int(s), int(p), int(c))
                for s, p, c in zip(
                    records["trigger_stream"].tolist(),
                    records["trigger_point"].tolist(),
                    records["trigger_candle_ns"].tolist(),
                    strict=True,
                )
            ],
        }
    )
    comparison = last_price_comparison(result)
    for column in comparison.columns:
        frame[column] = comparison[column].to_numpy()
    return frame


_STREAM_WORDS = {
    PriceStream.INDEX: "index",
    PriceStream.MARK: "mark",
    PriceStream.BARS: "trade",
    PriceStream.TRADES: "trade",
}
_STREAM_NOTE = {
    PriceStream.INDEX: " (mark computed from the index)",
    PriceStream.BARS: " (mark = last price)",
    PriceStream.TRADES: " (mark = last price)",
}


def trigger_text(stream: int, point: int, candle_ns: int) -> str:
    """Return one line saying which price update triggered a liquidation.

    From the record's ``trigger_stream`` (PriceStream), ``trigger_point`` (PathPoint) and
    ``trigger_candle_ns``: "triggered on the low of the 2024-08-05 10:00 mark candle",
    "triggered on the mark point of 2024-08-05 10:00:00", "triggered on the trade of ...".
    Candle paths are replayed as open, adverse extreme (at a third of the interval), other
    extreme (two thirds), close (:func:`backtester.data.market.candle_path_points`).
    """
    if stream == PriceStream.NONE or point == PathPoint.NONE:
        return "not triggered by a price update"
    when = pd.Timestamp(candle_ns, unit="ns", tz="UTC")
    word = _STREAM_WORDS[PriceStream(stream)]
    note = _STREAM_NOTE.get(PriceStream(stream), "")
    if point == PathPoint.TICK:
        return f"triggered on the trade of {when.isoformat()}{note}"
    if point == PathPoint.POINT:
        return f"triggered on the {word} point of {when.strftime('%Y-%m-%d %H:%M:%S')}{note}"
    name = PathPoint(point).name.lower()
    return f"triggered on the {name} of the {when.strftime('%Y-%m-%d %H:%M')} {word} candle{note}"


# --------------------------------------------------------------------------- last-price model

LAST_PRICE_COLUMNS = (
    "last_price_trigger_time",
    "last_price_trigger",
    "last_price_delay",
    "last_price_loss_settle",
    "loss_difference_settle",
    "last_price_comparison",
)


def last_price_comparison(result: Result) -> pd.DataFrame:
    """Compare each step of :func:`liquidation_report` with a last-price model.

    When a last-price model (mark = last trade price) would have liquidated each step, and how
    the loss differs.

    The last-price path is the one the engine replays for the trade prices (README "Candles
    are replayed as paths"): each trade tick, and each trade candle ``[t0, t0+Δ)`` as its open
    at ``t0``, the extreme adverse to the liquidated position at ``t0 + Δ//3`` (the low for a
    long; with ``bar_path="nearest"`` the extreme nearer the open), the other at
    ``t0 + 2Δ//3`` and the close at ``t0 + Δ``. The last-price trigger is the first point of
    that path, at or after the position's opening fill, whose price crosses the same
    liquidation price as the row (long: price ≤ liquidation price; short: ≥); a later step of
    the same position (a partial liquidation's next step, the takeover after it) is searched
    from the previous step's last-price instant on, and never comes if that one did not. At
    the opening
    instant the close of the candle before does not count when the position opened at a
    candle's open (a market order placed at a close fills at the next open, after that close).
    The liquidation price is the row's (the one in force at the mark's trigger); a price that
    moved before it (funding paid from an isolated margin, margin added) is not replayed.

    Loss: in isolated mode the position's margin is lost at either trigger (taken over at the
    same bankruptcy price, same fee), so ``last_price_loss_settle`` is the row's loss + fee
    and the difference is 0; when the last price never crosses within the data the position
    would still be open at the end: its loss is minus its unrealised PnL at the last price at
    the end (linear ``s·q·face·(P_end − entry)``, inverse ``s·q·face·(1/entry − 1/P_end)``,
    ``q`` the contracts the step took, entry the position's average entry from the fills;
    funding after the trigger not counted). In cross mode the loss at the other instant
    depends on the whole wallet then (other positions' PnL, funding, fees): not derived, the
    sentence says what the difference is made of.

    Returns
    -------
    pandas.DataFrame
        One row per liquidation record, in record order: ``last_price_trigger_time`` (UTC, NaT
        when never or not available), ``last_price_trigger`` ("low of the 2024-08-05 08:00
        trade candle", "never within the data (to ...)", "not available: ..."),
        ``last_price_delay`` (last-price instant − the row's time: negative = the last price
        triggers earlier; NaT when never), ``last_price_loss_settle`` (> 0 a loss),
        ``loss_difference_settle`` (last-price loss − the row's loss + fee; NaN in cross
        mode) and ``last_price_comparison`` (one sentence for the summary and the report).
        Built once per Result and cached with its tables (the summary, the HTML report and
        ``result.liquidations`` read the same frame: do not change it).
    """
    cached = getattr(result, "_cached", None)
    if cached is None:
        return _compare(result)
    frame: pd.DataFrame = cached("last_price_comparison", lambda: _compare(result))
    return frame


def _compare(result: Result) -> pd.DataFrame:
    records = result.records["liquidations"]
    n = len(records)
    trigger_ns = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    words = [""] * n
    delay_ns = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    loss = np.full(n, math.nan)
    difference = np.full(n, math.nan)
    sentences = [""] * n
    config = result.config
    methods = config.get("mark_price_method_used") or []
    modes = config.get("margin_mode") or []
    nearest = (config.get("options") or {}).get("bar_path") == "nearest"
    paths: dict[tuple[int, int], _PricePath | str] = {}
    openings: dict[int, _PositionWalk] = {}
    steps: dict[tuple[int, int], int] = {}  # (instrument, opening ns) → path index, -1 never
    for k in range(n):
        r = records[k]
        i = int(r["instrument"])
        side = int(r["side"])
        ts = int(r["ts_ns"])
        cross = i < len(modes) and str(modes[i]).lower() == "cross"
        mark_is_last = i < len(methods) and str(methods[i]).upper() == "LAST"
        prefix = "(the run's mark is the last price) " if mark_is_last else ""
        if (i, side) not in paths:
            paths[(i, side)] = _last_price_path(result, i, side, nearest)
        path = paths[(i, side)]
        if isinstance(path, str):
            words[k] = f"not available: {path}"
            sentences[k] = f"last-price model not available: {path}"
            continue
        if i not in openings:
            openings[i] = _position_walk(result, i)
        inverse = i < len(result.contract_kinds) and (
            result.contract_kinds[i] == ContractKind.INVERSE
        )
        open_ts, entry = _opening_before(openings[i], ts, inverse)
        p_ts, p_price, p_rank, p_stream, p_point, p_candle = path
        start = int(np.searchsorted(p_ts, open_ts, side="left"))
        if open_ts in openings[i][5]:  # opened at a candle's open: only the open counts then
            while start < len(p_ts) and p_ts[start] == open_ts and p_rank[start] < 2:
                start += 1
        lp = float(r["liquidation_price"])
        # a later step of the same position (partial steps, then the takeover) can only come
        # at or after the last-price model's previous step; none if that one never came
        previous = steps.get((i, open_ts))
        if previous is not None:
            start = max(start, previous)
        crossing = -1 if previous == -1 else _first_crossing(p_price, start, lp, side)
        steps[(i, open_ts)] = crossing
        step_qty = abs(float(r["contracts_before"]) - float(r["contracts_after"]))
        mark_loss = float(r["loss_settle"]) + float(r["fee_settle"])
        if crossing >= 0:
            j = crossing
            trigger_ns[k] = p_ts[j]
            delay_ns[k] = int(p_ts[j]) - ts
            words[k] = trigger_text(int(p_stream[j]), int(p_point[j]), int(p_candle[j]))
            words[k] = (
                words[k].removeprefix("triggered on the ").removesuffix(" (mark = last price)")
            )
            when = pd.Timestamp(int(p_ts[j]), unit="ns", tz="UTC")
            head = (
                f"{prefix}a last-price model would have liquidated "
                f"{_relative(delay_ns[k])} ({when:%Y-%m-%d %H:%M:%S} UTC, on the {words[k]})"
            )
            if cross:
                sentences[k] = head + (
                    "; cross margin: the loss is not derived, at that instant the position "
                    "would be taken over at the bankruptcy price of the wallet then (the "
                    "difference is the wallet's other PnL, funding and fees between the two "
                    "instants)"
                )
            else:
                loss[k] = mark_loss
                difference[k] = 0.0
                sentences[k] = head + f", losing the same margin ({mark_loss:.8g} incl. fee)"
            continue
        end_ns = int(p_ts[-1])
        end_price = float(p_price[-1])
        end_text = pd.Timestamp(end_ns, unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M")
        words[k] = f"never within the data (to {end_text} UTC)"
        head = (
            f"{prefix}a last-price model would not have liquidated within the data (last "
            f"price never at {lp:.8g} to {end_text} UTC, {end_price:.8g} at the end)"
        )
        if cross:
            sentences[k] = head + (
                "; cross margin: the loss is not derived, the position would stay open: the "
                "difference is its unrealised PnL at the end plus the wallet's funding and "
                "fees, instead of the takeover"
            )
            continue
        upl = _unrealised(result, i, side, step_qty, entry, end_price)
        if math.isnan(upl):
            sentences[k] = head + (
                "; the loss is not derived (the contract's face value is unknown: "
                "config['contracts'] names no built-in contract)"
            )
            continue
        loss[k] = -upl
        difference[k] = loss[k] - mark_loss
        sentences[k] = head + (
            f"; the position would still be open, unrealised PnL {upl:.8g} at the end instead "
            f"of losing {mark_loss:.8g}: the loss differs by {difference[k]:+.8g}"
        )
    nat = np.iinfo(np.int64).min
    return pd.DataFrame(
        {
            "last_price_trigger_time": pd.to_datetime(
                np.where(trigger_ns == nat, np.datetime64("NaT"), trigger_ns.astype("M8[ns]")),
                utc=True,
            ),
            "last_price_trigger": words,
            "last_price_delay": pd.to_timedelta(
                np.where(delay_ns == nat, np.timedelta64("NaT"), delay_ns.astype("m8[ns]"))
            ),
            "last_price_loss_settle": loss,
            "loss_difference_settle": difference,
            "last_price_comparison": sentences,
        }
    )


def last_price_lines(result: Result, limit: int = 10) -> list[str]:
    """Return the terminal summary's lines about the liquidations.

    One per liquidation step (at most ``limit``, then a count of the rest): its time, side,
    liquidation price and trigger, and what a last-price model would have done
    (:func:`last_price_comparison`).
    """
    records = result.records["liquidations"]
    if len(records) == 0:
        return []
    comparison = last_price_comparison(result)
    lines = []
    for k in range(min(limit, len(records))):
        r = records[k]
        when = pd.Timestamp(int(r["ts_ns"]), unit="ns", tz="UTC")
        kind = "partial" if r["is_partial"] else "full"
        side = "long" if r["side"] > 0 else "short"
        trigger = trigger_text(
            int(r["trigger_stream"]), int(r["trigger_point"]), int(r["trigger_candle_ns"])
        )
        lines.append(
            f"liquidation {when:%Y-%m-%d %H:%M:%S} {side} {kind} at "
            f"{float(r['liquidation_price']):.8g}, {trigger}; "
            f"{comparison['last_price_comparison'].iloc[k]}"
        )
    if len(records) > limit:
        lines.append(f"... {len(records) - limit} more liquidations (see the report)")
    return lines


def _relative(delta_ns: int) -> str:
    """Return "2 h 20 min earlier" / "at the same instant" / "1 d 3 h later" (vs the mark)."""
    if delta_ns == 0:
        return "at the same instant"
    word = "earlier" if delta_ns < 0 else "later"
    seconds = abs(int(delta_ns)) // 1_000_000_000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v} {u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")) if v]
    return f"{' '.join(parts) or f'{abs(int(delta_ns))} ns'} {word}"


# (ts_ns, price, rank at equal ts, PriceStream, PathPoint, candle open ns), sorted
_PricePath = tuple[npt.NDArray[Any], ...]
# (ts_ns, order ids, prices, position after, opening fill index, candle open times)
_PositionWalk = tuple[Any, ...]


def _market_data(result: Result, i: int) -> MarketData | None:
    """Return the market data instrument ``i`` was replayed on, when the Result holds it.

    Only an unstreamed run's price series keep it (``engine.backtest._PriceSeries``).
    """
    symbol = result.instruments[i] if i < len(result.instruments) else None
    series = result.price_series.get(symbol) if symbol is not None else None
    data: MarketData | None = getattr(series, "market_data", None)
    return data


def _last_price_path(result: Result, i: int, side: int, nearest: bool) -> _PricePath | str:
    """Return the trade-price path of instrument ``i`` as seen by a position of ``side``.

    Sorted arrays (ts_ns, price, rank at equal ts, PriceStream, PathPoint, candle open ns), or
    the reason it is not available. Rank orders equal timestamps as the engine does
    (``EventKind``): candle extremes and closes (0), trade ticks (1), candle opens (2).
    """
    data = _market_data(result, i)
    if data is None:
        return (
            "the Result does not hold the trade prices (a streamed replay keeps a thinned "
            "series, a loaded or unpickled run none)"
        )
    bars = data.bars
    trades = data.trades
    if len(bars) == 0 and len(trades) == 0:
        return "no trade candles or ticks in the data"
    interval = int(data.bar_interval_ns)
    t0 = np.asarray(bars["ts_ns"], dtype=np.int64)
    o = np.asarray(bars["open"], dtype=np.float64)
    hi = np.asarray(bars["high"], dtype=np.float64)
    lo = np.asarray(bars["low"], dtype=np.float64)
    if nearest:
        # the engine's bar_path_nb: the high first when it is no farther from the open
        low_first = ~(hi - o <= o - lo)
    else:
        low_first = np.full(len(bars), side > 0)
    low_first &= lo != hi
    first = np.where(low_first, lo, hi)
    second = np.where(low_first, hi, lo)
    first_point = np.where(low_first, int(PathPoint.LOW), int(PathPoint.HIGH))
    second_point = np.where(low_first, int(PathPoint.HIGH), int(PathPoint.LOW))
    m = len(bars)
    ts = np.concatenate(
        [t0, t0 + interval // 3, t0 + 2 * interval // 3, t0 + interval, trades["ts_ns"]]
    )
    price = np.concatenate([o, first, second, bars["close"], trades["price"]])
    rank = np.concatenate([np.full(m, 2), np.zeros(3 * m, dtype=np.int64), np.ones(len(trades))])
    stream = np.concatenate(
        [np.full(4 * m, int(PriceStream.BARS)), np.full(len(trades), int(PriceStream.TRADES))]
    )
    point = np.concatenate(
        [
            np.full(m, int(PathPoint.OPEN)),
            first_point,
            second_point,
            np.full(m, int(PathPoint.CLOSE)),
            np.full(len(trades), int(PathPoint.TICK)),
        ]
    )
    candle = np.concatenate([t0, t0, t0, t0, trades["ts_ns"]])
    order = np.lexsort((rank, ts))
    return (
        ts[order].astype(np.int64),
        price[order].astype(np.float64),
        rank[order].astype(np.int64),
        stream[order],
        point[order],
        candle[order].astype(np.int64),
    )


def _first_crossing(prices: np.ndarray, start: int, level: float, side: int) -> int:
    """Return the index of the first ``prices[k]``, ``k >= start``, through ``level``, or -1.

    At or through ``level`` against ``side`` (long: ≤, short: ≥). Scanned in growing blocks, so
    a crossing near the start costs little on a long path and many liquidations stay cheap.
    """
    block = 4_096
    k = start
    while k < len(prices):
        part = prices[k : k + block]
        hits = np.flatnonzero(part <= level if side > 0 else part >= level)
        if len(hits):
            return k + int(hits[0])
        k += block
        block *= 4
    return -1


def _position_walk(result: Result, i: int) -> _PositionWalk:
    """Return instrument ``i``'s fills walked in order.

    Their times, order ids, prices, signed position after each, the index of the fill that
    opened the position held after each (-1 when flat), and the set of the data's candle open
    times. A fill opens a position when the one before was flat or on the other side.
    """
    fills = result.records["fills"]
    mine = fills[fills["instrument"] == i]
    after = np.asarray(mine["position_after_contracts"], dtype=np.float64)
    before = np.r_[0.0, after[:-1]]
    opens = (after != 0.0) & ((before == 0.0) | (np.sign(after) != np.sign(before)))
    # forward-fill the index of the last opening fill; flat after a fill: -1
    marker = np.where(opens, np.arange(len(after)), -1)
    opening = np.maximum.accumulate(marker) if len(marker) else marker
    opening = np.where(after == 0.0, -1, opening)
    data = _market_data(result, i)
    bar_opens = set() if data is None else set(np.asarray(data.bars["ts_ns"]).tolist())
    return (
        np.asarray(mine["ts_ns"], dtype=np.int64),
        np.asarray(mine["order_id"], dtype=np.int64),
        np.asarray(mine["price"], dtype=np.float64),
        after,
        opening,
        bar_opens,
    )


def _opening_before(walk: _PositionWalk, ts: int, inverse: bool) -> tuple[int, float]:
    """Return (opening time, average entry) of the position a liquidation at ``ts`` takes.

    The state after the last fill before it (fills of orders at ``ts`` itself included, the
    liquidation fills of that instant not). The average entry is walked from the opening fill:
    weighted by contracts (linear) or harmonic (inverse); reductions keep it.
    """
    times, order_ids, prices, after, opening, _ = walk
    j = int(np.searchsorted(times, ts, side="left"))
    while j < len(times) and times[j] == ts and order_ids[j] >= 0:
        j += 1
    if j == 0 or opening[j - 1] < 0:
        return 0, math.nan
    first = int(opening[j - 1])
    entry = float(prices[first])
    held = abs(float(after[first]))
    for k in range(first + 1, j):
        size = abs(float(after[k]))
        if size > held:
            added = size - held
            if inverse:
                entry = size / (held / entry + added / float(prices[k]))
            else:
                entry = (held * entry + added * float(prices[k])) / size
        held = size
    return int(times[first]), entry


def _unrealised(result: Result, i: int, side: int, qty: float, entry: float, price: float) -> float:
    """Return the unrealised PnL (settle currency) of a position at ``price``.

    ``qty`` contracts of ``side`` entered at ``entry``: linear ``s·q·face·(P − entry)``,
    inverse ``s·q·face·(1/entry − 1/P)``; NaN when the face value is unknown.
    """
    from backtester.report.metrics import contract_attr

    face = contract_attr(result, i, "face_value")
    if face is None or not math.isfinite(entry):
        return math.nan
    kind = result.contract_kinds[i] if i < len(result.contract_kinds) else 0
    if kind == ContractKind.INVERSE:
        return side * qty * float(face) * (1.0 / entry - 1.0 / price)
    return side * qty * float(face) * (price - entry)
