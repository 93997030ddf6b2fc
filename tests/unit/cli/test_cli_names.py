"""Names that become directories are validated: no writes outside reports/ or the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from backtester.cli import main
from backtester.io import check_name, slug

REPO = Path(__file__).resolve().parents[3]
STRATEGY = str(REPO / "strategies" / "sma_cross.py")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("..", "starts with '.'"),
        (".", "starts with '.'"),
        (".hidden", "starts with '.'"),
        ("../../x", "path separator '/'"),
        ("/tmp/x", "absolute path"),
        ("a\\b", "path separator '\\\\'"),
        ("", "empty name"),
        ("a\nb", "control character"),
        ("x" * 201, "at most 200"),
    ],
)
def test_check_name_refuses_path_tricks(value: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="name: ") as info:
        check_name(value, "name")
    assert fragment in str(info.value)


def test_check_name_accepts_plain_names_and_quoted_symbols() -> None:
    assert check_name("sma-fast10_v2.1", "name") == "sma-fast10_v2.1"
    assert check_name("BTC/USDT:USDT", "symbol", allow_slash=True) == "BTC/USDT:USDT"
    with pytest.raises(ValueError, match=r"symbol: 'BTC/\.\./x' contains a '\.\.' or '\.' part"):
        check_name("BTC/../x", "symbol", allow_slash=True)


def test_slug_of_generated_names() -> None:
    assert slug("sma_cross-BTC/USDT:USDT") == "sma_cross-BTC-USDT-USDT"
    assert slug("../..") == "run"
    assert slug("a b") == "a-b"


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def no_new_entries(root: Path, before: set[str]) -> None:
    assert {p.name for p in root.iterdir()} == before


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped-absolute", "..", "a/b"])
def test_run_name_cannot_leave_the_output_folder(tmp_path: Path, capsys, name: str) -> None:
    out = tmp_path / "reports"
    code, err = run_cli(capsys, "run", STRATEGY, "--data", "sample", "--out", str(out),
                        "--name", name)  # fmt: skip
    assert code == 2
    assert err.startswith("backtester: error: name: ")
    assert not out.exists()
    assert not (tmp_path / "escaped").exists()
    assert not Path("/tmp/escaped-absolute").exists()


def test_config_name_is_checked_too(tmp_path: Path, capsys) -> None:
    config = tmp_path / "run.toml"
    config.write_text('name = "../.."\n')
    out = tmp_path / "r"
    code, err = run_cli(capsys, "run", STRATEGY, "--config", str(config), "--out", str(out))
    assert code == 2
    assert "name: '../..'" in err
    assert not out.exists()


def test_sweep_name_cannot_leave_reports(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "sweep", STRATEGY, "--data", "sample", "--grid", "fast=5,10",
                        "--name", "../..", "--executor", "serial")  # fmt: skip
    assert code == 2
    assert "name: '../..' contains the path separator '/'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exchange", ["..", ".catalog", "a/b"])
def test_import_exchange_cannot_leave_the_catalog(tmp_path: Path, capsys, exchange: str) -> None:
    source = tmp_path / "funding.csv"
    source.write_text("instrument_name,funding_rate,funding_time\nBTC,0.0001,1672531200000\n")
    catalog = tmp_path / "deep" / "catalog"
    args = ["import", str(source), "--format", "okx_funding", "--exchange", exchange]
    code, err = run_cli(capsys, *args, "--symbol", "BTC", "--catalog", str(catalog))
    assert code == 2
    assert "exchange: " in err
    assert not catalog.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["funding.csv"]
