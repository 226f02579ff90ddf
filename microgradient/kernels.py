"""Replaying a large program without compiling it: loops over runs of like instructions.

Straight-line code costs about 30 microseconds a line to compile, so a program
with a million instructions would take longer to compile than to build. Past
:data:`~microgradient.program.STRAIGHT_LINE_LIMIT`, a program is cut into *runs*
of consecutive instructions of the same kind (a deep chain is one run), and
each kind has a small loop, a *kernel*, generated once per process from the
primitive table. Values and gradients live in two lists indexed by slot.

The same kernels, one instruction at a time, find the instruction behind a
float error of the fast path and raise the eager engine's exception for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from itertools import groupby, islice
from typing import TYPE_CHECKING, Any

from microgradient.engine import exact_sum
from microgradient.errors import MicrogradientError
from microgradient.primitives import (
    operation_forward,
    operation_slopes,
    primitive,
    scalar_expression,
    scalar_names,
)

if TYPE_CHECKING:
    from microgradient.program import Columns, Program

Kernel = Callable[..., None]
Replay = Callable[[list[float], float], tuple[float, tuple[float, ...]]]
_KERNEL_NAMES = {"a": "a", "b": "b", "c": "c", "out": "out"}


def compile_kernels(program: Program) -> Replay:
    """A replay function for ``program`` that runs its instructions run by run."""
    runs = list(_runs(program, split=False))

    def replay(numbers: list[float], gradient: float) -> tuple[float, tuple[float, ...]]:
        values, grads = _execute(program, runs, numbers, gradient)
        return values[program.output], tuple(grads[s] for s in program.input_slots)

    return replay


def locate_error(
    program: Program, numbers: list[float], gradient: float, error: Exception
) -> Exception:
    """Replay one instruction at a time to name the operation behind ``error``."""
    try:
        _execute(program, list(_runs(program, split=True)), numbers, gradient, locate=True)
    except MicrogradientError as located:
        return located
    return error


class _Run:
    """Consecutive instructions of one kind, as the columns its kernels loop over."""

    def __init__(
        self, key: tuple[Any, ...], columns: Columns, start: int, stop: int, offset: int
    ) -> None:
        self.key = key
        self.start = start
        self.slots = columns.slots[start:stop]
        self.constants = columns.constants[start:stop]
        # only dot kernels read coefficients; a dot's None means none
        coefficients = columns.coefficients[start:stop] if key[0] == "dot" else []
        self.coefficients = [c or () for c in coefficients]
        # every instruction of a run has ``arity`` operands, one after another from
        # ``offset``: its first and last operands are two strided slices
        arity, end = key[1], offset + key[1] * (stop - start)
        operands = columns.operands
        self.first = operands[offset:end:arity]
        self.second = operands[offset + arity - 1 : end : arity]
        # primitives' kernels read first and second; sum, dot and Operations read args
        self.args: list[tuple[int, ...]] = []
        if primitive(*key) is None:
            each = iter(operands[offset:end])
            self.args = [tuple(islice(each, arity)) for _ in range(stop - start)]


def _runs(program: Program, split: bool) -> Iterator[_Run]:
    if not len(program):
        return
    columns = program.columns
    offset = 0
    if split:
        for i, kind in enumerate(zip(columns.ops, columns.arities)):
            yield _Run(kind, columns, i, i + 1, offset)
            offset += kind[1]
        return
    # runs of one operation, then of one arity within them: no tuple per instruction
    start = 0
    for op, same_op in groupby(columns.ops):
        stop = start + len(list(same_op))
        for arity, same_arity in groupby(columns.arities[start:stop]):
            end = start + len(list(same_arity))
            yield _Run((op, arity), columns, start, end, offset)
            offset += arity * (end - start)
            start = end


def _execute(
    program: Program,
    runs: list[_Run],
    numbers: list[float],
    gradient: float,
    locate: bool = False,
) -> tuple[list[float], list[float]]:
    size = program.output + 1
    values = [0.0] * size
    for slot, x in zip(program.input_slots, numbers):
        values[slot] = x

    def fail(slot: int, check: int, operands: tuple[float, ...]) -> None:
        instruction = program.instructions[program.columns.slots.index(slot)]
        raise program.domain_error(instruction, check, operands, None)

    def overflow(run: Any, backward: bool) -> MicrogradientError:
        instruction = program.instructions[run.start]
        operands = [values[a] for a in instruction.args]
        return program.overflow_error(instruction, operands, None, backward=backward)

    for run in runs:
        forward = _forward_kernel(run.key, program)
        try:
            forward(values, run, fail)
        except MicrogradientError:
            raise
        except ArithmeticError:
            if not locate:
                raise
            raise overflow(run, backward=False) from None
    grads = [0.0] * size
    grads[program.output] = gradient
    for run in reversed(runs):
        backward = _backward_kernel(run.key, program)
        try:
            backward(values, grads, run)
        except MicrogradientError:
            raise
        except ArithmeticError:
            if not locate:
                raise
            raise overflow(run, backward=True) from None
    return values, grads


# ---- kernels --------------------------------------------------------------------------


def _forward_kernel(key: tuple[Any, ...], program: Program) -> Callable[..., None]:
    operation = program.operations.get(key[0])
    if operation is not None:
        return _operation_forward(operation)
    return _compiled_forward(("sum",) if key[0] == "sum" else ("dot",) if key[0] == "dot" else key)


def _backward_kernel(key: tuple[Any, ...], program: Program) -> Callable[..., None]:
    operation = program.operations.get(key[0])
    if operation is not None:
        return _operation_backward(operation)
    return _compiled_backward(("sum",) if key[0] == "sum" else ("dot",) if key[0] == "dot" else key)


@cache
def _compiled_forward(key: tuple[Any, ...]) -> Callable[..., None]:
    if key == ("sum",):
        return _sum_forward
    if key == ("dot",):
        return _dot_forward
    entry = primitive(key[0], key[1])
    assert entry is not None
    operands = "a, b" if entry.arity == 2 else "a,"
    lines = [
        "def forward(values, run, _fail):",
        "    for s, i, j, c in zip(run.slots, run.first, run.second, run.constants):",
        "        a = values[i]",
    ]
    if entry.arity == 2:
        lines.append("        b = values[j]")
    for n, check in enumerate(entry.checks):
        condition = scalar_expression(check.condition, _KERNEL_NAMES, None)
        lines.append(f"        if {condition}: _fail(s, {n}, ({operands}))")
    lines.append(f"        values[s] = {scalar_expression(entry.forward, _KERNEL_NAMES, None)}")
    return _compile(lines, "forward")


@cache
def _compiled_backward(key: tuple[Any, ...]) -> Callable[..., None]:
    if key == ("sum",):
        return _sum_backward
    if key == ("dot",):
        return _dot_backward
    entry = primitive(key[0], key[1])
    assert entry is not None
    lines = [
        "def backward(values, grads, run):",
        "    for s, i, j, c in zip(reversed(run.slots), reversed(run.first),",
        "                          reversed(run.second), reversed(run.constants)):",
        "        up = grads[s]",
        "        if up != 0.0:",
        "            finite = up - up == 0.0",
        "            a = values[i]",
        *(["            b = values[j]"] if entry.arity == 2 else []),
        "            out = values[s]",
    ]
    targets = ("i", "j")
    for target, derivative in zip(targets, entry.derivatives):
        local = scalar_expression(derivative, _KERNEL_NAMES, None)
        lines.append(f"            d = {local}")
        lines.append(f"            if finite or d != 0.0: grads[{target}] += up * d")
    return _compile(lines, "backward")


def _compile(lines: list[str], name: str) -> Callable[..., None]:
    namespace = scalar_names()
    exec(compile("\n".join(lines) + "\n", f"<microgradient kernel {name}>", "exec"), namespace)
    kernel: Callable[..., None] = namespace[name]
    return kernel


def _sum_forward(values: list[float], run: _Run, _fail: Any) -> None:
    for s, args, c in zip(run.slots, run.args, run.constants):
        terms = [values[k] for k in args]
        if c is not None:
            terms.append(c)
        values[s] = exact_sum(terms)


# The backward kernels follow the engine's chain rule exactly: a zero gradient is not
# propagated, and an infinite (or nan) one not through a zero slope (0 * inf = 0).


def _sum_backward(values: list[float], grads: list[float], run: _Run) -> None:
    for s, args in zip(reversed(run.slots), reversed(run.args)):
        up = grads[s]
        if up != 0.0:
            for k in args:
                grads[k] += up


def _dot_forward(values: list[float], run: _Run, _fail: Any) -> None:
    for s, args, coefficients, c in zip(run.slots, run.args, run.coefficients, run.constants):
        k = (len(args) - len(coefficients)) // 2
        terms = [values[args[i]] * values[args[k + i]] for i in range(k)]
        terms += [w * values[p] for w, p in zip(coefficients, args[2 * k :])]
        if c is not None:
            terms.append(c)
        values[s] = exact_sum(terms)


def _dot_backward(values: list[float], grads: list[float], run: _Run) -> None:
    for s, args, coefficients in zip(
        reversed(run.slots), reversed(run.args), reversed(run.coefficients)
    ):
        up = grads[s]
        if up == 0.0:
            continue
        finite = up - up == 0.0
        k = (len(args) - len(coefficients)) // 2
        partners = [*args[k : 2 * k], *args[:k]]
        slopes = [values[p] for p in partners] + list(coefficients)
        for target, d in zip(args, slopes):
            if finite or d != 0.0:
                grads[target] += up * d


def _operation_forward(operation: Any) -> Callable[..., None]:
    forward = operation_forward(operation)

    def kernel(values: list[float], run: _Run, _fail: Any) -> None:
        for s, args in zip(run.slots, run.args):
            values[s] = forward(*[values[k] for k in args])

    return kernel


def _operation_backward(operation: Any) -> Callable[..., None]:
    slopes = operation_slopes(operation)

    def kernel(values: list[float], grads: list[float], run: _Run) -> None:
        for s, args in zip(reversed(run.slots), reversed(run.args)):
            up = grads[s]
            if up != 0.0:
                finite = up - up == 0.0
                for k, d in zip(args, slopes(*[values[k] for k in args], values[s])):
                    if finite or d != 0.0:
                        grads[k] += up * d

    return kernel
