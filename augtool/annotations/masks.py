"""Segmentation targets: instance shapes (polygons, RLE, bitmaps) and semantic label maps.

An instance's shape comes in the form its file gave it, and converts to the others:

* :class:`Polygons`: one or more closed outlines in continuous pixel
  coordinates (an image of width ``W`` spans ``[0, W]``; pixel ``i`` covers
  ``[i, i + 1)``), as COCO and YOLO write them; several parts are one instance
  (their union).
* :class:`Rle`: COCO's run-length encoding: the mask read column by column
  (column-major, "Fortran" order), runs alternately unset and set, starting
  with unset (a first run of 0 when the first pixel is set). The counts can be
  a list of integers or COCO's compressed string (:func:`compress_counts`).
* :class:`Bitmap`: a bool ``(H, W)`` array.

A polygon covers the pixels whose centres lie inside it (even-odd rule for one
outline, union of the outlines), which is what pycocotools computes too, up to
its own approximation of pixels whose centres lie on an edge. A bitmap turns into
polygons that follow the pixel edges exactly (:func:`mask_to_polygons`), so the
round trip bitmap -> polygons -> bitmap is exact for masks without holes.

numpy and OpenCV only; no files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from augtool.ops.mask_geometry import (
    Geometry,
    Rect,
    clip_polygon,
    map_instances,
    mask_box,
    polygon_area,
    polygons_box,
    rasterize_polygons,
)

#: The label of pixels that belong to no class (VOC's object boundaries, "don't care").
IGNORE = 255
#: Largest step of COCO's compressed counts: 13 groups of 5 bits hold a 64-bit integer.
_MAX_GROUPS = 13


@dataclass(frozen=True, eq=False)
class Polygons:
    """An instance as polygon outlines.

    Attributes:
        parts: Each part ``(N, 2)`` float64 ``x, y`` vertices, ``N >= 3``.
    """

    parts: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Rle:
    """An instance as COCO's column-major run-length encoding.

    Attributes:
        height: Mask height in pixels.
        width: Mask width in pixels.
        counts: Run lengths, alternately unset and set, starting with unset;
            they sum to ``height * width``.
    """

    height: int
    width: int
    counts: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Bitmap:
    """An instance as a bool ``(H, W)`` array.

    Attributes:
        mask: The pixels of the instance.
    """

    mask: np.ndarray


#: An instance's shape in any of its three forms.
Shape = Polygons | Rle | Bitmap


@dataclass(frozen=True, eq=False)
class Instance:
    """One object of a segmentation annotation.

    Attributes:
        label: Class name.
        shape: Its pixels, as the file gave them.
        iscrowd: COCO's crowd flag: a region of many objects, one annotation.
        index: Position among its image's objects as written (0-based).
        where: How messages point at it (``annotation id 12``, ``line 7``, ``id 3``).
    """

    label: str
    shape: Shape
    iscrowd: bool = False
    index: int = 0
    where: str = ""


@dataclass(frozen=True, eq=False)
class LabelMap:
    """A semantic segmentation: one class index per pixel.

    Attributes:
        labels: ``(H, W)`` uint8 or uint16 class indices.
        classes: ``classes[i]`` is the name of index ``i``.
        ignore: The index of pixels that count for no class (``IGNORE``), or None.
    """

    labels: np.ndarray
    classes: tuple[str, ...]
    ignore: int | None = IGNORE


# --- run-length encoding ------------------------------------------------------------------


def encode_rle(mask: np.ndarray) -> Rle:
    """COCO's run-length encoding of a bitmap (column-major runs, unset first)."""
    m = np.asarray(mask, dtype=bool)
    height, width = m.shape
    flat = m.ravel(order="F")
    if flat.size == 0:
        return Rle(height, width, ())
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return Rle(height, width, tuple(int(c) for c in counts))


def decode_rle(rle: Rle) -> np.ndarray:
    """The bitmap of an RLE.

    Raises:
        ValueError: When the counts are negative or do not sum to ``height * width``.
    """
    counts = np.asarray(rle.counts, dtype=np.int64)
    if (counts < 0).any() or int(counts.sum()) != rle.height * rle.width:
        raise ValueError(
            f"RLE counts sum to {int(counts.sum())}, not {rle.height}x{rle.width} pixels"
        )
    values = (np.arange(counts.size) % 2).astype(bool)
    flat = np.repeat(values, counts)
    return flat.reshape(rle.width, rle.height).T.copy()


def rle_area(rle: Rle) -> int:
    """Set pixels of an RLE (the sum of its odd runs), without decoding it."""
    return int(sum(rle.counts[1::2]))


def rle_box(rle: Rle) -> Rect | None:
    """Tight box of an RLE's set pixels, without decoding it; None when it is empty."""
    counts = np.asarray(rle.counts, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    runs = np.arange(counts.size) % 2 == 1
    runs &= counts > 0
    if not runs.any():
        return None
    first, last = starts[runs], starts[runs] + counts[runs] - 1
    h = rle.height
    c0, c1 = first // h, last // h
    one_column = c0 == c1
    top = np.where(one_column, first % h, 0).min()
    bottom = np.where(one_column, last % h, h - 1).max()
    return float(c0.min()), float(top), float(c1.max() + 1), float(bottom + 1)


def compress_counts(counts: Sequence[int]) -> str:
    """COCO's compressed string of RLE counts (pycocotools' ``rleToString``).

    Each count from the third on is written as its difference from the count
    two before; each number is written in groups of 5 bits, least significant
    first, as characters from ``0`` (48) up, with bit 6 set while more follow.
    """
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def decompress_counts(text: str, total: int) -> tuple[int, ...]:
    """RLE counts from COCO's compressed string (pycocotools' ``rleFrString``).

    Args:
        text: The compressed counts.
        total: ``height * width``: no run may be longer, and there cannot be
            more than ``total + 1`` runs (a bound on hostile input).

    Returns:
        The counts.

    Raises:
        ValueError: For a character outside the code, a number cut short, a
            negative or too long run, or too many runs.
    """
    counts: list[int] = []
    x = shift = 0
    for position, char in enumerate(text):
        c = ord(char) - 48
        if not 0 <= c < 64:
            raise ValueError(f"character {char!r} at {position} is not in COCO's RLE code")
        x |= (c & 0x1F) << (5 * shift)
        shift += 1
        if c & 0x20:
            if shift >= _MAX_GROUPS:
                raise ValueError(f"a count at {position} runs on past 64 bits")
            continue
        if c & 0x10:
            x |= -1 << (5 * shift)
        if len(counts) > 2:
            x += counts[-2]
        if not 0 <= x <= total:
            raise ValueError(f"run {len(counts) + 1} is {x} pixels long (0 to {total} allowed)")
        counts.append(x)
        if len(counts) > total + 1:
            raise ValueError(f"more runs than the {total} pixels allow")
        x = shift = 0
    if shift:
        raise ValueError("the last count is cut short")
    return tuple(counts)


# --- polygons -----------------------------------------------------------------------------


def mask_to_polygons(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Outlines along the pixel edges of a bitmap's regions (outer outlines only).

    The mask is doubled (each pixel 2x2) and traced with OpenCV's border
    following; a traced point ``u`` of the doubled grid is the pixel edge
    ``(u + 1) // 2``, so each outline runs along the edges of the outermost
    pixels and :func:`rasterize_polygons` gives the mask back exactly. Holes
    cannot be polygons in COCO (its parts are a union): they are filled.

    Returns:
        ``(N, 2)`` float64 outlines, one per 8-connected region, ``N >= 3``.
    """
    parts, _ = _outlines(np.asarray(mask, dtype=bool))
    return parts


def exact_polygons(mask: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """:func:`mask_to_polygons` when they give the mask back exactly; None when it has holes."""
    parts, exact = _outlines(np.asarray(mask, dtype=bool), check=True)
    return parts if exact else None


def _outlines(mask: np.ndarray, check: bool = False) -> tuple[tuple[np.ndarray, ...], bool]:
    """The outlines of a mask, traced in its box; with ``check``, whether they are exact."""
    box = mask_box(mask)
    if box is None:
        return (), True
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = mask[y0:y1, x0:x1].astype(np.uint8)
    doubled = np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)
    contours, _ = cv2.findContours(doubled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts = []
    for contour in contours:
        points = (contour.reshape(-1, 2) + 1) // 2
        keep = np.any(points != np.roll(points, 1, axis=0), axis=1)  # repeats of a vertex
        points = points[keep] if keep.any() else points[:1]
        if len(points) >= 3:
            parts.append(points.astype(np.float64))
    exact = not check or np.array_equal(
        rasterize_polygons(parts, x1 - x0, y1 - y0), crop.astype(bool)
    )
    offset = np.array([x0, y0], dtype=np.float64)
    return tuple(p + offset for p in parts), exact


def clip_polygons(parts: Sequence[np.ndarray], width: int, height: int) -> tuple[np.ndarray, ...]:
    """Polygon parts clipped to ``[0, width] x [0, height]``; parts left without area dropped."""
    rect = (0.0, 0.0, float(width), float(height))
    clipped = (clip_polygon(p, rect) for p in parts)
    return tuple(p for p in clipped if polygon_area(p) > 0)


# --- shapes in any form -------------------------------------------------------------------


def to_bitmap(shape: Shape, width: int, height: int) -> np.ndarray:
    """A shape as a bool ``(height, width)`` array.

    Raises:
        ValueError: For an RLE or bitmap of another size than ``width x height``.
    """
    if isinstance(shape, Polygons):
        return rasterize_polygons(shape.parts, width, height)
    if isinstance(shape, Rle):
        _check_size(shape.width, shape.height, width, height)
        return decode_rle(shape)
    _check_size(shape.mask.shape[1], shape.mask.shape[0], width, height)
    return np.asarray(shape.mask, dtype=bool)


def to_rle(shape: Shape, width: int, height: int) -> Rle:
    """A shape as an RLE (polygons rasterised)."""
    if isinstance(shape, Rle):
        _check_size(shape.width, shape.height, width, height)
        return shape
    return encode_rle(to_bitmap(shape, width, height))


def to_polygons(shape: Shape, width: int, height: int) -> Polygons:
    """A shape as polygons (pixel-edge outlines of a bitmap or RLE; holes filled)."""
    if isinstance(shape, Polygons):
        return shape
    return Polygons(mask_to_polygons(to_bitmap(shape, width, height)))


def shape_area(shape: Shape, width: int, height: int) -> int:
    """Pixels a shape covers (polygons rasterised: COCO's ``area``)."""
    if isinstance(shape, Rle):
        _check_size(shape.width, shape.height, width, height)
        return rle_area(shape)
    return int(np.count_nonzero(to_bitmap(shape, width, height)))


def shape_box(shape: Shape, width: int, height: int) -> Rect | None:
    """Tight box ``(x0, y0, x1, y1)`` of a shape, or None when it covers nothing.

    Polygons give the extremes of their vertices (continuous) once clipped to
    the image; an RLE or a bitmap the pixel edges of its set pixels.
    """
    if isinstance(shape, Polygons):
        return polygons_box(clip_polygons(shape.parts, width, height))
    if isinstance(shape, Rle):
        _check_size(shape.width, shape.height, width, height)
        return rle_box(shape)
    return mask_box(to_bitmap(shape, width, height))


def _check_size(got_w: int, got_h: int, width: int, height: int) -> None:
    if (got_w, got_h) != (width, height):
        raise ValueError(f"the mask is {got_w}x{got_h}, its image {width}x{height}")


def instance_boxes(instances: Sequence[Instance], width: int, height: int) -> np.ndarray:
    """Tight boxes of instances, ``(N, 4)`` ``x0, y0, x1, y1`` (NaN rows for empty shapes)."""
    boxes = np.full((len(instances), 4), np.nan)
    for i, instance in enumerate(instances):
        box = shape_box(instance.shape, width, height)
        if box is not None:
            boxes[i] = box
    return boxes


def transform_instances(
    instances: Sequence[Instance],
    size: tuple[int, int],
    matrix: np.ndarray,
    out: tuple[int, int],
    min_visibility: float,
    picture: Rect | None = None,
) -> tuple[tuple[Instance, ...], np.ndarray]:
    """Instances through an affine map: :func:`augtool.ops.mask_geometry.map_instances` on records.

    Polygons stay polygons (mapped exactly, clipped); an RLE or a bitmap is
    resampled at nearest neighbour and comes back in its own form.

    Args:
        instances: The source instances.
        size: Source ``(width, height)``.
        matrix: Source-to-output affine map (the pixels' own).
        out: Output ``(width, height)``.
        min_visibility: Smallest fraction of an instance's area kept inside.
        picture: The part of the output that shows the canvas (default: all).

    Returns:
        ``(kept instances in output pixels, their indices into instances)``.
    """
    geometry: list[Geometry] = [
        list(i.shape.parts) if isinstance(i.shape, Polygons) else to_bitmap(i.shape, *size)
        for i in instances
    ]
    mapped, index = map_instances(geometry, matrix, out, min_visibility, picture)
    kept = []
    for shape, i in zip(mapped, index, strict=True):
        source = instances[int(i)]
        new: Shape
        if isinstance(shape, np.ndarray):
            new = encode_rle(shape) if isinstance(source.shape, Rle) else Bitmap(shape)
        else:
            new = Polygons(tuple(shape))
        kept.append(
            Instance(source.label, new, source.iscrowd, source.index, source.where),
        )
    return tuple(kept), index


def paint_ids(instances: Sequence[Instance], width: int, height: int) -> np.ndarray:
    """An instance-id map: pixel value ``k`` for the ``k``-th instance (1-based), 0 for none.

    Where instances overlap, the later one is on top (as painted in order).

    Raises:
        ValueError: For more than 65535 instances (a 16-bit PNG's limit).
    """
    if len(instances) > 65535:
        raise ValueError(f"{len(instances)} instances do not fit a 16-bit id map")
    dtype = np.uint8 if len(instances) < IGNORE else np.uint16
    ids = np.zeros((height, width), dtype=dtype)
    for k, instance in enumerate(instances, start=1):
        ids[to_bitmap(instance.shape, width, height)] = k
    return ids


def split_ids(ids: np.ndarray, skip: Sequence[int] = (0,)) -> dict[int, Rle]:
    """Each value of an id map as the RLE of its pixels, in one sort of the map.

    Args:
        ids: ``(H, W)`` integer map (an instance-id PNG).
        skip: Values that are no instance (background, VOC's boundary 255).

    Returns:
        ``{value: rle}`` for every value present and not skipped, ascending.
    """
    height, width = ids.shape
    flat = np.asarray(ids).ravel(order="F")
    order = np.argsort(flat, kind="stable")
    values, starts = np.unique(flat[order], return_index=True)
    ends = np.append(starts[1:], flat.size)
    found: dict[int, Rle] = {}
    for value, start, end in zip(values.tolist(), starts, ends, strict=True):
        if value in skip:
            continue
        pos = order[start:end]  # ascending: the sort is stable
        breaks = np.flatnonzero(np.diff(pos) != 1) + 1
        first = pos[np.concatenate([[0], breaks])]
        stop = pos[np.concatenate([breaks - 1, [pos.size - 1]])] + 1
        gaps = first - np.concatenate([[0], stop[:-1]])
        counts = np.stack([gaps, stop - first], axis=1).ravel().tolist()
        if stop[-1] < flat.size:
            counts.append(flat.size - int(stop[-1]))
        found[int(value)] = Rle(height, width, tuple(int(c) for c in counts))
    return found
