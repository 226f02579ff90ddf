"""Every documented error: its class, its built-in base, and what its message says."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest

import microgradient as mg
from microgradient import Value


def raised(action: Callable[[], object], kind: type[Exception]) -> str:
    """Run ``action``, assert it raises ``kind``, and return the message."""
    with pytest.raises(kind) as info:
        action()
    assert isinstance(info.value, mg.MicrogradientError)
    return str(info.value)


# ---- each error: (action, microgradient class, built-in base, fragments of the message) ----

CASES: list[tuple[str, Callable[[], object], type[Exception], type[Exception], list[str]]] = [
    (
        "log of 0",
        lambda: Value(0.0, label="x").log(),
        mg.DomainError,
        ValueError,
        ["log", "x = 0.0", "not > 0"],
    ),
    (
        "log of a negative number",
        lambda: Value(-1.0, label="x").log(),
        mg.DomainError,
        ValueError,
        ["log: x = -1.0 is not > 0; log needs a positive argument"],
    ),
    ("log of a float", lambda: mg.log(-2.5), mg.DomainError, ValueError, ["log", "-2.5"]),
    (
        "sqrt of a negative number",
        lambda: Value(-4.0, label="s").sqrt(),
        mg.DomainError,
        ValueError,
        ["sqrt", "s = -4.0", "negative"],
    ),
    (
        "sqrt of a negative float",
        lambda: mg.sqrt(-4.0),
        mg.DomainError,
        ValueError,
        ["sqrt", "-4.0"],
    ),
    (
        "Value / zero Value",
        lambda: Value(2.0, label="a") / Value(0.0, label="b"),
        mg.DivisionByZeroError,
        ZeroDivisionError,
        ["division: a = 2.0 / b = 0.0: the divisor is zero"],
    ),
    (
        "Value / 0",
        lambda: Value(2.0, label="a") / 0,
        mg.DivisionByZeroError,
        ZeroDivisionError,
        ["division", "a = 2.0", "/ 0", "divisor is zero"],
    ),
    (
        "Value / 0.0",
        lambda: Value(2.5) / 0.0,
        mg.DivisionByZeroError,
        ZeroDivisionError,
        ["division", "2.5", "divisor is zero"],
    ),
    (
        "number / zero Value",
        lambda: 3 / Value(0.0, label="b"),
        mg.DivisionByZeroError,
        ZeroDivisionError,
        ["division: 3.0 / b = 0.0: the divisor is zero"],
    ),
    (
        "zero Value ** negative number",
        lambda: Value(0.0, label="x") ** -1,
        mg.DivisionByZeroError,
        ZeroDivisionError,
        ["power: x = 0.0 ** -1.0: zero to a negative power"],
    ),
    (
        "zero Value ** negative Value",
        lambda: Value(0.0, label="x") ** Value(-2.0, label="y"),
        mg.DivisionByZeroError,
        ZeroDivisionError,
        ["power", "x = 0.0", "y = -2.0", "zero to a non-positive power"],
    ),
    (
        "0 ** negative Value",
        lambda: 0 ** Value(-2.0, label="y"),
        mg.DivisionByZeroError,
        ZeroDivisionError,
        ["power", "y = -2.0", "zero to a non-positive power"],
    ),
    (
        "negative Value ** Value",
        lambda: Value(-2.0, label="x") ** Value(2.0, label="y"),
        mg.DomainError,
        ValueError,
        ["power", "x = -2.0", "y = 2.0", "negative base needs a constant exponent"],
    ),
    (
        "negative number ** Value",
        lambda: (-2.0) ** Value(2.0, label="y"),
        mg.DomainError,
        ValueError,
        ["power", "-2.0", "y = 2.0", "negative base needs a constant exponent"],
    ),
    (
        "negative Value ** non-integer",
        lambda: Value(-2.0, label="x") ** 0.5,
        mg.DomainError,
        ValueError,
        ["power: x = -2.0 ** 0.5: a negative base needs an integer exponent"],
    ),
    (
        "Value of a string",
        lambda: Value("3"),  # type: ignore[arg-type]
        mg.OperandTypeError,
        TypeError,
        ["Value: expected a real number (int or float), got str '3'"],
    ),
    (
        "Value of None",
        lambda: Value(None),  # type: ignore[arg-type]
        mg.OperandTypeError,
        TypeError,
        ["Value", "got NoneType None"],
    ),
    (
        "Value of a bool",
        lambda: Value(True),
        mg.OperandTypeError,
        TypeError,
        ["Value", "got bool True"],
    ),
    (
        "Value of a Value",
        lambda: Value(Value(1.0)),  # type: ignore[arg-type]
        mg.OperandTypeError,
        TypeError,
        ["Value", "got Value"],
    ),
    (
        "Value + string",
        lambda: Value(1.0) + "2",  # type: ignore[operator]
        mg.OperandTypeError,
        TypeError,
        ["+", "got str '2'"],
    ),
    (
        "Value * None",
        lambda: Value(1.0) * None,  # type: ignore[operator]
        mg.OperandTypeError,
        TypeError,
        ["*", "got NoneType"],
    ),
    (
        "Value ** string",
        lambda: Value(1.0) ** "2",  # type: ignore[operator]
        mg.OperandTypeError,
        TypeError,
        ["**", "got str"],
    ),
    ("exp of a string", lambda: mg.exp("1"), mg.OperandTypeError, TypeError, ["exp", "got str"]),
    (
        "sum with a string",
        lambda: mg.sum([Value(1.0), "2"]),  # type: ignore[list-item]
        mg.OperandTypeError,
        TypeError,
        ["sum", "got str"],
    ),
    (
        "dot with a string",
        lambda: mg.dot([Value(1.0)], ["2"]),  # type: ignore[list-item]
        mg.OperandTypeError,
        TypeError,
        ["dot", "got str"],
    ),
    (
        "backward with a string gradient",
        lambda: Value(1.0).backward("1"),  # type: ignore[arg-type]
        mg.OperandTypeError,
        TypeError,
        ["backward", "got str"],
    ),
    (
        "dot length mismatch",
        lambda: mg.dot([Value(1.0), Value(2.0)], [1.0, 2.0, 3.0]),
        mg.DomainError,
        ValueError,
        ["dot: 2 weights but 3 inputs; the lengths must match"],
    ),
]


@pytest.mark.parametrize(
    ("action", "kind", "builtin", "fragments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_error_class_base_and_message(
    action: Callable[[], object],
    kind: type[Exception],
    builtin: type[Exception],
    fragments: list[str],
) -> None:
    assert issubclass(kind, builtin)
    message = raised(action, kind)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    # catchable as the built-in exception and as the common base
    with pytest.raises(builtin):
        action()
    with pytest.raises(mg.MicrogradientError):
        action()


def test_unlabelled_operands_are_described_by_value_alone() -> None:
    message = raised(lambda: Value(-3.0).log(), mg.DomainError)
    assert message == "log: -3.0 is not > 0; log needs a positive argument"
    message = raised(lambda: Value(1.0) / Value(0.0), mg.DivisionByZeroError)
    assert message == "division: 1.0 / 0.0: the divisor is zero"


def test_errors_leave_no_partial_graph() -> None:
    x = Value(-1.0)
    with pytest.raises(mg.DomainError):
        x.log()
    y = x * 2
    y.backward()
    assert x.grad == 2.0


def test_exp_at_the_edge_of_overflow_is_infinite_not_an_error() -> None:
    assert Value(709.0).exp().data > 1e307
    assert Value(709.8).exp().data == math.inf


@pytest.mark.parametrize(
    "name",
    [
        "DomainError",
        "DivisionByZeroError",
        "FloatOverflowError",
        "OperandTypeError",
        "GradcheckError",
    ],
)
def test_every_error_derives_from_microgradient_error(name: str) -> None:
    kind = getattr(mg, name)
    assert issubclass(kind, mg.MicrogradientError)
    assert issubclass(kind, Exception)


def test_builtin_bases() -> None:
    assert issubclass(mg.DomainError, ValueError)
    assert issubclass(mg.DivisionByZeroError, ZeroDivisionError)
    assert issubclass(mg.DivisionByZeroError, ArithmeticError)
    assert issubclass(mg.FloatOverflowError, OverflowError)
    assert issubclass(mg.OperandTypeError, TypeError)
    assert issubclass(mg.GradcheckError, AssertionError)


# ---- gradcheck failures ----------------------------------------------------------------------


def wrong_product(x: Value, y: Value) -> Value:
    """x * y whose recorded rule claims d/dy = x + 1 (correct would be x)."""
    out = x * y
    out._local_rule = lambda get, out, a=x, b=y: (get(b), get(a) + 1.0)
    return out


def test_gradcheck_failure_tables_both_gradients() -> None:
    message = raised(lambda: mg.gradcheck(wrong_product, 3.0, -2.0), mg.GradcheckError)
    lines = message.splitlines()
    assert lines[0] == (
        "gradcheck: backprop and finite differences disagree for 1 of 2 input(s) "
        "(atol=1e-05, rtol=0.0001)"
    )
    assert lines[1].split() == ["input", "value", "analytic", "numeric", "difference"]
    assert len(lines) == 4
    row0, row1 = lines[2].split(), lines[3].split()
    # x0 agrees: value 3, analytic -2, numeric -2 (to rounding), no mark
    assert row0[:3] == ["x0", "3", "-2"]
    assert float(row0[3]) == pytest.approx(-2.0, abs=1e-6)
    assert "mismatch" not in lines[2]
    # x1 disagrees: value -2, analytic x + 1 = 4, numeric x = 3, difference 1
    assert row1[:3] == ["x1", "-2", "4"]
    assert float(row1[3]) == pytest.approx(3.0, abs=1e-6)
    assert float(row1[4]) == pytest.approx(1.0, abs=1e-6)
    assert lines[3].endswith("<- mismatch")


def test_gradcheck_failure_is_an_assertion_error() -> None:
    with pytest.raises(AssertionError, match=re.escape("disagree for 1 of 2 input(s)")):
        mg.gradcheck(wrong_product, 3.0, -2.0)


def test_gradcheck_counts_every_failing_input() -> None:
    def both_wrong(x: Value, y: Value) -> Value:
        out = x + y
        out._local_rule = lambda get, out: (2.0, -1.0)
        return out

    message = raised(lambda: mg.gradcheck(both_wrong, 1.0, 1.0), mg.GradcheckError)
    assert "disagree for 2 of 2 input(s)" in message
    assert message.count("<- mismatch") == 2


def test_gradcheck_tolerances_are_used() -> None:
    assert mg.gradcheck(wrong_product, 3.0, -2.0, atol=1.5)
    message = raised(
        lambda: mg.gradcheck(wrong_product, 3.0, -2.0, atol=0.5, rtol=0.1), mg.GradcheckError
    )
    assert "(atol=0.5, rtol=0.1)" in message


def test_largest_discrepancy_and_numerical_grad() -> None:
    assert mg.largest_discrepancy(wrong_product, 3.0, -2.0) == pytest.approx(1.0, abs=1e-6)
    assert mg.largest_discrepancy(lambda x, y: x * y, 3.0, -2.0) < 1e-6
    assert mg.numerical_grad(lambda x, y: x * y, 3.0, -2.0) == pytest.approx([-2.0, 3.0])
    assert mg.gradcheck(lambda x, y: x * y.exp(), 1.0, 0.5) is True


def test_gradcheck_propagates_domain_errors() -> None:
    with pytest.raises(mg.DomainError):
        mg.gradcheck(lambda x: x.log(), 0.0)
