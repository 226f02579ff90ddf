"""The graph renderer: what the DOT says, what the SVG shows, and that a PNG has its text.

Outputs are parsed (DOT lines, SVG with ``xml.etree``, PNG pixels with ``zlib``)
rather than compared as whole strings. Every test that renders runs on both
paths: "system" uses Graphviz's ``dot`` when the machine has it (and is the
in-process path when it does not), "in-process" hides ``dot`` from ``PATH``.
"""

from __future__ import annotations

import re
import shutil
import struct
import time
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import resvg_py

import microgradient as mg
from microgradient import GraphTooLargeError, RenderError, Value, render
from microgradient.render import FORWARD_COLOUR, GRADIENT_COLOUR, MINUS, TIMES

SVG = "{http://www.w3.org/2000/svg}"

# ---- graphs ----------------------------------------------------------------------------


def sigmoid(negate_first: bool = False) -> tuple[Value, Value, Value]:
    """1/(1+exp(-w*x)) at w = 0, x = 1, after backward; the source's chain h1 ... h5."""
    w, x = Value(0.0, label="w"), Value(1.0, label="x")
    h = 1 / (1 + (-w * x).exp()) if negate_first else 1 / (1 + (-(w * x)).exp())
    h.backward()
    return h, w, x


def square() -> tuple[Value, Value]:
    x = Value(3.0, label="x")
    y = x * x
    y.backward()
    return y, x


# ---- parsing ---------------------------------------------------------------------------

EDGE = re.compile(r"\s*(\w+) -> (\w+)(?: \[(.*)\])?$")
NODE = re.compile(r"\s*(\w+) \[(.*)\]$")
ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')


def attributes(text: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in ATTRIBUTE.findall(text or "")}


def number(text: str) -> float:
    return float(text.replace(MINUS, "-"))


def dot_edges(source: str) -> list[tuple[str, str, dict[str, str]]]:
    """(tail, head, attributes) of every edge, in order."""
    found = []
    for line in source.splitlines():
        match = EDGE.match(line)
        if match:
            found.append((match[1], match[2], attributes(match[3])))
    return found


def dot_nodes(source: str) -> dict[str, dict[str, str]]:
    nodes = {}
    for line in source.splitlines():
        match = NODE.match(line)
        if match and match[1] not in ("graph", "node", "edge") and "->" not in line:
            nodes[match[1]] = attributes(match[2])
    return nodes


def node_named(source: str, label: str) -> str:
    """The DOT name of the leaf whose label starts with ``label =``."""
    [name] = [n for n, a in dot_nodes(source).items() if a["label"].startswith(f"{label} =")]
    return name


def gradients_by_edge(source: str) -> list[tuple[str, str, float]]:
    """(tail, head, gradient) of each edge between values (the output stub left out)."""
    return [
        (tail, head, number(attrs["label"]))
        for tail, head, attrs in dot_edges(source)
        if head != "output" and attrs.get("fontcolor") == GRADIENT_COLOUR
    ]


def svg_edges(svg: str) -> list[tuple[str, list[str], list[str]]]:
    """(title, value texts, gradient texts) of every edge group of an SVG, told by colour."""
    root = ET.fromstring(svg)
    edges = []
    for group in root.iter(f"{SVG}g"):
        if group.get("class") != "edge":
            continue
        title = group.findtext(f"{SVG}title", "").replace("&#45;", "-")
        texts = [(t.get("fill"), "".join(t.itertext())) for t in group.iter(f"{SVG}text")]
        values = [text for fill, text in texts if fill == FORWARD_COLOUR]
        grads = [text for fill, text in texts if fill == GRADIENT_COLOUR]
        edges.append((title, values, grads))
    return edges


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGB(A) pixels of an 8-bit, non-interlaced PNG (what both paths write)."""
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


def colour_counts(png: bytes) -> Counter[str]:
    """How many pixels are clearly red (gradient text) and clearly green (value text)."""
    _, _, pixels = png_pixels(png)
    counts: Counter[str] = Counter()
    for r, g, b, *alpha in pixels:
        if alpha and alpha[0] < 128:
            continue
        if r > 150 and g < 110 and b < 110:
            counts["red"] += 1
        elif g > 90 and r < 110 and b < 110 and g - r > 40:
            counts["green"] += 1
    return counts


# ---- the two paths ---------------------------------------------------------------------


@pytest.fixture(params=["system", "in-process"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Which path renders: "system" uses dot when installed (else is in-process too)."""
    if request.param == "in-process":
        monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no dot
        assert shutil.which("dot") is None
    return "dot" if shutil.which("dot") else "in-process"


@pytest.fixture
def no_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("dot") is None
    yield


# ---- numbers ---------------------------------------------------------------------------


def test_numbers_are_formatted_for_people() -> None:
    assert mg.format_number(0.1 + 0.2) == "0.3"
    assert mg.format_number(-0.0) == "0"
    assert mg.format_number(-1e-20, ".3f") == "0.000"  # rounds to zero: no sign
    assert mg.format_number(-0.25) == f"{MINUS}0.25"
    assert mg.format_number(1 / 3) == "0.3333"
    assert mg.format_number(1 / 3, ".2f") == "0.33"
    assert mg.format_number(1e-7) == f"1e{MINUS}07"
    assert mg.format_number(float("inf")) == "∞"
    assert mg.format_number(float("nan")) == "nan"


# ---- what the DOT says -----------------------------------------------------------------


def test_sigmoid_reads_like_the_source_chain() -> None:
    h, _, _ = sigmoid()
    source = mg.to_dot(h)
    nodes = dot_nodes(source)
    ops = [attrs["label"] for attrs in nodes.values() if attrs.get("shape") == "circle"]
    assert ops == [TIMES, f"{TIMES}({MINUS}1)", "exp", "+1", "1/·"]  # h1 ... h5, in order


def test_sigmoid_edges_carry_the_gradients_of_the_source() -> None:
    h, _, _ = sigmoid()
    source = mg.to_dot(h)
    grads = gradients_by_edge(source)
    assert sorted(g for _, _, g in grads) == [-0.25, -0.25, -0.25, 0.0, 0.25, 0.25]
    w, x = node_named(source, "w"), node_named(source, "x")
    assert [g for tail, _, g in grads if tail == w] == [0.25]
    assert [g for tail, _, g in grads if tail == x] == [0.0]
    values = {tail: number(attrs["taillabel"]) for tail, _, attrs in dot_edges(source)}
    assert values[w] == 0.0 and values[x] == 1.0
    assert "-0" not in source and f"{MINUS}0 " not in source
    # the output edge: the root's value and its seed gradient
    [(_, _, out)] = [e for e in dot_edges(source) if e[1] == "output"]
    assert number(out["taillabel"]) == 0.5 and number(out["label"]) == 1.0


def test_negating_w_first_gives_the_same_gradient_to_w_through_another_chain() -> None:
    h, w, x = sigmoid(negate_first=True)
    source = mg.to_dot(h)
    ops = [a["label"] for a in dot_nodes(source).values() if a.get("shape") == "circle"]
    assert ops == [f"{TIMES}({MINUS}1)", TIMES, "exp", "+1", "1/·"]  # the -1 applied to w first
    grads = gradients_by_edge(source)
    assert [g for tail, _, g in grads if tail == node_named(source, "w")] == [0.25]
    assert [g for tail, _, g in grads if tail == node_named(source, "x")] == [0.0]
    assert sorted(g for _, _, g in grads) == [-0.25, -0.25, -0.25, -0.25, 0.0, 0.25]
    assert (w.grad, x.grad) == (0.25, 0.0)


def test_a_repeated_operand_gets_one_edge_per_use() -> None:
    y, _ = square()
    source = mg.to_dot(y)
    from_x = [e for e in dot_edges(source) if e[0] == node_named(source, "x")]
    assert len(from_x) == 2
    assert [number(attrs["label"]) for _, _, attrs in from_x] == [3.0, 3.0]
    assert len({attrs["id"] for _, _, attrs in from_x}) == 2
    assert "grad 6" in dot_nodes(source)[node_named(source, "x")]["label"]


def test_no_gradient_before_backward_nor_in_forward_mode() -> None:
    w, x = Value(0.0, label="w"), Value(1.0, label="x")
    h = 1 / (1 + (-(w * x)).exp())
    before = mg.to_dot(h)
    h.backward()
    forward_only = mg.to_dot(h, show="forward")
    for source in (before, forward_only):
        assert GRADIENT_COLOUR not in source and "taillabel" not in source
        assert not any("grad" in attrs["label"] for attrs in dot_nodes(source).values())
        assert not any("gradient" in attrs["tooltip"] for _, _, attrs in dot_edges(source))
        labels = [number(a["label"]) for _, head, a in dot_edges(source) if head != "output"]
        assert sorted(labels) == [0.0, 0.0, 0.0, 1.0, 1.0, 2.0]


def test_backward_mode_shows_gradients_only() -> None:
    h, _, _ = sigmoid()
    source = mg.to_dot(h, show="backward")
    assert "taillabel" not in source
    assert len(gradients_by_edge(source)) == 6
    assert dot_nodes(source)[node_named_backward(source, "w")]["label"] == r"w\ngrad 0.25"


def node_named_backward(source: str, label: str) -> str:
    [name] = [n for n, a in dot_nodes(source).items() if a["label"].startswith(f"{label}\\n")]
    return name


def test_the_same_graph_gives_the_same_dot() -> None:
    first, second = sigmoid()[0], sigmoid()[0]
    assert mg.to_dot(first) == mg.to_dot(first) == mg.to_dot(second)
    assert mg.draw(first).source == mg.to_dot(first)


@pytest.mark.parametrize(
    ("build", "label"),
    [
        (lambda x: x - 2, f"{MINUS}2"),
        (lambda x: x + -2, f"{MINUS}2"),
        (lambda x: x - -2, "+2"),
        (lambda x: 2 - x, f"2{MINUS}·"),
        (lambda x: x * -1.5, f"{TIMES}({MINUS}1.5)"),
        (lambda x: x / 4, "÷4"),
        (lambda x: 3 / x, "3/·"),
        (lambda x: x**2, "^2"),
        (lambda x: 2**x, "2^·"),
        (lambda x: mg.sum([x, x, 3]), "Σ+3"),
        (lambda x: x.sigmoid(), "\N{GREEK SMALL LETTER SIGMA}"),
        (lambda x: x.sqrt(), "√"),
        (lambda x: abs(x), "|·|"),
        (lambda x: x.relu(), "relu"),
        (lambda x: mg.dot([x], [x]), "dot"),
    ],
)
def test_plain_numbers_fold_into_the_operation_label(build: object, label: str) -> None:
    root = build(Value(1.5, label="x"))  # type: ignore[operator]
    assert dot_nodes(mg.to_dot(root))["n1"]["label"] == label


def test_labels_are_text_not_markup() -> None:
    a = Value(1.0, label="<b>\\l")
    root = a * 2
    root.label = "<out>"
    source = mg.to_dot(root)
    assert r'label="<b>\\l = 1"' in source
    assert 'label="<out>"' in source


def test_number_format_applies_to_every_number() -> None:
    h, _, _ = sigmoid()
    source = mg.to_dot(h, number_format=".2f")
    assert "0.25" in source and "0.50" in source and "1.00" in source


@pytest.mark.parametrize(
    "options",
    [{"show": "gradients"}, {"rankdir": "XY"}, {"number_format": "d"}, {"max_nodes": 0}],
)
def test_bad_options_raise_a_clear_error(options: dict[str, object]) -> None:
    with pytest.raises(RenderError, match=next(iter(options))):
        mg.draw(Value(1.0) * 2, **options)  # type: ignore[arg-type]


# ---- size limit ------------------------------------------------------------------------


def test_a_graph_over_the_limit_raises_at_once_naming_its_size() -> None:
    x = Value(1.0)
    total = x
    for _ in range(20_000):
        total = total + x
    start = time.perf_counter()
    with pytest.raises(GraphTooLargeError, match=r"20001 nodes.*max_nodes=500.*max_nodes=20001"):
        mg.draw(total)
    with pytest.raises(GraphTooLargeError):
        next(mg.backward_steps(total))
    assert time.perf_counter() - start < 2.0
    assert mg.draw(Value(1.0) + 1, max_nodes=2).source


# ---- SVG and PNG on both paths ---------------------------------------------------------


def test_svg_edges_show_values_and_gradients_in_two_colours(backend: str) -> None:
    h, _, _ = sigmoid()
    svg = mg.to_svg(h)
    edges = svg_edges(svg)
    assert len(edges) == 7  # six between values, one out of the root
    grads = sorted(number(g) for _, _, gs in edges for g in gs)
    assert grads == [-0.25, -0.25, -0.25, 0.0, 0.25, 0.25, 1.0]
    assert sorted(number(v) for _, vs, _ in edges for v in vs) == [0, 0, 0, 0.5, 1, 1, 2]
    assert all(len(gs) == 1 for _, _, gs in edges)
    assert 'font-family="Open Sans, Helvetica, Arial, sans-serif"' in svg


def test_svg_of_x_times_x_has_two_edges_from_x(backend: str) -> None:
    y, _ = square()
    edges = svg_edges(mg.to_svg(y))
    assert [title for title, _, _ in edges].count("n0->n1") == 2


def test_forward_only_svg_has_no_gradient(backend: str) -> None:
    h, _, _ = sigmoid()
    assert all(not grads for _, _, grads in svg_edges(mg.to_svg(h, show="forward")))


def test_png_has_its_text(backend: str, tmp_path: Path) -> None:
    h, _, _ = sigmoid()
    path = mg.save_graph(h, tmp_path / "sigmoid.png")
    png = path.read_bytes()
    width, height, _ = png_pixels(png)
    assert width > 500 and height > 100
    counts = colour_counts(png)
    # only the numbers are green and red: many such pixels mean they were drawn
    assert counts["red"] > 100 and counts["green"] > 100


def test_in_process_png_draws_text_with_the_bundled_font(no_dot: None, tmp_path: Path) -> None:
    h, _, _ = sigmoid()
    png = mg.save_graph(h, tmp_path / "sigmoid.png").read_bytes()
    assert png == mg.save_graph(h, tmp_path / "again.png").read_bytes()  # deterministic
    # the same SVG rasterised with no font at all draws no text: no red or green pixels
    without_font = resvg_py.svg_to_bytes(svg_string=mg.to_svg(h), dpi=144, skip_system_fonts=True)
    assert colour_counts(without_font)["red"] == 0
    assert png_pixels(without_font)[:2] == png_pixels(png)[:2]
    assert colour_counts(png)["red"] > 100


def test_a_huge_png_is_drawn_at_a_lower_resolution(
    backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    h, _, _ = sigmoid()
    full_width, full_height, _ = png_pixels(mg.save_graph(h, tmp_path / "full.png").read_bytes())
    monkeypatch.setattr(render, "_MAX_PNG_PIXELS", 100_000)
    width, height, _ = png_pixels(mg.save_graph(h, tmp_path / "small.png").read_bytes())
    assert width * height <= 101_000 < full_width * full_height  # pixels round up
    assert abs(width / height - full_width / full_height) < 0.05


def test_pdf_needs_dot_and_says_so(backend: str, tmp_path: Path) -> None:
    h, _, _ = sigmoid()
    if backend == "dot":
        assert mg.save_graph(h, tmp_path / "graph.pdf").read_bytes()[:5] == b"%PDF-"
    else:
        with pytest.raises(RenderError, match="PDF output needs Graphviz's dot program"):
            mg.save_graph(h, tmp_path / "graph.pdf")
        assert not (tmp_path / "graph.pdf").exists()


def test_save_graph_picks_the_format_from_the_suffix(backend: str, tmp_path: Path) -> None:
    h, _, _ = sigmoid()
    assert mg.save_graph(h, tmp_path / "g.dot").read_text(encoding="utf-8") == mg.to_dot(h)
    assert mg.save_graph(h, tmp_path / "g.gv").read_text(encoding="utf-8") == mg.to_dot(h)
    svg = mg.save_graph(h, tmp_path / "g.SVG").read_text(encoding="utf-8")
    assert ET.fromstring(svg).tag == f"{SVG}svg"
    with pytest.raises(RenderError, match=r"\.svg, \.png, \.pdf, \.dot, \.gv"):
        mg.save_graph(h, tmp_path / "g.jpeg")


def test_the_drawing_shows_inline_and_renders_without_dot(no_dot: None, tmp_path: Path) -> None:
    h, _, _ = sigmoid()
    graph = mg.draw(h)
    bundle = graph._repr_mimebundle_()
    assert ET.fromstring(bundle["image/svg+xml"]).tag == f"{SVG}svg"
    assert graph._repr_mimebundle_(include=["image/png"])["image/png"][:4] == b"\x89PNG"
    assert graph.pipe(format="json")[:1] == b"{"
    rendered = Path(graph.render(tmp_path / "sigmoid"))
    assert rendered == tmp_path / "sigmoid.svg" and (tmp_path / "sigmoid").exists()
    png = Path(graph.render(outfile=tmp_path / "out.png", cleanup=True))
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(RenderError, match="dot"):
        graph.pipe(format="pdf")
    with pytest.raises(RenderError, match="dot"):
        graph.render(tmp_path / "viewed", view=True)


def test_the_drawing_is_a_graphviz_digraph(backend: str) -> None:
    import graphviz

    graph = mg.draw(square()[0])
    assert isinstance(graph, graphviz.Digraph)
    svg = graph.pipe(format="svg", encoding="utf-8")
    assert [title for title, _, _ in svg_edges(svg)].count("n0->n1") == 2
    assert 'font-family="Open Sans, Helvetica, Arial, sans-serif"' in svg


# ---- backward step by step -------------------------------------------------------------


def test_backward_steps_show_gradients_only_where_computed() -> None:
    w, x = Value(0.0, label="w"), Value(1.0, label="x")
    h = 1 / (1 + (-(w * x)).exp())
    frames = list(mg.backward_steps(h))
    assert [f.step for f in frames] == [0, 1, 2, 3, 4, 5] and frames[0].total == 5
    assert frames[0].node is None and [f.node.op for f in frames[1:]] == [  # type: ignore[union-attr]
        "r/",
        "+",
        "exp",
        "neg",
        "*",
    ]
    assert (w.grad, x.grad, h.grad) == (0.0, 0.0, 0.0)  # the user's values are untouched
    counts = [len(gradients_by_edge(mg.to_dot(frame))) for frame in frames]
    assert counts == [0, 1, 2, 3, 4, 6]
    assert frames[4].gradient(w) is None and frames[5].gradient(w) == 0.25
    assert frames[0].gradient(h) == 1.0
    h.backward()  # the last frame has every gradient of a real backward pass
    last, real = mg.to_dot(frames[-1]), mg.to_dot(h)
    assert gradients_by_edge(last) == gradients_by_edge(real)
    assert [a["label"] for a in dot_nodes(last).values()] == [
        a["label"] for a in dot_nodes(real).values()
    ]


def test_backward_step_frames_mark_processed_nodes() -> None:
    y, x = square()
    x.grad = 0.0
    frames = list(mg.backward_steps(y.exp()))
    source = mg.to_dot(frames[1])
    nodes = dot_nodes(source)
    assert nodes["n2"]["fillcolor"] == "#fdecea" and nodes["n2"]["color"] == GRADIENT_COLOUR
    assert nodes["n1"]["fillcolor"] == "white"
    assert "step 1 of 2, through exp" in source
    assert frames[2].gradient(x) == pytest.approx(2 * 3 * y.exp().data)
    svg = frames[1]._repr_mimebundle_()["image/svg+xml"]  # a notebook shows a frame inline
    assert isinstance(svg, str) and ET.fromstring(svg).tag == f"{SVG}svg"
    assert mg.draw(frames[1]).source == frames[1].draw().source
