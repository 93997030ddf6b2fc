"""perpetual-swap backtester: replay crypto market data through an exact perpetual-swap model.

The public API is the short list in ``__all__``; everything else is internal.
"""

from __future__ import annotations

from backtester.engine.backtest import backtest
from backtester.engine.signals import backtest_signals
from backtester.jit import JitStrategy
from backtester.results import Result
from backtester.strategy import Strategy

__all__ = ["JitStrategy", "Result", "Strategy", "backtest", "backtest_signals"]
__version__ = "0.1.0"
