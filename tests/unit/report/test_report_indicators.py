"""Indicators on the price chart: ctx.plot in a strategy, plots= on the signal path."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Strategy, backtest, backtest_signals
from backtester.data.sample import load_sample
from backtester.jobs import slice_market_data
from backtester.report.html import write_html
from backtester.report.load import load_run
from backtester.report.outputs import save_run

DAY_NS = 86_400_000_000_000


@pytest.fixture(scope="module")
def three_days():
    data = load_sample("BTC-USD-SWAP", with_trades=False)
    start = int(data.bars["ts_ns"][0])
    return slice_market_data(data, start, start + 3 * DAY_NS)


class PlotsMean(Strategy):
    """Registers the 20-bar mean of the closes; never trades."""

    def on_bar(self, ctx, bar):
        closes = ctx.closes
        if len(closes) >= 20:
            ctx.plot("<mean 20>", float(np.mean(closes[-20:])))


def test_ctx_plot_series_reach_the_result_the_report_and_the_run_folder(three_days, tmp_path):
    result = backtest(PlotsMean, three_days, "okx:BTC-USD-SWAP", initial_balance=1.0)
    ts, values = result.plots["<mean 20>"]
    closes = three_days.bars["close"]
    close_ns = three_days.bars["ts_ns"] + three_days.bar_interval_ns  # seen at the bar close
    assert len(values) == len(closes) - 19
    np.testing.assert_array_equal(ts, close_ns[19:])
    expected = np.convolve(closes, np.ones(20) / 20, mode="valid")
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    text = write_html(result, tmp_path / "r.html").read_text()
    assert '"name":"&lt;mean 20&gt;"' in text  # a line on the price chart, name escaped
    loaded = load_run(save_run(result, tmp_path / "run"))
    np.testing.assert_array_equal(loaded.plots["<mean 20>"][0], ts)
    np.testing.assert_array_equal(loaded.plots["<mean 20>"][1], values)


def test_signal_path_takes_indicator_arrays(three_days) -> None:
    close = three_days.bars["close"]
    fast = np.convolve(close, np.ones(30) / 30)[: len(close)]
    above = close > fast
    result = backtest_signals(
        above, ~above, three_days, "okx:BTC-USD-SWAP", initial_balance=1.0,
        plots={"fast": fast},
    )  # fmt: skip
    ts, values = result.plots["fast"]
    np.testing.assert_array_equal(ts, three_days.bars["ts_ns"] + three_days.bar_interval_ns)
    np.testing.assert_array_equal(values, fast)
    with pytest.raises(ValueError, match=r"plots\['bad'\]: expected one value per bar"):
        backtest_signals(above, ~above, three_days, "okx:BTC-USD-SWAP", initial_balance=1.0,
                         plots={"bad": fast[:-1]})  # fmt: skip
