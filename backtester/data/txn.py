"""Catalog transactions: an inter-process file lock, a staging directory and a commit journal.

The guarantee
-------------
Everything one transaction writes (every stream, month and day of one import, one ``fetch``
or one :meth:`~backtester.data.catalog.Catalog.write`) becomes visible **together or not at
all**, also across a ``SIGKILL`` or a power cut at any instant, and concurrent writers
(processes or threads) are serialised, so no writer loses another's rows.

How
---
All bookkeeping lives in ``<root>/.catalog/`` (hidden from :meth:`Catalog.datasets`):

* ``writer`` — an ``flock`` lock file writers hold exclusively for their whole transaction
  (read → merge → stage → commit): writers are serialised, so none loses another's rows.
* ``lock`` — an ``flock`` lock file readers hold shared while they read and a writer holds
  exclusively only while it commits (journal + renames), so a reader never sees half a commit
  and is not held up by a long download staging its pages.
  Both locks are re-entrant inside one process (one ``flock`` per catalog root, lock and
  process; threads queue on a process lock).
* ``txn/<pid>-<uuid>/files/<relative path>`` — the new content of every partition the
  transaction touches, written in full and ``fsync``-ed. Nothing under the catalog's data
  directories changes before the commit point.
* ``txn/<pid>-<uuid>/COMMIT`` — the journal: the relative paths to move into place, written to
  a temporary name, ``fsync``-ed and renamed (atomic). **Its existence is the commit point.**
  Then every staged file is moved over its target with ``os.replace`` (atomic per file) and the
  staging directory is removed.

Recovery, before any read or write of a process that finds leftovers: a staging directory
**with** ``COMMIT`` belongs to a transaction that committed and died while moving files (a live
writer holds the commit lock while its journal exists): the remaining staged files are moved
into place (roll forward; readers do this too). One **without** ``COMMIT`` died before its
commit point — or belongs to a live writer still staging: it is deleted (roll back) only by a
process holding the writer lock, i.e. when no writer is alive, and the catalog is exactly as
before it. Temporary files left by writers of earlier versions
(``.<name>.parquet.tmp-<pid>-<hex>``) are deleted when a write transaction starts.

A catalog directory the process cannot write (a read-only install of the sample data) is
read without a lock: nobody can write it either.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

META_DIR = ".catalog"
"""Hidden bookkeeping directory inside a catalog root (lock file and staging area)."""

_LEGACY_TMP_RE = re.compile(r"^\..+\.parquet\.tmp-\d+-[0-9a-f]{8}$")


def fsync_dir(path: Path) -> None:
    """``fsync`` a directory so that renames inside it survive a power cut."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _RootLock:
    """One ``flock`` on ``<root>/.catalog/<name>`` per process, re-entrant, shared or exclusive."""

    def __init__(self, root: Path, name: str = "lock") -> None:
        self.root = root
        self.name = name
        self.fd: int | None = None
        self.exclusive = False
        self.depth = 0
        self.txn: Transaction | None = None  # the write transaction in progress, if any
        self.thread_lock = threading.RLock()

    def _open(self, create: bool) -> int | None:
        meta = self.root / META_DIR
        try:
            if create:
                meta.mkdir(parents=True, exist_ok=True)
            return os.open(meta / self.name, os.O_RDWR | (os.O_CREAT if create else 0), 0o666)
        except FileNotFoundError:
            if create:
                raise
            return None  # nothing was ever written here: nothing to lock against
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EROFS, errno.EPERM) and not create:
                return None  # read-only catalog: no writer can exist
            raise

    def _open_for_write(self) -> int:
        """Open the lock file, created if needed.

        ``_open(create=True)`` raises rather than returning None.
        """
        fd = self._open(create=True)
        if fd is None:  # unreachable: kept so the type says int
            raise OSError(f"{self.root / META_DIR / self.name}: cannot open the lock file")
        return fd

    @contextlib.contextmanager
    def hold(self, exclusive: bool, blocking: bool = True) -> Iterator[bool | None]:
        """Hold the lock; yields whether this is the outermost hold of the process.

        With ``blocking=False`` yields ``None`` without holding anything when another process
        or thread holds the lock.
        """
        if not self.thread_lock.acquire(blocking=blocking):
            yield None
            return
        try:
            outermost = self.depth == 0
            if outermost:
                self.fd = self._open(create=exclusive)
                if self.fd is not None:
                    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
                    try:
                        fcntl.flock(self.fd, mode | (0 if blocking else fcntl.LOCK_NB))
                    except BlockingIOError:
                        os.close(self.fd)
                        self.fd = None
                        yield None
                        return
                self.exclusive = exclusive
            elif exclusive and not self.exclusive:
                # a write inside a read of the same process: upgrade (kept until released)
                fd = self.fd if self.fd is not None else self._open_for_write()
                self.fd = fd
                fcntl.flock(fd, fcntl.LOCK_EX)
                self.exclusive = True
            self.depth += 1
            try:
                yield outermost
            finally:
                self.depth -= 1
                if self.depth == 0 and self.fd is not None:
                    os.close(self.fd)  # releases the flock
                    self.fd = None
        finally:
            self.thread_lock.release()


_LOCKS: dict[tuple[str, str], _RootLock] = {}
_LOCKS_GUARD = threading.Lock()


def _reset_after_fork() -> None:
    # a forked child does not hold its parent's locks (the inherited descriptor shares the
    # parent's flock, so the child must never act on it): start from a clean registry
    global _LOCKS_GUARD
    _LOCKS.clear()
    _LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def root_lock(root: Path, name: str = "lock") -> _RootLock:
    """Return the process-wide lock object ``name`` of one catalog root.

    ``"lock"``: commits and reads; ``"writer"``: whole write transactions.
    """
    key = (os.path.realpath(root), name)
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = _RootLock(Path(key[0]), name)
        return lock


def pending(root: Path) -> bool:
    """Whether staging directories (of a dead or a live writer) exist under ``root``."""
    txn = root / META_DIR / "txn"
    try:
        return any(txn.iterdir())
    except OSError:
        return False


def recover(root: Path, *, committed_only: bool = False) -> list[str]:
    """Roll forward committed and roll back uncommitted leftover transactions.

    Uncommitted ones are left alone when ``committed_only``.

    The caller holds the commit lock exclusively (so no live writer is moving files) and,
    to roll back, the writer lock too (so no uncommitted staging belongs to a live writer).
    Returns one line per transaction recovered (what was done), for the warning.
    """
    done: list[str] = []
    txn = root / META_DIR / "txn"
    if not txn.is_dir():
        return done
    for staging in sorted(txn.iterdir()):
        if not staging.is_dir():
            with contextlib.suppress(OSError):
                staging.unlink()
            continue
        journal = staging / "COMMIT"
        if committed_only and not journal.is_file():
            continue  # may belong to a live writer: invisible anyway
        if journal.is_file():
            paths = json.loads(journal.read_text())
            moved = 0
            for rel in paths:
                staged = staging / "files" / rel
                if staged.exists():
                    target = root / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged, target)
                    fsync_dir(target.parent)
                    moved += 1
            done.append(
                f"{staging.name} had committed: completed ({moved} of {len(paths)} files "
                "moved into place now)"
            )
        else:
            done.append(f"{staging.name} had not committed: rolled back (its writes discarded)")
        shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(txn)
    return done


def remove_legacy_tmp(root: Path) -> int:
    """Delete ``.<name>.parquet.tmp-<pid>-<hex>`` files of interrupted pre-journal writers."""
    count = 0
    for path in root.rglob(".*.tmp-*"):
        if META_DIR in path.relative_to(root).parts[:1]:
            continue
        if path.is_file() and _LEGACY_TMP_RE.match(path.name):
            with contextlib.suppress(OSError):
                path.unlink()
                count += 1
    return count


class Transaction:
    """Staged writes of one transaction (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / META_DIR / "txn" / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.staged: dict[str, Path] = {}  # relative target path → staged file
        self.committed = False

    def relative(self, target: Path) -> str:
        """Return ``target`` relative to the catalog root; refuse a path outside it."""
        rel = os.path.relpath(target, self.root)
        if rel.startswith("..") or os.path.isabs(rel):
            raise ValueError(f"{target}: outside the catalog root {self.root}")
        return rel

    def staged_path(self, target: Path) -> Path:
        """Where the new content of ``target`` is written (created directories included)."""
        rel = self.relative(target)
        path = self.dir / "files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.staged[rel] = path
        return path

    def current(self, target: Path) -> Path | None:
        """Return the file holding ``target``'s content as this transaction sees it (or None)."""
        rel = self.relative(target)
        if rel in self.staged:
            return self.staged[rel]
        return target if target.exists() else None

    def commit(self) -> None:
        """Write the journal (the commit point), then move every staged file into place."""
        if not self.staged:
            self.rollback()
            return
        paths = sorted(self.staged)
        tmp = self.dir / "COMMIT.tmp"
        try:
            with open(tmp, "w") as handle:
                json.dump(paths, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.dir / "COMMIT")
            fsync_dir(self.dir)
        except BaseException:
            self.rollback()  # before the commit point: as if nothing was written
            raise
        # After the commit point a failure (disk full, a signal) leaves the journal: the next
        # read or write of the catalog, by any process, completes the move (recover).
        self.committed = True
        for rel in paths:
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staged[rel], target)
        for parent in {(self.root / rel).parent for rel in paths}:
            fsync_dir(parent)
        shutil.rmtree(self.dir, ignore_errors=True)

    def rollback(self) -> None:
        """Delete the staging directory (nothing under the data directories changed)."""
        shutil.rmtree(self.dir, ignore_errors=True)
