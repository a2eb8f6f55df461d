"""COCO instance segmentation: each annotation's ``segmentation`` as polygons or RLE.

``segmentation`` is either a list of polygons, each a flat ``[x1, y1, x2, y2,
...]`` list in pixels (the parts of one object), or an RLE
``{"size": [height, width], "counts": ...}`` whose counts are a list of
integers or COCO's compressed string. ``iscrowd: 1`` marks a region of many
objects (COCO writes those as RLE); it is read and written as it is, so a
trainer can ignore crowds as COCO's own evaluation does. ``bbox`` and ``area``
are not read: both follow from the mask.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from augtool.annotations.base import ImageFolder, Problem, read_text
from augtool.annotations.coco import _categories, _images, _sections
from augtool.annotations.masks import (
    Bitmap,
    Instance,
    Polygons,
    Rle,
    compress_counts,
    decompress_counts,
    exact_polygons,
    shape_area,
    shape_box,
    to_bitmap,
    to_rle,
)
from augtool.annotations.segmentation import (
    ImageMasks,
    SegmentationSet,
    Sized,
    fit_polygons,
    parse_polygon,
)
from augtool.errors import InputError
from augtool.ops.mask_geometry import Rect

#: The COCO file's name in its folder.
COCO_MASKS_FILE = "annotations.json"


def read_coco_masks(path: Path, image_root: Path, max_pixels: int) -> SegmentationSet:
    """Read a COCO instance segmentation file (or the only ``*.json`` file of a folder).

    Args:
        path: The JSON file, or a folder holding exactly one.
        image_root: The folder of the annotated images.
        max_pixels: Larger images are problems.

    Returns:
        Images with their valid instances, and every problem found.

    Raises:
        InputError: If there is no such file, or a folder holds no or several JSON files.
    """
    if path.is_dir():
        found = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
        if len(found) != 1:
            raise InputError(f"{path}: holds {len(found)} .json files; give the COCO file itself")
        path = found[0]
    if not path.is_file():
        raise InputError(f"{path}: no such file; COCO annotations are one JSON file")
    folder = ImageFolder(image_root)
    images = Sized(folder, max_pixels)
    result = SegmentationSet()
    file = str(path)
    text = read_text(path, "JSON", result.problems)
    if text is None:
        return result
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        result.problems.append(Problem(file, "", f"malformed JSON ({err})"))
        return result
    sections = _sections(data, file, result.problems)
    if sections is None:
        return result
    image_entries, annotations, categories = sections
    names = _categories(categories, file, result.problems)
    result.classes = sorted(set(names.values()))
    declared: set[object] = set()
    by_id = _images(image_entries, folder, file, result.problems, declared)
    for key, (image, size) in list(by_id.items()):
        if not images.fits(image, size, file, result.problems):
            del by_id[key]
    found: dict[object, list[Instance]] = {key: [] for key in by_id}
    per_image: dict[object, int] = {}
    for index, entry in enumerate(annotations):
        instance = _annotation(entry, index, names, by_id, declared, per_image, file, result)
        if instance is not None:
            found[_key(entry["image_id"])].append(instance)
    for key, (image, size) in by_id.items():
        result.images.append(ImageMasks(image, size[0], size[1], tuple(found[key]), None, file))
    result.images.sort(key=lambda i: i.image)
    mentioned = {image for image, _ in by_id.values()}
    result.unannotated = [p for p in folder.paths if p not in mentioned]
    return result


def _key(value: object) -> object:
    """An id as a dictionary key: ints and strings as they are, anything else unmatchable."""
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _annotation(
    entry: object,
    index: int,
    names: dict[object, str],
    by_id: dict[object, tuple[str, tuple[int, int]]],
    declared: set[object],
    per_image: dict[object, int],
    file: str,
    result: SegmentationSet,
) -> Instance | None:
    if not isinstance(entry, dict):
        result.problems.append(Problem(file, f"annotations[{index}]", "not an object", None, False))
        return None
    where = f"annotation id {entry['id']!r}" if "id" in entry else f"annotations[{index}]"
    image_id = _key(entry.get("image_id"))
    if image_id not in by_id:
        if image_id not in declared:  # a declared but unusable image has its own problem
            result.problems.append(
                Problem(
                    file,
                    where,
                    f"image_id {entry.get('image_id')!r} is not declared in 'images'",
                    None,
                    False,
                )
            )
        return None
    image, size = by_id[image_id]
    position = per_image.get(image_id, 0)
    per_image[image_id] = position + 1

    def fault(message: str) -> None:
        result.problems.append(Problem(file, where, message, image, False))

    category = _key(entry.get("category_id"))
    if category not in names:
        fault(f"category_id {entry.get('category_id')!r} is not declared in 'categories'")
        return None
    label = names[category]
    crowd = entry.get("iscrowd", 0)
    if crowd not in (0, 1):  # False and True are 0 and 1
        fault(f"{label} iscrowd {crowd!r} is not 0 or 1")
        return None
    segmentation = entry.get("segmentation")
    if isinstance(segmentation, dict):
        shape, message = _rle(segmentation, size, label)
        if shape is None:
            fault(message)
            return None
        return Instance(label, shape, bool(crowd), position, where)
    if not isinstance(segmentation, list) or not segmentation:
        fault(f"{label} has no segmentation (polygons or an RLE)")
        return None
    parts = []
    for k, values in enumerate(segmentation):
        points = parse_polygon(values)
        if isinstance(points, str):
            fault(f"{label} polygon {k + 1} {points}")
            return None
        parts.append(points)
    polygons, message, warning = fit_polygons(parts, size, where, file, label)
    if polygons is None:
        fault(message or "")
        return None
    if warning is not None:
        result.warnings.append(warning)
    return Instance(label, polygons, bool(crowd), position, where)


def _rle(segmentation: dict, size: tuple[int, int], label: str) -> tuple[Rle | None, str]:
    """An RLE from its JSON, checked against the image size; else what is wrong."""
    width, height = size
    stated = segmentation.get("size")
    if (
        not isinstance(stated, list)
        or len(stated) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in stated)
    ):
        return None, f"{label} RLE size {stated!r} is not [height, width]"
    if (stated[1], stated[0]) != (width, height):
        return None, (
            f"{label} RLE size is {stated[1]}x{stated[0]} (size [{stated[0]}, {stated[1]}]), "
            f"its image {width}x{height}"
        )
    counts = segmentation.get("counts")
    total = width * height
    if isinstance(counts, str):
        try:
            runs = decompress_counts(counts, total)
        except ValueError as err:
            return None, f"{label} RLE counts are not COCO's compressed string ({err})"
    elif isinstance(counts, list) and all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= total for c in counts
    ):
        runs = tuple(counts)
    else:
        return None, f"{label} RLE counts are not a list of run lengths 0 to {total}"
    if sum(runs) != total:
        return None, f"{label} RLE counts cover {sum(runs)} pixels, not the image's {total}"
    rle = Rle(height, width, runs)
    if not any(runs[1::2]):
        return None, f"{label} RLE has no pixels"
    return rle, ""


def coco_masks_json(
    items: Sequence[ImageMasks],
    classes: Sequence[str],
    polygons: bool = True,
    boxes: Sequence[Sequence[Rect]] | None = None,
) -> str:
    """The COCO instance segmentation JSON of a set of images (ids 1-based, in order).

    Args:
        items: Images and their instances.
        classes: Class names; ``category_id`` is the 1-based position.
        polygons: Write each non-crowd instance as polygons when they give its
            pixels back exactly (an RLE or bitmap is outlined along its pixel
            edges; one with holes stays an RLE); otherwise, and for crowds,
            compressed RLE.
        boxes: Each item's instance boxes ``(x0, y0, x1, y1)``, written as
            ``bbox`` (a hull box mapped with its image); default: the tight
            box of each mask.

    Returns:
        The JSON text; ``bbox`` is the tight box of the mask, ``area`` its pixels.

    Raises:
        ValueError: For an instance whose class is not in ``classes``.
    """
    category = {name: i for i, name in enumerate(classes, start=1)}
    images, annotations = [], []
    for image_id, item in enumerate(items, start=1):
        given = None if boxes is None else boxes[image_id - 1]
        size = (item.width, item.height)
        images.append(
            {"id": image_id, "file_name": item.image, "width": item.width, "height": item.height}
        )
        for k, instance in enumerate(item.instances):
            if instance.label not in category:
                raise ValueError(
                    f"class {instance.label!r} of {item.image} is not in the class list"
                )
            box = shape_box(instance.shape, *size)
            if box is None:
                continue
            if given is not None:
                gx0, gy0, gx1, gy1 = (float(v) for v in given[k])
                box = (gx0, gy0, gx1, gy1)
            x0, y0, x1, y1 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[instance.label],
                    "segmentation": _segmentation(instance, size, polygons),
                    "area": shape_area(instance.shape, *size),
                    "bbox": [_round(x0), _round(y0), _round(x1 - x0), _round(y1 - y0)],
                    "iscrowd": int(instance.iscrowd),
                }
            )
    categories = [{"id": i, "name": name} for name, i in category.items()]
    sections = {"images": images, "annotations": annotations, "categories": categories}
    # One entry a line: readable, and a polygon's numbers do not take a line each.
    body = ",\n".join(
        f"{json.dumps(key)}: [\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]"
        for key, entries in sections.items()
    )
    return "{\n" + body + "\n}\n"


def _segmentation(instance: Instance, size: tuple[int, int], polygons: bool) -> object:
    shape = instance.shape
    if polygons and not instance.iscrowd:
        if isinstance(shape, Polygons):
            # Python floats rounded as _round does, without a call per number.
            return [[round(v, 2) for v in part.ravel().tolist()] for part in shape.parts]
        mask = to_bitmap(shape, *size)
        parts = exact_polygons(mask)
        if parts is not None:
            return [[int(v) for v in part.ravel()] for part in parts]
        shape = Bitmap(mask)
    rle = to_rle(shape, *size)
    return {"size": [rle.height, rle.width], "counts": compress_counts(rle.counts)}


def _round(value: float) -> float:
    """Two decimals: a hundredth of a pixel, and short JSON."""
    return round(float(value), 2)
