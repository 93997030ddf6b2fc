"""perpetual-swap backtester: replay crypto market data through an exact perpetual-swap model.

The public API is the short list in ``__all__``; everything else is internal.
"""

from __future__ import annotations

import os as _os


def _use_user_cache_dir() -> None:
    """Keep numba's compiled-code cache out of the installed package.

    By default numba writes its cache beside the source (``backtester/**/__pycache__``): a
    read-only install cannot cache, and a working copy grows with every cache entry. The cache
    goes to ``$BACKTESTER_CACHE_DIR``, else ``$XDG_CACHE_HOME/perpetual-swap-backtester/numba``
    (``~/.cache/...``), unless the user set ``NUMBA_CACHE_DIR`` themselves. Set before any
    jitted function is defined, since numba picks the cache location at decoration time.
    """
    if _os.environ.get("NUMBA_CACHE_DIR"):
        return
    cache_dir = _os.environ.get("BACKTESTER_CACHE_DIR") or _os.path.join(
        _os.environ.get("XDG_CACHE_HOME") or _os.path.join(_os.path.expanduser("~"), ".cache"),
        "perpetual-swap-backtester",
        "numba",
    )
    _os.environ["NUMBA_CACHE_DIR"] = cache_dir
    import numba.core.config

    numba.core.config.CACHE_DIR = cache_dir


_use_user_cache_dir()

from backtester.engine.backtest import backtest  # noqa: E402  (after the cache setup)
from backtester.engine.signals import backtest_signals  # noqa: E402
from backtester.jit import JitStrategy  # noqa: E402
from backtester.results import Result  # noqa: E402
from backtester.strategy import Strategy  # noqa: E402

__all__ = ["JitStrategy", "Result", "Strategy", "backtest", "backtest_signals"]
__version__ = "0.1.0"
