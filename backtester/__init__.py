"""perpetual-swap backtester: replay crypto market data through an exact perpetual-swap model.

The public API is the short list in ``__all__``; everything else is internal.
"""

from __future__ import annotations

from backtester.results import Result

__all__ = ["Result"]
__version__ = "0.1.0"
