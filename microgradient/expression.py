"""The expression language: turn text such as ``1/(1+exp(-w*x))`` into a graph of Values.

The grammar, loosest binding first::

    expression := term (("+" | "-") term)*
    term       := ("-" | "+") term | product          -w*x  is  -(w*x)
    product    := power (("*" | "/") factor)*
    factor     := ("-" | "+") factor | power          a*-b  is  a*(-b)
    power      := atom [("**" | "^") factor]          right-associative: a^b^c is a^(b^c)
    atom       := number | name | function "(" expression ")" | "(" expression ")"

* Numbers are decimal: ``2``, ``.5``, ``1.``, ``1e-3``. Hexadecimal, ``1_000``
  and complex ``1j`` are rejected, and so is implicit multiplication (``2x``).
* Names are ASCII identifiers. Each name is one leaf ``Value`` labelled with
  the name, however often it appears (``x*x`` is one leaf with two edges).
* Functions: ``exp log sqrt tanh sigmoid relu sin cos abs``, one argument each.
* ``e`` and ``pi`` are constants, never variables; ``e^u`` and ``e**u`` mean
  ``exp(u)``.
* A unary minus at the start of a term covers the whole product, as in
  textbooks: ``-w*x`` is ``-(w*x)`` and ``-x**2`` is ``-(x**2)``. After ``*``,
  ``/`` or a power it covers only the next power: ``a*-b`` is ``a*(-b)``,
  ``2**-x`` is ``2**(-x)``. Every reading agrees in value with Python's.
* Parts without names are computed once, as plain numbers, and enter the
  graph as an operation's ``constant``: ``2*pi*x`` is one ``*`` node.

The text is never given to ``eval``: a tokenizer and an iterative
operator-precedence parser (no recursion, so no input can exhaust the stack)
accept exactly the grammar above. Input longer than :data:`MAX_LENGTH`
characters or with parentheses nested deeper than :data:`MAX_DEPTH` is
rejected. Every problem with the text, including a domain error while
computing its value, raises :class:`~microgradient.ExpressionError`; the first
line of its message is a one-line summary and the next two show the input with
a caret under the offending position.
"""

from __future__ import annotations

import keyword
import math
import numbers
import operator
import re
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple, TypeAlias, cast

from microgradient.engine import Value, no_grad, topological_order
from microgradient.errors import (
    ExpressionError,
    FloatOverflowError,
    GraphTooLargeError,
    MicrogradientError,
    OperandTypeError,
)

MAX_LENGTH: Final = 10_000
"""The longest text :func:`parse` accepts, in characters."""

MAX_DEPTH: Final = 200
"""The deepest nesting of parentheses :func:`parse` accepts."""

FUNCTIONS: Final = ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "abs")
"""The functions of the language; each is the ``Value`` method of the same name."""

CONSTANTS: Final = {"e": math.e, "pi": math.pi}
"""The named constants of the language."""

# binding strength, loosest first; a unary minus binds looser than * at the start of a
# term (-w*x is -(w*x)) and tighter than * after an operator (a*-b is a*(-b))
_ADD, _NEG_LOW, _MUL, _NEG_HIGH, _POW, _ATOM = range(1, 7)

_BINARY: Final = {
    "+": ("+", _ADD),
    "-": ("-", _ADD),
    "*": ("*", _MUL),
    "/": ("/", _MUL),
    "**": ("**", _POW),
    "^": ("**", _POW),
}
_APPLY: Final[dict[str, Callable[[Value | float, Value | float], Value]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}

_SPACE = re.compile(r"[ \t\n\r\f\v]*")
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]*")  # characters that must not touch a number
_CHARACTER_ERRORS: Final = {
    **dict.fromkeys("'\"", "strings are not supported"),
    **dict.fromkeys("[]", "subscripts and lists are not supported"),
    "=": "'=' is not allowed in an expression (no assignments, comparisons or keyword arguments)",
    ".": "'.' is only allowed inside a number (there is no attribute access)",
    **{c: f"unsupported operator {c!r}" for c in "%@<>!&|~"},
}
_LOOKALIKES: Final = {
    "\u2212": "write the ASCII minus '-'",
    "\u00d7": "write '*' to multiply",
    "\u00b7": "write '*' to multiply",
    "\u00f7": "write '/' to divide",
}


class Expression(Value):
    """The ``Value`` returned by :func:`parse`: ``str()`` gives the expression as text.

    The engine builds every node as a plain ``Value``; :func:`parse` turns the
    root it built into an ``Expression`` by assigning ``__class__`` (the two
    classes have the same slots), so only the root is one. Arithmetic on an
    ``Expression`` returns plain ``Value``s, and ``repr()`` is ``Value``'s.

    >>> y = parse("x^2 + 1", x=3)
    >>> str(y), y.data
    ('1 + x**2', 10.0)
    """

    __slots__ = ()

    def __str__(self) -> str:
        return to_text(self)


def parse(text: str, /, **values: float | Value) -> Value:
    """Build the graph of ``text``, with the value of each of its names given as a keyword.

    A name's value may be a number, which becomes a new leaf labelled with the
    name, or a ``Value``, which is used as that leaf itself (so a caller can
    read its ``grad`` afterwards, or differentiate with respect to it). Every
    name must have a value; values for names the text does not use are ignored,
    so one set of values can serve several expressions.

    The result is an :class:`Expression`, whose ``str()`` is its text, unless
    the whole text is one name given as a ``Value``: that ``Value`` is returned
    as it is. Anything wrong, with the text or with computing it at these
    values, raises
    :class:`~microgradient.ExpressionError`; when the engine raised the
    error (``DomainError`` for ``log(x)`` at ``x=-1``, ...) it is the
    ``__cause__``. See the module documentation for the grammar.

    >>> h = parse("1/(1+exp(-w*x))", w=0, x=1)
    >>> h.backward()
    >>> h.data, [leaf.grad for leaf in h.parents[0].parents[0].parents[0].parents[0].parents]
    (0.5, [0.25, 0.0])
    >>> str(h)
    '1/(1 + exp(-(w*x)))'
    """
    if not isinstance(text, str):
        raise OperandTypeError(
            f"parse: expected the expression as a str, got {type(text).__name__}"
        )
    program = _compile(text)
    leaves = _leaves(text, program.names, values)
    result = _evaluate(text, program.steps, leaves)
    if any(result is given for given in values.values()):
        return cast(Value, result)  # the caller's own Value: not ours to change
    root = result if isinstance(result, Value) else Value(result)
    root.__class__ = Expression
    return root


def variables(text: str) -> list[str]:
    """The names ``text`` needs values for, in order of first appearance.

    Raises :class:`~microgradient.ExpressionError` if ``text`` is not an expression.

    >>> variables("w*x + b*w + pi")
    ['w', 'x', 'b']
    """
    return list(_compile(text).names)


def to_text(value: Value, *, max_nodes: int = 100_000) -> str:
    """The expression that computes ``value`` from its leaves, as text :func:`parse` reads.

    Parentheses appear only where precedence and associativity need them,
    except that a negated product is written ``-(w*x)`` so that the text reads
    the same in Python. Leaves appear by label (an unlabelled leaf by its
    value) and constants in the shortest form that reads back exactly; a
    constant that entered ``+`` or ``*`` is written first (``1 + x``, ``2*x``),
    since the graph does not record which side it was on. A node reached by
    several paths is written out at each. For a graph made by :func:`parse`,
    the text parses back to the same graph; ``sum`` and ``dot`` nodes come back
    as chains of ``+`` and ``*``.

    Raises :class:`~microgradient.GraphTooLargeError` if writing the graph out
    as a tree would take more than ``max_nodes`` nodes (shared subexpressions
    can make that exponential in the size of the graph).

    >>> x = Value(2.0, label="x")
    >>> to_text((-x) * x + 3 * x**2)
    '(-x)*x + 3*x**2'
    """
    _check_tree_size(value, max_nodes)
    pieces: list[str] = []
    pending: list[str | Value] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            pieces.append(item)
            continue
        for part in reversed(_layout(item)):
            if isinstance(part, str):
                pending.append(part)
                continue
            operand, tightness = part
            if isinstance(operand, Value):
                wrap = _precedence(operand) < tightness
                pending.extend((")", operand, "(") if wrap else (operand,))
            else:
                text = _number_text(operand)
                wrap = _is_negative(operand) and tightness > _NEG_LOW
                pending.append(f"({text})" if wrap else text)
    return "".join(pieces)


# ---- errors ---------------------------------------------------------------------------


def _error(reason: str, text: str, position: int) -> ExpressionError:
    """An ExpressionError: a summary line, then the input with a caret under ``position``."""
    start = max(0, position - 40)
    end = min(len(text), position + 40)
    window = text[start:end]
    # one printable column per character, so the caret lands under the right one
    shown = "".join(c if " " <= c <= "~" else "?" for c in window)
    before, after = ("..." if start > 0 else ""), ("..." if end < len(text) else "")
    caret = " " * (len(before) + position - start) + "^"
    return ExpressionError(
        f"{reason} at column {position + 1}\n  {before}{shown}{after}\n  {caret}"
    )


# ---- tokens ---------------------------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # "number", "name", "op", "(", ")", ",", "end"
    text: str
    position: int
    number: float = 0.0


def _tokens(text: str) -> Iterator[_Token]:
    position = 0
    while True:
        position = _SPACE.match(text, position).end()  # type: ignore[union-attr]
        if position == len(text):
            yield _Token("end", "", position)
            return
        char = text[position]
        if "0" <= char <= "9" or (char == "." and "0" <= text[position + 1 : position + 2] <= "9"):
            token = _number(text, position)
        elif char.isascii() and (char.isalpha() or char == "_"):
            name = _NAME.match(text, position).group()  # type: ignore[union-attr]
            if keyword.iskeyword(name):
                raise _error(
                    f"{name!r} is a Python keyword, not part of the language", text, position
                )
            token = _Token("name", name, position)
        elif text.startswith("**", position):
            token = _Token("op", "**", position)
        elif text.startswith("//", position):
            raise _error("unsupported operator '//' (write '/' to divide)", text, position)
        elif char in "+-*/^(),":
            token = _Token("op" if char in "+-*/^" else char, char, position)
        else:
            raise _error(_CHARACTER_ERRORS.get(char, _unexpected(char)), text, position)
        yield token
        position += len(token.text)


def _unexpected(char: str) -> str:
    if char.isascii():
        return f"unexpected character {char!r}"
    hint = _LOOKALIKES.get(char, "the language is ASCII only")
    return f"unexpected character {char!r} (U+{ord(char):04X}): {hint}"


def _number(text: str, position: int) -> _Token:
    literal = _NUMBER.match(text, position).group()  # type: ignore[union-attr]
    end = position + len(literal)
    run = _NUMBER_TAIL.match(text, end).group()  # type: ignore[union-attr]
    if run:
        raise _error(_number_problem(literal, run), text, end)
    number = float(literal)
    if math.isinf(number):
        raise _error(f"the number {literal} is too large for a float", text, position)
    return _Token("number", literal, position, number)


def _number_problem(literal: str, run: str) -> str:
    """Why the number ``literal`` cannot be followed by ``run`` (letters, digits, '_', '.')."""
    first = run[0]
    if first in "xXoObB" and literal.strip("0") == "":
        return "only decimal numbers are supported (no hexadecimal, octal or binary)"
    if first == "_":
        return "'_' is not allowed in numbers (write 1000, not 1_000)"
    if first in "jJ":
        return "complex numbers are not supported"
    if first == "." or (first in "eE" and not run[1:2].isalpha()):
        return f"malformed number {literal + run!r}"
    name = _NAME.match(run).group()  # type: ignore[union-attr]
    return (
        f"missing operator between {literal!r} and {name!r} "
        f"(implicit multiplication is not supported: write {literal}*{name})"
    )


class _Lookahead:
    """Tokens one at a time, with a look at the next one."""

    def __init__(self, tokens: Iterator[_Token]) -> None:
        self._tokens = tokens
        self._next: _Token | None = None

    def take(self) -> _Token:
        token = self.peek()
        self._next = None
        return token

    def peek(self) -> _Token:
        if self._next is None:
            self._next = next(self._tokens)
        return self._next


# ---- parsing: text to postfix steps ---------------------------------------------------


class _Step(NamedTuple):
    """One instruction of the postfix program: push a number or variable, or apply an op."""

    code: str  # "number", "name", "neg", "call", or a binary operator "+" "-" "*" "/" "**"
    position: int  # where to point the caret if applying it fails
    argument: str = ""  # the variable or function name
    number: float = 0.0


class _Pending(NamedTuple):
    """An operator or open parenthesis waiting on the parser's stack."""

    code: str  # "(" or a _Step code
    binding: int
    position: int
    function: str = ""  # for "(" that opens a call, and for "call" (e^u)


class _Program(NamedTuple):
    steps: list[_Step]
    names: dict[str, int]  # name -> position of its first appearance, in order of appearance


def _compile(text: str) -> _Program:
    """Check ``text`` against the grammar and turn it into postfix steps.

    An operator-precedence (shunting-yard) parser: iterative, so nesting
    costs heap, never Python stack.
    """
    if len(text) > MAX_LENGTH:
        raise _error(
            f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}",
            text,
            MAX_LENGTH,
        )
    steps: list[_Step] = []
    names: dict[str, int] = {}
    stack: list[_Pending] = []
    depth = 0
    unary_binding = _NEG_LOW
    expect_operand = True
    tokens = _Lookahead(_tokens(text))
    token = _Token("end", "", 0)
    while True:
        previous, token = token, tokens.take()
        kind, position = token.kind, token.position
        if expect_operand:
            if kind == "number":
                steps.append(_Step("number", position, number=token.number))
                expect_operand = False
            elif kind == "name" and token.text in FUNCTIONS:
                if tokens.peek().kind != "(":
                    raise _error(
                        f"{token.text!r} is a function: write {token.text}(...)", text, position
                    )
                depth = _deeper(depth, text, tokens.take().position)
                stack.append(_Pending("(", 0, position, token.text))
                unary_binding = _NEG_LOW
            elif kind == "name" and token.text == "e" and tokens.peek().text in ("**", "^"):
                tokens.take()
                stack.append(_Pending("call", _POW, position, "exp"))
                unary_binding = _NEG_HIGH
            elif kind == "name" and token.text in CONSTANTS:
                steps.append(_Step("number", position, number=CONSTANTS[token.text]))
                expect_operand = False
            elif kind == "name":
                names.setdefault(token.text, position)
                steps.append(_Step("name", position, token.text))
                expect_operand = False
            elif kind == "(":
                depth = _deeper(depth, text, position)
                stack.append(_Pending("(", 0, position))
                unary_binding = _NEG_LOW
            elif token.text == "-":
                stack.append(_Pending("neg", unary_binding, position))
            elif token.text != "+":  # a unary plus changes nothing
                raise _error(_operand_missing(token, empty=not text.strip()), text, position)
        elif kind == "op":
            code, binding = _BINARY[token.text]
            # ** is right-associative: an equally binding ** on the stack waits for this one
            while (
                stack
                and stack[-1].code != "("
                and (stack[-1].binding > binding or (stack[-1].binding == binding and code != "**"))
            ):
                steps.append(_apply_step(stack.pop()))
            stack.append(_Pending(code, binding, position))
            unary_binding = _NEG_LOW if binding == _ADD else _NEG_HIGH
            expect_operand = True
        elif kind == ")":
            while stack and stack[-1].code != "(":
                steps.append(_apply_step(stack.pop()))
            if not stack:
                raise _error("unmatched ')'", text, position)
            opened = stack.pop()
            depth -= 1
            if opened.function:
                steps.append(_Step("call", opened.position, opened.function))
        elif kind == "end":
            while stack:
                pending = stack.pop()
                if pending.code == "(":
                    what = f"{pending.function}(" if pending.function else "("
                    raise _error(f"{what!r} is never closed", text, pending.position)
                steps.append(_apply_step(pending))
            return _Program(steps, names)
        elif kind == ",":
            calls = [p.function for p in stack if p.code == "("]
            if calls and calls[-1]:
                raise _error(f"{calls[-1]} takes exactly one argument", text, position)
            raise _error("unexpected ','", text, position)
        elif kind == "(" and previous.kind == "name":
            name = previous.text
            problem = (
                f"{name!r} is a constant, not a function (write {name}*(...) to multiply)"
                if name in CONSTANTS
                else f"unknown function {name!r} (the functions are {', '.join(FUNCTIONS)})"
            )
            raise _error(problem, text, previous.position)
        else:
            raise _error(
                f"missing operator before {token.text!r} "
                "(implicit multiplication is not supported: write '*')",
                text,
                position,
            )


def _deeper(depth: int, text: str, position: int) -> int:
    if depth == MAX_DEPTH:
        raise _error(f"parentheses are nested deeper than {MAX_DEPTH} levels", text, position)
    return depth + 1


def _operand_missing(token: _Token, *, empty: bool) -> str:
    if token.kind == "end":
        return "the expression is empty" if empty else "the expression ends too early"
    return f"expected a number, a name or '(' before {token.text!r}"


def _apply_step(pending: _Pending) -> _Step:
    return _Step(pending.code, pending.position, pending.function)


# ---- evaluation: postfix steps to a graph ---------------------------------------------


def _leaves(text: str, names: dict[str, int], values: dict[str, float | Value]) -> dict[str, Value]:
    for name, given in values.items():
        problem = _name_problem(name)
        if problem:
            raise ExpressionError(f"{name!r} cannot be a variable: {problem}")
        if isinstance(given, bool) or not isinstance(given, (numbers.Real, Value)):
            raise OperandTypeError(
                f"parse: the value of {name!r} must be a real number or a Value, "
                f"got {type(given).__name__} {given!r}"
            )
    missing = [name for name in names if name not in values]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        plural = "s" if len(missing) > 1 else ""
        raise _error(f"no value given for variable{plural} {listed}", text, names[missing[0]])
    return {
        name: given if isinstance(given, Value) else Value(given, label=name)
        for name, given in values.items()
        if name in names
    }


def _name_problem(name: str) -> str:
    """Why ``name`` cannot name a variable, or "" if it can."""
    if not _NAME.fullmatch(name):
        return "a name is ASCII letters, digits and '_', and does not start with a digit"
    if name in CONSTANTS:
        return f"it is the constant {name} = {CONSTANTS[name]!r}"
    if name in FUNCTIONS:
        return "it is a function"
    if keyword.iskeyword(name):
        return "it is a Python keyword"
    return ""


def _evaluate(text: str, steps: list[_Step], leaves: dict[str, Value]) -> Value | float:
    stack: list[Value | float] = []
    for step in steps:
        code = step.code
        if code == "number":
            stack.append(step.number)
        elif code == "name":
            stack.append(leaves[step.argument])
        else:
            if code in ("neg", "call"):
                operands: tuple[Value | float, ...] = (stack.pop(),)
            else:
                right = stack.pop()
                operands = (stack.pop(), right)
            try:
                stack.append(_apply(step, operands))
            except MicrogradientError as error:
                raise _error(str(error), text, step.position) from error
    return stack[0]


def _apply(step: _Step, operands: tuple[Value | float, ...]) -> Value | float:
    """Apply one operation; on numbers alone it gives a number (computed by the engine)."""
    if any(isinstance(operand, Value) for operand in operands):
        return _operate(step, operands)
    first, *rest = cast(tuple[float, ...], operands)
    with no_grad():
        # the engine's own checks apply; a number on the right keeps (-2)**2 legal
        result = _operate(step, (Value(first), *rest)).data
    if not math.isfinite(result):
        symbol = {"call": step.argument, "neg": "-"}.get(step.code, step.code)
        shown = f"{symbol}({first!r})" if len(operands) == 1 else f"{first!r} {symbol} {rest[0]!r}"
        raise FloatOverflowError(f"{shown} is too large for a float")
    return result


def _operate(step: _Step, operands: tuple[Value | float, ...]) -> Value:
    if step.code == "neg":
        return -cast(Value, operands[0])
    if step.code == "call":  # step.argument is one of FUNCTIONS: the parser allows no other
        method: Callable[[], Value] = getattr(operands[0], step.argument)
        return method()
    return _APPLY[step.code](operands[0], operands[1])


# ---- writing a graph as text ----------------------------------------------------------

# an operand and how tightly it must bind to be written without parentheses
_Operand: TypeAlias = tuple[Value | float, int]
_INFIX: Final = {"+": " + ", "-": " - ", "*": "*", "/": "/", "**": "**"}
_BINDING: Final = {
    **dict.fromkeys(("+", "-", "r-", "sum", "dot"), _ADD),
    **dict.fromkeys(("*", "/", "r/"), _MUL),
    **dict.fromkeys(("**", "r**"), _POW),
    "neg": _NEG_LOW,
}


def _precedence(node: Value) -> int:
    if node.op:
        return _BINDING.get(node.op, _ATOM)
    if not node.label and _is_negative(node.data):
        return _NEG_LOW
    return _ATOM


def _layout(node: Value) -> list[str | _Operand]:
    """How to write ``node``: text, and operands with the binding each needs to go bare."""
    op, parents, c = node.op, node.parents, node.constant
    if not op:
        return [node.label or _number_text(node.data)]
    if op == "neg":
        return ["-", (parents[0], _POW)]  # -(w*x), never -w*x, so Python reads it the same
    if op in FUNCTIONS:
        return [f"{op}(", (parents[0], 0), ")"]
    if op in ("sum", "dot"):
        return _sum_layout(node)
    if op in ("r-", "r/") and c is not None:
        left, right = _BINDING[op], _BINDING[op] + 1
        return [(c, left), _INFIX[op[1]], (parents[0], right)]
    if op == "r**" and c is not None:
        # a bare e would read back as exp(...), a different node
        base = repr(c) if c == math.e else _number_text(c)
        return [base, "**", (parents[0], _POW)]
    if op in _INFIX and len(parents) + (c is not None) == 2:
        binding = _BINDING[op]
        # ** groups to the right, the others to the left
        left, right = (binding + 1, binding) if op == "**" else (binding, binding + 1)
        first, second = (
            parents if c is None else (c, parents[0]) if op in ("+", "*") else (parents[0], c)
        )
        return [(first, left), _INFIX[op], (second, right)]
    # an operation this module does not know: write it as a call
    layout: list[str | _Operand] = [f"{op}("]
    operands: list[Value | float] = [*parents, *([] if c is None else [c])]
    for i, operand in enumerate(operands):
        layout.extend([", "] * (i > 0))
        layout.append((operand, 0))
    return [*layout, ")"]


def _sum_layout(node: Value) -> list[str | _Operand]:
    """A ``sum`` or ``dot`` node as a chain of ``+``: ``a + b + 3``, ``2*w + x*y``."""
    # each term: its first operand, the binding that operand needs, and the rest of the term
    terms: list[tuple[Value | float, int, list[str | _Operand]]] = []
    if node.op == "sum":
        terms = [(parent, _ADD, []) for parent in node.parents]
    else:
        coefficients = node.coefficients or ()
        pairs = (len(node.parents) - len(coefficients)) // 2
        weights, inputs = node.parents[:pairs], node.parents[pairs : 2 * pairs]
        terms = [(w, _MUL, ["*", (x, _MUL + 1)]) for w, x in zip(weights, inputs)]
        scaled = node.parents[2 * pairs :]
        terms += [(c, _MUL, ["*", (factor, _MUL + 1)]) for c, factor in zip(coefficients, scaled)]
    if node.constant is not None or not terms:
        terms.append((node.constant or 0.0, _ADD, []))
    layout: list[str | _Operand] = []
    for i, (head, binding, rest) in enumerate(terms):
        if i > 0:
            layout.append(" + ")
        # a later term must bind tighter than +, or a - at its top would spread
        layout.extend([(head, binding if i == 0 else max(binding, _ADD + 1)), *rest])
    return layout


def _is_negative(number: float) -> bool:
    """True for negative numbers and -0.0, which are written with a leading minus."""
    return math.copysign(1.0, number) < 0.0


def _number_text(number: float) -> str:
    """The shortest text that reads back as exactly ``number``: 2 not 2.0, pi for math.pi."""
    for name, constant in CONSTANTS.items():
        if abs(number) == constant:
            return name if number > 0 else f"-{name}"
    text = repr(number)
    return text[:-2] if text.endswith(".0") else text


def _check_tree_size(root: Value, max_nodes: int) -> None:
    """Refuse graphs whose text, which repeats shared subexpressions, would be too long."""
    sizes: dict[int, int] = {}
    for node in topological_order(root):
        sizes[id(node)] = min(1 + sum(sizes[id(parent)] for parent in node.parents), max_nodes + 1)
    if sizes[id(root)] > max_nodes:
        raise GraphTooLargeError(
            f"to_text: written out as a tree the graph has more than {max_nodes} nodes "
            "(shared subexpressions are repeated); pass a larger max_nodes"
        )
