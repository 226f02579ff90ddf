"""The exceptions microgradient raises.

Each one also derives from the built-in exception a Python user would expect
(``ValueError``, ``ZeroDivisionError``, ...), so ``except ValueError`` keeps
working, while ``except microgradient.MicrogradientError`` catches them all.
"""

from __future__ import annotations


class MicrogradientError(Exception):
    """Base class of every exception raised by microgradient."""


class OperandTypeError(MicrogradientError, TypeError):
    """Something that is not a real number was given where a number is needed.

    >>> from microgradient import Value
    >>> Value("3")
    Traceback (most recent call last):
    microgradient.errors.OperandTypeError: Value: expected a real number (int or float), got str '3'
    """


class DomainError(MicrogradientError, ValueError):
    """An operation was applied outside its domain, e.g. ``log`` of a value <= 0."""


class DivisionByZeroError(MicrogradientError, ZeroDivisionError):
    """A division by zero, or zero raised to a negative power."""


class FloatOverflowError(MicrogradientError, OverflowError):
    """A result is too large for a float, e.g. ``exp(1000)``."""


class GradcheckError(MicrogradientError, AssertionError):
    """Analytic and numerical gradients disagree; the message tables both."""


class ExpressionError(MicrogradientError, ValueError):
    """Text given to :func:`microgradient.parse` is not a valid expression."""


class GraphTooLargeError(MicrogradientError, ValueError):
    """A graph has more nodes than a renderer was allowed to draw."""


class ModelShapeError(MicrogradientError, ValueError):
    """A saved state or model file does not fit the model it is being loaded into.

    Raised before any parameter is touched, so the model is left unchanged.
    """


class RenderError(MicrogradientError, ValueError):
    """A graph cannot be drawn as asked.

    An unknown format or option, or a format (such as PDF) that needs Graphviz's
    ``dot`` program on a machine that does not have it.
    """


class OperationError(MicrogradientError, ValueError):
    """An operation is defined or used in a way microgradient cannot follow.

    A custom operation whose name is a built-in one, whose derivatives are missing
    or give the wrong number of values, or a hand-made micrograd-style node (with a
    ``_backward`` closure) in a pass that records derivatives (``create_graph=True``).
    """


class TracingError(MicrogradientError, ValueError):
    """A graph cannot be traced into a program, or a program was run with a wrong feed.

    Raised for a node whose operation is neither built in nor a registered
    :class:`~microgradient.Operation` (a micrograd-style ``_backward`` closure),
    and for a feed naming something that is not one of the program's inputs.
    """
