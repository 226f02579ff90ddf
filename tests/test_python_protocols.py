"""Python as people write it: the star import, builtins' names, and a Value read as a float."""

from __future__ import annotations

import builtins
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import microgradient as mg
from microgradient import Value

SHADOWED = ("sum", "abs", "max", "min", "pow")


@pytest.fixture(scope="module")
def star() -> dict[str, Any]:
    """The namespace a user gets from ``from microgradient import *``."""
    namespace: dict[str, Any] = {}
    exec("from microgradient import *", namespace)
    return namespace


def run(star: dict[str, Any], expression: str) -> Any:
    return eval(expression, dict(star))


def builtin(expression: str) -> Any:
    return eval(expression, {})


# the cases and their neighbours: each must give what Python's builtins give
PLAIN = [
    "sum([1, 2], 10)",
    "sum([True, True])",
    "sum([1, 2, 3])",
    "sum([0.1] * 10)",
    "sum([])",
    "sum((x for x in range(5)), 0.5)",
    "sum([[1], [2]], [])",
    "sum([1, 2], start=3)",
    "abs(-3)",
    "abs(-2.5)",
    "abs(3 + 4j)",
    "abs(True)",
    "max(1, 2)",
    "max(2, 1.5, 3)",
    "max([1, 3, 2])",
    "max(iter([4, 1]))",
    "max([], default=7)",
    "max([1, -3], key=abs)",
    "max('abc')",
    "max([True, False])",
    "min(1, 2)",
    "min([3, 1, 2])",
    "min([], default=None)",
    "min([1, -3], key=abs)",
    "min((2, 2.0))",
    "pow(2, 3)",
    "pow(2, -1)",
    "pow(3, 2, 5)",
    "pow(2.0, 0.5)",
    "pow(-8, 1 / 3)",
]


@pytest.mark.parametrize("expression", PLAIN)
def test_star_import_keeps_builtins_meaning(star: dict[str, Any], expression: str) -> None:
    ours, theirs = run(star, expression), builtin(expression)
    assert type(ours) is type(theirs)
    assert ours == theirs


@pytest.mark.parametrize(
    "expression",
    ["sum(5)", "sum(['a', 'b'])", "max()", "max(1)", "min([])", "pow(0, -1)", "abs('x')"],
)
def test_star_import_keeps_builtins_errors(star: dict[str, Any], expression: str) -> None:
    with pytest.raises(Exception) as theirs:
        builtin(expression)
    with pytest.raises(type(theirs.value)) as ours:
        run(star, expression)
    assert str(ours.value) == str(theirs.value)


def test_star_import_exports_the_value_aware_versions(star: dict[str, Any]) -> None:
    for name in SHADOWED:
        assert star[name] is getattr(mg, name)
        assert star[name].__name__ == name
    assert run(star, "sum([Value(1.0), 2])").op == "sum"
    assert run(star, "max(Value(1.0), 2)").op == "max"


numbers = st.integers(-1000, 1000) | st.floats(-1e6, 1e6) | st.booleans()


@settings(max_examples=200, deadline=None)
@given(terms=st.lists(numbers, max_size=6), start=st.integers(-5, 5) | st.floats(-5, 5))
def test_module_functions_are_builtins_for_plain_numbers(terms: list[Any], start: Any) -> None:
    for mine, theirs, args in [
        (mg.sum, builtins.sum, (terms, start)),
        (mg.max, builtins.max, (terms,) if terms else ([start],)),
        (mg.min, builtins.min, (terms,) if terms else ([start],)),
        (mg.abs, builtins.abs, (start,)),
        (mg.max, builtins.max, (start, *terms[:2])) if terms else (mg.abs, abs, (start,)),
    ]:
        ours, expected = mine(*args), theirs(*args)
        assert type(ours) is type(expected)
        assert ours == expected or (ours != ours and expected != expected)


@settings(max_examples=100, deadline=None)
@given(base=st.integers(-20, 20), exponent=st.integers(-3, 6), modulus=st.integers(1, 9))
def test_pow_is_builtins_pow_for_plain_numbers(base: int, exponent: int, modulus: int) -> None:
    for args in [(base, exponent), (float(base), exponent), (base, exponent, modulus)]:
        if exponent < 0 and len(args) == 3:
            continue
        try:
            expected = builtins.pow(*args)
        except ZeroDivisionError:
            with pytest.raises(ZeroDivisionError):
                mg.pow(*args)
            continue
        assert mg.pow(*args) == expected
        assert type(mg.pow(*args)) is type(expected)


def test_value_aware_forms() -> None:
    a, b = Value(1.0), Value(3.0)
    assert mg.sum([a, b], 10).data == 14.0
    assert mg.sum([a, b], 10).constant == 10.0
    start = Value(5.0)
    total = mg.sum([a], start)
    total.backward()
    assert (total.data, start.grad, a.grad) == (6.0, 1.0, 1.0)
    assert mg.abs(Value(-2.0)).data == 2.0
    assert mg.pow(Value(2.0), 3).data == 8.0
    assert mg.pow(2, Value(3.0)).op == "r**"
    with pytest.raises(mg.OperandTypeError, match="modulus"):
        mg.pow(Value(2.0), 3, 5)
    with pytest.raises(mg.OperandTypeError, match="modulus"):
        pow(Value(2.0), 3, 5)  # the built-in pow reaches Value.__pow__
    top = mg.max([a, 2, b])
    assert (top.data, top.op) == (3.0, "max")
    assert mg.max([a, b], key=lambda v: -v.data) is a  # key= picks an element, as in Python


def test_min_with_default_and_several_arguments_is_refused_like_python() -> None:
    with pytest.raises(TypeError):
        builtins.min(1, 2, default=0)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        mg.min(1, 2, default=0)


# ---- a Value read as a float --------------------------------------------------------------


def test_formatting_rounding_and_isclose() -> None:
    loss = Value(0.123456)
    assert f"{loss:.3f}" == "0.123"
    assert f"{loss:>8.2e}" == f"{0.123456:>8.2e}"
    assert format(loss, "") == str(loss)
    assert f"{loss}" == repr(loss)
    assert round(Value(2.675), 2) == round(2.675, 2)
    assert round(Value(2.5)) == 2 and type(round(Value(2.5))) is int
    assert math.isclose(Value(0.5), 0.5)
    assert math.isclose(Value(0.1) + Value(0.2), 0.3)
    assert float(Value(1.5)) == 1.5
    assert int(Value(-1.7)) == -1
    assert (math.floor(Value(-1.5)), math.ceil(Value(-1.5)), math.trunc(Value(-1.5))) == (
        -2,
        -1,
        -1,
    )


@settings(max_examples=100, deadline=None)
@given(x=st.floats(allow_nan=True), y=st.floats(allow_nan=True) | st.integers(-5, 5))
def test_ordering_is_the_float_ordering(x: float, y: float) -> None:
    v = Value(x)
    w = Value(y) if isinstance(y, float) else y
    for name in ("__lt__", "__le__", "__gt__", "__ge__"):
        expected = getattr(x, name)(float(y))
        assert (getattr(v, name)(w) is True) == (expected is True)
    assert (v < y) == (x < y) and (y < v) == (y < x) and (y >= v) == (y >= x)


def test_ordering_mixes_values_and_numbers() -> None:
    loss = Value(1e-4)
    assert loss < 1e-3
    assert not loss > 1e-3
    assert 1e-3 > loss  # noqa: SIM300  (the reflected comparison is the point)
    assert loss <= Value(1e-4)
    assert Value(2.0) >= 2
    values = [Value(3.0), Value(1.0), Value(2.0)]
    assert [v.data for v in sorted(values)] == [1.0, 2.0, 3.0]
    assert builtins.max(values) is values[0]
    with pytest.raises(mg.OperandTypeError):
        Value(1.0) < "2"  # type: ignore[operator]  # noqa: B015


def test_equality_and_hash_stay_identity() -> None:
    a, b = Value(1.0), Value(1.0)
    assert a == a and a != b
    assert hash(a) == object.__hash__(a)
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b"
    assert a in [a] and b not in [a]
