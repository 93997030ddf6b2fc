"""Streamed replays spill their records to Parquet row groups, one per window.

A real Parquet catalog of minute bars (index, 8-hourly funding) is written to a temporary
folder; the streamed run (``Catalog.stream_market_data`` → ``backtest``) must give exactly the
records of the run over the whole span loaded in memory, while holding only one window of them
(:mod:`backtester.engine.spill`). The spilled files are checked with pyarrow directly (valid
Parquet, one row group per window, rows inside their window), a run that fails half-way must
leave the windows it completed readable, and the Result must build its tables only on access.
"""

from __future__ import annotations

import gc
import pickle
import tempfile

import numpy as np
import pyarrow.parquet as pq
import pytest

from backtester import Strategy, backtest, dtypes
from backtester.data import Catalog
from backtester.data.loader import load_market_data
from backtester.data.stream import stream_market_data
from backtester.enums import LedgerKind
from backtester.errors import StrategyError
from backtester.results import RecordStore, record_digest, records_to_frame

MINUTE = 60_000_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_672_531_200_000_000_000  # 2023-01-01 00:00 UTC (a funding time)
EX, SYM = "binance", "BTCUSDT"
KINDS = tuple(dtypes.ALL_RECORD_DTYPES)
N_DAYS = 4


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Four days of minute bars (random walk), a minute index, 8-hourly funding."""
    cat = Catalog(tmp_path_factory.mktemp("spill_catalog"))
    n = N_DAYS * 1440
    rng = np.random.default_rng(5)
    close = np.round(20_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0012, n))), 1)
    open_ = np.r_[20_000.0, close[:-1]]
    bars = np.zeros(n, dtypes.BAR_DTYPE)
    bars["ts_ns"] = T0 + np.arange(n) * MINUTE
    bars["open"] = open_
    bars["close"] = close
    bars["high"] = np.maximum(open_, close) + 2.0
    bars["low"] = np.minimum(open_, close) - 2.0
    bars["volume_base"] = 1.0
    cat.write("bars", EX, SYM, bars, source="unit", interval_ns=MINUTE)
    index = np.zeros(n, dtypes.PRICE_DTYPE)
    index["ts_ns"] = bars["ts_ns"] + MINUTE
    index["price"] = np.round(close * 0.9996, 2)
    cat.write("index", EX, SYM, index, source="unit")
    n_funding = N_DAYS * 3 + 1
    funding = np.zeros(n_funding, dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = T0 + np.arange(n_funding) * 8 * HOUR
    funding["funding_rate"] = np.resize([1e-4, -2e-4, 3e-4], n_funding)
    funding["funding_interval_ns"] = 8 * HOUR
    cat.write("funding", EX, SYM, funding, source="unit")
    return cat


class EmaFlip(Strategy):
    """Always in: long when the fast EMA of the close is above the slow one, short below
    (many fills, a position over every funding time)."""

    fail_at_ns = 0  # > 0: raise at the first bar at or after this time

    def on_start(self, ctx):
        self.fast = self.slow = None

    def on_bar(self, ctx, bar):
        if self.fail_at_ns and bar["ts_ns"] >= self.fail_at_ns:
            raise RuntimeError("strategy failed on purpose")
        close = bar["close"]
        if self.fast is None:
            self.fast = self.slow = close
            return
        self.fast += 0.2 * (close - self.fast)
        self.slow += 0.02 * (close - self.slow)
        if self.fast > self.slow and ctx.position <= 0:
            ctx.market(0.1 - ctx.position)
        elif self.fast < self.slow and ctx.position >= 0:
            ctx.market(-0.1 - ctx.position)


def _run(data, strategy=EmaFlip, **options):
    return backtest(
        strategy, data, "binance_usdm:BTCUSDT", initial_balance=10_000.0, leverage=5.0, **options
    )


@pytest.fixture(scope="module")
def plain(catalog):
    return _run(load_market_data(catalog, EX, SYM))


def test_spilled_records_equal_the_in_memory_run_bit_for_bit(catalog, plain, tmp_path):
    stream = stream_market_data(catalog, EX, SYM, chunk_ns=5 * HOUR)
    streamed = _run(stream, records_directory=tmp_path / "records")
    assert isinstance(streamed.records, RecordStore)
    assert streamed.config["stream"]["windows"] == len(list(stream)) >= 10
    assert len(plain.records["fills"]) >= 50
    assert len(plain.records["funding_payments"]) >= 10
    for kind in KINDS:
        a, b = streamed.records[kind], plain.records[kind]
        assert a.dtype == b.dtype, kind
        assert len(a) == len(b), (kind, len(a), len(b))
        assert record_digest(a) == record_digest(b), kind
        assert a.tobytes() == b.tobytes(), kind  # padding bytes zero on both sides
    assert streamed.fingerprint() == plain.fingerprint()
    # ledger references are global row numbers: each FUNDING row names the payment it books
    ledger, payments = streamed.records["ledger"], streamed.records["funding_payments"]
    rows = ledger[ledger["kind"] == int(LedgerKind.FUNDING)]
    assert len(rows) == len(payments)
    assert rows["ref_id"].tolist() == list(range(len(payments)))
    assert rows["ts_ns"].tolist() == payments["ts_ns"][rows["ref_id"]].tolist()
    assert rows["amount_settle"].tolist() == payments["payment_settle"][rows["ref_id"]].tolist()


def test_spilled_files_are_parquet_with_a_row_group_per_window(
    catalog, plain, tmp_path, monkeypatch
):
    from backtester.engine import spill

    # every window's rows written at its end (by default small windows are gathered)
    monkeypatch.setattr(spill, "ROW_GROUP_MIN_ROWS", 1)
    folder = tmp_path / "records"
    stream = stream_market_data(catalog, EX, SYM, chunk_ns=DAY)
    result = _run(stream, records_directory=folder)
    windows = len(list(stream))
    assert windows == N_DAYS
    assert result.config["stream"]["records_directory"] == str(folder)
    assert result.config["stream"]["records_directory_temporary"] is False
    names = {p.name for p in folder.iterdir()}
    assert {f"{k}.parquet" for k in KINDS if k != "orders"} <= names
    assert {f"price-0-{s}.parquet" for s in ("last", "mark", "index")} <= names
    equity_file = pq.ParquetFile(folder / "equity.parquet")
    assert equity_file.schema_arrow.names == list(dtypes.EQUITY_DTYPE.names)
    # one row group per window, then one for the closing row written after on_stop
    assert equity_file.num_row_groups == windows + 1
    assert result.config["stream"]["row_groups"]["equity"] == windows + 1
    bounds = [T0, *stream.boundaries[1:]]
    table_rows = []
    for k in range(windows):
        ts = equity_file.read_row_group(k).column("ts_ns").to_numpy()
        assert len(ts) > 0
        # an equity row is written when its minute's events have all run: at the latest at
        # the window's last instant
        assert ts.min() >= bounds[k] - MINUTE, k
        assert ts.max() <= bounds[k + 1], k
        table_rows.append(len(ts))
    last_group = equity_file.read_row_group(windows)
    assert last_group.num_rows == 1
    assert sum(table_rows) + 1 == len(plain.records["equity"])
    # the whole file read by pyarrow alone equals the in-memory run's equity
    table = pq.read_table(folder / "equity.parquet")
    for name in dtypes.EQUITY_DTYPE.names:
        expected = plain.records["equity"][name]
        assert table.column(name).to_numpy().tobytes() == expected.tobytes(), name
    fills_file = pq.ParquetFile(folder / "fills.parquet")
    assert fills_file.num_row_groups == windows  # every window traded; none after the last
    fills = fills_file.read()
    assert fills.num_rows == len(plain.records["fills"])
    assert fills.column("fill_id").to_pylist() == list(range(fills.num_rows))
    # kinds without rows are still valid (empty) files
    assert pq.read_table(folder / "liquidations.parquet").num_rows == 0


def test_small_windows_are_gathered_into_larger_row_groups(catalog, plain, tmp_path):
    from backtester.engine.spill import RecordSpill

    folder = tmp_path / "records"
    stream = stream_market_data(catalog, EX, SYM, chunk_ns=5 * HOUR)
    result = _run(stream, records_directory=folder)
    n = len(plain.records["equity"])
    assert n < RecordSpill(tmp_path / "other").min_row_group_rows
    equity = pq.ParquetFile(folder / "equity.parquet")
    assert equity.num_row_groups == 1  # 12 windows' rows gathered, written at the end
    assert equity.metadata.num_rows == n
    assert result.records["equity"].tobytes() == plain.records["equity"].tobytes()
    with pytest.raises(ValueError, match="min_row_group_rows: expected >= 1"):
        RecordSpill(tmp_path / "x", min_row_group_rows=0)


def test_a_failed_run_leaves_the_completed_windows_readable(catalog, plain, tmp_path, monkeypatch):
    from backtester.engine import spill

    monkeypatch.setattr(spill, "ROW_GROUP_MIN_ROWS", 1)
    folder = tmp_path / "records"
    stream = stream_market_data(catalog, EX, SYM, chunk_ns=DAY)

    class Failing(EmaFlip):
        fail_at_ns = T0 + 2 * DAY + 3 * HOUR  # inside the third window

    with pytest.raises(StrategyError, match="failed on purpose"):
        _run(stream, Failing, records_directory=folder)
    equity = pq.ParquetFile(folder / "equity.parquet")
    assert equity.num_row_groups == 2  # the two completed windows
    ts = equity.read().column("ts_ns").to_numpy()
    assert ts.max() <= T0 + 2 * DAY
    expected = plain.records["equity"]
    assert ts.tolist() == expected["ts_ns"][: len(ts)].tolist()
    values = equity.read().column("equity_settle").to_numpy()
    assert values.tobytes() == expected["equity_settle"][: len(ts)].tobytes()
    fills = pq.read_table(folder / "fills.parquet")
    assert 0 < fills.num_rows < len(plain.records["fills"])
    assert fills.column("ts_ns").to_numpy().max() <= T0 + 2 * DAY
    # gathered rows waiting for a larger row group are written when the run fails
    monkeypatch.setattr(spill, "ROW_GROUP_MIN_ROWS", 16_384)
    with pytest.raises(StrategyError, match="failed on purpose"):
        _run(stream, Failing, records_directory=tmp_path / "gathered")
    gathered = pq.ParquetFile(tmp_path / "gathered" / "equity.parquet")
    assert gathered.num_row_groups == 1
    assert gathered.read().column("ts_ns").to_numpy().tolist() == ts.tolist()
    # a failed run with a temporary folder leaves nothing behind (temporary folders made
    # under tmp_path here, so other processes' folders do not interfere)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(StrategyError):
        _run(stream, Failing)
    assert list(scratch.iterdir()) == []
    result = _run(stream_market_data(catalog, EX, SYM, T0, T0 + DAY, chunk_ns=DAY))
    assert [p.name[:19] for p in scratch.iterdir()] == ["backtester-records-"]
    result.close()
    assert list(scratch.iterdir()) == []


def test_temporary_records_folder_lives_as_long_as_the_result(catalog, plain):
    from pathlib import Path

    result = _run(stream_market_data(catalog, EX, SYM, chunk_ns=DAY))
    folder = Path(result.config["stream"]["records_directory"])
    assert result.config["stream"]["records_directory_temporary"] is True
    assert (folder / "equity.parquet").is_file()
    assert len(result.records["fills"]) == len(plain.records["fills"])
    result.close()
    assert not folder.exists()
    with pytest.raises(ValueError, match="closed"):
        result.records["equity"]
    # garbage collection removes it as well
    result = _run(stream_market_data(catalog, EX, SYM, chunk_ns=DAY))
    folder = Path(result.config["stream"]["records_directory"])
    assert folder.is_dir()
    del result
    gc.collect()
    assert not folder.exists()


def test_records_directory_is_refused_where_it_cannot_apply(catalog, tmp_path):
    with pytest.raises(ValueError, match="records_directory: only a streamed replay"):
        _run(load_market_data(catalog, EX, SYM, T0, T0 + HOUR), records_directory=tmp_path)
    (tmp_path / "equity.parquet").write_bytes(b"x")
    stream = stream_market_data(catalog, EX, SYM, T0, T0 + DAY, chunk_ns=DAY)
    with pytest.raises(ValueError, match=r"records_directory: .* already holds spilled records"):
        _run(stream, records_directory=tmp_path)
    with pytest.raises(TypeError, match="records_directory: expected a folder path"):
        _run(stream, records_directory=3)


def test_result_reads_and_builds_tables_only_on_access(catalog, plain, tmp_path):
    result = _run(stream_market_data(catalog, EX, SYM, chunk_ns=DAY), records_directory=tmp_path)
    store = result.records
    # the run and its summary figures read no spilled kind whole
    assert not store.is_loaded("equity")
    assert not store.is_loaded("ledger")
    assert result.final_equity_settle == float(plain.records["equity"]["equity_settle"][-1])
    assert result.final_balance_settle == float(plain.records["ledger"]["balance_after_settle"][-1])
    text = repr(result)
    assert f"{len(plain.records['fills'])} fills" in text
    assert "2023-01-01 00:00 → 2023-01-05 00:00 UTC" in text
    assert not store.is_loaded("equity")
    assert not store.is_loaded("fills")
    assert store.count("equity") == len(plain.records["equity"])
    assert store.last_rows("equity", 3).tobytes() == plain.records["equity"][-3:].tobytes()
    assert store.first_rows("fills", 2).tobytes() == plain.records["fills"][:2].tobytes()
    # the table is built from the records on first access and cached
    equity = result.equity
    assert store.is_loaded("equity")
    assert result.equity is equity
    expected = records_to_frame(plain.records["equity"], [SYM])
    assert (
        equity["equity_settle"].to_numpy().tobytes()
        == expected["equity_settle"].to_numpy().tobytes()
    )
    assert result.ledger is result.ledger
    assert result.fills is result.fills
    store.release("equity")
    assert not store.is_loaded("equity")
    # the price series come back from the folder too, one point per equity interval (1 min)
    last = result.price_series[SYM]["last"]
    bars = load_market_data(catalog, EX, SYM).bars
    assert last["ts_ns"].tolist() == (T0 + (np.arange(N_DAYS * 1440) + 1) * MINUTE).tolist()
    assert last["price"].tolist() == bars["close"].tolist()
    # a pickled Result carries its records (not the folder) and no cached tables
    clone = pickle.loads(pickle.dumps(result))
    assert isinstance(clone.records, dict)
    assert clone.fingerprint() == plain.fingerprint()
    assert clone._frames == {}


def test_in_memory_result_tables_are_cached_and_unchanged(plain):
    fills = plain.fills
    assert plain.fills is fills
    assert fills["price"].tolist() == plain.records["fills"]["price"].tolist()
    ledger = plain.ledger
    assert plain.ledger is ledger
    assert "funding_source" in ledger.columns
    # frame("ledger") is the plain record table, without the label column
    assert "funding_source" not in plain.frame("ledger").columns
    state = pickle.loads(pickle.dumps(plain))
    assert state._frames == {}
    assert state.fingerprint() == plain.fingerprint()


def test_metrics_of_a_spilled_result_equal_the_in_memory_run(catalog, plain, tmp_path):
    from backtester.report.metrics import summary_metrics

    streamed = _run(stream_market_data(catalog, EX, SYM, chunk_ns=DAY), records_directory=tmp_path)
    expected = summary_metrics(plain)
    got = summary_metrics(streamed)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == value or (value != value and got[key] != got[key]), key
    assert streamed.stats.equals(plain.stats)


def test_weekly_clawback_reads_ledger_rows_of_earlier_windows(tmp_path):
    """The OKEx weekly clawback (Friday 08:00 UTC) takes a share of the account's net profit
    of the whole week from the ledger: with 6-hour windows, the fills and the liquidation of
    Monday and Tuesday must still be in memory on Friday, though their windows were spilled
    long before. The streamed run must claw back exactly what the in-memory run does."""
    from tests.unit.engine.test_engine_insurance_fund import (
        CONTRACT as OKEX_2019,
    )
    from tests.unit.engine.test_engine_insurance_fund import (
        DAY0,
        LEV,
        BuyEach,
        scenario,
    )

    cat = Catalog(tmp_path / "catalog")
    symbols = []
    for d in scenario():
        cat.write("bars", "okex", d.symbol, d.bars, source="unit", interval_ns=HOUR)
        cat.write("mark", "okex", d.symbol, d.mark, source="unit")
        symbols.append(d.symbol)
    options = {
        "initial_balance": 1.0,
        "leverage": LEV,
        "mark_price_method": "historical",
        "insurance_fund_settle": 0.001,
    }
    loaded = [load_market_data(cat, "okex", symbol) for symbol in symbols]
    plain = backtest(BuyEach, loaded, [OKEX_2019] * 2, **options)
    stream = stream_market_data(cat, "okex", symbols, chunk_ns=6 * HOUR)
    streamed = backtest(BuyEach, stream, [OKEX_2019] * 2, **options)
    assert streamed.config["stream"]["windows"] >= 15
    clawbacks = plain.records["adl"]
    assert len(clawbacks) == 1
    assert clawbacks["ts_ns"][0] == DAY0 + (4 * 24 + 8) * HOUR  # Friday 08:00 UTC
    assert clawbacks["amount_settle"][0] > 0
    for kind in KINDS:
        assert record_digest(streamed.records[kind]) == record_digest(plain.records[kind]), kind
