"""The README's two commands: (1) a backtest on the sample data writes the HTML report and prints
the summary; (2) the test command is exactly the one CI runs (`.ci/run`)."""

from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None, "README.md has no ```bash block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_test_command_is_the_ci_command() -> None:
    ci = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    second = readme_commands()[1]
    assert second == ci[-1]
    assert second.endswith(
        "ruff check . && ruff format --check . && python -m mypy && python -m pytest -q"
    )


@pytest.mark.slow  # subprocesses
def test_readme_first_command_runs_a_backtest_on_the_sample(tmp_path: Path) -> None:
    first = readme_commands()[0]
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e .")
    words = shlex.split(first.split("&&")[-1])
    assert words[:2] == ["backtester", "run"]
    # the same command through this interpreter (the venv the tests run in), output to tmp
    done = subprocess.run(
        [sys.executable, "-m", "backtester.cli", *words[1:], "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1
    html = list(runs[0].glob("*.html"))
    assert html, f"no HTML report in {runs[0]}: {sorted(p.name for p in runs[0].iterdir())}"
    assert html[0].stat().st_size > 10_000
    assert f"report: {runs[0]}" in done.stdout


def test_readme_strategy_and_notebook_examples_run() -> None:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 4, "README: expected the strategy, notebook, jit and signal examples"
    strategy, notebook, _, _ = blocks
    assert len(strategy.splitlines()) <= 30  # fits on one screen
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(strategy, "README.md strategy", "exec"), namespace)
    exec(compile(notebook, "README.md notebook", "exec"), namespace)
    result = namespace["result"]
    ledger = result.ledger
    total = float(ledger["amount_settle"].sum())
    assert total == pytest.approx(result.final_balance_settle - 1.0, abs=1e-9)
    assert len(result.fills) > 10
    # the entries were sized in money and carried their exits
    orders = result.orders
    entries = orders[(orders["order_type"] == "MARKET") & ~orders["reduce_only"]]
    # 2,000 USD / 100 USD per contract (inverse BTC-USD-SWAP) = 20 contracts
    assert (entries["qty_contracts"] == 20.0).all()
    kinds = set(orders["order_type"])
    assert {"STOP_MARKET", "TAKE_PROFIT"} <= kinds


def test_readme_jit_example_trades_on_the_sample_ticks() -> None:
    from backtester import backtest
    from backtester.data.sample import load_sample

    text = (REPO / "README.md").read_text()
    jit_block = re.findall(r"```python\n(.*?)```", text, re.S)[2]
    namespace: dict = {"__name__": "readme_jit_example"}
    exec(compile(jit_block, "README.md jit example", "exec"), namespace)
    data = load_sample("BTC-USDT-SWAP", with_trades=True)
    result = backtest(namespace["EmaTicks"], data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    fills = result.records["fills"]
    assert len(fills) >= 1
    assert (fills["side"][fills["order_id"] >= 0] == 1).all()  # the example only buys
    ledger = result.records["ledger"]
    assert 10_000.0 + ledger["amount_settle"].sum() == pytest.approx(
        result.final_balance_settle, rel=1e-12
    )


def test_readme_signal_example_trades_the_crossings_with_hourly_equity() -> None:
    text = (REPO / "README.md").read_text()
    signal_block = re.findall(r"```python\n(.*?)```", text, re.S)[3]
    namespace: dict = {"__name__": "readme_signal_example"}
    exec(compile(signal_block, "README.md signal example", "exec"), namespace)
    result = namespace["result"]
    crossings = int(namespace["cross"].sum())
    fills = result.records["fills"]
    # one order per crossing after the first entry (an exit while flat places nothing)
    assert 2 <= len(fills) <= crossings
    assert (fills["side"][::2] == 1).all()  # entries buy, exits sell
    ts = result.records["equity"]["ts_ns"][:-1]  # the last row is the final one
    assert (np.diff(ts) >= 3_600_000_000_000).all()
    ledger = result.records["ledger"]
    assert 10_000.0 + math.fsum(ledger["amount_settle"]) == pytest.approx(
        result.final_balance_settle, rel=1e-12
    )
    # always in: every crossing trades, the first opens 1 contract, each later one reverses 2
    flip = namespace["flip"].records["fills"]
    assert len(flip) == crossings
    assert flip["qty_contracts"][0] == 1.0
    assert (flip["qty_contracts"][1:] == 2.0).all()
    assert (np.diff(flip["side"].astype(int)) != 0).all()  # buy, sell, buy, ... alternate
    # a target of +-50 % of the equity: every crossing reverses the side
    sized = namespace["sized"].records["fills"]
    assert len(sized) == crossings
    assert (np.diff(sized["side"].astype(int)) != 0).all()


def _readme_cli_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("backtester "):
                lines.append(line)
    return lines


@pytest.mark.slow  # subprocesses
def test_readme_offline_commands_run_as_written(tmp_path: Path) -> None:
    """Each README command that needs no network and no fetched data runs as written (the
    sweep on 2 random combinations of its grid; import on a missing file, which proves its
    options are complete: the error is the file, not a missing option)."""
    lines = _readme_cli_lines()
    ran = set()
    for line in lines:
        words = shlex.split(line)
        command = words[1]
        needs_fetched = "--data" in words and words[words.index("--data") + 1] != "sample"
        if command == "fetch" or needs_fetched:
            continue  # network / fetched data
        extra: list[str] = []
        if command == "sweep":
            extra = ["--random", "2", "--out", str(tmp_path / "sweep")]
        done = subprocess.run(
            [sys.executable, "-m", "backtester", *words[1:], *extra],
            capture_output=True, text=True, cwd=tmp_path if command == "import" else REPO,
            timeout=900,
        )  # fmt: skip
        if command == "import":
            assert done.returncode == 2, done.stderr
            assert "no such file" in done.stderr, done.stderr
        else:
            assert done.returncode == 0, (line, done.stderr)
        ran.add(command)
    assert {"sweep", "import", "data"} <= ran
