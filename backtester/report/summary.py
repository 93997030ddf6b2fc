"""A compact terminal summary of a run: key metrics and the PnL attribution side by side."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backtester.results import Result

__all__ = ["format_summary"]

_KEYS = (
    ("start", "start"),
    ("end", "end"),
    ("initial balance", "initial_balance_settle"),
    ("final balance", "final_balance_settle"),
    ("final equity", "final_equity_settle"),
    ("total return", "total_return"),
    ("CAGR", "cagr"),
    ("annual volatility", "annual_volatility"),
    ("Sharpe", "sharpe"),
    ("Sortino", "sortino"),
    ("Calmar", "calmar"),
    ("max drawdown", "max_drawdown"),
    ("max DD duration (days)", "max_drawdown_duration_days"),
    ("trades", "trades"),
    ("win rate", "win_rate"),
    ("profit factor", "profit_factor"),
    ("fees", "fees_settle"),
    ("funding paid", "funding_paid_settle"),
    ("funding received", "funding_received_settle"),
    ("liquidations", "liquidations"),
    ("liquidation cost", "liquidation_cost_settle"),
    ("insurance fund (end)", "insurance_fund_end_settle"),
    ("clawback", "clawback_settle"),
    ("worst margin ratio", "worst_margin_ratio"),
    ("total return (USD)", "total_return_usd"),
    ("final equity (USD)", "final_equity_usd"),
)
_PERCENT = {"total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate",
            "total_return_usd"}  # fmt: skip


def _format(key: str, value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if key in _PERCENT:
            return f"{value * 100:.2f} %"
        return f"{value:.6g}"
    if isinstance(value, str) and len(value) > 19:
        return value[:19]
    return str(value)


def _title(result: Result) -> str:
    """``SmaCross on BTC-USD-SWAP``: the strategy's class name, not its loader module path."""
    from backtester.report.page import strategy_name

    return f"{strategy_name(result)} on {', '.join(result.instruments)}"


def format_summary(result: Result) -> str:
    """Format the run's key metrics and PnL attribution as a fixed-width text table.

    Money rows are in the settle currency (named in the header); USD rows appear for inverse
    contracts.
    """
    from backtester.report.attribution import pnl_attribution
    from backtester.report.metrics import compute_metrics

    metrics = compute_metrics(result)
    attribution = pnl_attribution(result)
    left = [(label, _format(key, metrics[key])) for label, key in _KEYS if key in metrics]
    right = [
        (str(name).removesuffix("_settle").replace("_", " "), f"{value:.8g}")
        for name, value in attribution.items()
        if value != 0.0
    ]
    if attribution.attrs["funding_rate_sources"].get("computed", 0):
        computed = attribution.attrs["funding_computed_settle"]
        right.append(("(funding computed from premium)", f"{computed:.8g}"))
    right.append(("= balance change", f"{attribution.attrs['total_settle']:.8g}"))
    width_l = max(len(a) + len(b) for a, b in left) + 2
    width_r = max(len(a) + len(b) for a, b in right) + 2
    header = f"{_title(result):<{width_l}}   PnL attribution ({result.settle_currency})"
    lines = [header, "-" * (width_l + 3 + width_r)]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ("", "")
        b = right[i] if i < len(right) else ("", "")
        cell_l = a[0] + " " * (width_l - len(a[0]) - len(a[1])) + a[1]
        cell_r = b[0] + " " * (width_r - len(b[0]) - len(b[1])) + b[1] if b[0] else ""
        lines.append(f"{cell_l}   {cell_r}".rstrip())
    from backtester.rejections import format_notes

    notes = format_notes(result)  # rejected orders and a position left open, never silent
    if notes:
        lines.extend(["-" * (width_l + 3 + width_r), notes])
    from backtester.report.liquidations import last_price_lines

    # each liquidation and when a last-price model would have liquidated instead
    lines.extend(last_price_lines(result))
    # what the run computed or fell back on (funding from the premium, mark = last price)
    lines.extend(f"warning: {text}" for text in result.config.get("warnings", []))
    return "\n".join(lines)
