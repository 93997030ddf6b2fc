"""perpetual-swap backtester: replay crypto market data through an exact perpetual-swap model.

The public API is the short list in ``__all__``; everything else is internal. The names are
imported on first use (PEP 562), so ``backtester --help`` and ``python -m backtester`` start
without loading numba, numpy and pandas.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backtester.engine.backtest import backtest
    from backtester.engine.signals import backtest_signals
    from backtester.jit import JitStrategy
    from backtester.results import Result
    from backtester.strategy import Strategy


def _use_user_cache_dir() -> None:
    """Keep numba's compiled-code cache out of the installed package.

    By default numba writes its cache beside the source (``backtester/**/__pycache__``): a
    read-only install cannot cache, and a working copy grows with every cache entry. The cache
    goes to ``$BACKTESTER_CACHE_DIR``, else ``$XDG_CACHE_HOME/perpetual-swap-backtester/numba``
    (``~/.cache/...``), unless the user set ``NUMBA_CACHE_DIR`` themselves. numba reads the
    variable when it is imported and picks a function's cache location when it is decorated, so
    this runs before any jitted function of the package is defined (without importing numba).
    """
    if _os.environ.get("NUMBA_CACHE_DIR"):
        return
    cache_dir = _os.environ.get("BACKTESTER_CACHE_DIR") or _os.path.join(
        _os.environ.get("XDG_CACHE_HOME") or _os.path.join(_os.path.expanduser("~"), ".cache"),
        "perpetual-swap-backtester",
        "numba",
    )
    _os.environ["NUMBA_CACHE_DIR"] = cache_dir
    config = _sys.modules.get("numba.core.config")
    if config is not None:  # numba was imported first and has read its environment already
        config.CACHE_DIR = cache_dir  # type: ignore[attr-defined]


_use_user_cache_dir()

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
