"""Code written against micrograd's Value gives the same numbers with microgradient's.

micrograd (0.1.0, the version on the package index) is a dev dependency. Each
test runs the same user code twice, once per ``Value`` class, and compares
every number. What micrograd 0.1.0 lacks (``label``, ``tanh``, ``exp``) is
checked against hand-computed values instead.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from micrograd.engine import Value as MicrogradValue
from micrograd.nn import MLP as MicrogradMLP

import microgradient as mg
from microgradient import Value, nn

BOTH = pytest.mark.parametrize("V", [MicrogradValue, Value], ids=["micrograd", "microgradient"])


def karpathy_example(V: Any) -> tuple[Any, list[Any]]:
    """The README example of micrograd."""
    a = V(-4.0)
    b = V(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g, [a, b]


def sanity_check(V: Any) -> tuple[Any, list[Any]]:
    """micrograd's test_sanity_check."""
    x = V(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    return y, [x]


def more_ops(V: Any) -> tuple[Any, list[Any]]:
    """micrograd's test_more_ops."""
    a = V(-4.0)
    b = V(2.0)
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    return g, [a, b]


def neuron(V: Any) -> tuple[Any, list[Any]]:
    """A relu neuron with a squared loss, the way micrograd's nn module builds one."""
    ws = [V(0.5), V(-1.5), V(2.0)]
    b = V(0.1)
    xs = [1.0, 2.0, -0.5]
    act = b
    for w, x in zip(ws, xs):
        act = act + w * x
    out = act.relu() if act.data > 0 else (act * -1).relu()
    loss = (out - 1.0) ** 2
    return loss, [*ws, b]


PROGRAMS: list[Callable[[Any], tuple[Any, list[Any]]]] = [
    karpathy_example,
    sanity_check,
    more_ops,
    neuron,
]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_same_program_same_numbers(program: Callable[[Any], tuple[Any, list[Any]]]) -> None:
    theirs, their_leaves = program(MicrogradValue)
    ours, our_leaves = program(Value)
    theirs.backward()
    ours.backward()
    assert ours.data == pytest.approx(theirs.data, rel=1e-12)
    assert [v.grad for v in our_leaves] == pytest.approx([v.grad for v in their_leaves], rel=1e-12)


def test_karpathy_example_numbers() -> None:
    g, (a, b) = karpathy_example(Value)
    g.backward()
    # the numbers printed in micrograd's README
    assert f"{g.data:.4f}" == "24.7041"
    assert f"{a.grad:.4f}" == "138.8338"
    assert f"{b.grad:.4f}" == "645.5773"


@settings(max_examples=50, deadline=None)
@given(
    a=st.floats(-3.0, 3.0),
    b=st.floats(0.5, 3.0),
    k=st.sampled_from([2, 3, -1, 0.5]),
)
def test_random_inputs_same_numbers(a: float, b: float, k: float) -> None:
    assume(abs(a * b + b**k - a / b) > 1e-9)  # away from the relu kink

    def program(V: Any) -> tuple[Any, list[Any]]:
        x, y = V(a), V(b)
        z = (x * y + y**k - x / y).relu() + 2 * x - y
        return z * z + 1.0 / y, [x, y]

    theirs, their_leaves = program(MicrogradValue)
    ours, our_leaves = program(Value)
    theirs.backward()
    ours.backward()
    assert ours.data == pytest.approx(theirs.data, rel=1e-9, abs=1e-12)
    assert [v.grad for v in our_leaves] == pytest.approx(
        [v.grad for v in their_leaves], rel=1e-9, abs=1e-12
    )


@BOTH
def test_prev_and_op(V: Any) -> None:
    a, b = V(2.0), V(3.0)
    c = a * b
    d = c + a
    assert c._prev == {a, b}
    assert d._prev == {c, a}
    assert a._prev == set()
    assert (a * a)._prev == {a}
    assert a._op == ""
    assert c._op == "*"
    assert d._op == "+"


def test_op_names_for_other_operations() -> None:
    # micrograd names powers f"**{k}" and relu "ReLU"; ours name the operation only
    a = Value(2.0)
    assert (a**2)._op == "**"
    assert a.relu()._op == "relu"
    assert (-a)._op == "neg"
    assert (a / 2)._op == "/"


def test_features_micrograd_lacks() -> None:
    a = Value(2.0, label="a")
    assert a.label == "a"
    assert "label='a'" in repr(a)
    t = a.tanh()
    e = a.exp()
    assert t.data == pytest.approx(math.tanh(2.0))
    assert e.data == pytest.approx(math.exp(2.0))
    t.backward()
    assert a.grad == pytest.approx(1 - math.tanh(2.0) ** 2)
    a.grad = 0.0
    e.backward()
    assert a.grad == pytest.approx(math.exp(2.0))


def test_karpathy_manual_walkthrough() -> None:
    """The neuron of the micrograd lecture, backpropagated by hand with ``_backward()``."""

    def build() -> dict[str, Value]:
        x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
        w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
        b = Value(6.8813735870195432, label="b")
        x1w1 = x1 * w1
        x2w2 = x2 * w2
        x1w1x2w2 = x1w1 + x2w2
        n = x1w1x2w2 + b
        o = n.tanh()
        return dict(x1=x1, x2=x2, w1=w1, w2=w2, b=b, x1w1=x1w1, x2w2=x2w2, s=x1w1x2w2, n=n, o=o)

    manual = build()
    o = manual["o"]
    assert o.data == pytest.approx(0.7071, abs=1e-4)
    o.grad = 1.0
    o._backward()
    assert manual["n"].grad == pytest.approx(0.5)
    manual["n"]._backward()
    assert manual["b"].grad == pytest.approx(0.5)
    assert manual["s"].grad == pytest.approx(0.5)
    manual["s"]._backward()
    assert manual["x1w1"].grad == pytest.approx(0.5)
    assert manual["x2w2"].grad == pytest.approx(0.5)
    manual["x2w2"]._backward()
    manual["x1w1"]._backward()
    # leaves: _backward does nothing
    for leaf in ("x1", "x2", "w1", "w2", "b"):
        before = manual[leaf].grad
        manual[leaf]._backward()
        assert manual[leaf].grad == before
    expected = {"x1": -1.5, "x2": 0.5, "w1": 1.0, "w2": 0.0, "b": 0.5}
    for name, value in expected.items():
        assert manual[name].grad == pytest.approx(value), name

    automatic = build()
    automatic["o"].backward()
    for name in manual:
        assert manual[name].grad == pytest.approx(automatic[name].grad, rel=1e-12), name


def test_backward_step_uses_the_forward_inputs() -> None:
    a, b = Value(3.0), Value(-2.0)
    c = a * b
    c.grad = 2.0
    c._backward()
    assert (a.grad, b.grad) == (-4.0, 6.0)
    c._backward()  # each call pushes (accumulates) one more step
    assert (a.grad, b.grad) == (-8.0, 12.0)


def test_module_functions_accept_micrograd_style_values() -> None:
    a = Value(0.3)
    assert mg.tanh(a).data == a.tanh().data
    assert mg.relu(a).data == a.relu().data == 0.3


# ---- micrograd's nn: the same numbers with init="uniform" -------------------------------


def test_micrograd_demo_gives_micrograds_numbers_with_uniform_init() -> None:
    random.seed(1337)
    theirs = MicrogradMLP(2, [16, 16, 1])
    random.seed(1337)
    ours = nn.MLP(2, [16, 16, 1], init="uniform")
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    for x in ([1.0, -2.0], [0.3, 0.7], [-1.5, 0.0]):
        assert math.isclose(ours(x).data, theirs(x).data, rel_tol=1e-12)  # type: ignore[union-attr]
    # the default initialisation draws the same numbers but scales them
    random.seed(1337)
    scaled = nn.MLP(2, [16, 16, 1])
    assert [p.data for p in scaled.parameters()] != [p.data for p in theirs.parameters()]
