"""Tick trend follower on the jit path: an EMA of the trade price, entries on a band breakout,
each entry protected by a stop-market order.

Every callback is an ``@njit`` function run inside the replay loop (``JitStrategy``), so the
strategy costs no Python per tick. On each trade: the EMA moves by ``alpha`` towards the price;
when the price is more than ``band`` (fraction) above the EMA and the position is not long, it
buys to ``+contracts``; below the band and not short, it sells to ``-contracts``. Each new
position gets a reduce-only stop ``stop`` (fraction) beyond the entry price, placed from
``on_fill``; the previous stop is cancelled on every entry. Needs trade data (the sample has
ticks on 2024-03-05).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtester.jit import JitStrategy, cancel, fill, market, position, round_price, stop, trade

# state layout: [ema, stop order id (-1: none), alpha, band, contracts, stop fraction]
EMA, STOP_ID, ALPHA, BAND, CONTRACTS, STOP = range(6)


@njit
def on_trade(ctx, state, instrument, row):
    """Update the EMA; enter on a band breakout, cancelling the previous stop."""
    price = trade(ctx, row).price
    if state[EMA] == 0.0:
        state[EMA] = price
    state[EMA] += state[ALPHA] * (price - state[EMA])
    q = position(ctx, instrument)
    size = state[CONTRACTS]
    target = 0.0
    if price > state[EMA] * (1.0 + state[BAND]) and q <= 0.0:
        target = size
    elif price < state[EMA] * (1.0 - state[BAND]) and q >= 0.0:
        target = -size
    if target != 0.0:
        if state[STOP_ID] >= 0:
            cancel(ctx, np.int64(state[STOP_ID]))
            state[STOP_ID] = -1.0
        market(ctx, instrument, target - q)


@njit
def on_fill(ctx, state, fill_row):
    """After an entry fill, place the protective stop beyond its price."""
    entry = fill(ctx, fill_row)
    i = entry.instrument
    q = position(ctx, i)
    if q == 0.0 or np.sign(q) != entry.side:
        return  # a stop (or a partial exit) filled: no new entry to protect
    trigger = entry.price * (1.0 - np.sign(q) * state[STOP])
    trigger = round_price(ctx, i, trigger, 0)
    state[STOP_ID] = stop(ctx, i, -q, trigger, True)


class EmaTrendTicks(JitStrategy):
    """EMA band breakout on ticks with a stop-market behind every entry (jitted)."""

    alpha = 0.002
    band = 0.001
    contracts = 1.0
    stop = 0.004

    on_trade = on_trade
    on_fill = on_fill

    def make_state(self):
        """The callbacks' shared state (see the layout above)."""
        return np.array(
            [0.0, -1.0, self.alpha, self.band, self.contracts, self.stop], dtype=np.float64
        )
