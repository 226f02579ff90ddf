"""Random computation graphs as *recipes*, for comparing traced programs with the engine.

A recipe is a list of steps ``(kind, operand indices, number)`` over a growing
list of nodes whose first entries are the leaves. Steps pick earlier nodes at
random, so nodes are reused (a node feeding several others, or one node twice).
Replaying a recipe on new leaf values builds the same graph eagerly, which is
the reference a program run at those values must agree with (not a test module).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

import microgradient as mg
from microgradient import Value

Step = tuple[str, tuple[int, ...], float]

# points where operations have kinks, ties and domain edges
SPECIAL = [0.0, 1.0, -1.0, 0.5, 2.0, -2.0]
CONSTANTS = [0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -0.5, 1.5]

UNARY: dict[str, Callable[[Any], Any]] = {
    "neg": lambda a: -a,
    "exp": lambda a: a.exp(),
    "log": lambda a: a.log(),
    "sqrt": lambda a: a.sqrt(),
    "tanh": lambda a: a.tanh(),
    "sigmoid": lambda a: a.sigmoid(),
    "relu": lambda a: a.relu(),
    "sin": lambda a: a.sin(),
    "cos": lambda a: a.cos(),
    "abs": lambda a: abs(a),
    "tan": lambda a: a.tan(),
    "atan": lambda a: a.atan(),
    "softplus": lambda a: a.softplus(),
}
WITH_NUMBER: dict[str, Callable[[Any, float], Any]] = {
    "add_c": lambda a, c: a + c,
    "sub_c": lambda a, c: a - c,
    "rsub": lambda a, c: c - a,
    "mul_c": lambda a, c: a * c,
    "div_c": lambda a, c: a / (c if c != 0.0 else 4.0),
    "rdiv": lambda a, c: c / a,
    "pow_c": lambda a, c: a**c,
    "rpow": lambda a, c: abs(c) ** a,
    "max_c": lambda a, c: mg.max(a, c),
    "min_c": lambda a, c: mg.min(a, c),
}
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "max": lambda a, b: mg.max(a, b),
    "min": lambda a, b: mg.min(a, b),
    "gate": lambda a, b: gate(a, b),
}
NARY: dict[str, Callable[[Sequence[Any], float], Any]] = {
    "sum": lambda xs, c: mg.sum([*xs, c]),
    "dot_values": lambda xs, c: mg.dot(list(xs), list(reversed(xs))),
    "dot_numbers": lambda xs, c: mg.dot(list(xs), [c, *range(len(xs) - 1)]),
    "dot_mixed": lambda xs, c: mg.dot([xs[0], c, *xs[1:]], [c, xs[0], *xs[1:]]),
}


@mg.operation
def cube(x: float) -> float:
    """A registered operation of one operand."""
    return x * x * x


@cube.derivatives
def _(x: Any, out: Any) -> tuple[Any]:
    return (3.0 * x * x,)


@mg.operation(symbol="gate")
def gate(a: float, b: float) -> float:
    """A registered operation of two operands."""
    return a * float(mg.sigmoid(b))


@gate.derivatives
def _(a: Any, b: Any, out: Any) -> tuple[Any, Any]:
    s = mg.sigmoid(b)
    return (s, a * s * (1.0 - s))


def all_unary() -> dict[str, Callable[[Any], Any]]:
    return {**UNARY, "cube": cube}


@st.composite
def recipes(draw: st.DrawFn, n_leaves: int = 3, max_steps: int = 10) -> list[Step]:
    unary = all_unary()
    kinds = sorted(unary) + sorted(WITH_NUMBER) + sorted(BINARY) + sorted(NARY)
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, max_steps))):
        size = n_leaves + len(steps)
        kind = draw(st.sampled_from(kinds))
        arity = 1 if kind in unary or kind in WITH_NUMBER else 2
        if kind in NARY:
            arity = draw(st.integers(1, 4))
        operands = tuple(draw(st.integers(0, size - 1)) for _ in range(arity))
        steps.append((kind, operands, draw(st.sampled_from(CONSTANTS))))
    return steps


# no tiny values: 1 / 1e-311 is inf
leaf_values = st.sampled_from(SPECIAL) | st.floats(-3.0, 3.0).filter(lambda x: abs(x) > 1e-6)


def build(
    recipe: Sequence[Step],
    leaves: Sequence[Value],
    strict: bool = False,
    errors: set[type[Exception]] | None = None,
) -> tuple[Value, list[Step]] | None:
    """The recipe's graph on ``leaves``, and the recipe of what was built.

    A step outside its domain at these leaves is replaced by a ``"same"`` step
    (its first operand), or with ``strict`` raises the first error after
    collecting every step's error class in ``errors``. The root adds up every
    node built, so every step is part of its graph; ``None`` if nothing was built.
    """
    unary = all_unary()
    nodes: list[Value] = list(leaves)
    built: list[Step] = []
    for kind, operands, c in recipe:
        xs = [nodes[i] for i in operands]
        try:
            if kind == "same":
                node = xs[0]
            elif kind in unary:
                node = unary[kind](xs[0])
            elif kind in WITH_NUMBER:
                node = WITH_NUMBER[kind](xs[0], c)
            elif kind in BINARY:
                node = BINARY[kind](xs[0], xs[1])
            else:
                node = NARY[kind](xs, c)
        except mg.MicrogradientError as error:
            if errors is not None:
                errors.add(type(error))
            node = xs[0]
            kind = "same"
        built.append((kind, operands, c))
        nodes.append(node)
    if strict and errors:
        raise next(iter(errors))(f"{len(errors)} kinds of error")
    if all(kind == "same" for kind, _, _ in built):
        return None
    made = [node for node, (kind, _, _) in zip(nodes[len(leaves) :], built) if kind != "same"]
    return (made[0] if len(made) == 1 else mg.sum(made)), built


def same(x: float, y: float, rel: float = 1e-9) -> bool:
    """Equal to rounding (infinities and nans must match exactly)."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= rel * max(1.0, abs(x), abs(y))


def eager(recipe: list, point: list[float], errors: set | None = None):  # type: ignore[no-untyped-def,type-arg]
    """Build and differentiate the recipe eagerly: leaves, root, recipe built, backward error.

    With ``errors``, every step must build, or the classes of the errors raised are
    collected there and the first is raised.
    """
    leaves = [Value(x, label=f"x{i}") for i, x in enumerate(point)]
    made = build(recipe, leaves, strict=errors is not None, errors=errors)
    if made is None:
        return None
    root, built = made
    try:
        root.backward()
    except mg.MicrogradientError as error:
        return leaves, root, built, error
    return leaves, root, built, None
