"""Benchmarks 2-4: a deep chain, memory per node, and a wide n-ary sum.

2. ``y = y * 1.0000001`` repeated 1 000 000 times: build time, backward time, and
   peak memory of build + backward (tracemalloc, in a separate untimed run); and,
   in the build row's "traced" column, what ``mg.trace`` of the built chain and the
   program's first run (values and gradients) take together, timed right after
   the same repetition's backward pass.
3. Memory per node: the tracemalloc delta of a 100 000-operation chain divided by
   100 000, for ``y = y * x`` (``x`` a leaf node), ``y = y * 1.0000001`` and
   ``y = y + x``. micrograd wraps every plain number in a node of its own, so its
   ``* 1.0000001`` chain holds two nodes per operation; both are charged to the op.
4. A wide graph: ``sum`` of 1 000 000 products ``w[i] * x[i]`` of leaf nodes, build
   (products + sum) and backward. microgradient's ``sum`` is one n-ary node;
   micrograd and scalar PyTorch add with Python's ``sum``, a chain of 10^6 ``+``.

micrograd's backward is recursive: on a deep graph it raises ``RecursionError``.
The table then shows the depth at which it starts to fail (found by bisection).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import microgradient as mg
from benchmarks.common import (
    Cell,
    Row,
    interleaved,
    log,
    median,
    micrograd_engine,
    timed,
    torch,
    traced,
)

FACTOR = 1.0000001
# micrograd and scalar PyTorch take tens of seconds per 10^6-node repetition: run them once
SLOW = {"micrograd": 1, "torch": 1}


# ---- per-library building blocks -----------------------------------------------------


class Library:
    """How one library makes a leaf, multiplies, adds many, and runs backward."""

    def __init__(
        self,
        leaf: Callable[[float], Any],
        backward: Callable[[Any], None],
        total: Callable[[list[Any]], Any] = sum,
    ) -> None:
        self.leaf, self.backward, self.total = leaf, backward, total


def libraries() -> dict[str, Library | str]:
    found: dict[str, Library | str] = {
        "microgradient": Library(mg.Value, lambda y: y.backward(), mg.sum)
    }
    if micrograd_engine is None:
        found["micrograd"] = "not installed"
    else:
        found["micrograd"] = Library(micrograd_engine.Value, lambda y: y.backward())
    if torch is None:
        found["torch"] = "not installed"
    else:
        t = torch
        found["torch"] = Library(
            lambda x: t.tensor(x, dtype=t.float64, requires_grad=True), lambda y: y.backward()
        )
    return found


def chain(lib: Library, n: int, factor: Any = FACTOR) -> tuple[Any, Any]:
    x = lib.leaf(1.0)
    y = x
    for _ in range(n):
        y = y * factor
    return x, y


def add_chain(lib: Library, n: int) -> Any:
    x = lib.leaf(1.0)
    y = lib.leaf(0.0)
    for _ in range(n):
        y = y + x
    return y


def micrograd_failing_depth() -> int:
    """The smallest chain depth at which micrograd's backward raises RecursionError."""
    assert micrograd_engine is not None
    lib = Library(micrograd_engine.Value, lambda y: y.backward())

    def fails(depth: int) -> bool:
        _, y = chain(lib, depth)
        try:
            y.backward()
        except RecursionError:
            return True
        return False

    low, high = 1, 2 * sys.getrecursionlimit()  # works at low, fails at high
    assert not fails(low) and fails(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fails(middle) else (middle, high)
    gc.collect()  # micrograd's nodes hold reference cycles (each closure captures its node)
    return high


# ---- timing a build and its backward pass, side by side ---------------------------------


def time_build_and_backward(
    build: Row,
    back: Row,
    builders: dict[str, Callable[[], Any]],
    repeats: int,
    backward_fails: str | None = None,
    traced_chain: bool = False,
) -> None:
    """Fill ``build`` and ``back`` with the median times of each library's graph.

    ``builders`` maps each library to a function building its graph (returning the
    root); the backward pass of each repetition is timed on the graph it built.
    micrograd's recursive backward cannot run on these graphs: its cell says
    ``backward_fails`` instead. With ``traced_chain``, each microgradient repetition
    also times tracing its graph and the program's first run, into ``build``'s
    "traced" cell.
    """
    back_times: dict[str, list[float]] = {name: [] for name in builders}
    trace_times: list[float] = []
    libs = {name: lib for name, lib in libraries().items() if not isinstance(lib, str)}

    def repetition(name: str) -> float:
        holder: list[Any] = []
        seconds = timed(lambda: holder.append(builders[name]()))
        if name != "micrograd":
            back_times[name].append(timed(lambda: libs[name].backward(holder[0])))
        if traced_chain and name == "microgradient":
            trace_times.append(timed(lambda: mg.trace(holder[0]).run()))
        return seconds

    timers = {name: partial(repetition, name) for name in builders}
    for name, samples in interleaved(timers, repeats, SLOW).items():
        build.cells[name] = Cell(median(samples))
        if back_times[name]:
            back.cells[name] = Cell(median(back_times[name]))
    if "micrograd" in builders and backward_fails is not None:
        back.cells["micrograd"] = Cell(text=backward_fails)
    if trace_times:
        build.cells["traced"] = Cell(median(trace_times), "trace + first run")


def _missing(rows: list[Row]) -> dict[str, Library]:
    """The installed libraries; the others' cells in ``rows`` say why they are missing."""
    found = {}
    for name, lib in libraries().items():
        if isinstance(lib, str):
            for row in rows:
                row.cells[name] = Cell(text=lib)
        else:
            found[name] = lib
    return found


# ---- 2. the deep chain -----------------------------------------------------------------


def run_chain(n: int, repeats: int) -> list[Row]:
    """W2: build and backward of the chain, their total, and the peak memory."""
    build = Row(f"W2 chain y = y * {FACTOR}, {n:,} ops: build", "s")
    back = Row(f"W2 chain, {n:,} ops: backward", "s")
    total = Row(f"W2 chain, {n:,} ops: build + backward", "s")
    peak = Row(f"W2 chain, {n:,} ops: peak memory (build + backward)", "MB")
    failing = micrograd_failing_depth() if micrograd_engine is not None else None
    libs = _missing([build, back, total, peak])
    builders = {name: partial(lambda lib: chain(lib, n)[1], lib) for name, lib in libs.items()}
    fails = f"RecursionError from depth {failing}" if failing is not None else None
    time_build_and_backward(build, back, builders, repeats, fails, traced_chain=True)
    for name in libs:
        built, backward = build.cells[name], back.cells.get(name)
        if built.value is not None and backward is not None and backward.value is not None:
            total.cells[name] = Cell(built.value + backward.value)

    for name, lib in libs.items():
        if name == "torch":
            peak.cells[name] = Cell(text="n/a: C++ allocations")
            continue

        def build_and_backward(name: str = name, lib: Library = lib) -> None:
            _, y = chain(lib, n)
            if name != "micrograd":
                lib.backward(y)

        log(f"  peak memory: {name}")
        _, _, peak_bytes = traced(build_and_backward)
        gc.collect()
        text = "build only" if name == "micrograd" else ""
        peak.cells[name] = Cell(peak_bytes, text)
    return [build, back, total, peak]


# ---- 3. memory per node ------------------------------------------------------------------


def run_memory(n: int) -> list[Row]:
    rows = [
        Row("memory per node, y = y * x", "B"),
        Row(f"memory per node, y = y * {FACTOR}", "B"),
        Row("memory per node, y = y + x", "B"),
    ]
    for name, lib in _missing(rows).items():
        if name == "torch":
            for row in rows:
                row.cells[name] = Cell(text="n/a: C++ allocations")
            continue
        x = lib.leaf(1.0)
        builders: list[Callable[[], Any]] = [
            lambda lib=lib, x=x: chain(lib, n, x),
            lambda lib=lib: chain(lib, n),
            lambda lib=lib: add_chain(lib, n),
        ]
        for row, build in zip(rows, builders):
            graph, kept, _ = traced(build)
            del graph
            gc.collect()
            row.cells[name] = Cell(kept / n)
    return rows


# ---- 4. the wide sum -------------------------------------------------------------------------


def run_wide(n: int, repeats: int) -> list[Row]:
    build = Row(f"wide: sum of {n:,} products: build", "s")
    back = Row(f"wide, {n:,} products: backward", "s")
    builders = {}
    for name, lib in _missing([build, back]).items():
        ws = [lib.leaf(0.5 + i * 1e-7) for i in range(n)]
        xs = [lib.leaf(1.0 - i * 1e-7) for i in range(n)]
        builders[name] = partial(
            lambda lib, ws, xs: lib.total([w * x for w, x in zip(ws, xs)]), lib, ws, xs
        )
    time_build_and_backward(
        build, back, builders, repeats, "RecursionError (Python's sum is a chain)"
    )
    return [build, back]
