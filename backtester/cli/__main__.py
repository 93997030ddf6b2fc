"""``python -m backtester.cli``: the ``backtester`` command."""

import sys

from backtester.cli import main

sys.exit(main())
