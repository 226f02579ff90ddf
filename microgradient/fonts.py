# ruff: noqa: RUF002 - the docstrings show the very characters this module is about
"""The fonts every picture is drawn with, and the widths of text set in them.

Labels may be in any language a teacher uses: Latin, Greek (``θ₁``), Chinese (``苹果``), Japanese,
Korean, with sub- and superscripts and mathematical signs (``ℒ ∇ ∂ → ×``). Two font packages from
the package index cover all of that, so a picture is drawn the same on every machine, even one
with no fonts installed:

- Noto Sans (package ``fontpkg-noto-sans``; upright and italic variable fonts): Latin, Greek,
  Cyrillic, sub- and superscripts, letterlike symbols such as ``ℒ``.
- Noto Sans CJK (package ``noto-cjk-sans-otc``; one collection with the Simplified Chinese,
  Traditional Chinese, Japanese and Korean faces): Han characters, kana, hangul, and arrows and
  operators such as ``∇ ∂ → ≤``.

Both are under the SIL Open Font License 1.1.

The rasteriser (resvg) is given these files and nothing else (:func:`resvg_options`). Widths are
measured from the fonts' own glyph metrics with fontTools, following the rasteriser's rules for
choosing a font: the first family of the ``font-family`` list that is present draws the text; a
character it lacks comes from the first other font, in the order of :func:`font_files`, that has
it, and if that font has every character of the text, it draws the whole text. Write each text
element with ``font-family`` set to :func:`font_family_for` of its text, and its width is
:func:`text_width`.

>>> from microgradient import fonts
>>> fonts.text_width("苹果", 10) > fonts.text_width("ab", 10)
True
>>> fonts.missing_glyphs("θ₁ 苹果 ∇ℒ")
''
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from fontTools.ttLib import TTCollection, TTFont

__all__ = [
    "FONT_FAMILY",
    "LineMetrics",
    "font_family_for",
    "font_files",
    "line_metrics",
    "missing_glyphs",
    "resvg_options",
    "text_height",
    "text_width",
]

_LATIN = "Noto Sans"
_CJK = {
    "Chinese": "Noto Sans CJK SC",
    "Japanese": "Noto Sans CJK JP",
    "Korean": "Noto Sans CJK KR",
}
_GENERIC = "sans-serif"

#: The CSS ``font-family`` list for text with no Chinese, Japanese or Korean in it: Noto Sans, then
#: Noto Sans CJK, then the viewer's own sans-serif. A browser picks a font for each character from
#: it; the rasteriser draws with the first family it has and falls back as the module docstring
#: says, so write :func:`font_family_for` of the text instead where the text is known.
FONT_FAMILY = ", ".join([_LATIN, _CJK["Chinese"], _CJK["Japanese"], _CJK["Korean"], _GENERIC])

_BOLD_WEIGHT = 700.0


def font_files() -> list[Path]:
    """The font files to give the rasteriser, in the order it must load them.

    The order matters: for a character the text's font lacks, resvg takes the first font loaded
    that has it, and :func:`text_width` assumes this order.

    >>> [path.suffix for path in font_files()]
    ['.ttf', '.ttf', '.ttc']
    """
    latin = resources.files("fontpkg_noto_sans").joinpath("files")
    cjk = resources.files("noto_cjk_sans_otc")
    return [
        Path(str(latin.joinpath("NotoSans[wdth,wght].ttf"))),
        Path(str(latin.joinpath("NotoSans-Italic[wdth,wght].ttf"))),
        Path(str(cjk.joinpath("NotoSansCJK-Regular.ttc"))),
    ]


def resvg_options() -> dict[str, Any]:
    """Keyword arguments for ``resvg_py.svg_to_bytes`` that draw text with these fonts only.

    The machine's own fonts are skipped, so a PNG looks the same everywhere.

    >>> import resvg_py
    >>> svg = (
    ...     '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
    ...     '<text y="15">∇ℒ</text></svg>'
    ... )
    >>> resvg_py.svg_to_bytes(svg_string=svg, **resvg_options())[:4]
    b'\\x89PNG'
    """
    return {
        "font_files": [str(path) for path in font_files()],
        "font_family": _LATIN,
        "sans_serif_family": _LATIN,
        "skip_system_fonts": True,
    }


def font_family_for(text: str) -> str:
    """The ``font-family`` list to write on an SVG text element showing ``text``.

    Text with Han characters, kana or hangul is set in the Noto Sans CJK face for its language
    (hangul: Korean; kana: Japanese; Han characters alone: Simplified Chinese), so its characters
    take that language's shapes; other text in Noto Sans.

    >>> font_family_for("x₁")
    'Noto Sans, Noto Sans CJK SC, Noto Sans CJK JP, Noto Sans CJK KR, sans-serif'
    >>> font_family_for("勾配の計算").split(", ")[0]
    'Noto Sans CJK JP'
    """
    language = _cjk_language(text)
    if language is None:
        return FONT_FAMILY
    first = _CJK[language]
    rest = [family for family in _CJK.values() if family != first]
    return ", ".join([first, _LATIN, *rest, _GENERIC])


def text_width(text: str, size: float, *, italic: bool = False, bold: bool = False) -> float:
    """The advance width of ``text`` set at font size ``size``, in the units of ``size``.

    Measured from the glyphs the rasteriser draws when the text element's ``font-family`` is
    :func:`font_family_for` of ``text``. Kerning is not subtracted, so the width is at most a
    little wider than the drawn text, never narrower. A character no font has counts as the
    width of the blank box drawn for it.

    >>> round(text_width("苹果", 12), 6)
    24.0
    >>> text_width("x₁", 12, italic=True) > 0
    True
    """
    return _width_in_em(text, italic, bold) * size


def missing_glyphs(text: str) -> str:
    """The characters of ``text`` that none of the fonts can draw, each once, in order.

    Callers warn about these: they would be drawn as blank boxes.

    >>> missing_glyphs("a😀b😀")
    '😀'
    """
    seen: dict[str, None] = {}
    for character in text:
        if not _is_drawn(character):
            continue
        if not any(face.has(character) for face in _faces()):
            seen.setdefault(character)
    return "".join(seen)


class LineMetrics(NamedTuple):
    """Vertical extent of a line of text from its baseline, in the units of the font size."""

    ascent: float
    """How far the tallest glyph of any font may reach above the baseline."""
    descent: float
    """How far the deepest glyph may reach below the baseline (a positive number)."""


def line_metrics(size: float) -> LineMetrics:
    """The ascent and descent of a line set at ``size``, taken over all the fonts.

    Any label, in any of the scripts, fits between ``baseline - ascent`` and
    ``baseline + descent``; a box of that height around it never touches its ink.

    >>> metrics = line_metrics(10)
    >>> 8 < metrics.ascent < 13 and 2 < metrics.descent < 4
    True
    """
    ascent, descent = _line_metrics_in_em()
    return LineMetrics(ascent * size, descent * size)


def text_height(size: float) -> float:
    """The height of a line set at ``size``: ascent plus descent from :func:`line_metrics`.

    >>> text_height(10) == sum(line_metrics(10))
    True
    """
    return sum(line_metrics(size))


# --- how the rasteriser picks fonts, measured with fontTools ---------------------------------


@dataclass(eq=False)
class _Face:
    """One face of a font file, loaded on first use (the CJK collection is large)."""

    path: Path
    index: int  # face number in a collection; 0 for a single font

    @functools.cached_property
    def font(self) -> TTFont:
        if self.path.suffix.lower() in (".ttc", ".otc"):
            return TTCollection(str(self.path), lazy=True).fonts[self.index]
        return TTFont(str(self.path), lazy=True)

    @functools.cached_property
    def family(self) -> str:
        name = self.font["name"]
        typographic = name.getDebugName(16)
        return str(typographic or name.getDebugName(1))

    @functools.cached_property
    def italic(self) -> bool:
        return bool(self.font["OS/2"].fsSelection & 1)

    @functools.cached_property
    def cmap(self) -> dict[int, str]:
        return dict(self.font.getBestCmap())

    @functools.cached_property
    def units_per_em(self) -> int:
        return int(self.font["head"].unitsPerEm)

    @functools.cached_property
    def weight_axis(self) -> bool:
        return "fvar" in self.font and any(
            axis.axisTag == "wght" for axis in self.font["fvar"].axes
        )

    def has(self, character: str) -> bool:
        return ord(character) in self.cmap

    @functools.cached_property
    def regular_advances(self) -> _Advances:
        """Advance widths in em of this face's glyphs at its default weight."""
        metrics = self.font["hmtx"].metrics
        return _Advances(lambda name: float(metrics[name][0]), self.units_per_em)

    @functools.cached_property
    def bold_advances(self) -> _Advances:
        """Advance widths in em at bold weight, as resvg draws bold with this face."""
        if not self.weight_axis:
            # resvg does not embolden a font without a weight axis
            return self.regular_advances
        # resvg sets a variable font's weight axis to the requested weight
        glyphs = self.font.getGlyphSet(location={"wght": _BOLD_WEIGHT})
        return _Advances(lambda name: float(glyphs[name].width), self.units_per_em)


class _Advances:
    """Glyph advances of one face at one weight, by glyph name, cached as they are asked for."""

    def __init__(self, width_in_units: Any, units_per_em: int) -> None:
        self._width_in_units = width_in_units
        self._units_per_em = units_per_em
        self._cache: dict[str, float] = {}

    def __call__(self, glyph: str) -> float:
        width = self._cache.get(glyph)
        if width is None:
            width = self._width_in_units(glyph) / self._units_per_em
            self._cache[glyph] = width
        return width


@functools.cache
def _faces() -> tuple[_Face, ...]:
    """Every face, in the order the rasteriser loads them (the order of :func:`font_files`)."""
    faces: list[_Face] = []
    for path in font_files():
        if path.suffix.lower() in (".ttc", ".otc"):
            count = len(TTCollection(str(path), lazy=True).fonts)
            faces.extend(_Face(path, index) for index in range(count))
        else:
            faces.append(_Face(path, 0))
    return tuple(faces)


def _face_for(families: Sequence[str], italic: bool) -> _Face:
    """The face the rasteriser sets text in: the first family present, in the nearest style."""
    for family in families:
        candidates = [face for face in _faces() if face.family == family]
        if candidates:
            same_style = [face for face in candidates if face.italic == italic]
            return (same_style or candidates)[0]
    return _faces()[0]


def _fallback(character: str, used: Sequence[_Face]) -> _Face | None:
    for face in _faces():
        if face not in used and face.has(character):
            return face
    return None


@functools.lru_cache(maxsize=65536)
def _width_in_em(text: str, italic: bool, bold: bool) -> float:
    families = font_family_for(text).split(", ")
    primary = _face_for(families, italic)
    # one glyph per character: the face that draws it (None: nobody has it yet)
    chosen: list[_Face | None] = [primary if primary.has(c) else None for c in text]
    used = [primary]
    while True:
        missing = next((c for c, face in zip(text, chosen) if face is None), None)
        if missing is None:
            break
        fallback = _fallback(missing, used)
        if fallback is None:
            break
        if all(fallback.has(c) for c in text):
            # resvg sets the whole text in a fallback that has all of it
            chosen = [fallback] * len(text)
            break
        chosen = [
            fallback if face is None and fallback.has(c) else face for c, face in zip(text, chosen)
        ]
        used.append(fallback)
    return sum(_advance(c, face or primary, bold) for c, face in zip(text, chosen))


def _advance(character: str, face: _Face, bold: bool) -> float:
    glyph = face.cmap.get(ord(character), ".notdef")
    return (face.bold_advances if bold else face.regular_advances)(glyph)


def _cjk_language(text: str) -> str | None:
    han = False
    for character in text:
        name = unicodedata.name(character, "")
        if name.startswith(("HANGUL", "HALFWIDTH HANGUL")):
            return "Korean"
        if name.startswith(("HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA")):
            return "Japanese"
        if name.startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")):
            han = True
    return "Chinese" if han else None


def _is_drawn(character: str) -> bool:
    """Whether a character is meant to leave ink or space (controls and format marks are not)."""
    return unicodedata.category(character) not in ("Cc", "Cf")


@functools.cache
def _line_metrics_in_em() -> tuple[float, float]:
    ascent = 0.0
    descent = 0.0
    for face in _representative_faces():
        header = face.font["hhea"]
        ascent = max(ascent, header.ascent / face.units_per_em)
        descent = max(descent, -header.descent / face.units_per_em)
    return ascent, descent


def _representative_faces() -> Iterator[_Face]:
    """One face per font file: the faces of a collection share their vertical metrics."""
    seen: set[Path] = set()
    for face in _faces():
        if face.path not in seen:
            seen.add(face.path)
            yield face
