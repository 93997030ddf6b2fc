"""The callback names are listed once (backtester/callbacks.py) and every place that knows
callbacks agrees with that list."""

from __future__ import annotations

import inspect

from backtester.callbacks import CALLBACKS, LOOP_CALLBACKS, WAKE_REASONS
from backtester.engine.loop_nb import run_until_nb
from backtester.jit import JitStrategy
from backtester.strategy import Strategy


def test_strategy_classes_define_exactly_the_listed_callbacks() -> None:
    python_side = {name for name in dir(Strategy) if name.startswith("on_")}
    jit_side = {name for name in vars(JitStrategy) if name.startswith("on_")}
    assert python_side == set(CALLBACKS)
    assert jit_side == set(CALLBACKS)


def test_the_loop_takes_the_replay_callbacks_in_list_order() -> None:
    names = [p for p in inspect.signature(run_until_nb.py_func).parameters if p.startswith("on_")]
    assert tuple(names) == LOOP_CALLBACKS
    assert set(LOOP_CALLBACKS) == set(CALLBACKS) - {"on_start", "on_stop"}
    assert tuple(WAKE_REASONS) == LOOP_CALLBACKS
    assert len(set(WAKE_REASONS.values())) == len(WAKE_REASONS)  # one bit per callback
