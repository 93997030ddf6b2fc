"""Funding carry: hold the side that receives funding while the last rate is large enough.

A positive funding rate means longs pay shorts, so the strategy is short while the last rate is
above ``threshold_rate`` and long while it is below ``-threshold_rate``; flat in between.
"""

from __future__ import annotations

import math

from backtester.strategy import Strategy


class FundingCarry(Strategy):
    """Short into positive funding, long into negative funding."""

    threshold_rate = 0.00005
    contracts = 1.0

    def on_bar(self, ctx, bar):
        """Re-position at each bar close from the last known funding rate."""
        rate = ctx.funding_rate
        if math.isnan(rate):
            return
        target = 0.0
        if rate > self.threshold_rate:
            target = -self.contracts
        elif rate < -self.threshold_rate:
            target = self.contracts
        if target != ctx.position:
            ctx.market(target - ctx.position)

    def on_funding(self, ctx, payment):
        """Keep a running total of the funding received (> 0) or paid (< 0)."""
        self.funding_total = getattr(self, "funding_total", 0.0) + float(payment["payment_settle"])


if __name__ == "__main__":
    from backtester import backtest
    from backtester.data.sample import load_sample

    data = load_sample("BTC-USDT-SWAP", with_trades=False)
    result = backtest(FundingCarry, data, "okx:BTC-USDT-SWAP", initial_balance=10_000.0)
    print(result.funding_payments["payment_settle"].sum(), result.final_balance_settle)
