"""The report's size is bounded whatever the run's length (issue 14: one year of 1-minute bars
≤ 3 MB plus the shared plotly.js)."""

from __future__ import annotations

import numpy as np

from backtester import dtypes
from backtester.enums import LedgerKind, Liquidity, Side
from backtester.report.html import write_html
from backtester.report.page import CHART_POINTS
from backtester.results import Result

MINUTE_NS = 60_000_000_000
T0_NS = 1_704_067_200_000_000_000  # 2024-01-01 UTC


def year_of_minutes(round_trips: int = 8_000) -> Result:
    """A linear run with an equity row per minute for a year and many round trips."""
    n = 366 * 1440
    ts = T0_NS + np.arange(n, dtype=np.int64) * MINUTE_NS
    rng = np.random.default_rng(1)
    price = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0006, n)))
    fills = np.zeros(2 * round_trips, dtype=dtypes.FILL_DTYPE)
    opens = np.sort(rng.choice(np.arange(0, n - 30, 60), round_trips, replace=False))
    rows = np.empty(2 * round_trips, dtype=np.int64)
    rows[0::2], rows[1::2] = opens, opens + 30
    fills["fill_id"] = np.arange(len(fills))
    fills["order_id"] = np.arange(len(fills))
    fills["ts_ns"] = ts[rows]
    fills["side"] = np.where(np.arange(len(fills)) % 2 == 0, Side.BUY, Side.SELL)
    fills["liquidity"] = Liquidity.TAKER
    fills["price"] = price[rows]
    fills["qty_contracts"] = 1.0
    fills["fee_settle"] = 0.0005 * 0.01 * price[rows]
    fills["position_after_contracts"] = np.where(np.arange(len(fills)) % 2 == 0, 1.0, 0.0)
    fills["realised_pnl_settle"][1::2] = 0.01 * (price[rows[1::2]] - price[rows[0::2]])
    ledger = np.zeros(3 * round_trips, dtype=dtypes.LEDGER_DTYPE)
    ledger["ts_ns"] = np.repeat(ts[rows], [1, 2] * round_trips)
    kinds, amounts, refs = [], [], []
    for f in fills.tolist():
        if f[9] != 0.0:
            kinds.append(LedgerKind.TRADE_PNL), amounts.append(f[9]), refs.append(f[0])
        kinds.append(LedgerKind.FEE), amounts.append(-f[8]), refs.append(f[0])
    ledger["kind"], ledger["amount_settle"], ledger["ref_id"] = kinds, amounts, refs
    ledger["balance_after_settle"] = 10_000.0 + np.cumsum(ledger["amount_settle"])
    equity = np.zeros(n, dtype=dtypes.EQUITY_DTYPE)
    equity["ts_ns"] = ts
    equity["mark_price"] = equity["last_price"] = price
    after = np.searchsorted(ledger["ts_ns"], ts, side="right") - 1
    equity["balance_settle"] = np.where(after >= 0, ledger["balance_after_settle"][after], 1e4)
    equity["equity_settle"] = equity["balance_settle"]
    equity["margin_ratio"] = np.nan
    series = np.zeros(n, dtype=dtypes.PRICE_DTYPE)
    series["ts_ns"], series["price"] = ts, price
    return Result(
        instruments=["BTC-USDT-SWAP"], settle_currency="USDT", initial_balance_settle=10_000.0,
        records={"fills": fills, "ledger": ledger, "equity": equity},
        config={"strategy": "tests.YearOfMinutes", "contracts": ["okx:BTC-USDT-SWAP"],
                "leverage": [3.0]},
        price_series={"BTC-USDT-SWAP": {"last": series, "mark": series.copy(),
                                        "index": series.copy()}},
        contract_kinds=[0],
    )  # fmt: skip


def test_a_year_of_minutes_stays_under_3_mb(tmp_path) -> None:
    result = year_of_minutes()
    assert len(result.trades) == 8_000
    path = write_html(result, tmp_path / "run" / "report.html", plotly_js="shared")
    size = path.stat().st_size
    assert size <= 3_000_000, size
    text = path.read_text()
    assert f"at most {CHART_POINTS:,} points per line" in text  # the bound is stated
    assert "First 500 of 8,000 round trips" in text
    assert "the 1000 largest of 8000 drawn" in text
