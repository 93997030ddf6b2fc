"""A 50x long that meets the sample's crash: shows liquidation, its loss and the insurance fund.

Buys ``contracts`` at the first bar close and re-enters after each liquidation. On the sample's
2024-03-05 crash (the index falls ~25 %) the mark crosses the liquidation price and the
position is taken over at its bankruptcy price.
"""

from __future__ import annotations

from backtester.strategy import Strategy


class HighLeverage(Strategy):
    """Always long at high leverage; counts liquidations and margin calls."""

    contracts = 10.0
    hold_bars = 1440  # re-open every day so the entry stays near the market

    def on_start(self, ctx):
        """Counters for the summary."""
        self.liquidations = 0
        self.margin_calls = 0

    def on_bar(self, ctx, bar):
        """Hold a long position; re-open it every ``hold_bars`` bars and after a liquidation."""
        if len(ctx.closes) % self.hold_bars == 0 and ctx.position != 0:
            ctx.close_position()
        elif ctx.position == 0 and not ctx.open_orders().size:
            ctx.market(self.contracts)

    def on_margin_call(self, ctx, info):
        """The buffer to liquidation is thin; this strategy just notes it."""
        self.margin_calls += 1

    def on_liquidation(self, ctx, liquidation):
        """Count forced liquidations."""
        self.liquidations += 1


if __name__ == "__main__":
    from backtester import backtest
    from backtester.data.sample import load_sample

    data = load_sample("BTC-USDT-SWAP", with_trades=False)
    result = backtest(HighLeverage, data, "okx:BTC-USDT-SWAP", initial_balance=1_000.0, leverage=50)
    print(result.liquidations[["ts", "mark_price", "bankruptcy_price", "loss_settle"]])
