"""Batched replay: a program run on B samples at once, with array operations.

A *plan* (made once per program and per set of batched inputs) schedules the
instructions by level (the longest path from an input) and gathers the
instructions of one level that do the same thing into a *group*, evaluated by a
few array operations:

* ``dot`` nodes with the same Value * Value inputs (a layer's neurons) become one
  matrix product, ``X @ W.T``, plus their bias terms;
* like element-wise operations (a layer's activations) run on a whole block;
* registered Operations run sample by sample.

Each group's result is a block: ``(B, m)`` if it depends on a batched input, else
``(m,)`` (shared by the batch, e.g. a weight penalty). The inputs are two blocks:
the batched ones (the arrays fed, joined once; a matrix fed to a tuple of inputs
stays whole) and the shared ones, laid out so that the largest operand lists (a
layer's weights, a penalty on all parameters) are contiguous. A group reads its
operands by slicing (or ``take``) from earlier blocks, and the backward pass sends
each gradient back the same way, adding in place into one gradient buffer per
group and run, and summing over the batch where a shared value fed batched ones:
so a parameter's gradient is the sum over the batch. Whatever can be decided from
the plan alone (slices, layouts, index arrays) is decided once, not on every run.

Arrays come from any namespace of the Python array API standard (NumPy by
default; PyTorch or JAX arrays if those are fed), found with ``array-api-compat``
(NumPy arrays are computed with ``numpy`` itself); computation is in float64.
"""

from __future__ import annotations

import contextlib
import functools
import math
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np

from microgradient.errors import MicrogradientError, TracingError
from microgradient.primitives import (
    Primitive,
    array_function,
    operation_forward,
    operation_slopes,
    primitive,
)

if TYPE_CHECKING:
    from microgradient.program import Instruction, Parameters, Program, Result


def _numpy_namespace() -> types.ModuleType:
    """``numpy``, with the functions a run calls most bound to C code directly.

    NumPy 2's own namespace follows the array API standard, but ``np.sum``,
    ``np.reshape``, ``np.permute_dims`` and ``np.take`` are Python wrappers (a few
    calls each, dozens of times a run) around the ufunc reduction and ndarray
    methods used here instead, which compute the same thing.
    """
    namespace = types.ModuleType("numpy")  # named so, array-api-compat knows it for NumPy
    namespace.__dict__.update(vars(np))
    namespace.__dict__.update(
        sum=functools.partial(np.add.reduce, axis=None),  # all axes unless given one
        reshape=np.ndarray.reshape,
        permute_dims=np.ndarray.transpose,
        take=np.ndarray.take,
    )
    return namespace


NUMPY = _numpy_namespace()

BATCHED_INPUTS = 0  # the group holding the batched inputs, one column each
SHARED_INPUTS = 1  # the group holding the other inputs (parameters), a vector


def as_batch_column(given: Any, program: Program, position: int) -> Any | None:
    """A value fed to an input as a 1-D array, or ``None`` if it is a single number."""
    if isinstance(given, np.ndarray):
        array: Any = given
    elif isinstance(given, (list, tuple)):
        array = np.asarray(given, dtype=np.float64)
    elif array_api_compat.is_array_api_obj(given):
        array = given
    else:
        raise TracingError(
            f"run: {program._describe_input(position)} was fed {given!r}; "
            "feed a number or a 1-D array"
        )
    if array.ndim == 0:
        return None
    if array.ndim != 1:
        raise TracingError(
            f"run: {program._describe_input(position)} was fed an array of shape "
            f"{tuple(array.shape)}; feed a 1-D array (one entry per sample)"
        )
    return array


def as_block(given: Any, width: int) -> Any:
    """Numbers fed to a tuple of ``width`` inputs: a row of them, or a matrix (samples, width)."""
    block = given if array_api_compat.is_array_api_obj(given) else np.asarray(given, dtype=float)
    if block.ndim not in (1, 2) or block.shape[-1] != width:
        raise TracingError(
            f"run: {width} inputs were fed an array of shape {tuple(block.shape)}; feed "
            f"({width},) numbers or a (samples, {width}) matrix"
        )
    return block


class BatchFeed:
    """The arrays fed to one run: 1-D columns and 2-D blocks, in the order they were fed.

    A block (a matrix fed to a tuple of inputs) is kept whole: the batched inputs'
    block is made by joining the parts once and, only if they are not already in
    input order, taking its columns in that order. How the parts map to the inputs
    (their *layout*) is worked out once per program and layout. A later feed of an
    input replaces an earlier one, as in a dict.
    """

    def __init__(self) -> None:
        self.parts: list[Any] = []
        # per event: a position (a column), a tuple of positions (a block), or
        # -1 - position (an input fed a number after an array)
        self.layout: list[int | tuple[int, ...]] = []
        self._fed: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self._fed)

    def add_column(self, position: int, column: Any) -> None:
        self.parts.append(column)
        self.layout.append(position)
        self._fed.add(position)

    def add_block(self, positions: tuple[int, ...], block: Any) -> None:
        if not positions:
            return
        self.parts.append(block)
        self.layout.append(positions)
        self._fed.update(positions)

    def drop(self, position: int) -> None:
        """``position`` was fed a number: an array fed to it before no longer counts."""
        if position in self._fed:
            self._fed.discard(position)
            self.layout.append(-1 - position)


@dataclass(frozen=True)
class Layout:
    """Where each batched input is among the joined parts of a :class:`BatchFeed`.

    ``positions`` are the batched inputs; ``columns`` picks them, in input order,
    from the parts joined side by side (``None``: they already are in that order);
    ``first`` names an input per part (for errors).
    """

    positions: frozenset[int]
    columns: tuple[int, ...] | None
    first: tuple[int, ...]

    @staticmethod
    def of(layout: tuple[int | tuple[int, ...], ...]) -> Layout:
        where: dict[int, int] = {}
        first: list[int] = []
        offset = 0
        for event in layout:
            if isinstance(event, tuple):
                where.update(zip(event, range(offset, offset + len(event))))
                offset += len(event)
                first.append(event[0])
            elif event >= 0:
                where[event] = offset
                offset += 1
                first.append(event)
            else:
                where.pop(-1 - event, None)
        columns = tuple(where[p] for p in sorted(where))
        in_order = columns == tuple(range(offset))
        return Layout(frozenset(where), None if in_order else columns, tuple(first))


def _layout(program: Program, feed: BatchFeed) -> Layout:
    key = tuple(feed.layout)
    layouts: dict[tuple[Any, ...], Layout] = program._batch_layouts
    layout = layouts.get(key)
    if layout is None:
        layout = layouts[key] = Layout.of(key)
    return layout


def _side_by_side(run: _Run, feed: BatchFeed, layout: Layout) -> Any:
    """The batched inputs as one float64 block (samples, inputs) on ``device``, in input order.

    Runs of 1-D columns are stacked and blocks kept as they are; the pieces are
    joined once.
    """
    xp, device = run.xp, run.device
    numpy = xp is NUMPY
    if numpy and len(feed.parts) > 1 and all(part.ndim == 2 for part in feed.parts):
        joined = np.concatenate(feed.parts, axis=1, dtype=np.float64)  # one copy, converted
        return joined if layout.columns is None else xp.take(joined, run.index(layout.columns), 1)
    pieces: list[Any] = []
    columns: list[Any] = []
    for part in feed.parts:
        if part.ndim == 1:
            columns.append(part)
            continue
        if columns:
            pieces.append(_stacked(xp, device, columns, numpy))
            columns = []
        block = np.asarray(part, dtype=np.float64) if numpy else _float64_on(xp, device, part)
        pieces.append(block)
    if columns:
        pieces.append(_stacked(xp, device, columns, numpy))
    joined = pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=1)
    if layout.columns is None:
        return joined
    return xp.take(joined, run.index(layout.columns), axis=1)


def _stacked(xp: Any, device: Any, columns: list[Any], numpy: bool) -> Any:
    if numpy:  # one copy in C; xp.stack reshapes each column in Python first
        return np.array(columns, dtype=np.float64).T
    return xp.stack([_float64_on(xp, device, column) for column in columns], axis=1)


def namespace_of(array: Any) -> Any:
    """The array-API namespace of ``array``."""
    return array_api_compat.array_namespace(array)


# ---- the plan ---------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Operands found in one group's block: its ``columns``, at ``positions`` of the gather."""

    group: int
    columns: tuple[int, ...]
    positions: tuple[int, ...]
    whole: bool  # the columns are all of the block's, in order
    read: slice | None  # the columns, if they are a contiguous range
    in_order: bool  # the positions are 0, 1, ..., size - 1
    pick: slice | None  # the positions, if they are a contiguous range
    rounds: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]  # see _rounds
    batched: bool  # whether the group's block is batched


@dataclass(frozen=True)
class Gather:
    """Where the operands of a group are, in order.

    With several sources their parts are joined, then reordered by ``inverse``
    unless they already are in order.
    """

    sources: tuple[Source, ...]
    size: int
    inverse: tuple[int, ...] | None
    # one source read whole (slice None) or by a slice: (group, slice), the usual case
    direct: tuple[int, slice | None] | None = None


@dataclass
class Group:
    kind: str  # "primitive", "dot", "sum", "operation", "inputs"
    members: list[Instruction]
    batched: bool
    entry: Primitive | None = None
    gathers: list[Gather] = field(default_factory=list)
    constants: list[float] = field(default_factory=list)
    has_constants: bool = False
    same_constant: float | None = None  # the members' one constant, if they share it
    # a primitive's templates as array functions; a derivative of 1 is None (passed through)
    check_functions: list[Callable[..., Any]] = field(default_factory=list)
    forward_function: Callable[..., Any] | None = None
    derivative_functions: list[Callable[..., Any] | None] = field(default_factory=list)
    k: int = 0
    scaled: int = 0
    common_inputs: bool = False
    coefficients: list[list[float]] = field(default_factory=list)
    bias: bool = False  # a dot's one scaled operand per member, with the coefficient 1

    @property
    def width(self) -> int:
        return len(self.members)


class Plan:
    """The groups of a program for one set of batched inputs (see the module docs)."""

    def __init__(self, program: Program, batched_positions: frozenset[int]) -> None:
        self.program = program
        slots = program.input_slots
        batched_inputs = [slots[p] for p in sorted(batched_positions)]
        shared_inputs = [s for p, s in enumerate(slots) if p not in batched_positions]
        self.batched: dict[int, bool] = dict.fromkeys(slots, False)
        self.batched.update(dict.fromkeys(batched_inputs, True))
        level = dict.fromkeys(slots, 0)
        buckets: dict[tuple[Any, ...], list[Instruction]] = {}
        for instruction in program.instructions:
            args = instruction.args
            level[instruction.slot] = 1 + max(level[a] for a in args)
            self.batched[instruction.slot] = any(self.batched[a] for a in args)
            key = self._key(instruction, level[instruction.slot])
            buckets.setdefault(key, []).append(instruction)
        # a bucket's members are independent (same level); earlier levels come first
        keys = sorted(buckets, key=lambda key: (key[0], buckets[key][0].slot))
        operands = [_operands(key, buckets[key]) for key in keys]
        # the shared inputs in the order the largest operand lists read them: a layer's
        # weights (or a penalty on all parameters) are then one contiguous span, read and
        # given gradients by slicing
        shared = set(shared_inputs)
        by_size = sorted((slots for lists in operands for slots in lists), key=len, reverse=True)
        first_read = dict.fromkeys(a for slots in by_size for a in slots if a in shared)
        shared_inputs = [*first_read, *(s for s in shared_inputs if s not in first_read)]
        self.location: dict[int, tuple[int, int]] = {}
        self.groups: list[Group] = []
        for group_inputs, batched in ((batched_inputs, True), (shared_inputs, False)):
            for column, slot in enumerate(group_inputs):
                self.location[slot] = (len(self.groups), column)
            self.groups.append(Group("inputs", [], batched))
        self.widths = [len(batched_inputs), len(shared_inputs)]
        position_of = {slot: p for p, slot in enumerate(slots)}
        leaf_at = dict(zip(slots, program.inputs))
        self.batched_leaves = [leaf_at[s] for s in batched_inputs]
        self.batched_columns = {leaf: j for j, leaf in enumerate(self.batched_leaves)}
        self.shared_leaves = [leaf_at[s] for s in shared_inputs]
        self.shared_positions = [position_of[s] for s in shared_inputs]
        self.input_positions = (sorted(batched_positions), self.shared_positions)
        # index arrays per namespace and device, by the id of the plan's tuple they are
        # made of (the entry keeps the tuple, so the id is not reused; hashing a
        # long tuple on every run would cost more than the take itself)
        self.index_cache: dict[tuple[str, str], dict[int, tuple[Any, Any]]] = {}
        self.constant_cache: dict[tuple[str, str], dict[tuple[int, str], Any]] = {}
        self.runs_cache: dict[int, tuple[Any, tuple[tuple[int, int], ...] | None]] = {}
        self._orders: weakref.WeakKeyDictionary[Parameters, ParameterOrder | None]
        self._orders = weakref.WeakKeyDictionary()
        for key, lists in zip(keys, operands):
            self._add_group(key, buckets[key], lists)
        self.output = self._gather([program.output])  # where the backward pass starts

    def parameter_order(self, parameters: Parameters) -> ParameterOrder | None:
        """How ``parameters`` sit among the shared inputs; ``None`` if one is not shared."""
        if parameters not in self._orders:
            self._orders[parameters] = ParameterOrder.of(parameters, self)
        return self._orders[parameters]

    def _key(self, instruction: Instruction, level: int) -> tuple[Any, ...]:
        op, args = instruction.op, instruction.args
        pattern = tuple(self.batched[a] for a in args)
        if op == "dot":
            coefficients = instruction.coefficients or ()
            k = (len(args) - len(coefficients)) // 2
            return (level, "dot", k, len(coefficients), pattern)
        if op == "sum":
            return (level, "sum", pattern)
        if op in self.program.operations:
            return (level, "operation", instruction.slot)
        return (level, "primitive", op, len(args), pattern)

    def _gather(self, slots: Sequence[int]) -> Gather:
        found: dict[int, tuple[list[int], list[int]]] = {}
        for position, slot in enumerate(slots):
            group, column = self.location[slot]
            columns, positions = found.setdefault(group, ([], []))
            columns.append(column)
            positions.append(position)
        sources = []
        for g, (columns, positions) in found.items():
            first = columns[0]
            contiguous = columns == list(range(first, first + len(columns)))
            sources.append(
                Source(
                    g,
                    tuple(columns),
                    tuple(positions),
                    whole=contiguous and first == 0 and len(columns) == self.widths[g],
                    read=slice(first, first + len(columns)) if contiguous else None,
                    in_order=positions == list(range(len(slots))),
                    pick=slice(positions[0], positions[-1] + 1)
                    if positions == list(range(positions[0], positions[-1] + 1))
                    else None,
                    rounds=() if contiguous else _rounds(columns),
                    batched=self.groups[g].batched,
                )
            )
        inverse = None
        if len(sources) > 1:
            order = [p for source in sources for p in source.positions]
            inverse_list = [0] * len(order)
            for i, p in enumerate(order):
                inverse_list[p] = i
            if inverse_list != list(range(len(order))):
                inverse = tuple(inverse_list)
        direct = None
        if len(sources) == 1 and sources[0].in_order and sources[0].read is not None:
            direct = (sources[0].group, None if sources[0].whole else sources[0].read)
        return Gather(tuple(sources), len(slots), inverse, direct)

    def _add_group(
        self, key: tuple[Any, ...], members: list[Instruction], operands: list[list[int]]
    ) -> None:
        kind = key[1]
        batched = any(self.batched[m.slot] for m in members)
        group = Group(kind, members, batched)
        group.constants = [m.constant or 0.0 for m in members]
        group.has_constants = any(group.constants)
        if all(c == group.constants[0] for c in group.constants):
            group.same_constant = group.constants[0]  # a float broadcasts at no cost
        group.gathers = [self._gather(slots) for slots in operands]
        if kind == "primitive":
            entry = group.entry = primitive(members[0].op, len(members[0].args))
            assert entry is not None
            group.check_functions = [array_function(check.condition) for check in entry.checks]
            group.forward_function = array_function(entry.forward)
            group.derivative_functions = [
                None if derivative == "1.0" else array_function(derivative)
                for derivative in entry.derivatives
            ]
        elif kind == "dot":
            group.k, group.scaled = key[2], key[3]
            group.common_inputs = len(operands[1]) == group.k
            group.coefficients = [list(m.coefficients or ()) for m in members]
            # a neuron's w · x + b: its bias is added as it is, no product or sum needed
            group.bias = all(c == [1.0] for c in group.coefficients)
        elif kind == "sum":
            group.k = len(members[0].args)
        for column, member in enumerate(members):
            self.location[member.slot] = (len(self.groups), column)
        self.groups.append(group)
        self.widths.append(len(members))


def _operands(key: tuple[Any, ...], members: list[Instruction]) -> list[list[int]]:
    """The slots a group of ``members`` gathers, one list per gather (see :class:`Group`).

    A ``dot`` group gathers its first factors, its second factors (once if every
    member has the same ones: a layer's inputs), and its scaled operands.
    """
    kind = key[1]
    if kind == "primitive":
        return [[m.args[j] for m in members] for j in range(len(members[0].args))]
    if kind == "dot":
        k = key[2]
        seconds = [m.args[k : 2 * k] for m in members]
        common = all(s == seconds[0] for s in seconds)
        return [
            [a for m in members for a in m.args[:k]],
            list(seconds[0]) if common else [a for s in seconds for a in s],
            [a for m in members for a in m.args[2 * k :]],
        ]
    if kind == "sum":
        return [[a for m in members for a in m.args]]
    return [[a] for a in members[0].args]


@dataclass(frozen=True)
class ParameterOrder:
    """The shared inputs as ``parameters.data`` followed by the other shared inputs.

    ``gather`` picks each shared input from that concatenation (``None``: already in
    order); ``columns`` picks the parameters' gradients from the shared gradients.
    """

    gather: tuple[int, ...] | None
    columns: tuple[int, ...] | None
    others: tuple[int, ...]  # the other shared inputs, as input positions
    other_columns: tuple[int, ...]  # ... and as columns of the shared inputs
    other_leaves: tuple[Any, ...]

    @staticmethod
    def of(parameters: Parameters, plan: Plan) -> ParameterOrder | None:
        where = {id(v): i for i, v in enumerate(parameters.values)}
        n = len(parameters.values)
        gather: list[int] = []
        others: list[int] = []
        other_columns: list[int] = []
        other_leaves: list[Any] = []
        columns = [0] * n
        for column, (leaf, position) in enumerate(zip(plan.shared_leaves, plan.shared_positions)):
            i = where.get(id(leaf))
            if i is None:
                gather.append(n + len(others))
                others.append(position)
                other_columns.append(column)
                other_leaves.append(leaf)
            else:
                gather.append(i)
                columns[i] = column
        if len(gather) - len(others) != n:
            return None  # a parameter is not a shared input of this plan
        identity = gather == list(range(len(gather)))
        return ParameterOrder(
            None if identity else tuple(gather),
            # with other shared inputs after them, the parameters' gradients must be picked out
            None if columns == list(range(len(gather))) else tuple(columns),
            tuple(others),
            tuple(other_columns),
            tuple(other_leaves),
        )


def plan_for(program: Program, batched_positions: frozenset[int]) -> Plan:
    plans: dict[frozenset[int], Plan] = program._batch_plans
    plan = plans.get(batched_positions)
    if plan is None:
        plan = plans[batched_positions] = Plan(program, batched_positions)
    return plan


# ---- running ------------------------------------------------------------------------


def _float64_on(xp: Any, device: Any, array: Any) -> Any:
    """``array`` as float64 on ``device``, converted only if it is not already."""
    if array.dtype == xp.float64 and array_api_compat.device(array) == device:
        return array
    return xp.asarray(array, dtype=xp.float64, device=device)


def run_batch(
    program: Program,
    numbers: list[float],
    arrays: BatchFeed | None,
    gradient: Any,
    parameters: Parameters | None = None,
) -> Result:
    """Evaluate ``program`` on a batch: see :meth:`~microgradient.Program.run`."""
    from microgradient.program import Result

    if not arrays:
        raise TracingError(
            "run: a gradient array needs a batch: feed at least one input a 1-D array"
        )
    parts = arrays.parts
    # one array per type settles the namespace; checking all of them costs a call each
    kinds = {type(a): a for a in parts}
    xp: Any
    device: Any
    if len(kinds) == 1 and np.ndarray in kinds:
        # NumPy 2's own namespace follows the standard; the compat wrappers cost a call each
        xp, device = NUMPY, "cpu"
    else:
        xp = array_api_compat.array_namespace(*kinds.values())
        xp = NUMPY if array_api_compat.is_numpy_namespace(xp) else xp
        device = array_api_compat.device(parts[0])
    size = int(parts[0].shape[0])
    layout = _layout(program, arrays)
    for position, array in zip(layout.first, parts):
        if int(array.shape[0]) != size:
            raise TracingError(
                f"run: {program._describe_input(position)} was fed {int(array.shape[0])} samples "
                f"but another input {size}; every batched input needs the same length"
            )
    plan = plan_for(program, layout.positions)
    run = _Run(plan, xp, device, size)
    with run.quiet():
        batched_inputs = _side_by_side(run, arrays, layout)
        # parameters enter as their array, the other shared inputs after them
        order = None if parameters is None else plan.parameter_order(parameters)
        shared: Any
        if order is not None:
            assert parameters is not None
            shared = xp.asarray(parameters.data, dtype=xp.float64, device=device)
            if order.others:
                rest = run.vector([numbers[p] for p in order.others])
                shared = xp.concat([shared, rest])
            if order.gather is not None:
                shared = run.pick(shared, order.gather)
        else:
            if parameters is not None:  # some parameter is batched: read them as numbers
                for position, x in zip(parameters.positions_in(program), _floats(parameters.data)):
                    numbers[position] = x
            shared = [numbers[p] for p in plan.shared_positions]
        run.forward(batched_inputs, shared)
        seed = _seed(xp, device, size, gradient)
        run.backward(seed)
        value = run.value(program.output)
        batched_grads = run.grads[BATCHED_INPUTS]
        if batched_grads is None:
            width = plan.widths[BATCHED_INPUTS]
            batched_grads = xp.zeros((size, width), dtype=xp.float64, device=device)
        shared_grads = run.grads[SHARED_INPUTS]
        if shared_grads is None:
            shared_grads = xp.zeros(len(plan.shared_leaves), dtype=xp.float64, device=device)
        shared_floats: dict[Any, Any] = {}
        if order is not None:
            assert parameters is not None
            if order.others:
                chosen = run.pick(shared_grads, order.other_columns)
                shared_floats.update(zip(order.other_leaves, _floats(chosen)))
            if order.columns is not None:
                shared_grads = run.pick(shared_grads, order.columns)
            parameters.grad = shared_grads
        else:
            shared_floats.update(zip(plan.shared_leaves, _floats(shared_grads)))
        grads: Mapping[Any, Any] = BatchGrads(batched_grads, plan.batched_columns, shared_floats)
    # an infinite or nan gradient anywhere makes the sum of the inputs' gradients one
    # (a sum that overflows only sends a finite batch the exact, slower way)
    if not all(grad is None or math.isfinite(float(xp.sum(grad))) for grad in run.grads[:2]):
        if parameters is not None:
            for position, x in zip(parameters.positions_in(program), _floats(parameters.data)):
                numbers[position] = x
        columns = {
            p: batched_inputs[:, j] for j, p in enumerate(plan.input_positions[BATCHED_INPUTS])
        }
        value, exact = _exactly(program, numbers, columns, gradient, run)
        if parameters is not None:
            found = [exact.pop(v) for v in parameters.values]
            parameters.grad = parameters.xp.asarray(found, dtype=parameters.xp.float64)
        grads = exact
    elif parameters is not None and order is None:
        found = [grads[v] for v in parameters.values]
        parameters.grad = parameters.xp.asarray(found, dtype=parameters.xp.float64)
        taken = set(parameters.values)
        grads = {leaf: grad for leaf, grad in grads.items() if leaf not in taken}
    return Result(value, grads)


class BatchGrads(Mapping[Any, Any]):
    """A batch's gradients by input; a batched input's column is sliced out when read.

    Shared inputs map to floats (the sums over the batch). A program with many
    batched inputs (the pixels of an image) would otherwise slice every column on
    every run, read or not.
    """

    def __init__(self, block: Any, columns: dict[Any, int], shared: dict[Any, Any]) -> None:
        self._block = block
        self._columns = columns
        self._shared = shared

    def __getitem__(self, leaf: Any) -> Any:
        column = self._columns.get(leaf)
        if column is None:
            return self._shared[leaf]
        return self._block[:, column]

    def __iter__(self) -> Iterator[Any]:
        yield from self._columns
        yield from self._shared

    def __len__(self) -> int:
        return len(self._columns) + len(self._shared)

    def __repr__(self) -> str:
        return repr(dict(self))


def _seed(xp: Any, device: Any, size: int, gradient: Any) -> Any:
    if isinstance(gradient, (int, float)):
        return xp.full((size,), float(gradient), dtype=xp.float64, device=device)
    seed = xp.asarray(gradient, dtype=xp.float64, device=device)
    if tuple(seed.shape) != (size,):
        raise TracingError(
            f"run: the gradient has shape {tuple(seed.shape)}; give a number or {size} numbers"
        )
    return seed


def _floats(array: Any) -> list[float]:
    values: list[float] = array.tolist()
    return values


class _Run:
    """One evaluation of a plan: the blocks of every group, then their gradients."""

    def __init__(self, plan: Plan, xp: Any, device: Any, size: int) -> None:
        self.plan = plan
        self.xp = xp
        self.device = device
        self.size = size
        self.blocks: list[Any] = [None] * len(plan.groups)
        self.saved: list[tuple[Any, ...]] = [()] * len(plan.groups)
        self.grads: list[Any] = [None] * len(plan.groups)
        where = (xp.__name__, str(device))
        self._indices = plan.index_cache.setdefault(where, {})
        self._constants = plan.constant_cache.setdefault(where, {})
        self._runs = plan.runs_cache
        self.owned = [False] * len(plan.groups)  # grads[g] is this run's own buffer

    def quiet(self) -> contextlib.AbstractContextManager[Any]:
        """NumPy warns about inf and nan in branches ``where`` discards: silence that."""
        if self.xp is NUMPY:
            return np.errstate(all="ignore")
        return contextlib.nullcontext()

    def index(self, positions: tuple[int, ...]) -> Any:
        """``positions`` (a tuple the plan keeps) as an index array, made once."""
        entry = self._indices.get(id(positions))
        if entry is None:
            array = self.xp.asarray(positions, dtype=self.xp.int64, device=self.device)
            entry = self._indices[id(positions)] = (positions, array)
        return entry[1]

    def pick(self, vector: Any, positions: tuple[int, ...]) -> Any:
        """``vector``'s entries at ``positions`` (a tuple the plan keeps).

        Positions that are a few contiguous runs (parameters with a few other
        inputs among them) are sliced and joined, cheaper than a take.
        """
        entry = self._runs.get(id(positions))
        if entry is None:
            entry = self._runs[id(positions)] = (positions, _contiguous_runs(positions))
        runs = entry[1]
        if runs is None:
            return self.xp.take(vector, self.index(positions), axis=0)
        if len(runs) == 1:
            return vector[runs[0][0] : runs[0][1]]
        return self.xp.concat([vector[start:end] for start, end in runs])

    def vector(self, numbers: Sequence[float]) -> Any:
        return self.xp.asarray(list(numbers), dtype=self.xp.float64, device=self.device)

    def group_constants(self, g: int, group: Group) -> Any:
        """The members' constants: a float if they share one (NumPy only), else an array.

        NumPy takes a plain number wherever an array goes (``where`` on a condition
        of the constant alone, say); other namespaces need arrays there.
        """
        if group.same_constant is not None and self.xp is NUMPY:
            return group.same_constant
        return self.constants(g, "constants", group.constants)

    def constants(self, g: int, what: str, numbers: Sequence[Any]) -> Any:
        """An array of numbers fixed by the plan (a group's constants), made once."""
        array = self._constants.get((g, what))
        if array is None:
            array = self._constants[g, what] = self.xp.asarray(
                numbers, dtype=self.xp.float64, device=self.device
            )
        return array

    # ---- forward --------------------------------------------------------------------

    def forward(self, batched_inputs: Any, shared: Any) -> None:
        self.blocks[BATCHED_INPUTS] = batched_inputs
        self.blocks[SHARED_INPUTS] = shared if hasattr(shared, "shape") else self.vector(shared)
        for g in range(2, len(self.plan.groups)):
            group = self.plan.groups[g]
            if group.kind == "primitive":
                self.blocks[g] = self._primitive(g, group)
            elif group.kind == "dot":
                self.blocks[g] = self._dot(g, group)
            elif group.kind == "sum":
                self.blocks[g] = self._sum(g, group)
            else:
                self.blocks[g] = self._operation(g, group)

    def gather(self, gather: Gather) -> Any:
        blocks = self.blocks
        if gather.direct is not None:
            g, read = gather.direct
            return blocks[g] if read is None else blocks[g][..., read]
        parts = []
        for source in gather.sources:
            block = blocks[source.group]
            if source.whole:
                parts.append(block)
            elif source.read is not None:
                parts.append(block[..., source.read])
            else:
                parts.append(self.xp.take(block, self.index(source.columns), axis=block.ndim - 1))
        if len(parts) == 1:
            return parts[0]
        joined = self._join(parts, gather.size)
        if gather.inverse is None:
            return joined
        return self.xp.take(joined, self.index(gather.inverse), axis=joined.ndim - 1)

    def _join(self, parts: list[Any], size: int) -> Any:
        """The parts side by side; shared (1-D) parts are repeated down a batched block."""
        xp = self.xp
        if all(part.ndim == 1 for part in parts):
            return xp.concat(parts, axis=-1)
        if hasattr(parts[0], "at"):  # JAX arrays are immutable: join broadcast views
            return xp.concat([self._batched(part) for part in parts], axis=-1)
        joined = xp.empty((self.size, size), dtype=xp.float64, device=self.device)
        start = 0
        for part in parts:
            end = start + part.shape[-1]
            joined[:, start:end] = part
            start = end
        return joined

    def _batched(self, block: Any) -> Any:
        if block.ndim == 2:
            return block
        return self.xp.broadcast_to(block[None, :], (self.size, block.shape[0]))

    def _primitive(self, g: int, group: Group) -> Any:
        xp = self.xp
        operands = [self.gather(gather) for gather in group.gathers]
        a = operands[0]
        b = operands[1] if len(operands) > 1 else None
        c = self.group_constants(g, group)
        for n, check in enumerate(group.check_functions):
            failed = check(xp, a, b, c, None)
            if bool(xp.any(failed)):
                raise self._domain_error(group, n, failed, operands)
        assert group.forward_function is not None
        out = group.forward_function(xp, a, b, c, None)
        if group.batched and out.ndim == 1:
            out = self._batched(out)
        self.saved[g] = (a, b, c, out)
        return out

    def _first(self, flags: Any) -> tuple[int | None, int]:
        xp = self.xp
        flat = xp.reshape(xp.astype(flags, xp.int8), (-1,))
        i = int(xp.argmax(flat))
        width = flags.shape[-1]
        return (i // width if flags.ndim == 2 else None), i % width

    def _domain_error(
        self, group: Group, check: int, failed: Any, operands: list[Any]
    ) -> MicrogradientError:
        sample, member = self._first(failed)
        values = [_pick(x, sample, member) for x in operands]
        return self.plan.program.domain_error(group.members[member], check, values, sample)

    def _dot(self, g: int, group: Group) -> Any:
        xp = self.xp
        m, k, s = group.width, group.k, group.scaled
        out = None
        p = q = None
        if k:
            p = self.gather(group.gathers[0])
            p = xp.reshape(p, (*p.shape[:-1], m, k))
            q = self.gather(group.gathers[1])
            if group.common_inputs:
                if p.ndim == 2:
                    out = xp.matmul(q, xp.permute_dims(p, (1, 0)))
                else:
                    out = xp.sum(p * q[..., None, :], axis=-1)
            else:
                q = xp.reshape(q, (*q.shape[:-1], m, k))
                out = xp.sum(p * q, axis=-1)
        scaled = coefficients = None
        if group.bias:
            term = self.gather(group.gathers[2])
            out = term if out is None else out + term
        elif s:
            scaled = self.gather(group.gathers[2])
            scaled = xp.reshape(scaled, (*scaled.shape[:-1], m, s))
            coefficients = self.constants(g, "coefficients", group.coefficients)
            term = xp.sum(scaled * coefficients, axis=-1)
            out = term if out is None else out + term
        if group.has_constants:
            constants = self.constants(g, "constants", group.constants)
            out = constants if out is None else out + constants
        if out is None:
            out = xp.zeros((m,), dtype=xp.float64, device=self.device)
        if group.batched and out.ndim == 1:
            out = self._batched(out)
        self.saved[g] = (p, q, coefficients)
        return out

    def _sum(self, g: int, group: Group) -> Any:
        xp = self.xp
        terms = self.gather(group.gathers[0])
        terms = xp.reshape(terms, (*terms.shape[:-1], group.width, group.k))
        out = xp.sum(terms, axis=-1)
        if group.has_constants:
            out = out + self.group_constants(g, group)
        return self._batched(out) if group.batched else out

    def _operation(self, g: int, group: Group) -> Any:
        xp = self.xp
        operation = self.plan.program.operations[group.members[0].op]
        columns = [self._samples(self.gather(gather), group.batched) for gather in group.gathers]
        forward = operation_forward(operation)
        outs = []
        for sample, values in enumerate(zip(*columns)):
            try:
                outs.append(forward(*values))
            except MicrogradientError as error:
                raise type(error)(f"{error}{_in_sample(sample, group.batched)}") from None
        out = self.vector(outs)
        out = xp.reshape(out, (self.size, 1)) if group.batched else out
        self.saved[g] = (columns, outs)
        return out

    def _samples(self, block: Any, batched: bool) -> list[float]:
        """A one-column block as a list of floats, one per sample (one if not batched)."""
        block = self._batched(block) if batched else block
        return _floats(self.xp.reshape(block, (-1,)))

    def value(self, slot: int) -> Any:
        g, column = self.plan.location[slot]
        return self.blocks[g][..., column]

    # ---- backward -------------------------------------------------------------------

    def backward(self, seed: Any) -> None:
        xp = self.xp
        self.scatter(self.plan.output, xp.reshape(seed, (self.size, 1)))
        for g in range(len(self.plan.groups) - 1, 1, -1):
            upstream = self.grads[g]
            if upstream is None:
                continue
            group = self.plan.groups[g]
            if group.kind == "primitive":
                self._primitive_backward(g, group, upstream)
            elif group.kind == "dot":
                self._dot_backward(g, group, upstream)
            elif group.kind == "sum":
                # every term's local derivative is 1: the upstream gradient, k times over
                ones = self.constants(g, "ones", [1.0] * group.k)
                repeated = upstream[..., None] * ones
                self.scatter(group.gathers[0], xp.reshape(repeated, (*upstream.shape[:-1], -1)))
            else:
                self._operation_backward(g, group, upstream)

    def scatter(self, gather: Gather, contribution: Any) -> None:
        """Add ``contribution`` (one column per gathered operand) to the sources' gradients.

        A source that is only some of its group's columns adds into one buffer per
        group and run, in place, rather than into a block of zeros of its own.
        """
        xp, grads, owned = self.xp, self.grads, self.owned
        for source in gather.sources:
            part = contribution
            if source.pick is not None:
                if not source.in_order:
                    part = part[..., source.pick]
            else:
                part = xp.take(part, self.index(source.positions), axis=part.ndim - 1)
            g = source.group
            batched = source.batched
            if part.ndim == 2 and not batched:
                part = xp.sum(part, axis=0)  # a shared value's gradient sums over the batch
            current = grads[g]
            if source.whole:
                if part.ndim == 1 and batched:
                    part = self._batched(part)
                grads[g] = part if current is None else current + part
                owned[g] = current is not None
                continue
            if not owned[g]:
                width = self.plan.widths[g]
                shape = (self.size, width) if batched else (width,)
                buffer = xp.zeros(shape, dtype=xp.float64, device=self.device)
                current = buffer if current is None else buffer + current
                owned[g] = True
            if source.read is not None:
                current = _add_at(current, source.read, part)
            else:
                for positions, columns in source.rounds:
                    chosen = (
                        part
                        if len(positions) == len(source.columns)
                        else xp.take(part, self.index(positions), axis=part.ndim - 1)
                    )
                    current = _add_at(current, self.index(columns), chosen)
            grads[g] = current

    def _primitive_backward(self, g: int, group: Group, upstream: Any) -> None:
        xp, entry = self.xp, group.entry
        assert entry is not None
        a, b, c, out = self.saved[g]
        for gather, derivative in zip(group.gathers, group.derivative_functions):
            if derivative is None:  # a local derivative of 1: the gradient passes through
                contribution = upstream
            else:
                contribution = upstream * derivative(xp, a, b, c, out)
            if entry.unbounded:  # as in the eager engine: a zero gradient stays zero
                contribution = xp.where(upstream == 0.0, xp.zeros_like(contribution), contribution)
            self.scatter(gather, contribution)

    def _dot_backward(self, g: int, group: Group, upstream: Any) -> None:
        xp = self.xp
        m, k, s = group.width, group.k, group.scaled
        p, q, coefficients = self.saved[g]
        if k:
            if group.common_inputs and p.ndim == 2:
                # q: (B, k) or (k,); p: (m, k); upstream: (B, m) or (m,)
                if upstream.ndim == 2 and q.ndim == 2:
                    dp = xp.matmul(xp.permute_dims(upstream, (1, 0)), q)
                else:
                    total = xp.sum(upstream, axis=0) if upstream.ndim == 2 else upstream
                    dp = total[:, None] * q[None, :]
                dq = xp.matmul(upstream, p)
            else:
                qx = q[..., None, :] if group.common_inputs else q
                dp = upstream[..., None] * qx
                if dp.ndim == 3 and p.ndim == 2:
                    dp = xp.sum(dp, axis=0)
                dq = upstream[..., None] * p
                if group.common_inputs:
                    dq = xp.sum(dq, axis=-2)
            self.scatter(group.gathers[0], xp.reshape(dp, (*dp.shape[:-2], m * k)))
            if not group.common_inputs:
                dq = xp.reshape(dq, (*dq.shape[:-2], m * k))
            self.scatter(group.gathers[1], dq)
        if group.bias:
            self.scatter(group.gathers[2], upstream)
        elif s:
            ds = upstream[..., None] * coefficients
            self.scatter(group.gathers[2], xp.reshape(ds, (*ds.shape[:-2], m * s)))

    def _operation_backward(self, g: int, group: Group, upstream: Any) -> None:
        operation = self.plan.program.operations[group.members[0].op]
        columns, outs = self.saved[g]
        ups = self._samples(upstream, group.batched)
        slopes = operation_slopes(operation)
        contributions: list[list[float]] = [[] for _ in group.gathers]
        for sample, (up, values, out) in enumerate(zip(ups, zip(*columns), outs)):
            # as in the eager engine, derivatives are not evaluated for a zero gradient
            try:
                locals_ = slopes(*values, out) if up != 0.0 else (0.0,) * len(values)
            except MicrogradientError as error:
                raise type(error)(f"{error}{_in_sample(sample, group.batched)}") from None
            for j, local in enumerate(locals_):
                contributions[j].append(up * local if local != 0.0 else 0.0)
        for gather, contribution in zip(group.gathers, contributions):
            block = self.xp.reshape(self.vector(contribution), (-1, 1))
            self.scatter(gather, block if group.batched else block[0])


def _in_sample(sample: int, batched: bool) -> str:
    return f" (in sample {sample} of the batch)" if batched else ""


def _contiguous_runs(positions: tuple[int, ...]) -> tuple[tuple[int, int], ...] | None:
    """``positions`` as (start, end) ranges, or ``None`` if there are too many to be worth it."""
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and runs[-1][1] == p:
            runs[-1] = (runs[-1][0], p + 1)
        else:
            runs.append((p, p + 1))
    return tuple(runs) if len(runs) <= 8 else None


def _rounds(columns: Sequence[int]) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Split positions into rounds without repeated columns: (positions, their columns)."""
    rounds: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    remaining = list(range(len(columns)))
    while remaining:
        seen: set[int] = set()
        now: list[int] = []
        later: list[int] = []
        for i in remaining:
            (later if columns[i] in seen else now).append(i)
            seen.add(columns[i])
        rounds.append((tuple(now), tuple(columns[i] for i in now)))
        remaining = later
    return tuple(rounds)


def _add_at(block: Any, where: Any, values: Any) -> Any:
    """``block`` with ``values`` added at ``where`` (no repeats) of its last axis, in place."""
    if hasattr(block, "at"):  # JAX arrays are immutable
        return block.at[..., where].add(values)
    if isinstance(where, slice):
        view = block[..., where]  # a view: adding into it adds into block, with no copy back
        view += values
    else:
        block[..., where] += values
    return block


def _pick(x: Any, sample: int | None, member: int) -> float:
    if x is None:
        return float("nan")
    if x.ndim == 2:
        return float(x[sample if sample is not None else 0, member])
    return float(x[member])


def _exactly(
    program: Program,
    numbers: list[float],
    arrays: dict[int, Any],
    gradient: Any,
    run: _Run,
) -> tuple[Any, dict[Any, Any]]:
    """The batch replayed sample by sample, following the engine's chain rule exactly.

    Used when a gradient is infinite or nan: arrays multiply zero by infinity where
    the engine's chain rule skips the term (0 * inf = 0).
    """
    xp, device = run.xp, run.device
    seeds = _floats(_seed(xp, device, run.size, gradient))
    columns = {p: _floats(xp.asarray(a, dtype=xp.float64)) for p, a in arrays.items()}
    values: list[float] = []
    per_input: list[list[float]] = [[] for _ in program.inputs]
    for sample in range(run.size):
        point = list(numbers)
        for p, column in columns.items():
            point[p] = column[sample]
        try:
            value, grads = program._exact_replay(point, seeds[sample])
        except MicrogradientError as error:
            raise type(error)(f"{error} (in sample {sample} of the batch)") from None
        values.append(value)
        for collected, grad in zip(per_input, grads):
            collected.append(grad)
    result: dict[Any, Any] = {}
    for position, (leaf, collected) in enumerate(zip(program.inputs, per_input)):
        if position in arrays:
            result[leaf] = xp.asarray(collected, dtype=xp.float64, device=device)
        else:
            result[leaf] = (
                math.fsum(collected) if all(map(math.isfinite, collected)) else sum(collected)
            )
    return xp.asarray(values, dtype=xp.float64, device=device), result
