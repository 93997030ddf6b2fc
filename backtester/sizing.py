"""Order sizes and prices in the user's terms: money to contracts, prices to the tick.

A contract's size depends on its kind (:class:`~backtester.enums.ContractKind`):

* linear (USDT-margined, OKX BTC-USDT-SWAP): one contract is ``face_value`` base coin
  (0.01 BTC); its value in quote is ``face_value · price``;
* inverse (coin-margined, OKX BTC-USD-SWAP, BitMEX XBTUSD): one contract is ``face_value``
  quote (100 USD); its value in coin is ``face_value / price``.

So, at a price ``p`` (quote per base) and for a signed money amount:

====================  ===========================  ===========================
amount                linear: contracts             inverse: contracts
====================  ===========================  ===========================
``notional`` (quote)  ``notional / (face · p)``    ``notional / face``
``base`` (coin)       ``base / face``              ``base · p / face``
``equity_fraction``   ``f · equity / (face · p)``  ``f · equity · p / face``
====================  ===========================  ===========================

``equity_fraction`` is a position *value* as a fraction of the account equity (settle currency:
quote for linear, coin for inverse): ``0.5`` buys a position worth half the equity at ``p``,
whatever the leverage; ``equity_fraction = leverage`` would commit the whole equity as initial
margin (and be rejected for the fees). Sources: OKX "Contract specifications" (face value
"contract value"), BitMEX XBTUSD "1 contract = 1 USD".

Sizes are then rounded **toward zero** to a multiple of the lot, so an order never exceeds the
money asked for; a money amount smaller than one lot raises ``ValueError`` (an order of zero
contracts would be silently nothing). Prices round to the tick with :func:`round_price`.
"""

from __future__ import annotations

import math

from backtester.enums import ContractKind

__all__ = ["contracts_for", "round_price", "round_to_lot"]

_INVERSE = int(ContractKind.INVERSE)
# tolerance for values that are a whole number of steps up to float noise (0.3 / 0.1)
_STEP_EPS = 1e-9


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step)) + 3)


def round_to_lot(contracts: float, lot: float) -> float:
    """``contracts`` rounded toward zero to a multiple of ``lot`` (sign kept)."""
    if not lot > 0:
        return contracts
    steps = math.floor(abs(contracts) / lot + _STEP_EPS)
    return math.copysign(round(steps * lot, _decimals(lot)), contracts) if steps else 0.0


def round_price(price: float, tick: float, direction: int = 0) -> float:
    """``price`` on the ``tick`` grid: nearest (``direction`` 0), down (-1) or up (+1).

    Passive sides: a buy limit rounds down, a sell limit up (``ctx.round_price(p, side="buy")``).
    """
    if not tick > 0:
        return price
    steps = price / tick
    if direction < 0:
        k = math.floor(steps + _STEP_EPS)
    elif direction > 0:
        k = math.ceil(steps - _STEP_EPS)
    else:
        k = math.floor(steps + 0.5 + _STEP_EPS)  # ties (up to float noise) round up
    return round(k * tick, _decimals(tick))


def contracts_for(
    kind: int, face_value: float, lot: float, price: float, equity: float,
    notional: float, base: float, equity_fraction: float,
) -> float:  # fmt: skip
    """Return the signed contracts for the one money amount given, rounded toward zero to the lot.

    The amount is ``notional`` (quote), ``base`` (coin) or ``equity_fraction`` (of
    ``equity``, settle currency), the others NaN, converted at ``price``; formulas in the
    module docstring. NaN when the price is not positive and finite.
    """
    if not (price > 0 and math.isfinite(price)):
        return math.nan
    if not math.isnan(notional):
        raw = notional / face_value if kind == _INVERSE else notional / (face_value * price)
    elif not math.isnan(base):
        raw = base * price / face_value if kind == _INVERSE else base / face_value
    else:
        value = equity_fraction * equity  # settle currency: coin (inverse) or quote (linear)
        raw = value * price / face_value if kind == _INVERSE else value / (face_value * price)
    return round_to_lot(raw, lot)
