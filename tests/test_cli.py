"""The ``microgradient`` command, run as ``python -m microgradient`` in a subprocess.

The error matrix also runs in-process through ``main()``, which is much faster;
a few of its cases go through a subprocess too, to see the real exit status
and standard error.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from microgradient.cli import main


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microgradient", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def value(output: str) -> str:
    """The number on the report's ``value = ...`` line."""
    found = re.search(r"^value +=  *(\S+)$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def rows(output: str) -> dict[str, list[str]]:
    """The table of a report: variable -> its other columns."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("variable"))
    table = {}
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith(("graph", "gradcheck")):
            break
        name, *cells = line.split()
        table[name] = cells
    return table


def test_sigmoid_value_gradients_and_graph(tmp_path: Path) -> None:
    done = run("1/(1+exp(-w*x))", "w=0", "x=1", "-o", "sigmoid.svg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == "f(w, x) = 1/(1 + exp(-(w*x)))"
    assert lines[1] == "value   = 0.5"
    assert lines[3].split() == ["variable", "value", "gradient"]
    assert rows(done.stdout) == {"w": ["0", "0.25"], "x": ["1", "0"]}
    assert lines[-1] == f"graph written to {(tmp_path / 'sigmoid.svg').resolve()}"
    svg = (tmp_path / "sigmoid.svg").read_text()
    assert "<svg" in svg and "</svg>" in svg


def test_graph_to_standard_output_moves_the_report_to_standard_error() -> None:
    done = run("x*y", "x=2", "y=3", "-o", "-")
    assert done.returncode == 0, done.stderr
    assert done.stdout.lstrip().startswith("<?xml") and "</svg>" in done.stdout
    assert "f(x, y) = x*y" in done.stderr
    assert rows(done.stderr) == {"x": ["2", "3"], "y": ["3", "2"]}


@pytest.mark.parametrize("suffix", [".dot", ".png"])
def test_the_suffix_chooses_the_format(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"graph{suffix}"
    done = run("tanh(x)", "x=0.5", "--rankdir", "TB", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert f"graph written to {target.resolve()}" in done.stdout
    data = target.read_bytes()
    if suffix == ".dot":
        assert b"digraph" in data and b"TB" in data
    else:
        assert data.startswith(b"\x89PNG")


def test_forward_only_has_no_gradients() -> None:
    done = run("x^2 + y", "x=3", "y=1", "--forward-only")
    assert done.returncode == 0, done.stderr
    assert value(done.stdout) == "10"
    assert "gradient" not in done.stdout
    assert rows(done.stdout) == {"x": ["3"], "y": ["1"]}


def test_check_passes() -> None:
    done = run("x^3 - 2*x", "x=1.5", "--check")
    assert done.returncode == 0, done.stderr
    assert rows(done.stdout) == {"x": ["1.5", "4.75"]}
    last = done.stdout.splitlines()[-1]
    assert last.startswith("gradcheck: largest |backprop - numeric| = ")
    assert last.endswith("(ok)")


def test_check_failure_exits_with_1() -> None:
    # relu'(0) is taken as 0; central differences see 0.5
    done = run("relu(x)", "x=0", "--check")
    assert done.returncode == 1
    assert "(MISMATCH)" in done.stdout
    assert "x0 is x" in done.stdout


def test_format_and_no_negative_zero() -> None:
    done = run("x*0 + 1e-9*y", "x=-1", "y=-1", "--format", ".3f")
    assert done.returncode == 0, done.stderr
    assert rows(done.stdout) == {"x": ["-1.000", "0.000"], "y": ["-1.000", "0.000"]}
    assert value(done.stdout) == "0.000"


def test_an_expression_starting_with_minus_goes_after_double_dash() -> None:
    done = run("--", "-x^2", "x=3")
    assert done.returncode == 0, done.stderr
    assert rows(done.stdout) == {"x": ["3", "-6"]}


def test_values_may_be_constant_expressions() -> None:
    done = run("sin(t)", "t=pi/2", "--format", ".4g")
    assert rows(done.stdout) == {"t": ["1.571", "6.123e-17"]}


def test_a_lone_variable_and_a_constant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["x", "x=2"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["f(x)  = x", "value = 2"]
    assert main(["2*pi"]) == 0
    assert capsys.readouterr().out == "f()   = 6.283185307179586\nvalue = 6.28319\n"


def test_help_shows_examples() -> None:
    done = run("--help")
    assert done.returncode == 0
    assert "examples:" in done.stdout
    assert "microgradient '1/(1+exp(-w*x))' w=0 x=1 -o sigmoid.svg" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["log(x)", "x=-1"], "log: x = -1.0 is not > 0; log needs a positive argument"),
        (["1+foo(x)", "x=1"], "unknown function 'foo'"),
        (["w*x", "w=0"], "no value given for variable 'x' at column 3 in 'w*x'"),
        (["w*x", "w=0", "x"], "expected name=value, got 'x'"),
        (["w*x", "w=0", "=1"], "expected name=value, got '=1'"),
        (["w*x", "w=0", "x="], "no value after '=' in 'x='"),
        (["w*x", "w=0", "x=abc"], "the value of 'x' must be a number"),
        (["w*x", "w=0", "x=1+"], "malformed value in 'x=1+': the expression ends too early"),
        (["w*x", "w=0", "x=1", "x=2"], "'x' is given a value twice"),
        (["w*x", "w=0", "x=1", "y=2"], "'y' is given a value but does not appear"),
        (["e*x", "x=1", "e=2"], "'e' cannot be a variable: it is the constant e"),
        (["x", "x=1", "1x=2"], "'1x' cannot be a variable"),
        (["2x", "x=1"], "implicit multiplication is not supported"),
        (["x.__class__", "x=1"], "there is no attribute access"),
        (["x", "x=1", "-o", "graph.txt"], "cannot tell the graph format from 'graph.txt'"),
        (["x", "x=1", "--format", ".3q"], "--format '.3q' is not a format spec"),
        (["x", "x=1", "--rankdir", "XY"], "invalid choice: 'XY'"),
        (["x", "x=1", "--check", "--forward-only"], "not allowed with argument"),
        (["-x", "x=1"], "an expression that starts with '-' goes after '--'"),
        ([], "the expression is missing"),
        (["(" * 300 + "x" + ")" * 300, "x=1"], "nested deeper than 200 levels at column 201"),
        (["x" * 20_000], "the expression is 20000 characters long"),
        (["lambda: __import__('os')"], "'lambda' is a Python keyword"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("microgradient: error: ")
    assert captured.err.count("\n") == 1
    assert message in captured.err


@pytest.mark.parametrize(
    "args",
    [["log(x)", "x=-1"], ["x.__class__.__bases__", "x=1"]],
)
def test_bad_input_through_a_real_process(args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("microgradient: error: ")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_a_graph_that_cannot_be_written(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "graph.svg"
    done = run("x*x", "x=2", "-o", str(target))
    assert done.returncode == 2
    assert done.stderr == (
        f"microgradient: error: cannot write the graph to {str(target)!r}: "
        "No such file or directory\n"
    )
    assert not target.exists()
