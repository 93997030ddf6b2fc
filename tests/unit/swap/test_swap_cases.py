"""Every non-``mmr_tier`` worked example of ``../shared/reference/cases.json``, evaluated by the
project's own swap kernels (``backtester/swap/*_nb.py``) and built-in contract data.

``mmr_tier`` cases are covered by ``test_swap_tier_cases.py`` (tier tables). Each case's expected
values are compared with the case's own absolute ``tolerance`` (0 means exact). An evaluator may
return several computations of the same case (e.g. closed form and cross solver); each must match.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from backtester.dtypes import TIER_DTYPE
from backtester.enums import ContractKind, LiquidationRule, TierBasis
from backtester.swap.contract import get_contract
from backtester.swap.funding_nb import funding_payment_nb, funding_rate_nb, interest_rate_nb
from backtester.swap.insurance_nb import (
    adl_threshold_nb,
    insurance_fund_delta_nb,
    is_adl_triggered_nb,
)
from backtester.swap.liquidation_nb import (
    bankruptcy_price_nb,
    bankruptcy_price_with_close_fee_nb,
    bybit_inverse_liquidation_price_nb,
    liquidation_price_cross_nb,
    liquidation_price_nb,
    partial_liquidation_contracts_nb,
    price_at_margin_balance_nb,
    round_liquidation_price_nb,
)
from backtester.swap.margin_nb import (
    initial_margin_nb,
    is_liquidation_triggered_nb,
    liquidation_requirement_nb,
    maintenance_margin_nb,
    margin_ratio_nb,
)
from backtester.swap.mark_nb import clip_mark_nb, funding_basis_mark_nb
from backtester.swap.pnl_nb import average_entry_price_nb, pnl_nb, position_value_nb
from backtester.swap.profiles import get_profile
from backtester.swap.settlement_nb import settlement_pnl_nb
from tests.conftest import shared_path

NAN = float("nan")
HOUR_NS = 3_600_000_000_000
LIN = int(ContractKind.LINEAR)
INV = int(ContractKind.INVERSE)

Evaluator = Callable[[dict[str, Any]], list[dict[str, Any]]]


def _side(value: object) -> int:
    if value in ("long", 1):
        return 1
    if value in ("short", -1):
        return -1
    raise ValueError(f"case side {value!r}: expected 'long', 'short', 1 or -1")


# --------------------------------------------------------------------------- evaluators


def _pnl(kind: int) -> Evaluator:
    def evaluate(i: dict[str, Any]) -> list[dict[str, Any]]:
        s = _side(i["side"])
        n = float(i.get("contracts", i.get("contracts_closed", 0)))
        face = float(i.get("face_usd", i.get("face_coin", 1.0)))
        entry = float(i.get("entry_price", i.get("settlement_reference_price", NAN)))
        out: dict[str, Any] = {}
        if "exit_price" in i or "close_price" in i:
            exit_price = float(i.get("exit_price", i.get("close_price", NAN)))
            realised = pnl_nb(kind, s * n, face, entry, exit_price)
            out.update(pnl_coin=realised, realised_pnl_coin=realised, realised_pnl_quote=realised)
        if "mark_price" in i:  # unrealised PnL uses mark, never last
            upl = pnl_nb(kind, s * n, face, entry, float(i["mark_price"]))
            out.update(unrealised_pnl_coin=upl, unrealised_pnl_quote=upl)
        out["entry_value_coin"] = position_value_nb(kind, n, face, entry)
        return [out]

    return evaluate


def _avg_entry(i: dict[str, Any]) -> list[dict[str, Any]]:
    n, avg = 0.0, NAN
    for fill in i["fills"]:
        avg = average_entry_price_nb(INV, n, avg, float(fill["contracts"]), float(fill["price"]))
        n += fill["contracts"]
    return [{"avg_entry_price": avg}]


def _okex_usdt_initial_margin(i: dict[str, Any]) -> list[dict[str, Any]]:
    im = initial_margin_nb(LIN, i["contracts"], i["face_coin"], i["price"], i["leverage"])
    pv = position_value_nb(LIN, i["contracts"], i["face_coin"], i["price"])
    return [{"initial_margin_quote": im, "initial_margin_ratio": im / pv}]


def _bybit_inverse_initial_margin(i: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "initial_margin_coin": initial_margin_nb(
                INV, i["contracts_usd"], 1.0, i["price"], i["leverage"]
            )
        }
    ]


def _okex_margin_ratio(i: dict[str, Any]) -> list[dict[str, Any]]:
    rule = int(get_profile("okx_coinm_2019").liquidation_rule)  # OKX_LEGACY, 2019-20 guides
    assert rule == LiquidationRule.OKX_LEGACY
    n, face, mark = i["contracts"], i["face_coin"], i["mark_price"]
    upl = pnl_nb(LIN, _side(i["side"]) * n, face, i["entry_price"], mark)
    pv = position_value_nb(LIN, n, face, mark)
    mm = maintenance_margin_nb(pv, i["mmr"], 0.0)
    balance = i["fixed_margin"] + upl
    fee = i["liquidation_fee_rate"]
    return [
        {
            "unrealised_pnl_quote": upl,
            "margin_ratio": margin_ratio_nb(rule, balance, mm, pv, fee),
            "liquidation_threshold": liquidation_requirement_nb(rule, mm, pv, i["mmr"], fee) / pv,
            "liquidated": bool(is_liquidation_triggered_nb(rule, balance, mm, pv, i["mmr"], fee)),
        }
    ]


def _binance_coinm_mm(i: dict[str, Any]) -> list[dict[str, Any]]:
    notional = position_value_nb(INV, i["contracts"], i["contract_size_usd"], i["mark_price"])
    return [
        {
            "notional_coin": notional,
            "maintenance_margin_coin": maintenance_margin_nb(notional, i["mmr"], i["cum"]),
        }
    ]


def _bitmex_mm(i: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"maintenance_margin_coin": maintenance_margin_nb(i["position_value_coin"], i["mm"], 0.0)}
    ]


def _single_tier(mmr: float, cum: float) -> np.ndarray:
    rows = np.zeros(1, dtype=TIER_DTYPE)
    rows[0]["tier"] = 1
    rows[0]["max_size"] = np.inf
    rows[0]["maintenance_margin_rate"] = mmr
    rows[0]["maintenance_amount_settle"] = cum
    return rows


def _binance_cross(i: dict[str, Any]) -> list[dict[str, Any]]:
    """Official formula: the other positions enter as TMM1 and UPNL1 (closed form); the cross
    solver gets one synthetic other position with exactly that MM and UPnL at its mark."""
    rule = int(LiquidationRule.BINANCE)
    side, n, entry, mmr, cum = _side(i["side"]), i["position"], i["entry_price"], i["mmr"], i["cum"]
    margin = i["wallet_balance"] - i["tmm_others"] + i["upnl_others"]
    closed = liquidation_price_nb(rule, LIN, side, n, 1.0, entry, margin, mmr, cum, 0.0)
    # other position: 1 unit marked at 1000 with MMR tmm/1000 and entry 1000 − upnl
    tiers = np.concatenate([_single_tier(mmr, cum), _single_tier(i["tmm_others"] / 1000.0, 0.0)])
    solved = liquidation_price_cross_nb(
        rule,
        np.array([LIN, LIN], dtype=np.int8),
        np.array([side * n, 1.0]),
        np.ones(2),
        np.array([entry, 1000.0 - i["upnl_others"]]),
        np.array([entry, 1000.0]),
        tiers,
        np.array([0, 1], dtype=np.int32),
        np.array([1, 1], dtype=np.int32),
        np.array([TierBasis.NOTIONAL_QUOTE, TierBasis.NOTIONAL_QUOTE], dtype=np.int8),
        np.zeros(2),
        float(i["wallet_balance"]),
        0,
    )
    return [{"liquidation_price": closed}, {"liquidation_price": solved}]


def _binance_isolated(i: dict[str, Any]) -> list[dict[str, Any]]:
    price = liquidation_price_nb(
        int(LiquidationRule.BINANCE),
        LIN,
        _side(i["side"]),
        i["position"],
        1.0,
        i["entry_price"],
        i["isolated_wallet_balance"],
        i["mmr"],
        i["cum"],
        0.0,
    )
    return [{"liquidation_price": price}]


def _okx_isolated(i: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for rule in (LiquidationRule.OKX_LEGACY, LiquidationRule.OKX_MGN_RATIO):  # same with cum 0
        price = liquidation_price_nb(
            int(rule),
            LIN,
            _side(i["side"]),
            i["position_base"],
            1.0,
            i["entry_price"],
            i["margin"],
            i["mmr"],
            0.0,
            i["taker_fee"],
        )
        out.append({"liquidation_price": price})
    return out


def _bybit_isolated_simple(i: dict[str, Any]) -> list[dict[str, Any]]:
    """ft/Bybit simple form: margin = IM, maintenance measured on the entry value."""
    entry, lev = i["entry_price"], i["leverage"]
    im = initial_margin_nb(LIN, 1.0, 1.0, entry, lev)
    mm_at_entry = maintenance_margin_nb(position_value_nb(LIN, 1.0, 1.0, entry), i["mmr"], 0.0)
    price = price_at_margin_balance_nb(LIN, _side(i["side"]), 1.0, 1.0, entry, im, mm_at_entry)
    return [{"liquidation_price": price}]


def _bybit_inverse_cross_liq(i: dict[str, Any]) -> list[dict[str, Any]]:
    side = _side(i["side"])
    raw = bybit_inverse_liquidation_price_nb(
        side,
        i["contracts_usd"],
        i["entry_price"],
        i["account_balance_coin"],
        i["order_margin"],
        i["mmr"],
        i["taker_fee"],
    )
    return [{"liquidation_price": round_liquidation_price_nb(raw, side, i["tick"])}]


def _phemex(i: dict[str, Any]) -> list[dict[str, Any]]:
    """Phemex puts the close fee of the borrowed part into the position margin
    (assignedPosBalance); its trigger is MM + close fee, the BITMEX-style requirement."""
    n, entry, fee = i["size"], i["entry_price"], i["taker_fee"]
    im = initial_margin_nb(LIN, n, 1.0, entry, i["leverage"])
    open_value = position_value_nb(LIN, n, 1.0, entry)
    assigned = im + (open_value - im) * fee
    price = liquidation_price_nb(
        int(LiquidationRule.BITMEX), LIN, _side(i["side"]), n, 1.0, entry, assigned, i["mmr"],
        i["mm_amount"], fee,
    )  # fmt: skip
    return [{"assigned_pos_balance": assigned, "liquidation_price": price}]


def _okx_partial(i: dict[str, Any]) -> list[dict[str, Any]]:
    profile = get_profile("okx_coinm_2019")
    tier1 = float(i["tier1_max_contracts"])
    tiers = np.zeros(3, dtype=TIER_DTYPE)
    # tier 1 up to the example's 2,000 contracts, tier 3 holds the 15,000-contract position
    for k, (lo, hi) in enumerate([(0, tier1), (tier1 + 1, 9_999), (10_000, 20_000)]):
        tiers[k]["tier"] = k + 1
        tiers[k]["min_size"] = lo
        tiers[k]["max_size"] = hi
        tiers[k]["maintenance_margin_rate"] = 0.005 * (k + 1)
    close = partial_liquidation_contracts_nb(
        int(profile.partial_liquidation_rule),
        int(profile.partial_liquidation_min_tier),
        tiers,
        0,
        3,
        int(TierBasis.CONTRACTS),
        INV,
        float(i["contracts_held"]),
        100.0,
        7_000.0,
    )
    return [{"contracts_to_close": close}]


def _bybit_bankruptcy_linear(i: dict[str, Any]) -> list[dict[str, Any]]:
    entry = i["entry_price"]
    im = initial_margin_nb(LIN, 1.0, 1.0, entry, i["leverage"])
    return [{"bankruptcy_price": bankruptcy_price_nb(LIN, _side(i["side"]), 1.0, 1.0, entry, im)}]


def _bybit_inverse_bankruptcy(i: dict[str, Any]) -> list[dict[str, Any]]:
    price = bankruptcy_price_with_close_fee_nb(
        INV, _side(i["side"]), i["contracts_usd"], 1.0, i["entry_price"],
        i["available_balance_coin"], i["taker_fee"],
    )  # fmt: skip
    return [{"bankruptcy_price": price}]


def _bitmex_interest(i: dict[str, Any]) -> list[dict[str, Any]]:
    # The guide's example uses I directly as the funding rate ("do not consider Premium"):
    # not a test of the clamp (see the case note).
    rate = interest_rate_nb(
        i["quote_interest_daily"], i["base_interest_daily"], i["intervals_per_day"]
    )
    return [{"interest_rate": rate, "funding_rate_used_in_example": rate}]


def _bybit_interest(i: dict[str, Any]) -> list[dict[str, Any]]:
    rate = interest_rate_nb(
        i["interest_quote_index"], i["interest_base_index"], i["funding_intervals_per_day"]
    )
    return [{"interest_rate": rate}]


def _binance_band(i: dict[str, Any]) -> list[dict[str, Any]]:
    rate = funding_rate_nb(i["premium_index"], i["interest_rate"], i["clamp"], NAN, NAN)
    return [{"funding_rate": rate}]


def _bitmex_funding_amount(i: dict[str, Any]) -> list[dict[str, Any]]:
    q = _side(i["side"]) * i["contracts"]
    paid = -funding_payment_nb(INV, q, i["face_usd"], i["mark_price"], i["funding_rate"])
    trade = pnl_nb(INV, q, i["face_usd"], i["mark_price"], 800.0)
    return [
        {
            "mark_value_coin": position_value_nb(
                INV, i["contracts"], i["face_usd"], i["mark_price"]
            ),
            "funding_paid_coin": paid,
            "trade_pnl_after_close_at_800": trade,
            "total_profit_coin": trade - paid,
        }
    ]


def _bitmex_funding_guide(i: dict[str, Any]) -> list[dict[str, Any]]:
    # a position worth exactly position_value_coin: one contract of that face at mark 1
    received = funding_payment_nb(
        INV, float(_side(i["side"])), i["position_value_coin"], 1.0, i["funding_rate"]
    )
    return [{"funding_paid_coin": -received, "realised_pnl_coin": received}]


def _ft_funding(i: dict[str, Any]) -> list[dict[str, Any]]:
    q = _side(i["side"]) * i["amount_base"]
    fee = funding_payment_nb(LIN, q, 1.0, i["mark_price_open"], i["funding_rate"])
    return [{"funding_fee": fee}]


def _funding_basis_mark(i: dict[str, Any]) -> list[dict[str, Any]]:
    mark = funding_basis_mark_nb(
        float(i["index_price"]),
        i["last_funding_rate"],
        round(i["hours_until_funding"] * HOUR_NS),
        round(i["funding_interval_hours"] * HOUR_NS),
    )
    return [{"mark_price": mark, "price1": mark, "basis": mark / i["index_price"] - 1.0}]


def _deribit_mark(i: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"mark_price": clip_mark_nb(i["last"], i["best_bid"], i["best_ask"])}]


def _okx_adl(i: dict[str, Any]) -> list[dict[str, Any]]:
    threshold = adl_threshold_nb(i["insurance_fund_8h_average"], i["drop_pct"], i["drop_abs_min"])
    triggered = bool(is_adl_triggered_nb(i["insurance_fund_now"], threshold))
    return [{"threshold": threshold, "adl_triggered": triggered}]


def _clawback_toy(i: dict[str, Any]) -> list[dict[str, Any]]:
    """USD toy: contracts worth $1 each, modelled as linear (face 1)."""
    a, b, price = i["user_A"], i["user_B"], i["new_price"]
    sa = _side(a["side"])
    b_profit = pnl_nb(LIN, _side(b["side"]) * b["contracts"], 1.0, b["price"], price)
    bp_a = bankruptcy_price_nb(LIN, sa, a["contracts"], 1.0, a["price"], a["margin"])
    from_a = -pnl_nb(LIN, sa * a["contracts"], 1.0, a["price"], bp_a)  # A loses its margin
    deficit = -insurance_fund_delta_nb(LIN, sa, a["contracts"], 1.0, bp_a, price)
    return [
        {
            "B_paper_profit": b_profit,
            "B_realisable_from_A": from_a,
            "deficit_to_insurance_or_clawback": deficit,
        }
    ]


def _daily_settlement(i: dict[str, Any]) -> list[dict[str, Any]]:
    ref, settle = i["old_settlement_reference_price"], i["settlement_price"]
    # the long inverse position (contracts · face in USD) whose UPL at the settlement is upl_coin
    usd = i["upl_coin"] / (1.0 / ref - 1.0 / settle)
    settled = settlement_pnl_nb(INV, usd, 1.0, ref, settle)
    balance_after = i["balance_coin"] + settled
    upl_after = pnl_nb(INV, usd, 1.0, settle, settle)
    return [
        {
            "balance_after": balance_after,
            "upl_after": upl_after,
            "equity_before": i["balance_coin"] + i["upl_coin"],
            "equity_after": balance_after + upl_after,
            "new_settlement_reference_price": settle,
        }
    ]


def _okx_fees(i: dict[str, Any]) -> list[dict[str, Any]]:
    contract = get_contract("okx:BTC-USDT-SWAP")
    return [{"maker": contract.maker_fee_rate, "taker": contract.taker_fee_rate}]


EVALUATORS: dict[str, Evaluator] = {
    "bitmex_pnl_inv_01": _pnl(INV),
    "bitmex_upnl_inv_02": _pnl(INV),
    "bitmex_rpnl_inv_03": _pnl(INV),
    "bitmex_rpnl_inv_04": _pnl(INV),
    "okex_swap_rpl_long": _pnl(INV),
    "okex_swap_rpl_short": _pnl(INV),
    "galoy_avg_entry_inverse_1": _avg_entry,
    "okex_usdt_rpl_long": _pnl(LIN),
    "okex_usdt_rpl_short": _pnl(LIN),
    "okex_usdt_upl_long": _pnl(LIN),
    "okex_usdt_upl_short": _pnl(LIN),
    "okex_usdt_initial_margin": _okex_usdt_initial_margin,
    "okex_usdt_margin_ratio_fixed": _okex_margin_ratio,
    "bybit_inverse_initial_margin": _bybit_inverse_initial_margin,
    "binance_coinm_mm": _binance_coinm_mm,
    "bitmex_risk_limit_mm_300": _bitmex_mm,
    "bitmex_risk_limit_mm_180": _bitmex_mm,
    "binance_liq_cross_btc_2020": _binance_cross,
    "binance_liq_cross_eth_2020": _binance_cross,
    "ft_binance_liq_iso_eth": _binance_isolated,
    "ft_binance_liq_iso_btc": _binance_isolated,
    "ft_binance_liq_iso_short_5x": _binance_isolated,
    "ft_binance_liq_iso_long_5x": _binance_isolated,
    "bybit_inverse_cross_liq": _bybit_inverse_cross_liq,
    "ft_okx_liq_iso_short_3x": _okx_isolated,
    "ft_okx_liq_iso_long_3x": _okx_isolated,
    "ft_bybit_liq_iso_long_5x": _bybit_isolated_simple,
    "ft_bybit_liq_iso_short_5x": _bybit_isolated_simple,
    "phemex_liq_iso_long": _phemex,
    "okx_partial_liq_example": _okx_partial,
    "bybit_bankruptcy_linear_long": _bybit_bankruptcy_linear,
    "bybit_inverse_cross_bankruptcy": _bybit_inverse_bankruptcy,
    "bitmex_funding_rate_interest": _bitmex_interest,
    "bitmex_funding_amount_inverse": _bitmex_funding_amount,
    "bitmex_funding_pnl_guide": _bitmex_funding_guide,
    "binance_funding_band_hi": _binance_band,
    "binance_funding_band_lo": _binance_band,
    "bybit_interest_rate": _bybit_interest,
    "ft_funding_fee_1": _ft_funding,
    "ft_funding_fee_2": _ft_funding,
    "binance_mark_basis_2019": _funding_basis_mark,
    "aevo_mark_price1": _funding_basis_mark,
    "deribit_mark_legacy_1": _deribit_mark,
    "deribit_mark_legacy_2": _deribit_mark,
    "okx_adl_trigger": _okx_adl,
    "okex_clawback_toy": _clawback_toy,
    "okex_daily_settlement": _daily_settlement,
    "okx_fee_swap_lv1": _okx_fees,
}

# Cases the model deliberately treats differently: id -> reason (strict xfail). None today.
XFAIL: dict[str, str] = {}


def _load_cases() -> tuple[list[dict[str, Any]], str]:
    """Non-tier cases and, when ../shared is absent, the skip reason ``shared_path`` gives."""
    try:
        path = shared_path("reference", "cases.json")
    except pytest.skip.Exception as absent:  # collection time: turn the skip into a skip param
        return [], str(absent)
    return [c for c in json.loads(path.read_text()) if c["topic"] != "mmr_tier"], ""


def _params() -> list[Any]:
    cases, reason = _load_cases()
    if not cases:
        reason = reason or "cases.json holds no non-mmr_tier case"
        return [pytest.param(None, id="no-shared-cases", marks=pytest.mark.skip(reason=reason))]
    params = []
    for case in cases:
        marks = []
        if case["id"] in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[case["id"]]))
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


def _matches(got: Any, want: Any, tolerance: float) -> bool:
    if isinstance(want, bool):
        return got is want
    if tolerance == 0:
        return bool(got == want)
    return bool(abs(float(got) - float(want)) <= tolerance)


@pytest.mark.parametrize("case", _params())
def test_reference_case(case: dict[str, Any]) -> None:
    evaluate = EVALUATORS.get(case["id"])
    assert evaluate is not None, f"no evaluator for case {case['id']!r}"
    results = evaluate(case["inputs"])
    assert results, f"evaluator of {case['id']} returned nothing"
    for computed in results:
        missing = set(case["expected"]) - set(computed)
        assert not missing, f"{case['id']}: evaluator does not compute {sorted(missing)}"
        for key, want in case["expected"].items():
            got = computed[key]
            assert _matches(got, want, case["tolerance"]), (
                f"{case['id']}.{key}: computed {got!r}, expected {want!r} "
                f"(tolerance {case['tolerance']})"
            )


def test_every_non_tier_case_is_covered(shared: Any) -> None:
    path = shared.path("reference", "cases.json")
    ids = {c["id"] for c in json.loads(path.read_text()) if c["topic"] != "mmr_tier"}
    assert set(EVALUATORS) == ids
    assert set(XFAIL) <= ids
