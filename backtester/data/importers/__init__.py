"""Importers: read one source file, convert units explicitly, validate, hand to the catalog.

Every importer returns a list of :class:`ImportedStream` (validated records of a catalog kind,
plus provenance metadata and a gap report); :func:`import_file` runs one by format name and
writes the streams into a :class:`~backtester.data.catalog.Catalog`.

========================== ================================================================
format                     importer
========================== ================================================================
freqtrade                  :func:`import_freqtrade` (futures, mark, index, funding_rate, spot)
binance_aggtrades          :func:`import_binance_trades` (aggregated=True)
binance_trades             :func:`import_binance_trades` (aggregated=False)
binance_klines             :func:`import_binance_klines` (klines, markPriceKlines, indexPriceKlines)
binance_funding            :func:`import_binance_funding`
binance_ws                 :func:`import_binance_ws` (raw websocket capture)
okx_trades / okx_candles / :func:`import_okx_trades`, :func:`import_okx_candles`,
okx_funding                :func:`import_okx_funding`
bitmex_parquet             :func:`import_bitmex_parquet`
bitmex_json                :func:`import_bitmex_json` (original daily bucket files)
tardis_trades              :func:`import_tardis_trades`
tardis_derivative_ticker   :func:`import_tardis_derivative_ticker`
lean_zip / lean_funding    :func:`import_lean_zip`, :func:`import_lean_funding`
nautilus_bars              :func:`import_nautilus_bars` (FTX BTC-PERP csv.gz)
generic                    :func:`import_generic` (column mapping)
========================== ================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backtester.checks import check_choice
from backtester.data.importers.binance_ws import import_binance_ws
from backtester.data.importers.candles import (
    import_bitmex_json,
    import_bitmex_parquet,
    import_freqtrade,
    import_lean_funding,
    import_lean_zip,
    import_nautilus_bars,
)
from backtester.data.importers.common import ImportedStream
from backtester.data.importers.exchange_csv import (
    import_binance_funding,
    import_binance_klines,
    import_binance_trades,
    import_generic,
    import_okx_candles,
    import_okx_funding,
    import_okx_trades,
    import_tardis_derivative_ticker,
    import_tardis_trades,
)

FORMATS: dict[str, Callable[..., list[ImportedStream]]] = {
    "freqtrade": import_freqtrade,
    "binance_aggtrades": lambda path, **kw: import_binance_trades(path, aggregated=True, **kw),
    "binance_trades": lambda path, **kw: import_binance_trades(path, aggregated=False, **kw),
    "binance_klines": import_binance_klines,
    "binance_funding": import_binance_funding,
    "binance_ws": import_binance_ws,
    "okx_trades": import_okx_trades,
    "okx_candles": import_okx_candles,
    "okx_funding": import_okx_funding,
    "bitmex_parquet": import_bitmex_parquet,
    "bitmex_json": import_bitmex_json,
    "tardis_trades": import_tardis_trades,
    "tardis_derivative_ticker": import_tardis_derivative_ticker,
    "lean_zip": import_lean_zip,
    "lean_funding": import_lean_funding,
    "nautilus_bars": import_nautilus_bars,
    "generic": import_generic,
}
"""Format name → importer."""


def read_file(path: str | Path, format: str, **options: object) -> list[ImportedStream]:
    """Run the importer of ``format`` on ``path`` (no catalog write)."""
    if not isinstance(format, str):
        raise TypeError(
            f"format: expected a format name ({', '.join(sorted(FORMATS))}), got "
            f"{type(format).__name__}; the call is import_file(path, format, exchange, symbol, "
            "catalog, **options)"
        )
    check_choice(format, "format", FORMATS)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return FORMATS[format](path, **options)


def import_file(
    path: str | Path,
    format: str,
    exchange: str,
    symbol: str,
    catalog: object,
    **options: object,
) -> list[ImportedStream]:
    """Import ``path`` with the ``format`` importer and write every non-empty stream.

    ``catalog`` is a :class:`~backtester.data.catalog.Catalog` or its root directory; options
    go to the importer. All streams of the file are read and validated before anything is
    written, and written in one catalog transaction: a stream that conflicts with stored rows
    discards the others too, so a refused file leaves the catalog untouched. Inside an outer
    ``with catalog.transaction():`` (several files) the file joins that transaction. Returns
    the imported streams.
    """
    if isinstance(catalog, str | Path):
        from backtester.data.catalog import Catalog

        catalog = Catalog(catalog)
    streams = read_file(path, format, **options)
    if not any(len(stream.records) for stream in streams):
        raise ValueError(
            f"{Path(path).name}: no data rows (every stream of the file is empty); "
            "expected at least one row"
        )
    with catalog.transaction():  # type: ignore[attr-defined]
        for stream in streams:
            if len(stream.records):
                catalog.write(  # type: ignore[attr-defined]
                    stream.kind,
                    exchange,
                    symbol,
                    stream.records,
                    source=stream.source,
                    interval_ns=stream.interval_ns,
                    metadata=stream.metadata,
                    allow_open_outside_range=stream.allow_open_outside_range,
                )
    return streams


__all__ = [
    "FORMATS",
    "ImportedStream",
    "import_binance_funding",
    "import_binance_klines",
    "import_binance_trades",
    "import_binance_ws",
    "import_bitmex_json",
    "import_bitmex_parquet",
    "import_file",
    "import_freqtrade",
    "import_generic",
    "import_lean_funding",
    "import_lean_zip",
    "import_nautilus_bars",
    "import_okx_candles",
    "import_okx_funding",
    "import_okx_trades",
    "import_tardis_derivative_ticker",
    "import_tardis_trades",
    "read_file",
]
