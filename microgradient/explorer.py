"""An interactive explorer of a graph: one self-contained HTML page that steps through backprop.

The page shows the graph exactly as :func:`~microgradient.draw` draws it, then
steps through the forward pass node by node and the backward pass node by node,
explaining each step with numbers (the local derivative, the upstream gradient
times it, the sum at a node used several times). Every leaf has a number
field and a slider: the page evaluates the graph again in JavaScript, with the
same operations, kink conventions and domain rules as the Python engine. It
needs no server and no network: scripts, styles and the font are inlined.

>>> from microgradient import Value, explore
>>> w, x = Value(0.0, label="w"), Value(1.0, label="x")
>>> page = explore(1 / (1 + (-(w * x)).exp()))
>>> page.html.startswith("<!DOCTYPE html>")
True

Contract for scripts and tests (kept stable): the page defines
``window.microgradient.explorers``, one object per explorer with ``state()``
(``{step, total, nodes: [{id, label, op, value, grad, error}]}``, ``id`` being the
node's position in :func:`~microgradient.topological_order`), ``step(k)`` and
``setLeaf(label, value)``. Leaf inputs carry ``data-leaf="<label>"``; the buttons
are named "Step back", "Step forward", "Play"/"Pause", "Reset" and "Check gradients".
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any, Unpack

from microgradient import render
from microgradient.engine import Value, collector_paused, topological_order
from microgradient.render import DrawOptions

# the operations the page's evaluator (explorer_assets/evaluator.js) defines; any other op is
# a custom one, evaluated from its JavaScript templates or, without them, shown but not edited
BUILT_IN_OPS = frozenset(
    {"+", "-", "r-", "*", "/", "r/", "neg", "**", "r**", "exp", "log", "sqrt", "tanh"}
    | {"sigmoid", "relu", "sin", "cos", "abs", "sum", "dot", "tan", "atan", "softplus"}
    | {"max", "min"}
)
_ASSETS = resources.files("microgradient") / "explorer_assets"
_NOTEBOOK_HEIGHT = (420, 900)  # pixels: the frame of an explorer shown in a notebook


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


class Explorer:
    """An explorer page: show it in a notebook, or :meth:`save` it as one HTML file.

    Attributes:
        html: the page, a complete HTML document.
        svg: the drawing with every value and gradient, as :func:`~microgradient.draw` gives it.
    """

    def __init__(self, page: str, svg: str) -> None:
        self.html = page
        self.svg = svg

    def __repr__(self) -> str:
        return f"<Explorer: {len(self.html.encode()):,} bytes of HTML; display it or call .save()>"

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the page to ``path`` (UTF-8) and return the path; it opens from disk, offline.

        >>> import tempfile, pathlib
        >>> from microgradient import Value, explore
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> explore(Value(2.0, label="a").exp()).save(folder / "exp.html").suffix
        '.html'
        """
        target = Path(path)
        target.write_text(self.html, encoding="utf-8")
        return target

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, str]:
        # each explorer runs in its own sandboxed frame, so several on one notebook page keep
        # their scripts, keys and window.microgradient apart
        height = min(max(_svg_height(self.svg) + 260, _NOTEBOOK_HEIGHT[0]), _NOTEBOOK_HEIGHT[1])
        frame = (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
            f'title="microgradient explorer" style="width: 100%; height: {height}px; border: 0">'
            "</iframe>"
        )
        bundle = {"text/html": frame, "image/svg+xml": self.svg}
        if include is not None:
            bundle = {kind: data for kind, data in bundle.items() if kind in set(include)}
        if exclude is not None:
            bundle = {kind: data for kind, data in bundle.items() if kind not in set(exclude)}
        return bundle


def explore(root: Value, **options: Unpack[DrawOptions]) -> Explorer:
    """An interactive explorer of ``root``'s graph (shown inline in a notebook).

    Takes the keyword arguments of :func:`~microgradient.draw`. The graph is not
    changed: no ``grad`` is touched.

    >>> from microgradient import Value, explore
    >>> x = Value(3.0, label="x")
    >>> explorer = explore(x * x + 1)
    >>> 'data-leaf="x"' in explorer.html
    True
    """
    program = page_program(root)
    values = {slot: node["value"] for slot, node in enumerate(program["nodes"])}
    grads, edge_grads = _gradients(root)
    svg = render.frame_svg(root, values=values, grads=grads, edge_grads=edge_grads, **options)
    data = {"program": program, "number_format": options.get("number_format", ".4g")}
    title = root.label or "graph"
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>microgradient explorer: {html.escape(title)}</title>\n"
        f"<style>\n{_font_face()}{_palette()}{_asset('page.css')}</style>\n"
        "</head>\n<body>\n"
        '<main class="mg-explorer">\n'
        f'<script type="application/json" class="mg-data">{_script_json(data)}</script>\n'
        '<div class="mg-controls" role="toolbar" aria-label="Steps"></div>\n'
        f'<div class="mg-graph">{_strip_prolog(svg)}</div>\n'
        '<aside class="mg-panel">\n'
        '<div class="mg-errors" role="alert" hidden></div>\n'
        '<section class="mg-explain" aria-live="polite"></section>\n'
        '<section class="mg-detail"></section>\n'
        '<section class="mg-leaves"><h2>Inputs</h2></section>\n'
        '<section class="mg-check"></section>\n'
        "</aside>\n</main>\n"
        f"<script>\n{_asset('evaluator.js')}\n{_asset('page.js')}</script>\n"
        "</body>\n</html>\n"
    )
    return Explorer(page, svg)


def page_program(root: Value) -> dict[str, Any]:
    """``root``'s graph as the page's evaluator reads it (JSON-ready).

    ``{"nodes": [...], "output": slot, "custom": {...}}``: one node per position in
    :func:`~microgradient.topological_order` (the root last), each with its
    ``op``, ``args`` (operand positions, repeats kept), ``constant``,
    ``coefficients``, ``label`` and ``value``. Numbers that JSON cannot hold
    (infinities, NaN) are written as the strings ``"Infinity"``, ``"-Infinity"``
    and ``"NaN"``. A node whose operation the page does not define also carries
    ``locals``, its local derivatives at this point, so it can still be shown.

    >>> from microgradient import Value
    >>> x = Value(2.0, label="x")
    >>> page_program(x * 3)["nodes"][1]["op"], page_program(x * 3)["nodes"][1]["args"]
    ('*', [0])
    """
    with collector_paused():
        order = topological_order(root)
    slot_of = {id(node): slot for slot, node in enumerate(order)}
    nodes = []
    for node in order:
        entry: dict[str, Any] = {
            "op": node.op,
            "args": [slot_of[id(parent)] for parent in node.parents],
            "constant": None if node.constant is None else _json_number(node.constant),
            "coefficients": None
            if node.coefficients is None
            else [_json_number(c) for c in node.coefficients],
            "label": node.label,
            "value": _json_number(node.data),
        }
        if node.op and node.op not in BUILT_IN_OPS:
            entry["locals"] = [_json_number(d) for d in _local_derivatives(node)]
        nodes.append(entry)
    return {"nodes": nodes, "output": len(order) - 1, "custom": {}}


def _local_derivatives(node: Value) -> list[float]:
    """The derivative of ``node`` with respect to each of its parents, at the current point."""
    saved = [(parent, parent.grad) for parent in node.parents]
    saved_own = node.grad
    try:
        for parent in node.parents:
            parent.grad = 0.0
        node.grad = 1.0
        node._backward()
        # a repeated operand's derivatives add up in its grad: the first use shows their sum
        seen: set[int] = set()
        derivatives = []
        for parent in node.parents:
            derivatives.append(0.0 if id(parent) in seen else float(parent.grad))
            seen.add(id(parent))
        return derivatives
    finally:
        for parent, grad in saved:
            parent.grad = grad
        node.grad = saved_own


def _gradients(root: Value) -> tuple[dict[int, float], dict[tuple[int, int], float]]:
    """Every node's gradient and every edge's contribution, as ``backward()`` would give them.

    Computed from the graph's own local derivatives without touching any ``grad``.
    """
    with collector_paused():
        order = topological_order(root)
    slot_of = {id(node): slot for slot, node in enumerate(order)}
    grads = dict.fromkeys(range(len(order)), 0.0)
    grads[len(order) - 1] = 1.0
    edge_grads: dict[tuple[int, int], float] = {}
    for slot in reversed(range(len(order))):
        node = order[slot]
        if not node.parents:
            continue
        upstream = grads[slot]
        for operand, (parent, local) in enumerate(zip(node.parents, _local_derivatives(node))):
            contribution = local * upstream if upstream != 0.0 else 0.0
            edge_grads[(slot, operand)] = contribution
            grads[slot_of[id(parent)]] += contribution
    return grads, edge_grads


def _json_number(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def _script_json(data: dict[str, Any]) -> str:
    # inside <script>, only "</" could end the element early
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _strip_prolog(svg: str) -> str:
    """The ``<svg>`` element alone: an XML declaration or DOCTYPE has no place inside HTML."""
    return svg[svg.index("<svg") :]


def _svg_height(svg: str) -> int:
    opening = svg[svg.index("<svg") : svg.index(">", svg.index("<svg"))]
    marker = 'height="'
    if marker not in opening:
        return 0
    text = opening.split(marker, 1)[1].split('"', 1)[0]
    number = "".join(c for c in text if c.isdigit() or c == ".")
    points = float(number or 0)
    return int(points * 4 / 3 if text.endswith("pt") else points)


def _palette() -> str:
    return (
        f".mg-explorer {{ --mg-forward: {render.FORWARD_COLOUR}; "
        f"--mg-gradient: {render.GRADIENT_COLOUR}; "
        f"--mg-font: '{render.FONT}', Helvetica, Arial, sans-serif; }}\n"
    )


def _font_face() -> str:
    """The drawing's font, inlined: the page must not fetch anything."""
    font = resources.files("ttf_opensans") / "ttf" / "OpenSans-Regular.ttf"
    encoded = base64.b64encode(font.read_bytes()).decode("ascii")
    return (
        f"@font-face {{ font-family: '{render.FONT}'; font-weight: 400; "
        f"src: url(data:font/ttf;base64,{encoded}) format('truetype'); }}\n"
    )
