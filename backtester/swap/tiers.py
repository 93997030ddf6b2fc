"""Maintenance-margin tier tables: validated, dated, and loaded from exchange formats.

A :class:`TierTable` is one venue table (TIER_DTYPE rows in one :class:`TierBasis` unit) with the
time from which it applies and its source. A :class:`TierSchedule` holds the dated versions of a
table, so a 2020 replay uses 2020 tiers (``schedule.at(ts_ns)``). Loaders read ccxt
``fetch_leverage_tiers`` output, freqtrade's Binance snapshots and OKX tier CSVs; generators build
the tables that exchanges published as rules (OKX 2019 step schedules, BitMEX risk limits).

Conventions (see also :mod:`backtester.dtypes`, TIER_DTYPE):

- the lower bound ``min_size`` is inclusive: a size belongs to the last tier whose
  ``min_size <= size`` (Binance / freqtrade ``get_maintenance_ratio_and_amt``); sizes above the
  last tier's ``max_size`` use the last tier;
- notional tables (``NOTIONAL_QUOTE``, ``NOTIONAL_COIN``: Binance brackets, BitMEX risk limits)
  have exclusive caps, so each tier's ``min_size`` equals the previous tier's ``max_size``;
- contract-count tables (``CONTRACTS``: OKX) have inclusive maxima, so each tier's ``min_size``
  is the previous ``max_size`` plus one lot: between 0 and 1 contract above it (OKX writes
  999 → 1000 for whole-contract swaps and 1000 → 1000.01 for 0.01-contract lots).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtester.checks import check_dtype, suggestion
from backtester.dtypes import TIER_DTYPE, field_names
from backtester.enums import TierBasis

__all__ = [
    "TierSchedule",
    "TierTable",
    "bitmex_risk_limits",
    "load_binance_snapshot",
    "load_binance_snapshots",
    "load_okx_tier_csv",
    "maintenance_amount",
    "maintenance_amounts",
    "make_tier_rows",
    "okx_btc_usd_swap_2019",
    "tier_size",
    "tiers_from_ccxt",
    "to_ns",
]

# Largest step allowed between an OKX tier's max and the next tier's min (one whole contract).
_CONTRACT_STEP_MAX = 1.0
# Relative tolerance when comparing notional bounds read from JSON (they are exact in practice).
_BOUND_RTOL = 1e-12


def to_ns(value: int | str | pd.Timestamp | np.datetime64, name: str = "valid_from") -> int:
    """Convert a time to int64 nanoseconds since the epoch, UTC.

    Parameters
    ----------
    value
        An ``int`` (already nanoseconds), an ISO date string (``"2022-05-21"``,
        ``"2019-05-31T07:00Z"``), a ``datetime``, ``pandas.Timestamp`` or ``numpy.datetime64``.
        Naive times are taken as UTC.
    name
        Field name used in error messages.

    Raises
    ------
    TypeError, ValueError
        When ``value`` is not a time.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected nanoseconds (int) or a date, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: expected nanoseconds (int) or a date like '2022-05-21', got {value!r}"
        ) from None
    if pd.isna(ts):
        raise ValueError(f"{name}: expected a date, got NaT")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value)


def _format_ns(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


# --------------------------------------------------------------------------- Binance "cum"


def maintenance_amount(floor_n: float, mmr_n: float, mmr_prev: float, cum_prev: float) -> float:
    """Binance maintenance amount ("cum") of one bracket from the previous one.

    Formula
    -------
    ``cum_n = floor_n · (MMR_n − MMR_{n−1}) + cum_{n−1}``, so that the maintenance margin
    ``notional · MMR − cum`` is continuous at each bracket floor.

    Source
    ------
    Binance-liq-USDM, https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93
    ("Maintenance Amount"); COIN-M the same in coin (Binance-liq-COINM).

    Cases
    -----
    binance_cum_level3, binance_cum_level5_2020, binance_coinm_cum_level5
    """
    return float(floor_n) * (float(mmr_n) - float(mmr_prev)) + float(cum_prev)


def maintenance_amounts(min_sizes: Sequence[float], mmrs: Sequence[float]) -> np.ndarray:
    """The "cum" of every bracket of a table, tier 1 having cum 0 (see :func:`maintenance_amount`).

    Each value is rounded to 1e-8 (Binance publishes cum as a decimal with at most 8 places), so
    binary floating-point noise such as 16300.000000000002 does not leak into the tables.

    Cases
    -----
    binance_cum_500k, binance_btcusdt_tier_2022
    """
    if len(min_sizes) != len(mmrs):
        raise ValueError(
            f"min_sizes and mmrs: expected equal lengths, got {len(min_sizes)} and {len(mmrs)}"
        )
    cums = np.zeros(len(mmrs), dtype=np.float64)
    for i in range(1, len(mmrs)):
        cums[i] = round(maintenance_amount(min_sizes[i], mmrs[i], mmrs[i - 1], cums[i - 1]), 8)
    return cums


# --------------------------------------------------------------------------- table


def make_tier_rows(rows: Iterable[Sequence[Any]]) -> np.ndarray:
    """TIER_DTYPE array from tuples ``(tier, min_size, max_size, mmr, imr, max_leverage, cum)``.

    ``imr`` may be ``None`` (taken as ``1 / max_leverage``) and ``cum`` may be omitted (0).
    """
    items = list(rows)
    out = np.zeros(len(items), dtype=TIER_DTYPE)
    for i, item in enumerate(items):
        if not 6 <= len(item) <= 7:
            raise ValueError(
                f"tier row {i}: expected (tier, min_size, max_size, maintenance_margin_rate, "
                f"initial_margin_rate, max_leverage[, maintenance_amount_settle]), got {item!r}"
            )
        tier, low, high, mmr, imr, lev = item[:6]
        cum = item[6] if len(item) == 7 else 0.0
        out[i]["tier"] = int(tier)
        out[i]["min_size"] = float(low)
        out[i]["max_size"] = float(high)
        out[i]["maintenance_margin_rate"] = float(mmr)
        out[i]["max_leverage"] = float(lev)
        out[i]["initial_margin_rate"] = 1.0 / float(lev) if imr is None else float(imr)
        out[i]["maintenance_amount_settle"] = float(cum)
    return out


def _row_error(source: str, i: int, tier: int, message: str) -> ValueError:
    return ValueError(f"tier table {source!r}, row {i} (tier {tier}): {message}")


def _validate_rows(rows: np.ndarray, basis: TierBasis, source: str) -> None:
    if len(rows) == 0:
        raise ValueError(f"tier table {source!r}: rows: expected at least one tier, got none")
    for i in range(len(rows)):
        row = rows[i]
        tier = int(row["tier"])
        if i == 0 and tier < 1:
            raise _row_error(source, i, tier, f"tier: expected a number >= 1, got {tier}")
        if i > 0 and tier != int(rows[i - 1]["tier"]) + 1:
            raise _row_error(
                source,
                i,
                tier,
                f"tier: expected {int(rows[i - 1]['tier']) + 1} (tiers numbered consecutively), "
                f"got {tier}",
            )
        low = float(row["min_size"])
        high = float(row["max_size"])
        if not math.isfinite(low) or low < 0:
            raise _row_error(source, i, tier, f"min_size: expected a finite value >= 0, got {low}")
        if i == 0 and low != 0.0:
            raise _row_error(
                source, i, tier, f"min_size: expected 0 for the first tier, got {low:g}"
            )
        if not high > low:
            raise _row_error(
                source,
                i,
                tier,
                f"max_size: expected a value > min_size {low:g} (in (min_size, inf]), got {high:g}",
            )
        for name in ("maintenance_margin_rate", "initial_margin_rate"):
            rate = float(row[name])
            if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
                raise _row_error(source, i, tier, f"{name}: expected a value in [0, 1], got {rate}")
        mmr = float(row["maintenance_margin_rate"])
        imr = float(row["initial_margin_rate"])
        if imr < mmr:
            raise _row_error(
                source,
                i,
                tier,
                f"initial_margin_rate: expected a value in [maintenance_margin_rate {mmr:g}, 1], "
                f"got {imr:g}",
            )
        lev = float(row["max_leverage"])
        if not (math.isfinite(lev) and lev >= 1.0):
            raise _row_error(source, i, tier, f"max_leverage: expected a value >= 1, got {lev}")
        cum = float(row["maintenance_amount_settle"])
        if not (math.isfinite(cum) and cum >= 0.0):
            raise _row_error(
                source, i, tier, f"maintenance_amount_settle: expected a value >= 0, got {cum}"
            )
        if i == 0:
            continue
        prev = rows[i - 1]
        prev_high = float(prev["max_size"])
        if basis == TierBasis.CONTRACTS:
            step = low - prev_high
            if step < 0 or step > _CONTRACT_STEP_MAX:
                kind = "overlaps" if step < 0 else "leaves a gap after"
                raise _row_error(
                    source,
                    i,
                    tier,
                    f"min_size: {low:g} {kind} the previous tier's max_size {prev_high:g}; "
                    f"expected a value in [{prev_high:g}, {prev_high + _CONTRACT_STEP_MAX:g}] "
                    "(contract-count tables: previous max_size plus one lot)",
                )
        elif not math.isclose(low, prev_high, rel_tol=_BOUND_RTOL, abs_tol=0.0):
            kind = "overlaps" if low < prev_high else "leaves a gap after"
            raise _row_error(
                source,
                i,
                tier,
                f"min_size: {low:g} {kind} the previous tier's max_size {prev_high:g}; "
                f"expected a value in [{prev_high:g}, {prev_high:g}] "
                "(notional tables: the previous cap is the next floor)",
            )
        for name in ("maintenance_margin_rate", "initial_margin_rate"):
            prev_rate = float(prev[name])
            if float(row[name]) < prev_rate:
                raise _row_error(
                    source,
                    i,
                    tier,
                    f"{name}: expected a value in [{prev_rate:g}, 1] (non-decreasing), "
                    f"got {float(row[name]):g}",
                )


@dataclass(frozen=True)
class TierTable:
    """One maintenance-margin tier table of one instrument, valid from a point in time.

    Parameters
    ----------
    basis
        Unit of ``min_size``/``max_size``: ``TierBasis.CONTRACTS`` (OKX), ``NOTIONAL_QUOTE``
        (Binance USDⓈ-M, USDT) or ``NOTIONAL_COIN`` (Binance COIN-M, BitMEX risk limits).
    rows
        TIER_DTYPE array, one row per tier, tier 1 first. Copied and made read-only.
    valid_from_ns
        First instant (ns since the epoch, UTC) at which the table applies; 0 means "always".
    source
        Where the numbers come from (URL, file and commit, or source tag of MECHANICS.md).

    Raises
    ------
    ValueError
        Naming the row, the tier, the field and the allowed range when the table is not
        consecutive, has a gap or an overlap (see the module docstring for the rule per basis),
        decreasing margin rates, rates outside [0, 1], ``initial_margin_rate`` below the
        ``maintenance_margin_rate`` or a ``max_leverage`` below 1.
    TypeError
        When ``rows`` is not a TIER_DTYPE array.
    """

    basis: TierBasis
    rows: np.ndarray
    valid_from_ns: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        try:
            basis = TierBasis(int(self.basis))
        except (TypeError, ValueError):
            raise ValueError(
                f"basis: expected one of {[b.name for b in TierBasis]}, got {self.basis!r}"
            ) from None
        rows = check_dtype(self.rows, TIER_DTYPE, "rows").copy()
        rows.setflags(write=False)
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"source: expected a non-empty string, got {self.source!r}")
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "valid_from_ns", to_ns(self.valid_from_ns, "valid_from_ns"))
        _validate_rows(rows, basis, self.source)

    def __len__(self) -> int:
        return len(self.rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TierTable):
            return NotImplemented
        return (
            self.basis == other.basis
            and self.valid_from_ns == other.valid_from_ns
            and self.source == other.source
            and len(self.rows) == len(other.rows)
            and all(np.array_equal(self.rows[n], other.rows[n]) for n in field_names(TIER_DTYPE))
        )

    __hash__ = None  # type: ignore[assignment]  # holds an array

    def lookup(self, size: float) -> np.void:
        """The tier row containing ``size`` (in the table's basis unit).

        The last row with ``min_size <= size``; sizes above the last tier use the last tier.
        Uses the kernel :func:`backtester.swap.tier_nb.tier_index_nb`.

        Parameters
        ----------
        size
            Position size in the table's unit (see :func:`tier_size`), >= 0.
        """
        from backtester.swap.tier_nb import tier_index_nb

        if not (math.isfinite(size) and size >= 0):
            raise ValueError(f"size: expected a finite value >= 0, got {size!r}")
        index = tier_index_nb(self.rows, 0, len(self.rows), float(size))
        row: np.void = self.rows[index]
        return row

    def lookup_position(
        self, contract_kind: int, contracts: float, face_value: float, price: float
    ) -> np.void:
        """The tier row of a position of ``contracts`` at ``price`` (size via ``tier_size_nb``)."""
        return self.lookup(tier_size(self.basis, contract_kind, contracts, face_value, price))

    @property
    def max_leverage(self) -> float:
        """Largest leverage the table allows (tier 1)."""
        return float(self.rows[0]["max_leverage"])

    def to_records(self) -> list[dict[str, float]]:
        """The rows as a list of plain dicts (for JSON/TOML and DataFrames)."""
        return [
            {n: self.rows[i][n].item() for n in field_names(TIER_DTYPE)} for i in range(len(self))
        ]


def tier_size(
    basis: int, contract_kind: int, contracts: float, face_value: float, price: float
) -> float:
    """Size of a position in a tier table's unit (calls ``tier_size_nb``).

    Formula
    -------
    CONTRACTS → contracts; NOTIONAL_QUOTE → contracts·face·price (linear);
    NOTIONAL_COIN → contracts·face/price (inverse) or contracts·face (linear).
    """
    from backtester.swap.tier_nb import tier_size_nb

    return float(
        tier_size_nb(int(basis), int(contract_kind), abs(contracts), float(face_value), price)
    )


@dataclass(frozen=True)
class TierSchedule:
    """The dated versions of one instrument's tier table.

    Parameters
    ----------
    tables
        TierTables of the same basis; sorted by ``valid_from_ns`` here, which must be unique.

    Raises
    ------
    ValueError
        When empty, when the bases differ, or two tables start at the same time.
    """

    tables: tuple[TierTable, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        tables = tuple(self.tables) if not isinstance(self.tables, TierTable) else (self.tables,)
        if not tables:
            raise ValueError("tables: expected at least one TierTable, got none")
        for i, table in enumerate(tables):
            if not isinstance(table, TierTable):
                raise TypeError(f"tables[{i}]: expected a TierTable, got {type(table).__name__}")
        tables = tuple(sorted(tables, key=lambda t: t.valid_from_ns))
        for i in range(1, len(tables)):
            if tables[i].basis != tables[0].basis:
                raise ValueError(
                    f"tables[{i}].basis: expected {tables[0].basis.name} like the first table, "
                    f"got {tables[i].basis.name} ({tables[i].source})"
                )
            if tables[i].valid_from_ns == tables[i - 1].valid_from_ns:
                raise ValueError(
                    f"tables: two tables valid from {_format_ns(tables[i].valid_from_ns)} "
                    f"({tables[i - 1].source!r} and {tables[i].source!r}); expected unique dates"
                )
        object.__setattr__(self, "tables", tables)

    def __len__(self) -> int:
        return len(self.tables)

    @property
    def basis(self) -> TierBasis:
        """The tier basis shared by every table."""
        return self.tables[0].basis

    @property
    def latest(self) -> TierTable:
        """The newest table."""
        return self.tables[-1]

    def at(self, ts_ns: int | str | pd.Timestamp) -> TierTable:
        """The table valid at ``ts_ns``: the last one with ``valid_from_ns <= ts_ns``.

        Raises
        ------
        ValueError
            When ``ts_ns`` precedes the first table (no tier data for that time).
        """
        ts = to_ns(ts_ns, "ts_ns")
        starts = [t.valid_from_ns for t in self.tables]
        index = int(np.searchsorted(np.asarray(starts, dtype=np.int64), ts, side="right")) - 1
        if index < 0:
            raise ValueError(
                f"ts_ns: {_format_ns(ts)} precedes the first tier table, valid from "
                f"{_format_ns(starts[0])} ({self.tables[0].source}); expected a time >= that"
            )
        return self.tables[index]


# --------------------------------------------------------------------------- loaders


def _ccxt_entries(response: object, symbol: str) -> list[Mapping[str, Any]]:
    if isinstance(response, Mapping):
        if symbol not in response:
            raise ValueError(
                f"symbol: {symbol!r} not in the response; {suggestion(symbol, response)}"
            )
        entries = response[symbol]
    else:
        entries = response
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)) or not entries:
        raise ValueError(
            f"response[{symbol!r}]: expected a non-empty list of tier dicts, got {entries!r:.80}"
        )
    return list(entries)


def _number(entry: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = entry.get(key)
    if value is None:
        if default is not None:
            return default
        raise ValueError(f"{where}: missing {key!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key}: expected a number, got {value!r}") from None


def tiers_from_ccxt(
    response: Mapping[str, Sequence[Mapping[str, Any]]] | Sequence[Mapping[str, Any]],
    symbol: str,
    basis: int,
    valid_from: int | str = 0,
    source: str | None = None,
) -> TierTable:
    """TierTable from ccxt ``fetch_leverage_tiers`` output.

    Parameters
    ----------
    response
        The dict ``{symbol: [tier, ...]}`` returned by ccxt, or the list for one symbol. Each
        tier has ``tier, minNotional, maxNotional, maintenanceMarginRate, maxLeverage, info``.
    symbol
        ccxt symbol, e.g. ``"BTC/USDT:USDT"``.
    basis
        Unit of ccxt's ``minNotional``/``maxNotional``, which ccxt does not normalise:
        ``TierBasis.CONTRACTS`` for OKX (copied from ``minSz``/``maxSz``),
        ``NOTIONAL_QUOTE`` for Binance USDⓈ-M, ``NOTIONAL_COIN`` for Binance COIN-M.
    valid_from
        When the table applies from (ns or date); default 0 = always.
    source
        Source string; default names the symbol and ccxt.

    Notes
    -----
    The maintenance amount is ``info["cum"]`` when present (Binance), otherwise computed with
    :func:`maintenance_amounts` for notional tables and 0 for OKX contract tables (OKX has no
    deduction: MM = position value × MMR). The initial margin rate is ``info["imr"]`` (OKX)
    when present, otherwise ``1 / maxLeverage``. ``maxNotional`` of ``None`` means no cap (inf).
    """
    basis = TierBasis(int(basis))
    entries = _ccxt_entries(response, symbol)
    src = source or f"ccxt fetch_leverage_tiers {symbol}"
    records = []
    has_cum = True
    for i, entry in enumerate(entries):
        where = f"{src}, tier entry {i}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a dict, got {type(entry).__name__}")
        info = entry.get("info") or {}
        lev = _number(entry, "maxLeverage", where)
        if info.get("imr") in (None, ""):
            imr = 1.0 / lev if lev > 0 else math.nan  # NaN is refused by the validation
        else:
            imr = _number(info, "imr", where + " info")
        cum_value = info.get("cum")
        has_cum = has_cum and cum_value not in (None, "")
        records.append(
            [
                int(_number(entry, "tier", where)),
                _number(entry, "minNotional", where),
                _number(entry, "maxNotional", where, default=math.inf),
                _number(entry, "maintenanceMarginRate", where),
                imr,
                lev,
                float(cum_value) if cum_value not in (None, "") else 0.0,
            ]
        )
    if not has_cum and basis != TierBasis.CONTRACTS:
        cums = maintenance_amounts([r[1] for r in records], [r[3] for r in records])
        for record, cum in zip(records, cums, strict=True):
            record[6] = float(cum)
    elif basis == TierBasis.CONTRACTS:
        for record in records:
            record[6] = 0.0
    return TierTable(basis, make_tier_rows(records), to_ns(valid_from), src)


_SNAPSHOT_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})_([0-9a-f]+)")


def _binance_keys(symbol: str) -> list[str]:
    """ccxt keys a Binance USDⓈ-M symbol may have: ``BTC/USDT`` (old) or ``BTC/USDT:USDT``."""
    if "/" not in symbol and symbol.endswith("USDT"):
        symbol = symbol[:-4] + "/USDT"
    base = symbol.split(":")[0]
    settle = base.split("/")[1] if "/" in base else ""
    return [symbol, base, f"{base}:{settle}"] if settle else [symbol]


def load_binance_snapshot(
    path: str | Path, symbol: str, valid_from: int | str | None = None
) -> TierTable:
    """TierTable of one symbol from a freqtrade ``binance_leverage_tiers.json(.gz)`` snapshot.

    Parameters
    ----------
    path
        The file; ``.gz`` is decompressed. freqtrade keeps ccxt-normalised Binance
        ``/fapi/v1/leverageBracket`` output for every USDⓈ-M symbol there.
    symbol
        ``"BTC/USDT"``, ``"BTC/USDT:USDT"`` or ``"BTCUSDT"``; older snapshots key perpetuals
        as ``BTC/USDT``, newer as ``BTC/USDT:USDT`` and both are tried.
    valid_from
        When the table applies from; default the date in the folder name
        ``<YYYY-MM-DD>_<commit>`` (the date freqtrade committed the snapshot, i.e. when the
        table was observed — Binance may have changed it earlier).

    Source
    ------
    freqtrade ``freqtrade/exchange/binance_leverage_tiers.json`` (see shared/data/SOURCES.md §3).
    Maintenance amount ``cum`` is taken from ``info``.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path: {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON tier snapshot ({error})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object keyed by symbol")
    key = next((k for k in _binance_keys(symbol) if k in data), None)
    if key is None:
        raise ValueError(f"{path}: symbol {symbol!r} not found; {suggestion(symbol, data)}")
    if valid_from is None:
        match = _SNAPSHOT_DATE.search(str(path.parent.name)) or _SNAPSHOT_DATE.search(str(path))
        if match is None:
            raise ValueError(
                f"valid_from: not given and no '<YYYY-MM-DD>_<commit>' folder name in {path}"
            )
        valid_from = match.group(1)
    return tiers_from_ccxt(
        data, key, TierBasis.NOTIONAL_QUOTE, valid_from, source=f"{path} [{key}]"
    )


def load_binance_snapshots(directory: str | Path, symbol: str) -> TierSchedule:
    """TierSchedule of ``symbol`` from every ``<date>_<commit>/binance_leverage_tiers.json.gz``.

    Each version applies from its folder date until the next one (see
    :func:`load_binance_snapshot`).
    """
    directory = Path(directory)
    files = sorted(directory.glob("*/binance_leverage_tiers.json*"))
    if not files:
        raise ValueError(f"directory: no */binance_leverage_tiers.json(.gz) under {directory}")
    return TierSchedule(tuple(load_binance_snapshot(f, symbol) for f in files))


_OKX_CSV_COLUMNS = ("tier", "minSz", "maxSz", "mmr", "imr", "maxLever")


def load_okx_tier_csv(path: str | Path, valid_from: int | str = 0) -> TierTable:
    """TierTable from a CSV of OKX position tiers (``GET /api/v5/public/position-tiers`` fields).

    Parameters
    ----------
    path
        CSV with at least the columns ``tier, minSz, maxSz, mmr, imr, maxLever``.
    valid_from
        When the table applies from (default 0: always).

    Notes
    -----
    OKX swap tiers are in **contracts** (basis CONTRACTS) and have no maintenance amount.
    Source: OKX-v5 get-position-tiers; SOURCES.md §3 for the stored BTC-USDT-SWAP extract.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path: {path} does not exist")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _OKX_CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {missing}; expected {list(_OKX_CSV_COLUMNS)}"
            )
        records = []
        for line, row in enumerate(reader, start=2):
            try:
                values = [float(row[c]) for c in _OKX_CSV_COLUMNS]
            except ValueError:
                raise ValueError(
                    f"{path}, line {line}: expected numbers in {list(_OKX_CSV_COLUMNS)}, "
                    f"got {[row[c] for c in _OKX_CSV_COLUMNS]}"
                ) from None
            records.append((int(values[0]), *values[1:], 0.0))
    return TierTable(TierBasis.CONTRACTS, make_tier_rows(records), to_ns(valid_from), str(path))


# --------------------------------------------------------------------------- published rules

OKX_TIERS_2019_SOURCE = (
    "OKX-tiers-2019: https://www.okx.com/id/help/"
    "adjustment-of-perpetual-swap-tiered-maintenance-margin-ratio-schedule (28 May 2019; BTC "
    "from 08:00 CET 31 May 2019): tiers 1-10 literal, then +10,000 contracts and +0.5 % MMR per "
    "tier to 1,890,000-1,899,999 at 93.5 %, 1x. The page says max leverage beyond tier 10 "
    "'varies with maintenance margin ratio' without the rule; we use "
    "max(1, min(8, floor(1 / (2 MMR)))), which gives the published 8x at tier 10 and 1x at "
    "the last tier (assumption). IMR = 1 / max leverage."
)


def okx_btc_usd_swap_2019() -> TierTable:
    """OKX BTC-USD-SWAP (coin-margined) tier table of 31 May 2019, in contracts.

    Formula
    -------
    Tiers 1–10 literal (0–999 0.5 % 100x … 120,000–129,999 5.0 % 8x); tier k ≥ 10:
    ``min = 120,000 + (k − 10)·10,000``, ``max = min + 9,999``, ``MMR = 5 % + (k − 10)·0.5 %``,
    up to tier 187 (1,890,000–1,899,999, 93.5 %, 1x).

    Source
    ------
    OKX-tiers-2019 (see ``OKX_TIERS_2019_SOURCE`` for the leverage assumption above tier 10).

    Cases
    -----
    okx_tier_2019_10000, okx_tier_2019_1890000
    """
    literal = [
        (1, 0, 999, 0.005, 100),
        (2, 1_000, 9_999, 0.010, 50),
        (3, 10_000, 14_999, 0.015, 30),
        (4, 15_000, 24_999, 0.020, 20),
        (5, 25_000, 49_999, 0.025, 15),
        (6, 50_000, 74_999, 0.030, 10),
        (7, 75_000, 99_999, 0.035, 9),
        (8, 100_000, 109_999, 0.040, 8),
        (9, 110_000, 119_999, 0.045, 8),
    ]
    records = [(t, lo, hi, mmr, None, lev) for t, lo, hi, mmr, lev in literal]
    for k in range(10, 188):
        low = 120_000 + (k - 10) * 10_000
        mmr = round(0.05 + (k - 10) * 0.005, 10)
        lev = max(1, min(8, math.floor(1.0 / (2.0 * mmr))))
        records.append((k, low, low + 9_999, mmr, None, lev))
    return TierTable(
        TierBasis.CONTRACTS,
        make_tier_rows(records),
        to_ns("2019-05-31T07:00Z"),
        OKX_TIERS_2019_SOURCE,
    )


def bitmex_risk_limits(
    base_risk_limit_coin: float = 200.0,
    step_coin: float = 100.0,
    base_maintenance_margin_rate: float = 0.004,
    base_initial_margin_rate: float = 0.01,
    max_risk_limit_coin: float = 500.0,
    valid_from: int | str = 0,
) -> TierTable:
    """BitMEX risk-limit steps as a tier table in coin (XBT) position value.

    Formula
    -------
    Tier k (k = 1 is the base limit): position value below ``base + (k − 1)·step``;
    ``MM% = base MM · k``, ``IM% = base IM + base MM · (k − 1)``; max leverage = 1 / IM%.
    XBTUSD: base 200 XBT, step 100 XBT, 0.40 % / 1.00 %.

    Parameters
    ----------
    max_risk_limit_coin
        Highest risk limit to generate (default 500 XBT, the largest shown in the stored
        source); larger positions use the last tier.

    Source
    ------
    BitMEX-docs-copy (repo bradkyle/Qenv ``logic/bitmex.md`` @bf999d43): "<200 XBT: 0.40/1.00 %;
    <300: 0.80/1.40 % …".

    Cases
    -----
    bitmex_risk_limit_step
    """
    for name, value in (
        ("base_risk_limit_coin", base_risk_limit_coin),
        ("step_coin", step_coin),
        ("base_maintenance_margin_rate", base_maintenance_margin_rate),
        ("base_initial_margin_rate", base_initial_margin_rate),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}: expected a value > 0, got {value!r}")
    if not max_risk_limit_coin >= base_risk_limit_coin:
        raise ValueError(
            f"max_risk_limit_coin: expected a value >= base_risk_limit_coin "
            f"{base_risk_limit_coin:g}, got {max_risk_limit_coin!r}"
        )
    steps = math.floor((max_risk_limit_coin - base_risk_limit_coin) / step_coin + 1e-9)
    records = []
    for k in range(1, steps + 2):
        low = 0.0 if k == 1 else base_risk_limit_coin + (k - 2) * step_coin
        high = base_risk_limit_coin + (k - 1) * step_coin
        mmr = base_maintenance_margin_rate * k
        imr = base_initial_margin_rate + base_maintenance_margin_rate * (k - 1)
        records.append((k, low, high, mmr, imr, 1.0 / imr))
    return TierTable(
        TierBasis.NOTIONAL_COIN,
        make_tier_rows(records),
        to_ns(valid_from),
        f"BitMEX risk limits (BitMEX-docs-copy, bradkyle/Qenv logic/bitmex.md @bf999d43): base "
        f"{base_risk_limit_coin:g} XBT, step {step_coin:g} XBT, base MM "
        f"{base_maintenance_margin_rate:.2%}, base IM {base_initial_margin_rate:.2%}",
    )
