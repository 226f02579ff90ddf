"""The README's Python examples run as written and print what they show.

Each ```python block of README.md runs in a fresh interpreter, in an empty
temporary directory. A print statement with a trailing comment shows its
result, ``print(h.data, w.grad)  # 0.5 0.25``: the line it prints must equal
the comment's text exactly. A ```python block followed directly by a ```text
block shows there what its other print statements (those without a comment)
print, and must print exactly that. A block that raises fails with its traceback.
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
OUTPUT_FENCE = re.compile(r"\s*^```text[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)

# Runs one block with print recording which line of the block printed what.
RUNNER = """
import builtins, io, json, sys
source_path, records_path = sys.argv[1], sys.argv[2]
records = []
printing = builtins.print

def recording_print(*args, **kwargs):
    if kwargs.get("file") is not None:
        return printing(*args, **kwargs)
    buffer = io.StringIO()
    printing(*args, **{**kwargs, "file": buffer})
    caller = sys._getframe(1)
    while caller is not None and caller.f_code.co_filename != source_path:
        caller = caller.f_back
    if caller is not None:
        records.append([caller.f_lineno, buffer.getvalue()])
    sys.stdout.write(buffer.getvalue())

builtins.print = recording_print
source = open(source_path, encoding="utf-8").read()
try:
    exec(compile(source, source_path, "exec"), {"__name__": "__main__"})
finally:
    with open(records_path, "w", encoding="utf-8") as file:
        json.dump(records, file)
"""


@dataclass(frozen=True)
class Block:
    line: int  # README line of the block's first line of code
    source: str
    output: str | None = None  # the ```text block right after it: everything it prints


@dataclass(frozen=True)
class Shown:
    first: int  # the print statement's lines in the block, 1-based
    last: int
    text: str  # the comment: what the statement must print


def python_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        output = OUTPUT_FENCE.match(text, match.end())
        blocks.append(
            Block(
                text.count("\n", 0, match.start(1)) + 1,
                match.group(1),
                output.group(1) if output else None,
            )
        )
    return blocks


def shown_results(source: str) -> list[Shown]:
    """Every print statement that ends with a comment, with the comment's text."""
    comments = {
        token.start[0]: token.string[1:].strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    shown = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "print"
        ):
            last = node.end_lineno or node.lineno
            if last in comments:
                shown.append(Shown(node.lineno, last, comments[last]))
    return shown


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_examples_with_shown_results() -> None:
    assert len(BLOCKS) >= 5
    assert sum(len(shown_results(block.source)) for block in BLOCKS) >= 5


def test_the_convention_is_read_as_documented() -> None:
    text = "Intro.\n\n```python\nx = 1\nprint(x)  # 1\nprint(\n    x,\n    2,\n)  # 1 2\n```\n"
    (block,) = python_blocks(text)
    assert block.line == 4 and block.output is None
    assert shown_results(block.source) == [Shown(2, 2, "1"), Shown(3, 6, "1 2")]
    (block,) = python_blocks(text + "\n```text\n1\n1 2\n```\n\n```text\nnot output\n```\n")
    assert block.output == "1\n1 2\n"


@dataclass(frozen=True)
class Run:
    process: subprocess.CompletedProcess[str]
    shown: list[Shown]  # what each print statement with a comment printed
    other: str  # what the block's other print statements printed


def run_block(block: Block, where: Path) -> Run:
    source_path = where / f"README.md-line-{block.line}.py"
    source_path.write_text(block.source, encoding="utf-8")
    (where / "runner.py").write_text(RUNNER, encoding="utf-8")
    records_path = where / "records.json"
    process = subprocess.run(
        [sys.executable, "runner.py", str(source_path), str(records_path)],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
    )
    records = json.loads(records_path.read_text(encoding="utf-8")) if records_path.exists() else []
    annotated = shown_results(block.source)
    results = [
        Shown(s.first, s.last, "".join(t for line, t in records if s.first <= line <= s.last))
        for s in annotated
    ]
    other = "".join(
        t for line, t in records if not any(s.first <= line <= s.last for s in annotated)
    )
    return Run(process, results, other)


def check_block(block: Block, where: Path) -> None:
    run = run_block(block, where)
    process, printed = run.process, run.shown
    if process.returncode != 0:
        pytest.fail(
            f"the README block at line {block.line} raised:\n{process.stderr}", pytrace=False
        )
    if block.output is not None and run.other != block.output:
        pytest.fail(
            f"the README block at line {block.line} printed\n{run.other}\n"
            f"and the README shows\n{block.output}",
            pytrace=False,
        )
    for shown, result in zip(shown_results(block.source), printed, strict=True):
        line = block.line + shown.first - 1
        if result.text == "":
            pytest.fail(f"README line {line}: the print never ran", pytrace=False)
        for text in result.text.splitlines():
            if text != shown.text:
                pytest.fail(
                    f"README line {line}: printed {text!r}, the README shows {shown.text!r}",
                    pytrace=False,
                )


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line-{b.line}" for b in BLOCKS])
def test_readme_block_runs_and_prints_what_it_shows(block: Block, tmp_path: Path) -> None:
    check_block(block, tmp_path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("print(1 + 1)  # 3\n", "printed '2', the README shows '3'"),
        ("print(1)\nraise ValueError('broken example')\n", "ValueError: broken example"),
        ("if False:\n    print(1)  # 1\n", "the print never ran"),
        ("for i in range(2):\n    print(i)  # 0\n", "printed '1', the README shows '0'"),
        ("print('a\\nb')  # a\n", "printed 'b', the README shows 'a'"),
    ],
)
def test_a_wrong_or_broken_example_fails_loudly(source: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=re.escape(message)):
        check_block(Block(1, source), tmp_path)


def test_a_text_block_after_an_example_is_what_its_other_prints_print(tmp_path: Path) -> None:
    source = "print(1)\nprint(2)  # 2\nprint('a b')\n"
    check_block(Block(1, source, "1\na b\n"), tmp_path)
    with pytest.raises(pytest.fail.Exception, match="and the README shows\n1\na c"):
        check_block(Block(1, source, "1\na c\n"), tmp_path)


def test_prints_to_a_file_and_from_functions_are_attributed_to_their_line(tmp_path: Path) -> None:
    source = (
        "import sys\n"
        "def show(x):\n"
        "    print(x * 2)\n"
        "print('to stderr', file=sys.stderr)\n"
        "print(show(2))  # 4\n"
    )
    # show() prints 4 from line 3 and then print prints None from line 5
    with pytest.raises(pytest.fail.Exception, match=re.escape("printed 'None'")):
        check_block(Block(1, source), tmp_path)
    check_block(Block(1, "def show(x):\n    return x * 2\nprint(show(2))  # 4\n"), tmp_path)
