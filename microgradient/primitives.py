"""The primitive table: each operation's forward, local derivatives and domain, once.

A :class:`Primitive` writes its forward and its local derivatives as short
expression *templates* in the operands ``a``, ``b``, the node's number ``c``
(its ``constant``) and the result ``out``. The templates use a small dialect
that means the same thing on floats and on arrays:

* ``+ - * /``, comparisons, ``&`` and ``|`` between conditions;
* ``where(cond, x, y)`` (``x`` where ``cond`` holds, else ``y``): kinks and
  piecewise definitions are spelled with it, so the convention at a kink is
  part of the definition (``relu'(0) = 0``, the 0.5 / 0.5 split of ``max`` at a
  tie, the infinite slope of ``sqrt`` at 0);
* ``pow(x, y)``, which follows IEEE 754 where Python raises (an overflow is
  ``inf``, ``0 ** -1`` is ``inf``), and ``times(x, y)``, a product in which
  zero times an infinity is zero (the engine's rule for slopes);
* the functions ``exp log log1p sqrt tanh sin cos tan atan abs isinf`` and ``inf``,
  ``nan``; ``exp`` overflows to ``inf``, as every operation of the engine does.

:func:`scalar_expression` renders a template as plain Python on floats
(``where`` becomes a conditional expression, evaluated lazily; a condition on
the constant alone is decided when the code is generated), and
:func:`array_function` as a function on arrays of any array-API namespace.
The eager engine keeps its own closures; the test suite checks them against
this table at random points and at every kink.

Each :class:`Check` is a condition under which the eager engine raises, with
the exception it raises, so that a traced program raises the same one.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeGuard

import array_api_compat

from microgradient.engine import ieee_exp, ieee_power
from microgradient.errors import DivisionByZeroError, DomainError, MicrogradientError

FUNCTIONS = ("exp", "log", "log1p", "sqrt", "tanh", "sin", "cos", "tan", "atan", "abs", "isinf")
HELPERS = ("pow", "times")  # defined below for floats and for arrays


@dataclass(frozen=True)
class Check:
    """``condition`` (a template) holding means the operation is outside its domain."""

    condition: str
    error: type[MicrogradientError]
    reason: str


@dataclass(frozen=True)
class Primitive:
    """One operation with a fixed number of ``Value`` operands.

    ``notation`` shows the operation in listings (``{a} * {b}``); ``unbounded``
    marks derivatives that can be infinite at a kink, whose contribution (like
    the eager engine's) is skipped when the incoming gradient is zero.
    """

    op: str
    arity: int
    forward: str
    derivatives: tuple[str, ...]
    notation: str
    checks: tuple[Check, ...] = ()
    unbounded: bool = False


_SIGMOID = "where(a >= 0.0, 1.0 / (1.0 + exp(-a)), exp(a) / (1.0 + exp(a)))"
_ZERO_DIVISOR = "the divisor is zero"
_INFINITE_ANGLE = Check("isinf(a)", DomainError, "an infinite angle has no position on the circle")


def _table(*primitives: Primitive) -> dict[tuple[str, int], Primitive]:
    return {(p.op, p.arity): p for p in primitives}


def _extreme(op: str, second: str) -> Primitive:
    """max or min of ``a`` and ``second``: a tie (or a nan) splits the gradient 0.5 / 0.5."""
    wins = ">" if op == "max" else "<"
    tie = f"where(a == {second}, a, nan)"
    forward = f"where(a {wins} {second}, a, where({second} {wins} a, {second}, {tie}))"
    first = f"where(a {wins} {second}, 1.0, where({second} {wins} a, 0.0, 0.5))"
    other = f"where(a {wins} {second}, 0.0, where({second} {wins} a, 1.0, 0.5))"
    arity = 2 if second == "b" else 1
    derivatives = (first, other) if arity == 2 else (first,)
    return Primitive(op, arity, forward, derivatives, f"{op}({{a}}, {{{second}}})")


# fmt: off
PRIMITIVES: dict[tuple[str, int], Primitive] = _table(
    # op     arity forward            local derivatives            notation
    Primitive("+", 2, "a + b",         ("1.0", "1.0"),              "{a} + {b}"),
    Primitive("+", 1, "a + c",         ("1.0",),                    "{a} + {c}"),
    Primitive("-", 2, "a - b",         ("1.0", "-1.0"),             "{a} - {b}"),
    Primitive("-", 1, "a - c",         ("1.0",),                    "{a} - {c}"),
    Primitive("r-", 1, "c - a",        ("-1.0",),                   "{c} - {a}"),
    Primitive("*", 2, "a * b",         ("b", "a"),                  "{a} * {b}"),
    Primitive("*", 1, "a * c",         ("c",),                      "{a} * {c}"),
    Primitive("/", 2, "a / b",         ("1.0 / b", "-out / b"),     "{a} / {b}",
              (Check("b == 0.0", DivisionByZeroError, _ZERO_DIVISOR),)),
    Primitive("/", 1, "a / c",         ("1.0 / c",),                "{a} / {c}"),
    Primitive("r/", 1, "c / a",        ("-out / a",),               "{c} / {a}",
              (Check("a == 0.0", DivisionByZeroError, _ZERO_DIVISOR),)),
    Primitive("neg", 1, "-a",          ("-1.0",),                   "-{a}"),
    # x ** c: constant at c = 0; an infinite slope at 0 when 0 < c < 1
    Primitive("**", 1, "pow(a, c)",
              ("where(c == 0.0, 0.0, times(c, pow(a, c - 1.0)))",), "{a} ** {c}",
              (Check("(a == 0.0) & (c < 0.0)", DivisionByZeroError, "zero to a negative power"),
               Check("(a < 0.0) & (c != c // 1.0)", DomainError,
                     "a negative base needs an integer exponent")),
              unbounded=True),
    # x ** y: at x = 0, x ** y * log(x) tends to 0, so the exponent's slope is 0
    Primitive("**", 2, "pow(a, b)",
              ("times(b, pow(a, b - 1.0))", "where(a == 0.0, 0.0, times(out, log(a)))"),
              "{a} ** {b}",
              (Check("a < 0.0", DomainError, "a negative base needs a constant exponent"),
               Check("(a == 0.0) & (b <= 0.0)", DivisionByZeroError,
                     "zero to a non-positive power")),
              unbounded=True),
    Primitive("r**", 1, "pow(c, a)",   ("where(c == 0.0, 0.0, out * log(c))",), "{c} ** {a}",
              (Check("(c == 0.0) & (a <= 0.0)", DivisionByZeroError,
                     "zero to a non-positive power"),)),
    Primitive("exp", 1, "exp(a)",      ("out",),                    "exp({a})"),
    Primitive("log", 1, "log(a)",      ("1.0 / a",),                "log({a})",
              (Check("a <= 0.0", DomainError, "log needs a positive argument"),)),
    Primitive("sqrt", 1, "sqrt(a)",    ("where(a == 0.0, inf, 0.5 / out)",), "sqrt({a})",
              (Check("a < 0.0", DomainError, "sqrt needs an argument >= 0"),), unbounded=True),
    Primitive("tanh", 1, "tanh(a)",    ("1.0 - out * out",),        "tanh({a})"),
    Primitive("sigmoid", 1, _SIGMOID,  ("out * (1.0 - out)",),      "sigmoid({a})"),
    # relu'(0) = 0, as in PyTorch and micrograd
    Primitive("relu", 1, "where(a > 0.0, a, 0.0)", ("where(a > 0.0, 1.0, 0.0)",), "relu({a})"),
    Primitive("sin", 1, "sin(a)",      ("cos(a)",),                 "sin({a})", (_INFINITE_ANGLE,)),
    Primitive("cos", 1, "cos(a)",      ("-sin(a)",),                "cos({a})", (_INFINITE_ANGLE,)),
    Primitive("tan", 1, "tan(a)",      ("1.0 + out * out",),        "tan({a})", (_INFINITE_ANGLE,)),
    Primitive("atan", 1, "atan(a)",    ("1.0 / (1.0 + a * a)",),    "atan({a})"),
    # abs'(0) = 0: the sign function
    Primitive("abs", 1, "abs(a)",
              ("where(a > 0.0, 1.0, where(a < 0.0, -1.0, 0.0))",), "abs({a})"),
    # log(1 + e**x) without overflow; its slope is sigmoid(x)
    Primitive("softplus", 1, "where(a > 0.0, a + log1p(exp(-a)), log1p(exp(a)))",
              (_SIGMOID,), "softplus({a})"),
    _extreme("max", "b"), _extreme("max", "c"), _extreme("min", "b"), _extreme("min", "c"),
)
# fmt: on

# The n-ary operations are written out by each backend (their operand count varies):
#   sum(p_0, ..., p_n-1) + c                               every local derivative 1
#   dot: sum(p_i * p_k+i for i < k) + sum(coef_j * p_2k+j) + c
#        local derivatives: p_k+i for p_i, p_i for p_k+i, coef_j for p_2k+j
N_ARY = ("sum", "dot")
BUILT_IN_OPS = frozenset({op for op, _ in PRIMITIVES} | set(N_ARY))


def _times(x: float, y: float) -> float:
    """x * y, with zero times an infinity taken as zero (a slope on a path with no gradient)."""
    if (x == 0.0 and math.isinf(y)) or (y == 0.0 and math.isinf(x)):
        return 0.0
    return x * y


def _array_times(xp: Any, x: Any, y: Any) -> Any:
    zero_times_infinity = ((x == 0.0) & xp.isinf(y)) | ((y == 0.0) & xp.isinf(x))
    product = x * y
    return xp.where(zero_times_infinity, xp.zeros_like(product), product)


def _array_pow(xp: Any, x: Any, y: Any) -> Any:
    return xp.pow(x, y)


ARRAY_HELPERS: dict[str, Callable[..., Any]] = {"times": _array_times, "pow": _array_pow}


def operation_forward(operation: Any) -> Callable[..., float]:
    """A registered Operation's forward on floats, with the engine's errors for bad results."""
    forward: Callable[..., float] = operation.evaluate
    return forward


def operation_slopes(operation: Any) -> Callable[..., tuple[float, ...]]:
    """A registered Operation's local derivatives ``(*operands, out)``, as floats.

    Errors of Python's arithmetic inside them become the engine's exceptions.
    """
    slopes: Callable[..., tuple[float, ...]] = operation.evaluate_derivatives
    return slopes


def primitive(op: str, arity: int) -> Primitive | None:
    """The table entry for ``op`` with ``arity`` Value operands, if there is one."""
    return PRIMITIVES.get((op, arity))


# ---- rendering templates --------------------------------------------------------------


def _parse(template: str) -> ast.expr:
    return ast.parse(template, mode="eval").body


def _mentions_only_constant(node: ast.AST) -> bool:
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return names <= {"c", "inf", "nan"}


class _ToScalar(ast.NodeTransformer):
    """Rewrite a template into Python on floats, with names supplied by ``names``."""

    def __init__(self, names: dict[str, ast.expr], constant: float | None) -> None:
        self.names = names
        self.constant = constant

    def rewrite(self, node: ast.expr) -> ast.expr:
        result = self.visit(node)
        assert isinstance(result, ast.expr)
        return result

    def visit_Call(self, node: ast.Call) -> ast.AST:
        assert isinstance(node.func, ast.Name)
        if node.func.id == "where":
            condition, then, otherwise = node.args
            if self.constant is not None and _mentions_only_constant(condition):
                test: ast.expr = ast.Constant(eval_constant_condition(condition, self.constant))
            else:
                test = self.rewrite(condition)
            if isinstance(test, ast.Constant):
                return self.rewrite(then if test.value else otherwise)
            return ast.IfExp(test=test, body=self.rewrite(then), orelse=self.rewrite(otherwise))
        if node.func.id == "times" and self.constant is not None:
            factor = node.args[0]
            if _mentions_only_constant(factor):
                value = _evaluate(factor, self.constant)
                if value != 0.0 and math.isfinite(value):  # no 0 * inf possible: a plain product
                    product = ast.BinOp(left=factor, op=ast.Mult(), right=node.args[1])
                    return self.rewrite(product)
        node.func = ast.Name(id=f"_{node.func.id}", ctx=ast.Load())
        node.args = [self.rewrite(arg) for arg in node.args]
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if not isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            return self.generic_visit(node)
        is_and = isinstance(node.op, ast.BitAnd)
        sides = [node.left, node.right]
        if self.constant is not None:
            for side, other in (sides, sides[::-1]):
                if _mentions_only_constant(side):
                    decided = eval_constant_condition(side, self.constant)
                    if decided == is_and:  # True and x, False or x: x decides
                        return self.rewrite(other)
                    return ast.Constant(value=decided)
        op: ast.boolop = ast.And() if is_and else ast.Or()
        return ast.BoolOp(op=op, values=[self.visit(side) for side in sides])

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("inf", "nan"):
            return ast.Name(id=f"_{node.id}", ctx=ast.Load())
        return self.names[node.id]


def eval_constant_condition(condition: ast.expr, constant: float) -> bool:
    """Decide a ``where`` condition that depends on the constant ``c`` only."""
    return bool(_evaluate(condition, constant))


def _evaluate(expression: ast.expr, constant: float) -> Any:
    """The value of a template part that depends on the constant ``c`` only."""
    code = compile(ast.Expression(body=expression), "<primitive>", "eval")
    names = {"c": constant, "inf": math.inf, "nan": math.nan}
    return eval(code, {"__builtins__": {}}, names)


def number_literal(x: float) -> str:
    """Python source for the float ``x`` (``inf`` and ``nan`` as helper names)."""
    if math.isnan(x):
        return "_nan"
    if math.isinf(x):
        return "_inf" if x > 0 else "(-_inf)"
    text = repr(float(x))
    return f"({text})" if text.startswith("-") else text


def scalar_expression(template: str, names: dict[str, str], constant: float | None) -> str:
    """``template`` as Python on floats: ``names`` maps ``a``, ``b``, ``out`` to identifiers.

    The constant ``c`` is written in as a literal, and conditions on it alone are
    decided now, so ``x ** 2`` differentiates to ``2.0 * x ** (2.0 - 1.0)``; with
    no constant, ``names`` may name ``c`` too.

    >>> scalar_expression("where(a > 0.0, 1.0, 0.0)", {"a": "h3"}, None)
    '1.0 if h3 > 0.0 else 0.0'
    """
    text = _scalar_pattern(template, constant)
    for name in _TEMPLATE_NAMES:
        text = text.replace(f"__{name}__", names.get(name, name))
    return text


def scalar_chain_term(
    upstream: str, template: str, names: dict[str, str], constant: float | None
) -> str | None:
    """Python for ``upstream`` times the local derivative ``template``, for a piecewise slope.

    When ``template`` is a ``where`` whose branches are all numbers (relu, abs, max,
    min), the product goes into the branches, so that a flat piece contributes 0.0
    whatever the upstream gradient (an infinite one too, as in the eager engine) and a
    slope of 1 passes the gradient on unchanged. Otherwise None: write the product.

    >>> scalar_chain_term("grad_h4", "where(a > 0.0, 1.0, 0.0)", {"a": "h3"}, None)
    'grad_h4 if h3 > 0.0 else 0.0'
    """
    pattern = _chain_pattern(template)
    if pattern is None:
        return None
    return scalar_expression(pattern, {**names, "g": upstream}, constant)


@lru_cache(maxsize=256)
def _chain_pattern(template: str) -> str | None:
    """``g * template`` as a template with the product inside the branches, if they are numbers."""
    tree = _parse(template)
    if not _is_where(tree) or not all(map(_is_float_literal, _branches(tree))):
        return None
    return ast.unparse(ast.fix_missing_locations(_times_branches(tree)))


def _is_where(node: ast.expr) -> TypeGuard[ast.Call]:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "where"
    )


def _branches(node: ast.expr) -> list[ast.expr]:
    if not _is_where(node):
        return [node]
    return _branches(node.args[1]) + _branches(node.args[2])


def _is_float_literal(node: ast.expr) -> bool:
    """``1.0`` or ``-1.0``: a number ``ast.literal_eval`` reads (unlike ``inf``)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, float)


def _times_branches(node: ast.expr) -> ast.expr:
    if _is_where(node):
        condition, then, otherwise = node.args
        branches = [_times_branches(then), _times_branches(otherwise)]
        return ast.Call(func=node.func, args=[condition, *branches], keywords=[])
    upstream = ast.Name(id="g", ctx=ast.Load())
    value = ast.literal_eval(node)
    if value == 0.0:
        return ast.Constant(0.0)
    if value == 1.0:
        return upstream
    if value == -1.0:
        return ast.UnaryOp(op=ast.USub(), operand=upstream)
    return ast.BinOp(left=upstream, op=ast.Mult(), right=node)


_TEMPLATE_NAMES = ("a", "b", "c", "out", "g")


@lru_cache(maxsize=4096)
def _scalar_pattern(template: str, constant: float | None) -> str:
    """``template`` rendered once, with ``__a__``-style placeholders for the names."""
    parsed: dict[str, ast.expr] = {
        name: ast.Name(id=f"__{name}__", ctx=ast.Load()) for name in _TEMPLATE_NAMES
    }
    if constant is not None:
        parsed["c"] = _parse(number_literal(constant))
    tree = _ToScalar(parsed, constant).visit(_parse(template))
    return ast.unparse(ast.fix_missing_locations(tree))


def scalar_names() -> dict[str, Any]:
    """The helpers that scalar code produced by :func:`scalar_expression` refers to."""
    names: dict[str, Any] = {f"_{f}": getattr(math, f) for f in FUNCTIONS if f != "abs"}
    names.update(_abs=abs, _exp=ieee_exp, _pow=ieee_power, _times=_times)
    names.update(_inf=math.inf, _nan=math.nan)
    return names


class _ToArray(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        args = [self.visit(arg) for arg in node.args]
        xp = ast.Name(id="xp", ctx=ast.Load())
        if name in HELPERS:
            return ast.Call(
                func=ast.Name(id=f"_{name}", ctx=ast.Load()), args=[xp, *args], keywords=[]
            )
        if name == "where":  # a branch may be a plain number: make it an array like the others
            args = [
                args[0],
                *(
                    ast.Call(
                        func=ast.Name(id="_like", ctx=ast.Load()),
                        args=[xp, a, args[0]],
                        keywords=[],
                    )
                    if _is_number(branch)
                    else a
                    for branch, a in zip(node.args[1:], args[1:])
                ),
            ]
        return ast.Call(
            func=ast.Attribute(value=xp, attr=name, ctx=ast.Load()), args=args, keywords=[]
        )

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("inf", "nan"):
            return ast.Attribute(
                value=ast.Name(id="xp", ctx=ast.Load()), attr=node.id, ctx=ast.Load()
            )
        return node


def _is_number(node: ast.expr) -> bool:
    """Whether a template expression is a literal number (``0.0``, ``-1.0``, ``inf``)."""
    if isinstance(node, ast.UnaryOp):
        return _is_number(node.operand)
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.Name) and node.id in ("inf", "nan")
    )


def _like(xp: Any, x: Any, condition: Any) -> Any:
    """``x`` as a float64 array if it is a plain number (some namespaces need arrays in where)."""
    if not isinstance(x, (int, float)) or array_api_compat.is_numpy_namespace(xp):
        return x  # NumPy's where takes plain numbers as they are
    return xp.asarray(float(x), dtype=xp.float64, device=array_api_compat.device(condition))


_array_functions: dict[str, Callable[..., Any]] = {}


def array_function(template: str) -> Callable[..., Any]:
    """``template`` compiled to ``f(xp, a, b, c, out)`` on arrays of the namespace ``xp``.

    Operands may be arrays or plain floats (broadcast); the result has their
    common shape (``where`` broadcasts its branches).
    """
    function = _array_functions.get(template)
    if function is None:
        tree = _ToArray().visit(_parse(template))
        body = ast.unparse(ast.fix_missing_locations(tree))
        source = f"def template(xp, a, b, c, out):\n    return {body}\n"
        namespace: dict[str, Any] = {f"_{name}": ARRAY_HELPERS[name] for name in HELPERS}
        namespace["_like"] = _like
        exec(compile(source, f"<primitive {template}>", "exec"), namespace)
        function = _array_functions[template] = namespace["template"]
    return function
