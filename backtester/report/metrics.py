"""Performance metrics of a Result: returns, risk ratios, drawdown, trades, costs, liquidations.

Conventions (stated once, used everywhere here):

- Return-based metrics use the equity (balance + unrealised PnL at mark) resampled to a regular
  grid, daily by default: the last equity sample of each UTC day, carried forward over days
  without samples; the grid starts with the initial balance at the first sample's day. Returns are
  simple returns ``E[t] / E[t−1] − 1``.
- Crypto perpetuals trade 24/7, so a daily grid has **365** periods per year (empyrical's default
  ``DAILY`` is 252 trading days; pass ``annualization=365`` to empyrical to compare). For another
  grid pass ``frequency`` and the matching ``periods_per_year``.
- Sharpe = mean / std(ddof=1) · √periods; Sortino = mean · periods / (√mean(min(r, 0)²) · √periods);
  annual volatility = std(ddof=1) · √periods; CAGR = (Π(1 + r))^(periods / n) − 1; max drawdown
  = min over the cumulative wealth path (starting at 1) of wealth / running max − 1; Calmar =
  CAGR / |max drawdown|. Risk-free rate 0. These are empyrical's definitions (tested against it).
- A "trade" is a fill that realised PnL (it reduced or closed a position); its result is the
  realised PnL minus that fill's fee. Win rate and profit factor count those. Under daily
  settlement (OKX 2019 coin-margined) much of a position's PnL is moved to the balance by the
  settlements before the closing fill, so these per-trade figures then show only the remainder;
  the PnL attribution's ``settlement_settle`` line holds the rest.
- For inverse contracts (coin-margined) every money figure is also given in USD (``*_usd`` keys):
  the USD equity path is equity × the mark price of the first instrument at each equity sample
  (its returns give the ``*_usd`` ratios); money totals (fees, funding, liquidation cost...) are
  valued at the last mark of the run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from backtester.enums import ContractKind, LedgerKind, MarginRatioForm

if TYPE_CHECKING:
    from collections.abc import Callable

    from backtester.results import Result

__all__ = [
    "annual_volatility",
    "cagr",
    "compute_metrics",
    "contract_attr",
    "equity_series",
    "max_drawdown",
    "regular_grid",
    "regular_returns",
    "sharpe_ratio",
    "sortino_ratio",
    "summary_metrics",
]

_NS_PER_DAY = 86_400_000_000_000


# --------------------------------------------------------------------------- return statistics


def sharpe_ratio(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sharpe ratio, risk-free 0: mean / std(ddof=1) · √periods (NaN if < 2 returns)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    std = float(np.std(r, ddof=1))
    if std == 0.0:
        return math.nan
    return float(np.mean(r)) / std * math.sqrt(periods_per_year)


def sortino_ratio(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sortino ratio, target 0: mean·periods / (√mean(min(r,0)²)·√periods).

    ``inf`` when there is no losing period and the mean is positive (as empyrical).
    """
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.square(np.minimum(r, 0.0))))) * math.sqrt(
        periods_per_year
    )
    mean = float(np.mean(r)) * periods_per_year
    if downside == 0.0:
        return math.inf if mean > 0 else (-math.inf if mean < 0 else math.nan)
    return mean / downside


def annual_volatility(returns: np.ndarray, periods_per_year: float) -> float:
    """std(ddof=1) · √periods (NaN if < 2 returns)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    return float(np.std(r, ddof=1)) * math.sqrt(periods_per_year)


def cagr(returns: np.ndarray, periods_per_year: float) -> float:
    """Compound annual growth rate: (Π(1 + r))^(periods / n) − 1 (NaN if empty)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) == 0:
        return math.nan
    ending = float(np.prod(1.0 + r))
    growth: float = ending ** (periods_per_year / len(r))
    return growth - 1.0


def max_drawdown(returns: np.ndarray) -> float:
    """Most negative wealth / running-max − 1 over the wealth path starting at 1 (≤ 0)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) == 0:
        return math.nan
    wealth = np.concatenate([[100.0], 100.0 * np.cumprod(1.0 + r)])
    peak = np.fmax.accumulate(wealth)
    return float(np.min((wealth - peak) / peak))


# --------------------------------------------------------------------------- equity


def equity_series(result: Result, currency: str = "settle") -> pd.Series:
    """Equity at every equity sample, indexed by UTC timestamp.

    Parameters
    ----------
    result
        The backtest result.
    currency
        ``"settle"``, or ``"usd"`` (equity × mark price; meaningful for inverse contracts).
    """
    equity = result.records["equity"]
    values = np.asarray(equity["equity_settle"], dtype=np.float64)
    if currency == "usd":
        values = values * equity["mark_price"]
    elif currency != "settle":
        raise ValueError(f"currency: expected 'settle' or 'usd', got {currency!r}")
    index = pd.to_datetime(equity["ts_ns"], unit="ns", utc=True)
    return pd.Series(values, index=index, name=f"equity_{currency}")


def regular_returns(
    equity: pd.Series, initial_equity: float, frequency: str = "1D"
) -> tuple[pd.Series, np.ndarray]:
    """Resample equity to a regular grid and return (grid equity, simple returns).

    The last sample of each bucket is kept and carried forward over empty buckets; the grid is
    prefixed with ``initial_equity`` one bucket before the first, so the first return is the
    first bucket's change from the start.
    """
    if len(equity) == 0:
        return pd.Series(dtype=np.float64), np.zeros(0)
    grid = equity.resample(frequency).last().ffill()
    start = pd.Series([initial_equity], index=[grid.index[0] - pd.Timedelta(frequency)])
    grid = pd.concat([start, grid])
    values = grid.to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = values[1:] / values[:-1] - 1.0
    return grid, returns


def _drawdown_duration_days(equity: pd.Series) -> float:
    """Longest time from an equity peak until the first sample back at it (or the end), in days."""
    ts = pd.DatetimeIndex(equity.index).as_unit("ns").asi8
    return _duration_days(ts, equity.to_numpy(dtype=np.float64))


# --------------------------------------------------------------------------- helpers


def contract_attr(result: Result, index: int, name: str) -> Any:
    """Return an attribute of instrument ``index``'s ContractSpec (from config), or None.

    The report's one way to a contract fact (face value, liquidation rule, tiers, profile):
    the Result stores the contract by name (``config["contracts"]``), resolved here with
    :func:`backtester.swap.contract.get_contract`; None when the name is not a built-in one.
    """
    names = result.config.get("contracts") or []
    if index >= len(names) or not isinstance(names[index], str):
        return None
    try:
        from backtester.swap.contract import get_contract

        spec = get_contract(names[index])
    except (ImportError, KeyError, ValueError):
        return None
    if name == "liquidation_rule":
        return spec.profile.liquidation_rule
    return getattr(spec, name, None)


def _notional_settle(result: Result) -> float:
    """Σ |fill value| in settle currency (linear N·F·P, inverse N·F/P), NaN if face unknown."""
    fills = result.records["fills"]
    total = 0.0
    for index in range(len(result.instruments)):
        mine = fills[fills["instrument"] == index]
        if len(mine) == 0:
            continue
        face = contract_attr(result, index, "face_value")
        if face is None:
            return math.nan
        kind = result.contract_kinds[index] if index < len(result.contract_kinds) else 0
        if kind == ContractKind.INVERSE:
            total += math.fsum(np.abs(mine["qty_contracts"]) * face / mine["price"])
        else:
            total += math.fsum(np.abs(mine["qty_contracts"]) * face * mine["price"])
    return total


def ratio_rises_to_liquidation(result: Result) -> bool:
    """Return whether the first instrument's displayed margin ratio rises toward liquidation.

    It rises for MAINTENANCE_OVER_BALANCE (Binance) and falls for every other form, by the
    rule's terms (``margin_nb.liquidation_rule_terms_nb``).
    """
    from backtester.swap.margin_nb import liquidation_rule_terms_nb

    rule = contract_attr(result, 0, "liquidation_rule")
    if rule is None:
        return False
    return bool(liquidation_rule_terms_nb(int(rule))[0] == MarginRatioForm.MAINTENANCE_OVER_BALANCE)


def _worst_margin_ratio(result: Result) -> float:
    ratio = np.asarray(result.records["equity"]["margin_ratio"], dtype=np.float64)
    ratio = ratio[np.isfinite(ratio)]
    if len(ratio) == 0:
        return math.nan
    # Binance shows MM / margin balance (higher is worse); every other venue the inverse way.
    if ratio_rises_to_liquidation(result):
        return float(np.max(ratio))
    return float(np.min(ratio))


def _trade_stats(result: Result) -> dict[str, float]:
    fills = result.records["fills"]
    closing = fills[fills["realised_pnl_settle"] != 0.0]
    net = np.asarray(closing["realised_pnl_settle"] - closing["fee_settle"], dtype=np.float64)
    wins, losses = net[net > 0], net[net < 0]
    gross_win, gross_loss = math.fsum(wins), -math.fsum(losses)
    return {
        "trades": len(net),
        "win_rate": len(wins) / len(net) if len(net) else math.nan,
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else math.nan,
        "average_trade_settle": math.fsum(net) / len(net) if len(net) else math.nan,
    }


def _return_metrics(
    returns: np.ndarray,
    final: float,
    initial: float,
    periods_per_year: float,
    drawdown_days: float,
    suffix: str,
) -> dict[str, float]:
    """Return the return block of the summary from one regular grid's returns (both paths)."""
    mdd = max_drawdown(returns)
    growth = cagr(returns, periods_per_year)
    return {
        f"total_return{suffix}": final / initial - 1.0 if initial else math.nan,
        f"cagr{suffix}": growth,
        f"annual_volatility{suffix}": annual_volatility(returns, periods_per_year),
        f"sharpe{suffix}": sharpe_ratio(returns, periods_per_year),
        f"sortino{suffix}": sortino_ratio(returns, periods_per_year),
        f"max_drawdown{suffix}": mdd,
        f"calmar{suffix}": growth / abs(mdd) if mdd and mdd < 0 else math.nan,
        f"max_drawdown_duration_days{suffix}": drawdown_days,
    }


def _return_block(
    equity: pd.Series, initial: float, frequency: str, periods_per_year: float, suffix: str
) -> dict[str, float]:
    _, returns = regular_returns(equity, initial, frequency)
    final = float(equity.iloc[-1]) if len(equity) else initial
    return _return_metrics(
        returns, final, initial, periods_per_year, _drawdown_duration_days(equity), suffix
    )


def _cash_lines(
    result: Result, fees_settle: float, funding_paid_settle: float, funding_received_settle: float
) -> dict[str, float]:
    """Fees, funding, exposure, turnover, liquidation and clawback lines (both metric paths)."""
    records = result.records
    equity = records["equity"]
    ledger = records["ledger"]
    liquidations = records["liquidations"]
    kinds = np.asarray(ledger["kind"])
    amounts = np.asarray(ledger["amount_settle"], dtype=np.float64)
    return {
        "fees_settle": fees_settle,
        "funding_paid_settle": funding_paid_settle,
        "funding_received_settle": funding_received_settle,
        "exposure": float(np.mean(equity["position_contracts"] != 0.0)) if len(equity) else 0.0,
        "turnover_settle": _notional_settle(result),
        "turnover_contracts": math.fsum(np.abs(records["fills"]["qty_contracts"])),
        "liquidations": len(liquidations),
        "liquidation_cost_settle": math.fsum(liquidations["loss_settle"])
        + math.fsum(liquidations["fee_settle"]),
        "clawback_adl_settle": -math.fsum(
            amounts[np.isin(kinds, [LedgerKind.CLAWBACK, LedgerKind.ADL])]
        ),
        "worst_margin_ratio": _worst_margin_ratio(result),
    }


def _fund_and_usd_lines(
    metrics: dict[str, Any],
    result: Result,
    initial: float,
    usd_block: Callable[[float], dict[str, float]],
) -> None:
    """Add the insurance-fund lines, the turnover ratio and, when inverse, the USD lines.

    For an inverse contract: the USD block (``usd_block(initial_usd)``) and every ``*_settle``
    money line in USD at the last mark.

    The venue's insurance fund as the run left it, and the clawback taken for what it could not
    cover (engine.backtest option ``insurance_fund_settle``; MECHANICS.md §6).
    """
    fund = result.config.get("insurance_fund", {})
    ledger = result.records["ledger"]
    metrics.update(
        {
            "insurance_fund_start_settle": float(fund.get("start_settle", math.nan)),
            "insurance_fund_end_settle": float(fund.get("end_settle", math.nan)),
            "uncovered_deficit_pending_settle": float(
                fund.get("uncovered_deficit_pending_settle", 0.0)
            ),
            "clawback_settle": -math.fsum(
                ledger["amount_settle"][ledger["kind"] == LedgerKind.CLAWBACK]
            ),
        }
    )
    metrics["turnover_ratio"] = metrics["turnover_settle"] / initial if initial else math.nan
    equity = result.records["equity"]
    if not (any(k == ContractKind.INVERSE for k in result.contract_kinds) and len(equity)):
        return
    mark = np.asarray(equity["mark_price"], dtype=np.float64)
    finite = mark[np.isfinite(mark) & (mark > 0)]
    first_mark = float(finite[0]) if len(finite) else math.nan
    last_mark = float(finite[-1]) if len(finite) else math.nan
    metrics.update(usd_block(initial * first_mark))
    metrics["initial_balance_usd"] = initial * first_mark
    metrics["final_equity_usd"] = result.final_equity_settle * last_mark
    for key in [k for k in metrics if k.endswith("_settle") and k != "initial_balance_settle"]:
        if key in ("final_equity_settle",):
            continue
        metrics[key.removesuffix("_settle") + "_usd"] = metrics[key] * last_mark


def compute_metrics(
    result: Result, periods_per_year: float = 365.0, frequency: str = "1D"
) -> dict[str, Any]:
    """Compute every summary metric of a run (conventions in the module docstring).

    Parameters
    ----------
    result
        The backtest result.
    periods_per_year
        Periods of ``frequency`` in a year: 365 for daily on a 24/7 market (not 252).
    frequency
        pandas offset of the regular grid the equity is resampled to (default ``"1D"``).

    Returns
    -------
    dict
        Ratios are fractions (0.1 = 10 %). Money keys end in ``_settle`` (settle currency) and,
        for inverse contracts, ``_usd``; ``max_drawdown`` is ≤ 0; durations in days.
    """
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year: expected > 0, got {periods_per_year!r}")
    from backtester.report.attribution import pnl_attribution

    initial = float(result.initial_balance_settle)
    equity = equity_series(result)
    metrics: dict[str, Any] = {
        "settle_currency": result.settle_currency,
        "start": str(equity.index[0]) if len(equity) else "",
        "end": str(equity.index[-1]) if len(equity) else "",
        "initial_balance_settle": initial,
        "final_balance_settle": result.final_balance_settle,
        "final_equity_settle": result.final_equity_settle,
        "periods_per_year": periods_per_year,
        "frequency": frequency,
    }
    metrics.update(_return_block(equity, initial, frequency, periods_per_year, ""))
    metrics.update(_trade_stats(result))
    attribution = pnl_attribution(result)
    fees = attribution[["maker_fees_settle", "taker_fees_settle", "other_fees_settle"]]
    metrics.update(
        _cash_lines(
            result,
            fees_settle=-math.fsum(fees.tolist()),
            funding_paid_settle=-float(attribution["funding_paid_settle"]),
            funding_received_settle=float(attribution["funding_received_settle"]),
        )
    )

    def usd_block(initial_usd: float) -> dict[str, float]:
        usd = equity_series(result, "usd")
        usd = usd[np.isfinite(usd.to_numpy())]
        return _return_block(usd, initial_usd, frequency, periods_per_year, "_usd")

    _fund_and_usd_lines(metrics, result, initial, usd_block)
    return metrics


# --------------------------------------------------------------------------- from records only


def regular_grid(
    ts_ns: np.ndarray, values: np.ndarray, bucket_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the last non-NaN value of each ``bucket_ns`` bucket, carried forward.

    Carried forward over buckets without one, as ``(bucket start ns, values)``: pandas'
    ``resample(...).last().ffill()`` on a time-sorted series, buckets counted from the midnight
    (UTC) of the first sample's day (pandas' ``origin="start_day"``), without building a
    pandas object.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if len(ts) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    origin = int(ts[0]) // _NS_PER_DAY * _NS_PER_DAY
    first = (int(ts[0]) - origin) // bucket_ns  # the grid starts at the first sample's bucket
    origin += first * bucket_ns
    bucket = (ts - origin) // bucket_ns
    n = int(bucket[-1]) + 1
    grid = np.full(n, np.nan)
    ok = ~np.isnan(v)
    if ok.any():
        filled = bucket[ok]
        # the last sample of each bucket: the position before the next bucket's first
        ends = np.searchsorted(filled, np.arange(n), side="right") - 1
        has = (ends >= 0) & (filled[np.maximum(ends, 0)] == np.arange(n))
        grid[has] = v[ok][ends[has]]
    # forward fill: each bucket takes the latest bucket at or before it with a value
    source = np.where(np.isnan(grid), 0, np.arange(n))
    grid = grid[np.maximum.accumulate(source)]
    return origin + np.arange(n, dtype=np.int64) * bucket_ns, grid


def _duration_days(ts_ns: np.ndarray, values: np.ndarray) -> float:
    """Return the longest time from an equity peak until the first sample back at it, in days.

    Peaks of ``values`` at ``ts_ns``; a drawdown not recovered lasts until the end.
    """
    if len(values) < 2:
        return 0.0
    ts = np.asarray(ts_ns, dtype=np.int64)
    peak = np.fmax.accumulate(values)
    # last time equity stood at its running peak, at each sample
    peak_ts = np.maximum.accumulate(np.where(values >= peak, ts, ts.min()))
    underwater_before = values[:-1] < peak[:-1]
    if not underwater_before.any():
        return 0.0
    spans = ts[1:][underwater_before] - peak_ts[:-1][underwater_before]
    return float(np.max(spans)) / _NS_PER_DAY


def _return_block_arrays(
    ts_ns: np.ndarray,
    values: np.ndarray,
    initial: float,
    bucket_ns: int,
    periods_per_year: float,
    suffix: str,
) -> dict[str, float]:
    """:func:`_return_block` on arrays (same keys, same values)."""
    if len(values):
        _, grid = regular_grid(ts_ns, values, bucket_ns)
        path = np.concatenate([[initial], grid])
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = path[1:] / path[:-1] - 1.0
    else:
        returns = np.zeros(0)
    final = float(values[-1]) if len(values) else initial
    return _return_metrics(
        returns, final, initial, periods_per_year, _duration_days(ts_ns, values), suffix
    )


def summary_metrics(
    result: Result, periods_per_year: float = 365.0, bucket_ns: int = _NS_PER_DAY
) -> dict[str, Any]:
    """Compute the numeric metrics of :func:`compute_metrics` from the record arrays alone.

    What a sweep ranks by (``jobs.summarise_result``): no pandas object is built, the daily
    grid is :func:`regular_grid` and the cash lines are sums over the ledger rows by kind.
    Same keys and values as ``compute_metrics(result, periods_per_year, frequency)`` for the
    grid of ``bucket_ns`` (default one day), except the ``start``/``end`` texts and
    ``frequency``; tested equal to it.
    """
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year: expected > 0, got {periods_per_year!r}")
    initial = float(result.initial_balance_settle)
    records = result.records
    equity = records["equity"]
    ts = np.asarray(equity["ts_ns"], dtype=np.int64)
    values = np.asarray(equity["equity_settle"], dtype=np.float64)
    metrics: dict[str, Any] = {
        "settle_currency": result.settle_currency,
        "initial_balance_settle": initial,
        "final_balance_settle": result.final_balance_settle,
        "final_equity_settle": result.final_equity_settle,
        "periods_per_year": periods_per_year,
    }
    metrics.update(_return_block_arrays(ts, values, initial, bucket_ns, periods_per_year, ""))
    metrics.update(_trade_stats(result))
    ledger = records["ledger"]
    kinds = np.asarray(ledger["kind"])
    amounts = np.asarray(ledger["amount_settle"], dtype=np.float64)
    funding = amounts[kinds == LedgerKind.FUNDING]
    # pnl_attribution's lines: every FEE row (maker, taker, other), FUNDING rows by sign
    metrics.update(
        _cash_lines(
            result,
            fees_settle=-math.fsum(amounts[kinds == LedgerKind.FEE].tolist()),
            funding_paid_settle=-math.fsum(funding[funding <= 0].tolist()),
            funding_received_settle=math.fsum(funding[funding > 0].tolist()),
        )
    )

    def usd_block(initial_usd: float) -> dict[str, float]:
        usd = values * np.asarray(equity["mark_price"], dtype=np.float64)
        keep = np.isfinite(usd)
        return _return_block_arrays(
            ts[keep], usd[keep], initial_usd, bucket_ns, periods_per_year, "_usd"
        )

    _fund_and_usd_lines(metrics, result, initial, usd_block)
    return metrics
