"""Every structured record, stream and parameter dtype, with units in the field names.

One module holds all schemas so the data layer, the kernels and the reports agree on one layout.
All dtypes are ``align=True`` numpy structured dtypes that numba reads and writes directly.

Unit suffixes: ``_ns`` int64 UTC epoch nanoseconds; ``_contracts`` contract count; ``_base`` base
coin; ``_quote`` quote currency; ``_settle`` settlement (margin) currency; ``_rate`` fraction per
period (never a percent); ``_ratio`` dimensionless. Prices are always quote per base. Categorical
fields hold ``IntEnum`` values from :mod:`backtester.enums` (named in the tables below).

Market data streams (inputs to the replay)
------------------------------------------
TRADE_DTYPE
    ========== ===== ======== ==============================================
    field      type  unit     meaning
    ========== ===== ======== ==============================================
    ts_ns      i8    ns UTC   exchange timestamp of the trade
    price      f8    quote    trade price
    qty_base   f8    base     traded quantity in base coin
    side       i1    Side     aggressor side (BUY, SELL, NONE if unknown)
    ========== ===== ======== ==============================================
BAR_DTYPE
    ============= ===== ====== ===================================================
    ts_ns         i8    ns UTC candle **open** time; visible at ts_ns + interval
    open/high/low/close f8 quote prices of the candle
    volume_base   f8    base   traded quantity in base coin (0 when unknown)
    ============= ===== ====== ===================================================
PRICE_DTYPE
    Point price series (index, mark): ``ts_ns`` (i8, ns UTC, the time the price is known),
    ``price`` (f8, quote). Index/mark candles become their path: four points a candle
    (``backtester.data.market.candle_path_points``).
FUNDING_RATE_DTYPE
    ===================== ===== ================= =====================================
    ts_ns                 i8    ns UTC            funding timestamp (payment instant)
    funding_rate          f8    rate per interval positive: longs pay shorts
    funding_interval_ns   i8    ns                interval the rate covers (0: unknown)
    source                i1    FundingRateSource historical or computed
    ===================== ===== ================= =====================================
DELEVERAGE_EVENT_DTYPE
    Auto-deleveraging (ADL) and clawback episodes of one instrument, sorted by ``ts_ns``. The
    venue's other traders are not simulated, so an episode is a **scenario input** (a historical
    announcement or a stress scenario), not something the replay derives; the strategy's own
    position is ranked with the venue's formula (``CONTRACT_PARAMS_DTYPE.adl_rule``: BitMEX
    PNL% × effective leverage, ``insurance_nb.bitmex_adl_ranking_nb``; OKX ROI / margin ratio)
    to decide whether it is hit (``backtester.engine.deleverage_nb``).

    ========= ===== ========== ==========================================================
    ts_ns     i8    ns UTC     instant the episode is applied
    kind      i1    LedgerKind ADL or CLAWBACK
    side      i1    Side       positions hit: +1 longs, −1 shorts, 0 both (ADL); 0 (clawback:
                               every profitable position, whatever its side)
    price     f8    quote      ADL: bankruptcy price of the liquidated counter-order, at which
                               deleveraged positions are closed; NaN for clawback
    threshold f8    1 / rate   ADL: ranking score at or above which a position is hit (the
                               venue queue's cut-off in this scenario, dimensionless); clawback:
                               clawback rate, fraction of the period's net profit taken, in [0, 1]
    contracts f8    contracts  ADL: contracts of the liquidated order still to allocate when the
                               queue reaches the strategy's position; it gives
                               min(|position|, contracts) (``swap.adl.allocate_adl_queue`` splits
                               a liquidation along a queue); 0 or NaN: the whole position
                               (np.zeros rows keep the full close); clawback: unused
    ========= ===== ========== ==========================================================

Contract parameters (compiled from ContractSpec / VenueProfile by ``to_params()``)
---------------------------------------------------------------------------------
TIER_DTYPE
    One row of a maintenance-margin tier table. Size bounds are in the table's ``TierBasis``
    unit (contracts, quote notional or coin notional); ``min_size`` inclusive, ``max_size``
    inclusive for contract-count tables and exclusive cap for notional tables (see
    ``tier_index_nb``). ``maintenance_amount_settle`` is Binance's "cum" (0 for OKX).
CONTRACT_PARAMS_DTYPE
    Everything the kernels need about one instrument and its venue's rules (see field
    comments below).

Output records (the Result)
---------------------------
ORDER_DTYPE, FILL_DTYPE, FUNDING_PAYMENT_DTYPE, LIQUIDATION_DTYPE, SETTLEMENT_DTYPE,
ADL_DTYPE, LEDGER_DTYPE, EQUITY_DTYPE: see the field comments beside each definition. Every
money field is in the settle currency of the instrument's account. Signs: a ledger
``amount_settle`` > 0 adds to the wallet balance; funding ``payment_settle`` < 0 means the
position paid.

Engine state (mutable, changed in place by ``backtester.engine`` kernels)
-------------------------------------------------------------------------
ACCOUNT_STATE_DTYPE
    One row: ``balance_settle`` (wallet incl. isolated margins), ``ts_ns`` of the last event,
    record counters ``n_<kind>``, order counters, the wake-up protocol (``wake_reason``
    WakeReason bits, ``wake_instrument``, ``wake_ref`` stream row, ``wake_mask`` subscribed
    bits) and run options (``latency_ns``, ``bar_path``, ``queue_model``,
    ``margin_call_buffer_ratio``, ``equity_interval_ns``); ``insurance_fund_settle`` sums the
    insurance-fund deltas of the strategy's liquidations.
POSITION_STATE_DTYPE
    One row per instrument: signed ``contracts``, ``entry_price`` and ``reference_price``
    (quote; the PnL reference, reset by daily settlement), isolated ``margin_settle``,
    ``leverage``, ``margin_mode`` (MarginMode), last/mark/index prices (quote), the mark EMA
    state (``ema_basis`` quote, ``next_mark_sample_ns``), last ``funding_rate``,
    ``next_settlement_ns``, ``bar_interval_ns`` and the cursor/end row ``c_*``/``e_*`` of each
    stream in the concatenated stream arrays.
ORDER_WORK_DTYPE
    Beside each ORDER_DTYPE row: ``active_from_ns`` (creation + latency), ``queue_ahead_base``
    (base coin ahead of a resting limit), ``is_taker`` (marketable at acceptance),
    ``queue_initial_base`` (assumed queue ahead at acceptance, base coin, 0 = empty queue),
    ``fill_credit_contracts`` (sub-lot traded size carried to the next trade), the trail of a
    trailing stop (``trail_offset_quote`` or ``trail_rate``, ``trail_extreme_price``).
"""

from __future__ import annotations

import numpy as np


def field_names(dtype: np.dtype) -> tuple[str, ...]:
    """Return the field names of a structured dtype (``()`` for a plain one).

    ``dtype.names`` typed as a tuple, so loops over it need no None check.
    """
    return dtype.names or ()


# --------------------------------------------------------------------------- market data streams

TRADE_DTYPE = np.dtype(
    [("ts_ns", np.int64), ("price", np.float64), ("qty_base", np.float64), ("side", np.int8)],
    align=True,
)

BAR_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("open", np.float64),
        ("high", np.float64),
        ("low", np.float64),
        ("close", np.float64),
        ("volume_base", np.float64),
    ],
    align=True,
)

PRICE_DTYPE = np.dtype([("ts_ns", np.int64), ("price", np.float64)], align=True)

FUNDING_RATE_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("funding_rate", np.float64),
        ("funding_interval_ns", np.int64),
        ("source", np.int8),  # FundingRateSource
    ],
    align=True,
)

DELEVERAGE_EVENT_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),  # ns UTC, when the episode is applied
        ("kind", np.int8),  # LedgerKind.ADL or LedgerKind.CLAWBACK
        ("side", np.int8),  # Side of the positions hit: +1 longs, -1 shorts, 0 both / clawback
        ("price", np.float64),  # quote; ADL close price (bankruptcy price); NaN for clawback
        # ADL: ranking-score cut-off (dimensionless, hit if score >= threshold);
        # clawback: rate, fraction of the period's net profit taken, 0..1
        ("threshold", np.float64),
        ("contracts", np.float64),  # ADL: quantity left to allocate; 0 / NaN: whole position
    ],
    align=True,
)

# --------------------------------------------------------------------------- contract parameters

TIER_SWITCH_DTYPE = np.dtype(
    [
        ("instrument", np.int32),
        ("valid_from_ns", np.int64),  # ns UTC, the dated table's effective date
        ("tier_offset", np.int64),  # its first row in the run's tier rows
        ("tier_count", np.int64),
        ("max_leverage", np.float64),  # its tier 1's
    ],
    align=True,
)

TIER_DTYPE = np.dtype(
    [
        ("tier", np.int32),  # 1-based tier number as the venue numbers it
        ("min_size", np.float64),  # in the table's TierBasis unit
        ("max_size", np.float64),  # in the table's TierBasis unit
        ("maintenance_margin_rate", np.float64),
        ("initial_margin_rate", np.float64),
        ("max_leverage", np.float64),
        ("maintenance_amount_settle", np.float64),  # Binance "cum"; 0 elsewhere
    ],
    align=True,
)

CONTRACT_PARAMS_DTYPE = np.dtype(
    [
        ("contract_kind", np.int8),  # ContractKind
        # linear: base coin per contract; inverse: quote (USD) per contract
        ("face_value", np.float64),
        ("tick_size_quote", np.float64),
        ("lot_size_contracts", np.float64),
        ("min_size_contracts", np.float64),
        ("maker_fee_rate", np.float64),  # negative = rebate
        ("taker_fee_rate", np.float64),
        ("liquidation_fee_rate", np.float64),
        ("liquidation_rule", np.int8),  # LiquidationRule
        ("partial_liquidation_rule", np.int8),  # PartialLiquidationRule
        ("partial_liquidation_min_tier", np.int32),  # first tier that is partially liquidated
        ("tier_basis", np.int8),  # TierBasis
        ("tier_offset", np.int32),  # first row of this instrument in the shared tier array
        ("tier_count", np.int32),
        ("mark_price_method", np.int8),  # MarkPriceMethod
        ("mark_ema_span", np.float64),  # EMA span N in samples; alpha = 2 / (N + 1)
        ("mark_sample_ns", np.int64),  # EMA sampling step; 0 = every event
        ("funding_interval_ns", np.int64),
        ("daily_settlement", np.bool_),
        ("settlement_offset_ns", np.int64),  # time of day of the settlement, ns after 00:00 UTC
        ("adl_rule", np.int8),  # AdlRule
        ("max_leverage", np.float64),
    ],
    align=True,
)

# --------------------------------------------------------------------------- output records

ORDER_DTYPE = np.dtype(
    [
        ("order_id", np.int64),
        ("instrument", np.int32),  # index into the run's instrument list
        ("ts_created_ns", np.int64),
        ("ts_updated_ns", np.int64),
        ("order_type", np.int8),  # OrderType
        ("side", np.int8),  # Side
        ("time_in_force", np.int8),  # TimeInForce
        ("reduce_only", np.bool_),
        ("post_only", np.bool_),
        ("status", np.int8),  # OrderStatus
        ("reject_reason", np.int8),  # RejectReason
        ("price", np.float64),  # limit price (quote); NaN for market
        ("trigger_price", np.float64),  # stop / take-profit trigger (quote); NaN if none
        ("qty_contracts", np.float64),
        ("filled_contracts", np.float64),
        ("average_fill_price", np.float64),
        ("tag", np.int64),  # free integer the strategy may attach
    ],
    align=True,
)

FILL_DTYPE = np.dtype(
    [
        ("fill_id", np.int64),
        ("order_id", np.int64),  # -1 for liquidation / ADL fills
        ("instrument", np.int32),
        ("ts_ns", np.int64),
        ("side", np.int8),  # Side of this fill
        ("liquidity", np.int8),  # Liquidity
        ("price", np.float64),  # quote
        ("qty_contracts", np.float64),
        ("fee_settle", np.float64),  # fee paid (>0) or rebate (<0)
        ("realised_pnl_settle", np.float64),  # trading PnL realised by this fill
        ("position_after_contracts", np.float64),  # signed
    ],
    align=True,
)

FUNDING_PAYMENT_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("instrument", np.int32),
        ("funding_rate", np.float64),
        ("mark_price", np.float64),
        ("position_contracts", np.float64),  # signed
        ("payment_settle", np.float64),  # received > 0, paid < 0
        ("source", np.int8),  # FundingRateSource
    ],
    align=True,
)

LIQUIDATION_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("instrument", np.int32),
        ("side", np.int8),  # side of the position liquidated
        ("is_partial", np.bool_),
        ("tier", np.int32),  # tier of the position at the trigger
        ("contracts_before", np.float64),  # absolute
        ("contracts_after", np.float64),  # absolute
        ("mark_price", np.float64),  # mark at trigger
        ("liquidation_price", np.float64),
        ("bankruptcy_price", np.float64),
        ("fill_price", np.float64),  # price the position was taken over at
        ("market_price", np.float64),  # where the market could have absorbed it (last trade)
        ("margin_ratio", np.float64),  # venue margin ratio at the trigger
        ("loss_settle", np.float64),  # trading loss booked (>0 is a loss)
        ("fee_settle", np.float64),  # liquidation fee charged
        ("insurance_fund_delta_settle", np.float64),  # >0: fund gains, <0: fund pays
        # what triggered it: PriceStream, PathPoint and the open time of the candle (ns UTC;
        # the point's own time for point streams and ticks)
        ("trigger_stream", np.int8),
        ("trigger_point", np.int8),
        ("trigger_candle_ns", np.int64),
        # fund balance after this liquidation (floored at 0; see ACCOUNT_STATE_DTYPE)
        ("insurance_fund_after_settle", np.float64),
    ],
    align=True,
)

SETTLEMENT_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("instrument", np.int32),
        ("settlement_price", np.float64),
        ("previous_reference_price", np.float64),
        ("position_contracts", np.float64),  # signed
        ("settled_pnl_settle", np.float64),  # UPL moved to balance
        # part of a negative settled UPL taken out of the isolated (fixed) margin; 0 in cross
        ("margin_deducted_settle", np.float64),
    ],
    align=True,
)

ADL_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("instrument", np.int32),
        ("kind", np.int8),  # LedgerKind.ADL or LedgerKind.CLAWBACK
        ("contracts", np.float64),  # contracts closed by ADL (0 for clawback)
        ("price", np.float64),  # ADL fill price (NaN for clawback)
        ("rate", np.float64),  # clawback rate of profit, or ADL ranking score
        ("amount_settle", np.float64),  # amount taken from the strategy (>0 is a loss)
    ],
    align=True,
)

LEDGER_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("kind", np.int8),  # LedgerKind
        ("instrument", np.int32),  # -1 for account-level movements
        ("amount_settle", np.float64),  # >0 adds to wallet balance
        ("balance_after_settle", np.float64),
        ("ref_id", np.int64),  # fill_id / record index the movement comes from
    ],
    align=True,
)

EQUITY_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("balance_settle", np.float64),  # wallet balance
        ("equity_settle", np.float64),  # balance + unrealised PnL at mark
        ("unrealised_pnl_settle", np.float64),
        ("maintenance_margin_settle", np.float64),
        ("margin_ratio", np.float64),  # venue-defined, see LiquidationRule
        ("position_contracts", np.float64),  # signed, first instrument
        ("mark_price", np.float64),  # first instrument
        ("last_price", np.float64),  # first instrument
    ],
    align=True,
)

ALL_RECORD_DTYPES = {
    "orders": ORDER_DTYPE,
    "fills": FILL_DTYPE,
    "funding_payments": FUNDING_PAYMENT_DTYPE,
    "liquidations": LIQUIDATION_DTYPE,
    "settlements": SETTLEMENT_DTYPE,
    "adl": ADL_DTYPE,
    "ledger": LEDGER_DTYPE,
    "equity": EQUITY_DTYPE,
}
"""Record kinds of a :class:`backtester.results.Result`, by attribute name."""

# --------------------------------------------------------------------------- engine state
# Mutable state of the replay loop (backtester.engine). Length-1 (account) or one row per
# instrument (positions) structured arrays that only the engine kernels change in place.
#
# ACCOUNT_STATE_DTYPE: wallet balance and every counter of the run (one row).
#     balance_settle (f8, settle) wallet balance incl. isolated margins; ts_ns (i8) time of the
#     last processed event; n_<kind> (i8) records written per output buffer; next_order_id /
#     next_fill_id (i8); n_orders_seen (i8) order rows already validated; wake_reason (i8,
#     WakeReason bits) and wake_instrument / wake_ref (i8) what woke the strategy;
#     margin_call_buffer_ratio (f8) liquidation buffer below which on_margin_call fires;
#     latency_ns (i8) order activation delay; bar_path (i1) 0 conservative, 1 nearest-first;
#     equity_interval_ns / next_equity_ns (i8) equity sampling; wake_mask (i8, WakeReason bits)
#     which wake-ups the strategy subscribed to; insurance_fund_settle (f8) the venue's
#     insurance-fund balance: the run's starting value (``insurance_fund_settle`` option,
#     default +inf) plus the deltas of the strategy's liquidations, floored at 0 — a deficit
#     beyond it adds to uncovered_deficit_settle, which the next clawback (clawback_period_ns
#     grid) socialises.
# POSITION_STATE_DTYPE: one row per instrument.
#     contracts (f8, contracts, signed); entry_price (f8, quote) average entry;
#     reference_price (f8, quote) PnL reference (= entry until a daily settlement resets it);
#     margin_settle (f8) isolated position margin; leverage (f8); margin_mode (i1 MarginMode);
#     last_price / mark_price / index_price (f8, quote); ema_basis (f8, quote) EMA of last −
#     index; ema_initialised (b1); next_mark_sample_ns (i8); funding_rate (f8, rate) last known;
#     next_funding_ns (i8); next_settlement_ns (i8); margin_call_active (b1); bar_interval_ns
#     (i8); c_<stream> / e_<stream> (i8) cursor and end row of each stream in the concatenated
#     stream arrays; fill_on_trades (b1) whether resting orders fill on trades (else on bars);
#     last_trade_ns (i8) time of the last trade replayed (0 before any): a bar during which no
#     trade printed fills resting orders on its intrabar path even when the instrument fills on
#     trades (the bars-only stretches of data with trades for part of the span).
#     bar_phase (i1) which event of the current bar row comes next (0 open, 1 first extreme,
#     2 second extreme, 3 close of the path, 4 bar close for the strategy; EventKind);
#     bar_low_first (b1) the current bar's path visits its low first; bar_fills (b1) resting
#     orders fill on the current bar's path (decided at its open); index_interval_ns /
#     mark_interval_ns (i8) candle length when that stream is a candle path (0: points);
#     index_swap / mark_swap (b1) the current candle's extremes are replayed low first;
#     trigger_stream (i1 PriceStream), trigger_point (i1 PathPoint), trigger_candle_ns (i8)
#     the price update being applied (copied into a liquidation it triggers);
#     c_tier_switch / e_tier_switch (i8) cursor and end row of the instrument's dated tier
#     tables still to come (TIER_SWITCH_DTYPE rows of the run);
#     segment_fill_price (f8, quote) the first fill on the bar-path segment just replayed when
#     the strategy is woken for it (0: none): orders placed at that wake (exits of the entry)
#     are matched against the rest of the segment, from that price (loop_nb.resume_segment_nb).
#     safe_mark_low / safe_mark_high (f8, quote) an open isolated position's mark band inside
#     which the liquidation check's fast exit certainly holds, valid while safe_contracts,
#     safe_reference_price, safe_margin_settle and the tier table (safe_tier_offset /
#     safe_tier_count) are the position's (0: no band; loop_nb.safe_mark_band_nb).
# ORDER_WORK_DTYPE: working fields of each order row beside ORDER_DTYPE.
#     active_from_ns (i8) first event time the order may fill (creation + latency);
#     queue_ahead_base (f8, base) volume ahead of a resting limit; is_taker (b1) marketable at
#     acceptance (fills at event prices as taker); queue_initial_base (f8, base, >= 0) the
#     queue assumed ahead when the order is accepted (written with the order row; 0 = the back
#     of an empty queue), copied into queue_ahead_base by accept_orders_nb;
#     fill_credit_contracts (f8, contracts) traded size owed to the order that was smaller than
#     one lot (carried to the next trade so sub-lot prints still add up to fills);
#     trail_offset_quote (f8, quote) / trail_rate (f8, fraction) the trail of a
#     TRAILING_STOP_MARKET (one of them > 0, the other 0); trail_extreme_price (f8, quote) the
#     most favourable price seen since acceptance (highest for a sell, lowest for a buy; 0 at
#     placement = start from the last price when accepted).
ACCOUNT_STATE_DTYPE = np.dtype(
    [
        ("balance_settle", np.float64),
        ("ts_ns", np.int64),
        ("n_orders", np.int64),
        ("n_orders_seen", np.int64),
        ("n_fills", np.int64),
        ("n_funding_payments", np.int64),
        ("n_liquidations", np.int64),
        ("n_settlements", np.int64),
        ("n_adl", np.int64),
        ("n_ledger", np.int64),
        ("n_equity", np.int64),
        ("n_active", np.int64),
        ("next_order_id", np.int64),
        ("next_fill_id", np.int64),
        ("wake_reason", np.int64),
        ("wake_instrument", np.int64),
        ("wake_ref", np.int64),
        ("wake_mask", np.int64),
        ("margin_call_buffer_ratio", np.float64),
        ("latency_ns", np.int64),
        ("bar_path", np.int8),
        ("queue_model", np.bool_),
        ("equity_interval_ns", np.int64),
        ("next_equity_ns", np.int64),
        ("insurance_fund_settle", np.float64),
        ("stop_ns", np.int64),
        ("pending_kind", np.int64),
        ("pending_instrument", np.int64),
        # records already handed to the strategy's on_fill / on_funding / on_liquidation
        ("n_fills_seen", np.int64),
        ("n_funding_seen", np.int64),
        ("n_liquidations_seen", np.int64),
        ("n_adl_seen", np.int64),
        # WakeReason bits handled by jitted callbacks inside the loop (jit path; 0 otherwise)
        ("callback_mask", np.int64),
        # queue model: resting size assumed ahead of a new limit order at its price, base coin
        ("queue_initial_base", np.float64),
        # an equity row is due for the instant ``ts_ns``: written once every event of that
        # instant has run (before the first event of a later one, or at the end of the run)
        ("equity_pending", np.bool_),
        # earliest effective date of a dated tier table still to come (int64 max: none)
        ("next_tier_switch_ns", np.int64),
        # insurance fund and clawback (swap/insurance_nb.py): deficits the fund could not cover
        # in the current clawback period; the period grid (0 = no clawback) and its next end;
        # Σ profits of the venue's profitable accounts per period (NaN: the strategy's own)
        ("uncovered_deficit_settle", np.float64),
        ("clawback_period_ns", np.int64),
        ("clawback_offset_ns", np.int64),
        ("next_clawback_ns", np.int64),
        ("clawback_profit_pool_settle", np.float64),
        # Σ clawback the account could not pay: a clawback is capped at the free wallet
        # (balance − isolated margins, deleverage_nb.clawback_cap_nb); reported after the run
        ("clawback_not_taken_settle", np.float64),
    ],
    align=True,
)

POSITION_STATE_DTYPE = np.dtype(
    [
        ("contracts", np.float64),
        ("entry_price", np.float64),
        ("reference_price", np.float64),
        ("margin_settle", np.float64),
        ("leverage", np.float64),
        ("margin_mode", np.int8),
        ("last_price", np.float64),
        ("mark_price", np.float64),
        ("index_price", np.float64),
        ("ema_basis", np.float64),
        ("ema_initialised", np.bool_),
        ("next_mark_sample_ns", np.int64),
        ("funding_rate", np.float64),
        ("next_settlement_ns", np.int64),
        ("margin_call_active", np.bool_),
        ("bar_interval_ns", np.int64),
        ("fill_on_trades", np.bool_),
        ("last_trade_ns", np.int64),
        ("c_index", np.int64),
        ("e_index", np.int64),
        ("c_mark", np.int64),
        ("e_mark", np.int64),
        ("c_funding", np.int64),
        ("e_funding", np.int64),
        ("c_trade", np.int64),
        ("e_trade", np.int64),
        ("c_bar", np.int64),
        ("e_bar", np.int64),
        ("c_deleverage", np.int64),
        ("e_deleverage", np.int64),
        ("bar_phase", np.int8),
        ("bar_low_first", np.bool_),
        ("bar_fills", np.bool_),
        ("index_interval_ns", np.int64),
        ("mark_interval_ns", np.int64),
        ("index_swap", np.bool_),
        ("mark_swap", np.bool_),
        ("trigger_stream", np.int8),
        ("trigger_point", np.int8),
        ("trigger_candle_ns", np.int64),
        ("c_tier_switch", np.int64),
        ("e_tier_switch", np.int64),
        ("segment_fill_price", np.float64),
        ("safe_mark_low", np.float64),
        ("safe_mark_high", np.float64),
        ("safe_contracts", np.float64),
        ("safe_reference_price", np.float64),
        ("safe_margin_settle", np.float64),
        ("safe_tier_offset", np.int64),
        ("safe_tier_count", np.int64),
    ],
    align=True,
)

# Margin metrics of one position, or of the cross account, at the marks (engine/metrics_nb.py):
# one row in the engine state (``metrics``; ``scratch`` for a position's inside an account sum).
#     unrealised_pnl_settle       PnL from the reference price to the mark
#     position_value_settle       value at the mark (pnl_nb.position_value_nb)
#     maintenance_margin_settle   maintenance margin at the position's tier (Σ for cross)
#     maintenance_margin_rate     the tier's rate (cross: Σ maintenance / Σ value)
#     margin_balance_settle       margin + UPL (isolated), wallet − isolated margins + Σ UPL (cross)
#     liquidation_buffer          margin_nb.liquidation_buffer_nb (<= 1: liquidation; inf: none)
#     margin_ratio                margin_nb.margin_ratio_nb, the venue's ratio (NaN: none)
#     tier                        1-based tier number of the position (0: flat)
#     maintenance_amount_settle   the tier's maintenance amount (Binance "cum")
METRICS_DTYPE = np.dtype(
    [
        ("unrealised_pnl_settle", np.float64),
        ("position_value_settle", np.float64),
        ("maintenance_margin_settle", np.float64),
        ("maintenance_margin_rate", np.float64),
        ("margin_balance_settle", np.float64),
        ("liquidation_buffer", np.float64),
        ("margin_ratio", np.float64),
        ("tier", np.int64),
        ("maintenance_amount_settle", np.float64),
    ],
    align=True,
)

ORDER_WORK_DTYPE = np.dtype(
    [
        ("active_from_ns", np.int64),
        ("queue_ahead_base", np.float64),
        ("is_taker", np.bool_),
        ("queue_initial_base", np.float64),
        ("fill_credit_contracts", np.float64),
        ("trail_offset_quote", np.float64),
        ("trail_rate", np.float64),
        ("trail_extreme_price", np.float64),
    ],
    align=True,
)
