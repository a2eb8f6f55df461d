"""Reading a segmentation dataset's masks back, as boxes and outlines to draw.

``preview`` and ``report`` show masks the way they show boxes: each image's
instances as boxes (their masks' tight boxes), with the outlines of its
masks (an instance's polygons, or each class's regions of a class-index map)
to draw in the class colours. The masks come from the files a segmentation
run wrote (:mod:`augtool.engine.segmented`), from an HDF5 output's mask
datasets, or from a folder of masked images.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from augtool.annotations import read_segmentation
from augtool.annotations.base import AnnotationSet, Box, ImageBoxes, Problem
from augtool.annotations.masks import (
    Instance,
    LabelMap,
    mask_to_polygons,
    shape_box,
    split_ids,
    to_polygons,
)
from augtool.annotations.segmentation import ImageMasks
from augtool.engine.segmented import (
    IMAGES,
    MASK_FOLDER,
    MASK_LOCATION,
    OutputMasks,
    output_item,
)
from augtool.errors import InputError
from augtool.store.schema import CLASS_MAP, MASK_IDS


def read_output_masks(
    out: str | Path, names: Sequence[str], record: dict
) -> tuple[list[str], dict[str, ImageBoxes], list[Problem]]:
    """The masks of a segmentation output's images, read back from the files written beside them.

    As :func:`augtool.engine.detection.read_output_boxes` gives boxes: each
    image's instances as boxes (their masks' tight boxes) and its outlines to
    draw (an instance's, or a class-index map's regions, by class).

    Args:
        out: The output folder.
        names: Manifest names of its images (``train/images/x.png``).
        record: The ``annotations`` entry of its ``augtool.json``.

    Returns:
        The class names (in the recorded order, which gives each its colour),
        each image's masks by manifest name, and what the readers found wrong.

    Raises:
        InputError: If the record names no mask format this version reads.
    """
    out = Path(out)
    if out.is_file():
        return _read_hdf5_masks(out, names, record)
    fmt = record.get("format")
    if fmt not in MASK_FOLDER:
        raise InputError(f"{out}: augtool.json records no mask format this version reads")
    classes = [str(c) for c in record.get("classes", [])]
    found: dict[str, ImageBoxes] = {}
    problems: list[Problem] = []
    for folder in sorted({str(PurePosixPath(n).parent.parent) for n in names}):
        base = out if folder == "." else out / folder
        read = read_segmentation(fmt, base / MASK_LOCATION[fmt], base / IMAGES)
        problems += read.problems
        prefix = IMAGES if folder == "." else f"{folder}/{IMAGES}"
        for item in read.images:
            found[f"{prefix}/{item.image}"] = _drawn(item)
        classes += [c for c in read.classes if c not in classes]
    return classes, found, problems


def _read_hdf5_masks(
    path: Path, names: Sequence[str], record: dict
) -> tuple[list[str], dict[str, ImageBoxes], list[Problem]]:
    """:func:`read_output_masks` of an HDF5 output: its ``mask_ids`` or ``class_map`` rows."""
    from augtool.store.schema import DAMAGE, open_hdf5, to_str

    classes = [str(c) for c in record.get("classes", [])]
    found: dict[str, ImageBoxes] = {}
    with open_hdf5(path) as fh:
        try:
            stored = [to_str(n) for n in fh["name"][:]]
            listed = fh["mask_instances"][:] if "mask_instances" in fh else None
            for i, name in enumerate(stored):
                if name not in names:
                    continue
                instances: tuple[Instance, ...] = ()
                semantic = None
                if MASK_IDS in fh and listed is not None:
                    ids = fh[MASK_IDS][i]
                    table = json.loads(to_str(listed[i]))
                    rles = split_ids(ids)
                    instances = tuple(
                        Instance(table[k - 1]["class"], rle, index=k - 1)
                        for k, rle in rles.items()
                        if 0 < k <= len(table)
                    )
                if CLASS_MAP in fh:
                    names_of = tuple(to_str(c) for c in fh[CLASS_MAP].attrs["class_names"])
                    semantic = LabelMap(fh[CLASS_MAP][i], names_of)
                size = fh["images"].shape[1]
                item = ImageMasks(name, size, size, instances, semantic, str(path))
                found[name] = _drawn(item)
        except DAMAGE as err:
            raise InputError(f"{path}: its masks cannot be read ({err})") from err
    return classes, found, []


def read_input_masks(
    fmt: str, annotations: str | Path, images: Path, names: str | Path | None
) -> AnnotationSet:
    """A folder's masks as an annotation set of boxes with outlines (``report --segmentation``).

    Each image's instances become boxes (their masks' tight boxes) and its
    masks, class-index map regions included, outlines to draw; faults are
    the reader's, listed as problems.
    """
    found = read_segmentation(fmt, annotations, images, names)
    return AnnotationSet(
        images=[_drawn(item) for item in found.images],
        problems=found.problems,
        warnings=found.warnings,
        classes=list(found.classes),
        unannotated=found.unannotated,
    )


def drawn_outlines(
    source: ImageMasks, found: OutputMasks, size: int
) -> tuple[tuple[str, tuple[np.ndarray, ...]], ...]:
    """The outlines to draw of one output's masks (``preview``'s contact sheet), by class."""
    return _drawn(output_item("", (size, size), source, found)).outlines


def _drawn(item: ImageMasks) -> ImageBoxes:
    """One image's masks as boxes and outlines to draw."""
    size = (item.width, item.height)
    boxes, outlines = [], []
    for k, instance in enumerate(item.instances):
        box = shape_box(instance.shape, *size)
        if box is None:
            continue
        boxes.append(Box(*box, instance.label, k, instance.where))
        outlines.append((instance.label, to_polygons(instance.shape, *size).parts))
    if item.semantic is not None:
        labels, names = item.semantic.labels, item.semantic.classes
        for value in np.unique(labels).tolist():
            if value == 0 or value == item.semantic.ignore or value >= len(names):
                continue
            outlines.append((names[value], mask_to_polygons(labels == value)))
    return ImageBoxes(
        item.image, item.width, item.height, tuple(boxes), item.annotation, tuple(outlines)
    )
