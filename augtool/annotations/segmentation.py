"""Segmentation annotations: the records every mask reader returns, and the checks they share.

Readers, one per format, each in its own module:

* ``coco``: COCO instance segmentation, polygons and RLE (:mod:`.coco_masks`);
* ``yolo``: YOLO segmentation, one normalised polygon a line (:mod:`.yolo_masks`);
* ``png``: per-image class-index maps and a class names file (:mod:`.png_masks`);
* ``png-instances``: per-image instance-id maps, each with a JSON class table
  (:mod:`.png_masks`);
* ``voc``: Pascal VOC's ``SegmentationClass`` and ``SegmentationObject``
  palette PNGs (:mod:`.png_masks`).

As the box readers (:mod:`augtool.annotations`), they never stop at the first
fault: every problem (a polygon with fewer than three points, an RLE whose size
is not its image's, a mask of another size than its image, an id or a pixel
value without a class, a file that does not parse) is collected, so a curator
sees them all at once; :func:`usable` then refuses the set, listing them, or
with ``skip_invalid`` leaves the faulty instances and images out. Polygons
partly outside their image are clipped to it, with a warning.

Reading is bounded: a mask PNG's header is checked against its image and
against ``max_pixels`` before any pixel is decoded, RLE counts are bounded by
the image's pixel count, and no reader parses XML.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from augtool import defaults
from augtool.annotations.base import ImageFolder, Problem, check_image, parse_number
from augtool.annotations.masks import Instance, LabelMap, Polygons, clip_polygons
from augtool.errors import InputError, Message, literal

#: Segmentation formats, as a ``format`` parameter names them.
SEGMENTATION_FORMATS = defaults.MASK_FORMATS
#: Problems listed in the error that refuses a set; the rest are counted.
MAX_LISTED = 50


@dataclass(frozen=True, eq=False)
class ImageMasks:
    """One image's segmentation.

    Attributes:
        image: Path of the image relative to the image folder (POSIX separators).
        width: Width in pixels (from the image file).
        height: Height in pixels.
        instances: Its valid instances, in annotation order.
        semantic: Its class-index map, for formats that have one (``png``, ``voc``).
        annotation: The file that describes it (for messages).
    """

    image: str
    width: int
    height: int
    instances: tuple[Instance, ...]
    semantic: LabelMap | None
    annotation: str


@dataclass
class SegmentationSet:
    """What a mask reader found.

    Attributes:
        images: Annotated images that can be used, sorted by image path.
        problems: Every fault found, in file order.
        warnings: Things that were repaired (polygons clipped to their image).
        classes: Class names declared or seen, sorted (a label map's own order is
            in its :class:`LabelMap`).
        unannotated: Images in the image folder that no annotation mentions.
    """

    images: list[ImageMasks] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    unannotated: list[str] = field(default_factory=list)


def usable(found: SegmentationSet, annotations: str | Path, skip_invalid: bool) -> SegmentationSet:
    """The set without its faulty images, or an error that lists every fault.

    Args:
        found: What a reader found.
        annotations: The annotation location (for the message).
        skip_invalid: Leave out faulty instances and images, each named in a
            warning, instead of refusing.

    Returns:
        The images that can be used; every problem becomes a warning.

    Raises:
        InputError: When there are problems and not ``skip_invalid``.
    """
    if found.problems and not skip_invalid:
        lines = [f"  {p.as_message().template}" for p in found.problems[:MAX_LISTED]]
        if len(found.problems) > MAX_LISTED:
            lines.append(f"  ... and {len(found.problems) - MAX_LISTED} more")
        raise InputError(
            f"{len(found.problems)} problem(s) in the masks {literal(annotations)} and their "
            "images:\n"
            + "\n".join(lines)
            + "\nFix them, or pass {skip_invalid} to leave out the faulty masks and images "
            "(nothing was written).",
            refs=True,
        )
    bad = {p.image for p in found.problems if p.whole_image and p.image}
    return replace(
        found,
        images=[i for i in found.images if i.image not in bad],
        problems=[],
        warnings=[*found.warnings, *(f"left out: {p}" for p in found.problems)],
    )


class Sized:
    """The images of a folder with their sizes checked against a pixel bound."""

    def __init__(self, images: ImageFolder, max_pixels: int) -> None:
        self.folder = images
        self.max_pixels = max_pixels

    def check(
        self, name: str, file: str, problems: list[Problem], declared: tuple[int, int] | None = None
    ) -> tuple[str, tuple[int, int]] | None:
        """:func:`check_image`, and a problem for an image of more than ``max_pixels``."""
        found = check_image(self.folder, name, file, problems, declared)
        if found is None:
            return None
        return found if self.fits(found[0], found[1], file, problems) else None

    def fits(self, image: str, size: tuple[int, int], file: str, problems: list[Problem]) -> bool:
        """True when ``size`` is within the bound; else a problem is recorded."""
        if size[0] * size[1] <= self.max_pixels:
            return True
        problems.append(
            Problem(
                file,
                "",
                Message(
                    f"image {literal(image)} is {size[0]:d}x{size[1]:d}, more than the "
                    f"{{max_pixels}} ({self.max_pixels:d}) pixels a mask may have"
                ),
                image,
            )
        )
        return False


def parse_polygon(values: object, scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray | str:
    """A flat ``[x1, y1, x2, y2, ...]`` list as ``(N, 2)`` vertices, or what is wrong with it.

    Args:
        values: The list as the file gives it.
        scale: Multipliers of x and y (image size for normalised coordinates).

    Returns:
        The vertices in pixels, or a message (``has 2 points; a polygon needs at least 3``).
    """
    if not isinstance(values, list):
        return f"{_short(values)} is not a list of numbers"
    numbers = [parse_number(v) for v in values]
    bad = [v for v, n in zip(values, numbers, strict=True) if n is None]
    if bad:
        return f"holds {_short(bad[0])}, not a number"
    if len(numbers) % 2:
        return f"has {len(numbers)} numbers, not x, y pairs"
    if len(numbers) < 6:
        return f"has {len(numbers) // 2} point(s); a polygon needs at least 3"
    points = np.asarray(numbers, dtype=np.float64).reshape(-1, 2) * np.asarray(scale)
    return points


def fit_polygons(
    parts: list[np.ndarray], size: tuple[int, int], where: str, file: str, label: str
) -> tuple[Polygons | None, str | None, str | None]:
    """Clip polygon parts to their image.

    Returns:
        ``(polygons, None, warning)`` with ``warning`` set when a part reached
        outside, or ``(None, problem message, None)`` when nothing is inside.
    """
    width, height = size
    clipped = clip_polygons(parts, width, height)
    if not clipped:
        return None, f"{label} polygon lies wholly outside the {width}x{height} image", None
    inside = all(
        (p[:, 0] >= 0).all()
        and (p[:, 1] >= 0).all()
        and (p[:, 0] <= width).all()
        and (p[:, 1] <= height).all()
        for p in parts
    )
    warning = None
    if not inside:
        warning = (
            f"{file}, {where}: {label} polygon reaches outside the {width}x{height} image; "
            "clipped to it"
        )
    return Polygons(clipped), None, warning


def _short(value: object) -> str:
    """``repr`` of a value from a file, cut to 40 characters for messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
