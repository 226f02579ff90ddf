"""Neural networks on top of the engine: modules, losses and helpers.

The modules follow micrograd's interface (``Neuron``, ``Layer``, ``MLP``,
``parameters()``, ``zero_grad()``), so micrograd code runs unchanged (it gives
micrograd's numbers when the networks are built with ``init="uniform"``), and add
activations, scaled and seeded initialisation, and saving to JSON.

Graphs stay small: a neuron is one :func:`~microgradient.dot` node (its bias
rides along as a weight on a constant input 1) plus one activation node, and
every loss reduces over its batch in a single n-ary node.

>>> from microgradient import nn
>>> model = nn.MLP(2, [4, 1], seed=0)
>>> len(model.parameters())
17
>>> loss = nn.mse([model([1.0, 2.0])], [1.0])
>>> loss.backward()
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
import random
import reprlib
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast

from microgradient.engine import Operand, Value, dot, dot_of_numbers, dot_of_values
from microgradient.engine import max_ as max_
from microgradient.engine import sum as value_sum
from microgradient.errors import DomainError, ModelShapeError, OperandTypeError

__all__ = [
    "MLP",
    "Activation",
    "Init",
    "Layer",
    "Module",
    "Neuron",
    "binary_cross_entropy",
    "cross_entropy",
    "hinge",
    "l2",
    "load",
    "mse",
    "softmax",
]

Activation: TypeAlias = Literal["relu", "tanh", "sigmoid", "linear"]
Init: TypeAlias = Literal["scaled", "uniform"]
Reduction: TypeAlias = Literal["mean", "sum"]
Seed: TypeAlias = "int | random.Random | None"
# A module's parameters grouped by name: a Value, or (nested) lists of them.
Tensor: TypeAlias = "Value | list[Tensor]"

FILE_FORMAT = "microgradient.nn"
FILE_VERSION = 1

_ACTIVATIONS: dict[str, Callable[[Value], Value] | None] = {
    "relu": Value.relu,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "linear": None,
}


# ---- modules -----------------------------------------------------------------------


class Module:
    """Base class of everything with parameters.

    A subclass overrides :meth:`parameters`; it may override ``_named_tensors``
    (names to nested lists of parameters) and ``config`` (its architecture) to
    give its saved state readable names and a shape check.

    >>> class Affine(Module):
    ...     def __init__(self) -> None:
    ...         self.a, self.b = Value(2.0), Value(1.0)
    ...     def parameters(self) -> list[Value]:
    ...         return [self.a, self.b]
    >>> Affine().state_dict()
    {'parameters': [2.0, 1.0]}
    """

    def parameters(self) -> list[Value]:
        """Every trainable ``Value`` of the module, in a fixed order."""
        return []

    def zero_grad(self) -> None:
        """Set the gradient of every parameter to 0.0 (call it before each ``backward()``)."""
        for p in self.parameters():
            p.grad = 0.0

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data; saved files must match it to load."""
        return {}

    def _named_tensors(self) -> dict[str, Tensor]:
        return {"parameters": list(self.parameters())}

    def __str__(self) -> str:
        """What ``print(module)`` shows: the module and its number of parameters."""
        count = len(self.parameters())
        return f"{self!r}: {count} parameter{'' if count == 1 else 's'}"

    def state_dict(self) -> dict[str, Any]:
        """The parameter values as plain floats in (nested) lists, ready for ``json.dumps``.

        >>> Neuron(2, seed=0).state_dict()["bias"]
        0.0
        """
        return {name: _data_of(tensor) for name, tensor in self._named_tensors().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy the values of a :meth:`state_dict` into the parameters.

        Everything is checked first: a state with missing or extra names, other
        shapes, or entries that are not numbers raises :class:`ModelShapeError`
        and leaves the model unchanged.

        >>> a, b = MLP(2, [3, 1], seed=1), MLP(2, [3, 1], seed=2)
        >>> b.load_state_dict(a.state_dict())
        >>> a.state_dict() == b.state_dict()
        True
        """
        where = f"load_state_dict into {self!r}"
        if not isinstance(state, Mapping):
            raise ModelShapeError(f"{where}: expected a mapping, got {type(state).__name__}")
        tensors = self._named_tensors()
        missing = [name for name in tensors if name not in state]
        unexpected = [name for name in state if name not in tensors]
        if missing or unexpected:
            raise ModelShapeError(
                f"{where}: the names do not match (missing {missing}, unexpected {unexpected})"
            )
        assignments: list[tuple[Value, float]] = []
        for name, tensor in tensors.items():
            _match(tensor, state[name], repr(name), where, assignments)
        for parameter, number in assignments:
            parameter.data = number

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the architecture and the parameters to a JSON file.

        The file is written next to ``path`` and then renamed over it, so an
        interrupted save never leaves a truncated model behind. JSON has no NaN
        or infinity, so a model holding one (a diverged training run) raises
        :class:`DomainError` naming the parameter, and nothing is written.
        """
        for name, parameter in _named_parameters(self._named_tensors()):
            if not math.isfinite(parameter.data):
                raise DomainError(
                    f"save {os.fspath(path)!r}: {name} of {self!r} is {parameter.data!r}; "
                    "a model file holds finite numbers only, so nothing was written "
                    "(a NaN or infinite weight usually means the training diverged)"
                )
        document = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "module": type(self).__name__,
            "config": self.config(),
            "state": self.state_dict(),
        }
        try:
            text = json.dumps(document, indent=1, allow_nan=False)
        except ValueError as error:  # a custom module's config() holding NaN or infinity
            raise DomainError(f"save {os.fspath(path)!r}: {self!r}: {error}") from None
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(text + "\n", encoding="utf-8")
        partial.replace(target)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load parameters saved by :meth:`save` into this model.

        A file for another architecture (module type, sizes, activation or
        parameter shapes), a weight that is not a finite number, or a file not
        written by :meth:`save` (not JSON, not UTF-8, nested too deeply, ...)
        raises :class:`ModelShapeError` and leaves the model unchanged. To build
        the network a file describes without knowing its shape, use :func:`load`.
        """
        where = f"load {os.fspath(path)!r} into {self!r}"
        document = _read_model_file(path, where)
        if document["module"] != type(self).__name__ or document["config"] != self.config():
            raise ModelShapeError(
                f"{where}: the file holds a {document['module']} with "
                f"{_shown(document['config'])}, the model is a {type(self).__name__} with "
                f"{self.config()}"
            )
        self.load_state_dict(document["state"])


class Neuron(Module):
    """One unit: ``activation(w · x + b)``, built as one ``dot`` node and one activation node.

    ``nonlin=False`` (micrograd's keyword) makes the neuron linear whatever
    ``activation`` says. Weights are drawn from ``seed`` (see :class:`MLP`), the
    bias starts at 0.

    >>> n = Neuron(2, activation="tanh", seed=0)
    >>> out = n([1.0, -1.0])
    >>> out.op, out.parents[0].op
    ('tanh', 'dot')
    """

    w: list[Value]
    b: Value
    nin: int

    def __init__(
        self,
        nin: int,
        nonlin: bool = True,
        *,
        activation: Activation = "relu",
        seed: Seed = None,
        init: Init = "scaled",
    ) -> None:
        self.nin = _positive_int("Neuron", "nin", nin)
        self.activation = activation if nonlin else "linear"
        bound = _init_bound(init, self.activation, nin)
        uniform = _uniform(seed)
        self.w = [Value(uniform(-bound, bound)) for _ in range(nin)]
        self.b = Value(0.0)
        self._name_parameters("")

    def _name_parameters(self, prefix: str) -> None:
        # labels naming each parameter's place (w1, b; L1.n3.w2 inside an MLP), counted from 1:
        # drawings show them, and draw(..., collapse="neuron") groups a neuron's nodes by them
        for k, weight in enumerate(self.w, start=1):
            weight.label = f"{prefix}w{k}"
        self.b.label = f"{prefix}b"

    @property
    def activation(self) -> Activation:
        """The nonlinearity applied to ``w · x + b``: relu, tanh, sigmoid or linear."""
        return self._activation

    @activation.setter
    def activation(self, name: Activation) -> None:
        if name not in _ACTIVATIONS:
            raise DomainError(
                f"activation {name!r} is not one of {', '.join(map(repr, _ACTIVATIONS))}"
            )
        self._activation = name
        self._activate = _ACTIVATIONS[name]

    @property
    def nonlin(self) -> bool:
        """micrograd's flag: False for a linear neuron."""
        return self._activation != "linear"

    def __call__(self, x: Sequence[Operand] | Operand) -> Value:
        return self._forward(*_with_bias_input(x, self.nin, self))

    def _forward(self, inputs: tuple[Operand, ...], product: _Dot) -> Value:
        # a layer prepares the inputs once for all of its neurons, and picks the dot
        # that suits them (the weights are Values, so an unchecked one if it can)
        pre_activation = product((*self.w, self.b), inputs)
        activate = self._activate
        return pre_activation if activate is None else activate(pre_activation)

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]

    def config(self) -> dict[str, Any]:
        return {"nin": self.nin, "activation": self._activation}

    def _named_tensors(self) -> dict[str, Tensor]:
        return {"weight": list(self.w), "bias": self.b}

    def __repr__(self) -> str:
        return f"Neuron({self.nin}, activation={self._activation!r})"


class Layer(Module):
    """``nout`` neurons reading the same ``nin`` inputs.

    Called on one input vector it returns a list of ``nout`` Values, or a single
    Value when ``nout == 1`` (as micrograd does); :meth:`forward` always returns a list.

    >>> layer = Layer(3, 2, seed=0)
    >>> len(layer([1.0, 2.0, 3.0])), len(layer.parameters())
    (2, 8)
    """

    neurons: list[Neuron]
    nin: int
    nout: int

    def __init__(
        self,
        nin: int,
        nout: int,
        nonlin: bool = True,
        *,
        activation: Activation = "relu",
        seed: Seed = None,
        init: Init = "scaled",
    ) -> None:
        self.nin = _positive_int("Layer", "nin", nin)
        self.nout = _positive_int("Layer", "nout", nout)
        self.activation: Activation = activation if nonlin else "linear"
        rng = _rng(seed)
        self.neurons = [
            Neuron(nin, activation=self.activation, seed=rng, init=init) for _ in range(nout)
        ]
        self._name_parameters("")

    def _name_parameters(self, prefix: str) -> None:
        for j, neuron in enumerate(self.neurons, start=1):
            neuron._name_parameters(f"{prefix}n{j}.")

    def __call__(self, x: Sequence[Operand] | Operand) -> Value | list[Value]:
        out = self.forward(x)
        return out[0] if len(out) == 1 else out

    def forward(self, x: Sequence[Operand] | Operand) -> list[Value]:
        """The outputs of all neurons, as a list even when there is only one."""
        inputs, product = _with_bias_input(x, self.nin, self)
        return [neuron._forward(inputs, product) for neuron in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for neuron in self.neurons for p in neuron.parameters()]

    def config(self) -> dict[str, Any]:
        return {"nin": self.nin, "nout": self.nout, "activation": self.activation}

    def _named_tensors(self) -> dict[str, Tensor]:
        return {
            "weight": [list(n.w) for n in self.neurons],
            "bias": [n.b for n in self.neurons],
        }

    def __repr__(self) -> str:
        return f"Layer({self.nin}, {self.nout}, activation={self.activation!r})"


class MLP(Module):
    """A multilayer perceptron: ``activation`` on every hidden layer, a linear output layer.

    ``MLP(2, [16, 16, 1])`` is micrograd's network: 2 inputs, two hidden layers
    of 16 ReLU neurons, one linear output (337 parameters).

    Initialisation: biases are 0; weights are drawn uniformly from ``(-a, a)``
    with ``a = sqrt(6 / nin)`` for ReLU neurons (He) and ``a = sqrt(3 / nin)``
    for tanh, sigmoid and linear ones (LeCun), so every layer starts with a
    similar output scale whatever its width. ``init="uniform"`` draws from
    ``(-1, 1)`` instead, as micrograd does. ``seed`` is an int or a
    ``random.Random``; with ``None`` the weights come from Python's global
    ``random`` generator, so ``random.seed(1337)`` reproduces them as it does
    in micrograd's demo.

    >>> model = MLP(2, [16, 16, 1], seed=42)
    >>> len(model.parameters())
    337
    >>> MLP(2, [16, 16, 1], seed=42).state_dict() == model.state_dict()
    True
    >>> model([0.5, -1.0]).op
    'dot'
    """

    layers: list[Layer]

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: Activation = "relu",
        *,
        seed: Seed = None,
        init: Init = "scaled",
    ) -> None:
        if isinstance(nouts, (int, str)) or not isinstance(nouts, Sequence) or not nouts:
            raise DomainError(f"MLP: nouts must be a non-empty list of layer sizes, got {nouts!r}")
        sizes = [nin, *nouts]
        for size in sizes:
            _positive_int("MLP", "every layer size", size)
        if activation not in _ACTIVATIONS:
            raise DomainError(
                f"activation {activation!r} is not one of {', '.join(map(repr, _ACTIVATIONS))}"
            )
        self.activation = activation
        rng = _rng(seed)
        last = len(nouts) - 1
        self.layers = [
            Layer(sizes[i], sizes[i + 1], i != last, activation=activation, seed=rng, init=init)
            for i in range(len(nouts))
        ]
        for i, layer in enumerate(self.layers, start=1):
            layer._name_parameters(f"L{i}.")

    @property
    def sizes(self) -> list[int]:
        """Input size followed by every layer's size, e.g. ``[2, 16, 16, 1]``."""
        return [self.layers[0].nin, *(layer.nout for layer in self.layers)]

    def __call__(self, x: Sequence[Operand] | Operand) -> Value | list[Value]:
        out = self.forward(x)
        return out[0] if len(out) == 1 else out

    def forward(self, x: Sequence[Operand] | Operand) -> list[Value]:
        """The network's outputs, as a list even when there is only one."""
        layers = self.layers
        out = layers[0].forward(x)
        for layer in layers[1:]:
            out = layer.forward(out)
        return out

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def config(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "activation": self.activation}

    def _named_tensors(self) -> dict[str, Tensor]:
        return {
            f"layers.{i}.{name}": tensor
            for i, layer in enumerate(self.layers)
            for name, tensor in layer._named_tensors().items()
        }

    def __repr__(self) -> str:
        sizes = self.sizes
        return f"MLP({sizes[0]}, {sizes[1:]}, activation={self.activation!r})"

    def __str__(self) -> str:
        """The network layer by layer, as ``print(model)`` shows it.

        >>> print(MLP(2, [16, 16, 1]))
        MLP(2, [16, 16, 1], activation='relu'): 337 parameters
          layers[0]: 2 -> 16, relu, 48 parameters
          layers[1]: 16 -> 16, relu, 272 parameters
          layers[2]: 16 -> 1, linear, 17 parameters
        """
        lines = [super().__str__()]
        for i, layer in enumerate(self.layers):
            count = len(layer.parameters())
            lines.append(
                f"  layers[{i}]: {layer.nin} -> {layer.nout}, {layer.activation}, "
                f"{count} parameter{'' if count == 1 else 's'}"
            )
        return "\n".join(lines)


_Dot: TypeAlias = Callable[[tuple[Value, ...], tuple[Any, ...]], Value]


def _with_bias_input(
    x: Sequence[Operand] | Operand, nin: int, module: Module
) -> tuple[tuple[Operand, ...], _Dot]:
    """The inputs as the neurons' dot takes them, and the dot that suits them.

    The dot is called with ``(*weights, bias)``. All-Value inputs get the engine's
    unchecked ``w · x + b`` (the bias a parent with the coefficient 1); otherwise the
    inputs are followed by the number 1 that the bias multiplies, for the unchecked
    dot of numbers when they are all floats, else for the general ``dot``.
    """
    if isinstance(x, (Value, float, int)):
        x = [x]
    if len(x) != nin:
        raise DomainError(f"{module!r}: expected {nin} inputs, got {len(x)}")
    if all(map(isinstance, x, repeat(Value))):
        return tuple(x), _neuron_of_values
    numbers = (*x, 1.0)
    return numbers, dot_of_numbers if all(map(isinstance, numbers, repeat(float))) else dot


def _neuron_of_values(weights_and_bias: tuple[Value, ...], inputs: tuple[Any, ...]) -> Value:
    return dot_of_values(weights_and_bias[:-1], inputs, weights_and_bias[-1])


def _positive_int(who: str, what: str, n: object) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DomainError(f"{who}: {what} must be a positive int, got {n!r}")
    return n


def _init_bound(init: str, activation: str, nin: int) -> float:
    if init == "uniform":
        return 1.0
    if init == "scaled":
        return math.sqrt((6.0 if activation == "relu" else 3.0) / nin)
    raise DomainError(f"init {init!r} is not 'scaled' or 'uniform'")


def _rng(seed: Seed) -> random.Random | None:
    """A generator shared by the sub-modules, so their weights differ from each other."""
    if seed is None or isinstance(seed, random.Random):
        return seed
    if isinstance(seed, int) and not isinstance(seed, bool):
        return random.Random(seed)
    raise OperandTypeError(f"seed must be an int, a random.Random or None, got {seed!r}")


def _uniform(seed: Seed) -> Callable[[float, float], float]:
    rng = _rng(seed)
    return random.uniform if rng is None else rng.uniform


def _data_of(tensor: Tensor) -> Any:
    if isinstance(tensor, Value):
        return tensor.data
    return [_data_of(t) for t in tensor]


def _match(
    tensor: Tensor,
    given: object,
    path: str,
    where: str,
    assignments: list[tuple[Value, float]],
) -> None:
    """Check ``given`` has ``tensor``'s shape; collect (parameter, number) pairs to assign."""
    if isinstance(tensor, Value):
        if not isinstance(given, numbers.Real) or isinstance(given, bool):
            raise ModelShapeError(f"{where}: {path} should be a number, got {_shown(given)}")
        try:
            number = float(given)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ModelShapeError(
                f"{where}: {path} is {_shown(given)}; every parameter must be a finite number"
            )
        assignments.append((tensor, number))
        return
    if not isinstance(given, (list, tuple)):
        raise ModelShapeError(
            f"{where}: {path} should be a list of {len(tensor)}, got {type(given).__name__}"
        )
    if len(given) != len(tensor):
        raise ModelShapeError(
            f"{where}: {path} should have {len(tensor)} entries, got {len(given)}"
        )
    for i, (t, g) in enumerate(zip(tensor, given)):
        _match(t, g, f"{path}[{i}]", where, assignments)


def _named_parameters(tensors: Mapping[str, Tensor]) -> list[tuple[str, Value]]:
    """Every parameter with its place in the state, e.g. ``'layers.0.weight'[3][1]``."""
    named: list[tuple[str, Value]] = []

    def visit(path: str, tensor: Tensor) -> None:
        if isinstance(tensor, Value):
            named.append((path, tensor))
        else:
            for i, t in enumerate(tensor):
                visit(f"{path}[{i}]", t)

    for name, tensor in tensors.items():
        visit(repr(name), tensor)
    return named


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def _shown(x: object) -> str:
    """A short repr of something read from a file, whatever its size or depth."""
    if isinstance(x, int) and abs(x) >= 10**30:
        # repr of an int beyond 4300 digits raises; a long one says nothing useful anyway
        return f"an integer of {x.bit_length()} bits"
    return _SHORT.repr(x)


def _read_model_file(path: str | os.PathLike[str], where: str) -> dict[str, Any]:
    """The document of a file written by :meth:`Module.save`, with its five entries checked.

    Anything that is not such a file raises :class:`ModelShapeError`; only a
    file that cannot be read at all raises ``OSError``.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelShapeError(
            f"{where}: not a model file: byte {error.start} ({raw[error.start]:#04x}) is not "
            "UTF-8 text, and a model file is JSON"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelShapeError(f"{where}: the file is not valid JSON ({error})") from None
    except RecursionError:
        raise ModelShapeError(f"{where}: not a model file: its JSON is nested too deeply") from None
    except ValueError as error:  # an integer literal beyond Python's 4300-digit limit
        reason = str(error).split(":")[0].lower()
        raise ModelShapeError(f"{where}: not a model file: a number in it {reason}") from None
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        raise ModelShapeError(f"{where}: not a model file (no 'format': {FILE_FORMAT!r})")
    version = document.get("version")
    if type(version) is not int or version != FILE_VERSION:
        raise ModelShapeError(
            f"{where}: file format version {_shown(version)} is not supported "
            f"(this microgradient reads version {FILE_VERSION})"
        )
    module = document.get("module")
    if not isinstance(module, str) or not module.isidentifier() or len(module) > 100:
        raise ModelShapeError(f"{where}: 'module' should name a class, got {_shown(module)}")
    for entry in ("config", "state"):
        if not isinstance(document.get(entry), dict):
            raise ModelShapeError(f"{where}: the file has no {entry!r} object")
    return document


def load(path: str | os.PathLike[str]) -> Module:
    """Build the network a file written by :meth:`Module.save` describes, with its parameters.

    Works for :class:`MLP`, :class:`Layer` and :class:`Neuron` files, so the
    architecture need not be known in advance (for your own :class:`Module`
    subclass, build one and call its :meth:`~Module.load`). A file that is not
    such a model, or whose parameters do not fit its architecture or are not
    finite numbers, raises :class:`ModelShapeError`.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.json"
    >>> MLP(2, [4, 1], activation="tanh", seed=0).save(path)
    >>> load(path)
    MLP(2, [4, 1], activation='tanh')
    """
    where = f"load {os.fspath(path)!r}"
    document = _read_model_file(path, where)
    module, config, state = document["module"], document["config"], document["state"]
    build = _BUILDERS.get(module)
    if build is None:
        raise ModelShapeError(
            f"{where}: the file holds a {module}; nn.load builds {', '.join(_BUILDERS)} "
            f"(for another module, build it and call its .load(path))"
        )
    expected_keys = set(_CONFIG_KEYS[module])
    if set(config) != expected_keys:
        raise ModelShapeError(
            f"{where}: a {module} config has the entries {sorted(expected_keys)}, "
            f"the file has {_shown(sorted(config))}"
        )
    activation = config["activation"]
    if not isinstance(activation, str) or activation not in _ACTIVATIONS:
        raise ModelShapeError(
            f"{where}: activation {_shown(activation)} is not one of "
            f"{', '.join(map(repr, _ACTIVATIONS))}"
        )
    sizes = config["sizes"] if module == "MLP" else [config["nin"], config.get("nout", 1)]
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or not all(type(n) is int and n >= 1 for n in sizes)
    ):
        raise ModelShapeError(
            f"{where}: the layer sizes should be positive integers, got {_shown(config)}"
        )
    # Compare the parameter count with the numbers present before building anything, so
    # a file claiming a 10**9-wide layer costs nothing.
    needed = sum((nin + 1) * nout for nin, nout in itertools.pairwise(sizes))
    present = _count_leaves(state)
    if needed != present:
        raise ModelShapeError(
            f"{where}: a {module} with {_shown(config)} has {needed} parameters, "
            f"the file's state holds {present} entries"
        )
    model = build(sizes, cast(Activation, activation))
    model.load_state_dict(state)
    return model


_CONFIG_KEYS = {
    "MLP": ("sizes", "activation"),
    "Layer": ("nin", "nout", "activation"),
    "Neuron": ("nin", "activation"),
}
# seed=0 only so that building does not draw from the global generator: load overwrites it all
_BUILDERS: dict[str, Callable[[list[int], Activation], Module]] = {
    "MLP": lambda sizes, activation: MLP(sizes[0], sizes[1:], activation, seed=0),
    "Layer": lambda sizes, activation: Layer(sizes[0], sizes[1], activation=activation, seed=0),
    "Neuron": lambda sizes, activation: Neuron(sizes[0], activation=activation, seed=0),
}


def _count_leaves(state: Mapping[str, Any]) -> int:
    """How many non-list entries (nested lists flattened) a state holds."""
    count = 0
    pending: list[Any] = list(state.values())
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        else:
            count += 1
    return count


# ---- losses and helpers ----------------------------------------------------------------


def l2(params: Sequence[Value]) -> Value:
    """The sum of squares of ``params`` as one ``dot`` node: an L2 penalty to add to a loss.

    >>> l2([Value(3.0), Value(4.0)]).data
    25.0
    """
    params = list(params)
    return dot(params, params)


def mse(
    predictions: Sequence[Any] | Operand,
    targets: Sequence[Any] | Operand,
    *,
    reduction: Reduction = "mean",
) -> Value:
    """Squared error: the mean (default) or sum (the source's ``Σ (ŷ - y)²``) of ``(p - t)²``.

    Scalars, vectors and batches of vectors (lists of lists) are accepted;
    predictions and targets must have the same shape, and the mean is over all
    entries (as in PyTorch). The squares and their reduction are one ``dot`` node.

    >>> mse([Value(3.0), Value(1.0)], [1.0, 1.0]).data
    2.0
    >>> mse([Value(3.0), Value(1.0)], [1.0, 1.0], reduction="sum").data
    4.0
    """
    preds: list[Operand] = []
    targs: list[Operand] = []
    _flatten_pair(predictions, targets, "mse", preds, targs)
    scale = _scale("mse", reduction, len(preds))
    residuals = [p - t for p, t in zip(preds, targs)]
    total = dot(residuals, residuals)
    return total if scale == 1.0 else total * scale


def binary_cross_entropy(
    probabilities: Sequence[Operand] | Operand,
    targets: Sequence[Operand] | Operand,
    *,
    eps: float = 1e-12,
    reduction: Reduction = "mean",
) -> Value:
    """``-[t ln(p + eps) + (1 - t) ln(1 - p + eps)]``, averaged (default) or summed.

    ``probabilities`` must lie in [0, 1] (apply ``sigmoid`` first) and targets
    in [0, 1]; anything else raises :class:`DomainError`. The small ``eps``
    inside the logs (the source's "tiny epsilon") keeps the loss finite when a
    probability is exactly 0 or 1; ``eps=0`` gives the exact formula, which then
    fails on such a probability with a log-domain error. A number target whose
    weight is 0 skips its term, so a hard label only takes the log it needs; a
    ``Value`` target (an input, to trace the loss for any labels) keeps both terms.

    >>> round(binary_cross_entropy([Value(0.5)], [1.0]).data, 6)
    0.693147
    """
    probs = _as_list(probabilities)
    targs = _as_list(targets)
    if len(probs) != len(targs):
        raise DomainError(
            f"binary_cross_entropy: {len(probs)} probabilities but {len(targs)} targets"
        )
    if not (isinstance(eps, numbers.Real) and 0.0 <= eps < 0.5):
        raise DomainError(f"binary_cross_entropy: eps must be in [0, 0.5), got {eps!r}")
    scale = _scale("binary_cross_entropy", reduction, len(probs))
    logs: list[Value] = []
    weights: list[Operand] = []
    for i, (p, t) in enumerate(zip(probs, targs)):
        p = _as_value(p, "binary_cross_entropy")
        if not 0.0 <= p.data <= 1.0:
            raise DomainError(
                f"binary_cross_entropy: probability {i} is {p.data!r}, outside [0, 1] "
                "(apply sigmoid to scores first)"
            )
        if isinstance(t, Value):  # an input of the graph: both terms, whatever its value
            _label_number(t.data, i)
            logs += [(p + eps).log(), (1.0 + eps - p).log()]
            weights += [t * -scale, (t - 1.0) * scale]
            continue
        t = _label_number(t, i)
        if t != 0.0:
            logs.append((p + eps).log())
            weights.append(-t * scale)
        if t != 1.0:
            logs.append((1.0 + eps - p).log())
            weights.append((t - 1.0) * scale)
    return dot(logs, weights)


def softmax(logits: Sequence[Operand]) -> list[Value]:
    """Probabilities ``exp(z_i) / Σ_j exp(z_j)``, stable for large logits.

    The largest logit (a ``max`` node) is subtracted first: the result is the
    same, no ``exp`` overflows, and a traced program stays stable for any logits.

    >>> [round(p.data, 4) for p in softmax([Value(1000.0), Value(1000.0)])]
    [0.5, 0.5]
    """
    zs = [_as_value(z, "softmax") for z in logits]
    if not zs:
        raise DomainError("softmax: no logits")
    shift = _largest(zs)
    exps = [(z - shift).exp() for z in zs]
    total = value_sum(exps)
    return [e / total for e in exps]


def _largest(zs: list[Value]) -> Value:
    """The largest of ``zs`` as a node of the graph (not a number frozen into it).

    Pairs are compared in a balanced tree: log2(n) levels deep rather than n, so a
    traced batch does a few wide array operations instead of many narrow ones.
    """
    level = list(zs)
    while len(level) > 1:
        paired = [max_(a, b) for a, b in zip(level[::2], level[1::2])]
        level = paired + level[len(paired) * 2 :]
    return level[0]


def cross_entropy(
    logits: Sequence[Any],
    targets: Any,
    *,
    reduction: Reduction = "mean",
) -> Value:
    """Softmax cross-entropy from raw scores, for one sample or a batch.

    One sample: ``logits`` is a list of Values and ``targets`` a class index
    or a one-hot (or soft) list. A batch: a list of such lists and a list of
    targets; the loss is averaged over the batch (or summed). Each sample costs
    ``logsumexp(z) - Σ t_j z_j`` with the log-sum-exp shifted by the largest
    logit, so logits like 1000 are fine. Its gradient is ``(softmax(z) - t) /
    batch_size`` (the source's Softmax-with-Loss backward).

    A class index picks its logit while the graph is built; to trace one loss
    for every label, give one-hot targets as ``Value``s (inputs of the graph).

    >>> z = [Value(0.0), Value(0.0)]
    >>> loss = cross_entropy(z, 1)
    >>> loss.backward()
    >>> round(loss.data, 6), [g.grad for g in z]
    (0.693147, [0.5, -0.5])
    """
    batched = len(logits) > 0 and _is_sequence(logits[0])
    rows: Sequence[Any] = logits if batched else [logits]
    labels: Sequence[Any] = targets if batched else [targets]
    if batched and not _is_sequence(targets):
        raise DomainError("cross_entropy: a batch of logits needs a list of targets")
    if len(rows) != len(labels) or not rows:
        raise DomainError(
            f"cross_entropy: {len(rows)} rows of logits but {len(labels)} targets"
            if rows
            else "cross_entropy: no logits"
        )
    scale = _scale("cross_entropy", reduction, len(rows))
    terms: list[Value] = []
    weights: list[Operand] = []
    for i, (row, label) in enumerate(zip(rows, labels)):
        zs = [_as_value(z, "cross_entropy") for z in row]
        if not zs:
            raise DomainError(f"cross_entropy: sample {i} has no logits")
        shift = _largest(zs)
        log_total = value_sum([(z - shift).exp() for z in zs]).log()
        mass: Operand
        if _is_sequence(label):
            if len(label) != len(zs):
                raise DomainError(
                    f"cross_entropy: sample {i} has {len(zs)} logits but a target of "
                    f"length {len(label)}"
                )
            target = [t if isinstance(t, Value) else _label_number(t, i) for t in label]
            for t in target:
                if isinstance(t, Value):
                    _label_number(t.data, i)
            for z, t in zip(zs, target):
                if isinstance(t, Value) or t != 0.0:
                    terms.append(z)
                    weights.append(t * -scale)
            values = [t for t in target if isinstance(t, Value)]
            numbers_ = [t for t in target if not isinstance(t, Value)]
            mass = value_sum([*values, *numbers_]) if values else math.fsum(numbers_)
        else:
            terms.append(zs[_class_index(label, len(zs), i)])
            weights.append(-scale)
            mass = 1.0
        # loss_i = mass * (log Σ exp(z - shift) + shift) - Σ t_j z_j
        terms += [log_total, shift]
        weights += [mass * scale, mass * scale]
    return dot(terms, weights)


def hinge(
    scores: Sequence[Operand] | Operand,
    labels: Sequence[Operand] | Operand,
    *,
    reduction: Reduction = "mean",
) -> Value:
    """The SVM "max-margin" loss ``max(0, 1 - y·s)`` for labels ``y`` of +1 or -1, averaged.

    A number label picks the margin's form while the graph is built (``1 - s`` or
    ``s + 1``); a ``Value`` label (an input, to trace the loss for any labels)
    enters as ``1 - y·s``.

    >>> hinge([Value(2.0), Value(0.5), Value(0.5)], [1, 1, -1]).data
    0.6666666666666666
    """
    ss = _as_list(scores)
    ys = _as_list(labels)
    if len(ss) != len(ys):
        raise DomainError(f"hinge: {len(ss)} scores but {len(ys)} labels")
    scale = _scale("hinge", reduction, len(ss))
    margins = []
    for i, (s, y) in enumerate(zip(ss, ys)):
        s = _as_value(s, "hinge")
        label = y.data if isinstance(y, Value) else y
        if label not in (1, -1):
            raise DomainError(f"hinge: label {i} is {label!r}; labels must be +1 or -1")
        if isinstance(y, Value):
            margins.append((1.0 - y * s).relu())
        # with a number y = ±1, 1 - y·s is a single node: 1 - s or s + 1
        elif y == 1:
            margins.append((1.0 - s).relu())
        else:
            margins.append((s + 1.0).relu())
    return dot(margins, [scale] * len(margins))


def _scale(who: str, reduction: str, n: int) -> float:
    if n == 0:
        raise DomainError(f"{who}: no samples")
    if reduction == "mean":
        return 1.0 / n
    if reduction == "sum":
        return 1.0
    raise DomainError(f"{who}: reduction must be 'mean' or 'sum', got {reduction!r}")


def _is_sequence(x: object) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, str)


def _as_list(x: Any) -> list[Any]:
    return list(x) if _is_sequence(x) else [x]


def _as_value(x: object, who: str) -> Value:
    if isinstance(x, Value):
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return Value(float(x))
    raise OperandTypeError(f"{who}: expected a Value or a number, got {type(x).__name__} {x!r}")


def _label_number(t: object, i: int) -> float:
    if isinstance(t, numbers.Real) and not isinstance(t, bool) and 0.0 <= float(t) <= 1.0:
        return float(t)
    raise DomainError(f"target of sample {i} has {t!r}; targets must be numbers in [0, 1]")


def _class_index(label: object, n: int, i: int) -> int:
    if not isinstance(label, numbers.Integral) or isinstance(label, bool):
        raise DomainError(f"cross_entropy: target {i} is {label!r}, not a class index or a list")
    index = int(label)
    if not 0 <= index < n:
        raise DomainError(f"cross_entropy: target {i} is class {index}, outside 0..{n - 1}")
    return index


def _flatten_pair(
    predictions: Any, targets: Any, who: str, preds: list[Operand], targs: list[Operand]
) -> None:
    """Append matching leaves of two equally shaped (nested) sequences."""
    if _is_sequence(predictions) != _is_sequence(targets):
        raise DomainError(f"{who}: predictions and targets have different shapes")
    if not _is_sequence(predictions):
        preds.append(predictions)
        targs.append(targets)
        return
    if len(predictions) != len(targets):
        raise DomainError(f"{who}: {len(predictions)} predictions but {len(targets)} targets")
    for p, t in zip(predictions, targets):
        _flatten_pair(p, t, who, preds, targs)
