"""Batched programs against the eager engine run sample by sample, with NumPy and PyTorch."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from program_graphs import eager, leaf_values, recipes, same

import microgradient as mg
from microgradient import TracingError, Value, nn
from microgradient.batch import plan_for

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

REQUIRE_TORCH = os.environ.get("MICROGRADIENT_REQUIRE_TORCH") == "1"
needs_torch = pytest.mark.skipif(
    torch is None and not REQUIRE_TORCH,
    reason="PyTorch is not installed (CI installs it and sets MICROGRADIENT_REQUIRE_TORCH=1)",
)

N_LEAVES = 3
batches = st.integers(1, 4).flatmap(
    lambda b: st.lists(st.lists(leaf_values, min_size=b, max_size=b), min_size=3, max_size=3)
)


def check_batch(recipe: Any, traced_at: Any, columns: Any, batched: Any, to_array: Any) -> None:
    """Run the traced recipe on a batch and compare every sample with the engine."""
    made = eager(recipe, traced_at)
    if made is None:
        return
    leaves, root, built, _ = made
    program = mg.trace(root)
    size = len(columns[0])
    # a shared leaf takes its first value for every sample
    points = [
        [columns[i][s] if batched[i] else columns[i][0] for i in range(N_LEAVES)]
        for s in range(size)
    ]
    feed = {}
    for i, leaf in enumerate(leaves):
        if leaf in program.inputs:
            feed[leaf] = to_array(columns[i]) if batched[i] else columns[i][0]
    if not any(batched[i] and leaves[i] in program.inputs for i in range(N_LEAVES)):
        return
    references = []
    errors: set[type[Exception]] = set()
    for point in points:
        try:
            reference = eager(built, point, errors)
        except mg.MicrogradientError:
            continue
        assert reference is not None
        if reference[3] is not None:
            errors.add(type(reference[3]))
        references.append(reference)
    if errors:
        with pytest.raises(mg.MicrogradientError) as raised:
            program.run(feed)
        assert type(raised.value) in errors  # (an error in shared values names no sample)
        return
    result = program.run(feed)
    values = np.asarray(result.value).tolist()
    for s, (_, ref_root, _, _) in enumerate(references):
        assert same(values[s], ref_root.data), (s, values[s], ref_root.data)
    for i, leaf in enumerate(leaves):
        if leaf not in program.inputs:
            continue
        per_sample = [ref_leaves[i].grad for ref_leaves, _, _, _ in references]
        grad = result.grads[leaf]
        if batched[i]:
            got = np.asarray(grad).tolist()
            assert all(same(g, r) for g, r in zip(got, per_sample)), (i, got, per_sample)
        else:
            assert isinstance(grad, float)
            assert same(grad, sum(per_sample), rel=1e-8), (i, grad, per_sample)


@settings(max_examples=150, deadline=None)
@given(
    recipes(),
    st.lists(leaf_values, min_size=3, max_size=3),
    batches,
    st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_numpy_batches_match_the_engine_sample_by_sample(
    recipe, traced_at, columns, batched
) -> None:  # type: ignore[no-untyped-def]
    check_batch(recipe, traced_at, columns, batched, np.asarray)


@needs_torch
@settings(max_examples=40, deadline=None)
@given(
    recipes(),
    st.lists(leaf_values, min_size=3, max_size=3),
    batches,
    st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_torch_batches_match_the_engine(recipe, traced_at, columns, batched) -> None:  # type: ignore[no-untyped-def]
    check_batch(recipe, traced_at, columns, batched, lambda c: torch.tensor(c, dtype=torch.float64))


def mlp_loss(sizes: list[int]) -> tuple[nn.MLP, list[Value], Value, Value]:
    model = nn.MLP(2, sizes, activation="tanh", seed=3)
    xs = [Value(0.0, label="x0"), Value(0.0, label="x1")]
    target = Value(0.0, label="y")
    loss = (model(xs) - target) ** 2 + 1e-3 * nn.l2(model.parameters())  # type: ignore[operator]
    return model, xs, target, loss


def test_a_layer_of_dots_is_one_matrix_product() -> None:
    _, xs, target, loss = mlp_loss([8, 8, 1])
    program = mg.trace(loss)
    plan = plan_for(program, frozenset(program.inputs.index(v) for v in (*xs, target)))
    dots = [g for g in plan.groups if g.kind == "dot" and g.common_inputs]
    assert sorted(g.width for g in dots) == [1, 1, 8, 8]  # two layers, the output, the l2
    activations = [g for g in plan.groups if g.kind == "primitive" and g.members[0].op == "tanh"]
    assert sorted(g.width for g in activations) == [8, 8]  # the output layer is linear


@pytest.mark.parametrize("gradient", [1.0, 0.25, "per-sample"])
def test_mlp_batch_gradients_are_sums_over_the_batch(gradient: Any) -> None:
    model, xs, target, loss = mlp_loss([4, 1])
    program = mg.trace(loss)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2))
    y = rng.normal(size=5)
    seed = np.linspace(0.5, 1.5, 5) if gradient == "per-sample" else gradient
    result = program.run({xs[0]: x[:, 0], xs[1]: x[:, 1], target: y}, gradient=seed)
    expected = dict.fromkeys(model.parameters(), 0.0)
    for s in range(5):
        model.zero_grad()
        sample_loss = (model([float(x[s, 0]), float(x[s, 1])]) - float(y[s])) ** 2 + 1e-3 * nn.l2(
            model.parameters()
        )  # type: ignore[operator]
        weight = float(seed[s]) if gradient == "per-sample" else gradient
        sample_loss.backward(weight)
        assert result.value[s] == pytest.approx(sample_loss.data, rel=1e-12)
        for p in model.parameters():
            expected[p] += p.grad
    for p in model.parameters():
        assert result.grads[p] == pytest.approx(expected[p], rel=1e-10, abs=1e-14)


def test_a_domain_error_names_the_operation_value_and_sample() -> None:
    x = Value(1.0, label="x")
    program = mg.trace(x.log() + x)
    with pytest.raises(mg.DomainError, match=r"log: log\(x = -2\.0\).*sample 2"):
        program.run({x: np.array([1.0, 3.0, -2.0, -5.0])})
    a, b = Value(1.0, label="a"), Value(1.0, label="b")
    with pytest.raises(mg.DivisionByZeroError, match="sample 1"):
        mg.trace(a / b).run({b: [2.0, 0.0]})
    with pytest.raises(mg.DomainError, match=r"sin.*sample 1"):
        mg.trace(a.sin()).run({a: [1.0, -np.inf]})


def test_infinities_follow_the_engine_sample_by_sample() -> None:
    x, w = Value(1.0, label="x"), Value(2.0, label="w")
    root = (x**-2.0).relu() * w + (x * 0.0).sqrt()  # overflow to inf; 0 * inf in the chain rule
    program = mg.trace(root)
    column = [1.0, 1e-200, 0.0, -1e-200]
    with pytest.raises(mg.DivisionByZeroError, match="sample 2"):
        program.run({x: column})
    del column[2]
    result = program.run({x: column})
    total = 0.0
    for s, value in enumerate(column):
        leaf, weight = Value(value), Value(2.0)
        reference = (leaf**-2.0).relu() * weight + (leaf * 0.0).sqrt()
        reference.backward()
        assert same(float(result.value[s]), reference.data)
        assert same(float(result.grads[x][s]), leaf.grad)
        total += weight.grad
    assert same(result.grads[w], total)


def test_bad_feeds_are_refused() -> None:
    x, y = Value(1.0, label="x"), Value(2.0, label="y")
    program = mg.trace(x * y)
    with pytest.raises(TracingError, match="same length"):
        program.run({x: [1.0, 2.0], y: [1.0, 2.0, 3.0]})
    with pytest.raises(TracingError, match="1-D"):
        program.run({x: np.ones((2, 2))})
    with pytest.raises(TracingError, match="feed a number or a 1-D array"):
        program.run({x: "3"})
    assert program.run({x: np.float64(3.0)}).value == 6.0


def test_accumulate_grads_adds_the_batch_total() -> None:
    x, w = Value(1.0, label="x"), Value(3.0, label="w")
    program = mg.trace(w * x)
    program.run({x: [1.0, 2.0]}).accumulate_grads()
    assert w.grad == 3.0 and x.grad == 6.0


@needs_torch
def test_torch_arrays_give_torch_results() -> None:
    model, xs, target, loss = mlp_loss([4, 1])
    program = mg.trace(loss)
    x = torch.tensor([[0.1, 0.2], [0.3, -0.4]], dtype=torch.float64)
    result = program.run({xs[0]: x[:, 0], xs[1]: x[:, 1], target: torch.zeros(2)})
    assert isinstance(result.value, torch.Tensor)
    assert isinstance(result.grads[xs[0]], torch.Tensor)
    reference = program.run({xs[0]: x[:, 0].numpy(), xs[1]: x[:, 1].numpy(), target: [0.0, 0.0]})
    assert np.allclose(result.value.numpy(), reference.value, rtol=1e-12)
    for p in model.parameters():
        assert result.grads[p] == pytest.approx(reference.grads[p], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("which", ["all", "some"])
def test_flat_parameters_give_the_gradients_of_the_values(batched: bool, which: str) -> None:
    model, xs, target, loss = mlp_loss([4, 1])
    program = mg.trace(loss)
    chosen = model.parameters() if which == "all" else model.parameters()[::2]
    params = mg.Parameters(chosen)
    before = [v.data for v in chosen]
    feed: dict[Value, Any] = {xs[0]: 0.3, xs[1]: -0.2, target: 0.5}
    if batched:
        feed = {xs[0]: [0.3, 0.1], xs[1]: [-0.2, 0.4], target: [0.5, -1.0]}
    reference = program.run(feed)
    params.data = params.data * 1.0  # a new array: runs must read it, not the Values
    result = program.run(feed, parameters=params)
    assert np.asarray(params.grad).shape == (len(chosen),)
    for value, grad in zip(chosen, np.asarray(params.grad).tolist()):
        assert value not in result.grads
        assert grad == pytest.approx(reference.grads[value], rel=1e-12, abs=1e-15)
    params.data = params.data - 0.1 * params.grad
    moved = program.run(feed, parameters=params)
    assert not np.allclose(np.asarray(moved.value), np.asarray(result.value))
    assert [v.data for v in chosen] == before  # the Values are untouched ...
    params.write_back()
    assert [v.data for v in chosen] == np.asarray(params.data).tolist()  # ... until written


def test_flat_parameters_before_another_shared_input_get_only_their_gradients() -> None:
    w, c, x = Value(2.0, label="w"), Value(3.0, label="c"), Value(0.0, label="x")
    program = mg.trace(w * x + c * w)  # shared inputs in order: w (the parameter), then c
    params = mg.Parameters([w])
    result = program.run({x: np.array([1.0, 2.0])}, parameters=params)
    assert np.asarray(params.grad).tolist() == [(1.0 + 3.0) + (2.0 + 3.0)]
    assert result.grads[c] == 2.0 + 2.0 and c.data == 3.0  # c read from its Value


def test_a_tuple_of_inputs_takes_a_matrix_with_a_row_per_sample() -> None:
    model, xs, target, loss = mlp_loss([4, 1])
    program = mg.trace(loss)
    points = np.array([[0.1, 0.2], [0.3, -0.4], [-1.0, 0.5]])
    by_block = program.run({tuple(xs): points, target: [0.0, 1.0, -1.0]})
    by_column = program.run({xs[0]: points[:, 0], xs[1]: points[:, 1], target: [0.0, 1.0, -1.0]})
    assert np.array_equal(by_block.value, by_column.value)
    for p in model.parameters():
        assert by_block.grads[p] == by_column.grads[p]
    one = program.run({("x0", "x1"): [0.1, 0.2], target: 0.0})
    assert one.value == pytest.approx(float(by_block.value[0]), rel=1e-12)
    with pytest.raises(TracingError, match=r"\(samples, 2\) matrix"):
        program.run({tuple(xs): np.ones((3, 3))})


def per_sample(program: mg.Program, columns: dict[Value, list[float]], numbers: Any) -> Any:
    """Values and gradients of ``program`` run sample by sample (the per-sample replay)."""
    size = len(next(iter(columns.values())))
    runs = [program.run({**numbers, **{v: c[s] for v, c in columns.items()}}) for s in range(size)]
    values = [r.value for r in runs]
    grads = {v: [r.grads[v] for r in runs] for v in program.inputs}
    return values, grads


def test_block_feeds_mix_with_columns_and_numbers_in_any_order() -> None:
    a, b, c, d = (Value(0.0, label=n) for n in "abcd")
    w = Value(0.7, label="w")
    program = mg.trace((w * a - c).tanh() * b + mg.dot([a, c, d], [w, b, a]) + d * d)
    rows = np.array([[0.3, -1.0], [0.5, 2.0], [-0.2, 0.1]])
    column = np.array([1.5, -0.5, 0.25])
    feed = {(c, a): rows, b: column, d: 0.4}  # a permuted block, a column, a number
    result = program.run(feed)
    values, grads = per_sample(
        program, {c: rows[:, 0].tolist(), a: rows[:, 1].tolist(), b: column.tolist()}, {d: 0.4}
    )
    assert np.allclose(result.value, values, rtol=1e-13)
    for leaf in (a, b, c):
        assert np.allclose(result.grads[leaf], grads[leaf], rtol=1e-13)
    for leaf in (d, w):
        assert result.grads[leaf] == pytest.approx(sum(grads[leaf]), rel=1e-13)
    # a later feed replaces an earlier one, whether a column of a block or a whole input
    replaced = program.run({(c, a): rows, b: column, d: 0.4, a: 2.0, (b, d): rows[:, ::-1]})
    values, grads = per_sample(
        program, {c: rows[:, 0].tolist(), b: rows[:, 1].tolist(), d: rows[:, 0].tolist()}, {a: 2.0}
    )
    assert np.allclose(replaced.value, values, rtol=1e-13)
    assert isinstance(replaced.grads[a], float)
    assert replaced.grads[a] == pytest.approx(sum(grads[a]), rel=1e-13)
    assert np.allclose(replaced.grads[d], grads[d], rtol=1e-13)


def test_repeated_operands_add_their_gradients() -> None:
    x, y = Value(0.0, label="x"), Value(0.0, label="y")
    w, v = Value(0.5, label="w"), Value(-2.0, label="v")
    # w and x each appear twice among the gathered operands of one group
    program = mg.trace(mg.dot([w, w, v], [x, y, x]) * mg.sum([x, x, y, w, w]))
    xs, ys = [0.5, -1.0, 3.0], [2.0, 0.25, -0.5]
    result = program.run({x: np.array(xs), y: np.array(ys)})
    values, grads = per_sample(program, {x: xs, y: ys}, {})
    assert np.allclose(result.value, values, rtol=1e-13)
    assert np.allclose(result.grads[x], grads[x], rtol=1e-13)
    assert np.allclose(result.grads[y], grads[y], rtol=1e-13)
    for leaf in (w, v):
        assert result.grads[leaf] == pytest.approx(sum(grads[leaf]), rel=1e-13)


@needs_torch
def test_torch_blocks_mixed_with_columns_match_numpy() -> None:
    model, xs, target, loss = mlp_loss([4, 3, 1])
    program = mg.trace(loss)
    points = np.array([[0.1, 0.2], [0.3, -0.4], [-1.0, 0.5]])
    targets = np.array([0.0, 1.0, -1.0])
    params = mg.Parameters(model.parameters()[1:])
    reference = program.run({tuple(xs[::-1]): points, target: targets})
    result = program.run(
        {tuple(xs[::-1]): torch.tensor(points), target: torch.tensor(targets)}, parameters=params
    )
    assert isinstance(result.value, torch.Tensor)
    assert np.allclose(result.value.numpy(), reference.value, rtol=1e-12)
    assert np.allclose(result.grads[xs[0]].numpy(), reference.grads[xs[0]], rtol=1e-12)
    expected = [reference.grads[p] for p in params.values]
    assert np.allclose(np.asarray(params.grad), expected, rtol=1e-12, atol=1e-15)
    first = model.parameters()[0]
    assert result.grads[first] == pytest.approx(reference.grads[first], rel=1e-12)


def test_weights_and_a_penalty_on_all_parameters_are_read_as_spans() -> None:
    model = nn.MLP(3, [4, 2], seed=0)
    xs = [Value(0.0, label=f"x{i}") for i in range(3)]
    params = model.parameters()

    def dot_weights(root: Value) -> tuple[list[Any], Any]:
        program = mg.trace(root)
        plan = plan_for(program, frozenset(program._position(x) for x in xs))
        weights = [group.gathers[0] for group in plan.groups if group.kind == "dot"]
        return weights, plan

    # without a penalty, each layer's weight matrix is one span of the shared inputs
    weights, _ = dot_weights(mg.sum(model(xs)))
    assert len(weights) == 2
    for gather in weights:
        assert [source.read is not None for source in gather.sources] == [True]
    # with one, the penalty reads all parameters as one span, in mg.Parameters' order
    weights, plan = dot_weights(mg.sum(model(xs)) + 1e-3 * mg.dot(params, params))
    assert len(weights) == 3  # two layers and the penalty
    (penalty,) = [gather for gather in weights if gather.size == len(params)]
    assert [source.read is not None for source in penalty.sources] == [True]
    order = plan.parameter_order(mg.Parameters(params))
    assert order is not None and order.gather is None  # the parameters' array as it is
