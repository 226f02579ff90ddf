"""The backward pass: accumulation, shared nodes, depth, no_grad, memory, the functional API."""

from __future__ import annotations

import asyncio
import gc
import math
import subprocess
import sys
import textwrap
import threading
import weakref
from collections.abc import Iterator

import pytest

import microgradient as mg
from microgradient import Value


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Disable the cyclic garbage collector: only reference counting can free anything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---- accumulation -----------------------------------------------------------------------


def test_two_backward_passes_give_twice_the_gradient() -> None:
    x, y = Value(2.0), Value(3.0)
    h = x * y
    z = h.tanh() + x
    z.backward()
    once = (x.grad, y.grad, h.grad, z.grad)
    z.backward()
    assert (x.grad, y.grad, h.grad, z.grad) == tuple(2 * g for g in once)
    assert z.grad == 2.0


def test_zero_grad_resets_the_whole_graph() -> None:
    x, y = Value(2.0), Value(3.0)
    h = x * y
    z = h + x
    z.backward()
    assert x.grad == 4.0
    z.zero_grad()
    assert (x.grad, y.grad, h.grad, z.grad) == (0.0, 0.0, 0.0, 0.0)
    z.backward()
    assert (x.grad, y.grad, h.grad, z.grad) == (4.0, 2.0, 1.0, 1.0)


def test_backward_into_nodes_that_already_have_gradients_from_another_root() -> None:
    x = Value(2.0)
    a = x * 3
    b = x * x
    a.backward()
    b.backward()
    assert x.grad == 3.0 + 4.0
    assert (a.grad, b.grad) == (1.0, 1.0)


def test_backward_with_an_upstream_gradient() -> None:
    x = Value(2.0)
    y = x * x
    y.backward(2.5)
    assert (x.grad, y.grad) == (10.0, 2.5)
    y.zero_grad()
    y.backward(Value(3.0))
    assert (x.grad, y.grad) == (12.0, 3.0)
    y.zero_grad()
    y.backward(2)
    assert x.grad == 8.0


def test_backward_on_a_leaf() -> None:
    x = Value(5.0)
    x.backward()
    assert x.grad == 1.0


# ---- shared nodes ---------------------------------------------------------------------------


def test_reused_nodes_sum_their_paths() -> None:
    x = Value(3.0)
    (x * x).backward()
    assert x.grad == 6.0

    a = Value(3.0)
    (a + a).backward()
    assert a.grad == 2.0

    b = Value(3.0)
    (b - b).backward()
    assert b.grad == 0.0

    c = Value(3.0)
    (c / c).backward()
    assert c.grad == 0.0


def test_diamond_graph() -> None:
    #     x
    #    / \
    #   a   b      a = x * 2, b = x ** 2
    #    \ /
    #     d        d = a * b  = 2 x**3, dd/dx = 6 x**2
    x = Value(3.0)
    a = x * 2
    b = x**2
    d = a * b
    d.backward()
    assert d.data == 54.0
    assert (a.grad, b.grad) == (9.0, 6.0)
    assert x.grad == 54.0


def test_shared_subexpression_is_visited_once() -> None:
    x = Value(0.5)
    h = x.exp()
    total = h
    for _ in range(20):  # 2**20 paths through h: a per-path traversal would never finish
        total = total + total
    total.backward()
    assert total.data == pytest.approx(2**20 * math.exp(0.5))
    assert h.grad == 2.0**20
    assert x.grad == pytest.approx(2**20 * math.exp(0.5))


def test_intermediate_nodes_get_their_gradients() -> None:
    a, b, c = Value(2.0, label="a"), Value(-3.0, label="b"), Value(10.0, label="c")
    e = a * b
    d = e + c
    f = Value(-2.0, label="f")
    loss = d * f
    loss.backward()
    assert (loss.grad, d.grad, f.grad, e.grad, c.grad) == (1.0, -2.0, 4.0, -2.0, -2.0)
    assert (a.grad, b.grad) == (6.0, -4.0)


def test_backward_from_an_intermediate_node() -> None:
    x = Value(2.0)
    y = x * x
    z = y * 3
    y.backward()
    assert (x.grad, y.grad, z.grad) == (4.0, 1.0, 0.0)


def test_topological_order_puts_parents_first_and_root_last() -> None:
    x, y = Value(1.0), Value(2.0)
    a = x * y
    b = a + x
    c = b * a
    order = mg.topological_order(c)
    assert order[-1] is c
    assert len(order) == len({id(n) for n in order}) == 5
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert position[id(parent)] < position[id(node)]


# ---- depth ------------------------------------------------------------------------------------


def test_100_000_deep_chain_under_the_default_recursion_limit(
    default_recursion_limit: None,
) -> None:
    x = Value(0.5)
    y = x
    for _ in range(100_000):
        y = y + x
    y.backward()
    assert y.data == 100_001 * 0.5
    assert x.grad == 100_001.0

    z = Value(1.5)
    w = z
    for _ in range(100_000):
        w = -w.relu() if w.data > 0 else -w
    w.backward()
    assert w.data == 1.5
    assert z.grad == 1.0
    w.zero_grad()
    assert z.grad == 0.0


def test_deep_chain_second_derivative(default_recursion_limit: None) -> None:
    x = Value(3.0)
    y = x
    for _ in range(20_000):
        y = y * 1.0 - 0.0
    y = y * y
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value)
    assert x.grad.data == 6.0
    g = x.grad
    x.grad = 0.0
    g.backward()
    assert x.grad == 2.0


# ---- the process's garbage collector is the user's -------------------------------------------


def _graph_of_every_kind() -> tuple[Value, Value]:
    x, y = Value(0.5, label="x"), Value(2.0, label="y")
    z = x
    for _ in range(50):  # deep enough to need the iterative traversal's stack
        z = (z * y).tanh() + mg.dot([x, y, z], [y, 3.0, x])
    return x, mg.sum([z, x**2, y.exp()])


@pytest.mark.parametrize("enabled", [True, False])
def test_traversals_leave_the_garbage_collector_alone(
    monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    was_enabled, threshold = gc.isenabled(), gc.get_threshold()
    (gc.enable if enabled else gc.disable)()
    calls: list[str] = []
    for name in ("enable", "disable", "freeze", "unfreeze", "set_threshold"):
        monkeypatch.setattr(gc, name, lambda *args, name=name: calls.append(name))
    try:
        x, root = _graph_of_every_kind()
        root.backward()
        root.backward(create_graph=True)
        root.zero_grad()
        mg.grad(lambda a: (a * a).exp())(0.3)
        mg.hessian(lambda a, b: a * b.sin())(0.3, 0.7)
        mg.gradients(root, [x])
        mg.topological_order(root)
        assert calls == []
        assert gc.isenabled() is enabled
        assert gc.get_threshold() == threshold
    finally:
        monkeypatch.undo()
        (gc.enable if was_enabled else gc.disable)()


def test_a_collector_switched_off_during_backward_stays_off() -> None:
    # what another thread may do while a long backward pass runs, done here from
    # inside the pass itself so that it happens at a known moment
    def disable_then_derive(get: object, out: object) -> tuple[float]:
        gc.disable()
        return (1.0,)

    x = Value(1.0)
    y = mg.engine._result("f", 1.0, (x,), disable_then_derive) * 2.0
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        y.backward()
        assert not gc.isenabled()
        assert x.grad == 2.0
    finally:
        (gc.enable if was_enabled else gc.disable)()


def test_1_000_000_deep_chain_backward_and_deletion() -> None:
    # in a child process, so that a crash (stack overflow on deallocation) fails this
    # test rather than killing the test run
    script = textwrap.dedent(
        """
        import gc, sys, weakref
        from microgradient import Value
        assert sys.getrecursionlimit() == 1000
        gc.disable()
        x = Value(1.0)
        y = x
        for _ in range(1_000_000):
            y = y + 1.0
        middle = weakref.ref(y.parents[0].parents[0])
        y.backward()
        assert (y.data, x.grad) == (1_000_001.0, 1.0), (y.data, x.grad)
        root = weakref.ref(y)
        del y
        assert root() is None and middle() is None
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# ---- no_grad -----------------------------------------------------------------------------------


def test_no_grad_records_nothing() -> None:
    x = Value(2.0)
    assert mg.is_recording()
    with mg.no_grad():
        assert not mg.is_recording()
        y = (x * 3 + x.exp()).tanh() ** 2 + mg.sum([x, x]) + mg.dot([x], [x])
    assert mg.is_recording()
    assert (y.op, y.parents, y.constant) == ("", (), None)
    assert y.data == pytest.approx(math.tanh(6 + math.exp(2.0)) ** 2 + 8)
    y.backward()
    assert x.grad == 0.0
    z = x * 3
    assert z.parents == (x,)


def test_no_grad_nests_and_survives_exceptions() -> None:
    with mg.no_grad():
        with mg.no_grad():
            pass
        assert not mg.is_recording()
    assert mg.is_recording()
    with pytest.raises(mg.DomainError), mg.no_grad():
        Value(-1.0).log()
    assert mg.is_recording()


def test_no_grad_does_not_leak_between_threads() -> None:
    inside = threading.Event()
    checked = threading.Event()
    seen: dict[str, object] = {}

    def worker() -> None:
        with mg.no_grad():
            inside.set()
            checked.wait(10)
            seen["recording"] = mg.is_recording()
            seen["parents"] = (Value(1.0) * 2).parents

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(10)
    # the worker is inside no_grad right now; this thread still records
    assert mg.is_recording()
    x = Value(1.0)
    assert (x * 2).parents == (x,)
    checked.set()
    thread.join(10)
    assert seen == {"recording": False, "parents": ()}


def test_a_thread_started_inside_no_grad_records() -> None:
    seen: dict[str, object] = {}

    def worker() -> None:
        x = Value(1.0)
        seen["recording"] = mg.is_recording()
        seen["recorded"] = (x * 2).parents == (x,)

    with mg.no_grad():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)
        assert not mg.is_recording()
    assert seen == {"recording": True, "recorded": True}


def test_no_grad_does_not_leak_between_asyncio_tasks() -> None:
    async def main() -> dict[str, object]:
        inside = asyncio.Event()
        checked = asyncio.Event()
        seen: dict[str, object] = {}

        async def without_graph() -> None:
            with mg.no_grad():
                inside.set()
                await checked.wait()
                seen["a recording"] = mg.is_recording()
                seen["a parents"] = (Value(1.0) * 2).parents

        async def with_graph() -> None:
            await inside.wait()
            # task a is suspended inside no_grad
            x = Value(1.0)
            seen["b recording"] = mg.is_recording()
            seen["b recorded"] = (x * 2).parents == (x,)
            checked.set()

        await asyncio.gather(without_graph(), with_graph())
        seen["main recording"] = mg.is_recording()
        return seen

    assert asyncio.run(main()) == {
        "a recording": False,
        "a parents": (),
        "b recording": True,
        "b recorded": True,
        "main recording": True,
    }


# ---- memory ----------------------------------------------------------------------------------


def every_operation(a: Value, b: Value) -> Value:
    terms = [
        a + b, a + 1, 1 + a, a - b, a - 1, 1 - a, a * b, a * 2, 2 * a, a / b, a / 2, 2 / a,
        -a, a**2, a**b, 2**a, a.exp(), a.log(), a.sqrt(), a.tanh(), a.sigmoid(), a.relu(),
        a.sin(), a.cos(), abs(a), mg.dot([a, b], [b, a]), mg.dot([a, 2.0], [b, a]),
        mg.dot([a], [3.0]),
    ]  # fmt: skip
    return mg.sum([*terms, 1.0])


def test_a_dropped_graph_is_freed_by_reference_counting(collector_off: None) -> None:
    a, b = Value(2.0, label="a"), Value(3.0, label="b")
    root = every_operation(a, b)
    inner = root.parents[9]  # a / b
    assert inner.op == "/"
    root.backward()
    root.zero_grad()
    root.backward()
    mg.gradients(root, [a, b])
    root_ref, inner_ref = weakref.ref(root), weakref.ref(inner)
    del root, inner
    assert root_ref() is None
    assert inner_ref() is None
    # the leaves the caller still holds are untouched
    assert a.grad != 0.0 and b.grad != 0.0


def test_a_built_in_node_is_two_objects_for_the_collector(collector_off: None) -> None:
    """Itself and its parents tuple: no closure, cell or defaults tuple per node.

    The cyclic collector walks every tracked object while a big graph is built,
    so each extra object per node costs time on million-node graphs.
    """
    a, b = Value(2.0), Value(3.0)

    def graph() -> list[Value]:
        return [
            every_operation(a, b), a.softplus(), a.tan(), a.atan(), mg.max(a, b),
            mg.min(a, 2.0), mg.max(a, 2.0), (a - a).abs(),
        ]  # fmt: skip

    graph()  # the first call of each path may create lasting objects
    gc.collect()
    before = len(gc.get_objects())
    graphs = [graph() for _ in range(200)]  # many, so that unrelated objects do not count
    gc.collect()  # a collection untracks tuples of floats, such as a dot's coefficients
    tracked = len(gc.get_objects()) - before
    nodes = {id(n) for roots in graphs for r in roots for n in mg.topological_order(r) if n.parents}
    assert tracked / len(nodes) < 2.05


def test_functional_api_leaves_no_cycles(collector_off: None) -> None:
    a, b = Value(2.0), Value(3.0)
    out = every_operation(a, b)
    grads = mg.gradients(out, [a, b])
    assert all(isinstance(g, float) for g in grads)
    out_ref = weakref.ref(out)
    del out
    assert out_ref() is None
    mg.gradcheck(lambda x, y: every_operation(x, y), 2.0, 3.0)
    assert mg.hessian(lambda x, y: x * x * y)(1.0, 2.0) == [[4.0, 2.0], [2.0, 0.0]]


# ---- create_graph -------------------------------------------------------------------------------


def test_create_graph_makes_every_grad_a_value() -> None:
    x, y = Value(2.0), Value(3.0)
    h = x * y
    unused_path = x + 1  # not part of z's graph
    z = h.sin() + x**3 + mg.sum([h, y]) + (y * 0).relu()
    z.backward(create_graph=True)
    for node in mg.topological_order(z):
        assert isinstance(node.grad, Value), node
    assert unused_path.grad == 0.0
    assert x.grad.data == pytest.approx(math.cos(6.0) * 3 + 12 + 3)
    assert y.grad.data == pytest.approx(math.cos(6.0) * 2 + 2 + 1)


def test_create_graph_gradients_can_be_differentiated_again() -> None:
    x = Value(2.0)
    y = x**3
    y.backward(create_graph=True)
    dy = x.grad
    assert isinstance(dy, Value)
    assert dy.data == 12.0
    x.grad = 0.0
    dy.backward(create_graph=True)
    d2y = x.grad
    assert isinstance(d2y, Value)
    assert d2y.data == 12.0
    x.grad = 0.0
    d2y.backward()
    assert x.grad == 6.0


def test_create_graph_passes_accumulate() -> None:
    x = Value(2.0)
    y = x * x
    y.backward()
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value)
    assert x.grad.data == 8.0


def test_grad_of_grad() -> None:
    f = lambda x: x**3  # noqa: E731
    assert mg.grad(mg.grad(f))(2.0) == 12.0
    assert mg.grad(f)(2.0) == 12.0
    assert mg.grad(mg.grad(mg.grad(f)))(2.0) == 6.0
    assert mg.grad(mg.grad(mg.grad(mg.grad(f))))(2.0) == 0.0
    assert mg.grad(lambda x: x.sin())(0.0) == 1.0
    assert mg.grad(mg.grad(lambda x: x.sin()))(math.pi / 2) == pytest.approx(-1.0)


def test_grad_of_a_function_ignoring_its_argument() -> None:
    assert mg.grad(lambda x: Value(3.0))(1.0) == 0.0
    assert mg.grad(lambda x: 3.0)(1.0) == 0.0
    assert mg.value_and_grad(lambda x: 3.0)(1.0) == (3.0, 0.0)
    assert mg.grad(mg.grad(lambda x: x * 2))(1.0) == 0.0


def test_grad_with_values_returns_values() -> None:
    x = Value(2.0)
    d = mg.grad(lambda v: v**3)(x)
    assert isinstance(d, Value)
    assert d.data == 12.0


def test_value_and_grad() -> None:
    assert mg.value_and_grad(lambda x: x**3)(2.0) == (8.0, 12.0)
    value, grads = mg.value_and_grad(lambda x, y: x * y + y, argnums=(0, 1))(2.0, 5.0)
    assert (value, grads) == (15.0, (5.0, 3.0))
    assert isinstance(value, float)


def test_argnums() -> None:
    f = lambda x, y, z: x * y * z + z  # noqa: E731
    assert mg.grad(f)(2.0, 3.0, 4.0) == 12.0
    assert mg.grad(f, argnums=1)(2.0, 3.0, 4.0) == 8.0
    assert mg.grad(f, argnums=(0, 2))(2.0, 3.0, 4.0) == (12.0, 7.0)
    assert mg.grad(f, argnums=(2, 0, 1))(2.0, 3.0, 4.0) == (7.0, 12.0, 8.0)
    assert mg.grad(f, argnums=(1,))(2.0, 3.0, 4.0) == (8.0,)
    with pytest.raises(mg.OperandTypeError, match="argnums 3 is out of range"):
        mg.grad(f, argnums=3)(2.0, 3.0, 4.0)


def test_hessian_of_a_known_function() -> None:
    # f = x**2 y + exp(x) y**3 + sin(x y)
    def f(x: Value, y: Value) -> Value:
        return x**2 * y + x.exp() * y**3 + (x * y).sin()

    x, y = 0.5, -1.5
    s = math.sin(x * y)
    c = math.cos(x * y)
    fxx = 2 * y + math.exp(x) * y**3 - y * y * s
    fxy = 2 * x + 3 * math.exp(x) * y**2 + c - x * y * s
    fyy = 6 * math.exp(x) * y - x * x * s
    h = mg.hessian(f)(x, y)
    assert h[0] == pytest.approx([fxx, fxy], rel=1e-12)
    assert h[1] == pytest.approx([fxy, fyy], rel=1e-12)
    assert h[0][1] == h[1][0] or h[0][1] == pytest.approx(h[1][0], rel=1e-14)
    assert all(type(e) is float for row in h for e in row)


def test_hessian_of_linear_and_constant_functions() -> None:
    assert mg.hessian(lambda x, y: 2 * x + y)(1.0, 2.0) == [[0.0, 0.0], [0.0, 0.0]]
    assert mg.hessian(lambda x, y: x)(1.0, 2.0) == [[0.0, 0.0], [0.0, 0.0]]


def test_functional_api_does_not_disturb_existing_grads() -> None:
    x, y = Value(2.0), Value(3.0)
    h = x * y
    z = h.exp() / (h + 1) + x
    z.backward()
    before = [(node, node.grad) for node in mg.topological_order(z)]
    assert x.grad != 0.0

    assert mg.gradients(z, [x, y]) == pytest.approx([x.grad, y.grad])
    dx, dy = mg.gradients(z, [x, y], create_graph=True)
    assert isinstance(dx, Value) and isinstance(dy, Value)
    mg.gradients(dx, [x, y])
    assert mg.gradients(h, [x, y, Value(1.0)]) == [3.0, 2.0, 0.0]
    mg.grad(lambda v: v * z)(x)
    mg.value_and_grad(lambda v, w: v * w * z, argnums=(0, 1))(x, y)

    assert all(node.grad == grad for node, grad in before)
    assert all(type(node.grad) is float for node, _ in before)


def test_gradients_matches_backward() -> None:
    x, y = Value(0.3), Value(-1.2)
    z = (x * y).tanh() + x.sigmoid() * y**2
    grads = mg.gradients(z, [x, y])
    z.backward()
    assert grads == [x.grad, y.grad]


def test_gradients_of_a_plain_number_is_zero() -> None:
    x = Value(1.0)
    assert mg.gradients(3.0, [x]) == [0.0]
