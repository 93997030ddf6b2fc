"""The perpetual-swap contract model: contract specs, venue profiles and tier tables.

The typed front lives here (``ContractSpec``, ``VenueProfile``, ``TierTable``, ``TierSchedule``
and the profile files' loaders); the formulas are the ``*_nb`` kernels beside them. Readers of
exchange tier formats (OKX CSV, Binance snapshots, ccxt, BitMEX risk limits) are not part of
this front: they live with the tier model in :mod:`backtester.swap.tiers` for now and belong
with the data importers.
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
    "dump_profile",
    "get_contract",
    "get_profile",
    "list_contracts",
    "list_profiles",
    "load_profile",
    "maintenance_amount",
    "maintenance_amounts",
    "make_tier_rows",
    "tier_size",
]
