"""Writing SVG by hand: the palette, text measured from glyph metrics, and PNG output.

The drawing code in :mod:`microgradient.render` places every piece of text
itself; this module knows how wide a string is in the drawing's font, how to
write the SVG elements, and how to rasterise the result with ``resvg`` using
font files that ship with the package, so a PNG looks the same on a machine
with no fonts installed.

>>> round(text_width("0.5", 10.0), 1) > 0
True
>>> contrast_ratio(VALUE_COLOUR) >= 4.5 and contrast_ratio(GRADIENT_COLOUR) >= 4.5
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape, quoteattr

import resvg_py

from microgradient import fonts

# Colours from the Okabe-Ito palette (safe for the common colour-vision deficiencies), darkened
# where needed so that text has a contrast of at least 4.5:1 against white; values and gradients
# also differ in lightness, so they stay apart in greyscale print
VALUE_COLOUR = "#004A75"  # Okabe-Ito blue #0072B2, darker
GRADIENT_COLOUR = "#B84A00"  # Okabe-Ito vermillion #D55E00, darker
INK = "#1A1A1A"  # labels and operation symbols
MUTED = "#555555"  # captions, legend, the "data" / "grad" words of a record
LINE = "#5A5A5A"  # edges and outlines
LEAF_FILL = "#F2F2F2"
PROCESSED_FILL = "#DCEEF8"  # Okabe-Ito sky blue #56B4E9, lightened: nodes already passed
CURRENT_FILL = "#FBE3CC"  # Okabe-Ito orange #E69F00, lightened: the node of this step
CLUSTER_LINE = "#9A9A9A"

# a line of text occupies [baseline - ASCENT, baseline + DESCENT] times its size, whatever its
# script: the fonts' own line metrics, so that rows of labels line up
ASCENT, DESCENT = fonts.line_metrics(1.0)


def relative_luminance(colour: str) -> float:
    """WCAG relative luminance of a ``#rrggbb`` colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(colour: str, background: str = "#FFFFFF") -> float:
    """WCAG contrast ratio between two ``#rrggbb`` colours (1 to 21)."""
    lighter, darker = sorted((relative_luminance(colour), relative_luminance(background)))[::-1]
    return (lighter + 0.05) / (darker + 0.05)


# ---- text widths ------------------------------------------------------------------------


def text_width(text: str, size: float, italic: bool = False) -> float:
    """The width of ``text`` set at ``size`` points, from the glyph metrics of the fonts."""
    return fonts.text_width(text, size, italic=italic)


# ---- SVG elements ------------------------------------------------------------------------


def fmt(x: float) -> str:
    """A coordinate, short and without ``-0``."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def text(
    content: str,
    x: float,
    baseline: float,
    *,
    size: float,
    css_class: str,
    anchor: str = "middle",
    fill: str = INK,
    italic: bool = False,
    max_width: float | None = None,
    extra: str = "",
) -> str:
    """A ``<text>`` element (baseline at ``baseline``), set smaller if wider than ``max_width``.

    A label in several scripts is written in runs, one font each (:func:`fonts.svg_text`).
    """
    if max_width is not None and content:
        width = text_width(content, size, italic)
        if width > max_width:
            size *= max_width / width
    attributes = f'class="{css_class}" fill="{fill}"' + (f" {extra}" if extra else "")
    return fonts.svg_text(
        content, x, baseline, size, anchor=anchor, italic=italic, attributes=attributes
    )


def joined_path(
    pieces: Iterable[Sequence[tuple[float, float]]], *, stroke: str = LINE, width: float = 1.2
) -> str:
    """Several Bézier pieces drawn as one path, joined by straight lines."""
    commands = []
    for n, points in enumerate(pieces):
        x, y = points[0]
        commands.append(f"{'L' if n else 'M'}{fmt(x)},{fmt(y)}")
        rest = points[1:]
        for i in range(0, len(rest) - 2, 3):
            (x1, y1), (x2, y2), (x3, y3) = rest[i : i + 3]
            commands.append(f"C{fmt(x1)},{fmt(y1)} {fmt(x2)},{fmt(y2)} {fmt(x3)},{fmt(y3)}")
    return (
        f'<path d="{" ".join(commands)}" fill="none" stroke="{stroke}" '
        f'stroke-width="{fmt(width)}"/>'
    )


def arrowhead(start: tuple[float, float], tip: tuple[float, float], *, colour: str = LINE) -> str:
    """A filled triangle pointing from ``start`` to ``tip``, its point at ``tip``."""
    dx, dy = tip[0] - start[0], tip[1] - start[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    back = 7.0
    half = 3.2
    bx, by = tip[0] - ux * back, tip[1] - uy * back
    corners = [tip, (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)]
    listed = " ".join(f"{fmt(x)},{fmt(y)}" for x, y in corners)
    return f'<polygon class="mg-arrow" points="{listed}" fill="{colour}" stroke="none"/>'


def document(width: float, height: float, body: Iterable[str], title: str = "") -> str:
    """A complete SVG document ``width`` by ``height`` points."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{fmt(width)}pt" '
        f'height="{fmt(height)}pt" viewBox="0 0 {fmt(width)} {fmt(height)}" '
        f"font-family={quoteattr(fonts.FONT_FAMILY)}>\n"
    )
    parts = [head]
    if title:
        parts.append(f"<title>{escape(title)}</title>\n")
    parts.append(f'<rect width="{fmt(width)}" height="{fmt(height)}" fill="#FFFFFF"/>\n')
    parts.extend(f"{element}\n" for element in body)
    parts.append("</svg>\n")
    return "".join(parts)


# ---- PNG ---------------------------------------------------------------------------------

# a few hundred nodes in a row make a drawing metres wide: past this many pixels a PNG is drawn
# at a lower resolution, as rasterising it at full size would take minutes (SVG has no limit)
MAX_PNG_PIXELS = 10_000_000


def rasterise(svg: str, width: float, height: float, dpi: float) -> bytes:
    """``svg`` (``width`` by ``height`` points) as PNG bytes at ``dpi``, fonts from the package."""
    points = max(width * height, 1.0)
    dpi = min(dpi, 72 * math.sqrt(MAX_PNG_PIXELS / points))
    # the package's fonts and only them: the picture is the same on every machine
    png: bytes = resvg_py.svg_to_bytes(svg_string=svg, dpi=dpi, **fonts.resvg_options())
    return png
