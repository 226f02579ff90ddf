"""Finite-difference helpers shared by the derivative tests (not a test module).

The five-point stencil (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h has an
error of order h**4, so with h around 1e-4 it agrees with exact derivatives to
roughly ten significant digits on smooth functions: much tighter than the
usual two-point central difference, which lets the tests use tight tolerances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

STEP = 1e-4


def step_for(x: float) -> float:
    """A step proportional to |x| (but at least STEP), so large inputs are not swamped."""
    return STEP * max(1.0, abs(x))


def stencil(point: Sequence[float], i: int) -> list[list[float]]:
    """The four points of the five-point stencil along coordinate ``i``."""
    h = step_for(point[i])
    shifted = []
    for k in (2.0, 1.0, -1.0, -2.0):
        p = list(point)
        p[i] = point[i] + k * h
        shifted.append(p)
    return shifted


def partial(f: Callable[..., float], point: Sequence[float], i: int) -> float:
    """d f / d point[i] by the five-point stencil; ``f`` takes the point's coordinates."""
    h = step_for(point[i])
    f2, f1, m1, m2 = (f(*p) for p in stencil(point, i))
    return (-f2 + 8.0 * f1 - 8.0 * m1 + m2) / (12.0 * h)


def partials(f: Callable[..., float], point: Sequence[float]) -> list[float]:
    return [partial(f, point, i) for i in range(len(point))]


def agree(analytic: float, numeric: float, scale: float = 1.0, rel: float = 1e-6) -> bool:
    """|analytic - numeric| <= rel * (|numeric| + scale).

    ``scale`` is the size of the quantities the difference quotient subtracts
    (for instance the function's value times 1/h): it bounds the rounding error.
    """
    return math.isfinite(analytic) and abs(analytic - numeric) <= rel * (abs(numeric) + scale)
