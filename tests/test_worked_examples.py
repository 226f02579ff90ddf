"""The worked examples of the source texts (/work/shared/worked-examples.md, sections 1, 2, 4)."""

from __future__ import annotations

import pytest

import microgradient as mg
from microgradient import Value

# ---- 1. Shopping: multiplication and addition nodes ------------------------------------------


def test_apples() -> None:
    apple, count, tax = (
        Value(100.0, label="apple"),
        Value(2.0, label="count"),
        Value(1.1, label="tax"),
    )
    price = apple * count * tax
    price.backward()
    assert price.data == pytest.approx(220.0)
    assert apple.grad == pytest.approx(2.2)
    assert count.grad == pytest.approx(110.0)
    assert tax.grad == 200.0


def test_apples_and_oranges() -> None:
    apple, apple_count = Value(100.0, label="apple"), Value(2.0, label="apple count")
    orange, orange_count = Value(150.0, label="orange"), Value(3.0, label="orange count")
    tax = Value(1.1, label="tax")
    apples = apple * apple_count
    oranges = orange * orange_count
    subtotal = apples + oranges
    price = subtotal * tax
    price.backward()
    assert price.data == pytest.approx(715.0)
    assert apple.grad == pytest.approx(2.2)
    assert apple_count.grad == pytest.approx(110.0)
    assert orange.grad == pytest.approx(3.3)
    assert orange_count.grad == pytest.approx(165.0)
    assert tax.grad == 650.0
    # the addition node passes the upstream gradient through unchanged to both inputs
    assert apples.grad == oranges.grad == subtotal.grad == tax.data


def test_books_and_pens() -> None:
    book, book_count = Value(100.0, label="book"), Value(2.0, label="book count")
    pen, pen_count = Value(10.0, label="pen"), Value(3.0, label="pen count")
    tax = Value(1.1, label="tax")
    price = (book * book_count + pen * pen_count) * tax
    price.backward()
    assert price.data == pytest.approx(253.0)
    assert price.data == 230.0 * 1.1 == 253.00000000000003  # as Python prints it
    assert book.grad == pytest.approx(2.2)
    assert book_count.grad == pytest.approx(110.0)
    assert pen.grad == pytest.approx(3.3)
    assert pen_count.grad == pytest.approx(11.0)
    assert tax.grad == 230.0


def test_multiplication_passes_upstream_times_the_other_input() -> None:
    a, b = Value(100.0), Value(2.0)
    product = a * b
    product.backward(1.1)  # upstream gradient: the tax factor
    assert a.grad == pytest.approx(1.1 * 2.0)
    assert b.grad == pytest.approx(1.1 * 100.0)


def test_local_computation() -> None:
    many_items = Value(4000.0, label="many other items")
    books = Value(100.0) * 2
    tax = Value(1.1, label="tax")
    total = (many_items + books) * tax
    total.backward()
    assert total.data == pytest.approx(4620.0)
    # the addition node neither knows nor cares how 4000 was computed
    assert many_items.grad == books.grad == pytest.approx(1.1)
    assert tax.grad == 4200.0


# ---- 2. The chain rule on a graph ------------------------------------------------------------


@pytest.mark.parametrize(("x", "y"), [(1.0, 2.0), (-3.0, 0.5), (0.0, 0.0)])
def test_square_of_a_sum(x: float, y: float) -> None:
    vx, vy = Value(x, label="x"), Value(y, label="y")
    s = vx + vy
    z = s**2
    z.backward()
    assert z.data == (x + y) ** 2
    assert vx.grad == vy.grad == 2 * (x + y)
    assert s.grad == 2 * (x + y)


def test_sigmoid_as_one_expression() -> None:
    w, x = Value(0.0, label="w"), Value(1.0, label="x")
    h = 1 / (1 + (-(w * x)).exp())
    h.backward()
    assert (h.data, w.grad, x.grad) == (0.5, 0.25, 0.0)


def test_sigmoid_as_five_elementary_nodes() -> None:
    w, x = Value(0.0, label="w"), Value(1.0, label="x")
    h1 = w * x
    h2 = h1 * -1
    h3 = h2.exp()
    h4 = 1 + h3
    h5 = 1 / h4
    h5.backward()
    assert [n.op for n in (h1, h2, h3, h4, h5)] == ["*", "*", "exp", "+", "r/"]
    assert h5.data == 0.5
    # the gradient flowing along each edge, from the output back
    assert h5.grad == 1.0
    assert h4.grad == -0.25  # -1 / h4**2
    assert h3.grad == -0.25  # times 1
    assert h2.grad == -0.25  # times exp(h2) = 1
    assert h1.grad == 0.25  # times -1
    assert w.grad == 0.25  # times x = 1
    assert x.grad == 0.0  # times w = 0


def test_sigmoid_local_derivatives() -> None:
    w, x = Value(0.0), Value(1.0)
    h1 = w * x
    h2 = h1 * -1
    h3 = h2.exp()
    h4 = 1 + h3
    h5 = 1 / h4
    # one chain-rule step at a time: each node's local derivative with upstream 1
    h5.grad = 1.0
    h5._backward()
    assert h4.grad == -1 / h4.data**2 == -0.25
    for node, parent, local in [(h4, h3, 1.0), (h3, h2, h3.data), (h2, h1, -1.0)]:
        node.grad = 1.0
        parent.grad = 0.0
        node._backward()
        assert parent.grad == local


@pytest.mark.parametrize("z", [-3.0, -0.5, 0.0, 0.7, 4.0])
def test_sigmoid_shortcut(z: float) -> None:
    x = Value(z)
    y = x.sigmoid()
    y.backward()
    assert x.grad == pytest.approx(y.data * (1 - y.data), rel=1e-15)
    # the same number from the five-node expression
    x2 = Value(z)
    y2 = 1 / (1 + (-x2).exp())
    y2.backward()
    assert y2.data == pytest.approx(y.data, rel=1e-15)
    assert x2.grad == pytest.approx(x.grad, rel=1e-12)
    assert mg.sigmoid(z) == pytest.approx(y.data, rel=1e-15)


# ---- 4. A quadratic model checked against PyTorch ----------------------------------------------


def test_quadratic_model() -> None:
    x, y = Value(1.0, label="x"), Value(2.0, label="y")
    w1, w2, b = Value(1.0, label="w1"), Value(2.0, label="w2"), Value(2.0, label="b")
    y_hat = w1 * x**2 + w2 * x + b
    r = y_hat - y
    loss = r**2
    loss.backward()
    assert (y_hat.data, r.data, loss.data) == (5.0, 3.0, 9.0)
    assert (w1.grad, w2.grad, b.grad) == (6.0, 6.0, 6.0)
    # the formulas of the source: 2 x**2 r, 2 x r, 2 r
    assert w1.grad == 2 * x.data**2 * r.data
    assert w2.grad == 2 * x.data * r.data
    assert b.grad == 2 * r.data


def test_quadratic_model_with_the_functional_api() -> None:
    def loss(w1: Value, w2: Value, b: Value) -> Value:
        x, y = 1.0, 2.0
        return (w1 * x**2 + w2 * x + b - y) ** 2

    value, grads = mg.value_and_grad(loss, argnums=(0, 1, 2))(1.0, 2.0, 2.0)
    assert value == 9.0
    assert grads == (6.0, 6.0, 6.0)
