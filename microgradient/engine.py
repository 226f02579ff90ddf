"""The engine: :class:`Value`, its operations, and the backward pass.

Every operation computes its result and hands :func:`_result` a *local
derivative rule*: a small closure returning the derivative of the result with
respect to each parent, in the order of ``parents``. The rule is written once
and serves both kinds of backward pass. It receives

* ``get``, which reads an operand: as a float in a plain backward pass, or as
  the :class:`Value` itself when ``create_graph=True`` (so the derivative is
  recorded and can be differentiated again), and
* ``out``, the operation's result, read the same way.

Rules never capture their own result node, so a graph holds no reference
cycles and is freed by reference counting as soon as its root is dropped.
They bind what they need as default arguments (``a=self``) rather than by
closing over variables: that costs one small tuple per node instead of a cell
per variable, and with millions of nodes every object the garbage collector
has to walk shows up in the time (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import repeat
from operator import attrgetter, mul
from typing import Any, Protocol, TypeAlias, overload

from microgradient.errors import (
    DivisionByZeroError,
    DomainError,
    FloatOverflowError,
    MicrogradientError,
    OperandTypeError,
)

Number: TypeAlias = float  # ints are accepted wherever a float is (PEP 484)
Operand: TypeAlias = "Value | float"
Reader: TypeAlias = Callable[["Value"], Any]
# called as rule(get, out); extra parameters are the values the rule binds as defaults
LocalRule: TypeAlias = Callable[..., Sequence[Any]]

_recording: ContextVar[bool] = ContextVar("microgradient_recording", default=True)
_read_data: Reader = attrgetter("data")


def _read_node(value: Value) -> Value:
    return value


class Value:
    """A scalar that remembers how it was computed, so it can be differentiated.

    >>> w, x = Value(0.0, label="w"), Value(1.0, label="x")
    >>> h = 1 / (1 + (-(w * x)).exp())
    >>> h.backward()
    >>> h.data, w.grad, x.grad
    (0.5, 0.25, 0.0)

    Attributes:
        data: the forward value, a float.
        grad: the derivative of the last ``backward()`` root with respect to
            this value (accumulated over passes); 0.0 before any pass, and a
            ``Value`` after ``backward(create_graph=True)``.
        label: a name used in error messages and drawings.
        op: the operation that produced this value (``""`` for a leaf).
        parents: the operands that are ``Value``s, in order, repeats kept.
        constant: the plain number that entered the operation, if any
            (``x * 2`` has ``op == "*"``, ``parents == (x,)``, ``constant == 2.0``).
        coefficients: ``None`` except for ``dot``, whose node is fully described by its
            public attributes: with ``k = (len(parents) - len(coefficients)) // 2``,
            ``data == sum(parents[i] * parents[k + i] for i < k)
            + sum(c * p for c, p in zip(coefficients, parents[2 * k:])) + (constant or 0)``.
    """

    __slots__ = (
        "__weakref__",
        "_local_rule",
        "coefficients",
        "constant",
        "data",
        "grad",
        "label",
        "op",
        "parents",
    )

    data: float
    grad: Any
    label: str
    op: str
    parents: tuple[Value, ...]
    constant: float | None
    coefficients: tuple[float, ...] | None
    _local_rule: LocalRule | None

    def __init__(self, data: float, label: str = "") -> None:
        self.data = _as_float("Value", data)
        self.grad = 0.0
        self.label = label
        self.op = ""
        self.parents = ()
        self.constant = None
        self.coefficients = None
        self._local_rule = None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __float__(self) -> float:
        return self.data

    # ---- micrograd compatibility -------------------------------------------------
    @property
    def _prev(self) -> set[Value]:
        return set(self.parents)

    @property
    def _op(self) -> str:
        return self.op

    def _backward(self) -> None:
        """Push this node's ``grad`` one step back to its parents (one chain-rule step).

        This is micrograd's manual step, handy for teaching; ``backward()``
        runs it for every node in topological order.
        """
        if self._local_rule is not None:
            for parent, local in zip(self.parents, self._local_rule(_read_data, self.data)):
                parent.grad += local * self.grad

    # ---- arithmetic ------------------------------------------------------------
    def __add__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return _result("+", self.data + other.data, (self, other), lambda get, out: (1.0, 1.0))
        c = _constant("+", other)
        return _result("+", self.data + c, (self,), lambda get, out: (1.0,), c)

    __radd__ = __add__

    def __sub__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return _result("-", self.data - other.data, (self, other), lambda get, out: (1.0, -1.0))
        c = _constant("-", other)
        return _result("-", self.data - c, (self,), lambda get, out: (1.0,), c)

    def __rsub__(self, other: float) -> Value:
        c = _constant("-", other)
        return _result("r-", c - self.data, (self,), lambda get, out: (-1.0,), c)

    def __mul__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return _result(
                "*",
                self.data * other.data,
                (self, other),
                lambda get, out, a=self, b=other: (get(b), get(a)),
            )
        c = _constant("*", other)
        return _result("*", self.data * c, (self,), lambda get, out, c=c: (c,), c)

    __rmul__ = __mul__

    def __truediv__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            if other.data == 0.0:
                raise DivisionByZeroError(
                    f"division: {_describe(self)} / {_describe(other)}: the divisor is zero"
                )
            return _result(
                "/",
                self.data / other.data,
                (self, other),
                lambda get, out, b=other: (1.0 / get(b), -out / get(b)),
            )
        c = _constant("/", other)
        if c == 0.0:
            raise DivisionByZeroError(f"division: {_describe(self)} / 0: the divisor is zero")
        return _result("/", self.data / c, (self,), lambda get, out, c=c: (1.0 / c,), c)

    def __rtruediv__(self, other: float) -> Value:
        c = _constant("/", other)
        if self.data == 0.0:
            raise DivisionByZeroError(f"division: {c!r} / {_describe(self)}: the divisor is zero")
        return _result("r/", c / self.data, (self,), lambda get, out, a=self: (-out / get(a),), c)

    def __neg__(self) -> Value:
        return _result("neg", -self.data, (self,), lambda get, out: (-1.0,))

    def __pos__(self) -> Value:
        return self

    def __pow__(self, exponent: Operand) -> Value:
        if isinstance(exponent, Value):
            return _value_power(self, exponent)
        c = _constant("**", exponent)
        data = _float_power(self, c)
        # x**0 is constant (c * x**(c-1) would overflow for tiny x); x**c for 0 < c < 1
        # has an infinite slope at 0
        if c == 0.0 or (self.data == 0.0 and c < 1.0):
            slope = 0.0 if c == 0.0 else math.inf
            return _result("**", data, (self,), lambda get, out, s=slope: (s,), c)
        return _result(
            "**", data, (self,), lambda get, out, a=self, c=c: (c * get(a) ** (c - 1.0),), c
        )

    def __rpow__(self, base: float) -> Value:
        c = _constant("**", base)
        if c < 0.0:
            raise DomainError(
                f"power: {c!r} ** {_describe(self)}: a negative base needs a constant exponent"
            )
        if c == 0.0:
            if self.data <= 0.0:
                raise DivisionByZeroError(
                    f"power: 0 ** {_describe(self)}: zero to a non-positive power"
                )
            return _result("r**", 0.0, (self,), lambda get, out: (0.0,), c)
        data = _guard_overflow("power", lambda: c**self.data, f"{c!r} ** {_describe(self)}")
        log_c = math.log(c)
        return _result("r**", data, (self,), lambda get, out, k=log_c: (out * k,), c)

    # ---- elementary functions ----------------------------------------------------
    def exp(self) -> Value:
        """e ** self. Overflow (self > ~709.78) raises :class:`FloatOverflowError`."""
        data = _guard_overflow("exp", lambda: math.exp(self.data), f"exp({_describe(self)})")
        return _result("exp", data, (self,), lambda get, out: (out,))

    def log(self) -> Value:
        """Natural logarithm; ``self`` must be > 0."""
        if self.data <= 0.0:
            raise DomainError(f"log: {_describe(self)} is not > 0; log needs a positive argument")
        return _result(
            "log", math.log(self.data), (self,), lambda get, out, a=self: (1.0 / get(a),)
        )

    def sqrt(self) -> Value:
        """Square root; ``self`` must be >= 0. At 0 the derivative is +inf."""
        if self.data < 0.0:
            raise DomainError(f"sqrt: {_describe(self)} is negative; sqrt needs an argument >= 0")
        if self.data == 0.0:
            return _result("sqrt", 0.0, (self,), lambda get, out: (math.inf,))
        return _result("sqrt", math.sqrt(self.data), (self,), lambda get, out: (0.5 / out,))

    def tanh(self) -> Value:
        """Hyperbolic tangent."""
        return _result("tanh", math.tanh(self.data), (self,), lambda get, out: (1.0 - out * out,))

    def sigmoid(self) -> Value:
        """The logistic function 1 / (1 + e**-self), computed without overflow."""
        x = self.data
        data = 1.0 / (1.0 + math.exp(-x)) if x >= 0.0 else math.exp(x) / (1.0 + math.exp(x))
        return _result("sigmoid", data, (self,), lambda get, out: (out * (1.0 - out),))

    def relu(self) -> Value:
        """max(0, self). The derivative at 0 is taken as 0 (as in PyTorch and micrograd)."""
        if self.data > 0.0:
            return _result("relu", self.data, (self,), lambda get, out: (1.0,))
        return _result("relu", 0.0, (self,), lambda get, out: (0.0,))

    def sin(self) -> Value:
        """Sine (radians)."""
        return _result("sin", math.sin(self.data), (self,), lambda get, out, a=self: (cos(get(a)),))

    def cos(self) -> Value:
        """Cosine (radians)."""
        return _result(
            "cos", math.cos(self.data), (self,), lambda get, out, a=self: (-sin(get(a)),)
        )

    def abs(self) -> Value:
        """|self|. The derivative at 0 is taken as 0 (the sign function, as in PyTorch)."""
        sign = 1.0 if self.data > 0.0 else -1.0 if self.data < 0.0 else 0.0
        return _result("abs", abs(self.data), (self,), lambda get, out, s=sign: (s,))

    __abs__ = abs

    # ---- the backward pass --------------------------------------------------------
    def backward(self, gradient: Operand = 1.0, *, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(node) into ``node.grad`` for every node of the graph.

        Leaves and intermediate nodes alike receive gradients; a node reached by
        several paths receives their sum. Repeated passes add up (call
        :meth:`zero_grad` in between to start afresh). With
        ``create_graph=True`` the pass is itself recorded: every ``grad`` is a
        :class:`Value` that can be differentiated again.

        >>> x = Value(3.0)
        >>> y = x * x
        >>> y.backward()
        >>> x.grad
        6.0
        """
        _propagate(topological_order(self), gradient, create_graph, accumulate=True)

    def zero_grad(self) -> None:
        """Set ``grad`` to 0.0 on every node of this value's graph."""
        for node in topological_order(self):
            node.grad = 0.0


def topological_order(root: Value) -> list[Value]:
    """Every node of ``root``'s graph, each after all of its parents; ``root`` last.

    Iterative, so graphs of any depth work under the default recursion limit.
    """
    order: list[Value] = []
    visited = {root}
    # A depth-first search: ``nodes`` is the path from the root, ``pending`` what is left
    # of each node's parents. A narrow node's own ``parents`` tuple serves as its entry
    # (coming back to it rescans the tuple, skipping the parents already visited), so a
    # million-deep graph is walked without allocating an object per level: objects that
    # live that long would make Python's cyclic collector walk the whole graph, several
    # times. Only wide nodes get an iterator, which keeps their rescans from adding up.
    nodes = [root]
    pending: list[Iterable[Value]] = [_pending_parents(root)]
    # bound methods, looked up once: this loop runs twice per node
    emit, mark = order.append, visited.add
    enter, push, leave, pop = nodes.append, pending.append, nodes.pop, pending.pop
    while pending:
        for parent in pending[-1]:
            if parent not in visited:
                mark(parent)
                enter(parent)
                push(_pending_parents(parent))
                break
        else:
            pop()
            emit(leave())
    return order


_RESCANNED_PARENTS = 8  # nodes with fewer parents are rescanned rather than iterated


def _pending_parents(node: Value) -> Iterable[Value]:
    parents = node.parents
    return parents if len(parents) < _RESCANNED_PARENTS else iter(parents)


def _propagate(
    order: list[Value], gradient: Operand, create_graph: bool, *, accumulate: bool = False
) -> None:
    """Run the chain rule over ``order`` (root last).

    Each node's ``grad`` is overwritten with d(root)/d(node), or, with ``accumulate``,
    has it added. Either way one pass over ``order`` clears the grads before the chain
    rule runs (the pass adds into them), and with ``accumulate`` it also keeps aside
    the few grads that were not zero, to be added back at the end.
    """
    root = order[-1]
    node = root
    cleared = None if create_graph else 0.0
    kept: list[Any] = []  # node, grad, node, grad, ...: no tuple per node
    if accumulate:
        keep = kept.append
        for node in order:
            previous = node.grad
            if previous.__class__ is not float or previous != 0.0:
                keep(node)
                keep(previous)
                node.grad = cleared
            elif create_graph:
                node.grad = None
    else:
        for node in order:
            node.grad = cleared
    try:
        if create_graph:
            root.grad = gradient if isinstance(gradient, Value) else Value(gradient)
            for node in reversed(order):
                if node._local_rule is not None:
                    upstream = node.grad
                    for parent, local in zip(node.parents, node._local_rule(_read_node, node)):
                        term = local * upstream
                        parent.grad = term if parent.grad is None else parent.grad + term
        else:
            root.grad = (
                gradient.data if isinstance(gradient, Value) else _as_float("backward", gradient)
            )
            for node in reversed(order):
                upstream = node.grad
                rule = node._local_rule
                if rule is not None and upstream != 0.0:
                    for parent, local in zip(node.parents, rule(_read_data, node.data)):
                        parent.grad += local * upstream
    except ArithmeticError as error:
        if isinstance(error, MicrogradientError):
            raise
        raise FloatOverflowError(
            f"backward: the derivative of {node.op!r} at "
            f"{', '.join(map(_describe, node.parents))} is not a finite float ({error})"
        ) from error
    for i in range(0, len(kept), 2):
        node = kept[i]
        node.grad = kept[i + 1] + node.grad


def _result(
    op: str,
    data: float,
    parents: tuple[Value, ...],
    local_rule: LocalRule,
    constant: float | None = None,
    coefficients: tuple[float, ...] | None = None,
) -> Value:
    """A new node; it records its parents and local rule unless inside ``no_grad()``."""
    out = Value.__new__(Value)
    out.data = data
    out.grad = 0.0
    out.label = ""
    if _recording.get():
        out.op = op
        out.parents = parents
        out.constant = constant
        out.coefficients = coefficients
        out._local_rule = local_rule
    else:
        out.op = ""
        out.parents = ()
        out.constant = None
        out.coefficients = None
        out._local_rule = None
    return out


def _value_power(base: Value, exponent: Value) -> Value:
    """base ** exponent when the exponent is a Value: defined for base > 0 (and 0 ** positive)."""
    x, y = base.data, exponent.data
    where = f"{_describe(base)} ** {_describe(exponent)}"
    if x < 0.0:
        raise DomainError(f"power: {where}: a negative base needs a constant exponent")
    if x == 0.0:
        if y <= 0.0:
            raise DivisionByZeroError(f"power: {where}: zero to a non-positive power")
        # x**y -> 0 and x**y * log(x) -> 0 as x -> 0+, so the exponent's slope is 0
        slope = math.inf if y < 1.0 else (1.0 if y == 1.0 else 0.0)
        return _result("**", 0.0, (base, exponent), lambda get, out, s=slope: (s, 0.0))
    data = _guard_overflow("power", lambda: x**y, where)
    return _result(
        "**",
        data,
        (base, exponent),
        lambda get, out, x=base, y=exponent: (get(y) * get(x) ** (get(y) - 1.0), out * log(get(x))),
    )


def _float_power(base: Value, c: float) -> float:
    x = base.data
    where = f"{_describe(base)} ** {c!r}"
    if x == 0.0 and c < 0.0:
        raise DivisionByZeroError(f"power: {where}: zero to a negative power")
    if x < 0.0 and not c.is_integer():
        raise DomainError(f"power: {where}: a negative base needs an integer exponent")
    return _guard_overflow("power", lambda: x**c, where)


def _guard_overflow(op: str, compute: Callable[[], float], where: str) -> float:
    try:
        return compute()
    except OverflowError:
        raise FloatOverflowError(f"{op}: {where} is too large for a float") from None


def _as_float(op: str, x: object) -> float:
    if isinstance(x, float):
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(x)
    raise OperandTypeError(
        f"{op}: expected a real number (int or float), got {type(x).__name__} {x!r}"
    )


def _constant(op: str, x: object) -> float:
    return x if isinstance(x, float) else _as_float(op, x)


def _describe(value: Value) -> str:
    return f"{value.label} = {value.data!r}" if value.label else repr(value.data)


@contextmanager
def no_grad() -> Iterator[None]:
    """Compute values without recording a graph (safe across threads and asyncio tasks).

    >>> with no_grad():
    ...     y = Value(2.0) * 3
    >>> y.parents
    ()
    """
    token = _recording.set(False)
    try:
        yield
    finally:
        _recording.reset(token)


def is_recording() -> bool:
    """True unless inside :func:`no_grad`."""
    return _recording.get()


# ---- n-ary operations ---------------------------------------------------------------


def sum(values: Iterable[Operand]) -> Value:
    """One node adding many terms (plain numbers fold into one constant).

    >>> total = sum([Value(1.0), Value(2.0), 3])
    >>> total.data, len(total.parents), total.constant
    (6.0, 2, 3.0)
    """
    parents = []
    numbers_: list[float] = []
    for term in values:
        if isinstance(term, Value):
            parents.append(term)
        else:
            numbers_.append(_constant("sum", term))
    constant = math.fsum(numbers_)
    data = math.fsum([*(p.data for p in parents), *numbers_])
    n = len(parents)
    return _result(
        "sum",
        data,
        tuple(parents),
        lambda get, out, n=n: (1.0,) * n,
        constant if numbers_ else None,
    )


def dot(weights: Sequence[Operand], inputs: Sequence[Operand]) -> Value:
    """One node for sum(w * x for w, x in zip(weights, inputs)): a neuron's pre-activation.

    Its parents are the ``Value`` factors of the terms: those multiplied by a
    ``Value`` (weights, then inputs), then those multiplied by a plain number,
    whose numbers are the node's ``coefficients``; the products of two plain
    numbers add up to its ``constant`` (``None`` when there are none).

    >>> w = [Value(1.0), Value(2.0)]
    >>> y = dot(w, [3.0, 4.0])
    >>> y.backward()
    >>> y.data, [wi.grad for wi in w]
    (11.0, [3.0, 4.0])
    """
    if len(weights) != len(inputs):
        raise DomainError(
            f"dot: {len(weights)} weights but {len(inputs)} inputs; the lengths must match"
        )
    ws: tuple[Any, ...] = tuple(weights)
    xs: tuple[Any, ...] = tuple(inputs)
    weight_is_value = tuple(map(isinstance, ws, repeat(Value)))
    input_is_value = tuple(map(isinstance, xs, repeat(Value)))
    if all(weight_is_value) and all(input_is_value):
        return dot_of_values(ws, xs)
    if all(weight_is_value) and not any(input_is_value):
        if not all(map(isinstance, xs, repeat(float))):
            xs = tuple(_constant("dot", x) for x in xs)
        data = math.fsum(map(mul, map(_read_data, ws), xs))
        return _result("dot", data, ws, lambda get, out, k=xs: k, None, xs)
    # mixed operands (a neuron's bias rides on a constant input 1): the Value * Value
    # terms first, whose local derivatives are their partners, then each Value
    # multiplied by a number, whose local derivative is that number
    paired_w: list[Value] = []
    paired_x: list[Value] = []
    scaled: list[Value] = []
    scales: list[float] = []
    products: list[float] = []  # number * number terms
    for w, x in zip(ws, xs):
        if isinstance(w, Value) and isinstance(x, Value):
            paired_w.append(w)
            paired_x.append(x)
        elif isinstance(w, Value):
            scaled.append(w)
            scales.append(_constant("dot", x))
        elif isinstance(x, Value):
            scaled.append(x)
            scales.append(_constant("dot", w))
        else:
            products.append(_constant("dot", w) * _constant("dot", x))
    parents = (*paired_w, *paired_x, *scaled)
    data = math.fsum(
        [
            *map(mul, map(_read_data, paired_w), map(_read_data, paired_x)),
            *map(mul, map(_read_data, scaled), scales),
            *products,
        ]
    )
    return _result(
        "dot",
        data,
        parents,
        lambda get, out, p=(*paired_x, *paired_w), k=tuple(scales): (*map(get, p), *k),
        math.fsum(products) if products else None,
        tuple(scales),
    )


def dot_of_values(weights: tuple[Value, ...], inputs: tuple[Value, ...]) -> Value:
    """``dot(weights, inputs)`` for two tuples of ``Value``s of equal length, unchecked.

    The same node as :func:`dot` builds, for callers that already know their
    operands: a layer checks its inputs once for all of its neurons, whose
    weights are ``Value``s by construction. Skipping the checks halves the cost.

    >>> y = dot_of_values((Value(1.0), Value(2.0)), (Value(3.0), Value(4.0)))
    >>> y.data, len(y.parents), y.coefficients
    (11.0, 4, ())
    """
    data = math.fsum([w.data * x.data for w, x in zip(weights, inputs)])
    partners = inputs + weights  # d(w_i * x_i)/dw_i = x_i and d/dx_i = w_i
    return _result(
        "dot", data, weights + inputs, lambda get, out, p=partners: tuple(map(get, p)), None, ()
    )


# ---- module-level functions: a float gives a float, a Value gives a Value ------------


class UnaryFunction(Protocol):
    @overload
    def __call__(self, x: Value) -> Value: ...
    @overload
    def __call__(self, x: float) -> float: ...


def _unary(method: Callable[[Value], Value]) -> UnaryFunction:
    def function(x: Operand) -> Operand:
        if isinstance(x, Value):
            return method(x)
        with no_grad():
            return method(Value(_as_float(method.__name__, x))).data

    function.__name__ = function.__qualname__ = method.__name__
    function.__doc__ = (
        f"{method.__doc__}\n\n"
        f"Given a Value, returns ``x.{method.__name__}()``; given a number, returns a float."
    )
    return function  # type: ignore[return-value]


exp = _unary(Value.exp)
log = _unary(Value.log)
sqrt = _unary(Value.sqrt)
tanh = _unary(Value.tanh)
sigmoid = _unary(Value.sigmoid)
relu = _unary(Value.relu)
sin = _unary(Value.sin)
cos = _unary(Value.cos)
abs_ = _unary(Value.abs)
