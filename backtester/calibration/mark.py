"""Calibrate mark-price models against recorded mark prices and report the fit.

DESIGN.md ("Mark price"): ``mark = index + EMA(last − index)`` with a configurable span and
sampling step; "the span is calibrated against real mark candles and the calibration is
reported". This module

* aligns recorded mark, index, last trade, book mid and funding rate on the recorded mark's
  timestamps (:class:`AlignedMarks`, :func:`align_binance_capture` for raw Binance websocket
  captures);
* replays a mark model over them (kernel
  :func:`~backtester.swap.mark_calibration_nb.replay_mark_nb`) and scores it
  (:func:`evaluate_mark_model`);
* fits the span (in samples) and sampling step of the moving average of the basis on a
  deterministic grid, optionally refined by golden-section search (:func:`fit_mark_span`,
  :func:`span_grid`);
* compares every model family on the same rows (:func:`calibrate_mark_models`);
* describes how far mark candles stray from last-trade candles when no index is available
  (:func:`mark_last_deviation`) — context only: without an index the span is not identifiable.

Results are :class:`MarkCalibration` values with ``to_frame()`` and ``summary()``. (The module
runs past 800 lines because alignment, fit and report of the one calibration concept belong
together; the per-row loops live in the kernel module.)
See ``docs/mark_calibration.md`` for the figures measured on the shared data.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backtester.checks import check_choice, check_non_negative
from backtester.enums import MarkAverage, MarkPriceMethod, Status
from backtester.swap.funding_rules import value_as_of
from backtester.swap.mark_calibration_nb import mark_errors_nb, replay_mark_nb

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS

DEFAULT_SPANS: tuple[int, ...] = tuple(range(1, 301))
"""Span grid in samples: every integer 1 … 300."""

DEFAULT_SAMPLE_STEPS_NS: tuple[int, ...] = tuple(
    s * SECOND_NS for s in (1, 2, 3, 5, 10, 15, 30, 60)
)
"""Sampling-step grid: 1 s … 60 s (a step shorter than the data's spacing samples every row)."""

METHODS = ("INDEX_EMA_BASIS", "BINANCE_MEDIAN", "FUNDING_BASIS", "LAST")
AVERAGES = ("ema", "sma")
BASIS_PRICES = ("mid", "last")
INITIAL = ("recorded", "first_sample")


# --------------------------------------------------------------------------- aligned input


@dataclass(frozen=True)
class AlignedMarks:
    """Recorded mark and its inputs, one row per recorded mark update.

    Every array has the same length and holds the value as of ``ts_ns`` (the latest update at or
    before it). ``funding_rate`` is the rate shown at ``ts_ns`` for the funding at
    ``next_funding_ns``. ``mid_price`` is (best bid + best ask)/2.
    """

    ts_ns: np.ndarray
    mark_price: np.ndarray
    index_price: np.ndarray
    last_price: np.ndarray
    mid_price: np.ndarray
    funding_rate: np.ndarray
    next_funding_ns: np.ndarray
    funding_interval_ns: int
    source: str

    def __post_init__(self) -> None:
        n = len(self.ts_ns)
        if n < 2:
            raise ValueError(f"{self.source}: ts_ns: expected at least 2 aligned rows, got {n}")
        for name in (
            "ts_ns",
            "mark_price",
            "index_price",
            "last_price",
            "mid_price",
            "funding_rate",
            "next_funding_ns",
        ):
            values = np.asarray(getattr(self, name))
            if values.ndim != 1 or len(values) != n:
                raise ValueError(
                    f"{self.source}: {name}: expected a 1-D array of {n} rows, got shape "
                    f"{values.shape}"
                )
            integer = name.endswith("_ns")
            values = values.astype(np.int64 if integer else np.float64)
            if not integer:
                bad = np.flatnonzero(~np.isfinite(values))
                if len(bad):
                    raise ValueError(
                        f"{self.source}: {name}: row {bad[0]} is {float(values[bad[0]])}; expected "
                        "finite values (align the series so every row has an input)"
                    )
                if name != "funding_rate" and np.any(values <= 0):
                    row = int(np.flatnonzero(values <= 0)[0])
                    raise ValueError(
                        f"{self.source}: {name}: row {row} is {float(values[row])}; expected > 0"
                    )
            object.__setattr__(self, name, np.ascontiguousarray(values))
        steps = np.diff(self.ts_ns)
        if np.any(steps <= 0):
            row = int(np.flatnonzero(steps <= 0)[0]) + 1
            raise ValueError(
                f"{self.source}: ts_ns: row {row} ({self.ts_ns[row]}) is not after the previous "
                f"row ({self.ts_ns[row - 1]}); expected strictly increasing timestamps"
            )
        if int(self.funding_interval_ns) <= 0:
            raise ValueError(
                f"{self.source}: funding_interval_ns: expected > 0, got {self.funding_interval_ns}"
            )

    def __len__(self) -> int:
        return len(self.ts_ns)

    def to_frame(self) -> pd.DataFrame:
        """Return the aligned rows as a DataFrame indexed by UTC time."""
        frame = pd.DataFrame(
            {
                "mark_price": self.mark_price,
                "index_price": self.index_price,
                "last_price": self.last_price,
                "mid_price": self.mid_price,
                "funding_rate": self.funding_rate,
                "next_funding_ns": self.next_funding_ns,
            },
            index=pd.to_datetime(self.ts_ns, utc=True),
        )
        frame.index.name = "ts"
        return frame


def _read_capture_quotes(
    path: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the bookTicker (T ns, mid) and markPrice (E ns, r, T ns) columns of a capture.

    The ``binance_ws`` importer returns trades, mark, index and *settled* funding only; the
    per-update funding rate ``r``/``T`` and the best bid/ask are read here from the same lines.
    """
    book_ts: list[int] = []
    book_mid: list[float] = []
    mark_rows: list[tuple[int, float, int]] = []
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as handle:
        for line_no, line in enumerate(handle, start=1):
            is_book = '@bookTicker"' in line
            if not is_book and "@markPrice" not in line:
                continue
            _, _, text = line.partition(" ")
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} row {line_no:,}: not JSON ({exc.msg})") from None
            data = data.get("data", data)
            try:
                if is_book:
                    bid, ask = float(data["b"]), float(data["a"])
                    if not (0 < bid <= ask):
                        raise ValueError(
                            f"{path.name} row {line_no:,}: bookTicker bid {bid} / ask {ask}; "
                            "expected 0 < bid <= ask"
                        )
                    book_ts.append(int(data["T"]) * 1_000_000)
                    book_mid.append(0.5 * (bid + ask))
                else:
                    mark_rows.append(
                        (int(data["E"]) * 1_000_000, float(data["r"]), int(data["T"]) * 1_000_000)
                    )
            except KeyError as exc:
                raise ValueError(
                    f"{path.name} row {line_no:,}: message without field {exc}"
                ) from None
    return (
        np.array(book_ts, dtype=np.int64),
        np.array(book_mid, dtype=np.float64),
        np.array([row[0] for row in mark_rows], dtype=np.int64),
        np.array([row[1] for row in mark_rows], dtype=np.float64),
        np.array([row[2] for row in mark_rows], dtype=np.int64),
    )


def align_binance_capture(
    paths: str | Path | Sequence[str | Path],
    *,
    funding_interval_ns: int = 8 * HOUR_NS,
    input_lag_ns: int = 0,
) -> AlignedMarks:
    """Align a raw Binance futures websocket capture on its ``@markPrice@1s`` updates.

    Trades, mark and index come from ``read_file(path, "binance_ws")``; the best bid/ask
    (``@bookTicker``, exchange time ``T``) and the funding rate ``r`` / next funding time ``T`` of
    each mark update are parsed from the same lines. Several consecutive files are concatenated.
    Rows before the first trade and first book update are dropped (no input yet).

    Parameters
    ----------
    paths
        One capture file or consecutive files (``<local_ts> <json>`` per line, gzip or text).
    funding_interval_ns
        Funding interval of the contract (Binance BTCUSDT: 8 h).
    input_lag_ns
        Take the last trade and book mid as of ``E − input_lag_ns`` (the venue computes the mark
        shortly before it publishes it at ``E``); 0 uses the latest update at or before ``E``.
    """
    from backtester.data.importers import read_file

    files = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    if not files:
        raise ValueError("paths: expected at least one capture file, got none")
    trades_ts, trades_px, mark_ts, mark_px, index_px = [], [], [], [], []
    book_ts, book_mid, rate_ts, rate_values, rate_next = [], [], [], [], []
    for path in files:
        streams = {s.kind: s.records for s in read_file(path, "binance_ws")}
        if "mark" not in streams or "index" not in streams:
            raise ValueError(f"{path.name}: no @markPrice updates (mark and index) in the capture")
        trades_ts.append(streams["trades"]["ts_ns"])
        trades_px.append(streams["trades"]["price"])
        mark_ts.append(streams["mark"]["ts_ns"])
        mark_px.append(streams["mark"]["price"])
        index_px.append(streams["index"]["price"])
        b_ts, b_mid, r_ts, r_value, r_next = _read_capture_quotes(path)
        book_ts.append(b_ts)
        book_mid.append(b_mid)
        rate_ts.append(r_ts)
        rate_values.append(r_value)
        rate_next.append(r_next)
    ts = np.concatenate(mark_ts)
    r_ts = np.concatenate(rate_ts)
    if not np.array_equal(ts, r_ts):
        raise ValueError(
            f"{', '.join(p.name for p in files)}: markPrice timestamps parsed here differ from the "
            "binance_ws importer's mark stream"
        )
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    if np.any(np.diff(ts) <= 0):
        raise ValueError(
            f"{', '.join(p.name for p in files)}: duplicate or overlapping markPrice timestamps; "
            "pass consecutive, non-overlapping captures"
        )
    mark = np.concatenate(mark_px)[order]
    index = np.concatenate(index_px)[order]
    rates = np.concatenate(rate_values)[order]
    next_funding = np.concatenate(rate_next)[order]
    t_ts = np.concatenate(trades_ts)
    t_px = np.concatenate(trades_px)
    t_order = np.argsort(t_ts, kind="stable")
    b_ts = np.concatenate(book_ts)
    b_mid = np.concatenate(book_mid)
    b_order = np.argsort(b_ts, kind="stable")
    input_lag_ns = int(check_non_negative(input_lag_ns, "input_lag_ns"))
    last = value_as_of(t_ts[t_order], t_px[t_order], ts - input_lag_ns)
    mid = value_as_of(b_ts[b_order], b_mid[b_order], ts - input_lag_ns)
    keep = np.isfinite(last) & np.isfinite(mid)
    return AlignedMarks(
        ts_ns=ts[keep],
        mark_price=mark[keep],
        index_price=index[keep],
        last_price=last[keep],
        mid_price=mid[keep],
        funding_rate=rates[keep],
        next_funding_ns=next_funding[keep],
        funding_interval_ns=int(funding_interval_ns),
        source="binance_ws:" + "+".join(p.name for p in files),
    )


def align_records(
    mark: np.ndarray,
    index: np.ndarray,
    trades: np.ndarray,
    *,
    funding: np.ndarray | None = None,
    funding_interval_ns: int = 8 * HOUR_NS,
    source: str = "records",
) -> AlignedMarks:
    """Align catalog streams (``Catalog.read("mark"/"index"/"trades"/"funding", ...)``).

    ``mark`` and ``index`` are PRICE_DTYPE records with identical timestamps; ``trades`` are
    TRADE_DTYPE records (the last trade at or before each mark gives ``last_price``, which also
    stands in for ``mid_price``: catalogs hold no book). Rows before the first trade are dropped.
    ``funding`` (FUNDING_RATE_DTYPE, optional) gives each row the rate and time of the next
    funding event at or after it; rows after the last event keep its rate with the next funding
    at last event + ``funding_interval_ns``. Without ``funding`` the rate is 0 (Price1 = index).
    """
    for name, records, need in (
        ("mark", mark, ("ts_ns", "price")),
        ("index", index, ("ts_ns", "price")),
        ("trades", trades, ("ts_ns", "price")),
    ):
        if not isinstance(records, np.ndarray) or not set(need) <= set(records.dtype.names or ()):
            raise TypeError(f"{name}: expected records with fields {need} (Catalog.read output)")
    if not np.array_equal(mark["ts_ns"], index["ts_ns"]):
        raise ValueError(
            f"{source}: mark and index timestamps differ ({len(mark)} vs {len(index)} rows); "
            "expected one index value per mark value"
        )
    ts = mark["ts_ns"].astype(np.int64)
    order = np.argsort(trades["ts_ns"], kind="stable")
    last = value_as_of(trades["ts_ns"][order], trades["price"][order], ts)
    keep = np.isfinite(last)
    rate = np.zeros(len(ts))
    next_funding = ts.copy()
    if funding is not None:
        if not isinstance(funding, np.ndarray) or "funding_rate" not in (funding.dtype.names or ()):
            raise TypeError("funding: expected FUNDING_RATE_DTYPE records (Catalog.read output)")
        if len(funding) == 0:
            raise ValueError("funding: expected at least one funding event, got none")
        f_ts = funding["ts_ns"].astype(np.int64)
        pos = np.searchsorted(f_ts, ts, side="left")
        after = pos >= len(f_ts)
        pos = np.minimum(pos, len(f_ts) - 1)
        rate = funding["funding_rate"][pos].astype(np.float64)
        next_funding = np.where(after, f_ts[-1] + int(funding_interval_ns), f_ts[pos])
    return AlignedMarks(
        ts_ns=ts[keep],
        mark_price=mark["price"][keep],
        index_price=index["price"][keep],
        last_price=last[keep],
        mid_price=last[keep],
        funding_rate=rate[keep],
        next_funding_ns=next_funding[keep],
        funding_interval_ns=int(funding_interval_ns),
        source=source,
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MarkCalibration:
    """Fit of one mark model to a recorded mark series.

    Attributes
    ----------
    method
        ``MarkPriceMethod`` name: INDEX_EMA_BASIS, BINANCE_MEDIAN, FUNDING_BASIS or LAST.
    average
        ``"ema"`` or ``"sma"`` for methods with a moving average of the basis, else ``""``.
    basis_price
        ``"mid"`` or ``"last"``: the price whose basis to the index is averaged (``""`` if none).
    span
        EMA span / SMA window in samples (NaN for methods without an average).
    sample_step_ns
        Sampling step of the basis (0: every recorded row).
    rmse_quote, rmse_bp, max_abs_error_quote, max_abs_error_bp
        Error of the model mark against the recorded mark, in quote currency and in basis points
        of the recorded mark.
    n_samples
        Scored rows (after the warm-up).
    data_source
        Where the recorded series came from.
    """

    method: str
    average: str
    basis_price: str
    span: float
    sample_step_ns: int
    rmse_quote: float
    rmse_bp: float
    max_abs_error_quote: float
    max_abs_error_bp: float
    n_samples: int
    data_source: str

    @property
    def mean_lag_ns(self) -> float:
        """Mean age of the averaged basis, (span − 1)/2 samples × step (EMA and SMA alike).

        Spans fitted at different steps describe the same smoothing when this agrees; NaN for
        methods without an average.
        """
        if not self.average:
            return math.nan
        return (self.span - 1.0) / 2.0 * self.sample_step_ns

    @property
    def label(self) -> str:
        """Short model description, e.g. ``INDEX_EMA_BASIS ema(mid) span 30 @ 1s``."""
        if self.average:
            step = format_step(self.sample_step_ns)
            return f"{self.method} {self.average}({self.basis_price}) span {self.span:g} @ {step}"
        return self.method

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of every field (plus ``label``)."""
        row = asdict(self)
        row["label"] = self.label
        row["mean_lag_s"] = self.mean_lag_ns / SECOND_NS
        return pd.DataFrame([row])

    def summary(self) -> str:
        """One line: model, RMSE and max error in quote and bp, rows, source."""
        return (
            f"{self.label}: RMSE {self.rmse_quote:.4f} quote ({self.rmse_bp:.3f} bp), "
            f"max |error| {self.max_abs_error_quote:.4f} quote ({self.max_abs_error_bp:.3f} bp), "
            f"n={self.n_samples} [{self.data_source}]"
        )


@dataclass(frozen=True)
class MarkCalibrationReport:
    """All models fitted on the same rows, best (lowest RMSE) first."""

    results: tuple[MarkCalibration, ...]
    warmup_ns: int
    grid: dict[str, pd.DataFrame] = field(default_factory=dict, compare=False, repr=False)

    @property
    def best(self) -> MarkCalibration:
        """The model with the lowest RMSE."""
        return self.results[0]

    def get(self, method: str, average: str = "", basis_price: str = "") -> MarkCalibration:
        """Return the result of one model family (raises ``KeyError`` naming what exists)."""
        for result in self.results:
            if (result.method, result.average, result.basis_price) == (
                method,
                average,
                basis_price,
            ):
                return result
        have = [(r.method, r.average, r.basis_price) for r in self.results]
        raise KeyError(f"no result for {(method, average, basis_price)}; have {have}")

    def to_frame(self) -> pd.DataFrame:
        """One row per model, best first."""
        return pd.concat([r.to_frame() for r in self.results], ignore_index=True)

    def summary(self) -> str:
        """Text table of every model, best first, with the data source and warm-up."""
        first = self.results[0]
        lines = [
            f"Mark-price calibration on {first.data_source}: {first.n_samples} scored rows "
            f"(warm-up {self.warmup_ns / SECOND_NS:g} s excluded)",
            f"{'model':<48} {'RMSE':>10} {'RMSE bp':>8} {'max|e|':>10} {'max bp':>8}",
        ]
        lines.extend(
            f"{r.label:<48} {r.rmse_quote:>10.4f} {r.rmse_bp:>8.3f} "
            f"{r.max_abs_error_quote:>10.4f} {r.max_abs_error_bp:>8.3f}"
            for r in self.results
        )
        return "\n".join(lines)


def format_step(step_ns: int) -> str:
    """Return a sampling step as text (``every row``, ``60 s``, ...)."""
    if step_ns <= 0:
        return "every row"
    if step_ns % SECOND_NS == 0:
        return f"{step_ns // SECOND_NS}s"
    return f"{step_ns / 1e6:g}ms"


# --------------------------------------------------------------------------- replay and scoring


def _check_options(method: str, average: str, basis_price: str, initial: str) -> None:
    check_choice(method, "method", METHODS)
    check_choice(average, "average", AVERAGES)
    check_choice(basis_price, "basis_price", BASIS_PRICES)
    check_choice(initial, "initial", INITIAL)


def check_span_fit(method: str, average: str, basis_price: str, initial: str) -> None:
    """Refuse options a span fit cannot use: unknown values, or a method without a span.

    Only the methods that average the basis (``INDEX_EMA_BASIS``, ``BINANCE_MEDIAN``) have a
    span to fit; ``ValueError`` naming the option otherwise.
    """
    _check_options(method, average, basis_price, initial)
    if not _uses_average(method):
        raise ValueError(
            f"method: {method!r} has no span to fit; expected one of INDEX_EMA_BASIS, "
            "BINANCE_MEDIAN"
        )


def _uses_average(method: str) -> bool:
    return method in ("INDEX_EMA_BASIS", "BINANCE_MEDIAN")


class MarkReplay:
    """Pre-resolved arrays and options for repeated kernel calls on one data set.

    Used by the fits here and by :mod:`backtester.calibration.mark_fit`.
    """

    def __init__(
        self,
        data: AlignedMarks,
        method: str,
        average: str,
        basis_price: str,
        warmup_ns: int,
        initial: str,
    ) -> None:
        _check_options(method, average, basis_price, initial)
        if not isinstance(data, AlignedMarks):
            raise TypeError(f"data: expected AlignedMarks, got {type(data).__name__}")
        warmup_ns = int(check_non_negative(warmup_ns, "warmup_ns"))
        self.data = data
        self.method = method
        self.average = average if _uses_average(method) else ""
        self.basis_price = basis_price if _uses_average(method) else ""
        self.basis = data.mid_price if basis_price == "mid" else data.last_price
        self.method_code = int(MarkPriceMethod[method])
        self.average_code = int(MarkAverage[average.upper()])
        self.initial_basis = (
            float(data.mark_price[0] - data.index_price[0]) if initial == "recorded" else np.nan
        )
        self.scored = data.ts_ns >= data.ts_ns[0] + warmup_ns
        if not self.scored.any():
            raise ValueError(
                f"warmup_ns: {warmup_ns} leaves no rows to score; the data spans "
                f"{(data.ts_ns[-1] - data.ts_ns[0]) / SECOND_NS:g} s"
            )
        self.out = np.empty(len(data))

    def model(self, span: float, sample_step_ns: int) -> np.ndarray:
        """Return the model mark at every row (a buffer reused by the next call)."""
        d = self.data
        status = replay_mark_nb(
            d.ts_ns,
            d.index_price,
            self.basis,
            d.last_price,
            d.funding_rate,
            d.next_funding_ns,
            self.method_code,
            self.average_code,
            float(span),
            int(sample_step_ns),
            int(d.funding_interval_ns),
            self.initial_basis,
            self.out,
        )
        if status != Status.OK:
            raise ValueError(
                f"span: {span!r} with method {self.method}, average {self.average or '-'}: the "
                "replay kernel refused the parameters (span must be >= 1 for averaging methods)"
            )
        return self.out

    def errors(self, span: float, sample_step_ns: int) -> tuple[float, float, float, float, int]:
        """Return (RMSE, max |error|, relative RMSE, relative max, rows) over the scored rows."""
        return mark_errors_nb(self.model(span, sample_step_ns), self.data.mark_price, self.scored)

    def result(self, span: float, sample_step_ns: int) -> MarkCalibration:
        """Return the scored :class:`MarkCalibration` of one (span, step)."""
        rmse, worst, rmse_rel, worst_rel, n = self.errors(span, sample_step_ns)
        averaging = _uses_average(self.method)
        return MarkCalibration(
            method=self.method,
            average=self.average,
            basis_price=self.basis_price,
            span=float(span) if averaging else math.nan,
            sample_step_ns=int(sample_step_ns) if averaging else 0,
            rmse_quote=float(rmse),
            rmse_bp=float(rmse_rel) * 1e4,
            max_abs_error_quote=float(worst),
            max_abs_error_bp=float(worst_rel) * 1e4,
            n_samples=int(n),
            data_source=self.data.source,
        )


def model_mark(
    data: AlignedMarks,
    method: str = "INDEX_EMA_BASIS",
    *,
    average: str = "ema",
    basis_price: str = "mid",
    span: float = 1.0,
    sample_step_ns: int = 0,
    initial: str = "recorded",
) -> np.ndarray:
    """Return the model mark at every row of ``data`` (a copy), e.g. to plot against the mark.

    ``initial="recorded"`` starts the moving average at the first row's recorded
    mark − index (exact for an index + MA mark); ``"first_sample"`` at the first basis sample.
    """
    replay = MarkReplay(data, method, average, basis_price, 0, initial)
    return replay.model(span, sample_step_ns).copy()


def evaluate_mark_model(
    data: AlignedMarks,
    method: str = "INDEX_EMA_BASIS",
    *,
    average: str = "ema",
    basis_price: str = "mid",
    span: float = 1.0,
    sample_step_ns: int = 0,
    warmup_ns: int = MINUTE_NS,
    initial: str = "recorded",
) -> MarkCalibration:
    """Score one mark model with fixed parameters against the recorded mark.

    Rows within ``warmup_ns`` of the first row are replayed but not scored.
    """
    replay = MarkReplay(data, method, average, basis_price, warmup_ns, initial)
    return replay.result(span, sample_step_ns)


def span_grid(
    data: AlignedMarks,
    method: str = "INDEX_EMA_BASIS",
    *,
    average: str = "ema",
    basis_price: str = "mid",
    spans: Sequence[float] = DEFAULT_SPANS,
    sample_steps_ns: Sequence[int] = DEFAULT_SAMPLE_STEPS_NS,
    warmup_ns: int = MINUTE_NS,
    initial: str = "recorded",
) -> pd.DataFrame:
    """RMSE (quote) of every (sampling step, span) pair: rows = steps (ns), columns = spans."""
    check_span_fit(method, average, basis_price, initial)
    spans = [float(s) for s in spans]
    steps = [int(s) for s in sample_steps_ns]
    if not spans or not steps:
        raise ValueError("spans / sample_steps_ns: expected non-empty grids")
    for s in spans:
        if not s >= 1:
            raise ValueError(f"spans: {s!r}; expected every span >= 1 sample")
    for s in steps:
        if s < 0:
            raise ValueError(f"sample_steps_ns: {s!r}; expected every step >= 0 ns")
    replay = MarkReplay(data, method, average, basis_price, warmup_ns, initial)
    table = np.empty((len(steps), len(spans)))
    for i, step in enumerate(steps):
        for j, span in enumerate(spans):
            table[i, j] = replay.errors(span, step)[0]
    frame = pd.DataFrame(table, index=pd.Index(steps, name="sample_step_ns"), columns=spans)
    frame.columns.name = "span"
    return frame


def _golden_section(func: Callable[[float], float], low: float, high: float, tol: float) -> float:
    """Minimiser of a unimodal ``func`` on [low, high] (deterministic golden-section search)."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = func(c), func(d)
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = func(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = func(d)
    return (a + b) / 2.0


def fit_mark_span(
    data: AlignedMarks,
    method: str = "INDEX_EMA_BASIS",
    *,
    average: str = "ema",
    basis_price: str = "mid",
    spans: Sequence[float] = DEFAULT_SPANS,
    sample_steps_ns: Sequence[int] = DEFAULT_SAMPLE_STEPS_NS,
    warmup_ns: int = MINUTE_NS,
    initial: str = "recorded",
    refine: bool = False,
    refine_tol: float = 1e-3,
) -> MarkCalibration:
    """Fit the span and sampling step of an index + MA(basis) mark by minimum RMSE.

    Formula
    -------
    (span, step) = argmin over the grid of sqrt(mean (model − recorded)²) over the scored rows;
    ties go to the smaller step, then the smaller span. With ``refine`` (EMA only) the span is
    then refined by golden-section search on [best − 1, best + 1] at the best step.

    Source
    ------
    DESIGN.md "Mark price" (span calibrated against real marks); MECHANICS.md §2.1 / §2.3.

    Cases
    -----
    None in cases.json (tests/unit/calibration/test_calibration_mark.py recovers a known span).
    """
    grid = span_grid(
        data,
        method,
        average=average,
        basis_price=basis_price,
        spans=spans,
        sample_steps_ns=sample_steps_ns,
        warmup_ns=warmup_ns,
        initial=initial,
    )
    return _best_from_grid(
        grid, data, method, average, basis_price, warmup_ns, initial, refine, refine_tol
    )


def _best_from_grid(
    grid: pd.DataFrame,
    data: AlignedMarks,
    method: str,
    average: str,
    basis_price: str,
    warmup_ns: int,
    initial: str,
    refine: bool,
    refine_tol: float,
) -> MarkCalibration:
    values = grid.to_numpy()
    if np.all(np.isnan(values)):
        raise ValueError(f"{data.source}: no grid point produced a complete model mark")
    flat = int(np.nanargmin(values))  # first minimum: smaller step, then smaller span
    i, j = divmod(flat, values.shape[1])
    step = int(grid.index[i])
    span = float(grid.columns[j])
    replay = MarkReplay(data, method, average, basis_price, warmup_ns, initial)
    if refine and average == "ema":
        low, high = max(1.0, span - 1.0), span + 1.0
        refined = _golden_section(lambda s: replay.errors(s, step)[0], low, high, refine_tol)
        if replay.errors(refined, step)[0] < replay.errors(span, step)[0]:
            span = refined
    return replay.result(span, step)


def calibrate_mark_models(
    data: AlignedMarks,
    *,
    spans: Sequence[float] = DEFAULT_SPANS,
    sample_steps_ns: Sequence[int] = DEFAULT_SAMPLE_STEPS_NS,
    warmup_ns: int = MINUTE_NS,
    initial: str = "recorded",
    averages: Sequence[str] = AVERAGES,
    basis_prices: Sequence[str] = BASIS_PRICES,
    refine: bool = False,
) -> MarkCalibrationReport:
    """Fit and compare every mark model on the same rows; best (lowest RMSE) first.

    Models: INDEX_EMA_BASIS and BINANCE_MEDIAN (each with every ``averages`` ×
    ``basis_prices``, span and step fitted), FUNDING_BASIS with the recorded funding rate (no
    free parameter) and LAST (mark = last trade; the baseline a model must beat). The RMSE grid
    of each fitted model is kept in ``report.grid`` under its label prefix
    ``"<method> <average>(<basis_price>)"``.
    """
    results: list[MarkCalibration] = []
    grids: dict[str, pd.DataFrame] = {}
    for method in ("INDEX_EMA_BASIS", "BINANCE_MEDIAN"):
        for average in averages:
            for basis_price in basis_prices:
                grid = span_grid(
                    data,
                    method,
                    average=average,
                    basis_price=basis_price,
                    spans=spans,
                    sample_steps_ns=sample_steps_ns,
                    warmup_ns=warmup_ns,
                    initial=initial,
                )
                grids[f"{method} {average}({basis_price})"] = grid
                results.append(
                    _best_from_grid(
                        grid,
                        data,
                        method,
                        average,
                        basis_price,
                        warmup_ns,
                        initial,
                        refine,
                        1e-3,
                    )
                )
    results.extend(
        evaluate_mark_model(data, method, warmup_ns=warmup_ns, initial=initial)
        for method in ("FUNDING_BASIS", "LAST")
    )
    ordered = sorted(results, key=lambda r: math.inf if math.isnan(r.rmse_quote) else r.rmse_quote)
    return MarkCalibrationReport(results=tuple(ordered), warmup_ns=int(warmup_ns), grid=grids)


# --------------------------------------------------------------------------- no index: context


def mark_last_deviation(mark_bars: np.ndarray, trade_bars: np.ndarray) -> pd.DataFrame:
    """Mark-candle close vs last-trade close at the same instants, per matched candle.

    ``mark_bars`` and ``trade_bars`` are BAR_DTYPE records with ``ts_ns`` = candle open; the
    mark candle interval must be a multiple of the trade candle interval (both inferred from the
    most common spacing). Each mark candle's close is paired with the close of the trade candle
    that ends at the same time. Returned columns: ``mark_close``, ``last_close``,
    ``deviation_quote`` (mark − last), ``deviation_bp`` (÷ last × 1e4), ``mark_range_bp`` and
    ``last_range_bp`` ((high − low)/close × 1e4 over the mark candle's interval, the trade
    candles resampled). Indexed by the mark candle's close time (UTC).

    Without an index series this shows how far marks stray from trades; it cannot identify the
    EMA span of ``index + EMA(last − index)``, since mark − last = −(basis − EMA(basis)) and the
    basis itself is unobserved.
    """
    for name, bars in (("mark_bars", mark_bars), ("trade_bars", trade_bars)):
        if (
            not isinstance(bars, np.ndarray)
            or bars.dtype.names is None
            or not {
                "ts_ns",
                "high",
                "low",
                "close",
            }
            <= set(bars.dtype.names)
        ):
            raise TypeError(f"{name}: expected BAR_DTYPE records (ts_ns, open, high, low, close)")
        if len(bars) < 2:
            raise ValueError(f"{name}: expected at least 2 candles, got {len(bars)}")
    mark_step = int(pd.Series(np.diff(mark_bars["ts_ns"])).mode().iloc[0])
    trade_step = int(pd.Series(np.diff(trade_bars["ts_ns"])).mode().iloc[0])
    if trade_step <= 0 or mark_step % trade_step:
        raise ValueError(
            f"mark_bars: candle interval {mark_step} ns is not a multiple of the trade candles' "
            f"{trade_step} ns"
        )
    trade_index = pd.DatetimeIndex(pd.to_datetime(trade_bars["ts_ns"], utc=True))
    trades = pd.DataFrame({k: trade_bars[k] for k in ("high", "low", "close")}, index=trade_index)
    trades_close_at = pd.Series(
        trades["close"].to_numpy(), index=trade_index + pd.Timedelta(trade_step, "ns")
    )
    bucket = trade_index.floor(pd.Timedelta(mark_step, "ns"))
    per = trades.groupby(bucket).agg(
        high=("high", "max"), low=("low", "min"), count=("close", "size")
    )
    per = per[per["count"] == mark_step // trade_step]
    mark_index = pd.DatetimeIndex(pd.to_datetime(mark_bars["ts_ns"], utc=True))
    marks = pd.DataFrame({k: mark_bars[k] for k in ("high", "low", "close")}, index=mark_index)
    close_at = mark_index + pd.Timedelta(mark_step, "ns")
    last_close = trades_close_at.reindex(close_at).to_numpy()
    frame = pd.DataFrame(
        {
            "mark_close": marks["close"].to_numpy(),
            "last_close": last_close,
            "mark_range_bp": ((marks["high"] - marks["low"]) / marks["close"] * 1e4).to_numpy(),
            "last_range_bp": (
                (per["high"] - per["low"]).reindex(marks.index).to_numpy() / last_close * 1e4
            ),
        },
        index=pd.DatetimeIndex(close_at, name="close_time"),
    )
    frame = frame.dropna()
    frame.insert(2, "deviation_quote", frame["mark_close"] - frame["last_close"])
    frame.insert(3, "deviation_bp", frame["deviation_quote"] / frame["last_close"] * 1e4)
    return frame


def deviation_summary(deviation: pd.DataFrame) -> pd.DataFrame:
    """Distribution of :func:`mark_last_deviation` columns: count, mean, std, quantiles, max |x|."""
    cols = ["deviation_quote", "deviation_bp", "mark_range_bp", "last_range_bp"]
    missing = [c for c in cols if c not in deviation.columns]
    if missing:
        raise ValueError(f"deviation: missing column(s) {missing}; pass mark_last_deviation(...)")
    stats = deviation[cols].describe(percentiles=[0.01, 0.05, 0.5, 0.95, 0.99]).T
    stats["max_abs"] = deviation[cols].abs().max()
    return stats


__all__ = [
    "DEFAULT_SAMPLE_STEPS_NS",
    "DEFAULT_SPANS",
    "AlignedMarks",
    "MarkCalibration",
    "MarkCalibrationReport",
    "MarkReplay",
    "align_binance_capture",
    "align_records",
    "calibrate_mark_models",
    "check_span_fit",
    "deviation_summary",
    "evaluate_mark_model",
    "fit_mark_span",
    "format_step",
    "mark_last_deviation",
    "model_mark",
    "span_grid",
]
