"""What every picture augtool draws shares: one colour per class, and text every OpenCV draws.

**Colours.** Previews (boxes, legends), ``augtool report`` (plots, boxes,
legends) and ``examples/detection_figure.py`` take a class's colour from
:data:`CLASS_COLOURS` by the class's position in its dataset's class list
(``class_names`` of an expand output; the sorted class names of annotations),
so RBC is the same colour in all of them. The colours are Sasha Trubetskoy's
distinct set: a box stays visible on the pink and purple of a stained smear.

**Text.** OpenCV 5 draws labels with its built-in ``sans`` font, older releases
with a Hershey font; the two draw different sets of glyphs outside ASCII, and
a glyph a font lacks comes out as ``?`` (OpenCV 5.1 lost the ``σ`` that 5.0
drew). So labels are written in ASCII (``sigma``, ``deg``, ``x``) and text from
files (names of images, classes) is folded to ASCII by :func:`ascii_label`
before it is drawn.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

#: ``(name, (r, g, b))`` by class position; a position past the end starts again.
CLASS_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (230, 25, 75)),
    ("blue", (0, 130, 200)),
    ("green", (60, 180, 75)),
    ("orange", (245, 130, 48)),
    ("purple", (145, 30, 180)),
    ("teal", (0, 128, 128)),
    ("magenta", (240, 50, 230)),
    ("brown", (170, 110, 40)),
    ("navy", (0, 0, 128)),
    ("olive", (128, 128, 0)),
)


def class_rgb(index: int) -> tuple[int, int, int]:
    """The colour of the class at ``index``, RGB 0-255."""
    return CLASS_COLOURS[index % len(CLASS_COLOURS)][1]


def class_colour_name(index: int) -> str:
    """The colour's name in words (``red``), for captions."""
    return CLASS_COLOURS[index % len(CLASS_COLOURS)][0]


def class_hex(index: int) -> str:
    """The colour as ``#rrggbb`` (HTML, matplotlib)."""
    r, g, b = class_rgb(index)
    return f"#{r:02x}{g:02x}{b:02x}"


def colour_of(label: str, classes: Sequence[str]) -> tuple[int, int, int]:
    """The colour of class ``label`` in the class list ``classes``.

    Raises:
        ValueError: If ``label`` is not in ``classes``.
    """
    return class_rgb(list(classes).index(label))


#: Spellings for the symbols a label could want.
_SPELLED = {"σ": "sigma", "°": " deg", "α": "alpha", "×": "x", "—": "-", "–": "-", "·": "|"}


def ascii_label(text: str) -> str:
    """``text`` in printable ASCII: symbols spelled, accents dropped, anything else ``?``.

    Examples:
        >>> ascii_label("Plättchen 640×480 · σ")
        'Plattchen 640x480 | sigma'
    """
    spelled = "".join(_SPELLED.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFKD", spelled)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch if " " <= ch <= "~" else "?" for ch in kept)
