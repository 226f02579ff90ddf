# ruff: noqa: RUF001 - the labels are the very characters these tests are about
"""The bundled fonts: they draw every script a label may use, and their measured widths are
the widths resvg draws.

Every picture here is rendered by resvg with :func:`fonts.resvg_options`, which loads only the
bundled font files and skips the machine's own fonts, and then read back as pixels.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

import numpy as np
import pytest
import resvg_py
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from microgradient import fonts

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
    style = (' font-style="italic"' if italic else "") + (' font-weight="bold"' if bold else "")
    return (
        f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}"'
        f' font-family="{fonts.font_family_for(text)}"{style}>{escape(text)}</text>'
    )


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


@pytest.mark.parametrize("italic, bold", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("text", LABELS)
def test_width_is_the_advance_resvg_draws(text: str, italic: bool, bold: bool) -> None:
    measured = fonts.text_width(text, SIZE, italic=italic, bold=bold)
    drawn = drawn_advance(text, SIZE, italic=italic, bold=bold)
    # never narrower than drawn (one pixel of rounding); wider only by kerning, which resvg
    # applies and the measure leaves out: at most 0.1 em a character, for pairs like "AV"
    assert measured >= drawn - 1.0, (measured, drawn)
    assert measured <= drawn + 1.0 + 0.1 * SIZE * len(text), (measured, drawn)


@pytest.mark.parametrize(
    "text", [*CHINESE, *JAPANESE, *KOREAN, "θ₁", "x₂", "ℒ", "∇", "→", "∂ℒ/∂w", "−0.2313"]
)
def test_width_matches_resvg_to_a_pixel_without_kerning_pairs(text: str) -> None:
    assert fonts.text_width(text, SIZE) == pytest.approx(drawn_advance(text, SIZE), abs=1.0)


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


def test_font_files_exist_and_the_family_list_names_them_first() -> None:
    files = fonts.font_files()
    assert files and all(path.is_file() for path in files)
    assert fonts.FONT_FAMILY.startswith("Noto Sans, Noto Sans CJK")
    assert fonts.font_family_for("苹果").startswith("Noto Sans CJK SC")
    assert fonts.font_family_for("りんご").startswith("Noto Sans CJK JP")
    assert fonts.font_family_for("사과").startswith("Noto Sans CJK KR")
    assert fonts.font_family_for("θ₁") == fonts.FONT_FAMILY


# ---- a box sized from the measures holds the ink -----------------------------------------

ALPHABET = "".join(sorted({c for text in LABELS for c in text})) + "AVWfjgyQ|[]()_-.,0123456789 "


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
    scale = 4  # draw four pixels a unit so that a touch is visible
    width = fonts.text_width(text, size, italic=italic, bold=bold)
    ascent, descent = fonts.line_metrics(size)
    pad = 0.25 * size
    box_x, box_y = 10.0, 10.0
    baseline = box_y + pad + ascent
    body = (
        f'<g transform="scale({scale})">'
        + text_element(text, box_x + pad, baseline, size, italic=italic, bold=bold, anchor="start")
        + "</g>"
    )
    box_width, box_height = width + 2 * pad, ascent + descent + 2 * pad
    pixels = render(body, (box_width + 2 * box_x) * scale, (box_height + 2 * box_y) * scale)
    rows, columns = np.nonzero(pixels < 250)
    assert rows.size, "no ink"
    inside = (
        (columns >= box_x * scale)
        & (columns < (box_x + box_width) * scale)
        & (rows >= box_y * scale)
        & (rows < (box_y + box_height) * scale)
    )
    assert inside.all(), f"ink outside the box for {text!r}"
