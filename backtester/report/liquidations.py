"""Liquidation report: one row per full or partial liquidation, with the margin path before it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from backtester.enums import PathPoint, PriceStream, Side

if TYPE_CHECKING:
    from backtester.results import Result

__all__ = ["liquidation_report"]


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
        :func:`trigger_text`). One row per step: a partial liquidation's steps and the takeover
        that may follow, and in cross mode one row per position taken over.
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
    """One line saying which price update triggered a liquidation, from the record's
    ``trigger_stream`` (PriceStream), ``trigger_point`` (PathPoint) and ``trigger_candle_ns``:
    "triggered on the low of the 2024-08-05 10:00 mark candle", "triggered on the mark point of
    2024-08-05 10:00:00", "triggered on the trade of ...". Candle paths are replayed as open,
    adverse extreme (at a third of the interval), other extreme (two thirds), close
    (:func:`backtester.data.market.candle_path_points`)."""
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
