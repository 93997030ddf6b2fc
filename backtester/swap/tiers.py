"""Maintenance-margin tier tables: validated, dated, and loaded from exchange formats.

A :class:`TierTable` is one venue table (TIER_DTYPE rows in one :class:`TierBasis` unit) with the
time from which it applies and its source. A :class:`TierSchedule` holds the dated versions of a
table, so a 2020 replay uses 2020 tiers (``schedule.at(ts_ns)``). The loaders of exchange formats
(ccxt ``fetch_leverage_tiers`` output, freqtrade's Binance snapshots, OKX tier CSVs) are in
:mod:`backtester.data.importers.tiers`; the tables exchanges published as rules (OKX 2019 step
schedules, BitMEX risk limits) are built in :mod:`backtester.swap.tier_tables`.

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

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backtester.checks import check_dtype
from backtester.dtypes import TIER_DTYPE, field_names
from backtester.enums import TierBasis

__all__ = [
    "TierSchedule",
    "TierTable",
    "maintenance_amount",
    "maintenance_amounts",
    "make_tier_rows",
    "tier_size",
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
    """Return the "cum" of every bracket of a table, tier 1 having cum 0.

    See :func:`maintenance_amount`.

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
    """Refuse a table whose rows break a rule, naming the row, the tier and the field.

    Each row on its own (:func:`_check_row`), then against the row before it
    (:func:`_check_step`).
    """
    if len(rows) == 0:
        raise ValueError(f"tier table {source!r}: rows: expected at least one tier, got none")
    for i in range(len(rows)):
        _check_row(rows, i, source)
        if i > 0:
            _check_step(rows, i, basis, source)


def _check_row(rows: np.ndarray, i: int, source: str) -> None:
    """Check the numbering, bounds, rates, leverage and maintenance amount of row ``i``."""
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
        raise _row_error(source, i, tier, f"min_size: expected 0 for the first tier, got {low:g}")
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


def _check_step(rows: np.ndarray, i: int, basis: TierBasis, source: str) -> None:
    """Check that row ``i`` starts where row ``i - 1`` ends and that its rates do not fall.

    Contract-count tables (inclusive maxima) start between the previous max and one lot above
    it; notional tables (exclusive caps) start at the previous cap.
    """
    row, prev = rows[i], rows[i - 1]
    tier = int(row["tier"])
    low = float(row["min_size"])
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

    @classmethod
    def from_records(
        cls,
        basis: TierBasis,
        records: Iterable[Sequence[Any]],
        valid_from: int | str,
        source: str,
    ) -> TierTable:
        """Return the table of row tuples (see :func:`make_tier_rows`) valid from ``valid_from``.

        ``valid_from``: ns since the epoch or an ISO date (:func:`to_ns`).
        """
        return cls(basis, make_tier_rows(records), to_ns(valid_from), source)

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
        """Return the tier row containing ``size`` (in the table's basis unit).

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
        """Return the tier row of a position of ``contracts`` at ``price`` (``tier_size_nb``)."""
        return self.lookup(tier_size(self.basis, contract_kind, contracts, face_value, price))

    @property
    def max_leverage(self) -> float:
        """Largest leverage the table allows (tier 1)."""
        return float(self.rows[0]["max_leverage"])

    def to_records(self) -> list[dict[str, float]]:
        """Return the rows as a list of plain dicts (for JSON/TOML and DataFrames)."""
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
        """Return the table valid at ``ts_ns``: the last one with ``valid_from_ns <= ts_ns``.

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
