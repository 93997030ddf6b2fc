"""SMA crossover on bar closes: long when the fast average is above the slow one, short below.

Run it: ``backtester run strategies/sma_cross.py --data sample``, or run this file.
"""

from __future__ import annotations

from backtester.strategy import Strategy


class SmaCross(Strategy):
    """Always in the market: +contracts above the crossover, −contracts below."""

    fast = 10
    slow = 30
    contracts = 1.0

    def on_bar(self, ctx, bar):
        """At each bar close, flip the position when the averages cross."""
        if len(ctx.closes) < self.slow:
            return
        fast, slow = ctx.sma(self.fast), ctx.sma(self.slow)
        ctx.plot(f"SMA {self.fast}", fast)  # drawn on the report's price chart
        ctx.plot(f"SMA {self.slow}", slow)
        if fast > slow and ctx.position <= 0:
            ctx.market(self.contracts - ctx.position)  # close a short and open a long
        elif fast < slow and ctx.position >= 0:
            ctx.market(-self.contracts - ctx.position)


if __name__ == "__main__":
    from backtester import backtest
    from backtester.data.sample import load_sample

    data = load_sample("BTC-USD-SWAP", with_trades=False)
    result = backtest(SmaCross, data, "okx:BTC-USD-SWAP", initial_balance=1.0, leverage=20)
    print(result.ledger.groupby("kind")["amount_settle"].sum())
    print(
        f"final balance {result.final_balance_settle:.6f} BTC, fills {len(result.records['fills'])}"
    )
