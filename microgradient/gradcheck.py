"""Check backpropagated gradients against central finite differences."""

from __future__ import annotations

from collections.abc import Callable

from microgradient.engine import Operand, Value, enable_grad, no_grad
from microgradient.errors import GradcheckError
from microgradient.functional import gradients


def _evaluate(f: Callable[..., Operand], args: list[float]) -> float:
    with no_grad():
        out = f(*(Value(a) for a in args))
    return out.data if isinstance(out, Value) else float(out)


def numerical_grad(f: Callable[..., Operand], *args: float, eps: float = 1e-6) -> list[float]:
    """d f / d arg for every argument, by central differences (f(x+eps) - f(x-eps)) / 2eps.

    ``f`` receives ``Value``s, as it would for backpropagation.

    >>> [round(g, 6) for g in numerical_grad(lambda x, y: x * y, 3.0, 4.0)]
    [4.0, 3.0]
    """
    point = [float(a) for a in args]
    slopes = []
    for i, a in enumerate(point):
        above = [*point[:i], a + eps, *point[i + 1 :]]
        below = [*point[:i], a - eps, *point[i + 1 :]]
        slopes.append((_evaluate(f, above) - _evaluate(f, below)) / (2.0 * eps))
    return slopes


def gradcheck(
    f: Callable[..., Operand],
    *args: float,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Return True if backprop and finite differences agree for every argument.

    They agree when ``|analytic - numeric| <= atol + rtol * |numeric|``.
    Otherwise raise :class:`GradcheckError` with a table of both for every input.

    >>> gradcheck(lambda x: x.tanh() * x, 0.5)
    True
    """
    analytic, numeric = _both_gradients(f, args, eps)
    failing = [
        i
        for i, (a, n) in enumerate(zip(analytic, numeric))
        if not abs(a - n) <= atol + rtol * abs(n)
    ]
    if failing:
        raise GradcheckError(_table(args, analytic, numeric, failing, atol, rtol))
    return True


def largest_discrepancy(f: Callable[..., Operand], *args: float, eps: float = 1e-6) -> float:
    """max over arguments of |backprop gradient - central-difference gradient|.

    >>> largest_discrepancy(lambda x: x * x, 3.0) < 1e-6
    True
    """
    analytic, numeric = _both_gradients(f, args, eps)
    return max((abs(a - n) for a, n in zip(analytic, numeric)), default=0.0)


def _both_gradients(
    f: Callable[..., Operand], args: tuple[float, ...], eps: float
) -> tuple[list[float], list[float]]:
    inputs = [Value(a) for a in args]
    with enable_grad():  # inside no_grad() too: a check that saw no graph would compare zeros
        analytic = [float(g) for g in gradients(f(*inputs), inputs)]
    return analytic, numerical_grad(f, *args, eps=eps)


def _table(
    args: tuple[float, ...],
    analytic: list[float],
    numeric: list[float],
    failing: list[int],
    atol: float,
    rtol: float,
) -> str:
    lines = [
        f"gradcheck: backprop and finite differences disagree for {len(failing)} of "
        f"{len(args)} input(s) (atol={atol}, rtol={rtol})",
        f"{'input':>6} {'value':>12} {'analytic':>14} {'numeric':>14} {'difference':>12}",
    ]
    for i, (x, a, n) in enumerate(zip(args, analytic, numeric)):
        mark = "  <- mismatch" if i in failing else ""
        lines.append(
            f"{'x' + str(i):>6} {x:>12.6g} {a:>14.8g} {n:>14.8g} {abs(a - n):>12.3g}{mark}"
        )
    return "\n".join(lines)
