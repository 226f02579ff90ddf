"""Execute the notebooks and save their outputs: ``make notebooks`` (or name some).

A progress bar from ``tqdm.auto`` is a widget: a viewer that runs no widgets (GitHub,
a terminal) shows the plain-text copy taken when the bar was first displayed, a
stale "0%". After each cell runs, this writes every bar's final state (from the
widget state the notebook saves anyway) into that text copy, so every viewer shows
the bar as it ended.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent
BAR_WIDTH = 10  # tqdm's own width for a text bar in a notebook


def model_id(reference: str) -> str:
    return reference.removeprefix("IPY_MODEL_")


def final_bar_text(state: dict[str, dict[str, Any]], box_id: str) -> str | None:
    """The text tqdm would print for the bar in widget `box_id` (None if it is no bar).

    tqdm.notebook draws a bar as an HBox of [HTML left text, FloatProgress, HTML right
    text], the text cut around the bar with its spaces made figure spaces.
    """
    children = [model_id(child) for child in state.get(box_id, {}).get("children", [])]
    if state.get(box_id, {}).get("_model_name") != "HBoxModel" or len(children) != 3:
        return None
    left, progress, right = (state.get(child, {}) for child in children)
    kinds = [part.get("_model_name") for part in (left, progress, right)]
    if kinds != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    full = progress.get("max") or 1
    filled = round(BAR_WIDTH * min(1.0, progress.get("value", 0) / full))
    bar = "█" * filled + " " * (BAR_WIDTH - filled)
    text = f"{html.unescape(left.get('value', ''))}|{bar}|{html.unescape(right.get('value', ''))}"
    return text.replace("\u2007", " ")


def execute(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=1800, resources={"metadata": {"path": HERE}})

    def finish_bars(cell: Any, **_: Any) -> None:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view is not None:
                text = final_bar_text(client.widget_state, view["model_id"])
                if text is not None:
                    output["data"]["text/plain"] = text

    client.on_cell_executed = finish_bars
    client.execute()
    nbformat.write(notebook, path)


def main(names: list[str]) -> None:
    paths = [HERE / name for name in names] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        print(f"executing {path.name}", flush=True)
        execute(path)


if __name__ == "__main__":
    main(sys.argv[1:])
