"""Networks by neuron and by layer: parameter labels, collapsed drawings that fit a screen."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from drawing_helpers import NS, parse, problems

import microgradient as mg
from microgradient import Value, nn
from microgradient.render import MINUS


def demo_loss() -> Value:
    """micrograd's demo network 2-16-16-1 on one point, with a squared error."""
    model = nn.MLP(2, [16, 16, 1], seed=1)
    out = model([Value(0.5, label="x1"), Value(-1.0, label="x2")])
    assert isinstance(out, Value)
    loss = (out - 1.0) ** 2
    loss.label = "loss"
    loss.backward()
    return loss


def test_every_parameter_is_named_by_its_place() -> None:
    model = nn.MLP(2, [3, 1], seed=0)
    labels = [p.label for p in model.parameters()]
    assert labels[:3] == ["L1.n1.w1", "L1.n1.w2", "L1.n1.b"]
    assert labels[-4:] == ["L2.n1.w1", "L2.n1.w2", "L2.n1.w3", "L2.n1.b"]
    assert len(set(labels)) == len(labels)
    assert labels == [p.label for p in nn.MLP(2, [3, 1], seed=5).parameters()]  # stable
    assert [p.label for p in nn.Neuron(2).parameters()] == ["w1", "w2", "b"]
    assert [p.label for p in nn.Layer(2, 2).parameters()][3:] == ["n2.w1", "n2.w2", "n2.b"]


def group_titles(document: str) -> list[str]:
    return [t.content for t in parse(document).texts if t.css_class == "mg-label"]


@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_collapse_by_neuron_draws_one_box_per_neuron_in_order(rankdir: str) -> None:
    loss = demo_loss()
    document = mg.to_svg(loss, collapse="neuron", rankdir=rankdir)  # type: ignore[arg-type]
    picture = parse(document)
    titles = [t for t in picture.texts if t.css_class == "mg-label" and t.content.startswith("L")]
    assert sorted(t.content for t in titles) == sorted(
        [f"L1.n{j}" for j in range(1, 17)] + [f"L2.n{j}" for j in range(1, 17)] + ["L3.n1"]
    )
    # a layer reads from n1 to n16, down the page (LR) or across it (TB)
    first_layer = [t for t in titles if t.content.startswith("L1.")]
    axis = 1 if rankdir == "LR" else 0
    reading = [t.content for t in sorted(first_layer, key=lambda t: t.box[axis])]
    assert reading == [f"L1.n{j}" for j in range(1, 17)]
    clusters = [
        g.get("data-cluster")
        for g in ET.fromstring(document).iter(f"{NS}g")
        if g.get("class") == "mg-cluster"
    ]
    assert clusters == ["L1", "L2", "L3"]
    assert problems(picture) == []
    if rankdir == "LR":  # it fits a screen: micrograd's demo network was an 18 000 px strip
        assert picture.width < 1000 and picture.height < 1100
        full = parse(mg.to_svg(loss))
        assert full.width * full.height > 10 * picture.width * picture.height


def test_a_collapsed_neuron_shows_its_output_value_and_gradient() -> None:
    model = nn.Neuron(2, activation="tanh", seed=3)
    x = [Value(1.0, label="x1"), Value(-2.0, label="x2")]
    out = model(x)
    out.backward()
    picture = parse(mg.to_svg(out, collapse="neuron"))
    node = next(t.group for t in picture.texts if t.content == "neuron")
    numbers = {t.css_class: t.content for t in picture.texts if t.group == node}
    assert numbers["mg-value"] == mg.format_number(out.data)
    assert numbers["mg-grad"] == "1"
    assert numbers["mg-group-detail"] == "tanh"
    # the inputs stay, with their own numbers; the parameters are inside the box
    labels = [t.content for t in picture.texts if t.css_class == "mg-label"]
    assert "x1" in labels and "w1" not in labels


def test_collapse_by_layer_draws_one_box_per_layer() -> None:
    picture = parse(mg.to_svg(demo_loss(), collapse="layer"))
    details = [t.content for t in picture.texts if t.css_class == "mg-group-detail"]
    assert details == ["16 neurons · relu", "16 neurons · relu", "1 neuron · linear"]
    assert problems(picture) == []
    # a layer of one neuron has one output, whose numbers it shows; a wider one has none
    by_node: dict[str, list[str]] = {}
    for t in picture.texts:
        if t.css_class in ("mg-value", "mg-grad") and t.group.startswith("node"):
            by_node.setdefault(t.group, []).append(t.content)
    layer_nodes = {t.group for t in picture.texts if t.css_class == "mg-group-detail"}
    shown = [by_node[node] for node in layer_nodes if node in by_node]
    assert shown == [["0.6218", f"{MINUS}0.7564"]]


def test_a_neuron_given_numbers_shows_them_in_its_dot() -> None:
    out = nn.Neuron(2, seed=0)([1.0, -2.0])
    symbols = [t.content for t in parse(mg.to_svg(out)).texts if t.css_class == "mg-op"]
    assert symbols == [f"Σ·(1, {MINUS}2, 1)", "relu"]


def test_a_graph_without_networks_is_unchanged_by_collapse() -> None:
    x = Value(2.0, label="x")
    y = (x * 3).tanh()
    y.backward()
    assert mg.to_svg(y, collapse="neuron", legend=False) == mg.to_svg(y, legend=False)
