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
import io
import json
import math
from collections.abc import Iterable
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any, Unpack

from fontTools import subset
from fontTools.ttLib import TTFont

from microgradient import render, svg
from microgradient.engine import (
    BUILTIN_OPERATIONS,
    Value,
    collector_paused,
    find_operation,
    local_derivatives,
    topological_order,
)
from microgradient.errors import MicrogradientError
from microgradient.render import DrawOptions

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
    with collector_paused():
        order = topological_order(root)
    values = {slot: node.data for slot, node in enumerate(order)}
    grads, edge_grads = _gradients(order)
    drawing = render.frame_svg(root, values=values, grads=grads, edge_grads=edge_grads, **options)
    data = {"program": program, "number_format": options.get("number_format", ".4g")}
    title = root.label or "graph"
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>microgradient explorer: {html.escape(title)}</title>\n"
        f"<style>\n{_font_faces(drawing, program)}{_palette()}{_asset('page.css')}</style>\n"
        "</head>\n<body>\n"
        '<main class="mg-explorer">\n'
        f'<script type="application/json" class="mg-data">{_script_json(data)}</script>\n'
        '<div class="mg-controls" role="toolbar" aria-label="Steps"></div>\n'
        f'<div class="mg-graph">{_strip_prolog(drawing)}</div>\n'
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
    return Explorer(page, drawing)


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
    custom: dict[str, dict[str, Any]] = {}
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
        if node.op and node.op not in BUILTIN_OPERATIONS:
            entry["locals"] = [_json_number(d) for d in _local_derivatives(node)]
            operation = find_operation(node.op)
            if operation is not None and operation.javascript is not None:
                custom[node.op] = {
                    "arity": operation.arity,
                    "symbol": operation.symbol,
                    "forward": operation.javascript["forward"],
                    "derivatives": list(operation.javascript["derivatives"]),
                }
        nodes.append(entry)
    return {"nodes": nodes, "output": len(order) - 1, "custom": custom}


def _local_derivatives(node: Value) -> list[float]:
    """The derivative of ``node`` with respect to each of its parents, at the current point.

    A node made micrograd's way has no rule to ask: its ``_backward`` closure is run
    once with the node's gradient set to 1, and every ``grad`` it touched is put back.
    """
    try:
        derivatives = local_derivatives(node)
    except ArithmeticError:
        return [math.nan] * len(node.parents)
    if derivatives is not None:
        return list(derivatives)
    saved = [(other, other.grad) for other in (node, *node.parents)]
    try:
        for parent in node.parents:
            parent.grad = 0.0
        node.grad = 1.0
        node._backward()
        # a repeated operand's derivatives add up in its grad: its first use shows their sum
        seen: set[int] = set()
        found = []
        for parent in node.parents:
            found.append(0.0 if id(parent) in seen else float(parent.grad))
            seen.add(id(parent))
        return found
    finally:
        for other, grad in reversed(saved):
            other.grad = grad


def _gradients(order: list[Value]) -> tuple[dict[int, float], dict[tuple[int, int], float]]:
    """Every node's gradient and every edge's, from the engine's own backward pass.

    The graph's ``grad`` attributes are put back afterwards. A pass that fails gives none.
    """
    saved = [node.grad for node in order]
    try:
        order[-1].backward()
        grads = {slot: float(node.grad) for slot, node in enumerate(order)}
    except MicrogradientError:
        return {}, {}
    finally:
        for node, grad in zip(order, saved, strict=True):
            node.grad = grad
    edge_grads = {
        (slot, operand): 0.0 if grads[slot] == 0.0 or local == 0.0 else grads[slot] * local
        for slot, node in enumerate(order)
        for operand, local in enumerate(_local_derivatives(node))
    }
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
        f".mg-explorer {{ --mg-forward: {svg.VALUE_COLOUR}; "
        f"--mg-gradient: {svg.GRADIENT_COLOUR}; --mg-font: {svg.SVG_FONT_FAMILY}; }}\n"
    )


# the page's own words and every number it can write, on top of the drawing's text
_PAGE_CHARACTERS = "".join(map(chr, range(0x20, 0x7F))) + (
    "\u00a0\u00b7\u00d7\u00f7\u2212\u2202\u221a\u03c3\u00b2\u221e\u2192\u2190"
    "\u21ba\u2016\u25b6\u25c0\u2026\u00bd\u2265\u2264\u2713\u2717"
)


def _font_faces(drawing: str, program: dict[str, Any]) -> str:
    """The drawing's fonts, inlined and cut down to the characters the page can show.

    The page must fetch nothing; a character the fonts lack (labels may be in any
    language) falls back to the reader's own fonts.
    """
    labels = "".join(node["label"] for node in program["nodes"])
    characters = {ord(c) for c in _PAGE_CHARACTERS + labels + drawing if not c.isspace()}
    faces = []
    for font_file, style in zip(svg.font_files(), ("normal", "italic"), strict=True):
        font = subset.Subsetter(subset.Options(flavor="woff", name_IDs=[1, 2], hinting=False))
        face = TTFont(font_file)
        font.populate(unicodes=characters)
        font.subset(face)
        encoded = io.BytesIO()
        face.flavor = "woff"
        face.save(encoded)
        data = base64.b64encode(encoded.getvalue()).decode("ascii")
        faces.append(
            f"@font-face {{ font-family: '{svg.FONT_FAMILY}'; font-style: {style}; "
            f"src: url(data:font/woff;base64,{data}) format('woff'); }}\n"
        )
    return "".join(faces)
