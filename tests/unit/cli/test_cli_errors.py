"""The `backtester` command's input errors: exit code 2 and one line on stderr, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backtester import dtypes
from backtester.data.catalog import Catalog

pytestmark = pytest.mark.slow  # each test runs the command in a subprocess

REPO = Path(__file__).resolve().parents[3]


def backtester(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backtester.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )  # fmt: skip


def assert_usage_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("backtester: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["rnu"], ["invalid choice: 'rnu'", "did you mean 'run'?"]),
        (["run", "strategies/missing.py"], ["no such file", "missing.py"]),
        (["run", "x.py", "--levrage", "3"], ["--levrage", "did you mean --leverage?"]),
        (["run", "x.py", "--margin-mode", "crosss"], ["invalid choice: 'crosss'", "'cross'"]),
        (["run", "x.py", "--leverage", "ten"], ["--leverage", "invalid float value"]),
        (["report", "reports/no-such-run"], ["no such directory"]),
        (["profiles", "okz"], ["unknown profile 'okz'", "did you mean 'okx'?"]),
        (["data", "okx"], ["both EXCHANGE and SYMBOL"]),
        ([], ["required"]),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(backtester(*args), *fragments)


def test_debug_shows_the_traceback() -> None:
    done = backtester("--debug", "report", "reports/no-such-run")
    assert done.returncode == 2
    assert "Traceback" in done.stderr


def test_help_has_examples() -> None:
    done = backtester("sweep", "--help")
    assert done.returncode == 0
    assert "backtester sweep strategies/sma_cross.py --data sample --grid fast=5:50:5" in (
        done.stdout
    )
    assert "--walk-forward" in done.stdout


def test_profiles_lists_every_profile_and_shows_tiers() -> None:
    done = backtester("profiles")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()[:5]]
    assert names == ["binance_coinm", "binance_usdm", "bitmex", "okx", "okx_coinm_2019"]
    one = backtester("profiles", "okx_coinm_2019")
    assert one.returncode == 0, one.stderr
    assert "liquidation_rule               OKX_LEGACY" in one.stdout
    assert "contract okx_coinm_2019:BTC-USD-SWAP: inverse, face 100, settle BTC" in one.stdout
    assert "maintenance_margin_rate" in one.stdout


def test_data_lists_catalog_and_reports_gaps(tmp_path: Path) -> None:
    minute = 60_000_000_000
    start = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
    ts = start + minute * np.array([0, 1, 2, 5, 6], dtype=np.int64)  # 2 bars missing
    bars = np.zeros(len(ts), dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = ts
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = 100.0
    bars["volume_base"] = 1.0
    Catalog(tmp_path / "cat").write("bars", "okx", "BTC-USDT-SWAP", bars, source="test",
                                    interval_ns=minute)  # fmt: skip
    listing = backtester("data", "--catalog", str(tmp_path / "cat"))
    assert listing.returncode == 0, listing.stderr
    row = listing.stdout.splitlines()[1].split()
    assert row[:5] == ["okx", "BTC-USDT-SWAP", "bars", "1m", "5"]
    assert "2024-01-01 00:06:00+00:00" in listing.stdout
    one = backtester("data", "okx", "BTC-USDT-SWAP", "--catalog", str(tmp_path / "cat"))
    assert one.returncode == 0, one.stderr
    assert "bars-1m: 5 rows" in one.stdout
    assert "1 gaps, 2 missing bars" in one.stdout
    wrong = backtester("data", "okx", "BTC-USDT-SWAPP", "--catalog", str(tmp_path / "cat"))
    assert_usage_error(wrong, "no dataset okx BTC-USDT-SWAPP", "did you mean 'okx BTC-USDT-SWAP'")


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("levrage = 20\n[params]\nfast = 5\n")
    assert_usage_error(
        backtester("run", "x.py", "--config", str(config)),
        "unknown key 'levrage'", "did you mean 'leverage'?",
    )  # fmt: skip
    config.write_text("leverage = = 20\n")
    assert_usage_error(backtester("run", "x.py", "--config", str(config)), "run.toml")
    assert_usage_error(
        backtester("run", "x.py", "--config", str(tmp_path / "none.toml")), "no such file"
    )


STRATEGY_SOURCE = """
from backtester.strategy import Strategy


class Crossing(Strategy):
    fast_window = 10
    slow_window = 30
    size = 1.0
    reverse = False

    def on_bar(self, ctx, bar):
        pass
"""


def test_bad_strategy_parameters_exit_2(tmp_path: Path) -> None:
    strategy = tmp_path / "crossing.py"
    strategy.write_text(STRATEGY_SOURCE)
    assert_usage_error(
        backtester("run", str(strategy), "--param", "fast_windw=5"),
        "no parameter 'fast_windw'", "did you mean 'fast_window'?",
    )  # fmt: skip
    assert_usage_error(
        backtester("run", str(strategy), "--param", "fast_window=5.5"),
        "param fast_window: expected int (default 10), got '5.5'",
    )  # fmt: skip
    assert_usage_error(
        backtester("run", str(strategy), "--param", "reverse=maybe"), "expected bool"
    )
    assert_usage_error(
        backtester("run", f"{strategy}:Crosing"),
        "no Strategy subclass 'Crosing'", "did you mean 'Crossing'?",
    )  # fmt: skip
    assert_usage_error(
        backtester("run", str(strategy), "--contract", "okx:BTC-USD-SWAPP"),
        "unknown contract", "did you mean 'okx:BTC-USD-SWAP'?",
    )  # fmt: skip
    assert_usage_error(
        backtester("run", str(strategy), "--start", "2024-03-01", "--end", "2024-02-01"),
        "is not after start",
    )  # fmt: skip
    assert_usage_error(backtester("run", str(strategy), "--symbol", "ETH-USD-SWAP"), "ETH-USD-SWAP")


def test_parameters_are_typed_by_the_class_attribute(tmp_path: Path) -> None:
    from backtester import jobs

    strategy = tmp_path / "crossing.py"
    strategy.write_text(STRATEGY_SOURCE)
    cls = jobs.load_strategy(str(strategy))
    assert cls.__name__ == "Crossing"
    assert jobs.coerce_parameter(cls, "fast_window", "12") == 12
    assert jobs.coerce_parameter(cls, "size", "2") == 2.0
    assert isinstance(jobs.coerce_parameter(cls, "size", "2"), float)
    assert jobs.coerce_parameter(cls, "reverse", "true") is True
    assert jobs.coerce_parameter(cls, "fast_window", 12.0) == 12


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["okxx", "BTC-USDT-SWAP"], ["ccxt has no exchange 'okxx'", "did you mean 'okx'?"]),
        (["okx", "BTC-USDT-SWAP", "--kinds", "bars,mark_barz"],
         ["unknown kind 'mark_barz'", "did you mean 'mark_bars'?"]),
        (["okx", "BTC-USDT-SWAP", "--start", "2024-02-01", "--end", "2024-01-01"],
         ["end: '2024-01-01' is not after start '2024-02-01'"]),
        (["okx", "BTC-USDT-SWAP", "--interval", "7q"], ["interval", "'7q'"]),
    ],
)  # fmt: skip
def test_fetch_bad_input_exits_2_before_any_download(
    tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    done = backtester("fetch", *args, "--catalog", str(tmp_path / "cat"))
    assert_usage_error(done, *fragments)
    assert not (tmp_path / "cat").exists() or not any((tmp_path / "cat").iterdir())


FAILING_SOURCE = """
from backtester.strategy import Strategy


class Failing(Strategy):
    at_bar = 5

    def on_bar(self, ctx, bar):
        if len(ctx.closes) >= self.at_bar:
            raise RuntimeError(f"strategy bug at bar {self.at_bar}")
"""


def test_failure_while_running_exits_1_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    strategy = tmp_path / "failing.py"
    strategy.write_text(FAILING_SOURCE)
    span = ["--start", "2024-02-01", "--end", "2024-02-02", "--out", str(tmp_path / "out")]
    done = backtester("run", str(strategy), *span)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    # the last line (warnings of the engine, if any, come before it), naming the strategy's
    # file, line and replay time
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"backtester: error: Failing.on_bar raised RuntimeError: strategy bug at bar 5 at "
        f"{strategy}:"
    )
    assert "(replay time 2024-02-01 00:05:00 UTC)" in last  # bar 5 closes at 00:05
    debug = backtester("run", str(strategy), *span, "--debug")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert 'raise RuntimeError(f"strategy bug at bar {self.at_bar}")' in debug.stderr
    # a sweep in which every combination fails has nothing to rank: a failure, not bad input
    sweep = backtester("sweep", str(strategy), *span[:4], "--grid", "at_bar=5,7",
                       "--executor", "serial", "--out", str(tmp_path / "sweep"))  # fmt: skip
    assert sweep.returncode == 1, sweep.stderr
    assert "Traceback" not in sweep.stderr
    assert (
        sweep.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "backtester: error: SweepFailed: sweep: all 2 combinations failed; first error: "
            "StrategyError: Failing.on_bar raised RuntimeError: strategy bug at bar 5 at "
        )
    )
    assert len(list((tmp_path / "sweep" / "results").glob("*.json"))) == 2  # errors stored
