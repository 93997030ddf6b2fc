"""Report generation time and HTML size for 1 million equity samples and 10,000 trades.

Builds a synthetic Result (1 M one-minute equity samples and last/mark prices, 10,000 fills,
funding every 8 h, a few liquidations), then times ``write_html`` and ``save_run`` (median of
runs) and prints the HTML size. No assertions: figures only.

Run: ``.venv/bin/python benchmarks/bench_report.py [--runs 3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from backtester import dtypes
from backtester.enums import FundingRateSource, LedgerKind, Liquidity, Side
from backtester.report.html import write_html
from backtester.report.outputs import save_run
from backtester.results import Result

MINUTE_NS = 60_000_000_000
T0_NS = 1_704_067_200_000_000_000


def synthetic_result(bars: int = 1_000_000, trades: int = 10_000, seed: int = 1) -> Result:
    """A linear-contract run with ``bars`` equity samples and ``trades`` fills."""
    rng = np.random.default_rng(seed)
    ts = T0_NS + np.arange(bars, dtype=np.int64) * MINUTE_NS
    last = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, bars)))
    mark = last * (1.0 + rng.normal(0.0, 0.0002, bars))
    fill_rows = np.sort(rng.choice(bars, trades, replace=False))
    fills = np.zeros(trades, dtype=dtypes.FILL_DTYPE)
    fills["fill_id"] = np.arange(trades)
    fills["order_id"] = np.arange(trades)
    fills["ts_ns"] = ts[fill_rows]
    fills["side"] = np.where(np.arange(trades) % 2 == 0, Side.BUY, Side.SELL)
    fills["liquidity"] = np.where(rng.random(trades) < 0.5, Liquidity.MAKER, Liquidity.TAKER)
    fills["price"] = last[fill_rows]
    fills["qty_contracts"] = 10.0
    fills["fee_settle"] = 0.0005 * 10.0 * 0.01 * fills["price"]
    fills["realised_pnl_settle"] = np.where(
        np.arange(trades) % 2 == 1, rng.normal(0.0, 5.0, trades), 0.0
    )
    fills["position_after_contracts"] = np.where(np.arange(trades) % 2 == 0, 10.0, 0.0)
    funding_rows = np.arange(0, bars, 480)
    funding = np.zeros(len(funding_rows), dtype=dtypes.FUNDING_PAYMENT_DTYPE)
    funding["ts_ns"] = ts[funding_rows]
    funding["funding_rate"] = rng.normal(0.0001, 0.0001, len(funding_rows))
    funding["mark_price"] = mark[funding_rows]
    funding["position_contracts"] = 10.0
    funding["payment_settle"] = -10.0 * 0.01 * funding["mark_price"] * funding["funding_rate"]
    funding["source"] = FundingRateSource.HISTORICAL
    liq_rows = fill_rows[1::2][:5]
    liquidations = np.zeros(len(liq_rows), dtype=dtypes.LIQUIDATION_DTYPE)
    liquidations["ts_ns"] = ts[liq_rows]
    liquidations["side"] = Side.BUY
    liquidations["contracts_before"] = 10.0
    liquidations["mark_price"] = mark[liq_rows]
    liquidations["fill_price"] = last[liq_rows]
    liquidations["loss_settle"] = 10.0
    liquidations["fee_settle"] = 1.0
    events = [
        (int(f["ts_ns"]), LedgerKind.TRADE_PNL, float(f["realised_pnl_settle"]), int(f["fill_id"]))
        for f in fills
        if f["realised_pnl_settle"] != 0.0
    ]
    events += [
        (int(f["ts_ns"]), LedgerKind.FEE, -float(f["fee_settle"]), int(f["fill_id"])) for f in fills
    ]
    events += [
        (int(p["ts_ns"]), LedgerKind.FUNDING, float(p["payment_settle"]), i)
        for i, p in enumerate(funding)
    ]
    events.sort()
    ledger = np.zeros(len(events), dtype=dtypes.LEDGER_DTYPE)
    ledger["ts_ns"] = [e[0] for e in events]
    ledger["kind"] = [e[1] for e in events]
    ledger["amount_settle"] = [e[2] for e in events]
    ledger["balance_after_settle"] = 10_000.0 + np.cumsum(ledger["amount_settle"])
    ledger["ref_id"] = [e[3] for e in events]
    equity = np.zeros(bars, dtype=dtypes.EQUITY_DTYPE)
    equity["ts_ns"] = ts
    index = np.searchsorted(ledger["ts_ns"], ts, side="right") - 1
    equity["balance_settle"] = np.where(index >= 0, ledger["balance_after_settle"][index], 10_000.0)
    equity["equity_settle"] = equity["balance_settle"]
    equity["margin_ratio"] = 5.0 + rng.random(bars)
    equity["mark_price"], equity["last_price"] = mark, last
    last_series = np.zeros(bars, dtype=dtypes.PRICE_DTYPE)
    last_series["ts_ns"], last_series["price"] = ts, last
    mark_series = np.zeros(bars, dtype=dtypes.PRICE_DTYPE)
    mark_series["ts_ns"], mark_series["price"] = ts, mark
    return Result(
        instruments=["BTC-USDT-SWAP"],
        settle_currency="USDT",
        initial_balance_settle=10_000.0,
        records={
            "fills": fills,
            "funding_payments": funding,
            "liquidations": liquidations,
            "ledger": ledger,
            "equity": equity,
        },
        config={"strategy": "bench", "contracts": ["okx:BTC-USDT-SWAP"]},
        price_series={"BTC-USDT-SWAP": {"last": last_series, "mark": mark_series}},
        contract_kinds=[0],
    )


def main() -> None:
    """Print median times of write_html and save_run and the HTML size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = synthetic_result()
    with tempfile.TemporaryDirectory() as tmp:
        html_times, save_times = [], []
        path = Path(tmp) / "report.html"
        for i in range(args.runs):
            start = time.perf_counter()
            write_html(result, path)
            html_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            save_run(result, Path(tmp) / f"run{i}")
            save_times.append(time.perf_counter() - start)
        size = path.stat().st_size
        run_size = sum(p.stat().st_size for p in (Path(tmp) / "run0").iterdir())
    print("report for 1,000,000 equity samples / bars, 10,000 trades")
    print(f"write_html  median {statistics.median(html_times):.2f} s over {args.runs} runs")
    print(
        f"save_run    median {statistics.median(save_times):.2f} s over {args.runs} runs "
        f"(includes write_html)"
    )
    print(f"report.html {size / 1e6:.2f} MB")
    print(f"run folder  {run_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
