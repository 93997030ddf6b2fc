"""The engine's arrays of one run as one value: :class:`EngineState` (a numba StructRef).

It is the single argument of the replay kernels and the ``ctx`` a jitted strategy callback
receives (``ctx.positions[i]["contracts"]``, ``ctx.bars[row]["close"]``, ...). Fields: the state
(``account``, ``positions``, ``orders`` and their ``work`` rows, the ``active`` order list), the
contract ``params`` and ``tiers``, the input streams (``trades``, ``bars``, ``index``, ``mark``,
``funding`` and the ADL/clawback scenario events ``deleverage``), per-instrument taker
``slippage`` rates, the record buffers (``fills``, ``funding_payments``, ``liquidations``,
``settlements``, ``adl``, ``ledger``, ``equity``), two METRICS_DTYPE work rows (``metrics``,
``scratch``, one-row arrays: the margin metrics being checked, and one position's inside an
account sum) and the dated tier tables that take effect during the run (``tier_switches``,
TIER_SWITCH_DTYPE rows sorted by instrument then date).

Why a StructRef and not a tuple of arrays: a jitted function call passes a StructRef as one
reference-counted pointer, while a tuple of ~20 arrays is passed as ~140 words with 20
reference-count updates (~0.1 µs a call, more than the work of one tick).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit, types
from numba.experimental import structref

from backtester import dtypes

FIELDS = (
    "trades", "bars", "index", "mark", "funding", "deleverage", "params", "tiers", "slippage",
    "account", "positions", "orders", "work", "active", "fills", "funding_payments",
    "liquidations", "settlements", "adl", "ledger", "equity", "metrics", "scratch",
    "tier_switches",
)  # fmt: skip


@structref.register
class EngineStateType(types.StructRef):
    """numba type of :class:`EngineState` (one per combination of array types)."""

    def preprocess_fields(self, fields: Any) -> tuple[Any, ...]:
        """Drop literal types, so that one type serves every run with these array types."""
        unliteral: Any = types.unliteral  # numba has no stubs
        return tuple((name, unliteral(typ)) for name, typ in fields)


class EngineState(structref.StructRefProxy):
    """Python handle of the engine's arrays.

    Built by the driver; read-only from Python (the driver keeps its own references to the
    arrays). Constructed with the arrays in :data:`FIELDS` order.
    """

    def __new__(cls, *arrays: npt.NDArray[Any]) -> EngineState:
        """Build the handle from the arrays in :data:`FIELDS` order."""
        return structref.StructRefProxy.__new__(cls, *arrays)  # type: ignore[no-untyped-call, no-any-return]  # numba has no stubs


structref.define_proxy(EngineState, EngineStateType, list(FIELDS))  # type: ignore[no-untyped-call]  # numba has no stubs


@njit(cache=True)
def new_engine_state_nb(  # noqa: PLR0913  # one parameter per EngineState field
    trades: npt.NDArray[np.void],
    bars: npt.NDArray[np.void],
    index: npt.NDArray[np.void],
    mark: npt.NDArray[np.void],
    funding: npt.NDArray[np.void],
    deleverage: npt.NDArray[np.void],
    params: npt.NDArray[np.void],
    tiers: npt.NDArray[np.void],
    slippage: npt.NDArray[np.float64],
    account: npt.NDArray[np.void],
    positions: npt.NDArray[np.void],
    orders: npt.NDArray[np.void],
    work: npt.NDArray[np.void],
    active: npt.NDArray[np.int64],
    fills: npt.NDArray[np.void],
    funding_payments: npt.NDArray[np.void],
    liquidations: npt.NDArray[np.void],
    settlements: npt.NDArray[np.void],
    adl: npt.NDArray[np.void],
    ledger: npt.NDArray[np.void],
    equity: npt.NDArray[np.void],
    metrics: npt.NDArray[np.void],
    scratch: npt.NDArray[np.void],
    tier_switches: npt.NDArray[np.void],
) -> EngineState:
    """Build an :class:`EngineState` in compiled code (arguments in :data:`FIELDS` order).

    Why not ``EngineState(...)`` from Python: the proxy's constructor is compiled in every
    process (numba does not cache it; ~1–8 s before the first event), while this function is
    cached on disk, keyed by the array types, which are the same in every process.
    """
    return EngineState(
        trades, bars, index, mark, funding, deleverage, params, tiers, slippage, account,
        positions, orders, work, active, fills, funding_payments, liquidations, settlements,
        adl, ledger, equity, metrics, scratch, tier_switches,
    )  # fmt: skip


# The dtype of each EngineState field, for :func:`engine_state` (``slippage``: a float64 row
# of 3 per instrument; ``active``: int64 order rows).
FIELD_DTYPES: dict[str, np.dtype[Any]] = {
    "trades": dtypes.TRADE_DTYPE,
    "bars": dtypes.BAR_DTYPE,
    "index": dtypes.PRICE_DTYPE,
    "mark": dtypes.PRICE_DTYPE,
    "funding": dtypes.FUNDING_RATE_DTYPE,
    "deleverage": dtypes.DELEVERAGE_EVENT_DTYPE,
    "params": dtypes.CONTRACT_PARAMS_DTYPE,
    "tiers": dtypes.TIER_DTYPE,
    "slippage": np.dtype(np.float64),
    "account": dtypes.ACCOUNT_STATE_DTYPE,
    "positions": dtypes.POSITION_STATE_DTYPE,
    "orders": dtypes.ORDER_DTYPE,
    "work": dtypes.ORDER_WORK_DTYPE,
    "active": np.dtype(np.int64),
    "fills": dtypes.FILL_DTYPE,
    "funding_payments": dtypes.FUNDING_PAYMENT_DTYPE,
    "liquidations": dtypes.LIQUIDATION_DTYPE,
    "settlements": dtypes.SETTLEMENT_DTYPE,
    "adl": dtypes.ADL_DTYPE,
    "ledger": dtypes.LEDGER_DTYPE,
    "equity": dtypes.EQUITY_DTYPE,
    "metrics": dtypes.METRICS_DTYPE,
    "scratch": dtypes.METRICS_DTYPE,
    "tier_switches": dtypes.TIER_SWITCH_DTYPE,
}


def engine_state(**arrays: npt.NDArray[Any]) -> EngineState:
    """Return an :class:`EngineState` of the given arrays, empty ones for the fields not given.

    For calling one kernel on hand-built arrays (tests, tools): ``metrics`` and ``scratch``
    default to one METRICS_DTYPE row, ``slippage`` to a (n instruments, 3) zero array, the
    others to zero-length arrays of their dtype. Raises ValueError naming an unknown field.
    """
    unknown = sorted(set(arrays) - set(FIELDS))
    if unknown:
        raise ValueError(f"engine_state: unknown field(s) {unknown}; expected some of {FIELDS}")
    n = len(arrays["positions"]) if "positions" in arrays else 0
    defaults = {
        "metrics": np.zeros(1, dtypes.METRICS_DTYPE),
        "scratch": np.zeros(1, dtypes.METRICS_DTYPE),
        "slippage": np.zeros((n, 3)),
    }
    values = [
        arrays.get(name, defaults.get(name, np.zeros(0, FIELD_DTYPES[name]))) for name in FIELDS
    ]
    return new_engine_state_nb(*values)
