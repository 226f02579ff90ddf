"""Correct at the edges: the one rule for overflow and infinities, and singular points.

The rule (module docstring of ``microgradient.engine``): results follow IEEE 754
doubles, so overflow is ``inf`` rather than an error; arguments outside an
operation's domain raise a microgradient error rather than giving nan; and in
the chain rule a zero slope times an infinite one is zero. Each case of the
issue is tested with its family: every operation at magnitudes near the edges
of the float range, compared with NumPy's IEEE arithmetic.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from finite_differences import agree, partial
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import microgradient as mg
from microgradient import Value

# ---- second derivatives of x ** y at x = 0 ----------------------------------------------


def test_hessian_of_power_at_zero_base_with_a_value_exponent() -> None:
    assert mg.hessian(lambda x, y: x**y)(0.0, 2.0) == [[2.0, 0.0], [0.0, 0.0]]
    assert mg.hessian(lambda x: x**2)(0.0) == [[2.0]]


def limit_at_zero(coefficient: float, power: float) -> float:
    """coefficient * x ** power as x -> 0+."""
    if coefficient == 0.0 or power > 0.0:
        return 0.0
    return coefficient if power == 0.0 else math.copysign(math.inf, coefficient)


@pytest.mark.parametrize("y", [1.5, 2.0, 2.5, 3.0, 4.0, 7.0])
def test_power_at_zero_base_matches_the_constant_exponent_to_the_third_order(y: float) -> None:
    """x ** Value(y) and x ** y are the same function of x: every derivative agrees at 0."""

    def with_value(x: Any) -> Any:
        return x ** Value(y) if isinstance(x, Value) else x**y

    def with_number(x: Any) -> Any:
        return x**y

    for order in range(1, 4):
        f, g = with_value, with_number
        for _ in range(order):
            f, g = mg.grad(f), mg.grad(g)
        exact = limit_at_zero(math.prod(y - k for k in range(order)), y - order)
        assert float(f(0.0)) == float(g(0.0)) == pytest.approx(exact), order


@settings(max_examples=40, deadline=None)
@given(x=st.floats(0.0, 1.0), y=st.floats(2.0, 4.0))
def test_hessian_of_power_near_zero_base_against_finite_differences(x: float, y: float) -> None:
    hess = mg.hessian(lambda a, b: a**b)(x, y)
    assert hess[0][1] == pytest.approx(hess[1][0], rel=1e-9, abs=1e-12)
    # the x-derivative of d/dx (x ** y) = y * x ** (y - 1), exact even at x = 0
    assert hess[0][0] == pytest.approx(y * (y - 1.0) * x ** (y - 2.0), rel=1e-9, abs=1e-12)
    if x > 0.01:
        point = [x, y]
        for i in range(2):
            for j in range(2):
                numeric = partial(lambda a, b, i=i: mg.grad(lambda p, q: p**q, i)(a, b), point, j)
                assert agree(hess[i][j], numeric, 1.0 + abs(hess[i][j]), rel=1e-5)


@pytest.mark.parametrize("point", [(0.0, 0.0), (0.5, 0.0), (-0.5, 0.0), (0.3, 1.0)])
def test_power_with_an_exponent_at_zero_keeps_its_second_derivatives(
    point: tuple[float, float],
) -> None:
    """(1 + a) ** b at b = 0: the base's slope b * (1 + a) ** (b - 1) depends on b."""
    f = lambda a, b: (a + 1.0) ** b  # noqa: E731
    hess = mg.hessian(f)(*point)
    for i in range(2):
        for j in range(2):
            numeric = partial(lambda a, b, i=i: mg.grad(f, i)(a, b), list(point), j)
            assert agree(hess[i][j], numeric, 1.0), (i, j, hess[i][j], numeric)
    if point[1] == 0.0:  # d/db (b * (1 + a) ** (b - 1)) at b = 0
        assert hess[0][1] == pytest.approx(1.0 / (1.0 + point[0]), rel=1e-12)


@pytest.mark.parametrize(
    ("f", "second"),
    [
        (mg.sqrt, -math.inf),
        (lambda x: x**0.5, -math.inf),
        (lambda x: x**0.25, -math.inf),
        (lambda x: x**1.5, math.inf),
        (lambda x: x ** Value(1.5), math.inf),
        (lambda x: x**3, 0.0),
    ],
)
def test_singular_second_derivatives_at_zero_are_the_limits(
    f: Callable[[Any], Any], second: float
) -> None:
    """Special cases of a rule stay functions of the operands, so they differentiate again."""
    assert mg.grad(mg.grad(f))(0.0) == second


# ---- plain and recorded passes give the same numbers, never an unannounced nan ------------

KINKED: list[tuple[str, Callable[[Value], Value]]] = [
    ("relu", lambda v: v.relu()),
    ("abs", lambda v: v.abs()),
    ("sqrt of relu", lambda v: v.relu().sqrt()),
    ("sqrt of abs", lambda v: v.abs().sqrt()),
    ("max with 0", lambda v: mg.max(v, 0.0)),
    ("min with 0", lambda v: mg.min(v, 0.0)),
    ("sqrt of max", lambda v: mg.max(v, 0.0).sqrt()),
    ("power 0.5 of relu", lambda v: v.relu() ** 0.5),
    ("times 0", lambda v: v * 0.0),
    ("tanh", lambda v: v.tanh()),
    ("square", lambda v: v * v),
    ("max of self and square", lambda v: mg.max(v, v * v)),
]


def _apply(chain: list[tuple[str, Callable[[Value], Value]]], v: Value) -> Value:
    """``v`` through each operation of ``chain`` in turn."""
    for _, op in chain:
        v = op(v)
    return v


@settings(max_examples=150, deadline=None)
@given(
    chain=st.lists(st.sampled_from(KINKED), min_size=1, max_size=4),
    x=st.sampled_from([0.0, -0.0, 1.0, -1.0]) | st.floats(-2.0, 2.0),
)
def test_plain_and_recorded_passes_agree_without_nan(
    chain: list[tuple[str, Callable[[Value], Value]]], x: float
) -> None:
    plain = Value(x)
    _apply(chain, plain).backward()
    recorded = Value(x)
    _apply(chain, recorded).backward(create_graph=True)
    assert isinstance(recorded.grad, Value)
    assert not math.isnan(plain.grad), [name for name, _ in chain]
    assert recorded.grad.data == plain.grad, [name for name, _ in chain]
    # the recorded derivative can be differentiated again without an error
    mg.gradients(recorded.grad, [recorded])


@settings(max_examples=60, deadline=None)
@given(
    chain=st.lists(st.sampled_from(KINKED), min_size=1, max_size=4),
    x=st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 5e-324]),
)
def test_plain_and_recorded_passes_agree_at_infinities(
    chain: list[tuple[str, Callable[[Value], Value]]], x: float
) -> None:
    plain, recorded = Value(x), Value(x)
    _apply(chain, plain).backward()
    _apply(chain, recorded).backward(create_graph=True)
    assert recorded.grad.data == plain.grad or (
        math.isnan(recorded.grad.data) and math.isnan(plain.grad)
    ), [name for name, _ in chain]


@pytest.mark.parametrize(
    ("f", "slope"),
    [
        (lambda x: x.sqrt().relu(), 0.0),
        (lambda x: x.relu().sqrt(), 0.0),
        (lambda x: x.sqrt() * 0.0, 0.0),
        (lambda x: x.sqrt(), math.inf),
    ],
)
def test_the_issue_cases_at_zero(f: Callable[[Value], Value], slope: float) -> None:
    for create_graph in (False, True):
        x = Value(0.0)
        f(x).backward(create_graph=create_graph)
        assert float(x.grad) == slope


# ---- functional transforms inside no_grad --------------------------------------------------


def test_functional_transforms_inside_no_grad_compute_the_derivative() -> None:
    f = lambda x: x**3  # noqa: E731
    with mg.no_grad():
        assert mg.grad(f)(2.0) == 12.0
        assert mg.value_and_grad(f)(2.0) == (8.0, 12.0)
        assert mg.grad(mg.grad(f))(2.0) == 12.0
        assert mg.grad(lambda x, y: x * y, argnums=(0, 1))(2.0, 5.0) == (5.0, 2.0)
        assert mg.hessian(lambda x, y: x * x * y)(1.0, 2.0) == [[4.0, 2.0], [2.0, 0.0]]
        assert mg.gradcheck(lambda x: x.tanh(), 0.3)
        assert not mg.is_recording()
    x = Value(3.0)
    y = x**3
    with mg.no_grad():
        y.backward(create_graph=True)
    assert x.grad.data == 27.0
    assert mg.gradients(x.grad, [x]) == [18.0]


def test_gradients_of_an_output_computed_inside_no_grad_is_refused() -> None:
    x = Value(2.0)
    with mg.no_grad():
        y = x * x
        with pytest.raises(mg.OperandTypeError, match="no_grad"):
            mg.gradients(y, [x])


@pytest.mark.parametrize("argnums", [True, False, 1.0, "0", (0, True), [0.0], None])
def test_argnums_must_be_ints(argnums: Any) -> None:
    with pytest.raises(mg.OperandTypeError, match="argnums"):
        mg.grad(lambda x, y: x * y, argnums=argnums)(1.0, 2.0)
    with pytest.raises(mg.OperandTypeError, match="argnums"):
        mg.value_and_grad(lambda x, y: x * y, argnums=argnums)(1.0, 2.0)


# ---- one rule for overflow and infinities ---------------------------------------------------

BIG = 1e308


def test_the_issue_overflow_cases() -> None:
    assert (Value(BIG) + Value(BIG)).data == math.inf
    assert mg.sum([Value(BIG), Value(BIG)]).data == math.inf
    assert mg.dot([Value(BIG), Value(BIG)], [Value(1.0), Value(1.0)]).data == math.inf
    assert mg.dot([Value(BIG), Value(BIG)], [1.0, 1.0]).data == math.inf
    assert mg.nn.mse([Value(1e200), Value(-1e200)], [0.0, 0.0]).data == math.inf
    assert Value(10**400).data == math.inf
    assert Value(-(10**400)).data == -math.inf
    assert (Value(1.0) + 10**400).data == math.inf
    assert Value(math.inf).exp().data == Value(710.0).exp().data == math.inf
    assert mg.exp(710.0) == math.inf
    for name in ("sin", "cos", "tan"):
        for x in (math.inf, -math.inf):
            with pytest.raises(mg.DomainError, match=f"{name}: .*inf"):
                getattr(Value(x), name)()


def test_a_sum_that_overflows_on_the_way_but_not_at_the_end_is_exact() -> None:
    terms = [Value(BIG), Value(BIG), Value(-BIG), 1.0]
    assert mg.sum(terms).data == BIG + 1.0
    assert mg.dot(terms, [1.0, 1.0, 1.0, Value(1.0)]).data == BIG
    assert math.isnan(mg.sum([Value(math.inf), Value(-math.inf)]).data)  # as inf - inf


def test_power_at_the_smallest_float_with_exponent_zero() -> None:
    x, y = Value(5e-324), Value(0.0)
    z = x**y
    z.backward()
    assert (z.data, x.grad, y.grad) == (1.0, 0.0, math.log(5e-324))


def test_reciprocal_by_power_and_by_division_agree() -> None:
    for x0 in (1e-300, -1e-300, 5e-324, 1e300):
        a, b = Value(x0), Value(x0)
        p, q = a**-1, 1 / b
        p.backward()
        q.backward()
        assert p.data == q.data
        assert a.grad == b.grad


# every operation at magnitudes near the edges of the float range, against NumPy's IEEE
# arithmetic; the engine may refuse (a microgradient error) but never raise anything else

edge = st.one_of(
    st.floats(1e300, 1.7976931348623157e308),
    st.floats(-1.7976931348623157e308, -1e300),
    st.floats(5e-324, 1e-300),
    st.floats(-1e-300, -5e-324),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 709.78, 710.0, -745.2, math.inf, -math.inf]),
    st.floats(-800.0, 800.0),
)


def np_softplus(x: float) -> float:
    return float(np.logaddexp(0.0, x))


def np_sigmoid(x: float) -> float:
    return float(np.exp(-np.logaddexp(0.0, -x)))


UNARY_EDGES: list[tuple[str, Callable[[float], float]]] = [
    ("exp", np.exp),
    ("log", np.log),
    ("sqrt", np.sqrt),
    ("tanh", np.tanh),
    ("sigmoid", np_sigmoid),
    ("softplus", np_softplus),
    ("relu", lambda x: max(x, 0.0)),
    ("sin", np.sin),
    ("cos", np.cos),
    ("tan", np.tan),
    ("atan", np.arctan),
    ("abs", np.abs),
]
BINARY_EDGES: list[tuple[str, Callable[[Any, Any], Any], Callable[[float, float], float]]] = [
    ("+", operator.add, np.add),
    ("-", operator.sub, np.subtract),
    ("*", operator.mul, np.multiply),
    ("/", operator.truediv, np.divide),
    ("**", operator.pow, np.power),
    ("max", mg.max, np.maximum),
    ("min", mg.min, np.minimum),
]


def same_float(ours: float, reference: float, rel: float = 1e-12) -> bool:
    if math.isnan(reference) or math.isinf(reference):
        return ours == reference or (math.isnan(ours) and math.isnan(reference))
    return ours == pytest.approx(reference, rel=rel, abs=1e-300)


def check_derivatives(build: Callable[[], tuple[Value, list[Value]]]) -> None:
    """Plain and recorded first derivatives agree; finite inputs never give nan silently."""
    out, leaves = build()
    out.backward()
    plain = [leaf.grad for leaf in leaves]
    out, leaves = build()
    out.backward(create_graph=True)
    recorded = [leaf.grad.data for leaf in leaves]
    for p, r in zip(plain, recorded):
        assert p == r or (math.isnan(p) and math.isnan(r)), (plain, recorded)
    if all(math.isfinite(leaf.data) for leaf in leaves):
        assert not any(math.isnan(p) for p in plain), plain
    for leaf in leaves:  # second derivatives: numbers or microgradient errors, nothing else
        with contextlib.suppress(mg.MicrogradientError):
            mg.gradients(leaf.grad, leaves)


@pytest.mark.parametrize(("name", "reference"), UNARY_EDGES, ids=[n for n, _ in UNARY_EDGES])
@settings(max_examples=60, deadline=None)
@given(x=edge)
def test_unary_operations_at_the_edges(
    name: str, reference: Callable[[float], float], x: float
) -> None:
    try:
        out = getattr(Value(x), name)()
    except mg.MicrogradientError:
        with np.errstate(all="ignore"):
            expected = float(reference(x))
        # refused exactly where IEEE has no real answer or log/sqrt have no domain
        assert math.isnan(expected) or (name == "log" and x == 0.0) or math.isinf(x)
        return
    with np.errstate(all="ignore"):
        expected = float(reference(x))
    assert same_float(out.data, expected, rel=1e-12 if name != "sigmoid" else 1e-9), (x, out)
    assert mg.engine.find_operation(name) is None

    def build() -> tuple[Value, list[Value]]:
        v = Value(x)
        return getattr(v, name)(), [v]

    check_derivatives(build)


@pytest.mark.parametrize(
    ("name", "apply", "reference"), BINARY_EDGES, ids=[n for n, _, _ in BINARY_EDGES]
)
@settings(max_examples=60, deadline=None)
@given(x=edge, y=edge, form=st.sampled_from(["Value, Value", "Value, number", "number, Value"]))
def test_binary_operations_at_the_edges(
    name: str,
    apply: Callable[[Any, Any], Any],
    reference: Callable[[float, float], float],
    x: float,
    y: float,
    form: str,
) -> None:
    def build() -> tuple[Value, list[Value]]:
        a, b = Value(x), Value(y)
        if form == "Value, Value":
            return apply(a, b), [a, b]
        if form == "Value, number":
            return apply(a, y), [a]
        return apply(x, b), [b]

    try:
        out, _ = build()
    except mg.MicrogradientError:
        with np.errstate(all="ignore"):
            expected = float(reference(x, y))
        # refused: division by zero, zero to a negative power, a negative base to a power
        # that is not an integer (or, with a Value exponent, any power of a negative base)
        assert name in ("/", "**")
        assert y == 0.0 or x <= 0.0 or math.isnan(expected) or math.isinf(expected)
        return
    with np.errstate(all="ignore"):
        expected = float(reference(x, y))
    assume(not (name in ("max", "min") and math.isnan(expected)))
    assert same_float(out.data, expected), (x, y, out)
    check_derivatives(build)


def scaled_fsum(terms: list[float]) -> float:
    """The exact sum rounded once, computed at a scale where no partial sum overflows."""
    return math.fsum([t * 2.0**-64 for t in terms]) * 2.0**64


@settings(max_examples=60, deadline=None)
@given(terms=st.lists(edge, min_size=1, max_size=5), scale=edge)
def test_sum_and_dot_at_the_edges(terms: list[float], scale: float) -> None:
    values = [Value(t) for t in terms]
    with np.errstate(all="ignore"):
        exact = scaled_fsum([t for t in terms if math.isfinite(t)])
        infinities = {t for t in terms if math.isinf(t)}
        expected = (
            math.nan
            if len(infinities) == 2 or any(math.isnan(t) for t in terms)
            else next(iter(infinities))
            if infinities
            else exact
        )
    assert same_float(mg.sum(values).data, expected, rel=1e-9)
    check_derivatives(lambda: (lambda vs: (mg.sum(vs), vs))([Value(t) for t in terms]))
    out = mg.dot(values, [scale] * len(values))
    with np.errstate(all="ignore"):
        products = np.array(terms) * scale
    assert isinstance(out.data, float)
    if all(math.isfinite(p) for p in products):
        assert same_float(out.data, scaled_fsum(products.tolist()), rel=1e-9)
    check_derivatives(
        lambda: (lambda vs: (mg.dot(vs, [scale] * len(vs)), vs))([Value(t) for t in terms])
    )
