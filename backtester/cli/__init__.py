"""The ``backtester`` command: run, sweep, report, data, profiles, fetch and import.

One module per command (``backtester/cli/<command>.py``: its options and what it does); the
parser is in :mod:`~backtester.cli.parser`, what the commands share in
:mod:`~backtester.cli.common` and the job options of ``run`` and ``sweep`` in
:mod:`~backtester.cli.options`.

Exit codes: 0 success, 2 bad input (unknown option, missing file, bad parameter — the message
says what was expected, with a "did you mean" where one fits), 1 a failure while running.
Errors are printed as one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from backtester.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, one_line
from backtester.cli.parser import build_parser, command_module

__all__ = ["build_parser", "main"]


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    """Print a warning of a run as one line on stderr, ``backtester: warning: ...``.

    Not the interpreter's file:line of the library call that emitted it.
    """
    from backtester.progress import line_erased

    with line_erased():  # a progress line being drawn is erased first (redrawn after)
        print(f"backtester: warning: {category.__name__}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``backtester`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if not debug:
        import warnings

        warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
        return int(command_module(args.command).command(args))
    except UsageError as error:
        if debug:
            traceback.print_exc()
        print(f"backtester: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (silence the flush at exit)
        return EXIT_OK
    except KeyboardInterrupt:
        print("backtester: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        from backtester.errors import StrategyError

        # a strategy's error already says what was raised, where and when
        kind = "" if isinstance(error, StrategyError) else f"{type(error).__name__}: "
        print(f"backtester: error: {kind}{one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE
