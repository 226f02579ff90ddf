"""The explorer page's JavaScript evaluator against the Python engine, in embedded V8.

A random graph is a *recipe*: a list of steps, each applying one operation to
earlier steps (reused freely) or to plain numbers, replayed in Python at any
point. The graph built at one point is serialised for the page; the JavaScript
evaluator then computes values and gradients there and at a second point, and
must agree with the Python engine built afresh at that point: the same numbers
(to 1e-12 relative), or a failure reported on the same node that Python refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import py_mini_racer
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from program_graphs import UNARY

import microgradient as mg
from microgradient import Value, explorer
from microgradient.engine import BUILTIN_OPERATIONS
from microgradient.errors import MicrogradientError

Recipe = list[tuple[Any, ...]]

ONE_OPERAND = UNARY  # every operation of one operand, as the program tests use them
TWO_OPERANDS: dict[str, Callable[[Value, Value], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
    "max": lambda a, b: mg.max(a, b),
    "min": lambda a, b: mg.min(a, b),
}
WITH_NUMBER: dict[str, Callable[[Value, float], Value]] = {
    "+": lambda a, c: a + c,
    "r+": lambda a, c: c + a,
    "-": lambda a, c: a - c,
    "r-": lambda a, c: c - a,
    "*": lambda a, c: a * c,
    "/": lambda a, c: a / c,
    "r/": lambda a, c: c / a,
    "**": lambda a, c: a**c,
    "r**": lambda a, c: c**a,
    "max": lambda a, c: mg.max(a, c),
    "min": lambda a, c: mg.min(a, c),
}
# kinks, ties and domain edges are where conventions differ: draw them often
special = st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.5, -2.0, 3.0])
point_value = special | st.floats(-4.0, 4.0)
number = special | st.sampled_from([-0.5, 1.5, 4.0]) | st.floats(-3.0, 3.0)


@st.composite
def recipes(draw: st.DrawFn) -> tuple[int, Recipe]:
    n_leaves = draw(st.integers(1, 4))
    steps: Recipe = []
    for _ in range(draw(st.integers(1, 14))):
        available = n_leaves + len(steps)
        operand = st.integers(0, available - 1)
        kind = draw(st.sampled_from(["one", "two", "number", "sum", "dot"]))
        if kind == "one":
            steps.append(("one", draw(st.sampled_from(sorted(ONE_OPERAND))), draw(operand)))
        elif kind == "two":
            op = draw(st.sampled_from(sorted(TWO_OPERANDS)))
            steps.append(("two", op, draw(operand), draw(operand)))
        elif kind == "number":
            op = draw(st.sampled_from(sorted(WITH_NUMBER)))
            steps.append(("number", op, draw(operand), draw(number)))
        else:
            # one plain number at most: a node keeps the sum of its numbers as one rounded
            # constant, so with two the page could only add up that rounding
            terms = draw(st.lists(st.one_of(operand, number), min_size=1, max_size=5))
            partners = draw(
                st.lists(st.one_of(operand, number), min_size=len(terms), max_size=len(terms))
            )
            numbers_seen = 0
            for i, (term, partner) in enumerate(zip(terms, partners, strict=True)):
                plain = not isinstance(term, int) and (
                    kind == "sum" or not isinstance(partner, int)
                )
                if plain:
                    numbers_seen += 1
                    if numbers_seen > 1:
                        terms[i] = draw(operand)
            steps.append((kind, terms, partners))
    return n_leaves, steps


def replay(recipe: Recipe, point: Sequence[float]) -> list[Value]:
    """Every node of the recipe built at ``point`` (leaves first); the last one adds up the rest."""
    nodes = [Value(x, label=f"x{i}") for i, x in enumerate(point)]

    def operand(term: int | float) -> Value | float:
        return nodes[term] if isinstance(term, int) else term

    for step in recipe:
        kind = step[0]
        if kind == "one":
            nodes.append(ONE_OPERAND[step[1]](nodes[step[2]]))
        elif kind == "two":
            nodes.append(TWO_OPERANDS[step[1]](nodes[step[2]], nodes[step[3]]))
        elif kind == "number":
            nodes.append(WITH_NUMBER[step[1]](nodes[step[2]], step[3]))
        elif kind == "sum":
            nodes.append(mg.sum([operand(t) for t in step[1]] + [nodes[-1]]))
        else:
            nodes.append(
                mg.dot(
                    [operand(t) for t in step[1]] + [nodes[-1]],
                    [operand(t) for t in step[2]] + [1.0],
                )
            )
    used = {id(parent) for node in nodes for parent in node.parents}
    unused = [node for node in nodes[len(point) :] if id(node) not in used]
    nodes.append(mg.sum([*unused, nodes[-1]]))  # every step is an ancestor of the root
    return nodes


class Page:
    """The evaluator script in one V8 context."""

    def __init__(self) -> None:
        self.context = py_mini_racer.MiniRacer()
        self.context.eval((explorer._ASSETS / "evaluator.js").read_text(encoding="utf-8"))
        self.context.eval(
            """
            function numbersOut(x) {
              if (x === null || x === undefined) return null;
              if (Array.isArray(x)) return x.map(numbersOut);
              return typeof x === "number" && !isFinite(x) ? String(x) : x;
            }
            function run(program, leaves) {
              var result = microgradientEvaluator.evaluate(JSON.parse(program), JSON.parse(leaves));
              return JSON.stringify({
                values: numbersOut(result.values), grads: numbersOut(result.grads),
                errors: result.errors, failed: result.failed});
            }
            """
        )

    def run(
        self, program: dict[str, Any], leaves: dict[int, float] | None = None
    ) -> dict[str, Any]:
        answer = self.context.call("run", json.dumps(program), json.dumps(leaves))
        result: dict[str, Any] = json.loads(answer)
        for key in ("values", "grads"):
            if result[key] is not None:
                result[key] = [None if x is None else float(x) for x in result[key]]
        return result


_page: Page | None = None


def page() -> Page:
    global _page
    if _page is None:
        _page = Page()
    return _page


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def assert_agrees(result: dict[str, Any], nodes: list[Value]) -> None:
    order = mg.topological_order(nodes[-1])
    nodes[-1].backward()
    assert result["errors"] == [None] * len(order)
    for slot, node in enumerate(order):
        assert same(result["values"][slot], node.data), (slot, node.op, node.data)
        assert same(result["grads"][slot], node.grad), (slot, node.op, node.grad)


def assert_same_as_the_traced_program(program: dict[str, Any], traced: mg.Program) -> None:
    """The page numbers and describes the nodes as mg.trace does (contract 4)."""
    operations = [
        (slot, node["op"], tuple(node["args"]), node["constant"], node["coefficients"])
        for slot, node in enumerate(program["nodes"])
        if node["args"]
    ]
    assert operations == [
        (i.slot, i.op, i.args, i.constant, None if i.coefficients is None else list(i.coefficients))
        for i in traced.instructions
    ]
    leaves = [slot for slot, node in enumerate(program["nodes"]) if not node["args"]]
    assert leaves == list(traced.input_slots) and program["output"] == traced.output


def build(recipe: Recipe, point: Sequence[float]) -> list[Value] | MicrogradientError:
    try:
        return replay(recipe, point)
    except MicrogradientError as error:
        return error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipes(), st.data())
def test_values_and_gradients_agree_with_the_engine(
    case: tuple[int, Recipe], data: st.DataObject
) -> None:
    n_leaves, recipe = case
    first = data.draw(st.lists(point_value, min_size=n_leaves, max_size=n_leaves))
    nodes = build(recipe, first)
    if isinstance(nodes, MicrogradientError):
        return  # this recipe is undefined at this point; the second half of the test covers that
    program = explorer.page_program(nodes[-1])
    assert_same_as_the_traced_program(program, mg.trace(nodes[-1]))
    assert_agrees(page().run(program), nodes)

    order = mg.topological_order(nodes[-1])
    slot_of = {id(node): slot for slot, node in enumerate(order)}
    second = data.draw(st.lists(point_value, min_size=n_leaves, max_size=n_leaves))
    leaves = {slot_of[id(nodes[i])]: x for i, x in enumerate(second) if id(nodes[i]) in slot_of}
    result = page().run(program, leaves)
    # a leaf that no step uses is not in the graph: it keeps its value
    moved_point = [x if id(nodes[i]) in slot_of else first[i] for i, x in enumerate(second)]
    moved = build(recipe, moved_point)
    if isinstance(moved, MicrogradientError):
        # Python stops at the first step it cannot take: the page names that node, in words
        failing = next(
            step
            for step in range(len(recipe))
            if isinstance(build(recipe[: step + 1], moved_point), MicrogradientError)
        )
        slot = slot_of[id(nodes[n_leaves + failing])]
        error = result["errors"][slot]
        assert error is not None and not error.startswith("not computed"), (error, str(moved))
        assert error.split(":")[0] == str(moved).split(":")[0]
        assert result["grads"] is None
        assert result["errors"][-1] is not None
    else:
        assert_agrees(result, moved)


def test_every_operation_the_page_defines_is_a_built_in_op() -> None:
    defined = page().context.eval("JSON.stringify(Object.keys(microgradientEvaluator.OPS))")
    assert set(json.loads(defined)) == BUILTIN_OPERATIONS


@pytest.mark.parametrize(
    ("op", "a", "b", "grads"),
    [("max", 2.0, 2.0, (0.5, 0.5)), ("min", -1.0, -1.0, (0.5, 0.5)), ("max", 3.0, 1.0, (1.0, 0.0))],
)
def test_max_and_min_split_a_tie(op: str, a: float, b: float, grads: tuple[float, float]) -> None:
    x, y = Value(a, label="x"), Value(b, label="y")
    result = page().run(explorer.page_program(TWO_OPERANDS[op](x, y)))
    assert result["grads"][:2] == list(grads)


@pytest.mark.parametrize(
    ("build_graph", "at", "words"),
    [
        (lambda x: x.log(), -2.0, "log: \N{MINUS SIGN}2 is not > 0; log needs a positive argument"),
        (lambda x: x.sqrt(), -1.0, "sqrt: \N{MINUS SIGN}1 is negative"),
        (lambda x: 1 / x, 0.0, "division: 1 / 0: the divisor is zero"),
        (lambda x: x.exp().sin(), 1000.0, "sin: \N{INFINITY} is infinite"),
        (
            lambda x: x**0.5,
            -4.0,
            "power: \N{MINUS SIGN}4 ** 0.5: a negative base needs an integer exponent",
        ),
    ],
)
def test_a_domain_error_is_reported_in_words(
    build_graph: Callable[[Value], Value], at: float, words: str
) -> None:
    x = Value(1.0, label="x")
    result = page().run(explorer.page_program(build_graph(x)), {0: at})
    assert result["errors"][-1].startswith(words)
    assert result["values"][-1] is None and result["grads"] is None


@settings(deadline=None, max_examples=400)  # the first example starts V8
@given(
    special
    | st.floats(-1e300, 1e300)
    | st.floats(-1e-6, 1e-6)
    # short binary fractions and long integers: exact ties, which Python rounds to even
    | st.integers(-(10**7), 10**7).map(lambda k: k / 1024)
    | st.integers(10**15, 2**53).map(float),
    st.sampled_from([".4g", ".3f", ".2e", ".6g", ".1g", ".15g", ".0f", ".1%"]),
)
def test_numbers_are_formatted_as_the_drawing_formats_them(x: float, spec: str) -> None:
    shown = page().context.call("microgradientEvaluator.formatNumber", x, spec)
    assert shown == mg.format_number(x, spec)


@mg.operation(
    symbol="hyp",
    javascript={"forward": "Math.hypot(a, b)", "derivatives": ["a / out", "b / out"]},
)
def hypotenuse(a: float, b: float) -> float:
    return math.hypot(a, b)


@hypotenuse.derivatives
def _(a: Any, b: Any, out: Any) -> tuple[Any, Any]:
    return a / out, b / out


@mg.operation(symbol="cube")
def cube_without_javascript(x: float) -> float:
    return x**3


@cube_without_javascript.derivatives
def _(x: Any, out: Any) -> tuple[Any]:
    return (3 * x * x,)


def test_a_custom_operation_runs_its_javascript() -> None:
    x, y = Value(3.0, label="x"), Value(4.0, label="y")
    root = hypotenuse(x * y, y) + x
    program = explorer.page_program(root)
    assert program["custom"]["hypotenuse"]["forward"] == "Math.hypot(a, b)"
    assert_agrees(page().run(program), [x, y, root])
    moved_x, moved_y = Value(-1.0, label="x"), Value(0.5, label="y")
    moved = hypotenuse(moved_x * moved_y, moved_y) + moved_x
    assert_agrees(page().run(program, {0: -1.0, 1: 0.5}), [moved_x, moved_y, moved])


def test_operations_without_javascript_are_shown_from_their_recorded_derivatives() -> None:
    x = Value(2.0, label="x")
    micrograd_style = Value(x.data**2, (x,), "square")

    def step() -> None:
        x.grad += 2 * x.data * micrograd_style.grad

    micrograd_style._backward = step
    root = cube_without_javascript(micrograd_style) * x
    program = explorer.page_program(root)
    assert [node.get("locals") for node in program["nodes"]] == [None, [4.0], [48.0], None]
    result = page().run(program)
    root.backward()
    assert result["values"] == [2.0, 4.0, 64.0, 128.0]
    assert result["grads"] == [x.grad, 96.0, 2.0, 1.0] == [448.0, 96.0, 2.0, 1.0]
    unavailable = page().context.eval(
        f"microgradientEvaluator.compile({json.dumps(program)}).unavailable"
    )
    assert "square" in unavailable and "no JavaScript definition" in unavailable


def test_a_graph_already_differentiated_shows_its_gradients_once() -> None:
    def sigmoid() -> tuple[Value, Value]:
        w, x = Value(0.0, label="w"), Value(1.0, label="x")
        return w, 1 / (1 + (-(w * x)).exp())

    _, fresh = sigmoid()
    w, differentiated = sigmoid()
    differentiated.backward()
    differentiated.backward()  # w.grad is now 0.5, twice the gradient
    assert mg.explore(differentiated).svg == mg.explore(fresh).svg
    assert w.grad == 0.5  # the explorer put the graph's own grads back
