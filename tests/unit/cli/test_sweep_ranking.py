"""A sweep ranks by a metric on its records, without a pandas table (issue 15): the order is
the one a hand sort of the metric gives (best first, missing values last, ties in the records'
order), and a whole sweep of real backtests — run, stored, ranked — constructs no
``pandas.DataFrame`` (its constructor is made to raise for the test)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from backtester import sweep
from backtester.jobs import evaluate_backtest, load_data
from tests.unit.cli.test_sweep_backtests import STRATEGY_SOURCE


def _record(key: str, fast: int, metrics: dict[str, Any], status: str = "ok") -> dict[str, Any]:
    return {"key": key, "job": {"leverage": 10.0, "params": {"fast": fast}}, "status": status,
            "metrics": metrics, "error": "" if status == "ok" else "ValueError: x"}  # fmt: skip


def _hand_sorted_keys(records: list[dict[str, Any]], metric: str, ascending: bool) -> list[str]:
    """Best first by ``metric``; a missing, None or NaN value last; ties keep the input order."""

    def key(item: tuple[int, dict[str, Any]]) -> tuple[int, float, int]:
        position, record = item
        value = record["metrics"].get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (1, 0.0, position)
        return (0, value if ascending else -value, position)

    return [record["key"] for _, record in sorted(enumerate(records), key=key)]


RECORDS = [
    _record("a", 1, {"sharpe": 0.5, "trades": 3}),
    _record("b", 2, {"sharpe": float("nan"), "trades": 0}),
    _record("c", 3, {"sharpe": 2.25, "trades": 7}),
    _record("d", 4, {}, status="error"),
    _record("e", 5, {"sharpe": 0.5, "trades": 3}),  # ties with "a"
    _record("f", 6, {"sharpe": -1.75, "trades": 12}),
    _record("g", 7, {"sharpe": None, "trades": 1}),
    _record("h", 8, {"sharpe": float("inf"), "trades": 3}),
]


@pytest.mark.parametrize("metric", ["sharpe", "trades"])
@pytest.mark.parametrize("ascending", [False, True])
def test_rank_gives_the_order_of_a_hand_sort(metric: str, ascending: bool) -> None:
    ranked = sweep.rank_records(RECORDS, metric, ["fast"], ascending=ascending)
    assert [r["key"] for r in ranked] == _hand_sorted_keys(RECORDS, metric, ascending)


def test_the_hand_sort_is_what_it_says() -> None:
    # the reference itself, written out: best first, ties in input order, no value last
    assert _hand_sorted_keys(RECORDS, "sharpe", False) == ["h", "c", "a", "e", "f", "b", "d", "g"]
    assert _hand_sorted_keys(RECORDS, "sharpe", True) == ["f", "a", "e", "c", "h", "b", "d", "g"]


def test_rank_by_a_swept_dimension() -> None:
    ranked = sweep.rank_records(RECORDS, "fast", ["fast"])
    assert [r["job"]["params"]["fast"] for r in ranked] == [8, 7, 6, 5, 4, 3, 2, 1]


def _no_dataframe(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a pandas.DataFrame was constructed")


def test_a_sweep_ranked_by_a_metric_builds_no_dataframe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = tmp_path / "sma_cross.py"
    strategy.write_text(STRATEGY_SOURCE)
    selection: dict[str, Any] = {"source": "sample", "symbol": "BTC-USD-SWAP", "start_ns": None,
                                 "end_ns": None, "interval_ns": 0, "catalog": None}  # fmt: skip
    start = load_data(selection).start_ns
    selection.update(start_ns=start, end_ns=start + 5 * 86_400_000_000_000)
    base = {"strategy": str(strategy), "data": selection, "contract": "okx:BTC-USD-SWAP",
            "profile": None, "leverage": 10.0, "margin_mode": "isolated",
            "maker_fee_rate": None, "taker_fee_rate": None, "initial_balance": 1.0,
            "params": {"slow": 30}}  # fmt: skip
    space = {"fast": [3, 8, 20]}
    jobs = [sweep.apply_combination(base, combo) for combo in sweep.grid_combinations(space)]

    monkeypatch.setattr(pd.DataFrame, "__init__", _no_dataframe)
    with pytest.raises(AssertionError, match="was constructed"):
        pd.DataFrame({"x": [1]})  # the trap is armed
    run = sweep.run_jobs(evaluate_backtest, jobs, sweep.SweepStore(tmp_path / "s"),
                         executor="serial")  # fmt: skip
    assert run.failed == 0, [r["error"] for r in run.records]
    ranked = sweep.rank_records(run.records, "total_return", list(space))
    monkeypatch.undo()

    returns = [r["metrics"]["total_return"] for r in run.records]
    assert len(set(returns)) == 3  # the combinations really differ
    assert [r["metrics"]["total_return"] for r in ranked] == sorted(returns, reverse=True)
