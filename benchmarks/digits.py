"""W3: one epoch of the digits classifier, eager, traced and batched, and in PyTorch.

scikit-learn's ``load_digits`` (1797 images of 8x8 pixels, scaled to [0, 1]), an
MLP 64-32-10 with tanh hidden units and a linear output, softmax cross-entropy,
plain SGD on shuffled minibatches of 32 (the last one holds the remaining 5).
Every contender starts from the same weights and sees the same minibatches;
:func:`check_agreement` verifies that they compute the same losses first.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

import microgradient as mg
from benchmarks.common import Cell, Row, interleaved, median, timed, torch

HIDDEN, CLASSES, BATCH, LR = 32, 10, 32, 0.5

Epoch = Callable[[], list[float]]  # trains one epoch; returns the minibatch losses


def load() -> tuple[list[list[float]], list[int]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [[float(v) / 16.0 for v in row] for row in digits.data]
    return images, [int(t) for t in digits.target]


def minibatches(n: int, seed: int = 0) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i : i + BATCH] for i in range(0, n, BATCH)]


def _model(seed: int = 0) -> tuple[Any, list[mg.Value]]:
    from microgradient import nn

    model = nn.MLP(64, [HIDDEN, CLASSES], activation="tanh", seed=seed)
    return model, model.parameters()


def eager_epoch(images: list[list[float]], targets: list[int]) -> Epoch:
    """microgradient's own idiom: a graph per minibatch, ``nn.cross_entropy``, ``optim.SGD``."""
    from microgradient import nn, optim

    model, params = _model()
    optimizer = optim.SGD(params, lr=LR)
    batches = minibatches(len(images))

    def epoch() -> list[float]:
        losses = []
        for batch in batches:
            logits = [model(images[i]) for i in batch]
            loss = nn.cross_entropy(logits, [targets[i] for i in batch])
            model.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.data)
        return losses

    return epoch


def traced_epoch(images: list[list[float]], targets: list[int]) -> Epoch:
    """One sample's loss traced once, with its pixels and one-hot target as inputs.

    ``log(sum(exp(z))) - t . z`` has the same structure for every sample (a loss
    that picked the target's logit with a Python index would not); each minibatch
    is one batched run, fed the minibatch's images and one-hot targets as two
    matrices (a tuple of inputs takes a matrix with a row per sample), seeded with
    1/B so the parameters get the mean's gradient;
    the parameters live in one flat array (``mg.Parameters``) while it trains.
    """
    import numpy as np

    model, params = _model()
    flat = mg.Parameters(params)
    pixels = [mg.Value(0.0, label=f"x{i}") for i in range(64)]
    onehot = [mg.Value(0.0, label=f"t{k}") for k in range(CLASSES)]
    logits = model(pixels)
    program = mg.trace(mg.sum([z.exp() for z in logits]).log() - mg.dot(onehot, logits))
    x = np.array(images)
    t = np.eye(CLASSES)[targets]
    batches = [np.array(b) for b in minibatches(len(images))]
    image_inputs, target_inputs = tuple(pixels), tuple(onehot)

    def epoch() -> list[float]:
        losses = []
        for batch in batches:
            feed = {image_inputs: x[batch], target_inputs: t[batch]}
            result = program.run(feed, gradient=1.0 / len(batch), parameters=flat)
            flat.data -= LR * flat.grad
            losses.append(float(result.value.mean()))
        return losses

    return epoch


def torch_epoch(images: list[list[float]], targets: list[int]) -> Epoch:
    """PyTorch tensors (float64), the same weights, ``F.cross_entropy``."""
    assert torch is not None
    t = torch
    model, _ = _model()
    weights = [
        t.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=t.float64)
        for layer in model.layers
    ]
    biases = [
        t.tensor([n.b.data for n in layer.neurons], dtype=t.float64) for layer in model.layers
    ]
    params = [*weights, *biases]
    for p in params:
        p.requires_grad_(True)
    x = t.tensor(images, dtype=t.float64)
    y = t.tensor(targets)
    batches = [t.tensor(b) for b in minibatches(len(images))]

    def epoch() -> list[float]:
        losses = []
        for batch in batches:
            hidden = t.tanh(x[batch] @ weights[0].T + biases[0])
            loss = t.nn.functional.cross_entropy(hidden @ weights[1].T + biases[1], y[batch])
            for p in params:
                p.grad = None
            loss.backward()
            with t.no_grad():
                for p in params:
                    p -= LR * p.grad
            losses.append(float(loss.item()))
        return losses

    return epoch


def contenders() -> dict[str, Callable[[list[list[float]], list[int]], Epoch] | str]:
    return {
        "microgradient": eager_epoch,
        "traced, batched": traced_epoch,
        "torch, batched": torch_epoch if torch is not None else "not installed",
    }


def check_agreement(images: list[list[float]], targets: list[int]) -> None:
    """Every contender gives the same minibatch losses over one epoch from the same start."""
    reference: list[float] | None = None
    for name, factory in contenders().items():
        if isinstance(factory, str):
            continue
        losses = factory(images, targets)()
        if reference is None:
            reference = losses
        elif not all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(losses, reference)):
            raise AssertionError(f"{name} disagrees: losses {losses[:3]} vs {reference[:3]}")


def run(repeats: int) -> list[Row]:
    """W3: one epoch's median time per contender, and what tracing costs once."""
    images, targets = load()
    check_agreement(images, targets)
    row = Row("W3 digits MLP 64-32-10, one epoch (57 minibatches)", "s")
    once = Row("W3 traced: build and trace (once)", "s")
    timers = {}
    for name, factory in contenders().items():
        if isinstance(factory, str):
            row.cells[name] = Cell(text=factory)
            continue
        start = time.perf_counter()
        epoch = factory(images, targets)
        if name.startswith("traced"):
            once.cells[name] = Cell(time.perf_counter() - start)
        timers[name] = lambda epoch=epoch: timed(epoch)
    for name, samples in interleaved(timers, repeats).items():
        row.cells[name] = Cell(median(samples))
    return [row, once]
