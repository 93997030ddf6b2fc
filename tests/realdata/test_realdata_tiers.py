"""The stored Binance bracket snapshots and the OKX tier extract, read by our loaders."""

from __future__ import annotations

import numpy as np
import pytest

from backtester.data.importers.tiers import (
    load_binance_snapshot,
    load_binance_snapshots,
    load_okx_tier_csv,
)
from backtester.enums import TierBasis
from backtester.swap.tier_tables import binance_btcusdt_schedule, okx_btc_usdt_swap_2026_table
from backtester.swap.tiers import to_ns

pytestmark = pytest.mark.realdata

BINANCE_DIR = ("data", "freqtrade_binance_leverage_tiers")
OKX_CSV = ("data", "VanJames_freqtrade_okx_tiers", "leverage_tiers_USDT.BTC-USDT-SWAP.extract.csv")
FIELDS = ("min_size", "max_size", "maintenance_margin_rate", "max_leverage",
          "maintenance_amount_settle")  # fmt: skip


def test_five_binance_versions_with_bracket_counts(shared) -> None:
    schedule = load_binance_snapshots(shared.path(*BINANCE_DIR), "BTC/USDT:USDT")
    assert len(schedule) == 5
    dates = ["2022-05-21", "2022-11-25", "2024-05-30", "2025-08-21", "2026-05-07"]
    assert [t.valid_from_ns for t in schedule.tables] == [to_ns(d) for d in dates]
    assert [len(t) for t in schedule.tables] == [10, 10, 12, 12, 12]
    assert schedule.basis == TierBasis.NOTIONAL_QUOTE
    # 2024-05-30 tier 3: 600k-3M, 0.65 %, cum 950, 75x
    tier3 = schedule.at("2024-06-01").rows[2]
    assert (tier3["min_size"], tier3["max_size"]) == (600_000, 3_000_000)
    assert (tier3["maintenance_margin_rate"], tier3["maintenance_amount_settle"]) == (0.0065, 950)
    assert tier3["max_leverage"] == 75
    # 2025-08-21: tier 1 0-300k, 150x; the 2026 snapshot is unchanged
    assert (schedule.at("2025-09-01").rows[0]["max_size"], schedule.tables[3].max_leverage) == (
        300_000,
        150,
    )
    for name in FIELDS:
        assert np.array_equal(schedule.tables[3].rows[name], schedule.tables[4].rows[name])
    # 2022-11-25 differs from 2022-05-21 only in the 25x / 15x tiers
    assert schedule.tables[1].rows["max_leverage"].tolist()[2:4] == [25, 15]


def test_snapshots_agree_with_the_builtin_brackets(shared) -> None:
    """The built-in literal tables (cum by formula) equal the snapshots' brackets and cum."""
    directory = shared.path(*BINANCE_DIR)
    builtin = binance_btcusdt_schedule()
    for folder in sorted(directory.iterdir())[:4]:
        snapshot = load_binance_snapshot(folder / "binance_leverage_tiers.json.gz", "BTCUSDT")
        ours = builtin.at(snapshot.valid_from_ns)
        assert ours.valid_from_ns == snapshot.valid_from_ns
        for name in FIELDS:
            theirs = snapshot.rows[name].copy()
            if name == "max_size":  # 2022-05-21 caps the last tier at 2**63 - 1; ours is inf
                theirs[theirs > 1e18] = np.inf
            assert ours.rows[name].tolist() == theirs.tolist(), (folder.name, name)


def test_old_snapshot_key_and_unknown_symbol(shared) -> None:
    path = shared.path(*BINANCE_DIR, "2022-05-21_fb8f2c4c54", "binance_leverage_tiers.json.gz")
    table = load_binance_snapshot(path, "BTC/USDT:USDT")  # stored as "BTC/USDT" then
    assert "[BTC/USDT]" in table.source
    assert len(table) == 10
    with pytest.raises(ValueError, match="symbol 'BTC/USDX' not found; did you mean"):
        load_binance_snapshot(path, "BTC/USDX")


def test_okx_csv_matches_the_published_rule(shared) -> None:
    table = load_okx_tier_csv(shared.path(*OKX_CSV), valid_from="2026-05-12T06:55Z")
    assert table.basis == TierBasis.CONTRACTS
    assert len(table) == 99
    last = table.rows[-1]
    assert (last["tier"], last["max_size"], last["maintenance_margin_rate"]) == (
        99,
        1_940_000,
        0.4875,
    )
    assert (last["initial_margin_rate"], last["max_leverage"]) == (0.5, 2.0)
    first = table.rows[0]
    assert (first["max_size"], first["maintenance_margin_rate"], first["max_leverage"]) == (
        1_000,
        0.004,
        100,
    )
    builtin = okx_btc_usdt_swap_2026_table()
    for name in ("tier", "min_size", "max_size", "maintenance_margin_rate",
                 "initial_margin_rate", "max_leverage"):  # fmt: skip
        assert builtin.rows[name].tolist() == table.rows[name].tolist(), name
