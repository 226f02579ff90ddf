"""Drawing a computational graph, with every value and every gradient in its own place.

Two styles. ``style="textbook"`` (the default): operations are circles
labelled with their symbol, a plain number that entered an operation folded
into its label (times minus one, ``+1``, ``1/·``), variables are boxes, and every
edge carries the value flowing forward (upright, above the line) and, after a
backward pass, the gradient flowing back along it (italic, below the line).
``style="record"`` draws every value, intermediate ones included, as a box
with its label, data and grad, each operation a small circle in front of its
result, as micrograd's lecture does.

>>> from microgradient import Value, draw, to_svg
>>> w, x = Value(0.0, label="w"), Value(1.0, label="x")
>>> h = 1 / (1 + (-(w * x)).exp())
>>> h.backward()
>>> drawing = draw(h)  # shows inline in Jupyter, as SVG and PNG
>>> to_svg(h) == drawing.svg  # the same graph always gives the same picture
True

Graphviz only lays the graph out: every box has a size computed here from the
font's glyph metrics, Graphviz (the ``dot`` program when it is on ``PATH``,
otherwise Graphviz compiled to WebAssembly, in-process) returns positions and
splines, and the SVG is written here. So the layout never depends on the
numbers: every frame of :func:`backward_steps` has the same size and the same
node positions, and :func:`frame_svg` draws any numbers into one layout.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypedDict, Unpack

from PIL import Image

from microgradient import svg
from microgradient.engine import (
    Value,
    find_operation,
    local_derivatives,
    topological_order,
)
from microgradient.errors import GraphTooLargeError, RenderError
from microgradient.layout import (
    ENTRY_PORT,
    EXIT_PORT,
    Box,
    Cluster,
    Diagram,
    Geometry,
    Link,
    Placed,
    RankDir,
    layout,
)
from microgradient.layout import to_dot as _diagram_dot

Show: TypeAlias = Literal["forward", "backward", "both"]
Style: TypeAlias = Literal["textbook", "record"]
Collapse: TypeAlias = Literal["neuron", "layer"] | None

MINUS = "\N{MINUS SIGN}"
TIMES = "\N{MULTIPLICATION SIGN}"
VALUE_COLOUR = svg.VALUE_COLOUR
GRADIENT_COLOUR = svg.GRADIENT_COLOUR

NUMBER_FORMAT = ".4g"
"""How numbers are written in drawings and in the command's report, by default."""

_SHOWS = ("forward", "backward", "both")
_RANKDIRS = ("LR", "RL", "TB", "BT")
_STYLES = ("textbook", "record")
_COLLAPSES = (None, "neuron", "layer")
_SAVE_FORMATS = ("svg", "png", "pdf", "dot", "gv")
# numbers folded into an operation's label were typed by a person: show them as typed
_CONSTANT_FORMAT = ".6g"

# text sizes, in points
NUMBER_SIZE = 10.5
LABEL_SIZE = 11.0
SYMBOL_SIZE = 15.0
SMALL_SIZE = 9.0
CAPTION_SIZE = 11.0
# room between a line and the numbers written beside it, and inside boxes
_GAP = 3.0
_PAD = 5.0

_SYMBOLS = {
    "-": MINUS,
    "*": TIMES,
    "/": "÷",
    "**": "^",
    "neg": f"{TIMES}({MINUS}1)",
    "sqrt": "√",
    "sigmoid": "\N{GREEK SMALL LETTER SIGMA}",
    "abs": "|·|",
    "sum": "Σ",
    "dot": "Σ·",
}
# a graph drawn with its first operand first: worth a layout constraint only where order matters
_ORDERED_OPS = frozenset({"-", "/", "**", "max", "min"})


class DrawOptions(TypedDict, total=False):
    """The keyword arguments that :func:`draw`, :func:`to_svg` and the others share."""

    style: Style
    collapse: Collapse
    rankdir: RankDir
    show: Show
    number_format: str
    dpi: float
    legend: bool
    max_nodes: int


@dataclass(frozen=True)
class _Options:
    style: str = "textbook"
    collapse: str | None = None
    rankdir: RankDir = "LR"
    show: str = "both"
    number_format: str = NUMBER_FORMAT
    dpi: float = 144.0
    legend: bool = True
    max_nodes: int = 500

    @property
    def forward(self) -> bool:
        return self.show != "backward"

    @property
    def backward(self) -> bool:
        return self.show != "forward"

    def number(self, x: float | None) -> str:
        return "" if x is None else format_number(x, self.number_format)


def _options(options: Mapping[str, Any]) -> _Options:
    unknown = set(options) - set(DrawOptions.__annotations__)
    if unknown:
        known = ", ".join(DrawOptions.__annotations__)
        raise RenderError(f"unknown drawing option {sorted(unknown)[0]!r}; the options are {known}")
    chosen = _Options(**options)
    for name, allowed in (
        ("style", _STYLES),
        ("collapse", _COLLAPSES),
        ("rankdir", _RANKDIRS),
        ("show", _SHOWS),
    ):
        if getattr(chosen, name) not in allowed:
            listed = ", ".join(map(repr, allowed))
            raise RenderError(f"{name} must be one of {listed}; got {getattr(chosen, name)!r}")
    try:
        format_number(1.0, chosen.number_format)
    except (ValueError, TypeError):
        raise RenderError(
            f"number_format {chosen.number_format!r} is not a format spec for floats "
            f"(try '.4g' or '.3f')"
        ) from None
    if not isinstance(chosen.dpi, (int, float)) or not 1 <= chosen.dpi <= 2400:
        raise RenderError(f"dpi must be a number from 1 to 2400; got {chosen.dpi!r}")
    if not isinstance(chosen.max_nodes, int) or chosen.max_nodes < 1:
        raise RenderError(f"max_nodes must be at least 1, got {chosen.max_nodes!r}")
    return chosen


def format_number(x: float, number_format: str = NUMBER_FORMAT) -> str:
    """``x`` formatted for people: no ``-0``, no binary noise, a real minus sign.

    The value is first rounded to 15 significant digits (all a float holds
    reliably), then formatted with ``number_format``.

    >>> format_number(0.1 + 0.2), format_number(-0.0), format_number(2 / 3, ".2f")
    ('0.3', '0', '0.67')
    >>> format_number(-0.25) == MINUS + "0.25"
    True
    """
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "∞" if x > 0 else f"{MINUS}∞"
    text = format(float(f"{x:.15g}"), number_format)
    mantissa = text.lower().partition("e")[0]
    if "-" in mantissa and not any(digit in mantissa for digit in "123456789"):
        text = text.replace("-", "", 1)  # a negative number that rounds to zero
    return text.replace("-", MINUS)


# ---- what a picture shows -------------------------------------------------------------


@dataclass(frozen=True)
class _Numbers:
    """The numbers written into a layout, and the state of a backward pass if stepping."""

    values: Mapping[int, float]
    grads: Mapping[int, float]  # slot -> gradient, only where known
    edge_grads: Mapping[tuple[int, int], float]  # (consumer slot, operand index) -> gradient
    processed: frozenset[int] = frozenset()
    current: int | None = None
    caption: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Graph:
    """The nodes to draw (topological order, a node named by its position) and the outputs."""

    order: Sequence[Value]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class _Scene:
    graph: _Graph
    numbers: _Numbers
    # the caption area every frame of one backward pass reserves: (lines, width in points)
    caption_room: tuple[int, float] = (0, 0.0)


@dataclass(frozen=True)
class BackwardStep:
    """One frame of :func:`backward_steps`: the backward pass after its first ``step`` nodes.

    Attributes:
        step: how many operation nodes have passed their gradient back (0 to ``total``).
        total: the number of operation nodes, so the last frame has ``step == total``.
        node: the node processed in this step (``None`` in frame 0, where only the
            root's gradient has been seeded).
        caption: the chain-rule step of this frame, in words and numbers.
    """

    step: int
    total: int
    node: Value | None
    _scene: _Scene = field(repr=False)
    _options: DrawOptions = field(default_factory=lambda: DrawOptions(), repr=False)

    @property
    def root(self) -> Value:
        """The value whose backward pass this is."""
        return self._scene.graph.order[-1]

    @property
    def caption(self) -> str:
        """What happened in this step, one line per operand (as drawn under the frame)."""
        return "\n".join(self._scene.numbers.caption)

    def gradient(self, value: Value) -> float | None:
        """``value``'s gradient accumulated so far, or ``None`` if none has reached it yet."""
        for position, node in enumerate(self._scene.graph.order):
            if node is value:
                return self._scene.numbers.grads.get(position)
        raise RenderError(f"{value!r} is not a node of this graph")

    def draw(self, **options: Unpack[DrawOptions]) -> GraphDrawing:
        """This frame as a drawing; options default to those given to :func:`backward_steps`."""
        return draw(self, **options)

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, bytes | str]:
        return self.draw()._repr_mimebundle_(include, exclude)


class GraphDrawing:
    """A drawn graph: SVG text, PNG on demand, shown inline by Jupyter (SVG and PNG).

    >>> from microgradient import Value, draw
    >>> drawing = draw(Value(2.0, label="a").exp())
    >>> drawing.svg.startswith("<?xml"), drawing.pipe("png")[:4] == b"\\x89PNG"
    (True, True)
    """

    def __init__(self, svg_text: str, width: float, height: float, dpi: float, dot: str) -> None:
        self.svg = svg_text
        self.width = width  # points
        self.height = height
        self.dpi = dpi
        self.source = dot  # the DOT that laid it out, each box labelled with its text

    def __repr__(self) -> str:
        # stable text, so re-running a notebook does not change its saved output
        return "<GraphDrawing: display it, or call .pipe('svg' or 'png') or save_graph()>"

    def png(self) -> bytes:
        """The drawing as PNG bytes, at the drawing's ``dpi``."""
        return svg.rasterise(self.svg, self.width, self.height, self.dpi)

    def pdf(self) -> bytes:
        """The drawing as a one-page PDF for printing: the PNG at ``dpi``, page sized to match.

        Made with Pillow from the same pixels as :meth:`png`, so it needs no
        system program; pass ``dpi=300`` to :func:`draw` for print quality.
        """
        page = io.BytesIO()
        with Image.open(io.BytesIO(self.png())) as picture:
            picture.convert("RGB").save(page, "PDF", resolution=float(self.dpi), quality=95)
        return page.getvalue()

    def pipe(self, format: str = "svg") -> bytes:
        """The drawing as ``"svg"``, ``"png"``, ``"pdf"`` or ``"dot"`` bytes."""
        if format == "svg":
            return self.svg.encode("utf-8")
        if format == "png":
            return self.png()
        if format == "pdf":
            return self.pdf()
        if format in ("dot", "gv"):
            return self.source.encode("utf-8")
        raise RenderError(f"a drawing can be piped as svg, png, pdf or dot, not {format!r}")

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_png_(self) -> bytes:
        return self.png()

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, bytes | str]:
        # PNG as well: GitHub shows a notebook's PNG outputs, not always its SVG ones
        wanted = {"image/svg+xml", "image/png"}
        if include:
            wanted &= set(include)
        if exclude:
            wanted -= set(exclude)
        bundle: dict[str, bytes | str] = {}
        if "image/svg+xml" in wanted:
            bundle["image/svg+xml"] = self.svg
        if "image/png" in wanted:
            bundle["image/png"] = self.png()
        return bundle


Drawable: TypeAlias = "Value | BackwardStep | Sequence[Value]"


def draw(root: Drawable, **options: Unpack[DrawOptions]) -> GraphDrawing:
    """The computational graph of ``root``, drawn (shown inline in Jupyter).

    Args:
        root: the value to draw with everything it was computed from, a list of
            values (drawn together, each with its own output arrow), or a frame
            of :func:`backward_steps`.
        style: ``"textbook"`` (numbers on the edges) or ``"record"`` (every value
            a box with its label, data and grad).
        collapse: ``"neuron"`` or ``"layer"`` draws each neuron (layer) of an
            ``nn`` model as one box; ``None`` draws every node.
        rankdir: the direction the graph flows: ``"LR"``, ``"RL"``, ``"TB"`` or ``"BT"``.
        show: ``"forward"`` (values only), ``"backward"`` (gradients only) or ``"both"``.
            Gradients appear only once a backward pass has run from ``root``
            (its ``grad`` is not zero): before that none is shown rather than a
            misleading 0.
        number_format: a format spec for every number, e.g. ``".4g"`` or ``".3f"``.
        dpi: the resolution of PNG output.
        legend: whether to explain, under the picture, how to read it.
        max_nodes: the largest graph to draw; a larger one raises
            :class:`~microgradient.errors.GraphTooLargeError` at once.

    >>> from microgradient import Value, draw
    >>> x = Value(3.0, label="x")
    >>> y = x * x
    >>> y.backward()
    >>> drawing = draw(y)
    >>> drawing.svg.count('data-from="0" data-to="1"')  # one edge per use of x
    2
    """
    chosen = _options(_with_frame_options(root, options))
    scene = _scene_of(root, chosen)
    return _drawing(scene, chosen)


def to_dot(root: Drawable, **options: Unpack[DrawOptions]) -> str:
    """The DOT that lays :func:`draw`'s picture out, each box labelled with its text.

    >>> from microgradient import Value, to_dot
    >>> print(to_dot(Value(2.0, label="a").exp(), show="forward").splitlines()[0])
    digraph microgradient {
    """
    chosen = _options(_with_frame_options(root, options))
    plan = _plan(_scene_of(root, chosen), chosen)
    return _diagram_dot(plan.diagram, chosen.rankdir, with_text=True)


def to_svg(root: Drawable, **options: Unpack[DrawOptions]) -> str:
    """:func:`draw`'s picture as an SVG document, with or without Graphviz installed.

    >>> from microgradient import Value, to_svg
    >>> to_svg(Value(2.0, label="a") + 1).startswith("<?xml")
    True
    """
    return draw(root, **options).svg


def frame_svg(
    root: Value,
    values: Mapping[int, float] | None = None,
    grads: Mapping[int, float] | None = None,
    edge_grads: Mapping[tuple[int, int], float] | None = None,
    **options: Unpack[DrawOptions],
) -> str:
    """``root``'s graph drawn with the numbers given, not those its values hold.

    Slots are positions in :func:`~microgradient.topological_order` (root last);
    ``edge_grads`` maps ``(consumer slot, operand index)`` to the gradient along
    that edge. A number not given is left blank, but its text element is there
    and the layout is the same whatever numbers are given, so frames line up.

    >>> from microgradient import Value
    >>> x = Value(2.0, label="x")
    >>> y = x * 3
    >>> a = frame_svg(y, {0: 2.0, 1: 6.0}, {1: 1.0}, {(1, 0): 3.0})
    >>> b = frame_svg(y, {0: -125.5, 1: -376.5})
    >>> 'class="mg-grad"' in b and a.count("<text") == b.count("<text")
    True
    """
    chosen = _options(options)
    graph = _graph_of(root, chosen.max_nodes)
    numbers = _Numbers(dict(values or {}), dict(grads or {}), dict(edge_grads or {}))
    return _drawing(_Scene(graph, numbers), chosen).svg


def save_graph(root: Drawable, path: str | PathLike[str], **options: Unpack[DrawOptions]) -> Path:
    """Write :func:`draw`'s picture to ``path``, in the format its suffix names.

    ``.svg``, ``.png`` or ``.pdf`` (at ``dpi``), or ``.dot`` / ``.gv`` (the layout's DOT); ``.html``
    writes the interactive explorer of :func:`~microgradient.explore`.

    >>> import tempfile, pathlib
    >>> from microgradient import Value, save_graph
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> save_graph(Value(2.0, label="a").exp(), folder / "graph.svg").name
    'graph.svg'
    """
    target = Path(path)
    suffix = target.suffix.lstrip(".").lower()
    if suffix == "html":
        # imported here: the explorer builds on this module, not the other way round
        from microgradient.explorer import explore

        if isinstance(root, BackwardStep):
            root = root.root
        if not isinstance(root, Value):
            raise RenderError("save_graph: an .html explorer shows the graph of one Value")
        return explore(root, **options).save(target)
    if suffix not in _SAVE_FORMATS:
        supported = ", ".join(f".{name}" for name in _SAVE_FORMATS)
        raise RenderError(f"save_graph: cannot tell a format from {target.name!r}; use {supported}")
    if suffix in ("dot", "gv"):
        target.write_text(to_dot(root, **options), encoding="utf-8")
    else:
        target.write_bytes(draw(root, **options).pipe(suffix))
    return target


def backward_steps(
    root: Value, gradient: float = 1.0, **options: Unpack[DrawOptions]
) -> Iterator[BackwardStep]:
    """The backward pass one node at a time, as frames to draw: for teaching.

    Frame 0 has only the root's gradient seeded; frame ``k`` is the pass after
    the first ``k`` operation nodes (in the order ``backward()`` takes them)
    have passed their gradient back to their operands. Its caption states the
    chain-rule step with numbers (upstream 0.5 times local ``∂(a+b)/∂a = 1``, giving 0.5)
    and, where a node feeds several others, the sum of its uses. Every frame
    has the same size and node positions, so they animate (:func:`save_steps`).
    The ``grad`` of the graph's values is left untouched.

    >>> from microgradient import Value, backward_steps
    >>> x = Value(2.0, label="x")
    >>> frames = list(backward_steps((x * 3).exp()))
    >>> [frame.step for frame in frames], frames[-1].gradient(x) == 3 * (x * 3).exp().data
    ([0, 1, 2], True)
    >>> x.grad
    0.0
    """
    chosen = _options(options)  # checked now, so that a typo fails before the first frame
    graph = _graph_of(root, chosen.max_nodes)
    frames = list(_backward_frames(graph, float(gradient)))
    room = (
        max(len(numbers.caption) for _, _, numbers in frames),
        max(
            svg.text_width(line, CAPTION_SIZE)
            for _, _, numbers in frames
            for line in numbers.caption
        ),
    )
    total = len(frames) - 1
    return iter(
        [
            BackwardStep(step, total, node, _Scene(graph, numbers, room), options)
            for step, node, numbers in frames
        ]
    )


def save_steps(
    root: Value, path: str | PathLike[str], *, seconds: float = 1.5, **options: Unpack[DrawOptions]
) -> Path:
    """Write the frames of :func:`backward_steps` as an animated GIF (``seconds`` per frame).

    >>> import tempfile, pathlib
    >>> from microgradient import Value, save_steps
    >>> x = Value(2.0, label="x")
    >>> save_steps((x * 3).exp(), pathlib.Path(tempfile.mkdtemp()) / "steps.gif").suffix
    '.gif'
    """
    target = Path(path)
    images = [
        Image.open(io.BytesIO(frame.draw().png())).convert("RGB")
        for frame in backward_steps(root, **options)
    ]
    frames = [image.quantize(colors=255, dither=Image.Dither.NONE) for image in images]
    frames[0].save(
        target,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=int(seconds * 1000),
        loop=0,
        disposal=1,
    )
    return target


# ---- the graph ---------------------------------------------------------------------


def _with_frame_options(root: Drawable, options: Mapping[str, Any]) -> dict[str, Any]:
    """A frame of :func:`backward_steps` keeps the options given there, unless overridden."""
    return {**root._options, **options} if isinstance(root, BackwardStep) else dict(options)


def _scene_of(root: Drawable, chosen: _Options) -> _Scene:
    if isinstance(root, BackwardStep):
        _check_size(len(root._scene.graph.order), chosen.max_nodes)
        return root._scene
    graph = _graph_of(root, chosen.max_nodes)
    return _Scene(graph, _held_numbers(graph))


def _graph_of(root: object, max_nodes: int) -> _Graph:
    """The nodes of ``root`` (a Value or a list of them) in topological order, checked."""
    if isinstance(root, Value):
        roots = [root]
    elif isinstance(root, (list, tuple)) and root and all(isinstance(r, Value) for r in root):
        roots = list(root)
    else:
        kind = type(root).__name__
        hint = (
            f"wrap a number in Value({root!r}) to draw it"
            if isinstance(root, (int, float))
            else "pass a Value, a list of Values or a frame of backward_steps"
        )
        raise RenderError(f"draw: cannot draw a {kind} ({root!r:.60}); {hint}")
    size = _count_nodes(roots, stop_after=max_nodes)
    if size > max_nodes:
        _check_size(_count_nodes(roots, stop_after=None), max_nodes)
    if len(roots) == 1:
        return _Graph(topological_order(roots[0]), (size - 1,))
    order: list[Value] = []
    seen: set[int] = set()
    for r in roots:
        for node in topological_order(r):
            if id(node) not in seen:
                seen.add(id(node))
                order.append(node)
    slot = {id(node): i for i, node in enumerate(order)}
    return _Graph(order, tuple(dict.fromkeys(slot[id(r)] for r in roots)))


def _check_size(size: int, max_nodes: int) -> None:
    if size > max_nodes:
        raise GraphTooLargeError(
            f"the graph has {size} nodes, more than max_nodes={max_nodes}: laying it out could "
            f"take minutes and the picture would be unreadable. For a neural network, draw it "
            f"by neuron or by layer: draw(..., collapse='neuron') or collapse='layer'. "
            f"Otherwise draw a smaller expression, or pass max_nodes={size} to draw it anyway."
        )


def _count_nodes(roots: Sequence[Value], stop_after: int | None) -> int:
    """The number of nodes in the graph, or a number > ``stop_after`` as soon as it is."""
    seen = {id(r) for r in roots}
    stack = list(roots)
    while stack and (stop_after is None or len(seen) <= stop_after):
        for parent in stack.pop().parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return len(seen)


def _held_numbers(graph: _Graph) -> _Numbers:
    """The values and gradients the graph's nodes hold now.

    Gradients count only if a backward pass ran from an output (its ``grad``
    is not zero): the graph of ``x.grad`` after ``backward(create_graph=True)``
    shares leaves with the first graph, whose gradients belong to that pass.
    """
    order = graph.order
    values = {i: float(node.data) for i, node in enumerate(order)}
    if not any(float(order[i].grad) for i in graph.outputs):
        return _Numbers(values, {}, {})
    grads = {i: float(node.grad) for i, node in enumerate(order)}
    edge_grads = {
        (i, k): grads[i] * local
        for i, node in enumerate(order)
        for k, local in enumerate(_local_derivatives(node))
    }
    return _Numbers(values, grads, edge_grads)


def _local_derivatives(node: Value) -> list[float]:
    try:
        return list(local_derivatives(node) or ())
    except ArithmeticError:  # an overflowing derivative: drawn as nan rather than not drawn
        return [math.nan] * len(node.parents)


# ---- backward steps ----------------------------------------------------------------


def _backward_frames(graph: _Graph, seed: float) -> Iterator[tuple[int, Value | None, _Numbers]]:
    order = graph.order
    root = len(order) - 1
    values = {i: float(node.data) for i, node in enumerate(order)}
    ops = [i for i in reversed(range(len(order))) if order[i].parents]
    slot = {id(node): i for i, node in enumerate(order)}
    node_grads: dict[int, float] = {root: seed}
    edge_grads: dict[tuple[int, int], float] = {}
    contributions: dict[int, list[float]] = {}
    total = len(ops)
    name = _name(order[root], "the output")
    seed_caption = (f"step 0 of {total}: seed ∂{name}/∂{name} = {format_number(seed)}",)
    yield 0, None, _Numbers(values, dict(node_grads), {}, caption=seed_caption)
    for step, i in enumerate(ops, start=1):
        node = order[i]
        # reverse topological order: every consumer of this node has already passed it its part
        upstream = node_grads[i]
        lines = [
            f"step {step} of {total}: through {_op_label(node)}"
            + (f" ({node.label})" if node.label else "")
            + f", upstream gradient {format_number(upstream)}"
        ]
        locals_ = _local_derivatives(node)
        for k, (parent, local) in enumerate(zip(node.parents, locals_)):
            flowing = edge_grads[i, k] = upstream * local
            j = slot[id(parent)]
            node_grads[j] = node_grads.get(j, 0.0) + flowing
            contributions.setdefault(j, []).append(flowing)
            line = (
                f"to {_name(parent, 'the ' + _op_label(parent) + ' node')}: upstream "
                f"{format_number(upstream)}"
                f" {TIMES} local {_local_notation(node, k)} = {format_number(local)}"
                f" → {format_number(flowing)}"
            )
            uses = contributions[j]
            if len(uses) > 1:
                summed = " + ".join(format_number(u) for u in uses)
                line += f"; sum of its {len(uses)} uses {summed} = {format_number(node_grads[j])}"
            lines.append(line)
        yield (
            step,
            node,
            _Numbers(
                values,
                dict(node_grads),
                dict(edge_grads),
                frozenset(ops[:step]),
                i,
                _fit_caption(lines),
            ),
        )


_CAPTION_OPERANDS = 4  # operand lines shown in a caption; a dot of 17 terms lists 4 and a count


def _fit_caption(lines: list[str]) -> tuple[str, ...]:
    head, rest = lines[0], lines[1:]
    if len(rest) <= _CAPTION_OPERANDS:
        return (head, *rest)
    hidden = len(rest) - _CAPTION_OPERANDS + 1
    return (head, *rest[: _CAPTION_OPERANDS - 1], f"… and {hidden} more operands")


def _name(node: Value, fallback: str) -> str:
    return node.label or fallback


def _letter(k: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[k] if k < 26 else f"x{k}"


def _local_notation(node: Value, k: int) -> str:
    """``∂(a+b)/∂a`` and the like: the local derivative taken in this step, in symbols."""
    letters = [_letter(n) for n in range(len(node.parents))]
    a = letters[0]
    b = letters[1] if len(letters) > 1 else ""
    c = node.constant
    n = "" if c is None else format_number(c, _CONSTANT_FORMAT)
    wrapped = f"({n})" if c is not None and c < 0 else n
    binary = {
        "+": f"{a}+{b or wrapped}",
        "-": f"{a}{MINUS}{b or wrapped}",
        "*": f"{a}·{b or wrapped}",
        "/": f"{a}/{b or wrapped}",
        "**": f"{a}^{b or wrapped}",
        "r-": f"{wrapped}{MINUS}{a}",
        "r/": f"{wrapped}/{a}",
        "r**": f"{wrapped}^{a}",
        "neg": f"{MINUS}{a}",
        "sqrt": f"√{a}",
        "abs": f"|{a}|",
        "sigmoid": f"\N{GREEK SMALL LETTER SIGMA}({a})",
        "max": f"max({a}, {b or wrapped})",
        "min": f"min({a}, {b or wrapped})",
    }
    if node.op in binary:
        expression = binary[node.op]
    elif node.op in ("sum", "dot") or len(letters) > 2:
        expression = f"{_SYMBOLS.get(node.op, node.op)}(…)"
    else:
        expression = f"{_symbol(node.op)}({', '.join(letters)})"
    infix = node.op in ("+", "-", "*", "/", "**", "r-", "r/", "r**", "neg")
    return f"∂({expression})/∂{letters[k]}" if infix else f"∂{expression}/∂{letters[k]}"


# ---- the plan: boxes, their sizes, and what goes in them ------------------------------


@dataclass(frozen=True)
class _NodePart:
    slot: int
    key: str
    kind: Literal["leaf", "op", "record", "group"]
    symbol: str = ""
    label: str = ""
    op_key: str = ""  # record style: the operation's circle in front of the box
    op_link: int = -1
    numbers: bool = True  # a layer of several neurons has no one value to show


@dataclass(frozen=True)
class _EdgePart:
    source: int
    target: int | None  # None: the output arrow
    operand: int
    links: tuple[int, ...]  # indices into the diagram's links, in drawing order
    label_key: str = ""  # textbook: the box the line passes through, numbers beside it
    output_key: str = ""
    output_text: str = ""


@dataclass(frozen=True)
class _Plan:
    diagram: Diagram
    nodes: tuple[_NodePart, ...]
    edges: tuple[_EdgePart, ...]
    number_width: float  # room reserved for any number in the chosen format


_PROBES = (
    -1.23456789e-99,
    -1.23456789e99,
    -123456.789,
    -98765.4321,
    -0.000123456789,
    -8.88888888,
    math.nan,
    -math.inf,
)


def _number_width(number_format: str) -> float:
    """The width of the widest number the format gives for numbers people meet, italic or not."""
    texts = [format_number(x, number_format) for x in _PROBES]
    widest = max(
        max(svg.text_width(t, NUMBER_SIZE), svg.text_width(t, NUMBER_SIZE, italic=True))
        for t in texts
    )
    # a fixed-point format writes 1e100 with a hundred digits: such a number is squeezed instead
    return min(widest, svg.text_width(MINUS + "0.0000000000", NUMBER_SIZE, italic=True))


def _line_height(size: float) -> float:
    return (svg.ASCENT + svg.DESCENT) * size


def _plan(scene: _Scene, chosen: _Options) -> _Plan:
    order = scene.graph.order
    slot = {id(node): i for i, node in enumerate(order)}
    number_width = _number_width(chosen.number_format)
    groups = _groups(order, chosen.collapse)
    group_of = {member: group for group in groups for member in group.members}
    boxes: list[Box] = []
    links: list[Link] = []
    nodes: list[_NodePart] = []
    edges: list[_EdgePart] = []
    entry, exit_ = ENTRY_PORT[chosen.rankdir], EXIT_PORT[chosen.rankdir]
    record = chosen.style == "record"
    for group in groups:
        size = _group_size(group, number_width, chosen)
        boxes.append(Box(group.key, *size, cluster=group.cluster, text=group.title))
        nodes.append(
            _NodePart(
                group.output,
                group.key,
                "group",
                group.detail,
                group.title,
                numbers=group.single,
            )
        )
    for i, node in enumerate(order):
        if i in group_of:
            continue
        key = f"n{i}"
        label = node.label if (i not in scene.graph.outputs or record) else ""
        if record:
            boxes.append(Box(key, *_record_size(node.label, number_width, chosen), text=node.label))
            if node.parents:
                symbol = _op_label(node)
                diameter = _circle_diameter(symbol, "")
                boxes.append(
                    Box(
                        f"o{i}",
                        diameter,
                        diameter,
                        "ellipse",
                        ordered_inputs=_ordered(node),
                        text=symbol,
                    )
                )
                links.append(Link(f"o{i}", key))
                nodes.append(
                    _NodePart(i, key, "record", symbol, node.label, f"o{i}", len(links) - 1)
                )
            else:
                nodes.append(_NodePart(i, key, "record", "", node.label))
        elif node.parents:
            symbol = _op_label(node)
            diameter = _circle_diameter(symbol, label)
            boxes.append(
                Box(key, diameter, diameter, "ellipse", ordered_inputs=_ordered(node), text=symbol)
            )
            nodes.append(_NodePart(i, key, "op", symbol, label))
        else:
            boxes.append(Box(key, *_leaf_size(node.label, number_width, chosen), text=node.label))
            nodes.append(_NodePart(i, key, "leaf", "", node.label))
    label_size = _edge_label_size(number_width, chosen)
    drawn: set[tuple[str, str]] = set()
    for i, node in enumerate(order):
        target_group = group_of.get(i)
        for k, parent in enumerate(node.parents):
            j = slot[id(parent)]
            source_group = group_of.get(j)
            if source_group is not None and source_group is target_group:
                continue
            tail = source_group.key if source_group is not None else f"n{j}"
            own_head = f"o{i}" if record else f"n{i}"
            head = target_group.key if target_group is not None else own_head
            if source_group is not None or target_group is not None:
                # a neuron or layer box holds its numbers: its edges are plain, drawn once
                if (tail, head) not in drawn:
                    drawn.add((tail, head))
                    links.append(Link(tail, head))
                    edges.append(_EdgePart(j, i, k, (len(links) - 1,)))
            elif record:
                links.append(Link(tail, head))
                edges.append(_EdgePart(j, i, k, (len(links) - 1,)))
            else:
                label_key = f"e{i}_{k}"
                boxes.append(Box(label_key, *label_size))
                links.append(Link(tail, label_key, head_port=entry, arrow=False))
                links.append(Link(label_key, head, tail_port=exit_))
                edges.append(_EdgePart(j, i, k, (len(links) - 2, len(links) - 1), label_key))
    for n, root in enumerate(scene.graph.outputs):
        text = order[root].label or "output"
        output_key = f"out{n}"
        width = svg.text_width(text, LABEL_SIZE) + 2 * _GAP
        boxes.append(Box(output_key, width, _line_height(LABEL_SIZE) + 2 * _GAP, text=text))
        root_group = group_of.get(root)
        tail = root_group.key if root_group is not None else f"n{root}"
        if record or root_group is not None:
            links.append(Link(tail, output_key))
            edges.append(_EdgePart(root, None, 0, (len(links) - 1,), "", output_key, text))
        else:
            label_key = f"eout{n}"
            boxes.append(Box(label_key, *label_size))
            links.append(Link(tail, label_key, head_port=entry, arrow=False))
            links.append(Link(label_key, output_key, tail_port=exit_))
            edges.append(
                _EdgePart(
                    root, None, 0, (len(links) - 2, len(links) - 1), label_key, output_key, text
                )
            )
    clusters = tuple(
        Cluster(key, _line_height(SMALL_SIZE), tuple(g.key for g in groups if g.cluster == key))
        for key in dict.fromkeys(g.cluster for g in groups)
        if key
    )
    diagram = Diagram(tuple(boxes), tuple(links), clusters)
    return _Plan(diagram, tuple(nodes), tuple(edges), number_width)


# ---- networks by neuron and by layer ---------------------------------------------------

# the labels nn gives parameters: w2 and b of a Neuron, n3.w2 in a Layer, L1.n3.w2 in an MLP
_PARAMETER = re.compile(r"^(?:(?P<layer>L\d+)\.)?(?:(?P<neuron>n\d+)\.)?(?P<name>w\d+|b)$")
_ACTIVATION_OPS = frozenset({"relu", "tanh", "sigmoid"})


@dataclass(frozen=True)
class _Group:
    """Nodes drawn as one box: a neuron (its dot, activation and parameters) or a layer."""

    key: str
    title: str
    detail: str
    members: frozenset[int]
    output: int  # the slot whose value and gradient the box shows
    cluster: str = ""
    single: bool = True  # one neuron, so one output whose numbers the box shows


def _groups(order: Sequence[Value], collapse: str | None) -> list[_Group]:
    """The neurons (or layers) of ``nn`` modules in the graph.

    A neuron is a ``dot`` node whose weights and bias are parameters labelled by
    ``nn`` (``L1.n3.w2``, ``L1.n3.b``), with those parameters and the activation it
    alone feeds.
    """
    if collapse is None:
        return []
    slot = {id(node): i for i, node in enumerate(order)}
    consumers: dict[int, list[int]] = {}
    for i, node in enumerate(order):
        for parent in node.parents:
            consumers.setdefault(slot[id(parent)], []).append(i)
    neurons: dict[tuple[str, str], tuple[set[int], int, str]] = {}
    for i, node in enumerate(order):
        if node.op != "dot":
            continue
        owners = set()
        members = {i}
        k = (len(node.parents) - len(node.coefficients or ())) // 2
        for n, parent in enumerate(node.parents):
            match = _PARAMETER.match(parent.label) if not parent.parents else None
            # the inputs a weight multiplies (parents k to 2k - 1) are not the neuron's
            if match is not None and not k <= n < 2 * k:
                owners.add((match["layer"] or "", match["neuron"] or ""))
                members.add(slot[id(parent)])
        if len(owners) != 1:
            continue
        output = i
        users = consumers.get(i, [])
        if len(users) == 1 and order[users[0]].op in _ACTIVATION_OPS:
            output = users[0]
            members.add(output)
        neurons[owners.pop()] = (members, output, order[output].op)
    if collapse == "neuron":
        groups = []
        in_order = sorted(neurons.items(), key=lambda item: _natural(".".join(item[0])))
        for n, ((layer, neuron), (members, output, op)) in enumerate(in_order):
            title = ".".join(part for part in (layer, neuron) if part) or "neuron"
            detail = op if op != "dot" else "linear"
            groups.append(_Group(f"g{n}", title, detail, frozenset(members), output, layer))
        return groups
    layers: dict[str, list[tuple[set[int], int, str]]] = {}
    for (layer, _), parts in sorted(neurons.items(), key=lambda item: _natural(item[0][0])):
        layers.setdefault(layer or "layer", []).append(parts)
    groups = []
    for n, (layer, members_of) in enumerate(layers.items()):
        everyone = frozenset(m for members, _, _ in members_of for m in members)
        ops = sorted({op if op != "dot" else "linear" for _, _, op in members_of})
        count = len(members_of)
        detail = f"{count} neuron{'s' if count > 1 else ''} · {', '.join(ops)}"
        output = max(output for _, output, _ in members_of)
        groups.append(_Group(f"g{n}", layer, detail, everyone, output, single=count == 1))
    return groups


def _natural(name: str) -> tuple[int | str, ...]:
    """A sort key putting n2 before n10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _group_size(group: _Group, number_width: float, chosen: _Options) -> tuple[float, float]:
    # one row "L1.n3 relu" (the name, then what it computes), then a neuron's value and gradient
    width = _group_title_width(group.title, group.detail)
    height = _line_height(LABEL_SIZE)
    if group.single:
        height += _line_height(NUMBER_SIZE)
        width = max(width, 2 * (number_width + _GAP))
    return width + 2 * _PAD, height + 2 * _PAD


def _group_title_width(title: str, detail: str) -> float:
    return svg.text_width(f"{title} ", LABEL_SIZE) + svg.text_width(detail, SMALL_SIZE)


def _ordered(node: Value) -> bool:
    return node.op in _ORDERED_OPS and len(node.parents) == 2


def _symbol_size(symbol: str) -> float:
    # operator glyphs are small for their point size; words like "tanh" need no such help
    return SYMBOL_SIZE if len(symbol) <= 2 else LABEL_SIZE


def _circle_diameter(symbol: str, label: str) -> float:
    size = _symbol_size(symbol)
    width = svg.text_width(symbol, size)
    height = _line_height(size)
    if label:
        width = max(width, svg.text_width(label, SMALL_SIZE))
        height += _line_height(SMALL_SIZE)
    return max(30.0, math.hypot(width, height) + 8)


def _leaf_rows(label: str, chosen: _Options) -> list[tuple[str, float]]:
    rows = [("label", LABEL_SIZE)] if label else []
    if chosen.forward:
        rows.append(("value", NUMBER_SIZE))
    if chosen.backward:
        rows.append(("grad", NUMBER_SIZE))
    return rows


def _leaf_size(label: str, number_width: float, chosen: _Options) -> tuple[float, float]:
    rows = _leaf_rows(label, chosen)
    width = max(number_width, svg.text_width(label, LABEL_SIZE)) + 2 * _PAD
    height = sum(_line_height(size) + 1 for _, size in rows) + 2 * _PAD
    return width, height


def _record_cells(label: str, number_width: float, chosen: _Options) -> list[tuple[str, float]]:
    """(kind, width) of the cells of a record box, left to right."""
    cells = [("label", svg.text_width(label, LABEL_SIZE) + 2 * _PAD)] if label else []
    if chosen.forward:
        cells.append(("value", svg.text_width("data ", SMALL_SIZE) + number_width + 2 * _PAD))
    if chosen.backward:
        cells.append(("grad", svg.text_width("grad ", SMALL_SIZE) + number_width + 2 * _PAD))
    return cells


def _record_size(label: str, number_width: float, chosen: _Options) -> tuple[float, float]:
    width = sum(w for _, w in _record_cells(label, number_width, chosen))
    return max(width, 24.0), _line_height(LABEL_SIZE) + 2 * _PAD


def _edge_label_size(number_width: float, chosen: _Options) -> tuple[float, float]:
    """The box an edge passes straight through, with a number on either side of the line."""
    line = _line_height(NUMBER_SIZE)
    if chosen.rankdir in ("LR", "RL"):
        return number_width + 2, 2 * (line + _GAP + 1)
    return 2 * (number_width + _GAP + 1), line + 2


# ---- the picture -------------------------------------------------------------------


def _drawing(scene: _Scene, chosen: _Options) -> GraphDrawing:
    plan = _plan(scene, chosen)
    geometry = layout(plan.diagram, chosen.rankdir)
    body, width, height = _picture(plan, geometry, scene, chosen)
    title = "computational graph of " + (scene.graph.order[-1].label or "the output")
    document = svg.document(width, height, body, title)
    dot = _diagram_dot(plan.diagram, chosen.rankdir, with_text=True)
    return GraphDrawing(document, width, height, chosen.dpi, dot)


def _picture(
    plan: _Plan, geometry: Geometry, scene: _Scene, chosen: _Options
) -> tuple[list[str], float, float]:
    numbers = scene.numbers
    body = ['<g class="mg-graph">']
    for key, (x0, y0, x1, y1) in geometry.clusters.items():
        # the title goes in a corner where no edge enters: the top when edges come from above
        top = chosen.rankdir != "TB"
        title_baseline = (
            y0 + 3 + svg.ASCENT * SMALL_SIZE if top else y1 - 3 - svg.DESCENT * SMALL_SIZE
        )
        body.append(
            f'<g class="mg-cluster" data-cluster="{key}"><rect x="{svg.fmt(x0)}" '
            f'y="{svg.fmt(y0)}" width="{svg.fmt(x1 - x0)}" height="{svg.fmt(y1 - y0)}" rx="6" '
            f'fill="none" stroke="{svg.CLUSTER_LINE}" stroke-dasharray="4 3"/>'
            + svg.text(
                key,
                x0 + _PAD,
                title_baseline,
                size=SMALL_SIZE,
                css_class="mg-cluster-title",
                anchor="start",
                fill=svg.MUTED,
            )
            + "</g>"
        )
    for edge in plan.edges:
        body.append(_edge_svg(edge, plan, geometry, numbers, chosen))
    order = scene.graph.order
    for part in plan.nodes:
        body.append(_node_svg(part, order[part.slot], plan, geometry, numbers, chosen))
    body.append("</g>")
    width, height = geometry.width, geometry.height
    below: list[tuple[str, list[str]]] = []
    legend = _legend(chosen) if chosen.legend else []
    caption_lines, caption_width = scene.caption_room
    width = max(
        width,
        caption_width + 2 * _PAD + 8,
        *(_legend_width(runs) + 2 * _PAD + 8 for runs in legend),
    )
    y = height
    step = _line_height(CAPTION_SIZE) + 3
    if caption_lines:
        texts = []
        for n in range(caption_lines):
            line = numbers.caption[n] if n < len(numbers.caption) else ""
            texts.append(
                svg.text(
                    line,
                    12,
                    y + svg.ASCENT * CAPTION_SIZE,
                    size=CAPTION_SIZE,
                    css_class="mg-caption-line",
                    anchor="start",
                    fill=svg.INK,
                    max_width=width - 24,
                )
            )
            y += step
        below.append(("mg-caption", texts))
    if legend:
        y += 2
        texts = []
        for runs in legend:
            texts.append(_legend_text(runs, 12, y + svg.ASCENT * LABEL_SIZE))
            y += step
        below.append(("mg-legend", texts))
    for css_class, texts in below:
        body.append(f'<g class="{css_class}">')
        body.extend(texts)
        body.append("</g>")
    return body, width, y + (4 if below else 0)


def _edge_svg(
    edge: _EdgePart, plan: _Plan, geometry: Geometry, numbers: _Numbers, chosen: _Options
) -> str:
    routes = [geometry.routes[n] for n in edge.links]
    target = "output" if edge.target is None else str(edge.target)
    parts = [
        f'<g class="mg-edge" data-from="{edge.source}" data-to="{target}" '
        f'data-operand="{edge.operand}">'
    ]
    pieces = [route.points for route in routes]
    # in a backward step, the edges that gradient has just travelled along stand out
    active = edge.target is not None and edge.target == numbers.current
    colour = GRADIENT_COLOUR if active else svg.LINE
    parts.append(svg.joined_path(pieces, stroke=colour, width=2.2 if active else 1.2))
    last = routes[-1]
    if last.tip is not None:
        parts.append(svg.arrowhead(last.points[-1], last.tip, colour=colour))
    if edge.label_key:
        box = geometry.boxes[edge.label_key]
        value = numbers.values.get(edge.source)
        if edge.target is None:
            grad = numbers.grads.get(edge.source)
        else:
            grad = numbers.edge_grads.get((edge.target, edge.operand))
        parts.extend(_edge_numbers(box, value, grad, plan.number_width, chosen))
    if edge.output_key:
        box = geometry.boxes[edge.output_key]
        parts.append(
            svg.text(
                edge.output_text,
                box.x,
                box.y + (svg.ASCENT - svg.DESCENT) / 2 * LABEL_SIZE,
                size=LABEL_SIZE,
                css_class="mg-output",
            )
        )
    parts.append("</g>")
    return "".join(parts)


def _edge_numbers(
    box: Placed, value: float | None, grad: float | None, width: float, chosen: _Options
) -> list[str]:
    """The value before (above) the line through ``box``, the gradient after (below) it."""
    texts = []
    middle = (svg.ASCENT - svg.DESCENT) / 2 * NUMBER_SIZE  # baseline offset centring a line
    across = chosen.rankdir in ("LR", "RL")
    if chosen.forward:
        if across:
            x, baseline, anchor = box.x, box.y - _GAP - svg.DESCENT * NUMBER_SIZE, "middle"
        else:
            x, baseline, anchor = box.x - _GAP, box.y + middle, "end"
        texts.append(_number_text(chosen.number(value), x, baseline, anchor, width, grad=False))
    if chosen.backward:
        if across:
            x, baseline, anchor = box.x, box.y + _GAP + svg.ASCENT * NUMBER_SIZE, "middle"
        else:
            x, baseline, anchor = box.x + _GAP, box.y + middle, "start"
        texts.append(_number_text(chosen.number(grad), x, baseline, anchor, width, grad=True))
    return texts


def _number_text(
    content: str, x: float, baseline: float, anchor: str, width: float, *, grad: bool
) -> str:
    return svg.text(
        content,
        x,
        baseline,
        size=NUMBER_SIZE,
        css_class="mg-grad" if grad else "mg-value",
        anchor=anchor,
        fill=GRADIENT_COLOUR if grad else VALUE_COLOUR,
        italic=grad,
        max_width=width,
    )


def _node_svg(
    part: _NodePart,
    node: Value,
    plan: _Plan,
    geometry: Geometry,
    numbers: _Numbers,
    chosen: _Options,
) -> str:
    box = geometry.boxes[part.key]
    fill = _fill(part.slot, numbers)
    outline = (
        f'stroke="{GRADIENT_COLOUR}" stroke-width="2.4"'
        if part.slot == numbers.current
        else f'stroke="{svg.LINE}" stroke-width="1.2"'
    )
    parts = [f'<g class="mg-node" data-node="{part.slot}">']
    if part.kind == "group":
        parts.append(_rect(box, fill if fill != "#FFFFFF" else svg.LEAF_FILL, outline, 5))
        parts.extend(_group_texts(box, part, plan, numbers, chosen))
    elif part.kind == "op":
        parts.append(_circle(box, fill, outline))
        parts.extend(_circle_texts(box, part.symbol, part.label))
    elif part.kind == "leaf":
        parts.append(_rect(box, fill if fill != "#FFFFFF" else svg.LEAF_FILL, outline, 5))
        parts.extend(_leaf_texts(box, part.label, part.slot, plan, numbers, chosen))
    else:
        if part.op_key:
            circle = geometry.boxes[part.op_key]
            route = geometry.routes[part.op_link]
            parts.append(svg.joined_path([route.points]))
            if route.tip is not None:
                parts.append(svg.arrowhead(route.points[-1], route.tip))
            parts.append(_circle(circle, fill, outline))
            parts.extend(_circle_texts(circle, part.symbol, ""))
        record_fill = fill if fill != "#FFFFFF" or part.op_key else svg.LEAF_FILL
        parts.append(_rect(box, record_fill, outline, 2))
        parts.extend(_record_texts(box, part.label, part.slot, plan, numbers, chosen))
    parts.append("</g>")
    return "".join(parts)


def _group_texts(
    box: Placed, part: _NodePart, plan: _Plan, numbers: _Numbers, chosen: _Options
) -> list[str]:
    """A neuron's or layer's name, what it computes, and (a neuron) its output's numbers."""
    y = box.top + _PAD
    left = box.x - _group_title_width(part.label, part.symbol) / 2
    baseline = y + svg.ASCENT * LABEL_SIZE
    texts = [
        svg.text(part.label, left, baseline, size=LABEL_SIZE, css_class="mg-label", anchor="start"),
        svg.text(
            part.symbol,
            left + svg.text_width(f"{part.label} ", LABEL_SIZE),
            baseline,
            size=SMALL_SIZE,
            css_class="mg-group-detail",
            anchor="start",
            fill=svg.MUTED,
        ),
    ]
    y += _line_height(LABEL_SIZE)
    if part.numbers:
        baseline = y + svg.ASCENT * NUMBER_SIZE
        if chosen.forward:
            value = chosen.number(numbers.values.get(part.slot))
            texts.append(
                _number_text(value, box.x - _GAP, baseline, "end", plan.number_width, grad=False)
            )
        if chosen.backward:
            grad = chosen.number(numbers.grads.get(part.slot))
            texts.append(
                _number_text(grad, box.x + _GAP, baseline, "start", plan.number_width, grad=True)
            )
    return texts


def _fill(slot: int, numbers: _Numbers) -> str:
    if slot == numbers.current:
        return svg.CURRENT_FILL
    if slot in numbers.processed:
        return svg.PROCESSED_FILL
    return "#FFFFFF"


def _circle(box: Placed, fill: str, outline: str) -> str:
    return (
        f'<ellipse cx="{svg.fmt(box.x)}" cy="{svg.fmt(box.y)}" rx="{svg.fmt(box.width / 2)}" '
        f'ry="{svg.fmt(box.height / 2)}" fill="{fill}" {outline}/>'
    )


def _rect(box: Placed, fill: str, outline: str, radius: float) -> str:
    return (
        f'<rect x="{svg.fmt(box.left)}" y="{svg.fmt(box.top)}" width="{svg.fmt(box.width)}" '
        f'height="{svg.fmt(box.height)}" rx="{svg.fmt(radius)}" fill="{fill}" {outline}/>'
    )


def _circle_texts(box: Placed, symbol: str, label: str) -> list[str]:
    size = _symbol_size(symbol)
    height = _line_height(size) + (_line_height(SMALL_SIZE) if label else 0)
    top = box.y - height / 2
    texts = [
        svg.text(symbol, box.x, top + svg.ASCENT * size, size=size, css_class="mg-op", fill=svg.INK)
    ]
    if label:
        baseline = top + _line_height(size) + svg.ASCENT * SMALL_SIZE
        texts.append(
            svg.text(label, box.x, baseline, size=SMALL_SIZE, css_class="mg-label", fill=svg.INK)
        )
    return texts


def _leaf_texts(
    box: Placed, label: str, slot: int, plan: _Plan, numbers: _Numbers, chosen: _Options
) -> list[str]:
    texts = []
    y = box.top + _PAD
    for kind, size in _leaf_rows(label, chosen):
        baseline = y + svg.ASCENT * size
        if kind == "label":
            texts.append(
                svg.text(label, box.x, baseline, size=size, css_class="mg-label", fill=svg.INK)
            )
        else:
            grad = kind == "grad"
            number = numbers.grads.get(slot) if grad else numbers.values.get(slot)
            texts.append(
                _number_text(
                    chosen.number(number), box.x, baseline, "middle", plan.number_width, grad=grad
                )
            )
        y += _line_height(size) + 1
    return texts


def _record_texts(
    box: Placed, label: str, slot: int, plan: _Plan, numbers: _Numbers, chosen: _Options
) -> list[str]:
    texts = []
    x = box.left
    baseline = box.y + (svg.ASCENT - svg.DESCENT) / 2 * LABEL_SIZE
    cells = _record_cells(label, plan.number_width, chosen)
    for n, (kind, width) in enumerate(cells):
        if n:
            texts.append(
                f'<line x1="{svg.fmt(x)}" y1="{svg.fmt(box.top)}" x2="{svg.fmt(x)}" '
                f'y2="{svg.fmt(box.top + box.height)}" stroke="{svg.LINE}" stroke-width="0.8"/>'
            )
        if kind == "label":
            texts.append(
                svg.text(label, x + width / 2, baseline, size=LABEL_SIZE, css_class="mg-label")
            )
        else:
            grad = kind == "grad"
            word = "grad " if grad else "data "
            texts.append(
                svg.text(
                    word,
                    x + _PAD,
                    baseline,
                    size=SMALL_SIZE,
                    css_class="mg-word",
                    anchor="start",
                    fill=svg.MUTED,
                )
            )
            number = numbers.grads.get(slot) if grad else numbers.values.get(slot)
            texts.append(
                _number_text(
                    chosen.number(number),
                    x + width - _PAD,
                    baseline,
                    "end",
                    plan.number_width,
                    grad=grad,
                )
            )
        x += width
    return texts


# ---- legend ----------------------------------------------------------------------------

# a legend line is a list of (text, kind) runs; kind: "" plain, "value", "grad"
_Run: TypeAlias = tuple[str, str]


def _legend(chosen: _Options) -> list[list[_Run]]:
    value, grad = format_number(1.5), format_number(-0.25)
    if chosen.style == "record":
        runs: list[_Run] = []
        if chosen.forward:
            runs += [("data ", ""), (value, "value"), (": the value (forward)   ", "")]
        if chosen.backward:
            runs += [("grad ", ""), (grad, "grad"), (": the gradient (backward, italic)", "")]
        return [runs]
    across = chosen.rankdir in ("LR", "RL")
    before, after = ("above", "below") if across else ("left of", "right of")
    lines: list[list[_Run]] = []
    if chosen.forward:
        lines.append(
            [(value, "value"), (f" value flowing forward: {before} each edge, upright", "")]
        )
    if chosen.backward:
        lines.append(
            [(grad, "grad"), (f" gradient flowing back: {after} each edge, in italics", "")]
        )
    lines.append([("boxes: a variable's value, then its gradient; circles: operations", "")])
    if chosen.collapse == "neuron":
        lines.append([("named boxes: a neuron, activation(w·x + b), its value and gradient", "")])
    elif chosen.collapse == "layer":
        lines.append([("named boxes: a layer of neurons", "")])
    return lines


def _legend_width(runs: list[_Run]) -> float:
    return sum(svg.text_width(text, LABEL_SIZE, italic=kind == "grad") for text, kind in runs)


def _legend_text(runs: list[_Run], x: float, baseline: float) -> str:
    """One legend line: a text element per run, each placed after the one before."""
    texts = []
    for text, kind in runs:
        fill = {"value": VALUE_COLOUR, "grad": GRADIENT_COLOUR}.get(kind, svg.MUTED)
        texts.append(
            svg.text(
                text,
                x,
                baseline,
                size=LABEL_SIZE,
                css_class="mg-legend-run",
                anchor="start",
                fill=fill,
                italic=kind == "grad",
            )
        )
        x += svg.text_width(text, LABEL_SIZE, italic=kind == "grad")
    return "".join(texts)


# ---- operation symbols ------------------------------------------------------------------


def _symbol(op: str) -> str:
    if op in _SYMBOLS:
        return _SYMBOLS[op]
    operation = find_operation(op)
    return operation.symbol if operation is not None and operation.symbol else op


def _op_label(node: Value) -> str:
    """The operation's symbol, with a plain number that entered it folded in."""
    op, c = node.op, node.constant
    symbol = _symbol(op)
    if op == "dot":
        # numbers among the operands (inputs given as floats) are part of the operation
        numbers = [format_number(k, _CONSTANT_FORMAT) for k in node.coefficients or ()]
        listed = ", ".join(numbers) if len(numbers) <= 4 else "…"
        with_numbers = f"{symbol}({listed})" if numbers else symbol
        if not c:
            return with_numbers
        return f"{with_numbers}{'+' if c > 0 else MINUS}{format_number(abs(c), _CONSTANT_FORMAT)}"
    if c is None:
        return symbol
    n = format_number(c, _CONSTANT_FORMAT)
    wrapped = f"({n})" if c < 0 else n  # a sign right after an operator reads as a typo
    magnitude = format_number(abs(c), _CONSTANT_FORMAT)
    plus = f"+{n}" if c >= 0 else f"{MINUS}{magnitude}"  # x + (-2) is drawn as x - 2
    folded = {
        "+": plus,
        "sum": f"Σ{plus}",
        "-": f"+{magnitude}" if c < 0 else f"{MINUS}{n}",
        "r-": f"{wrapped}{MINUS}·",
        "*": f"{TIMES}{wrapped}",
        "/": f"÷{wrapped}",
        "r/": f"{wrapped}/·",
        "**": f"^{wrapped}",
        "r**": f"{wrapped}^·",
        "max": f"max(·, {n})",
        "min": f"min(·, {n})",
    }
    return folded.get(op, f"{symbol} {wrapped}")
