"""Plotly charts as plain JSON specs: built as dicts, written as ``Plotly.newPlot`` calls.

The report's charts used to be ``plotly.graph_objects.Figure`` objects: every ``add_trace``
and ``update_layout`` validates each property against plotly's schema and deep-copies the
template, which took about 0.5 s of a 4 s ``backtester run`` on the sample (and importing
plotly.graph_objects another 0.1-0.2 s). A chart is only JSON for plotly.js, so the report
builds that JSON directly here, in the form plotly.py itself writes:

- a figure is ``{"data": [trace, ...], "layout": {...}}``;
- numpy arrays are typed arrays, ``{"dtype": "f8", "bdata": <base64 of the float64 bytes>}``
  (plotly.js decodes them; NaN stays NaN, i.e. a gap in a line);
- the ``plotly_white`` template is plotly's own file (``plotly/package_data/templates``),
  written once per page and referenced by every chart;
- text inside ``<script>`` has ``<`` and ``>`` escaped (:func:`to_json`), so no string can
  close the script or open a comment in it (plotly escapes ``</``).

:func:`to_figure` turns a spec into a ``go.Figure`` (validated by plotly) for ``Result.plot()``
and the tests; the page never needs plotly.py.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TEMPLATE_NAME",
    "TEMPLATE_VARIABLE",
    "encode_array",
    "figure_div",
    "scatter",
    "template",
    "template_script",
    "to_figure",
    "to_json",
]

TEMPLATE_NAME = "plotly_white"
TEMPLATE_VARIABLE = "BACKTESTER_TEMPLATE"
"""The JavaScript variable holding the template, defined once per page by
:func:`template_script` before the first chart."""


@functools.cache
def template() -> dict[str, Any]:
    """Return plotly's ``plotly_white`` template as JSON, found without importing plotly.

    It is the file ``plotly.io.templates`` loads.
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("plotly is not installed (a dependency of the report)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / "package_data" / "templates" / f"{TEMPLATE_NAME}.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def encode_array(values: Any) -> dict[str, str]:
    """Return a float64 typed array for plotly.js: ``{"dtype": "f8", "bdata": base64}``."""
    array = np.ascontiguousarray(values, dtype="<f8")
    return {"dtype": "f8", "bdata": base64.b64encode(array.tobytes()).decode("ascii")}


def scatter(x: Any, y: Any, **props: Any) -> dict[str, Any]:
    """Return a scatter trace (SVG; never ``scattergl``) with ``x`` and ``y`` as typed arrays.

    Other properties as plotly names them (``mode``, ``name``, ``line``, ...).
    """
    return {"type": "scatter", "x": encode_array(x), "y": encode_array(y), **props}


def _plain(value: Any) -> Any:
    """Return ``value`` ready for JSON.

    Numpy arrays as typed arrays, numpy scalars as Python numbers, and non-finite floats as
    null (JSON has no NaN).
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fiub":
            return encode_array(value)
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(value: Any) -> str:
    r"""Return compact JSON safe inside ``<script>``: ``<`` and ``>`` as ``\u`` escapes.

    So no string (a strategy or symbol name, already HTML-escaped where plotly shows it as
    HTML) can close the script. ``&`` is plain text inside a script and stays as it is.
    """
    text = json.dumps(_plain(value), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def template_script() -> str:
    """Return the ``<script>`` defining the template every chart of the page refers to."""
    return f"<script>var {TEMPLATE_VARIABLE}={to_json(template())};</script>"


def figure_div(chart_id: str, spec: dict[str, Any], config: dict[str, Any]) -> str:
    """Return a ``<div>`` and the ``Plotly.newPlot`` call that draws ``spec`` into it.

    The page must have run :func:`template_script` before.
    """
    height = spec["layout"].get("height")
    style = f"height:{int(height)}px; width:100%;" if height else "width:100%;"
    layout = to_json(spec["layout"])
    # the template is a variable of the page, not a copy per chart
    layout = "{" + f'"template":{TEMPLATE_VARIABLE},' + layout[1:] if layout != "{}" else layout
    ident = json.dumps(chart_id)
    return (
        f'<div id={ident} class="plotly-graph-div" style="{style}"></div>'
        f"<script>if(document.getElementById({ident})){{Plotly.newPlot({ident},"
        f"{to_json(spec['data'])},{layout},{to_json(config)})}}</script>"
    )


def to_figure(spec: dict[str, Any]) -> Any:
    """Return the spec as a ``plotly.graph_objects.Figure`` with the template.

    Plotly validates every property: an invalid spec raises ``ValueError``.
    """
    import plotly.graph_objects as go

    layout = {"template": template(), **spec["layout"]}
    return go.Figure(data=_plain(spec["data"]), layout=_plain(layout))
