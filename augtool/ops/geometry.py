"""Where a geometric step sends points: affine maps, canvases, and the warp of the pixels.

Every map here is a 2x3 affine matrix from the pixels of the image a step
sees to a *canvas* (an image of its own size), on continuous coordinates:
pixel ``i`` covers ``[i, i + 1)``, so an image of width ``W`` spans
``[0, W]``. The pixels are warped by the very matrix a box, a mask or a
polygon is mapped by (``augtool.ops.targets``), and the canvas is then
resized to the output (:func:`output_map`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from augtool.ops.resize import resize_to

#: Working pixels per source pixel, ``(sx, sy)``: the working image is the source at this scale.
WorkScale = tuple[float, float]
#: Output size: a side length (square), or ``(width, height)``.
Size = int | tuple[int, int]
#: Values of a recipe's ``preprocess.resize``: ``squash`` keeps the whole source and lets the
#: final resize squash it (the paper's way, the default); ``pad`` puts it centred on a black
#: square first (aspect kept, black bars); ``crop`` keeps the centred square (edges lost).
RESIZE_POLICIES = ("squash", "pad", "crop")
#: A step's map: the 2x3 matrix to its canvas and the canvas ``(width, height)``.
Affine = tuple[np.ndarray, tuple[float, float]]


def warp_to_canvas(
    work: np.ndarray,
    matrix: np.ndarray,
    canvas: tuple[float, float],
    work_scale: WorkScale,
    size: Size,
) -> np.ndarray:
    """Warp the working image by a source-pixel affine map onto a canvas, then to size.

    Coordinates are continuous (pixel ``i`` covers ``[i, i + 1)``), so the same
    ``matrix`` and ``canvas`` give the same picture at any working resolution.

    Args:
        work: Working image (source at ``work_scale``).
        matrix: 2x3 affine map from source to canvas coordinates (source pixels).
        canvas: (width, height) of the canvas in source pixels.
        work_scale: Working pixels per source pixel, (sx, sy).
        size: Output side length, or ``(width, height)``.

    Returns:
        The output; outside the source is black.
    """
    sx, sy = work_scale
    cw, ch = canvas
    iw, ih = max(1, round(cw * sx)), max(1, round(ch * sy))
    to_source = np.diag([1.0 / sx, 1.0 / sy, 1.0])
    to_inter = np.diag([iw / cw, ih / ch, 1.0])
    m = to_inter @ np.vstack([matrix, [0.0, 0.0, 1.0]]) @ to_source
    # OpenCV puts pixel centres at integers; continuous coordinates at +0.5.
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    m_cv = np.linalg.inv(shift) @ m @ shift
    warped = cv2.warpAffine(
        work,
        m_cv[:2],
        (iw, ih),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return resize_to(warped, size)


def source_size(work: np.ndarray, work_scale: WorkScale) -> tuple[float, float]:
    """(width, height) of the source in source pixels."""
    return work.shape[1] / work_scale[0], work.shape[0] / work_scale[1]


def identity(width: float, height: float) -> Affine:
    """The map of a step that moves no pixel: identity onto a canvas of the same size."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (width, height)


def rotation(angle: float, width: float, height: float) -> Affine:
    """Counterclockwise rotation about the centre onto an enlarged canvas.

    Returns:
        The 2x3 source-to-canvas matrix and the canvas (width, height).
    """
    rad = math.radians(angle)
    c, s = math.cos(rad), math.sin(rad)
    cw = width * abs(c) + height * abs(s)
    ch = width * abs(s) + height * abs(c)
    # y points down in images, so counterclockwise on screen is this matrix.
    rot = np.array([[c, s], [-s, c]])
    offset = np.array([cw / 2, ch / 2]) - rot @ np.array([width / 2, height / 2])
    return np.hstack([rot, offset[:, None]]), (cw, ch)


def shear(factor: float, axis: str, width: float, height: float) -> Affine:
    """Simple shear (``x' = x + f y`` or ``y' = y + f x``) onto an enlarged canvas.

    Returns:
        The 2x3 source-to-canvas matrix and the canvas (width, height).
    """
    if axis == "x":
        off = max(0.0, -factor * height)
        return np.array([[1.0, factor, off], [0.0, 1.0, 0.0]]), (
            width + abs(factor) * height,
            height,
        )
    off = max(0.0, -factor * width)
    return np.array([[1.0, 0.0, 0.0], [factor, 1.0, off]]), (width, height + abs(factor) * width)


def translation(dx: float, dy: float, width: float, height: float) -> Affine:
    """Shift by ``(dx, dy)`` source pixels on a canvas the size of the source.

    Returns:
        The 2x3 source-to-canvas matrix and the canvas (width, height).
    """
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]]), (width, height)


def flip(axis: str, width: float, height: float) -> Affine:
    """Reflection about the x-axis (``"x"``: top-bottom) or the y-axis (``"y"``: left-right).

    The pixels are flipped by ``cv2.flip``, which is this map exactly.

    Returns:
        The 2x3 source-to-canvas matrix and the canvas (width, height).
    """
    if axis == "x":
        return np.array([[1.0, 0.0, 0.0], [0.0, -1.0, height]]), (width, height)
    return np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0]]), (width, height)


def quarter_turns(turns: int, width: float, height: float) -> Affine:
    """``turns`` quarter turns counterclockwise, the map of ``np.rot90(image, turns)``.

    Returns:
        The 2x3 matrix and the canvas (width and height swap on odd turns).
    """
    turns %= 4
    if turns == 1:
        return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, width]]), (height, width)
    if turns == 2:
        return np.array([[-1.0, 0.0, width], [0.0, -1.0, height]]), (width, height)
    if turns == 3:
        return np.array([[0.0, -1.0, height], [1.0, 0.0, 0.0]]), (height, width)
    return identity(width, height)


def crop_window(
    keep: float, x: float, y: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """The window a zoom keeps, in whole pixels of the image it crops.

    Args:
        keep: Side of the window as a fraction of the image's (same aspect).
        x: Where the window sits in the free width, 0 (left) to 1 (right).
        y: Where it sits in the free height, 0 (top) to 1 (bottom).
        width: Image width in pixels.
        height: Image height in pixels.

    Returns:
        ``(x0, y0, window width, window height)``.
    """
    keep = min(1.0, max(keep, 1e-3))
    cw, ch = max(1, round(width * keep)), max(1, round(height * keep))
    return round((width - cw) * x), round((height - ch) * y), cw, ch


def crop(x0: float, y0: float, width: float, height: float) -> Affine:
    """The map of cutting the window at ``(x0, y0)`` of ``width x height`` out of an image."""
    return np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]]), (width, height)


def policy_window(width: int, height: int, policy: str) -> tuple[int, int, int]:
    """The square a shape policy keeps of an image: ``(x0, y0, side)`` in its pixels.

    ``crop`` keeps the centred square of the shorter side; ``pad`` puts the
    image in the centre of a square of the longer side (negative offsets: the
    black border); ``squash`` keeps the image as it is (``side`` is then its width).

    Raises:
        ValueError: For an unknown policy.
    """
    if policy == "squash":
        return 0, 0, width
    if policy == "crop":
        side = min(height, width)
        return (width - side) // 2, (height - side) // 2, side
    if policy == "pad":
        side = max(height, width)
        return -((side - width) // 2), -((side - height) // 2), side
    raise ValueError(f"unknown resize policy {policy!r}")


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


def output_map(
    canvas: tuple[float, float], out: tuple[int, int], letterboxed: bool = False
) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """The 3x3 map from a canvas to the output it is resized to, and what of the output shows it.

    Args:
        canvas: The canvas ``(width, height)``.
        out: Output ``(width, height)``.
        letterboxed: Keep the canvas' aspect ratio, centred between black bars
            (:func:`letterbox`), instead of squashing it to the output.

    Returns:
        The map, and the part of the output showing the canvas ``(x0, y0, x1,
        y1)`` when letterboxed (None: all of it).
    """
    (fw, fh), (ox, oy) = letterbox(canvas, out) if letterboxed else (out, (0, 0))
    resize = np.array([[fw / canvas[0], 0.0, ox], [0.0, fh / canvas[1], oy], [0.0, 0.0, 1.0]])
    picture = (float(ox), float(oy), float(ox + fw), float(oy + fh)) if letterboxed else None
    return resize, picture


def as3x3(matrix: np.ndarray) -> np.ndarray:
    """A 2x3 affine matrix with its last row ``0 0 1`` (a 3x3 one is returned as it is)."""
    m = np.asarray(matrix, dtype=np.float64)
    return m if m.shape == (3, 3) else np.vstack([m, [0.0, 0.0, 1.0]])


def reshape_policy(work: np.ndarray, policy: str) -> np.ndarray:
    """Apply the shape policy to the working image (``squash``: unchanged).

    The kept square is :func:`policy_window`, which targets follow too.

    Raises:
        ValueError: For an unknown policy.
    """
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; choose from {RESIZE_POLICIES}")
    if policy == "squash":
        return work
    h, w = work.shape[:2]
    x0, y0, side = policy_window(w, h, policy)
    if policy == "crop":
        return np.ascontiguousarray(work[y0 : y0 + side, x0 : x0 + side])
    return cv2.copyMakeBorder(
        work,
        -y0,
        side - h + y0,
        -x0,
        side - w + x0,
        cv2.BORDER_CONSTANT,
        value=(0, 0, 0),
    )


def apply_rot90(image: np.ndarray, params: dict) -> np.ndarray:
    """Turn by ``turns`` quarter turns counterclockwise."""
    return np.ascontiguousarray(np.rot90(image, params["turns"]))


def apply_zoom(image: np.ndarray, params: dict) -> np.ndarray:
    """Crop the window (same aspect as the image); the caller resizes it to the output."""
    h, w = image.shape[:2]
    x0, y0, cw, ch = crop_window(params["keep"], params["x"], params["y"], w, h)
    return image[y0 : y0 + ch, x0 : x0 + cw]
