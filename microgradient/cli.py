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
``log(x)`` at ``x=-1``, a graph that cannot be written), 70 for an internal
error (a bug). Bad input is reported in one line on standard error; no
traceback ever reaches the user.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NoReturn, TextIO

from microgradient import __version__
from microgradient.engine import Operand, Value
from microgradient.errors import ExpressionError, GradcheckError, MicrogradientError
from microgradient.expression import parse, to_text, variables
from microgradient.gradcheck import gradcheck, largest_discrepancy

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE in sysexits.h

GRAPH_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv", ".html")

_DESCRIPTION = """\
Compute the value of an expression and its gradient with respect to every
variable by reverse-mode automatic differentiation, and draw its graph."""

_EPILOG = """\
the expression language:
  numbers (2, .5, 1e-3), names, + - * /, ** or ^ for powers, unary -,
  parentheses, exp log sqrt tanh sigmoid relu sin cos abs, and the constants
  e and pi (e^u is exp(u)). A leading minus covers the whole product: -w*x is
  -(w*x). A value may be a constant expression: x=pi/4.

examples:
  microgradient '1/(1+exp(-w*x))' w=0 x=1 -o sigmoid.svg
  microgradient 'x^3 - 2*x' x=1.5 --check
  microgradient 'tanh(w1*x1 + w2*x2 + b)' w1=-3 x1=2 w2=1 x2=0 b=6.88 -o neuron.png
  microgradient 'sin(t)^2 + cos(t)^2' t=pi/3 --format .3f
  microgradient 'log(x)' x=2 -o - > graph.svg     (SVG to standard output)
  microgradient -- '-x^2' x=3                     (-- before an expression starting with -)

exit status: 0 ok, 1 --check found a mismatch, 2 bad input"""


class _BadInput(Exception):
    """A problem with what the user typed: reported in one line, exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        if "unrecognized arguments: -" in message:
            message += " (an expression that starts with '-' goes after '--')"
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
    args = _arguments().parse_intermixed_args(head)
    words = [*args.words, *tail]
    if not words:
        raise _BadInput("the expression is missing (see microgradient --help)")
    args.expression, args.assignments = words[0], words[1:]
    return args


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
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=f"write the graph; the format comes from the suffix ({', '.join(GRAPH_SUFFIXES)}); "
        "'-' writes SVG to standard output and the report to standard error",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--forward-only", action="store_true", help="compute the value only: no backward pass"
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="also compare the gradients with finite differences (gradcheck); "
        "exit with status 1 if they disagree",
    )
    parser.add_argument(
        "--rankdir",
        choices=("LR", "RL", "TB", "BT"),
        default="LR",
        help="the direction the graph flows (default: LR, left to right)",
    )
    parser.add_argument(
        "--format",
        default=".6g",
        metavar="SPEC",
        help="a Python format spec for numbers, in the table and the graph (default: .6g)",
    )
    parser.add_argument("--version", action="version", version=f"microgradient {__version__}")
    return parser


def _run(args: argparse.Namespace) -> int:
    text: str = args.expression
    spec: str = args.format
    output: str | None = args.output
    try:
        format(1.0, spec)
    except ValueError as error:
        raise _BadInput(f"--format {spec!r} is not a format spec for numbers ({error})") from None
    if output not in (None, "-") and os.path.splitext(output)[1].lower() not in GRAPH_SUFFIXES:
        raise _BadInput(
            f"cannot tell the graph format from {output!r}: "
            f"name the file with one of {', '.join(GRAPH_SUFFIXES)}, or use -o - for SVG"
        )
    point = _assignments(args.assignments)
    leaves = {name: Value(number, label=name) for name, number in point.items()}
    try:
        names = variables(text)
        root = parse(text, **leaves)
    except ExpressionError as error:
        raise _BadInput(_one_line(error, text)) from None
    unused = [name for name in point if name not in names]
    if unused:  # most likely a typo, which would otherwise pass unnoticed
        raise _BadInput(f"{unused[0]!r} is given a value but does not appear in the expression")
    if not args.forward_only:
        try:
            root.backward()
        except MicrogradientError as error:
            raise _BadInput(f"backward pass: {error}") from None

    # with -o -, standard output carries the SVG, so the report goes to standard error
    report = sys.stderr if output == "-" else sys.stdout
    _report(root, [leaves[name] for name in names], spec, args.forward_only, report)
    status = _check(text, names, [point[name] for name in names], report) if args.check else EXIT_OK
    if output is not None:
        _write_graph(root, output, args, report)
    return status


def _assignments(items: Sequence[str]) -> dict[str, float]:
    """The ``name=value`` arguments; a value may be any constant expression (``pi/4``)."""
    point: dict[str, float] = {}
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise _BadInput(f"expected name=value, got {item!r} (for example x=1.5)")
        if name in point:
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


def _report(root: Value, leaves: list[Value], spec: str, forward_only: bool, out: TextIO) -> None:
    signature = f"f({', '.join(leaf.label for leaf in leaves)})"
    width = max(len(signature), len("value"))
    print(f"{signature:<{width}} = {to_text(root)}", file=out)
    print(f"{'value':<{width}} = {_number(root.data, spec)}", file=out)
    if not leaves:
        return
    header = ["variable", "value"] if forward_only else ["variable", "value", "gradient"]
    rows = [header]
    for leaf in leaves:
        row = [leaf.label, _number(leaf.data, spec)]
        rows.append(row if forward_only else [*row, _number(leaf.grad, spec)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print(file=out)
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=out)


def _number(x: float, spec: str) -> str:
    """``x`` formatted with ``spec``, never as a negative zero (-0, -0.00)."""
    text = format(x, spec)
    digits = [c for c in text if c.isdigit()]
    if text.startswith("-") and digits and set(digits) == {"0"}:
        return text[1:]
    return text


def _check(text: str, names: list[str], point: list[float], out: TextIO) -> int:
    """Run gradcheck at ``point``; print the largest discrepancy, and a table if it fails."""

    def f(*args: Operand) -> Value:
        return parse(text, **dict(zip(names, args)))

    try:
        discrepancy = largest_discrepancy(f, *point)
        gradcheck(f, *point)
    except GradcheckError as error:
        print(f"gradcheck: largest |backprop - numeric| = {discrepancy:.2g} (MISMATCH)", file=out)
        inputs = ", ".join(f"x{i} is {name}" for i, name in enumerate(names))
        print(f"{error}\n({inputs})", file=out)
        return EXIT_CHECK_FAILED
    except ExpressionError as error:
        summary = str(error).splitlines()[0]
        print(f"gradcheck: cannot take finite differences here: {summary}", file=out)
        return EXIT_CHECK_FAILED
    print(f"gradcheck: largest |backprop - numeric| = {discrepancy:.2g} (ok)", file=out)
    return EXIT_OK


def _write_graph(root: Value, output: str, args: argparse.Namespace, report: TextIO) -> None:
    # imported here: the report needs no drawing, and drawing brings in Graphviz
    from microgradient.render import save_graph, to_svg

    show: Literal["forward", "both"] = "forward" if args.forward_only else "both"
    try:
        if output == "-":
            sys.stdout.write(
                to_svg(root, rankdir=args.rankdir, show=show, number_format=args.format)
            )
            return
        save_graph(root, output, rankdir=args.rankdir, show=show, number_format=args.format)
    except (MicrogradientError, OSError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise _BadInput(f"cannot write the graph to {output!r}: {reason}") from None
    print(f"graph written to {Path(output).resolve()}", file=report)
