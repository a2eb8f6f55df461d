"""Targets: what lives on an image's pixel grid and must follow its pixels.

Boxes, instance masks (polygons or bitmaps) and semantic label maps.
Coordinates are continuous pixel edges, as in ``augtool.annotations``: an
image of width ``W`` spans ``[0, W]``.

A box follows a geometric step the way its pixels do: its four corners are
mapped by the step's affine matrix, the new box is the bounding box of the
mapped corners, clipped to the output image, and kept only when at least
``min_visibility`` of its area remains (the area of the mapped box before
clipping being the whole).

An instance mask follows by the same matrix (:mod:`augtool.ops.mask_geometry`):
a polygon vertex by vertex, then clipped; a bitmap at nearest neighbour. It is
kept when at least ``min_visibility`` of its *area* remains, and its box goes
with it: recomputed from the mapped mask (``tight``) or mapped from the source
box as above (``hull``). A semantic map is resampled at nearest neighbour, 0
where no source pixel lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from augtool.defaults import DEFAULT_MIN_VISIBILITY
from augtool.ops.geometry import as3x3
from augtool.ops.mask_geometry import Patch, map_instances, shape_box, warp_labels

#: Where an image's content lies: ``(x0, y0, x1, y1)`` (a letterboxed output's bars show none).
Picture = tuple[float, float, float, float]
#: One instance's mask: polygon parts (each ``(K, 2)`` vertices), or a bitmap :class:`Patch`.
Shape = list[np.ndarray] | Patch


def map_boxes(
    boxes: np.ndarray,
    matrix: np.ndarray,
    out: tuple[float, float],
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
    clipped, area, inside = _map_clip(boxes, matrix, out, picture)
    keep = (inside > 0) & (inside >= min_visibility * area)
    index = np.flatnonzero(keep)
    return clipped[index], index


def _map_clip(
    boxes: np.ndarray,
    matrix: np.ndarray,
    out: tuple[float, float],
    picture: tuple[float, float, float, float] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes mapped and clipped: ``(clipped (N, 4), whole mapped area, area inside)``."""
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
    return clipped, area, inside


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float64)


@dataclass(frozen=True)
class Targets:
    """The targets of one image, carried through a pipeline's steps with its pixels.

    Targets are lazy: a geometric step composes its map into :attr:`matrix`
    (:meth:`mapped`), and the boxes and masks are mapped, clipped and filtered
    once, by the whole composed map (:meth:`settled`). So a box or a mask goes
    through exactly the arithmetic of its pixels, and steps that need concrete
    targets (an albumentations step) settle them first.

    Attributes:
        size: ``(width, height)`` of the image the targets belong to now.
        boxes: ``(N, 4)`` boxes ``x0, y0, x1, y1`` on the grid they were last
            settled on; :attr:`matrix` maps that grid to the image's.
        ids: ``(N,)`` position of each box among the boxes first given (labels
            and other attributes stay with the caller, found through it).
        matrix: 3x3 map from the boxes' grid to the image, not applied yet.
        picture: The part of the image showing content, boxes are clipped to
            it; None: all of it.
        shapes: Instance masks, one per box (on the boxes' grid): polygon parts
            where they came as polygons, else bitmap patches; None for boxes
            without masks.
        semantic: ``(H, W)`` class-index map on the boxes' grid, or None.
        tight: With :attr:`shapes`, each box is the tight box of its mapped
            mask; False: the source box mapped as a box (the hull of its corners).
    """

    size: tuple[float, float]
    boxes: np.ndarray = field(default_factory=_no_boxes)
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.eye(3))
    picture: Picture | None = None
    shapes: tuple[Shape, ...] | None = None
    semantic: np.ndarray | None = None
    tight: bool = True

    @classmethod
    def from_boxes(cls, boxes: np.ndarray | Sequence, size: tuple[float, float]) -> Targets:
        """Targets of an image of ``size`` with these ``(N, 4)`` boxes (ids 0..N-1).

        Raises:
            ValueError: If ``boxes`` is not ``N`` rows of four numbers.
        """
        array = np.asarray(boxes, dtype=np.float64)
        if array.size == 0:
            array = _no_boxes()
        if array.ndim != 2 or array.shape[1] != 4:
            raise ValueError(f"boxes must be (N, 4) x0, y0, x1, y1; got shape {array.shape}")
        return cls((float(size[0]), float(size[1])), array, np.arange(len(array)))

    @classmethod
    def from_masks(
        cls,
        size: tuple[int, int],
        shapes: Sequence[Shape] = (),
        semantic: np.ndarray | None = None,
        tight: bool = True,
    ) -> Targets:
        """Targets of an image of ``size`` with instance masks (ids 0..N-1) and a class map.

        Each instance's box is the tight box of its mask on the source.

        Args:
            size: The image ``(width, height)``.
            shapes: Each instance as polygon parts (``(K, 2)`` vertices in
                pixels) or a :class:`~augtool.ops.mask_geometry.Patch`.
            semantic: ``(height, width)`` integer class-index map, or None.
            tight: Boxes of the outputs from their masks (False: mapped as boxes).

        Raises:
            ValueError: For an empty mask, or a class map of another size.
        """
        width, height = int(size[0]), int(size[1])
        kept: list[Shape] = []
        boxes = np.zeros((len(shapes), 4), np.float64)
        for i, shape in enumerate(shapes):
            if not isinstance(shape, Patch):
                shape = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in shape]
            box = shape_box(shape)
            if box is None:
                raise ValueError(f"instance {i} has an empty mask")
            boxes[i] = box
            kept.append(shape)
        if semantic is not None and np.shape(semantic) != (height, width):
            raise ValueError(f"the class map is {np.shape(semantic)}, the image {height}x{width}")
        return cls(
            (float(width), float(height)),
            boxes,
            np.arange(len(kept)),
            shapes=tuple(kept),
            semantic=None if semantic is None else np.asarray(semantic),
            tight=tight,
        )

    def __len__(self) -> int:
        """Number of boxes (before the pending map drops any)."""
        return len(self.boxes)

    def mapped(
        self, matrix: np.ndarray, size: tuple[float, float], picture: Picture | None = None
    ) -> Targets:
        """The targets after a map of the image's pixels to a new image of ``size``.

        Args:
            matrix: 2x3 or 3x3 affine map from this image's pixels to the new one's.
            size: The new image ``(width, height)``.
            picture: The part of the new image that shows content (None: all).
        """
        return replace(self, size=size, matrix=as3x3(matrix) @ self.matrix, picture=picture)

    def settled(self, min_visibility: float = 0.0) -> Targets:
        """Apply the pending map: targets on the image's own grid, clipped, the mostly-lost gone.

        Boxes alone follow :func:`map_boxes`. With masks an instance is kept
        when at least ``min_visibility`` of its area stays inside (see
        :func:`augtool.ops.mask_geometry.map_instances`), and its box with it.

        Args:
            min_visibility: See :func:`map_boxes`.
        """
        if self.shapes is None and self.semantic is None:
            kept, index = map_boxes(
                self.boxes, self.matrix, self.size, min_visibility, self.picture
            )
            return Targets(self.size, kept, self.ids[index])
        if self.picture is None and np.array_equal(self.matrix, np.eye(3)):
            return self  # on its own grid, clipped to it when it was settled there
        out = (round(self.size[0]), round(self.size[1]))
        semantic = self.semantic
        if semantic is not None:
            semantic = warp_labels(semantic, self.matrix, out)
        if self.shapes is None:
            kept, index = map_boxes(
                self.boxes, self.matrix, self.size, min_visibility, self.picture
            )
            return Targets(self.size, kept, self.ids[index], semantic=semantic)
        shapes, index = map_instances(self.shapes, self.matrix, out, min_visibility, self.picture)
        if self.tight:
            boxes = np.array([shape_box(s) for s in shapes], np.float64).reshape(-1, 4)
        else:
            boxes = _map_clip(self.boxes[index], self.matrix, self.size, self.picture)[0]
        return Targets(
            self.size,
            boxes,
            self.ids[index],
            shapes=tuple(shapes),  # type: ignore[arg-type]
            semantic=semantic,
            tight=self.tight,
        )
