"""Traced programs against the eager engine: values, gradients, errors, listings, source."""

from __future__ import annotations

import math
import re
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from program_graphs import cube, eager, gate, leaf_values, recipes, same

import microgradient as mg
from microgradient import TracingError, Value
from microgradient.program import COMPILE_ON_FIRST_RUN, STRAIGHT_LINE_LIMIT, Program

SETTINGS = settings(max_examples=150, deadline=None)


def assert_agrees(program: Program, leaves: list[Value], root: Value, feed: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    result = program.run(feed)
    assert same(result.value, root.data)
    for leaf in leaves:
        grad = result.grads.get(leaf, 0.0)  # a leaf outside the graph is not an input
        assert same(grad, leaf.grad), (leaf.label, grad, leaf.grad)


@SETTINGS
@given(recipes(), st.lists(leaf_values, min_size=3, max_size=3))
def test_program_matches_eager_where_traced(recipe, point) -> None:  # type: ignore[no-untyped-def]
    made = eager(recipe, point)
    if made is None:
        return
    leaves, root, _, error = made
    before = [(leaf.data, leaf.grad) for leaf in leaves]
    if error is not None:
        with pytest.raises(type(error)):
            mg.trace(root).run()
        return
    assert_agrees(mg.trace(root), leaves, root)
    assert [(leaf.data, leaf.grad) for leaf in leaves] == before  # run changes no Value


@SETTINGS
@given(
    recipes(),
    st.lists(leaf_values, min_size=3, max_size=3),
    st.lists(leaf_values, min_size=3, max_size=3),
)
def test_program_matches_eager_at_other_points(recipe, traced_at, point) -> None:  # type: ignore[no-untyped-def]
    made = eager(recipe, traced_at)
    if made is None:
        return
    leaves, root, built, _ = made
    program = mg.trace(root)
    feed = {leaf: x for leaf, x in zip(leaves, point) if leaf in program.inputs}
    errors: set[type[Exception]] = set()
    try:
        reference = eager(built, point, errors)
    except mg.MicrogradientError:
        # several steps may be out of their domain: the program stops at one of them
        with pytest.raises(mg.MicrogradientError) as raised:
            program.run(feed)
        assert type(raised.value) in errors
        return
    assert reference is not None
    ref_leaves, ref_root, _, backward_error = reference
    if backward_error is not None:
        with pytest.raises(type(backward_error)):
            program.run(feed)
        return
    result = program.run(feed)
    assert same(result.value, ref_root.data)
    for leaf, ref in zip(leaves, ref_leaves):
        assert same(result.grads.get(leaf, 0.0), ref.grad)


def replay_with_registers(program: Program, numbers: list[float], registers: bool):  # type: ignore[no-untyped-def]
    """The straight-line replay of ``program``, generated with or without gradient registers."""
    from microgradient import program as module

    with mock.patch.object(module, "GRADIENT_REGISTERS_PAST", 0 if registers else 10**9):
        fresh = Program(
            program.inputs,
            program.input_slots,
            program.columns,
            program.labels,
            program.output,
            program.operations,
        )
        assert ("_g0 = gradient" in fresh.source) == registers
        return fresh._replay(numbers, 1.0)


def same_floats(x: tuple[float, ...], y: tuple[float, ...]) -> bool:
    return len(x) == len(y) and all(a == b or (a != a and b != b) for a, b in zip(x, y))


@SETTINGS
@given(recipes(), st.lists(leaf_values, min_size=3, max_size=3))
def test_gradient_registers_compute_exactly_what_named_gradients_do(recipe, point) -> None:  # type: ignore[no-untyped-def]
    made = eager(recipe, point)
    if made is None or made[3] is not None:
        return
    program = mg.trace(made[1])
    numbers = [leaf.data for leaf in program.inputs]
    value, grads = replay_with_registers(program, numbers, registers=True)
    named_value, named_grads = replay_with_registers(program, numbers, registers=False)
    assert same_floats((value, *grads), (named_value, *named_grads))


def test_a_large_program_keeps_its_gradients_in_registers() -> None:
    model = mg.nn.MLP(3, [8, 8, 1], activation="relu", seed=1)
    xs = [[Value(float(i + j) / 7 - 1.0) for j in range(3)] for i in range(6)]
    root = mg.nn.hinge([model(x) for x in xs], [1, -1, 1, -1, 1, -1])
    root.backward()
    program = mg.trace(root)
    assert "_g0 = gradient" in program.source
    code = program._replay.__code__  # type: ignore[attr-defined]
    assert code.co_varnames.index("_g0") < 256  # declared before everything else
    assert_agrees(program, model.parameters(), root)
    small = mg.trace(Value(2.0, label="x").tanh())
    assert "_g" not in small.source


def test_a_register_is_reused_only_after_its_gradient_is_passed_on() -> None:
    a, b = Value(2.0), Value(3.0)
    program = mg.trace((a * b + a).tanh() * b)  # b's gradient has two parts, far apart
    value, grads = replay_with_registers(program, [2.0, 3.0], registers=True)
    named_value, named_grads = replay_with_registers(program, [2.0, 3.0], registers=False)
    assert same_floats((value, *grads), (named_value, *named_grads))


@settings(max_examples=40, deadline=None)
@given(recipes(max_steps=6), st.lists(leaf_values, min_size=3, max_size=3))
def test_loop_kernels_match_straight_line(recipe, point) -> None:  # type: ignore[no-untyped-def]
    made = eager(recipe, point)
    if made is None:
        return
    _, root, _, error = made
    if error is not None:
        return
    from microgradient import kernels

    program = mg.trace(root)
    replay = kernels.compile_kernels(program)
    value, grads = replay([leaf.data for leaf in program.inputs], 1.0)
    assert same(value, root.data)
    for leaf, g in zip(program.inputs, grads):
        assert same(g, leaf.grad)


def test_listing_and_source_read_like_the_graph() -> None:
    w, x = Value(2.0, label="w"), Value(3.0, label="x")
    h = (w * x).tanh()
    program = mg.trace(h)
    assert str(program) == "program(w, x):\n  h2 = w * x\n  h3 = tanh(h2)\n  return h3"
    assert "    h2 = w * x" in program.source
    assert "    grad_h2 = grad_h3 * (1.0 - h3 * h3)" in program.source
    assert "    grad_w = grad_h2 * x" in program.source


def test_division_backward_line_uses_the_result() -> None:
    a, b = Value(1.0, label="a"), Value(2.0, label="b")
    program = mg.trace(a / b)
    assert "grad_b = grad_h2 * (-h2 / b)" in program.source


def test_slots_are_positions_in_topological_order() -> None:
    x = Value(1.0, label="x")
    y = Value(2.0)
    root = mg.sum([x * y, x.exp(), y])
    program = mg.trace(root)
    order = mg.topological_order(root)
    assert program.output == len(order) - 1
    assert [order[s] for s in program.input_slots] == list(program.inputs)
    for instruction in program.instructions:
        node = order[instruction.slot]
        assert instruction.op == node.op
        assert instruction.args == tuple(order.index(p) for p in node.parents)
        assert instruction.constant == node.constant
    assert program.labels == tuple(n.label for n in order)
    assert len(set(program.names)) == len(order)


def test_names_are_safe_identifiers_even_for_hostile_labels() -> None:
    labels = ["x", "x", "grad_x", "import os", "lambda", "1st", "_h", "", "w₁", "é"]
    leaves = [Value(float(i), label=label) for i, label in enumerate(labels)]
    root = mg.sum(leaves)
    program = mg.trace(root)
    names = program.names
    assert len(set(names)) == len(names)
    for name in names:
        assert name.isidentifier() and name.isascii() and not name.startswith("_")
        assert f"grad_{name}" not in names
    assert "import os" not in program.source
    assert names[program.input_slots[8]] == "w1"
    result = program.run()
    assert result.value == sum(range(len(labels)))


def test_feed_by_label_and_unknown_keys() -> None:
    x, y = Value(1.0, label="x"), Value(2.0, label="y")
    program = mg.trace(x * y + 3.0)
    assert program.run({"x": 5.0}).value == 13.0
    with pytest.raises(TracingError, match="no input is labelled 'z'"):
        program.run({"z": 1.0})
    with pytest.raises(TracingError, match="not an input"):
        program.run({Value(1.0): 2.0})


def test_write_gradients_then_optimiser_step() -> None:
    w = Value(1.0, label="w")
    x = Value(2.0, label="x")
    loss = (w * x - 1.0) ** 2
    program = mg.trace(loss)
    optimiser = mg.optim.SGD([w], lr=0.1)
    w.grad = 0.0
    program.run().accumulate_grads()
    assert w.grad == 2.0 * (2.0 - 1.0) * 2.0
    optimiser.step()
    assert w.data == pytest.approx(1.0 - 0.1 * 4.0)
    assert program.run().value == pytest.approx((0.6 * 2.0 - 1.0) ** 2)  # reads the new .data


@pytest.mark.parametrize("name", ["cube3", "cube", "+", ""])
def test_micrograd_style_nodes_are_refused(name: str) -> None:
    a = Value(2.0)
    out = Value(8.0, (a,), name)

    def _backward() -> None:
        a.grad += 12.0 * out.grad

    out._backward = _backward
    with pytest.raises(TracingError, match=re.escape(repr(name)) if name else "no operation"):
        mg.trace(out + 1.0)


def test_registered_operations_are_traced() -> None:
    x, y = Value(0.5, label="x"), Value(-1.0, label="y")
    root = gate(cube(x), y) + cube(y)
    root.backward()
    program = mg.trace(root)
    assert "cube(x)" in str(program) and "gate(" in str(program)
    result = program.run()
    assert same(result.value, root.data)
    assert same(result.grads[x], x.grad) and same(result.grads[y], y.grad)
    batch = program.run({x: [0.5, 1.0], y: np.array([-1.0, 2.0])})
    assert same(float(batch.value[0]), root.data)
    assert same(float(batch.grads[x][0]), x.grad)


@pytest.mark.parametrize(
    ("make", "bad", "error"),
    [
        (lambda x: x.log(), 0.0, mg.DomainError),
        (lambda x: x.sqrt(), -1.0, mg.DomainError),
        (lambda x: 1.0 / x, 0.0, mg.DivisionByZeroError),
        (lambda x: x / (x - 1.0), 1.0, mg.DivisionByZeroError),
        (lambda x: x**0.5, -4.0, mg.DomainError),
        (lambda x: x**-1.0, 0.0, mg.DivisionByZeroError),
        (lambda x: x.sin(), math.inf, mg.DomainError),
        (lambda x: x**x, -1.0, mg.DomainError),
        (lambda x: 0.0**x, 0.0, mg.DivisionByZeroError),
    ],
)
def test_domain_errors_name_the_operation_and_value(make, bad, error) -> None:  # type: ignore[no-untyped-def]
    x = Value(2.0, label="x")
    program = mg.trace(make(x))
    with pytest.raises(error) as eager_error:
        make(Value(bad, label="x"))
    with pytest.raises(error) as traced_error:
        program.run({x: bad})
    assert f"x = {bad!r}" in str(traced_error.value)
    assert type(traced_error.value) is type(eager_error.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.exp(),
        lambda x: 10.0**x,
        lambda x: x**3.0,
        lambda x: x * x * x,
        lambda x: x**-2.0,  # its derivative overflows at tiny x
    ],
)
@pytest.mark.parametrize("x", [800.0, 1e200, -1e200, 1e-200, math.inf])
def test_overflow_gives_infinities_like_the_engine(make, x) -> None:  # type: ignore[no-untyped-def]
    leaf = Value(2.0, label="x")
    program = mg.trace(make(leaf))
    try:
        reference_leaf = Value(x)
        reference = make(reference_leaf)
        reference.backward()
    except mg.MicrogradientError as error:
        with pytest.raises(type(error)):
            program.run({leaf: x})
        return
    result = program.run({leaf: x})
    assert same(result.value, reference.data)
    assert same(result.grads[leaf], reference_leaf.grad)


def test_a_million_deep_chain_runs_with_loop_kernels() -> None:
    x = Value(1.0, label="x")
    y = x
    n = STRAIGHT_LINE_LIMIT + 10
    for _ in range(n):
        y = y * 1.0000001
    program = mg.trace(y)
    result = program.run({x: 2.0})
    assert result.value == pytest.approx(2.0 * 1.0000001**n, rel=1e-9)
    assert result.grads[x] == pytest.approx(1.0000001**n, rel=1e-9)


def test_a_large_program_runs_first_on_kernels_then_compiled() -> None:
    """Past COMPILE_ON_FIRST_RUN operands the first run pays no compile; the second compiles."""
    from microgradient import program as module

    x, w = Value(0.5, label="x"), Value(2.0, label="w")
    y = x
    for _ in range(COMPILE_ON_FIRST_RUN):  # a tanh and a product per step: 3 operands
        y = (y * w).tanh()
    program = mg.trace(y)
    assert program.size > COMPILE_ON_FIRST_RUN
    y.backward()
    with mock.patch.object(module, "_compile_straight_line", wraps=module._compile_straight_line):
        first = program.run({x: 0.5})
        assert module._compile_straight_line.call_count == 0  # type: ignore[attr-defined]
        second = program.run({x: 0.5})
        third = program.run({x: 0.5})
        assert module._compile_straight_line.call_count == 1  # type: ignore[attr-defined]
    for result in (first, second, third):
        assert same(result.value, y.data)
        assert same(result.grads[x], x.grad) and same(result.grads[w], w.grad)
    small = mg.trace(x * w)
    with mock.patch.object(module, "_compile_straight_line", wraps=module._compile_straight_line):
        small.run()
        assert module._compile_straight_line.call_count == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.sqrt().relu() * 0.0 + x,  # zero times sqrt's infinite slope at 0
        lambda x: x.sqrt().relu(),
        lambda x: (x.sqrt() * 1e308 * 10.0).relu() + x,  # an infinite gradient through relu'=0
        lambda x: mg.max(x.sqrt() * 1e308 * 10.0, 1.0) * x,
        lambda x: (x * 0.0).sqrt() * 2.0,
    ],
)
def test_zero_times_infinity_is_zero_in_the_chain_rule_as_in_the_engine(make) -> None:  # type: ignore[no-untyped-def]
    x = Value(0.0, label="x")
    root = make(x)
    root.backward()
    result = mg.trace(root).run()
    assert same(result.value, root.data)
    assert same(result.grads[x], x.grad), (result.grads[x], x.grad)


@pytest.mark.parametrize(
    ("piecewise", "x"),
    [
        (lambda x: x.relu(), -1.0),
        (lambda x: x.relu(), 0.0),
        (abs, 0.0),
        (abs, -2.0),
        (lambda x: mg.max(x, 0.5), 0.0),
        (lambda x: mg.min(x, 0.0), 0.0),  # a tie: half of an infinite gradient
        (lambda x: mg.max(x, x * 2.0), 1.0),
    ],
)
def test_piecewise_slopes_stop_an_infinite_gradient_in_the_straight_line_code(
    piecewise, x: float
) -> None:  # type: ignore[no-untyped-def]
    leaf, y = Value(x, label="x"), Value(math.inf, label="y")
    root = piecewise(leaf) * y + y
    root.backward()
    program = mg.trace(root)
    assert " if " in program.source.split("# backward")[1]  # the slope is a branch
    # the compiled code itself, without the exact fallback that run() has for nan gradients
    value, grads = program._replay([v.data for v in program.inputs], 1.0)
    assert same(value, root.data)
    for input_, grad in zip(program.inputs, grads):
        assert same(grad, input_.grad), (input_.label, grad, input_.grad)


def test_a_flat_slope_is_written_as_a_branch() -> None:
    x = Value(1.0, label="x")
    source = mg.trace(x.relu() + abs(x)).source
    assert "grad_x = grad_h2 if x > 0.0 else -grad_h2 if x < 0.0 else 0.0" in source
    assert "grad_x += grad_h1 if x > 0.0 else 0.0" in source


def test_a_dot_skipped_for_a_zero_gradient_gives_its_operands_zero() -> None:
    w, x = Value(2.0, label="w"), Value(-1.0, label="x")
    root = mg.dot([w, x], [x, w]).relu()  # relu'(-4) = 0: the dot's lines are skipped
    root.backward()
    program = mg.trace(root)
    assert "    else:\n        grad_w = 0.0\n        grad_x = 0.0" in program.source
    assert_agrees(program, [w, x], root)
    assert program.run({x: 1.0}).grads[w] == 2.0


def two_neurons(w: Value, x: Value, y: Value) -> Value:
    shared = (w * x).tanh()  # used by both neurons: its lines go after both of theirs
    hidden = mg.dot([w, x, shared], [y, w, x]).relu()  # used by the outer neuron only
    return mg.dot([hidden, shared, y], [w, x, shared]) + w


@pytest.mark.parametrize(
    "point", [(2.0, -1.0, 0.5), (2.0, 1.0, 0.5), (0.0, 1.0, 2.0), (1.0, 0.0, -3.0)]
)
def test_lines_used_only_under_a_zero_gradient_guard_are_skipped_with_it(
    point: tuple[float, float, float],
) -> None:
    leaves = [Value(v, label=name) for v, name in zip(point, "wxy")]
    root = two_neurons(*leaves)
    root.backward()
    program = mg.trace(two_neurons(*(Value(1.0, label=name) for name in "wxy")))
    body = program.source.split("# backward")[1]
    guards = [line for line in body.splitlines() if line.strip().startswith("if ")]
    assert len(guards) == 2 and guards[1].startswith("        if ")  # one inside the other
    result = program.run(dict(zip("wxy", point)))
    assert same(result.value, root.data)
    for leaf, grad in zip(leaves, result.grads.values()):
        assert same(grad, leaf.grad), (point, leaf.label)


def test_guards_nest_only_so_deep() -> None:
    from microgradient.program import MAX_NESTING

    x = Value(3.0, label="x")
    y = x
    for _ in range(MAX_NESTING + 30):  # every sqrt is guarded (its slope is infinite at 0)
        y = (y + 1.0).sqrt()
    y.backward()
    program = mg.trace(y)
    body = program.source.split("# backward")[1].splitlines()
    deepest = max(len(line) - len(line.lstrip()) for line in body)
    assert deepest == 4 * (MAX_NESTING + 2)  # the lines inside the innermost guard
    assert_agrees(program, [x], y)


@mg.operation
def reciprocal_slope(x: float) -> float:
    """An operation whose derivative fails at 0, as user code may."""
    return x


@reciprocal_slope.derivatives
def _(x: float, out: float) -> tuple[float]:
    return (1.0 / x,)


def test_an_operation_whose_derivative_fails_raises_like_the_engine() -> None:
    x = Value(0.0, label="x")
    root = reciprocal_slope(x) * 2.0
    with pytest.raises(mg.MicrogradientError) as eager:
        root.backward()
    program = mg.trace(root)
    with pytest.raises(type(eager.value), match="reciprocal_slope"):
        program.run()
    with pytest.raises(type(eager.value), match="sample 1"):
        program.run({x: [1.0, 0.0]})


@pytest.mark.parametrize("n", [3, 200])  # a short sum is written with +, a long one as a call
def test_sums_of_opposite_infinities_are_nan_as_in_the_engine(n: int) -> None:
    xs = [Value(1.0, label=f"x{i}") for i in range(n)]
    root = mg.sum(xs) * 2.0
    program = mg.trace(root)
    feed = {xs[0]: math.inf, xs[1]: -math.inf}
    eager = mg.sum([Value(feed.get(x, x.data)) for x in xs])
    assert math.isnan(eager.data)
    assert math.isnan(program.run(feed).value)
    assert math.isnan(float(program.run({**feed, xs[2]: [1.0, 2.0]}).value[1]))
