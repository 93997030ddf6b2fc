"""The perpetual-swap contract model: contract specs, venue profiles and tier tables.

The typed front lives here (``ContractSpec``, ``VenueProfile``, ``TierTable``, ``TierSchedule``);
the formulas are the ``*_nb`` kernels beside them. Tier tables in exchange formats are read by
:mod:`backtester.data.importers.tiers`.
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
from backtester.swap.tier_tables import bitmex_risk_limits, okx_btc_usd_swap_2019
from backtester.swap.tiers import (
    TierSchedule,
    TierTable,
    maintenance_amount,
    maintenance_amounts,
    make_tier_rows,
    tier_size,
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
    "load_profile",
    "maintenance_amount",
    "maintenance_amounts",
    "make_tier_rows",
    "okx_btc_usd_swap_2019",
    "tier_size",
]
