"""Benchmark 1: one training step of micrograd's demo, in each library's own idiom.

A 2-16-16-1 MLP (ReLU hidden layers, linear output) on 100 two-dimensional
"moons" points; loss = mean hinge loss + 1e-4 * sum of squared parameters (as in
micrograd's ``demo.ipynb``); plain SGD with the demo's learning-rate schedule.
Every contender starts from the same weights and takes the same steps, so each
repetition does the same work in every library; :func:`check_agreement` verifies
that they compute the same thing before anything is timed.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable
from typing import Any

import microgradient as mg
from benchmarks.common import Cell, Row, interleaved, median, micrograd_nn, timed, torch
from benchmarks.handwritten import HandWrittenMLP, Layers

SIZES = [16, 16, 1]
ALPHA = 1e-4


def moons(
    n: int = 100, noise: float = 0.1, seed: int = 1
) -> tuple[list[tuple[float, float]], list[float]]:
    """The demo's data set: scikit-learn's ``make_moons``, with labels ±1 as the demo uses."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return [(float(a), float(b)) for a, b in x], [2.0 * float(t) - 1.0 for t in y]


def initial_layers(seed: int = 0) -> Layers:
    """micrograd's initialisation: weights uniform in [-1, 1], biases 0."""
    rng = random.Random(seed)
    sizes = [2, *SIZES]
    return [
        [([rng.uniform(-1.0, 1.0) for _ in range(nin)], 0.0) for _ in range(nout)]
        for nin, nout in itertools.pairwise(sizes)
    ]


def learning_rate(k: int) -> float:
    return 1.0 - 0.9 * k / 100  # the demo's schedule


# ---- the contenders: each builds a model and returns step(k) -> loss -----------------

Step = Callable[[int], float]


def microgradient_step(layers: Layers, points: list[Any], labels: list[float]) -> Step:
    from microgradient import nn, optim

    model = nn.MLP(2, SIZES, activation="relu", seed=0)
    for p, x in zip(model.parameters(), _flat(layers), strict=True):
        p.data = x
    params = model.parameters()
    optimizer = optim.SGD(params, lr=learning_rate(0))

    def step(k: int) -> float:
        scores = [model(list(x)) for x in points]
        loss = nn.hinge(scores, labels) + ALPHA * mg.dot(params, params)
        model.zero_grad()
        loss.backward()
        optimizer.lr = learning_rate(k)
        optimizer.step()
        return loss.data

    return step


def micrograd_step(layers: Layers, points: list[Any], labels: list[float]) -> Step:
    assert micrograd_nn is not None
    model = micrograd_nn.MLP(2, SIZES)
    for p, x in zip(model.parameters(), _flat(layers), strict=True):
        p.data = x
    Value = micrograd_nn.Value

    def step(k: int) -> float:  # the demo's loss() and update, verbatim in spirit
        inputs = [list(map(Value, x)) for x in points]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(labels, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = ALPHA * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        model.zero_grad()
        total_loss.backward()
        for p in model.parameters():
            p.data -= learning_rate(k) * p.grad
        return total_loss.data  # type: ignore[no-any-return]

    return step


def torch_step(layers: Layers, points: list[Any], labels: list[float]) -> Step:
    """Scalar PyTorch: micrograd's code with every number a 0-dimensional float64 tensor."""
    assert torch is not None
    t = torch

    def scalar(x: float, grad: bool = False) -> Any:
        return t.tensor(x, dtype=t.float64, requires_grad=grad)

    model = [
        [([scalar(w, True) for w in ws], scalar(b, True)) for ws, b in layer] for layer in layers
    ]
    params = [p for layer in model for ws, b in layer for p in (*ws, b)]
    last = len(model) - 1

    def forward(x: list[Any]) -> Any:
        for i, layer in enumerate(model):
            acts = [sum((w * xi for w, xi in zip(ws, x)), b) for ws, b in layer]
            x = acts if i == last else [a.relu() for a in acts]
        return x[0]

    def step(k: int) -> float:
        inputs = [[scalar(a), scalar(b)] for a, b in points]
        scores = [forward(x) for x in inputs]
        losses = [(1 + -yi * si).relu() for yi, si in zip(labels, scores)]
        total_loss = sum(losses) * (1.0 / len(losses)) + ALPHA * sum(p * p for p in params)
        return _torch_sgd_step(total_loss, params, k)

    return step


def _torch_sgd_step(total_loss: Any, params: list[Any], k: int) -> float:
    """Backpropagate ``total_loss`` into fresh grads and take step ``k`` of plain SGD."""
    assert torch is not None
    for p in params:
        p.grad = None
    total_loss.backward()
    with torch.no_grad():
        for p in params:
            p -= learning_rate(k) * p.grad
    return float(total_loss.item())


def handwritten_step(layers: Layers, points: list[Any], labels: list[float]) -> Step:
    model = HandWrittenMLP(layers)
    return lambda k: model.step(points, labels, learning_rate(k), ALPHA)


def torch_batched_step(layers: Layers, points: list[Any], labels: list[float]) -> Step:
    """PyTorch as it is meant to be used: the 100 points as one (100, 2) float64 tensor."""
    assert torch is not None
    t = torch
    weights = [
        t.tensor([w for w, _ in layer], dtype=t.float64, requires_grad=True) for layer in layers
    ]
    biases = [
        t.tensor([b for _, b in layer], dtype=t.float64, requires_grad=True) for layer in layers
    ]
    params = [*weights, *biases]
    x = t.tensor(points, dtype=t.float64)
    y = t.tensor(labels, dtype=t.float64)

    def step(k: int) -> float:
        h = x
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = h @ w.T + b
            if i < len(weights) - 1:
                h = h.relu()
        data_loss = (1 - y * h[:, 0]).relu().mean()
        total_loss = data_loss + ALPHA * sum((p * p).sum() for p in params)
        return _torch_sgd_step(total_loss, params, k)

    return step


def _model(layers: Layers) -> tuple[Any, list[mg.Value], Any]:
    from microgradient import nn, optim

    model = nn.MLP(2, SIZES, activation="relu", seed=0)
    params = model.parameters()
    for p, x in zip(params, _flat(layers), strict=True):
        p.data = x
    return model, params, optim.SGD(params, lr=learning_rate(0))


def traced_step(layers: Layers, points: list[Any], labels: list[float]) -> Step:
    """Trace the whole step's loss once; each step replays it as straight-line Python.

    The points are constants of the traced graph (the demo trains on the same 100
    points every step); the parameters are its inputs, kept in one flat array
    (``mg.Parameters``) that the SGD update changes in place.
    """
    from microgradient import nn

    model, params, _ = _model(layers)
    loss = nn.hinge([model(list(x)) for x in points], labels) + ALPHA * mg.dot(params, params)
    program = mg.trace(loss)
    flat = mg.Parameters(params)

    def step(k: int) -> float:
        result = program.run(parameters=flat)
        flat.data -= learning_rate(k) * flat.grad
        return float(result.value)

    return step


def traced_batched_step(layers: Layers, points: list[Any], labels: list[float]) -> Step:
    """Trace one sample's loss, with the point and its label as inputs; run all 100 at once.

    Sample i's loss is ``relu(1 - y_i * score_i) + ALPHA * |params|^2``; seeding the
    backward pass with 1/100 makes the parameters' gradients those of the mean over
    the batch, which is the demo's loss (the penalty is the same in every sample).
    """
    import numpy as np

    model, params, _ = _model(layers)
    x1, x2, y = mg.Value(0.0, label="x1"), mg.Value(0.0, label="x2"), mg.Value(1.0, label="y")
    score = model([x1, x2])
    program = mg.trace((1.0 - y * score).relu() + ALPHA * mg.dot(params, params))
    feed = {x1: np.array([p[0] for p in points]), x2: np.array([p[1] for p in points])}
    feed[y] = np.array(labels)
    batch = len(points)

    flat = mg.Parameters(params)

    def step(k: int) -> float:
        result = program.run(feed, gradient=1.0 / batch, parameters=flat)
        flat.data -= learning_rate(k) * flat.grad
        return float(result.value.mean())

    return step


def _flat(layers: Layers) -> list[float]:
    return [p for layer in layers for w, b in layer for p in (*w, b)]


def contenders() -> dict[str, Callable[[Layers, list[Any], list[float]], Step] | str]:
    """Each contender's step factory, or the reason it is missing."""
    missing_torch = "not installed"
    return {
        "microgradient": microgradient_step,
        "micrograd": micrograd_step if micrograd_nn is not None else "not installed",
        "torch": torch_step if torch is not None else missing_torch,
        "hand-written": handwritten_step,
        "traced": traced_step,
        "traced, batched": traced_batched_step,
        "torch, batched": torch_batched_step if torch is not None else missing_torch,
    }


def check_agreement(steps: int = 3) -> None:
    """Every contender gives the same losses over a few steps from the same start."""
    points, labels = moons()
    layers = initial_layers()
    reference: list[float] | None = None
    for name, factory in contenders().items():
        if isinstance(factory, str):
            continue
        step = factory(layers, points, labels)
        losses = [step(k) for k in range(steps)]
        if reference is None:
            reference = losses
        elif not all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(losses, reference)):
            raise AssertionError(f"{name} disagrees: losses {losses} vs {reference}")


def run(repeats: int) -> list[Row]:
    """W1: the step's median time per contender, and what tracing costs once."""
    check_agreement()
    points, labels = moons()
    layers = initial_layers()
    row = Row("W1 MLP step 2-16-16-1, 100 points", "ms")
    once = Row("W1 traced: build, trace and the first two runs (once)", "ms")
    timers = {}
    for name, factory in contenders().items():
        if isinstance(factory, str):
            row.cells[name] = Cell(text=factory)
            continue
        counter = iter(range(10**9))
        start = time.perf_counter()
        step = factory(layers, points, labels)
        if name.startswith("traced"):
            # a program this large runs first on loop kernels and compiles on its second run
            step(next(counter))
            step(next(counter))
            once.cells[name] = Cell(time.perf_counter() - start)
        timers[name] = lambda step=step, counter=counter: timed(lambda: step(next(counter)))
    for name, samples in interleaved(timers, repeats).items():
        row.cells[name] = Cell(median(samples))
    return [row, once]
