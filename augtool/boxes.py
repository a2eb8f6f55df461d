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
from augtool.plan import PCA
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


def letterbox(
    canvas: tuple[float, float], out: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where a canvas goes in an output when its aspect ratio is kept (black bars elsewhere).

    Args:
        canvas: The transform's canvas ``(width, height)``.
        out: Output ``(width, height)``.

    Returns:
        ``((width, height), (x, y))``: the size the canvas is resized to, and
        the offset of its top-left corner in the output (bars centred).
    """
    scale = min(out[0] / canvas[0], out[1] / canvas[1])
    width = min(out[0], max(1, round(canvas[0] * scale)))
    height = min(out[1], max(1, round(canvas[1] * scale)))
    return (width, height), ((out[0] - width) // 2, (out[1] - height) // 2)


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
            (:func:`letterbox`) instead of being squashed to it.

    Returns:
        The affine map as a 3x3 matrix (last row ``0 0 1``).
    """
    matrix, (cw, ch) = geometry(name, params, *source)
    (fw, fh), (ox, oy) = letterbox((cw, ch), out) if letterboxed else (out, (0, 0))
    resize = np.array([[fw / cw, 0.0, ox], [0.0, fh / ch, oy], [0.0, 0.0, 1.0]])
    return resize @ np.vstack([matrix, [0.0, 0.0, 1.0]])


def map_boxes(
    boxes: np.ndarray,
    matrix: np.ndarray,
    out: tuple[int, int],
    min_visibility: float = DEFAULT_MIN_VISIBILITY,
    picture: tuple[float, float, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Map boxes by an affine matrix, clip them to the output, drop the mostly-lost.

    Args:
        boxes: ``(N, 4)`` array of ``x0, y0, x1, y1`` in source pixels.
        matrix: 3x3 (or 2x3) source-to-output affine map.
        out: Output ``(width, height)``.
        min_visibility: Smallest fraction of a mapped box's area that must lie
            inside the output for the box to be kept; a box with nothing inside
            is always dropped.
        picture: The part of the output that shows the canvas, ``(x0, y0, x1,
            y1)``; boxes are clipped to it (default: the whole output; a
            letterboxed output's bars show nothing).

    Returns:
        ``(kept boxes (M, 4), their indices into boxes (M,))``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    m = np.asarray(matrix, dtype=np.float64)[:2]
    x0, y0, x1, y1 = boxes.T
    xs = np.stack([x0, x1, x1, x0], axis=1)
    ys = np.stack([y0, y0, y1, y1], axis=1)
    mx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    my = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    whole = np.stack([mx.min(1), my.min(1), mx.max(1), my.max(1)], axis=1)
    left, top, right, bottom = picture or (0.0, 0.0, float(out[0]), float(out[1]))
    clipped = np.stack(
        [
            np.clip(whole[:, 0], left, right),
            np.clip(whole[:, 1], top, bottom),
            np.clip(whole[:, 2], left, right),
            np.clip(whole[:, 3], top, bottom),
        ],
        axis=1,
    )
    area = (whole[:, 2] - whole[:, 0]) * (whole[:, 3] - whole[:, 1])
    inside = np.maximum(clipped[:, 2] - clipped[:, 0], 0) * np.maximum(
        clipped[:, 3] - clipped[:, 1], 0
    )
    keep = (inside > 0) & (inside >= min_visibility * area)
    index = np.flatnonzero(keep)
    return clipped[index], index


def transform_boxes(
    name: str,
    params: Params,
    source: tuple[float, float],
    boxes: np.ndarray,
    out: tuple[int, int],
    min_visibility: float = DEFAULT_MIN_VISIBILITY,
    letterboxed: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The boxes of one output: :func:`map_boxes` by the transform's own matrix.

    Args:
        name: Transform name (or ``original``, or ``pca``, which moves nothing).
        params: The parameters the pixels were rendered with.
        source: Source ``(width, height)`` in pixels.
        boxes: ``(N, 4)`` source boxes.
        out: Output ``(width, height)``.
        min_visibility: See :func:`map_boxes`.
        letterboxed: See :func:`output_matrix`.

    Returns:
        ``(kept boxes in output pixels, their indices into boxes)``.
    """
    geo_name = ORIGINAL.name if name == PCA else name
    matrix = output_matrix(geo_name, params, source, out, letterboxed)
    picture = None
    if letterboxed:
        (fw, fh), (ox, oy) = letterbox(geometry(geo_name, params, *source)[1], out)
        picture = (float(ox), float(oy), float(ox + fw), float(oy + fh))
    return map_boxes(boxes, matrix, out, min_visibility, picture)
