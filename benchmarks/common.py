"""Shared machinery: optional contenders, interleaved timing, tracemalloc helpers."""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


def optional_import(name: str) -> ModuleType | None:
    """The module, or None when it is not installed (its column then says so)."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


micrograd_engine = optional_import("micrograd.engine")
micrograd_nn = optional_import("micrograd.nn")
torch = optional_import("torch")
if torch is not None:
    # these tensors are tiny: a second thread only adds synchronisation (and this
    # machine's cores are shared), so PyTorch gets one thread, as each other contender has
    torch.set_num_threads(1)

MICROGRAD_VERSION = "0.1.0"


def version_of(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


# A timed repetition: runs once and returns its own duration in seconds (so it can
# leave its setup out of the measurement).
Repetition = Callable[[], float]


def interleaved(
    contenders: dict[str, Repetition], repeats: int, at_most: dict[str, int] | None = None
) -> dict[str, list[float]]:
    """Run ``repeats`` rounds; each round runs every contender once, in a rotated order.

    Interleaving spreads the machine's noise (other processes, frequency changes)
    evenly over the contenders instead of charging a slow minute to one of them.
    Garbage left by one contender is collected before the next one starts.
    ``at_most`` caps the repetitions of very slow contenders (they run in the
    first rounds only).
    """
    names = list(contenders)
    limits = at_most or {}
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if len(times[name]) >= limits.get(name, repeats):
                continue
            gc.collect()
            times[name].append(contenders[name]())
    gc.collect()
    return times


def timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def traced(function: Callable[[], Any]) -> tuple[Any, int, int]:
    """``(result, bytes still allocated afterwards, peak bytes)`` under tracemalloc.

    Python-level allocations only: memory that a C++ library (PyTorch) allocates
    itself is invisible here.
    """
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = function()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, after - before, peak - before


@dataclass
class Cell:
    """One table entry: a number with its unit, or a text such as "not installed"."""

    value: float | None = None
    text: str = ""

    def show(self, unit: str) -> str:
        if self.value is None:
            return self.text or "—"
        return _format(self.value, unit) + (f" ({self.text})" if self.text else "")


def _format(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value * 1e3:.3g} ms" if value * 1e3 < 100 else f"{value * 1e3:.0f} ms"
    if unit == "s":  # a second or more in seconds; less (a traced epoch) in milliseconds
        return f"{value:.2f} s" if value >= 1.0 else _format(value, "ms")
    if unit == "MB":
        return f"{value / 1e6:.0f} MB"
    if unit == "B":
        return f"{value:.0f} B"
    return f"{value:.3g}"


COLUMNS = (
    "microgradient",
    "micrograd",
    "torch",
    "hand-written",
    "traced",
    "traced, batched",
    "torch, batched",
)


@dataclass
class Row:
    name: str
    unit: str  # "ms", "s", "MB" or "B"; smaller is better for all of them
    cells: dict[str, Cell] = field(default_factory=dict)

    def ratio(self, other: str) -> str:
        ours, theirs = self.cells.get("microgradient"), self.cells.get(other)
        if ours is None or theirs is None or ours.value is None or theirs.value is None:
            return "—"
        if self.unit in ("MB", "B"):  # memory: what fraction of theirs we use
            return f"{ours.value / theirs.value:.0%}"
        return f"{theirs.value / ours.value:.1f}x"


def table(rows: list[Row]) -> str:
    header = [
        "benchmark",
        *COLUMNS,
        "vs micrograd",
        "vs torch",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.cells.get(c, Cell()).show(row.unit) for c in COLUMNS]
        lines.append(
            "| " + " | ".join([row.name, *cells, row.ratio("micrograd"), row.ratio("torch")]) + " |"
        )
    return "\n".join(lines)


@dataclass
class Target:
    """A speed target of the performance issue: ``contender`` at most ``limit`` x ``baseline``."""

    name: str
    row: Row
    contender: str
    baseline: str
    limit: float
    wording: str  # the target as the issue states it

    def ratio(self) -> float | None:
        ours, theirs = self.row.cells.get(self.contender), self.row.cells.get(self.baseline)
        if ours is None or theirs is None or ours.value is None or theirs.value is None:
            return None
        return ours.value / theirs.value


def targets_table(targets: list[Target]) -> str:
    lines = [
        "| target | time ratio measured | as the issue puts it | met? |",
        "|---|---|---|---|",
    ]
    for target in targets:
        ratio = target.ratio()
        if ratio is None:
            measured, met = "not measured", "—"
        else:
            measured = f"{ratio:.3g}x ({target.contender} / {target.baseline})"
            met = "met" if ratio <= target.limit else "**missed**"
        lines.append(f"| {target.name} | {measured} | {target.wording} | {met} |")
    return "\n".join(lines)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
