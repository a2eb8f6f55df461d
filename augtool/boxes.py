"""Boxes through the transforms: the same parameters and matrices the pixels use.

A geometric transform (``augtool.transforms.GEOMETRY``) sends source points to
a canvas by a 2x3 affine matrix, and the canvas is then resized to the output.
A box follows the same two steps: its four corners are mapped, the new box is
the bounding box of the mapped corners, clipped to the output image, and kept
only when at least ``min_visibility`` of its area remains (the area of the
mapped box before clipping being the whole). Colour transforms move no pixel
and leave boxes where they are, up to the resize.

Coordinates are continuous pixel edges, as in ``augtool.annotations``: an image
of width ``W`` spans ``[0, W]``.
"""

from __future__ import annotations

import numpy as np

from augtool import defaults
from augtool.errors import OptionError
from augtool.ops.geometry import as3x3, output_map
from augtool.ops.geometry import letterbox as letterbox
from augtool.ops.targets import map_boxes as map_boxes
from augtool.pipeline.steps import PCA
from augtool.transforms import ORIGINAL, Params, geometry

#: Default of ``--min-visibility``: a box is dropped when less than this fraction of it
#: stays inside the output image.
DEFAULT_MIN_VISIBILITY = defaults.DEFAULT_MIN_VISIBILITY


def check_min_visibility(value: float) -> float:
    """Validate ``--min-visibility`` (a fraction in ``[0, 1]``).

    Raises:
        OptionError: When it is not a finite number in ``[0, 1]``.
    """
    if not (0.0 <= value <= 1.0):
        raise OptionError("min_visibility", f"a fraction between 0 and 1, got {value}")
    return float(value)


def output_matrix(
    name: str,
    params: Params,
    source: tuple[float, float],
    out: tuple[int, int],
    letterboxed: bool = False,
) -> np.ndarray:
    """The 3x3 map from source pixels to output pixels of one transform.

    Args:
        name: Transform name (or ``original``).
        params: Its sampled parameters.
        source: Source ``(width, height)`` in pixels.
        out: Output ``(width, height)`` in pixels.
        letterboxed: The canvas keeps its aspect ratio in the output
            (:func:`augtool.ops.geometry.letterbox`) instead of being squashed to it.

    Returns:
        The affine map as a 3x3 matrix (last row ``0 0 1``).
    """
    matrix, canvas = geometry(name, params, *source)
    return output_map(canvas, out, letterboxed)[0] @ as3x3(matrix)


def transform_boxes(
    name: str,
    params: Params,
    source: tuple[float, float],
    boxes: np.ndarray,
    out: tuple[int, int],
    min_visibility: float = DEFAULT_MIN_VISIBILITY,
    letterboxed: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The boxes of one output: :func:`augtool.ops.targets.map_boxes` by the transform's own matrix.

    Args:
        name: Transform name (or ``original``, or ``pca``, which moves nothing).
        params: The parameters the pixels were rendered with.
        source: Source ``(width, height)`` in pixels.
        boxes: ``(N, 4)`` source boxes.
        out: Output ``(width, height)``.
        min_visibility: See :func:`augtool.ops.targets.map_boxes`.
        letterboxed: See :func:`output_matrix`.

    Returns:
        ``(kept boxes in output pixels, their indices into boxes)``.
    """
    geo_name = ORIGINAL.name if name == PCA else name
    matrix = output_matrix(geo_name, params, source, out, letterboxed)
    picture = output_map(geometry(geo_name, params, *source)[1], out, letterboxed)[1]
    return map_boxes(boxes, matrix, out, min_visibility, picture)
