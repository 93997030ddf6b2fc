"""A broken-input corpus through `backtester import`: every file is refused with exit code 2 and
its own one-line message, and the catalog's files are byte-identical after every refusal.

The corpus is generated from the bundled sample (data/catalog) and, where present, from the real
Binance files in ../shared/data; a good file at the end checks that the catalog still accepts
data after all the refusals. Also: the generic importer from the command line (--columns).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.feather as feather
import pytest

from backtester.cli import main
from backtester.data import Catalog
from backtester.data.sample import SAMPLE_CATALOG
from tests.conftest import SHARED

HOUR_MS = 3_600_000
MIN_MS = 60_000


def digest(root: Path) -> dict[str, str]:
    """SHA-256 of every catalog file (bookkeeping under .catalog/ aside)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".catalog" not in p.relative_to(root).parts
    }


def sample_minutes(n: int = 300) -> pd.DataFrame:
    """The first ``n`` bundled sample bars as a freqtrade frame (date in ms)."""
    bars = Catalog(SAMPLE_CATALOG).read(
        "bars", "sample", "BTC-USD-SWAP", interval_ns=MIN_MS * 10**6
    )
    bars = bars[:n]
    return pd.DataFrame(
        {"date": bars["ts_ns"] // 10**6, "open": bars["open"], "high": bars["high"],
         "low": bars["low"], "close": bars["close"], "volume": bars["volume_base"]}
    )  # fmt: skip


def real_hours(n: int = 300) -> pd.DataFrame:
    path = SHARED / "data" / "Roshan7869_algotrading" / "BTC_USDT_USDT-1h-futures.feather"
    if not path.is_file():
        pytest.skip(f"real data not present: {path}")
    frame = feather.read_table(path).slice(1000, n).to_pandas()
    frame["date"] = frame["date"].dt.tz_convert(None).astype("datetime64[ms]").astype("int64")
    return frame


def real_funding() -> pd.DataFrame:
    path = SHARED / "data" / "Roshan7869_algotrading" / "BTC_USDT_USDT-1h-funding_rate.feather"
    if not path.is_file():
        pytest.skip(f"real data not present: {path}")
    frame = feather.read_table(path).slice(0, 200).to_pandas()
    frame["date"] = frame["date"].dt.tz_convert(None).astype("datetime64[ms]").astype("int64")
    return frame


def feather_file(frame: pd.DataFrame, name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        feather.write_feather(frame.reset_index(drop=True), path)
        return path

    return build


def text_file(text: str, name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_text(text)
        return path

    return build


def with_row(frame: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    out = frame.copy()
    for column, value in values.items():
        out[column] = out[column].astype(type(value)) if isinstance(value, float) else out[column]
        out.loc[row, column] = value
    return out


def corpus(source: str) -> list[tuple[str, Callable[[Path], Path], str, list[str], str]]:
    """(id, builder, format, extra args, expected message fragment)."""
    if source == "sample":
        good, name, step = sample_minutes(), "BTC_USD-1m-futures.feather", MIN_MS
    else:
        good, name, step = real_hours(), "BTC_USDT_USDT-1h-futures.feather", HOUR_MS
    label = "1m" if step == MIN_MS else "1h"
    swapped = good.copy()
    swapped.loc[[5, 6], "date"] = swapped.loc[[6, 5], "date"].to_numpy()
    duplicate = good.copy()
    duplicate.loc[8, "date"] = duplicate.loc[7, "date"]
    shifted = good.assign(date=good["date"] + 30_000)
    fractional = good.assign(date=good["date"].astype(float))
    fractional.loc[9, "date"] += 0.5
    nanos = good.assign(date=good["date"] * 1_000_000)
    wide = good.iloc[::5].reset_index(drop=True)  # every 5th candle, in a file named 1m
    other_name = name.replace(f"-{label}-", "-1m-")
    entries = [
        ("truncated", lambda f: _truncated(feather_file(good, name)(f)), "freqtrade", [],
         "not a readable feather file"),
        ("unsorted", feather_file(swapped, name), "freqtrade", [], "row 7: ts_ns"),
        ("duplicate", feather_file(duplicate, name), "freqtrade", [], "duplicate timestamp"),
        ("nan-price", feather_file(with_row(good, 3, close=float("nan")), name), "freqtrade",
         [], "row 4: close nan (prices must be finite)"),
        ("negative", feather_file(with_row(good, 2, low=-1.0), name), "freqtrade", [],
         "row 3: low -1.0 (prices must be > 0)"),
        ("high-below-low", feather_file(with_row(good, 4, high=1.0), name), "freqtrade", [],
         "row 5: high 1.0"),
        ("shifted-30s", feather_file(shifted, name), "freqtrade", [],
         f"row 1: candle open time ts_ns {int(good['date'][0] + 30_000) * 10**6}"),
        ("fraction-ms", feather_file(fractional, name), "freqtrade", [],
         f"row 10: candle open time ts_ns {int(good['date'][9]) * 10**6 + 500_000}"),
        ("ns-as-ms", feather_file(nanos, name), "freqtrade", [],
         "read as milliseconds overflows int64 nanoseconds"),
        ("wrong-interval", feather_file(wide, other_name), "freqtrade", [],
         "are never closer than"),
        ("header-only", text_file("date,open,high,low,close,volume\n", "x.csv"), "generic",
         ["--option", "kind=bars", "--option", "interval_ns=60000000000",
          "--columns", "ts_ns=date,open=open,high=high,low=low,close=close"], "no data rows"),
        ("bad-columns", text_file("t,p\n1,2\n", "y.csv"), "generic",
         ["--option", "kind=trades", "--columns", "ts_ns"], "columns: expected FIELD=COLUMN"),
        ("missing-column", text_file("t,p\n1,2\n", "z.csv"), "generic",
         ["--option", "kind=trades", "--columns", "ts_ns=t,price=p,qty_base=q"],
         "missing column(s) ['q']"),
        ("empty", text_file("", "BTCUSDT-aggTrades-2024-01-01.csv"), "binance_aggtrades", [],
         "empty file"),
        ("not-zip", text_file("hello", "BTCUSDT-aggTrades-2024-01-01.zip"), "binance_aggtrades",
         [], "is --format right?"),
        ("dot-exchange", feather_file(good, name), "freqtrade", ["@exchange=.."],
         "exchange: '..' starts with '.'"),
    ]  # fmt: skip
    return entries


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:300])
    return path


def run_import(capsys, path: Path, fmt: str, extra: list[str], catalog: Path) -> tuple[int, str]:
    exchange = "x"
    args = []
    for item in extra:
        if item.startswith("@exchange="):
            exchange = item.split("=", 1)[1]
        else:
            args.append(item)
    code = main(["import", str(path), "--format", fmt, "--exchange", exchange, "--symbol",
                 "BTC", "--catalog", str(catalog), *args])  # fmt: skip
    return code, capsys.readouterr().err


@pytest.mark.parametrize("source", ["sample", "realdata"])
def test_broken_input_corpus_is_refused_and_the_catalog_unchanged(
    tmp_path: Path, capsys, source: str
) -> None:
    entries = corpus(source)
    catalog = tmp_path / "catalog"
    seed = (sample_minutes() if source == "sample" else real_hours()).iloc[200:210]
    name = "BTC_USD-1m-futures.feather" if source == "sample" else "BTC_USDT-1h-futures.feather"
    seed_path = feather_file(seed, name)(tmp_path)
    assert run_import(capsys, seed_path, "freqtrade", [], catalog)[0] == 0
    before = digest(catalog)
    assert before  # a real comparison: the catalog holds files
    folder = tmp_path / "corpus"
    folder.mkdir()
    for ident, build, fmt, extra, fragment in entries:
        path = build(folder)
        code, err = run_import(capsys, path, fmt, extra, catalog)
        assert code == 2, (ident, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (ident, err)
        assert fragment in lines[0], (ident, lines[0])
        assert digest(catalog) == before, ident
    # funding in percent (real history x 100) at a venue with a documented cap
    if source == "realdata":
        funding = real_funding()
        funding["open"] *= 100.0
        path = feather_file(funding, "BTC_USDT_USDT-1h-funding_rate.feather")(folder)
        code, err = run_import(capsys, path, "freqtrade", ["@exchange=binance"], catalog)
        assert code == 2
        assert "percent" in err
        assert digest(catalog) == before
    # the catalog still takes good data after every refusal
    good = (sample_minutes() if source == "sample" else real_hours()).iloc[:50]
    code, err = run_import(capsys, feather_file(good, name)(folder), "freqtrade", [], catalog)
    assert code == 0, err
    assert digest(catalog) != before


def test_generic_importer_from_the_command_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "time,px,size,taker\n"
        "1704067200000,42000.5,0.25,buy\n"
        "1704067200000,42000.0,0.5,sell\n"
        "1704067201500,42001.0,1.0,buy\n"
    )
    catalog = tmp_path / "cat"
    code = main(["import", str(path), "--format", "generic", "--exchange", "x", "--symbol", "BTC",
                 "--option", "kind=trades", "--option", "time_unit=ms",
                 "--columns", "ts_ns=time,price=px,qty_base=size,side=taker",
                 "--catalog", str(catalog)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    trades = Catalog(catalog).read("trades", "x", "BTC")
    np.testing.assert_array_equal(
        trades["ts_ns"], [1704067200000 * 10**6, 1704067200000 * 10**6, 1704067201500 * 10**6]
    )
    np.testing.assert_array_equal(trades["price"], [42000.5, 42000.0, 42001.0])
    np.testing.assert_array_equal(trades["qty_base"], [0.25, 0.5, 1.0])
    np.testing.assert_array_equal(trades["side"], [1, -1, 1])


def test_import_good_then_bad_file_writes_neither(tmp_path: Path, capsys) -> None:
    """`import good bad`: one transaction, so the refusal of the second file discards the
    first (before, the first was written and the command still exited 2)."""
    good = sample_minutes(120)
    bad = sample_minutes(240).iloc[120:].reset_index(drop=True)
    bad.loc[5, "close"] = float("nan")
    name = "BTC_USD-1m-futures.feather"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = feather_file(good, name)(tmp_path / "a")
    second = feather_file(bad, name)(tmp_path / "b")
    catalog = tmp_path / "catalog"
    args = ["import", str(first), str(second), "--format", "freqtrade", "--exchange", "x",
            "--symbol", "BTC", "--catalog", str(catalog)]  # fmt: skip
    assert main(args) == 2
    assert "row 6: close nan (prices must be finite)" in capsys.readouterr().err
    assert digest(catalog) == {}
    bad.loc[5, "close"] = bad.loc[5, "open"]
    feather_file(bad, name)(tmp_path / "b")
    assert main(args) == 0
    stored = Catalog(catalog).read("bars", "x", "BTC", interval_ns=MIN_MS * 10**6)
    assert len(stored) == 240
