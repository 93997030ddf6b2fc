"""Contract specifications: one instrument's size, price grid, fees, tiers and venue rules.

A :class:`ContractSpec` is plain typed data with its sources (STYLE.md C8). ``to_params(at_ns)``
compiles it, with its :class:`~backtester.swap.profiles.VenueProfile` and the tier table valid at
that time, into the CONTRACT_PARAMS_DTYPE row and TIER_DTYPE rows the kernels read. Built-in
contracts load by name, ``get_contract("okx:BTC-USD-SWAP")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from backtester.checks import suggestion
from backtester.dtypes import CONTRACT_PARAMS_DTYPE
from backtester.enums import ContractKind
from backtester.swap import tier_tables
from backtester.swap.profiles import VenueProfile, get_profile
from backtester.swap.tiers import TierSchedule, TierTable, tier_size

__all__ = ["ContractSpec", "check_leverage_value", "get_contract", "list_contracts"]


def _check_size(value: object, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    number = float(value)
    ok = number >= 0 if allow_zero else number > 0
    if not (math.isfinite(number) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite value {bound}, got {value!r}")
    return number


def check_leverage_value(leverage: object, max_leverage: float, where: str) -> float:
    """Check the one leverage rule of every entry point: ``1 ≤ leverage ≤ max_leverage``.

    ``backtest()``, ``ctx.set_leverage`` and the command line's job check all call this
    (through :meth:`ContractSpec.check_leverage` where the contract is known), so they accept
    the same values and say the same thing. The maximum gets a relative slack of 1e-12, the
    same as the engine's fill-time check (``orders_nb``), so a maximum read back from a float
    table is not refused for rounding noise.

    Raises
    ------
    TypeError
        When ``leverage`` is not a number.
    ValueError
        ``leverage: expected a value in [1, <max>] for <where>, got <leverage>``.
    """
    if isinstance(leverage, bool) or not isinstance(
        leverage, (int, float, np.floating, np.integer)
    ):
        raise TypeError(f"leverage: expected a number, got {leverage!r}")
    lev = float(leverage)
    if not (math.isfinite(lev) and 1.0 <= lev <= max_leverage * (1.0 + 1e-12)):
        raise ValueError(
            f"leverage: expected a value in [1, {max_leverage:g}] for {where}, got {lev:.15g}"
        )
    return lev


_SPEC_FIELDS_IN_PARAMS = ("face_value", "maker_fee_rate", "taker_fee_rate", "liquidation_fee_rate")
_PROFILE_FIELDS_IN_PARAMS = (
    "liquidation_rule", "partial_liquidation_rule", "partial_liquidation_min_tier",
    "mark_price_method", "mark_ema_span", "mark_sample_ns", "funding_interval_ns",
    "daily_settlement", "settlement_offset_ns", "adl_rule",
)  # fmt: skip


@dataclass(frozen=True)
class ContractSpec:
    """One perpetual-swap instrument as the venue specifies it.

    Parameters
    ----------
    symbol
        Venue symbol, e.g. ``"BTC-USD-SWAP"``.
    contract_kind
        :class:`~backtester.enums.ContractKind`: LINEAR (PnL in quote) or INVERSE (PnL in coin).
    face_value
        Linear: base coin per contract (OKX BTC-USDT-SWAP 0.01 BTC); inverse: quote (USD) per
        contract (OKX BTC-USD-SWAP 100 USD).
    tick_size
        Price increment, in quote.
    lot_size
        Order size increment, in contracts.
    min_size
        Smallest order, in contracts.
    base_currency, quote_currency, settle_currency
        E.g. ``"BTC", "USD", "BTC"`` for an inverse swap.
    maker_fee_rate, taker_fee_rate
        Fee as a fraction of the fill's position value; negative = rebate.
    tiers
        Dated maintenance-margin tiers (a single TierTable is wrapped in a schedule).
    profile
        The venue's rules, or a built-in profile name.
    sources
        Field name → source of its value.

    Raises
    ------
    ValueError, TypeError
        Naming the field, the value and the allowed range: non-positive sizes, an unknown
        contract kind or venue profile (with a suggestion), fees outside [−1 %, 1 %].

    Examples
    --------
    >>> from backtester.swap import get_contract
    >>> spec = get_contract("okx:BTC-USDT-SWAP")
    >>> spec.face_value, spec.settle_currency
    (0.01, 'USDT')
    """

    symbol: str
    contract_kind: ContractKind
    face_value: float
    tick_size: float
    lot_size: float
    min_size: float
    base_currency: str
    quote_currency: str
    settle_currency: str
    maker_fee_rate: float
    taker_fee_rate: float
    tiers: TierSchedule
    profile: VenueProfile
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol:
            raise ValueError(f"symbol: expected a non-empty string, got {self.symbol!r}")
        try:
            kind = ContractKind(int(self.contract_kind))
        except (TypeError, ValueError):
            if (
                isinstance(self.contract_kind, str)
                and self.contract_kind.upper() in ContractKind.__members__
            ):
                kind = ContractKind[self.contract_kind.upper()]
            else:
                names = [k.name for k in ContractKind]
                raise ValueError(
                    f"contract_kind: expected one of {names}, got {self.contract_kind!r}"
                ) from None
        object.__setattr__(self, "contract_kind", kind)
        for name in ("face_value", "tick_size", "lot_size", "min_size"):
            object.__setattr__(self, name, _check_size(getattr(self, name), name))
        for name in ("maker_fee_rate", "taker_fee_rate"):
            rate = float(getattr(self, name))
            if not (math.isfinite(rate) and -0.01 <= rate <= 0.01):
                raise ValueError(f"{name}: expected a value in [-0.01, 0.01], got {rate!r}")
            object.__setattr__(self, name, rate)
        for name in ("base_currency", "quote_currency", "settle_currency"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name}: expected a currency code, got {getattr(self, name)!r}")
        if isinstance(self.tiers, TierTable):
            object.__setattr__(self, "tiers", TierSchedule((self.tiers,)))
        if not isinstance(self.tiers, TierSchedule):
            raise TypeError(
                f"tiers: expected a TierSchedule or TierTable, got {type(self.tiers).__name__}"
            )
        if not isinstance(self.profile, VenueProfile):
            object.__setattr__(self, "profile", get_profile(str(self.profile)))

    @property
    def name(self) -> str:
        """``"<profile>:<symbol>"``, the name :func:`get_contract` accepts."""
        return f"{self.profile.name}:{self.symbol}"

    @property
    def liquidation_fee_rate(self) -> float:
        """Liquidation fee rate under the profile (the taker rate where the venue says so)."""
        return self.profile.liquidation_fee_for(self.taker_fee_rate)

    def tier_table(self, at_ns: int | str | None = None) -> TierTable:
        """Return the tier table valid at ``at_ns`` (the newest one when ``None``)."""
        return self.tiers.latest if at_ns is None else self.tiers.at(at_ns)

    def check_leverage(
        self,
        leverage: float,
        contracts: float = 0.0,
        price: float | None = None,
        at_ns: int | str | None = None,
    ) -> float:
        """Return ``leverage`` if the tier of ``contracts`` at ``price`` allows it, else raise.

        The rule and the message are :func:`check_leverage_value`'s, shared by every entry
        point (``backtest()``, ``ctx.set_leverage``, the command line's job check).

        Parameters
        ----------
        leverage
            Requested leverage, >= 1.
        contracts
            Position size in contracts, >= 0; 0 (flat, the default) checks tier 1.
        price
            Price used for the tier size of notional tables (quote per base); needed when
            ``contracts`` > 0.
        at_ns
            Time whose tier table applies; ``None`` = the newest table.

        Raises
        ------
        ValueError
            ``leverage: expected a value in [1, <tier max>] for <contract>`` (flat) or ``for
            tier <n> of <contract> (...)``, or on a negative size / non-positive price.
        """
        contracts = _check_size(contracts, "contracts", allow_zero=True)
        table = self.tier_table(at_ns)
        if contracts == 0.0 and price is None:
            return check_leverage_value(leverage, table.max_leverage, self.name)
        price = _check_size(price, "price")
        size = tier_size(table.basis, self.contract_kind, float(contracts), self.face_value, price)
        row = table.lookup(size)
        where = (
            f"tier {int(row['tier'])} of {self.name} ({contracts:g} contracts at {price:g}, "
            f"tier size {size:g} {table.basis.name.lower()})"
        )
        return check_leverage_value(leverage, float(row["max_leverage"]), where)

    def to_params(self, at_ns: int | str) -> tuple[np.ndarray, np.ndarray]:
        """Compile to kernel inputs for a run starting at ``at_ns``.

        Returns
        -------
        (params, tiers)
            ``params``: CONTRACT_PARAMS_DTYPE array of length 1 with ``tier_offset`` 0 and
            ``tier_count`` = len(tiers); ``tiers``: a writable copy of the TIER_DTYPE rows of
            the table valid at ``at_ns``. ``max_leverage`` is tier 1's.

        Raises
        ------
        ValueError
            When ``at_ns`` precedes the first tier table.
        """
        table = self.tiers.at(at_ns)
        profile = self.profile
        params = np.zeros(1, dtype=CONTRACT_PARAMS_DTYPE)
        p = params[0]
        p["contract_kind"] = int(self.contract_kind)
        p["tick_size_quote"] = self.tick_size
        p["lot_size_contracts"] = self.lot_size
        p["min_size_contracts"] = self.min_size
        for name in _SPEC_FIELDS_IN_PARAMS:  # same name in the spec and the params row
            p[name] = getattr(self, name)
        for name in _PROFILE_FIELDS_IN_PARAMS:  # same name in the profile and the params row
            p[name] = getattr(profile, name)
        p["tier_basis"] = int(table.basis)
        p["tier_offset"] = 0
        p["tier_count"] = len(table)
        p["max_leverage"] = table.max_leverage
        return params, table.rows.copy()

    def with_fees(self, maker_fee_rate: float, taker_fee_rate: float) -> ContractSpec:
        """Return a copy with other fee rates (e.g. a higher VIP tier)."""
        return replace(self, maker_fee_rate=maker_fee_rate, taker_fee_rate=taker_fee_rate)


# --------------------------------------------------------------------------- built-ins


@dataclass(frozen=True)
class _Builtin:
    """A built-in contract's numbers and sources; the profile (fees, rules) is its name's prefix."""

    head: tuple[str, ContractKind, float, float, float, float, str, str, str]
    """ContractSpec's first nine fields, ``symbol`` to ``settle_currency``."""
    schedule: Callable[[], TierSchedule]  # called on first use: tables are built lazily
    sources: dict[str, str]

    def build(self, profile_name: str) -> ContractSpec:
        """Return the ContractSpec with the fees and rules of profile ``profile_name``."""
        profile = get_profile(profile_name)
        return ContractSpec(
            *self.head, profile.maker_fee_rate, profile.taker_fee_rate, self.schedule(), profile,
            sources=self.sources,
        )  # fmt: skip


def _okx_btc_usdt_schedule() -> TierSchedule:
    return TierSchedule((tier_tables.okx_btc_usdt_swap_2026_table(),))


_INVERSE, _LINEAR = ContractKind.INVERSE, ContractKind.LINEAR
_BUILTINS: dict[str, _Builtin] = {
    "okx_coinm_2019:BTC-USD-SWAP": _Builtin(
        ("BTC-USD-SWAP", _INVERSE, 100.0, 0.1, 1.0, 1.0, "BTC", "USD", "BTC"),
        tier_tables.okx_coinm_2019_schedule,
        {
            "face_value": "OKEx-swap-guide: 'Each perpetual contract has a Face Value of 100 USD'",
            "tick_size": "OKX v5 instrument BTC-USD-SWAP tickSz 0.1",
            "lot_size": "whole contracts (OKX v5 lotSz 1)",
            "tiers": "OKX-tiers-2019 (31 May 2019) then the 11 Sept 2019 step rule",
        },
    ),
    "okx:BTC-USD-SWAP": _Builtin(
        ("BTC-USD-SWAP", _INVERSE, 100.0, 0.1, 1.0, 1.0, "BTC", "USD", "BTC"),
        tier_tables.okx_btc_usd_swap_schedule,
        {
            "face_value": "OKX v5 instrument fixture ctVal 100, ctValCcy USD, settleCcy BTC",
            "tick_size": "OKX v5 instrument BTC-USD-SWAP tickSz 0.1",
            "tiers": "by date: OKX-tiers-2019 (31 May 2019), the 18 Sept 2019 step rule, the "
            "2020 galoy snapshot (from 2020-01-01), tier-1 MMR 0.4 % from galoy's Jan 2022 live "
            "account (from 2022-01-20); no current table is stored (MECHANICS.md 4.3)",
        },
    ),
    "okx:BTC-USDT-SWAP": _Builtin(
        ("BTC-USDT-SWAP", _LINEAR, 0.01, 0.1, 0.01, 0.01, "BTC", "USDT", "USDT"),
        _okx_btc_usdt_schedule,
        {
            "face_value": "OKX v5 instrument fixture ctVal 0.01 ctValCcy BTC (MECHANICS.md 1.1)",
            "lot_size": "0.01 contracts: the tier table steps by 0.01 contracts (1000 -> 1000.01)",
            "tiers": "OKX BTC-USDT-SWAP rule, ccxt cache 2026-05-12 (SOURCES.md 3)",
        },
    ),
    "binance_usdm:BTCUSDT": _Builtin(
        ("BTCUSDT", _LINEAR, 1.0, 0.1, 0.001, 0.001, "BTC", "USDT", "USDT"),
        tier_tables.binance_btcusdt_schedule,
        {
            "face_value": "Binance-liq-USDM: quantity in BTC (1 BTC multiplier, lot 0.001)",
            "tiers": "dated brackets of MECHANICS.md 4.3 (2019-09-13 ... 2025-08-21)",
        },
    ),
    "binance_coinm:BTCUSD_PERP": _Builtin(
        ("BTCUSD_PERP", _INVERSE, 100.0, 0.1, 1.0, 1.0, "BTC", "USD", "BTC"),
        tier_tables.binance_btcusd_perp_schedule,
        {
            "face_value": "Binance-liq-COINM: '100 * 100 / 25,000 = 0.4 BTC' (100 USD a contract)",
            "tiers": "COIN-M brackets in BTC, two eras (tier_tables.BINANCE_COINM_BTCUSD_BRACKETS)",
        },
    ),
    "bitmex:XBTUSD": _Builtin(
        ("XBTUSD", _INVERSE, 1.0, 0.5, 1.0, 1.0, "XBT", "USD", "XBT"),
        tier_tables.bitmex_xbtusd_schedule,
        {
            "face_value": "BitMEX-examples: 1 USD per contract",
            "tick_size": "XBTUSD tick 0.5 USD",
            "lot_size": "1 contract (BitMEX later raised the XBTUSD lot to 100; not modelled)",
            "tiers": "BitMEX risk limits: base 200 XBT, step 100 XBT, 0.40 %/1.00 %",
        },
    ),
}  # fmt: skip
_CACHE: dict[str, ContractSpec] = {}


def list_contracts() -> list[str]:
    """Return the names of the built-in contracts, ``"<profile>:<symbol>"``."""
    return sorted(_BUILTINS)


def get_contract(name: str) -> ContractSpec:
    """Return a built-in ContractSpec by name, e.g. ``"okx:BTC-USD-SWAP"`` or ``"bitmex:XBTUSD"``.

    Raises
    ------
    ValueError
        For an unknown name, with a "did you mean" suggestion.
    """
    if isinstance(name, ContractSpec):
        return name
    if name not in _BUILTINS:
        raise ValueError(f"contract: unknown contract {name!r}; {suggestion(str(name), _BUILTINS)}")
    if name not in _CACHE:
        _CACHE[name] = _BUILTINS[name].build(name.partition(":")[0])
    return _CACHE[name]
