"""``backtester profiles [NAME]``: venue profiles, one profile's rules and tier tables."""

from __future__ import annotations

import argparse

from backtester.checks import suggestion
from backtester.cli.common import EXIT_OK, Subcommands, add_command, user_input


def add_parser(commands: Subcommands) -> None:
    """Add the ``profiles`` subcommand and its options to ``commands``."""
    profiles = add_command(
        commands,
        "profiles",
        "list venue profiles and tier tables",
        "examples:\n  backtester profiles\n  backtester profiles okx_coinm_2019",
    )
    profiles.add_argument("name", nargs="?")
    profiles.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def command(args: argparse.Namespace) -> int:
    """``backtester profiles [NAME]``: venue profiles, one profile's rules and tier tables."""
    from backtester.swap import get_contract, get_profile, list_contracts, list_profiles

    if args.name is None:
        for name in list_profiles():
            print(f"{name:16s} {get_profile(name).description}")
        print("\ncontracts: " + ", ".join(list_contracts()))
        return EXIT_OK
    with user_input():
        if args.name not in list_profiles() and args.name not in list_contracts():
            raise ValueError(
                f"profiles: unknown profile {args.name!r}; "
                f"{suggestion(args.name, list_profiles() + list_contracts())}"
            )
    import pandas as pd

    if args.name in list_contracts():
        contracts = [args.name]
        profile = get_contract(args.name).profile
    else:
        profile = get_profile(args.name)
        contracts = [c for c in list_contracts() if c.partition(":")[0] == args.name]
    print(f"profile {profile.name}: {profile.description}")
    from backtester.swap.profiles import profile_to_dict

    for key, value in profile_to_dict(profile).items():
        if key not in ("sources", "description", "name"):
            source = profile.sources.get(key, "")
            print(f"  {key:30s} {value!s:24s} {source}")
    for name in contracts:
        spec = get_contract(name)
        print(f"\ncontract {name}: {spec.contract_kind.name.lower()}, face {spec.face_value:g}, "
              f"settle {spec.settle_currency}, fees maker {spec.maker_fee_rate:g} / taker "
              f"{spec.taker_fee_rate:g}")  # fmt: skip
        for table in spec.tiers.tables:
            start = pd.Timestamp(table.valid_from_ns, unit="ns", tz="UTC")
            print(f"  tiers ({table.basis.name.lower()}) valid from {start}: {table.source}")
            frame = pd.DataFrame(table.to_records())
            print("    " + frame.to_string(index=False).replace("\n", "\n    "))
    print(
        "\nsources: 'MECHANICS.md §n' is a section of the project's notes on exchange rules; "
        "docs/SOURCES.md lists the exchange pages of each section"
    )
    return EXIT_OK
