"""Pascal VOC segmentation: ``SegmentationClass`` and ``SegmentationObject`` palette PNGs.

In a VOC folder (``VOC2012/``), ``SegmentationClass/<stem>.png`` gives each
pixel its class as a palette index (0 background, 1 to 20 VOC's classes, 255
the boundary band around objects, counted for no class), and
``SegmentationObject/<stem>.png`` gives each pixel its object: index ``k`` for
the ``k``-th object (1 to 254), 0 none, 255 boundary. An object's class is the
class its pixels have in ``SegmentationClass`` (its background and boundary
pixels aside; two classes are a problem), so no XML file is read. The
palette is VOC's own (:func:`voc_palette`); readers use the index, whatever the
colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from augtool.annotations.base import ImageFolder, Problem
from augtool.annotations.masks import IGNORE, Instance, decode_rle, paint_ids, split_ids
from augtool.annotations.png_masks import (
    CLASSES_FILE,
    label_map,
    mask_paths,
    match_image,
    palette_png,
    read_mask_file,
)
from augtool.annotations.segmentation import ImageMasks, SegmentationSet, Sized
from augtool.annotations.yolo import _names
from augtool.errors import InputError

CLASS_FOLDER = "SegmentationClass"
OBJECT_FOLDER = "SegmentationObject"
#: Pascal VOC 2012's classes, index 0 to 20.
VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
#: Most objects a ``SegmentationObject`` PNG can hold (255 is the boundary).
MAX_OBJECTS = 254


def voc_palette() -> np.ndarray:
    """VOC's 256-colour palette, ``(256, 3)`` uint8 RGB (index bits spread over R, G, B)."""
    index = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
    return palette.astype(np.uint8)


def read_voc_masks(
    root: Path, image_root: Path, names_file: Path | None, max_pixels: int
) -> SegmentationSet:
    """Read VOC's ``SegmentationClass`` (and ``SegmentationObject`` when present).

    Args:
        root: The folder that holds ``SegmentationClass``.
        image_root: The folder of the annotated images (``JPEGImages``).
        names_file: Class names, line ``i`` naming index ``i`` (default:
            ``classes.txt`` in ``root`` if there is one, else VOC's 21).
        max_pixels: Larger images are problems.

    Returns:
        Images with their class map and objects, and every problem found.

    Raises:
        InputError: If ``root`` holds no ``SegmentationClass`` folder of PNGs.
    """
    classes_dir = root / CLASS_FOLDER
    if not classes_dir.is_dir():
        raise InputError(f"{root}: no {CLASS_FOLDER} folder; give the VOC folder that holds it")
    paths = mask_paths(classes_dir)
    if not paths:
        raise InputError(f"{classes_dir}: no .png files")
    result = SegmentationSet()
    if names_file is None and (root / CLASSES_FILE).is_file():
        names_file = root / CLASSES_FILE
    if names_file is None:
        names: list[str] = list(VOC_CLASSES)
    elif not names_file.is_file():
        raise InputError(f"{names_file}: no such file (the class names file)")
    else:
        names = _names(names_file, result.problems)
    images = Sized(ImageFolder(image_root), max_pixels)
    objects_dir = root / OBJECT_FOLDER
    stems: set[str] = set()
    seen: set[str] = set()
    for path in paths:
        stem = str(PurePosixPath(path.relative_to(classes_dir).as_posix()).with_suffix(""))
        stems.add(stem)
        item = _read_pair(path, objects_dir / f"{stem}.png", stem, names, images, result)
        if item is not None:
            seen.add(item.image)
            result.images.append(item)
    if objects_dir.is_dir():
        for path in mask_paths(objects_dir):
            stem = str(PurePosixPath(path.relative_to(objects_dir).as_posix()).with_suffix(""))
            if stem not in stems:
                why = f"has no {CLASS_FOLDER}/{stem}.png to give its objects their classes"
                result.problems.append(Problem(str(path), "", why, stem))
    result.images.sort(key=lambda i: i.image)
    result.classes = sorted(set(names))
    result.unannotated = [p for p in images.folder.paths if p not in seen]
    return result


def _read_pair(
    class_path: Path,
    object_path: Path,
    stem: str,
    names: list[str],
    images: Sized,
    result: SegmentationSet,
) -> ImageMasks | None:
    file = str(class_path)
    image = match_image(images.folder, stem, file, result.problems)
    if image is None:
        return None
    size = images.folder.size(image)
    if isinstance(size, str):
        result.problems.append(Problem(file, "", f"image {image}: {size}", image))
        return None
    if not images.fits(image, size, file, result.problems):
        return None
    values = read_mask_file(class_path, size)
    if isinstance(values, str):
        result.problems.append(Problem(file, "", f"mask of {image} {values}", image))
        return None
    semantic = label_map(values, names, file, image, result.problems)
    if semantic is None:
        return None
    instances: tuple[Instance, ...] = ()
    if object_path.is_file():
        objects = read_mask_file(object_path, size)
        if isinstance(objects, str):
            result.problems.append(
                Problem(str(object_path), "", f"mask of {image} {objects}", image)
            )
            return None
        instances = _objects(objects, values, names, str(object_path), image, result.problems)
    return ImageMasks(image, size[0], size[1], instances, semantic, file)


def _objects(
    objects: np.ndarray,
    classes: np.ndarray,
    names: list[str],
    file: str,
    image: str,
    problems: list[Problem],
) -> tuple[Instance, ...]:
    """Each object of a ``SegmentationObject`` map with the class its pixels have."""
    found = []
    for index, (number, rle) in enumerate(sorted(split_ids(objects, (0, IGNORE)).items())):
        where = f"object {number}"
        values = np.unique(classes[decode_rle(rle)])
        values = values[(values != IGNORE) & (values != 0)]
        if len(values) != 1:
            what = (
                f"has only background or boundary pixels in {CLASS_FOLDER}"
                if len(values) == 0
                else f"spans classes {', '.join(names[int(v)] for v in values)} in {CLASS_FOLDER}"
            )
            problems.append(Problem(file, where, f"object id {number} {what}", image, False))
            continue
        found.append(Instance(names[int(values[0])], rle, False, index, where))
    return tuple(found)


def voc_mask_files(items: Sequence[ImageMasks], classes: Sequence[str]) -> dict[str, bytes]:
    """Every ``SegmentationClass`` / ``SegmentationObject`` PNG of a set, by relative path.

    Args:
        items: Images with a class-index map (``semantic``) and, optionally,
            instances (written as objects 1, 2, ... in order, later ones on top).
        classes: The class names in index order (255 is the boundary value).

    Returns:
        ``{relative path: bytes}``: palette PNGs in VOC's palette, and
        ``classes.txt`` (the class names, which the reader takes from it).

    Raises:
        ValueError: An image has no class-index map, names other classes, or
            has more than 254 objects.
    """
    palette = voc_palette()
    files: dict[str, bytes] = {}
    for item in items:
        stem = str(PurePosixPath(item.image).with_suffix(""))
        if item.semantic is None or tuple(item.semantic.classes) != tuple(classes):
            raise ValueError(f"{item.image} has no class-index map over the given classes")
        if item.semantic.labels.max(initial=0) > 255:
            raise ValueError(f"the class-index map of {item.image} has values above 255")
        labels = item.semantic.labels.astype(np.uint8)
        files[f"{CLASS_FOLDER}/{stem}.png"] = palette_png(labels, palette)
        if item.instances:
            if len(item.instances) > MAX_OBJECTS:
                raise ValueError(f"{item.image} has more than {MAX_OBJECTS} objects")
            ids = paint_ids(item.instances, item.width, item.height)
            files[f"{OBJECT_FOLDER}/{stem}.png"] = palette_png(ids.astype(np.uint8), palette)
    files[CLASSES_FILE] = "".join(name + "\n" for name in classes).encode("utf-8")
    return files
