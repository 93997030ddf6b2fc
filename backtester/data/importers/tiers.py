"""Tier-table loaders of exchange formats.

ccxt ``fetch_leverage_tiers`` output, freqtrade's Binance ``binance_leverage_tiers.json``
snapshots and OKX position-tier CSVs.
Each returns a validated :class:`~backtester.swap.tiers.TierTable` (or a dated
:class:`~backtester.swap.tiers.TierSchedule`) of the contract model; errors name the file, the
tier entry or line and what was expected.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from backtester.checks import suggestion
from backtester.enums import TierBasis
from backtester.swap.tiers import TierSchedule, TierTable, maintenance_amounts

__all__ = [
    "load_binance_snapshot",
    "load_binance_snapshots",
    "load_okx_tier_csv",
    "tiers_from_ccxt",
]


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
    return TierTable.from_records(basis, records, valid_from, src)


_SNAPSHOT_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})_([0-9a-f]+)")


def _binance_keys(symbol: str) -> list[str]:
    """Ccxt keys a Binance USDⓈ-M symbol may have: ``BTC/USDT`` (old) or ``BTC/USDT:USDT``."""
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
    return TierTable.from_records(TierBasis.CONTRACTS, records, valid_from, str(path))
