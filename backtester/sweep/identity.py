"""What a stored sweep result depends on besides its parameters, so it is never reused stale.

A sweep stores each combination's result under a key (:func:`backtester.sweep.store.job_key`) and
skips the combinations already stored. Keyed on the job alone (strategy path, parameters, data
selection), editing the strategy and re-running the sweep printed the old numbers (issue 16).
The key now also covers (:func:`job_identity`):

* ``strategy``: the bytes of the strategy's file and of every module it imports from the
  project — a module found as a ``.py`` file (or package ``__init__.py``) beside the strategy
  file, under a folder above it or under the current directory, followed through their own
  imports (installed packages are not part of the project; the backtester itself is the
  ``engine`` entry);
* ``data``: each file of the selected dataset in the catalog (``<catalog>/<exchange>/<symbol>/``)
  by relative path, size and modification time (an import or fetch that rewrites a file
  changes it; contents are not read, which would cost a pass over gigabytes);
* ``engine``: the digest of the backtester package's sources that also names the numba cache
  folder (``backtester._source_key``), so a new engine version recomputes.

Reading is cheap (one ``stat`` per catalog file, the strategy sources once) and done once per
distinct (strategy, data) pair of a sweep (:class:`IdentityCache`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["IdentityCache", "job_identity"]


def _module_file(name: str, roots: list[Path]) -> Path | None:
    """Return the project file of module ``name`` under one of ``roots``, or None.

    ``a.b`` is ``a/b.py`` or ``a/b/__init__.py``; None for an installed or built-in module.
    """
    relative = Path(*name.split("."))
    for root in roots:
        for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _imported_names(path: Path) -> list[str]:
    """Modules named by the import statements of a Python file (absolute and relative)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return []  # the run itself will report the error; the file's bytes are hashed anyway
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to the file's package directory
                parent = path.parent
                for _ in range(node.level - 1):
                    parent = parent.parent
                prefix = str(parent.relative_to(parent.anchor)).replace(os.sep, ".")
                base = f"{prefix}.{base}" if base else prefix
            names.append(base)
            # `from package import module` imports a module too
            names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def strategy_sources(reference: str, cwd: Path | None = None) -> dict[str, str]:
    """SHA-256 of the strategy's file and of the project modules it imports, by path.

    ``reference``: a file (``strategies/x.py`` or ``strategies/x.py:Class``) or an importable
    ``package.module:Class``.
    """
    cwd = Path.cwd() if cwd is None else cwd
    target = reference.rsplit(":", 1)[0] if reference.count(":") else reference
    path = Path(target)
    if not (target.endswith(".py") or path.is_file()):
        path = _module_file(target, [cwd, *(Path(p) for p in _sys_path())]) or path
    digests: dict[str, str] = {}
    backtester_dir = Path(__file__).resolve().parents[1]  # the backtester package
    pending = [path]
    while pending:
        current = pending.pop()
        key = str(current.resolve())
        if key in digests or not current.is_file():
            continue
        digests[key] = hashlib.sha256(current.read_bytes()).hexdigest()
        # beside the file, in the folders above it (``strategies.helpers`` from the project
        # root) and under the current directory
        roots = [current.parent, *current.resolve().parent.parents, cwd]
        for name in _imported_names(current):
            found = _module_file(name, roots)
            # the backtester's own modules are covered by the engine digest
            if found is not None and backtester_dir not in found.resolve().parents:
                pending.append(found)
    return digests


def _sys_path() -> list[str]:
    import sys

    return [p for p in sys.path if p and Path(p).is_dir()]


def data_files(selection: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Return (relative path, size, mtime ns) of every file of the selected dataset.

    Empty for the generated sample when no copy is stored: the engine digest covers it.
    """
    from backtester.data import sample

    source = selection["source"]
    if source == "sample":
        root = Path(selection.get("catalog") or sample.SAMPLE_CATALOG)
    else:
        root = Path(selection.get("catalog") or "data/catalog")
    base = root / str(source) / str(selection["symbol"])
    files = []
    if base.is_dir():
        for folder, dirs, names in os.walk(base):
            dirs.sort()
            for name in sorted(names):
                full = Path(folder) / name
                stat = full.stat()
                files.append((str(full.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return files


@functools.cache
def engine_version() -> str:
    """Return the digest of the backtester's sources, once per process.

    The code this process runs is the code it imported, whatever happens to the files later.
    """
    import backtester

    return backtester._source_key(os.path.dirname(os.path.abspath(backtester.__file__)))


def job_identity(job: dict[str, Any]) -> dict[str, Any]:
    """Return the strategy sources, data files and engine version a job's result depends on.

    The parts a job lacks (e.g. no ``data``) are left empty.
    """
    return {
        "strategy": strategy_sources(str(job["strategy"])) if "strategy" in job else {},
        "data": data_files(job["data"]) if "source" in (job.get("data") or {}) else [],
        "engine": engine_version(),
    }


class IdentityCache:
    """Compute :func:`job_identity` once per distinct (strategy, data selection) of a sweep.

    The combinations of one sweep differ in their parameters only.
    """

    def __init__(self) -> None:
        self._known: dict[str, dict[str, Any]] = {}

    def __call__(self, job: dict[str, Any]) -> dict[str, Any]:
        """Return the identity of ``job``."""
        data = dict(job.get("data") or {})
        data.pop("within", None)  # walk-forward windows cut the same files
        key = json.dumps([job.get("strategy"), data], sort_keys=True, default=str)
        if key not in self._known:
            self._known[key] = job_identity(job)
        return self._known[key]
