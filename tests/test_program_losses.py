"""The nn losses traced once and replayed on other batches: labels enter as inputs."""

from __future__ import annotations

import numpy as np
import pytest

import microgradient as mg
from microgradient import Value, nn

RNG = np.random.default_rng(7)


def leaves(prefix: str, n: int) -> list[Value]:
    return [Value(0.0, label=f"{prefix}{i}") for i in range(n)]


def test_hinge_with_a_label_input_is_valid_for_every_label() -> None:
    s, y = Value(0.3, label="s"), Value(1.0, label="y")
    program = mg.trace(nn.hinge([s], [y]))
    scores = RNG.normal(size=6)
    labels = np.array([1.0, -1.0, 1.0, -1.0, -1.0, 1.0])
    result = program.run({s: scores, y: labels})
    for i in range(6):
        score = Value(float(scores[i]))
        eager = nn.hinge([score], [float(labels[i])])
        eager.backward()
        assert float(result.value[i]) == pytest.approx(eager.data, rel=1e-12)
        assert float(result.grads[s][i]) == pytest.approx(score.grad, rel=1e-12)


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_cross_entropy_with_one_hot_inputs_is_valid_for_every_label_and_logit(scale: float) -> None:
    z, t = leaves("z", 3), leaves("t", 3)
    t[0].data = 1.0  # traced at small logits and label 0
    program = mg.trace(nn.cross_entropy(z, t))
    logits = RNG.normal(size=(5, 3)) * scale  # the shift is a node: no overflow at 1000
    classes = [2, 0, 1, 1, 0]
    one_hot = np.eye(3)[classes]
    feed = {**{z[j]: logits[:, j] for j in range(3)}, **{t[j]: one_hot[:, j] for j in range(3)}}
    result = program.run(feed)
    for i in range(5):
        row = [Value(float(v)) for v in logits[i]]
        eager = nn.cross_entropy(row, classes[i])
        eager.backward()
        assert float(result.value[i]) == pytest.approx(eager.data, rel=1e-9, abs=1e-12)
        for j in range(3):
            assert float(result.grads[z[j]][i]) == pytest.approx(row[j].grad, abs=1e-12)


def test_softmax_traced_at_small_logits_stays_stable_at_large_ones() -> None:
    z = leaves("z", 2)
    program = mg.trace(nn.softmax(z)[0])
    result = program.run({z[0]: [1000.0, -1000.0], z[1]: [1000.0, 0.0]})
    assert np.allclose(np.asarray(result.value), [0.5, 0.0])


def test_binary_cross_entropy_with_target_inputs_keeps_both_terms() -> None:
    p, t = Value(0.5, label="p"), Value(1.0, label="t")
    loss = nn.binary_cross_entropy([p], [t])
    program = mg.trace(loss)
    probabilities = np.array([0.2, 0.9, 0.5])
    targets = np.array([0.0, 1.0, 0.3])
    result = program.run({p: probabilities, t: targets})
    for i in range(3):
        q = Value(float(probabilities[i]))
        eager = nn.binary_cross_entropy([q], [float(targets[i])])
        eager.backward()
        assert float(result.value[i]) == pytest.approx(eager.data, rel=1e-12)
        assert float(result.grads[p][i]) == pytest.approx(q.grad, rel=1e-12)


def test_a_number_label_is_a_constant_of_the_program() -> None:
    s = Value(0.3, label="s")
    program = mg.trace(nn.hinge([s], [1.0]))  # the label 1.0 chose the form 1 - s
    assert "y" not in program.labels
    with pytest.raises(mg.TracingError, match="constant of the program"):
        program.run({"y": -1.0})


def test_mlp_classifier_trains_on_batches_with_a_traced_loss() -> None:
    model = nn.MLP(2, [8, 3], activation="tanh", seed=1)
    x, t = leaves("x", 2), leaves("t", 3)
    t[0].data = 1.0
    program = mg.trace(nn.cross_entropy(model(x), t))
    points = RNG.normal(size=(60, 2))
    classes = (points[:, 0] > 0).astype(int) + (points[:, 1] > 0).astype(int)
    one_hot = np.eye(3)[classes]
    feed = {**{x[j]: points[:, j] for j in range(2)}, **{t[j]: one_hot[:, j] for j in range(3)}}
    optimizer = mg.optim.Adam(model.parameters(), lr=0.05)
    first = float(np.mean(program.run(feed).value))
    for _ in range(40):
        optimizer.zero_grad()
        program.run(feed, gradient=1 / 60).accumulate_grads()
        optimizer.step()
    assert float(np.mean(program.run(feed).value)) < 0.6 * first
