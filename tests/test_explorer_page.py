"""The explorer page in a real browser: Chromium driven by Playwright (pytest-playwright).

Playwright cannot download its own browsers here, so the system's Chromium
(Debian's ``chromium`` package) is used. Without it these tests are skipped,
with the reason, unless ``MICROGRADIENT_REQUIRE_BROWSER=1`` (set by CI), which
turns a missing browser into a failure. Screenshots are saved under
``test-results/explorer/`` as artefacts.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import microgradient as mg
from microgradient import Value

if os.environ.get("MICROGRADIENT_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")

ARTEFACTS = Path(__file__).resolve().parent.parent / "test-results" / "explorer"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_path() -> str:
    found = os.environ.get("MICROGRADIENT_CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if found:
        return found
    reason = "no Chromium on PATH (install Debian's chromium package) for the explorer page tests"
    if os.environ.get("MICROGRADIENT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; MICROGRADIENT_REQUIRE_BROWSER=1 requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options, pointed at the system's Chromium."""
    return {**browser_type_launch_args, "executable_path": chromium_path(), "args": CHROMIUM_FLAGS}


class Watched:
    """A page whose network requests (all blocked) and console errors are recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda message: self._console(message))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.context.route("**/*", self._route)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _route(self, route: Any) -> None:
        if route.request.url == self.document:
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def open(self, path: Path) -> None:
        self.document = path.resolve().as_uri()
        self.page.goto(self.document)
        self.page.wait_for_function("window.microgradient && window.microgradient.explorers.length")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate("window.microgradient.explorers[0].state()")
        return result

    def screenshot(self, name: str) -> None:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTEFACTS / name), full_page=True)


@pytest.fixture
def watched(page: Any) -> Iterator[Watched]:
    page.set_viewport_size({"width": 1280, "height": 720})
    watched = Watched(page)
    yield watched
    assert watched.requests == [], "the page must fetch nothing"
    assert watched.errors == [], "the page must log no errors"


NEURON_POINT = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.88}


def neuron(**point: float) -> Value:
    """A neuron with a reused input, tanh(w1*x1 + w2*x2 + b) * x1, at a point."""
    leaves = {name: Value(data, label=name) for name, data in {**NEURON_POINT, **point}.items()}
    n = leaves["w1"] * leaves["x1"] + leaves["w2"] * leaves["x2"] + leaves["b"]
    return n.tanh() * leaves["x1"]


def python_state(root: Value) -> list[tuple[float, float]]:
    root.backward()
    return [(node.data, node.grad) for node in mg.topological_order(root)]


def assert_state_matches(state: dict[str, Any], expected: list[tuple[float, float]]) -> None:
    assert len(state["nodes"]) == len(expected)
    for node, (data, grad) in zip(state["nodes"], expected, strict=True):
        assert node["error"] is None
        assert math.isclose(node["value"], data, rel_tol=1e-12, abs_tol=1e-15), node
        assert math.isclose(node["grad"], grad, rel_tol=1e-12, abs_tol=1e-15), node


def test_the_saved_page_works_offline_and_shows_the_engine_numbers(
    watched: Watched, tmp_path: Path
) -> None:
    root = neuron()
    path = mg.save_graph(root, tmp_path / "neuron.html")
    watched.open(path)
    state = watched.state()
    assert state["step"] == state["total"] == 2 * 6 + 1  # six operations, forward and back
    assert_state_matches(state, python_state(root))
    watched.screenshot("neuron-complete.png")


def test_buttons_and_keys_step_through_the_passes(watched: Watched, tmp_path: Path) -> None:
    root = neuron()
    watched.open(mg.explore(root).save(tmp_path / "neuron.html"))
    page = watched.page
    total = watched.state()["total"]

    page.get_by_role("button", name="Reset", exact=True).click()
    assert watched.state()["step"] == 0
    page.get_by_role("button", name="Step forward", exact=True).click()
    page.keyboard.press("ArrowRight")
    state = watched.state()
    assert state["step"] == 2
    computed = [node for node in state["nodes"] if node["op"] and node["value"] is not None]
    assert len(computed) == 2 and all(node["grad"] is None for node in state["nodes"])
    watched.screenshot("neuron-forward-step-2.png")

    page.get_by_role("button", name="Step back", exact=True).click()
    assert watched.state()["step"] == 1
    page.keyboard.press("End")
    assert watched.state()["step"] == total
    page.keyboard.press("Home")
    assert watched.state()["step"] == 0
    page.evaluate("window.microgradient.explorers[0].step(9)")
    state = watched.state()
    assert state["step"] == 9
    with_grad = [node for node in state["nodes"] if node["grad"] is not None]
    assert 0 < len(with_grad) < len(state["nodes"])  # the backward pass is under way
    explanation = page.locator(".mg-explain").inner_text()
    assert "upstream \N{MULTIPLICATION SIGN} local" in explanation
    watched.screenshot("neuron-backward-step-9.png")

    page.keyboard.press("Home")
    page.get_by_role("button", name="Play", exact=True).click()
    pause = page.get_by_role("button", name="Pause", exact=True)
    pause.wait_for()
    page.wait_for_function("window.microgradient.explorers[0].state().step >= 2")
    pause.click()
    page.get_by_role("button", name="Play", exact=True).wait_for()


def test_editing_a_leaf_recomputes_everything_as_the_engine_does(
    watched: Watched, tmp_path: Path
) -> None:
    watched.open(mg.explore(neuron()).save(tmp_path / "neuron.html"))
    watched.page.locator('input[data-leaf="w1"]').fill("0.75")
    assert_state_matches(watched.state(), python_state(neuron(w1=0.75)))

    watched.page.evaluate("window.microgradient.explorers[0].setLeaf('x1', -1.5)")
    assert_state_matches(watched.state(), python_state(neuron(w1=0.75, x1=-1.5)))
    assert watched.page.locator('input[data-leaf="x1"]').input_value() == "-1.5"

    watched.page.get_by_role("button", name="Check gradients", exact=True).click()
    assert "5 of 5 gradients agree" in watched.page.locator(".mg-check").inner_text()
    watched.screenshot("neuron-edited.png")


def test_a_domain_error_is_shown_on_its_node_in_words(watched: Watched, tmp_path: Path) -> None:
    x = Value(2.0, label="x")
    root = (x - 1).log() * x
    watched.open(mg.explore(root).save(tmp_path / "log.html"))
    watched.page.evaluate("window.microgradient.explorers[0].setLeaf('x', 0.5)")
    state = watched.state()
    log_node = next(node for node in state["nodes"] if node["op"] == "log")
    assert log_node["value"] is None and "log needs a positive argument" in log_node["error"]
    assert all(node["grad"] is None for node in state["nodes"])
    on_node = watched.page.locator(f'g.mg-node[data-node="{log_node["id"]}"] text.mg-error-label')
    assert "log needs a positive argument" in on_node.text_content()
    text = watched.page.locator("body").inner_text() + on_node.text_content()
    assert "NaN" not in text and "nan" not in text.split()
    watched.screenshot("log-domain-error.png")

    watched.page.evaluate("window.microgradient.explorers[0].setLeaf('x', 3)")
    assert watched.state()["nodes"][-1]["error"] is None
    assert watched.page.locator("text.mg-error-label").count() == 0


def test_a_node_explains_its_gradient_as_a_sum_over_paths(watched: Watched, tmp_path: Path) -> None:
    x = Value(3.0, label="x")
    root = x * x + x
    watched.open(mg.explore(root).save(tmp_path / "square.html"))
    watched.page.locator('g.mg-node[data-node="0"]').click()
    detail = watched.page.locator(".mg-detail").inner_text()
    assert "x is used 3 times" in detail
    assert "Paths to the output (3)" in detail
    assert "7" in detail  # d(x*x + x)/dx = 2x + 1


def test_the_notebook_display_keeps_explorers_apart_and_has_a_static_picture(
    watched: Watched, tmp_path: Path
) -> None:
    a, b = Value(1.0, label="a"), Value(2.0, label="b")
    bundles = [mg.explore(a.exp())._repr_mimebundle_(), mg.explore(b * b)._repr_mimebundle_()]
    assert all(bundle["image/svg+xml"].lstrip().startswith("<") for bundle in bundles)
    notebook = tmp_path / "notebook.html"
    frames = "".join(bundle["text/html"] for bundle in bundles)
    notebook.write_text(f"<!DOCTYPE html><html><body>{frames}</body></html>", encoding="utf-8")
    watched.document = notebook.resolve().as_uri()
    watched.page.goto(watched.document)
    frames_seen = [frame for frame in watched.page.frames if frame != watched.page.main_frame]
    assert len(frames_seen) == 2
    for frame, value in zip(frames_seen, (math.e, 4.0), strict=True):
        frame.wait_for_function("window.microgradient && window.microgradient.explorers.length")
        state = frame.evaluate("window.microgradient.explorers.map(e => e.state())")
        assert len(state) == 1 and math.isclose(state[0]["nodes"][-1]["value"], value)


def test_a_graph_with_an_operation_the_page_cannot_evaluate_is_shown_but_not_edited(
    watched: Watched, tmp_path: Path
) -> None:
    x = Value(3.0, label="x")
    square = Value(x.data**2, (x,), "square")

    def step() -> None:
        x.grad += 2 * x.data * square.grad

    square._backward = step
    watched.open(mg.explore(square + x).save(tmp_path / "square.html"))
    assert watched.page.locator('input[data-leaf="x"]').is_disabled()
    assert "Editing is off" in watched.page.locator(".mg-leaves").inner_text()
    state = watched.state()
    assert [node["grad"] for node in state["nodes"]] == [7.0, 1.0, 1.0]
    watched.page.keyboard.press("Home")
    watched.page.keyboard.press("ArrowRight")
    assert watched.state()["nodes"][1]["value"] == 9.0


def sum_of_products(n: int) -> Value:
    terms = [Value(0.1 * i, label=f"w{i}") * Value(1.0 - 0.01 * i, label=f"x{i}") for i in range(n)]
    return mg.sum(terms)


@pytest.mark.parametrize(("pairs", "limit"), [(3, 300_000), (166, 2_000_000)])
def test_the_page_stays_small(pairs: int, limit: int) -> None:
    root = sum_of_products(pairs)
    assert len(mg.topological_order(root)) in (10, 499)
    assert len(mg.explore(root).html.encode("utf-8")) <= limit
