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
    """scikit-learn's ``make_moons`` (the demo's data set) without scikit-learn; labels are ±1."""
    rng = random.Random(seed)
    half = n // 2
    points: list[tuple[float, float]] = []
    labels: list[float] = []
    for i in range(n):
        outer = i < half
        k = i if outer else i - half
        m = half if outer else n - half
        t = math.pi * k / (m - 1)
        x, y = (math.cos(t), math.sin(t)) if outer else (1.0 - math.cos(t), 0.5 - math.sin(t))
        points.append((x + rng.gauss(0.0, noise), y + rng.gauss(0.0, noise)))
        labels.append(-1.0 if outer else 1.0)
    return points, labels


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
        for p in params:
            p.grad = None
        total_loss.backward()
        with t.no_grad():
            for p in params:
                p -= learning_rate(k) * p.grad
        return float(total_loss.item())

    return step


def handwritten_step(layers: Layers, points: list[Any], labels: list[float]) -> Step:
    model = HandWrittenMLP(layers)
    return lambda k: model.step(points, labels, learning_rate(k), ALPHA)


def _flat(layers: Layers) -> list[float]:
    return [p for layer in layers for w, b in layer for p in (*w, b)]


def contenders() -> dict[str, Callable[[Layers, list[Any], list[float]], Step] | str]:
    """Each column's step factory, or the reason it is missing."""
    return {
        "microgradient": microgradient_step,
        "micrograd": micrograd_step if micrograd_nn is not None else "not installed",
        "torch": torch_step if torch is not None else "not installed",
        "hand-written": handwritten_step,
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
    check_agreement()
    points, labels = moons()
    layers = initial_layers()
    row = Row("MLP step 2-16-16-1, 100 points", "ms")
    timers = {}
    for name, factory in contenders().items():
        if isinstance(factory, str):
            row.cells[name] = Cell(text=factory)
            continue
        step = factory(layers, points, labels)
        counter = iter(range(10**9))
        timers[name] = lambda step=step, counter=counter: timed(lambda: step(next(counter)))
    for name, samples in interleaved(timers, repeats).items():
        row.cells[name] = Cell(median(samples))
    return [row]
