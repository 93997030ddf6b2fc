"""Catalog: round trip, range reads, chunked streaming, merge / resume, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from backtester import dtypes
from backtester.data import Catalog, interval_label, parse_interval
from backtester.data import catalog as catalog_module
from backtester.data.loader import load_market_data

MINUTE = 60_000_000_000
T0 = 1_672_531_200_000_000_000  # 2023-01-01 00:00 UTC


def make_bars(n: int, start: int = T0, step: int = MINUTE) -> np.ndarray:
    bars = np.zeros(n, dtype=dtypes.BAR_DTYPE)
    bars["ts_ns"] = start + np.arange(n, dtype=np.int64) * step
    mid = 20_000.0 + np.arange(n) % 97
    bars["open"] = mid
    bars["high"] = mid + 5
    bars["low"] = mid - 5
    bars["close"] = mid + 1
    bars["volume_base"] = 1.5
    return bars


def make_trades(ts: list[int], price: float = 100.0) -> np.ndarray:
    trades = np.zeros(len(ts), dtype=dtypes.TRADE_DTYPE)
    trades["ts_ns"] = ts
    trades["price"] = price + np.arange(len(ts))
    trades["qty_base"] = 0.5
    trades["side"] = 1
    return trades


def tree_digest(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


def assert_records_equal(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert len(a) == len(b)
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_interval_labels_round_trip() -> None:
    for ns, label in [
        (MINUTE, "1m"),
        (15 * MINUTE, "15m"),
        (60 * MINUTE, "1h"),
        (480 * MINUTE, "8h"),
        (1440 * MINUTE, "1d"),
        (1_000_000_000, "1s"),
        (1_500_000, "1500000ns"),
    ]:
        assert interval_label(ns) == label
        assert parse_interval(label) == ns


def test_round_trip_partitions_by_month(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars(70_000)  # 2023-01-01 .. 2023-02-18: two months, > one row group
    paths = cat.write("bars", "okx", "BTC-USD-SWAP", bars, source="unit", interval_ns=MINUTE)
    assert [p.name for p in paths] == ["2023-01.parquet", "2023-02.parquet"]
    assert paths[0].parent == tmp_path / "okx" / "BTC-USD-SWAP" / "bars-1m"
    back = cat.read("bars", "okx", "BTC-USD-SWAP", interval_ns=MINUTE)
    assert_records_equal(back, bars)
    meta = cat.metadata("bars", "okx", "BTC-USD-SWAP", MINUTE)
    assert meta["source"] == "unit"
    assert meta["interval_ns"] == str(MINUTE)
    assert "volume_base=base" in meta["units"]
    frame = cat.datasets()
    assert frame.loc[0, "rows"] == 70_000
    assert frame.loc[0, "interval"] == "1m"
    assert frame.loc[0, "start_ns"] == T0
    assert frame.loc[0, "end_ns"] == T0 + 69_999 * MINUTE
    assert frame.loc[0, "files"] == 2


def test_symbol_with_slash_is_quoted(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.write("bars", "binance", "BTC/USDT:USDT", make_bars(3), source="u", interval_ns=MINUTE)
    assert (tmp_path / "binance" / "BTC%2FUSDT%3AUSDT" / "bars-1m" / "2023-01.parquet").exists()
    assert cat.datasets().loc[0, "symbol"] == "BTC/USDT:USDT"


def test_range_read_is_start_inclusive_end_exclusive(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars(70_000)
    cat.write("bars", "x", "S", bars, source="u", interval_ns=MINUTE)
    start, end = int(bars["ts_ns"][44_000]), int(bars["ts_ns"][45_500])
    got = cat.read("bars", "x", "S", start, end, interval_ns=MINUTE)
    assert_records_equal(got, bars[44_000:45_500])
    assert len(cat.read("bars", "x", "S", end_ns=T0, interval_ns=MINUTE)) == 0
    assert len(cat.read("bars", "x", "S", start_ns=T0 + 10**17, interval_ns=MINUTE)) == 0


def test_iter_chunks_streams_exact_chunks(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars(70_000)
    cat.write("bars", "x", "S", bars, source="u", interval_ns=MINUTE)
    chunks = list(
        cat.iter_chunks("bars", "x", "S", int(bars["ts_ns"][5]), None, MINUTE, chunk_rows=30_000)
    )
    assert [len(c) for c in chunks] == [30_000, 30_000, 9_995]
    assert_records_equal(np.concatenate(chunks), bars[5:])
    with pytest.raises(ValueError, match="chunk_rows: expected a value > 0, got 0"):
        next(cat.iter_chunks("bars", "x", "S", interval_ns=MINUTE, chunk_rows=0))


def test_missing_stream_lists_available(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.write("bars", "x", "S", make_bars(3), source="u", interval_ns=MINUTE)
    with pytest.raises(FileNotFoundError, match=r"no stream 'funding' for x:S; available: bars-1m"):
        cat.read("funding", "x", "S")
    assert cat.last_ts_ns("funding", "x", "S") is None


def test_merge_resume_and_identical_reimport(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars(1_000)
    cat.write("bars", "x", "S", bars[:600], source="first", interval_ns=MINUTE)
    last = cat.last_ts_ns("bars", "x", "S", MINUTE)
    assert last == int(bars["ts_ns"][599])
    # resume from the last stored bar (inclusive): the overlapping row is identical → merged
    resume = bars[bars["ts_ns"] >= last]
    cat.write("bars", "x", "S", resume, source="second", interval_ns=MINUTE)
    assert_records_equal(cat.read("bars", "x", "S", interval_ns=MINUTE), bars)
    assert cat.metadata("bars", "x", "S", MINUTE)["source"] == "first | second"
    # an identical full re-import changes nothing
    before = tree_digest(tmp_path)
    cat.write("bars", "x", "S", bars, source="second", interval_ns=MINUTE)
    assert_records_equal(cat.read("bars", "x", "S", interval_ns=MINUTE), bars)
    assert set(before) == set(tree_digest(tmp_path))


def test_conflicting_duplicate_refused_catalog_untouched(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars(100)
    cat.write("bars", "x", "S", bars, source="u", interval_ns=MINUTE)
    before = tree_digest(tmp_path)
    changed = bars[10:12].copy()
    changed["close"][1] += 0.5
    with pytest.raises(
        ValueError,
        match=r"conflicting rows for ts_ns 1672531860000000000 "
        r"\(2023-01-01 00:11:00\+00:00\): stored .*close=20012.0.* vs new .*"
        r"close=20012.5",
    ):
        cat.write("bars", "x", "S", changed, source="u", interval_ns=MINUTE)
    assert tree_digest(tmp_path) == before


def test_trades_merge_allows_shared_timestamps_and_prefix_resume(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    ts = [T0, T0, T0 + 5, T0 + 9, T0 + 9, T0 + 9, T0 + 12]
    trades = make_trades(ts)
    # first download stopped in the middle of the T0+9 millisecond
    cat.write("trades", "x", "S", trades[:4], source="a")
    assert cat.last_ts_ns("trades", "x", "S") == T0 + 9
    cat.write("trades", "x", "S", trades[3:], source="b")
    assert_records_equal(cat.read("trades", "x", "S"), trades)
    wrong = trades[3:].copy()
    wrong["price"][0] = 1.0
    before = tree_digest(tmp_path)
    with pytest.raises(ValueError, match="stored and new trades differ where they overlap"):
        cat.write("trades", "x", "S", wrong, source="c")
    assert tree_digest(tmp_path) == before


def test_trades_are_partitioned_by_day(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    day = 86_400_000_000_000
    trades = make_trades([T0 + 5, T0 + day - 1, T0 + day, T0 + 40 * day])
    paths = cat.write("trades", "x", "S", trades, source="u")
    assert [p.name for p in paths] == [
        "2023-01-01.parquet",
        "2023-01-02.parquet",
        "2023-02-10.parquet",
    ]
    got = cat.read("trades", "x", "S", T0 + day - 1, T0 + 40 * day)
    np.testing.assert_array_equal(got["ts_ns"], [T0 + day - 1, T0 + day])
    assert cat.datasets().loc[0, "files"] == 3


def data_files(root: Path) -> dict[str, bytes]:
    """The catalog tree without its bookkeeping directory (.catalog: lock and staging)."""
    return {k: v for k, v in tree_digest(root).items() if not k.startswith(".catalog")}


def test_failure_before_commit_point_keeps_old_files_and_no_staging(
    tmp_path: Path, monkeypatch
) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars(100)
    cat.write("bars", "x", "S", bars[:50], source="u", interval_ns=MINUTE)
    before = tree_digest(tmp_path)
    journals = []
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst).name == "COMMIT":  # the commit point itself fails
            journals.append(Path(src).read_text())
            raise OSError("disk vanished")
        real_replace(src, dst)

    monkeypatch.setattr(catalog_module._txn.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk vanished"):
        cat.write("bars", "x", "S", bars[50:], source="u", interval_ns=MINUTE)
    monkeypatch.undo()
    assert journals == ['["x/S/bars-1m/2023-01.parquet"]']
    assert tree_digest(tmp_path) == before  # staging directory removed, data untouched
    assert list((tmp_path / ".catalog" / "txn").iterdir()) == []
    assert_records_equal(cat.read("bars", "x", "S", interval_ns=MINUTE), bars[:50])


def test_failure_after_commit_point_is_completed_by_the_next_reader(
    tmp_path: Path, monkeypatch
) -> None:
    cat = Catalog(tmp_path)
    day = 86_400_000_000_000
    bars = make_bars(3, step=40 * day)  # three months: three files in one transaction
    moved = []
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst).suffix == ".parquet" and moved:
            raise OSError("killed while moving")  # the second file's move fails
        if Path(dst).suffix == ".parquet":
            moved.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(catalog_module._txn.os, "replace", failing_replace)
    with pytest.raises(OSError, match="killed while moving"):
        cat.write("bars", "x", "S", bars, source="u", interval_ns=MINUTE)
    monkeypatch.undo()
    assert moved == ["2023-01.parquet"]
    assert len(list((tmp_path / "x" / "S" / "bars-1m").glob("*.parquet"))) == 1  # half applied
    # a new Catalog object (as another process would) rolls the committed transaction forward
    with pytest.warns(
        catalog_module.CatalogRecoveryWarning,
        match=r"had committed: completed \(2 of 3 files moved into place now\)",
    ):
        got = Catalog(tmp_path).read("bars", "x", "S", interval_ns=MINUTE)
    assert_records_equal(got, bars)
    assert list((tmp_path / ".catalog" / "txn").iterdir()) == []


def test_failed_first_write_leaves_no_directories(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "cat")
    (tmp_path / "cat").mkdir()
    bars = make_bars(5)

    def failing_block() -> None:
        with cat.transaction():
            cat.write("bars", "x", "S", bars, source="u", interval_ns=MINUTE)
            raise ValueError("boom")  # the block fails after a write: the write is discarded

    with pytest.raises(ValueError, match="boom"):
        failing_block()
    assert data_files(tmp_path / "cat") == {}
    assert not cat.exists("bars", "x", "S", MINUTE)


def test_transaction_groups_streams_and_a_conflict_discards_all(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars(10)
    cat.write("bars", "x", "S", bars[:5], source="u", interval_ns=MINUTE)
    before = tree_digest(tmp_path)
    trades = make_trades([T0, T0 + 1])
    changed = bars[4:].copy()
    changed["close"][0] += 1.0  # conflicts with the stored row 4

    def two_writes() -> None:
        with cat.transaction():
            cat.write("trades", "x", "S", trades, source="u")  # staged, then discarded
            cat.write("bars", "x", "S", changed, source="u", interval_ns=MINUTE)

    with pytest.raises(ValueError, match="conflicting rows"):
        two_writes()
    assert tree_digest(tmp_path) == before
    with cat.transaction():
        cat.write("trades", "x", "S", trades, source="u")
        cat.write("bars", "x", "S", bars[5:], source="u", interval_ns=MINUTE)
        cat.write("bars", "x", "S", bars[7:], source="u", interval_ns=MINUTE)  # sees the staged
    assert_records_equal(cat.read("bars", "x", "S", interval_ns=MINUTE), bars)
    assert_records_equal(cat.read("trades", "x", "S"), trades)


def test_uncommitted_staging_of_a_dead_writer_is_rolled_back_and_legacy_tmp_removed(
    tmp_path: Path,
) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars(10)
    cat.write("bars", "x", "S", bars, source="u", interval_ns=MINUTE)
    target = tmp_path / "x" / "S" / "bars-1m"
    stale = tmp_path / ".catalog" / "txn" / "999999-deadbeef0000"
    (stale / "files" / "x" / "S" / "bars-1m").mkdir(parents=True)
    (stale / "files" / "x" / "S" / "bars-1m" / "2023-01.parquet").write_bytes(b"garbage")
    legacy = target / ".2023-01.parquet.tmp-4242-0123abcd"
    legacy.write_bytes(b"half")
    with pytest.warns(
        catalog_module.CatalogRecoveryWarning,
        match="999999-deadbeef0000 had not committed: rolled back",
    ):
        got = Catalog(tmp_path).read("bars", "x", "S", interval_ns=MINUTE)
    assert_records_equal(got, bars)
    assert not stale.exists()
    with pytest.warns(catalog_module.CatalogRecoveryWarning, match="removed 1 temporary file"):
        cat.write("bars", "x", "S", bars[-1:], source="u", interval_ns=MINUTE)  # a write cleans
    assert not legacy.exists()


def test_load_market_data_replays_mark_bars_as_paths(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    hour = 60 * MINUTE
    bars = make_bars(48, step=hour)
    mark = make_bars(48, step=hour)
    mark["close"] += 0.25
    funding = np.zeros(6, dtype=dtypes.FUNDING_RATE_DTYPE)
    funding["ts_ns"] = T0 + np.arange(6) * 8 * hour
    funding["funding_rate"] = [1e-4, -2e-4, 3e-4, 1e-4, 0.0, 5e-5]
    funding["funding_interval_ns"] = 8 * hour
    cat.write("bars", "x", "S", bars, source="u", interval_ns=hour)
    cat.write("mark_bars", "x", "S", mark, source="u", interval_ns=hour)
    cat.write("funding", "x", "S", funding, source="u")
    md = load_market_data(cat, "x", "S", start_ns=T0 + 2 * hour, end_ns=T0 + 10 * hour)
    assert md.bar_interval_ns == hour
    np.testing.assert_array_equal(md.bars["ts_ns"], bars["ts_ns"][2:10])
    # each mark candle [t0, t0 + 1h) is its path: open at t0 + 1 ns, high at t0 + 20 min, low
    # at t0 + 40 min, close at t0 + 1h; the points inside [2h, 10h) are the close of the candle
    # opening at 1h, then candles 2h..9h, without the 9h candle's close (at 10h)
    expected = [(T0 + 2 * hour, mark["close"][1])]
    for k in range(2, 10):
        t0 = T0 + k * hour
        expected += [
            (t0 + 1, mark["open"][k]),
            (t0 + 20 * MINUTE, mark["high"][k]),
            (t0 + 40 * MINUTE, mark["low"][k]),
        ]
        if k < 9:
            expected.append((t0 + hour, mark["close"][k]))
    assert md.mark["ts_ns"].tolist() == [e[0] for e in expected]
    np.testing.assert_array_equal(md.mark["price"], [e[1] for e in expected])
    assert md.mark_interval_ns == hour
    assert md.index_interval_ns == 0
    np.testing.assert_array_equal(md.funding["funding_rate"], [-2e-4])
    assert len(md.index) == 0
    assert cat.exists("bars", "x", "S")  # any interval
    assert cat.exists("bars", "x", "S", hour)
    assert not cat.exists("bars", "x", "S", MINUTE)
    assert not cat.exists("index_bars", "x", "S")
    assert set(md.sources) == {"bars", "mark", "funding"}
    cat.write("bars", "x", "S", make_bars(3, step=MINUTE), source="u", interval_ns=MINUTE)
    with pytest.raises(ValueError, match=r"bars at several intervals \(1m, 1h\)"):
        load_market_data(cat, "x", "S")
    assert len(load_market_data(cat, "x", "S", bar_interval_ns=MINUTE).bars) == 3


def test_write_and_read_tiers(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    rows = np.zeros(2, dtype=dtypes.TIER_DTYPE)
    rows["tier"] = [1, 2]
    rows["min_size"] = [0, 50_000]
    rows["max_size"] = [50_000, 250_000]
    rows["maintenance_margin_rate"] = [0.004, 0.005]
    rows["maintenance_amount_settle"] = [0.0, 50.0]
    path = cat.write_tiers("binance", "BTCUSDT", rows, 1, T0, "snapshot")
    assert path.name == "20230101T000000.parquet"
    [(valid, basis, back, source)] = cat.read_tiers("binance", "BTCUSDT")
    assert (valid, basis, source) == (T0, 1, "snapshot")
    assert_records_equal(back, rows)
    other = rows.copy()
    other["maintenance_margin_rate"][0] = 0.01
    with pytest.raises(ValueError, match=r"kind: unknown stream kind 'tiers'.*write_tiers"):
        cat.write("tiers", "binance", "BTCUSDT", rows, source="s")
    with pytest.raises(ValueError, match="a different tier table valid from 20230101T000000"):
        cat.write_tiers("binance", "BTCUSDT", other, 1, T0, "snapshot")
