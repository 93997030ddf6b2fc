"""What every command shares: exit codes, the one-line usage error, times and intervals."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tomllib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subcommands = Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_command(
    commands: Subcommands, name: str, help_text: str, epilog: str
) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` to ``commands`` and return its parser.

    ``epilog`` (the examples) is printed as written, line breaks kept, after the options of
    ``backtester NAME --help``.
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


@contextlib.contextmanager
def user_input() -> Iterator[None]:
    """Turn errors raised while reading the user's input into :class:`UsageError`."""
    try:
        yield
    except (ValueError, TypeError, KeyError, FileNotFoundError, tomllib.TOMLDecodeError) as error:
        raise UsageError(one_line(error)) from error


def one_line(error: BaseException) -> str:
    """Return the message of ``error`` as one line.

    A KeyError's text comes without its quotes; a missing file's name is added when the
    message lacks it.
    """
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    if isinstance(error, FileNotFoundError) and error.filename and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or repr(error)


def parse_time(text: str | None, name: str) -> int | None:
    """Return a UTC instant typed by the user (``2024-01-01``, ``2024-01-01T08:00``) in ns.

    A time without a zone is UTC; None stays None (the option was not given).
    """
    if text is None:
        return None
    import pandas as pd

    try:
        stamp = pd.Timestamp(str(text))
    except ValueError:
        raise ValueError(f"{name}: cannot read {text!r} as a date (e.g. 2024-01-01)") from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def interval_ns(label: str) -> int:
    """Return the length in ns of a candle interval label (``1m``, ``1h``, ``1d``)."""
    from backtester.data.intervals import parse_interval

    return int(parse_interval(label))


def progress_enabled() -> bool:
    """Return whether a progress bar is wanted (stderr is a terminal)."""
    return sys.stderr.isatty()


def table(frame: pd.DataFrame, rows: int) -> str:
    """Return the first ``rows`` rows of ``frame`` as console text (6 significant digits)."""
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30):
        return str(frame.head(rows).to_string(index=False, float_format=lambda v: f"{v:.6g}"))
