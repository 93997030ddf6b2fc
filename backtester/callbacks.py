"""The strategy callbacks, listed once.

``Strategy`` (Python) and ``JitStrategy`` (``@njit``) accept these names, the driver sets the
wake-up mask from them and hands the jitted ones to the replay loop in :data:`LOOP_CALLBACKS`
order. Adding a callback means adding it here (and its argument to
``engine.loop_nb.run_until_nb``).
"""

from __future__ import annotations

from backtester.enums import WakeReason

__all__ = ["CALLBACKS", "LOOP_CALLBACKS", "WAKE_REASONS"]

#: every callback a strategy may define, in the order of a run
CALLBACKS: tuple[str, ...] = (
    "on_start", "on_bar", "on_trade", "on_fill", "on_funding", "on_liquidation",
    "on_margin_call", "on_adl", "on_order_rejected", "on_stop",
)  # fmt: skip

#: the callbacks run inside the replay (all but on_start / on_stop), in the order the jitted
#: loop ``run_until_nb`` takes them as arguments
LOOP_CALLBACKS: tuple[str, ...] = CALLBACKS[1:-1]

#: the wake-up reason on which each replay callback runs
WAKE_REASONS: dict[str, WakeReason] = {
    "on_bar": WakeReason.BAR,
    "on_trade": WakeReason.TRADE,
    "on_fill": WakeReason.FILL,
    "on_funding": WakeReason.FUNDING,
    "on_liquidation": WakeReason.LIQUIDATION,
    "on_margin_call": WakeReason.MARGIN_CALL,
    "on_adl": WakeReason.ADL,
    "on_order_rejected": WakeReason.ORDER_UPDATE,
}
assert tuple(WAKE_REASONS) == LOOP_CALLBACKS
