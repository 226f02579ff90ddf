# ruff: noqa: RUF001 - the labels are the very characters these tests are about
"""The bundled fonts: they draw every script a label may use, and their measured widths are
the widths resvg draws.

Every picture here is rendered by resvg with :func:`fonts.resvg_options`, which loads only the
bundled font files and skips the machine's own fonts, and then read back as pixels.
"""

from __future__ import annotations

import doctest
import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import resvg_py
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from microgradient import RenderError, fonts

CHINESE = ["苹果", "个数", "消费税", "蘋果價格"]
JAPANESE = ["りんご", "勾配の計算", "カタカナ"]
KOREAN = ["사과", "그래디언트"]
GREEK_AND_MATH = ["θ₁", "x₂", "ℒ", "∇", "→", "αβγδ", "∂ℒ/∂w", "x²", "w·x", "w × x", "−0.2313"]
LABELS = [*CHINESE, *JAPANESE, *KOREAN, *GREEK_AND_MATH, "L1.n3.w2", "Hello", "AVAWAT"]
NOT_IN_ANY_FONT = "\U0001f600"  # an emoji: none of the bundled fonts has it

SIZE = 40.0
INK = 160  # a pixel darker than this (of 255) is ink


def render(svg_body: str, width: float, height: float, **options: object) -> np.ndarray:
    """Greyscale pixels of an SVG body drawn by resvg on white, one pixel per user unit."""
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}">'
        f'<rect width="100%" height="100%" fill="white"/>{svg_body}</svg>'
    )
    png = resvg_py.svg_to_bytes(svg_string=svg, **(options or fonts.resvg_options()))
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def text_element(
    text: str, x: float, y: float, size: float, *, italic: bool, bold: bool, anchor: str
) -> str:
    return fonts.svg_text(text, x, y, size, anchor=anchor, italic=italic, bold=bold)


def ink_columns(pixels: np.ndarray) -> np.ndarray:
    return np.nonzero((pixels < INK).any(axis=0))[0]


def drawn_advance(text: str, size: float, *, italic: bool = False, bold: bool = False) -> float:
    """The advance width resvg gives ``text``, read from pixels.

    The text is drawn twice: starting at ``x`` and ending at ``x`` (``text-anchor="end"``, which
    places it by its advance width). The ink moves by exactly the advance, whatever the glyphs'
    side bearings, so the difference of the two leftmost ink columns is the advance.
    """
    start = 2 * size
    end = start + fonts.text_width(text, size, italic=italic, bold=bold) * 1.5 + 2 * size
    lefts = []
    for anchor, x in (("start", start), ("end", end)):
        body = text_element(text, x, size * 1.3, size, italic=italic, bold=bold, anchor=anchor)
        columns = ink_columns(render(body, end + 2 * size, size * 2))
        assert columns.size, f"{text!r} drew no ink"
        lefts.append(float(columns[0]))
    start_left, end_left = lefts
    return (end - start) - (end_left - start_left)


# ---- widths ------------------------------------------------------------------------------


def test_chinese_japanese_korean_are_wider_than_latin_of_the_same_length() -> None:
    for text in [*CHINESE, *JAPANESE, *KOREAN]:
        latin = "n" * len(text)
        assert fonts.text_width(text, 12) > 1.4 * fonts.text_width(latin, 12), text
    # an ideograph fills its em square: as wide as the font size
    assert fonts.text_width("消费税", 10) == pytest.approx(30.0)


def test_width_scales_with_size_and_adds_up_over_characters() -> None:
    assert fonts.text_width("θ₁ 苹果", 20) == pytest.approx(2 * fonts.text_width("θ₁ 苹果", 10))
    assert fonts.text_width("", 12) == 0.0
    assert fonts.text_width("ab", 12) == pytest.approx(
        fonts.text_width("a", 12) + fonts.text_width("b", 12)
    )


STYLES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("italic, bold", STYLES)
@pytest.mark.parametrize("text", LABELS)
def test_width_is_the_advance_resvg_draws(text: str, italic: bool, bold: bool) -> None:
    # at 40 px an error of 1 % of an em in any glyph would show as a pixel or more
    measured = fonts.text_width(text, SIZE, italic=italic, bold=bold)
    assert measured == pytest.approx(drawn_advance(text, SIZE, italic=italic, bold=bold), abs=1.0)


def test_kerning_is_measured() -> None:
    # "AV" is kerned in Noto Sans: narrower than "A" and "V" set apart
    pair = fonts.text_width("AV", SIZE)
    assert pair < fonts.text_width("A", SIZE) + fonts.text_width("V", SIZE) - 0.02 * SIZE
    assert pair == pytest.approx(drawn_advance("AV", SIZE), abs=1.0)


@pytest.mark.parametrize("italic, bold", STYLES)
@pytest.mark.parametrize("text", [*LABELS, "fjord", "Tj", "ƒ(x)"])
def test_ink_bounds_are_where_resvg_draws_ink(text: str, italic: bool, bold: bool) -> None:
    x, baseline = 2 * SIZE, 1.5 * SIZE
    width = fonts.text_width(text, SIZE, italic=italic, bold=bold)
    body = text_element(text, x, baseline, SIZE, italic=italic, bold=bold, anchor="start")
    rows, columns = np.nonzero(render(body, width + 4 * SIZE, 2.5 * SIZE) < 250)
    bounds = fonts.ink_bounds(text, SIZE, italic=italic, bold=bold)
    # a pixel is inked when the outline covers part of it: one pixel of slack either way
    assert columns.min() == pytest.approx(x + bounds.left, abs=1.5)
    assert columns.max() + 1 == pytest.approx(x + bounds.right, abs=1.5)
    assert rows.min() == pytest.approx(baseline - bounds.top, abs=1.5)
    assert rows.max() + 1 == pytest.approx(baseline + bounds.bottom, abs=1.5)


def ink_width(text: str, *, italic: bool) -> int:
    body = text_element(text, SIZE, SIZE, SIZE, italic=italic, bold=False, anchor="start")
    columns = ink_columns(render(body, 4 * SIZE, 1.5 * SIZE))
    return int(columns[-1] - columns[0] + 1)


def test_an_italic_minus_sign_is_as_long_as_an_upright_one() -> None:
    # Noto Sans Italic draws U+2212 as short as a hyphen, so italic numbers set it upright
    minus = ink_width("\u2212", italic=True)
    assert minus == pytest.approx(ink_width("\u2212", italic=False), abs=1)
    assert minus > 1.5 * ink_width("-", italic=True)
    assert 'font-style="normal">\u2212' in fonts.svg_text("\u22120.5", 0, 0, 10, italic=True)


@pytest.mark.parametrize("text", [" a", "a  b", "a ", " 苹果  x ", "x\u00a0=\u00a01"])
def test_spaces_are_kept_as_measured(text: str) -> None:
    assert fonts.text_width(text, SIZE) == pytest.approx(drawn_advance(text, SIZE), abs=1.0)


@pytest.mark.parametrize("italic", [False, True])
def test_line_metrics_hold_the_ink_of_every_label(italic: bool) -> None:
    line = fonts.line_metrics(SIZE)
    for text in [*LABELS, "ℊ ǙḖ gjpqy", "(x)"]:
        bounds = fonts.ink_bounds(text, SIZE, italic=italic)
        assert bounds.top <= line.ascent and bounds.bottom <= line.descent, text
    assert fonts.text_height(SIZE) == pytest.approx(line.ascent + line.descent)


def test_text_without_ink_has_empty_bounds_and_a_width() -> None:
    assert fonts.ink_bounds("  ", 12) == (0.0, 0.0, 0.0, 0.0)
    assert fonts.text_width("  ", 12) > 0


# ---- every script is drawn, not tofu -----------------------------------------------------


def glyph_picture(character: str, **options: object) -> np.ndarray:
    body = text_element(character, 10, SIZE, SIZE, italic=False, bold=False, anchor="start")
    return render(body, 2 * SIZE, 1.5 * SIZE, **options) < INK


def test_every_character_of_the_labels_is_drawn_as_its_own_glyph() -> None:
    characters = sorted({c for text in LABELS for c in text if not c.isspace()})
    tofu = glyph_picture(NOT_IN_ANY_FONT)
    assert tofu.any(), "a missing character is drawn as a box"
    pictures = {c: glyph_picture(c) for c in characters}
    for character, picture in pictures.items():
        assert picture.any(), f"{character!r} drew nothing"
        assert not np.array_equal(picture, tofu), f"{character!r} is drawn as a missing glyph"
    distinct = {picture.tobytes() for picture in pictures.values()}
    assert len(distinct) == len(pictures), "two different characters drew the same picture"


def test_the_machines_fonts_are_out_of_the_way() -> None:
    # with no font files and the system's skipped, the same text draws nothing: what the other
    # tests see was drawn by the bundled fonts alone
    options = fonts.resvg_options()
    assert options["skip_system_fonts"] is True
    bare = {**options, "font_files": []}
    for text in ["苹果", "θ₁", "Hello"]:
        assert glyph_picture(text[0]).any()
        assert not glyph_picture(text[0], **bare).any()


def test_missing_glyphs_names_only_what_no_font_has() -> None:
    assert fonts.missing_glyphs("".join(LABELS)) == ""
    assert fonts.missing_glyphs(f"a{NOT_IN_ANY_FONT}b{NOT_IN_ANY_FONT}") == NOT_IN_ANY_FONT


def test_font_files_exist_and_resvg_is_given_them_alone() -> None:
    files = fonts.font_files()
    assert files and all(path.is_file() for path in files)
    options = fonts.resvg_options()
    assert options["font_files"] == [str(path) for path in files]
    assert options["skip_system_fonts"] is True
    assert fonts.FONT_FAMILY.startswith("Noto Sans, Noto Sans CJK")


SVG = "{http://www.w3.org/2000/svg}"


def runs(element: str) -> list[tuple[str, str]]:
    """(first font family, text) of each run of a text element written by ``svg_text``."""
    text = ET.fromstring(element.replace("<text ", f'<text xmlns="{SVG[1:-1]}" ', 1))
    base = text.get("font-family", "")
    spans = list(text) or [text]
    return [((span.get("font-family") or base).split(",")[0], span.text or "") for span in spans]


def test_each_language_is_set_in_its_own_cjk_face() -> None:
    def families(text: str) -> list[tuple[str, str]]:
        return runs(fonts.svg_text(text, 0, 0, 10))

    assert families("苹果 个数") == [("Noto Sans CJK SC", "苹果 个数")]
    assert families("勾配の計算") == [("Noto Sans CJK JP", "勾配の計算")]
    assert families("사과 값") == [("Noto Sans CJK KR", "사과 값")]
    # what Noto Sans has stays in Noto Sans
    assert families("θ₁·苹果→x") == [
        ("Noto Sans", "θ₁·"),
        ("Noto Sans CJK SC", "苹果→"),
        ("Noto Sans", "x"),
    ]
    assert families("x₂ < ℒ & w") == [("Noto Sans", "x₂ < ℒ & w")]


@pytest.mark.parametrize("anchor", ["start", "middle", "end"])
def test_runs_are_placed_where_the_measures_put_them(anchor: str) -> None:
    text = "w·苹果 → ℒ₁"
    element = ET.fromstring(fonts.svg_text(text, 100, 20, 10, anchor=anchor, italic=True))
    width = fonts.text_width(text, 10, italic=True)
    start = {"start": 100, "middle": 100 - width / 2, "end": 100 - width}[anchor]
    xs = [float(span.get("x", "nan")) for span in element]
    assert xs[0] == pytest.approx(start, abs=0.01)
    # each run starts where the previous one ends
    pieces = ["w·", "苹果 → ", "ℒ₁"]
    assert ["".join(span.itertext()) for span in element] == pieces
    for index in range(1, len(pieces)):
        before = fonts.text_width("".join(pieces[:index]), 10, italic=True)
        assert xs[index] == pytest.approx(start + before, abs=0.01)


def test_an_unknown_anchor_is_refused() -> None:
    with pytest.raises(RenderError, match="'left'"):
        fonts.svg_text("x", 0, 0, 10, anchor="left")


def test_set_text_fonts_rewrites_every_plain_text_element() -> None:
    svg = (
        f'<svg xmlns="{SVG[1:-1]}"><g>'
        '<text text-anchor="middle" x="50" y="20" font-family="Times,serif" font-size="14.00"'
        ' font-style="italic" fill="#0072b2" class="mg-value">&#45;0.5 苹果</text>'
        '<text x="3" y="4">plain</text>'
        '<text x="5" y="6"><tspan>kept</tspan></text>'
        '<text x="1 2 3" y="6">also kept</text></g></svg>'
    )
    done = ET.fromstring(fonts.set_text_fonts(svg))
    mixed, plain, kept, positioned = done.iter(f"{SVG}text")
    assert mixed.get("fill") == "#0072b2" and mixed.get("class") == "mg-value"
    assert mixed.get("font-style") == "italic" and "Times" not in mixed.get("font-family", "")
    assert "".join(mixed.itertext()) == "-0.5 苹果"
    width = fonts.text_width("-0.5 苹果", 14, italic=True)
    assert float(mixed.get("x", "nan")) == pytest.approx(50 - width / 2, abs=0.01)
    assert [run[0] for run in runs(ET.tostring(mixed, encoding="unicode"))] == [
        "Noto Sans",
        "Noto Sans CJK SC",
    ]
    assert plain.get("font-family") == fonts.FONT_FAMILY and plain.get("font-size") == "16"
    assert plain.text == "plain" and plain.get("x") == "3" and plain.get("y") == "4"
    assert kept.get("font-family") is None and kept[0].text == "kept"
    assert positioned.get("font-family") is None and positioned.text == "also kept"


def test_the_module_examples_run() -> None:
    assert doctest.testmod(fonts, optionflags=doctest.ELLIPSIS).failed == 0


# ---- a box sized from the measures holds the ink -----------------------------------------

# the labels' characters, and letters that test the cutting into runs: accented letters that the
# CJK fonts lack (a shaper would build them from parts), Cyrillic, polytonic Greek, full-width forms
ALPHABET = "".join(sorted({c for text in LABELS for c in text})) + (
    "AVWfjgyQ|[]()_-.,0123456789 ĽḈẏάǼԬЖѣ჻ḖŇ，。：（）％∑∞≤√ⁱⁿ"
)


@settings(max_examples=30, deadline=None)
@given(
    text=st.text(alphabet=ALPHABET, min_size=1, max_size=10).filter(lambda t: t.strip()),
    italic=st.booleans(),
    bold=st.booleans(),
)
def test_any_mix_of_scripts_is_drawn_as_wide_as_measured(
    text: str, italic: bool, bold: bool
) -> None:
    measured = fonts.text_width(text, SIZE, italic=italic, bold=bold)
    assert measured == pytest.approx(drawn_advance(text, SIZE, italic=italic, bold=bold), abs=1.0)
    assert fonts.missing_glyphs(text) == ""


@settings(max_examples=40, deadline=None)
@given(
    text=st.text(alphabet=ALPHABET, min_size=1, max_size=12).filter(lambda t: t.strip()),
    size=st.sampled_from([9.0, 11.0, 14.0, 20.0]),
    italic=st.booleans(),
    bold=st.booleans(),
)
def test_text_stays_inside_a_box_sized_from_its_measures(
    text: str, size: float, italic: bool, bold: bool
) -> None:
    # the box a caller draws: across from min(0, left) to max(width, right), up and down by
    # the line metrics (or the ink where it reaches further), and a small margin all round
    scale = 4  # four pixels a unit, so that a touch shows
    bounds = fonts.ink_bounds(text, size, italic=italic, bold=bold)
    line = fonts.line_metrics(size)
    margin = 0.1 * size
    left = min(0.0, bounds.left) - margin
    right = max(fonts.text_width(text, size, italic=italic, bold=bold), bounds.right) + margin
    above = max(line.ascent, bounds.top) + margin
    below = max(line.descent, bounds.bottom) + margin
    x, baseline = 10.0 - left, 10.0 + above
    body = (
        f'<g transform="scale({scale})">'
        + text_element(text, x, baseline, size, italic=italic, bold=bold, anchor="start")
        + "</g>"
    )
    box = (10.0 * scale, 10.0 * scale, (x + right) * scale, (baseline + below) * scale)
    pixels = render(body, box[2] + 10 * scale, box[3] + 10 * scale)
    rows, columns = np.nonzero(pixels < 250)
    assert rows.size, "no ink"
    # the ink keeps clear of the box's border by at least a pixel all round
    assert columns.min() > box[0] and columns.max() + 1 < box[2], text
    assert rows.min() > box[1] and rows.max() + 1 < box[3], text
