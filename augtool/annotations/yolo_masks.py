"""YOLO segmentation: one ``.txt`` file per image, a line ``class x1 y1 x2 y2 ...`` per object.

Coordinates are fractions of the image's width and height, ``class`` a 0-based
line number of the class names file, as in YOLO's box format
(:mod:`augtool.annotations.yolo`, whose file layout this shares). One line is
one polygon; an object of several parts is written as one polygon that visits
each part and comes back along the same bridges, so the bridges enclose nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from augtool.annotations.base import ImageFolder, Problem
from augtool.annotations.masks import Instance, Polygons, to_polygons
from augtool.annotations.png_masks import match_image
from augtool.annotations.segmentation import (
    ImageMasks,
    SegmentationSet,
    Sized,
    fit_polygons,
    parse_polygon,
)
from augtool.annotations.yolo import NAMES_FILES, _names
from augtool.errors import InputError, literal

#: The class names file written beside the label files.
YOLO_MASK_NAMES = "classes.txt"


def read_yolo_masks(
    folder: Path, image_root: Path, names_file: Path | None, max_pixels: int
) -> SegmentationSet:
    """Read every ``*.txt`` label file under ``folder`` (the names file excepted).

    Args:
        folder: The label folder.
        image_root: The folder of the annotated images.
        names_file: The class names file (default: ``classes.txt`` or
            ``obj.names`` in ``folder``).
        max_pixels: Larger images are problems.

    Returns:
        Images with their valid instances, and every problem found.

    Raises:
        InputError: If ``folder`` is not a folder, or no names file is found.
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; YOLO labels are a folder of .txt files")
    if names_file is None:
        candidates = [folder / n for n in NAMES_FILES if (folder / n).is_file()]
        if not candidates:
            raise InputError(
                f"{literal(folder)}: no class names file ({literal(' or '.join(NAMES_FILES))}); "
                "give it with {names}",
                refs=True,
            )
        names_file = candidates[0]
    elif not names_file.is_file():
        raise InputError(
            f"{literal(names_file)}: no such file (the {{names}} class names file)", refs=True
        )
    images = Sized(ImageFolder(image_root), max_pixels)
    result = SegmentationSet()
    classes = _names(names_file, result.problems)
    result.classes = sorted(set(classes))
    skip = names_file.resolve()
    files = sorted(
        p for p in folder.rglob("*.txt") if not p.name.startswith(".") and p.resolve() != skip
    )
    mentioned: set[str] = set()
    for path in files:
        item = _read_file(path, folder, classes, images, result)
        if item is not None:
            mentioned.add(item.image)
            result.images.append(item)
    result.images.sort(key=lambda i: i.image)
    result.unannotated = [p for p in images.folder.paths if p not in mentioned]
    return result


def _read_file(
    path: Path, folder: Path, classes: list[str], images: Sized, result: SegmentationSet
) -> ImageMasks | None:
    file = str(path)
    stem = str(PurePosixPath(path.relative_to(folder).as_posix()).with_suffix(""))
    image = match_image(images.folder, stem, file, result.problems)
    if image is None:
        return None
    size = images.folder.size(image)
    if isinstance(size, str):
        result.problems.append(Problem(file, "", f"image {image}: {size}", image))
        return None
    if not images.fits(image, size, file, result.problems):
        return None
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        result.problems.append(Problem(file, "", f"cannot read as UTF-8 text ({err})", image))
        return None
    found: list[Instance] = []
    index = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        instance = _read_line(line, number, index, classes, size, file, image, result)
        index += 1
        if instance is not None:
            found.append(instance)
    return ImageMasks(image, size[0], size[1], tuple(found), None, file)


def _read_line(
    line: str,
    number: int,
    index: int,
    classes: list[str],
    size: tuple[int, int],
    file: str,
    image: str,
    result: SegmentationSet,
) -> Instance | None:
    where = f"line {number}"
    label_text, *coords = line.split()
    if not label_text.isascii() or not label_text.isdigit() or int(label_text) >= len(classes):
        result.problems.append(
            Problem(
                file,
                where,
                f"class {label_text[:20]!r} is not a line number of the {len(classes)} class "
                f"names (0 to {len(classes) - 1})",
                image,
                False,
            )
        )
        return None
    label = classes[int(label_text)]
    points = parse_polygon(list(coords), (float(size[0]), float(size[1])))
    if isinstance(points, str):
        result.problems.append(Problem(file, where, f"{label} polygon {points}", image, False))
        return None
    polygons, message, warning = fit_polygons([points], size, where, file, label)
    if polygons is None:
        result.problems.append(Problem(file, where, message or "", image, False))
        return None
    if warning is not None:
        result.warnings.append(warning)
    return Instance(label, polygons, False, index, where)


def join_parts(parts: Sequence[np.ndarray]) -> np.ndarray:
    """One polygon for several parts: each part closed, joined by bridges walked both ways.

    The path runs part 1 back to its first vertex, a bridge to part 2's first
    vertex, part 2 round, ... then back over the same bridges to part 1; each
    bridge is crossed twice, so by the even-odd rule it adds no pixel.
    """
    loops = [np.vstack([p, p[:1]]) for p in parts]
    if len(loops) == 1:
        return np.asarray(parts[0], dtype=np.float64)
    starts = [loop[:1] for loop in loops[-2:0:-1]]
    return np.vstack([*loops, *starts])


def yolo_mask_text(item: ImageMasks, classes: Sequence[str]) -> str:
    """The YOLO segmentation label file of one image (empty when it has no instances).

    Raises:
        ValueError: For an instance whose class is not in ``classes``.
    """
    number = {name: i for i, name in enumerate(classes)}
    lines = []
    scale = np.array([item.width, item.height], dtype=np.float64)
    for instance in item.instances:
        if instance.label not in number:
            raise ValueError(f"class {instance.label!r} of {item.image} is not in the class list")
        polygons: Polygons = to_polygons(instance.shape, item.width, item.height)
        if not polygons.parts:
            continue
        points = np.clip(join_parts(polygons.parts) / scale, 0.0, 1.0)
        lines.append(" ".join([str(number[instance.label]), *(f"{v:.6f}" for v in points.ravel())]))
    return "".join(line + "\n" for line in lines)


def yolo_mask_files(items: Sequence[ImageMasks], classes: Sequence[str]) -> dict[str, str]:
    """Every YOLO segmentation file of a set, by path relative to the label folder."""
    files = {
        str(PurePosixPath(item.image).with_suffix("")) + ".txt": yolo_mask_text(item, classes)
        for item in items
    }
    files[YOLO_MASK_NAMES] = "".join(name + "\n" for name in classes)
    return files
