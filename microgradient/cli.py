"""The ``microgradient`` command: the value, every gradient and the graph of an expression.

    $ microgradient '1/(1+exp(-w*x))' w=0 x=1 -o sigmoid.svg
    f(w, x) = 1/(1 + exp(-(w*x)))
    value   = 0.5

    variable  value  gradient
    w         0      0.25
    x         1      0
    graph written to /home/me/sigmoid.svg

Exit status: 0 on success, 1 when ``--check`` finds that backpropagation and
finite differences disagree, 2 for bad input (an expression outside the
language, a missing or malformed ``name=value``, a domain error such as
``log(x)`` at ``x=-1``, a value that overflows, a graph that cannot be
written), 70 for an internal error (a bug). Bad input is reported in one line
on standard error; no traceback ever reaches the user.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TextIO

from microgradient import __version__
from microgradient.engine import Value, topological_order
from microgradient.errors import ExpressionError, GraphTooLargeError, MicrogradientError
from microgradient.expression import display_width, parse, same_name, to_text, variables
from microgradient.render import NUMBER_FORMAT

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE in sysexits.h

GRAPH_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv", ".html")

# --check: the step of a finite difference, relative to max(1, |x|), and when slopes agree
# (|backprop - numeric| <= ATOL + RTOL*|numeric|, gradcheck's defaults)
STEP = 1e-6
ATOL = 1e-5
RTOL = 1e-4

_DESCRIPTION = """\
Compute the value of an expression and its gradient with respect to every
variable by reverse-mode automatic differentiation, and draw its graph."""

_EPILOG = """\
the expression language:
  numbers (2, .5, 1e-3), names in any script (x, θ₁, 苹果), + - * /, ** or ^
  for powers, unary -, parentheses, the functions exp log ln sqrt tanh
  sigmoid relu sin cos abs tan atan softplus max(a, b) min(a, b) pow(x, y),
  and the constants e and pi (e^u is exp(u)). Pasted symbols work too:
  × · ÷ − √x x² x⁻¹. A leading minus covers the whole product: -w*x is
  -(w*x). A value may be a constant expression: x=pi/4.

examples:
  microgradient '1/(1+exp(-w*x))' w=0 x=1 -o sigmoid.svg
  microgradient 'x^3 - 2*x' x=1.5 --check
  microgradient 'tanh(w1*x1 + w2*x2 + b)' w1=-3 x1=2 w2=1 x2=0 b=6.88 -o neuron.png
  microgradient '苹果*个数 + 橘子*个数' 苹果=100 橘子=150 个数=2 --style record -o shop.svg
  microgradient 'sin(t)^2 + cos(t)^2' t=pi/3 --number-format .3f
  microgradient 'w*x + b' w=2 x=-1 b=0.5 --steps steps.gif   (animated backward pass)
  microgradient 'log(x)' x=2 -o - > graph.svg     (SVG to standard output)
  microgradient -- '-x^2' x=3                     (-- before an expression starting with -)

exit status: 0 ok, 1 --check found a mismatch, 2 bad input"""


class _BadInput(Exception):
    """A problem with what the user typed: reported in one line, exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _BadInput(f"{message} (see microgradient --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``) and return its exit status.

    >>> main(["2*x", "x=3", "--forward-only"])
    f(x)  = 2*x
    value = 6
    <BLANKLINE>
    variable  value
    x         3
    0
    """
    try:
        return _run(_parse_arguments(sys.argv[1:] if argv is None else list(argv)))
    except _BadInput as error:
        print(f"microgradient: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): say nothing, and keep Python's exit-time flush quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # a bug: report it, but never as a traceback
        print(
            f"microgradient: internal error: {type(error).__name__}: {error} (please report this)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


def _parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The options, plus ``expression`` and ``assignments`` from the positional words.

    Options may come after the expression (``microgradient 'x*x' x=3 -o g.svg``),
    which needs argparse's intermixed parsing; that parsing mishandles ``--``, so
    the words after ``--`` are set aside first.
    """
    head, tail = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    args, unknown = _arguments().parse_known_intermixed_args(head)
    words = [*args.words, *tail]
    if unknown:
        raise _BadInput(_unknown_problem(unknown, words))
    if not words:
        raise _BadInput("the expression is missing (see microgradient --help)")
    args.expression, args.assignments = words[0], words[1:]
    if args.forward_only and args.steps:
        raise _BadInput("--steps draws the backward pass, which --forward-only leaves out")
    if args.forward_only and args.show not in (None, "forward"):
        raise _BadInput(f"--show {args.show} needs gradients, which --forward-only leaves out")
    return args


def _unknown_problem(unknown: list[str], words: list[str]) -> str:
    """What to say about arguments that are not options: perhaps an expression starting with -."""
    first = unknown[0]
    if all("=" in word for word in words):  # no expression among the words: is it this one?
        try:
            variables(first)
        except ExpressionError:
            pass
        else:
            rest = " ".join(shlex.quote(word) for word in words)
            return (
                f"unrecognized option {first!r}: an expression that starts with '-' goes "
                f"after '--', as in: microgradient -- {shlex.quote(first)} {rest}".rstrip()
            )
    return f"unrecognized arguments: {' '.join(unknown)} (see microgradient --help)"


def _arguments() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="microgradient",
        usage="%(prog)s [options] [--] expression [name=value ...]",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "words",
        nargs="*",
        metavar="expression [name=value ...]",
        help="the expression, quoted for the shell, then the value of each variable",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--forward-only", action="store_true", help="compute the value only: no backward pass"
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="also compare each gradient with a finite difference; "
        "exit with status 1 if they disagree",
    )
    parser.add_argument(
        "--number-format",
        "--format",
        default=NUMBER_FORMAT,
        metavar="SPEC",
        help=f"a Python format spec for numbers, in the table and the graph "
        f"(default: {NUMBER_FORMAT})",
    )
    drawing = parser.add_argument_group("drawing the graph")
    drawing.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=f"write the graph; the format comes from the suffix ({', '.join(GRAPH_SUFFIXES)}; "
        ".html is a page to explore it in a browser); "
        "'-' writes SVG to standard output and the report to standard error",
    )
    drawing.add_argument(
        "--steps",
        metavar="FILE.gif",
        help="write the backward pass, one node at a time, as an animated GIF",
    )
    drawing.add_argument(
        "--style",
        choices=("textbook", "record"),
        help="textbook: values and gradients on the edges (the default); "
        "record: every node a box with its label, value and gradient",
    )
    drawing.add_argument(
        "--collapse",
        choices=("neuron", "layer"),
        help="draw each neuron, or each layer, of a network as one box",
    )
    drawing.add_argument(
        "--rankdir",
        choices=("LR", "RL", "TB", "BT"),
        help="the direction the graph flows (default: LR, left to right)",
    )
    drawing.add_argument(
        "--show",
        choices=("both", "forward", "backward"),
        help="the numbers drawn: values and gradients (default), or only one of them",
    )
    drawing.add_argument(
        "--dpi", type=_positive(float), metavar="N", help="the resolution of a PNG or GIF"
    )
    drawing.add_argument(
        "--no-legend",
        dest="legend",
        action="store_false",
        default=None,
        help="leave out the legend that says how values and gradients are drawn",
    )
    drawing.add_argument(
        "--max-nodes",
        type=_positive(int),
        metavar="N",
        help="draw graphs of up to N nodes; a larger one is refused with the N that would do",
    )
    parser.add_argument("--version", action="version", version=f"microgradient {__version__}")
    return parser


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse type: a positive finite number of ``kind``."""
    wanted = "a positive whole number" if kind is int else "a positive number"

    def convert(text: str) -> float:
        try:
            number = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not number > 0 or math.isinf(number):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return number

    return convert


def _run(args: argparse.Namespace) -> int:
    text: str = args.expression
    spec: str = args.number_format
    output: str | None = args.output
    try:
        format(1.0, spec)
    except ValueError as error:
        raise _BadInput(
            f"--number-format {spec!r} is not a format spec for numbers ({error})"
        ) from None
    if output not in (None, "-") and os.path.splitext(output)[1].lower() not in GRAPH_SUFFIXES:
        raise _BadInput(
            f"cannot tell the graph format from {output!r}: "
            f"name the file with one of {', '.join(GRAPH_SUFFIXES)}, or use -o - for SVG"
        )
    if args.steps and os.path.splitext(args.steps)[1].lower() != ".gif":
        raise _BadInput(f"--steps writes an animated GIF: name the file *.gif, not {args.steps!r}")
    point = _assignments(args.assignments)
    try:
        names = variables(text)
        root = parse(text, **point)
    except ExpressionError as error:
        raise _BadInput(_one_line(error, text)) from None
    unused = [given for given in point if not any(same_name(given, name) for name in names)]
    if unused:  # most likely a typo, which would otherwise pass unnoticed
        raise _BadInput(f"{unused[0]!r} is given a value but does not appear in the expression")
    _refuse_overflow(root, text)
    # each name's leaf, found by its label: the name as the expression spells it
    leaves = {node.label: node for node in topological_order(root) if not node.op and node.label}
    if not args.forward_only:
        try:
            root.backward()
        except MicrogradientError as error:
            raise _BadInput(f"backward pass: {error}") from None
        _refuse_undefined_gradients(root)

    # with -o -, standard output carries the SVG, so the report goes to standard error
    report = sys.stderr if output == "-" else sys.stdout
    _report(root, [leaves[name] for name in names], spec, args.forward_only, report)
    status = EXIT_OK
    if args.check:
        point_by_name = {name: leaves[name].data for name in names}
        gradients = {name: float(leaves[name].grad) for name in names}
        status = _check(text, point_by_name, gradients, spec, report)
    options = _drawing_options(args)
    if output is not None:
        _write_graph(root, output, options, report)
    if args.steps:
        _write_steps(root, args.steps, options, report)
    return status


def _assignments(items: Sequence[str]) -> dict[str, float]:
    """The ``name=value`` arguments; a value may be any constant expression (``pi/4``)."""
    point: dict[str, float] = {}
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise _BadInput(f"expected name=value, got {item!r} (for example x=1.5)")
        if any(same_name(name, given) for given in point):
            raise _BadInput(f"{name!r} is given a value twice")
        if not value.strip():
            raise _BadInput(f"no value after '=' in {item!r}")
        try:
            unknown = variables(value)
            if unknown:
                raise _BadInput(
                    f"the value of {name!r} must be a number or a constant expression "
                    f"such as pi/4; {unknown[0]!r} is neither"
                )
            point[name] = parse(value).data
        except ExpressionError as error:
            raise _BadInput(f"malformed value in {item!r}: {_one_line(error, value)}") from None
    return point


def _one_line(error: ExpressionError, text: str) -> str:
    """The summary line of ``error``, naming the input if it is short enough to read."""
    summary, *display = str(error).splitlines()
    return f"{summary} in {text!r}" if display and len(text) <= 60 else summary


def _refuse_overflow(root: Value, text: str) -> None:
    """Say where a value first left the floats (inf, or nan from inf - inf), if one did."""
    if math.isfinite(root.data):
        return
    first = next(node for node in topological_order(root) if not math.isfinite(node.data))
    if first is root:
        where = f"the value of {text!r} is {first.data}"
    else:
        where = f"{_shown(first)} is {first.data}, so the value is {root.data}"
    raise _BadInput(
        f"{where}: a result went beyond the largest float (about 1.8e308); "
        "try smaller values, or rearrange the expression"
    )


def _refuse_undefined_gradients(root: Value) -> None:
    """An infinite gradient can be right (sqrt at 0); a nan one means the pass lost the number."""
    for node in reversed(topological_order(root)):
        if math.isnan(node.grad):
            raise _BadInput(
                f"backward pass: the gradient with respect to {_shown(node)} is nan "
                "(an infinite derivative met a zero one); try values further from the edges"
            )


def _shown(node: Value) -> str:
    """A node of the graph, as text if that is short."""
    try:
        return repr(to_text(node, max_nodes=30))
    except GraphTooLargeError:
        return f"the result of {node.op!r}"


def _report(root: Value, leaves: list[Value], spec: str, forward_only: bool, out: TextIO) -> None:
    signature = f"f({', '.join(leaf.label for leaf in leaves)})"
    width = max(display_width(signature), len("value"))
    # str() of what parse returns is the expression as typed
    print(f"{signature}{' ' * (width - display_width(signature))} = {root}", file=out)
    print(f"{'value':<{width}} = {_number(root.data, spec)}", file=out)
    if not leaves:
        return
    header = ["variable", "value"] if forward_only else ["variable", "value", "gradient"]
    rows = [header]
    for leaf in leaves:
        row = [leaf.label, _number(leaf.data, spec)]
        rows.append(row if forward_only else [*row, _number(leaf.grad, spec)])
    _table(rows, out)


def _table(rows: list[list[str]], out: TextIO) -> None:
    # names in Chinese take two columns a character, as the caret under an error does
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(file=out)
    for row in rows:
        cells = [cell + " " * (width - display_width(cell)) for cell, width in zip(row, widths)]
        print("  ".join(cells).rstrip(), file=out)


def _number(x: float, spec: str) -> str:
    """``x`` formatted with ``spec``, never as a negative zero (-0, -0.00)."""
    text = format(x, spec)
    digits = [c for c in text if c.isdigit()]
    if text.startswith("-") and digits and set(digits) == {"0"}:
        return text[1:]
    return text


class _Slope(NamedTuple):
    """A finite-difference slope, and how it was taken."""

    value: float
    method: str


def _check(
    text: str, point: dict[str, float], gradients: dict[str, float], spec: str, out: TextIO
) -> int:
    """Compare each backprop gradient with a finite difference; print a table, return status."""
    if not point:
        print("gradcheck: nothing to check (the expression has no variables)", file=out)
        return EXIT_OK
    rows = [["variable", "backprop", "numeric", "difference", "finite difference"]]
    failed = 0
    for name, x in point.items():
        analytic = gradients[name]

        def f(t: float, name: str = name) -> float:
            return parse(text, **{**point, name: t}).data

        try:
            slope = _slope(f, x, analytic)
        except ExpressionError as error:
            cause = error.__cause__ or error
            reason = str(cause).splitlines()[0]
            rows.append([name, _number(analytic, spec), "-", "-", f"none: {reason}"])
            failed += 1
            continue
        difference = 0.0 if analytic == slope.value else abs(analytic - slope.value)
        agree = _agree(analytic, slope.value)
        failed += not agree
        mark = "" if agree else "  <- MISMATCH"
        rows.append(
            [
                name,
                _number(analytic, spec),
                _number(slope.value, spec),
                f"{difference:.2g}",
                slope.method + mark,
            ]
        )
    _table(rows, out)
    verdict = "ok" if not failed else f"MISMATCH for {failed} of {len(point)}"
    print(
        f"gradcheck: {verdict} (backprop against finite differences, "
        f"tolerance {ATOL:g} + {RTOL:g}*|numeric|)",
        file=out,
    )
    return EXIT_CHECK_FAILED if failed else EXIT_OK


def _slope(f: Callable[[float], float], x: float, analytic: float) -> _Slope:
    """The slope of ``f`` at ``x`` by the best finite difference whose points ``f`` accepts.

    A central difference with step h = 1e-6 * max(1, |x|) first. Near the edge
    of a domain (``log(x)`` at 1e-9) a step relative to ``x`` keeps both points
    inside; at the edge itself (``sqrt(x)`` at 0) only a one-sided difference
    can, with the second-order formula (-3f(x) + 4f(x±h) - f(x±2h)) / ±2h. There
    backprop also agrees with differences that tend to it as the step shrinks,
    an infinite slope with differences that grow without bound.
    """
    h = STEP * max(1.0, abs(x))
    steps = [(h, "central, step {h:.1g}")]
    if x != 0.0 and abs(x) < 1.0:
        steps.append((STEP * abs(x), "central, step {h:.1g} relative to the value (near an edge)"))
    first_error: ExpressionError | None = None
    for step, method in steps:
        try:
            return _Slope((f(x + step) - f(x - step)) / (2 * step), method.format(h=step))
        except ExpressionError as error:
            first_error = first_error or error
    for sign, side in ((1.0, "forward"), (-1.0, "backward")):
        try:
            slope = _one_sided(f, x, sign * h)
            finer = _one_sided(f, x, sign * h * 1e-4)
        except ExpressionError:
            continue
        method = f"one-sided {side}, step {h:.1g} (at the edge of the domain)"
        # at an edge a slope may be infinite, or the function not smooth (x**1.5 at 0): a
        # step 10_000 times smaller that moves 10 times nearer backprop is taken as agreement
        if math.isinf(analytic):
            nearer = abs(finer) > 10 * abs(slope) and (finer > 0) == (analytic > 0)
        else:
            nearer = abs(finer - analytic) < abs(slope - analytic) / 10
        if nearer and not _agree(analytic, slope):
            return _Slope(analytic, f"{method}: {_limit(analytic)} as the step shrinks")
        return _Slope(slope, method)
    assert first_error is not None
    raise first_error


def _limit(analytic: float) -> str:
    return "grows without bound" if math.isinf(analytic) else f"tends to {analytic:.6g}"


def _agree(analytic: float, numeric: float) -> bool:
    return analytic == numeric or abs(analytic - numeric) <= ATOL + RTOL * abs(numeric)


def _one_sided(f: Callable[[float], float], x: float, h: float) -> float:
    return (-3 * f(x) + 4 * f(x + h) - f(x + 2 * h)) / (2 * h)


def _drawing_options(args: argparse.Namespace) -> dict[str, Any]:
    """The drawing options the user gave (the drawing's defaults stand for the others)."""
    options = {
        name: getattr(args, name)
        for name in ("style", "collapse", "rankdir", "show", "dpi", "legend", "max_nodes")
        if getattr(args, name) is not None
    }
    if args.forward_only:
        options["show"] = "forward"
    return {**options, "number_format": args.number_format}


def _write_graph(root: Value, output: str, options: dict[str, Any], report: TextIO) -> None:
    # imported here: the report needs no drawing
    from microgradient.render import save_graph, to_svg

    try:
        if output == "-":
            sys.stdout.write(to_svg(root, **options))
            return
        save_graph(root, output, **options)
    except GraphTooLargeError:
        raise _BadInput(_too_large(root, options)) from None
    except (MicrogradientError, OSError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise _BadInput(f"cannot write the graph to {output!r}: {reason}") from None
    print(f"graph written to {Path(output).resolve()}", file=report)


def _write_steps(root: Value, path: str, options: dict[str, Any], report: TextIO) -> None:
    from microgradient.render import save_steps

    try:
        save_steps(root, path, **options)
    except GraphTooLargeError:
        raise _BadInput(_too_large(root, options)) from None
    except (MicrogradientError, OSError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise _BadInput(f"cannot write the backward steps to {path!r}: {reason}") from None
    print(f"backward steps written to {Path(path).resolve()}", file=report)


def _too_large(root: Value, options: dict[str, Any]) -> str:
    size = len(topological_order(root))
    limit = f"--max-nodes {options['max_nodes']}" if "max_nodes" in options else "the default"
    return (
        f"the graph has {size} nodes, more than {limit} allows: laying it out could take "
        f"minutes and the picture would be unreadable; pass --max-nodes {size} to draw it anyway"
    )
