"""One colour per class, the same in every picture augtool draws.

Previews (boxes, legends), ``augtool report`` (plots, boxes, legends) and
``examples/detection_figure.py`` take a class's colour from this table by the
class's position in its dataset's class list (``class_names`` of an expand
output; the sorted class names of annotations), so RBC is the same colour in
all of them. The colours are Sasha Trubetskoy's distinct set: a box stays
visible on the pink and purple of a stained smear.
"""

from __future__ import annotations

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
