"""Vectorised validation of market-data records at the import / catalog boundary.

Every check runs in numpy over the whole array and raises :class:`DataValidationError` (a
``ValueError``) for the **first** offending row, naming the file (or stream) name, the 1-based
data row — formatted with thousands separators, as in ``"trades.csv row 18,231: ..."`` — the
value and the rule broken. Nothing is ever dropped silently: known bad rows are removed only by
an explicit ``exclude_rows=`` option of the importers, which records them in the metadata.

Rules
-----
* ``ts_ns`` must lie between 1990-01-01 and 2100-01-01 read as nanoseconds. A value that is
  plausible only in another unit is refused with the detected unit in the message
  (``"looks like milliseconds"``): units are converted explicitly by the importers, never guessed
  by the catalog (:func:`detect_time_unit`, :func:`to_ns`).
* Timestamps never decrease. Trades may share a timestamp (several fills in one millisecond);
  every other kind needs strictly increasing timestamps (a repeated one is a "duplicate").
* Prices (trade price, OHLC, index/mark price) are finite and > 0; quantities finite and ≥ 0
  (trade quantity > 0).
* Candles: ``high >= low``; ``open`` and ``close`` inside ``[low, high]``. BitMEX documents that
  its bucketed ``open`` is the previous bucket's close, so it may lie outside the bucket's
  traded range: ``allow_open_outside_range=True`` relaxes the rule for ``open`` only (``close``
  is still checked). The BitMEX importer sets it.
* Funding: rate finite and ``|rate| <= max_abs_funding_rate`` (default
  :data:`MAX_ABS_FUNDING_RATE` = 0.03 per interval). The widest caps any venue has published are
  Binance's ±3 % for some USDⓈ-M altcoins and Bybit's comparable alt caps; BTC caps are far
  lower (Binance ±0.3 % in 2020, ±0.375 % later; OKX ±0.375 %…1.5 %). A larger number is
  almost surely a percent written as a fraction or a unit error.
* Candles open on their interval's grid, and the interval matches the data
  (:func:`check_candle_grid`).
* Funding in the catalog: within the venue's published cap for the symbol and era where one is
  documented (:func:`funding_caps`), with the percent-vs-fraction hint; a history whose median
  rate is 0.3 % per interval or more is refused as percent (:func:`check_funding_percent`).
* Unit conversion is overflow-checked (:func:`to_ns`): a nanosecond value read as milliseconds
  is refused, never wrapped around int64.
* Gaps in a candle series are **reported** (:func:`find_gaps` → :class:`GapReport`), never filled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backtester.data.schemas import BAR_KINDS, POINT_KINDS, kind_dtype

MAX_ABS_FUNDING_RATE = 0.03
"""Largest accepted ``|funding_rate|`` per interval (see module docstring for the sources)."""

_MIN_YEAR_S = 631_152_000  # 1990-01-01 in seconds
_MAX_YEAR_S = 4_102_444_800  # 2100-01-01 in seconds
_UNIT_SCALE = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


class DataValidationError(ValueError):
    """Market data broke a validation rule; the message names file, row, value and rule."""


_HOUR_NS = 3_600_000_000_000
_OKX_2019_NS = 1_563_408_000_000_000_000  # 2019-07-18 00:00 UTC (OKX-funding-2019)
_OKX_MAJORS = ("ADA", "AVAX", "BCH", "DOT", "EOS", "ETC", "ETH", "FIL", "LINK", "LTC", "TRX", "XRP")
_OKX_2019_CAPPED = ("BTC", "ETH", "EOS", "XRP", "BCH", "BSV", "ETC", "LTC", "TRX")


def funding_caps(exchange: str, symbol: str, ts_ns: np.ndarray) -> tuple[np.ndarray, str] | None:
    """Return the published ``|funding rate|`` cap of ``exchange:symbol`` at each ``ts_ns``.

    The second item is the source of the caps.

    Caps (MECHANICS.md §3.1–3.3): OKX BTC ±0.375 %, ADA/AVAX/BCH/DOT/EOS/ETC/ETH/FIL/LINK/LTC/
    TRX/XRP ±0.75 %, DOGE ±3 %, others ±1.5 % (OKX-funding, ~2022-24); before 2019-07-18
    BTC/ETH/EOS/XRP/BCH/BSV/ETC/LTC/TRX ±0.3 % (OKX-funding-2019). Binance BTC: the 2019-2026
    history peaks at the ±0.3 % clamp; ±0.375 % is accepted. BitMEX XBT: ±0.375 % (75 % of
    initial minus maintenance margin, 1 % − 0.5 %). ``None`` for a venue or symbol without a
    documented cap (then :data:`MAX_ABS_FUNDING_RATE` applies).
    """
    venue = exchange.lower()
    base = "".join(ch for ch in symbol.upper() if ch.isalnum())
    is_btc = base.startswith(("BTC", "XBT"))
    ts = np.asarray(ts_ns, dtype=np.int64)
    if venue.startswith(("okx", "okex")):
        if is_btc:
            now = 0.00375
        elif base.startswith(_OKX_MAJORS):
            now = 0.0075
        elif base.startswith("DOGE"):
            now = 0.03
        else:
            now = 0.015
        caps = np.full(len(ts), now)
        if base.startswith(_OKX_2019_CAPPED):
            caps[ts < _OKX_2019_NS] = 0.003
        return caps, "OKX-funding / OKX-funding-2019 (MECHANICS.md 3.1)"
    if venue.startswith("binance") and is_btc:
        return np.full(len(ts), 0.00375), "Binance BTC clamp ±0.3 % in 2019-26 (MECHANICS.md 3.2)"
    if venue.startswith("bitmex") and is_btc:
        return np.full(len(ts), 0.00375), "BitMEX XBT cap 75 % x (1 % - 0.5 %) (MECHANICS.md 3.3)"
    return None


def _percent_hint(rate: float, cap: float) -> str:
    if abs(rate) / 100 <= cap:
        return f"; {rate:g} / 100 = {rate / 100:g} is within it: a percent written as a fraction?"
    return "; a unit error?"


def check_funding_caps(
    rate: np.ndarray,
    caps: np.ndarray,
    source: str,
    name: str,
    ts_ns: np.ndarray,
    row_numbers: np.ndarray | None = None,
) -> None:
    """Every ``|rate|`` within its venue/era cap (from :func:`funding_caps`)."""
    bad = np.abs(rate) > caps
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        when = pd.Timestamp(int(ts_ns[i]), unit="ns", tz="UTC")
        raise DataValidationError(
            f"{_row_label(name, i, row_numbers)}: funding_rate {_fmt(rate[i])} at {when} is "
            f"beyond the venue's cap ±{caps[i]:g} per interval ({source})"
            + _percent_hint(float(rate[i]), float(caps[i]))
        )


def _interval_text(interval_ns: int) -> str:
    for suffix, size in (("d", 86_400_000_000_000), ("h", _HOUR_NS), ("m", 60_000_000_000)):
        if interval_ns % size == 0:
            return f"{interval_ns // size}{suffix}"
    return f"{interval_ns / 1e9:g}s"


def check_candle_grid(
    ts: np.ndarray, interval_ns: int, name: str, row_numbers: np.ndarray | None = None
) -> None:
    """Candle open times on the interval's grid, and the interval matching the data.

    * Every open time has the same offset modulo the interval, and that offset is a whole
      multiple of ``min(interval, 1 h)`` (a 1h candle opens on the hour; a 1d candle may open
      at 16:00 UTC as OKX's Hong-Kong-day candles do, but not at 16:00:30).
    * With 10 candles or more, at least two consecutive ones are one interval apart: candles
      that are never closer than 1h are 1h candles, whatever the file name says.
    """
    if len(ts) == 0:
        return
    phase = ts % interval_ns
    unit = min(interval_ns, _HOUR_NS)
    bad = (phase % unit != 0) | (phase != phase[0])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        expected = (
            f"a multiple of {_interval_text(interval_ns)} after the epoch"
            if interval_ns <= _HOUR_NS
            else f"on whole hours, {phase[0] / _HOUR_NS:g} h after a multiple of "
            f"{_interval_text(interval_ns)} as row 1"
        )
        off = int(phase[i] % unit) if phase[i] % unit else int(phase[i])
        raise DataValidationError(
            f"{_row_label(name, i, row_numbers)}: candle open time ts_ns {int(ts[i])} "
            f"({pd.Timestamp(int(ts[i]), unit='ns', tz='UTC')}) is off the "
            f"{_interval_text(interval_ns)} grid by {off / 1e9:g} s (expected {expected})"
        )
    if len(ts) >= 10:
        spacing = int(np.min(np.diff(ts)))
        if spacing > interval_ns:
            raise DataValidationError(
                f"{name}: {len(ts):,} candles declared {_interval_text(interval_ns)} are never "
                f"closer than {_interval_text(spacing)}: the data's interval is "
                f"{_interval_text(spacing)} (is the file name or the interval option right?)"
            )


def check_funding_percent(
    rate: np.ndarray, name: str, row_numbers: np.ndarray | None = None
) -> None:
    """Refuse a funding history whose typical rate is a percent written as a fraction.

    Calm-period rates are about 0.01 % per interval (0.0001); written in percent they read
    0.01, inside the widest cap but with a median no venue has shown: with 10 rows or more, a
    median ``|rate|`` of 0.3 % per interval or more (above 300 % a year) is refused.
    """
    if len(rate) < 10:
        return
    median = float(np.median(np.abs(rate)))
    if median >= 0.003:
        i = int(np.flatnonzero(np.abs(rate) >= median)[0])
        raise DataValidationError(
            f"{_row_label(name, i, row_numbers)}: funding_rate {_fmt(rate[i])}; the median "
            f"|funding rate| of the {len(rate):,} rows is {median:g} per interval, which no "
            f"venue has shown: rates in percent? (0.01 % is 0.0001 as a fraction; divide by 100)"
        )


def _row_label(name: str, index: int, row_numbers: np.ndarray | None) -> str:
    row = int(row_numbers[index]) if row_numbers is not None else index + 1
    return f"{name} row {row:,}"


def unit_of_value(value: int | float) -> str | None:
    """Return the unit (``"s"``, ``"ms"``, ``"us"``, ``"ns"``) of a 1990–2100 epoch ``value``."""
    for unit, ns_per_unit in _UNIT_SCALE.items():
        scale = 1_000_000_000 // ns_per_unit  # values per second
        if _MIN_YEAR_S * scale <= value < _MAX_YEAR_S * scale:
            return unit
    return None


def detect_time_unit(values: np.ndarray, name: str = "timestamps") -> str:
    """Detect the epoch unit of integer timestamps by magnitude; all rows must agree.

    Raises ``DataValidationError`` naming the first row whose magnitude fits no unit or a unit
    different from the first row's.
    """
    values = np.asarray(values)
    if len(values) == 0:
        raise DataValidationError(f"{name}: no rows, cannot detect the timestamp unit")
    first = unit_of_value(values[0])
    if first is None:
        raise DataValidationError(
            f"{name} row 1: timestamp {values[0]} is not an epoch time between 1990 and 2100 "
            "in s, ms, us or ns"
        )
    scale = 1_000_000_000 // _UNIT_SCALE[first]
    bad = (values < _MIN_YEAR_S * scale) | (values >= _MAX_YEAR_S * scale)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        other = unit_of_value(values[i])
        raise DataValidationError(
            f"{name} row {i + 1:,}: timestamp {values[i]} looks like "
            f"{_UNIT_NAMES.get(other or '', 'no epoch unit')} but row 1 is in "
            f"{_UNIT_NAMES[first]} (mixed timestamp units)"
        )
    return first


def to_ns(values: np.ndarray, unit: str, name: str = "timestamps") -> np.ndarray:
    """Convert integer epoch timestamps in ``unit`` (or ``"auto"``: detected) to int64 ns."""
    values = np.asarray(values)
    if unit == "auto":
        unit = detect_time_unit(values, name)
    if unit not in _UNIT_SCALE:
        raise ValueError(f"{name}: unknown time unit {unit!r}; expected one of auto, s, ms, us, ns")
    scale = _UNIT_SCALE[unit]
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            raise DataValidationError(f"{name} row {i + 1:,}: timestamp {values[i]} is not finite")
    elif values.dtype.kind not in "iu":
        raise DataValidationError(
            f"{name}: timestamps of dtype {values.dtype} are not numbers; expected integer "
            f"epoch times in {_UNIT_NAMES[unit]}"
        )
    # int64 ns ends in 2262: a value beyond it in this unit would wrap around silently
    limit = np.iinfo(np.int64).max // scale
    over = np.abs(values.astype(np.float64)) > limit
    if over.any():
        i = int(np.flatnonzero(over)[0])
        other = unit_of_value(values[i])
        hint = f"it looks like {_UNIT_NAMES[other]}" if other else "it is no epoch time"
        raise DataValidationError(
            f"{name} row {i + 1:,}: timestamp {values[i]} read as {_UNIT_NAMES[unit]} "
            f"overflows int64 nanoseconds (beyond 2262); {hint}: pass the right time unit"
        )
    if values.dtype.kind == "f":
        # whole units and the fraction separately: ms x 1e6 as one float loses the last
        # ~200 ns (a float64 holds 53 bits; 1.7e18 ns needs 61)
        whole = np.floor(values)
        ns: np.ndarray = whole.astype(np.int64) * scale + np.round((values - whole) * scale).astype(
            np.int64
        )
        return ns
    return values.astype(np.int64) * scale


def check_ts_ns(ts: np.ndarray, name: str, row_numbers: np.ndarray | None = None) -> None:
    """Check that int64 ``ts`` values are nanosecond epoch times in 1990–2100."""
    bad = (ts < _MIN_YEAR_S * 1_000_000_000) | (ts >= _MAX_YEAR_S * 1_000_000_000)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        unit = unit_of_value(int(ts[i]))
        if unit is not None and unit != "ns":
            detail = (
                f"looks like {_UNIT_NAMES[unit]} (detected unit {unit}), but ts_ns must be "
                "nanoseconds: convert explicitly"
            )
        else:
            detail = "is not a nanosecond epoch time between 1990 and 2100"
        raise DataValidationError(
            f"{_row_label(name, i, row_numbers)}: ts_ns {int(ts[i])} {detail}"
        )


def check_order(
    ts: np.ndarray, name: str, *, strict: bool, row_numbers: np.ndarray | None = None
) -> None:
    """Timestamps never decrease; with ``strict`` they must also not repeat."""
    if len(ts) < 2:
        return
    diff = ts[1:] - ts[:-1]
    down = diff < 0
    if down.any():
        i = int(np.flatnonzero(down)[0]) + 1
        raise DataValidationError(
            f"{_row_label(name, i, row_numbers)}: ts_ns {int(ts[i])} < previous "
            f"{int(ts[i - 1])} (timestamps must not decrease)"
        )
    if strict:
        same = diff == 0
        if same.any():
            i = int(np.flatnonzero(same)[0]) + 1
            prev = _row_label(name, i - 1, row_numbers).rsplit(" row ", 1)[1]
            raise DataValidationError(
                f"{_row_label(name, i, row_numbers)}: duplicate timestamp ts_ns {int(ts[i])} "
                f"(same as row {prev}; timestamps must be unique)"
            )


def _fmt(value: object) -> str:
    if isinstance(value, np.floating | float):
        return repr(float(value))
    if isinstance(value, np.integer | int):
        return str(int(value))
    return repr(value)


def _check_mask(
    bad: np.ndarray,
    name: str,
    row_numbers: np.ndarray | None,
    message: str,
    values: Iterable[tuple[str, np.ndarray]],
) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        shown = ", ".join(f"{label} {_fmt(col[i])}" for label, col in values)
        raise DataValidationError(f"{_row_label(name, i, row_numbers)}: {shown} ({message})")


def _check_positive_prices(
    records: np.ndarray, fields: Sequence[str], name: str, row_numbers: np.ndarray | None
) -> None:
    for f in fields:
        col = records[f]
        _check_mask(~np.isfinite(col), name, row_numbers, "prices must be finite", [(f, col)])
        _check_mask(col <= 0, name, row_numbers, "prices must be > 0", [(f, col)])


def validate_records(
    records: np.ndarray,
    kind: str,
    *,
    name: str,
    interval_ns: int = 0,
    allow_open_outside_range: bool = False,
    max_abs_funding_rate: float = MAX_ABS_FUNDING_RATE,
    row_numbers: np.ndarray | None = None,
) -> None:
    """Check ``records`` of stream ``kind`` against every rule of this module.

    Parameters
    ----------
    records
        Structured array of the kind's dtype (see :mod:`backtester.data.schemas`).
    kind
        Stream kind (``"trades"``, ``"bars"``, ``"index"``, ``"mark"``, ``"index_bars"``,
        ``"mark_bars"``, ``"funding"``).
    name
        File or stream name used in error messages.
    interval_ns
        Candle length; required (> 0) for candle kinds.
    allow_open_outside_range
        Accept ``open`` outside ``[low, high]`` (BitMEX bucketed-candle convention).
    max_abs_funding_rate
        Largest accepted ``|funding_rate|``.
    row_numbers
        1-based source-file data row of each record, for messages (default ``index + 1``).

    Raises
    ------
    TypeError
        ``records`` is not an array of the kind's dtype.
    DataValidationError
        The first row that breaks a rule, with file, row, value and rule.
    """
    dtype = kind_dtype(kind)
    if not isinstance(records, np.ndarray) or records.dtype != dtype:
        got = getattr(records, "dtype", type(records).__name__)
        raise TypeError(f"{name}: records for kind {kind!r} must have dtype {dtype}, got {got}")
    if kind in BAR_KINDS and interval_ns <= 0:
        raise ValueError(
            f"{name}: interval_ns must be > 0 for candle kind {kind!r}, got {interval_ns}"
        )
    if len(records) == 0:
        return
    ts = records["ts_ns"]
    check_ts_ns(ts, name, row_numbers)
    check_order(ts, name, strict=kind != "trades", row_numbers=row_numbers)
    if kind == "trades":
        _check_positive_prices(records, ["price"], name, row_numbers)
        qty = records["qty_base"]
        _check_mask(
            ~np.isfinite(qty) | (qty <= 0),
            name,
            row_numbers,
            "trade quantity must be finite and > 0",
            [("qty_base", qty)],
        )
        side = records["side"]
        _check_mask(
            (side < -1) | (side > 1),
            name,
            row_numbers,
            "side must be -1, 0 or 1",
            [("side", side)],
        )
    elif kind in POINT_KINDS:
        _check_positive_prices(records, ["price"], name, row_numbers)
    elif kind in BAR_KINDS:
        check_candle_grid(ts, interval_ns, name, row_numbers)
        _check_positive_prices(records, ["open", "high", "low", "close"], name, row_numbers)
        o, h, lo, c = records["open"], records["high"], records["low"], records["close"]
        _check_mask(h < lo, name, row_numbers, "high < low", [("high", h), ("low", lo)])
        inside = [("close", c)] if allow_open_outside_range else [("open", o), ("close", c)]
        for label, v in inside:
            _check_mask(
                (v < lo) | (v > h),
                name,
                row_numbers,
                f"{label} outside [low, high]",
                [(label, v), ("low", lo), ("high", h)],
            )
        vol = records["volume_base"]
        _check_mask(
            ~np.isfinite(vol) | (vol < 0),
            name,
            row_numbers,
            "volume must be finite and >= 0",
            [("volume_base", vol)],
        )
    elif kind == "funding":
        rate = records["funding_rate"]
        _check_mask(
            ~np.isfinite(rate),
            name,
            row_numbers,
            "funding rate must be finite",
            [("funding_rate", rate)],
        )
        beyond = np.abs(rate) > max_abs_funding_rate
        if beyond.any():
            i = int(np.flatnonzero(beyond)[0])
            raise DataValidationError(
                f"{_row_label(name, i, row_numbers)}: funding_rate {_fmt(rate[i])} (|funding "
                f"rate| above {max_abs_funding_rate:g} per interval, beyond any venue's cap"
                + _percent_hint(float(rate[i]), max_abs_funding_rate)
                + ")"
            )
        check_funding_percent(rate, name, row_numbers)
        _check_mask(
            records["funding_interval_ns"] < 0,
            name,
            row_numbers,
            "funding_interval_ns must be >= 0",
            [("funding_interval_ns", records["funding_interval_ns"])],
        )
        src = records["source"]
        _check_mask(
            (src < 0) | (src > 1), name, row_numbers, "source must be 0 or 1", [("source", src)]
        )


def check_single_symbol(
    symbols: Sequence[str] | np.ndarray, name: str, expected: str | None = None
) -> str:
    """Check that a symbol column holds one symbol (``expected`` if given); return it."""
    arr = np.asarray(symbols).astype(str)
    if len(arr) == 0:
        return expected or ""
    ref = expected if expected is not None else arr[0]
    bad = arr != ref
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"{name} row {i + 1:,}: symbol {str(arr[i])!r} differs from {str(ref)!r} "
            "(mixed symbols in one file; import one symbol per call)"
        )
    return str(ref)


@dataclass(frozen=True)
class GapReport:
    """Missing candles of a series: ``gaps`` holds ``(start_ns, end_ns, missing_bars)``.

    ``start_ns`` is the open time of the first missing candle, ``end_ns`` the open time of the
    next candle present, ``missing_bars`` = (end − start) / interval (a fraction when the
    series is off its grid).
    """

    interval_ns: int
    gaps: list[tuple[int, int, float]] = field(default_factory=list)

    @property
    def missing_bars(self) -> float:
        """Total number of missing candles."""
        return float(sum(g[2] for g in self.gaps))

    def __len__(self) -> int:
        return len(self.gaps)

    def __str__(self) -> str:
        if not self.gaps:
            return "no gaps"
        lines = [f"{len(self.gaps):,} gaps, {self.missing_bars:,g} missing bars:"]
        for start, end, missing in self.gaps[:20]:
            lines.append(
                f"  {pd.Timestamp(start, unit='ns', tz='UTC')} → "
                f"{pd.Timestamp(end, unit='ns', tz='UTC')}: {missing:g} bars"
            )
        if len(self.gaps) > 20:
            lines.append(f"  ... {len(self.gaps) - 20:,} more")
        return "\n".join(lines)


def find_gaps(ts_ns: np.ndarray, interval_ns: int) -> GapReport:
    """Report the candles missing between consecutive open times ``ts_ns`` (sorted)."""
    if interval_ns <= 0:
        raise ValueError(f"interval_ns: expected a value > 0, got {interval_ns}")
    ts = np.asarray(ts_ns, dtype=np.int64)
    if len(ts) < 2:
        return GapReport(interval_ns)
    diff = ts[1:] - ts[:-1]
    where = np.flatnonzero(diff > interval_ns)
    gaps = [
        (int(ts[i]) + interval_ns, int(ts[i + 1]), float((diff[i] - interval_ns) / interval_ns))
        for i in where
    ]
    return GapReport(interval_ns, gaps)
