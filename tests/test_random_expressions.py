"""Random expression trees over every operation, differentiated once and twice.

A tree is nested tuples ``(kind, *children_or_constants)``; leaves are
variables ``("x", i)``. Every kind guards its own domain (``log`` is taken of
``a*a + 1``, a divisor is ``b*b + 1``, ``exp`` of ``tanh(a)``, ...) so any tree
is valid everywhere. The same tree is evaluated twice: with ``Value`` leaves
through microgradient, and with plain floats through the ``math`` module, the
independent reference that the finite differences use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from finite_differences import agree, partial, stencil
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import microgradient as mg
from microgradient import Value

Tree = tuple[Any, ...]

constant = st.floats(-3.0, 3.0)
nonzero_constant = st.floats(0.5, 3.0) | st.floats(-3.0, -0.5)

UNARY_KINDS = [
    "neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "abs",
    "pow_int", "pow_const", "rpow",
]  # fmt: skip
BINARY_KINDS = ["add", "sub", "mul", "div", "pow_value", "sum", "dot", "dot_consts"]
WITH_CONSTANT = ["add_c", "radd", "sub_c", "rsub", "mul_c", "rmul", "div_c", "rdiv", "sum_c"]


def extend(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    return st.one_of(
        st.tuples(st.sampled_from(UNARY_KINDS), children, st.sampled_from([0, 1, 2, 3])),
        st.tuples(st.sampled_from(BINARY_KINDS), children, children, constant),
        st.tuples(st.sampled_from(WITH_CONSTANT), children, nonzero_constant),
        st.tuples(st.just("dot_mixed"), children, children, children, constant),
    )


def trees(n_leaves: int) -> st.SearchStrategy[Tree]:
    leaf = st.tuples(st.just("x"), st.integers(0, n_leaves - 1))
    return st.recursive(leaf, extend, max_leaves=10)


class Floats:
    """The reference: plain floats and the math module. Records the arguments of kinks."""

    def __init__(self) -> None:
        self.kinks: list[float] = []

    exp = staticmethod(math.exp)
    log = staticmethod(math.log)
    sqrt = staticmethod(math.sqrt)
    tanh = staticmethod(math.tanh)
    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)

    @staticmethod
    def sigmoid(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))

    def relu(self, x: float) -> float:
        self.kinks.append(x)
        return max(x, 0.0)

    def abs(self, x: float) -> float:
        self.kinks.append(x)
        return abs(x)

    @staticmethod
    def sum(terms: Sequence[float]) -> float:
        return math.fsum(terms)

    @staticmethod
    def dot(ws: Sequence[float], xs: Sequence[float]) -> float:
        return math.fsum(w * x for w, x in zip(ws, xs))


class Values:
    """microgradient: methods and module functions, alternating, so both forms are used."""

    exp = staticmethod(mg.exp)
    log = staticmethod(lambda x: x.log())
    sqrt = staticmethod(mg.sqrt)
    tanh = staticmethod(lambda x: x.tanh())
    sin = staticmethod(mg.sin)
    cos = staticmethod(lambda x: x.cos())
    sigmoid = staticmethod(mg.sigmoid)
    relu = staticmethod(lambda x: x.relu())
    abs = staticmethod(abs)
    sum = staticmethod(mg.sum)
    dot = staticmethod(mg.dot)


def evaluate(tree: Tree, leaves: Sequence[Any], lib: Any) -> Any:
    kind = tree[0]
    if kind == "x":
        return leaves[tree[1]]

    def ev(t: Tree) -> Any:
        return evaluate(t, leaves, lib)

    a = ev(tree[1])
    if kind in UNARY_KINDS:
        k = tree[2]
        unary: dict[str, Callable[[], Any]] = {
            "neg": lambda: -a,
            "exp": lambda: lib.exp(lib.tanh(a)),
            "log": lambda: lib.log(a * a + 1.0),
            "sqrt": lambda: lib.sqrt(a * a + 0.5),
            "tanh": lambda: lib.tanh(a),
            "sigmoid": lambda: lib.sigmoid(a),
            "relu": lambda: lib.relu(a),
            "sin": lambda: lib.sin(a),
            "cos": lambda: lib.cos(a),
            "abs": lambda: lib.abs(a),
            "pow_int": lambda: a**k,
            "pow_const": lambda: (a * a + 0.5) ** (k - 1.5),
            "rpow": lambda: (k + 0.5) ** lib.tanh(a),
        }
        return unary[kind]()
    if kind in WITH_CONSTANT:
        c = tree[2]
        with_constant: dict[str, Callable[[], Any]] = {
            "add_c": lambda: a + c,
            "radd": lambda: c + a,
            "sub_c": lambda: a - c,
            "rsub": lambda: c - a,
            "mul_c": lambda: a * c,
            "rmul": lambda: c * a,
            "div_c": lambda: a / c,
            "rdiv": lambda: c / (a * a + 1.0),
            "sum_c": lambda: lib.sum([c, a, c]),
        }
        return with_constant[kind]()
    b = ev(tree[2])
    if kind == "dot_mixed":
        d, c = ev(tree[3]), tree[4]
        return lib.dot([a, c, d], [c, b, d])
    c = tree[3]
    binary: dict[str, Callable[[], Any]] = {
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "div": lambda: a / (b * b + 1.0),
        "pow_value": lambda: (a * a + 0.5) ** lib.tanh(b),
        "sum": lambda: lib.sum([a, b, a]),
        "dot": lambda: lib.dot([a, b], [b, a]),
        "dot_consts": lambda: lib.dot([a, b], [c, 2.0]),
    }
    return binary[kind]()


def reference(tree: Tree) -> Callable[..., float]:
    return lambda *point: float(evaluate(tree, point, Floats()))


def kink_signs(tree: Tree, point: Sequence[float]) -> list[bool]:
    lib = Floats()
    evaluate(tree, point, lib)
    assume(all(abs(k) > 1e-6 for k in lib.kinks))
    return [k > 0 for k in lib.kinks]


def assume_smooth_around(tree: Tree, point: Sequence[float]) -> None:
    """Reject points where a relu or abs argument changes sign inside the stencil."""
    signs = kink_signs(tree, point)
    for i in range(len(point)):
        for p in stencil(point, i):
            assume(kink_signs(tree, p) == signs)


def backprop(tree: Tree, point: Sequence[float]) -> tuple[float, list[float]]:
    leaves = [Value(p) for p in point]
    out = evaluate(tree, leaves, Values)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


points = st.integers(2, 3).flatmap(
    lambda n: st.tuples(trees(n), st.lists(st.floats(-2.0, 2.0), min_size=n, max_size=n))
)
SETTINGS = settings(max_examples=100, deadline=None)


@SETTINGS
@given(points)
def test_forward_matches_float_reference(case: tuple[Tree, list[float]]) -> None:
    tree, point = case
    out = evaluate(tree, [Value(p) for p in point], Values)
    assert isinstance(out, Value)
    assert out.data == pytest.approx(reference(tree)(*point), rel=1e-9, abs=1e-9)


@SETTINGS
@given(points)
def test_gradients_match_finite_differences(case: tuple[Tree, list[float]]) -> None:
    tree, point = case
    assume_smooth_around(tree, point)
    value, grads = backprop(tree, point)
    f = reference(tree)
    for i, g in enumerate(grads):
        numeric = partial(f, point, i)
        assert agree(g, numeric, scale=1.0 + abs(value), rel=1e-5), (i, g, numeric)


@SETTINGS
@given(points)
def test_second_derivatives_match_finite_differences(case: tuple[Tree, list[float]]) -> None:
    tree, point = case
    assume_smooth_around(tree, point)
    leaves = [Value(p) for p in point]
    out = evaluate(tree, leaves, Values)
    firsts = mg.gradients(out, leaves, create_graph=True)
    _, plain = backprop(tree, point)
    for i, first in enumerate(firsts):
        assert float(first) == pytest.approx(plain[i], rel=1e-12, abs=1e-12)
        row = mg.gradients(first, leaves)
        for j in range(len(point)):
            numeric = partial(lambda *p, i=i: backprop(tree, p)[1][i], point, j)
            assert agree(float(row[j]), numeric, 1.0 + abs(plain[i]), rel=1e-5), (i, j)


@settings(max_examples=60, deadline=None)
@given(points)
def test_gradcheck_passes(case: tuple[Tree, list[float]]) -> None:
    tree, point = case
    assume_smooth_around(tree, point)
    value, grads = backprop(tree, point)
    f = lambda *xs: evaluate(tree, xs, Values)  # noqa: E731
    scale = 1.0 + abs(value)
    assert mg.gradcheck(f, *point, atol=1e-5 * scale, rtol=1e-4)
    biggest = max(abs(g) for g in grads)
    assert mg.largest_discrepancy(f, *point) <= 1e-5 * scale + 2e-4 * biggest
