"""Raw Binance futures websocket captures: ``<local_receive_ts> <json>`` per line (gzip).

Streams used (others — ``@bookTicker``, ``@depth``, REST snapshots — are counted and skipped,
listed in the metadata ``skipped_messages``):

* ``<symbol>@trade``: ``T`` exchange trade time (ms) → ``ts_ns``; ``p`` price; ``q`` quantity
  (base coin on USDⓈ-M; **contracts** on COIN-M ``*_PERP``: pass ``inverse_face_value_quote``,
  e.g. 100 for BTCUSD_PERP, converted as contracts × face / price); ``m`` buyer-is-maker ⇒ the
  aggressor sold. Rows are ordered by trade id ``t`` (the exchange's sequence), not by the
  local receive time. The local clock is not used (it drifts ~1.3 s in the 2024 captures).
* ``<symbol>@markPrice@1s``: ``E`` event time (ms) → mark ``p`` and index ``i`` points;
  ``r`` is the rate to be charged at the next funding time ``T``. When an update arrives with
  ``E >= T`` the last ``r`` shown before it becomes a funding event at ``T``
  (:func:`funding_from_ticker`); a funding time not passed inside the capture yields nothing.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from backtester.data.importers.common import (
    ImportedStream,
    empty,
    finish,
    funding_from_ticker,
    funding_records,
    price_records,
    side_from_buyer_maker,
    trade_records,
)
from backtester.data.validation import DataValidationError, check_single_symbol


def import_binance_ws(
    path: str | Path,
    *,
    symbol: str | None = None,
    inverse_face_value_quote: float | None = None,
    funding_interval_ns: int = 0,
    exclude_rows: Iterable[int] | None = None,
) -> list[ImportedStream]:
    """Import trades, mark, index and settled funding from a websocket capture file.

    ``exclude_rows`` are 1-based line numbers of trade messages to drop.
    """
    path = Path(path)
    name = path.name
    trades: list[tuple[int, int, float, float, bool, str, int]] = []
    marks: list[tuple[int, float, float, float, int, str, int]] = []
    skipped = 0
    opener = gzip.open if path.suffix in (".gz",) or name.endswith(".dat.gz") else open
    try:
        with opener(path, "rt") as handle:
            for line_no, line in enumerate(handle, start=1):
                if '@trade"' in line:
                    data = _payload(line, name, line_no)
                    trades.append(
                        (
                            data["t"],
                            data["T"],
                            float(data["p"]),
                            float(data["q"]),
                            bool(data["m"]),
                            data["s"],
                            line_no,
                        )
                    )
                elif "@markPrice" in line:
                    data = _payload(line, name, line_no)
                    marks.append(
                        (
                            data["E"],
                            float(data["p"]),
                            float(data["i"]),
                            float(data["r"]),
                            data["T"],
                            data["s"],
                            line_no,
                        )
                    )
                elif line.strip():
                    skipped += 1
    except (OSError, EOFError) as exc:
        raise ValueError(f"{name}: cannot read the capture ({exc})") from None
    except KeyError as exc:
        raise DataValidationError(f"{name}: message without field {exc}") from None
    if not trades and not marks:
        raise ValueError(f"{name}: no @trade or @markPrice messages in the capture")
    meta = {"format": "binance_ws_capture", "skipped_messages": str(skipped)}
    out = []
    if trades:
        arr = np.array(trades, dtype=object)
        sym = check_single_symbol(arr[:, 5].astype(str), name, symbol)
        order = np.argsort(arr[:, 0].astype(np.int64), kind="stable")
        arr = arr[order]
        ts = arr[:, 1].astype(np.int64) * 1_000_000
        price = arr[:, 2].astype(np.float64)
        qty = arr[:, 3].astype(np.float64)
        trade_meta = dict(meta, order="trade id t", time="exchange T (ms)")
        if "USD_" in sym:  # COIN-M: BTCUSD_PERP, BTCUSD_230630
            if inverse_face_value_quote is None:
                raise ValueError(
                    f"{name}: {sym} is a COIN-M contract whose q is in contracts; pass "
                    "inverse_face_value_quote (e.g. 100 for BTCUSD_PERP)"
                )
            qty = qty * inverse_face_value_quote / price
            trade_meta["qty_unit_source"] = f"contracts x {inverse_face_value_quote:g} / price"
        records = trade_records(ts, price, qty, side_from_buyer_maker(arr[:, 4].astype(bool)))
        out.append(
            finish(
                "trades",
                records,
                path=path,
                row_numbers=arr[:, 6].astype(np.int64),
                exclude_rows=exclude_rows,
                metadata=trade_meta,
            )
        )
    else:
        out.append(finish("trades", empty("trades"), path=path, metadata=meta))
    if marks:
        arr = np.array(marks, dtype=object)
        check_single_symbol(arr[:, 5].astype(str), name, symbol)
        ts = arr[:, 0].astype(np.int64) * 1_000_000
        rows = arr[:, 6].astype(np.int64)
        mark_meta = dict(meta, time="event time E (ms)")
        for kind, column in (("mark", 1), ("index", 2)):  # markPrice p and i
            prices = price_records(ts, arr[:, column].astype(np.float64))
            out.append(finish(kind, prices, path=path, row_numbers=rows, metadata=mark_meta))
        f_ts, f_rate, f_rows = funding_from_ticker(
            ts, arr[:, 4].astype(np.int64) * 1_000_000, arr[:, 3].astype(np.float64)
        )
        out.append(
            finish(
                "funding",
                funding_records(f_ts, f_rate, funding_interval_ns),
                path=path,
                row_numbers=rows[f_rows],
                metadata=dict(meta, funding="last r shown before each T passed"),
            )
        )
    return out


def _payload(line: str, name: str, line_no: int) -> dict[str, Any]:
    _, _, text = line.partition(" ")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataValidationError(f"{name} row {line_no:,}: not JSON ({exc.msg})") from None
    payload: dict[str, Any] = message.get("data", message)
    return payload
