r"""The one escaping helper of every HTML page (run report, sweep page, walk-forward page).

Every string that can come from a user — strategy, parameter and run/sweep names and values,
symbols, configuration values, column names of a sweep — reaches a page only through
:func:`esc` (text and attribute values) or :func:`script_json` (data inside ``<script>``).
Plotly's own JSON escapes ``<``, ``>`` and ``&`` (``\u003c``...), and chart titles and trace
names given to plotly pass through :func:`esc` as well, so no name can close a tag or a script.
``tests/unit/report/test_report_escaping.py`` feeds hostile names into every page.
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["esc", "script_json"]


def esc(value: Any) -> str:
    """Return ``str(value)`` with ``& < > " '`` as entities (safe in text and attributes)."""
    return html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    r"""Return JSON for inside a ``<script>`` element: ``<``, ``>``, ``&`` as ``\u`` escapes.

    ``json.dumps`` alone leaves ``</script>`` in a string value, which would end the script.
    """
    text = json.dumps(value, default=str, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
