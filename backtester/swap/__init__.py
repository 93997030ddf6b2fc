"""The perpetual-swap contract model: contract specs, venue profiles and tier tables.

The typed front lives here (``ContractSpec``, ``VenueProfile``, ``TierTable``, ``TierSchedule``
and their loaders); the formulas are the ``*_nb`` kernels beside them.
"""

from __future__ import annotations

from backtester.swap.contract import ContractSpec, get_contract, list_contracts
from backtester.swap.profiles import (
    VenueProfile,
    dump_profile,
    get_profile,
    list_profiles,
    load_profile,
)
from backtester.swap.tiers import (
    TierSchedule,
    TierTable,
    bitmex_risk_limits,
    load_binance_snapshot,
    load_binance_snapshots,
    load_okx_tier_csv,
    maintenance_amount,
    maintenance_amounts,
    make_tier_rows,
    okx_btc_usd_swap_2019,
    tier_size,
    tiers_from_ccxt,
)

__all__ = [
    "ContractSpec",
    "TierSchedule",
    "TierTable",
    "VenueProfile",
    "bitmex_risk_limits",
    "dump_profile",
    "get_contract",
    "get_profile",
    "list_contracts",
    "list_profiles",
    "load_binance_snapshot",
    "load_binance_snapshots",
    "load_okx_tier_csv",
    "load_profile",
    "maintenance_amount",
    "maintenance_amounts",
    "make_tier_rows",
    "okx_btc_usd_swap_2019",
    "tier_size",
    "tiers_from_ccxt",
]
