"""Writing your own operation: micrograd's way and microgradient's ``mg.operation``.

micrograd's lecture builds each operation as ``Value(data, (children...), 'op')``
plus an ``out._backward`` closure; that code must run unchanged. The
``mg.operation`` decorator defines an operation once (forward and local
derivatives side by side) so that it works in backward passes, recorded passes,
``gradcheck`` and drawings.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from finite_differences import agree, partial
from hypothesis import given, settings
from hypothesis import strategies as st

import microgradient as mg
from microgradient import Value
from microgradient.engine import BUILTIN_OPERATIONS, find_operation, local_derivatives

# ---- micrograd's way ------------------------------------------------------------------


def cube(self: Value) -> Value:
    """The lecture's exercise: an operation with its own backward step."""
    out = Value(self.data**3, (self,), "cube")

    def _backward() -> None:
        self.grad += 3 * self.data**2 * out.grad

    out._backward = _backward
    return out


def micrograd_mul(self: Value, other: Any) -> Value:
    """micrograd's own __mul__, as the lecture writes it."""
    other = other if isinstance(other, Value) else Value(other)
    out = Value(self.data * other.data, (self, other), "*")

    def _backward() -> None:
        self.grad += other.data * out.grad
        other.grad += self.data * out.grad

    out._backward = _backward
    return out


def micrograd_tanh(self: Value) -> Value:
    x = self.data
    t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
    out = Value(t, (self,), "tanh")

    def _backward() -> None:
        self.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


def test_micrograd_constructor_records_children_and_op() -> None:
    a, b = Value(2.0), Value(3.0)
    out = Value(6.0, _children=(a, b), _op="*")
    assert out.parents == (a, b)
    assert out.op == out._op == "*"
    assert out._prev == {a, b}
    assert Value(1.0, (a, a), "twice").parents == (a, a)  # repeats kept, like every node


@settings(max_examples=30, deadline=None)
@given(x=st.floats(-3.0, 3.0), y=st.floats(-3.0, 3.0))
def test_handmade_nodes_backpropagate_like_builtin_ones(x: float, y: float) -> None:
    a, b = Value(x), Value(y)
    handmade = micrograd_tanh(micrograd_mul(cube(a), b) + a)
    handmade.backward()
    c, d = Value(x), Value(y)
    builtin = (c**3 * d + c).tanh()
    builtin.backward()
    assert handmade.data == pytest.approx(builtin.data, rel=1e-12, abs=1e-12)
    assert (a.grad, b.grad) == pytest.approx((c.grad, d.grad), rel=1e-9, abs=1e-12)


def test_handmade_node_accumulates_and_zero_grad_resets() -> None:
    a = Value(2.0)
    y = cube(a)
    y.backward()
    y.backward()
    assert a.grad == 24.0
    y.zero_grad()
    y.backward()
    assert a.grad == 12.0


def test_handmade_step_runs_once_per_pass_even_when_the_node_is_shared() -> None:
    a = Value(2.0)
    c = cube(a)
    y = c * c + c  # c reached along three paths: its closure runs once with their sum
    y.backward()
    assert c.grad == 2 * 8.0 + 1
    assert a.grad == (2 * 8.0 + 1) * 12.0


def test_the_manual_step_is_the_assigned_closure() -> None:
    a = Value(2.0)
    y = cube(a)
    y.grad = 1.0
    y._backward()
    assert a.grad == 12.0


def test_a_node_without_a_closure_passes_nothing_on() -> None:
    a = Value(2.0)
    y = Value(5.0, (a,), "opaque")
    y.backward()
    assert (y.grad, a.grad) == (1.0, 0.0)


def test_create_graph_refuses_a_handmade_node_naming_it() -> None:
    a = Value(2.0)
    y = cube(a) + 1
    with pytest.raises(mg.OperationError, match=r"'cube'.*_backward closure.*mg\.operation"):
        y.backward(create_graph=True)
    with pytest.raises(mg.OperationError, match="'cube'"):
        mg.grad(lambda x: mg.grad(lambda z: cube(z))(x))(2.0)
    with pytest.raises(mg.OperationError, match="'opaque'"):
        Value(1.0, (a,), "opaque").backward(create_graph=True)


def test_handmade_nodes_have_measured_local_derivatives_for_drawings() -> None:
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    y = cube(a)
    y.backward()
    assert local_derivatives(y) == (12.0,)
    assert (a.grad, y.grad) == (12.0, 1.0)  # measuring restored every gradient
    assert local_derivatives(micrograd_mul(a, b)) == (-3.0, 2.0)
    assert local_derivatives(micrograd_mul(a, a)) == (4.0, 0.0)  # all at the first position
    assert local_derivatives(a) is None
    assert "cube" in mg.to_dot(y)
    frames = list(mg.backward_steps(cube(a) + a))
    assert frames[-1].gradient(a) == 13.0


def test_micrograd_constructor_refusals() -> None:
    with pytest.raises(mg.OperandTypeError, match=r"label='tax'"):
        Value(1.1, "tax")  # type: ignore[arg-type]
    with pytest.raises(mg.OperandTypeError, match="_children must be Values"):
        Value(1.0, (1.0,), "x")  # type: ignore[arg-type]
    with pytest.raises(mg.OperandTypeError, match="_backward"):
        Value(1.0)._backward = 3  # type: ignore[assignment]


def test_prev_is_assignable() -> None:
    a, b = Value(1.0), Value(2.0)
    out = Value(3.0)
    out._prev = {a}
    assert out.parents == (a,)
    out._prev = (a, b)
    assert out._prev == {a, b}


# ---- mg.operation -----------------------------------------------------------------------


@mg.operation(symbol="softplus+")
def my_softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@my_softplus.derivatives
def _(x: Any, out: Any) -> tuple[Any]:
    return (mg.sigmoid(x),)


@mg.operation(javascript={"forward": "Math.hypot(a, b)", "derivatives": ["a / out", "b / out"]})
def hypot(a: float, b: float) -> float:
    return math.hypot(a, b)


@hypot.derivatives
def _(a: Any, b: Any, out: Any) -> tuple[Any, Any]:
    return (a / out, b / out)


@pytest.fixture
def softplus_op() -> mg.Operation:
    return my_softplus


@pytest.fixture
def hypot_op() -> mg.Operation:
    return hypot


def test_operation_attributes(softplus_op: mg.Operation, hypot_op: mg.Operation) -> None:
    assert isinstance(softplus_op, mg.Operation)
    assert (softplus_op.name, softplus_op.symbol, softplus_op.arity) == (
        "my_softplus",
        "softplus+",
        1,
    )
    assert softplus_op.javascript is None
    assert softplus_op.forward(0.0) == math.log(2.0)
    assert softplus_op.derivatives(0.0, math.log(2.0)) == (0.5,)
    assert (hypot_op.name, hypot_op.symbol, hypot_op.arity) == ("hypot", "hypot", 2)
    assert hypot_op.javascript == {
        "forward": "Math.hypot(a, b)",
        "derivatives": ["a / out", "b / out"],
    }
    assert find_operation("my_softplus") is softplus_op
    assert find_operation("hypot") is hypot_op
    assert find_operation("exp") is None
    assert find_operation("no_such_operation") is None


def test_operation_node_layout(hypot_op: mg.Operation) -> None:
    x, y = Value(3.0), Value(4.0)
    out = hypot_op(x, y)
    assert isinstance(out, Value)
    assert (out.op, out.data, out.parents, out.constant) == ("hypot", 5.0, (x, y), None)
    mixed = hypot_op(x, 4)
    assert mixed.parents[0] is x
    assert mixed.parents[1].data == 4.0 and mixed.parents[1].op == ""
    numbers_only = hypot_op(3, 4.0)  # plain numbers become leaves of the node
    assert (numbers_only.op, numbers_only.data) == ("hypot", 5.0)
    assert [p.data for p in numbers_only.parents] == [3.0, 4.0]
    assert local_derivatives(out) == (0.6, 0.8)


@settings(max_examples=30, deadline=None)
@given(x=st.floats(-6.0, 6.0))
def test_operation_first_and_second_derivatives(x: float) -> None:
    softplus_op = my_softplus
    v = Value(x)
    out = softplus_op(v)
    out.backward(create_graph=True)
    sigmoid = 1.0 / (1.0 + math.exp(-x))
    assert v.grad.data == pytest.approx(sigmoid, rel=1e-12)
    second = mg.gradients(v.grad, [v])[0]
    assert second == pytest.approx(sigmoid * (1.0 - sigmoid), rel=1e-9)
    # and both agree with the built-in softplus
    assert mg.grad(mg.grad(softplus_op))(x) == pytest.approx(mg.grad(mg.grad(mg.softplus))(x))


@settings(max_examples=30, deadline=None)
@given(a=st.floats(0.5, 3.0), b=st.floats(-3.0, -0.5))
def test_two_operand_operation_against_finite_differences(a: float, b: float) -> None:
    hypot_op = hypot
    assert mg.gradcheck(hypot_op, a, b)
    assert mg.gradcheck(lambda x, y: hypot_op(x * y, y.exp()), a, b)
    hess = mg.hessian(hypot_op)(a, b)
    for i in range(2):
        for j in range(2):
            numeric = partial(lambda p, q, i=i: mg.grad(hypot_op, argnums=i)(p, q), [a, b], j)
            assert agree(hess[i][j], numeric, 1.0), (i, j, hess[i][j], numeric)


def test_gradcheck_catches_a_wrong_derivative() -> None:
    @mg.operation
    def wrong_square(x: float) -> float:
        return x * x

    @wrong_square.derivatives
    def _(x: Any, out: Any) -> tuple[Any]:
        return (x,)  # should be 2 * x

    with pytest.raises(mg.GradcheckError, match="mismatch"):
        mg.gradcheck(wrong_square, 1.5)


def test_operation_is_drawn_with_its_symbol(softplus_op: mg.Operation) -> None:
    x = Value(0.5, label="x")
    y = softplus_op(x)
    y.backward()
    assert find_operation(y.op) is softplus_op
    svg = mg.to_svg(y)
    assert "softplus+" in svg or "my_softplus" in svg


def test_operation_refusals() -> None:
    for name in sorted(BUILTIN_OPERATIONS):
        with pytest.raises(mg.OperationError, match="built-in"):
            mg.operation(name=name)(lambda x: x)
    with pytest.raises(mg.OperationError, match="identifier"):
        mg.operation(name="two words")(lambda x: x)
    with pytest.raises(mg.OperationError, match="fixed number"):
        mg.operation(name="varargs")(lambda *xs: 0.0)
    with pytest.raises(mg.OperationError, match="javascript"):
        mg.operation(name="half", javascript={"forward": "a"})(lambda a: a)

    @mg.operation
    def no_derivatives(x: float) -> float:
        return 2.0 * x

    with pytest.raises(mg.OperationError, match=r"@no_derivatives\.derivatives"):
        no_derivatives(Value(1.0))
    with mg.no_grad():
        assert no_derivatives(Value(1.0)).data == 2.0
    with pytest.raises(mg.OperandTypeError, match="expected 1 operand"):
        no_derivatives(Value(1.0), 2.0)

    @mg.operation
    def miscounted(x: float) -> float:
        return x

    @miscounted.derivatives
    def _(x: Any, out: Any) -> tuple[Any, Any]:
        return (1.0, 2.0)

    with pytest.raises(mg.OperationError, match="2 value"):
        miscounted(Value(1.0)).backward()


def test_forward_errors_become_microgradient_errors() -> None:
    @mg.operation
    def my_log(x: float) -> float:
        return math.log(x)

    @my_log.derivatives
    def _(x: Any, out: Any) -> tuple[Any]:
        return (1 / x,)

    with pytest.raises(mg.DomainError, match=r"my_log\(-1\.0\)"):
        my_log(Value(-1.0))

    @mg.operation
    def my_exp(x: float) -> float:
        return math.exp(x)

    with pytest.raises(mg.FloatOverflowError, match="my_exp"):
        my_exp(Value(1000.0))

    @mg.operation
    def my_square(x: float) -> float:
        return x * x

    @my_square.derivatives
    def _(x: Any, out: Any) -> tuple[Any]:
        return (math.sqrt(x) * 0.0 + 2 * x,)  # math on floats: fails below 0

    with pytest.raises(mg.DomainError, match=r"the derivatives of my_square\(-2\.0, 4\.0\)"):
        my_square(Value(-2.0)).backward()


def test_redefining_an_operation_replaces_it() -> None:
    @mg.operation(name="twice")
    def first(x: float) -> float:
        return 2 * x

    @mg.operation(name="twice")
    def second(x: float) -> float:
        return 2.0 * x

    assert find_operation("twice") is second
