"""Files and names: atomic writes, JSON of run data, and names that become path components.

:func:`atomic_write` writes to a temporary file in the target's folder, then ``os.replace``, so
a crash never leaves a half-written file under the final name; :func:`json_bytes` writes run
data as JSON (numpy scalars as numbers, NaN as null, ±inf as strings).

Names that become path components: validated (user-given) or slugged (generated).

A run name, sweep name, exchange or symbol typed by a user ends up as a directory name under
``reports/`` or the catalog. :func:`check_name` refuses anything that could leave that
directory or hide in it — a path separator, ``.``/``..``, a leading dot, an absolute path, a
control character — with a one-line error naming the field and what is expected;
:func:`slug` turns generated names (``<strategy>-<symbol>``, where a ccxt symbol holds ``/`` and
``:``) into safe ones.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

_MAX_LENGTH = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@,-]+")


def check_name(value: object, field: str, *, allow_slash: bool = False) -> str:
    """Return ``value`` if it is safe as one path component, else raise ``ValueError``.

    ``allow_slash`` accepts ``/`` (a ccxt symbol such as ``BTC/USDT:USDT``) for names the
    caller quotes before using them in a path (the catalog URL-quotes symbols).
    """
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected a name (text), got {type(value).__name__}")
    expected = (
        "expected a plain name such as 'sma-fast10' (letters, digits, - _ . +; no path "
        "separators, no '..', not starting with '.')"
    )
    if not value or not value.strip():
        raise ValueError(f"{field}: empty name; {expected}")
    if len(value) > _MAX_LENGTH:
        raise ValueError(f"{field}: name of {len(value)} characters; at most {_MAX_LENGTH}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{field}: {value!r} contains a control character; {expected}")
    separators = {"\\", "/", os.sep} | ({os.altsep} if os.altsep else set())
    if allow_slash:
        separators.discard("/")  # quoted by the caller (the catalog quotes symbols)
    if os.path.isabs(value) and not allow_slash:
        raise ValueError(f"{field}: {value!r} is an absolute path; {expected}")
    found = sorted(ch for ch in separators if ch in value)
    if found:
        raise ValueError(f"{field}: {value!r} contains the path separator {found[0]!r}; {expected}")
    if value in (".", "..") or value.startswith("."):
        raise ValueError(f"{field}: {value!r} starts with '.'; {expected}")
    if allow_slash and any(part in (".", "..") for part in value.split("/")):
        raise ValueError(f"{field}: {value!r} contains a '..' or '.' part; {expected}")
    return value


def slug(value: str) -> str:
    """Make a generated name safe for a file name; never empty, never starting with ``.``.

    Runs of other characters become ``-`` (``BTC/USDT:USDT`` → ``BTC-USDT-USDT``).
    """
    text = _UNSAFE.sub("-", value).strip("-.")
    return text[:_MAX_LENGTH] or "run"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (parent folders created).

    A temporary file in the same folder, then ``os.replace``; the temporary file is removed if
    anything fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def jsonable(value: Any) -> Any:
    """Return ``value`` in JSON types.

    Numpy scalars as Python numbers, NaN as None, ±inf as ``"inf"`` / ``"-inf"``, tuples as
    lists, dict keys as text and anything else as its ``str``.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    # numpy looked up, not imported: `backtester --help` (which imports this module) loads no
    # numpy, and without it loaded no value can be a numpy scalar
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def json_bytes(value: Any) -> bytes:
    """UTF-8 JSON of :func:`jsonable` ``(value)``, indented, with a final newline."""
    return (json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n").encode()
