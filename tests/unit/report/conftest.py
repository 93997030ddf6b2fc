"""Hand-made Results for the report tests: record arrays filled by test code.

A coin-margined (inverse, 100 USD face) long round trip, funding payments, a second long that is
liquidated, hourly equity samples; the ledger is consistent with ``balance_after_settle``.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtester import dtypes
from backtester.enums import FundingRateSource, LedgerKind, Liquidity, Side
from backtester.results import Result

HOUR_NS = 3_600_000_000_000
T0_NS = 1_577_836_800_000_000_000  # 2020-01-01 00:00 UTC
FACE_USD = 100.0


def _inverse_pnl(contracts: float, entry: float, exit_price: float) -> float:
    return contracts * FACE_USD * (1.0 / entry - 1.0 / exit_price)


def make_result(strategy: str = "tests.HandMade", hours: int = 240) -> Result:
    """A plausible inverse run with fills, funding, one liquidation and a consistent ledger."""
    initial = 1.0
    ts = T0_NS + np.arange(hours, dtype=np.int64) * HOUR_NS
    rng = np.random.default_rng(7)
    last = 10_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, hours)))
    last[150:170] = np.linspace(last[149], last[149] * 0.8, 20)  # crash to liquidate
    mark = last * (1.0 + rng.normal(0.0, 0.0005, hours))

    fills = np.zeros(4, dtype=dtypes.FILL_DTYPE)
    rows = [  # (hour, side, liquidity, qty, position_after, entry for pnl)
        (10, Side.BUY, Liquidity.TAKER, 100.0, 100.0),
        (60, Side.SELL, Liquidity.MAKER, 100.0, 0.0),
        (100, Side.BUY, Liquidity.TAKER, 300.0, 300.0),
        (160, Side.SELL, Liquidity.LIQUIDATION, 300.0, 0.0),
    ]
    for i, (hour, side, liquidity, qty, after) in enumerate(rows):
        fills[i]["fill_id"] = i
        fills[i]["order_id"] = i if liquidity != Liquidity.LIQUIDATION else -1
        fills[i]["ts_ns"] = ts[hour]
        fills[i]["side"] = side
        fills[i]["liquidity"] = liquidity
        fills[i]["price"] = last[hour]
        fills[i]["qty_contracts"] = qty
        rate = -0.0002 if liquidity == Liquidity.MAKER else 0.0005
        fills[i]["fee_settle"] = (
            0.0 if liquidity == Liquidity.LIQUIDATION else (rate * qty * FACE_USD / last[hour])
        )
        fills[i]["position_after_contracts"] = after
    fills[1]["realised_pnl_settle"] = _inverse_pnl(100.0, last[10], last[60])
    liq_fill = last[160] * 0.995
    fills[3]["price"] = liq_fill
    fills[3]["realised_pnl_settle"] = _inverse_pnl(300.0, last[100], liq_fill)

    funding_hours = [h for h in range(0, hours, 8) if 10 < h <= 60 or 100 < h <= 160]
    funding = np.zeros(len(funding_hours), dtype=dtypes.FUNDING_PAYMENT_DTYPE)
    for i, hour in enumerate(funding_hours):
        position = 100.0 if hour <= 60 else 300.0
        rate = 0.0001 * (1 if i % 3 else -1)
        funding[i] = (
            ts[hour],
            0,
            rate,
            mark[hour],
            position,
            -position * FACE_USD / mark[hour] * rate,
            FundingRateSource.COMPUTED if i % 4 == 0 else FundingRateSource.HISTORICAL,
        )

    liquidation = np.zeros(1, dtype=dtypes.LIQUIDATION_DTYPE)
    liq = liquidation[0]
    liq["ts_ns"], liq["side"], liq["tier"] = ts[160], Side.BUY, 1
    liq["contracts_before"], liq["contracts_after"] = 300.0, 0.0
    liq["mark_price"], liq["liquidation_price"] = mark[160], mark[160] * 1.001
    liq["bankruptcy_price"], liq["fill_price"] = liq_fill * 0.99, liq_fill
    liq["market_price"], liq["margin_ratio"] = last[160], 0.0095
    liq["loss_settle"] = -fills[3]["realised_pnl_settle"]
    liq["fee_settle"] = 0.00015 * 300 * FACE_USD / liq_fill
    liq["insurance_fund_delta_settle"] = 0.0004

    events = []  # (ts, kind, amount, ref)
    for f in fills:
        if f["liquidity"] == Liquidity.LIQUIDATION:
            events.append((f["ts_ns"], LedgerKind.LIQUIDATION_LOSS, f["realised_pnl_settle"], 3))
            events.append((f["ts_ns"], LedgerKind.LIQUIDATION_FEE, -liq["fee_settle"], 3))
            continue
        if f["realised_pnl_settle"] != 0.0:
            events.append(
                (f["ts_ns"], LedgerKind.TRADE_PNL, f["realised_pnl_settle"], f["fill_id"])
            )
        events.append((f["ts_ns"], LedgerKind.FEE, -f["fee_settle"], f["fill_id"]))
    events += [
        (p["ts_ns"], LedgerKind.FUNDING, p["payment_settle"], i) for i, p in enumerate(funding)
    ]
    events.sort(key=lambda e: (int(e[0]), int(e[1])))
    ledger = np.zeros(len(events), dtype=dtypes.LEDGER_DTYPE)
    balance = initial
    for i, (t, kind, amount, ref) in enumerate(events):
        balance = balance + float(amount)
        ledger[i] = (t, kind, 0, amount, balance, ref)

    equity = np.zeros(hours, dtype=dtypes.EQUITY_DTYPE)
    equity["ts_ns"] = ts
    equity["mark_price"], equity["last_price"] = mark, last
    position = np.zeros(hours)
    position[10:60], position[100:160] = 100.0, 300.0
    entry = np.where(np.arange(hours) < 100, last[10], last[100])
    upl = np.where(position != 0.0, position * FACE_USD * (1.0 / entry - 1.0 / mark), 0.0)
    index_after = np.searchsorted(ledger["ts_ns"], ts, side="right") - 1
    bal = np.where(index_after >= 0, ledger["balance_after_settle"][index_after], initial)
    equity["balance_settle"] = bal
    equity["unrealised_pnl_settle"] = upl
    equity["equity_settle"] = bal + upl
    equity["position_contracts"] = position
    mm = position * FACE_USD / mark * 0.005
    equity["maintenance_margin_settle"] = mm
    pv = position * FACE_USD / mark
    equity["margin_ratio"] = np.where(pv > 0, (bal * 0.2 + upl) / np.where(pv > 0, pv, 1), np.nan)

    last_series = np.zeros(hours, dtype=dtypes.PRICE_DTYPE)
    last_series["ts_ns"], last_series["price"] = ts, last
    mark_series = np.zeros(hours, dtype=dtypes.PRICE_DTYPE)
    mark_series["ts_ns"], mark_series["price"] = ts, mark
    return Result(
        instruments=["BTC-USD-SWAP"],
        settle_currency="BTC",
        initial_balance_settle=initial,
        records={
            "fills": fills,
            "funding_payments": funding,
            "liquidations": liquidation,
            "ledger": ledger,
            "equity": equity,
        },
        config={
            "strategy": strategy,
            "params": {"fast": 5, "note": "<b>x</b>"},
            "contracts": ["okx_coinm_2019:BTC-USD-SWAP"],
            "initial_balance": initial,
        },
        price_series={"BTC-USD-SWAP": {"last": last_series, "mark": mark_series}},
        contract_kinds=[1],
    )


@pytest.fixture
def hand_result() -> Result:
    """The hand-made inverse run of :func:`make_result`."""
    return make_result()


@pytest.fixture
def make_hand_result():
    """The factory :func:`make_result` (to vary the strategy name or length)."""
    return make_result
