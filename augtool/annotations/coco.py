"""COCO: one JSON file with ``images``, ``annotations`` and ``categories``.

A COCO ``bbox`` is ``[x, y, width, height]`` in pixels from the image's
top-left corner (0-based, continuous), so its edges are used as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

from augtool.annotations.base import (
    AnnotationSet,
    Box,
    ImageBoxes,
    ImageFolder,
    Problem,
    check_box,
    check_image,
    parse_number,
    read_text,
)
from augtool.errors import InputError


def read_coco(path: Path, image_root: Path) -> AnnotationSet:
    """Read a COCO JSON file (or the only ``*.json`` file of a folder).

    Args:
        path: The JSON file, or a folder holding exactly one.
        image_root: The folder of the annotated images.

    Returns:
        Images with their valid boxes, and every problem found.

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
    images = ImageFolder(image_root)
    result = AnnotationSet()
    file = str(path)
    text = read_text(path, "JSON", result.problems)
    if text is None:
        return result
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        result.problems.append(Problem(file, "", f"malformed JSON ({err})"))
        return result
    sections = _sections(data, file, result.problems)
    if sections is None:
        return result
    image_entries, annotations, categories = sections
    names = _categories(categories, file, result.problems)
    result.classes = sorted(set(names.values()))
    declared: set[object] = set()
    by_id = _images(image_entries, images, file, result.problems, declared)
    boxes: dict[object, list[Box]] = {key: [] for key in by_id}
    per_image: dict[object, int] = {}
    for index, entry in enumerate(annotations):
        box = _annotation(entry, index, names, by_id, declared, per_image, file, result)
        if box is not None:
            boxes[entry["image_id"]].append(box)
    mentioned = set()
    for key, (image, size) in by_id.items():
        mentioned.add(image)
        found_boxes = tuple(sorted(boxes[key], key=lambda b: b.index))
        result.images.append(ImageBoxes(image, size[0], size[1], found_boxes, file))
    result.images.sort(key=lambda i: i.image)
    result.unannotated = [p for p in images.paths if p not in mentioned]
    return result


def _sections(data: object, file: str, problems: list[Problem]) -> tuple | None:
    """The ``images``, ``annotations`` and ``categories`` lists, or None when missing."""
    if not isinstance(data, dict):
        problems.append(Problem(file, "", "not a COCO file (the JSON is not an object)"))
        return None
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    wrong = [
        k
        for k in ("images", "annotations", "categories")
        if k in data and not isinstance(data[k], list)
    ]
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"no {', '.join(repr(k) for k in missing)}")
        if wrong:
            parts.append(f"{', '.join(repr(k) for k in wrong)} not a list")
        problems.append(Problem(file, "", f"not a COCO file ({'; '.join(parts)})"))
        return None
    return data["images"], data["annotations"], data["categories"]


def _categories(entries: list, file: str, problems: list[Problem]) -> dict[object, str]:
    names: dict[object, str] = {}
    for i, entry in enumerate(entries):
        where = f"categories[{i}]"
        if (
            not isinstance(entry, dict)
            or "id" not in entry
            or not str(entry.get("name", "")).strip()
        ):
            problems.append(Problem(file, where, "a category needs an 'id' and a 'name'"))
            continue
        key = entry["id"]
        if not isinstance(key, int | str) or isinstance(key, bool):
            problems.append(Problem(file, where, f"category id {key!r} is not an integer"))
            continue
        if key in names:
            problems.append(Problem(file, where, f"category id {key!r} is declared twice"))
            continue
        names[key] = str(entry["name"]).strip()
    return names


def _images(
    entries: list, images: ImageFolder, file: str, problems: list[Problem], seen: set[object]
) -> dict[object, tuple[str, tuple[int, int]]]:
    """Usable images by id; ``seen`` receives every declared id (usable or not)."""
    by_id: dict[object, tuple[str, tuple[int, int]]] = {}
    for i, entry in enumerate(entries):
        where = f"images[{i}]"
        if not isinstance(entry, dict) or "id" not in entry or not entry.get("file_name"):
            problems.append(Problem(file, where, "an image needs an 'id' and a 'file_name'"))
            continue
        key = entry["id"]
        if not isinstance(key, int | str) or isinstance(key, bool):
            problems.append(Problem(file, where, f"image id {key!r} is not an integer"))
            continue
        if key in seen:
            problems.append(Problem(file, where, f"image id {key!r} is declared twice"))
            continue
        seen.add(key)
        width, height = parse_number(entry.get("width")), parse_number(entry.get("height"))
        if (entry.get("width") is not None and width is None) or (
            entry.get("height") is not None and height is None
        ):
            problems.append(
                Problem(
                    file,
                    where,
                    f"width {entry.get('width')!r}, height {entry.get('height')!r} are not numbers",
                    str(entry["file_name"]),
                )
            )
            continue
        declared = (int(width), int(height)) if width and height else None
        before = len(problems)
        found = check_image(images, str(entry["file_name"]), file, problems, declared)
        for k in range(before, len(problems)):
            p = problems[k]
            problems[k] = Problem(p.file, where, p.message, p.image, p.whole_image)
        if found is not None:
            by_id[key] = found
    return by_id


def _annotation(
    entry: object,
    index: int,
    names: dict[object, str],
    by_id: dict[object, tuple[str, tuple[int, int]]],
    declared: set[object],
    per_image: dict[object, int],
    file: str,
    result: AnnotationSet,
) -> Box | None:
    if not isinstance(entry, dict):
        result.problems.append(Problem(file, f"annotations[{index}]", "not an object", None, False))
        return None
    where = f"annotation id {entry['id']}" if "id" in entry else f"annotations[{index}]"
    image_id = entry.get("image_id")
    if image_id not in by_id:
        if image_id not in declared:  # a declared but unusable image has its own problem
            result.problems.append(
                Problem(
                    file, where, f"image_id {image_id!r} is not declared in 'images'", None, False
                )
            )
        return None
    image, size = by_id[image_id]
    position = per_image.get(image_id, 0)  # the object's number within its image
    per_image[image_id] = position + 1
    category = entry.get("category_id")
    if category not in names:
        result.problems.append(
            Problem(
                file,
                where,
                f"category_id {category!r} is not declared in 'categories'",
                image,
                False,
            )
        )
        return None
    label = names[category]
    bbox = entry.get("bbox")
    values = [parse_number(v) for v in bbox] if isinstance(bbox, list) else []
    if len(values) != 4 or any(v is None for v in values):
        result.problems.append(
            Problem(
                file, where, f"{label} bbox {bbox!r} is not four numbers [x, y, w, h]", image, False
            )
        )
        return None
    x, y, w, h = (float(v) for v in values)  # type: ignore[arg-type]
    written = f"[x {x:g}, y {y:g}, w {w:g}, h {h:g}]"
    if w < 0 or h < 0:
        result.problems.append(
            Problem(
                file,
                where,
                f"{label} bbox {written} has a negative width or height (corners swapped)",
                image,
                False,
            )
        )
        return None
    return result.keep(
        check_box((x, y, x + w, y + h), size, label, position, where, file, image, False, written)
    )
