"""Optimisers: update parameters in place from their gradients.

Both follow PyTorch's conventions, so results can be checked against it. Each
takes a list of ``Value``s, or an :class:`~microgradient.Parameters` (the
parameters in one flat array while a traced program trains), which it updates
with a few array operations per step instead of a loop over the Values, with
the same numbers.

>>> from microgradient import Value
>>> w = Value(1.0)
>>> opt = SGD([w], lr=0.1)
>>> (w * w).backward()
>>> opt.step()
>>> w.data
0.8
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from microgradient.engine import Value
from microgradient.errors import DomainError, OperandTypeError
from microgradient.program import Parameters

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Holds the parameters; subclasses implement :meth:`step`.

    ``lr`` is a plain attribute, so a schedule can change it between steps.
    A gradient that is a ``Value`` (after ``backward(create_graph=True)``) is
    read through its ``data``. Given a :class:`~microgradient.Parameters`,
    ``flat`` is it and ``step()`` updates ``flat.data`` from ``flat.grad``
    (``params`` lists its Values, which change only on ``flat.write_back()``).
    """

    params: list[Value]
    flat: Parameters | None
    lr: float
    weight_decay: float

    def __init__(
        self, params: Iterable[Value] | Parameters, lr: float, weight_decay: float
    ) -> None:
        who = type(self).__name__
        self.flat = params if isinstance(params, Parameters) else None
        self.params = list(params.values if isinstance(params, Parameters) else params)
        if not self.params:
            raise DomainError(f"{who}: the parameter list is empty")
        seen: set[int] = set()
        for i, p in enumerate(self.params):
            if not isinstance(p, Value):
                raise OperandTypeError(f"{who}: parameter {i} is a {type(p).__name__}, not a Value")
            if id(p) in seen:
                # it would be updated twice per step
                raise DomainError(f"{who}: parameter {i} appears more than once")
            seen.add(id(p))
        self.lr = _number(who, "lr", lr, at_least=0.0)
        self.weight_decay = _number(who, "weight_decay", weight_decay, at_least=0.0)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0.0 (``flat.grad``, for a Parameters)."""
        if self.flat is not None:
            self.flat.grad = self.flat.xp.zeros_like(self.flat.data)
            return
        for p in self.params:
            p.grad = 0.0

    def _flat_gradient(self, flat: Parameters) -> Any:
        """``flat.grad`` plus the weight decay term, as an array."""
        if self.weight_decay:
            return flat.grad + self.weight_decay * flat.data
        return flat.grad

    def step(self) -> None:
        """Update every parameter's ``data`` from its ``grad``."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, with optional heavy-ball momentum and L2 weight decay.

    Per parameter, with ``g = grad + weight_decay * data``::

        velocity = momentum * velocity + g      (velocity starts at 0)
        data    -= lr * velocity

    which is PyTorch's ``SGD`` (no dampening, no Nesterov). With
    ``momentum=0`` it is plain ``data -= lr * g``.

    >>> w = Value(1.0)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     w.backward()  # d w / d w = 1
    ...     opt.step()
    >>> round(w.data, 10)  # 1 - 0.1 * 1 - 0.1 * (0.9 + 1)
    0.71
    """

    momentum: float

    def __init__(
        self,
        params: Iterable[Value] | Parameters,
        lr: float,
        momentum: float = 0.0,
        *,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = _number("SGD", "momentum", momentum, at_least=0.0, below=1.0)
        self._velocity: Any = [0.0] * len(self.params)
        if self.flat is not None:
            self._velocity = self.flat.xp.zeros_like(self.flat.data)

    def step(self) -> None:
        lr, momentum, decay = self.lr, self.momentum, self.weight_decay
        if self.flat is not None:  # the same arithmetic, on whole arrays
            g = self._flat_gradient(self.flat)
            if momentum:
                g = self._velocity = momentum * self._velocity + g
            self.flat.data = self.flat.data - lr * g
            return
        velocity = self._velocity
        for i, p in enumerate(self.params):
            g = float(p.grad)
            if decay:
                g += decay * p.data
            if momentum:
                g = velocity[i] = momentum * velocity[i] + g
            p.data -= lr * g


class Adam(Optimizer):
    """Adam with bias correction (Kingma and Ba), PyTorch's defaults and formula.

    Per parameter, at step ``t`` (from 1), with ``g = grad + weight_decay * data``::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        data -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``weight_decay`` adds an L2 term to the gradient (PyTorch's ``Adam``, not ``AdamW``).

    >>> w = Value(1.0)
    >>> opt = Adam([w], lr=0.1)
    >>> w.backward()
    >>> opt.step()  # the first step moves by about lr whatever the gradient's size
    >>> round(w.data, 6)
    0.9

    Over an ``mg.Parameters``, the same update on its flat array:

    >>> import microgradient as mg
    >>> w = Value(1.0)
    >>> params = mg.Parameters([w])
    >>> opt = Adam(params, lr=0.1)
    >>> _ = mg.trace(w * 5.0).run(parameters=params)  # params.grad == [5.0]
    >>> opt.step()
    >>> round(float(params.data[0]), 6), w.data  # the Value waits for params.write_back()
    (0.9, 1.0)
    """

    betas: tuple[float, float]
    eps: float

    def __init__(
        self,
        params: Iterable[Value] | Parameters,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise DomainError(f"Adam: betas must be a pair of numbers, got {betas!r}")
        self.betas = (
            _number("Adam", "betas[0]", betas[0], at_least=0.0, below=1.0),
            _number("Adam", "betas[1]", betas[1], at_least=0.0, below=1.0),
        )
        self.eps = _number("Adam", "eps", eps, at_least=0.0)
        self.steps = 0
        self._m: Any = [0.0] * len(self.params)
        self._v: Any = [0.0] * len(self.params)
        if self.flat is not None:
            self._m = self.flat.xp.zeros_like(self.flat.data)
            self._v = self.flat.xp.zeros_like(self.flat.data)

    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        lr, eps, decay = self.lr, self.eps, self.weight_decay
        step_size = lr / (1.0 - beta1**self.steps)
        root_correction = math.sqrt(1.0 - beta2**self.steps)
        if self.flat is not None:  # the same arithmetic, on whole arrays
            g = self._flat_gradient(self.flat)
            m = self._m = beta1 * self._m + (1.0 - beta1) * g
            v = self._v = beta2 * self._v + (1.0 - beta2) * g * g
            root = self.flat.xp.sqrt(v)
            self.flat.data = self.flat.data - step_size * m / (root / root_correction + eps)
            return
        m, v = self._m, self._v
        for i, p in enumerate(self.params):
            g = float(p.grad)
            if decay:
                g += decay * p.data
            m[i] = beta1 * m[i] + (1.0 - beta1) * g
            v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
            p.data -= step_size * m[i] / (math.sqrt(v[i]) / root_correction + eps)


def _number(who: str, name: str, x: object, *, at_least: float, below: float = math.inf) -> float:
    if not isinstance(x, numbers.Real) or isinstance(x, bool):
        raise OperandTypeError(f"{who}: {name} must be a number, got {type(x).__name__} {x!r}")
    value = float(x)
    if not at_least <= value < below:
        bound = f"in [{at_least}, {below})" if below != math.inf else f">= {at_least}"
        raise DomainError(f"{who}: {name} must be {bound} and finite, got {x!r}")
    return value
