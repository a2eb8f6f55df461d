"""Detection datasets: ``augtool expand RAW OUT --annotations A --annotation-format voc|coco|yolo``.

RAW is a folder of whole images (smears), not of class folders. Every image
that the annotations describe becomes a source of the one pseudo-class
``images``, so the plan, the seeds, the split (by image, or by
``--group-regex`` group such as a smear or patient), the manifest and
``verify`` are those of a classification run. Every step of the pipeline
carries the boxes with its pixels (:class:`augtool.ops.targets.Targets`), so
the worker that renders an output sends its boxes back with it, on the output's
pixels; they are written beside the images in the input's format:

    OUT/<split>/images/<stem>__<kk>_<transform>.png
    OUT/<split>/annotations/<stem>__<kk>_<transform>.xml      VOC
    OUT/<split>/annotations.json                               COCO
    OUT/<split>/labels/<stem>__<kk>_<transform>.txt            YOLO (+ labels/classes.txt)

Each split folder is a dataset its format's tools (and ``augtool cells``)
read as it is. ``augtool.json`` records every annotation file with its hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np

from augtool.annotations import AnnotationSet, Box, ImageBoxes, Problem, read_annotations
from augtool.annotations.base import problem_listing
from augtool.annotations.write import MIN_SIDE, annotation_files
from augtool.engine.groups import compile_group_regex, find_duplicates
from augtool.engine.scan import IMAGES, ScanResult, annotated_sources, inspect_file
from augtool.errors import InputError

#: The class every detection source belongs to (the folder of the images in OUT).
#: Where each format's files go inside a split folder.
ANNOTATION_FOLDER = {"voc": "annotations", "coco": "", "yolo": "labels"}


@dataclass
class DetectionInput:
    """The annotated images of a detection run.

    Attributes:
        fmt: ``voc``, ``coco`` or ``yolo``.
        classes: Object class names (the order of COCO ids and YOLO numbers in OUT).
        boxes: Each source's boxes, by source path (relative to RAW).
        warnings: Repairs and omissions the user should hear of.
    """

    fmt: str
    classes: list[str]
    boxes: dict[str, ImageBoxes]
    warnings: list[str] = field(default_factory=list)


@dataclass
class DetectionOutput:
    """The annotation files of a run and what happened to the boxes.

    Attributes:
        files: Text of each annotation file, by path relative to OUT.
        boxes_in: Source boxes, summed over outputs (each output counts its source's boxes).
        boxes_out: Boxes written.
        dropped: Boxes left out: less than ``min_visibility`` inside the output,
            or under ``MIN_SIDE`` pixels on a side.
    """

    files: dict[str, str]
    boxes_in: int
    boxes_out: int

    @property
    def dropped(self) -> int:
        """Boxes left out."""
        return self.boxes_in - self.boxes_out

    def record(self, min_visibility: float, fmt: str, classes: Sequence[str]) -> dict:
        """What ``augtool.json`` keeps: format, classes, counts, and every file's hash."""
        return {
            "format": fmt,
            "classes": list(classes),
            "min_visibility": min_visibility,
            "boxes_in": self.boxes_in,
            "boxes_out": self.boxes_out,
            "files": {
                name: hashlib.sha256(text.encode("utf-8")).hexdigest()
                for name, text in sorted(self.files.items())
            },
        }


def scan_annotated(
    raw: Path,
    fmt: str,
    annotations: str | Path,
    names: str | Path | None,
    group_regex: str | None,
    skip_invalid: bool,
    max_pixels: int,
) -> tuple[ScanResult, DetectionInput]:
    """Read the annotations of RAW's images and scan the annotated images as sources.

    Args:
        raw: The folder of images.
        fmt: Annotation format.
        annotations: The annotation folder (VOC, YOLO) or file (COCO).
        names: YOLO class names file (default: found in the label folder).
        group_regex: Groups for the split (default: each image its own group).
        skip_invalid: Leave out faulty boxes and images (listed as warnings)
            instead of refusing.
        max_pixels: Refuse larger images.

    Returns:
        The sources (class ``images``) and their boxes.

    Raises:
        InputError: For faulty annotations or images (all listed) unless
            ``skip_invalid``, or when no annotated image is left.
    """
    regex = compile_group_regex(group_regex)
    found = read_annotations(fmt, annotations, raw, names)
    infos = {item.image: inspect_file(raw / item.image, max_pixels) for item in found.images}
    found.problems.extend(
        _image_problem(item, infos[item.image].error)
        for item in found.images
        if infos[item.image].error
    )
    if found.problems and not skip_invalid:
        raise InputError(problem_listing(found.problems, annotations), refs=True)
    warnings = list(found.warnings)
    warnings += [f"left out: {p}" for p in found.problems]
    if found.unannotated:
        warnings.append(
            f"{len(found.unannotated)} image(s) in {raw} have no annotation and are left out "
            f"(an image without objects needs an annotation that says so): "
            + ", ".join(found.unannotated[:10])
            + (" ..." if len(found.unannotated) > 10 else "")
        )
    usable = _usable(found)
    if not usable:
        raise InputError(f"{raw}: no annotated image left to expand (annotations: {annotations})")
    sources = annotated_sources([item.image for item in usable], infos, regex)
    scan_result = ScanResult(
        root=raw,
        classes=[IMAGES],
        sources=sources,
        skipped=[(p.image or p.file, p.message) for p in found.problems if p.whole_image],
        duplicates=find_duplicates(sources),
    )
    detection = DetectionInput(fmt, list(found.classes), {i.image: i for i in usable}, warnings)
    return scan_result, detection


def _image_problem(item: ImageBoxes, error: str) -> Problem:
    return Problem(item.annotation, "", f"image {item.image}: {error}", item.image)


def _usable(found: AnnotationSet) -> list[ImageBoxes]:
    bad = {p.image for p in found.problems if p.whole_image and p.image}
    return [i for i in found.images if i.image not in bad]


@dataclass(frozen=True)
class OutputBoxes:
    """The boxes of one output, as its worker sent them back.

    Attributes:
        boxes: ``(M, 4)`` float64 ``x0, y0, x1, y1`` on the output's pixels
            (clipped; boxes mostly lost already dropped).
        ids: ``(M,)`` each box's position among its source's boxes.
    """

    boxes: np.ndarray
    ids: np.ndarray

    def to_journal(self) -> dict:
        """As a journal entry keeps them (JSON floats give back the same float64)."""
        return {"boxes": self.boxes.tolist(), "box_ids": [int(i) for i in self.ids]}

    @classmethod
    def from_journal(cls, entry: dict) -> OutputBoxes:
        """The boxes of a journal entry written by :meth:`to_journal`."""
        boxes = np.asarray(entry["boxes"], dtype=np.float64).reshape(-1, 4)
        return cls(boxes, np.asarray(entry["box_ids"], dtype=np.int64))


def kept_boxes(item: ImageBoxes, found: OutputBoxes) -> tuple[Box, ...]:
    """An output's boxes as annotation records: each its source box's class, on the output.

    A box under ``MIN_SIDE`` pixels on a side is left out (VOC cannot state it).
    """
    kept = []
    for (x0, y0, x1, y1), i in zip(found.boxes, found.ids, strict=True):
        if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
            continue
        kept.append(
            replace(item.boxes[int(i)], x0=float(x0), y0=float(y0), x1=float(x1), y1=float(y1))
        )
    return tuple(kept)


def detection_files(
    outputs: Sequence[tuple[dict, OutputBoxes]],
    detection: DetectionInput,
    size: tuple[int, int],
) -> DetectionOutput:
    """Every annotation file of a run, grouped by split folder.

    Args:
        outputs: Each output's manifest row (``name``, ``source``) and its boxes.
        detection: The input boxes.
        size: Output ``(width, height)``.

    Returns:
        The files (paths relative to OUT) and the box counts.
    """
    by_folder: dict[str, list[ImageBoxes]] = {}
    boxes_in = boxes_out = 0
    for row, found in outputs:
        item = detection.boxes[row["source"]]
        kept = kept_boxes(item, found)
        boxes_in += len(item.boxes)
        boxes_out += len(kept)
        name = PurePosixPath(row["name"])
        folder = str(name.parent.parent) if name.parent.parent != PurePosixPath(".") else ""
        by_folder.setdefault(folder, []).append(
            ImageBoxes(name.name, size[0], size[1], kept, row["name"])
        )
    files: dict[str, str] = {}
    sub = ANNOTATION_FOLDER[detection.fmt]
    for folder, items in sorted(by_folder.items()):
        items.sort(key=lambda i: i.image)
        for rel, text in annotation_files(detection.fmt, items, detection.classes).items():
            path = PurePosixPath(folder or ".", sub or ".", rel)
            files[str(path)] = text
    return DetectionOutput(files, boxes_in, boxes_out)


def read_output_boxes(
    out: str | Path, names: Sequence[str], record: dict
) -> tuple[list[str], dict[str, ImageBoxes], list[Problem]]:
    """The boxes of a detection output's images, read back from the files written beside them.

    A segmentation output's masks come as boxes and outlines
    (:func:`augtool.engine.mask_outlines.read_output_masks`).

    Args:
        out: The output folder.
        names: Manifest names of its images (``train/images/x.png``).
        record: The ``annotations`` entry of its ``augtool.json`` (format, classes).

    Returns:
        The class names (in the recorded order, which gives each its colour),
        each image's boxes by manifest name, and what the readers found wrong.

    Raises:
        InputError: If the record names no known format, or a split folder's
            annotations cannot be read at all.
    """
    if isinstance(record, dict) and record.get("masks"):
        from augtool.engine.mask_outlines import read_output_masks

        return read_output_masks(out, names, record)
    out = Path(out)
    fmt = record.get("format") if isinstance(record, dict) else None
    if fmt not in ANNOTATION_FOLDER:
        raise InputError(f"{out}: augtool.json records no annotation format this version reads")
    folders = sorted({_split_folder(name) for name in names})
    boxes: dict[str, ImageBoxes] = {}
    problems: list[Problem] = []
    classes = [str(c) for c in record.get("classes", [])]
    for folder in folders:
        base = out / folder if folder else out
        where = base / (ANNOTATION_FOLDER[fmt] or "annotations.json")
        found = read_annotations(fmt, where, base / IMAGES)
        problems += found.problems
        prefix = f"{folder}/{IMAGES}" if folder else IMAGES
        for item in found.images:
            boxes[f"{prefix}/{item.image}"] = item
        classes += [c for c in found.classes if c not in classes]
    return classes, boxes, problems


def _split_folder(name: str) -> str:
    """The split folder of an output image's manifest name ('' when it has none)."""
    parent = PurePosixPath(name).parent.parent
    return "" if parent == PurePosixPath(".") else str(parent)
