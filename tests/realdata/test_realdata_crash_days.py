"""Binance BTCUSDT crash days: isolated positions are liquidated where Binance would have.

Data: the freqtrade files of SOURCES.md "Roshan7869_algotrading" (1h trade candles and 1h mark
candles of the USDⓈ-M perpetual), imported into a catalog, so the mark candles are replayed as
paths (open, adverse extreme at Δ/3, other extreme at 2Δ/3, close). There is no index history,
so the run replays the recorded mark (HISTORICAL). No funding stream: funding on an isolated
position moves its margin, and these tests isolate the liquidation (the funding year below
checks funding).

For each crash day (and one upward spike day for shorts) and each leverage, a position of
``QTY`` BTC is opened by a market order at the day's 00:00 open. Everything expected is
computed here from the raw feather files and the venue's rules, not from the engine:

* entry price: the open of the 00:00 trade candle;
* isolated margin ``WB = Q·EP/L`` (Binance: initial margin = notional / leverage);
* liquidation price, Binance USDⓈ-M isolated (MECHANICS.md §5.2, Binance "Liquidation Price
  Calculation"): ``LP = (WB + cum − s·Q·EP) / (Q·MMR − s·Q)`` with the bracket (MMR, cum) of the
  notional at LP itself (every bracket tried, the consistent one kept), from the freqtrade
  snapshot of ``/fapi/v1/leverageBracket`` in force on the day (the earliest snapshot,
  2022-05-21, for the 2020-21 days: BTC's first brackets 0–50k at 0.4% and 50k–250k at 0.5%,
  cum 50, were the same then — Binance Futures guide 2019-20, as the built-in table says);
* expected time: the first mark candle after the entry whose low (high for a short) reaches LP,
  at its open (t0 + 1 ns) if the open is already through, else at the adverse extreme
  (t0 + 20 min); takeover at the bankruptcy price ``BP = EP − s·WB/Q``; loss = the margin.

Each case also runs under a last-price model (mark = last trade price, the trade candles'
path) and the summary says when that model would have liquidated and how the loss differs.
"""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from backtester import Strategy, backtest
from backtester.data import Catalog
from backtester.data.importers import import_file
from backtester.data.loader import load_market_data
from backtester.enums import PathPoint, PriceStream
from backtester.report.liquidations import liquidation_report
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata

HOUR = 3_600_000_000_000
FOLDER = "Roshan7869_algotrading"
TIERS = "freqtrade_binance_leverage_tiers"
QTY = 1.0  # BTC (USDⓈ-M BTCUSDT: one contract is 0.001 BTC lots of a 1 BTC face)
LEVERAGES = (5, 10, 20, 50)
CRASH_DAYS = ("2020-03-12", "2021-05-19", "2022-06-13", "2022-11-09", "2024-08-05", "2025-10-10")
SPIKE_DAYS = ("2021-02-08",)  # BTC +19% in the day (shorts)
# "wick": the leverage that puts the liquidation price half-way between the trade candles' low
# and the mark candles' low of the window (2020-03-12/13: 3,621.8 vs 3,801.8): a last-price
# model liquidates, Binance (on the mark) did not
CASES = (
    [(d, +1, lev) for d in CRASH_DAYS for lev in LEVERAGES]
    + [(d, -1, lev) for d in SPIKE_DAYS for lev in LEVERAGES]
    + [("2020-03-12", +1, "wick")]
)


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def read_candles(name: str) -> pd.DataFrame:
    frame = pd.read_feather(shared_path("data", FOLDER, name))
    dates = frame["date"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    frame["ts_ns"] = dates.astype("int64")
    return frame.set_index("ts_ns").sort_index()


@pytest.fixture(scope="module")
def raw() -> dict[str, pd.DataFrame]:
    return {
        "trade": read_candles("BTC_USDT_USDT-1h-futures.feather"),
        "mark": read_candles("BTC_USDT_USDT-1h-mark.feather"),
    }


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    catalog = Catalog(tmp_path_factory.mktemp("crash") / "catalog")
    for name in ("BTC_USDT_USDT-1h-futures.feather", "BTC_USDT_USDT-1h-mark.feather"):
        import_file(shared_path("data", FOLDER, name), "freqtrade", "binance", "BTCUSDT", catalog)
    return catalog


def brackets_on(day: str) -> list[dict]:
    """BTCUSDT brackets of the freqtrade snapshot in force on ``day`` (else the earliest)."""
    folders = sorted(p for p in shared_path("data", TIERS).iterdir() if p.is_dir())
    chosen = folders[0]
    for folder in folders:
        if ns(folder.name.split("_")[0]) <= ns(day):
            chosen = folder
    with gzip.open(chosen / "binance_leverage_tiers.json.gz", "rt") as f:
        data = json.load(f)
    key = "BTC/USDT:USDT" if "BTC/USDT:USDT" in data else "BTC/USDT"
    return [
        {
            "floor": float(t["minNotional"]),
            "cap": float(t["maxNotional"]),
            "mmr": float(t["maintenanceMarginRate"]),
            "cum": float(t["info"]["cum"]),
        }
        for t in data[key]
    ]


def binance_liquidation_price(side: int, qty: float, entry: float, wb: float, brackets) -> float:
    """Isolated LP with the bracket of the notional at LP (the one consistent bracket)."""
    for b in brackets:
        lp = (wb + b["cum"] - side * qty * entry) / (qty * b["mmr"] - side * qty)
        if b["floor"] <= qty * lp <= b["cap"]:
            return lp
    raise AssertionError("no consistent bracket")


def first_crossing(candles: pd.DataFrame, after_ns: int, side: int, price: float, open_at=1):
    """(time, point) where a candle path first reaches ``price`` against ``side``, or None.
    The open is at ``t0 + open_at`` (mark candles: t0 + 1 ns; trade candles: t0)."""
    for t0, c in candles.loc[after_ns:].iterrows():
        if side > 0:
            if c["open"] <= price:
                return t0 + open_at, PathPoint.OPEN
            if c["low"] <= price:
                return t0 + HOUR // 3, PathPoint.LOW
        else:
            if c["open"] >= price:
                return t0 + open_at, PathPoint.OPEN
            if c["high"] >= price:
                return t0 + HOUR // 3, PathPoint.HIGH
    return None


class Enter(Strategy):
    """A market order of ``side · qty`` at the first bar close (fills at the next open)."""

    side = 1
    qty = QTY

    def on_bar(self, ctx, bar):
        if ctx.position == 0 and not getattr(self, "done", False):
            ctx.market(self.side * self.qty)
            self.done = True


def run(catalog: Catalog, day: str, side: int, leverage: int, mark: str):
    data = load_market_data(
        catalog, "binance", "BTCUSDT", ns(day) - HOUR, ns(day) + 2 * 24 * HOUR, bar_interval_ns=HOUR
    )
    return backtest(
        Enter,
        data,
        "binance_usdm:BTCUSDT",
        initial_balance=100_000.0,
        leverage=float(leverage),
        params={"side": side},
        mark_price_method=mark,
    )


SUMMARY: list[dict] = []


@pytest.mark.parametrize(("day", "side", "leverage"), CASES)
def test_liquidated_inside_the_first_mark_candle_crossing_the_liquidation_price(
    catalog, raw, day, side, leverage
):
    entry_ns = ns(day)
    entry = float(raw["trade"].loc[entry_ns, "open"])
    end = ns(day) + 2 * 24 * HOUR
    if leverage == "wick":
        window = slice(entry_ns, end - HOUR)
        trade_low = raw["trade"].loc[window, "low"].min()
        mark_low = raw["mark"].loc[window, "low"].min()
        assert trade_low < mark_low  # the wick the mark did not follow
        target = (trade_low + mark_low) / 2
        mmr = brackets_on(day)[0]["mmr"]  # QTY · target is in the first bracket (cum 0)
        assert QTY * target < brackets_on(day)[0]["cap"]
        # long: LP = EP·(1 − 1/L)/(1 − MMR) solved for L
        leverage = 1.0 / (1.0 - target * (1.0 - mmr) / entry)
    wb = QTY * entry / leverage
    lp = binance_liquidation_price(side, QTY, entry, wb, brackets_on(day))
    bp = entry - side * wb / QTY
    mark_path = raw["mark"].loc[: end - HOUR]
    expected = first_crossing(mark_path, entry_ns, side, lp)

    result = run(catalog, day, side, leverage, "historical")
    assert result.config["mark_price_method_used"] == ["HISTORICAL"]
    fills = result.records["fills"]
    assert int(fills["ts_ns"][0]) == entry_ns  # booked at the open it filled at
    assert fills["price"][0] == entry
    liq = result.records["liquidations"]
    # the liquidation is on the mark, never on a trade-price wick alone
    assert all(liq["trigger_stream"] == PriceStream.MARK)
    last = run(catalog, day, side, leverage, "last")
    last_liq = last.records["liquidations"]
    trade_path = raw["trade"].loc[: end - HOUR]
    expected_last = first_crossing(trade_path, entry_ns, side, lp, open_at=0)
    if expected is None:
        assert len(liq) == 0
        assert result.records["equity"]["position_contracts"][-1] == pytest.approx(side * QTY)
    else:
        assert len(liq) == 1
        r = liq[0]
        assert r["liquidation_price"] == pytest.approx(lp, rel=1e-9)
        assert int(r["ts_ns"]) == expected[0]
        assert r["trigger_point"] == expected[1]
        offset = 1 if expected[1] == PathPoint.OPEN else HOUR // 3
        assert int(r["trigger_candle_ns"]) == expected[0] - offset
        assert not r["is_partial"]
        assert r["fill_price"] == pytest.approx(bp, rel=1e-12)
        assert r["bankruptcy_price"] == pytest.approx(bp, rel=1e-12)
        # the trader loses exactly the isolated margin (plus the entry fee, paid on entry)
        assert r["loss_settle"] + r["fee_settle"] == pytest.approx(wb, rel=1e-9)
        assert result.final_balance_settle == pytest.approx(
            100_000.0 - wb - fills["fee_settle"][0], rel=1e-12
        )
        text = liquidation_report(result)["trigger"][0]
        when = pd.Timestamp(int(r["trigger_candle_ns"]), unit="ns", tz="UTC")
        assert text == (
            f"triggered on the {PathPoint(int(r['trigger_point'])).name.lower()} of the "
            f"{when.strftime('%Y-%m-%d %H:%M')} mark candle"
        )
        # the report says when a last-price model would have liquidated: the first trade
        # candle path point crossing LP (recomputed above from the raw file), and how the
        # loss differs (isolated: the same margin; never crossed: minus the unrealised PnL
        # at the last close of the data instead of the margin)
        row = liquidation_report(result).iloc[0]
        if expected_last is None:
            last_close = float(trade_path["close"].iloc[-1])
            close_at = pd.Timestamp(int(trade_path.index[-1]) + HOUR, unit="ns", tz="UTC")
            assert pd.isna(row["last_price_trigger_time"])
            assert pd.isna(row["last_price_delay"])
            assert row["last_price_trigger"] == (
                f"never within the data (to {close_at:%Y-%m-%d %H:%M} UTC)"
            )
            upl = side * QTY * (last_close - entry)  # BTCUSDT: face 1 BTC, quantities in BTC
            assert row["last_price_loss_settle"] == pytest.approx(-upl, rel=1e-9)
            assert row["loss_difference_settle"] == pytest.approx(-upl - wb, rel=1e-9)
        else:
            t0_last = expected_last[0] - (0 if expected_last[1] == PathPoint.OPEN else HOUR // 3)
            assert row["last_price_trigger_time"] == pd.Timestamp(expected_last[0], tz="UTC")
            assert row["last_price_delay"] == pd.Timedelta(expected_last[0] - expected[0])
            assert row["last_price_trigger"] == (
                f"{expected_last[1].name.lower()} of the "
                f"{pd.Timestamp(t0_last, tz='UTC'):%Y-%m-%d %H:%M} trade candle"
            )
            assert row["last_price_loss_settle"] == pytest.approx(wb, rel=1e-9)
            assert row["loss_difference_settle"] == 0.0
        # the same in result.liquidations
        shown = result.liquidations.iloc[0]
        for column in ("last_price_trigger_time", "last_price_delay", "last_price_trigger"):
            assert (pd.isna(shown[column]) and pd.isna(row[column])) or shown[column] == row[column]
    # the last-price model liquidates at the first trade candle reaching LP (never later
    # than the mark: the trade wicks are deeper), losing the same margin when it does
    if expected_last is None:
        assert len(last_liq) == 0
    else:
        assert len(last_liq) == 1
        assert int(last_liq["ts_ns"][0]) == expected_last[0]
        assert last_liq["trigger_stream"][0] == PriceStream.BARS
        assert last_liq["loss_settle"][0] + last_liq["fee_settle"][0] == pytest.approx(wb, rel=1e-9)
    report_text = "" if expected is None else row["last_price_comparison"]
    SUMMARY.append(
        {
            "day": day,
            "side": "long" if side > 0 else "short",
            "leverage": round(leverage, 3),
            "liquidation_price": round(lp, 2),
            "mark_liquidation": None if expected is None else pd.Timestamp(expected[0], tz="UTC"),
            "last_price_liquidation": (
                None if expected_last is None else pd.Timestamp(expected_last[0], tz="UTC")
            ),
            "loss_mark": 0.0 if expected is None else round(wb, 2),
            "loss_last_price": 0.0 if expected_last is None else round(wb, 2),
            "report": report_text,
        }
    )


def test_the_cases_cover_liquidations_and_wicks_that_only_a_last_price_model_sees():
    """Runs after the cases (file order): the summary printed for the reader (``-s``) and the
    findings that make the crash days worth testing."""
    if len(SUMMARY) < len(CASES):
        pytest.skip("needs the parametrised cases of this module to run first")
    frame = pd.DataFrame(SUMMARY)
    frame["earlier_by_last_price"] = (
        frame["mark_liquidation"] - frame["last_price_liquidation"]
    ).where(frame["mark_liquidation"].notna() & frame["last_price_liquidation"].notna())
    frame["loss_difference"] = frame["loss_last_price"] - frame["loss_mark"]
    print("\n" + frame.drop(columns="report").to_string(index=False))
    # what the product's liquidation report says for each liquidated case
    for case in frame[frame["mark_liquidation"].notna()].itertuples():
        print(f"{case.day} {case.side} {case.leverage}x: {case.report}")
        assert case.report.startswith("a last-price model would have liquidated ")
    liquidated = frame["mark_liquidation"].notna()
    assert liquidated.sum() == 25  # all but three 5x longs are liquidated on the mark
    # the wick case survives on the mark; a last-price model would have liquidated it and
    # taken the whole margin
    only_last = frame["mark_liquidation"].isna() & frame["last_price_liquidation"].notna()
    assert only_last.sum() == 1
    assert (frame.loc[only_last, "loss_difference"] > 0).all()
    # one case where the last price liquidates an hour earlier (2022-11-09 10x)
    assert (frame["earlier_by_last_price"] > pd.Timedelta(0)).sum() >= 1
    # a last-price model never liquidates later than the mark here
    both = frame[liquidated & frame["last_price_liquidation"].notna()]
    assert (both["last_price_liquidation"] <= both["mark_liquidation"]).all()
