"""The primitive table against the engine's own closures, op by op, at kinks and edges.

Every entry is rendered both ways (Python on floats, and arrays through NumPy)
and must give the engine's forward value and local derivatives, or raise the
engine's exception, at a grid of points that includes every kink and edge.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

import microgradient as mg
from microgradient import Value
from microgradient.engine import local_derivatives
from microgradient.primitives import (
    PRIMITIVES,
    Primitive,
    array_function,
    scalar_chain_term,
    scalar_expression,
    scalar_names,
)

POINTS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    -3.0,
    1e-200,
    1e200,
    800.0,
    -800.0,
    math.inf,
    -math.inf,
]
CONSTANTS = [0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -2.0, 1.5, 1e-200]


def make_node(entry: Primitive, a: float, b_or_c: float) -> Value:
    x = Value(a)
    y = Value(b_or_c) if entry.arity == 2 else b_or_c
    makers: dict[str, Any] = {
        "+": lambda: x + y,
        "-": lambda: x - y,
        "r-": lambda: y - x,
        "*": lambda: x * y,
        "/": lambda: x / y,
        "r/": lambda: y / x,
        "neg": lambda: -x,
        "**": lambda: x**y,
        "r**": lambda: y**x,
        "max": lambda: mg.max(x, y),
        "min": lambda: mg.min(x, y),
    }
    maker = makers.get(entry.op)
    node = maker() if maker is not None else getattr(x, entry.op)()
    assert node.op == entry.op and len(node.parents) == entry.arity
    return node


def scalar(template: str, a: float, b: float, c: float | None, out: float | None) -> float:
    names = {"a": "a", "b": "b", "out": "out"}
    code = scalar_expression(template, names, c)
    return float(eval(code, scalar_names(), {"a": a, "b": b, "out": out}))  # our own template


def array(template: str, a: float, b: float, c: float, out: float | None) -> float:
    as_array = np.asarray
    with np.errstate(all="ignore"):
        result = array_function(template)(
            np,
            as_array([a]),
            as_array([b]),
            as_array([c]),
            None if out is None else as_array([out]),
        )
    return float(np.asarray(result).reshape(-1)[0])


def same(x: float, y: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y or abs(x - y) <= 1e-12 * max(1.0, abs(x), abs(y))


def constant_is_refused(entry: Primitive, c: float) -> bool:
    """The engine refuses the number itself (``2 / 0``, ``(-1) ** x``): no node, no program."""
    if entry.arity == 2:
        return False
    for a in (1.0, 2.0):
        try:
            make_node(entry, a, c)
        except mg.MicrogradientError:
            continue
        return False
    return True


@pytest.mark.parametrize("key", list(PRIMITIVES), ids=lambda key: f"{key[0]}/{key[1]}")
def test_table_entry_matches_the_engine(key: tuple[str, int]) -> None:
    entry = PRIMITIVES[key]
    for a, second in itertools.product(POINTS, POINTS if entry.arity == 2 else CONSTANTS):
        check_point(key, entry, a, second)


def check_point(key: tuple[str, int], entry: Primitive, a: float, second: float) -> None:
    b, c = (second, None) if entry.arity == 2 else (math.nan, second)
    try:
        node = make_node(entry, a, second)
    except mg.MicrogradientError as error:
        if constant_is_refused(entry, second):
            return
        failing = [
            check
            for check in entry.checks
            if scalar(check.condition, a, b, c, None) and array(check.condition, a, b, second, None)
        ]
        assert failing and type(error) is failing[0].error, (key, a, second, error)
        return
    for check in entry.checks:
        assert not scalar(check.condition, a, b, c, None), (key, a, second, check)
        assert not array(check.condition, a, b, second, None), (key, a, second, check)
    assert same(scalar(entry.forward, a, b, c, None), node.data), (key, a, second)
    assert same(array(entry.forward, a, b, second, None), node.data), (key, a, second)
    slopes = local_derivatives(node)
    assert slopes is not None
    for derivative, slope in zip(entry.derivatives, slopes):
        assert same(scalar(derivative, a, b, c, node.data), slope), (key, a, second, derivative)
        assert same(array(derivative, a, b, second, node.data), slope), (key, a, second)


@pytest.mark.parametrize("key", sorted(PRIMITIVES))
def test_chain_terms_are_the_upstream_gradient_times_the_slope(key: tuple[str, int]) -> None:
    """A piecewise slope's chain term is the product, except that a flat piece stops inf."""
    entry = PRIMITIVES[key]
    names = {"a": "a", "b": "b", "out": "out"}
    for template in entry.derivatives:
        for c in [None] if entry.arity == 2 else CONSTANTS:
            term = scalar_chain_term("g", template, names, c)
            if term is None:
                continue
            for a, b, g in itertools.product(POINTS[:8], POINTS[:8], [2.5, -1.0, math.inf]):
                slope = scalar(template, a, b, c, None)
                got = float(eval(term, scalar_names(), {"a": a, "b": b, "g": g}))
                expected = 0.0 if slope == 0.0 else g * slope  # the engine's 0 * inf = 0
                assert same(got, expected), (template, term, a, b, c, g)


def test_only_piecewise_slopes_get_chain_terms() -> None:
    names = {"a": "h1", "b": "h2", "out": "h3"}
    assert scalar_chain_term("g", "1.0 - out * out", names, None) is None
    assert scalar_chain_term("g", "where(a == 0.0, inf, 0.5 / out)", names, None) is None
    assert scalar_chain_term("g", "where(a > b, 1.0, where(b > a, 0.0, 0.5))", names, None) == (
        "g if h1 > h2 else 0.0 if h2 > h1 else g * 0.5"
    )
