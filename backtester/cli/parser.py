"""The ``backtester`` argument parser.

One-line errors with a suggestion; one subcommand per module of :mod:`backtester.cli`.
"""

from __future__ import annotations

import argparse
import importlib
from difflib import get_close_matches
from types import ModuleType
from typing import NoReturn

from backtester.cli.common import UsageError

COMMANDS = {
    "run": "run",
    "sweep": "sweep",
    "report": "report",
    "data": "data",
    "profiles": "profiles",
    "fetch": "fetch",
    "import": "import_",
}
"""Each subcommand and its module under ``backtester.cli`` (which has ``add_parser(commands)``
and ``command(args) -> exit code``); the command modules import only the standard library at
load time, so ``backtester --help`` stays light."""


def command_module(name: str) -> ModuleType:
    """Return the module of the subcommand ``name`` (:data:`COMMANDS`)."""
    return importlib.import_module(f"backtester.cli.{COMMANDS[name]}")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (with a suggestion) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            options = [s for a in _all_actions(self) for s in a.option_strings]
            for word in message.split(":", 1)[1].split():
                close = get_close_matches(word.split("=")[0], options, n=1)
                if word.startswith("-") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
        elif "invalid choice:" in message:
            word = message.split("invalid choice:", 1)[1].split("'")[1]
            choices = [c for a in self._actions for c in (a.choices or [])]
            close = get_close_matches(word, [str(c) for c in choices], n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        raise UsageError(message)


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Return the actions of a parser and of all its subcommand parsers."""
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions.extend(_all_actions(sub))
    return actions


_MAIN_EPILOG = """commands:
  run        backtest one strategy and write reports/<run>/ (HTML report, ledger, fills, config)
  sweep      run a parameter grid / random search locally or on Dask; ranked table + heatmaps
  report     re-render a saved run (or sweep) directory
  data       list the data catalog, or show one dataset's span and gaps
  profiles   list venue profiles, or show one with its contracts' tier tables
  fetch      download data with ccxt into the catalog
  import     import local files (Parquet, CSV, freqtrade feather, exchange archives)

Run `backtester <command> --help` for the options and examples of each command.
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the ``backtester`` argument parser."""
    parser = _Parser(
        prog="backtester",
        description="Backtest crypto perpetual swaps with the exchange's margin, funding and "
        "liquidation rules.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for name in COMMANDS:
        command_module(name).add_parser(commands)
    return parser
