"""Pascal VOC: one XML file per image, ``<object>`` elements with a ``<bndbox>``.

VOC coordinates are 1-based and inclusive (a box over the first pixel column
has ``xmin = xmax = 1``), so ``xmin - 1`` and ``xmax`` are the pixel edges.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

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

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def read_voc(folder: Path, image_root: Path) -> AnnotationSet:
    """Read every ``*.xml`` file under ``folder``.

    Args:
        folder: The annotation folder.
        image_root: The folder of the annotated images.

    Returns:
        Images with their valid boxes, and every problem found.

    Raises:
        InputError: If ``folder`` is not a folder or holds no XML file.
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; VOC annotations are a folder of XML files")
    files = sorted(p for p in folder.rglob("*.xml") if not p.name.startswith("."))
    if not files:
        raise InputError(f"{folder}: no .xml files; is this the VOC annotation folder?")
    images = ImageFolder(image_root)
    result = AnnotationSet()
    seen: dict[str, str] = {}
    classes: set[str] = set()
    for path in files:
        item = _read_file(path, folder, images, result)
        if item is None:
            continue
        if item.image in seen:
            result.problems.append(
                Problem(
                    str(path),
                    "",
                    f"describes {item.image}, which {seen[item.image]} describes too",
                    item.image,
                )
            )
            continue
        seen[item.image] = str(path)
        classes.update(b.label for b in item.boxes)
        result.images.append(item)
    result.images.sort(key=lambda i: i.image)
    result.classes = sorted(classes)
    result.unannotated = [p for p in images.paths if p not in seen]
    return result


def _read_file(
    path: Path, folder: Path, images: ImageFolder, result: AnnotationSet
) -> ImageBoxes | None:
    file = str(path)
    text = read_text(path, "XML", result.problems)
    if text is None:
        return None
    if "<!doctype" in text.lower() or "<!entity" in text.lower():
        # VOC files declare no document type; entities are how an XML file expands to
        # gigabytes ("billion laughs") or reads other files, so none is parsed at all.
        result.problems.append(
            Problem(file, "", "has a document type or entity declaration; VOC files have none")
        )
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        result.problems.append(Problem(file, "", f"malformed XML ({err})"))
        return None
    if root.tag != "annotation":
        result.problems.append(
            Problem(file, "", f"not a VOC annotation (root element <{root.tag}>)")
        )
        return None
    name = (root.findtext("filename") or "").strip()
    if not name:
        stem = str(PurePosixPath(path.relative_to(folder).as_posix()).with_suffix(""))
        matches = images.by_stem(stem)
        if len(matches) != 1:
            why = "no image" if not matches else f"{len(matches)} images"
            result.problems.append(
                Problem(file, "", f"has no <filename>, and {why} in {images.root} has its stem")
            )
            return None
        name = matches[0]
    declared = _declared_size(root, file, result.problems)
    if declared is False:
        return None
    found = check_image(images, name, file, result.problems, declared or None)
    if found is None:
        return None
    image, size = found
    boxes: list[Box] = []
    for index, obj in enumerate(root.findall("object")):
        box = _read_object(obj, index, size, file, image, result)
        if box is not None:
            boxes.append(box)
    return ImageBoxes(image, size[0], size[1], tuple(boxes), file)


def _declared_size(
    root: ET.Element, file: str, problems: list[Problem]
) -> tuple[int, int] | bool | None:
    """The ``<size>`` as ``(w, h)``; None when absent or zero (not stated); False when bad."""
    size = root.find("size")
    if size is None:
        return None
    width, height = parse_number(size.findtext("width")), parse_number(size.findtext("height"))
    if width is None or height is None:
        problems.append(
            Problem(
                file,
                "",
                f"<size> width {size.findtext('width')!r}, height {size.findtext('height')!r} "
                "are not numbers",
            )
        )
        return False
    if width == 0 and height == 0:
        return None
    return int(width), int(height)


def _read_object(
    obj: ET.Element,
    index: int,
    size: tuple[int, int],
    file: str,
    image: str,
    result: AnnotationSet,
) -> Box | None:
    where = f"object {index + 1}"
    label = (obj.findtext("name") or "").strip()
    if not label:
        result.problems.append(Problem(file, where, "has no class <name>", image, False))
        return None
    bndbox = obj.find("bndbox")
    if bndbox is None:
        result.problems.append(Problem(file, where, f"{label} has no <bndbox>", image, False))
        return None
    values = [parse_number(bndbox.findtext(k)) for k in _CORNERS]
    bad = [
        f"{k} {bndbox.findtext(k)!r}" for k, v in zip(_CORNERS, values, strict=True) if v is None
    ]
    if bad:
        result.problems.append(
            Problem(file, where, f"{label} box: not a number: {', '.join(bad)}", image, False)
        )
        return None
    xmin, ymin, xmax, ymax = (float(v) for v in values)  # type: ignore[arg-type]
    truncated = (obj.findtext("truncated") or "0").strip() == "1"
    written = f"(xmin {xmin:g}, ymin {ymin:g}, xmax {xmax:g}, ymax {ymax:g})"
    # xmin == xmax is a click without a drag, not a one-pixel object: refused as having no
    # area (and swapped corners reported as such) before the 1-based shift.
    corners = (xmin - 1, ymin - 1, xmax, ymax)
    if xmax <= xmin or ymax <= ymin:
        corners = (xmin, ymin, xmax, ymax)
    return result.keep(
        check_box(corners, size, label, index, where, file, image, truncated, written)
    )
