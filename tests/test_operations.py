"""Every operation, in every form, differentiated once and twice.

Each case is one operation applied to ``Value`` inputs drawn by hypothesis
inside the operation's domain (away from kinks and singularities). The tests
check the forward value against a reference computed with plain floats and the
``math`` module, the first derivatives from ``backward()`` against finite
differences of that reference, and the second derivatives from
``backward(create_graph=True)`` against finite differences of the first
derivatives.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from finite_differences import agree, partial
from hypothesis import given, settings
from hypothesis import strategies as st

import microgradient as mg
from microgradient import Value

# ---- input strategies -----------------------------------------------------------------

real = st.floats(-4.0, 4.0)
positive = st.floats(0.25, 4.0)
negative = st.floats(-4.0, -0.25)
nonzero = positive | negative
# plain numbers entering an operation: floats and ints alike
number = real | st.integers(-4, 4)
nonzero_number = nonzero | st.sampled_from([-3, -2, -1, 1, 2, 3])
NOTHING = st.none()


def one(values: st.SearchStrategy[float], extra: st.SearchStrategy[Any] = NOTHING) -> Any:
    return st.tuples(st.tuples(values), extra)


def two(
    first: st.SearchStrategy[float],
    second: st.SearchStrategy[float],
    extra: st.SearchStrategy[Any] = NOTHING,
) -> Any:
    return st.tuples(st.tuples(first, second), extra)


def several(
    values: st.SearchStrategy[float], n: int, extra: st.SearchStrategy[Any] = NOTHING
) -> Any:
    return st.tuples(st.tuples(*[values] * n), extra)


@dataclass(frozen=True)
class Case:
    """One form of one operation.

    ``inputs`` draws ``(point, extra)``: the point gives the ``Value`` inputs
    (the ones differentiated); ``extra`` holds plain numbers or a layout.
    ``build(values, extra)`` applies the operation; ``reference(floats, extra)``
    computes the same function with plain floats (by default ``build`` itself,
    which for arithmetic is Python's own float arithmetic).
    """

    name: str
    op: str
    inputs: st.SearchStrategy[tuple[tuple[float, ...], Any]]
    build: Callable[[Sequence[Any], Any], Any]
    reference: Callable[[Sequence[float], Any], float] | None = None

    def ref(self, point: Sequence[float], extra: Any) -> float:
        function = self.reference or self.build
        return float(function(point, extra))


CASES: list[Case] = []

# ---- + - * / in every form ---------------------------------------------------------------

BINARY = [
    ("+", operator.add, "+", "+"),
    ("-", operator.sub, "-", "r-"),
    ("*", operator.mul, "*", "*"),
    ("/", operator.truediv, "/", "r/"),
]
for symbol, fn, op, reflected_op in BINARY:
    divisor = nonzero if symbol == "/" else real
    divisor_number = nonzero_number if symbol == "/" else number
    CASES += [
        Case(f"Value {symbol} Value", op, two(real, divisor), lambda v, c, f=fn: f(v[0], v[1])),
        Case(f"x {symbol} x", op, one(nonzero), lambda v, c, f=fn: f(v[0], v[0])),
        Case(
            f"Value {symbol} number", op, one(real, divisor_number), lambda v, c, f=fn: f(v[0], c)
        ),
        Case(
            f"number {symbol} Value",
            reflected_op,
            one(divisor, number),
            lambda v, c, f=fn: f(c, v[0]),
        ),
    ]

# ---- powers --------------------------------------------------------------------------------

CASES += [
    Case("Value ** number", "**", one(positive, st.floats(-3.0, 3.0)), lambda v, c: v[0] ** c),
    Case(
        "negative Value ** integer",
        "**",
        one(negative, st.sampled_from([-3, -2, -1, 0, 1, 2, 3, -2.0, 3.0])),
        lambda v, c: v[0] ** c,
    ),
    Case(
        "Value ** Value",
        "**",
        two(st.floats(0.25, 3.0), st.floats(-3.0, 3.0)),
        lambda v, c: v[0] ** v[1],
    ),
    Case("x ** x", "**", one(st.floats(0.25, 3.0)), lambda v, c: v[0] ** v[0]),
    Case(
        "number ** Value",
        "r**",
        one(st.floats(-3.0, 3.0), st.floats(0.25, 4.0)),
        lambda v, c: c ** v[0],
    ),
    Case(
        "integer ** Value",
        "r**",
        one(st.floats(-3.0, 3.0), st.sampled_from([1, 2, 3])),
        lambda v, c: c ** v[0],
    ),
]

# ---- unary operations: method, module function --------------------------------------------


def stable_sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def stable_softplus(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


away_from_zero = st.floats(0.01, 4.0) | st.floats(-4.0, -0.01)
UNARY: list[tuple[str, st.SearchStrategy[float], Callable[[float], float]]] = [
    ("exp", st.floats(-5.0, 5.0), math.exp),
    ("log", st.floats(0.1, 10.0), math.log),
    ("sqrt", st.floats(0.1, 10.0), math.sqrt),
    ("tanh", real, math.tanh),
    ("sigmoid", st.floats(-8.0, 8.0), stable_sigmoid),
    ("relu", away_from_zero, lambda x: max(x, 0.0)),
    ("sin", st.floats(-7.0, 7.0), math.sin),
    ("cos", st.floats(-7.0, 7.0), math.cos),
    ("abs", away_from_zero, abs),
    ("tan", st.floats(-1.4, 1.4), math.tan),
    ("atan", st.floats(-6.0, 6.0), math.atan),
    ("softplus", st.floats(-8.0, 8.0), stable_softplus),
]
for name, domain, math_fn in UNARY:
    module_fn = getattr(mg, name)
    CASES += [
        Case(
            f"x.{name}()",
            name,
            one(domain),
            lambda v, c, n=name: getattr(v[0], n)(),
            lambda p, c, f=math_fn: f(p[0]),
        ),
        Case(
            f"mg.{name}(x)",
            name,
            one(domain),
            lambda v, c, f=module_fn: f(v[0]),
            lambda p, c, f=math_fn: f(p[0]),
        ),
    ]
CASES += [
    Case("-x", "neg", one(real), lambda v, c: -v[0]),
    Case("builtin abs(x)", "abs", one(away_from_zero), lambda v, c: abs(v[0])),
]

# ---- max and min of two operands, pow --------------------------------------------------


def spread(point: Sequence[float]) -> float:
    """The smallest distance between two coordinates: how far the point is from a tie."""
    return min(abs(a - b) for i, a in enumerate(point) for b in point[i + 1 :])


apart = st.tuples(real, real).filter(lambda p: abs(p[0] - p[1]) > 0.05)
for name, builtin in (("max", max), ("min", min)):
    module_fn = getattr(mg, name)
    CASES += [
        Case(
            f"mg.{name}(Value, Value)",
            name,
            st.tuples(apart, st.none()),
            lambda v, c, f=module_fn: f(v[0], v[1]),
            lambda p, c, f=builtin: f(p[0], p[1]),
        ),
        Case(
            f"mg.{name}(Value, number)",
            name,
            st.tuples(st.tuples(real), number).filter(lambda d: abs(d[0][0] - d[1]) > 0.05),
            lambda v, c, f=module_fn: f(v[0], c),
            lambda p, c, f=builtin: f(p[0], c),
        ),
        Case(
            f"mg.{name}(number, Value)",
            name,
            st.tuples(st.tuples(real), number).filter(lambda d: abs(d[0][0] - d[1]) > 0.05),
            lambda v, c, f=module_fn: f(c, v[0]),
            lambda p, c, f=builtin: f(c, p[0]),
        ),
        # a tie on every input: half the gradient to each operand, which sums to 1
        Case(
            f"mg.{name}(x, x)",
            name,
            one(real),
            lambda v, c, f=module_fn: f(v[0], v[0]),
            lambda p, c: p[0],
        ),
        Case(
            f"mg.{name} of three",
            name,
            several(real, 3).filter(lambda d: spread(d[0]) > 0.05),
            lambda v, c, f=module_fn: f(v[0], v[1], v[2]),
            lambda p, c, f=builtin: f(p),
        ),
    ]
CASES += [
    Case(
        "mg.pow(Value, Value)",
        "**",
        two(st.floats(0.25, 3.0), st.floats(-3.0, 3.0)),
        lambda v, c: mg.pow(v[0], v[1]),
        lambda p, c: p[0] ** p[1],
    ),
    Case(
        "mg.pow(Value, number)",
        "**",
        one(positive, st.floats(-3.0, 3.0)),
        lambda v, c: mg.pow(v[0], c),
        lambda p, c: p[0] ** c,
    ),
    Case(
        "mg.pow(number, Value)",
        "r**",
        one(st.floats(-3.0, 3.0), st.floats(0.25, 4.0)),
        lambda v, c: mg.pow(c, v[0]),
        lambda p, c: c ** p[0],
    ),
]

# ---- n-ary: sum and dot --------------------------------------------------------------------


@st.composite
def sum_terms(draw: st.DrawFn) -> tuple[tuple[float, ...], list[Any]]:
    """Values and plain numbers in a random order; the layout marks Values with None."""
    point = tuple(draw(st.lists(real, min_size=1, max_size=6)))
    numbers = draw(st.lists(number, max_size=3))
    layout: list[Any] = [None] * len(point) + numbers
    return point, draw(st.permutations(layout))


def fill(layout: Sequence[Any], values: Sequence[Any]) -> list[Any]:
    """Replace the None slots of ``layout`` by ``values``, in order."""
    pending = iter(values)
    return [next(pending) if slot is None else slot for slot in layout]


@st.composite
def dot_layout(draw: st.DrawFn) -> tuple[tuple[float, ...], tuple[list[Any], list[Any]]]:
    """Weights and inputs where each slot is either a Value (None) or a plain number."""
    n = draw(st.integers(1, 4))
    weights = draw(st.lists(st.none() | number, min_size=n, max_size=n))
    inputs = draw(st.lists(st.none() | number, min_size=n, max_size=n))
    count = weights.count(None) + inputs.count(None)
    point = tuple(draw(st.lists(real, min_size=count, max_size=count)))
    return point, (weights, inputs)


def dot_of_layout(v: Sequence[Any], layout: tuple[list[Any], list[Any]]) -> Any:
    weights, inputs = layout
    filled = fill([*weights, *inputs], v)
    return mg.dot(filled[: len(weights)], filled[len(weights) :])


def dot_reference(p: Sequence[float], layout: tuple[list[Any], list[Any]]) -> float:
    weights, inputs = layout
    filled = fill([*weights, *inputs], p)
    return math.fsum(w * x for w, x in zip(filled[: len(weights)], filled[len(weights) :]))


def sized(n_values: Callable[[int], int], extra: Callable[[int], Any] | None = None) -> Any:
    """Inputs whose length depends on a drawn n (1..4)."""

    def for_n(n: int) -> Any:
        return st.tuples(
            st.tuples(*[real] * n_values(n)),
            extra(n) if extra else st.none(),
        )

    return st.integers(1, 4).flatmap(for_n)


def numbers(n: int) -> Any:
    return st.lists(number, min_size=n, max_size=n)


CASES += [
    Case(
        "sum of Values",
        "sum",
        st.tuples(st.lists(real, min_size=1, max_size=6).map(tuple), st.none()),
        lambda v, c: mg.sum(v),
        lambda p, c: math.fsum(p),
    ),
    Case(
        "sum of Values and numbers",
        "sum",
        sum_terms(),
        lambda v, c: mg.sum(fill(c, v)),
        lambda p, c: math.fsum(fill(c, p)),
    ),
    Case(
        "sum with a repeated Value",
        "sum",
        several(real, 2),
        lambda v, c: mg.sum([v[0], v[1], v[0], v[0]]),
        lambda p, c: 3 * p[0] + p[1],
    ),
    Case(
        "sum of products",
        "sum",
        several(real, 2),
        lambda v, c: mg.sum([v[0] * v[1], v[1] * v[1], v[0], 2.5]),
        lambda p, c: p[0] * p[1] + p[1] * p[1] + p[0] + 2.5,
    ),
    Case(
        "dot Values . Values",
        "dot",
        sized(lambda n: 2 * n),
        lambda v, c: mg.dot(v[: len(v) // 2], v[len(v) // 2 :]),
        lambda p, c: math.fsum(w * x for w, x in zip(p[: len(p) // 2], p[len(p) // 2 :])),
    ),
    Case(
        "dot Values . floats",
        "dot",
        sized(lambda n: n, numbers),
        lambda v, c: mg.dot(v, c),
        lambda p, c: math.fsum(w * x for w, x in zip(p, c)),
    ),
    Case(
        "dot floats . Values",
        "dot",
        sized(lambda n: n, numbers),
        lambda v, c: mg.dot(c, v),
        lambda p, c: math.fsum(w * x for w, x in zip(c, p)),
    ),
    Case(
        "dot mixed",
        "dot",
        dot_layout().filter(lambda d: len(d[0]) > 0),
        dot_of_layout,
        dot_reference,
    ),
    Case(
        "dot with repeated Values",
        "dot",
        several(real, 2),
        lambda v, c: mg.dot([v[0], v[1], v[0]], [v[1], 2.0, v[0]]),
        lambda p, c: p[0] * p[1] + 2.0 * p[1] + p[0] * p[0],
    ),
]

IDS = [case.name for case in CASES]
FEW = settings(max_examples=25, deadline=None)


def first_derivatives(case: Case, point: Sequence[float], extra: Any) -> list[float]:
    values = [Value(p) for p in point]
    return [float(g) for g in mg.gradients(case.build(values, extra), values)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@FEW
@given(data=st.data())
def test_forward_value_and_op_name(case: Case, data: st.DataObject) -> None:
    point, extra = data.draw(case.inputs)
    out = case.build([Value(p) for p in point], extra)
    assert isinstance(out, Value)
    assert out.op == case.op
    assert out.data == pytest.approx(case.ref(point, extra), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@FEW
@given(data=st.data())
def test_first_derivatives_match_finite_differences(case: Case, data: st.DataObject) -> None:
    point, extra = data.draw(case.inputs)
    values = [Value(p) for p in point]
    out = case.build(values, extra)
    out.backward()
    assert out.grad == 1.0
    scale = 1.0 + abs(out.data)
    for i, v in enumerate(values):
        numeric = partial(lambda *p: case.ref(p, extra), point, i)
        assert isinstance(v.grad, float)
        assert agree(v.grad, numeric, scale), (i, v.grad, numeric)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@FEW
@given(data=st.data())
def test_second_derivatives_match_finite_differences(case: Case, data: st.DataObject) -> None:
    point, extra = data.draw(case.inputs)
    values = [Value(p) for p in point]
    out = case.build(values, extra)
    out.backward(create_graph=True)
    firsts = first_derivatives(case, point, extra)
    for i, v in enumerate(values):
        assert isinstance(v.grad, Value)
        assert v.grad.data == pytest.approx(firsts[i], rel=1e-12, abs=1e-12)
    for i, v in enumerate(values):
        row = mg.gradients(v.grad, values)
        for j in range(len(values)):
            numeric = partial(lambda *p, i=i: first_derivatives(case, p, extra)[i], point, j)
            assert agree(float(row[j]), numeric, 1.0 + abs(firsts[i])), (i, j, row[j], numeric)
    if len(point) == 1:  # grad(grad(f)) gives the same second derivative
        f = lambda x: case.build([x], extra)  # noqa: E731
        assert mg.grad(f)(point[0]) == pytest.approx(firsts[0], rel=1e-12, abs=1e-12)
        second = mg.grad(mg.grad(f))(point[0])
        assert float(second) == pytest.approx(float(mg.gradients(values[0].grad, values)[0]))


# ---- hand-derived values -------------------------------------------------------------------


def derivatives(f: Callable[[Value], Value], x: float) -> tuple[float, float, float]:
    """f(x), f'(x) by backward(), f''(x) by backward(create_graph=True) then backward()."""
    v = Value(x)
    out = f(v)
    out.backward(create_graph=True)
    first = v.grad
    assert isinstance(first, Value)
    v.zero_grad()
    first.backward()
    return out.data, first.data, v.grad


@pytest.mark.parametrize(
    ("f", "x", "expected"),
    [
        (lambda x: x**3, 2.0, (8.0, 12.0, 12.0)),
        (lambda x: x * x * x, 2.0, (8.0, 12.0, 12.0)),
        (lambda x: 1 / x, 2.0, (0.5, -0.25, 0.25)),
        (lambda x: x.log(), 2.0, (math.log(2.0), 0.5, -0.25)),
        (lambda x: x.sqrt(), 4.0, (2.0, 0.25, -1.0 / 32.0)),
        (lambda x: x.exp(), 0.0, (1.0, 1.0, 1.0)),
        (lambda x: x.tanh(), 0.0, (0.0, 1.0, 0.0)),
        (lambda x: x.sigmoid(), 0.0, (0.5, 0.25, 0.0)),
        (lambda x: x.sin(), 0.0, (0.0, 1.0, 0.0)),
        (lambda x: x.cos(), 0.0, (1.0, 0.0, -1.0)),
        (lambda x: 2**x, 3.0, (8.0, 8.0 * math.log(2.0), 8.0 * math.log(2.0) ** 2)),
        (lambda x: x**x, 1.0, (1.0, 1.0, 2.0)),
        (lambda x: (x * x + 1.0).log(), 1.0, (math.log(2.0), 1.0, 0.0)),
        (lambda x: -x + 5 - x / 2, 1.0, (3.5, -1.5, 0.0)),
        (lambda x: mg.sum([x, x * x, 3]), 2.0, (9.0, 5.0, 2.0)),
        (lambda x: mg.dot([x, 2.0], [x, x]), 3.0, (15.0, 8.0, 2.0)),
        (lambda x: x.tan(), 0.0, (0.0, 1.0, 0.0)),
        (lambda x: x.tan(), math.pi / 4, (math.tan(math.pi / 4), 2.0, 4.0)),
        (lambda x: x.atan(), 1.0, (math.pi / 4, 0.5, -0.5)),
        (lambda x: x.softplus(), 0.0, (math.log(2.0), 0.5, 0.25)),
        (lambda x: mg.max(x, x * x), 2.0, (4.0, 4.0, 2.0)),
        (lambda x: mg.min(x, x * x), 2.0, (2.0, 1.0, 0.0)),
        (lambda x: mg.max(x * x, 1.0), 1.0, (1.0, 1.0, 1.0)),  # tie: half of 2x
        (lambda x: mg.pow(x, 3), 2.0, (8.0, 12.0, 12.0)),
    ],
)
def test_hand_derived_derivatives(
    f: Callable[[Value], Value], x: float, expected: tuple[float, float, float]
) -> None:
    assert derivatives(f, x) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_value_power_value_hand_derived() -> None:
    x, y = Value(2.0), Value(3.0)
    z = x**y
    z.backward()
    assert (z.data, x.grad, y.grad) == pytest.approx((8.0, 12.0, 8.0 * math.log(2.0)))


# ---- documented conventions at kinks and singularities ---------------------------------------


@pytest.mark.parametrize(
    ("f", "x", "slope"),
    [
        (lambda x: x.relu(), 0.0, 0.0),
        (lambda x: x.relu(), -1.0, 0.0),
        (lambda x: x.relu(), 1.0, 1.0),
        (lambda x: x.abs(), 0.0, 0.0),
        (lambda x: abs(x), -2.0, -1.0),
        (lambda x: x.sqrt(), 0.0, math.inf),
        (lambda x: x**0.5, 0.0, math.inf),
        (lambda x: x**0, 0.0, 0.0),
        (lambda x: x**1, 0.0, 1.0),
        (lambda x: x**2, 0.0, 0.0),
        (lambda x: x ** Value(0.5), 0.0, math.inf),
        (lambda x: x ** Value(2.0), 0.0, 0.0),
        (lambda x: x ** Value(1.0), 0.0, 1.0),
        (lambda x: mg.max(x, 0.0), 0.0, 0.5),
        (lambda x: mg.min(x, 0.0), 0.0, 0.5),
        (lambda x: mg.max(x, 0.0), 1.0, 1.0),
        (lambda x: mg.max(x, 0.0), -1.0, 0.0),
        (lambda x: mg.min(0.0, x), -1.0, 1.0),
        (lambda x: x.softplus(), 1000.0, 1.0),
        (lambda x: x.softplus(), -1000.0, 0.0),
        (lambda x: x.atan(), 1e200, 0.0),
    ],
)
def test_derivative_conventions(f: Callable[[Value], Value], x: float, slope: float) -> None:
    v = Value(x)
    f(v).backward()
    assert v.grad == slope


def test_zero_base_with_value_exponent_has_zero_slope_in_the_exponent() -> None:
    x, y = Value(0.0), Value(2.0)
    z = x**y
    z.backward()
    assert (z.data, x.grad, y.grad) == (0.0, 0.0, 0.0)
    w = Value(3.0)
    z = 0.0**w
    z.backward()
    assert (z.data, w.grad) == (0.0, 0.0)


def test_sigmoid_does_not_overflow_for_large_inputs() -> None:
    for x, expected in [(-1000.0, 0.0), (1000.0, 1.0)]:
        v = Value(x)
        y = v.sigmoid()
        y.backward()
        assert y.data == expected
        assert v.grad == 0.0


# ---- forms and structure ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name, _, _ in UNARY if name != "abs"])
@settings(max_examples=20, deadline=None)
@given(x=st.floats(0.1, 1.5))
def test_module_functions_give_floats_for_floats(name: str, x: float) -> None:
    function = getattr(mg, name)
    result = function(x)
    assert type(result) is float
    assert result == getattr(Value(x), name)().data
    as_int = function(2)
    assert type(as_int) is float


@pytest.mark.parametrize("name", [name for name, _, _ in UNARY])
def test_module_functions_give_values_for_values(name: str) -> None:
    x = Value(0.7)
    result = getattr(mg, name)(x)
    assert isinstance(result, Value)
    assert result.op == name
    assert result.parents == (x,)


@pytest.mark.parametrize(
    ("build", "op", "constant"),
    [
        (lambda x: x + 2, "+", 2.0),
        (lambda x: 2 + x, "+", 2.0),
        (lambda x: x - 2, "-", 2.0),
        (lambda x: 2 - x, "r-", 2.0),
        (lambda x: x * 2, "*", 2.0),
        (lambda x: 2 * x, "*", 2.0),
        (lambda x: x / 2, "/", 2.0),
        (lambda x: 2 / x, "r/", 2.0),
        (lambda x: x**2, "**", 2.0),
        (lambda x: 2**x, "r**", 2.0),
        (lambda x: mg.sum([x, 1, 2.5]), "sum", 3.5),
        (lambda x: mg.sum([x, x]), "sum", None),
        (lambda x: -x, "neg", None),
        (lambda x: x.exp(), "exp", None),
    ],
)
def test_plain_numbers_are_recorded_as_constants(
    build: Callable[[Value], Value], op: str, constant: float | None
) -> None:
    x = Value(1.5)
    out = build(x)
    assert out.op == op
    assert all(p is x for p in out.parents)
    assert out.constant == constant
    assert out.constant is None or type(out.constant) is float


def test_parents_keep_repeats_and_order() -> None:
    x, y = Value(1.0), Value(2.0)
    assert (x * x).parents == (x, x)
    assert (x / y).parents == (x, y)
    assert (y**x).parents == (y, x)
    assert mg.sum([y, 1.0, x, y]).parents == (y, x, y)
    assert mg.dot([x, y], [y, x]).parents == (x, y, y, x)
    assert mg.dot([x, 2.0], [3.0, y]).parents == (x, y)
    assert Value(3.0).parents == ()
    assert Value(3.0).op == ""
    assert +x is x


def test_dot_of_only_numbers_and_empty_dot() -> None:
    assert mg.dot([1.0, 2.0], [3.0, 4]).data == 11.0
    empty = mg.dot([], [])
    empty.backward()
    assert (empty.data, empty.parents) == (0.0, ())


def test_sum_is_exactly_rounded() -> None:
    terms = [Value(1e16), Value(1.0), Value(-1e16), 1.0]
    assert mg.sum(terms).data == 2.0


@pytest.mark.parametrize(
    ("weights", "inputs"),
    [
        ([1.5, -2.0], [3.0, 0.5]),  # Value * Value only
        ([1.5, -2.0], ["3.0", "0.5"]),  # Value * number only
        ([1.5, "2.0", "4.0", -0.5], [3.0, -1.0, "0.25", "1.0"]),  # mixed, with number * number
    ],
)
def test_dot_is_described_by_its_public_attributes(weights: list[Any], inputs: list[Any]) -> None:
    """A dot node's value follows from parents, coefficients and constant alone (no closure)."""

    def operand(x: Any) -> Any:
        return float(x) if isinstance(x, str) else Value(x)

    node = mg.dot([operand(w) for w in weights], [operand(x) for x in inputs])
    assert node.coefficients is not None
    k = (len(node.parents) - len(node.coefficients)) // 2
    rebuilt = sum(node.parents[i].data * node.parents[k + i].data for i in range(k))
    rebuilt += sum(c * p.data for c, p in zip(node.coefficients, node.parents[2 * k :]))
    rebuilt += node.constant or 0.0
    assert rebuilt == pytest.approx(node.data, rel=1e-15)
    assert Value(1.0).coefficients is None
    assert (Value(1.0) * 2).coefficients is None


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e3, 1e3, allow_nan=False), st.floats(-1e3, 1e3, allow_nan=False)),
        max_size=12,
    ),
    st.booleans(),
)
def test_the_unchecked_dot_builds_the_same_node_as_dot(
    pairs: list[tuple[float, float]], create_graph: bool
) -> None:
    graphs = []
    for build in (mg.dot, mg.engine.dot_of_values):
        ws = tuple(Value(w) for w, _ in pairs)
        xs = tuple(Value(x) for _, x in pairs)
        node = build(ws, xs)
        (node * node).backward(create_graph=create_graph)
        graphs.append((node, ws + xs))
    (checked, leaves), (unchecked, same_leaves) = graphs
    assert unchecked.data == checked.data
    assert (unchecked.op, unchecked.constant, unchecked.coefficients) == ("dot", None, ())
    assert [p.data for p in unchecked.parents] == [p.data for p in checked.parents]
    assert [unchecked.parents.index(p) for p in same_leaves] == [
        checked.parents.index(p) for p in leaves
    ]
    assert [float(p.grad) for p in same_leaves] == [float(p.grad) for p in leaves]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e3, 1e3, allow_nan=False), st.floats(-1e3, 1e3, allow_nan=False)),
        max_size=12,
    )
)
def test_the_unchecked_dot_of_numbers_builds_the_same_node_as_dot(
    pairs: list[tuple[float, float]],
) -> None:
    numbers = tuple(x for _, x in pairs)
    nodes = []
    for build in (mg.dot, mg.engine.dot_of_numbers):
        ws = tuple(Value(w) for w, _ in pairs)
        node = build(ws, numbers)
        node.backward()
        nodes.append((node, ws))
    (checked, ws), (unchecked, same_ws) = nodes
    assert unchecked.data == checked.data
    assert (unchecked.op, unchecked.constant) == ("dot", None)
    assert unchecked.coefficients == checked.coefficients == numbers
    assert [p.data for p in unchecked.parents] == [p.data for p in checked.parents]
    assert [w.grad for w in same_ws] == [w.grad for w in ws] == list(numbers)


@pytest.mark.parametrize("name", ["max", "min"])
@settings(max_examples=30, deadline=None)
@given(x=real, c=number)
def test_ties_split_the_gradient_in_halves_at_every_order(name: str, x: float, c: float) -> None:
    """At a tie each operand gets half the gradient; the second derivatives are those of
    the halves (max and min are linear on each side of the tie)."""
    function = getattr(mg, name)
    a, b = Value(x), Value(x)
    out = function(a * a, b * b)  # a tie between two different nodes, with curvature
    out.backward(create_graph=True)
    # half of 2x each (up to the rounding of 0.5 * x among subnormal floats)
    assert (a.grad.data, b.grad.data) == pytest.approx((x, x), rel=1e-15, abs=1e-320)
    assert mg.gradients(a.grad, [a, b]) == [1.0, 0.0]
    v = Value(float(c))
    tied = function(v, c)  # a Value tied with a plain number
    tied.backward()
    assert (tied.data, v.grad, tied.constant) == (float(c), 0.5, float(c))
    assert mg.grad(mg.grad(lambda t: function(t * t, t * t)))(x) == 2.0
