"""Reading microgradient's SVG back: text boxes, node shapes, edge paths, arrowheads.

Text extents come from the same glyph metrics the drawing uses (``svg.text_width``,
or the ``textLength`` a squeezed text was given) and the ascent and descent the
drawing reserves, so a test can check where every string is.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microgradient import Value, svg
from microgradient.render import MINUS

NS = "{http://www.w3.org/2000/svg}"

Rect = tuple[float, float, float, float]  # left, top, right, bottom


@dataclass
class Text:
    content: str
    css_class: str
    box: Rect
    italic: bool
    fill: str
    group: str  # "node 3", "edge 2 0 1" (from, to, operand), "legend", "caption"


@dataclass
class Shape:
    kind: str  # "rect" or "ellipse"
    box: Rect
    group: str


@dataclass
class Edge:
    source: str
    target: str
    operand: str
    points: list[tuple[float, float]]
    arrow: Rect | None
    group: str


@dataclass
class Picture:
    width: float
    height: float
    texts: list[Text] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    nodes: dict[str, Rect] = field(default_factory=dict)  # data-node -> outline of its shape


def number(text: str) -> float:
    return float(text.replace(MINUS, "-"))


def text_box(element: ET.Element) -> Rect:
    """Where a text element's line lies: its measured width, the line's ascent and descent."""
    size = float(element.get("font-size", "10"))
    italic = element.get("font-style") == "italic"
    width = svg.text_width("".join(element.itertext()), size, italic)
    x, y = float(element.get("x", "0")), float(element.get("y", "0"))
    anchor = element.get("text-anchor", "start")
    left = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
    return (left, y - svg.ASCENT * size, left + width, y + svg.DESCENT * size)


def bezier_points(d: str, per_curve: int = 24) -> list[tuple[float, float]]:
    """Points along an SVG path of M, L and C commands."""
    tokens = re.findall(r"[MLC]|-?[\d.]+", d)
    points: list[tuple[float, float]] = []
    i = 0
    current = (0.0, 0.0)
    while i < len(tokens):
        command = tokens[i]
        i += 1
        if command in "ML":
            target = (float(tokens[i]), float(tokens[i + 1]))
            i += 2
            if command == "L":
                points.extend(_segment(current, target, per_curve))
            else:
                points.append(target)
            current = target
        else:
            (x1, y1, x2, y2, x3, y3) = (float(t) for t in tokens[i : i + 6])
            i += 6
            x0, y0 = current
            for n in range(1, per_curve + 1):
                t = n / per_curve
                u = 1 - t
                points.append(
                    (
                        u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3,
                        u**3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y3,
                    )
                )
            current = (x3, y3)
    return points


def _segment(a: tuple[float, float], b: tuple[float, float], n: int) -> list[tuple[float, float]]:
    return [(a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n) for k in range(1, n + 1)]


def parse(document: str) -> Picture:
    root = ET.fromstring(document)
    width = float(root.get("width", "0").removesuffix("pt"))
    height = float(root.get("height", "0").removesuffix("pt"))
    picture = Picture(width, height)

    def visit(element: ET.Element, group: str) -> None:
        css = element.get("class", "")
        if element.tag == f"{NS}g":
            if css == "mg-node":
                group = f"node {element.get('data-node')}"
            elif css == "mg-edge":
                group = "edge {} {} {}".format(
                    element.get("data-from"), element.get("data-to"), element.get("data-operand")
                )
                path = element.find(f"{NS}path")
                arrow = element.find(f"{NS}polygon")
                assert path is not None
                arrow_box = None
                if arrow is not None:
                    xs, ys = zip(
                        *(tuple(map(float, p.split(","))) for p in arrow.get("points", "").split())
                    )
                    arrow_box = (min(xs), min(ys), max(xs), max(ys))
                picture.edges.append(
                    Edge(
                        element.get("data-from", ""),
                        element.get("data-to", ""),
                        element.get("data-operand", ""),
                        bezier_points(path.get("d", "")),
                        arrow_box,
                        group,
                    )
                )
            elif css in ("mg-legend", "mg-caption"):
                group = css.removeprefix("mg-")
        elif element.tag == f"{NS}text":
            picture.texts.append(
                Text(
                    "".join(element.itertext()),
                    css,
                    text_box(element),
                    element.get("font-style") == "italic",
                    element.get("fill", ""),
                    group,
                )
            )
            return
        elif element.tag == f"{NS}rect" and group.startswith("node"):
            x, y = float(element.get("x", "0")), float(element.get("y", "0"))
            w, h = float(element.get("width", "0")), float(element.get("height", "0"))
            picture.shapes.append(Shape("rect", (x, y, x + w, y + h), group))
        elif element.tag == f"{NS}ellipse" and group.startswith("node"):
            cx, cy = float(element.get("cx", "0")), float(element.get("cy", "0"))
            rx, ry = float(element.get("rx", "0")), float(element.get("ry", "0"))
            picture.shapes.append(Shape("ellipse", (cx - rx, cy - ry, cx + rx, cy + ry), group))
        for child in element:
            visit(child, group)

    visit(root, "")
    return picture


def overlap(a: Rect, b: Rect, tolerance: float = 0.3) -> bool:
    return (
        a[0] < b[2] - tolerance
        and b[0] < a[2] - tolerance
        and a[1] < b[3] - tolerance
        and b[1] < a[3] - tolerance
    )


def inside(inner: Rect, outer: Rect, tolerance: float = 0.3) -> bool:
    return (
        inner[0] >= outer[0] - tolerance
        and inner[1] >= outer[1] - tolerance
        and inner[2] <= outer[2] + tolerance
        and inner[3] <= outer[3] + tolerance
    )


def inside_shape(inner: Rect, shape: Shape) -> bool:
    if shape.kind == "rect":
        return inside(inner, shape.box)
    cx, cy = (shape.box[0] + shape.box[2]) / 2, (shape.box[1] + shape.box[3]) / 2
    rx, ry = (shape.box[2] - shape.box[0]) / 2, (shape.box[3] - shape.box[1]) / 2
    corners = [
        (inner[0], inner[1]),
        (inner[2], inner[1]),
        (inner[0], inner[3]),
        (inner[2], inner[3]),
    ]
    return all(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0 for x, y in corners)


def distance_to_box(point: tuple[float, float], box: Rect) -> float:
    dx = max(box[0] - point[0], 0.0, point[0] - box[2])
    dy = max(box[1] - point[1], 0.0, point[1] - box[3])
    return math.hypot(dx, dy)


def problems(picture: Picture) -> list[str]:
    """Every way in which a number or label of the picture is hidden or ambiguous."""
    found = []
    texts = [t for t in picture.texts if t.content]
    for n, a in enumerate(texts):
        for b in texts[n + 1 :]:
            if overlap(a.box, b.box):
                found.append(f"text {a.content!r} ({a.group}) overlaps {b.content!r} ({b.group})")
        for shape in picture.shapes:
            if shape.group == a.group:
                continue
            if overlap(a.box, shape.box, tolerance=0.0) and not _clear_of_ellipse(a.box, shape):
                found.append(f"text {a.content!r} ({a.group}) overlaps the shape of {shape.group}")
        for edge in picture.edges:
            if edge.arrow is not None and overlap(a.box, edge.arrow):
                found.append(f"text {a.content!r} ({a.group}) overlaps the arrow of {edge.group}")
            if any(distance_to_box(p, a.box) < 0.5 for p in edge.points):
                found.append(f"text {a.content!r} ({a.group}) is crossed by {edge.group}")
        if a.group.startswith("node"):
            own = [s for s in picture.shapes if s.group == a.group]
            if not any(inside_shape(a.box, s) for s in own):
                found.append(f"text {a.content!r} of {a.group} sticks out of its shape")
        if a.group.startswith("edge") and a.css_class in ("mg-value", "mg-grad"):
            own_distance = min(
                distance_to_box(p, a.box)
                for e in picture.edges
                if e.group == a.group
                for p in e.points
            )
            for edge in picture.edges:
                if edge.group != a.group:
                    other = min(distance_to_box(p, a.box) for p in edge.points)
                    if other <= own_distance:
                        found.append(
                            f"label {a.content!r} of {a.group} is as near {edge.group} "
                            f"({other:.1f}) as its own edge ({own_distance:.1f})"
                        )
        if not inside(a.box, (0, 0, picture.width, picture.height)):
            found.append(f"text {a.content!r} ({a.group}) leaves the picture")
    return found


def _clear_of_ellipse(box: Rect, shape: Shape) -> bool:
    """True when a box overlapping an ellipse's bounding box misses the ellipse itself."""
    if shape.kind != "ellipse":
        return False
    cx, cy = (shape.box[0] + shape.box[2]) / 2, (shape.box[1] + shape.box[3]) / 2
    rx, ry = (shape.box[2] - shape.box[0]) / 2, (shape.box[3] - shape.box[1]) / 2
    nearest_x = min(max(cx, box[0]), box[2])
    nearest_y = min(max(cy, box[1]), box[3])
    return ((nearest_x - cx) / rx) ** 2 + ((nearest_y - cy) / ry) ** 2 > 1.0


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGB(A) pixels of an 8-bit, non-interlaced PNG (what resvg writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and colour in (2, 6)
    channels = 4 if colour == 6 else 3
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[i] = (row[i] + best) & 0xFF
        rows.append(row)
        previous = row
    pixels = [tuple(row[i : i + channels]) for row in rows for i in range(0, stride, channels)]
    return width, height, pixels


# ---- graphs ------------------------------------------------------------------------------


def sigmoid() -> Value:
    w, x = Value(0.0, label="w"), Value(1.0, label="x")
    h = 1 / (1 + (-(w * x)).exp())
    h.label = "h"
    h.backward()
    return h


def reuse() -> Value:
    x = Value(3.0, label="x")
    y = x * x + x
    y.backward()
    return y


def neuron() -> Value:
    """micrograd's lecture neuron: tanh(x1·w1 + x2·w2 + b)."""
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1, x2w2 = x1 * w1, x2 * w2
    x1w1.label, x2w2.label = "x1*w1", "x2*w2"
    n = x1w1 + x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o


def shopping(chinese: bool = False) -> Value:
    """Apples and oranges with consumption tax, as in the worked example."""
    names = (
        ("苹果", "个数", "橘子", "个数", "消费税", "支付金额")
        if chinese
        else ("apple", "count", "orange", "count", "tax", "total")
    )
    apple, apples = Value(100.0, label=names[0]), Value(2.0, label=names[1])
    orange, oranges = Value(150.0, label=names[2]), Value(3.0, label=names[3])
    tax = Value(1.1, label=names[4])
    total = (apple * apples + orange * oranges) * tax
    total.label = names[5]
    total.backward()
    return total


def negatives() -> Value:
    a, b = Value(-0.2313, label="a"), Value(-12.5, label="b")
    c = (a * b - a / b) ** 2 - (-a).exp()
    c.backward()
    return c


def random_graph(seed: int, size: int = 26) -> Value:
    import random

    rng = random.Random(seed)
    nodes = [Value(rng.uniform(-3, 3), label=f"x{i}") for i in range(4)]
    while len(nodes) < size:
        kind = rng.random()
        a = rng.choice(nodes)
        if kind < 0.5:
            b = rng.choice(nodes)
            out = rng.choice([a + b, a * b, a - b])
        elif kind < 0.7:
            out = a * rng.choice([-1.5, 2.0, 0.5]) + rng.choice([0, 1])
        else:
            out = rng.choice([a.tanh(), a.sigmoid(), (a * 0.1).exp(), a.relu()])
        nodes.append(out)
    root = nodes[-1]
    for node in nodes[4:-1]:
        if rng.random() < 0.3:
            root = root + node
    root.backward()
    return root


def choose_layout_path(path: str, monkeypatch: Any, folder: Path) -> None:
    """ "system" leaves PATH alone (dot if installed); "in-process" hides dot from PATH."""
    if path == "in-process":
        monkeypatch.setenv("PATH", str(folder))  # an empty folder: no dot
        assert shutil.which("dot") is None


def every_operation() -> Value:
    """Every kind of node: numbers folded in, n-ary sum and dot, max and min, unary functions."""
    import microgradient as mg

    x, y = Value(1.5, label="x"), Value(-0.5, label="y")
    terms = [
        x**2.5 + 2**x - 3 / x + (2 - x),
        mg.sum([x, y * 2, 3.0]),
        mg.dot([x, y], [y, x]),
        mg.max(x, y) + mg.min(x, 0.0),
        x.tan() + y.atan() + x.softplus() + y.abs() + x.sqrt() + x.log() + y.sin() + y.cos(),
    ]
    root = mg.sum(terms).sigmoid()
    root.backward()
    return root
