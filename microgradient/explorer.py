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
import functools
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
from fontTools.ttLib import TTCollection, TTFont
from fontTools.varLib import instancer

from microgradient import fonts, render, svg
from microgradient.engine import (
    BUILTIN_OPERATIONS,
    Value,
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
    >>> '"label":"x"' in explorer.html  # the page's copy of the graph
    True
    """
    program = page_program(root)
    order = topological_order(root)
    values = {slot: node.data for slot, node in enumerate(order)}
    grads, edge_grads = _gradients(order)
    drawing = render.frame_svg(root, values=values, grads=grads, edge_grads=edge_grads, **options)
    data = {"program": program, "number_format": options.get("number_format", render.NUMBER_FORMAT)}
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
        for node in order:  # backward() adds to .grad: a graph already differentiated starts at 0
            node.grad = 0.0
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
        f"--mg-gradient: {svg.GRADIENT_COLOUR}; --mg-processed: {svg.PROCESSED_FILL}; "
        f"--mg-current: {svg.CURRENT_FILL}; --mg-font: {fonts.FONT_FAMILY}; }}\n"
    )


# what the page's inlined Noto Sans covers: its own words, every number it can write, and
# the Latin, Greek and mathematical characters of labels (anything else falls back to the
# reader's fonts, but for CJK, inlined from Noto Sans CJK as needed)
_SHIPPED_CHARACTERS = (
    "".join(
        chr(code)
        for first, last in [
            (0x20, 0x7E),  # ASCII
            (0xA0, 0xFF),  # Latin-1
            (0x391, 0x3C9),  # Greek
            (0x2010, 0x2026),  # dashes, quotes, ellipsis
            (0x2070, 0x209C),  # superscripts and subscripts
            (0x2190, 0x2199),  # arrows
            (0x2200, 0x222B),  # mathematical operators
            (0x2260, 0x2265),
        ]
        for code in range(first, last + 1)
    )
    + "\u2113\u2112\u21ba\u2016\u25b6\u25c0\u2713\u2717"
)
_SHIPPED_FONTS = (("NotoSans-explorer.woff", "normal"), ("NotoSans-Italic-explorer.woff", "italic"))


def write_shipped_fonts() -> None:
    """Cut the page's Noto Sans files (in ``explorer_assets``) from the drawing's fonts.

    Run once when the drawing's fonts or :data:`_SHIPPED_CHARACTERS` change: cutting a
    variable font takes seconds, too long to do for every page.
    """
    upright, italic, _ = fonts.font_files()
    for path, (name, _style) in zip((upright, italic), _SHIPPED_FONTS, strict=True):
        font = _subset(TTFont(path), _SHIPPED_CHARACTERS)
        font = instancer.instantiateVariableFont(font, {"wght": 400, "wdth": 100})
        font.flavor = "woff"
        with resources.as_file(_ASSETS / name) as target:
            font.save(target)


def _font_faces(drawing: str, program: dict[str, Any]) -> str:
    """The drawing's fonts, inlined, so the page fetches nothing."""
    faces = [
        _font_face("Noto Sans", style, (_ASSETS / name).read_bytes())
        for name, style in _SHIPPED_FONTS
    ]
    characters = "".join(node["label"] for node in program["nodes"]) + html.unescape(drawing)
    cjk = frozenset(c for c in characters if c not in _SHIPPED_CHARACTERS and not c.isspace())
    collection = fonts.font_files()[2]
    for family in _cjk_families(collection):
        if cjk and f'"{family}' in drawing:
            faces.append(_font_face(family, "normal", _cjk_subset(collection, family, cjk)))
    return "".join(faces)


def _font_face(family: str, style: str, woff: bytes) -> str:
    encoded = base64.b64encode(woff).decode("ascii")
    return (
        f"@font-face {{ font-family: '{family}'; font-style: {style}; font-weight: 400; "
        f"src: url(data:font/woff;base64,{encoded}) format('woff'); }}\n"
    )


@functools.cache
def _cjk_families(collection: Path) -> tuple[str, ...]:
    return tuple(face["name"].getBestFamilyName() for face in TTCollection(collection).fonts)


@functools.cache
def _cjk_subset(collection: Path, family: str, characters: frozenset[str]) -> bytes:
    faces = TTCollection(collection, lazy=True).fonts
    font = next(face for face in faces if face["name"].getBestFamilyName() == family)
    font = _subset(font, "".join(characters))
    font.flavor = "woff"
    data = io.BytesIO()
    font.save(data)
    return data.getvalue()


def _subset(font: TTFont, characters: str) -> TTFont:
    cutter = subset.Subsetter(subset.Options(hinting=False, name_IDs=[0, 1, 2, 13, 14]))
    cutter.populate(unicodes={ord(c) for c in characters})
    cutter.subset(font)
    return font
