"""Grid market maker on trade ticks: resting limit orders a fixed step around the price.

Keeps one bid ``step`` below and one ask ``step`` above the last trade; when one fills, the grid
re-centres on the fill. Position is capped at ``max_contracts`` by skipping the side that would
grow it further. Needs trade data (the sample has ticks on 2024-03-05).
"""

from __future__ import annotations

from backtester.strategy import Strategy


class GridMaker(Strategy):
    """Two post-only quotes around the last trade, re-centred after each fill."""

    step = 50.0
    contracts = 1.0
    max_contracts = 5.0

    def on_start(self, ctx):
        """No quotes yet."""
        self.quotes: list[int] = []

    def on_trade(self, ctx, trade):
        """Place the quotes once prices are known and none are working."""
        if not self.quotes and len(ctx.open_orders()) == 0:
            self.quote(ctx, float(trade["price"]))

    def on_fill(self, ctx, fill):
        """Re-centre the grid on the fill price."""
        for order_id in self.quotes:
            ctx.cancel(order_id)
        self.quote(ctx, float(fill["price"]))

    def on_liquidation(self, ctx, liquidation):
        """Stop quoting after a liquidation."""
        self.max_contracts = 0.0

    def quote(self, ctx, centre: float) -> None:
        """Post one bid and one ask ``step`` away from ``centre`` (rounded to 0.1)."""
        self.quotes = []
        if ctx.position < self.max_contracts:
            self.quotes.append(
                ctx.limit(self.contracts, round(centre - self.step, 1), post_only=True)
            )
        if ctx.position > -self.max_contracts:
            self.quotes.append(
                ctx.limit(-self.contracts, round(centre + self.step, 1), post_only=True)
            )


if __name__ == "__main__":
    from backtester import backtest
    from backtester.data.sample import load_sample

    data = load_sample("BTC-USDT-SWAP", with_trades=True)
    result = backtest(GridMaker, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    print(len(result.records["fills"]), "fills; final balance", result.final_balance_settle)
