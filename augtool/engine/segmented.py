"""Segmentation datasets: ``augtool expand RAW OUT --annotations A --segmentation``.

As a detection run (:mod:`augtool.engine.detection`), every image the masks
describe becomes a source of the one pseudo-class ``images``: the plan, seeds,
split, manifest and ``verify`` are a classification run's. Every step carries
the masks with its pixels (:class:`augtool.ops.targets.Targets`): an
instance's polygons vertex by vertex, a bitmap or a class-index map at nearest
neighbour; an instance that keeps less than ``min_visibility`` of its area is
dropped. The worker sends them back with the output, and they are written
beside the images in the input's own format:

    OUT/<split>/images/<stem>__<kk>_<transform>.png
    OUT/<split>/annotations.json                                COCO
    OUT/<split>/labels/<stem>__<kk>_<transform>.txt             YOLO (+ labels/classes.txt)
    OUT/<split>/masks/<stem>__<kk>_<transform>.png              PNG (+ classes.txt, or a
                                                                .json class table each)
    OUT/<split>/SegmentationClass/<stem>__<kk>_<transform>.png  VOC (+ SegmentationObject/)

Each split folder is a dataset its format's readers
(:func:`augtool.annotations.read_segmentation`) read as it is. ``augtool.json``
records every mask file with its hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from augtool.annotations import read_segmentation
from augtool.annotations.base import Problem
from augtool.annotations.masks import (
    Bitmap,
    Instance,
    LabelMap,
    Polygons,
    Rle,
    compress_counts,
    decompress_counts,
    encode_rle,
    paint_ids,
    to_bitmap,
)
from augtool.annotations.segmentation import ImageMasks, usable
from augtool.engine.groups import compile_group_regex, find_duplicates
from augtool.engine.scan import IMAGES, ScanResult, annotated_sources, inspect_file
from augtool.errors import InputError
from augtool.ops.mask_geometry import Patch
from augtool.ops.targets import Shape, Targets
from augtool.store.schema import CLASS_MAP, MASK_IDS

if TYPE_CHECKING:
    from augtool.store.writers import Hdf5Writer

#: The class every segmentation source belongs to (the folder of the images in OUT).
#: Where each format's files go inside a split folder ('' for the split folder itself).
MASK_FOLDER = {"coco": "", "yolo": "labels", "png": "masks", "png-instances": "masks", "voc": ""}
#: Where a reader finds each format's files in a split folder (``annotations`` it is given).
MASK_LOCATION = {
    "coco": "annotations.json",
    "yolo": "labels",
    "png": "masks",
    "png-instances": "masks",
    "voc": "",
}


@dataclass
class SegmentationInput:
    """The annotated images of a segmentation run.

    Attributes:
        fmt: One of :data:`augtool.annotations.segmentation.SEGMENTATION_FORMATS`.
        classes: Class names, in the order the output's files number them (a
            class-index map's own order for ``png`` and ``voc``).
        masks: Each source's masks, by source path (relative to RAW).
        warnings: Repairs and omissions the user should hear of.
    """

    fmt: str
    classes: list[str]
    masks: dict[str, ImageMasks]
    warnings: list[str]


@dataclass(frozen=True)
class SourceMasks:
    """What a worker needs of a source's masks (picklable, small: bitmaps as patches).

    Attributes:
        shapes: Each instance: polygon parts, or a :class:`Patch`.
        semantic: The class-index map, or None.
    """

    shapes: tuple[Shape, ...]
    semantic: np.ndarray | None

    @classmethod
    def of(cls, item: ImageMasks) -> SourceMasks:
        """The masks of one annotated image."""
        shapes: list[Shape] = []
        for instance in item.instances:
            if isinstance(instance.shape, Polygons):
                shapes.append(list(instance.shape.parts))
            else:
                shapes.append(Patch.of(to_bitmap(instance.shape, item.width, item.height)))
        semantic = None if item.semantic is None else item.semantic.labels
        return cls(tuple(shapes), semantic)

    def targets(self, size: tuple[int, int], tight: bool) -> Targets:
        """As :class:`Targets` of an image of ``size`` (ids: instance positions)."""
        return Targets.from_masks(size, self.shapes, self.semantic, tight)


def scan_segmented(
    raw: Path,
    fmt: str,
    annotations: str | Path,
    names: str | Path | None,
    group_regex: str | None,
    skip_invalid: bool,
    max_pixels: int,
) -> tuple[ScanResult, SegmentationInput]:
    """Read the masks of RAW's images and scan the annotated images as sources.

    Args:
        raw: The folder of images.
        fmt: Mask format.
        annotations: The COCO file, YOLO label folder, PNG mask folder or VOC folder.
        names: Class names file (YOLO, ``png``, ``voc``).
        group_regex: Groups for the split (default: each image its own group).
        skip_invalid: Leave out faulty masks and images (listed as warnings).
        max_pixels: Refuse larger images.

    Raises:
        InputError: For faulty masks or images (all listed) unless
            ``skip_invalid``, or when no annotated image is left.
    """
    regex = compile_group_regex(group_regex)
    found = read_segmentation(fmt, annotations, raw, names, max_pixels)
    infos = {item.image: inspect_file(raw / item.image, max_pixels) for item in found.images}
    found.problems.extend(
        Problem(item.annotation, "", f"image {item.image}: {infos[item.image].error}", item.image)
        for item in found.images
        if infos[item.image].error
    )
    found = usable(found, annotations, skip_invalid)
    warnings = list(found.warnings)
    if found.unannotated:
        warnings.append(
            f"{len(found.unannotated)} image(s) in {raw} have no masks and are left out: "
            + ", ".join(found.unannotated[:10])
            + (" ..." if len(found.unannotated) > 10 else "")
        )
    items = [i for i in found.images if i.instances or i.semantic is not None]
    if not items:
        raise InputError(f"{raw}: no image with masks left to expand (annotations: {annotations})")
    sources = annotated_sources([item.image for item in items], infos, regex)
    scan_result = ScanResult(
        root=raw,
        classes=[IMAGES],
        sources=sources,
        skipped=[],
        duplicates=find_duplicates(sources),
    )
    classes = list(found.classes)
    maps = [i.semantic for i in items if i.semantic is not None]
    if maps:
        classes = list(maps[0].classes)
    return scan_result, SegmentationInput(fmt, classes, {i.image: i for i in items}, warnings)


@dataclass(frozen=True)
class OutputMasks:
    """The masks of one output, as its worker sent them back.

    Attributes:
        boxes: ``(M, 4)`` each kept instance's box on the output.
        ids: ``(M,)`` each one's position among its source's instances.
        shapes: Each kept instance: clipped polygon parts, or a :class:`Patch`.
        semantic: The class-index map on the output, or None.
    """

    boxes: np.ndarray
    ids: np.ndarray
    shapes: tuple[Shape, ...]
    semantic: np.ndarray | None

    @classmethod
    def of(cls, targets: Targets) -> OutputMasks:
        """The settled targets of an output."""
        return cls(targets.boxes, targets.ids, targets.shapes or (), targets.semantic)

    def to_journal(self) -> dict:
        """As a journal entry keeps them: polygons as lists, bitmaps as COCO's RLE strings."""
        shapes: list[object] = []
        for shape in self.shapes:
            if isinstance(shape, Patch):
                rle = encode_rle(shape.mask)
                shapes.append([shape.x0, shape.y0, rle.width, rle.height, compress(rle)])
            else:
                shapes.append({"parts": [p.tolist() for p in shape]})
        entry: dict = {
            "boxes": self.boxes.tolist(),
            "box_ids": [int(i) for i in self.ids],
            "masks": shapes,
        }
        if self.semantic is not None:
            labels = sorted(int(v) for v in np.unique(self.semantic) if v)
            entry["semantic"] = {
                "size": [int(self.semantic.shape[1]), int(self.semantic.shape[0])],
                "dtype": str(self.semantic.dtype),
                "labels": {str(v): compress(encode_rle(self.semantic == v)) for v in labels},
            }
        return entry

    @classmethod
    def from_journal(cls, entry: dict) -> OutputMasks:
        """The masks of a journal entry written by :meth:`to_journal`."""
        shapes: list[Shape] = []
        for shape in entry["masks"]:
            if isinstance(shape, dict):
                shapes.append([np.asarray(p, np.float64).reshape(-1, 2) for p in shape["parts"]])
            else:
                x0, y0, width, height, counts = shape
                rle = Rle(height, width, decompress_counts(counts, width * height))
                shapes.append(Patch(to_bitmap(rle, width, height), x0, y0))
        semantic = None
        if "semantic" in entry:
            found = entry["semantic"]
            width, height = found["size"]
            semantic = np.zeros((height, width), dtype=found["dtype"])
            for value, counts in found["labels"].items():
                rle = Rle(height, width, decompress_counts(counts, width * height))
                semantic[to_bitmap(rle, width, height)] = int(value)
        boxes = np.asarray(entry["boxes"], dtype=np.float64).reshape(-1, 4)
        return cls(boxes, np.asarray(entry["box_ids"], np.int64), tuple(shapes), semantic)


def compress(rle: Rle) -> str:
    """COCO's compressed counts of an RLE."""
    return compress_counts(rle.counts)


def output_item(
    name: str, size: tuple[int, int], source: ImageMasks, found: OutputMasks
) -> ImageMasks:
    """An output's masks as segmentation records, each instance its source's class and form.

    Polygons stay polygons; a bitmap comes back as a bitmap, an RLE as an RLE.
    """
    width, height = size
    instances = []
    for shape, i in zip(found.shapes, found.ids, strict=True):
        origin = source.instances[int(i)]
        new: Polygons | Rle | Bitmap
        if isinstance(shape, Patch):
            bitmap = shape.full(width, height)
            new = encode_rle(bitmap) if isinstance(origin.shape, Rle) else Bitmap(bitmap)
        else:
            new = Polygons(tuple(shape))
        instances.append(Instance(origin.label, new, origin.iscrowd, len(instances), origin.where))
    semantic = None
    if found.semantic is not None and source.semantic is not None:
        semantic = LabelMap(found.semantic, source.semantic.classes, source.semantic.ignore)
    return ImageMasks(name, width, height, tuple(instances), semantic, name)


def mask_files(
    items: Sequence[ImageMasks],
    fmt: str,
    classes: Sequence[str],
    boxes: Sequence[np.ndarray] | None = None,
) -> dict[str, bytes]:
    """The mask files of one split folder's images, by path relative to the format's folder.

    Args:
        items: The images and their masks.
        fmt: The mask format.
        classes: Class names, in the order the files number them.
        boxes: Each item's instance boxes, ``(N, 4)``: COCO's ``bbox``
            (default: each mask's tight box). Other formats write no boxes.
    """
    if fmt == "coco":
        from augtool.annotations.coco_masks import COCO_MASKS_FILE, coco_masks_json

        text = coco_masks_json(items, classes, boxes=boxes)
        return {COCO_MASKS_FILE: text.encode("utf-8")}
    if fmt == "yolo":
        from augtool.annotations.yolo_masks import yolo_mask_files

        return {k: v.encode("utf-8") for k, v in yolo_mask_files(items, classes).items()}
    if fmt == "voc":
        from augtool.annotations.voc_masks import voc_mask_files

        return voc_mask_files(items, classes)
    from augtool.annotations.png_masks import png_mask_files

    return png_mask_files(items, classes, fmt == "png-instances")


@dataclass
class SegmentationOutput:
    """The mask files of a run and what happened to the instances.

    Attributes:
        files: Bytes of each mask file, by path relative to OUT.
        instances_in: Source instances, summed over outputs.
        instances_out: Instances written.
        class_maps: Class-index maps written (one per output, for ``png`` and ``voc``).
        datasets: HDF5 output: the sha256 of each mask dataset, by name.
    """

    files: dict[str, bytes]
    instances_in: int
    instances_out: int
    class_maps: int = 0
    datasets: dict[str, str] = field(default_factory=dict)

    def record(
        self, fmt: str, classes: Sequence[str], min_visibility: float, mask_boxes: str
    ) -> dict:
        """What ``augtool.json`` keeps: format, classes, counts, and every file's hash."""
        return {
            "format": fmt,
            "masks": True,
            "classes": list(classes),
            "min_visibility": min_visibility,
            "mask_boxes": mask_boxes,
            "instances_in": self.instances_in,
            "instances_out": self.instances_out,
            "class_maps": self.class_maps,
            "files": {
                name: hashlib.sha256(data).hexdigest() for name, data in sorted(self.files.items())
            },
            **({"datasets": dict(sorted(self.datasets.items()))} if self.datasets else {}),
        }


def segmentation_files(
    outputs: Sequence[tuple[dict, OutputMasks]],
    segmentation: SegmentationInput,
    size: tuple[int, int],
) -> SegmentationOutput:
    """Every mask file of a run, grouped by split folder.

    Args:
        outputs: Each output's manifest row (``name``, ``source``) and its masks.
        segmentation: The input masks.
        size: Output ``(width, height)``.
    """
    by_folder: dict[str, list[tuple[ImageMasks, np.ndarray]]] = {}
    instances_in = instances_out = maps = 0
    for row, found in outputs:
        source = segmentation.masks[row["source"]]
        name = PurePosixPath(row["name"])
        item = output_item(name.name, size, source, found)
        instances_in += len(source.instances)
        instances_out += len(item.instances)
        maps += item.semantic is not None
        folder = str(name.parent.parent) if name.parent.parent != PurePosixPath(".") else ""
        by_folder.setdefault(folder, []).append((item, found.boxes))
    files: dict[str, bytes] = {}
    sub = MASK_FOLDER[segmentation.fmt]
    for folder, pairs in sorted(by_folder.items()):
        pairs.sort(key=lambda pair: pair[0].image)
        items, boxes = [p[0] for p in pairs], [p[1] for p in pairs]
        for rel, data in mask_files(items, segmentation.fmt, segmentation.classes, boxes).items():
            files[str(PurePosixPath(folder or ".", sub or ".", rel))] = data
    return SegmentationOutput(files, instances_in, instances_out, maps)


def write_hdf5_masks(
    writer: Hdf5Writer,
    outputs: Sequence[tuple[dict, OutputMasks]],
    segmentation: SegmentationInput,
    size: int,
) -> SegmentationOutput:
    """Write the masks of every output into the HDF5 file beside its images.

    Instances become each image's instance-id map (:data:`MASK_IDS`, later
    instances on top where they overlap) and its row of ``mask_instances``
    (class and box of each id); class-index maps the :data:`CLASS_MAP`
    dataset. The record's ``datasets`` holds each array's hash.

    Args:
        writer: The open HDF5 writer.
        outputs: Every output's manifest row and masks, in plan order.
        segmentation: The input masks.
        size: The images' side.
    """
    items = [
        (output_item(row["name"], (size, size), segmentation.masks[row["source"]], found), found)
        for row, found in outputs
    ]
    hashes: dict[str, str] = {}
    instances_in = sum(len(segmentation.masks[row["source"]].instances) for row, _ in outputs)
    instances_out = sum(len(item.instances) for item, _ in items)
    if any(segmentation.masks[row["source"]].instances for row, _ in outputs):
        hashes[MASK_IDS] = writer.write_rows(
            MASK_IDS, np.uint16, (paint_ids(item.instances, size, size) for item, _ in items)
        )
        writer.write_text_rows(
            "mask_instances",
            [
                json.dumps(
                    [
                        {"class": i.label, "box": [round(float(v), 2) for v in box]}
                        for i, box in zip(item.instances, found.boxes, strict=True)
                    ]
                )
                for item, found in items
            ],
        )
    maps = [item.semantic for item, _ in items]
    if all(m is not None for m in maps) and maps:
        dtype = np.uint8 if len(segmentation.classes) <= 256 else np.uint16
        hashes[CLASS_MAP] = writer.write_rows(
            CLASS_MAP,
            dtype,
            (m.labels for m in maps if m is not None),
            {"class_names": list(segmentation.classes)},
        )
    written_maps = len(maps) if CLASS_MAP in hashes else 0
    return SegmentationOutput({}, instances_in, instances_out, written_maps, hashes)
