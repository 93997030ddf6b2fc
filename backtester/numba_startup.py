"""Keep numba from importing scipy while it loads its registries: ~0.3 s of a run's start.

When numba loads its typing registries (the first compile or cache load of a process), it
imports ``numba.np.arraymath``, whose import sets ``_HAVE_BLAS = _check_blas()`` by importing
``scipy.linalg.cython_blas``, and with it all of ``scipy.linalg`` and scipy's array-API layer
(~0.3 s on the project's machine, a quarter of ``backtester run``'s time before the first
event; numba 0.68). The flag only decides, when an ``np.dot``-like function is compiled,
whether BLAS may be called (``arraymath._get_inner_prod``), and no kernel of the package
compiles one.

:func:`defer_blas_check` installs a one-shot import hook: while ``numba.np.arraymath`` executes,
its ``ensure_blas`` only asks whether scipy is installed (``importlib.util.find_spec``, no
import), so the flag is what it would have been; afterwards the module gets numba's own
``ensure_blas`` back, so compiling a function that does use BLAS (a user's jitted strategy
calling ``np.dot``) imports scipy then, as numba always does there. Nothing changes when
numba was imported before the hook, or without scipy.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["defer_blas_check"]

_TARGET = "numba.np.arraymath"


def _ensure_blas_without_import() -> None:
    """Raise ImportError when scipy is not installed, as ``numba.np.linalg.ensure_blas``."""
    if importlib.util.find_spec("scipy") is None:
        raise ImportError("scipy 0.16+ is required for linear algebra")


class _DeferredBlasLoader(importlib.abc.Loader):
    """Execute ``numba.np.arraymath`` with the import-free BLAS check, then restore numba's."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        """Return what the wrapped loader creates (None: the default module)."""
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        """Run the module with ``numba.np.linalg.ensure_blas`` swapped for the import-free one.

        The module binds the function at its top (``from numba.np.linalg import
        ensure_blas``) and calls it once (``_check_blas``); both names are restored after.
        """
        import numba.np.linalg as linalg

        original = linalg.ensure_blas
        linalg.ensure_blas = _ensure_blas_without_import
        try:
            self._loader.exec_module(module)
        finally:
            linalg.ensure_blas = original
            module.ensure_blas = original  # type: ignore[attr-defined]  # set by exec_module

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename, ... of the source loader (inspect, linecache, numba's
        # cache locator read them)
        return getattr(self._loader, name)


class _DeferredBlasFinder(importlib.abc.MetaPathFinder):
    """Find ``numba.np.arraymath`` through the other finders and wrap its loader, once."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """Return the module's spec with a wrapped loader (None for every other module)."""
        if fullname != _TARGET:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _DeferredBlasLoader(spec.loader)
        return spec


def defer_blas_check() -> None:
    """Install the one-shot hook unless numba's registries are loaded (idempotent)."""
    if _TARGET in sys.modules:
        return
    if not any(isinstance(finder, _DeferredBlasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferredBlasFinder())
