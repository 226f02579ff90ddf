"""Every number has one unambiguous place: the geometry of the SVG, over a corpus of graphs.

For each graph, style and direction the SVG is parsed and checked: no text
overlaps another text, a node it does not belong to, an arrowhead or a line; the
text of a node stays inside its shape; every edge label is nearer its own edge
than any other edge; nothing leaves the picture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from drawing_helpers import (
    choose_layout_path,
    every_operation,
    negatives,
    neuron,
    parse,
    problems,
    random_graph,
    reuse,
    shopping,
    sigmoid,
)

import microgradient as mg
from microgradient import Value

GRAPHS: dict[str, Callable[[], Value]] = {
    "sigmoid": sigmoid,
    "x*x + x": reuse,
    "tanh neuron": neuron,
    "shopping": shopping,
    "Chinese shopping": lambda: shopping(chinese=True),
    "negatives": negatives,
    "every operation": every_operation,
    "random 1": lambda: random_graph(1),
    "random 2": lambda: random_graph(2),
    "random 3": lambda: random_graph(3),
}


@pytest.mark.parametrize("path", ["system", "in-process"])
@pytest.mark.parametrize("rankdir", ["LR", "TB", "RL", "BT"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_textbook_numbers_are_all_legible(
    name: str, rankdir: str, path: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    choose_layout_path(path, monkeypatch, tmp_path)
    picture = parse(mg.to_svg(GRAPHS[name](), rankdir=rankdir))  # type: ignore[arg-type]
    assert problems(picture) == []


@pytest.mark.parametrize("path", ["system", "in-process"])
@pytest.mark.parametrize("rankdir", ["LR", "TB"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_record_numbers_are_all_legible(
    name: str, rankdir: str, path: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    choose_layout_path(path, monkeypatch, tmp_path)
    picture = parse(mg.to_svg(GRAPHS[name](), rankdir=rankdir, style="record"))  # type: ignore[arg-type]
    assert problems(picture) == []


@pytest.mark.parametrize("seed", range(4, 10))
def test_random_graphs_in_random_directions(seed: int) -> None:
    rankdir = ["LR", "TB", "RL", "BT"][seed % 4]
    root = random_graph(seed, size=18 + seed)
    picture = parse(mg.to_svg(root, rankdir=rankdir, number_format=".6g"))  # type: ignore[arg-type]
    assert problems(picture) == []


def test_the_checker_sees_a_collision() -> None:
    # the test above can fail: move a gradient onto its value and the checker objects
    document = mg.to_svg(sigmoid())
    picture = parse(document)
    value = next(
        t for t in picture.texts if t.css_class == "mg-value" and t.group.startswith("edge")
    )
    grad = next(t for t in picture.texts if t.css_class == "mg-grad" and t.group == value.group)
    grad.box = value.box
    assert any("overlaps" in problem for problem in problems(picture))
