"""Venue profiles: one venue and era's swap rules as data, every value with its source.

A :class:`VenueProfile` bundles the rules that differ between exchanges and eras — the
liquidation trigger, partial liquidation, liquidation fee, mark-price method, daily settlement,
how uncovered losses are socialised, default fees and the funding interval (STYLE.md C8). The
built-in profiles ship as TOML files in ``backtester/swap/profiles/`` and load by name with
:func:`get_profile`; users write their own file and load it with :func:`load_profile`.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from enum import IntEnum
from pathlib import Path

from backtester.checks import suggestion
from backtester.enums import AdlRule, LiquidationRule, MarkPriceMethod, PartialLiquidationRule

__all__ = [
    "PROFILE_DIRECTORY",
    "VenueProfile",
    "dump_profile",
    "get_profile",
    "list_profiles",
    "load_profile",
    "profile_from_dict",
    "profile_to_dict",
]

PROFILE_DIRECTORY = Path(__file__).with_name("profiles")

_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS

_ENUM_FIELDS: dict[str, type[IntEnum]] = {
    "liquidation_rule": LiquidationRule,
    "partial_liquidation_rule": PartialLiquidationRule,
    "mark_price_method": MarkPriceMethod,
    "adl_rule": AdlRule,
}


@dataclass(frozen=True)
class VenueProfile:
    """The swap rules of one venue and era.

    Parameters
    ----------
    name
        Profile name, e.g. ``"okx_coinm_2019"``.
    liquidation_rule
        :class:`~backtester.enums.LiquidationRule`: which margin condition triggers liquidation
        (checked on the mark price).
    partial_liquidation_rule
        :class:`~backtester.enums.PartialLiquidationRule`: how large positions step down tiers.
    partial_liquidation_min_tier
        First tier (1-based) that is partially liquidated; smaller positions are taken over whole.
    liquidation_fee_rate
        Forced-liquidation fee as a fraction of the position value (OKX old trigger adds it to
        the MMR; Binance "clearance fee"; BitMEX close commission).
    liquidation_fee_equals_taker
        When true the contract's taker fee rate is used as the liquidation fee rate (OKX today:
        "Liquidation Fee: Charged per your fee tier rate").
    mark_price_method
        :class:`~backtester.enums.MarkPriceMethod`.
    mark_ema_span
        EMA span N in samples for ``INDEX_EMA_BASIS`` (alpha = 2/(N+1)); 0 when unused.
    mark_sample_ns
        Sampling step of that EMA in ns; 0 = every event.
    daily_settlement
        Whether unrealised PnL is settled daily (OKEx 2019-20).
    settlement_offset_ns
        Time of day of the settlement, ns after 00:00 UTC.
    adl_rule
        :class:`~backtester.enums.AdlRule`.
    maker_fee_rate, taker_fee_rate
        Default fee rates (negative = rebate).
    funding_interval_ns
        Time between funding payments.
    sources
        Field name → source of its value (URL or MECHANICS.md tag), and notes on assumptions.
    description
        One line on what the profile models.

    Raises
    ------
    ValueError
        Naming the field, the value and the allowed range or the expected enum names.
    """

    name: str
    liquidation_rule: LiquidationRule
    partial_liquidation_rule: PartialLiquidationRule
    partial_liquidation_min_tier: int
    liquidation_fee_rate: float
    mark_price_method: MarkPriceMethod
    mark_ema_span: float
    mark_sample_ns: int
    daily_settlement: bool
    settlement_offset_ns: int
    adl_rule: AdlRule
    maker_fee_rate: float
    taker_fee_rate: float
    funding_interval_ns: int
    liquidation_fee_equals_taker: bool = False
    sources: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        where = f"profile {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        for key, enum in _ENUM_FIELDS.items():
            object.__setattr__(self, key, _to_enum(getattr(self, key), enum, f"{where}: {key}"))
        _check_int(self.partial_liquidation_min_tier, f"{where}: partial_liquidation_min_tier", 1)
        _check_rate(self.liquidation_fee_rate, f"{where}: liquidation_fee_rate", 0.0, 0.1)
        _check_rate(self.maker_fee_rate, f"{where}: maker_fee_rate", -0.01, 0.01)
        _check_rate(self.taker_fee_rate, f"{where}: taker_fee_rate", -0.01, 0.01)
        _check_rate(self.mark_ema_span, f"{where}: mark_ema_span", 0.0, 1e9)
        _check_int(self.mark_sample_ns, f"{where}: mark_sample_ns", 0)
        _check_int(self.funding_interval_ns, f"{where}: funding_interval_ns", 1)
        _check_int(self.settlement_offset_ns, f"{where}: settlement_offset_ns", 0, _DAY_NS - 1)
        for key in ("daily_settlement", "liquidation_fee_equals_taker"):
            if not isinstance(getattr(self, key), bool):
                raise TypeError(
                    f"{where}: {key}: expected true or false, got {getattr(self, key)!r}"
                )
        if not isinstance(self.sources, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.sources.items()
        ):
            raise TypeError(f"{where}: sources: expected a table of field = source strings")
        known = {f.name for f in fields(self)}
        for key in self.sources:
            if key not in known:
                raise ValueError(
                    f"{where}: sources: unknown field {key!r}; {suggestion(key, known)}"
                )
        averaged = (MarkPriceMethod.INDEX_EMA_BASIS, MarkPriceMethod.BINANCE_MEDIAN)
        if self.mark_price_method in averaged and self.mark_ema_span < 1:
            # span < 1 gives α = 2/(N + 1) > 1: the EMA overshoots every sample and oscillates
            method = MarkPriceMethod(int(self.mark_price_method)).name
            raise ValueError(
                f"{where}: mark_ema_span: expected a value >= 1 for {method} marks, "
                f"got {self.mark_ema_span!r}"
            )

    def liquidation_fee_for(self, taker_fee_rate: float) -> float:
        """Return the liquidation fee rate for a contract whose taker fee rate is given."""
        return (
            float(taker_fee_rate)
            if self.liquidation_fee_equals_taker
            else self.liquidation_fee_rate
        )

    def replace(self, **changes: object) -> VenueProfile:
        """Return a copy with some fields changed (validated again)."""
        data = profile_to_dict(self)
        unknown = [k for k in changes if k not in data]
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not a VenueProfile field; {suggestion(unknown[0], data)}"
            )
        data.update({k: (v.name if isinstance(v, IntEnum) else v) for k, v in changes.items()})
        return profile_from_dict(data, f"profile {self.name!r}")


def _to_enum(value: object, enum: type[IntEnum], name: str) -> IntEnum:
    names = [m.name for m in enum]
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        if value.upper() in names:
            return enum[value.upper()]
        raise ValueError(f"{name}: unknown value {value!r}; {suggestion(value.upper(), names)}")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return enum(value)
        except ValueError:
            pass
    raise ValueError(f"{name}: expected one of {names}, got {value!r}")


def _check_rate(value: object, name: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name}: expected a value in [{low:g}, {high:g}], got {value!r}")


def _check_int(value: object, name: str, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name}: expected an integer {bound}, got {value!r}")


def profile_to_dict(profile: VenueProfile) -> dict[str, object]:
    """Plain dict of a profile (enum members by name), as written to TOML/JSON."""
    data = asdict(profile)
    for key in _ENUM_FIELDS:
        data[key] = getattr(profile, key).name
    return data


def profile_from_dict(data: dict[str, object], where: str = "profile") -> VenueProfile:
    """VenueProfile from a dict, with errors naming ``where`` (a file) and the key.

    Raises
    ------
    ValueError
        On unknown keys (with a suggestion), missing keys or invalid values.
    """
    known = [f.name for f in fields(VenueProfile)]
    required = [
        f.name
        for f in fields(VenueProfile)
        if f.default is MISSING and f.default_factory is MISSING
    ]
    for key in data:
        if key not in known:
            raise ValueError(f"{where}: unknown key {key!r}; {suggestion(key, known)}")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")
    try:
        return VenueProfile(**data)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from None


def load_profile(path: str | Path) -> VenueProfile:
    """Load a VenueProfile from a TOML (``.toml``) or JSON (``.json``) file.

    The file holds the :class:`VenueProfile` fields at top level, enum fields by name
    (``liquidation_rule = "OKX_LEGACY"``) and an optional ``[sources]`` table.

    Raises
    ------
    ValueError
        Naming the file and the key when the file cannot be parsed or a value is invalid.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path: {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        elif suffix == ".json":
            with path.open(encoding="utf-8") as handle:
                data = json.load(handle)
        else:
            raise ValueError(f"{path}: expected a .toml or .json file, got suffix {suffix!r}")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot parse ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of profile fields at top level")
    return profile_from_dict(data, str(path))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def dump_profile(profile: VenueProfile, path: str | Path) -> Path:
    """Write a profile to ``path`` as TOML (``.toml``) or JSON (``.json``); returns the path."""
    path = Path(path)
    data = profile_to_dict(profile)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path
    if path.suffix.lower() != ".toml":
        raise ValueError(f"path: expected a .toml or .json file, got {path}")
    sources = data.pop("sources")
    if not isinstance(sources, dict):
        raise TypeError(f"profile {profile.name}: sources must be a table, got {sources!r}")
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items()]
    lines += ["", "[sources]"] + [f"{key} = {_toml_value(value)}" for key, value in sources.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def list_profiles() -> list[str]:
    """Names of the built-in profiles."""
    return sorted(p.stem for p in PROFILE_DIRECTORY.glob("*.toml"))


_CACHE: dict[str, VenueProfile] = {}


def get_profile(name: str) -> VenueProfile:
    """Return a built-in VenueProfile by name.

    Names: ``okx_coinm_2019``, ``okx``, ``binance_usdm``, ``binance_coinm``, ``bitmex``.

    Raises
    ------
    ValueError
        For an unknown name, with a "did you mean" suggestion.
    """
    if isinstance(name, VenueProfile):
        return name
    names = list_profiles()
    if name not in names:
        raise ValueError(f"profile: unknown venue profile {name!r}; {suggestion(str(name), names)}")
    if name not in _CACHE:
        _CACHE[name] = load_profile(PROFILE_DIRECTORY / f"{name}.toml")
    return _CACHE[name]
