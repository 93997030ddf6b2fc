"""perpetual-swap backtester: replay crypto market data through an exact perpetual-swap model.

The public API is the short list in ``__all__``; everything else is internal. The names are
imported on first use (PEP 562), so ``backtester --help`` and ``python -m backtester`` start
without loading numba, numpy and pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backtester.engine.backtest import backtest
    from backtester.engine.signals import backtest_signals
    from backtester.jit import JitStrategy
    from backtester.results import Result
    from backtester.strategy import Strategy

__all__ = ["JitStrategy", "Result", "Strategy", "backtest", "backtest_signals"]
__version__ = "0.1.0"

_LAZY = {
    "backtest": "backtester.engine.backtest",
    "backtest_signals": "backtester.engine.signals",
    "JitStrategy": "backtester.jit",
    "Result": "backtester.results",
    "Strategy": "backtester.strategy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'backtester' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
