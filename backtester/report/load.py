"""Read a run folder written by :func:`backtester.report.outputs.save_run` back into a Result.

Kept apart from :mod:`backtester.report.outputs` because it builds a
:class:`~backtester.results.Result`, while ``Result.save()`` calls the writer: with both in one
module, ``results`` and ``report.outputs`` imported each other (docs/ARCHITECTURE.md, "The import
rule"). The reader sits right of ``results`` and imports it; the writer does not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from backtester import dtypes
from backtester.report.outputs import FORMAT_VERSION
from backtester.results import Result

__all__ = ["load_run"]


def _table_records(table: pa.Table, dtype: np.dtype, path: Path) -> npt.NDArray[np.void]:
    """Copy a Parquet table of raw record fields into a zeroed record array of ``dtype``."""
    out = np.zeros(table.num_rows, dtype=dtype)
    for name in dtype.names or ():
        if name not in table.column_names:
            raise ValueError(f"{path}: missing column {name!r} (expected the fields of {dtype})")
        out[name] = table.column(name).to_numpy(zero_copy_only=False)
    return out


def _read_records(root: Path) -> dict[str, npt.NDArray[np.void]]:
    """Read every record kind of :data:`backtester.dtypes.ALL_RECORD_DTYPES` from ``root``."""
    records = {}
    for kind, dtype in dtypes.ALL_RECORD_DTYPES.items():
        path = root / f"{kind}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"load_run: {path} not found")
        records[kind] = _table_records(pq.read_table(path), dtype, path)
    return records


def _read_price_series(path: Path) -> dict[str, Mapping[str, npt.NDArray[np.void]]]:
    """Read ``price_series.parquet`` as ``{symbol: {series: PRICE_DTYPE array}}`` ({} if absent)."""
    if not path.is_file():
        return {}
    series_of: dict[str, dict[str, npt.NDArray[np.void]]] = {}
    table = pq.read_table(path)
    symbol = np.asarray(table.column("symbol").to_pylist(), dtype=object)
    series = np.asarray(table.column("series").to_pylist(), dtype=object)
    ts = table.column("ts_ns").to_numpy()
    price = table.column("price").to_numpy()
    # keep the saved order of symbols and streams
    for key in dict.fromkeys(zip(symbol.tolist(), series.tolist(), strict=True)):
        mask = (symbol == key[0]) & (series == key[1])
        array = np.zeros(int(mask.sum()), dtype=dtypes.PRICE_DTYPE)
        array["ts_ns"] = ts[mask]
        array["price"] = price[mask]
        series_of.setdefault(key[0], {})[key[1]] = array
    return dict(series_of)


def _read_plots(
    path: Path,
) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Read ``plots.parquet`` as ``{name: (ts_ns, value)}`` in the saved order (none if absent)."""
    plots: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
    if not path.is_file():
        return plots
    table = pq.read_table(path)
    names = np.asarray(table.column("name").to_pylist(), dtype=object)
    ts = table.column("ts_ns").to_numpy()
    values = table.column("value").to_numpy()
    for name in dict.fromkeys(names.tolist()):
        mask = names == name
        plots[name] = (ts[mask].astype(np.int64), values[mask].astype(np.float64))
    return plots


def load_run(directory: str | Path) -> Result:
    """Read a run written by :func:`~backtester.report.outputs.save_run`.

    The Result's ``fingerprint()`` equals the original's (record fields are stored raw, the
    initial balance as its ``repr``).

    Parameters
    ----------
    directory
        The run folder (``reports/<run name>``).

    Returns
    -------
    Result
        The saved result: records, configuration, price series and indicator plots.

    Raises
    ------
    FileNotFoundError
        When ``result.json`` or a record file is missing.
    ValueError
        When a file has an unexpected format version or columns.
    """
    root = Path(directory)
    meta_path = root / "result.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"load_run: {meta_path} not found (not a saved run directory)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{meta_path}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    records = _read_records(root)
    config_path = root / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return Result(
        instruments=list(meta["instruments"]),
        settle_currency=meta["settle_currency"],
        initial_balance_settle=float(meta["initial_balance_settle"]),
        records=records,
        config=config,
        price_series=_read_price_series(root / "price_series.parquet"),
        contract_kinds=[int(k) for k in meta["contract_kinds"]],
        plots=_read_plots(root / "plots.parquet"),
    )
