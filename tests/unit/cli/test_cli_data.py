"""`backtester import` writes a file into the catalog through the importers; `data` shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # each test runs the command in a subprocess

REPO = Path(__file__).resolve().parents[3]


def backtester(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backtester.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )  # fmt: skip


def test_import_freqtrade_file_then_list(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=5, freq="1min", tz="UTC").delete(3)
    frame = pd.DataFrame(
        {"date": times, "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 2.0}
    )
    frame.to_feather(tmp_path / "BTC_USDT_USDT-1m-futures.feather")
    args = ["--exchange", "binance", "--symbol", "BTCUSDT", "--catalog", "cat"]
    done = backtester("import", "BTC_USDT_USDT-1m-futures.feather", "--format", "freqtrade",
                      *args, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "BTC_USDT_USDT-1m-futures.feather: bars 4 rows, 1 gaps, 1 missing bars"
    )
    listing = backtester("data", "--catalog", "cat", cwd=tmp_path)
    assert listing.stdout.splitlines()[1].split()[:5] == ["binance", "BTCUSDT", "bars", "1m", "4"]
    wrong = backtester("import", "BTC_USDT_USDT-1m-futures.feather", "--format", "freqtrad",
                       *args, cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 2
    assert "did you mean 'freqtrade'?" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    missing = backtester("import", "nope.feather", "--format", "freqtrade", *args, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such file 'nope.feather'" in missing.stderr


XRP = ("data", "freqtrade_testdata_futures")  # freqtrade's own XRP/USDT:USDT test fixtures


def test_import_real_freqtrade_files_then_data_shows_their_spans(tmp_path: Path) -> None:
    """Real files (../shared/data/SOURCES.md gives their rows and spans) into a fresh catalog."""
    from tests.conftest import shared_path

    folder = shared_path(*XRP)
    names = [
        "XRP_USDT_USDT-1h-futures.feather",
        "XRP_USDT_USDT-1h-mark.feather",
        "XRP_USDT_USDT-8h-funding_rate.feather",
    ]
    paths = [str(folder / name) for name in names]
    done = backtester("import", *paths, "--format", "freqtrade", "--exchange", "binance",
                      "--symbol", "XRPUSDT", "--catalog", "cat", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{paths[0]}: bars 100 rows",
        f"{paths[1]}: mark_bars 100 rows",
        f"{paths[2]}: funding 91 rows",
    ]
    listing = backtester("data", "--catalog", "cat", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    # exchange symbol kind [interval] rows start-date start-time end-date end-time
    assert rows == [
        ["binance", "XRPUSDT", "bars", "1h", "100", "2021-11-17", "01:00:00.000+00:00",
         "2021-11-21", "04:00:00.000+00:00"],
        # funding times carry freqtrade's millisecond jitter (SOURCES.md)
        ["binance", "XRPUSDT", "funding", "91", "2021-11-18", "00:00:00.017+00:00",
         "2021-12-18", "00:00:00.014+00:00"],
        ["binance", "XRPUSDT", "mark_bars", "1h", "100", "2021-11-15", "06:00:00.000+00:00",
         "2021-11-19", "09:00:00.000+00:00"],
    ]  # fmt: skip
    one = backtester("data", "binance", "XRPUSDT", "--kind", "bars", "--catalog", "cat",
                     cwd=tmp_path)  # fmt: skip
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines() == [
        f"bars-1h: 100 rows, 2021-11-17 01:00:00+00:00 → 2021-11-21 04:00:00+00:00 ({paths[0]})",
        "  no gaps",
    ]
    # the stored closes are the file's closes, row for row
    from backtester.data.catalog import Catalog

    stored = Catalog(tmp_path / "cat").read("bars", "binance", "XRPUSDT", interval_ns=3_600 * 10**9)
    source = pd.read_feather(paths[0])
    assert stored["close"].tolist() == source["close"].tolist()
    assert stored["ts_ns"][0] == pd.Timestamp("2021-11-17 01:00", tz="UTC").value


def _assert_one_line_exit_2(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("backtester: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("file", "format_", "options", "fragments"),
    [
        ("missing.csv", "freqtrade", [], ["import: no such file 'missing.csv'"]),
        ("data.feather", "feathr", [], ["format: unknown value 'feathr'", "'freqtrade'"]),
        ("data.feather", "okx_trades", [],
         ["data.feather: cannot read it as okx_trades", "is --format right?"]),
        ("data.feather", "lean_zip", [], ["data.feather", "YYYYMMDD_trade.zip"]),
        ("data.feather", "freqtrade", ["--option", "timefram=1h"],
         ["freqtrade importer has no option 'timefram'", "did you mean 'timeframe'?"]),
        ("data.feather", "okx_candles", [], ["okx_candles importer needs --option interval="]),
        ("data.feather", "freqtrade", ["--option", "1h"], ["option: expected NAME=VALUE"]),
        (".", "freqtrade", [], ["'.' is a directory; expected a data file"]),
    ],
)  # fmt: skip
def test_bad_import_exits_2_and_leaves_the_catalog_empty(
    tmp_path: Path, file: str, format_: str, options: list[str], fragments: list[str]
) -> None:
    times = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    pd.DataFrame(
        {"date": times, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0}
    ).to_feather(tmp_path / "data.feather")
    done = backtester("import", file, "--format", format_, "--exchange", "binance", "--symbol",
                      "BTCUSDT", "--catalog", "cat", *options, cwd=tmp_path)  # fmt: skip
    _assert_one_line_exit_2(done, *fragments)
    from backtester.data.catalog import Catalog

    assert Catalog(tmp_path / "cat").datasets().empty  # nothing half-written


def test_import_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "trades.csv").write_text("not,a,trade,file\n1,2,3,4\n")
    args = ["import", "trades.csv", "--format", "okx_trades", "--exchange", "okx", "--symbol",
            "BTC-USDT-SWAP", "--catalog", "cat"]  # fmt: skip
    plain = backtester(*args, cwd=tmp_path)
    _assert_one_line_exit_2(plain, "trades.csv")
    debug = backtester("--debug", *args, cwd=tmp_path)
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()
