"""The exact masks of a generated smear's cells, from the scene that draws them.

Every cell of a :class:`~augtool.tools.smear.scene.Scene` is a soft-edged shape
(:mod:`augtool.tools.smear.shapes`) whose coverage ``alpha`` the drawing uses, with
the drawing's own edge width; a pixel belongs to a cell when its coverage is
at least one half (for a plain outline: when its centre lies inside it), and
to the nucleus when the nucleus' coverage, as drawn, is. These are masks nobody drew by hand:

* instances: each red cell, platelet and white cell (named by its kind:
  ``neutrophil``, ``lymphocyte``, ``monocyte``, ``ALL blast``, ``AML blast``),
  its whole outline even where another cell overlaps it;
* a class-index map (:data:`SEMANTIC_CLASSES`): background, red cell,
  platelet, white-cell cytoplasm and nucleus, painted red cells first, then
  platelets, then white cells, so where shapes overlap the later one shows
  (white cells are placed apart from red cells, so that is rare).

Pure functions of the scene; numpy only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from augtool.annotations.masks import IGNORE, Instance, LabelMap, encode_rle
from augtool.tools.smear.cell_models import cell_masks
from augtool.tools.smear.draw import edge_width
from augtool.tools.smear.scene import Scene
from augtool.tools.smear.shapes import Blob, grid_box

#: Instance classes, in the order ``augtool synth`` numbers them.
CELL_CLASSES = (
    "red cell",
    "platelet",
    "neutrophil",
    "lymphocyte",
    "monocyte",
    "ALL blast",
    "AML blast",
)
#: Classes of the class-index map, index 0 to 4.
SEMANTIC_CLASSES = ("background", "red cell", "platelet", "cytoplasm", "nucleus")
_RED, _PLATELET, _CYTOPLASM, _NUCLEUS = 1, 2, 3, 4


def _blob_region(
    blob: Blob, width: int, height: int, edge: float
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The region around a blob and its pixels there (coverage >= 1/2), or an empty region."""
    box = grid_box(blob.cx, blob.cy, blob.reach(), width, height)
    if box is None:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), dtype=bool)
    region, xs, ys = box
    return region, blob.field(xs, ys, edge)[0] >= 0.5


def _cells(scene: Scene) -> Iterator[tuple[str, tuple[slice, slice], np.ndarray, np.ndarray]]:
    """``(class, region, cell pixels, nucleus pixels)`` of every cell, in painting order."""
    width, height = scene.size
    edge = edge_width(scene)
    none = np.zeros((0, 0), dtype=bool)
    for red in scene.red_cells:
        region, body = _blob_region(red.shape, width, height, edge)
        yield "red cell", region, body, np.zeros_like(body)
    for platelet in scene.platelets:
        region, body = _blob_region(platelet, width, height, edge)
        yield "platelet", region, body, np.zeros_like(body)
    for white in scene.white_cells:
        box = grid_box(white.body.cx, white.body.cy, white.body.reach(), width, height)
        if box is None:
            yield white.kind, (slice(0, 0), slice(0, 0)), none, none
            continue
        region, xs, ys = box
        body, nucleus = cell_masks(white, xs, ys, edge)
        yield white.kind, region, body >= 0.5, nucleus >= 0.5


def cell_instances(scene: Scene) -> tuple[Instance, ...]:
    """Every cell with pixels in the image, as an RLE instance, in painting order.

    ``index`` numbers the cells as painted (red cells, platelets, white cells),
    counting those wholly outside the image too, and ``where`` names the cell
    (``red cell 3``, ``white cell 1``: the central one).
    """
    width, height = scene.size
    found = []
    counters: dict[str, int] = {}
    for index, (label, region, body, _) in enumerate(_cells(scene)):
        group = label if label in ("red cell", "platelet") else "white cell"
        counters[group] = counters.get(group, 0) + 1
        if not body.any():
            continue
        mask = np.zeros((height, width), dtype=bool)
        mask[region] = body
        found.append(Instance(label, encode_rle(mask), False, index, f"{group} {counters[group]}"))
    return tuple(found)


def class_map(scene: Scene) -> LabelMap:
    """The scene's class-index map over :data:`SEMANTIC_CLASSES` (uint8, 0 background)."""
    width, height = scene.size
    labels = np.zeros((height, width), dtype=np.uint8)
    for label, region, body, inner in _cells(scene):
        if not body.any():
            continue
        window = labels[region]
        if label == "red cell":
            window[body] = _RED
        elif label == "platelet":
            window[body] = _PLATELET
        else:
            window[body] = _CYTOPLASM
            window[inner & body] = _NUCLEUS
    return LabelMap(labels, SEMANTIC_CLASSES, IGNORE)
