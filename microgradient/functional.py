"""Derivatives as functions: ``grad``, ``value_and_grad``, ``hessian``.

These never touch the ``.grad`` of the caller's nodes, so they compose:
``grad(grad(f))`` is the second derivative of ``f``. They record the graphs they
need even inside :func:`~microgradient.no_grad` (as PyTorch's functional
transforms do), so they never return a 0 for a derivative they failed to see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from microgradient.engine import (
    Operand,
    Value,
    _propagate,
    enable_grad,
    is_recording,
    topological_order,
)
from microgradient.errors import OperandTypeError


def gradients(output: Operand, inputs: Sequence[Value], *, create_graph: bool = False) -> list[Any]:
    """d(output)/d(input) for each input, leaving every node's ``.grad`` as it was.

    An input that ``output`` does not depend on gets 0.0. With
    ``create_graph=True`` the results are ``Value``s that can be differentiated again.

    >>> x = Value(3.0)
    >>> gradients(x * x, [x])
    [6.0]
    """
    if not isinstance(output, Value):
        return [0.0 for _ in inputs]
    if not is_recording() and not output.parents and all(output is not x for x in inputs):
        raise OperandTypeError(
            "gradients: the output has no recorded graph, as happens when it is computed "
            "inside mg.no_grad(); compute it outside no_grad, or use mg.grad(f), which "
            "records what it needs"
        )
    order = topological_order(output)
    # two flat lists rather than a tuple per node: nothing for the garbage collector
    # to walk (an input listed twice gets back the same grad twice)
    nodes = [*order, *inputs]
    previous = [node.grad for node in nodes]
    try:
        for x in inputs:
            x.grad = None if create_graph else 0.0
        _propagate(order, 1.0, create_graph)
        return [0.0 if x.grad is None else x.grad for x in inputs]
    finally:
        for node, grad in zip(nodes, previous):
            node.grad = grad


def value_and_grad(
    f: Callable[..., Operand], argnums: int | Sequence[int] = 0
) -> Callable[..., tuple[Any, Any]]:
    """Like :func:`grad`, but the returned function gives ``(f(*args), derivative)``.

    >>> value_and_grad(lambda x: x**3)(2.0)
    (8.0, 12.0)
    """
    positions = _positions(argnums)

    def evaluate(*args: Operand) -> tuple[Any, Any]:
        for i in positions:
            if not 0 <= i < len(args):
                raise OperandTypeError(
                    f"grad: argnums {i} is out of range for a call with {len(args)} argument(s)"
                )
        nested = any(isinstance(a, Value) for a in args)
        inputs = [a if isinstance(a, Value) else Value(a) for a in args]
        with enable_grad():
            output = f(*inputs)
            derivatives = gradients(output, [inputs[i] for i in positions], create_graph=nested)
        if not nested:
            output = output.data if isinstance(output, Value) else float(output)
        result = derivatives[0] if isinstance(argnums, int) else tuple(derivatives)
        return output, result

    return evaluate


def _positions(argnums: object) -> tuple[int, ...]:
    """argnums as a tuple of ints; True, 1.0 or "0" are refused rather than taken as 1 or 0."""
    positions = (argnums,) if isinstance(argnums, int) else argnums
    if not isinstance(positions, tuple | list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in positions
    ):
        raise OperandTypeError(
            f"grad: argnums must be an int or a tuple of ints, got {type(argnums).__name__} "
            f"{argnums!r}"
        )
    return tuple(positions)


def grad(f: Callable[..., Operand], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The derivative of ``f`` with respect to argument ``argnums`` (an int or a tuple of ints).

    Called with plain numbers it returns floats; called with ``Value``s (as
    happens inside another ``grad``) it returns ``Value``s, so it composes.

    >>> f = lambda x: x**3
    >>> grad(f)(2.0), grad(grad(f))(2.0), grad(grad(grad(f)))(2.0)
    (12.0, 12.0, 6.0)
    >>> grad(lambda x, y: x * y, argnums=(0, 1))(2.0, 5.0)
    (5.0, 2.0)
    """
    with_value = value_and_grad(f, argnums)
    derivative = lambda *args: with_value(*args)[1]  # noqa: E731
    derivative.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return derivative


def hessian(f: Callable[..., Operand]) -> Callable[..., list[list[float]]]:
    """The matrix of second derivatives of ``f`` with respect to all its arguments.

    >>> hessian(lambda x, y: x * x * y)(1.0, 2.0)
    [[4.0, 2.0], [2.0, 0.0]]
    """

    def matrix(*args: float) -> list[list[float]]:
        inputs = [Value(a) for a in args]
        with enable_grad():
            first = gradients(f(*inputs), inputs, create_graph=True)
            return [
                [float(d) for d in gradients(row, inputs)]
                if isinstance(row, Value)
                else [0.0] * len(inputs)
                for row in first
            ]

    return matrix
