"""A signals module as a strategy: a file whose function ``signals`` returns entries and exits.

The command line (``backtester run FILE``, ``backtester sweep FILE``) accepts, besides a
``Strategy`` or ``JitStrategy`` class, a Python file defining::

    def signals(bars, fast=20, slow=120):
        close = bars["close"]
        ...                                    # any numpy
        return entries, exits                  # boolean arrays, one row per bar

``bars`` is the data's BAR_DTYPE array (``bars["close"]``, ``bars["ts_ns"]``, ...). The
keyword parameters with their defaults are the strategy's parameters (``--param fast=10``,
``--grid fast=5:50:5``; converted to the type of the default). Instead of a pair the function
may return a dict with ``entries``, ``exits`` and optionally ``contracts`` (position size, > 0,
default 1) and ``direction`` (``"long"``, the default, or ``"short"``). The run is
:func:`~backtester.engine.signals.backtest_signals`: an entry at a bar's close opens the
position with a market order at the next bar's open, an exit closes it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

if TYPE_CHECKING:
    from backtester.results import Result

__all__ = ["SIGNAL_FUNCTION", "SignalModule", "signal_module_strategy"]

SIGNAL_FUNCTION = "signals"
"""Name of the function a signals module defines."""


class SignalModule:
    """Base of the classes :func:`signal_module_strategy` makes (one per signals function)."""

    function: ClassVar[Callable[..., Any]]
    defaults: ClassVar[dict[str, object]] = {}

    @classmethod
    def parameters(cls) -> dict[str, object]:
        """Return the function's keyword parameters and their defaults."""
        return dict(cls.defaults)

    @classmethod
    def subscribed(cls) -> set[str]:
        """Return the callbacks a signals module stands for: it acts at bar closes."""
        return {"on_bar"}

    @classmethod
    def backtest(
        cls, data: Any, contract: Any, *, params: dict[str, object], **options: Any
    ) -> Result:
        """Call the function on ``data.bars`` and run its signals (``backtest_signals``)."""
        import numpy as np

        from backtester.engine.signals import backtest_signals

        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            from backtester.checks import suggestion

            raise ValueError(
                f"param: {cls.__name__} has no parameter {unknown[0]!r}; "
                f"{suggestion(unknown[0], cls.defaults)}"
            )
        out = cls.function(data.bars, **{**cls.defaults, **params})
        extra: dict[str, Any] = {}
        if isinstance(out, dict):
            missing = {"entries", "exits"} - set(out)
            if missing:
                raise ValueError(
                    f"{cls.__name__}: signals() returned a dict without {sorted(missing)}; "
                    "expected keys entries, exits (and optionally contracts, direction)"
                )
            entries, exits = out["entries"], out["exits"]
            extra = {k: out[k] for k in ("contracts", "direction") if k in out}
        elif isinstance(out, tuple) and len(out) == 2:
            entries, exits = out
        else:
            raise ValueError(
                f"{cls.__name__}: signals() returned {type(out).__name__}; expected "
                "(entries, exits) or a dict with entries, exits"
            )
        if np.ndim(entries) != 1 or np.ndim(exits) != 1:
            raise ValueError(
                f"{cls.__name__}: signals() returned arrays of shape {np.shape(entries)} and "
                f"{np.shape(exits)}; expected one value per bar, shape ({len(data.bars)},)"
            )
        # 1-D signals (checked above): one backtest, one Result
        result = cast(
            "Result", backtest_signals(entries, exits, data, contract, **extra, **options)
        )
        result.config["strategy"] = f"{cls.function.__module__}.{cls.function.__qualname__}"
        result.config["params"] = {**cls.defaults, **params}
        return result


def signal_module_strategy(module: Any) -> type[SignalModule] | None:
    """Return the strategy class of a module defining ``signals(bars, **params)``, else None."""
    function = getattr(module, SIGNAL_FUNCTION, None)
    if not callable(function) or getattr(function, "__module__", None) != module.__name__:
        return None
    signature = inspect.signature(function)
    positional = [
        p
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) != 1:
        raise ValueError(
            f"strategy: {module.__name__}.signals must take the bars as its one argument "
            f"without a default, then keyword parameters with defaults; got {signature}"
        )
    defaults = {
        p.name: p.default
        for p in signature.parameters.values()
        if p.default is not inspect.Parameter.empty
    }
    file = getattr(module, "__file__", None)
    name = Path(file).stem if file else module.__name__
    return type(
        f"{name}.signals",
        (SignalModule,),
        {"function": staticmethod(function), "defaults": defaults, "__module__": module.__name__},
    )
