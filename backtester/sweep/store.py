"""The result store of a sweep: one JSON file per finished job, keyed on what it depends on.

Store layout (``<sweep dir>/``)::

    sweep.json              the base job and the parameter space (for the record)
    results/<key>.json      one per job: {"key", "job", "status": "ok"|"error", "metrics", "error"}

``<key>`` is the first 16 hex digits of the SHA-256 of the job's canonical JSON together with
its identity (:mod:`backtester.sweep.identity`), so the same job always maps to the same file
whatever the order or executor. Files are written to a temporary name and moved into place
(atomic on POSIX): a killed sweep leaves whole files only.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from backtester.sweep.identity import job_identity


def job_key(job: dict[str, Any], identity: dict[str, Any] | None = None) -> str:
    """Return the stable 16-hex-digit key of a job.

    SHA-256 of its canonical JSON together with what its result depends on besides (the
    strategy's sources, the data files, the engine version:
    :func:`backtester.sweep.identity.job_identity`, computed when ``identity`` is None), so
    that an edited strategy or changed data is never answered with a stored result.
    """
    if identity is None:
        identity = job_identity(job)
    text = json.dumps([job, identity], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- result store


class SweepStore:
    """One JSON file per finished job under ``<directory>/results``, written atomically.

    Parameters
    ----------
    directory
        The sweep directory (created if missing).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.results_dir = self.directory / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """File of one job's result."""
        return self.results_dir / f"{key}.json"

    def has(self, key: str) -> bool:
        """Whether the job with this key has a stored result (ok or error)."""
        return self.path(key).is_file()

    def get(self, key: str) -> dict[str, Any]:
        """Return the stored record of one job (``ValueError`` naming the file if corrupt)."""
        return self._load(self.path(key))

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: corrupt stored sweep result ({error})") from None
        if not isinstance(record, dict) or "status" not in record:
            raise ValueError(f"{path}: corrupt stored sweep result (not a result record)")
        return record

    def usable(self, key: str) -> dict[str, Any] | None:
        """Return the stored record of a job, or None when there is none or it is corrupt.

        A corrupt file (truncated by a full disk, edited by hand) is named in a warning and
        the job counts as not run, so the sweep computes it again and replaces the file.
        """
        if not self.has(key):
            return None
        try:
            return self.get(key)
        except ValueError as error:
            warnings.warn(f"{error}; computing it again", stacklevel=3)
            return None

    def put(self, key: str, record: dict[str, Any]) -> Path:
        """Store one job's record: temporary file in the same directory, then ``os.replace``."""
        target = self.path(key)
        temporary = target.with_name(f".{key}.{uuid.uuid4().hex}.tmp")
        with open(temporary, "w") as handle:
            json.dump(record, handle, sort_keys=True, default=_json_default)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return target

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        """Write ``sweep.json`` (what was swept), atomically."""
        target = self.directory / "sweep.json"
        temporary = target.with_name(f".sweep.{uuid.uuid4().hex}.tmp")
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=_json_default))
        os.replace(temporary, target)
        return target

    def read_manifest(self) -> dict[str, Any]:
        """Return the ``sweep.json`` written by :meth:`write_manifest`."""
        path = self.directory / "sweep.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.directory}: not a sweep directory (no sweep.json)")
        manifest: dict[str, Any] = json.loads(path.read_text())
        return manifest

    def records(self) -> list[dict[str, Any]]:
        """Return every stored record, sorted by key.

        A corrupt file is skipped with a warning naming it (rerun the sweep to compute it
        again).
        """
        out = []
        for path in sorted(self.results_dir.glob("*.json")):
            try:
                out.append(self._load(path))
            except ValueError as error:
                warnings.warn(f"{error}; skipped (rerun the sweep to compute it)", stacklevel=2)
        return out


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)
