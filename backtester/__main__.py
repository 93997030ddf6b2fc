"""``python -m backtester``: the ``backtester`` command."""

import sys

from backtester.cli import main

sys.exit(main())
