"""Backward steps that animate: one layout for every frame, captions with the chain rule."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from drawing_helpers import neuron, parse, random_graph, reuse, sigmoid
from PIL import Image

import microgradient as mg
from microgradient import RenderError, Value
from microgradient.render import MINUS, TIMES


def same_layout(documents: list[str]) -> None:
    pictures = [parse(d) for d in documents]
    first = pictures[0]
    for picture in pictures[1:]:
        assert (picture.width, picture.height) == (first.width, first.height)
        assert [(s.group, s.box) for s in picture.shapes] == [
            (s.group, s.box) for s in first.shapes
        ]
        assert [(e.group, e.points) for e in picture.edges] == [
            (e.group, e.points) for e in first.edges
        ]
        # every label is in the same place in every frame: only its text changes
        assert [
            (t.css_class, t.group, t.box[1], t.box[3])
            for t in picture.texts
            if t.group != "caption"
        ] == [
            (t.css_class, t.group, t.box[1], t.box[3]) for t in first.texts if t.group != "caption"
        ]


@pytest.mark.parametrize("style", ["textbook", "record"])
@pytest.mark.parametrize("build", [sigmoid, reuse, neuron, lambda: random_graph(5)])
def test_every_frame_has_the_same_size_and_positions(build: object, style: str) -> None:
    root = build()  # type: ignore[operator]
    frames = list(mg.backward_steps(root, style=style))
    same_layout([frame.draw().svg for frame in frames])


def test_gradients_appear_only_where_computed_and_end_as_backward_does() -> None:
    root = neuron()
    frames = list(mg.backward_steps(root))
    counts = []
    for frame in frames:
        grads = [t for t in parse(frame.draw().svg).texts if t.css_class == "mg-grad"]
        counts.append(sum(1 for t in grads if t.content))
    assert counts == sorted(counts) and counts[0] < counts[-1]
    last = [
        (t.group, t.content) for t in parse(frames[-1].draw().svg).texts if t.css_class == "mg-grad"
    ]
    after_backward = [
        (t.group, t.content) for t in parse(mg.to_svg(root)).texts if t.css_class == "mg-grad"
    ]
    assert last == after_backward


def test_the_caption_states_the_chain_rule_with_numbers() -> None:
    a, b = Value(2.0, label="a"), Value(3.0, label="b")
    d = (a + b) * 0.5
    d.label = "d"
    frames = list(mg.backward_steps(d))
    assert frames[0].caption == "step 0 of 2: seed ∂d/∂d = 1"
    lines = frames[2].caption.splitlines()
    assert lines[0] == "step 2 of 2: through +, upstream gradient 0.5"
    assert lines[1] == f"to a: upstream 0.5 {TIMES} local ∂(a+b)/∂a = 1 → 0.5"
    assert lines[2] == f"to b: upstream 0.5 {TIMES} local ∂(a+b)/∂b = 1 → 0.5"
    assert frames[1].caption.splitlines()[1] == (
        f"to the + node: upstream 1 {TIMES} local ∂(a·0.5)/∂a = 0.5 → 0.5"
    )
    captions = [t.content for t in parse(frames[2].draw().svg).texts if t.group == "caption"]
    assert captions == lines


def test_a_node_used_several_times_shows_the_sum_of_its_uses() -> None:
    x = Value(3.0, label="x")
    y = x * x + x
    last = list(mg.backward_steps(y))[-1].caption.splitlines()
    assert last[1].endswith("→ 3; sum of its 2 uses 1 + 3 = 4")
    assert last[2].endswith("→ 3; sum of its 3 uses 1 + 3 + 3 = 7")


def test_negative_numbers_in_captions_use_a_real_minus() -> None:
    x = Value(-2.0, label="x")
    caption = list(mg.backward_steps(x * -3.0))[-1].caption
    assert f"local ∂(a·({MINUS}3))/∂a = {MINUS}3 → {MINUS}3" in caption


def test_steps_take_the_drawing_options_and_check_them_at_once() -> None:
    frames = list(mg.backward_steps(reuse(), rankdir="TB", style="record", legend=False))
    assert not any(t.group == "legend" for t in parse(frames[0].draw().svg).texts)
    assert parse(frames[0].draw(legend=True).svg).height > parse(frames[0].draw().svg).height
    with pytest.raises(RenderError, match="rankdir"):
        mg.backward_steps(reuse(), rankdir="up")  # type: ignore[arg-type]


def test_save_steps_writes_an_animated_gif_of_equal_frames(tmp_path: Path) -> None:
    root = sigmoid()
    frames = list(mg.backward_steps(root, dpi=72))
    path = mg.save_steps(root, tmp_path / "steps.gif", seconds=0.5, dpi=72)
    sizes = [Image.open(io.BytesIO(frame.draw().png())).size for frame in frames]
    with Image.open(path) as gif:
        assert gif.n_frames == len(frames) == 6
        assert gif.info["duration"] == 500 and gif.info.get("loop") == 0
        images = []
        for n in range(gif.n_frames):
            gif.seek(n)
            images.append(gif.convert("RGB"))
    assert [image.size for image in images] == sizes
    # frames differ where a gradient arrived, and are identical far from any change
    assert images[0].tobytes() != images[-1].tobytes()
    width, height = images[0].size
    legend = [image.crop((0, height - 20, width, height)).tobytes() for image in images[::5]]
    assert max(abs(p - q) for p, q in zip(*legend)) <= 4  # the palettes of two frames differ
    # each GIF frame is its PNG frame, up to the GIF palette
    png_frame = Image.open(io.BytesIO(frames[3].draw().png())).convert("RGB")
    difference = sum(abs(p - q) for p, q in zip(png_frame.tobytes(), images[3].tobytes())) / len(
        png_frame.tobytes()
    )
    assert difference < 2
