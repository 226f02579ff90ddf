"""microgradient: a scalar reverse-mode automatic differentiation engine.

>>> from microgradient import Value
>>> w, x = Value(0.0, label="w"), Value(1.0, label="x")
>>> h = 1 / (1 + (-(w * x)).exp())
>>> h.backward()
>>> h.data, w.grad, x.grad
(0.5, 0.25, 0.0)
"""

from microgradient.engine import (
    Value,
    cos,
    dot,
    exp,
    is_recording,
    log,
    no_grad,
    relu,
    sigmoid,
    sin,
    sqrt,
    sum,
    tanh,
    topological_order,
)
from microgradient.engine import abs_ as abs
from microgradient.errors import (
    DivisionByZeroError,
    DomainError,
    ExpressionError,
    FloatOverflowError,
    GradcheckError,
    GraphTooLargeError,
    MicrogradientError,
    OperandTypeError,
)
from microgradient.functional import grad, gradients, hessian, value_and_grad
from microgradient.gradcheck import gradcheck, largest_discrepancy, numerical_grad

__version__ = "0.1.0"

__all__ = [
    "DivisionByZeroError",
    "DomainError",
    "ExpressionError",
    "FloatOverflowError",
    "GradcheckError",
    "GraphTooLargeError",
    "MicrogradientError",
    "OperandTypeError",
    "Value",
    "abs",
    "cos",
    "dot",
    "exp",
    "grad",
    "gradcheck",
    "gradients",
    "hessian",
    "is_recording",
    "largest_discrepancy",
    "log",
    "no_grad",
    "numerical_grad",
    "relu",
    "sigmoid",
    "sin",
    "sqrt",
    "sum",
    "tanh",
    "topological_order",
    "value_and_grad",
]
