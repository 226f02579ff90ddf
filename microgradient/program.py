"""Tracing: a recorded graph frozen into a flat program that can be read and replayed.

:func:`trace` walks a graph once and returns a :class:`Program`: one
:class:`Instruction` per operation, in topological order, whose operands are
*slots* (positions in :func:`~microgradient.topological_order`, the root
last). The program keeps the leaf ``Value``s as its inputs and nothing else of
the graph.

A program is replayed without building any ``Value``:

* one sample at a time by straight-line Python generated from the primitive
  table (:mod:`microgradient.primitives`) and compiled once; a program too large
  to compile quickly is run by loops over runs of like instructions instead;
* a whole batch at once when a leaf is fed a 1-D array (:mod:`microgradient.batch`).

>>> import microgradient as mg
>>> w, x = mg.Value(2.0, label="w"), mg.Value(3.0, label="x")
>>> program = mg.trace((w * x).tanh())
>>> print(program)
program(w, x):
  h2 = w * x
  h3 = tanh(h2)
  return h3
>>> result = program.run({x: 0.0})
>>> result.value, result.grads[w], result.grads[x]
(0.0, 0.0, 2.0)
"""

from __future__ import annotations

import heapq
import keyword
import unicodedata
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from itertools import chain, compress, islice
from operator import attrgetter, not_
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from microgradient.engine import (
    Value,
    exact_sum,
    find_operation,
    first_hand_made,
    topological_order,
)
from microgradient.errors import FloatOverflowError, MicrogradientError, TracingError
from microgradient.primitives import (
    BUILT_IN_OPS,
    N_ARY,
    PRIMITIVES,
    Primitive,
    number_literal,
    operation_forward,
    operation_slopes,
    primitive,
    scalar_chain_term,
    scalar_expression,
    scalar_names,
)

if TYPE_CHECKING:
    from microgradient.batch import BatchFeed

__all__ = ["Instruction", "Parameters", "Program", "Result", "trace"]

# what Program.run is fed: inputs (or their labels), or tuples of them, to numbers or arrays
Feed = Mapping[Any, Any]
# forward_backward(input values, output gradient) -> (output value, input gradients)
Replay = Callable[[list[float], float], tuple[float, tuple[float, ...]]]

# Past this many operands a program is run by loop kernels rather than compiled as one
# straight-line function: compiling costs about 30 microseconds a line and the line count
# of the backward pass grows with the operand count.
STRAIGHT_LINE_LIMIT = 100_000
# A program up to this many operands is compiled on its first run (in well under 0.1 s).
# A larger one runs first on the loop kernels, which need no compiling (a chain of 10^5
# operations compiles in seconds, its kernels run in 20 ms), and is compiled when it is run
# again: a program run twice is likely run many times (a training loop), where the
# straight-line code is several times faster than the kernels.
COMPILE_ON_FIRST_RUN = 2_000


class Instruction(NamedTuple):
    """One operation of a program: ``slot = op(args...)``.

    ``args`` are the operand slots in the node's ``parents`` order, repeats
    kept; ``constant`` and ``coefficients`` are the node's attributes of the
    same names (see :class:`~microgradient.Value`).
    """

    slot: int
    op: str
    args: tuple[int, ...]
    constant: float | None
    coefficients: tuple[float, ...] | None


_new_instruction = partial(tuple.__new__, Instruction)
_read_data = attrgetter("data")


def trace(root: Value) -> Program:
    """Freeze the graph recorded under ``root`` into a :class:`Program`.

    Every node must be a leaf, a built-in operation or a registered
    :class:`~microgradient.Operation`; anything else (say a micrograd-style node
    with its own ``_backward`` closure) raises :class:`TracingError`.

    >>> import microgradient as mg
    >>> x = mg.Value(2.0, label="x")
    >>> program = mg.trace(x * x + 1)
    >>> program.input_slots, [i.op for i in program.instructions], program.output
    ((0,), ['*', '+'], 2)
    """
    if not isinstance(root, Value):
        raise TracingError(f"trace: expected a Value, got {type(root).__name__} {root!r}")
    order = topological_order(root)
    # column by column, with C-level maps: tracing a million-node chain takes well under
    # the time it took to build it
    ops = list(map(attrgetter("op"), order))
    parents = list(map(attrgetter("parents"), order))
    # a node made micrograd's way (a _backward closure) may bear any name, even a
    # built-in one: its rule, not its name, tells it apart
    hand_made = first_hand_made(order)
    if hand_made is not None:
        _refuse(hand_made)
    operations: dict[str, Any] = {}
    for op, arity in set(zip(ops, map(len, parents))):
        if (op, arity) not in PRIMITIVES and op not in N_ARY:
            node = order[next(i for i, o in enumerate(ops) if o == op)]
            _check_operation(node, arity, operations)
    slot_of = dict(zip(order, range(len(order))))
    operations_at = list(compress(range(len(order)), parents))
    operand_lists = list(compress(parents, parents))
    columns = Columns(
        operations_at,
        list(compress(ops, parents)),
        # one flat list of ints, not a tuple per instruction: ints are no work for the
        # cyclic collector, a million new tuples are
        list(map(slot_of.__getitem__, chain.from_iterable(operand_lists))),
        list(map(len, operand_lists)),
        list(compress(map(attrgetter("constant"), order), parents)),
        list(compress(map(attrgetter("coefficients"), order), parents)),
    )
    input_slots = tuple(compress(range(len(order)), map(not_, parents)))
    return Program(
        tuple(order[slot] for slot in input_slots),
        input_slots,
        columns,
        tuple(map(attrgetter("label"), order)),
        len(order) - 1,
        operations,
    )


@dataclass
class Columns:
    """A program's instructions field by field: one list per field of :class:`Instruction`.

    Tracing a million-node graph makes these lists rather than a million
    ``Instruction`` objects; loop kernels read them directly. The operands of
    every instruction follow each other in ``operands`` (``arities[i]`` of them for
    instruction ``i``); :attr:`args` cuts them into one tuple per instruction.
    """

    slots: list[int]
    ops: list[str]
    operands: list[int]
    arities: list[int]
    constants: list[float | None]
    coefficients: list[tuple[float, ...] | None]

    @cached_property
    def args(self) -> list[tuple[int, ...]]:
        """The operands of each instruction, as a tuple."""
        operands = iter(self.operands)
        return [tuple(islice(operands, n)) for n in self.arities]


def _check_operation(node: Value, arity: int, operations: dict[str, Any]) -> None:
    """Accept a registered Operation (remembered in ``operations``); refuse anything else."""
    op = node.op
    if arity == 0:
        if op:
            _refuse(node)
        return
    if op in BUILT_IN_OPS:
        raise TracingError(f"trace: an {op!r} node has {arity} operands, which {op!r} never has")
    operation = find_operation(op)
    if operation is None:
        _refuse(node)
    operations[op] = operation


def _refuse(node: Value) -> NoReturn:
    what = f"operation {node.op!r}" if node.op else "a node with parents but no operation"
    raise TracingError(
        f"trace: {what} (data {node.data!r}) was made micrograd's way or is not a "
        "registered mg.Operation: its derivative lives in a _backward closure, which a "
        "program cannot replay; define the operation with @mg.operation to trace it"
    )


@dataclass(frozen=True)
class Result:
    """What :meth:`Program.run` returns: the output and the gradient of every input.

    For a batch, ``value`` is an array of the per-sample outputs, a batched
    input's gradient is an array (per sample), and a shared input's gradient is
    a float: the sum over the batch.
    """

    value: Any
    grads: Mapping[Value, Any]

    def accumulate_grads(self) -> None:
        """Add the gradients into the inputs' ``.grad``, as ``backward()`` would.

        Call ``zero_grad()`` first to start afresh, exactly as before a
        ``backward()``; the optimisers then work unchanged. A batched input's
        per-sample gradients are summed into its (scalar) ``.grad``.

        >>> import microgradient as mg
        >>> x = mg.Value(3.0)
        >>> mg.trace(x * x).run().accumulate_grads()
        >>> x.grad
        6.0
        """
        for leaf, grad in self.grads.items():
            total = grad if isinstance(grad, float) else float(_sum_all(grad))
            leaf.grad = leaf.grad + total


def _sum_all(array: Any) -> Any:
    from microgradient.batch import namespace_of

    return namespace_of(array).sum(array)


class Parameters:
    """Parameters kept in one flat float64 array while a traced program trains.

    The ``Value``s stay the model's parameters (for saving, drawing, eager use);
    this array stands in for them between :meth:`write_back` calls, so a training
    step is one program run and one array update instead of a loop over Values.

    >>> import microgradient as mg
    >>> w = mg.Value(1.0, label="w")
    >>> program = mg.trace((w * 3.0 - 2.0) ** 2)
    >>> params = mg.Parameters([w])
    >>> for _ in range(50):
    ...     _ = program.run(parameters=params)
    ...     params.data -= 0.05 * params.grad
    >>> params.write_back()
    >>> round(w.data, 6)
    0.666667
    """

    def __init__(self, values: Sequence[Value], xp: Any = None) -> None:
        import numpy

        self.values = list(values)
        self.xp = numpy if xp is None else xp
        self.data: Any = self.xp.asarray([v.data for v in self.values], dtype=self.xp.float64)
        self.grad: Any = self.xp.zeros_like(self.data)
        # per program: where these parameters are among its inputs, and where the other inputs are
        self._positions: weakref.WeakKeyDictionary[Program, tuple[list[int], list[int]]] = (
            weakref.WeakKeyDictionary()
        )

    def write_back(self) -> None:
        """Copy :attr:`data` into the Values' ``.data`` (and :attr:`grad` into ``.grad``)."""
        for value, x, g in zip(self.values, self.data.tolist(), self.grad.tolist()):
            value.data = x
            value.grad = g

    def read(self) -> None:
        """Reload :attr:`data` from the Values (after changing them directly)."""
        self.data = self.xp.asarray([v.data for v in self.values], dtype=self.xp.float64)

    def positions_in(self, program: Program) -> list[int]:
        """Where these parameters are among ``program.inputs``."""
        return self._placement(program)[0]

    def other_positions_in(self, program: Program) -> list[int]:
        """Where the inputs of ``program`` that are not these parameters are."""
        return self._placement(program)[1]

    def _placement(self, program: Program) -> tuple[list[int], list[int]]:
        placement = self._positions.get(program)
        if placement is None:
            positions = [program._position(v) for v in self.values]
            taken = set(positions)
            others = [p for p in range(len(program.inputs)) if p not in taken]
            placement = self._positions[program] = (positions, others)
        return placement


class Program:
    """A traced graph: instructions in topological order over numbered slots.

    Build one with :func:`trace`. Attributes: ``inputs`` (the leaf Values),
    ``input_slots``, ``instructions``, ``names`` (one Python identifier per
    slot), ``labels`` (per slot, ``""`` if none), ``output`` (the root's slot) and
    ``operations`` (the registered Operations it uses, by name). ``str(program)``
    is a short listing and :attr:`source` the generated Python of the forward and
    backward passes.

    >>> import microgradient as mg
    >>> a, b = mg.Value(1.0, label="a"), mg.Value(2.0, label="b")
    >>> program = mg.trace(a / b)
    >>> program.names, program.output
    (('a', 'b', 'h2'), 2)
    >>> program.instructions[0]
    Instruction(slot=2, op='/', args=(0, 1), constant=None, coefficients=None)
    """

    def __init__(
        self,
        inputs: tuple[Value, ...],
        input_slots: tuple[int, ...],
        columns: Columns,
        labels: tuple[str, ...],
        output: int,
        operations: dict[str, Any],
    ) -> None:
        self.inputs = inputs
        self.input_slots = input_slots
        self.columns = columns
        self.labels = labels
        self.output = output
        self.operations = operations
        self.size = len(columns.operands)
        self._kernel_runs = 0  # runs made on the loop kernels (see COMPILE_ON_FIRST_RUN)
        self._input_index = {leaf: i for i, leaf in enumerate(inputs)}
        self._batch_plans: dict[Any, Any] = {}
        # the input positions of each tuple of inputs fed a block, looked up once
        self._block_positions: dict[tuple[Value | str, ...], tuple[int, ...]] = {}
        self._batch_layouts: dict[tuple[Any, ...], Any] = {}  # see batch.BatchFeed

    @cached_property
    def names(self) -> tuple[str, ...]:
        """A distinct Python identifier per slot, from its label where it has a usable one."""
        return _identifiers(self.labels, frozenset(self.input_slots))

    @cached_property
    def instructions(self) -> tuple[Instruction, ...]:
        """The instructions in topological order (made from :attr:`columns` when first read)."""
        columns = self.columns
        fields = (columns.slots, columns.ops, columns.args, columns.constants)
        return tuple(map(_new_instruction, zip(*fields, columns.coefficients)))

    def __len__(self) -> int:
        return len(self.columns.slots)

    def __repr__(self) -> str:
        return (
            f"<Program: {len(self.inputs)} inputs, {len(self)} instructions, "
            f"output {self.names[self.output]}>"
        )

    # ---- reading -------------------------------------------------------------------

    def __str__(self) -> str:
        return "\n".join(self._listing())

    def _listing(self) -> Iterator[str]:
        names = self.names
        yield f"program({', '.join(names[s] for s in self.input_slots)}):"
        for instruction in self.instructions:
            yield f"  {names[instruction.slot]} = {self.notation(instruction)}"
        yield f"  return {names[self.output]}"

    def notation(self, instruction: Instruction) -> str:
        """The right-hand side of ``instruction`` as the listing writes it (``w * x``)."""
        names = [self.names[a] for a in instruction.args]
        op, c = instruction.op, instruction.constant
        if op == "sum":
            terms = names + ([repr(c)] if c is not None else [])
            return f"sum({', '.join(terms)})"
        if op == "dot":
            k, scaled = _dot_split(instruction)
            products = [f"{names[i]}*{names[k + i]}" for i in range(k)]
            products += [f"{w!r}*{names[2 * k + j]}" for j, w in enumerate(scaled)]
            if c is not None:
                products.append(repr(c))
            return " + ".join(products) if products else "0.0"
        table_entry = primitive(op, len(names))
        if table_entry is None:
            return f"{op}({', '.join(names)})"
        fields = dict(zip(("a", "b"), names))
        return table_entry.notation.format(c=repr(c) if c is not None else "", **fields)

    @cached_property
    def source(self) -> str:
        """The generated Python of the forward and backward passes, one line per step.

        Forward lines compute each slot (``h2 = w * x``); backward lines apply the
        chain rule, one local derivative at a time (``grad_w = grad_h2 * x``).
        """
        return _straight_line_source(self)

    # ---- running -------------------------------------------------------------------

    def run(
        self,
        feed: Feed | None = None,
        *,
        gradient: Any = 1.0,
        parameters: Parameters | None = None,
    ) -> Result:
        """Evaluate the program and its gradients; no ``Value`` is changed.

        ``feed`` maps inputs (leaf Values or their labels) to numbers or to 1-D
        arrays, and may map a tuple of inputs to a row of numbers or to a matrix with
        one row per sample (``{tuple(pixels): images}``, the quick way to feed a data
        set: the matrix is used as one block); a later entry for an input replaces an
        earlier one; inputs not in ``feed`` use their current ``.data``. If any input
        is given an array of length B, all B samples are evaluated at once.
        ``gradient`` seeds the backward pass, as in ``Value.backward`` (for a
        batch it may be a float, such as ``1 / B`` for a mean, or a length-B array).
        With ``parameters`` (a :class:`Parameters`), those inputs are read from
        ``parameters.data`` and their gradients go to ``parameters.grad`` instead
        of ``result.grads``.

        >>> import microgradient as mg
        >>> x = mg.Value(1.0, label="x")
        >>> program = mg.trace(x * x)
        >>> program.run({"x": 3.0}).value, x.data
        (9.0, 1.0)
        """
        numbers, arrays = self._resolve_feed(feed, parameters)
        if arrays or not isinstance(gradient, (int, float)):
            from microgradient.batch import run_batch

            return run_batch(self, numbers, arrays, gradient, parameters)
        if parameters is None:
            value, grads = self._run_one(numbers, float(gradient))
            return Result(value, dict(zip(self.inputs, grads)))
        positions, others = parameters._placement(self)
        for position, x in zip(positions, parameters.data.tolist()):
            numbers[position] = x
        value, grads = self._run_one(numbers, float(gradient))
        xp = parameters.xp
        parameters.grad = xp.asarray(list(map(grads.__getitem__, positions)), dtype=xp.float64)
        inputs = self.inputs
        return Result(value, {inputs[position]: grads[position] for position in others})

    def _resolve_feed(
        self, feed: Feed | None, parameters: Parameters | None
    ) -> tuple[list[float], BatchFeed | None]:
        """Input values in input order, and the arrays fed (columns and blocks; None if no feed).

        The entries of ``parameters`` are left at 0.0: every caller reads those
        inputs from ``parameters.data``, and a model has many more parameters than
        other inputs.
        """
        if parameters is None:
            numbers = list(map(_read_data, self.inputs))
        else:
            numbers = [0.0] * len(self.inputs)
            inputs = self.inputs
            for position in parameters.other_positions_in(self):
                numbers[position] = inputs[position].data
        if not feed:
            return numbers, None
        from microgradient.batch import BatchFeed, as_batch_column

        arrays = BatchFeed()
        for key, given in feed.items():
            if isinstance(key, tuple):
                self._resolve_block(key, given, numbers, arrays)
                continue
            position = self._position(key)
            if isinstance(given, (int, float)) and not isinstance(given, bool):
                numbers[position] = float(given)
                arrays.drop(position)
            elif isinstance(given, Value):
                numbers[position] = given.data
                arrays.drop(position)
            else:
                column = as_batch_column(given, self, position)
                if column is None:
                    numbers[position] = float(given)
                    arrays.drop(position)
                else:
                    arrays.add_column(position, column)
        return numbers, arrays

    def _resolve_block(
        self,
        keys: tuple[Value | str, ...],
        given: Any,
        numbers: list[float],
        arrays: BatchFeed,
    ) -> None:
        """A tuple of inputs fed one row of numbers, or a matrix with a row per sample.

        A matrix stays one block on its way to the batched run: its columns are
        not split apart only to be joined again.
        """
        from microgradient.batch import as_block

        positions = self._block_positions.get(keys)
        if positions is None:
            positions = tuple(self._position(key) for key in keys)
            self._block_positions[keys] = positions
        block = as_block(given, len(positions))
        if block.ndim == 1:
            for position, x in zip(positions, block.tolist()):
                numbers[position] = float(x)
                arrays.drop(position)
        else:
            arrays.add_block(positions, block)

    def _position(self, key: Value | str) -> int:
        if isinstance(key, Value):
            position = self._input_index.get(key)
            if position is None:
                raise TracingError(
                    f"run: {_describe_value(key)} is not an input of this program "
                    "(only leaves of the traced graph can be fed)"
                )
            return position
        if isinstance(key, str):
            matches = [i for i, leaf in enumerate(self.inputs) if leaf.label == key]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise TracingError(
                    f"run: {len(matches)} inputs are labelled {key!r}; feed the Values themselves"
                )
            known = sorted({leaf.label for leaf in self.inputs if leaf.label})
            raise TracingError(
                f"run: no input is labelled {key!r} (inputs: {', '.join(known) or 'none labelled'})"
                "; a number that entered the graph as a plain float is a constant of the program,"
                " not an input: make it a Value to feed it"
            )
        raise TracingError(f"run: feed keys must be Values or labels, got {key!r}")

    def _describe_input(self, position: int) -> str:
        slot = self.input_slots[position]
        return f"input {self.names[slot]}"

    @cached_property
    def _straight_line(self) -> Replay:
        return _compile_straight_line(self)

    @property
    def _replay(self) -> Replay:
        """What runs the program now: straight-line code, or loop kernels (see above)."""
        if self.size <= COMPILE_ON_FIRST_RUN or (
            self.size <= STRAIGHT_LINE_LIMIT and self._kernel_runs
        ):
            return self._straight_line
        self._kernel_runs += 1
        return self._exact_replay

    @cached_property
    def _exact_replay(self) -> Replay:
        """Loop kernels: slower than straight-line code, and the engine's chain rule exactly."""
        from microgradient.kernels import compile_kernels

        return compile_kernels(self)

    def _run_one(self, numbers: list[float], gradient: float) -> tuple[float, tuple[float, ...]]:
        """The output and the inputs' gradients (in input order) for one sample."""
        replay = self._replay
        try:
            value, grads = replay(numbers, gradient)
        except MicrogradientError:
            raise
        except (ArithmeticError, ValueError) as error:
            raise self._diagnose(numbers, gradient, error) from None
        total = sum(grads)
        if total - total != 0.0 and replay is not self._exact_replay:
            # an infinite or nan gradient: the straight-line code may have multiplied zero by
            # an infinity, which the engine's chain rule skips (0 * inf = 0)
            value, grads = self._exact_replay(numbers, gradient)
        return value, grads

    def _diagnose(self, numbers: list[float], gradient: float, error: Exception) -> Exception:
        """Find the instruction behind a float error of the fast path and describe it."""
        from microgradient.kernels import locate_error

        return locate_error(self, numbers, gradient, error)

    # ---- errors shared by every backend --------------------------------------------

    def domain_error(
        self, instruction: Instruction, check: int, operands: Sequence[float], sample: int | None
    ) -> MicrogradientError:
        """The exception the eager engine raises for ``instruction`` at these operands."""
        entry = primitive(instruction.op, len(instruction.args))
        assert entry is not None
        failed = entry.checks[check]
        where = self._describe_call(instruction, entry, operands)
        return failed.error(f"{_op_name(entry.op)}: {where}: {failed.reason}{_in_sample(sample)}")

    def overflow_error(
        self,
        instruction: Instruction,
        operands: Sequence[float],
        sample: int | None,
        backward: bool = False,
    ) -> FloatOverflowError:
        """The exception for a result (or, ``backward``, a derivative) too large for a float."""
        entry = primitive(instruction.op, len(instruction.args))
        where = (
            self._describe_call(instruction, entry, operands)
            if entry is not None
            else f"{instruction.op}({', '.join(map(repr, operands))})"
        )
        if backward:
            return FloatOverflowError(
                f"backward: the derivative of {instruction.op!r} at {where} is not a finite "
                f"float{_in_sample(sample)}"
            )
        return FloatOverflowError(
            f"{_op_name(instruction.op)}: {where} is too large for a float{_in_sample(sample)}"
        )

    def _describe_call(
        self, instruction: Instruction, entry: Primitive | None, operands: Sequence[float]
    ) -> str:
        described = []
        for slot, x in zip(instruction.args, operands):
            label = self.labels[slot]
            described.append(f"{label} = {x!r}" if label else repr(x))
        if entry is None:
            return f"{instruction.op}({', '.join(described)})"
        c = instruction.constant
        return entry.notation.format(
            c=repr(c) if c is not None else "", **dict(zip(("a", "b"), described))
        )


def _op_name(op: str) -> str:
    return {"/": "division", "r/": "division", "**": "power", "r**": "power"}.get(op, op)


def _in_sample(sample: int | None) -> str:
    return "" if sample is None else f" (in sample {sample} of the batch)"


def _describe_value(value: Value) -> str:
    return f"Value {value.label!r}" if value.label else f"Value(data={value.data!r})"


def _dot_split(instruction: Instruction) -> tuple[int, tuple[float, ...]]:
    """``k`` (the number of Value * Value terms) and the coefficients of a ``dot``."""
    coefficients = instruction.coefficients or ()
    return (len(instruction.args) - len(coefficients)) // 2, coefficients


# ---- names ----------------------------------------------------------------------------


def _identifiers(labels: tuple[str, ...], input_slots: frozenset[int]) -> tuple[str, ...]:
    """A distinct Python identifier per slot, from its label where it has a usable one.

    Labels are reduced to ASCII letters, digits and underscores, so that generated
    code never contains user text; names never start with ``_`` (the generated
    code's helpers), and ``grad_`` + name is free for every name. A slot without a
    usable label is ``x<slot>`` (an input) or ``h<slot>``.
    """
    names = [f"x{slot}" if slot in input_slots else f"h{slot}" for slot in range(len(labels))]
    labelled = [(slot, _sanitise(label)) for slot, label in enumerate(labels) if label]
    labelled = [(slot, base) for slot, base in labelled if base]
    if not labelled:
        return tuple(names)
    taken: set[str] = set()
    unlabelled = set(range(len(labels))) - {slot for slot, _ in labelled}
    # default names that a label would shadow are renamed too
    wanted = {base for _, base in labelled}
    wanted |= {f"grad_{base}" for base in wanted}
    for slot in sorted(unlabelled):
        if names[slot] in wanted or f"grad_{names[slot]}" in wanted:
            labelled.append((slot, names[slot]))
        else:
            taken.update((names[slot], f"grad_{names[slot]}"))
    for slot, base in labelled:
        candidate, n = base, 1
        while candidate in taken or f"grad_{candidate}" in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.update((candidate, f"grad_{candidate}"))
        names[slot] = candidate
    return tuple(names)


def _sanitise(label: str) -> str:
    text = unicodedata.normalize("NFKC", label)
    chars = [ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in text]
    name = "".join(chars).strip("_")
    while "__" in name:
        name = name.replace("__", "_")
    if not name:
        return ""
    if name[0].isdigit() or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        name = f"v{name}" if name[0].isdigit() else f"{name}_"
    return name


# ---- straight-line Python -------------------------------------------------------------


def _straight_line_source(program: Program) -> str:
    return "\n".join(_StraightLine(program).lines())


class _StraightLine:
    """Writes a program as one Python function ``forward_backward(inputs, gradient)``.

    A large program's intermediate gradients live in a few reused *registers*
    (``_g0``, ``_g1``, ...) declared first: CPython reads and writes its first 256
    local variables with one-byte instructions and the others with two, noticeably
    slower. Small programs, the ones people read, keep ``grad_`` + name throughout.
    """

    def __init__(self, program: Program) -> None:
        self.program = program
        self.names = program.names
        self.use_registers = len(self.names) > GRADIENT_REGISTERS_PAST
        self.register_of: dict[int, str] = {}  # slot -> the register holding its gradient
        self.free_registers: list[int] = []  # a heap: the lowest free register is reused first
        self.register_count = 0
        self.inputs = frozenset(program.input_slots)
        self.assigned: set[int] = set()  # slots whose gradient has had a contribution
        self.first_assigned: list[int] = []  # the same slots, in the order of the lines
        self.passed_on: set[int] = set()  # slots whose backward lines are written
        self.body_of: dict[int, int] = {}  # instruction index -> the guard its lines are in
        self.contents: dict[int, list[int]] = {}
        self.has_guard = [False] * len(program.columns.slots)
        self.place()

    def lines(self) -> Iterator[str]:
        program, names = self.program, self.names
        inputs = [names[s] for s in program.input_slots]
        self.assigned.add(program.output)
        backward = [f"    {self.new_gradient(program.output)} = gradient"]
        for index in self.contents.get(_TOP, []):
            self.backward(index, 1, backward)
        yield "def forward_backward(inputs, gradient):"
        if self.register_count:
            # named first, so that they are among the first 256 local variables
            declared = [f"_g{n}" for n in range(min(self.register_count, 254))]
            yield f"    {' = '.join(declared)} = 0.0"
        yield f"    {', '.join(inputs)}{',' if len(inputs) == 1 else ''} = inputs"
        yield "    # forward"
        for index, instruction in enumerate(program.instructions):
            yield from self.forward(index, instruction)
        yield "    # backward"
        yield from backward
        for slot in program.input_slots:
            if slot not in self.assigned:  # an input no instruction uses
                yield f"    grad_{names[slot]} = 0.0"
        grads = ", ".join(f"grad_{name}" for name in inputs)
        output = names[program.output]
        yield f"    return {output}, ({grads}{',' if len(inputs) == 1 else ''})"

    def place(self) -> None:
        """Put each instruction's backward lines in the innermost guard around all its uses.

        A guard (``if grad != 0.0:``) skips the lines of an instruction whose
        gradient is zero; the lines of every instruction used only inside it go
        inside it too, since a gradient made only of skipped contributions is zero,
        which the eager engine does not pass on either. Fills :attr:`contents`: per
        guard (keyed by its instruction's index, or ``_TOP``), the instructions
        inside it, in backward order.
        """
        instructions = self.program.instructions
        index_of = {instruction.slot: i for i, instruction in enumerate(instructions)}
        uses: dict[int, set[int]] = {}
        for i, instruction in enumerate(instructions):
            for slot in instruction.args:
                if slot in index_of:
                    uses.setdefault(index_of[slot], set()).add(i)
        depth = {_TOP: 0}  # of each guard that has instructions inside it
        for i in range(len(instructions) - 1, -1, -1):
            body = _TOP  # the output's lines, which nothing uses, come first
            for n, user in enumerate(uses.get(i, ())):
                inner = self.inner_body(user, depth)
                body = inner if n == 0 else self.common_body(body, inner, depth)
            self.body_of[i] = body
            self.contents.setdefault(body, []).append(i)
            self.has_guard[i] = guarded = self.guarded(i)
            if guarded and depth[body] < MAX_NESTING:
                depth[i] = depth[body] + 1

    def inner_body(self, index: int, depth: dict[int, int]) -> int:
        """The guard that instruction ``index``'s contributions are written in."""
        return index if index in depth else self.body_of[index]

    def common_body(self, one: int, other: int, depth: dict[int, int]) -> int:
        """The innermost guard around both guards ``one`` and ``other``."""
        while depth[one] > depth[other]:
            one = self.body_of[one]
        while depth[other] > depth[one]:
            other = self.body_of[other]
        while one != other:
            one, other = self.body_of[one], self.body_of[other]
        return one

    def gradient(self, slot: int) -> str:
        """The variable holding the gradient of ``slot``."""
        return self.register_of.get(slot) or f"grad_{self.names[slot]}"

    def new_gradient(self, slot: int) -> str:
        """The variable for the gradient of ``slot``, which gets its first contribution now."""
        if self.use_registers and slot not in self.inputs:
            if self.free_registers:
                number = heapq.heappop(self.free_registers)
            else:
                number, self.register_count = self.register_count, self.register_count + 1
            self.register_of[slot] = f"_g{number}"
        return self.gradient(slot)

    def release_gradient(self, slot: int) -> None:
        """``slot``'s gradient has been passed on: its register may hold another."""
        register = self.register_of.pop(slot, None)
        if register is not None:
            heapq.heappush(self.free_registers, int(register[2:]))

    def operands(self, instruction: Instruction) -> dict[str, str]:
        fields = dict(zip(("a", "b"), (self.names[a] for a in instruction.args)))
        fields["out"] = self.names[instruction.slot]
        return fields

    def forward(self, index: int, instruction: Instruction) -> Iterator[str]:
        target = self.names[instruction.slot]
        op, args, c = instruction.op, instruction.args, instruction.constant
        arg_names = [self.names[a] for a in args]
        if op in ("sum", "dot"):
            if op == "sum":
                terms = list(arg_names)
            else:
                k, scaled = _dot_split(instruction)
                terms = [f"{arg_names[i]} * {arg_names[k + i]}" for i in range(k)]
                terms += [_scaled(w, arg_names[2 * k + j]) for j, w in enumerate(scaled)]
            if c is not None:
                terms.append(number_literal(c))
            yield f"    {target} = {_total(terms)}"
            return
        entry = primitive(op, len(args))
        if entry is None:
            yield f"    {target} = _forward_{index}({', '.join(arg_names)})"
            return
        operands = self.operands(instruction)
        for j, check in enumerate(entry.checks):
            condition = scalar_expression(check.condition, operands, c)
            if condition != "False":
                yield f"    if {condition}: _fail({index}, {j}, ({', '.join(arg_names)},))"
        yield f"    {target} = {scalar_expression(entry.forward, operands, c)}"

    def guarded(self, index: int) -> bool:
        """Whether instruction ``index`` skips its lines when its gradient is zero."""
        instruction = self.program.instructions[index]
        op, args = instruction.op, instruction.args
        if op == "sum":
            return False
        if op == "dot":  # a neuron behind an inactive relu gets a zero gradient
            return len(args) > 2
        entry = primitive(op, len(args))
        if entry is None:  # a registered Operation: its derivatives may be anything
            return True
        if not entry.unbounded:
            return False
        # an infinite slope is not multiplied by a zero gradient
        operands = self.operands(instruction)
        return any(
            "_inf" in scalar_expression(d, operands, instruction.constant)
            for d in entry.derivatives
        )

    def backward(self, index: int, depth: int, out: list[str]) -> None:
        """Chain-rule lines sending instruction ``index``'s gradient to its operands.

        The lines of instructions nested under it follow, inside its guard if it has
        one; ``depth`` is the indentation level. The lines are appended to ``out``.
        """
        instruction = self.program.instructions[index]
        upstream = self.gradient(instruction.slot)
        op, args = instruction.op, instruction.args
        arg_names = [self.names[a] for a in args]
        setup: list[str] = []
        written: list[str | None] = [None] * len(args)  # terms not of the form upstream * local
        if op == "sum":
            locals_ = ["1.0"] * len(args)
        elif op == "dot":
            k, scaled = _dot_split(instruction)
            locals_ = arg_names[k : 2 * k] + arg_names[:k] + [number_literal(w) for w in scaled]
        elif (entry := primitive(op, len(args))) is not None:
            operands = self.operands(instruction)
            c = instruction.constant
            locals_ = [scalar_expression(d, operands, c) for d in entry.derivatives]
            written = [scalar_chain_term(upstream, d, operands, c) for d in entry.derivatives]
        else:  # a registered Operation: its derivatives, called like the eager engine's
            call_args = ", ".join([*arg_names, self.names[instruction.slot]])
            setup = [f"_local = _derivatives_{index}({call_args})"]
            locals_ = [f"_local[{j}]" for j in range(len(args))]
        indent = "    " * depth
        guarded = self.has_guard[index]
        first = len(self.first_assigned)
        if guarded:
            # as in the eager engine, a zero gradient is not multiplied by local derivatives
            # (which may be infinite)
            out.append(f"{indent}if {upstream} != 0.0:")
            indent += "    "
        for line in setup:
            out.append(f"{indent}{line}")
        for slot, local, term in zip(args, locals_, written):
            term = _times(upstream, local) if term is None else term
            if slot in self.assigned:
                out.append(f"{indent}{self.gradient(slot)} += {term}")
            else:
                out.append(f"{indent}{self.new_gradient(slot)} = {term}")
                self.assigned.add(slot)
                self.first_assigned.append(slot)
        self.passed_on.add(instruction.slot)
        self.release_gradient(instruction.slot)
        for inside in self.contents.get(index, []):
            self.backward(inside, depth + 1, out)
        if guarded:
            # the gradients that the skipped lines would have started, and are still needed
            started = [s for s in self.first_assigned[first:] if s not in self.passed_on]
            if started:
                out.append(f"{indent[:-4]}else:")
                for slot in started:
                    out.append(f"{indent}{self.gradient(slot)} = 0.0")


# Guards nest at most this deep (the Python parser allows 100 levels of indentation)
MAX_NESTING = 40
_TOP = -1  # the function's body, outside every guard

# Programs with more names than this (each has a gradient too: twice as many locals as CPython
# numbers with one byte) keep their intermediate gradients in registers
GRADIENT_REGISTERS_PAST = 128

# Longer sums are written as one call: Python's compiler nests a + b + ... one level per term.
PLAIN_SUM_LIMIT = 64


def _total(terms: list[str]) -> str:
    """Python for the sum of ``terms`` (plain ``+`` is twice as fast as ``math.fsum``)."""
    if not terms:
        return "0.0"
    if len(terms) <= PLAIN_SUM_LIMIT:
        return " + ".join(terms)
    return f"_sum([{', '.join(terms)}])"


def _scaled(coefficient: float, name: str) -> str:
    return name if coefficient == 1.0 else f"{number_literal(coefficient)} * {name}"


def _times(upstream: str, local: str) -> str:
    if local == "1.0":
        return upstream
    if local == "-1.0":
        return f"-{upstream}"
    simple = local.replace("_", "").replace(".", "").isalnum()
    return f"{upstream} * {local}" if simple else f"{upstream} * ({local})"


def _compile_straight_line(program: Program) -> Replay:
    namespace = scalar_names()
    namespace["_sum"] = exact_sum
    for index, instruction in enumerate(program.instructions):
        operation = program.operations.get(instruction.op)
        if operation is not None:
            namespace[f"_forward_{index}"] = operation_forward(operation)
            namespace[f"_derivatives_{index}"] = operation_slopes(operation)

    def fail(index: int, check: int, operands: tuple[float, ...]) -> None:
        raise program.domain_error(program.instructions[index], check, operands, None)

    namespace["_fail"] = fail
    code = compile(program.source, "<microgradient program>", "exec")
    exec(code, namespace)
    function: Replay = namespace["forward_backward"]
    return function
