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


def _source_key(package_dir: str) -> str:
    """Return a digest of the package's Python sources (16 hex digits).

    numba invalidates a cached function when its own file changes, not when a function it calls
    in another module does (the loop in ``loop_nb.py`` inlines the metrics kernels of
    ``metrics_nb.py``): after an upgrade or an edit of one kernel file, cached callers would run
    the old code. Keying the cache folder by every source file makes any change start a fresh
    cache (one full compile) instead.
    """
    import hashlib

    digest = hashlib.sha1(usedforsecurity=False)
    for root, dirs, files in _os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = _os.path.join(root, name)
                digest.update(_os.path.relpath(path, package_dir).encode())
                with open(path, "rb") as source:
                    digest.update(source.read())
    return digest.hexdigest()[:16]


def _prune_old_caches(base: str, keep: str, days: float = 7.0) -> None:
    """Remove cache folders of other source versions not used for ``days``.

    A recent one may still be in use by a process of that version.
    """
    import shutil
    import time

    try:
        names = _os.listdir(base)
    except OSError:
        return
    for name in names:
        path = _os.path.join(base, name)
        if name == keep or not _os.path.isdir(path):
            continue
        try:
            idle = time.time() - _os.stat(path).st_mtime
        except OSError:
            continue
        if idle > days * 86_400:
            shutil.rmtree(path, ignore_errors=True)


def _use_user_cache_dir() -> None:
    """Keep numba's compiled-code cache out of the installed package, one folder per source version.

    By default numba writes its cache beside the source (``backtester/**/__pycache__``): a
    read-only install cannot cache, and a working copy grows with every cache entry. The cache
    goes to ``<base>/<source digest>`` (:func:`_source_key`), ``<base>`` being
    ``$BACKTESTER_CACHE_DIR``, else ``$XDG_CACHE_HOME/perpetual-swap-backtester/numba``
    (``~/.cache/...``), unless the user set ``NUMBA_CACHE_DIR`` themselves (then that folder is
    used as it is). numba reads the variable when it is imported and picks a function's cache
    location when it is decorated, so this runs before any jitted function of the package is
    defined (without importing numba). Folders of other versions idle for a week are removed.
    """
    if _os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = _os.environ.get("BACKTESTER_CACHE_DIR") or _os.path.join(
        _os.environ.get("XDG_CACHE_HOME") or _os.path.join(_os.path.expanduser("~"), ".cache"),
        "perpetual-swap-backtester",
        "numba",
    )
    key = _source_key(_os.path.dirname(_os.path.abspath(__file__)))
    cache_dir = _os.path.join(base, key)
    _prune_old_caches(base, key)
    _os.environ["NUMBA_CACHE_DIR"] = cache_dir
    config = _sys.modules.get("numba.core.config")
    if config is not None:  # numba was imported first and has read its environment already
        config.CACHE_DIR = cache_dir  # type: ignore[attr-defined]


_use_user_cache_dir()
# numba's registries import scipy.linalg (~0.3 s) for a flag no kernel here needs; see there
import_module("backtester.numba_startup").defer_blas_check()

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
