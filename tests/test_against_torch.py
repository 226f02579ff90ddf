"""Random expressions against PyTorch float64: values, gradients and Hessians.

PyTorch is optional (never a dependency); without it these tests are skipped.
The expressions use every operation, the new ones included (``tan``, ``atan``,
``softplus``, ``max``/``min`` with PyTorch's tie rule, ``pow`` with a Value
exponent), kept inside their domains by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import microgradient as mg
from microgradient import Value

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")

# each operation as (name, microgradient form, torch form); operands are in any real range
UNARY: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = [
    ("tanh", lambda a: a.tanh(), torch.tanh),
    ("sigmoid", lambda a: a.sigmoid(), torch.sigmoid),
    ("softplus", lambda a: a.softplus(), torch.nn.functional.softplus),
    ("atan", lambda a: a.atan(), torch.atan),
    ("sin", lambda a: a.sin(), torch.sin),
    ("cos", lambda a: a.cos(), torch.cos),
    ("tan of tanh", lambda a: a.tanh().tan(), lambda a: torch.tan(torch.tanh(a))),
    ("exp of tanh", lambda a: a.tanh().exp(), lambda a: torch.exp(torch.tanh(a))),
    (
        "log of softplus",
        lambda a: (a.softplus() + 0.1).log(),
        lambda a: torch.log(torch.nn.functional.softplus(a) + 0.1),
    ),
    (
        "sqrt of softplus",
        lambda a: (a.softplus() + 0.1).sqrt(),
        lambda a: torch.sqrt(torch.nn.functional.softplus(a) + 0.1),
    ),
    ("negate", lambda a: -a, lambda a: -a),
    ("square", lambda a: a**2, lambda a: a**2),
    ("cube by pow", lambda a: mg.pow(a, 3), lambda a: torch.pow(a, 3)),
]
BINARY: list[tuple[str, Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = [
    ("+", lambda a, b: a + b, lambda a, b: a + b),
    ("-", lambda a, b: a - b, lambda a, b: a - b),
    ("*", lambda a, b: a * b, lambda a, b: a * b),
    ("/ by 1 + b**2", lambda a, b: a / (1 + b * b), lambda a, b: a / (1 + b * b)),
    ("max", mg.max, torch.maximum),
    ("min", mg.min, torch.minimum),
    # the exponent stays away from 0, where PyTorch's pow drops the exponent's part of the
    # second derivative (test_edges checks that point against finite differences)
    (
        "pow with a Value exponent",
        lambda a, b: mg.pow(a.softplus() + 0.5, b.tanh() * 0.5 + 0.75),
        lambda a, b: torch.pow(torch.nn.functional.softplus(a) + 0.5, torch.tanh(b) * 0.5 + 0.75),
    ),
]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 3) -> Any:
    """A tree: ("x",) / ("y",) leaves, ("u", i, tree) or ("b", i, tree, tree)."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return (draw(st.sampled_from(["x", "y"])),)
    if draw(st.booleans()):
        return ("u", draw(st.integers(0, len(UNARY) - 1)), draw(expressions(depth - 1)))
    same = draw(st.integers(0, 5)) == 0  # max(t, t) and friends: an exact tie
    left = draw(expressions(depth - 1))
    right = left if same else draw(expressions(depth - 1))
    return ("b", draw(st.integers(0, len(BINARY) - 1)), left, right)


def evaluate(tree: Any, leaves: dict[str, Any], library: int) -> Any:
    if len(tree) == 1:
        return leaves[tree[0]]
    if tree[0] == "u":
        return UNARY[tree[1]][library](evaluate(tree[2], leaves, library))
    left = evaluate(tree[2], leaves, library)
    right = evaluate(tree[3], leaves, library)
    return BINARY[tree[1]][library](left, right)


def torch_derivatives(tree: Any, point: tuple[float, float]) -> tuple[float, list, list]:
    x, y = (torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in point)
    out = evaluate(tree, {"x": x, "y": y}, 2)
    first = torch.autograd.grad(out, (x, y), create_graph=True, allow_unused=True)
    grads = [0.0 if g is None else g.item() for g in first]
    hessian = []
    for g in first:
        if g is None or not g.requires_grad:
            hessian.append([0.0, 0.0])
            continue
        row = torch.autograd.grad(g, (x, y), retain_graph=True, allow_unused=True)
        hessian.append([0.0 if r is None else r.item() for r in row])
    return out.item(), grads, hessian


@settings(max_examples=200, deadline=None)
@given(
    tree=expressions(),
    point=st.tuples(st.floats(-2.0, 2.0), st.floats(-2.0, 2.0)),
)
def test_random_expressions_match_torch_to_the_second_derivative(
    tree: Any, point: tuple[float, float]
) -> None:
    value, grads, hessian = torch_derivatives(tree, point)
    f = lambda a, b: evaluate(tree, {"x": a, "y": b}, 1)  # noqa: E731
    x, y = Value(point[0]), Value(point[1])
    out = f(x, y)
    ours = out.data if isinstance(out, Value) else out
    assert ours == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert mg.grad(f, (0, 1))(*point) == pytest.approx(tuple(grads), rel=1e-9, abs=1e-12)
    assert mg.hessian(f)(*point) == [pytest.approx(row, rel=1e-8, abs=1e-10) for row in hessian]


@pytest.mark.parametrize("name", ["max", "min"])
def test_ties_split_the_gradient_like_torch(name: str) -> None:
    a, b = Value(1.5), Value(1.5)
    out = getattr(mg, name)(a, b)
    out.backward()
    ta, tb = (torch.tensor(1.5, dtype=torch.float64, requires_grad=True) for _ in range(2))
    getattr(torch, {"max": "maximum", "min": "minimum"}[name])(ta, tb).backward()
    assert (a.grad, b.grad) == (float(ta.grad), float(tb.grad)) == (0.5, 0.5)
