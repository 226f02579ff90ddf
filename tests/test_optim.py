"""Tests of microgradient.optim: the update rules against hand-computed steps."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microgradient import Value, nn, optim
from microgradient.errors import DomainError, MicrogradientError, OperandTypeError


def run(opt: optim.Optimizer, p: Value, gradients: list[float]) -> list[float]:
    """Step with the given gradients; the parameter's value after each step."""
    trace = []
    for g in gradients:
        p.grad = g
        opt.step()
        trace.append(p.data)
    return trace


def test_sgd_plain_step() -> None:
    p = Value(1.0)
    assert run(optim.SGD([p], lr=0.1), p, [2.0, -1.0]) == pytest.approx([0.8, 0.9])


def test_sgd_momentum_two_steps() -> None:
    # v1 = 2, p1 = 1 - 0.1 * 2 = 0.8; v2 = 0.9 * 2 - 1 = 0.8, p2 = 0.8 - 0.1 * 0.8 = 0.72
    p = Value(1.0)
    assert run(optim.SGD([p], lr=0.1, momentum=0.9), p, [2.0, -1.0]) == pytest.approx([0.8, 0.72])


def test_sgd_weight_decay_adds_to_the_gradient() -> None:
    # g1 = 2 + 0.5 * 1 = 2.5 -> 0.75; g2 = 0 + 0.5 * 0.75 = 0.375 -> 0.7125
    p = Value(1.0)
    assert run(optim.SGD([p], lr=0.1, weight_decay=0.5), p, [2.0, 0.0]) == pytest.approx(
        [0.75, 0.7125]
    )


def test_adam_two_steps() -> None:
    # m1 = 0.2, v1 = 0.004, m_hat = 2, v_hat = 4: p1 = 1 - 0.1 * 2 / (2 + 1e-8)
    # m2 = 0.08, v2 = 0.004996, m_hat = 0.08 / 0.19, v_hat = 0.004996 / 0.001999
    p = Value(1.0)
    trace = run(optim.Adam([p], lr=0.1), p, [2.0, -1.0])
    assert trace[0] == pytest.approx(1 - 0.2 / (2 + 1e-8), rel=1e-12)
    m_hat, v_hat = 0.08 / 0.19, 0.004996 / 0.001999
    assert trace[1] == pytest.approx(trace[0] - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8), rel=1e-9)
    assert trace[1] == pytest.approx(0.8733662967, rel=1e-9)


def test_adam_betas_eps_and_weight_decay() -> None:
    # betas (0.5, 0.5), eps 0.1, decay 1: g1 = 3 + 1 = 4, m_hat = 4, v_hat = 16
    # p1 = 1 - 0.2 * 4 / (4 + 0.1)
    p = Value(1.0)
    opt = optim.Adam([p], lr=0.2, betas=(0.5, 0.5), eps=0.1, weight_decay=1.0)
    assert run(opt, p, [3.0]) == pytest.approx([1 - 0.8 / 4.1])


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e6) | st.floats(min_value=-1e6, max_value=-1e-3))
def test_adams_first_step_moves_by_lr_whatever_the_gradient_scale(g: float) -> None:
    p = Value(0.0)
    run(optim.Adam([p], lr=0.01), p, [g])
    assert p.data == pytest.approx(-math.copysign(0.01, g), rel=1e-4)


@pytest.mark.parametrize(
    "make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5), lambda ps: optim.Adam(ps)]
)
def test_zero_grad_and_step_use_every_parameter(
    make: Callable[[list[Value]], optim.Optimizer],
) -> None:
    model = nn.MLP(2, [3, 1], seed=0)
    opt = make(model.parameters())
    before = [p.data for p in model.parameters()]
    out = model([1.0, -1.0])
    assert isinstance(out, Value)
    out.backward()
    moved = [p for p, old in zip(model.parameters(), before) if p.grad != 0.0]
    opt.step()
    assert moved and all(p.data != old for p, old in zip(model.parameters(), before) if p.grad)
    opt.zero_grad()
    assert [p.grad for p in model.parameters()] == [0.0] * 13


def test_a_value_gradient_from_create_graph_is_read_through_its_data() -> None:
    p = Value(3.0)
    (p * p).backward(create_graph=True)
    assert isinstance(p.grad, Value)
    optim.SGD([p], lr=0.1).step()
    assert p.data == pytest.approx(3.0 - 0.1 * 6.0)


# typed Any so the type checker lets these deliberate mistakes through
NOT_A_NUMBER: Any = "0.1"
ONE_BETA: Any = (0.9,)
NOT_A_VALUE: Any = 1.0


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda p: optim.SGD(p, lr=-0.1), DomainError, "lr must be >= 0"),
        (lambda p: optim.SGD(p, lr=math.nan), DomainError, "lr must be"),
        (lambda p: optim.SGD(p, lr=math.inf), DomainError, "finite"),
        (lambda p: optim.SGD(p, lr=NOT_A_NUMBER), OperandTypeError, "lr must be a number"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=1.0), DomainError, r"momentum must be in"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), DomainError, "momentum"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), DomainError, "weight_decay"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), DomainError, r"betas\[1\]"),
        (lambda p: optim.Adam(p, betas=ONE_BETA), DomainError, "pair"),
        (lambda p: optim.Adam(p, eps=-1e-8), DomainError, "eps"),
        (lambda p: optim.Adam([]), DomainError, "empty"),
        (lambda p: optim.Adam([*p, NOT_A_VALUE]), OperandTypeError, "parameter 1 is a float"),
        (lambda p: optim.Adam([*p, *p]), DomainError, "more than once"),
    ],
)
def test_invalid_arguments_are_clear_errors(
    build: Callable[[list[Value]], optim.Optimizer],
    error: type[MicrogradientError],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        build([Value(1.0)])


def test_an_optimizer_accepts_a_generator_of_parameters() -> None:
    params = [Value(1.0), Value(2.0)]
    opt = optim.SGD((p for p in params), lr=0.5)
    params[0].grad, params[1].grad = 1.0, -1.0
    opt.step()
    assert [p.data for p in params] == [0.5, 2.5]


# ---- optimisers over mg.Parameters (one flat array) -------------------------------------


def flat_and_values(
    make: Callable[[Any], optim.Optimizer], gradients: list[list[float]]
) -> tuple[list[float], list[float]]:
    """Train the same three parameters both ways; their final numbers, Values then flat."""
    import numpy as np

    import microgradient as mg

    values = [Value(0.5), Value(-1.5), Value(2.0)]
    copies = [Value(v.data) for v in values]
    flat = mg.Parameters(copies)
    on_values, on_flat = make(values), make(flat)
    for g in gradients:
        on_values.zero_grad()
        on_flat.zero_grad()
        for v, gi in zip(values, g):
            v.grad = gi
        flat.grad = np.array(g)
        on_values.step()
        on_flat.step()
    assert [c.data for c in copies] == [0.5, -1.5, 2.0]  # the Values wait for write_back
    flat.write_back()
    return [v.data for v in values], [c.data for c in copies]


OPTIMISERS = [
    lambda p: optim.SGD(p, lr=0.1),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda p: optim.Adam(p, lr=0.01),
    lambda p: optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
]


@pytest.mark.parametrize("make", OPTIMISERS)
@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=3),
        min_size=1,
        max_size=6,
    )
)
def test_an_optimizer_over_parameters_gives_the_values_numbers_exactly(
    make: Callable[[Any], optim.Optimizer], gradients: list[list[float]]
) -> None:
    on_values, on_flat = flat_and_values(make, gradients)
    assert on_flat == on_values


def test_an_optimizer_over_parameters_trains_a_traced_program() -> None:
    import numpy as np

    import microgradient as mg

    w = Value(0.0, label="w")
    x, y = Value(0.0, label="x"), Value(0.0, label="y")
    program = mg.trace((w * x - y) ** 2)
    params = mg.Parameters([w])
    adam = optim.Adam(params, lr=0.1)
    feed = {x: np.array([1.0, 2.0, 3.0]), y: np.array([2.0, 4.0, 6.0])}
    for _ in range(300):
        program.run(feed, gradient=1 / 3, parameters=params)
        adam.step()
    assert adam.params == [w] and adam.flat is params
    assert w.data == 0.0
    params.write_back()
    assert w.data == pytest.approx(2.0, abs=1e-6)
    adam.zero_grad()
    assert params.grad.tolist() == [0.0]


def test_an_optimizer_refuses_empty_or_repeated_parameters() -> None:
    import microgradient as mg

    with pytest.raises(DomainError, match="empty"):
        optim.SGD(mg.Parameters([]), lr=0.1)
    p = Value(1.0)
    with pytest.raises(DomainError, match="more than once"):
        optim.Adam(mg.Parameters([p, p]))
