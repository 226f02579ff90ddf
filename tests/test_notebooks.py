"""The notebooks are teaching material: rules their text must follow.

`make test` executes them (``pytest --nbmake notebooks``), so the hidden check
cells guard every number; these tests keep the checks out of the teaching cells
and the sources citable.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
HIDDEN = {"remove-cell", "hide-input", "remove-input"}


def cells(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["cells"])


def text(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def is_hidden(cell: dict[str, Any]) -> bool:
    return bool(HIDDEN & set(cell.get("metadata", {}).get("tags", [])))


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 7


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checks_live_in_hidden_cells_only(path: Path) -> None:
    for cell in cells(path):
        if cell["cell_type"] != "code" or is_hidden(cell):
            continue
        tree = ast.parse(text(cell))
        asserts = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
        assert not asserts, f"{path.name}: an assert in a teaching cell:\n{text(cell)}"
        assert "AssertionError" not in text(cell), f"{path.name}: a check in a teaching cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_hidden_cells_say_what_they_check(path: Path) -> None:
    for cell in cells(path):
        if is_hidden(cell):
            first_line = text(cell).split("\n", 1)[0]
            assert first_line.startswith("# Check"), f"{path.name}: {first_line!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sources_are_cited_as_a_reader_can_find_them(path: Path) -> None:
    whole = "\n".join(text(cell) for cell in cells(path))
    for private in [r"\bseed \d{3}\b", r"\bseeds? \d", "worked-examples", r"\bhere\b.*download"]:
        assert not re.search(private, whole, re.IGNORECASE), f"{path.name}: {private}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_parses_dot_source_with_regular_expressions(path: Path) -> None:
    for cell in cells(path):
        if cell["cell_type"] == "code":
            assert not ("to_dot" in text(cell) and "re." in text(cell)), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_progress_bars_come_from_tqdm_auto(path: Path) -> None:
    for cell in cells(path):
        source = text(cell)
        if cell["cell_type"] == "code" and "tqdm" in source:
            assert "from tqdm import" not in source and "file=sys.stdout" not in source
        for output in cell.get("outputs", []):
            printed = "".join(output.get("text", ""))
            assert printed.count("it/s]") + printed.count("s/it]") <= 1, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_ends_with_an_exercise(path: Path) -> None:
    last = cells(path)[-1]
    assert last["cell_type"] == "markdown" and text(last).startswith("## Exercise"), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_progress_bars_show_their_final_state(path: Path) -> None:
    for cell in cells(path):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                printed = "".join(data.get("text/plain", ""))
                assert "100%|" in printed, f"{path.name}: a stale bar {printed!r}"


def test_execute_writes_a_bars_final_state_into_its_text(tmp_path: Path) -> None:
    import nbformat

    sys.path.insert(0, str(NOTEBOOKS[0].parent))
    try:
        import execute
    finally:
        sys.path.pop(0)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from tqdm.auto import tqdm\n"
            "bar = tqdm(total=7, desc='a & b',\n"
            "           bar_format='{l_bar}{bar}| {n_fmt}/{total_fmt}{postfix}')\n"
            "for _ in range(7):\n"
            "    bar.update()\n"
            "bar.set_postfix(loss='0.5')\n"
            "bar.close()\n"
            "print('done')"
        )
    ]
    path = tmp_path / "bar.ipynb"
    nbformat.write(notebook, path)
    execute.execute(path)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert outputs[0]["data"]["text/plain"] == "a & b: 100%|██████████| 7/7, loss=0.5"
    assert outputs[1]["text"] == "done\n"
