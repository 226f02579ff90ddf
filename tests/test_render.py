"""The drawing: its contract for scripts, its numbers, both layout paths, PNG and the API.

Outputs are parsed (SVG with ``xml.etree``, PNG pixels with ``zlib``) rather than
compared as whole strings. Tests that lay out run on both paths: "system" uses
Graphviz's ``dot`` when the machine has it, "in-process" hides ``dot`` from ``PATH``.
"""

from __future__ import annotations

import io
import re
import shutil
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from drawing_helpers import NS, choose_layout_path, number, parse, png_pixels, reuse, sigmoid

import microgradient as mg
from microgradient import GraphTooLargeError, RenderError, Value, svg
from microgradient.render import MINUS, TIMES


@pytest.fixture(params=["system", "in-process"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Which path lays out: "system" uses dot when installed (else is in-process too)."""
    choose_layout_path(request.param, monkeypatch, tmp_path)
    return "dot" if shutil.which("dot") else "in-process"


def edge_numbers(document: str) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(from, to, operand) -> (value text, gradient text) of every edge."""
    found = {}
    for group in ET.fromstring(document).iter(f"{NS}g"):
        if group.get("class") == "mg-edge":
            key = (
                group.get("data-from", ""),
                group.get("data-to", ""),
                group.get("data-operand", ""),
            )
            texts = {t.get("class"): "".join(t.itertext()) for t in group.iter(f"{NS}text")}
            found[key] = (texts.get("mg-value", ""), texts.get("mg-grad", ""))
    return found


# ---- numbers ---------------------------------------------------------------------------


def test_numbers_are_formatted_for_people() -> None:
    assert mg.format_number(0.1 + 0.2) == "0.3"
    assert mg.format_number(-0.0) == "0"
    assert mg.format_number(-1e-20, ".3f") == "0.000"  # rounds to zero: no sign
    assert mg.format_number(-0.25) == f"{MINUS}0.25"
    assert mg.format_number(1e-7) == f"1e{MINUS}07"
    assert mg.format_number(float("inf")) == "∞"
    assert mg.format_number(float("nan")) == "nan"


# ---- contract 5: what scripts can rely on ------------------------------------------------


def test_every_node_and_edge_is_marked_for_scripts(backend: str) -> None:
    h = sigmoid()
    order = mg.topological_order(h)
    document = mg.to_svg(h)
    nodes = [
        g.get("data-node")
        for g in ET.fromstring(document).iter(f"{NS}g")
        if g.get("class") == "mg-node"
    ]
    assert sorted(map(int, nodes)) == list(range(len(order)))
    edges = edge_numbers(document)
    slot = {id(v): i for i, v in enumerate(order)}
    expected = {
        (str(slot[id(p)]), str(i), str(k))
        for i, v in enumerate(order)
        for k, p in enumerate(v.parents)
    }
    assert set(edges) == expected | {(str(len(order) - 1), "output", "0")}
    # the sigmoid's chain: every value and every gradient of the source, on its edge
    assert sorted(number(v) for v, _ in edges.values()) == [0, 0, 0, 0.5, 1, 1, 2]
    assert sorted(number(g) for _, g in edges.values()) == [-0.25, -0.25, -0.25, 0, 0.25, 0.25, 1]


def test_a_repeated_operand_gets_one_edge_per_use_each_with_its_gradient() -> None:
    edges = edge_numbers(mg.to_svg(reuse()))  # x*x + x at x = 3
    assert edges["0", "1", "0"] == ("3", "3") and edges["0", "1", "1"] == ("3", "3")
    assert edges["0", "2", "1"] == ("3", "1")
    assert edges["2", "output", "0"] == ("12", "1")


def test_frames_share_one_layout_whatever_the_numbers(backend: str) -> None:
    h = sigmoid()
    order = mg.topological_order(h)
    empty = mg.render.frame_svg(h)
    huge = mg.render.frame_svg(
        h,
        values={i: -123456.789 * (i + 1) for i in range(len(order))},
        grads={i: 1e-300 for i in range(len(order))},
        edge_grads={
            (i, k): -9.87654e21 for i, v in enumerate(order) for k in range(len(v.parents))
        },
    )
    a, b = parse(empty), parse(huge)
    assert (a.width, a.height) == (b.width, b.height)
    assert [s.box for s in a.shapes] == [s.box for s in b.shapes]
    assert [e.points for e in a.edges] == [e.points for e in b.edges]
    # every label is there, blank where no number was given
    assert [(t.css_class, t.group) for t in a.texts] == [(t.css_class, t.group) for t in b.texts]
    assert all(t.content for t in b.texts)
    assert not [t for t in a.texts if t.css_class in ("mg-value", "mg-grad") and t.content]
    # a number too wide for its place is squeezed into it, never moved
    wide = parse(mg.render.frame_svg(h, values={0: 1e12}, number_format=".2f"))
    narrow = parse(mg.render.frame_svg(h, values={0: 1.0}, number_format=".2f"))
    assert [s.box for s in wide.shapes] == [s.box for s in narrow.shapes]
    [squeezed] = [
        t for t in wide.texts if t.content == "1000000000000.00" and t.group.startswith("node")
    ]
    assert any(
        s.group == squeezed.group and s.box[0] <= squeezed.box[0] and squeezed.box[2] <= s.box[2]
        for s in wide.shapes
    )


def test_no_gradient_before_backward_nor_in_forward_mode() -> None:
    x = Value(3.0, label="x")
    y = x * x
    assert all(g == "" for _, g in edge_numbers(mg.to_svg(y)).values())
    y.backward()
    assert all(g == "" for _, g in edge_numbers(mg.to_svg(y, show="forward")).values())
    assert all(v == "" for v, _ in edge_numbers(mg.to_svg(y, show="backward")).values())
    assert "mg-grad" not in mg.to_svg(y, show="forward")


def test_the_graph_of_a_gradient_shows_its_own_numbers_and_no_stale_gradients() -> None:
    x = Value(3.0, label="x")
    y = x * x * x
    y.backward(create_graph=True)
    dydx = x.grad  # 3x², a graph of its own
    assert isinstance(dydx, Value)
    edges = edge_numbers(mg.to_svg(dydx))
    root = len(mg.topological_order(dydx)) - 1
    assert number(edges[str(root), "output", "0"][0]) == 27
    # x holds a gradient from the first pass: none is drawn before dydx's own pass
    assert all(g == "" for _, g in edges.values())
    dydx.backward()
    edges = edge_numbers(mg.to_svg(dydx))
    assert edges[str(root), "output", "0"] == ("27", "1")


def test_operation_symbols_fold_plain_numbers() -> None:
    x = Value(2.0, label="x")
    document = mg.to_svg(-(x * -1) + 1)
    symbols = [t.content for t in parse(document).texts if t.css_class == "mg-op"]
    assert symbols == [f"{TIMES}({MINUS}1)", f"{TIMES}({MINUS}1)", "+1"]


def test_the_output_arrow_carries_the_roots_label_or_output() -> None:
    h = sigmoid()
    assert [t.content for t in parse(mg.to_svg(h)).texts if t.css_class == "mg-output"] == ["h"]
    y = Value(2.0) * 3
    for style in ("textbook", "record"):
        outputs = [
            t.content for t in parse(mg.to_svg(y, style=style)).texts if t.css_class == "mg-output"
        ]
        assert outputs == ["output"]


def test_several_outputs_are_drawn_together_and_a_number_is_refused() -> None:
    x = Value(2.0, label="x")
    a, b = x * 3, x.exp()
    document = mg.to_svg([a, b])
    assert sum(1 for key in edge_numbers(document) if key[1] == "output") == 2
    with pytest.raises(RenderError, match=r"float .*Value\(2.5\)"):
        mg.draw(2.5)  # type: ignore[arg-type]
    with pytest.raises(RenderError, match="list of Values"):
        mg.draw("x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"rankdir": "XY"},
        {"show": "all"},
        {"number_format": "d%"},
        {"style": "fancy"},
        {"collapse": "model"},
        {"dpi": 0},
        {"max_nodes": 0},
        {"colour": "red"},
    ],
)
def test_bad_options_raise_a_clear_error(options: dict[str, object]) -> None:
    with pytest.raises(RenderError, match=next(iter(options))):
        mg.draw(Value(1.0) * 2, **options)  # type: ignore[arg-type]


def test_a_graph_over_the_limit_says_how_to_collapse() -> None:
    x = Value(1.0)
    total = x
    for _ in range(20_000):
        total = total + x
    start = time.perf_counter()
    with pytest.raises(
        GraphTooLargeError, match=r"20001 nodes.*collapse='neuron'.*max_nodes=20001"
    ):
        mg.draw(total)
    with pytest.raises(GraphTooLargeError):
        next(mg.backward_steps(total))
    assert time.perf_counter() - start < 2.0


# ---- colours ------------------------------------------------------------------------------


def test_text_colours_have_enough_contrast_and_differ_in_lightness() -> None:
    for colour in (svg.VALUE_COLOUR, svg.GRADIENT_COLOUR, svg.INK, svg.MUTED):
        assert svg.contrast_ratio(colour) >= 4.5, colour
    # told apart in greyscale print too, not only by hue
    value, grad = (svg.relative_luminance(c) for c in (svg.VALUE_COLOUR, svg.GRADIENT_COLOUR))
    assert grad / value > 2
    assert svg.contrast_ratio("#000000") == pytest.approx(21.0)


def test_values_and_gradients_differ_in_typography_as_well_as_colour() -> None:
    picture = parse(mg.to_svg(sigmoid()))
    values = [t for t in picture.texts if t.css_class == "mg-value"]
    grads = [t for t in picture.texts if t.css_class == "mg-grad"]
    assert values and grads
    assert not any(t.italic for t in values) and all(t.italic for t in grads)
    assert {t.fill for t in values} == {svg.VALUE_COLOUR}
    assert {t.fill for t in grads} == {svg.GRADIENT_COLOUR}


# ---- files, PNG, notebooks ------------------------------------------------------------------


def colour_counts(png: bytes) -> Counter[str]:
    """Pixels near the value colour and near the gradient colour (text drawn in them)."""
    targets = {
        name: tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        for name, colour in (("value", svg.VALUE_COLOUR), ("grad", svg.GRADIENT_COLOUR))
    }
    _, _, pixels = png_pixels(png)
    counts: Counter[str] = Counter()
    for pixel in pixels:
        for name, target in targets.items():
            if sum(abs(a - b) for a, b in zip(pixel[:3], target)) < 60:
                counts[name] += 1
    return counts


def test_png_has_its_numbers_and_honours_dpi(backend: str, tmp_path: Path) -> None:
    h = sigmoid()
    png = mg.save_graph(h, tmp_path / "sigmoid.png").read_bytes()
    width, height, _ = png_pixels(png)
    counts = colour_counts(png)
    assert counts["value"] > 100 and counts["grad"] > 100
    drawing = mg.draw(h, dpi=72)
    small_width, small_height, _ = png_pixels(drawing.png())
    assert abs(small_width * 2 - width) <= 2 and abs(small_height * 2 - height) <= 2
    assert small_width == pytest.approx(drawing.width, abs=1)


def test_legend_can_be_left_out() -> None:
    h = sigmoid()
    with_legend, without = parse(mg.to_svg(h)), parse(mg.to_svg(h, legend=False))
    assert any(t.group == "legend" for t in with_legend.texts)
    assert not any(t.group == "legend" for t in without.texts)
    assert without.height < with_legend.height


def test_save_graph_picks_the_format_from_the_suffix(tmp_path: Path) -> None:
    h = sigmoid()
    assert mg.save_graph(h, tmp_path / "g.dot").read_text(encoding="utf-8") == mg.to_dot(h)
    assert mg.to_dot(h).startswith("digraph microgradient {")
    document = mg.save_graph(h, tmp_path / "g.SVG").read_text(encoding="utf-8")
    assert ET.fromstring(document).tag == f"{NS}svg"
    assert mg.save_graph(h, tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(RenderError, match=r"\.svg, \.png, \.pdf, \.dot, \.gv"):
        mg.save_graph(h, tmp_path / "g.jpeg")


def test_pdf_is_one_page_the_size_of_the_drawing_holding_its_pixels(tmp_path: Path) -> None:
    """A PDF for printing: its page is the drawing's size in points, its image the PNG's pixels."""
    h = sigmoid()
    drawing = mg.draw(h, dpi=200)
    document = mg.save_graph(h, tmp_path / "g.pdf", dpi=200).read_bytes()
    assert document.startswith(b"%PDF-")
    assert document.count(b"/Type /Page\n") + document.count(b"/Type /Page ") <= 1
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", document)
    assert box is not None
    assert float(box[1]) == pytest.approx(drawing.width, abs=1)
    assert float(box[2]) == pytest.approx(drawing.height, abs=1)
    pixel_width, pixel_height, _ = png_pixels(drawing.png())
    assert re.search(rb"/Width %d\b" % pixel_width, document)
    assert re.search(rb"/Height %d\b" % pixel_height, document)


def test_the_drawing_shows_inline_as_svg_and_png() -> None:
    drawing = mg.draw(sigmoid())
    bundle = drawing._repr_mimebundle_()
    assert ET.fromstring(bundle["image/svg+xml"]).tag == f"{NS}svg"
    assert isinstance(bundle["image/png"], bytes) and bundle["image/png"][:4] == b"\x89PNG"
    assert set(drawing._repr_mimebundle_(include=["image/png"])) == {"image/png"}
    assert repr(drawing) == repr(mg.draw(reuse()))  # stable text in saved notebooks


# ---- operations of every kind ---------------------------------------------------------------


def test_a_custom_operation_is_drawn_with_its_symbol_and_stepped_through() -> None:
    import math

    @mg.operation(symbol="ς")
    def smooth_relu(x: float) -> float:
        return math.log1p(math.exp(x))

    @smooth_relu.derivatives
    def _(x: object, out: object) -> tuple[object]:
        return (mg.sigmoid(x),)  # type: ignore[arg-type]

    x = Value(0.0, label="x")
    y = smooth_relu(x * 2)
    y.backward()
    picture = parse(mg.to_svg(y))
    assert "ς" in [t.content for t in picture.texts if t.css_class == "mg-op"]
    assert edge_numbers(mg.to_svg(y))["1", "2", "0"] == ("0", "0.5")
    caption = list(mg.backward_steps(y))[1].caption
    assert "∂ς(a)/∂a = 0.5 → 0.5" in caption


def test_a_micrograd_style_node_is_drawn_and_stepped_with_its_measured_slope() -> None:
    x = Value(2.0, label="x")
    cube = Value(x.data**3, _children=(x,), _op="cube")  # type: ignore[call-arg]

    def step() -> None:
        x.grad += 3 * x.data**2 * cube.grad

    cube._backward = step  # type: ignore[method-assign]
    cube.backward()
    document = mg.to_svg(cube)
    assert "cube" in [t.content for t in parse(document).texts if t.css_class == "mg-op"]
    assert edge_numbers(document)["0", "1", "0"] == ("2", "12")
    caption = list(mg.backward_steps(cube))[1].caption
    assert "∂cube(a)/∂a = 12 → 12" in caption
    assert x.grad == 12  # measuring the slope left the gradients as they were


def test_max_with_a_number_folds_it_into_the_symbol() -> None:
    x = Value(-1.0, label="x")
    symbols = [t.content for t in parse(mg.to_svg(mg.max(x, 0.0))).texts if t.css_class == "mg-op"]
    assert symbols == ["max(·, 0)"]


def test_labels_in_any_script_are_drawn_in_png_with_the_packaged_fonts() -> None:
    """Each label's glyphs are in the PNG (resvg is given no system font at all)."""
    from drawing_helpers import shopping
    from PIL import Image

    total = shopping(chinese=True)
    document = mg.to_svg(total)
    picture = parse(document)
    image = Image.open(io.BytesIO(mg.draw(total).png())).convert("L")
    scale = image.size[0] / picture.width

    def crop(content: str) -> bytes:
        box = next(t.box for t in picture.texts if t.content == content)
        left, top, right, bottom = (round(v * scale) for v in box)
        return image.crop((left, top, right, bottom)).resize((48, 24)).tobytes()

    crops = {label: crop(label) for label in ("苹果", "个数", "橘子", "消费税", "支付金额")}
    for label, pixels in crops.items():
        assert sum(1 for p in pixels if p < 128) > 20, label  # ink where the label is
    # different characters, different pictures: no blank boxes standing in for missing glyphs
    assert len(set(crops.values())) == len(crops)
    for label in ("θ₁", "x²", "\N{SCRIPT CAPITAL L}", "∇f", "한국어", "日本語"):
        picture = parse(mg.to_svg(Value(1.0, label=label) * 2))
        box = next(t.box for t in picture.texts if t.content == label)
        shape = next(s.box for s in picture.shapes if s.kind == "rect")
        assert shape[0] < box[0] and box[2] < shape[2]  # the box is sized for the label
