"""Ranking a sweep's results by a metric, and the table of its records.

A sweep of thousands of combinations is ranked on its records (the JSON dicts of the store)
with one ``numpy.argsort``: :func:`rank_records` builds no pandas object. The pandas table
(:func:`results_frame`) is built only for what shows it (``results.csv``, ``sweep.html``, the
console table), from the records in ranked order.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from backtester.checks import suggestion
from backtester.sweep.grid import RUN_SETTINGS

if TYPE_CHECKING:
    import pandas as pd

_NOT_METRICS = ("status", "error", "key")
"""Columns of a result row that are bookkeeping, never ranked by (nor are the ``worker_*``
figures a worker adds: :func:`backtester.jobs.evaluate_backtest`)."""


def _is_bookkeeping(name: str) -> bool:
    return name in _NOT_METRICS or name.startswith("worker_")


def record_row(record: dict[str, Any], dimensions: Sequence[str]) -> dict[str, Any]:
    """Return the row of one stored record.

    The swept dimensions, ``status``, ``error``, every scalar metric, then ``key``. A
    dimension that is a run setting (:data:`~backtester.sweep.grid.RUN_SETTINGS`) is read from
    the job's top level, a strategy parameter from ``job["params"]``.
    """
    job = record["job"]
    row: dict[str, Any] = {}
    for name in dimensions:
        row[name] = job.get(name) if name in RUN_SETTINGS else job.get("params", {}).get(name)
    row["status"] = record["status"]
    row["error"] = record["error"]
    row.update(
        {
            k: v
            for k, v in record["metrics"].items()
            if isinstance(v, int | float | str | bool) or v is None
        }
    )
    row["key"] = record["key"]
    return row


def results_frame(records: Sequence[dict[str, Any]], dimensions: Sequence[str]) -> pd.DataFrame:
    """Return one row per record (:func:`record_row`) as a pandas table, in the records' order."""
    import pandas as pd

    return pd.DataFrame([record_row(record, dimensions) for record in records])


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real)  # int, float, bool and their numpy scalars


def rank_records(
    records: Sequence[dict[str, Any]],
    rank_by: str,
    dimensions: Sequence[str] = (),
    *,
    ascending: bool = False,
) -> list[dict[str, Any]]:
    """Return the records sorted by the column ``rank_by``, best first, without a pandas table.

    The column is a swept dimension or a metric of the rows (:func:`record_row`). Order: by
    value, descending (``ascending=False``) or ascending; a record without a value (a failed
    combination, a metric that is None or NaN) goes last; equal values keep the records' order
    (a stable sort: ``numpy.argsort(kind="stable")`` of the values, negated for descending).

    Raises
    ------
    ValueError
        When ``rank_by`` is not a column, or a column holding anything but numbers (``rank-by:
        not a numeric metric``), with a suggestion among the numeric columns.
    """
    rows = [record_row(record, dimensions) for record in records]
    columns: dict[str, bool] = {}  # column -> every value present is a number
    for row in rows:
        for name, value in row.items():
            if not _is_bookkeeping(name) and value is not None:
                columns[name] = columns.get(name, True) and _is_number(value)
    numeric = [name for name, is_numeric in columns.items() if is_numeric]
    if rank_by not in numeric:
        known = any(rank_by in row for row in rows) and not _is_bookkeeping(rank_by)
        what = "not a numeric metric" if known else "unknown metric"
        raise ValueError(f"rank-by: {what} {rank_by!r}; {suggestion(rank_by, numeric)}")
    values = np.array(
        [np.nan if row.get(rank_by) is None else float(row[rank_by]) for row in rows],
        dtype=np.float64,
    )
    # NaN sorts last either way; negating keeps the first of equal values first
    order = np.argsort(values if ascending else -values, kind="stable")
    return [records[int(i)] for i in order]


class SweepFailed(RuntimeError):
    """Every combination failed, so there is nothing to rank (``backtester`` exit code 1)."""


def check_some_ok(records: Sequence[dict[str, Any]], what: str) -> None:
    """Raise :class:`SweepFailed` (with the first error) when no record has status ``ok``."""
    errors = [r for r in records if r["status"] != "ok"]
    if records and len(errors) == len(records):
        raise SweepFailed(
            f"{what}: all {len(records)} combinations failed; first error: {errors[0]['error']}"
        )


RANK_METRICS = (
    "annual_volatility", "average_trade_settle", "cagr", "calmar", "clawback_adl_settle",
    "clawback_settle", "exposure", "fees_settle", "fill_count", "final_balance_settle",
    "final_equity_settle", "funding_paid_settle", "funding_received_settle",
    "initial_balance_settle", "insurance_fund_end_settle", "insurance_fund_start_settle",
    "liquidation_cost_settle", "liquidations", "max_drawdown", "max_drawdown_duration_days",
    "periods_per_year", "profit_factor", "sharpe", "sortino", "total_return", "trades",
    "turnover_contracts", "turnover_ratio", "turnover_settle", "uncovered_deficit_pending_settle",
    "win_rate", "worst_margin_ratio",
)  # fmt: skip
"""The numeric metrics of every run (:func:`summarise_result`); an inverse contract adds the
``*_usd`` twin of each money and return figure (a test checks both against real runs)."""


def check_rank_by(rank_by: str, dimensions: Sequence[str], inverse: bool) -> None:
    """Refuse an unknown ``--rank-by`` before the first run (``ValueError`` with a suggestion).

    Known: a metric of :data:`RANK_METRICS`, its ``_usd`` twin on an inverse contract, or a
    swept numeric dimension.
    """
    known = [*RANK_METRICS, *dimensions]
    twins = {twin: m for m in RANK_METRICS if (twin := usd_twin(m)) is not None}
    if inverse:
        known += list(twins)
    if rank_by in known:
        return
    if rank_by in twins:
        raise ValueError(
            f"rank-by: {rank_by!r} exists for inverse (coin-margined) contracts only; "
            f"use {twins[rank_by]!r}"
        )
    raise ValueError(f"rank-by: unknown metric {rank_by!r}; {suggestion(rank_by, known)}")


def usd_twin(metric: str) -> str | None:
    """Return the name of ``metric``'s USD value on an inverse contract, None when it has none.

    As report.metrics names them: money figures ``*_settle`` -> ``*_usd``, the return block
    ``+ _usd``.
    """
    if metric.endswith("_settle"):
        return metric[: -len("_settle")] + "_usd"
    if metric in (
        "exposure", "fill_count", "liquidations", "periods_per_year", "profit_factor", "trades",
        "turnover_contracts", "turnover_ratio", "win_rate", "worst_margin_ratio",
    ):  # fmt: skip
        return None
    return metric + "_usd"
