"""Returns by period: monthly/yearly table, worst drawdowns, rolling ratios, benchmark, funding.

All of it starts from the daily return series of :meth:`Result.returns` (equity at the last
sample of each UTC day, first return from the initial balance; 365 periods a year, crypto
trades every day). Definitions match quantstats/empyrical (tested against them):

- month / year return = Π(1 + r) − 1 over the days of the month / year (quantstats
  ``monthly_returns(compounded=True)``);
- drawdown at day t = wealth_t / max(wealth up to t) − 1, wealth starting at 1 before the first
  return; a drawdown period runs from the last day at the peak ("start") through the deepest day
  ("trough") to the first day back at the peak ("recovery", NaT while still under water);
- rolling Sharpe / volatility over ``window`` days = empyrical ``roll_sharpe_ratio`` /
  ``roll_annual_volatility`` with ``annualization=365``;
- buy-and-hold benchmark: at the first equity sample, a position of leverage × initial balance
  in the same instrument (contracts = balance × leverage × price / face for inverse, balance ×
  leverage / (price × face) for linear), held to the end at the mark, without fees or funding;
  its equity is floored at 0 (a wiped-out benchmark stays at 0).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from backtester.enums import ContractKind

if TYPE_CHECKING:
    from backtester.results import Result

__all__ = [
    "benchmark_returns",
    "beta",
    "drawdown_series",
    "funding_by_month",
    "monthly_returns",
    "rolling_sharpe",
    "rolling_volatility",
    "worst_drawdowns",
]

PERIODS_PER_YEAR = 365.0
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month (rows: years, columns Jan..Dec, then ``Year``).

    Months without any return are NaN; ``Year`` compounds the year's days.
    """
    if len(returns) == 0:
        return pd.DataFrame(columns=[*MONTHS, "Year"], dtype=np.float64)
    index = pd.DatetimeIndex(returns.index)
    growth = 1.0 + returns.astype(np.float64)
    by_month = growth.groupby([index.year, index.month]).prod() - 1.0
    table = by_month.unstack().reindex(columns=range(1, 13))
    table.columns = list(MONTHS)
    table["Year"] = growth.groupby(index.year).prod() - 1.0
    table.index.name = "year"
    return table


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Return wealth / running max − 1 at each day (≤ 0), wealth 1 before the first day."""
    wealth = np.cumprod(1.0 + returns.to_numpy(dtype=np.float64))
    peak = np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:]
    return pd.Series(wealth / peak - 1.0, index=returns.index, name="drawdown")


def worst_drawdowns(returns: pd.Series, count: int = 5) -> pd.DataFrame:
    """Return the ``count`` deepest drawdown periods, deepest first.

    Columns: ``start`` (last day at the peak before it; the day before the first return when
    the run starts under water), ``trough``, ``recovery`` (first day back at the peak, NaT if
    never), ``depth`` (fraction, < 0), ``length_days`` (start to recovery, or to the last day),
    ``recovered`` (bool).
    """
    columns = ["start", "trough", "recovery", "depth", "length_days", "recovered"]
    if len(returns) == 0:
        return pd.DataFrame(columns=columns)
    drawdown = drawdown_series(returns).to_numpy()
    index = pd.DatetimeIndex(returns.index)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta("1D")
    rows = []
    i, n = 0, len(drawdown)
    while i < n:
        if drawdown[i] >= 0.0:
            i += 1
            continue
        start = index[i - 1] if i > 0 else index[0] - step
        j = i
        while j < n and drawdown[j] < 0.0:
            j += 1
        trough = i + int(np.argmin(drawdown[i:j]))
        recovered = j < n
        end = index[j] if recovered else index[-1]
        rows.append({
            "start": start,
            "trough": index[trough],
            "recovery": index[j] if recovered else pd.NaT,
            "depth": float(drawdown[trough]),
            "length_days": (end - start) / pd.Timedelta("1D"),
            "recovered": recovered,
        })  # fmt: skip
        i = j
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("depth", kind="stable").head(count).reset_index(drop=True)


def rolling_sharpe(returns: pd.Series, window: int = 30) -> pd.Series:
    """Annualised Sharpe over the last ``window`` days: mean / std(ddof=1) · √365 (NaN before)."""
    roll = returns.astype(np.float64).rolling(window)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = roll.mean() / roll.std(ddof=1) * math.sqrt(PERIODS_PER_YEAR)
    return values.rename("rolling_sharpe")


def rolling_volatility(returns: pd.Series, window: int = 30) -> pd.Series:
    """Annualised volatility over the last ``window`` days: std(ddof=1) · √365 (NaN before)."""
    values = returns.astype(np.float64).rolling(window).std(ddof=1) * math.sqrt(PERIODS_PER_YEAR)
    return values.rename("rolling_volatility")


def benchmark_returns(result: Result, freq: str = "1D") -> pd.Series:
    """Daily returns of a buy-and-hold long of the first instrument (module docstring).

    Uses the mark price of the equity records (the price the run's own equity is valued at)
    and the run's leverage; empty when the face value or a price is unknown.
    """
    from backtester.report.metrics import contract_attr

    equity = result.records["equity"]
    mark = np.asarray(equity["mark_price"], dtype=np.float64)
    ok = np.isfinite(mark) & (mark > 0)
    face = contract_attr(result, 0, "face_value")
    if not ok.any() or face is None:
        return pd.Series(dtype=np.float64, name="benchmark")
    ts = np.asarray(equity["ts_ns"])[ok]
    mark = mark[ok]
    leverage = result.config.get("leverage", 1.0)
    if isinstance(leverage, list | tuple):
        leverage = leverage[0] if leverage else 1.0
    leverage = float(leverage)
    initial = float(result.initial_balance_settle)
    entry = float(mark[0])
    kind = result.contract_kinds[0] if result.contract_kinds else ContractKind.LINEAR
    if kind == ContractKind.INVERSE:
        contracts = initial * leverage * entry / face
        pnl = contracts * face * (1.0 / entry - 1.0 / mark)
    else:
        contracts = initial * leverage / (entry * face)
        pnl = contracts * face * (mark - entry)
    wealth = initial + pnl
    wiped = np.flatnonzero(wealth <= 0.0)
    if len(wiped):  # liquidated: the benchmark stays at 0 even if the price comes back
        wealth[wiped[0] :] = 0.0
    series = pd.Series(wealth, index=pd.to_datetime(ts, unit="ns", utc=True))
    grid = series.resample(freq).last().ffill()
    values = np.concatenate([[initial], grid.to_numpy()])
    with np.errstate(divide="ignore", invalid="ignore"):
        changes = values[1:] / values[:-1] - 1.0
    changes = np.where(values[:-1] == 0.0, 0.0, changes)  # wiped out: stays at 0
    return pd.Series(changes, index=grid.index, name="benchmark")


def beta(returns: pd.Series, benchmark: pd.Series) -> float:
    """cov(strategy, benchmark) / var(benchmark) over the days both have (empyrical ``beta``)."""
    aligned = pd.concat([returns.rename("s"), benchmark.rename("b")], axis=1).dropna()
    if len(aligned) < 2:
        return math.nan
    s = aligned["s"].to_numpy(dtype=np.float64)
    b = aligned["b"].to_numpy(dtype=np.float64)
    var = float(np.mean(np.square(b - b.mean())))
    if var == 0.0:
        return math.nan
    return float(np.mean((s - s.mean()) * (b - b.mean()))) / var


def funding_by_month(result: Result) -> pd.DataFrame:
    """Funding paid (< 0), received (> 0) and net per calendar month, settle currency."""
    payments = result.records["funding_payments"]
    columns = ["paid_settle", "received_settle", "net_settle", "payments"]
    if len(payments) == 0:
        return pd.DataFrame(columns=columns)
    amount = pd.Series(
        np.asarray(payments["payment_settle"], dtype=np.float64),
        index=pd.to_datetime(payments["ts_ns"], unit="ns", utc=True),
    )
    month = pd.DatetimeIndex(amount.index).strftime("%Y-%m")
    groups = amount.groupby(month)
    frame = pd.DataFrame({
        "paid_settle": groups.apply(lambda s: math.fsum(s[s < 0].tolist())),
        "received_settle": groups.apply(lambda s: math.fsum(s[s > 0].tolist())),
        "net_settle": groups.apply(lambda s: math.fsum(s.tolist())),
        "payments": groups.size(),
    })  # fmt: skip
    frame.index.name = "month"
    return frame
