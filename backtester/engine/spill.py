"""Records of a streamed replay written to Parquet window by window, so memory stays bounded.

Why: a chunked replay (:mod:`backtester.data.stream`) holds one window of *input* in memory,
but the records the engine writes (an equity row per minute is 72 bytes, 227 MB over six
years) used to accumulate in the record buffers until the end: a 3.1 M-bar replay with an
equity row per minute peaked at 1.18 GB, more than loading everything. Here, at the end of each
window the rows the window added go to disk as one Parquet row group per record kind, and the
buffers start over, so their size is set by the window, not by the span.

Layout of the records folder (``backtest(..., records_directory=...)``, else a temporary
folder owned by the :class:`~backtester.results.Result`):

* ``<kind>.parquet`` for ``fills``, ``funding_payments``, ``liquidations``, ``settlements``,
  ``adl``, ``ledger`` and ``equity`` — one column per field of the kind's dtype
  (:data:`backtester.dtypes.ALL_RECORD_DTYPES`, same names and types), rows in record order.
* ``price-<instrument>-<last|mark|index>.parquet``: the price series of the Result
  (PRICE_DTYPE; the last point of each equity-interval bucket).

Row groups: the rows of whole windows. A window's rows are written as a row group once at
least ``min_row_group_rows`` (default :data:`ROW_GROUP_MIN_ROWS`) rows of the kind are waiting,
so a long window is one row group and short windows are gathered (writing a row group costs
~1 ms whatever its size: one per kind and one-day window would cost more than replaying the
day's bars). With ``min_row_group_rows=1``, one row group per window that added rows (and a
last one for the rows written after the last window, e.g. the closing equity row). The rows
waiting are at most ``min_row_group_rows`` plus one window's.

Row references stay global: a ledger row's ``ref_id`` is a fill id (global already) or, for
FUNDING, SETTLEMENT and CLAWBACK rows, the row of the funding payment, settlement or ADL record
— in the buffer an index relative to the buffer's first row, written to disk as the index in
the whole run (:meth:`RecordSpill.spill_run` adds the rows already spilled).

What stays in memory
--------------------
* The order rows (``orders``): an order's id is its row, and working orders are updated in
  place by the replay; their number is set by the strategy's trading, not by the span.
* Ledger rows the clawback rules may still scan back to (:func:`~backtester.engine.
  deleverage_nb.clawback_profit_nb` reads the settlement day before the event, up to two days
  back; :func:`~backtester.engine.deleverage_nb.account_profit_nb` the current clawback period).
* A jitted strategy reading ``ctx.fills`` / ``ctx.ledger`` ... directly sees the rows of the
  current window (and the kept rows above), not the whole run: the row numbers its callbacks
  receive (``on_fill(ctx, state, fill_row)``) are valid as always.

Failure: :meth:`RecordSpill.close` runs whether the replay finished or raised, so the files
hold every window completed before the error as valid Parquet (the waiting rows are written
and the footer too).
A temporary folder is removed on failure; a folder the user named is left as it is. A process
killed outright (SIGKILL, out of memory) cannot write the footer: the files are then truncated
and not readable.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from backtester import dtypes
from backtester.enums import LedgerKind

if TYPE_CHECKING:
    from backtester.engine.driver import Run

__all__ = [
    "SPILLED_KINDS",
    "RecordSpill",
    "read_first_rows",
    "read_last_rows",
    "read_records",
    "spill_file",
]

SPILLED_KINDS = (
    "fills", "funding_payments", "liquidations", "settlements", "adl", "ledger", "equity",
)  # fmt: skip
"""Record kinds written to disk per window (``orders`` stays in memory, see the module notes)."""

_COUNTERS = {
    "fills": "n_fills", "funding_payments": "n_funding_payments",
    "liquidations": "n_liquidations", "settlements": "n_settlements", "adl": "n_adl",
    "ledger": "n_ledger", "equity": "n_equity",
}  # fmt: skip
# rows shown to the strategy's callbacks so far (``range(n_*_seen, n_*)`` is shown next). At
# the end of a window every wake-up of its events has been handled (the loop yields
# END_OF_DATA after the last one), so the rows a subscribed callback is shown are all seen
# there; an unsubscribed kind's counter lags, harmlessly (its callback does not run).
_SEEN = {
    "fills": "n_fills_seen", "funding_payments": "n_funding_seen",
    "liquidations": "n_liquidations_seen", "adl": "n_adl_seen",
}  # fmt: skip
# ledger kinds whose ref_id is a record row (the others: a global fill id, or unused)
_LEDGER_REFS = {
    int(LedgerKind.FUNDING): "funding_payments",
    int(LedgerKind.SETTLEMENT): "settlements",
    int(LedgerKind.CLAWBACK): "adl",
}
_DAY_NS = 86_400_000_000_000
LEDGER_LOOKBACK_NS = 2 * _DAY_NS + 1
"""Ledger rows newer than ``now − LEDGER_LOOKBACK_NS`` stay in memory: the per-instrument
clawback scans the settlement day closed last, (T − 1 day, T] with T > event time − 1 day, and
events come at or after ``now`` (:func:`~backtester.engine.deleverage_nb.clawback_profit_nb`)."""

ROW_GROUP_MIN_ROWS = 16_384
"""Rows of a kind gathered before they are written as one row group (1.2 MB of equity rows;
the rows waiting, their concatenation and its Arrow copy are what a flush holds)."""

_ARROW_TYPES = {
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.float64): pa.float64(),
    np.dtype(np.bool_): pa.bool_(),
}


def spill_file(directory: str | Path, name: str) -> Path:
    """Return the Parquet file of a record kind (or ``price-<i>-<series>``) in a records folder."""
    return Path(directory) / f"{name}.parquet"


def _schema(dtype: np.dtype) -> pa.Schema:
    fields = []
    for name in dtype.names or ():
        base = dtype[name]
        if base not in _ARROW_TYPES:
            raise TypeError(f"{name}: no Parquet column type for numpy {base}")
        fields.append(pa.field(name, _ARROW_TYPES[base], nullable=False))
    return pa.schema(fields)


def _table(rows: npt.NDArray[np.void], schema: pa.Schema) -> pa.Table:
    columns = [pa.array(np.ascontiguousarray(rows[name])) for name in schema.names]
    return pa.Table.from_arrays(columns, schema=schema)


def _read_groups(
    reader: pq.ParquetFile, groups: Iterable[int], rows: int, dtype: np.dtype
) -> npt.NDArray[np.void]:
    """Read row groups ``groups`` (``rows`` rows in all) into a zeroed array of ``dtype``.

    Field by field into zeros: the padding bytes stay 0 (``np.concatenate`` leaves aligned
    padding undefined) and the transient memory is one row group.
    """
    out = np.zeros(rows, dtype=dtype)
    start = 0
    for group in groups:
        table = reader.read_row_group(group)
        end = start + table.num_rows
        for name in dtype.names or ():
            out[name][start:end] = table.column(name).to_numpy()
        start = end
    return out


def read_records(path: str | Path, dtype: np.dtype) -> npt.NDArray[np.void]:
    """Read a spilled record file back as a structured array of ``dtype``.

    Read one row group at a time into the zeroed result (padding bytes 0, as the engine's own
    buffers), so the transient memory is one row group, not a second copy of the file. Values
    are exact: Parquet stores int64/float64 bit for bit. Raises ``ValueError`` naming the file
    when it is missing, unreadable or its columns are not the dtype's fields.
    """
    path = Path(path)
    dtype = np.dtype(dtype)
    try:
        reader = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise ValueError(
            f"{path}: cannot read spilled records ({error}); a records folder is removed when "
            "its Result is closed, and a run killed outright leaves its files unreadable"
        ) from error
    with reader:
        names = reader.schema_arrow.names
        if names != list(dtype.names or ()):
            raise ValueError(
                f"{path}: columns {names}, expected the fields {list(dtype.names or ())}"
            )
        return _read_groups(reader, range(reader.num_row_groups), reader.metadata.num_rows, dtype)


def read_last_rows(path: str | Path, dtype: np.dtype, n: int) -> npt.NDArray[np.void]:
    """Return the last ``n`` rows of a spilled record file (reads only the row groups needed)."""
    path = Path(path)
    with pq.ParquetFile(path) as reader:
        groups: list[int] = []
        rows = 0
        for group in range(reader.num_row_groups - 1, -1, -1):
            if rows >= n:
                break
            groups.insert(0, group)
            rows += reader.metadata.row_group(group).num_rows
        out = _read_groups(reader, groups, rows, dtype)
    return out[max(0, rows - n) :]


def read_first_rows(path: str | Path, dtype: np.dtype, n: int) -> npt.NDArray[np.void]:
    """Return the first ``n`` rows of a spilled record file (reads only the row groups needed)."""
    path = Path(path)
    with pq.ParquetFile(path) as reader:
        groups, rows = 0, 0
        while groups < reader.num_row_groups and rows < n:
            rows += reader.metadata.row_group(groups).num_rows
            groups += 1
        out = _read_groups(reader, range(groups), rows, dtype)
    return out[:n]


class RecordSpill:
    """Writes a streamed replay's records to a records folder, one row group per window.

    Parameters
    ----------
    directory
        The folder to write (created; must hold no spilled files yet), or ``None`` for a new
        temporary folder, removed by :meth:`close` on failure and otherwise by the Result
        that reads it (``Result.close()``, or when it is garbage-collected).
    min_row_group_rows
        Rows of a kind gathered before a row group is written (default
        :data:`ROW_GROUP_MIN_ROWS`; 1: a row group per window).
    """

    def __init__(
        self, directory: str | Path | None, *, min_row_group_rows: int | None = None
    ) -> None:
        if min_row_group_rows is None:
            min_row_group_rows = ROW_GROUP_MIN_ROWS
        if min_row_group_rows < 1:
            raise ValueError(f"min_row_group_rows: expected >= 1, got {min_row_group_rows!r}")
        self.min_row_group_rows = int(min_row_group_rows)
        if directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="backtester-records-"))
            self.owned = True
        else:
            self.directory = Path(directory)
            if self.directory.exists() and not self.directory.is_dir():
                raise ValueError(
                    f"records_directory: {self.directory} is a file, expected a folder"
                )
            self.directory.mkdir(parents=True, exist_ok=True)
            taken = sorted(p.name for p in self.directory.glob("*.parquet"))
            if taken:
                raise ValueError(
                    f"records_directory: {self.directory} already holds spilled records "
                    f"({', '.join(taken[:3])}{', ...' if len(taken) > 3 else ''}); give an empty "
                    "or new folder"
                )
            self.owned = False
        self.offsets = dict.fromkeys(SPILLED_KINDS, 0)
        """Rows of each kind already on disk (the global row of the buffer's first row)."""
        self.row_groups: dict[str, int] = {}
        self.windows = 0
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._waiting: dict[str, list[npt.NDArray[np.void]]] = {}
        self._waiting_rows: dict[str, int] = {}
        self._dtypes: dict[str, np.dtype] = {}
        self.closed = False

    # ------------------------------------------------------------------ writing
    def write(self, name: str, rows: npt.NDArray[np.void]) -> None:
        """Append one window's ``rows`` to ``<name>.parquet``.

        They are kept (copied) until at least ``min_row_group_rows`` rows wait, then written as
        one row group.
        """
        self._dtypes.setdefault(name, rows.dtype)
        if len(rows) == 0:
            return
        self._waiting.setdefault(name, []).append(rows.copy())
        self._waiting_rows[name] = self._waiting_rows.get(name, 0) + len(rows)
        if self._waiting_rows[name] >= self.min_row_group_rows:
            self._flush(name)

    def _flush(self, name: str) -> None:
        parts = self._waiting.pop(name, [])
        self._waiting_rows.pop(name, None)
        if not parts:
            return
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
        del parts
        writer = self._writers.get(name)
        if writer is None:
            schema = _schema(rows.dtype)
            # no dictionary (tried first on every column, it made a 16k-row group cost 67 ms
            # instead of 6: the floats do not repeat); lz4: ~49 bytes per equity row on disk
            writer = pq.ParquetWriter(
                spill_file(self.directory, name), schema, compression="lz4", use_dictionary=False
            )
            self._writers[name] = writer
        writer.write_table(_table(rows, writer.schema), row_group_size=len(rows))
        self.row_groups[name] = self.row_groups.get(name, 0) + 1

    def spill_run(self, run: Run, *, final: bool = False) -> None:
        """Write the rows the run's buffers hold (but those still needed, unless ``final``).

        The kept rows move to the front of the buffers, counters adjusted.

        Called by the driver at the end of every window (``Run.on_window_end``) and once
        after the run (``final=True``: every row, the buffers end empty).
        """
        a = run.account[0]
        counts = {kind: int(a[_COUNTERS[kind]]) for kind in SPILLED_KINDS}
        first_kept = dict(counts)
        if not final:
            cutoff = int(a["ts_ns"]) - LEDGER_LOOKBACK_NS
            period = int(a["clawback_period_ns"])
            if period > 0:
                cutoff = min(cutoff, int(a["next_clawback_ns"]) - period)
            ledger_ts = run.buffers["ledger"]["ts_ns"][: counts["ledger"]]
            first_kept["ledger"] = int(np.searchsorted(ledger_ts, cutoff, side="right"))
        for kind in SPILLED_KINDS:
            buffer = run.buffers[kind]
            k, n = first_kept[kind], counts[kind]
            rows = buffer[:k]
            if kind == "ledger":
                rows = rows.copy()
                self._globalise_refs(rows, +1)
            self.write(kind, rows)
            if k == 0:
                continue
            # the kept rows (usually none or a few) to the front; the freed rows zeroed, as
            # a new buffer is, so rows written next are byte for byte those of an unspilled run
            buffer[: n - k] = buffer[k:n]
            buffer[n - k : n].view(np.uint8)[:] = 0
            a[_COUNTERS[kind]] = n - k
            if kind in _SEEN:
                a[_SEEN[kind]] = max(0, int(a[_SEEN[kind]]) - k)
        # kept ledger rows refer to rows relative to the buffers' new first rows
        kept_ledger = run.buffers["ledger"][: int(a["n_ledger"])]
        if len(kept_ledger):
            shift = {kind: first_kept[kind] for kind in _LEDGER_REFS.values()}
            for ledger_kind, kind in _LEDGER_REFS.items():
                if shift[kind]:
                    mask = kept_ledger["kind"] == ledger_kind
                    kept_ledger["ref_id"][mask] -= shift[kind]
        for kind in SPILLED_KINDS:
            self.offsets[kind] += first_kept[kind]
        self.windows += 1

    def _globalise_refs(self, ledger: npt.NDArray[np.void], sign: int) -> None:
        """Ledger ref_ids of record rows from buffer-relative to run-global (in place)."""
        for ledger_kind, kind in _LEDGER_REFS.items():
            if self.offsets[kind]:
                mask = ledger["kind"] == ledger_kind
                ledger["ref_id"][mask] += sign * self.offsets[kind]

    # ------------------------------------------------------------------ closing
    def close(self, *, failed: bool = False) -> None:
        """Write the Parquet footers and an empty file for each kind that got no rows.

        Every file is then valid with the row groups written so far. On ``failed`` a temporary
        folder is removed (nothing can read it); a folder the user named keeps what was written.
        """
        if self.closed:
            if failed and self.owned:  # the successful close itself failed
                shutil.rmtree(self.directory, ignore_errors=True)
            return
        self.closed = True
        try:
            if not (failed and self.owned):
                for name in list(self._waiting):
                    self._flush(name)
        finally:
            # the footers even when a last write failed (disk full): what was written stays
            # readable
            self._waiting.clear()
            for writer in self._writers.values():
                writer.close()
        if failed and self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)
            return
        for name, dtype in {**dict.fromkeys(SPILLED_KINDS), **self._dtypes}.items():
            if name not in self._writers:
                dtype = dtype if dtype is not None else dtypes.ALL_RECORD_DTYPES[name]
                schema = _schema(dtype)
                pq.write_table(schema.empty_table(), spill_file(self.directory, name))

    def dtype(self, name: str) -> np.dtype:
        """Return the dtype of a written file (record kind or price series)."""
        if name in self._dtypes:
            return self._dtypes[name]
        return dtypes.ALL_RECORD_DTYPES[name]

    def names(self) -> list[str]:
        """Every file name written (record kinds and price series), without the suffix."""
        return list({**dict.fromkeys(SPILLED_KINDS), **self._dtypes})

    def describe(self) -> dict[str, Any]:
        """For ``Result.config["stream"]``: where the records went and how many row groups."""
        return {
            "records_directory": str(self.directory),
            "records_directory_temporary": self.owned,
            "row_groups": {k: self.row_groups.get(k, 0) for k in SPILLED_KINDS},
        }
