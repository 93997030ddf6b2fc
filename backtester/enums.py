"""Categorical values used in records, parameters and kernels, as ``IntEnum`` classes.

Every categorical field of a dtype in :mod:`backtester.dtypes` holds the integer value of one of
these enums. numba compares ``IntEnum`` members inside ``@njit(cache=True)`` code, so kernels branch
on them directly (``if rule == LiquidationRule.BINANCE``).

Values are part of the on-disk format of saved runs: append new members, never renumber.
"""

from __future__ import annotations

from enum import IntEnum


class ContractKind(IntEnum):
    """How a contract's value and PnL are computed.

    LINEAR
        USDT-margined: PnL = contracts · face_value · (exit − entry), in quote currency;
        ``face_value`` is base coin per contract (OKX BTC-USDT-SWAP 0.01 BTC).
    INVERSE
        Coin-margined: PnL = contracts · face_value · (1/entry − 1/exit), in base coin;
        ``face_value`` is quote (USD) per contract (OKX BTC-USD-SWAP 100 USD).
    """

    LINEAR = 0
    INVERSE = 1


class Side(IntEnum):
    """Order or position side; the value is the sign of the signed quantity."""

    SELL = -1
    NONE = 0
    BUY = 1


class MarginMode(IntEnum):
    """Isolated (OKX "fixed") margin per position, or cross margin over the settle currency."""

    ISOLATED = 0
    CROSS = 1


class EventKind(IntEnum):
    """Kinds of replay events; the value is the priority at equal timestamps (lower first).

    This is the one definition of the order of events at one instant ``T``; the replay loop
    (:mod:`backtester.engine.loop_nb`), the signal kernel and the chunked windows of
    :mod:`backtester.data.stream` follow it. A trade candle ``[t0, t0 + Δ)`` is five events
    (its path: open at ``t0``, the two extremes at ``t0 + Δ//3`` and ``t0 + 2Δ//3``, the close
    at ``t0 + Δ``, then the bar close for the strategy); an index or mark candle is four price
    points (open at ``t0 + 1 ns``, extremes at ``t0 + Δ//3`` and ``t0 + 2Δ//3``, close at
    ``t0 + Δ``; :func:`backtester.data.market.candle_path_points`). Why this order:

    BAR_PATH
        A trade candle's path point (an extreme, or the close at ``t0 + Δ``): the prices traded
        up to ``T`` are known at ``T``, so they come first — the computed mark
        (``index + EMA(last − index)``) at ``T`` then uses the last price of ``T``, not of the
        previous candle (a stale basis delays liquidations on a sharp move). Resting orders
        fill on the segment that ends here.
    TRADE
        A trade tick, for the same reason (a price known at ``T``).
    INDEX, MARK
        The mark in force at ``T`` (recomputed from the index, or the historical mark), then
        the liquidation check.
    FUNDING
        Paid or received at the mark in force at ``T`` by the position held at ``T`` (after
        the index and mark points of ``T``: Binance "Funding Rate" FAQ, OKX "Funding fee":
        position value at the mark at the funding time).
    DELEVERAGE
        ADL / clawback scenario events, after the market state of ``T`` is known.
    BAR
        The bar that closed at ``T`` is shown to the strategy (``on_bar``), which sees the
        mark, funding and fills of ``T``; a market order it places is marketable from ``T``.
    BAR_OPEN
        The next candle opens at ``T``: orders placed at the previous close fill at its open
        price and are booked at ``T``, so the position is in every later event (the mark path
        of the new candle starts at ``T + 1 ns``); it did not pay the funding of ``T`` (a
        position opened just after the funding timestamp does not pay it).

    Not persisted in any record (free to renumber when the order changes).
    """

    BAR_PATH = 0
    TRADE = 1
    INDEX = 2
    MARK = 3
    FUNDING = 4
    DELEVERAGE = 5
    BAR = 6
    BAR_OPEN = 7


class PriceStream(IntEnum):
    """The price stream whose update triggered a liquidation (``LIQUIDATION_DTYPE``).

    NONE: not triggered by a price update (e.g. a scenario event); INDEX: the computed mark
    after an index point; MARK: a historical mark point; TRADES: a trade tick (LAST mark);
    BARS: a trade candle's path (LAST mark).
    """

    NONE = 0
    INDEX = 1
    MARK = 2
    TRADES = 3
    BARS = 4


class PathPoint(IntEnum):
    """Which point of a candle's replayed path a price is (``LIQUIDATION_DTYPE.trigger_point``).

    POINT: the stream is a series of points, not candles; TICK: a trade tick.
    """

    NONE = 0
    POINT = 1
    OPEN = 2
    HIGH = 3
    LOW = 4
    CLOSE = 5
    TICK = 6


class OrderType(IntEnum):
    """Order types accepted by the simulated exchange.

    TRAILING_STOP_MARKET is a stop-market whose trigger follows the price: a sell (protecting a
    long) triggers when the price falls a distance (``trail_offset_quote``) or a fraction
    (``trail_rate``) below the highest price seen since it was accepted, a buy the mirror image
    (``backtester.engine.orders_nb.trail_level_nb``); the trigger ratchets and never loosens.
    """

    MARKET = 0
    LIMIT = 1
    STOP_MARKET = 2
    STOP_LIMIT = 3
    TAKE_PROFIT = 4
    TAKE_PROFIT_LIMIT = 5
    TRAILING_STOP_MARKET = 6


class TimeInForce(IntEnum):
    """Good-till-cancelled, immediate-or-cancel, fill-or-kill."""

    GTC = 0
    IOC = 1
    FOK = 2


class OrderStatus(IntEnum):
    """Lifecycle of an order."""

    NEW = 0
    PARTIALLY_FILLED = 1
    FILLED = 2
    CANCELLED = 3
    REJECTED = 4
    EXPIRED = 5
    TRIGGERED = 6


class RejectReason(IntEnum):
    """Why the exchange refused an order; the strategy sees it in ``on_order_rejected``."""

    NONE = 0
    INSUFFICIENT_MARGIN = 1
    LEVERAGE_ABOVE_TIER_MAX = 2
    SIZE_NOT_LOT_MULTIPLE = 3
    PRICE_OFF_TICK = 4
    POST_ONLY_WOULD_TAKE = 5
    REDUCE_ONLY_WOULD_INCREASE = 6
    FOK_NOT_FILLABLE = 7
    SIZE_BELOW_MINIMUM = 8
    POSITION_LIQUIDATING = 9
    UNKNOWN_ORDER = 10
    INVALID_PRICE = 11


class Liquidity(IntEnum):
    """Whether a fill added (maker) or removed (taker) liquidity, or was forced."""

    MAKER = 0
    TAKER = 1
    LIQUIDATION = 2
    ADL = 3


class LedgerKind(IntEnum):
    """Type of one cash movement in the ledger; every report figure sums from these."""

    DEPOSIT = 0
    TRADE_PNL = 1
    FEE = 2
    FUNDING = 3
    LIQUIDATION_LOSS = 4
    LIQUIDATION_FEE = 5
    INSURANCE_FUND = 6
    SETTLEMENT = 7
    CLAWBACK = 8
    ADL = 9
    MARGIN_TRANSFER = 10


class LiquidationRule(IntEnum):
    """Which venue's trigger decides a forced liquidation (checked on the mark price).

    OKX_LEGACY
        OKEx 2019-20: margin ratio (margin + UPL) / position value ≤ MMR + liquidation fee rate.
    OKX_MGN_RATIO
        OKX unified account: mgnRatio = (margin + UPL) / (MM + liquidation fee) ≤ 1.
    BINANCE
        margin balance ≤ maintenance margin (notional · MMR − cum).
    BITMEX
        margin balance ≤ maintenance margin + close commission.
    BYBIT
        position margin ≤ maintenance margin (incl. estimated close fee).
    """

    OKX_LEGACY = 0
    OKX_MGN_RATIO = 1
    BINANCE = 2
    BITMEX = 3
    BYBIT = 4


class MarginRatioForm(IntEnum):
    """How a venue's displayed margin ratio is formed.

    ``margin_nb.liquidation_rule_terms_nb`` maps each :class:`LiquidationRule` to one.

    BALANCE_OVER_VALUE
        (margin + UPL) / position value (OKEx 2019-20); liquidation at ≤ MMR + fee.
    BALANCE_OVER_REQUIREMENT
        (margin + UPL) / (MM + liquidation fee · PV) (OKX mgnRatio); liquidation at ≤ 1.
    MAINTENANCE_OVER_BALANCE
        MM / margin balance (Binance); liquidation at ≥ 1: the only form that *rises* toward
        liquidation.
    BALANCE_OVER_MAINTENANCE
        margin balance / MM (BitMEX, Bybit); liquidation at ≤ (MMR + fee) / MMR.
    """

    BALANCE_OVER_VALUE = 0
    BALANCE_OVER_REQUIREMENT = 1
    MAINTENANCE_OVER_BALANCE = 2
    BALANCE_OVER_MAINTENANCE = 3


class PartialLiquidationRule(IntEnum):
    """How a large position is stepped down its tiers before a full takeover.

    NONE: always full takeover. TO_TIER_1: reduce to the tier-1 maximum in one step (OKEx English
    guide 2019-20). TWO_TIERS_PER_STEP: reduce by two tiers per step (OKEx Chinese guide, later OKX
    pages). ONE_TIER_PER_STEP: BitMEX-style stepping down the risk limits.
    """

    NONE = 0
    TO_TIER_1 = 1
    TWO_TIERS_PER_STEP = 2
    ONE_TIER_PER_STEP = 3


class TierBasis(IntEnum):
    """Unit in which a tier table's size bounds are expressed.

    CONTRACTS: contract count (OKX). NOTIONAL_QUOTE: notional in quote currency (Binance USDⓈ-M).
    NOTIONAL_COIN: notional in base coin (Binance COIN-M, BitMEX risk limits in XBT).
    """

    CONTRACTS = 0
    NOTIONAL_QUOTE = 1
    NOTIONAL_COIN = 2


class MarkPriceMethod(IntEnum):
    """How the mark price is formed.

    INDEX_EMA_BASIS: index + EMA(last − index) (OKX). FUNDING_BASIS: index · (1 + rate · time to
    funding / interval) (BitMEX fair price, Binance 2019-20). BINANCE_MEDIAN: median(price1,
    price2, last). HISTORICAL: replay a recorded mark series. LAST: last trade price (no mark).
    """

    INDEX_EMA_BASIS = 0
    FUNDING_BASIS = 1
    BINANCE_MEDIAN = 2
    HISTORICAL = 3
    LAST = 4


class FundingRateSource(IntEnum):
    """Whether a funding rate came from the venue's history or was computed from the premium."""

    HISTORICAL = 0
    COMPUTED = 1


class AdlRule(IntEnum):
    """How a deficit the insurance fund cannot cover is socialised.

    NONE: the fund is unlimited. CLAWBACK: OKEx ≤ 2019 equal share of net profit. ADL_BITMEX:
    ranking PNL% × effective leverage. ADL_OKX: ranking by profit and leverage (OKX 2020+).
    """

    NONE = 0
    CLAWBACK = 1
    ADL_BITMEX = 2
    ADL_OKX = 3


class Status(IntEnum):
    """Return code of engine kernels; kernels never raise on data conditions."""

    OK = 0
    END_OF_DATA = 1
    WAKE = 2
    BUFFER_FULL = 3
    ERROR = 4


class WakeReason(IntEnum):
    """Why the replay loop handed control back to the Python strategy (bit flags)."""

    NONE = 0
    BAR = 1
    TRADE = 2
    FILL = 4
    FUNDING = 8
    LIQUIDATION = 16
    MARGIN_CALL = 32
    TIMER = 64
    ORDER_UPDATE = 128
    ADL = 256


class MarkAverage(IntEnum):
    """Moving average applied to the sampled basis of an index + MA(basis) mark.

    EMA: exponential, α = 2/(span + 1) per sample. SMA: simple mean of the last ``span`` samples.
    """

    EMA = 0
    SMA = 1
