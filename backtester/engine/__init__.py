"""The replay engine: the jitted event loop, order matching, accounting and the Python driver.

``loop_nb`` (merge and dispatch), ``orders_nb`` (acceptance, matching), ``metrics_nb``
(margin metrics), ``cash_nb`` (fills, funding, settlement), ``liquidation_engine_nb``
(liquidation), ``records_nb`` (record appends) are numba kernels; ``driver`` runs a
Strategy over them and ``backtest`` is the public entry point.
"""
