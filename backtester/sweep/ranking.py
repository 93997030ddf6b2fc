"""Ranking a sweep's results by a metric, and the table of its records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from backtester.checks import suggestion
from backtester.sweep.grid import RUN_SETTINGS


def results_frame(records: Sequence[dict[str, Any]], dimensions: Sequence[str]) -> pd.DataFrame:
    """One row per record: the swept dimensions, ``status``, ``error`` and every metric."""
    rows = []
    for record in records:
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
        rows.append(row)
    return pd.DataFrame(rows)


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
    """Refuse an unknown ``--rank-by`` before the first run (``ValueError`` with a suggestion):
    a metric of :data:`RANK_METRICS`, its ``_usd`` twin on an inverse contract, or a swept
    numeric dimension."""
    known = [*RANK_METRICS, *dimensions]
    twins = {usd_twin(m): m for m in RANK_METRICS if usd_twin(m)}
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
    """The name of ``metric``'s USD value on an inverse contract (report.metrics: money
    figures ``*_settle`` -> ``*_usd``, the return block ``+ _usd``), None when it has none."""
    if metric.endswith("_settle"):
        return metric[: -len("_settle")] + "_usd"
    if metric in (
        "exposure", "fill_count", "liquidations", "periods_per_year", "profit_factor", "trades",
        "turnover_contracts", "turnover_ratio", "win_rate", "worst_margin_ratio",
    ):  # fmt: skip
        return None
    return metric + "_usd"


def rank(frame: pd.DataFrame, rank_by: str, *, ascending: bool = False) -> pd.DataFrame:
    """Sort by a numeric column (best first; NaN and errors last). A column that is missing or
    not numeric → ``ValueError`` suggesting the numeric ones."""
    metrics = [
        c
        for c in frame.columns
        if c not in ("status", "error", "key") and pd.api.types.is_numeric_dtype(frame[c])
    ]
    if rank_by not in metrics:
        what = "not a numeric metric" if rank_by in frame.columns else "unknown metric"
        raise ValueError(f"rank-by: {what} {rank_by!r}; {suggestion(rank_by, metrics)}")
    values = pd.to_numeric(frame[rank_by], errors="coerce")
    order = values.sort_values(ascending=ascending, na_position="last", kind="stable").index
    return frame.loc[order].reset_index(drop=True)
