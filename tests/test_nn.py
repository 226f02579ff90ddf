"""Tests of microgradient.nn: modules, saving and loading, losses and their gradients."""

from __future__ import annotations

import importlib
import json
import math
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgradient import Value, dot, gradcheck, nn, no_grad, optim, topological_order
from microgradient.errors import DomainError, ModelShapeError

finite = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False)


def datas(values: list[Value]) -> list[float]:
    return [v.data for v in values]


def grads(values: list[Value]) -> list[float]:
    return [float(v.grad) for v in values]


def output(model: nn.Module, x: Sequence[Value | float]) -> Value:
    out = model(x)  # type: ignore[operator]
    assert isinstance(out, Value)
    return out


# ---- modules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "count"),
    [
        (nn.MLP(2, [16, 16, 1]), 337),
        (nn.MLP(3, [4, 4, 1]), 16 + 20 + 5),
        (nn.MLP(1, [1]), 2),
        (nn.Layer(3, 4), 16),
        (nn.Neuron(5), 6),
    ],
)
def test_parameter_counts(module: nn.Module, count: int) -> None:
    params = module.parameters()
    assert len(params) == count
    assert len({id(p) for p in params}) == count


def test_biases_start_at_zero_and_weights_within_the_documented_bounds() -> None:
    model = nn.MLP(4, [50, 50, 1], activation="tanh", seed=3)
    relu = nn.MLP(4, [50, 1], seed=3)
    wide = nn.MLP(4, [50, 1], seed=3, init="uniform")
    for layer in [*model.layers, *relu.layers, *wide.layers]:
        assert all(n.b.data == 0.0 for n in layer.neurons)
    assert max(abs(w.data) for n in model.layers[0].neurons for w in n.w) <= math.sqrt(3 / 4)
    hidden_relu = [abs(w.data) for n in relu.layers[0].neurons for w in n.w]
    assert math.sqrt(3 / 4) < max(hidden_relu) <= math.sqrt(6 / 4)
    assert 0.9 < max(abs(w.data) for n in wide.layers[0].neurons for w in n.w) <= 1.0


def test_seeded_initialisation_is_reproducible_and_seeds_differ() -> None:
    assert nn.MLP(2, [8, 1], seed=7).state_dict() == nn.MLP(2, [8, 1], seed=7).state_dict()
    assert nn.MLP(2, [8, 1], seed=7).state_dict() != nn.MLP(2, [8, 1], seed=8).state_dict()
    # neurons of one layer draw from one generator, so they differ from each other
    layer = nn.Layer(2, 3, seed=0)
    assert len({tuple(datas(n.w)) for n in layer.neurons}) == 3
    same = nn.MLP(2, [4, 1], seed=random.Random(5)).state_dict()
    assert same == nn.MLP(2, [4, 1], seed=5).state_dict()


def test_without_a_seed_the_global_generator_is_used_as_in_micrograd() -> None:
    random.seed(1337)
    first = nn.MLP(2, [4, 1]).state_dict()
    random.seed(1337)
    assert nn.MLP(2, [4, 1]).state_dict() == first


def test_output_shapes_follow_micrograd() -> None:
    assert isinstance(nn.Layer(2, 1)([1.0, 2.0]), Value)
    out = nn.Layer(2, 3)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 3
    assert isinstance(nn.MLP(2, [3, 1])([1.0, 2.0]), Value)
    assert len(nn.MLP(2, [3, 2])([1.0, 2.0])) == 2  # type: ignore[arg-type]
    assert len(nn.MLP(2, [3, 1]).forward([1.0, 2.0])) == 1
    # a hidden layer of one neuron still feeds the next layer a list
    assert isinstance(nn.MLP(2, [1, 1])([1.0, 2.0]), Value)
    assert isinstance(nn.MLP(1, [2, 1])(0.5), Value)


def test_float_and_value_inputs_give_the_same_outputs_and_value_inputs_get_gradients() -> None:
    model = nn.MLP(3, [5, 5, 1], seed=0)
    x = [0.5, -1.5, 2.0]
    inputs = list(map(Value, x))
    by_value = output(model, inputs)
    by_float = output(model, x)
    assert by_value.data == by_float.data
    by_value.backward()
    from_values = grads(model.parameters())
    model.zero_grad()
    by_float.backward()
    assert grads(model.parameters()) == pytest.approx(from_values)
    assert any(g != 0.0 for g in grads(inputs))


def test_the_graph_is_one_dot_and_one_activation_node_per_neuron() -> None:
    model = nn.MLP(2, [16, 16, 1], seed=0)
    out = output(model, [0.3, -0.7])
    nodes = topological_order(out)
    assert sum(1 for n in nodes if n.op == "dot") == 33
    assert sum(1 for n in nodes if n.op == "relu") == 32
    # the parameters, 33 dots and 32 relus: the bias is a parent of its dot, no leaf 1
    assert len(nodes) == 337 + 33 + 32
    assert out.op == "dot"  # linear output layer


def test_a_neuron_on_values_builds_the_same_dot_node_as_on_mixed_inputs() -> None:
    neuron = nn.Neuron(3, activation="linear", seed=1)
    xs = [Value(0.5), Value(-1.5), Value(2.0)]
    fast = neuron(xs)  # every input a Value: the engine's unchecked w · x + b
    assert fast.parents == (*neuron.w, *xs, neuron.b)
    assert (fast.op, fast.constant, fast.coefficients) == ("dot", None, (1.0,))
    checked = dot([*neuron.w, neuron.b], [*xs, 1.0])
    assert checked.parents == fast.parents and checked.coefficients == fast.coefficients
    assert fast.data == checked.data
    fast.backward()
    assert [x.grad for x in xs] == [w.data for w in neuron.w]
    assert neuron.b.grad == 1.0
    mixed = neuron([xs[0], -1.5, 2.0])  # not all Values: dot checks each operand
    assert mixed.data == fast.data
    assert mixed.coefficients == (-1.5, 2.0, 1.0)
    assert mixed.parents == (neuron.w[0], xs[0], *neuron.w[1:], neuron.b)


def test_activations() -> None:
    x = [0.4, -0.2]
    for activation in ["relu", "tanh", "sigmoid"]:
        model = nn.MLP(2, [3, 1], activation=activation, seed=0)  # type: ignore[arg-type]
        hidden = model.layers[0].forward(x)
        assert {h.op for h in hidden} == {activation}
        assert model.layers[-1].neurons[0].activation == "linear"
    neuron = nn.Neuron(2, nonlin=False, activation="tanh")
    assert (neuron(x).op, neuron.nonlin) == ("dot", False)
    neuron.activation = "sigmoid"
    assert (neuron(x).op, neuron.nonlin) == ("sigmoid", True)
    assert nn.Layer(2, 2, nonlin=False).forward(x)[0].op == "dot"
    with pytest.raises(DomainError, match="activation 'gelu'"):
        nn.MLP(2, [1], activation="gelu")  # type: ignore[arg-type]


def test_neuron_computes_activation_of_w_dot_x_plus_b() -> None:
    neuron = nn.Neuron(2, activation="tanh")
    neuron.w[0].data, neuron.w[1].data, neuron.b.data = 0.5, -2.0, 0.25
    assert neuron([1.0, 3.0]).data == pytest.approx(math.tanh(0.5 - 6.0 + 0.25))


def test_matches_micrograd_given_the_same_weights() -> None:
    micrograd_nn = importlib.import_module("micrograd.nn")  # a dev dependency: never skipped
    micrograd_engine = importlib.import_module("micrograd.engine")
    random.seed(0)
    theirs = micrograd_nn.MLP(2, [4, 4, 1])
    ours = nn.MLP(2, [4, 4, 1])
    for mine, other in zip(ours.parameters(), theirs.parameters(), strict=True):
        mine.data = other.data
    xs = [[0.5, -1.0], [2.0, 0.25], [-1.5, 1.5]]
    ys = [1.0, -1.0, 1.0]
    their_scores = [theirs(list(map(micrograd_engine.Value, x))) for x in xs]
    their_loss = sum((1 + -y * s).relu() for y, s in zip(ys, their_scores)) * (1 / 3)
    their_loss.backward()
    our_loss = nn.hinge([output(ours, x) for x in xs], ys)
    our_loss.backward()
    assert our_loss.data == pytest.approx(their_loss.data)
    assert grads(ours.parameters()) == pytest.approx([p.grad for p in theirs.parameters()])


def test_wrong_input_length_and_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(DomainError, match="expected 2 inputs, got 3"):
        nn.MLP(2, [3, 1])([1.0, 2.0, 3.0])
    with pytest.raises(DomainError, match="positive int"):
        nn.MLP(2, [3, 0])
    with pytest.raises(DomainError, match="non-empty list"):
        nn.MLP(2, 3)  # type: ignore[arg-type]
    with pytest.raises(DomainError, match="init"):
        nn.Neuron(2, init="zeros")  # type: ignore[arg-type]


def test_zero_grad() -> None:
    model = nn.MLP(2, [3, 1], seed=0)
    output(model, [1.0, 1.0]).backward()
    assert any(g != 0.0 for g in grads(model.parameters()))
    model.zero_grad()
    assert grads(model.parameters()) == [0.0] * 13


# ---- state, save and load --------------------------------------------------------------


def test_state_dict_is_plain_json_and_round_trips() -> None:
    model = nn.MLP(2, [3, 2], seed=1)
    state = model.state_dict()
    assert sorted(state) == [
        "layers.0.bias",
        "layers.0.weight",
        "layers.1.bias",
        "layers.1.weight",
    ]
    assert len(state["layers.0.weight"]) == 3 and len(state["layers.0.weight"][0]) == 2
    copy = nn.MLP(2, [3, 2], seed=2)
    copy.load_state_dict(json.loads(json.dumps(state)))
    assert copy.state_dict() == state
    assert nn.Neuron(2, seed=0).state_dict()["bias"] == 0.0


def test_save_and_load_through_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    model = nn.MLP(2, [16, 16, 1], activation="tanh", seed=1)
    model.save(path)
    document = json.loads(path.read_text())
    assert document["format"] == "microgradient.nn" and document["version"] == 1
    assert document["config"] == {"sizes": [2, 16, 16, 1], "activation": "tanh"}
    assert not list(tmp_path.glob("*.partial"))
    other = nn.MLP(2, [16, 16, 1], activation="tanh", seed=2)
    other.load(str(path))
    assert other.state_dict() == model.state_dict()
    assert output(other, [0.1, 0.2]).data == output(model, [0.1, 0.2]).data


@pytest.mark.parametrize(
    "other",
    [
        nn.MLP(2, [8, 1], seed=0),
        nn.MLP(3, [16, 16, 1], seed=0),
        nn.MLP(2, [16, 16, 2], seed=0),
        nn.MLP(2, [16, 16, 1], activation="tanh", seed=0),
        nn.Layer(2, 16, seed=0),
    ],
)
def test_loading_a_file_of_another_architecture_fails_and_changes_nothing(
    tmp_path: Path, other: nn.Module
) -> None:
    path = tmp_path / "model.json"
    nn.MLP(2, [16, 16, 1], seed=1).save(path)
    before = other.state_dict()
    with pytest.raises(ModelShapeError, match="the file holds a MLP") as error:
        other.load(path)
    assert isinstance(error.value, ValueError)
    assert other.state_dict() == before


def test_a_bad_state_is_rejected_before_anything_is_assigned() -> None:
    model = nn.MLP(2, [3, 1], seed=0)
    before = model.state_dict()
    state = nn.MLP(2, [3, 1], seed=1).state_dict()
    # the last entry is wrong, so a loader that assigned as it went would have changed the rest
    state["layers.1.weight"] = [[1.0, 2.0, 3.0, 4.0]]
    with pytest.raises(ModelShapeError, match=r"'layers.1.weight'\[0\] should have 3 entries"):
        model.load_state_dict(state)
    assert model.state_dict() == before
    bad_values: list[object] = ["x", True, None, [1.0]]
    for bad in bad_values:
        state = nn.MLP(2, [3, 1], seed=1).state_dict()
        state["layers.1.bias"] = [bad]
        with pytest.raises(ModelShapeError, match="should be a number"):
            model.load_state_dict(state)
    state = nn.MLP(2, [3, 1], seed=1).state_dict()
    del state["layers.0.bias"]
    state["extra"] = [0.0]
    with pytest.raises(ModelShapeError, match=r"missing \['layers.0.bias'\].*unexpected \['extra'"):
        model.load_state_dict(state)
    assert model.state_dict() == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "something else"}', "not a model file"),
        ('{"format": "microgradient.nn", "version": 99}', "version 99"),
        ("[1, 2]", "not a model file"),
    ],
)
def test_loading_a_file_that_is_not_a_model_fails_clearly(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    model = nn.MLP(2, [2, 1], seed=0)
    before = model.state_dict()
    with pytest.raises(ModelShapeError, match=message):
        model.load(path)
    assert model.state_dict() == before


def test_a_custom_module_saves_its_parameters(tmp_path: Path) -> None:
    class Affine(nn.Module):
        def __init__(self, a: float, b: float) -> None:
            self.a, self.b = Value(a), Value(b)

        def parameters(self) -> list[Value]:
            return [self.a, self.b]

    Affine(2.0, 3.0).save(tmp_path / "affine.json")
    loaded = Affine(0.0, 0.0)
    loaded.load(tmp_path / "affine.json")
    assert datas(loaded.parameters()) == [2.0, 3.0]


# ---- training ----------------------------------------------------------------------------

XOR = [([0.0, 0.0], 0.0), ([0.0, 1.0], 1.0), ([1.0, 0.0], 1.0), ([1.0, 1.0], 0.0)]


def xor_loss(model: nn.MLP) -> Value:
    return nn.mse([output(model, x) for x, _ in XOR], [y for _, y in XOR])


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
        lambda params: optim.Adam(params, lr=0.05),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_training_on_xor_drives_the_loss_down(
    make_optimizer: Callable[[list[Value]], optim.Optimizer],
) -> None:
    model = nn.MLP(2, [8, 1], activation="tanh", seed=0)
    opt = make_optimizer(model.parameters())
    first = xor_loss(model).data
    for _ in range(150):
        loss = xor_loss(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert xor_loss(model).data < 0.05 * first
    predictions = [output(model, x).data for x, _ in XOR]
    assert [round(p) for p in predictions] == [0, 1, 1, 0]


def test_hinge_training_with_l2_as_in_the_micrograd_demo() -> None:
    rng = random.Random(0)
    xs = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(40)]
    ys = [1.0 if x[0] + 0.5 * x[1] > 0 else -1.0 for x in xs]
    model = nn.MLP(2, [8, 8, 1], seed=0)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loss() -> Value:
        return nn.hinge([output(model, x) for x in xs], ys) + 1e-4 * nn.l2(model.parameters())

    first = loss().data
    for _ in range(60):
        total = loss()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert loss().data < 0.2 * first
    with no_grad():
        accuracy = sum((output(model, x).data > 0) == (y > 0) for x, y in zip(xs, ys)) / 40
    assert accuracy >= 0.95


# ---- softmax and cross-entropy -------------------------------------------------------------


def reference_softmax(z: list[float]) -> list[float]:
    top = max(z)
    exps = [math.exp(v - top) for v in z]
    return [e / sum(exps) for e in exps]


def log_sum_exp(z: list[float]) -> float:
    top = max(z)
    return top + math.log(math.fsum(math.exp(v - top) for v in z))


@st.composite
def logits_and_labels(draw: st.DrawFn) -> tuple[list[list[float]], list[int]]:
    classes = draw(st.integers(2, 5))
    batch = draw(st.integers(1, 4))
    rows = [draw(st.lists(finite, min_size=classes, max_size=classes)) for _ in range(batch)]
    labels = [draw(st.integers(0, classes - 1)) for _ in range(batch)]
    return rows, labels


@settings(max_examples=60, deadline=None)
@given(logits_and_labels(), st.booleans())
def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_batch(
    case: tuple[list[list[float]], list[int]], one_hot: bool
) -> None:
    rows, labels = case
    batch, classes = len(rows), len(rows[0])
    z = [[Value(v) for v in row] for row in rows]
    targets: list[int] | list[list[float]] = (
        [[1.0 if j == k else 0.0 for j in range(classes)] for k in labels] if one_hot else labels
    )
    loss = nn.cross_entropy(z, targets)
    loss.backward()
    for row, values, label in zip(rows, z, labels):
        expected = [(p - (j == label)) / batch for j, p in enumerate(reference_softmax(row))]
        assert grads(values) == pytest.approx(expected, abs=1e-12)
    expected_loss = sum(log_sum_exp(row) - row[k] for row, k in zip(rows, labels)) / batch
    assert loss.data == pytest.approx(expected_loss, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("y", "expected"),
    [
        ((0.3, 0.2, 0.5), (0.3, -0.8, 0.5)),
        ((0.01, 0.99, 0.0), (0.01, -0.01, 0.0)),
    ],
)
@pytest.mark.parametrize("target", [1, [0.0, 1.0, 0.0]])
def test_softmax_with_loss_backward_matches_the_source(
    y: tuple[float, ...], expected: tuple[float, ...], target: int | list[float]
) -> None:
    # logits whose softmax is y: log y, and -1000 (exp underflows to exactly 0) for y = 0
    z = [Value(math.log(p) if p > 0 else -1000.0) for p in y]
    assert datas(nn.softmax(z)) == pytest.approx(y, abs=1e-15)
    nn.cross_entropy(z, target).backward()
    assert grads(z) == pytest.approx(expected, abs=1e-12)
    # a batch of two such samples sends back half as much to each
    pair = [[Value(v.data) for v in z] for _ in range(2)]
    nn.cross_entropy(pair, [target, target]).backward()
    for row in pair:
        assert grads(row) == pytest.approx([e / 2 for e in expected], abs=1e-12)


def test_softmax_then_log_sends_back_the_source_numbers_with_a_zero_probability() -> None:
    # the same case through softmax and log as separate nodes rather than the fused loss
    z = [Value(math.log(0.01)), Value(math.log(0.99)), Value(-1000.0)]
    probabilities = nn.softmax(z)
    assert probabilities[2].data == 0.0
    (-probabilities[1].log()).backward()
    assert grads(z) == pytest.approx([0.01, -0.01, 0.0], abs=1e-12)


def test_cross_entropy_and_softmax_are_stable_for_huge_logits() -> None:
    z = [Value(1000.0), Value(0.0), Value(-1000.0)]
    loss = nn.cross_entropy(z, 0)
    loss.backward()
    assert loss.data == pytest.approx(0.0, abs=1e-300)
    assert grads(z) == pytest.approx([0.0, 0.0, 0.0])
    assert nn.cross_entropy([Value(1000.0), Value(1000.0)], 1).data == pytest.approx(math.log(2))
    assert nn.cross_entropy([Value(-1000.0), Value(1000.0)], 0).data == pytest.approx(2000.0)
    assert datas(nn.softmax([Value(1000.0), Value(1000.0)])) == [0.5, 0.5]


def test_cross_entropy_with_soft_targets_and_sum_reduction() -> None:
    rows = [[0.2, -0.4, 1.0], [0.0, 0.5, -0.5]]
    targets = [[0.2, 0.8, 0.0], [0.5, 0.0, 0.5]]
    z = [[Value(v) for v in row] for row in rows]
    loss = nn.cross_entropy(z, targets, reduction="sum")
    expected = -sum(
        t * math.log(p)
        for row, target in zip(rows, targets)
        for t, p in zip(target, reference_softmax(row))
    )
    assert loss.data == pytest.approx(expected)


def test_cross_entropy_rejects_bad_targets() -> None:
    z = [Value(0.0), Value(1.0)]
    with pytest.raises(DomainError, match=r"class 2, outside 0\.\.1"):
        nn.cross_entropy(z, 2)
    with pytest.raises(DomainError, match="not a class index"):
        nn.cross_entropy(z, True)
    with pytest.raises(DomainError, match="target of length 3"):
        nn.cross_entropy(z, [0.0, 1.0, 0.0])
    with pytest.raises(DomainError, match="2 rows of logits but 1 targets"):
        nn.cross_entropy([z, z], [0])
    with pytest.raises(DomainError, match="needs a list of targets"):
        nn.cross_entropy([z, z], 0)


# ---- other losses --------------------------------------------------------------------------


def test_mse_values_and_reductions() -> None:
    p = [Value(3.0), Value(-1.0), Value(0.5)]
    t = [1.0, 1.0, 0.5]
    assert nn.mse(p, t).data == pytest.approx(8.0 / 3)
    assert nn.mse(p, t, reduction="sum").data == pytest.approx(8.0)
    assert nn.mse(Value(2.0), 1.0).data == 1.0
    batch = nn.mse([[Value(1.0), Value(2.0)], [Value(3.0), Value(4.0)]], [[0.0, 0.0], [0.0, 0.0]])
    assert batch.data == pytest.approx(30.0 / 4)
    loss = nn.mse(p, t, reduction="sum")
    loss.backward()
    assert grads(p) == pytest.approx([4.0, -4.0, 0.0])
    with pytest.raises(DomainError, match="3 predictions but 2 targets"):
        nn.mse(p, [1.0, 2.0])
    with pytest.raises(DomainError, match="reduction"):
        nn.mse(p, t, reduction="max")  # type: ignore[arg-type]


def test_the_source_quadratic_model_through_mse() -> None:
    # worked example 4: y_hat = w1 x^2 + w2 x + b at x = 1, y = 2 -> loss 9, gradients 6, 6, 6
    w1, w2, b = Value(1.0), Value(2.0), Value(2.0)
    x = 1.0
    loss = nn.mse([w1 * x**2 + w2 * x + b], [2.0], reduction="sum")
    loss.backward()
    assert loss.data == 9.0
    assert grads([w1, w2, b]) == [6.0, 6.0, 6.0]


def test_binary_cross_entropy_values_and_errors() -> None:
    p = [Value(0.9), Value(0.2)]
    loss = nn.binary_cross_entropy(p, [1.0, 0.0])
    assert loss.data == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    loss.backward()
    assert grads(p) == pytest.approx([-1 / 0.9 / 2, 1 / 0.8 / 2])
    # a probability of exactly 0 or 1 stays finite thanks to eps
    assert math.isfinite(nn.binary_cross_entropy([Value(0.0)], [1.0]).data)
    assert nn.binary_cross_entropy([Value(1.0)], [1.0]).data == pytest.approx(0.0, abs=1e-11)
    with pytest.raises(DomainError, match=r"probability 1 is 1.5, outside \[0, 1\]"):
        nn.binary_cross_entropy([Value(0.5), Value(1.5)], [1.0, 0.0])
    with pytest.raises(DomainError, match="log"):
        nn.binary_cross_entropy([Value(0.0)], [1.0], eps=0.0)
    with pytest.raises(DomainError, match="targets must be numbers in"):
        nn.binary_cross_entropy([Value(0.5)], [2.0])


def test_hinge_values_errors_and_graph_size() -> None:
    scores = [Value(2.0), Value(0.5), Value(0.5), Value(-3.0)]
    labels = [1.0, 1.0, -1.0, -1.0]
    loss = nn.hinge(scores, labels)
    assert loss.data == pytest.approx((0.0 + 0.5 + 1.5 + 0.0) / 4)
    loss.backward()
    assert grads(scores) == pytest.approx([0.0, -0.25, 0.25, 0.0])
    # per score one margin node and one relu, then a single reducing node
    assert len(topological_order(loss)) == 4 + 2 * 4 + 1
    with pytest.raises(DomainError, match="labels must be \\+1 or -1"):
        nn.hinge(scores, [1.0, 0.0, 1.0, 1.0])


def test_l2_is_one_dot_node() -> None:
    params = [Value(1.0), Value(-2.0), Value(3.0)]
    penalty = nn.l2(params)
    assert penalty.op == "dot" and penalty.data == 14.0
    penalty.backward()
    assert grads(params) == [2.0, -4.0, 6.0]


# ---- every loss against finite differences ---------------------------------------------------

LOSSES: dict[str, tuple[Callable[..., Value], list[float]]] = {
    "mse-mean": (lambda a, b, c: nn.mse([a, b, c], [0.5, -1.0, 2.0]), [0.3, 0.7, -1.2]),
    "mse-sum": (
        lambda a, b: nn.mse([[a], [b]], [[0.5], [1.0]], reduction="sum"),
        [0.3, 1.7],
    ),
    "bce": (
        lambda a, b, c: nn.binary_cross_entropy([a, b, c], [1.0, 0.0, 0.3]),
        [0.8, 0.35, 0.6],
    ),
    "bce-of-sigmoid": (
        lambda a, b: nn.binary_cross_entropy([a.sigmoid(), b.sigmoid()], [1.0, 0.0]),
        [0.4, -1.3],
    ),
    "cross-entropy-label": (
        lambda a, b, c, d: nn.cross_entropy([[a, b], [c, d]], [1, 0]),
        [0.2, -0.5, 1.5, 0.1],
    ),
    "cross-entropy-soft": (
        lambda a, b, c: nn.cross_entropy([a, b, c], [0.2, 0.3, 0.5]),
        [2.0, -1.0, 0.4],
    ),
    "softmax": (lambda a, b, c: nn.softmax([a, b, c])[1] * 3.0, [0.1, 0.9, -0.6]),
    "hinge": (lambda a, b, c: nn.hinge([a, b, c], [1.0, -1.0, 1.0]), [0.3, -0.4, 0.75]),
    "l2": (lambda a, b: nn.l2([a, b]), [0.3, -2.0]),
}


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradients_match_finite_differences(name: str) -> None:
    f, point = LOSSES[name]
    assert gradcheck(f, *point)


@settings(max_examples=30, deadline=None)
@given(st.lists(finite, min_size=2, max_size=5), st.data())
def test_cross_entropy_gradcheck_random(row: list[float], data: st.DataObject) -> None:
    label = data.draw(st.integers(0, len(row) - 1))
    assert gradcheck(lambda *z: nn.cross_entropy(list(z), label), *row, atol=1e-5, rtol=1e-3)


def test_mlp_gradients_match_finite_differences() -> None:
    model = nn.MLP(2, [3, 1], activation="tanh", seed=0)

    def loss_of_inputs(a: Value, b: Value) -> Value:
        return nn.mse([output(model, [a, b])], [0.25])

    assert gradcheck(loss_of_inputs, 0.3, -0.8)


# ---- files that are not models, and building a model from its file ---------------------

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"


def model_document(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "format": "microgradient.nn",
        "version": 1,
        "module": "MLP",
        "config": {"sizes": [2, 2, 1], "activation": "relu"},
        "state": nn.MLP(2, [2, 1], seed=3).state_dict(),
    }
    document.update(changes)
    return document


def with_state_entry(value: object) -> dict[str, object]:
    state = nn.MLP(2, [2, 1], seed=3).state_dict()
    state["layers.1.bias"] = [value]
    return model_document(state=state)


NOT_MODELS: list[tuple[str, bytes, str]] = [
    ("png", PNG_HEADER, "not UTF-8 text"),
    ("binary garbage", bytes(range(256)) * 4, "not UTF-8 text"),
    ("empty", b"", "not valid JSON"),
    ("truncated", json.dumps(model_document()).encode()[:-20], "not valid JSON"),
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("deeply nested state", b'{"format": "microgradient.nn", "state": ' + b"[" * 50_000, "JSON"),
    ("huge integer", b'{"version": ' + b"9" * 5000 + b"}", "not a model file"),
    ("huge weight", json.dumps(with_state_entry(10**400)).encode(), "finite number"),
    (
        "weight 1e999",
        json.dumps(with_state_entry(12345.5)).replace("12345.5", "1e999").encode(),
        "inf",
    ),
    ("NaN weight", json.dumps(with_state_entry(math.nan)).encode(), "nan"),
    ("Infinity weight", json.dumps(with_state_entry(-math.inf)).encode(), "-inf"),
    ("string weight", json.dumps(with_state_entry("0.5")).encode(), "should be a number"),
    ("boolean weight", json.dumps(with_state_entry(True)).encode(), "should be a number"),
    ("version true", json.dumps(model_document(version=True)).encode(), "version True"),
    ("version 1.0", json.dumps(model_document(version=1.0)).encode(), "version 1.0"),
    ("module a list", json.dumps(model_document(module=["MLP"])).encode(), "'module'"),
    ("config a list", json.dumps(model_document(config=[2, 2, 1])).encode(), "'config'"),
    ("state a list", json.dumps(model_document(state=[1.0])).encode(), "'state'"),
    ("a JSON string", b'"microgradient.nn"', "not a model file"),
]


@pytest.mark.parametrize(
    ("content", "message"), [c[1:] for c in NOT_MODELS], ids=[c[0] for c in NOT_MODELS]
)
def test_loading_what_is_not_a_model_raises_model_shape_error_and_changes_nothing(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(content)
    model = nn.MLP(2, [2, 1], seed=0)
    before = model.state_dict()
    with pytest.raises(ModelShapeError, match=re.escape(message)):
        model.load(path)
    assert model.state_dict() == before
    with pytest.raises(ModelShapeError, match=re.escape(message)):
        nn.load(path)


def test_load_builds_the_network_a_file_describes(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    for saved in [
        nn.MLP(3, [5, 4, 2], activation="tanh", seed=1),
        nn.MLP(1, [1], seed=2),
        nn.Layer(3, 2, activation="sigmoid", seed=3),
        nn.Neuron(4, activation="linear", seed=4),
    ]:
        saved.save(path)
        loaded = nn.load(path)
        assert type(loaded) is type(saved) and repr(loaded) == repr(saved)
        assert loaded.config() == saved.config()
        assert loaded.state_dict() == saved.state_dict()
        x = x_for(saved)
        assert str(loaded(x)) == str(saved(x))  # type: ignore[operator]


def x_for(model: nn.Module) -> list[float]:
    config = model.config()
    nin = config["sizes"][0] if "sizes" in config else config["nin"]
    return [0.25 * (i + 1) for i in range(nin)]


def test_load_does_not_draw_from_the_global_random_generator(tmp_path: Path) -> None:
    nn.MLP(2, [3, 1], seed=0).save(tmp_path / "model.json")
    random.seed(5)
    expected = random.random()
    random.seed(5)
    nn.load(tmp_path / "model.json")
    assert random.random() == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"module": "Affine"}, "nn.load builds MLP, Layer, Neuron"),
        ({"config": {"sizes": [2, 2, 1]}}, "config has the entries"),
        ({"config": {"sizes": [2, 2, 1], "activation": "gelu"}}, "activation 'gelu'"),
        ({"config": {"sizes": [2, 2, 1], "activation": ["relu"]}}, "activation ['relu']"),
        ({"config": {"sizes": [2, 0, 1], "activation": "relu"}}, "positive integers"),
        ({"config": {"sizes": [2, True, 1], "activation": "relu"}}, "positive integers"),
        ({"config": {"sizes": [2], "activation": "relu"}}, "positive integers"),
        ({"config": {"sizes": "2, 2, 1", "activation": "relu"}}, "positive integers"),
        # a claimed size far beyond the numbers present is refused before anything is built
        ({"config": {"sizes": [2, 10**12, 1], "activation": "relu"}}, "the file's state holds 9"),
        ({"config": {"sizes": [2, 2, 2], "activation": "relu"}}, "has 12 parameters"),
    ],
)
def test_load_refuses_a_config_it_cannot_build(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model_document(**changes)))
    with pytest.raises(ModelShapeError, match=re.escape(message)):
        nn.load(path)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_save_refuses_non_finite_weights_and_writes_nothing(tmp_path: Path, bad: float) -> None:
    model = nn.MLP(2, [3, 1], seed=0)
    model.layers[1].neurons[0].w[2].data = bad
    path = tmp_path / "model.json"
    with pytest.raises(
        DomainError, match=re.escape(f"'layers.1.weight'[0][2] of {model!r} is {bad!r}")
    ):
        model.save(path)
    assert list(tmp_path.iterdir()) == []


def test_a_saved_file_holds_only_standard_json(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    nn.MLP(2, [3, 1], seed=0).save(path)
    json.loads(path.read_text(), parse_constant=lambda token: pytest.fail(f"{token} in the file"))


def assert_loads_or_refuses(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    model = nn.MLP(2, [2, 1], seed=0)
    before = model.state_dict()
    try:
        model.load(path)
    except ModelShapeError:
        assert model.state_dict() == before
    try:
        loaded = nn.load(path)
    except ModelShapeError:
        return
    assert all(math.isfinite(p.data) for p in loaded.parameters())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=300))
def test_fuzz_load_with_arbitrary_bytes(tmp_path: Path, content: bytes) -> None:
    assert_loads_or_refuses(tmp_path / "fuzz.json", content)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**1000)
    | st.floats()
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# documents that pass the format check, so the fuzzing reaches the config and state checks
model_like = st.fixed_dictionaries(
    {
        "format": st.just("microgradient.nn"),
        "version": st.sampled_from([1, 1.0, True, 2]),
        "module": st.sampled_from(["MLP", "Layer", "Neuron", "Other"]) | json_values,
        "config": st.fixed_dictionaries(
            {
                "sizes": st.lists(st.integers(-1, 3), max_size=4) | json_values,
                "activation": st.sampled_from(["relu", "tanh", "swish"]) | json_values,
            },
            optional={"nin": st.integers(-1, 3), "nout": st.integers(-1, 3)},
        ),
        "state": st.dictionaries(
            st.sampled_from(["layers.0.weight", "layers.0.bias", "weight", "bias", "x"]),
            json_values,
        ),
    }
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=json_values | model_like)
def test_fuzz_load_with_arbitrary_json(tmp_path: Path, document: object) -> None:
    assert_loads_or_refuses(tmp_path / "fuzz.json", json.dumps(document).encode())


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4), position=st.integers(0, 10**6))
def test_fuzz_one_weight_made_non_finite_is_refused(
    tmp_path: Path, sizes: list[int], position: int
) -> None:
    model = nn.MLP(sizes[0], sizes[1:], seed=0)
    path = tmp_path / "model.json"
    model.save(path)
    text = path.read_text()
    numbers_at = [m.start() for m in re.finditer(r"-?\d+\.\d+(e-?\d+)?", text)]
    where = numbers_at[position % len(numbers_at)]
    end = re.compile(r"-?\d+\.\d+(e-?\d+)?").match(text, where).end()
    path.write_text(text[:where] + "NaN" + text[end:])
    assert_loads_or_refuses(path, path.read_bytes())
    with pytest.raises(ModelShapeError, match="nan"):
        nn.load(path)


def test_print_shows_the_architecture_and_the_parameter_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print(nn.MLP(3, [4, 2], activation="tanh", seed=0))
    print(nn.Neuron(2, seed=0))
    assert capsys.readouterr().out.splitlines() == [
        "MLP(3, [4, 2], activation='tanh'): 26 parameters",
        "  layers[0]: 3 -> 4, tanh, 16 parameters",
        "  layers[1]: 4 -> 2, linear, 10 parameters",
        "Neuron(2, activation='relu'): 3 parameters",
    ]
