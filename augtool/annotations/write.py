"""Writers of Pascal VOC, COCO and YOLO annotations: the readers' formats, published conventions.

The writers take the records the readers return (``ImageBoxes``, boxes as
continuous pixel edges) and produce the text of each annotation file, so a
caller can put them wherever its own writer puts files:

* VOC: one XML file per image, ``<stem>.xml`` beside the image's relative
  path; corners are 1-based inclusive integers (``xmin = x0 + 1``,
  ``xmax = x1``, edges rounded to whole pixels), as VOC tools expect.
* COCO: one ``annotations.json`` with ``images``, ``annotations`` and
  ``categories``; ``bbox`` is ``[x, y, w, h]`` from the top-left pixel edge,
  ``category_id`` a 1-based position in the sorted class list.
* YOLO: one ``<stem>.txt`` per image (an empty file for an image without
  objects), a line ``class cx cy w h`` with fractions of the image size, and
  ``classes.txt`` with one class name a line (``class`` is its 0-based line).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

from augtool.annotations.base import FORMATS, Box, ImageBoxes
from augtool.errors import OptionError

#: The COCO file's name in its folder.
COCO_FILE = "annotations.json"
#: The YOLO class names file's name in its folder.
YOLO_NAMES = "classes.txt"
#: Smallest box side (pixels) every format can state: VOC's 1-based integer corners
#: need the rounded edges at least 2 apart for ``xmax > xmin``.
MIN_SIDE = 2.0


def voc_corners(box: Box) -> tuple[int, int, int, int]:
    """``(xmin, ymin, xmax, ymax)`` of a box in VOC's 1-based inclusive integers.

    Raises:
        ValueError: When the box is too small for VOC to state (rounded side < 2 px).
    """
    x0, y0, x1, y1 = (round(v) for v in (box.x0, box.y0, box.x1, box.y1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"{box.label} box {box.where} is under {MIN_SIDE:g} px on a side")
    return x0 + 1, y0 + 1, x1, y1


def voc_xml(item: ImageBoxes) -> str:
    """The Pascal VOC XML of one image."""
    folder = str(PurePosixPath(item.image).parent)
    lines = [
        "<annotation>",
        f"  <folder>{escape(folder if folder != '.' else '')}</folder>",
        f"  <filename>{escape(item.image)}</filename>",
        "  <size>",
        f"    <width>{item.width}</width>",
        f"    <height>{item.height}</height>",
        "    <depth>3</depth>",
        "  </size>",
        "  <segmented>0</segmented>",
    ]
    for box in item.boxes:
        xmin, ymin, xmax, ymax = voc_corners(box)
        lines += [
            "  <object>",
            f"    <name>{escape(box.label)}</name>",
            "    <pose>Unspecified</pose>",
            f"    <truncated>{int(box.truncated or box.clipped)}</truncated>",
            "    <difficult>0</difficult>",
            "    <bndbox>",
            f"      <xmin>{xmin}</xmin>",
            f"      <ymin>{ymin}</ymin>",
            f"      <xmax>{xmax}</xmax>",
            f"      <ymax>{ymax}</ymax>",
            "    </bndbox>",
            "  </object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def coco_json(items: Sequence[ImageBoxes], classes: Sequence[str]) -> str:
    """The COCO JSON of a set of images (ids: 1-based, in the given order).

    Raises:
        ValueError: For a box whose class is not in ``classes``.
    """
    category = {name: i for i, name in enumerate(classes, start=1)}
    images, annotations = [], []
    for image_id, item in enumerate(items, start=1):
        images.append(
            {"id": image_id, "file_name": item.image, "width": item.width, "height": item.height}
        )
        for box in item.boxes:
            if box.label not in category:
                raise ValueError(f"class {box.label!r} of {item.image} is not in the class list")
            w, h = box.x1 - box.x0, box.y1 - box.y0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[box.label],
                    "bbox": [_round(box.x0), _round(box.y0), _round(w), _round(h)],
                    "area": _round(w * h),
                    "iscrowd": 0,
                }
            )
    document = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for name, i in category.items()],
    }
    return json.dumps(document, indent=1) + "\n"


def yolo_text(item: ImageBoxes, classes: Sequence[str]) -> str:
    """The YOLO label file of one image (empty when it has no boxes).

    Raises:
        ValueError: For a box whose class is not in ``classes``.
    """
    number = {name: i for i, name in enumerate(classes)}
    lines = []
    for box in item.boxes:
        if box.label not in number:
            raise ValueError(f"class {box.label!r} of {item.image} is not in the class list")
        cx, w = _yolo_axis(box.x0, box.x1, item.width)
        cy, h = _yolo_axis(box.y0, box.y1, item.height)
        lines.append(f"{number[box.label]} {cx} {cy} {w} {h}")
    return "".join(line + "\n" for line in lines)


def annotation_files(
    fmt: str, items: Sequence[ImageBoxes], classes: Sequence[str]
) -> dict[str, str]:
    """Every annotation file of a set of images, by path relative to the annotation folder.

    Args:
        fmt: ``voc``, ``coco`` or ``yolo``.
        items: The images (``image`` is the path relative to the image folder)
            and their boxes.
        classes: Class names, in the order COCO ids and YOLO numbers follow.

    Returns:
        ``{relative path: text}``.

    Raises:
        OptionError: For an unknown format.
        ValueError: For a class not in ``classes`` or a box VOC cannot state.
    """
    if fmt not in FORMATS:
        raise OptionError("format", f"one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "coco":
        return {COCO_FILE: coco_json(items, classes)}
    files: dict[str, str] = {}
    for item in items:
        stem = str(PurePosixPath(item.image).with_suffix(""))
        if fmt == "voc":
            files[stem + ".xml"] = voc_xml(item)
        else:
            files[stem + ".txt"] = yolo_text(item, classes)
    if fmt == "yolo":
        files[YOLO_NAMES] = "".join(name + "\n" for name in classes)
    return files


def write_annotations(
    fmt: str, folder: Path, items: Sequence[ImageBoxes], classes: Sequence[str]
) -> list[Path]:
    """Write :func:`annotation_files` under ``folder``.

    Returns:
        The paths written.
    """
    written = []
    for rel, text in annotation_files(fmt, items, classes).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _round(value: float) -> float:
    """Two decimals: a hundredth of a pixel, and short JSON."""
    return round(float(value), 2)


def _yolo_axis(lo: float, hi: float, size: int) -> tuple[str, str]:
    """Centre and extent of one axis as 6-decimal fractions that stay inside the image.

    Rounding a box that touches the border could push an edge a millionth past
    it (the reader would clip it, with a warning); the extent is then narrowed
    by a millionth until the edges, computed as the reader computes them, fit.
    """
    centre = round((lo + hi) / 2 / size, 6)
    extent = round((hi - lo) / size, 6)
    while extent > 0 and ((centre + extent / 2) * size > size or (centre - extent / 2) * size < 0):
        extent = round(extent - 1e-6, 6)
    return f"{centre:.6f}", f"{extent:.6f}"
