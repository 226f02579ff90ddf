"""The ``microgradient`` command, run as ``python -m microgradient`` in a subprocess.

The error matrix also runs in-process through ``main()``, which is much faster;
a few of its cases go through a subprocess too, to see the real exit status
and standard error.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import microgradient as mg
from microgradient import render
from microgradient.cli import main
from microgradient.expression import display_width
from microgradient.render import NUMBER_FORMAT


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


def check_rows(output: str) -> dict[str, list[str]]:
    """The table of ``--check``: variable -> backprop, numeric, difference, how."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("variable  backprop"))
    table = {}
    for line in lines[start + 1 :]:
        if line.startswith("gradcheck"):
            break
        name, *cells = line.split(maxsplit=4)
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
    assert done.stdout.splitlines()[-1].startswith("gradcheck: ok (")


def test_check_failure_exits_with_1() -> None:
    # relu'(0) is taken as 0; central differences see 0.5
    done = run("relu(x)", "x=0", "--check")
    assert done.returncode == 1
    assert check_rows(done.stdout)["x"][:3] == ["0", "0.5", "0.5"]
    assert "<- MISMATCH" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("gradcheck: MISMATCH for 1 of 1")


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
    assert capsys.readouterr().out == "f()   = 2*pi\nvalue = 6.283\n"


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
        (["x", "x=1", "--format", ".3q"], "--number-format '.3q' is not a format spec"),
        (["x", "x=1", "--number-format", "q"], "--number-format 'q' is not a format spec"),
        (["x", "x=1", "--dpi", "-3"], "expected a positive number, got '-3'"),
        (["x", "x=1", "--max-nodes", "many"], "expected a positive whole number, got 'many'"),
        (["x", "x=1", "--max-nodes", "2.5"], "expected a positive whole number, got '2.5'"),
        (["x", "x=1", "--dpi", "nan"], "expected a positive number, got 'nan'"),
        (["x", "x=1", "--style", "fancy"], "invalid choice: 'fancy'"),
        (["x", "x=1", "--collapse", "net"], "invalid choice: 'net'"),
        (["x", "x=1", "--steps", "s.png"], "--steps writes an animated GIF"),
        (["x", "x=1", "--steps", "s.gif", "--forward-only"], "--steps draws the backward pass"),
        (["x", "x=1", "--show", "backward", "--forward-only"], "--show backward needs gradients"),
        (["x", "x=1", "-q"], "unrecognized arguments: -q"),
        (["x^y", "x=0", "y=0"], "0^0 with a variable exponent: 0^0 is 1, but its slope"),
        (["(-1.0)^0.5"], "(-1)^0.5 is not a real number"),
        (["x*x - x*x", "x=1e200"], "'x*x' is inf, so the value is nan"),
        (["exp(x)", "x=1000"], "the value of 'exp(x)' is inf: a result went beyond the largest"),
        (["x*x", "ｘ=1", "x=2"], "'x' is given a value twice"),
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


def test_the_report_keeps_what_the_user_typed(capsys: pytest.CaptureFixture[str]) -> None:
    for typed, shown in [
        ("x+1", "x + 1"),
        ("sqrt(2*pi)*x", "sqrt(2*pi)*x"),
        ("x²+3×x", "x² + 3×x"),
        ("-w*x", "-(w*x)"),  # the reading made visible
    ]:
        assert main(["--", typed, "x=1", "w=2"] if "w" in typed else [typed, "x=1"]) == 0
        assert capsys.readouterr().out.splitlines()[0].split("= ", 1)[1] == shown


def test_names_in_any_script_line_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["苹果*个数 + θ₁", "苹果=100", "个数=2", "θ₁=0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "f(苹果, 个数, θ₁) = 苹果*个数 + θ₁"
    assert lines[1] == "value" + " " * 13 + "= 200.5"  # the "=" under the "=" above: 苹 is 2 wide
    assert rows("\n".join(lines)) == {
        "苹果": ["100", "2"],
        "个数": ["2", "100"],
        "θ₁": ["0.5", "1"],
    }
    table = lines[lines.index("variable  value  gradient") :]
    # every column starts at the same place on the screen, Chinese taking two columns a character
    for row in table[1:]:
        name, value, _ = row.split()
        assert display_width(row[: row.index(value, len(name))]) == table[0].index("value")


def test_a_formula_editors_italic_x_is_x(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["𝑥^2", "x=3"]) == 0
    assert rows(capsys.readouterr().out) == {"𝑥": ["3", "6"]}


def test_check_names_the_variables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["w*x + b", "w=2", "x=3", "b=1", "--check"]) == 0
    out = capsys.readouterr().out
    table = check_rows(out)
    assert list(table) == ["w", "x", "b"]
    assert [cells[:2] for cells in table.values()] == [["3", "3"], ["2", "2"], ["1", "1"]]
    assert [cells[3] for cells in table.values()] == [
        f"central, step {h}" for h in (2e-6, 3e-6, 1e-6)
    ]
    assert "x0" not in out


@pytest.mark.parametrize(
    ("args", "slope", "how"),
    [
        # central points x ± 1e-6 would leave the domain: a step relative to x stays inside
        (["log(x)", "x=1e-9"], "1e+09", "central, step 1e-15 relative to the value"),
        (["sqrt(x)", "x=1e-12"], "5e+05", "central, step 1e-18 relative to the value"),
        # at the edge itself only one side is inside; an infinite slope grows as the step shrinks
        (["sqrt(x)", "x=0"], "inf", "one-sided forward, step 1e-06"),
        (["sqrt(x - 1)", "x=1"], "inf", "one-sided forward, step 1e-06"),
        (["sqrt(1 - x)", "x=1"], "-inf", "one-sided backward, step 1e-06"),
        (
            ["x*sqrt(x)", "x=0"],
            "0",
            "one-sided forward, step 1e-06 (at the edge of the domain): tends to 0",
        ),
    ],
)
def test_check_stays_inside_the_domain(
    args: list[str], slope: str, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--check"]) == 0
    out = capsys.readouterr().out
    backprop, numeric, _, method = check_rows(out)["x"]
    assert backprop == numeric == slope
    assert method.startswith(how)
    assert "at column" not in out


def test_check_without_variables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["2*pi", "--check"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "gradcheck: nothing to check (the expression has no variables)"
    )


def test_check_where_no_difference_fits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sqrt(-x*x)", "x=0", "--check"]) == 1
    out = capsys.readouterr().out
    assert "none: sqrt: " in check_rows(out)["x"][3]
    assert "at column" not in out
    assert out.splitlines()[-1].startswith("gradcheck: MISMATCH for 1 of 1")


def test_too_large_a_graph_names_the_option(tmp_path: Path) -> None:
    long = "+".join(["x"] * 600)
    done = run(long, "x=1", "-o", "big.svg", cwd=tmp_path)
    assert done.returncode == 2
    assert "the graph has 600 nodes, more than the default allows" in done.stderr
    assert "pass --max-nodes 600 to draw it anyway" in done.stderr
    assert "max_nodes=" not in done.stderr
    done = run("x*x*x*x", "x=1", "--max-nodes", "3", "-o", "small.svg", cwd=tmp_path)
    assert "more than --max-nodes 3 allows" in done.stderr
    done = run("x*x*x*x", "x=1", "--max-nodes", "4", "-o", "small.svg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_the_leading_minus_hint_only_when_that_is_the_cause(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["-w*x", "w=1", "x=2"]) == 2
    err = capsys.readouterr().err
    assert "an expression that starts with '-' goes after '--'" in err
    assert "microgradient -- '-w*x' w=1 x=2" in err
    for args in (["x", "x=1", "-q"], ["x", "x=1", "--colour"], ["x", "-x=1"]):
        assert main(args) == 2
        assert "starts with '-'" not in capsys.readouterr().err


def test_drawing_options_reach_save_graph_and_save_steps(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def recorder(kind: str) -> Callable[..., Path]:
        def record(root: mg.Value, path: str, **options: Any) -> Path:
            calls.append((kind, str(path), options))
            return Path(path)

        return record

    monkeypatch.setattr(render, "save_graph", recorder("graph"))
    monkeypatch.setattr(render, "save_steps", recorder("steps"))
    args = ["w*x", "w=2", "x=3", "-o", "page.html", "--steps", "steps.gif"]
    options = ["--style", "record", "--collapse", "neuron", "--show", "backward", "--dpi", "72"]
    options += ["--number-format", ".2f", "--no-legend", "--max-nodes", "40", "--rankdir", "TB"]
    assert main([*args, *options]) == 0
    expected = {
        "style": "record",
        "collapse": "neuron",
        "show": "backward",
        "dpi": 72.0,
        "number_format": ".2f",
        "legend": False,
        "max_nodes": 40,
        "rankdir": "TB",
    }
    assert calls == [("graph", "page.html", expected), ("steps", "steps.gif", expected)]
    assert "value   = 6.00\n" in capsys.readouterr().out
    calls.clear()
    # the drawing's own defaults stand for options not given; numbers share one format
    assert main(["w*x", "w=2", "x=3", "-o", "g.svg", "--forward-only"]) == 0
    assert calls == [("graph", "g.svg", {"number_format": NUMBER_FORMAT, "show": "forward"})]
    assert "value   = 6\n" in capsys.readouterr().out


def test_drawing_options_draw_what_the_library_draws(tmp_path: Path) -> None:
    def drawn(*options: str, name: str = "g.svg") -> Path:
        done = run("w*x + b", "w=2", "x=3", "b=-1", "-o", name, *options, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return tmp_path / name

    def expected(**options: Any) -> str:
        root = mg.parse("w*x + b", w=2, x=3, b=-1)
        root.backward()
        return render.to_svg(root, **options)

    for flags, options in [
        ((), {}),
        (
            ("--style", "record", "--number-format", ".2f"),
            {"style": "record", "number_format": ".2f"},
        ),
        (("--show", "forward", "--rankdir", "TB"), {"show": "forward", "rankdir": "TB"}),
        (("--no-legend", "--collapse", "neuron"), {"legend": False, "collapse": "neuron"}),
    ]:
        assert drawn(*flags).read_text(encoding="utf-8") == expected(**options), flags
    # and the pictures differ, so the comparison above can fail
    assert len({expected(), expected(style="record"), expected(legend=False)}) == 3

    from PIL import Image

    sizes = [Image.open(drawn("--dpi", dpi, name=f"{dpi}.png")).size for dpi in ("72", "144")]
    assert sizes[1][0] == pytest.approx(2 * sizes[0][0], abs=2)

    done = run("w*x + b", "w=2", "x=3", "b=-1", "--steps", "steps.gif", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"backward steps written to {(tmp_path / 'steps.gif').resolve()}" in done.stdout
    root = mg.parse("w*x + b", w=2, x=3, b=-1)
    with Image.open(tmp_path / "steps.gif") as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == len(list(render.backward_steps(root))) == 3  # seed, +, *


def test_an_html_page_to_explore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "sigmoid.html"
    assert main(["1/(1+exp(-w*x))", "w=0", "x=1", "-o", str(page)]) == 0
    assert f"graph written to {page.resolve()}" in capsys.readouterr().out
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert len(re.findall(r'class="mg-node"', html)) >= 7  # w, x and five operations


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(st.sampled_from("xy2.+-*/^()√²×−e ") | st.characters(), max_size=20),
    assignments=st.lists(
        st.sampled_from(["x=1", "y=-2", "x=0", "y=1e300", "x=pi", "z=1", "x"]), max_size=3
    ),
    mode=st.sampled_from([[], ["--check"], ["--forward-only"]]),
)
def test_no_input_is_an_internal_error(
    text: str, assignments: list[str], mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # with no traceback: a problem with the input is one line and status 2, never a crash
    status = main([*mode, "--", text, *assignments])
    err = capsys.readouterr().err
    assert status in (0, 1, 2), err
    assert "internal error" not in err
    assert (status == 2) == err.startswith("microgradient: error: ")
