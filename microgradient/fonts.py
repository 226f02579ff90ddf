# ruff: noqa: RUF002 - the docstrings show the very characters this module is about
"""The fonts every picture is drawn with, and the size of text set in them.

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

A label is cut into runs, each set in one font: what Noto Sans has in Noto Sans, the rest in the
Noto Sans CJK face for the label's language (:func:`svg_text` writes a label so;
:func:`set_text_fonts` rewrites every label of an SVG document). The rasteriser, resvg, is
given these fonts and no others (:func:`resvg_options`), so it never has to guess a fallback,
and the width and ink of a label measured here with fontTools (:func:`text_width`,
:func:`ink_bounds`, :func:`line_metrics`) are those resvg draws.

>>> from microgradient import fonts
>>> fonts.text_width("苹果", 10) > fonts.text_width("ab", 10)
True
>>> fonts.missing_glyphs("θ₁ 苹果 ∇ℒ")
''
>>> import re
>>> re.sub(' font-family="[^"]*"', "", fonts.svg_text("θ₁ 苹果", 0, 20, 10))
'<text x="0" y="20" font-size="10"><tspan x="0">θ₁ </tspan><tspan x="12.04">苹果</tspan></text>'
"""

from __future__ import annotations

import atexit
import functools
import html
import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from xml.sax.saxutils import escape, quoteattr

from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTCollection, TTFont

from microgradient.errors import RenderError

__all__ = [
    "FONT_FAMILY",
    "InkBounds",
    "LineMetrics",
    "font_files",
    "ink_bounds",
    "line_metrics",
    "missing_glyphs",
    "resvg_options",
    "set_text_fonts",
    "svg_text",
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

#: The CSS ``font-family`` list for SVG text elements: Noto Sans, then Noto Sans CJK, then the
#: viewer's own sans-serif (a browser without these fonts picks its own, character by character).
FONT_FAMILY = ", ".join([_LATIN, *_CJK.values(), _GENERIC])

_BOLD_WEIGHT = 700.0


def font_files() -> list[Path]:
    """The font files to give the rasteriser: Noto Sans upright and italic, Noto Sans CJK.

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


def svg_text(
    text: str,
    x: float,
    y: float,
    size: float,
    *,
    anchor: str = "start",
    italic: bool = False,
    bold: bool = False,
    attributes: str = "",
) -> str:
    """An SVG ``<text>`` element showing ``text`` at ``(x, y)`` (``y`` is the baseline).

    ``anchor`` is the ``text-anchor``: ``"start"``, ``"middle"`` or ``"end"``. ``attributes``
    (such as ``'fill="#000" class="mg-value"'``) are written into the element as they are.

    Text in one font is written plainly, with its ``font-family``. Text that needs Noto Sans and
    Noto Sans CJK is cut into runs, one font each, and each run placed where
    :func:`text_width` puts it, as its own ``<tspan x=...>``: resvg then shapes every run in its
    own font alone. (Shaped together, resvg may set the Latin letters in the CJK font, draw an
    accented letter's parts apart, or fail on some mixes.)

    >>> print(svg_text("x < 1", 0, 10, 12))
    <text x="0" y="10" font-size="12" font-family="Noto Sans, ..., sans-serif">x &lt; 1</text>
    >>> print(svg_text("θ₁ 苹果", 0, 10, 10, anchor="middle"))  # doctest: +NORMALIZE_WHITESPACE
    <text x="-16.02" y="10" font-size="10" font-family="Noto Sans, ..., sans-serif"><tspan
    x="-16.02">θ₁ </tspan><tspan x="-3.98" font-family="Noto Sans CJK SC, ...">苹果</tspan></text>
    """
    if anchor not in _ANCHOR_SHARE:
        raise RenderError(f"svg_text: text-anchor must be start, middle or end, not {anchor!r}")
    runs = _runs(text, italic)
    weight = ' font-weight="bold"' if bold else ""
    extra = f" {attributes.strip()}" if attributes.strip() else ""
    if " ".join(text.split()) != text:
        # SVG drops leading and trailing spaces and joins runs of them unless told not to
        extra += ' xml:space="preserve"'
    if len(runs) <= 1:
        face = runs[0][1] if runs else _face(_LATIN, italic)
        family = FONT_FAMILY if face.family == _LATIN else _cjk_family(face)
        anchoring = "" if anchor == "start" else f' text-anchor="{anchor}"'
        slant = ' font-style="italic"' if face.italic else ""
        return (
            f'<text x="{_number(x)}" y="{_number(y)}" font-size="{_number(size)}"'
            f" font-family={quoteattr(family)}{anchoring}{slant}{weight}{extra}>"
            f"{escape(text)}</text>"
        )
    glyphs = _layout(text, italic, bold)
    width = sum(glyph.advance for glyph in glyphs) * size
    left = x - width * _ANCHOR_SHARE[anchor]
    parts = []
    start = 0
    for run_text, face in runs:
        family = "" if face.family == _LATIN else f" font-family={quoteattr(_cjk_family(face))}"
        upright = ' font-style="normal"' if italic and not face.italic else ""
        run_x = _number(left + glyphs[start].x * size)
        parts.append(f'<tspan x="{run_x}"{family}{upright}>{escape(run_text)}</tspan>')
        start += len(run_text)
    slant = ' font-style="italic"' if italic else ""
    return (
        f'<text x="{_number(left)}" y="{_number(y)}" font-size="{_number(size)}"'
        f" font-family={quoteattr(FONT_FAMILY)}{slant}{weight}{extra}>{''.join(parts)}</text>"
    )


#: how much of a text's width lies left of its x, by text-anchor
_ANCHOR_SHARE = {"start": 0.0, "middle": 0.5, "end": 1.0}

_TEXT_ELEMENT = re.compile(r"<text\b([^>]*)>([^<]*)</text>")
_ATTRIBUTE = re.compile(r"""([\w:-]+)\s*=\s*("[^"]*"|'[^']*')""")
_NUMBER = re.compile(r"^\s*(-?[\d.]+(?:e-?\d+)?)(?:px)?\s*$")


def set_text_fonts(svg: str) -> str:
    """An SVG document with its text elements written by :func:`svg_text`.

    Every ``<text>`` element that holds plain text and has one ``x`` and one ``y`` (as
    Graphviz writes them) is rewritten from its text, position, ``font-size`` (16 if it has
    none), ``text-anchor``, ``font-style`` and ``font-weight``; its other attributes are kept,
    its ``font-family`` replaced. Other elements are left as they are: those that hold other
    elements, place each letter, or anchor text other than at its start, middle or end.

    >>> svg = '<text x="1" y="2" font-family="Times" fill="red">a&amp;b</text>'
    >>> print(set_text_fonts(svg))  # doctest: +NORMALIZE_WHITESPACE
    <text x="1" y="2" font-size="16" font-family="Noto Sans, ..., sans-serif"
    fill="red">a&amp;b</text>
    """

    def rewrite(element: re.Match[str]) -> str:
        attributes = {name: value[1:-1] for name, value in _ATTRIBUTE.findall(element[1])}
        numbers = [_NUMBER.match(attributes.get(name, "0")) for name in ("x", "y")]
        size = _NUMBER.match(attributes.get("font-size", "16"))
        anchor = attributes.get("text-anchor", "start")
        if None in numbers or size is None or anchor not in _ANCHOR_SHARE:
            return element[0]
        x, y = (float(match[1]) for match in numbers if match is not None)
        kept = " ".join(
            f"{name}={quoteattr(html.unescape(value))}"
            for name, value in attributes.items()
            if name not in _REWRITTEN_ATTRIBUTES
        )
        weight = attributes.get("font-weight", "normal")
        return svg_text(
            html.unescape(element[2]),
            x,
            y,
            float(size[1]),
            anchor=anchor,
            italic=attributes.get("font-style") in ("italic", "oblique"),
            bold=weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 600),
            attributes=kept,
        )

    return _TEXT_ELEMENT.sub(rewrite, svg)


_REWRITTEN_ATTRIBUTES = frozenset(
    {"x", "y", "font-size", "font-family", "text-anchor", "font-style", "font-weight"}
)


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def text_width(text: str, size: float, *, italic: bool = False, bold: bool = False) -> float:
    """The advance width of ``text`` set at font size ``size``, in the units of ``size``.

    This is the width resvg gives the text written with :func:`text_markup` (and what
    ``text-anchor="middle"`` centres), kerning included; only contextual kerning, which fonts
    use for a few rare sequences, is left out. A character no font has counts as the blank box
    drawn for it. Ink may overhang the advance a little: :func:`ink_bounds` says where it lies.
    Results are cached, so measuring thousands of labels is quick.

    >>> round(text_width("苹果", 12), 6)
    24.0
    >>> text_width("x₁", 12, italic=True) < text_width("x₁", 12, bold=True)
    True
    """
    return sum(glyph.advance for glyph in _layout(text, italic, bold)) * size


class InkBounds(NamedTuple):
    """Where the ink of a line of text lies, in the units of the font size.

    Horizontal positions are measured from the text's start (its ``x`` with
    ``text-anchor="start"``), vertical ones from its baseline.
    """

    left: float
    """The leftmost ink; negative where a glyph reaches left of the start (italic ``f``, ``j``)."""
    right: float
    """The rightmost ink; beyond :func:`text_width` where the last glyph overhangs its advance."""
    top: float
    """How high the ink reaches above the baseline."""
    bottom: float
    """How deep the ink reaches below the baseline (positive below)."""


def ink_bounds(text: str, size: float, *, italic: bool = False, bold: bool = False) -> InkBounds:
    """The box around the ink of ``text`` set at ``size``, from the outlines of its glyphs.

    Text without ink (empty, or only spaces) has bounds of zero size at its start. A box from
    ``min(0, left)`` to ``max(text_width(...), right)`` across, and from the baseline up by
    ``max(top, line_metrics(size).ascent)`` and down by ``max(bottom, ...descent)``, holds the
    label, italic overhangs included.

    >>> bounds = ink_bounds("x₁", 10)
    >>> 0 <= bounds.left < bounds.right <= text_width("x₁", 10)
    True
    >>> bounds.bottom > 0  # the subscript reaches below the baseline
    True
    """
    boxes = [
        (glyph.x + box[0], box[1], glyph.x + box[2], box[3])
        for glyph in _layout(text, italic, bold)
        if (box := glyph.instance.bounds(glyph.name)) is not None
    ]
    if not boxes:
        return InkBounds(0.0, 0.0, 0.0, 0.0)
    return InkBounds(
        min(box[0] for box in boxes) * size,
        max(box[2] for box in boxes) * size,
        max(box[3] for box in boxes) * size,
        -min(box[1] for box in boxes) * size,
    )


def missing_glyphs(text: str) -> str:
    """The characters of ``text`` that none of the fonts can draw, each once, in order.

    Callers warn about these: they would be drawn as blank boxes.

    >>> missing_glyphs("a😀b😀")
    '😀'
    """
    seen: dict[str, None] = {}
    for run_text, face in _runs(text, False):
        for character in run_text:
            if _is_drawn(character) and not face.has(character):
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

    The same for every label, so boxes of labels in one row line up: the larger of the fonts'
    line spacing and their clipping bounds (OS/2 ``usWinAscent``/``usWinDescent``), which hold
    the ink of the fonts' glyphs for Latin, Greek, Cyrillic, CJK and mathematical text
    (:func:`ink_bounds` gives a label's own ink).

    >>> metrics = line_metrics(10)
    >>> 8 < metrics.ascent < 13 and 2 < metrics.descent < 5
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


# --- the fonts, measured with fontTools ------------------------------------------------------


@dataclass(eq=False)
class _Face:
    """One face of a font file, loaded on first use (the CJK collection is large)."""

    path: Path
    index: int  # face number in a collection; 0 for a single font

    @functools.cached_property
    def font(self) -> TTFont:
        # lazy: tables are read from the open file as they are needed, the file is closed at exit
        if self.path.suffix.lower() in (".ttc", ".otc"):
            font = TTCollection(str(self.path), lazy=True).fonts[self.index]
        else:
            font = TTFont(str(self.path), lazy=True)
        atexit.register(font.close)
        return font

    @functools.cached_property
    def family(self) -> str:
        name = self.font["name"]
        return str(name.getDebugName(16) or name.getDebugName(1))

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
    def regular(self) -> _Instance:
        return _Instance(self, bold=False)

    @functools.cached_property
    def bold(self) -> _Instance:
        # resvg sets a variable font's weight axis to the weight asked for, and does not
        # embolden a font without one
        return _Instance(self, bold=True) if self.weight_axis else self.regular

    def instance(self, bold: bool) -> _Instance:
        return self.bold if bold else self.regular


class _Instance:
    """One face at one weight: glyph advances, ink bounds and kerning, in em, cached."""

    def __init__(self, face: _Face, *, bold: bool) -> None:
        self.face = face
        location = {"wght": _BOLD_WEIGHT} if bold else None
        self._glyphs = face.font.getGlyphSet(location=location)
        self._em = float(face.units_per_em)
        self._variations: Any = None
        if bold and "GDEF" in face.font:
            store = getattr(face.font["GDEF"].table, "VarStore", None)
            if store is not None:
                # imported here: fontTools.varLib takes a tenth of a second to import
                from fontTools.varLib.varStore import VarStoreInstancer

                axes = face.font["fvar"].axes
                self._variations = VarStoreInstancer(store, axes, self._glyphs.location)
        self._kerning = _kerning_lookups(face.font)
        self._advances: dict[str, float] = {}
        self._bounds: dict[str, tuple[float, float, float, float] | None] = {}
        self._pairs: dict[tuple[str, str], float] = {}

    def advance(self, glyph: str) -> float:
        width = self._advances.get(glyph)
        if width is None:
            width = self._advances[glyph] = self._glyphs[glyph].width / self._em
        return width

    def bounds(self, glyph: str) -> tuple[float, float, float, float] | None:
        """``(x_min, y_min, x_max, y_max)`` of the glyph's outline, or None if it has no ink."""
        if glyph not in self._bounds:
            pen = BoundsPen(self._glyphs)
            self._glyphs[glyph].draw(pen)
            box = pen.bounds
            self._bounds[glyph] = None if box is None else tuple(v / self._em for v in box)
        return self._bounds[glyph]

    def kerning(self, left: str, right: str) -> float:
        """What the font's ``kern`` feature adds to the advance between two glyphs."""
        pair = (left, right)
        if pair not in self._pairs:
            adjustment = 0.0
            for lookup in self._kerning:
                # the first subtable of a lookup that has the pair decides it
                values = next(filter(None, (table.values(left, right) for table in lookup)), ())
                adjustment += sum(self._x_advance(value) for value in values)
            self._pairs[pair] = adjustment / self._em
        return self._pairs[pair]

    def _x_advance(self, value: Any) -> float:
        if value is None:
            return 0.0
        adjustment = float(getattr(value, "XAdvance", 0) or 0)
        device = getattr(value, "XAdvDevice", None)
        if device is not None and self._variations is not None and device.DeltaFormat == 0x8000:
            # a variation index: outer and inner indices into the variation store
            adjustment += self._variations[(device.StartSize << 16) + device.EndSize]
        return adjustment


class _PairTable:
    """One pair-positioning subtable (a list of glyph pairs, or a matrix of glyph classes)."""

    def __init__(self, subtable: Any) -> None:
        self._table = subtable
        self._coverage = {glyph: index for index, glyph in enumerate(subtable.Coverage.glyphs)}
        self._seconds: dict[str, dict[str, tuple[Any, Any]]] = {}

    def values(self, left: str, right: str) -> tuple[Any, Any] | None:
        """The value records of the two glyphs, or None if this subtable has not the pair."""
        index = self._coverage.get(left)
        if index is None:
            return None
        table = self._table
        if table.Format == 1:
            seconds = self._seconds.get(left)
            if seconds is None:
                seconds = self._seconds[left] = {
                    record.SecondGlyph: (record.Value1, getattr(record, "Value2", None))
                    for record in table.PairSet[index].PairValueRecord
                }
            return seconds.get(right)
        first = table.ClassDef1.classDefs.get(left, 0)
        second = table.ClassDef2.classDefs.get(right, 0)
        record = table.Class1Record[first].Class2Record[second]
        return (record.Value1, getattr(record, "Value2", None))


def _kerning_lookups(font: TTFont) -> list[list[_PairTable]]:
    """The pair-positioning subtables of the font's default ``kern`` feature, lookup by lookup.

    Contextual kerning lookups are left out: they adjust rare sequences by a little.
    """
    if "GPOS" not in font:
        return []
    table = font["GPOS"].table
    scripts = {record.ScriptTag: record.Script for record in table.ScriptList.ScriptRecord}
    script = scripts.get("DFLT") or scripts.get("latn")
    if script is None or script.DefaultLangSys is None:
        return []
    features = table.FeatureList.FeatureRecord
    indices = sorted(
        {
            index
            for feature in script.DefaultLangSys.FeatureIndex
            if features[feature].FeatureTag == "kern"
            for index in features[feature].Feature.LookupListIndex
        }
    )
    lookups = []
    for index in indices:
        subtables = [
            getattr(subtable, "ExtSubTable", subtable)
            for subtable in table.LookupList.Lookup[index].SubTable
        ]
        pairs = [_PairTable(subtable) for subtable in subtables if subtable.LookupType == 2]
        if pairs:
            lookups.append(pairs)
    return lookups


@functools.cache
def _faces() -> tuple[_Face, ...]:
    """Every face of the font files, in order."""
    faces: list[_Face] = []
    for path in font_files():
        if path.suffix.lower() in (".ttc", ".otc"):
            with TTCollection(str(path), lazy=True) as collection:
                count = len(collection.fonts)
            faces.extend(_Face(path, index) for index in range(count))
        else:
            faces.append(_Face(path, 0))
    return tuple(faces)


@functools.cache
def _face(family: str, italic: bool = False) -> _Face:
    """The face of a family in the style asked for, or its first face if it has not that style."""
    candidates = [face for face in _faces() if face.family == family]
    return next((face for face in candidates if face.italic == italic), candidates[0])


@functools.cache
def _latin_coverage() -> frozenset[int]:
    """The characters both Noto Sans faces have (a run in Noto Sans may be upright or italic)."""
    upright, italic = _face(_LATIN).cmap, _face(_LATIN, italic=True).cmap
    return frozenset(upright.keys() & italic.keys())


_MINUS = "\u2212"


@functools.lru_cache(maxsize=65536)
def _runs(text: str, italic: bool) -> tuple[tuple[str, _Face], ...]:
    """``text`` cut into runs, each with the face that draws it.

    A character goes to Noto Sans if it has it, else to the CJK face for the text's language if
    that has it, else to Noto Sans (which draws its blank box). Spaces and combining marks stay
    in the run they follow, if its face has them. Italic text is set in Noto Sans Italic, but
    for the minus sign: that face draws it as short as a hyphen, and ``−0.5`` would read
    ``-0.5``; CJK faces have no italic and stay upright.
    """
    latin = _face(_LATIN)
    slanted = _face(_LATIN, italic=True) if italic else latin
    cjk = _face(_CJK[_cjk_language(text) or "Chinese"])
    covered = _latin_coverage()
    faces: list[_Face] = []
    for character in text:
        joins = character.isspace() or unicodedata.combining(character)
        if faces and joins and faces[-1].has(character):
            faces.append(faces[-1])
        elif ord(character) in covered or not cjk.has(character):
            faces.append(latin if character == _MINUS else slanted)
        else:
            faces.append(cjk)
    runs = []
    for face, run in itertools.groupby(zip(text, faces), key=lambda pair: pair[1]):
        run_text = "".join(character for character, _ in run)
        if face is slanted and not all(map(face.has, run_text)) and all(map(latin.has, run_text)):
            # resvg sets the run upright when the italic lacks a letter the upright has
            face = latin
        runs.append((run_text, face))
    return tuple(runs)


def _cjk_family(face: _Face) -> str:
    """The ``font-family`` list of a run in a CJK face: that face first, then the other ones."""
    others = [family for family in _CJK.values() if family != face.family]
    return ", ".join([face.family, *others, _GENERIC])


class _Glyph(NamedTuple):
    instance: _Instance
    name: str
    x: float  # pen position in em from the start of the text
    advance: float  # in em, kerning with the next glyph of its run included


@functools.lru_cache(maxsize=65536)
def _layout(text: str, italic: bool, bold: bool) -> tuple[_Glyph, ...]:
    """The glyphs resvg draws for :func:`svg_text` of ``text``, one per character, and where.

    Each run is shaped alone in its font: glyphs from the font's character map, advances from
    its metrics, kerning between neighbours within the run.
    """
    glyphs = []
    x = 0.0
    for run_text, face in _runs(text, italic):
        instance = face.instance(bold)
        names = [face.cmap.get(ord(character), ".notdef") for character in run_text]
        for index, name in enumerate(names):
            advance = instance.advance(name)
            if index + 1 < len(names):
                advance += instance.kerning(name, names[index + 1])
            glyphs.append(_Glyph(instance, name, x, advance))
            x += advance
    return tuple(glyphs)


def _cjk_language(text: str) -> str | None:
    han = False
    for character in text:
        if character < "\u1100":  # below the first hangul jamo: no CJK script
            continue
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
    for face in _one_face_per_file():
        font = face.font
        em = face.units_per_em
        ascent = max(ascent, font["hhea"].ascent / em, font["OS/2"].usWinAscent / em)
        descent = max(descent, -font["hhea"].descent / em, font["OS/2"].usWinDescent / em)
    return ascent, descent


def _one_face_per_file() -> Iterator[_Face]:
    """The faces of a collection share their vertical metrics: one face of each file will do."""
    seen: set[Path] = set()
    for face in _faces():
        if face.path not in seen:
            seen.add(face.path)
            yield face
