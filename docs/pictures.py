"""Draw the README's pictures: ``python docs/pictures.py`` from the repository's root.

Graphviz's ``dot`` is hidden from ``PATH`` so that the layout comes from the
in-process Graphviz that every installation has, and the pictures are the same
on every machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import microgradient as mg
from microgradient import Value, nn

DOCS = Path(__file__).resolve().parent
DPI = 96


def sigmoid() -> Value:
    w, x = Value(0.0, label="w"), Value(1.0, label="x")
    h = 1 / (1 + (-(w * x)).exp())
    h.label = "h"
    h.backward()
    return h


def neuron() -> Value:
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1, x2w2 = x1 * w1, x2 * w2
    x1w1.label, x2w2.label = "x1·w1", "x2·w2"
    n = x1w1 + x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o


def shopping() -> Value:
    apple, count = Value(100.0, label="苹果"), Value(2.0, label="个数")
    orange, oranges = Value(150.0, label="橘子"), Value(3.0, label="个数")
    tax = Value(1.1, label="消费税")
    total = (apple * count + orange * oranges) * tax
    total.label = "支付金额"
    total.backward()
    return total


def network() -> Value:
    model = nn.MLP(2, [16, 16, 1], seed=1)
    out = model([Value(0.5, label="x1"), Value(-1.0, label="x2")])
    assert isinstance(out, Value)
    loss = (out - 1.0) ** 2
    loss.label = "loss"
    loss.backward()
    return loss


def main() -> None:
    os.environ["PATH"] = ""  # no dot: the in-process layout
    mg.save_graph(sigmoid(), DOCS / "sigmoid.svg")
    mg.save_graph(sigmoid(), DOCS / "sigmoid.png", dpi=DPI)
    mg.save_graph(neuron(), DOCS / "neuron-record.png", style="record", dpi=DPI)
    mg.save_graph(shopping(), DOCS / "shopping-zh.png", rankdir="TB", dpi=DPI)
    x = Value(3.0, label="x")
    y = x * x + x
    y.label = "y"
    mg.save_steps(y, DOCS / "steps.gif", dpi=DPI)
    mg.save_graph(network(), DOCS / "mlp-neurons.png", collapse="neuron", dpi=DPI)
    mg.save_graph(network(), DOCS / "mlp-layers.png", collapse="layer", dpi=DPI)


if __name__ == "__main__":
    main()
