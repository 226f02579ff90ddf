"""The engine: :class:`Value`, its operations, and the backward pass.

Every operation computes its result and hands :func:`_result` a *local
derivative rule*: a function ``rule(get, node)`` returning the derivative of the
result with respect to each parent, in the order of ``parents``. The rule is
written once and serves both kinds of backward pass: ``get`` reads a node as its
float in a plain backward pass, or as the :class:`Value` itself when
``create_graph=True`` (so the derivative is recorded and can be differentiated
again); ``get(node)`` is the operation's result, read the same way.

The built-in rules are shared module functions (the table before
:func:`_result`), reading ``parents``, ``constant`` and ``coefficients`` from the
node: a node then costs two objects, itself and its ``parents`` tuple, and with
millions of nodes every object the garbage collector has to walk shows up in the
time (see ``benchmarks/README.md``). A graph holds no reference cycles and is
freed by reference counting as soon as its root is dropped.

Overflow and infinities follow one rule, IEEE 754 double arithmetic, in every
operation, forward and backward, and in the derivatives of ``create_graph``:

* a result too large for a float is ``inf`` (with its sign), never an error:
  ``Value(1e308) + Value(1e308)``, ``exp(710)``, ``mg.sum``/``mg.dot`` of huge
  terms, ``Value(10**400)``, ``x ** -1`` at ``1e-300``; an infinite operand
  gives the IEEE result (``exp(inf) = inf``, ``exp(-inf) = 0``,
  ``atan(inf) = pi/2``, ``tanh(inf) = 1``);
* an argument outside an operation's domain raises :class:`DomainError` (or
  :class:`DivisionByZeroError`) instead of returning nan: ``log(-1)``,
  ``sqrt(-1)``, and ``sin``/``cos``/``tan`` of an infinity;
* in the chain rule a zero times an infinite slope is zero (``0 * inf = 0``): a
  path that carries no gradient contributes nothing, even through an infinite
  local derivative (``sqrt`` at 0), so ``relu(sqrt(x))`` and ``sqrt(relu(x))``
  at 0 have derivative 0 in plain and recorded passes alike.

What IEEE arithmetic itself makes nan from infinities (``inf - inf``,
``0 * inf`` between two values) stays nan, as it does for floats. Only
microgradient exceptions (each deriving from the matching built-in) escape.
"""

from __future__ import annotations

import builtins
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import compress, repeat
from operator import attrgetter, mul
from typing import Any, Protocol, TypeAlias, overload

from microgradient.errors import (
    DivisionByZeroError,
    DomainError,
    FloatOverflowError,
    MicrogradientError,
    OperandTypeError,
    OperationError,
)

Number: TypeAlias = float  # ints are accepted wherever a float is (PEP 484)
Operand: TypeAlias = "Value | float"
Reader: TypeAlias = Callable[["Value"], Any]
# rule(get, node) -> one local derivative per parent; ``get`` reads a node (see below)
LocalRule: TypeAlias = Callable[[Reader, "Value"], Sequence[Any]]

_recording: ContextVar[bool] = ContextVar("microgradient_recording", default=True)
_read_data: Reader = attrgetter("data")
_read_parents = attrgetter("parents")
_read_rule = attrgetter("_local_rule")


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

    def __init__(
        self,
        data: float,
        _children: Iterable[Value] = (),
        _op: str = "",
        label: str = "",
    ) -> None:
        """A leaf ``Value(2.0, label="a")``, or micrograd's hand-made node.

        ``Value(data, _children=(a, b), _op="name")`` records ``a`` and ``b`` as
        parents; assign ``out._backward`` a closure that reads ``out.grad`` and
        adds to the parents' ``.grad``, and ``backward()`` runs it in its turn.
        Such a node cannot be differentiated twice (its closure computes numbers,
        not ``Value``s): ``create_graph=True`` refuses it, and so does tracing.
        For an operation that works everywhere, use :func:`operation`.
        """
        self.data = _as_float("Value", data)
        self.grad = 0.0
        self.label = label
        self.op = _op
        self.constant = None
        self.coefficients = None
        if _children:
            self.parents = _as_parents(_children)
            self._local_rule = _ManualStep(_no_step)
        else:
            self.parents = ()
            self._local_rule = None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    # ---- a Value reads like a float ---------------------------------------------
    # ``==`` and ``hash`` stay those of the object: a Value is a node of a graph, used
    # as a dictionary key (gradients by leaf) and found by ``in``; two nodes that
    # hold the same number are still different nodes. Compare numbers with ``<``,
    # ``<=``, ``>``, ``>=``, ``math.isclose(v, 0.5)`` or ``v.data == 0.5``.

    def __float__(self) -> float:
        return self.data

    def __int__(self) -> int:
        return int(self.data)

    def __format__(self, spec: str) -> str:
        """``f"{loss:.3f}"`` formats ``data``; an empty spec gives ``str(value)``."""
        return format(self.data, spec) if spec else str(self)

    @overload
    def __round__(self, ndigits: None = None) -> int: ...
    @overload
    def __round__(self, ndigits: int) -> float: ...
    def __round__(self, ndigits: int | None = None) -> float:
        return round(self.data, ndigits)

    def __trunc__(self) -> int:
        return math.trunc(self.data)

    def __floor__(self) -> int:
        return math.floor(self.data)

    def __ceil__(self) -> int:
        return math.ceil(self.data)

    def __lt__(self, other: Operand) -> bool:
        return self.data < _compared("<", other)

    def __le__(self, other: Operand) -> bool:
        return self.data <= _compared("<=", other)

    def __gt__(self, other: Operand) -> bool:
        return self.data > _compared(">", other)

    def __ge__(self, other: Operand) -> bool:
        return self.data >= _compared(">=", other)

    # ---- micrograd compatibility -------------------------------------------------
    @property
    def _prev(self) -> set[Value]:
        return set(self.parents)

    @_prev.setter
    def _prev(self, children: Iterable[Value]) -> None:
        self.parents = _as_parents(children)

    @property
    def _op(self) -> str:
        return self.op

    @_op.setter
    def _op(self, op: str) -> None:
        self.op = op

    @property
    def _backward(self) -> Callable[[], None]:
        """One chain-rule step: push this node's ``grad`` back to its parents.

        This is micrograd's manual step, handy for teaching; ``backward()`` runs
        it for every node in topological order. Assigning a closure (micrograd's
        ``out._backward = _backward``) makes it this node's backward step.
        """
        rule = self._local_rule
        if isinstance(rule, _ManualStep):
            return rule.step
        return lambda: _push_one_step(self)

    @_backward.setter
    def _backward(self, step: Callable[[], None]) -> None:
        if not callable(step):
            raise OperandTypeError(
                f"_backward: expected a function of no arguments, got {type(step).__name__}"
            )
        self._local_rule = _ManualStep(step)

    # ---- arithmetic ------------------------------------------------------------
    def __add__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return _result("+", self.data + other.data, (self, other), _ones)
        c = _constant("+", other)
        return _result("+", self.data + c, (self,), _ones, c)

    __radd__ = __add__

    def __sub__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return _result("-", self.data - other.data, (self, other), _difference)
        c = _constant("-", other)
        return _result("-", self.data - c, (self,), _ones, c)

    def __rsub__(self, other: float) -> Value:
        c = _constant("-", other)
        return _result("r-", c - self.data, (self,), _minus_one, c)

    def __mul__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return _result("*", self.data * other.data, (self, other), _product)
        c = _constant("*", other)
        return _result("*", self.data * c, (self,), _times_constant, c)

    __rmul__ = __mul__

    def __truediv__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            if other.data == 0.0:
                raise DivisionByZeroError(
                    f"division: {_describe(self)} / {_describe(other)}: the divisor is zero"
                )
            return _result("/", self.data / other.data, (self, other), _quotient)
        c = _constant("/", other)
        if c == 0.0:
            raise DivisionByZeroError(f"division: {_describe(self)} / 0: the divisor is zero")
        return _result("/", self.data / c, (self,), _divided_by_constant, c)

    def __rtruediv__(self, other: float) -> Value:
        c = _constant("/", other)
        if self.data == 0.0:
            raise DivisionByZeroError(f"division: {c!r} / {_describe(self)}: the divisor is zero")
        return _result("r/", c / self.data, (self,), _constant_divided, c)

    def __neg__(self) -> Value:
        return _result("neg", -self.data, (self,), _minus_one)

    def __pos__(self) -> Value:
        return self

    def __pow__(self, exponent: Operand, modulo: None = None) -> Value:
        if modulo is not None:
            raise OperandTypeError(f"power: pow({_describe(self)}, ..., {modulo!r}) has no modulus")
        if isinstance(exponent, Value):
            return _value_power(self, exponent)
        c = _constant("**", exponent)
        return _constant_power(self, c, _float_power(self, c))

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
            # 0 ** x is 0 for every x > 0: a constant, so its slope is 0 at every order
            return _result("r**", 0.0, (self,), _zeros, c)
        return _result("r**", ieee_power(c, self.data), (self,), _constant_power_slope, c)

    # ---- elementary functions ----------------------------------------------------
    def exp(self) -> Value:
        """e ** self; ``inf`` beyond ~709.78 (as every overflow, see the module docstring)."""
        return _result("exp", ieee_exp(self.data), (self,), _exp_slope)

    def log(self) -> Value:
        """Natural logarithm; ``self`` must be > 0."""
        if self.data <= 0.0:
            raise DomainError(f"log: {_describe(self)} is not > 0; log needs a positive argument")
        return _result("log", math.log(self.data), (self,), _log_slope)

    def sqrt(self) -> Value:
        """Square root; ``self`` must be >= 0. At 0 the derivative is +inf."""
        if self.data < 0.0:
            raise DomainError(f"sqrt: {_describe(self)} is negative; sqrt needs an argument >= 0")
        if self.data == 0.0:
            # 0.5 / out would divide by zero; out ** -1 is inf at 0 and stays a function
            # of out, so the second derivative (-inf) is recorded too
            return _result("sqrt", 0.0, (self,), _sqrt_slope_at_zero)
        return _result("sqrt", math.sqrt(self.data), (self,), _sqrt_slope)

    def tanh(self) -> Value:
        """Hyperbolic tangent."""
        return _result("tanh", math.tanh(self.data), (self,), _tanh_slope)

    def sigmoid(self) -> Value:
        """The logistic function 1 / (1 + e**-self), computed without overflow."""
        x = self.data
        data = 1.0 / (1.0 + math.exp(-x)) if x >= 0.0 else math.exp(x) / (1.0 + math.exp(x))
        return _result("sigmoid", data, (self,), _sigmoid_slope)

    def softplus(self) -> Value:
        """log(1 + e**self), computed without overflow; its derivative is ``sigmoid(self)``.

        >>> Value(1000.0).softplus().data
        1000.0
        """
        x = self.data
        data = x + math.log1p(math.exp(-x)) if x > 0.0 else math.log1p(math.exp(x))
        return _result("softplus", data, (self,), _softplus_slope)

    def relu(self) -> Value:
        """max(0, self). The derivative at 0 is taken as 0 (as in PyTorch and micrograd)."""
        if self.data > 0.0:
            return _result("relu", self.data, (self,), _ones)
        return _result("relu", 0.0, (self,), _zeros)

    def sin(self) -> Value:
        """Sine (radians); an infinite argument raises :class:`DomainError`."""
        return _result("sin", _periodic("sin", math.sin, self), (self,), _sin_slope)

    def cos(self) -> Value:
        """Cosine (radians); an infinite argument raises :class:`DomainError`."""
        return _result("cos", _periodic("cos", math.cos, self), (self,), _cos_slope)

    def tan(self) -> Value:
        """Tangent (radians); its derivative is ``1 + tan(self)**2``.

        An infinite argument raises :class:`DomainError`.
        """
        data = _periodic("tan", math.tan, self)
        return _result("tan", data, (self,), _tan_slope)

    def atan(self) -> Value:
        """Arctangent, in (-pi/2, pi/2); its derivative is ``1 / (1 + self**2)``."""
        return _result("atan", math.atan(self.data), (self,), _atan_slope)

    def abs(self) -> Value:
        """|self|. The derivative at 0 is taken as 0 (the sign function, as in PyTorch)."""
        sign = _ones if self.data > 0.0 else _minus_one if self.data < 0.0 else _zeros
        return _result("abs", abs(self.data), (self,), sign)

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
    parents = root.parents
    pending: list[Iterable[Value]] = [parents if len(parents) < 8 else iter(parents)]
    # bound methods, looked up once: this loop runs twice per node
    emit, mark = order.append, visited.add
    enter, push, leave, pop = nodes.append, pending.append, nodes.pop, pending.pop
    while pending:
        for parent in pending[-1]:
            if parent not in visited:
                mark(parent)
                enter(parent)
                parents = parent.parents
                # fewer than 8 parents are rescanned rather than iterated (inlined: a
                # call per node costs a tenth of the walk)
                push(parents if len(parents) < 8 else iter(parents))
                break
        else:
            pop()
            emit(leave())
    return order


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
            # the derivatives are recorded even inside no_grad(): that is what was asked
            with enable_grad():
                root.grad = gradient if isinstance(gradient, Value) else Value(gradient)
                for node in reversed(order):
                    upstream = node.grad
                    if upstream is None:  # its every path was a zero slope times an infinity
                        node.grad = Value(0.0)
                    elif node._local_rule is not None:
                        pairs: Iterable[tuple[Value, Any]] = zip(
                            node.parents, node._local_rule(_read_node, node)
                        )
                        if upstream.data == 0.0 or upstream.data - upstream.data != 0.0:
                            pairs = [
                                p for p in pairs if not _zero_times_infinity(p[1], upstream.data)
                            ]
                        for parent, local in pairs:
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
                    slopes: Iterable[tuple[Value, Any]] = zip(node.parents, rule(_read_data, node))
                    if (
                        upstream - upstream != 0.0
                    ):  # inf or nan: a zero slope stops it (0 * inf = 0)
                        slopes = [p for p in slopes if p[1] != 0.0]
                    for parent, local in slopes:
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


def _zero_times_infinity(slope: Any, upstream: float) -> bool:
    """True when slope * upstream is 0 * inf, which the chain rule counts as 0.

    As in the plain pass, nan counts like an infinity here: a zero gradient is not
    spread by a nan slope, and a zero slope stops a nan gradient.
    """
    data = slope.data if isinstance(slope, Value) else slope
    return (upstream == 0.0 and data - data != 0.0) or (data == 0.0 and upstream - upstream != 0.0)


# ---- local derivatives: one rule per operation ----------------------------------------
# A rule gives d(node)/d(parent) for each of ``node.parents``, reading what it needs
# through ``get``: the float ``data`` in a plain backward pass, the node itself under
# ``create_graph=True`` (so the arithmetic below is recorded and can be differentiated
# again). Everything a rule reads is a public attribute of the node (``parents``,
# ``constant``, ``coefficients``), so the rules are shared functions, not closures: a
# node costs two objects (itself and its parents tuple), and a million-node graph gives
# Python's cyclic garbage collector half as many objects to walk while it is built.
# Where the slope is a constant chosen by the forward value (relu, abs, max and min),
# the operation picks one of the constant rules.


def _ones(get: Reader, node: Value) -> tuple[float, ...]:
    return (1.0,) * len(node.parents)  # a + b, a + c, sum, relu(x > 0), abs(x > 0)


def _zeros(get: Reader, node: Value) -> tuple[float, ...]:
    return (0.0,) * len(node.parents)  # a constant: relu(x <= 0), abs(0), x ** 0, 0 ** x


def _halves(get: Reader, node: Value) -> tuple[float, ...]:
    return (0.5,) * len(node.parents)  # max and min at a tie


def _to_first(get: Reader, node: Value) -> tuple[float, float]:
    return (1.0, 0.0)  # max(a, b) with a > b, min(a, b) with a < b


def _to_second(get: Reader, node: Value) -> tuple[float, float]:
    return (0.0, 1.0)


def _minus_one(get: Reader, node: Value) -> tuple[float]:
    return (-1.0,)  # -a, c - a, abs(x < 0)


def _difference(get: Reader, node: Value) -> tuple[float, float]:
    return (1.0, -1.0)  # a - b


def _product(get: Reader, node: Value) -> tuple[Any, Any]:
    a, b = node.parents  # d(a*b)/da = b, d(a*b)/db = a
    return get(b), get(a)


def _times_constant(get: Reader, node: Value) -> tuple[Any]:
    return (node.constant,)  # a * c


def _quotient(get: Reader, node: Value) -> tuple[Any, Any]:
    b = get(node.parents[1])  # d(a/b)/da = 1/b, d(a/b)/db = -(a/b)/b
    return 1.0 / b, -get(node) / b


def _divided_by_constant(get: Reader, node: Value) -> tuple[Any]:
    return (1.0 / node.constant,)  # type: ignore[operator]  # a / c: c is a number


def _constant_divided(get: Reader, node: Value) -> tuple[Any]:
    return (-get(node) / get(node.parents[0]),)  # d(c/a)/da = -(c/a)/a


def _power_slopes(get: Reader, node: Value) -> tuple[Any, Any]:
    # d(x**y)/dx = y * x**(y-1), kept a function of both operands (0, 1 or inf at x = 0,
    # so second derivatives such as d2(x**y)/dx2 = 2 at (0, 2) survive);
    # d(x**y)/dy = x**y * log(x), whose limit along x = 0 (for y > 0) is 0
    x, y = node.parents
    to_exponent = 0.0 if x.data == 0.0 else _times(get(node), log(get(x)))
    return _times(get(y), _slope_power(get(x), get(y) - 1.0)), to_exponent


def _power_of_constant_slope(get: Reader, node: Value) -> tuple[Any]:
    c: float = node.constant  # type: ignore[assignment]  # x ** c: c is a number
    return (_times(c, _slope_power(get(node.parents[0]), c - 1.0)),)


def _constant_power_slope(get: Reader, node: Value) -> tuple[Any]:
    return (_times(get(node), math.log(node.constant)),)  # type: ignore[arg-type]  # c ** x


def _exp_slope(get: Reader, node: Value) -> tuple[Any]:
    return (get(node),)


def _log_slope(get: Reader, node: Value) -> tuple[Any]:
    return (1.0 / get(node.parents[0]),)


def _sqrt_slope(get: Reader, node: Value) -> tuple[Any]:
    return (0.5 / get(node),)


def _sqrt_slope_at_zero(get: Reader, node: Value) -> tuple[Any]:
    # 0.5 / out would divide by zero; out ** -1 is inf at 0 and stays a function of
    # out, so the second derivative (-inf) is recorded too
    return (0.5 * _slope_power(get(node), -1.0),)


def _tanh_slope(get: Reader, node: Value) -> tuple[Any]:
    out = get(node)
    return (1.0 - out * out,)


def _sigmoid_slope(get: Reader, node: Value) -> tuple[Any]:
    out = get(node)
    return (out * (1.0 - out),)


def _softplus_slope(get: Reader, node: Value) -> tuple[Any]:
    return (sigmoid(get(node.parents[0])),)


def _sin_slope(get: Reader, node: Value) -> tuple[Any]:
    return (cos(get(node.parents[0])),)


def _cos_slope(get: Reader, node: Value) -> tuple[Any]:
    return (-sin(get(node.parents[0])),)


def _tan_slope(get: Reader, node: Value) -> tuple[Any]:
    out = get(node)
    return (1.0 + out * out,)


def _atan_slope(get: Reader, node: Value) -> tuple[Any]:
    x = get(node.parents[0])
    return (1.0 / (1.0 + x * x),)


def _dot_slopes(get: Reader, node: Value) -> tuple[Any, ...]:
    # parents are w_1..w_k, x_1..x_k, then the Values scaled by the coefficients:
    # d/dw_i = x_i, d/dx_i = w_i, and each scaled Value's slope is its coefficient
    parents, coefficients = node.parents, node.coefficients or ()
    k = (len(parents) - len(coefficients)) // 2
    return (*map(get, parents[k : 2 * k]), *map(get, parents[:k]), *coefficients)


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
    if x == 0.0 and y <= 0.0:
        raise DivisionByZeroError(f"power: {where}: zero to a non-positive power")
    return _value_power_node(base, exponent, ieee_power(x, y))


def _value_power_node(base: Value, exponent: Value, data: float) -> Value:
    # x**y * log(x) -> 0 as x -> 0+ for y > 0: the exponent's slope is 0 along x = 0.
    # The base's slope y * x**(y-1) stays a function of both operands (0, 1 or inf
    # at x = 0), so second derivatives such as d2(x**y)/dx2 = 2 at (0, 2) survive.
    return _result("**", data, (base, exponent), _power_slopes)


def _constant_power(base: Value, c: float, data: float) -> Value:
    """The node of base ** c for a plain number c."""
    if c == 0.0:  # x ** 0 is the constant 1: its slope is 0 at every order, even at x = 0
        return _result("**", data, (base,), _zeros, c)
    return _result("**", data, (base,), _power_of_constant_slope, c)


def _slope_power(x: Any, c: Any) -> Any:
    """x ** c inside a derivative: IEEE at 0 (0 ** -1 is inf) and on overflow.

    The forward ``x ** c`` refuses zero to a negative power, but a derivative may
    be infinite (the slope of ``sqrt`` at 0); this keeps it a function of ``x``
    (and of ``c`` when ``c`` is a Value), so it can be differentiated again.
    """
    if isinstance(c, Value):
        return _value_power_node(x, c, ieee_power(x.data, c.data))
    if isinstance(x, Value):
        return _constant_power(x, c, ieee_power(x.data, c))
    return ieee_power(x, c)


def _times(a: Any, b: Any) -> Any:
    """a * b, where a zero times an infinity is zero (``0 * x**-1`` at ``x = 0``)."""
    product = a * b
    data = product.data if isinstance(product, Value) else product
    if data == data:  # not nan: the common case
        return product
    a_data = a.data if isinstance(a, Value) else a
    b_data = b.data if isinstance(b, Value) else b
    if (a_data == 0.0 and math.isinf(b_data)) or (b_data == 0.0 and math.isinf(a_data)):
        return 0.0
    return product


def _float_power(base: Value, c: float) -> float:
    x = base.data
    where = f"{_describe(base)} ** {c!r}"
    if x == 0.0 and c < 0.0:
        raise DivisionByZeroError(f"power: {where}: zero to a negative power")
    if x < 0.0 and not c.is_integer():
        raise DomainError(f"power: {where}: a negative base needs an integer exponent")
    return ieee_power(x, c)


def ieee_power(x: float, y: float) -> float:
    """x ** y for floats, with IEEE 754's answers where Python raises.

    Overflow gives an infinity and zero to a negative power gives an infinity, whose
    sign is negative only for a negative base and an odd integer exponent. The
    traced programs compute their powers with it, as the engine does.

    >>> ieee_power(10.0, 400.0), ieee_power(-0.0, -1.0)
    (inf, -inf)
    """
    try:
        return x**y  # type: ignore[no-any-return]  # floats, never a negative base to a fraction
    except (OverflowError, ZeroDivisionError):
        odd = y.is_integer() and y % 2.0 == 1.0
        return -math.inf if odd and math.copysign(1.0, x) < 0.0 else math.inf


def ieee_exp(x: float) -> float:
    """e ** x for a float, ``inf`` where ``math.exp`` raises (beyond ~709.78).

    >>> ieee_exp(0.0), ieee_exp(1000.0)
    (1.0, inf)
    """
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _periodic(op: str, function: Callable[[float], float], value: Value) -> float:
    if math.isinf(value.data):
        raise DomainError(
            f"{op}: {_describe(value)} is infinite; {op} needs a finite argument "
            "(an infinite angle has no position on the circle)"
        )
    return function(value.data)


def _as_float(op: str, x: object) -> float:
    if isinstance(x, float):
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        try:
            return float(x)
        except OverflowError:  # 10**400: too large for a float, so infinite (one rule)
            return math.inf if x > 0 else -math.inf  # type: ignore[operator]  # Real orders
    raise OperandTypeError(
        f"{op}: expected a real number (int or float), got {type(x).__name__} {x!r}"
    )


def _constant(op: str, x: object) -> float:
    return x if isinstance(x, float) else _as_float(op, x)


def _describe(value: Value) -> str:
    return f"{value.label} = {value.data!r}" if value.label else repr(value.data)


def _compared(op: str, other: object) -> float:
    if isinstance(other, Value):
        return other.data
    return _constant(op, other)


def _as_parents(children: Iterable[Value]) -> tuple[Value, ...]:
    if isinstance(children, str):
        raise OperandTypeError(
            f"Value: the second argument is micrograd's _children, a tuple of Values, not the "
            f"string {children!r}; give a label by name: Value(data, label={children!r})"
        )
    parents = tuple(children)
    for child in parents:
        if not isinstance(child, Value):
            raise OperandTypeError(
                f"Value: _children must be Values, got {type(child).__name__} {child!r}"
            )
    return parents


def _no_step() -> None:
    """micrograd's default backward step: a node nobody gave a closure passes nothing on."""


class _ManualStep:
    """The local rule of a micrograd-style node: runs its ``_backward`` closure.

    The closure adds to the parents' ``.grad`` itself, so the rule returns no local
    derivatives (:func:`local_derivatives` measures them for drawings). A recorded
    pass (``create_graph=True``) cannot use it: the closure computes numbers, not
    ``Value``s.
    """

    __slots__ = ("step",)

    def __init__(self, step: Callable[[], None]) -> None:
        self.step = step

    def __call__(self, get: Reader, node: Value) -> tuple[()]:
        if get is _read_node:
            raise OperationError(
                f"create_graph: the node {node.op!r} (data {node.data!r}) was made with "
                f"Value(data, _children, _op) and a _backward closure, which computes plain "
                "numbers, so its derivative cannot be recorded; define the operation with "
                "@mg.operation to differentiate it more than once"
            )
        self.step()
        return ()


def first_hand_made(nodes: Sequence[Value]) -> Value | None:
    """The first of ``nodes`` that has parents but no rule the engine can read, or ``None``.

    Such a node was made micrograd's way (``Value(data, _children, _op)`` and a
    ``_backward`` closure that adds numbers to its parents' gradients), or had its
    parents set by hand: it takes part in ``backward()``, but its local
    derivatives are not functions that can be recorded, traced or compiled.

    >>> a = Value(2.0)
    >>> cube = Value(8.0, (a,), "cube")
    >>> first_hand_made([a, a * 3.0, cube]) is cube
    True
    """
    # column by column, with C-level maps: tracing calls it on every node of a graph
    rules = list(map(_read_rule, compress(nodes, map(_read_parents, nodes))))
    if None not in rules and _ManualStep not in set(map(type, rules)):
        return None
    return next(
        node
        for node in nodes
        if node.parents and (node._local_rule is None or isinstance(node._local_rule, _ManualStep))
    )


def _push_one_step(node: Value) -> None:
    if node._local_rule is not None:
        for parent, local in zip(node.parents, node._local_rule(_read_data, node)):
            parent.grad += local * node.grad


def local_derivatives(node: Value) -> tuple[float, ...] | None:
    """d(node)/d(parent) for each parent, as floats; ``None`` for a leaf.

    For a node made micrograd's way (``Value(data, _children, _op)`` with a
    ``_backward`` closure) they are measured: the closure runs once with
    ``node.grad = 1`` and the parents' gradients at 0 (a chain-rule step is linear
    in ``node.grad``), and every gradient is restored afterwards. A parent listed
    twice gets the whole of its derivative at its first position.

    >>> x = Value(3.0)
    >>> local_derivatives(x * x)
    (3.0, 3.0)
    """
    rule = node._local_rule
    if rule is None:
        return None
    if isinstance(rule, _ManualStep):
        return _measured_slopes(node, rule.step)
    return tuple(float(local) for local in rule(_read_data, node))


def _measured_slopes(node: Value, step: Callable[[], None]) -> tuple[float, ...]:
    saved = [(other, other.grad) for other in (node, *node.parents)]
    try:
        for parent in node.parents:
            parent.grad = 0.0
        node.grad = 1.0
        step()
        slopes = []
        seen: set[int] = set()
        for parent in node.parents:
            slopes.append(0.0 if id(parent) in seen else float(parent.grad))
            seen.add(id(parent))
        return tuple(slopes)
    finally:
        for other, grad in reversed(saved):
            other.grad = grad


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


@contextmanager
def enable_grad() -> Iterator[None]:
    """Record graphs again inside :func:`no_grad` (as ``mg.grad`` and ``mg.hessian`` do).

    >>> with no_grad(), enable_grad():
    ...     y = Value(2.0) * 3
    >>> y.op
    '*'
    """
    token = _recording.set(True)
    try:
        yield
    finally:
        _recording.reset(token)


def is_recording() -> bool:
    """True unless inside :func:`no_grad`."""
    return _recording.get()


# ---- n-ary operations ---------------------------------------------------------------

# a sum of terms near the largest float overflows fsum's partial sums even when the
# exact result is finite; 2**-64 scales any list of floats safely below the limit
_SCALE_DOWN = 2.0**-64
_SCALE_UP = 2.0**64


def exact_sum(terms: list[float]) -> float:
    """The correctly rounded sum, under the overflow rule: too large is inf, inf - inf nan.

    What ``sum`` and ``dot`` nodes hold, and what traced programs compute for them.

    >>> exact_sum([0.1] * 10), exact_sum([1e308, 1e308, -1e308])
    (1.0, 1e+308)
    """
    try:
        try:
            return math.fsum(terms)
        except OverflowError:
            return math.fsum([term * _SCALE_DOWN for term in terms]) * _SCALE_UP
    except ValueError:  # fsum refuses inf + -inf, which IEEE arithmetic makes nan
        return math.nan


@overload
def sum(values: Iterable[Value], /, start: Operand = 0) -> Value: ...
@overload
def sum(values: Iterable[Any], /, start: Any = 0) -> Any: ...
def sum(values: Iterable[Any], /, start: Any = 0) -> Any:
    """One node adding many terms (plain numbers fold into one constant).

    Without any ``Value`` among the terms (or ``start``) it is Python's own ``sum``,
    so ``from microgradient import *`` changes nothing for plain numbers:
    ``sum([1, 2, 3])`` is the int 6 and ``sum([1, 2], 10)`` is 13.

    >>> total = sum([Value(1.0), Value(2.0), 3])
    >>> total.data, len(total.parents), total.constant
    (6.0, 2, 3.0)
    """
    terms = list(values)
    if not isinstance(start, Value) and not any(isinstance(term, Value) for term in terms):
        return builtins.sum(terms, start)
    if isinstance(start, Value) or start != 0:
        terms.insert(0, start)
    parents = []
    numbers_: list[float] = []
    for term in terms:
        if isinstance(term, Value):
            parents.append(term)
        else:
            numbers_.append(_constant("sum", term))
    constant = exact_sum(numbers_)
    data = exact_sum([*(p.data for p in parents), *numbers_])
    return _result("sum", data, tuple(parents), _ones, constant if numbers_ else None)


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
        return dot_of_numbers(ws, xs)
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
    data = exact_sum(
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
        _dot_slopes,
        exact_sum(products) if products else None,
        tuple(scales),
    )


def dot_of_values(
    weights: tuple[Value, ...], inputs: tuple[Value, ...], bias: Value | None = None
) -> Value:
    """``dot(weights, inputs)`` for two tuples of ``Value``s of equal length, unchecked.

    The same node as :func:`dot` builds, for callers that already know their
    operands: a layer checks its inputs once for all of its neurons, whose
    weights are ``Value``s by construction. Skipping the checks halves the cost.
    With ``bias``, the node is a neuron's ``w · x + b``: ``dot([*weights, bias],
    [*inputs, 1.0])``, whose last parent is ``bias`` with the coefficient 1.

    >>> w, x = (Value(1.0), Value(2.0)), (Value(3.0), Value(4.0))
    >>> y = dot_of_values(w, x)
    >>> y.data, len(y.parents), y.coefficients
    (11.0, 4, ())
    >>> z = dot_of_values(w, x, Value(0.5))
    >>> z.data, len(z.parents), z.coefficients
    (11.5, 5, (1.0,))
    """
    products = [w.data * x.data for w, x in zip(weights, inputs)]
    if bias is None:
        return _result("dot", exact_sum(products), weights + inputs, _dot_slopes, None, ())
    products.append(bias.data)
    parents = (*weights, *inputs, bias)
    return _result("dot", exact_sum(products), parents, _dot_slopes, None, (1.0,))


def dot_of_numbers(weights: tuple[Value, ...], numbers: tuple[float, ...]) -> Value:
    """``dot(weights, numbers)`` for ``Value`` weights and float inputs of equal length, unchecked.

    The same node as :func:`dot` builds (the numbers are its ``coefficients``);
    like :func:`dot_of_values`, for a layer whose inputs are known to be floats.

    >>> y = dot_of_numbers((Value(1.0), Value(2.0)), (3.0, 4.0))
    >>> y.data, len(y.parents), y.coefficients
    (11.0, 2, (3.0, 4.0))
    """
    data = exact_sum([w.data * c for w, c in zip(weights, numbers)])
    return _result("dot", data, weights, _dot_slopes, None, numbers)


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
softplus = _unary(Value.softplus)
relu = _unary(Value.relu)
sin = _unary(Value.sin)
cos = _unary(Value.cos)
tan = _unary(Value.tan)
atan = _unary(Value.atan)


# ---- the names of Python's builtins: the same meaning for plain numbers --------------


def abs_(x: Any) -> Any:
    """|x|: ``x.abs()`` for a Value; Python's ``abs`` for anything else (``abs(-2)`` is 2).

    The derivative at 0 is taken as 0 (the sign function, as in PyTorch).
    """
    return x.abs() if isinstance(x, Value) else builtins.abs(x)


def pow_(base: Any, exponent: Any, modulo: Any = None) -> Any:
    """``base ** exponent``; Python's ``pow`` (modulus included) when neither is a Value.

    >>> pow_(Value(3.0), 2).data, pow_(3, 2, 5)
    (9.0, 4)
    """
    if isinstance(base, Value) or isinstance(exponent, Value):
        if modulo is not None:
            raise OperandTypeError(f"pow: a Value power has no modulus, got {modulo!r}")
        return base**exponent
    return builtins.pow(base, exponent, modulo)


def max_(*args: Any, **options: Any) -> Any:
    """The larger of two operands as a node; Python's ``max`` when no Value is involved.

    ``max(a, b)`` with a Value records the operation ``max``: its gradient goes to
    the larger operand, and at a tie it is split 0.5 / 0.5 (as PyTorch's
    ``maximum``). More operands, or an iterable, fold pairwise:
    ``max(a, b, c) == max(max(a, b), c)``. ``key=`` and ``default=`` work as in Python.

    >>> a, b = Value(1.0), Value(1.0)
    >>> m = max_(a, b)
    >>> m.backward()
    >>> m.data, a.grad, b.grad, max_([3, 1, 2])
    (1.0, 0.5, 0.5, 3)
    """
    return _extreme("max", args, options, builtins.max)


def min_(*args: Any, **options: Any) -> Any:
    """The smaller of two operands as a node; Python's ``min`` when no Value is involved.

    The gradient goes to the smaller operand; at a tie it is split 0.5 / 0.5.

    >>> min_(Value(2.0), 3).data, min_(2, 3)
    (2.0, 2)
    """
    return _extreme("min", args, options, builtins.min)


abs_.__name__ = abs_.__qualname__ = "abs"
pow_.__name__ = pow_.__qualname__ = "pow"
max_.__name__ = max_.__qualname__ = "max"
min_.__name__ = min_.__qualname__ = "min"


def _extreme(op: str, args: tuple[Any, ...], options: dict[str, Any], builtin: Any) -> Any:
    if len(args) == 1:  # max(iterable, *, key=..., default=...)
        try:
            items = list(args[0])
        except TypeError:
            return builtin(*args, **options)
        if options.get("key") is not None or not any(isinstance(i, Value) for i in items):
            return builtin(items, **options)
    else:
        items = list(args)
        if options.get("key") is not None or not any(isinstance(i, Value) for i in items):
            return builtin(*items, **options)
    unknown = set(options) - {"key", "default"}
    if unknown:
        raise OperandTypeError(f"{op}: unexpected keyword argument(s) {sorted(unknown)}")
    result = items[0]
    for item in items[1:]:
        if isinstance(result, Value):
            result = _extremum(op, result, item)
        elif isinstance(item, Value):
            result = _extremum(op, item, result)
        else:
            result = builtin(result, item)
    return result


def _extremum(op: str, a: Value, b: Operand) -> Value:
    """max or min of a Value and a Value or number; a tie splits the gradient 0.5 / 0.5."""
    x = a.data
    y = b.data if isinstance(b, Value) else _constant(op, b)
    first_wins = x > y if op == "max" else x < y
    second_wins = y > x if op == "max" else y < x
    # a tie, or a nan that no comparison can order, splits the gradient
    data = x if first_wins else y if second_wins else x if x == y else math.nan
    if isinstance(b, Value):
        rule = _to_first if first_wins else _to_second if second_wins else _halves
        return _result(op, data, (a, b), rule)
    # against a number only a's slope is recorded: 1 if a wins, 0 if the number does
    return _result(op, data, (a,), _ones if first_wins else _zeros if second_wins else _halves, y)


# ---- operations defined by the user --------------------------------------------------

BUILTIN_OPERATIONS = frozenset(
    {
        *("+", "-", "r-", "*", "/", "r/", "neg", "**", "r**", "sum", "dot"),
        *("exp", "log", "sqrt", "tanh", "sigmoid", "softplus", "relu"),
        *("sin", "cos", "tan", "atan", "abs", "max", "min"),
    }
)
_operations: dict[str, Operation] = {}


class Operation:
    """A primitive operation defined by its forward and its local derivatives, side by side.

    Made by the :func:`operation` decorator. Calling it on ``Value``s or plain
    numbers gives a ``Value`` node whose ``op`` is :attr:`name` and whose
    ``parents`` are the operands in order (a plain number becomes a leaf
    ``Value``, so every operand has its gradient); :attr:`forward` computes on
    floats alone.

    Attributes:
        name: the operation's name, the ``op`` of its nodes (unique, not a built-in name).
        symbol: what drawings write in its node.
        arity: the number of operands.
        forward: the function of floats computing the result.
        javascript: ``None``, or ``{"forward": "...", "derivatives": ["...", ...]}``:
            JavaScript expressions of the operands ``a, b, c, ...`` and the result ``out``,
            for the explorer.
    """

    def __init__(
        self,
        forward: Callable[..., float],
        *,
        name: str | None = None,
        symbol: str | None = None,
        javascript: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = forward.__name__ if name is None else name
        if self.name in BUILTIN_OPERATIONS:
            raise OperationError(
                f"operation: {self.name!r} is a built-in operation; give yours another name "
                f"(for example @mg.operation(name='my_{self.name}'))"
            )
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise OperationError(f"operation: the name {self.name!r} is not a Python identifier")
        self.symbol = self.name if symbol is None else symbol
        self.arity = _arity(forward, self.name)
        self.forward = forward
        self.javascript = _checked_javascript(javascript, self.name, self.arity)
        self._rule: Callable[..., Sequence[Any]] | None = None
        self.__doc__ = forward.__doc__
        _operations[self.name] = self  # a later definition (a re-run cell) replaces it

    def __repr__(self) -> str:
        return f"<mg.Operation {self.name!r}: {self.arity} operand(s), symbol {self.symbol!r}>"

    def derivatives(self, *args: Any) -> Any:
        """Give the local derivatives (as a decorator), or compute them.

        As a decorator, ``@op.derivatives`` takes a function ``(*operands, out)``
        returning one derivative per operand. Write it with operators and ``mg``
        functions (``mg.exp``, ``mg.sigmoid``, ...): it then receives floats in a
        plain backward pass and ``Value``s under ``create_graph=True``, which
        records the derivative so it can be differentiated again. Called with
        operands and the result, it returns that tuple.
        """
        if len(args) == 1 and callable(args[0]) and not isinstance(args[0], Value):
            self._rule = args[0]
            return args[0]
        if self._rule is None:
            raise OperationError(
                f"{self.name}: no derivatives given; define them with @{self.name}.derivatives"
            )
        slopes = tuple(self._rule(*args))
        if len(slopes) != self.arity:
            raise OperationError(
                f"{self.name}: the derivatives gave {len(slopes)} value(s) for "
                f"{self.arity} operand(s); return one local derivative per operand"
            )
        return slopes

    def __call__(self, *operands: Operand) -> Value:
        if len(operands) != self.arity:
            raise OperandTypeError(
                f"{self.name}: expected {self.arity} operand(s), got {len(operands)}"
            )
        nodes = tuple(
            x if isinstance(x, Value) else Value(_as_float(self.name, x)) for x in operands
        )
        data = self.evaluate(*(node.data for node in nodes))
        if self._rule is None and _recording.get():
            raise OperationError(
                f"{self.name}: no derivatives given; define them with @{self.name}.derivatives "
                "(or compute inside mg.no_grad())"
            )
        # this rule is a closure: it must call this definition even if the name is redefined
        return _result(self.name, data, nodes, lambda get, node: self._slopes(get, node))

    def _slopes(self, get: Reader, node: Value) -> tuple[Any, ...]:
        arguments = (*map(get, node.parents), get(node))
        if get is _read_data:
            return self.evaluate_derivatives(*arguments)
        slopes: tuple[Any, ...] = self._guarded(
            f"the derivatives of {self.name}", self.derivatives, arguments
        )
        return slopes

    def evaluate_derivatives(self, *operands_and_out: float) -> tuple[float, ...]:
        """The local derivatives at ``(*operands, out)``, as floats, under the engine's rules.

        What a plain backward pass and every backend use; errors of Python's
        arithmetic become microgradient errors, as in :meth:`evaluate`.
        """
        what = f"the derivatives of {self.name}"
        slopes = self._guarded(what, self.derivatives, operands_and_out)
        return tuple(_as_float(self.name, float(d) if isinstance(d, Value) else d) for d in slopes)

    def evaluate(self, *operands: float) -> float:
        """The forward on floats, under the engine's rules, as every backend runs it.

        Errors of Python's arithmetic become microgradient errors naming the
        operation and its operands; a ``Value`` result is read as its ``data``.
        """
        result = self._guarded(self.name, self.forward, operands)
        if isinstance(result, Value):
            result = result.data
        return _as_float(self.name, result)

    @staticmethod
    def _guarded(what: str, function: Callable[..., Any], arguments: tuple[Any, ...]) -> Any:
        """Call user code; the errors of Python's arithmetic become microgradient errors."""
        where = f"{what}({', '.join(map(_describe_operand, arguments))})"
        try:
            return function(*arguments)
        except MicrogradientError:
            raise
        except ZeroDivisionError as error:
            raise DivisionByZeroError(f"{where}: {error}") from error
        except OverflowError as error:
            raise FloatOverflowError(
                f"{where}: {error}; return inf instead to follow the overflow rule"
            ) from error
        except (ValueError, ArithmeticError) as error:
            raise DomainError(f"{where} is outside the operation's domain: {error}") from error


def _describe_operand(x: Any) -> str:
    return _describe(x) if isinstance(x, Value) else repr(x)


def _arity(forward: Callable[..., float], name: str) -> int:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = inspect.signature(forward).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        raise OperationError(f"operation {name!r}: forward needs a fixed number of operands")
    arity = builtins.sum(1 for p in parameters if p.kind in kinds and p.default is p.empty)
    if arity == 0:
        raise OperationError(f"operation {name!r}: forward takes no operands")
    return arity


def _checked_javascript(
    javascript: Mapping[str, Any] | None, name: str, arity: int
) -> dict[str, Any] | None:
    if javascript is None:
        return None
    forward = javascript.get("forward")
    derivatives = javascript.get("derivatives")
    if (
        set(javascript) != {"forward", "derivatives"}
        or not isinstance(forward, str)
        or not isinstance(derivatives, (list, tuple))
        or len(derivatives) != arity
        or not all(isinstance(d, str) for d in derivatives)
    ):
        raise OperationError(
            f"operation {name!r}: javascript must be {{'forward': str, 'derivatives': "
            f"[{arity} str]}}, got {javascript!r}"
        )
    return {"forward": forward, "derivatives": list(derivatives)}


@overload
def operation(forward: Callable[..., float], /) -> Operation: ...
@overload
def operation(
    *,
    name: str | None = None,
    symbol: str | None = None,
    javascript: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., float]], Operation]: ...
def operation(
    forward: Callable[..., float] | None = None,
    /,
    *,
    name: str | None = None,
    symbol: str | None = None,
    javascript: Mapping[str, Any] | None = None,
) -> Operation | Callable[[Callable[..., float]], Operation]:
    """Define a primitive operation: its forward on floats, then its local derivatives.

    >>> import math
    >>> @operation(symbol="softplus")
    ... def my_softplus(x):
    ...     return math.log1p(math.exp(x))
    >>> @my_softplus.derivatives
    ... def _(x, out):
    ...     return (sigmoid(x),)
    >>> x = Value(0.0)
    >>> y = my_softplus(x)
    >>> y.backward()
    >>> y.op, round(y.data, 6), x.grad
    ('my_softplus', 0.693147, 0.5)

    The operation then works wherever a built-in one does: ``backward()``,
    ``create_graph=True`` (when the derivatives use operators and ``mg`` functions),
    ``gradcheck``, drawing (with ``symbol``) and tracing. ``name`` defaults to the
    function's name and may not be a built-in operation's; defining a name again
    replaces the earlier definition. :func:`find_operation` looks one up by name.
    """

    def define(function: Callable[..., float]) -> Operation:
        return Operation(function, name=name, symbol=symbol, javascript=javascript)

    return define if forward is None else define(forward)


def find_operation(name: str) -> Operation | None:
    """The :class:`Operation` defined with this name, or ``None`` (built-ins included).

    >>> find_operation("exp") is None
    True
    """
    return _operations.get(name)
