"""The expression language: grammar, graph shape, errors, limits, ``to_text`` and fuzzing."""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import microgradient as mg
from microgradient import ExpressionError, Value, parse, to_text
from microgradient.expression import MAX_DEPTH, MAX_LENGTH, Expression, variables


def structure(root: Value) -> list[tuple[str, str, str, tuple[int, ...]]]:
    """The graph as (op, constant, label, parent positions) per node: equal iff same shape."""
    order = mg.topological_order(root)
    position = {id(node): i for i, node in enumerate(order)}
    return [
        (node.op, repr(node.constant), node.label, tuple(position[id(p)] for p in node.parents))
        for node in order
    ]


def error_of(text: str, **values: Any) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse(text, **values)
    return caught.value


# ---- the grammar ------------------------------------------------------------------------


def test_sigmoid_builds_the_textbook_chain() -> None:
    h5 = parse("1/(1+exp(-w*x))", w=0, x=1)
    h4 = h5.parents[0]
    h3 = h4.parents[0]
    h2 = h3.parents[0]
    h1 = h2.parents[0]
    assert [h5.op, h4.op, h3.op, h2.op, h1.op] == ["r/", "+", "exp", "neg", "*"]
    assert (h5.constant, h4.constant) == (1.0, 1.0)
    w, x = h1.parents
    assert (w.label, w.data, x.label, x.data) == ("w", 0.0, "x", 1.0)
    h5.backward()
    assert (h5.data, w.grad, x.grad) == (0.5, 0.25, 0.0)


def test_a_name_used_twice_is_one_leaf_with_two_edges() -> None:
    y = parse("x*x", x=3)
    x1, x2 = y.parents
    assert x1 is x2
    y.backward()
    assert x1.grad == 6.0


@pytest.mark.parametrize(
    ("text", "written", "graph"),
    [
        ("-w*x", "-(w*x)", "-(w*x)"),  # a leading minus covers the product
        ("-x**2", "-x**2", "-x**2"),
        ("-x^2", "-x^2", "-x**2"),
        ("a*-b", "a*(-b)", "a*(-b)"),  # after an operator it covers the next power only
        ("a*-b*c", "a*(-b)*c", "a*(-b)*c"),
        ("a/-b^2", "a/(-b^2)", "a/(-b**2)"),
        ("2**-x", "2**(-x)", "2**(-x)"),
        ("2^-x^2", "2^(-x^2)", "2**(-x**2)"),
        ("a - -b", "a - -b", "a - -b"),
        ("- -a", "-(-a)", "-(-a)"),
        ("+a", "a", "a"),
        ("a-b-c", "a - b - c", "a - b - c"),
        ("a-(b-c)", "a - (b - c)", "a - (b - c)"),
        ("a/b/c", "a/b/c", "a/b/c"),
        ("a/(b/c)", "a/(b/c)", "a/(b/c)"),
        ("a^b^c", "a^b^c", "a**b**c"),  # right-associative
        ("(a^b)^c", "(a^b)^c", "(a**b)**c"),
        ("(-a)^2", "(-a)^2", "(-a)**2"),
        ("a+b*c", "a + b*c", "a + b*c"),
        ("((a+b))*c", "(a + b)*c", "(a + b)*c"),
        ("e^a", "e^a", "exp(a)"),
        ("e**(a+b)", "e**(a + b)", "exp(a + b)"),
        ("e^-a^2*b", "e^(-a^2)*b", "exp(-a**2)*b"),
        ("(e)^a", "(e)^a", "2.718281828459045**a"),  # only a bare e^ is exp
        ("e*a + pi*b", "e*a + pi*b", "e*a + pi*b"),
        ("2*pi*a", "2*pi*a", "6.283185307179586*a"),  # constant parts are computed once
        ("sqrt(2*pi)*a", "sqrt(2*pi)*a", "2.5066282746310002*a"),
        ("x*2*3", "x*2*3", "3*(2*x)"),
        ("1 + x", "1 + x", "1 + x"),
        ("x+1", "x + 1", "1 + x"),  # the graph does not record the side of a constant
        ("x - 1", "x - 1", "x - 1"),
        ("1 - x", "1 - x", "1 - x"),
        ("-1 - x", "-1 - x", "-1 - x"),
        ("x*-2", "x*(-2)", "(-2)*x"),
        ("x^-1.5", "x^(-1.5)", "x**(-1.5)"),
        ("1e-3*x + .5", "1e-3*x + .5", "0.5 + 0.001*x"),
        ("sigmoid(tanh(relu(abs(sin(cos(sqrt(log(exp(x)))))))))",
         "sigmoid(tanh(relu(abs(sin(cos(sqrt(log(exp(x)))))))))",
         "sigmoid(tanh(relu(abs(sin(cos(sqrt(log(exp(x)))))))))"),
        # what people paste from slides and formula editors
        ("x²", "x²", "x**2"),
        ("x⁻¹ + x¹⁰", "x⁻¹ + x¹⁰", "x**(-1) + x**10"),
        ("-x²", "-x²", "-x**2"),  # the superscript raises the atom before it
        ("2^x²", "2^x²", "2**x**2"),
        ("x²^3", "(x²)^3", "(x**2)**3"),
        ("x²³", "x²³", "x**23"),
        ("x² ³", "(x²)³", "(x**2)**3"),
        ("(a+b)²", "(a + b)²", "(a + b)**2"),
        ("exp(x)²", "exp(x)²", "exp(x)**2"),
        ("e²*x", "e²*x", "7.38905609893065*x"),  # e² is exp(2), like e^2
        ("(e)²*x", "(e)²*x", "7.3890560989306495*x"),
        ("e^x²", "e^x²", "exp(x**2)"),
        ("√x", "√x", "sqrt(x)"),
        ("√x^2", "√x^2", "sqrt(x**2)"),  # like -x^2
        ("√x²", "√x²", "sqrt(x**2)"),
        ("√x*y", "√x*y", "sqrt(x)*y"),
        ("√(x+1)", "√(x + 1)", "sqrt(1 + x)"),
        ("(√x)^2", "(√x)^2", "sqrt(x)**2"),
        ("√√x", "√√x", "sqrt(sqrt(x))"),
        ("w·x", "w·x", "w*x"),
        ("w⋅x∙y", "w⋅x∙y", "w*x*y"),
        ("w × x ÷ 2 − 1", "w×x÷2 − 1", "w*x/2 - 1"),
        ("−x", "−x", "-x"),
        ("（x＋1）＊2", "(x ＋ 1)＊2", "2*(1 + x)"),  # full-width forms from a Chinese keyboard
        ("苹果*个数", "苹果*个数", "苹果*个数"),
        ("θ₁*x₂ + x1", "θ₁*x₂ + x1", "θ₁*x₂ + x1"),  # x₁ and x1 are different names
        ("ℒ", "ℒ", "ℒ"),
        ("ln(x)", "ln(x)", "log(x)"),
        ("tan(x) + atan(x)*softplus(x)", "tan(x) + atan(x)*softplus(x)",
         "tan(x) + atan(x)*softplus(x)"),
        ("max(x, y) + min(2, -x)", "max(x, y) + min(2, -x)", "max(x, y) + min(-x, 2)"),
        ("max(x,x)*max(1,2)", "max(x, x)*max(1, 2)", "2*max(x, x)"),
        ("-max(x-1, (y))^2", "-max(x - 1, y)^2", "-max(x - 1, y)**2"),
        ("pow(x, y) + pow(2,x)", "pow(x, y) + pow(2, x)", "x**y + 2**x"),
    ],
)  # fmt: skip
def test_precedence_and_text(text: str, written: str, graph: str) -> None:
    names = variables(text)
    values = {name: 0.5 + i for i, name in enumerate(names)}
    y = parse(text, **values)
    assert str(y) == written
    assert to_text(y) == graph
    for again_text in (written, graph):
        again = parse(again_text, **values)
        assert structure(again) == structure(y)
    assert str(parse(written, **values)) == written
    assert to_text(parse(graph, **values)) == graph


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-3", 0.001),
        ("2.5E2", 250.0),
        (".5", 0.5),
        ("1.", 1.0),
        ("1.e1", 10.0),
        ("007", 7.0),
        ("e", math.e),
        ("pi", math.pi),
        ("2^10", 1024.0),
        ("-2^2", -4.0),
        ("(-2)^2", 4.0),
        ("2^3^2", 512.0),
        ("e^0", 1.0),
        (" \t1 +\n 2 ", 3.0),
    ],
)
def test_numbers_and_constants(text: str, value: float) -> None:
    y = parse(text)
    assert y.data == value
    assert y.op == ""
    assert isinstance(y, Expression)


def test_values_agree_with_python_reading() -> None:
    a, b, c = 1.5, -0.75, 2.25
    cases: dict[str, float] = {
        "-a*b": -a * b,
        "a*-b*c": a * -b * c,
        "a - b/c*a": a - b / c * a,
        "a**2**0.5": a**2**0.5,
        "-a**-b": -(a**-b),
        "sqrt(a)*exp(b) - log(c)": math.sqrt(a) * math.exp(b) - math.log(c),
    }
    for text, expected in cases.items():
        assert parse(text, a=a, b=b, c=c).data == pytest.approx(expected, rel=1e-15), text


def test_values_for_other_names_are_ignored() -> None:
    assert parse("x + 1", x=1, unused=2).data == 2.0


def test_values_may_be_value_leaves() -> None:
    x = Value(2.0, label="x")
    y = parse("x^3 + x", x=x)
    y.backward()
    assert x.grad == 13.0
    assert parse("x", x=x) is x  # the caller's Value is returned untouched
    assert type(x) is Value


def test_parse_result_is_a_value_whose_str_is_its_text() -> None:
    y = parse("x*y + 1", x=2, y=3)
    assert isinstance(y, Value)
    assert repr(y) == "Value(data=7.0, grad=0.0)"
    assert str(y) == "x*y + 1"  # as typed, though the graph holds the 1 as a constant
    assert to_text(y) == "1 + x*y"
    assert type(y * 2) is Value  # only the root is an Expression


def test_variables_in_order_of_appearance() -> None:
    assert variables("w*x + b*w + e + pi") == ["w", "x", "b"]
    assert variables("2*3") == []


def test_no_grad_gives_a_leaf() -> None:
    with mg.no_grad():
        y = parse("x*x + 1", x=2)
    assert (y.data, y.op, y.parents) == (5.0, "", ())


def test_user_text_is_never_evaluated_by_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval, exec or compile was called")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    assert parse("1/(1+exp(-w*x))", w=0, x=1).data == 0.5
    for hostile in ("__import__('os').system('true')", "().__class__", "x.__dict__"):
        with pytest.raises(ExpressionError):
            parse(hostile, x=1)


# ---- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "the expression is empty", 1),
        ("1+", "the expression ends too early", 3),
        ("()", "expected a number, a name or '(' before ')'", 2),
        ("x*/y", "expected a number, a name or '(' before '/'", 3),
        ("(x", "'(' is never closed", 1),
        ("exp(x", "'exp(' is never closed", 1),
        ("x)", "unmatched ')'", 2),
        ("1+foo(x)", "unknown function 'foo'", 3),
        ("e(x)", "'e' is a constant, not a function", 1),
        ("exp", "'exp' is a function: write exp(...)", 1),
        ("x.real", "there is no attribute access", 2),
        ("x[0]", "subscripts and lists are not supported", 2),
        ("'x'", "strings are not supported", 1),
        ("lambda: 1", "'lambda' is a Python keyword", 1),
        ("x if x else x", "'if' is a Python keyword", 3),
        ("exp(x, x)", "exp takes exactly one argument", 6),
        ("exp(x=1)", "'=' is not allowed", 6),
        ("2x", "implicit multiplication is not supported: write 2*x", 2),
        ("x y", "missing operator before 'y'", 3),
        ("(x)(x)", "missing operator before '('", 4),
        ("1_000", "'_' is not allowed in numbers", 2),
        ("0x1f", "only decimal numbers", 2),
        ("1j", "complex numbers are not supported", 2),
        ("1e", "malformed number '1e'", 2),
        ("1.2.3", "malformed number '1.2.3'", 4),
        ("1e400", "too large for a float", 1),
        ("x // 2", "unsupported operator '//'", 3),
        ("x % 2", "unsupported operator '%'", 3),
        ("x,x", "unexpected ','", 2),
        ("x \u2013 2", "write '-' to subtract", 3),
        ("x ２", "unexpected character '２' (U+FF12): write '2'", 3),
        ("²", "a superscript power needs something before it to raise (x²)", 1),
        ("x*⁻¹", "a superscript power needs something before it", 3),
        ("x⁻", "a superscript minus must be followed by superscript digits", 2),
        ("√", "the expression ends too early", 2),
        ("2θ", "implicit multiplication is not supported: write 2*θ", 2),
        ("max(x)", "max takes exactly 2 arguments: max(a, b)", 6),
        ("min(x, x, x)", "min takes exactly 2 arguments", 9),
        ("(x, x)", "unexpected ','", 3),
        ("ｅｘｐ", "'ｅｘｐ' is a function: write ｅｘｐ(...)", 1),
        ("x\x00", "unexpected character '\\x00'", 2),
    ],
)
def test_syntax_errors_point_at_the_problem(text: str, message: str, column: int) -> None:
    error = error_of(text, **dict.fromkeys(["x"] if "x" in text else [], 1.0))
    summary, shown, caret = str(error).split("\n")
    assert message in summary
    assert summary.endswith(f"at column {column}")
    assert caret.index("^") - 2 == column - 1  # two spaces of indentation
    assert len(shown) + 1 >= len(caret)  # the caret may sit just past the end


def test_the_caret_lines_up_in_a_window_of_long_input() -> None:
    text = "x + " * 50 + "foo(x)" + " + x" * 50
    summary, shown, caret = str(error_of(text, x=1)).split("\n")
    assert "unknown function 'foo'" in summary
    assert shown.startswith("  ...") and shown.endswith("...")
    assert shown[caret.index("^") :].startswith("foo(")


@pytest.mark.parametrize(
    ("text", "values", "message", "cause"),
    [
        ("log(x)", {"x": -1}, "log: x = -1.0 is not > 0", mg.DomainError),
        ("sqrt(x - 2)", {"x": 1}, "sqrt: -1.0 is negative", mg.DomainError),
        ("1/(x-1)", {"x": 1}, "the divisor is zero", mg.DivisionByZeroError),
        ("x^y", {"x": -1, "y": 2}, "(-1)^2 with a variable exponent: its slope", mg.DomainError),
        (
            "pow(x, y)",
            {"x": -1, "y": 2},
            "a negative base needs a number as exponent",
            mg.DomainError,
        ),
        ("(-1.0)^0.5", {}, "(-1)^0.5 is not a real number", mg.DomainError),
        ("x**0.5", {"x": -4}, "(-4)^0.5 is not a real number", mg.DomainError),
        (
            "x^y",
            {"x": 0, "y": 0},
            "0^0 with a variable exponent: 0^0 is 1, but",
            mg.DivisionByZeroError,
        ),
        ("x⁻¹", {"x": 0}, "0^(-1): zero to a negative power is a division", mg.DivisionByZeroError),
        ("log(0)", {}, "log: 0.0 is not > 0", mg.DomainError),
        ("1e300*1e300", {}, "1e+300 * 1e+300 is too large for a float", mg.FloatOverflowError),
        ("2^2^2^2^2", {}, "too large for a float", mg.FloatOverflowError),
    ],
)
def test_domain_errors_become_expression_errors(
    text: str, values: dict[str, float], message: str, cause: type[Exception]
) -> None:
    error = error_of(text, **values)
    assert message in str(error).splitlines()[0]
    if cause is not mg.FloatOverflowError:
        assert isinstance(error.__cause__, cause)


def test_the_caret_lines_up_under_wide_characters() -> None:
    # a terminal gives each Chinese character two columns, and a combining accent none
    summary, shown, caret = str(error_of("苹果*个数 + foo(苹果)", 苹果=1, 个数=2)).split("\n")
    assert summary.endswith("at column 9")
    assert shown == "  苹果*个数 + foo(苹果)"
    assert caret == " " * 14 + "^"
    _, shown, caret = str(error_of("e\u0301 + foo", **{"e\u0301": 1})).split("\n")
    assert caret == " " * 6 + "^"
    _, shown, caret = str(error_of("x\t+\x00")).split("\n")
    assert (shown, caret) == ("  x?+?", "     ^")


def test_unicode_names_follow_python() -> None:
    assert variables("θ₁*x₂ + 苹果 - ℒ + x1 + _ok") == ["θ₁", "x₂", "苹果", "ℒ", "x1", "_ok"]
    # a formula editor's italic x and a full-width x are Python's x: one leaf
    y = parse("𝑥*ｘ + x", x=3)
    assert variables("𝑥*ｘ + x") == ["𝑥"]
    leaf = y.parents[0].parents[0]
    assert leaf.label == "𝑥" and y.parents[0].parents == (leaf, leaf) and y.parents[1] is leaf
    y.backward()
    assert leaf.grad == 7.0
    # sub- and superscripts are kept apart: x₁, x1, xⁿ and xn are four names
    assert variables("x₁ + x1 + xⁿ + xn") == ["x₁", "x1", "xⁿ", "xn"]
    assert parse("x₁ - x1", **{"x₁": 5, "x1": 2}).data == 3.0
    # ·, a Python identifier character, multiplies here
    assert variables("w·x") == ["w", "x"]


def test_missing_values_are_named_with_a_caret() -> None:
    summary, _, caret = str(error_of("w*x + y", w=1)).split("\n")
    assert summary == "no value given for variables 'x', 'y' at column 3"
    assert caret == "    ^"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"x": 1, "e": 2}, "'e' cannot be a variable: it is the constant e"),
        ({"x": 1, "pi": 2}, "'pi' cannot be a variable"),
        ({"x": 1, "exp": 2}, "'exp' cannot be a variable: it is a function"),
        ({"x": 1, "1x": 2}, "'1x' cannot be a variable: a name is a Python identifier"),
        ({"x": 1, "w·x": 2}, "'w·x' cannot be a variable: a name is a Python identifier"),
        ({"x": 1, "ｘ": 2}, "'x' and 'ｘ' are one name"),
        ({"x": 1, "ｐｉ": 2}, "'ｐｉ' cannot be a variable: it is the constant pi"),
        ({"x": 1, "for": 2}, "'for' cannot be a variable: it is a Python keyword"),
    ],
)
def test_bad_keyword_values(values: dict[str, float], message: str) -> None:
    assert message in str(error_of("x", **values))


def test_a_value_must_be_a_number() -> None:
    with pytest.raises(mg.OperandTypeError, match="the value of 'x' must be a real number"):
        parse("x", x="3")  # type: ignore[arg-type]
    with pytest.raises(mg.OperandTypeError, match="got bool"):
        parse("x", x=True)
    with pytest.raises(mg.OperandTypeError, match="expected the expression as a str"):
        parse(b"x")  # type: ignore[arg-type]


# ---- limits: no input exhausts the stack --------------------------------------------------


def test_overlong_input_is_refused_at_the_limit() -> None:
    error = error_of("x+" * MAX_LENGTH + "x", x=1)
    assert f"the limit is {MAX_LENGTH}" in str(error)
    assert f"at column {MAX_LENGTH + 1}" in str(error)


def test_nesting_is_limited() -> None:
    deepest = "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    assert parse(deepest, x=2).data == 2.0
    too_deep = "exp(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1)
    error = error_of(too_deep, x=0)
    assert f"nested deeper than {MAX_DEPTH} levels at column {4 * MAX_DEPTH + 4}" in str(error)
    assert "nested deeper" in str(error_of("(" * 5000))


def test_long_chains_need_no_recursion() -> None:
    assert parse("-" * 9001 + "x", x=2).data == -2.0
    tower = parse("x^" * 3000 + "x", x=1)
    assert tower.data == 1.0
    assert str(parse(str(tower), x=1)) == str(tower)
    chain = parse("+".join(["x"] * 4000), x=1)
    chain.backward()
    assert chain.data == chain.parents[1].grad == 4000.0


# ---- to_text on graphs built in Python -------------------------------------------------


def test_to_text_of_engine_graphs() -> None:
    x, y = Value(2.0, label="x"), Value(3.0, label="y")
    assert to_text((-x) * y) == "(-x)*y"
    assert to_text(-(x * y)) == "-(x*y)"
    assert to_text(2**x + x**y + x**0.5) == "2**x + x**y + x**0.5"
    assert to_text(math.e**x) == "2.718281828459045**x"
    assert to_text(1 / x - 3 / (x - y)) == "1/x - 3/(x - y)"
    assert to_text(mg.sum([x, x - y, 3])) == "x + (x - y) + 3"
    assert to_text(mg.dot([x, y], [y, x])) == "x*y + y*x"
    assert to_text(mg.dot([x, y], [2, -3])) == "2*x + (-3)*y"
    assert to_text(mg.dot([x, 2], [y, x])) == "x*y + 2*x"
    assert to_text(Value(-1.5) * x) == "(-1.5)*x"
    assert to_text(-0.0 * x) == "(-0)*x"


def test_to_text_refuses_exponentially_long_text() -> None:
    x = Value(2.0, label="x")
    y = x
    for _ in range(40):
        y = y * y  # 41 nodes, 2**40 leaves written out
    with pytest.raises(mg.GraphTooLargeError, match="more than 100000 nodes"):
        to_text(y)
    assert to_text(x * x * x, max_nodes=5) == "x*x*x"


# ---- fuzzing ------------------------------------------------------------------------------

TOKENS = [
    "x", "y", "z", "e", "pi", "1", "0", "2.5", ".5", "1e-3", "1e5", "exp", "log", "sqrt",
    "tanh", "sigmoid", "relu", "sin", "cos", "abs", "foo", "lambda", "(", "(", ")", ")",
    "+", "-", "-", "*", "/", "**", "^", " ", ",", ".", "=", "'", "[", "_", "x.y", "2x",
    # what people paste, and names in other scripts
    "×", "·", "÷", "−", "√", "²", "³", "⁻¹", "⁻", "θ₁", "x₂", "苹果", "ｘ", "𝑥", "（", "）",
    "ln", "pow", "ℒ", "\u0301", "tan", "atan", "softplus", "max", "min", "max(x,", ", y)",
]  # fmt: skip
# characters that mean something to the tokenizer, to mix into arbitrary Unicode text
SYMBOLS = "xye0123.+-*/^(),√²³⁻×·÷−₁苹ｘ\u0301\udcff\t "


def values_for(text: str, data: st.DataObject) -> dict[str, float]:
    return {name: data.draw(st.floats(-4, 4), label=name) for name in variables(text)}


def only_expression_errors(text: str, data: st.DataObject) -> None:
    try:
        root = parse(text, **values_for(text, data))
    except ExpressionError:
        return
    assert isinstance(root, Expression)
    # whatever parsed must print, as typed and as the graph, text that parses back to it
    names = {leaf.label: leaf.data for leaf in mg.topological_order(root) if leaf.label}
    for written in (str(root), to_text(root)):
        assert structure(parse(written, **names)) == structure(root)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.data())
def test_any_text_raises_only_expression_error(text: str, data: st.DataObject) -> None:
    only_expression_errors(text, data)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(SYMBOLS) | st.characters(), max_size=30), st.data())
def test_any_unicode_raises_only_expression_error(text: str, data: st.DataObject) -> None:
    only_expression_errors(text, data)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join), st.data())
def test_any_token_soup_raises_only_expression_error(text: str, data: st.DataObject) -> None:
    only_expression_errors(text, data)


# Generated valid expressions. A tree is ("num", text), ("var", name), (unary, child) with
# unary in "neg" "pos" "exp_e" or a function name, or (binary operator, left, right). It is
# written with Python's precedence rules, which give the same values as the language's,
# with optional extra parentheses; `reference` computes its value with plain floats.

Tree = tuple[Any, ...]
NUMBERS = ["0", "1", "2", "3", "0.5", ".5", "1.", "2.5e-1", "1E1", "007", "e", "pi"]
SMOOTH = ["exp", "tanh", "sigmoid", "sin", "cos", "atan", "softplus"]
FUNCTIONS = [*SMOOTH, "log", "sqrt", "relu", "abs", "tan"]
_BINDING = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "pos": 3, "**": 4, "^": 4, "exp_e": 4}


def trees(functions: list[str], operators: list[str]) -> st.SearchStrategy[Tree]:
    leaf = st.tuples(st.just("num"), st.sampled_from(NUMBERS)) | st.tuples(
        st.just("var"), st.sampled_from(["x", "y", "z"])
    )

    def extend(child: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
        return st.tuples(st.sampled_from(["neg", "pos", "exp_e", *functions]), child) | st.tuples(
            st.sampled_from(operators), child, child
        )

    return st.recursive(leaf, extend, max_leaves=10)


def write(tree: Tree, draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """Text for ``tree``: minimal parentheses by Python's rules, plus random extra ones."""
    kind = tree[0]
    if kind in ("num", "var"):
        return str(tree[1])

    def operand(child: Tree, needed: int) -> str:
        text = write(child, draw)
        extra = draw(st.integers(0, 3)) == 0
        return f"({text})" if _BINDING.get(child[0], 5) < needed or extra else text

    space: str = draw(st.sampled_from(["", " "]))
    if kind == "neg":
        return draw(st.sampled_from("-−")) + space + operand(tree[1], 3)
    if kind == "pos":
        return "+" + operand(tree[1], 3)
    if kind == "exp_e":
        power: str = draw(st.sampled_from(["^", "**"]))
        return "e" + power + operand(tree[1], 3)
    if len(tree) == 2:
        name = draw(st.sampled_from(SPELLINGS.get(kind, [kind])))
        return f"{name}({write(tree[1], draw)})"
    if kind in ("max", "min", "pow"):
        return f"{kind}({write(tree[1], draw)},{space}{write(tree[2], draw)})"
    binding = _BINDING[kind]
    if binding == 4:
        exponent = tree[2][1] if tree[2][0] == "num" else ""
        if exponent.isdigit() and draw(st.booleans()):
            # a superscript raises the atom before it
            return operand(tree[1], 5) + exponent.translate(SUPERSCRIPTS)
        left, right = operand(tree[1], 5), operand(tree[2], 3)
    else:
        left, right = operand(tree[1], binding), operand(tree[2], binding + 1)
    symbol = draw(st.sampled_from(SPELLINGS.get(kind, [kind])))
    return f"{left}{space}{symbol}{space}{right}"


SPELLINGS = {"*": ["*", "×", "·"], "/": ["/", "÷"], "-": ["-", "−"], "log": ["log", "ln"],
             "sqrt": ["sqrt", "√"]}  # fmt: skip
SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def reference(tree: Tree, values: dict[str, float]) -> float:
    kind = tree[0]
    if kind == "num":
        return {"e": math.e, "pi": math.pi}.get(tree[1]) or float(tree[1])
    if kind == "var":
        return values[tree[1]]
    args = [reference(child, values) for child in tree[1:]]
    unary: dict[str, Callable[[float], float]] = {
        "neg": lambda a: -a,
        "pos": lambda a: a,
        "exp_e": math.exp,
        "exp": math.exp,
        "log": math.log,
        "sqrt": math.sqrt,
        "tanh": math.tanh,
        "sigmoid": lambda a: 1.0 / (1.0 + math.exp(-a)),
        "relu": lambda a: max(a, 0.0),
        "abs": abs,
        "sin": math.sin,
        "cos": math.cos,
        "tan": math.tan,
        "atan": math.atan,
        "softplus": lambda a: max(a, 0.0) + math.log1p(math.exp(-abs(a))),
    }
    if len(args) == 1:
        return unary[kind](args[0])
    a, b = args
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "/":
        return a / b
    if kind in ("max", "min"):
        return max(a, b) if kind == "max" else min(a, b)
    result: float | complex = a**b
    if isinstance(result, complex):
        raise ValueError("complex power")
    return result


@st.composite
def expressions(draw: Any, smooth: bool = False) -> tuple[str, Tree]:
    if smooth:
        tree = draw(trees(SMOOTH, ["+", "-", "*"]))
    else:
        tree = draw(trees(FUNCTIONS, ["+", "-", "*", "/", "**", "^", "max", "min", "pow"]))
    return write(tree, draw), tree


point = st.fixed_dictionaries({name: st.floats(-3, 3) for name in "xyz"})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(expressions(), point)
def test_generated_expressions_have_the_right_value_and_round_trip(
    expression: tuple[str, Tree], values: dict[str, float]
) -> None:
    text, tree = expression
    used = {name: values[name] for name in variables(text)}
    try:
        expected = reference(tree, values)
    except (ArithmeticError, ValueError):
        expected = math.nan
    try:
        root = parse(text, **used)
    except ExpressionError:
        assume(False)
        return
    assume(math.isfinite(expected) and math.isfinite(root.data))
    assert root.data == pytest.approx(expected, rel=1e-9, abs=1e-12)

    again = parse(str(root), **used)
    assert structure(again) == structure(root)
    assert str(again) == str(root)
    leaves = {leaf.label: leaf for leaf in mg.topological_order(root) if leaf.label}
    leaves_again = {leaf.label: leaf for leaf in mg.topological_order(again) if leaf.label}
    try:
        root.backward()
    except mg.FloatOverflowError:  # a derivative beyond float range: the engine's business
        assume(False)
    again.backward()
    assert repr(again.data) == repr(root.data)
    for name, leaf in leaves.items():
        assert repr(leaves_again[name].grad) == repr(leaf.grad)


@settings(max_examples=100, deadline=None)
@given(expressions(smooth=True), point)
def test_generated_expressions_agree_with_finite_differences(
    expression: tuple[str, Tree], values: dict[str, float]
) -> None:
    text, _ = expression
    names = variables(text)
    assume(names)
    leaves = {name: Value(values[name], label=name) for name in names}
    try:
        root = parse(text, **leaves)
        root.backward()
    except (ExpressionError, mg.FloatOverflowError):
        assume(False)
        return

    def central(name: str, h: float) -> tuple[float, float]:
        """The central difference along ``name`` with step ``h``, and its rounding error."""
        at = [{**values, name: values[name] + k} for k in (h, -h)]
        above, below = (parse(text, **{n: p[n] for n in names}).data for p in at)
        return (above - below) / (2 * h), 1e-9 * (abs(above) + abs(below)) / h

    for name in names:
        h = 1e-6 * max(1.0, abs(values[name]))
        try:
            (numeric, rounding), (coarse, _) = central(name, h), central(name, 2 * h)
        except ExpressionError:
            assume(False)
            return
        tolerance = 1e-5 * (1 + abs(numeric)) + rounding
        # steps h and 2h disagree where the function curves too fast for differences to follow
        assume(abs(coarse - numeric) <= tolerance)
        assert abs(leaves[name].grad - numeric) <= tolerance, name


def test_the_typed_text_lives_as_long_as_the_expression() -> None:
    import copy
    import gc

    from microgradient import expression

    y = parse("x+1", x=2)
    assert (str(y), f"{y}", f"{y:.1f}") == ("x + 1", "x + 1", "3.0")
    assert str(copy.copy(y)) == "1 + x"  # never parsed: written from its graph
    before = len(expression._WRITTEN)
    del y
    gc.collect()
    assert len(expression._WRITTEN) == before - 1


@pytest.mark.parametrize("base", [-0.0, 0.0, 0.5, 2.0, math.e, math.pi])
def test_a_number_raised_to_a_value_round_trips(base: float) -> None:
    """A negative or signed-zero base is bracketed: -0**y would read back as -(0**y)."""
    y = Value(2.0, label="y")
    node = mg.exp(base**y)
    text = mg.to_text(node)
    again = mg.parse(text, y=2.0)
    assert mg.to_text(again) == text
    assert math.copysign(1.0, again.parents[0].constant) == math.copysign(1.0, base)
