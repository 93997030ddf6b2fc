"""Strategy parameters: public class attributes, read and overridden the same way for every kind.

A :class:`~backtester.strategy.Strategy` and a :class:`~backtester.jit.JitStrategy` both declare
their parameters as class attributes typed by their default (``fast = 10``); ``backtest(...,
params={"fast": 20})`` and ``--param fast=20`` override them on the instance. The two helpers
here are the one rule for both, kept apart from ``strategy.py`` so that the jit API does not
import the Python strategy API.
"""

from __future__ import annotations

from typing import Protocol

from backtester.checks import suggestion

__all__ = ["HasParameters", "class_parameters", "set_parameters"]


class HasParameters(Protocol):
    """A strategy class that lists its parameters (``Strategy``, ``JitStrategy``)."""

    @classmethod
    def parameters(cls) -> dict[str, object]:
        """Return the parameter names and their default values."""
        ...


def class_parameters(cls: type, base: type, skip: tuple[str, ...] = ()) -> dict[str, object]:
    """Return the parameters of a strategy class with their defaults.

    They are its public class attributes (and those of its bases below ``base``) that are not
    callables, descriptors or names in ``skip`` (the callbacks of a jitted strategy, which
    are numba dispatchers and so callables already, are listed there to say so).
    """
    out: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass is base or klass in base.__mro__:
            continue
        for name, value in vars(klass).items():
            if (
                name.startswith("_")
                or name in skip
                or callable(value)
                or isinstance(value, (classmethod, staticmethod, property))
            ):
                continue
            out[name] = value
    return out


def set_parameters(strategy: HasParameters, params: dict[str, object]) -> None:
    """Override ``strategy``'s class-attribute parameters on the instance.

    Raises
    ------
    ValueError
        For a name that is not a parameter, with a "did you mean" suggestion.
    """
    known = type(strategy).parameters()
    for name, value in params.items():
        if name not in known:
            raise ValueError(
                f"{type(strategy).__name__}: unknown parameter {name!r}; "
                f"{suggestion(name, known) if known else 'the strategy has no parameters'}"
            )
        setattr(strategy, name, value)
