"""Object annotations of whole images: Pascal VOC, COCO and YOLO behind one interface.

Every reader turns its format into the same records: per image its file name,
size and boxes ``(x0, y0, x1, y1)`` in pixels (continuous coordinates: the
image spans ``[0, width] x [0, height]``), each with a class name. Readers
never stop at the first fault: they collect every problem (a file that does
not parse, an image that is not there, a box with no area, corners swapped,
outside the image, an undeclared category, text where a number belongs) so a
curator sees them all at once.

Boxes partly outside their image are clipped to it, with a warning that names
the file and the box; boxes wholly outside are problems.

The readers are shared by ``augtool cells`` and by detection datasets, so they
know nothing of cropping or of any command.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from augtool import defaults
from augtool.annotations.base import (
    FORMATS,
    AnnotationSet,
    Box,
    ImageBoxes,
    Problem,
)
from augtool.annotations.segmentation import SEGMENTATION_FORMATS, SegmentationSet
from augtool.errors import OptionError

__all__ = [
    "FORMATS",
    "SEGMENTATION_FORMATS",
    "AnnotationSet",
    "Box",
    "ImageBoxes",
    "Problem",
    "read_annotations",
    "read_segmentation",
]


def read_annotations(
    fmt: str,
    annotations: str | Path,
    images: str | Path,
    names: str | Path | None = None,
) -> AnnotationSet:
    """Read and validate the annotations of a folder of images.

    Args:
        fmt: ``voc`` (a folder of XML files), ``coco`` (one JSON file) or
            ``yolo`` (a folder of ``.txt`` files and a class names file).
        annotations: The annotation folder or file.
        images: The folder of the annotated images (sizes and existence are
            checked against it).
        names: YOLO only: the class names file, one name a line (default:
            ``classes.txt`` or ``obj.names`` in the annotation folder).

    Returns:
        The images with their boxes, and every problem and warning found.

    Raises:
        OptionError: For an unknown format, or ``names`` with another format.
        InputError: If the annotation or image location cannot be used at all.
    """
    if fmt not in FORMATS:
        raise OptionError("format", f"one of {', '.join(FORMATS)}, got {fmt!r}")
    if names is not None and fmt != "yolo":
        raise OptionError("names", "only YOLO annotations have a class names file")
    if fmt == "voc":
        from augtool.annotations.voc import read_voc

        found = read_voc(Path(annotations), Path(images))
    elif fmt == "coco":
        from augtool.annotations.coco import read_coco

        found = read_coco(Path(annotations), Path(images))
    else:
        from augtool.annotations.yolo import read_yolo

        found = read_yolo(Path(annotations), Path(images), None if names is None else Path(names))
    return without_repeats(found)


def without_repeats(found: AnnotationSet) -> AnnotationSet:
    """Record a box that repeats an earlier one of its image exactly as a problem, and drop it.

    The same object annotated twice (same class, same corners) would become two
    identical cells, or count twice in detection.
    """
    images = []
    for item in found.images:
        first: dict[tuple, Box] = {}
        kept = []
        for box in item.boxes:
            key = (box.label, box.x0, box.y0, box.x1, box.y1)
            if key in first:
                found.problems.append(
                    Problem(
                        item.annotation,
                        box.where,
                        f"{box.label} box repeats {first[key].where} exactly (annotated twice)",
                        item.image,
                        False,
                        "repeat",
                    )
                )
                continue
            first[key] = box
            kept.append(box)
        images.append(replace(item, boxes=tuple(kept)) if len(kept) < len(item.boxes) else item)
    found.images = images
    return found


def read_segmentation(
    fmt: str,
    annotations: str | Path,
    images: str | Path,
    names: str | Path | None = None,
    max_pixels: int = defaults.MAX_PIXELS,
) -> SegmentationSet:
    """Read and validate the segmentation of a folder of images.

    Args:
        fmt: One of :data:`SEGMENTATION_FORMATS`.
        annotations: The COCO JSON file, the YOLO label folder, the PNG mask
            folder, or the VOC folder holding ``SegmentationClass``.
        images: The folder of the annotated images.
        names: The class names file, one name a line, line ``i`` naming class
            ``i`` (YOLO, ``png``, ``voc``; default: ``classes.txt`` in the
            annotation folder, or for ``voc`` without one VOC's own 21 classes).
        max_pixels: Larger images (and their masks) are problems, not decoded.

    Returns:
        The images with their masks, and every problem and warning found.

    Raises:
        OptionError: For an unknown format, or ``names`` with COCO or ``png-instances``.
        InputError: If the annotation or image location cannot be used at all.
    """
    if fmt not in SEGMENTATION_FORMATS:
        raise OptionError("format", f"one of {', '.join(SEGMENTATION_FORMATS)}, got {fmt!r}")
    if names is not None and fmt in ("coco", "png-instances"):
        raise OptionError("names", f"{fmt} annotations name their own classes")
    path, root = Path(annotations), Path(images)
    names_path = None if names is None else Path(names)
    if fmt == "coco":
        from augtool.annotations.coco_masks import read_coco_masks

        return read_coco_masks(path, root, max_pixels)
    if fmt == "yolo":
        from augtool.annotations.yolo_masks import read_yolo_masks

        return read_yolo_masks(path, root, names_path, max_pixels)
    if fmt == "voc":
        from augtool.annotations.voc_masks import read_voc_masks

        return read_voc_masks(path, root, names_path, max_pixels)
    from augtool.annotations.png_masks import read_png_masks

    return read_png_masks(path, root, fmt == "png-instances", names_path, max_pixels)
