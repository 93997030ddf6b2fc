"""Built-in tier tables of the built-in contracts, each a small literal table with its source.

Only published rules and tables quoted in ``shared/reference/MECHANICS.md`` §4.3 live here; the
exchange snapshots themselves stay in the shared data folder and are read by the loaders of
:mod:`backtester.data.importers.tiers`. Tables exchanges published as a rule (the OKX 2019 step
schedule, BitMEX risk limits) are generated from that rule. Binance maintenance amounts ("cum")
are not copied: they are computed with the bracket formula
(:func:`~backtester.swap.tiers.maintenance_amounts`), and the tests check them against the
published values.
"""

from __future__ import annotations

import math

from backtester.enums import TierBasis
from backtester.swap.tiers import TierSchedule, TierTable, maintenance_amounts

__all__ = [
    "BINANCE_BTCUSDT_BRACKETS",
    "BINANCE_COINM_BTCUSD_BRACKETS",
    "OKX_TIERS_2019_SOURCE",
    "binance_bracket_table",
    "binance_btcusd_perp_schedule",
    "binance_btcusdt_schedule",
    "bitmex_risk_limits",
    "bitmex_xbtusd_schedule",
    "okx_btc_usd_swap_2019",
    "okx_btc_usd_swap_2019_09",
    "okx_btc_usd_swap_2020_table",
    "okx_btc_usd_swap_2022_table",
    "okx_btc_usd_swap_schedule",
    "okx_btc_usdt_swap_2026_table",
    "okx_coinm_2019_schedule",
]

_INF = math.inf
_FT = "freqtrade/freqtrade freqtrade/exchange/binance_leverage_tiers.json @{} (Binance /fapi/v1/leverageBracket via ccxt), quoted in MECHANICS.md §4.3"  # noqa: E501

_UNIT = {"k": 1_000, "M": 1_000_000}


def _brackets(caps: str, mmrs: str, max_leverages: str) -> list[tuple[float, float, float, float]]:
    """Return Binance brackets ``(floor, cap, MMR, max leverage)`` from three columns.

    One word per bracket in each column, in the order of the published table. A bracket's
    floor is the previous bracket's cap (0 for the first: the tables have no gaps); a cap is
    an integer with an optional unit ``k`` (10³) or ``M`` (10⁶), or ``inf`` (no cap).
    """
    cap_values = [
        math.inf if w == "inf" else int(w.rstrip("kM")) * _UNIT.get(w[-1], 1) for w in caps.split()
    ]
    floors = [0, *cap_values[:-1]]
    return list(
        zip(
            floors,
            cap_values,
            [float(w) for w in mmrs.split()],
            [int(w) for w in max_leverages.split()],
            strict=True,
        )
    )


_MMR_2021 = "0.004 0.005 0.01 0.025 0.05 0.10 0.125 0.15 0.25 0.50"
_MMR_2024 = "0.004 0.005 0.0065 0.01 0.02 0.025 0.05 0.10 0.125 0.15 0.25 0.50"

# (valid_from, source, [(floor, cap, MMR, max leverage), ...]) — caps exclusive, floors inclusive.
BINANCE_BTCUSDT_BRACKETS: list[tuple[str, str, list[tuple[float, float, float, float]]]] = [
    (
        "2019-09-13",
        "Binance-docs-copy (Binance Futures guide 2019-2020, bradkyle/Qenv logic/binance.md "
        "@bf999d43) and MECHANICS.md §4.3 '2020 FAQ table': levels 1-5 only (to 10M USDT); "
        "the higher levels are not in the stored sources, larger positions use level 5. "
        "Valid from the BTCUSDT perpetual launch (2019-09-13).",
        _brackets("50k 250k 1M 5M 10M", "0.004 0.005 0.01 0.025 0.05", "125 100 50 20 10"),
    ),
    (
        "2021-03-18T09:00Z",
        "Binance announcement 'Updates to Leverage and Margin Tiers of Binance Futures "
        "Contracts (2021-03-18)', https://www.binance.com/en/support/announcement/"
        "86cf9aa472574b8cb2e05bb751c2a9a6 (effective 2021-03-18 09:00 UTC); cum by the "
        "bracket formula",
        _brackets(
            "50k 250k 1M 10M 20M 50M 100M 200M 300M 500M", _MMR_2021, "125 100 50 20 10 5 4 3 2 1"
        ),
    ),
    (
        "2022-05-21",
        _FT.format("fb8f2c4c"),
        _brackets(
            "50k 250k 1M 10M 20M 50M 100M 200M 300M inf", _MMR_2021, "125 100 50 20 10 5 4 3 2 1"
        ),
    ),
    (
        "2022-11-25",
        _FT.format("d07562c2"),
        _brackets(
            "50k 250k 1M 10M 20M 50M 100M 200M 300M 500M", _MMR_2021, "125 100 25 15 10 5 4 3 2 1"
        ),
    ),
    (
        "2024-05-30",
        _FT.format("f23248a5"),
        _brackets(
            "50k 600k 3M 12M 70M 100M 230M 480M 600M 800M 1200M 1800M",
            _MMR_2024,
            "125 100 75 50 25 20 10 5 4 3 2 1",
        ),
    ),
    (
        "2025-08-21",
        _FT.format("098e60db") + "; unchanged in the 2026-05-07 snapshot (@dc4384de)",
        _brackets(
            "300k 800k 3M 12M 70M 100M 230M 480M 600M 800M 1200M 1800M",
            _MMR_2024,
            "150 100 75 50 25 20 10 5 4 3 2 1",
        ),
    ),
]

# COIN-M BTCUSD perpetual, brackets in BTC. Floors/caps and leverages from the "Leverage and
# Margin in Coin-Margined Futures Contracts" FAQ (binance.com/en/support/faq/
# be2c7d9d95b04a7e8044ed02dd7dfe5c: the 2020 version "125x max 10 BTC, 100x 20, 50x 30, 20x 50,
# 10x 100, 5x 200, 4x 400", the later en-NG version "125x max 5, 100x 10, 50x 20, 20x 50 …").
# MMRs 0.4/0.5/1/2.5/5/10/12.5 % are those that reproduce every published cum: level 5
# 0.56 → 1.81 BTC and 300 BTC → 11.81 BTC (2021 page), 300 BTC → 11.605 BTC (newer page).
# Levels above 400 BTC are not in the stored sources; larger positions use the 4x level.
_MMR_COINM = "0.004 0.005 0.01 0.025 0.05 0.10 0.125"
_LEVERAGE_COINM = "125 100 50 20 10 5 4"
BINANCE_COINM_BTCUSD_BRACKETS: list[tuple[str, str, list[tuple[float, float, float, float]]]] = [
    (
        "2020-08-10",
        "Binance-liq-COINM 2021 page (https://www.binance.com/en/support/faq/"
        "ceccfcfb4e3a45e3b48b0b1bb1a8ae46: level 5 cum 0.56 -> 1.81 BTC, 300 BTC cum 11.81) with "
        "the 2020 leverage FAQ brackets (be2c7d9d95b04a7e8044ed02dd7dfe5c); levels 1-7 only; "
        "valid from the BTCUSD perpetual launch (2020-08-10)",
        _brackets("10 20 30 50 100 200 400", _MMR_COINM, _LEVERAGE_COINM),
    ),
    (
        "2021-03-18T09:00Z",
        "Binance-liq-COINM newer page (es-MX/ko variants: 300 BTC -> 12.5 %, cum 11.605 BTC) "
        "with the en-NG leverage FAQ brackets (be2c7d9d95b04a7e8044ed02dd7dfe5c); levels 1-7 "
        "only. Switch date approximate: on 2021-03-18 Binance announced it had started updating "
        "COIN-M maintenance margins (announcement 86cf9aa472574b8cb2e05bb751c2a9a6)",
        _brackets("5 10 20 50 100 200 400", _MMR_COINM, _LEVERAGE_COINM),
    ),
]


def okx_btc_usd_swap_2019_09() -> TierTable:
    """OKX BTC-USD-SWAP tier rule of 18 Sept 2019, in contracts.

    Formula
    -------
    Tier k (1-based): ``max = 2,000 + (k − 1)·10,000`` (tier 1: 0–2,000, then
    ``min = previous max + 1``), ``MMR = 0.5 % + (k − 1)·0.5 %``, ``IMR = 1.0 % + (k − 1)·0.5 %``,
    ``max leverage = 1 / IMR``; the last tier has MMR 50 % (tier 100).

    Source
    ------
    https://okx.com/en-au/help/adjustment-of-perpetual-swap-tiered-maintenance-margin-ratio-schedule-9-11-2019
    (BTC from 08:00 CEST 18 Sept 2019; "Tier 3: 2000+2*10000=22000", "0.5%+2*0.5%=1.5%",
    "1 / 2.0%=50.00"). Tier-1 maximum 2,000 matches [okx_partial_liq_example].
    """
    records = []
    for k in range(1, 101):
        high = 2_000 + (k - 1) * 10_000
        low = 0 if k == 1 else 2_000 + (k - 2) * 10_000 + 1
        mmr = round(0.005 + (k - 1) * 0.005, 10)
        imr = round(0.01 + (k - 1) * 0.005, 10)
        records.append((k, low, high, mmr, imr, 1.0 / imr))
    return TierTable.from_records(
        TierBasis.CONTRACTS,
        records,
        "2019-09-18T06:00Z",
        "OKX tier rule of 11 Sept 2019: https://okx.com/en-au/help/"
        "adjustment-of-perpetual-swap-tiered-maintenance-margin-ratio-schedule-9-11-2019",
    )


def binance_bracket_table(
    brackets: list[tuple[float, float, float, float]],
    basis: TierBasis,
    valid_from: int | str,
    source: str,
) -> TierTable:
    """TierTable from Binance brackets ``(floor, cap, MMR, max leverage)``; cum by formula.

    Formula
    -------
    ``cum_n = floor_n·(MMR_n − MMR_{n−1}) + cum_{n−1}``; IMR = 1 / max leverage.

    Source
    ------
    Binance-liq-USDM (maintenance amount), https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93
    """
    cums = maintenance_amounts([b[0] for b in brackets], [b[2] for b in brackets])
    rows = (
        (k + 1, low, high, mmr, None, lev, cum)
        for k, ((low, high, mmr, lev), cum) in enumerate(zip(brackets, cums, strict=True))
    )
    return TierTable.from_records(basis, rows, valid_from, source)


def binance_btcusdt_schedule() -> TierSchedule:
    """Binance USDⓈ-M BTCUSDT brackets, 2019-09-13 … 2025-08-21 (MECHANICS.md §4.3).

    Cases
    -----
    binance_mmr_264k, binance_cum_500k, binance_btcusdt_tier_2022, binance_btcusdt_tier_2025
    """
    return TierSchedule(
        tuple(
            binance_bracket_table(b, TierBasis.NOTIONAL_QUOTE, start, src)
            for start, src, b in BINANCE_BTCUSDT_BRACKETS
        )
    )


def binance_btcusd_perp_schedule() -> TierSchedule:
    """Binance COIN-M BTCUSD_PERP brackets in BTC, two eras (see the module constants).

    Cases
    -----
    binance_coinm_300btc, binance_coinm_cum_level5
    """
    return TierSchedule(
        tuple(
            binance_bracket_table(b, TierBasis.NOTIONAL_COIN, start, src)
            for start, src, b in BINANCE_COINM_BTCUSD_BRACKETS
        )
    )


def okx_coinm_2019_schedule() -> TierSchedule:
    """OKX BTC-USD-SWAP 2019 tiers: 31 May 2019 table, then the 18 Sept 2019 step rule."""
    return TierSchedule((okx_btc_usd_swap_2019(), okx_btc_usd_swap_2019_09()))


def okx_btc_usd_swap_2020_table(valid_from: int | str = 0) -> TierTable:
    """OKX BTC-USD-SWAP tiers from the 2020 galoy snapshot.

    Tiers [0, 999] 0.5 %, [1000, 9999] 1 %, [10000, 24999] 1.5 %, [25000, 49999] 2 %, in
    contracts. The snapshot has no initial margin rate; IMR = MMR + 0.5 % (the OKX 2019 rule's
    basic IMR offset) is an assumption. Larger positions use tier 4. ``valid_from``: 0 on its
    own; :func:`okx_btc_usd_swap_schedule` dates it.
    """
    mmrs = (0.005, 0.01, 0.015, 0.02)
    bounds = ((0, 999), (1_000, 9_999), (10_000, 24_999), (25_000, 49_999))
    rows = (
        (k + 1, low, high, mmr, mmr + 0.005, 1.0 / (mmr + 0.005))
        for k, ((low, high), mmr) in enumerate(zip(bounds, mmrs, strict=True))
    )
    return TierTable.from_records(
        TierBasis.CONTRACTS,
        rows,
        valid_from,
        "galoy: repo GaloyMoney/dealer GRAFANA.md @92d7cfb (2020 OKX BTC-USD-SWAP tiers, "
        "MECHANICS.md §4.3); a current table was not found in stored sources - fetch "
        "GET /api/v5/public/position-tiers?instType=SWAP&instFamily=BTC-USD. IMR = MMR + 0.5 % "
        "assumed.",
    )


OKX_BTC_USD_SWAP_2020_FROM = "2020-01-01"
"""Start of the 2020 galoy table in :func:`okx_btc_usd_swap_schedule`: the snapshot is dated
only "2020" (MECHANICS.md §4.3), so the year's first day; the 18 Sept 2019 rule runs to it."""

OKX_BTC_USD_SWAP_2022_FROM = "2022-01-20"
"""Start of the tier-1 MMR 0.4 % table: the date of the galoy live-account reading (ccxt
v1.61.93 "as of 2022-01-20" in the same document); the change itself happened earlier, on a
date no stored source gives."""


def okx_btc_usd_swap_2022_table() -> TierTable:
    """OKX BTC-USD-SWAP tiers as of January 2022: tier 1 MMR 0.4 %, IMR 1 % (100x).

    Formula
    -------
    Tier 1 (0–999 contracts): MMR 0.4 %, IMR 1 %; tiers 2–4 as the 2020 snapshot (1 %, 1.5 %,
    2 %; IMR = MMR + 0.5 %), the only higher tiers stored.

    Source
    ------
    galoy (GaloyMoney/dealer GRAFANA.md @92d7cfb, Jan 2022): a live BTC-USD-SWAP cross account
    of 100 contracts at mark 42,892 showed "Maintenance Margin Ratio = 0.000933" and "Margin
    Ratio = 134" with equity 0.141 BTC. Position value = 100·100/42,892 = 0.233144 BTC;
    0.000933 / 0.233144 = 0.40 % (the displayed figure is the maintenance margin in BTC), and
    0.141 / (0.233144·(0.4 % + 0.05 %)) = 134.4 (OKX mgnRatio with the taker-sized liquidation
    fee; MECHANICS.md §4.2). IMR 1 % / 100x: OKX's 100x maximum for BTC swaps (the BTC-USDT-SWAP
    table's tier 1, MMR 0.4 % / IMR 1 %).

    Cases
    -----
    None in cases.json (tests/unit/swap/test_swap_tiers.py recomputes the galoy figures).
    """
    records = [(1, 0, 999, 0.004, 0.01, 100.0)]
    for k, (low, high, mmr) in enumerate(
        ((1_000, 9_999, 0.01), (10_000, 24_999, 0.015), (25_000, 49_999, 0.02)), start=2
    ):
        records.append((k, low, high, mmr, mmr + 0.005, 1.0 / (mmr + 0.005)))
    return TierTable.from_records(
        TierBasis.CONTRACTS,
        records,
        OKX_BTC_USD_SWAP_2022_FROM,
        "galoy GaloyMoney/dealer GRAFANA.md @92d7cfb, live account Jan 2022: displayed "
        "maintenance margin 0.000933 BTC on 100 contracts at mark 42,892 = tier-1 MMR 0.4 % "
        "(mgnRatio 134 = 0.141/(PV·(0.4 % + 0.05 %))); tiers 2-4 from the 2020 snapshot; "
        "valid from the reading's date 2022-01-20 (the change date is not in stored sources)",
    )


def okx_btc_usd_swap_schedule() -> TierSchedule:
    """OKX BTC-USD-SWAP tiers by date, each version with its source.

    * 2019-05-31 table (OKX-tiers-2019), also used before its date: the swap listed on
      2018-12-11 and no earlier table is stored;
    * 2019-09-18 step rule (:func:`okx_btc_usd_swap_2019_09`);
    * 2020-01-01: the 2020 galoy snapshot (:func:`okx_btc_usd_swap_2020_table`);
    * 2022-01-20: tier-1 MMR 0.4 % (:func:`okx_btc_usd_swap_2022_table`).

    A current table is not stored: fetch ``GET /api/v5/public/position-tiers?instType=SWAP&
    instFamily=BTC-USD`` (``backtester fetch``) for later dates.
    """
    first = okx_btc_usd_swap_2019()
    first = TierTable(
        first.basis,
        first.rows,
        0,
        first.source + "; also applied before 2019-05-31 (no earlier table stored; the swap "
        "listed 2018-12-11)",
    )
    return TierSchedule(
        (
            first,
            okx_btc_usd_swap_2019_09(),
            okx_btc_usd_swap_2020_table(OKX_BTC_USD_SWAP_2020_FROM),
            okx_btc_usd_swap_2022_table(),
        )
    )


def okx_btc_usdt_swap_2026_table() -> TierTable:
    """OKX BTC-USDT-SWAP tiers of May 2026, in contracts (0.01 BTC each).

    Formula
    -------
    Tiers 1–7 literal (1,000 / 5,000 / 20,000 / 40,000 / 60,000 / 80,000 / 100,000 contracts);
    tier k ≥ 8: ``maxSz = 20,000·(k − 2)``, ``MMR = 2.75 % + 0.5 %·(k − 7)``,
    ``IMR = MMR + 1.25 %``, ``maxLever = trunc(1/IMR, 2)``, to tier 99 (1,940,000, 48.75 %, 2x);
    ``minSz = previous maxSz + 0.01``. Applies to every date (no older table with 0.01 BTC
    contracts is stored).

    Source
    ------
    ccxt fetch_leverage_tiers cache "updated 2026-05-12 06:55 UTC" (VanJames/freqtrade
    user_data/data/okx/futures/leverage_tiers_USDT.json @51df7fe; SOURCES.md §3).

    Cases
    -----
    okx_usdt_tier_1, okx_usdt_tier_7
    """
    literal = [
        (1, 1_000, 0.004, 0.01, 100),
        (2, 5_000, 0.005, 0.015, 66.66),
        (3, 20_000, 0.0075, 0.02, 50),
        (4, 40_000, 0.0125, 0.025, 40),
        (5, 60_000, 0.0175, 0.03, 33.33),
        (6, 80_000, 0.0225, 0.035, 28.57),
        (7, 100_000, 0.0275, 0.04, 25),
    ]
    for k in range(8, 100):
        mmr = round(0.0275 + 0.005 * (k - 7), 10)
        imr = round(mmr + 0.0125, 10)
        literal.append((k, 20_000 * (k - 2), mmr, imr, math.floor(100.0 / imr + 1e-9) / 100.0))
    records = []
    previous_max = None
    for tier, high, mmr, imr, lev in literal:
        low = 0.0 if previous_max is None else round(previous_max + 0.01, 2)
        records.append((tier, low, high, mmr, imr, lev))
        previous_max = high
    return TierTable.from_records(
        TierBasis.CONTRACTS,
        records,
        0,
        "OKX BTC-USDT-SWAP position tiers, ccxt cache updated 2026-05-12 06:55 UTC "
        "(VanJames/freqtrade leverage_tiers_USDT.json @51df7fe; SOURCES.md §3): tiers 1-7 "
        "literal, 8-99 by the rule maxSz = 20000(k-2), mmr = 2.75 % + 0.5 %(k-7), "
        "imr = mmr + 1.25 %, maxLever = trunc(1/imr, 2); applied to every date",
    )


def bitmex_xbtusd_schedule() -> TierSchedule:
    """BitMEX XBTUSD risk limits (base 200 XBT, step 100 XBT, 0.40 % / 1.00 %), all dates."""
    return TierSchedule((bitmex_risk_limits(),))


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
    return TierTable.from_records(
        TierBasis.CONTRACTS,
        records,
        "2019-05-31T07:00Z",
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
    return TierTable.from_records(
        TierBasis.NOTIONAL_COIN,
        records,
        valid_from,
        f"BitMEX risk limits (BitMEX-docs-copy, bradkyle/Qenv logic/bitmex.md @bf999d43): base "
        f"{base_risk_limit_coin:g} XBT, step {step_coin:g} XBT, base MM "
        f"{base_maintenance_margin_rate:.2%}, base IM {base_initial_margin_rate:.2%}",
    )
