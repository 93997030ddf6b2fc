"""Optional dependencies, installed as extras of the package and imported where used.

=========  ======================  ==========================================
extra      packages                needed by
=========  ======================  ==========================================
``fetch``  ccxt                    ``backtester fetch`` (backtester.data.fetch)
``dask``   dask, distributed       ``backtester sweep --executor dask`` / ``--scheduler``
``all``    both
=========  ======================  ==========================================

``pip install "perpetual-swap-backtester[fetch,dask]"`` (or ``-e ".[all]"`` from a checkout).
A missing one raises :class:`MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

__all__ = ["MissingExtraError", "require"]

PACKAGE = "perpetual-swap-backtester"


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` saying which extra provides it."""
    try:
        return import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: "
            f'pip install "{PACKAGE}[{extra}]" (error: {error})'
        ) from error
