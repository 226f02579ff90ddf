"""microgradient: a scalar reverse-mode automatic differentiation engine.

>>> from microgradient import Value
>>> w, x = Value(0.0, label="w"), Value(1.0, label="x")
>>> h = 1 / (1 + (-(w * x)).exp())
>>> h.backward()
>>> h.data, w.grad, x.grad
(0.5, 0.25, 0.0)
"""

from microgradient import nn, optim
from microgradient.engine import (
    Operation,
    Value,
    atan,
    cos,
    dot,
    enable_grad,
    exp,
    find_operation,
    is_recording,
    log,
    no_grad,
    operation,
    relu,
    sigmoid,
    sin,
    softplus,
    sqrt,
    sum,
    tan,
    tanh,
    topological_order,
)
from microgradient.engine import abs_ as abs
from microgradient.engine import max_ as max
from microgradient.engine import min_ as min
from microgradient.engine import pow_ as pow
from microgradient.errors import (
    DivisionByZeroError,
    DomainError,
    ExpressionError,
    FloatOverflowError,
    GradcheckError,
    GraphTooLargeError,
    MicrogradientError,
    ModelShapeError,
    OperandTypeError,
    OperationError,
    RenderError,
    TracingError,
)
from microgradient.explorer import Explorer, explore
from microgradient.expression import parse, to_text
from microgradient.functional import grad, gradients, hessian, value_and_grad
from microgradient.gradcheck import gradcheck, largest_discrepancy, numerical_grad
from microgradient.program import Instruction, Parameters, Program, Result, trace
from microgradient.render import (
    BackwardStep,
    GraphDrawing,
    backward_steps,
    draw,
    format_number,
    frame_svg,
    save_graph,
    save_steps,
    to_dot,
    to_svg,
)

__version__ = "0.1.0"

__all__ = [
    "BackwardStep",
    "DivisionByZeroError",
    "DomainError",
    "Explorer",
    "ExpressionError",
    "FloatOverflowError",
    "GradcheckError",
    "GraphDrawing",
    "GraphTooLargeError",
    "Instruction",
    "MicrogradientError",
    "ModelShapeError",
    "OperandTypeError",
    "Operation",
    "OperationError",
    "Parameters",
    "Program",
    "RenderError",
    "Result",
    "TracingError",
    "Value",
    "abs",
    "atan",
    "backward_steps",
    "cos",
    "dot",
    "draw",
    "enable_grad",
    "exp",
    "explore",
    "find_operation",
    "format_number",
    "frame_svg",
    "grad",
    "gradcheck",
    "gradients",
    "hessian",
    "is_recording",
    "largest_discrepancy",
    "log",
    "max",
    "min",
    "nn",
    "no_grad",
    "numerical_grad",
    "operation",
    "optim",
    "parse",
    "pow",
    "relu",
    "save_graph",
    "save_steps",
    "sigmoid",
    "sin",
    "softplus",
    "sqrt",
    "sum",
    "tan",
    "tanh",
    "to_dot",
    "to_svg",
    "to_text",
    "topological_order",
    "trace",
    "value_and_grad",
]
