"""Parquet catalog of validated market-data streams, partitioned by month, written atomically.

Layout
------
::

    <root>/<exchange>/<symbol>/<kind>[-<interval>]/<YYYY>-<MM>.parquet       (all but trades)
    <root>/<exchange>/<symbol>/trades/<YYYY>-<MM>-<DD>.parquet
    <root>/<exchange>/<symbol>/tiers/<YYYYMMDDTHHMMSS>.parquet

* ``symbol`` is URL-quoted for the path (``BTC/USDT:USDT`` → ``BTC%2FUSDT%3AUSDT``); the exact
  symbol is also in every file's metadata.
* ``<interval>`` is present for candle kinds only: ``1m``, ``15m``, ``1h``, ``8h``, ``1d``,
  ``30s`` or ``<n>ns`` (:func:`interval_label`).
* A row belongs to the UTC calendar month of its ``ts_ns`` (for candles: the open time);
  trades, which run to millions of rows a day on a busy perpetual, are partitioned by UTC day
  so that merging one partition stays small in memory (:data:`PARTITION_UNIT`).
* Each file holds :data:`ROW_GROUP_ROWS`-row groups with min/max statistics on ``ts_ns``; range
  reads skip files by name and row groups by statistics, and :meth:`Catalog.iter_chunks`
  streams one row group at a time, so memory stays bounded by the chunk size whatever the span.
* Files carry Arrow schema metadata: kind, exchange, symbol, interval_ns, source, units,
  schema_version and any user metadata (e.g. ``excluded_rows`` from an importer).

Writes
------
:meth:`Catalog.write` validates the records first (:mod:`backtester.data.validation`), then
merges each month with the rows already stored. Every write runs in a **transaction**
(:mod:`backtester.data.txn`): under an inter-process file lock, the merged partitions are
written to a staging directory and moved into place only after a commit journal is on disk, so
all the files of one write — or of every write inside one ``with catalog.transaction():``
block, as an import of several files or a ``fetch`` of several kinds — become visible together
or not at all, also after a ``SIGKILL`` (the next process to open the catalog rolls a committed
transaction forward and an uncommitted one back). Concurrent writers are serialised, so no
writer loses another's rows; readers never see half a commit and wait only for its renames.
Merge rules:

* candles, index, mark, funding: a timestamp present in both the stored and the new rows must
  carry identical values (then it is kept once); different values raise ``ValueError`` naming
  the timestamp and both rows.
* trades (timestamps may repeat): over the time window where the stored and new rows overlap,
  the rows must be identical, except that at each end of the window one side may lack some
  trades of the window's first or last timestamp (a download cut inside a burst of trades
  sharing one millisecond, resumed from ``last_ts_ns`` inclusive, or a re-download starting
  anywhere inside such a burst); anything else is a conflict.

Reads select ``start_ns <= ts_ns < end_ns`` (end exclusive; ``None`` = open).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from backtester import dtypes
from backtester.data import txn as _txn
from backtester.data.intervals import interval_label, parse_interval
from backtester.data.schemas import (
    BAR_KINDS,
    KIND_DTYPES,
    kind_dtype,
    records_to_table,
    table_to_records,
)
from backtester.data.validation import (
    MAX_ABS_FUNDING_RATE,
    check_candle_grid,
    check_funding_caps,
    funding_caps,
    validate_records,
)
from backtester.enums import TierBasis
from backtester.io import check_name

_P = ParamSpec("_P")
_R = TypeVar("_R")

ROW_GROUP_ROWS = 65_536
"""Rows per Parquet row group (the unit of streaming and of range pruning)."""

PARTITION_UNIT = {"trades": "D"}
"""numpy datetime unit of a kind's file partition: trades by UTC day, everything else by month."""

_PARTITION_RE = re.compile(r"^\d{4}-\d{2}(-\d{2})?\.parquet$")


def _partition_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if _PARTITION_RE.match(p.name))


def _partition_span(stem: str) -> tuple[int, int]:
    """``[first, after)`` ns of the partition named ``YYYY-MM`` or ``YYYY-MM-DD``."""
    first = np.datetime64(stem, "D") if stem.count("-") == 2 else np.datetime64(stem, "M")
    return (
        int(first.astype("datetime64[ns]").astype(np.int64)),
        int((first + 1).astype("datetime64[ns]").astype(np.int64)),
    )


def _rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality of two same-dtype structured arrays (NaN equals NaN)."""
    equal = np.ones(len(a), dtype=bool)
    for name in dtypes.field_names(a.dtype):
        x, y = a[name], b[name]
        if x.dtype.kind == "f":
            equal &= (x == y) | (np.isnan(x) & np.isnan(y))
        else:
            equal &= x == y
    return equal


def _row_text(row: np.void) -> str:
    return "(" + ", ".join(f"{n}={row[n].item()!r}" for n in dtypes.field_names(row.dtype)) + ")"


def _merge_unique(old: np.ndarray, new: np.ndarray, label: str) -> np.ndarray:
    both = np.concatenate([old, new])
    order = np.argsort(both["ts_ns"], kind="stable")
    both = both[order]
    ts = both["ts_ns"]
    dup = np.flatnonzero(ts[1:] == ts[:-1])
    if len(dup) == 0:
        return both
    same = _rows_equal(both[dup], both[dup + 1])
    if not same.all():
        i = int(dup[np.flatnonzero(~same)[0]])
        raise ValueError(
            f"{label}: conflicting rows for ts_ns {int(ts[i])} "
            f"({pd.Timestamp(int(ts[i]), unit='ns', tz='UTC')}): stored {_row_text(both[i])} vs "
            f"new {_row_text(both[i + 1])} (a timestamp may be stored once; identical re-imports "
            "are merged, different values are refused)"
        )
    keep = np.ones(len(both), dtype=bool)
    keep[dup + 1] = False
    return both[keep]


def _burst_union(
    a: np.ndarray, b: np.ndarray, a_open: tuple[bool, bool], b_open: tuple[bool, bool]
) -> np.ndarray | None:
    """Union of two downloads ``a``, ``b`` of the trades of one timestamp, or None if they differ.

    Each side holds a contiguous run of the burst of trades sharing the timestamp; ``*_open``
    says whether that side may lack trades at the (start, end) of the burst — true where its
    download starts (ends) at this timestamp. The union is the longer side when the shorter one
    is a run inside it, else the two runs joined where the end of one equals the start of the
    other (at least one trade in common; the largest overlap wins, as a resumed download
    repeats the whole burst it was cut in).
    """
    for long, short, s_open in ((a, b, b_open), (b, a, a_open)):
        if len(short) > len(long):
            continue
        for k in range(len(long) - len(short) + 1):
            if (k > 0 and not s_open[0]) or (k + len(short) < len(long) and not s_open[1]):
                continue
            if _rows_equal(long[k : k + len(short)], short).all():
                return long
    for first, second, f_open, s_open in ((a, b, a_open, b_open), (b, a, b_open, a_open)):
        if not (f_open[1] and s_open[0]):
            continue
        for k in range(min(len(first), len(second)) - 1, 0, -1):
            if _rows_equal(first[len(first) - k :], second[:k]).all():
                return np.concatenate([first, second[k:]])
    return None


def _merge_trades(old: np.ndarray, new: np.ndarray, label: str) -> np.ndarray:
    if len(old) == 0 or len(new) == 0:
        return np.concatenate([old, new])
    lo = max(int(old["ts_ns"][0]), int(new["ts_ns"][0]))
    hi = min(int(old["ts_ns"][-1]), int(new["ts_ns"][-1]))
    if lo > hi:
        both = np.concatenate([old, new])
        return both[np.argsort(both["ts_ns"], kind="stable")]
    sides = []
    for rows in (old, new):
        ts = rows["ts_ns"]
        # a download may be cut inside the burst of trades of its first or last timestamp
        opened = (int(ts[0]) == lo, int(ts[-1]) == hi)
        head = rows[ts == lo]
        middle = rows[(ts > lo) & (ts < hi)]
        tail = rows[ts == hi] if hi > lo else rows[:0]
        sides.append((opened, head, middle, tail))
    (o_open, o_head, o_mid, o_tail), (n_open, n_head, n_mid, n_tail) = sides
    problem = None
    if hi == lo:
        head = _burst_union(o_head, n_head, o_open, n_open)
        tail = o_tail
        if head is None:
            problem = lo
    else:
        # inside the window both sides hold the end of the first burst and the start of the last
        head = _burst_union(o_head, n_head, (o_open[0], False), (n_open[0], False))
        tail = _burst_union(o_tail, n_tail, (False, o_open[1]), (False, n_open[1]))
        same_middle = len(o_mid) == len(n_mid) and bool(_rows_equal(o_mid, n_mid).all())
        if head is None:
            problem = lo
        elif not same_middle:
            n = min(len(o_mid), len(n_mid))
            diff = np.flatnonzero(~_rows_equal(o_mid[:n], n_mid[:n]))
            longer = o_mid if len(o_mid) > len(n_mid) else n_mid
            problem = int(o_mid["ts_ns"][diff[0]]) if len(diff) else int(longer["ts_ns"][n])
        elif tail is None:
            problem = hi
    if problem is not None:
        in_old = int(np.count_nonzero((old["ts_ns"] >= lo) & (old["ts_ns"] <= hi)))
        in_new = int(np.count_nonzero((new["ts_ns"] >= lo) & (new["ts_ns"] <= hi)))
        raise ValueError(
            f"{label}: stored and new trades differ where they overlap "
            f"({pd.Timestamp(lo, unit='ns', tz='UTC')} → {pd.Timestamp(hi, unit='ns', tz='UTC')}), "
            f"first at ts_ns {problem}: {in_old:,} stored vs {in_new:,} new rows in the overlap "
            "(the overlap must be identical, except that a download may lack trades of the "
            "burst at its first or last timestamp)"
        )
    # problem is set whenever one is None
    assert head is not None
    assert tail is not None
    parts = [old[old["ts_ns"] < lo], new[new["ts_ns"] < lo], head, o_mid, tail]
    parts += [old[old["ts_ns"] > hi], new[new["ts_ns"] > hi]]
    return np.concatenate(parts)


def _merge_metadata(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    out = dict(old)
    for key, value in new.items():
        if (
            key in out
            and out[key] != value
            and key not in ("kind", "exchange", "symbol", "interval_ns", "units", "schema_version")
        ):
            parts = out[key].split(" | ")
            if value not in parts:
                out[key] = " | ".join([*parts, value])
        else:
            out[key] = value
    return out


class CatalogRecoveryWarning(UserWarning):
    """A transaction left by a writer that died was rolled forward or back on open."""


class CorruptPartitionError(ValueError):
    """A catalog file cannot be read as Parquet; the message names the file."""


def _parquet(call: Callable[..., Any], path: Path, *args: Any, **kwargs: Any) -> Any:
    """``call(path, ...)`` with an unreadable file reported by its path (not only "magic bytes")."""
    try:
        return call(path, *args, **kwargs)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CorruptPartitionError(
            f"{path}: corrupt catalog file ({exc}); restore it or delete it and import or "
            "fetch its span again"
        ) from None


def _read_locked(
    method: Callable[Concatenate[Catalog, _P], _R],
) -> Callable[Concatenate[Catalog, _P], _R]:
    """Run a read under the catalog's shared lock (never sees half of a commit)."""

    @functools.wraps(method)
    def wrapper(self: Catalog, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.reading():
            return method(self, *args, **kwargs)

    return wrapper


class Catalog:
    """Time-partitioned Parquet store of market-data streams (see module docstring).

    Parameters
    ----------
    root
        Directory of the catalog (created on first write).
    """

    def __init__(self, root: str | Path = "data/catalog") -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Catalog]:
        """Group writes: everything written inside the block is committed together, or not at all.

        Holds the catalog's writer lock for the whole block (other writers wait) and its
        commit lock for the commit only (readers wait for the few renames of the commit, not
        for the block). An exception inside the block discards every write of the block.
        Nested blocks (and :meth:`write` inside a block) join the outer transaction. Reads
        inside the block see the catalog as it was before the block. See
        :mod:`backtester.data.txn` for the guarantee after a crash.
        """
        writer = _txn.root_lock(self.root, "writer")
        commit = _txn.root_lock(self.root, "lock")
        with writer.hold(exclusive=True) as outermost:
            if writer.txn is not None:
                yield self
                return
            if outermost:  # no other writer is alive: every leftover staging is dead
                with commit.hold(exclusive=True):
                    self._recover(committed_only=False)
                removed = _txn.remove_legacy_tmp(self.root)
                if removed:
                    warnings.warn(
                        f"catalog {self.root}: removed {removed} temporary file(s) left by an "
                        "interrupted write of an earlier version",
                        CatalogRecoveryWarning,
                        stacklevel=3,
                    )
            transaction = _txn.Transaction(self.root)
            writer.txn = transaction
            try:
                yield self
            except BaseException:
                transaction.rollback()
                raise
            else:
                with commit.hold(exclusive=True):
                    transaction.commit()
            finally:
                writer.txn = None

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the shared commit lock: the reads inside the block see one committed state.

        Every read method takes it; a reader of several streams (the loader of a
        :class:`~backtester.data.market.MarketData`) holds it around all of them. First
        completes a dead writer's committed transaction (and, when no writer is alive, undoes
        an uncommitted one).
        """
        lock = _txn.root_lock(self.root, "lock")
        if lock.depth == 0 and _txn.pending(self.root):
            writer = _txn.root_lock(self.root, "writer")
            with (
                writer.hold(exclusive=True, blocking=False) as no_writer,
                lock.hold(exclusive=True) as outermost,
            ):
                if outermost:
                    # with the writer lock (no live writer) every leftover is dead; without
                    # it only a committed one is (its writer held this lock while moving)
                    self._recover(committed_only=not no_writer)
        with lock.hold(exclusive=False):
            yield

    def _recover(self, *, committed_only: bool) -> None:
        """Finish or undo a dead writer's transaction, and say so (never silently)."""
        for line in _txn.recover(self.root, committed_only=committed_only):
            warnings.warn(
                f"catalog {self.root}: recovered the transaction of a writer that died: {line}",
                CatalogRecoveryWarning,
                stacklevel=4,
            )

    def _active(self) -> _txn.Transaction:
        transaction = _txn.root_lock(self.root, "writer").txn
        assert transaction is not None, "catalog writes run inside transaction()"
        return transaction

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    # ------------------------------------------------------------------ paths

    def dataset_dir(self, kind: str, exchange: str, symbol: str, interval_ns: int = 0) -> Path:
        """Directory holding the partition files of one stream."""
        kind_dtype(kind)
        if kind == "tiers":
            name = "tiers"
        elif kind in BAR_KINDS:
            if interval_ns <= 0:
                raise ValueError(
                    f"interval_ns: candle kind {kind!r} needs the candle length in ns (> 0), "
                    f"got {interval_ns}"
                )
            name = f"{kind}-{interval_label(interval_ns)}"
        else:
            if interval_ns != 0:
                raise ValueError(
                    f"interval_ns: kind {kind!r} is not a candle kind, expected 0, "
                    f"got {interval_ns}"
                )
            name = kind
        if not exchange or not symbol:
            raise ValueError(f"exchange and symbol must be non-empty, got {exchange!r}, {symbol!r}")
        # quoted below, but '.', '..' and hidden names survive quoting: refuse them
        check_name(exchange, "exchange")
        check_name(symbol, "symbol", allow_slash=True)
        return self.root / quote(exchange, safe="-_.") / quote(symbol, safe="-_.") / name

    def partitions(self, kind: str, exchange: str, symbol: str, interval_ns: int = 0) -> list[Path]:
        """Monthly files of one stream, oldest first (empty when the stream does not exist)."""
        directory = self.dataset_dir(kind, exchange, symbol, interval_ns)
        if not directory.is_dir():
            return []
        return _partition_files(directory)

    @_read_locked
    def exists(self, kind: str, exchange: str, symbol: str, interval_ns: int = 0) -> bool:
        """Whether the stream has at least one stored file.

        For a candle kind with ``interval_ns=0``: whether candles of any interval are stored.
        """
        if kind in BAR_KINDS and interval_ns == 0:
            return bool(self.intervals(kind, exchange, symbol))
        return bool(self.partitions(kind, exchange, symbol, interval_ns))

    # ------------------------------------------------------------------ write

    def write(
        self,
        kind: str,
        exchange: str,
        symbol: str,
        records: np.ndarray,
        *,
        source: str,
        interval_ns: int = 0,
        metadata: dict[str, str] | None = None,
        allow_open_outside_range: bool = False,
        max_abs_funding_rate: float = MAX_ABS_FUNDING_RATE,
    ) -> list[Path]:
        """Validate ``records`` and merge them into the stream's partition files atomically.

        Parameters
        ----------
        kind
            ``"trades"``, ``"bars"``, ``"index"``, ``"mark"``, ``"index_bars"``,
            ``"mark_bars"`` or ``"funding"``.
        exchange, symbol
            Venue and instrument the rows belong to.
        records
            Structured array of the kind's dtype, sorted by ``ts_ns``.
        source
            Provenance (file path, URL, generator and seed); stored in the file metadata.
        interval_ns
            Candle length for candle kinds, 0 otherwise.
        metadata
            Extra string metadata stored in every written file.
        allow_open_outside_range
            Validation option for BitMEX-style candles (see :mod:`backtester.data.validation`);
            recorded in the metadata.
        max_abs_funding_rate
            Validation bound for funding rates.

        Returns
        -------
        list[Path]
            The partition files written (existing files merged and replaced).

        Raises
        ------
        TypeError, ValueError
            Invalid records (nothing is written) or rows conflicting with stored rows (nothing
            is written).
        """
        if kind not in KIND_DTYPES:
            raise ValueError(
                f"kind: unknown stream kind {kind!r}; expected one of "
                f"{', '.join(map(repr, KIND_DTYPES))} (tier tables: write_tiers)"
            )
        directory = self.dataset_dir(kind, exchange, symbol, interval_ns)
        if not isinstance(source, str) or not source:
            raise ValueError(f"source: expected a non-empty provenance string, got {source!r}")
        label = f"{exchange}:{symbol} {directory.name}"
        try:  # messages name the imported file when the source is one
            is_file = Path(source).is_file()
        except (OSError, ValueError):  # a provenance text too long or odd for a path
            is_file = False
        name = f"{Path(source).name} ({label})" if is_file else f"records for {label}"
        validate_records(
            records,
            kind,
            name=name,
            interval_ns=interval_ns,
            allow_open_outside_range=allow_open_outside_range,
            max_abs_funding_rate=max_abs_funding_rate,
        )
        if kind == "funding" and max_abs_funding_rate == MAX_ABS_FUNDING_RATE:
            caps = funding_caps(exchange, symbol, records["ts_ns"])
            if caps is not None:  # the venue publishes a cap for this symbol and era
                check_funding_caps(
                    records["funding_rate"], caps[0], caps[1], name, records["ts_ns"]
                )
        if len(records) == 0:
            return []
        meta = {
            "kind": kind,
            "exchange": exchange,
            "symbol": symbol,
            "interval_ns": str(interval_ns),
            "source": source,
        }
        if allow_open_outside_range:
            meta["allow_open_outside_range"] = "true"
        meta.update({str(k): str(v) for k, v in (metadata or {}).items()})

        unit = PARTITION_UNIT.get(kind, "M")
        months = records["ts_ns"].astype("datetime64[ns]").astype(f"datetime64[{unit}]")
        cuts = np.flatnonzero(months[1:] != months[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(records)]
        # Each merged partition is staged as soon as it is built (memory: one partition);
        # nothing is visible until the transaction commits, so a conflict in a later month
        # leaves the catalog untouched.
        written: list[Path] = []
        with self.transaction():
            transaction = self._active()
            for a, b in itertools.pairwise(bounds):
                part = records[a:b]
                path = directory / f"{months[a]!s}.parquet"
                file_meta = dict(meta)
                current = transaction.current(path)
                if current is not None:
                    old_table = _parquet(pq.read_table, current)
                    old = table_to_records(old_table, kind)
                    old_meta = {
                        k.decode(): v.decode() for k, v in (old_table.schema.metadata or {}).items()
                    }
                    if kind == "trades":
                        part = _merge_trades(old, part, f"{label} {path.name}")
                    else:
                        part = _merge_unique(old, part, f"{label} {path.name}")
                    if kind in BAR_KINDS:  # new candles on the stored candles' grid
                        check_candle_grid(part["ts_ns"], interval_ns, f"{label} {path.name}")
                    file_meta = _merge_metadata(old_meta, meta)
                written.append(self._write_staged(path, records_to_table(part, kind, file_meta)))
        return written

    def _write_staged(self, path: Path, table: pa.Table) -> Path:
        """Write ``table`` as the new content of ``path`` in the current transaction."""
        staged = self._active().staged_path(path)
        with open(staged, "wb") as handle:
            # Timestamps on a regular grid compress ~10x better delta-encoded than as
            # plain int64 under zstd; the other columns keep dictionary encoding.
            pq.write_table(
                table,
                handle,
                row_group_size=ROW_GROUP_ROWS,
                compression="zstd",
                write_statistics=["ts_ns"],
                use_dictionary=[name for name in table.column_names if name != "ts_ns"],
                column_encoding={"ts_ns": "DELTA_BINARY_PACKED"},
            )
            handle.flush()
            os.fsync(handle.fileno())
        return path

    # ------------------------------------------------------------------ read

    def files_in_range(
        self,
        kind: str,
        exchange: str,
        symbol: str,
        start_ns: int | None,
        end_ns: int | None,
        interval_ns: int,
    ) -> list[Path]:
        """Return the partition files of a stream whose span overlaps ``[start_ns, end_ns)``.

        ``FileNotFoundError`` naming what the catalog holds when the stream is not stored.
        """
        files = self.partitions(kind, exchange, symbol, interval_ns)
        if not files:
            raise FileNotFoundError(
                f"catalog {self.root}: no stream {kind!r} for {exchange}:{symbol}"
                + (f" at interval {interval_label(interval_ns)}" if interval_ns else "")
                + f"; available: {self.available_text(exchange, symbol)}"
            )
        selected = []
        for path in files:
            first, after = _partition_span(path.stem)
            if end_ns is not None and first >= end_ns:
                continue
            if start_ns is not None and after <= start_ns:
                continue
            selected.append(path)
        return selected

    def available_text(self, exchange: str, symbol: str) -> str:
        """Return what the catalog holds for ``exchange:symbol``, as text for error messages.

        Lists the instruments it holds when it has none of this one.
        """
        frame = self.datasets()
        if frame.empty:
            return "the catalog is empty"
        sel = frame[(frame["exchange"] == exchange) & (frame["symbol"] == symbol)]
        if sel.empty:
            pairs = sorted(
                {f"{e}:{s}" for e, s in zip(frame["exchange"], frame["symbol"], strict=True)}
            )
            return f"no streams for this instrument; instruments: {', '.join(pairs)}"
        return ", ".join(
            k + (f"-{i}" if i else "") for k, i in zip(sel["kind"], sel["interval"], strict=True)
        )

    def selected_groups(
        self, files: list[Path], start_ns: int | None, end_ns: int | None
    ) -> Iterator[tuple[pq.ParquetFile, int, int]]:
        """Yield ``(file, row group, rows)`` whose ts_ns statistics overlap the range."""
        for path in files:
            handle = _parquet(pq.ParquetFile, path)
            handle.metadata_path = path  # for error messages
            meta = handle.metadata
            ts_col = handle.schema_arrow.get_field_index("ts_ns")
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(ts_col).statistics
                if stats is not None and stats.has_min_max:
                    if end_ns is not None and stats.min >= end_ns:
                        continue
                    if start_ns is not None and stats.max < start_ns:
                        continue
                yield handle, g, meta.row_group(g).num_rows

    def iter_groups(
        self, kind: str, files: list[Path], start_ns: int | None, end_ns: int | None
    ) -> Iterator[np.ndarray]:
        """Yield the records of each selected row group of ``files``, cut to the range.

        One row group is decoded at a time (the unit of streaming); a corrupt one raises
        :class:`CorruptPartitionError` naming the file and the group.
        """
        for handle, g, _ in self.selected_groups(files, start_ns, end_ns):
            try:
                table = handle.read_row_group(g)
            except (pa.ArrowInvalid, OSError) as exc:
                raise CorruptPartitionError(
                    f"{handle.metadata_path}: corrupt catalog file, row group {g} ({exc}); "
                    "restore it or delete it and import or fetch its span again"
                ) from None
            records = table_to_records(table, kind)
            if start_ns is not None or end_ns is not None:
                ts = records["ts_ns"]
                lo = 0 if start_ns is None else int(np.searchsorted(ts, start_ns, "left"))
                hi = len(ts) if end_ns is None else int(np.searchsorted(ts, end_ns, "left"))
                records = records[lo:hi]
            if len(records):
                yield records

    @_read_locked
    def read(
        self,
        kind: str,
        exchange: str,
        symbol: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        interval_ns: int = 0,
    ) -> np.ndarray:
        """Rows of one stream with ``start_ns <= ts_ns < end_ns``, as a structured array.

        Raises ``FileNotFoundError`` (listing what the catalog holds) when the stream is absent.
        """
        files = self.files_in_range(kind, exchange, symbol, start_ns, end_ns, interval_ns)
        # Preallocate from the footers (an upper bound: partial first/last groups are trimmed),
        # so a full read peaks at one copy of the data plus one row group.
        upper = sum(rows for _, _, rows in self.selected_groups(files, start_ns, end_ns))
        out = np.empty(upper, dtype=kind_dtype(kind))
        filled = 0
        for part in self.iter_groups(kind, files, start_ns, end_ns):
            out[filled : filled + len(part)] = part
            filled += len(part)
        return out if filled == upper else out[:filled].copy()

    def iter_chunks(
        self,
        kind: str,
        exchange: str,
        symbol: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        interval_ns: int = 0,
        chunk_rows: int = 1_000_000,
    ) -> Iterator[np.ndarray]:
        """Stream the rows of :meth:`read` in time order, ``chunk_rows`` at a time.

        Every chunk but the last holds exactly ``chunk_rows`` rows; at most one chunk plus one
        row group is in memory at once. No lock is held between chunks (a replay may take
        minutes): each file is read as it was when the stream reached it.
        """
        if chunk_rows <= 0:
            raise ValueError(f"chunk_rows: expected a value > 0, got {chunk_rows}")
        with self.reading():
            files = self.files_in_range(kind, exchange, symbol, start_ns, end_ns, interval_ns)
        pending: list[np.ndarray] = []
        count = 0
        for group in self.iter_groups(kind, files, start_ns, end_ns):
            pending.append(group)
            count += len(group)
            while count >= chunk_rows:
                joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
                yield joined[:chunk_rows]
                rest = joined[chunk_rows:]
                pending = [rest] if len(rest) else []
                count = len(rest)
        if count:
            yield pending[0] if len(pending) == 1 else np.concatenate(pending)

    @_read_locked
    def last_ts_ns(self, kind: str, exchange: str, symbol: str, interval_ns: int = 0) -> int | None:
        """Largest stored ``ts_ns`` of the stream (candle open time), ``None`` if empty.

        Read from the Parquet footer statistics of the newest file: no data pages are read.
        """
        files = self.partitions(kind, exchange, symbol, interval_ns)
        if not files:
            return None
        return _file_span(files[-1])[1]

    @_read_locked
    def datasets(self) -> pd.DataFrame:
        """One row per stored stream: exchange, symbol, kind, interval(_ns), rows, files, span.

        Columns: ``exchange, symbol, kind, interval, interval_ns, rows, files, start_ns, end_ns,
        start, end, source``; ``start``/``end`` are UTC timestamps of the first/last ``ts_ns``.
        """
        rows = []
        if self.root.is_dir():
            for directory in sorted(self.root.glob("*/*/*")):
                if directory.parts[-3].startswith("."):
                    continue  # bookkeeping (.catalog: lock file, staging area)
                if not directory.is_dir() or directory.name == "tiers":
                    continue
                files = _partition_files(directory)
                if not files:
                    continue
                kind, _, label = directory.name.partition("-")
                if kind not in KIND_DTYPES:
                    continue
                count = sum(_parquet(pq.read_metadata, path).num_rows for path in files)
                spans = [_file_span(path) for path in files]
                first = min(lo for lo, _ in spans)
                last = max(hi for _, hi in spans)
                file_meta = _parquet(pq.read_schema, files[-1]).metadata or {}
                rows.append(
                    {
                        "exchange": unquote(directory.parent.parent.name),
                        "symbol": unquote(directory.parent.name),
                        "kind": kind,
                        "interval": label,
                        "interval_ns": parse_interval(label) if label else 0,
                        "rows": count,
                        "files": len(files),
                        "start_ns": first,
                        "end_ns": last,
                        "start": pd.Timestamp(first, unit="ns", tz="UTC"),
                        "end": pd.Timestamp(last, unit="ns", tz="UTC"),
                        "source": file_meta.get(b"source", b"").decode(),
                    }
                )
        columns = [
            "exchange",
            "symbol",
            "kind",
            "interval",
            "interval_ns",
            "rows",
            "files",
            "start_ns",
            "end_ns",
            "start",
            "end",
            "source",
        ]
        return pd.DataFrame(rows, columns=columns)

    @_read_locked
    def metadata(
        self, kind: str, exchange: str, symbol: str, interval_ns: int = 0
    ) -> dict[str, str]:
        """Return the schema metadata of the newest file of a stream (provenance, units)."""
        files = self.files_in_range(kind, exchange, symbol, None, None, interval_ns)
        raw = _parquet(pq.read_schema, files[-1]).metadata or {}
        return {k.decode(): v.decode() for k, v in raw.items() if k != b"ARROW:schema"}

    # ------------------------------------------------------------------ market data

    def intervals(self, kind: str, exchange: str, symbol: str) -> list[int]:
        """Return the stored candle intervals (ns, ascending) of ``kind`` for ``exchange:symbol``.

        ``kind`` is ``bars``, ``index_bars`` or ``mark_bars``; empty when none is stored.
        """
        check_name(exchange, "exchange")
        check_name(symbol, "symbol", allow_slash=True)
        base = self.root / quote(exchange, safe="-_.") / quote(symbol, safe="-_.")
        return sorted(
            parse_interval(directory.name.split("-", 1)[1])
            for directory in base.glob(f"{kind}-*")
            if any(directory.glob("*.parquet"))
        )

    # ------------------------------------------------------------------ tiers

    def write_tiers(
        self,
        exchange: str,
        symbol: str,
        table_rows: np.ndarray,
        basis: int,
        valid_from_ns: int,
        source: str,
    ) -> Path:
        """Store one tier-table snapshot valid from ``valid_from_ns`` (atomic write).

        The file is ``tiers/<valid_from as YYYYMMDDTHHMMSS>.parquet`` with metadata
        ``tier_basis`` (``TierBasis`` name), ``valid_from_ns`` and ``source``. An existing
        snapshot with the same validity is replaced only by identical rows.
        """
        if not isinstance(table_rows, np.ndarray) or table_rows.dtype != dtypes.TIER_DTYPE:
            got = getattr(table_rows, "dtype", type(table_rows).__name__)
            raise TypeError(f"table_rows: expected dtype TIER_DTYPE, got {got}")
        if len(table_rows) == 0:
            raise ValueError("table_rows: a tier table needs at least one row")
        basis_name = TierBasis(int(basis)).name
        if not source:
            raise ValueError(f"source: expected a non-empty provenance string, got {source!r}")
        mins = table_rows["min_size"]
        if np.any(mins[1:] < mins[:-1]):
            i = int(np.flatnonzero(mins[1:] < mins[:-1])[0]) + 1
            raise ValueError(f"table_rows row {i + 1}: min_size {mins[i]} < previous {mins[i - 1]}")
        stamp = pd.Timestamp(int(valid_from_ns), unit="ns", tz="UTC").strftime("%Y%m%dT%H%M%S")
        path = self.dataset_dir("tiers", exchange, symbol) / f"{stamp}.parquet"
        meta = {
            "kind": "tiers",
            "exchange": exchange,
            "symbol": symbol,
            "tier_basis": basis_name,
            "valid_from_ns": str(int(valid_from_ns)),
            "source": source,
        }
        with self.transaction():
            current = self._active().current(path)
            if current is not None:
                old = table_to_records(_parquet(pq.read_table, current), "tiers")
                if len(old) != len(table_rows) or not _rows_equal(old, table_rows).all():
                    raise ValueError(
                        f"{path}: a different tier table valid from {stamp} is already stored"
                    )
            return self._write_staged(path, records_to_table(table_rows, "tiers", meta))

    @_read_locked
    def read_tiers(self, exchange: str, symbol: str) -> list[tuple[int, int, np.ndarray, str]]:
        """Return the stored tier snapshots, oldest first.

        Each as ``(valid_from_ns, basis, rows, source)``.
        """
        directory = self.dataset_dir("tiers", exchange, symbol)
        out = []
        for path in sorted(directory.glob("*.parquet")) if directory.is_dir() else []:
            table = _parquet(pq.read_table, path)
            meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
            out.append(
                (
                    int(meta["valid_from_ns"]),
                    int(TierBasis[meta["tier_basis"]]),
                    table_to_records(table, "tiers"),
                    meta["source"],
                )
            )
        return out


def _file_span(path: Path) -> tuple[int, int]:
    meta = _parquet(pq.read_metadata, path)
    col = meta.schema.to_arrow_schema().get_field_index("ts_ns")
    lo = hi = None
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(col).statistics
        if stats is None or not stats.has_min_max:
            table = pq.read_table(path, columns=["ts_ns"])
            ts = table.column("ts_ns").to_numpy()
            return int(ts.min()), int(ts.max())
        lo = stats.min if lo is None else min(lo, stats.min)
        hi = stats.max if hi is None else max(hi, stats.max)
    if lo is None or hi is None:  # no row group: an empty file has no span
        raise CorruptPartitionError(f"{path}: catalog file without rows")
    return int(lo), int(hi)
