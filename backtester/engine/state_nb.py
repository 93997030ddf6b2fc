"""The engine's arrays of one run as one value: :class:`EngineState` (a numba StructRef).

It is the single argument of the replay kernels and the ``ctx`` a jitted strategy callback
receives (``ctx.positions[i]["contracts"]``, ``ctx.bars[row]["close"]``, ...). Fields: the state
(``account``, ``positions``, ``orders`` and their ``work`` rows, the ``active`` order list), the
contract ``params`` and ``tiers``, the input streams (``trades``, ``bars``, ``index``, ``mark``,
``funding`` and the ADL/clawback scenario events ``deleverage``), per-instrument taker
``slippage`` rates, the record buffers (``fills``, ``funding_payments``, ``liquidations``,
``settlements``, ``adl``, ``ledger``, ``equity``), two N_METRICS work arrays (``metrics``,
``scratch``) and the dated tier tables that take effect during the run (``tier_switches``,
TIER_SWITCH_DTYPE rows sorted by instrument then date).

Why a StructRef and not a tuple of arrays: a jitted function call passes a StructRef as one
reference-counted pointer, while a tuple of ~20 arrays is passed as ~140 words with 20
reference-count updates (~0.1 µs a call, more than the work of one tick).
"""

from __future__ import annotations

from numba import njit, types
from numba.experimental import structref

FIELDS = (
    "trades", "bars", "index", "mark", "funding", "deleverage", "params", "tiers", "slippage",
    "account", "positions", "orders", "work", "active", "fills", "funding_payments",
    "liquidations", "settlements", "adl", "ledger", "equity", "metrics", "scratch",
    "tier_switches",
)  # fmt: skip


@structref.register
class EngineStateType(types.StructRef):
    """numba type of :class:`EngineState` (one per combination of array types)."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class EngineState(structref.StructRefProxy):
    """Python handle of the engine's arrays (built by the driver; read-only from Python —
    the driver keeps its own references to the arrays)."""

    def __new__(
        cls,
        trades,
        bars,
        index,
        mark,
        funding,
        deleverage,
        params,
        tiers,
        slippage,
        account,
        positions,
        orders,
        work,
        active,
        fills,
        funding_payments,
        liquidations,
        settlements,
        adl,
        ledger,
        equity,
        metrics,
        scratch,
        tier_switches,
    ):
        return structref.StructRefProxy.__new__(
            cls, trades, bars, index, mark, funding, deleverage, params, tiers, slippage,
            account, positions, orders, work, active, fills, funding_payments, liquidations,
            settlements, adl, ledger, equity, metrics, scratch, tier_switches,
        )  # fmt: skip


structref.define_proxy(EngineState, EngineStateType, list(FIELDS))


@njit(cache=True)
def new_engine_state_nb(
    trades, bars, index, mark, funding, deleverage, params, tiers, slippage, account,
    positions, orders, work, active, fills, funding_payments, liquidations, settlements, adl,
    ledger, equity, metrics, scratch, tier_switches,
):  # fmt: skip
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
