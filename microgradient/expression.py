"""The expression language: turn text such as ``1/(1+exp(-w*x))`` into a graph of Values.

The grammar, loosest binding first::

    expression := term (("+" | "-") term)*
    term       := ("-" | "+") term | product          -w*x  is  -(w*x)
    product    := power (("*" | "/") factor)*
    factor     := ("-" | "+") factor | power          a*-b  is  a*(-b)
    power      := prefixed [("**" | "^") factor]      right-associative: a^b^c is a^(b^c)
    prefixed   := "√" factor | postfix                √x^2 is √(x^2), like -x^2
    postfix    := atom superscript*                   x², (a+b)³, x⁻¹
    atom       := number | name | function "(" arguments ")" | "(" expression ")"

* Numbers are decimal: ``2``, ``.5``, ``1.``, ``1e-3``. Hexadecimal, ``1_000``
  and complex ``1j`` are rejected, and so is implicit multiplication (``2x``).
* Names are Python identifiers, in any script (``x``, ``苹果``, ``ℒ``), and may
  also contain subscript digits (``θ₁``, ``x₂``). As in Python, two spellings
  with the same NFKC normal form are one name (``ｘ`` and the math italic
  ``𝑥`` are ``x``), except that subscripts and superscripts stay apart
  (``x₁`` is not ``x1``); a leaf is labelled with the spelling that comes
  first. Each name is one leaf ``Value``, however often it appears
  (``x*x`` is one leaf with two edges).
* The symbols people paste from slides mean what they look like: ``×``,
  ``·``, ``⋅`` and ``∙`` multiply, ``÷`` divides, ``−`` (U+2212) subtracts,
  ``√x`` is ``sqrt(x)``, and superscripts are powers (``x²`` is ``x**2``,
  ``x⁻¹`` is ``x**-1``). A superscript raises the atom just before it, so
  ``2^x²`` is ``2^(x²)`` and ``-x²`` is ``-(x²)``. Full-width operators and
  parentheses (``＋``, ``（``) read as their ASCII forms.
* Functions: ``exp log ln sqrt tanh sigmoid relu sin cos abs tan atan
  softplus`` take one argument (``ln`` is ``log``), ``max min pow`` two
  (``pow(x, y)`` is ``x**y``).
* ``e`` and ``pi`` are constants, never variables; ``e^u``, ``e**u`` and
  ``e²`` mean ``exp(u)``, ``exp(2)``.
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
a caret under the offending position (wide characters, such as Chinese ones,
count as two columns).
"""

from __future__ import annotations

import itertools
import keyword
import math
import numbers
import operator
import re
import unicodedata
import weakref
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple, TypeAlias, cast

from microgradient.engine import Value, max_, min_, no_grad, pow_, topological_order
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

FUNCTIONS: Final = {
    **dict.fromkeys(
        (
            "exp", "log", "ln", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "abs",
            "tan", "atan", "softplus",
        ),
        1,
    ),
    **dict.fromkeys(("max", "min", "pow"), 2),
}  # fmt: skip
"""The functions of the language and the number of arguments each takes."""

CONSTANTS: Final = {"e": math.e, "pi": math.pi}
"""The named constants of the language."""

# binding strength, loosest first; a unary minus binds looser than * at the start of a
# term (-w*x is -(w*x)) and tighter than * after an operator (a*-b is a*(-b))
_ADD, _NEG_LOW, _MUL, _NEG_HIGH, _POW, _ATOM = range(1, 7)

# each operator symbol and the ASCII operator it means
_OPERATORS: Final = {
    **{c: c for c in "+-*/^"},
    "\u2212": "-",  # − minus sign
    "\u00d7": "*",  # × multiplication sign
    "\u00b7": "*",  # · middle dot
    "\u0387": "*",  # · Greek ano teleia, which looks the same
    "\u22c5": "*",  # ⋅ dot operator
    "\u2219": "*",  # ∙ bullet operator
    "\u00f7": "/",  # ÷ division sign
}
_BINDING_OF: Final = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "**": _POW, "^": _POW}
_APPLY: Final[dict[str, Callable[[Value | float, Value | float], Value]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
    "^": operator.pow,
}
_ROOT: Final = "\u221a"  # √
_SUPERSCRIPT_DIGITS: Final = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_SUPERSCRIPT_MINUS: Final = "\u207b"  # ⁻
_SUPERSCRIPT = re.compile(f"{_SUPERSCRIPT_MINUS}?[{_SUPERSCRIPT_DIGITS}]+")
_FROM_SUPERSCRIPT: Final = str.maketrans(_SUPERSCRIPT_DIGITS + _SUPERSCRIPT_MINUS, "0123456789-")
# Python lets these continue an identifier, but here they are operators: w·x is w times x
_NOT_IN_NAMES: Final = "\u00b7\u0387"

_SPACE = re.compile(r"[ \t\n\r\f\v]*")
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_CHARACTER_ERRORS: Final = {
    **dict.fromkeys("'\"", "strings are not supported"),
    **dict.fromkeys("[]", "subscripts and lists are not supported"),
    "=": "'=' is not allowed in an expression (no assignments, comparisons or keyword arguments)",
    ".": "'.' is only allowed inside a number (there is no attribute access)",
    **{c: f"unsupported operator {c!r}" for c in "%@<>!&|~"},
}
_LOOKALIKES: Final = {
    "\u2013": "write '-' to subtract",  # – en dash
    "\u2014": "write '-' to subtract",  # — em dash
    "\u221b": "write x**(1/3) for a cube root",  # ∛
}


class Expression(Value):
    """The ``Value`` returned by :func:`parse`: ``str()`` gives the expression as text.

    The text is the expression as it was typed, spaced and parenthesised
    regularly: the user's names, numbers (``pi``, not ``3.141592653589793``),
    symbols and order of operands are kept (``x+1`` is ``x + 1``), and a
    negated product is written ``-(w*x)`` to show how it was read. It parses
    back to the same graph.

    The engine builds every node as a plain ``Value``; :func:`parse` turns the
    root it built into an ``Expression`` by assigning ``__class__`` (the two
    classes have the same slots), so only the root is one. Arithmetic on an
    ``Expression`` returns plain ``Value``s, and ``repr()`` is ``Value``'s.

    >>> y = parse("x^2+1", x=3)
    >>> str(y), y.data
    ('x^2 + 1', 10.0)
    """

    __slots__ = ()

    def __str__(self) -> str:
        written = _WRITTEN.get(id(self))
        # a copy (copy.copy, pickle) was never parsed: it is written from its graph
        return to_text(self) if written is None else written


# the text of each Expression that parse made and that is alive, by id (a Value has no
# room for it); weakref.finalize removes the entry when the Expression goes
_WRITTEN: dict[int, str] = {}


def parse(text: str, /, **values: float | Value) -> Value:
    """Build the graph of ``text``, with the value of each of its names given as a keyword.

    A name's value may be a number, which becomes a new leaf labelled with the
    name, or a ``Value``, which is used as that leaf itself (so a caller can
    read its ``grad`` afterwards, or differentiate with respect to it). Every
    name must have a value; values for names the text does not use are ignored,
    so one set of values can serve several expressions. Keywords are matched to
    names as Python matches identifiers (after NFKC normalisation), so
    ``parse("𝑥 + 1", x=2)`` works for text pasted from a formula editor.

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
    _WRITTEN[id(root)] = _write(program.steps)
    weakref.finalize(root, _WRITTEN.pop, id(root), None)
    return root


def variables(text: str) -> list[str]:
    """The names ``text`` needs values for, in order of first appearance.

    Each name is given as it is first spelled. Raises
    :class:`~microgradient.ExpressionError` if ``text`` is not an expression.

    >>> variables("w*x + b*w + pi")
    ['w', 'x', 'b']
    """
    return [spelling for spelling, _ in _compile(text).names.values()]


def same_name(first: str, second: str) -> bool:
    """Whether two spellings are one name of the language (as ``𝑥`` and ``x`` are).

    Names are compared as Python compares identifiers, by their NFKC normal
    form, except that sub- and superscripts are kept apart.

    >>> same_name("𝑥", "x"), same_name("x₁", "x1")
    (True, False)
    """
    return _identity(first) == _identity(second)


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
    shown = [(c, _width(c)) if c.isprintable() else ("?", 1) for c in text[start:end]]
    before, after = ("..." if start > 0 else ""), ("..." if end < len(text) else "")
    # a terminal gives a wide character (苹) two columns and a combining mark none
    column = len(before) + sum(width for _, width in shown[: position - start])
    window = "".join(c for c, _ in shown)
    return ExpressionError(
        f"{reason} at column {position + 1}\n  {before}{window}{after}\n  {' ' * column}^"
    )


def _width(char: str) -> int:
    """The columns a terminal gives the printable ``char``."""
    if unicodedata.category(char) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """How many columns a terminal gives the printable ``text``: 苹 takes two, an accent none.

    >>> display_width("x"), display_width("苹果"), display_width("e\u0301")
    (1, 4, 1)
    """
    return sum(_width(char) for char in text)


# ---- tokens ---------------------------------------------------------------------------


class _Token(NamedTuple):
    # "number", "name", "op", "power" (a superscript), "root" (√), "(", ")", ",", "end"
    kind: str
    text: str  # as typed
    position: int
    number: float = 0.0  # a number's value, or a superscript's exponent
    meaning: str = ""  # a name's NFKC form, an operator's ASCII form


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
        elif superscript := _SUPERSCRIPT.match(text, position):
            power = superscript.group()
            exponent = float(power.translate(_FROM_SUPERSCRIPT))
            token = _Token("power", power, position, exponent)
        elif _starts_name(char):
            token = _name(text, position)
        elif text.startswith("**", position):
            token = _Token("op", "**", position, meaning="**")
        elif text.startswith("//", position):
            raise _error("unsupported operator '//' (write '/' to divide)", text, position)
        elif char == _ROOT:
            token = _Token("root", char, position)
        elif (ascii_form := _OPERATORS.get(char) or _ascii_punctuation(char)) is not None:
            kind = "op" if ascii_form in _BINDING_OF else ascii_form
            token = _Token(kind, char, position, meaning=ascii_form)
        else:
            raise _error(_CHARACTER_ERRORS.get(char, _unexpected(char)), text, position)
        yield token
        position += len(token.text)


def _starts_name(char: str) -> bool:
    return char == "_" or char.isidentifier()


def _continues_name(char: str) -> bool:
    if char in _NOT_IN_NAMES:
        return False
    # subscript digits (θ₁) are not Python's, but they are how names are written on the board
    return f"a{char}".isidentifier() or (_is_script(char) == "<sub>" and char.isalnum())


def _is_script(char: str) -> str:
    """ "<sub>" or "<super>" for a subscript or superscript character, else ""."""
    tag = unicodedata.decomposition(char).partition(" ")[0]
    return tag if tag in ("<sub>", "<super>") else ""


def _identity(spelling: str) -> str:
    """What makes two spellings one name: Python's NFKC form, but x₁ stays apart from x1."""
    return "".join(
        "".join(run) if scripted else unicodedata.normalize("NFKC", "".join(run))
        for scripted, run in itertools.groupby(spelling, key=lambda c: bool(_is_script(c)))
    )


def _name_end(text: str, position: int) -> int:
    """Where the name starting at ``position`` ends."""
    end = position + 1
    while end < len(text) and _continues_name(text[end]):
        end += 1
    return end


def _name(text: str, position: int) -> _Token:
    spelling = text[position : _name_end(text, position)]
    name = _identity(spelling)
    if keyword.iskeyword(name):
        raise _error(f"{name!r} is a Python keyword, not part of the language", text, position)
    return _Token("name", spelling, position, meaning=name)


def _ascii_punctuation(char: str) -> str | None:
    """The ASCII operator or bracket a full-width or small form (＋, （, ﹣) stands for."""
    ascii_form = unicodedata.normalize("NFKC", char)
    return ascii_form if ascii_form in ("+", "-", "*", "/", "^", "(", ")", ",") else None


def _unexpected(char: str) -> str:
    if char.isascii():
        return f"unexpected character {char!r}"
    if char == _SUPERSCRIPT_MINUS:
        return "a superscript minus must be followed by superscript digits (x⁻¹)"
    ascii_form = unicodedata.normalize("NFKC", char)
    hint = _LOOKALIKES.get(char) or (
        f"write {ascii_form!r}" if ascii_form != char and ascii_form.isascii() else ""
    )
    return f"unexpected character {char!r} (U+{ord(char):04X})" + (f": {hint}" if hint else "")


def _number(text: str, position: int) -> _Token:
    literal = _NUMBER.match(text, position).group()  # type: ignore[union-attr]
    end = position + len(literal)
    following = text[end : end + 1]
    if following and (
        following in "._"
        or (following.isascii() and following.isalnum())
        or _continues_name(following)
    ):
        raise _error(_number_problem(literal, text, end), text, end)
    number = float(literal)
    if math.isinf(number):
        raise _error(f"the number {literal} is too large for a float", text, position)
    return _Token("number", literal, position, number)


def _number_problem(literal: str, text: str, end: int) -> str:
    """Why the number ``literal`` cannot be followed by what follows it at ``end``."""
    first, second = text[end], text[end + 1 : end + 2]
    if first in "xXoObB" and literal.strip("0") == "":
        return "only decimal numbers are supported (no hexadecimal, octal or binary)"
    if first == "_":
        return "'_' is not allowed in numbers (write 1000, not 1_000)"
    if first in "jJ":
        return "complex numbers are not supported"
    if first in ".0123456789" or (first in "eE" and not second.isalpha()):
        run = re.match(r"[A-Za-z0-9_.]*", text[end:]).group()  # type: ignore[union-attr]
        return f"malformed number {literal + run!r}"
    if not _starts_name(first):
        return f"a number cannot be followed by {first!r}"
    name = text[end : _name_end(text, end)]
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

    # "number", "name", "neg", "call", or a binary operator "+" "-" "*" "/" "**" "^"
    code: str
    position: int  # where to point the caret if applying it fails
    argument: str = ""  # the variable (NFKC form) or function name
    number: float = 0.0
    spelling: str = ""  # as typed: "pi", "×", "−", "ln", "√", "e^", "²"
    form: str = ""  # how it is written: "" (infix or plain), "call", "prefix", "postfix", "whole"


class _Pending(NamedTuple):
    """An operator or open parenthesis waiting on the parser's stack."""

    code: str  # "(" or a _Step code
    binding: int
    position: int
    function: str = ""  # for "(" that opens a call, and for "call" (e^u, √u)
    spelling: str = ""
    arguments: int = 1  # for "(" that opens a call: how many have begun


class _Program(NamedTuple):
    steps: list[_Step]
    # NFKC form of each name -> (its first spelling, where that is), in order of appearance
    names: dict[str, tuple[str, int]]


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
    names: dict[str, tuple[str, int]] = {}
    stack: list[_Pending] = []
    depth = 0
    unary_binding = _NEG_LOW
    expect_operand = True
    tokens = _Lookahead(_tokens(text))
    token = _Token("end", "", 0)
    while True:
        previous, token = token, tokens.take()
        kind, position, meaning = token.kind, token.position, token.meaning
        if expect_operand:
            if kind == "number":
                steps.append(_Step("number", position, number=token.number, spelling=token.text))
                expect_operand = False
            elif kind == "name" and meaning in FUNCTIONS:
                if tokens.peek().kind != "(":
                    raise _error(
                        f"{token.text!r} is a function: write {token.text}(...)", text, position
                    )
                depth = _deeper(depth, text, tokens.take().position)
                stack.append(_Pending("(", 0, position, meaning, token.text))
                unary_binding = _NEG_LOW
            elif kind == "name" and meaning == "e" and tokens.peek().meaning in ("**", "^"):
                spelling = token.text + tokens.take().text
                stack.append(_Pending("call", _POW, position, "exp", spelling))
                unary_binding = _NEG_HIGH
            elif kind == "name" and meaning == "e" and tokens.peek().kind == "power":
                power = tokens.take()
                steps.append(_Step("number", power.position, number=power.number))
                steps.append(
                    _Step("call", position, "exp", spelling=token.text + power.text, form="whole")
                )
                expect_operand = False
            elif kind == "name" and meaning in CONSTANTS:
                steps.append(
                    _Step("number", position, meaning, CONSTANTS[meaning], spelling=token.text)
                )
                expect_operand = False
            elif kind == "name":
                names.setdefault(meaning, (token.text, position))
                steps.append(_Step("name", position, meaning, spelling=token.text))
                expect_operand = False
            elif kind == "root":
                stack.append(_Pending("call", _POW, position, "sqrt", token.text))
                unary_binding = _NEG_HIGH
            elif kind == "(":
                depth = _deeper(depth, text, position)
                stack.append(_Pending("(", 0, position))
                unary_binding = _NEG_LOW
            elif meaning == "-":
                stack.append(_Pending("neg", unary_binding, position, spelling=token.text))
            elif meaning != "+":  # a unary plus changes nothing
                raise _error(_operand_missing(token, empty=not text.strip()), text, position)
        elif kind == "op":
            binding = _BINDING_OF[meaning]
            # ** is right-associative: an equally binding ** on the stack waits for this one
            while (
                stack
                and stack[-1].code != "("
                and (
                    stack[-1].binding > binding
                    or (stack[-1].binding == binding and binding != _POW)
                )
            ):
                steps.append(_apply_step(stack.pop()))
            stack.append(_Pending(meaning, binding, position, spelling=token.text))
            unary_binding = _NEG_LOW if binding == _ADD else _NEG_HIGH
            expect_operand = True
        elif kind == "power":
            # raises the operand just completed, whatever waits on the stack
            steps.append(_Step("number", position, number=token.number))
            steps.append(_Step("**", position, spelling=token.text, form="postfix"))
        elif kind == ")":
            while stack and stack[-1].code != "(":
                steps.append(_apply_step(stack.pop()))
            if not stack:
                raise _error("unmatched ')'", text, position)
            opened = stack.pop()
            depth -= 1
            if opened.function:
                if opened.arguments < FUNCTIONS[opened.function]:
                    raise _error(_arity_problem(opened), text, position)
                steps.append(
                    _Step(
                        "call",
                        opened.position,
                        opened.function,
                        spelling=opened.spelling,
                        form="call",
                    )
                )
        elif kind == "end":
            while stack:
                pending = stack.pop()
                if pending.code == "(":
                    what = f"{pending.spelling}(" if pending.function else "("
                    raise _error(f"{what!r} is never closed", text, pending.position)
                steps.append(_apply_step(pending))
            return _Program(steps, names)
        elif kind == ",":
            while stack and stack[-1].code != "(":
                steps.append(_apply_step(stack.pop()))
            if not stack or not stack[-1].function:
                raise _error("unexpected ','", text, position)
            opened = stack[-1]
            if opened.arguments == FUNCTIONS[opened.function]:
                raise _error(_arity_problem(opened), text, position)
            stack[-1] = opened._replace(arguments=opened.arguments + 1)
            unary_binding = _NEG_LOW
            expect_operand = True
        elif kind == "(" and previous.kind == "name":
            name = previous.meaning
            listed = ", ".join(FUNCTIONS)
            problem = (
                f"{name!r} is a constant, not a function (write {name}*(...) to multiply)"
                if name in CONSTANTS
                else f"unknown function {previous.text!r} (the functions are {listed})"
            )
            raise _error(problem, text, previous.position)
        else:
            raise _error(
                f"missing operator before {token.text!r} "
                "(implicit multiplication is not supported: write '*')",
                text,
                position,
            )


def _arity_problem(opened: _Pending) -> str:
    arity = FUNCTIONS[opened.function]
    if arity == 1:
        return f"{opened.spelling} takes exactly one argument"
    return f"{opened.spelling} takes exactly {arity} arguments: {opened.spelling}(a, b)"


def _deeper(depth: int, text: str, position: int) -> int:
    if depth == MAX_DEPTH:
        raise _error(f"parentheses are nested deeper than {MAX_DEPTH} levels", text, position)
    return depth + 1


def _operand_missing(token: _Token, *, empty: bool) -> str:
    if token.kind == "end":
        return "the expression is empty" if empty else "the expression ends too early"
    if token.kind == "power":
        return f"a superscript power needs something before it to raise (x{token.text})"
    return f"expected a number, a name or '(' before {token.text!r}"


def _apply_step(pending: _Pending) -> _Step:
    form = "prefix" if pending.code == "call" else ""
    return _Step(
        pending.code, pending.position, pending.function, spelling=pending.spelling, form=form
    )


# ---- evaluation: postfix steps to a graph ---------------------------------------------


def _leaves(
    text: str, names: dict[str, tuple[str, int]], values: dict[str, float | Value]
) -> dict[str, Value]:
    given_as: dict[str, str] = {}
    for key, given in values.items():
        problem = _name_problem(key)
        if problem:
            raise ExpressionError(f"{key!r} cannot be a variable: {problem}")
        name = _identity(key)
        if name in given_as:
            raise ExpressionError(
                f"{given_as[name]!r} and {key!r} are one name (Python reads both as {name!r}) "
                "and cannot both be given a value"
            )
        given_as[name] = key
        if isinstance(given, bool) or not isinstance(given, (numbers.Real, Value)):
            raise OperandTypeError(
                f"parse: the value of {key!r} must be a real number or a Value, "
                f"got {type(given).__name__} {given!r}"
            )
    missing = [spelling for name, (spelling, _) in names.items() if name not in given_as]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        plural = "s" if len(missing) > 1 else ""
        first = names[_identity(missing[0])][1]
        raise _error(f"no value given for variable{plural} {listed}", text, first)
    leaves = {}
    for name, (spelling, _) in names.items():
        given = values[given_as[name]]
        leaves[name] = given if isinstance(given, Value) else Value(given, label=spelling)
    return leaves


def _name_problem(name: str) -> str:
    """Why ``name`` cannot name a variable, or "" if it can."""
    if not (name and _starts_name(name[0]) and _name_end(name, 0) == len(name)):
        return (
            "a name is a Python identifier: letters (of any script), digits and '_', "
            "not starting with a digit"
        )
    normal = _identity(name)
    if normal in CONSTANTS:
        return f"it is the constant {normal} = {CONSTANTS[normal]!r}"
    if normal in FUNCTIONS:
        return "it is a function"
    if keyword.iskeyword(normal):
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
            count = _operand_count(step)
            operands = tuple(stack[-count:])
            del stack[-count:]
            try:
                stack.append(_apply(step, operands))
            except MicrogradientError as error:
                reason = _power_problem(step, operands) or str(error)
                raise _error(reason, text, step.position) from error
    return stack[0]


def _power_problem(step: _Step, operands: tuple[Value | float, ...]) -> str:
    """Why the engine refused a power, in the words of mathematics ("" if not a power)."""
    if step.code not in ("**", "^") and step.argument != "pow":
        return ""
    base, exponent = (float(x.data if isinstance(x, Value) else x) for x in operands)
    variable = isinstance(operands[1], Value)
    shown = f"{_number_power(base)}^{_number_power(exponent)}"
    if base == 0.0 and exponent < 0.0:
        return f"{shown}: zero to a negative power is a division by zero"
    if base == 0.0 and exponent == 0.0 and variable:
        return (
            f"{shown} with a variable exponent: 0^0 is 1, but its slope in the exponent, "
            "0^y·ln(0), is undefined (x^0 with the number 0 as exponent is fine)"
        )
    if base < 0.0 and variable:
        return (
            f"{shown} with a variable exponent: its slope in the exponent, x^y·ln(x), needs "
            "the logarithm of a negative number (a negative base needs a number as exponent)"
        )
    if base < 0.0 and not exponent.is_integer():
        return (
            f"{shown} is not a real number: a negative number has no real power "
            "with a fractional exponent"
        )
    return ""


def _number_power(number: float) -> str:
    """A number as a base or exponent of ^: in parentheses if negative."""
    text = _number_text(number)
    return f"({text})" if _is_negative(number) else text


def _operand_count(step: _Step) -> int:
    if step.code == "call":
        return FUNCTIONS[step.argument]
    return 1 if step.code == "neg" else 2


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
        shown = (
            f"{symbol}({', '.join(repr(x) for x in (first, *rest))})"
            if step.code in ("call", "neg")
            else f"{first!r} {symbol} {rest[0]!r}"
        )
        raise FloatOverflowError(f"{shown} is too large for a float")
    return result


# the engine's name for each function that is not a Value method of its own name
_METHOD: Final = {"ln": "log"}
_TWO_ARGUMENTS: Final = {"max": max_, "min": min_, "pow": pow_}


def _operate(step: _Step, operands: tuple[Value | float, ...]) -> Value:
    if step.code == "neg":
        return -cast(Value, operands[0])
    if step.code == "call":  # step.argument is one of FUNCTIONS: the parser allows no other
        name = step.argument
        if name in _TWO_ARGUMENTS:
            return cast(Value, _TWO_ARGUMENTS[name](*operands))
        method: Callable[[], Value] = getattr(operands[0], _METHOD.get(name, name))
        return method()
    return _APPLY[step.code](operands[0], operands[1])


# ---- writing the parsed text back -----------------------------------------------------


def _write(steps: list[_Step]) -> str:
    """The text of ``steps`` as typed, with regular spacing and only the parentheses needed.

    Mirrors :func:`to_text`'s rules, on the syntax instead of the graph, so
    that the text parses back to the same steps.
    """
    # each entry: the text of an operand and how tightly it binds
    stack: list[tuple[str, int]] = []

    def operand(text_and_binding: tuple[str, int], needed: int) -> str:
        text, binding = text_and_binding
        return f"({text})" if binding < needed else text

    for step in steps:
        code, form, spelling = step.code, step.form, step.spelling
        count = 0 if code in ("number", "name") else _operand_count(step)
        operands = stack[len(stack) - count :]
        del stack[len(stack) - count :]
        if code == "name":
            stack.append((spelling, _ATOM))
        elif code == "number":
            # a bare e before a power would read back as exp(...)
            stack.append(
                (spelling or _number_text(step.number), _POW if step.argument == "e" else _ATOM)
            )
        elif code == "neg":
            stack.append((spelling + operand(operands[0], _POW), _NEG_LOW))
        elif form == "whole":  # e²
            stack.append((spelling, _POW))
        elif form == "prefix":  # e^u, √u
            stack.append((spelling + operand(operands[0], _POW), _POW))
        elif form == "call":
            arguments = ", ".join(text for text, _ in operands)
            stack.append((f"{spelling}({arguments})", _ATOM))
        elif form == "postfix":  # x²
            stack.append((operand(operands[0], _ATOM) + spelling, _POW))
        else:
            binding = _BINDING_OF[code]
            # ** groups to the right, the others to the left
            left, right = (binding + 1, binding) if binding == _POW else (binding, binding + 1)
            infix = f" {spelling} " if binding == _ADD else spelling
            stack.append(
                (operand(operands[0], left) + infix + operand(operands[1], right), binding)
            )
    return stack[0][0]


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
    if FUNCTIONS.get(op) == 1 and len(parents) == 1 and c is None:
        return [f"{op}(", (parents[0], 0), ")"]
    if op in ("sum", "dot"):
        return _sum_layout(node)
    if op in ("r-", "r/") and c is not None:
        left, right = _BINDING[op], _BINDING[op] + 1
        return [(c, left), _INFIX[op[1]], (parents[0], right)]
    if op == "r**" and c is not None:
        # a bare e would read back as exp(...), a different node; a negative base
        # (-0.0 included) is bracketed, as -2**y reads -(2**y)
        base: str | _Operand = repr(c) if c == math.e else (c, _POW + 1)
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
