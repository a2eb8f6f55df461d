"""Masks through the transforms: pure geometry of label maps, bitmaps and polygons.

The companion of :func:`augtool.ops.targets.map_boxes` for segmentation targets, on plain arrays
(the annotation records live in :mod:`augtool.annotations.masks`). A geometric
transform sends source points to the output by the 3x3 (or 2x3) affine matrix
the pixels are warped by (``pipeline.builtins.output_matrix``); masks follow it:

* a label map or an instance bitmap is resampled at nearest neighbour: each
  output pixel takes the value of the source pixel under its centre, so no label
  value is ever invented (a linear warp would blend 3 and 5 into 4);
* a polygon is mapped exactly, vertex by vertex (an affine map keeps edges
  straight), then clipped to the output rectangle (Sutherland-Hodgman: the
  rectangle is convex, the polygon need not be);
* an instance is kept when some of it stays inside and at least
  ``min_visibility`` of its area does; an affine map scales every area by
  ``|det|``, so the whole mapped area is the source area times that.

Coordinates are continuous pixel edges, as everywhere in augtool: an image of
width ``W`` spans ``[0, W]`` and pixel ``i`` covers ``[i, i + 1)`` with its
centre at ``i + 0.5``. numpy only; no files, no clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Output pixels resampled per block: bounds the temporary coordinate arrays of a warp.
_BLOCK = 1 << 18
#: Polygon edges rasterised per block: bounds the temporary arrays of :func:`rasterize_polygons`.
_EDGE_BLOCK = 4096

#: A rectangle ``(x0, y0, x1, y1)`` in continuous pixel coordinates.
Rect = tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class Patch:
    """An instance bitmap kept as the window of the image its pixels lie in.

    A mask of a 640x480 image that covers a 30x30 cell is held (and pickled to
    a worker) as 30x30 pixels and where they sit.

    Attributes:
        mask: ``(h, w)`` bool: the instance's pixels inside the window.
        x0: The window's left pixel edge in the image.
        y0: Its top pixel edge.
    """

    mask: np.ndarray
    x0: int = 0
    y0: int = 0

    @classmethod
    def of(cls, mask: np.ndarray, x0: int = 0, y0: int = 0) -> Patch:
        """The bool bitmap ``mask`` (whose top-left pixel is ``(x0, y0)``) cut to its box."""
        m = np.asarray(mask, dtype=bool)
        box = mask_box(m)
        if box is None:
            return cls(np.zeros((0, 0), dtype=bool), x0, y0)
        bx0, by0, bx1, by1 = (int(v) for v in box)
        return cls(np.ascontiguousarray(m[by0:by1, bx0:bx1]), x0 + bx0, y0 + by0)

    @property
    def area(self) -> int:
        """Pixels of the instance."""
        return int(np.count_nonzero(self.mask))

    def box(self) -> Rect | None:
        """Tight box: the pixel edges of its set pixels, or None when it has none."""
        box = mask_box(self.mask)
        if box is None:
            return None
        return box[0] + self.x0, box[1] + self.y0, box[2] + self.x0, box[3] + self.y0

    def full(self, width: int, height: int) -> np.ndarray:
        """The instance as a bool ``(height, width)`` bitmap of the whole image (clipped to it)."""
        result = np.zeros((height, width), dtype=bool)
        h, w = self.mask.shape
        x0, y0 = max(self.x0, 0), max(self.y0, 0)
        x1, y1 = min(self.x0 + w, width), min(self.y0 + h, height)
        if x0 < x1 and y0 < y1:
            inner = self.mask[y0 - self.y0 : y1 - self.y0, x0 - self.x0 : x1 - self.x0]
            result[y0:y1, x0:x1] = inner
        return result


#: One instance for :func:`map_instances`: polygon parts (each ``(N, 2)``), a bool bitmap
#: of the whole image, or a :class:`Patch`.
Geometry = list[np.ndarray] | np.ndarray | Patch


def as_affine(matrix: np.ndarray) -> np.ndarray:
    """A 2x3 or 3x3 affine matrix as 3x3 float64 (last row ``0 0 1``).

    Raises:
        ValueError: When it is neither shape, or not invertible.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape not in ((2, 3), (3, 3)):
        raise ValueError(f"an affine matrix is 2x3 or 3x3, got shape {m.shape}")
    full = np.vstack([m[:2], [0.0, 0.0, 1.0]])
    det = full[0, 0] * full[1, 1] - full[0, 1] * full[1, 0]
    if not math.isfinite(det) or abs(det) < 1e-12:
        raise ValueError("the affine matrix is not invertible")
    return full


def area_scale(matrix: np.ndarray) -> float:
    """The factor by which the affine map scales every area: ``|det|`` of its linear part."""
    m = as_affine(matrix)
    return abs(float(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]))


def warp_labels(
    labels: np.ndarray,
    matrix: np.ndarray,
    out: tuple[int, int],
    fill: int = 0,
    window: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Resample a label map (or a bool bitmap) by an affine map at nearest neighbour.

    Output pixel ``(u, v)`` takes the source pixel that contains the point the
    inverse map sends its centre ``(u + 0.5, v + 0.5)`` to; outside the source
    it takes ``fill``. Flips and quarter turns are therefore exact.

    Args:
        labels: ``(H, W)`` array of any integer or bool dtype.
        matrix: Source-to-output affine map, 2x3 or 3x3.
        out: Output ``(width, height)``.
        fill: Value of output pixels whose centre maps outside the source.
        window: Only fill this part of the output, ``(x0, y0, x1, y1)`` in whole
            pixels (the rest is ``fill``); default: all of it.

    Returns:
        ``(height, width)`` array of the same dtype.
    """
    src = np.asarray(labels)
    if src.ndim != 2:
        raise ValueError(f"a label map is 2-D, got shape {src.shape}")
    width, height = int(out[0]), int(out[1])
    result = np.full((height, width), fill, dtype=src.dtype)
    x0, y0, x1, y1 = window or (0, 0, width, height)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x0 >= x1 or y0 >= y1:
        return result
    inv = np.linalg.inv(as_affine(matrix))
    xs = np.arange(x0, x1, dtype=np.float64) + 0.5
    rows = max(1, _BLOCK // (x1 - x0))
    for top in range(y0, y1, rows):
        ys = np.arange(top, min(top + rows, y1), dtype=np.float64)[:, None] + 0.5
        ix = np.floor(inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2])
        iy = np.floor(inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2])
        inside = (ix >= 0) & (ix < src.shape[1]) & (iy >= 0) & (iy < src.shape[0])
        block = result[top : top + ys.shape[0], x0:x1]
        block[inside] = src[iy[inside].astype(np.intp), ix[inside].astype(np.intp)]
    return result


def mask_box(mask: np.ndarray) -> Rect | None:
    """The tight box of a bitmap: pixel edges of its set pixels, or None when it is empty."""
    cols = np.flatnonzero(np.any(mask, axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(np.any(mask, axis=1))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def polygon_area(points: np.ndarray) -> float:
    """Area enclosed by a polygon (shoelace formula, absolute value)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def polygons_box(parts: Sequence[np.ndarray]) -> Rect | None:
    """The tight box of polygon parts (their vertices' extremes), or None when there are none."""
    points = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in parts if len(p)]
    if not points:
        return None
    every = np.concatenate(points)
    low, high = every.min(axis=0), every.max(axis=0)
    return float(low[0]), float(low[1]), float(high[0]), float(high[1])


def map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points ``(N, 2)`` mapped by an affine matrix (exactly: no rounding)."""
    m = as_affine(matrix)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ m[:2, :2].T + m[:2, 2]


def clip_polygon(points: np.ndarray, rect: Rect) -> np.ndarray:
    """The part of a polygon inside a rectangle (Sutherland-Hodgman).

    The rectangle is convex, so one pass per side is exact for any simple
    polygon, concave ones included; where a concave polygon leaves and re-enters
    the rectangle the result runs along the side between the two places (an
    edge of zero width, which encloses no area and fills no pixel).

    Args:
        points: ``(N, 2)`` vertices.
        rect: ``(x0, y0, x1, y1)``.

    Returns:
        ``(M, 2)`` vertices, ``M`` 0 when nothing is inside.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0, y0, x1, y1 = rect
    for axis, bound, keep_above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if len(p) == 0:
            break
        p = _clip_side(p, axis, bound, keep_above)
    return p


def _clip_side(p: np.ndarray, axis: int, bound: float, keep_above: bool) -> np.ndarray:
    """One Sutherland-Hodgman pass: keep the half-plane ``p[axis] >= bound`` (or ``<=``)."""
    value = p[:, axis]
    inside = value >= bound if keep_above else value <= bound
    if inside.all():
        return p
    if not inside.any():
        return p[:0]
    prev = np.roll(p, 1, axis=0)
    prev_inside = np.roll(inside, 1)
    crossing = inside != prev_inside
    # The crossing of edge prev -> cur with the line; only used where the two differ.
    dv = value - prev[:, axis]
    t = np.divide(bound - prev[:, axis], dv, out=np.zeros_like(dv), where=crossing)
    cross = prev + t[:, None] * (p - prev)
    cross[:, axis] = bound
    # Each vertex emits [crossing of the edge into it] then [itself if inside], in order.
    emitted = np.stack([cross, p], axis=1).reshape(-1, 2)
    keep = np.stack([crossing, inside], axis=1).reshape(-1)
    return emitted[keep]


def rasterize_polygons(parts: Sequence[np.ndarray], width: int, height: int) -> np.ndarray:
    """The pixels whose centres lie inside polygon parts (even-odd per part, union of parts).

    Each edge toggles, on every row whose centre line ``y + 0.5`` it crosses
    (half-open in y, so a vertex on the line counts once), the pixels from the
    first centre right of the crossing onwards; a running parity then fills
    each row. Exact in floating point, independent of the polygon's orientation.

    Args:
        parts: Polygons, each ``(N, 2)`` in continuous pixel coordinates.
        width: Image width.
        height: Image height.

    Returns:
        ``(height, width)`` bool.
    """
    result = np.zeros((height, width), dtype=bool)
    for part in parts:
        p = np.asarray(part, dtype=np.float64).reshape(-1, 2)
        if len(p) < 3:
            continue
        toggles = np.zeros((height, width + 1), dtype=np.uint8)
        q = np.roll(p, -1, axis=0)
        for start in range(0, len(p), _EDGE_BLOCK):
            _toggle_edges(toggles, p[start : start + _EDGE_BLOCK], q[start : start + _EDGE_BLOCK])
        inside = (np.cumsum(toggles, axis=1, dtype=np.uint32) & 1).astype(bool)
        result |= inside[:, :width]
    return result


def _toggle_edges(toggles: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Add each edge ``a -> b``'s row crossings to ``toggles`` (counted mod 2 by the caller)."""
    height, span = toggles.shape
    lo, hi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    # Rows r with lo <= r + 0.5 < hi, within the image.
    first = np.clip(np.ceil(lo - 0.5), 0, height).astype(np.int64)
    stop = np.clip(np.ceil(hi - 0.5), 0, height).astype(np.int64)
    rows_per_edge = np.maximum(stop - first, 0)
    if rows_per_edge.sum() == 0:
        return
    edge = np.repeat(np.arange(len(a)), rows_per_edge)
    offset = np.arange(edge.size) - np.repeat(
        np.cumsum(rows_per_edge) - rows_per_edge, rows_per_edge
    )
    rows = first[edge] + offset
    yc = rows + 0.5
    ax, ay, bx, by = a[edge, 0], a[edge, 1], b[edge, 0], b[edge, 1]
    x = ax + (yc - ay) * (bx - ax) / (by - ay)
    cols = np.clip(np.ceil(x - 0.5), 0, span - 1).astype(np.int64)
    np.add.at(toggles, (rows, cols), 1)


def map_polygons(
    parts: Sequence[np.ndarray], matrix: np.ndarray, rect: Rect
) -> tuple[list[np.ndarray], float, float]:
    """Map polygon parts exactly and clip them to a rectangle.

    Args:
        parts: The instance's polygons, each ``(N, 2)``.
        matrix: Source-to-output affine map.
        rect: The output part that shows the picture, ``(x0, y0, x1, y1)``.

    Returns:
        ``(clipped parts with area, whole mapped area, area inside)``: the parts
        are in output pixels; the areas sum the parts (COCO's parts of one
        instance do not overlap).
    """
    kept, whole, inside = [], 0.0, 0.0
    for part in parts:
        mapped = map_points(part, matrix)
        whole += polygon_area(mapped)
        clipped = clip_polygon(mapped, rect)
        area = polygon_area(clipped)
        if area > 0:
            kept.append(clipped)
            inside += area
    return kept, whole, inside


def map_bitmap(
    mask: np.ndarray, matrix: np.ndarray, out: tuple[int, int], rect: Rect | None = None
) -> np.ndarray:
    """An instance bitmap resampled into the output at nearest neighbour.

    Only the output window that the mask's box maps to is resampled, so a small
    instance on a large image costs little.

    Args:
        mask: ``(H, W)`` bool.
        matrix: Source-to-output affine map.
        out: Output ``(width, height)``.
        rect: The output part that shows the picture (default: all of it);
            pixels outside it stay unset.

    Returns:
        ``(height, width)`` bool.
    """
    width, height = int(out[0]), int(out[1])
    box = mask_box(mask)
    if box is None:
        return np.zeros((height, width), dtype=bool)
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]])
    mapped = map_points(corners, matrix)
    left, top, right, bottom = rect or (0.0, 0.0, float(width), float(height))
    window = (
        max(math.floor(mapped[:, 0].min()), math.floor(left)),
        max(math.floor(mapped[:, 1].min()), math.floor(top)),
        min(math.ceil(mapped[:, 0].max()), math.ceil(right)),
        min(math.ceil(mapped[:, 1].max()), math.ceil(bottom)),
    )
    return warp_labels(np.asarray(mask, dtype=bool), matrix, out, False, window)


def map_patch(patch: Patch, matrix: np.ndarray, out: tuple[int, int], rect: Rect) -> Patch:
    """A patch resampled into the output at nearest neighbour (:func:`warp_labels`).

    Only the output window its box maps to, within ``rect`` and the output, is
    resampled; the result is cut to the pixels set.

    Args:
        patch: The instance.
        matrix: Map from the patch's image to the output.
        out: Output ``(width, height)``.
        rect: The output part that shows the picture; pixels outside it stay unset.
    """
    h, w = patch.mask.shape
    if h == 0 or w == 0:
        return patch
    m = as_affine(matrix) @ np.array([[1.0, 0.0, patch.x0], [0.0, 1.0, patch.y0], [0, 0, 1.0]])
    mapped = map_points(np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]]), m)
    x0 = max(math.floor(mapped[:, 0].min()), math.floor(rect[0]), 0)
    y0 = max(math.floor(mapped[:, 1].min()), math.floor(rect[1]), 0)
    x1 = min(math.ceil(mapped[:, 0].max()), math.ceil(rect[2]), int(out[0]))
    y1 = min(math.ceil(mapped[:, 1].max()), math.ceil(rect[3]), int(out[1]))
    if x0 >= x1 or y0 >= y1:
        return Patch(np.zeros((0, 0), dtype=bool), 0, 0)
    local = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ m
    return Patch.of(warp_labels(patch.mask, local, (x1 - x0, y1 - y0), False), x0, y0)


def shape_box(shape: Geometry) -> Rect | None:
    """Tight box of an instance as :func:`map_instances` holds it, or None when it is empty."""
    if isinstance(shape, Patch):
        return shape.box()
    if isinstance(shape, np.ndarray):
        return mask_box(shape)
    return polygons_box(shape)


def map_instances(
    shapes: Sequence[Geometry],
    matrix: np.ndarray,
    out: tuple[int, int],
    min_visibility: float,
    picture: Rect | None = None,
) -> tuple[list[Geometry], np.ndarray]:
    """Map instances into an output, dropping those that leave it or are mostly lost.

    An instance's visible fraction is its area inside the output over its
    whole mapped area: for polygons both are exact (shoelace); for a bitmap the
    whole is its source pixel count times :func:`area_scale`, the inside the
    pixels the resampled bitmap sets.

    Args:
        shapes: Each instance as polygon parts (a list of ``(N, 2)`` arrays in
            source pixels), a bool ``(H, W)`` source bitmap or a :class:`Patch`.
        matrix: Source-to-output affine map (``pipeline.builtins.output_matrix``).
        out: Output ``(width, height)``.
        min_visibility: Smallest fraction of an instance's area that must stay
            inside; an instance with nothing inside is always dropped.
        picture: The part of the output that shows the canvas (a letterboxed
            output's bars show nothing); default: the whole output.

    Returns:
        ``(mapped shapes, their indices into shapes)``: each kept instance in the
        kind it came as (clipped polygon parts, an output-sized bitmap, a patch).
    """
    rect = picture or (0.0, 0.0, float(out[0]), float(out[1]))
    scale = area_scale(matrix)
    kept: list[Geometry] = []
    index: list[int] = []
    for i, shape in enumerate(shapes):
        mapped: Geometry
        if isinstance(shape, Patch):
            mapped = map_patch(shape, matrix, out, rect)
            whole = float(shape.area) * scale
            inside = float(mapped.area)
        elif isinstance(shape, np.ndarray):
            mapped = map_bitmap(shape, matrix, out, rect)
            whole = float(np.count_nonzero(shape)) * scale
            inside = float(np.count_nonzero(mapped))
        else:
            mapped, whole, inside = map_polygons(shape, matrix, rect)
        if inside > 0 and inside >= min_visibility * whole:
            kept.append(mapped)
            index.append(i)
    return kept, np.asarray(index, dtype=np.intp)
