"""Research tools that fit the contract model's free parameters to recorded market data.

The mark price is the one calibrated today: :mod:`~backtester.calibration.mark` aligns recorded
marks with index, last trade and book mid, replays mark models over them (the kernel
:func:`backtester.swap.mark_calibration_nb.replay_mark_nb`, which computes the engine's mark) and
fits the span of the averaged basis; :mod:`~backtester.calibration.mark_fit` fits it on one part
of a capture and scores it on the rest, as the venue profiles' values were chosen. The figures
measured on the shared data are in ``docs/mark_calibration.md``.

These modules read files through :mod:`backtester.data.importers` and use the swap kernels; the
engine never imports them.
"""
