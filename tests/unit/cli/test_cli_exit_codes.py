"""Exit code 2 for every bad input, wherever it comes from: a flag, a config file, a data range
with no data, a corrupt catalog file (named by its path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backtester import dtypes
from backtester.cli import main
from backtester.data import Catalog

REPO = Path(__file__).resolve().parents[3]
STRATEGY = str(REPO / "strategies" / "sma_cross.py")
MINUTE = 60_000_000_000
T0 = 1_672_531_200_000_000_000


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("leverage = -5", "leverage: expected a value > 0, got -5.0"),
        ("leverage = 500", "leverage: expected a value in [1, 100] for okx:BTC-USD-SWAP, got 500"),
        ('margin_mode = "crosss"', "margin_mode: got 'crosss'"),
        ("initial_balance = 0", "initial_balance: expected a value > 0, got 0.0"),
    ],
)
def test_bad_settings_in_a_config_file_exit_2(tmp_path: Path, capsys, setting, message) -> None:
    config = tmp_path / "run.toml"
    config.write_text(setting + "\n")
    out = tmp_path / "reports"
    code, err = run_cli(capsys, "run", STRATEGY, "--config", str(config), "--out", str(out))
    assert code == 2, err
    assert err == f"backtester: error: {message}" + err.split(message, 1)[1]
    assert not out.exists()


def test_bad_leverage_flag_exits_2(tmp_path: Path, capsys) -> None:
    args = ["run", STRATEGY, "--leverage", "0", "--out", str(tmp_path / "r")]
    code, err = run_cli(capsys, *args)
    assert code == 2
    assert "leverage: expected a value > 0, got 0.0" in err


def test_a_range_without_data_exits_2(tmp_path: Path, capsys) -> None:
    args = ["run", STRATEGY, "--data", "sample", "--start", "2030-01-01", "--out", str(tmp_path)]
    code, err = run_cli(capsys, *args)
    assert code == 2
    assert (
        "start/end: no market data for sample:BTC-USD-SWAP in [2030-01-01T00:00:00+00:00, " in err
    )


def test_a_corrupt_partition_is_named_by_its_path(tmp_path: Path, capsys) -> None:
    cat = Catalog(tmp_path / "cat")
    bars = np.zeros(5, dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(5) * MINUTE
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = 10.0
    (path,) = cat.write("bars", "x", "BTC", bars, source="u", interval_ns=MINUTE)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncated on disk
    code, err = run_cli(capsys, "data", "--catalog", str(cat.root))
    assert code == 2
    assert err.startswith(f"backtester: error: {path}: corrupt catalog file (")
    code, err = run_cli(capsys, "data", "x", "BTC", "--catalog", str(cat.root))
    assert code == 2
    assert str(path) in err
