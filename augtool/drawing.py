"""What every picture augtool draws shares: text that every OpenCV can draw.

OpenCV 5 draws labels with its built-in ``sans`` font, older releases with a
Hershey font; the two draw different sets of glyphs outside ASCII, and a glyph a
font lacks comes out as ``?`` (OpenCV 5.1 lost the ``σ`` that 5.0 drew). So
labels are written in ASCII (``sigma``, ``deg``, ``x``) and text from files
(names of images, classes) is folded to ASCII before it is drawn.
"""

from __future__ import annotations

import unicodedata

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
