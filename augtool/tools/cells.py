"""``augtool cells``: cut a cell classification set out of annotated whole smears.

Reads the boxes of a folder of smears (Pascal VOC, COCO or YOLO, see
:mod:`augtool.annotations`), chooses the objects to keep (classes, minimum
size, border policy, no overlap with other classes, seeded caps per smear and
per class) and writes one image per object::

    OUT/<class>/<smear>_<nnn>_<class>.png     (nnn: the object's number in its smear)
    OUT/cells.csv                              (file, class, smear, box, window)

With ``crop="mask"`` the annotations are instance masks (COCO, YOLO
segmentation, PNG instance maps, VOC objects; :mod:`augtool.annotations`):
each cell is cut from its mask's box plus the margin, its pixels outside the
mask filled with black (``mask_background="fill"``) or kept, and its mask is
written beside it, in a folder ``expand`` does not read as a class::

    OUT/.masks/<class>/<smear>_<nnn>_<class>.png   (255: the cell, 0: not)

``OUT`` is an ordinary ``RAW/<class>/`` tree for ``augtool expand``, which reads
``cells.csv`` to keep the cells of one smear in one split. Every problem of the
annotations and images is listed before anything is written; ``OUT`` appears
complete or not at all.
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from augtool import defaults
from augtool.annotations import (
    FORMATS,
    AnnotationSet,
    Box,
    ImageBoxes,
    Problem,
    read_annotations,
    read_segmentation,
)
from augtool.annotations.base import problem_listing
from augtool.annotations.masks import Shape, shape_box, to_bitmap
from augtool.annotations.png_masks import grey_png
from augtool.annotations.segmentation import ImageMasks
from augtool.engine.groups import CELLS_CSV
from augtool.engine.scan import inspect_file
from augtool.errors import InputError, Message, OptionError, OutputError, literal, template_of
from augtool.progress import NoProgress, Reporter
from augtool.store.decode import decode_rgb, read_image_file
from augtool.store.encode import encode_image
from augtool.store.publish import check_apart, check_output, staged_folder
from augtool.tools.cell_plan import (
    ANY_CLASS,
    Cell,
    check_classes,
    folder_name_problem,
    plan_cells,
)

CELLS_COLUMNS = (
    "file",
    "class",
    "smear",
    "label",
    "object",
    "box_x0",
    "box_y0",
    "box_x1",
    "box_y1",
    "window_x0",
    "window_y0",
    "window_x1",
    "window_y1",
    "truncated",
    "clipped",
)


CROPS = defaults.CROPS
#: Mask formats that give instances (``--crop mask``); ``png`` class maps do not.
MASK_INSTANCE_FORMATS = tuple(f for f in defaults.MASK_FORMATS if f != "png")
#: Where ``--crop mask`` writes each cell's mask, inside OUT (hidden: no class of ``expand``).
MASKS_FOLDER = ".masks"


#: Policies for boxes cut by the image border.
BORDER_POLICIES = defaults.BORDER_POLICIES


#: Box mode output side when ``--size`` is not given.
DEFAULT_BOX_SIZE = defaults.DEFAULT_BOX_SIZE


MAX_LISTED = 50


#: Refuse smears with more pixels than this (a whole slide is not a smear).
MAX_PIXELS = 1_000_000_000


@dataclass(frozen=True)
class CellOptions:
    """Every option of ``augtool cells``.

    Attributes:
        format: Annotation format: ``voc``, ``coco`` or ``yolo``.
        names: YOLO class names file (default: found in the label folder).
        crop: ``window`` (a fixed window centred on the object), ``box``
            (the box with a margin, squared and resized) or ``mask`` (as
            ``box``, around an instance mask, cut by it).
        window: Window side in smear pixels (``crop="window"``).
        margin: Margin on each side as a fraction of the box's longer side (``crop="box"``).
        size: Output side in pixels; default: the window unresized, or 256 for boxes.
        classes: Annotation classes to keep (default: all).
        rename: ``(old, new)`` pairs: annotation class to output folder (two olds may
            share a new name, which merges them).
        max_per_class: Keep at most this many cells per output class (seeded choice).
        max_per_smear: Keep at most this many cells per class and smear (seeded choice).
        min_size: Drop boxes whose shorter side is below this many pixels.
        border: ``keep``, ``drop-truncated`` (boxes the annotation flags as cut by the
            border) or ``drop-touching`` (those and every box reaching the border).
        exclude_overlap: Drop a cell whose window overlaps a box of one of these
            annotation classes, when that box's output class is not the cell's;
            ``("all",)`` for every class.
        image_format: ``png`` or ``jpg``.
        jpeg_quality: JPEG quality.
        seed: Seed of the capped choices.
        skip_invalid: Leave out faulty boxes and images (listed) instead of refusing.
        overwrite: Replace an existing OUT.
        mask_background: ``crop="mask"``: pixels outside the mask ``fill`` (black)
            or ``keep``.
    """

    format: str = "voc"
    names: str | None = None
    crop: str = defaults.DEFAULT_CROP
    window: int = defaults.DEFAULT_WINDOW
    margin: float = defaults.DEFAULT_MARGIN
    size: int | None = None
    classes: tuple[str, ...] | None = None
    rename: tuple[tuple[str, str], ...] = ()
    max_per_class: int | None = None
    max_per_smear: int | None = None
    min_size: float = 0.0
    border: str = defaults.DEFAULT_BORDER
    exclude_overlap: tuple[str, ...] = ()
    image_format: str = defaults.DEFAULT_IMAGE_FORMAT
    jpeg_quality: int = defaults.DEFAULT_JPEG_QUALITY
    seed: int = 0
    skip_invalid: bool = False
    overwrite: bool = False
    mask_background: str = defaults.DEFAULT_MASK_BACKGROUND

    def validate(self) -> None:
        """Check the options that need no data.

        Raises:
            OptionError: Naming the first invalid option.
        """
        if self.crop not in CROPS:
            raise OptionError("crop", f"window, box or mask, got {self.crop!r}")
        formats = MASK_INSTANCE_FORMATS if self.crop == "mask" else FORMATS
        if self.format not in formats:
            raise OptionError(
                "format",
                f"one of {literal(', '.join(formats))}, got {literal(repr(self.format))}"
                + (" (instance masks for {crop} mask)" if self.crop == "mask" else ""),
                refs=True,
            )
        if self.mask_background not in defaults.MASK_BACKGROUNDS:
            raise OptionError(
                "mask_background", f"fill or keep, got {literal(repr(self.mask_background))}"
            )
        if self.mask_background != defaults.DEFAULT_MASK_BACKGROUND and self.crop != "mask":
            raise OptionError("mask_background", "needs {crop} mask", refs=True)
        if not 8 <= self.window <= 16384:
            raise OptionError("window", f"must be between 8 and 16384 pixels, got {self.window}")
        if not (math.isfinite(self.margin) and 0 <= self.margin <= 2):
            raise OptionError("margin", f"must be between 0 and 2, got {self.margin}")
        if self.size is not None and not 8 <= self.size <= 4096:
            raise OptionError("size", f"must be between 8 and 4096, got {self.size}")
        for option, cap in (
            ("max_per_class", self.max_per_class),
            ("max_per_smear", self.max_per_smear),
        ):
            if cap is not None and cap < 1:
                raise OptionError(option, f"must be >= 1, got {cap}")
        if not (math.isfinite(self.min_size) and self.min_size >= 0):
            raise OptionError("min_size", f"must be >= 0 pixels, got {self.min_size}")
        if self.border not in BORDER_POLICIES:
            raise OptionError("border", f"one of {', '.join(BORDER_POLICIES)}, got {self.border!r}")
        if self.image_format not in ("png", "jpg"):
            raise OptionError("image_format", f"png or jpg, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise OptionError("jpeg_quality", f"must be 1..100, got {self.jpeg_quality}")
        if self.classes is not None and not self.classes:
            raise OptionError("classes", "name at least one class")
        olds = [old for old, _ in self.rename]
        twice = sorted({o for o in olds if olds.count(o) > 1})
        if twice:
            raise OptionError("rename", f"class {twice[0]!r} is renamed twice")
        for old, new in self.rename:
            if not old or not new:
                raise OptionError("rename", f"expected OLD=NEW, got {old!r}={new!r}")
            problem = folder_name_problem(new)
            if problem:
                raise OptionError("rename", f"{new!r} {problem}")
        if ANY_CLASS in self.exclude_overlap and len(self.exclude_overlap) > 1:
            raise OptionError("exclude_overlap", f"{ANY_CLASS!r} already names every class")

    @property
    def output_size(self) -> int | None:
        """Side of the written images, or None to keep the window as cut."""
        if self.size is not None:
            return self.size
        return DEFAULT_BOX_SIZE if self.crop in ("box", "mask") else None


@dataclass
class CellsSummary:
    """What ``cut_cells`` did.

    Attributes:
        out: The output folder.
        counts: Cells written per output class.
        smears: Smears contributing cells, per output class.
        dropped: Objects not written, per reason.
        problems: Faults left out with ``skip_invalid``.
        warnings: Repairs (boxes clipped to their image).
        unannotated: Smears no annotation mentions.
        seconds: Wall time.
    """

    out: Path
    counts: dict[str, int]
    smears: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unannotated: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Cells written."""
        return sum(self.counts.values())


def cut_cells(
    smears: str | Path,
    annotations: str | Path,
    out: str | Path,
    options: CellOptions,
    reporter: Reporter | None = None,
) -> CellsSummary:
    """Write the cell set of annotated smears.

    Args:
        smears: The folder of smear images.
        annotations: The annotation folder (VOC, YOLO) or file (COCO).
        out: The output folder (created; replaced with ``options.overwrite``).
        options: The run's options.
        reporter: Progress and warnings; silent by default.

    Returns:
        What was written and left out.

    Raises:
        OptionError: For invalid options (nothing written).
        InputError: For faulty annotations or images, all listed (nothing
            written), unless ``options.skip_invalid``.
        OutputError: If OUT exists and ``overwrite`` is false, or writing fails.
    """
    started = time.perf_counter()
    reporter = reporter or NoProgress()
    options.validate()
    smears, out = Path(smears), Path(out)
    check_apart(out, {"smears": smears, "annotations": annotations}, scanned=("annotations",))
    check_output(out, options.overwrite)
    masks: dict[str, ImageMasks] = {}
    if options.crop == "mask":
        found, masks = _read_masks(options, annotations, smears)
    else:
        found = read_annotations(options.format, annotations, smears, options.names)
    check_classes(found, options)
    found.problems.extend(_check_images(found, smears, options, reporter))
    if found.problems and not options.skip_invalid:
        raise InputError(problem_listing(found.problems, annotations), refs=True)
    usable = _without_bad_images(found)
    for warning in found.warnings:
        reporter.warn(warning)
    cells, dropped = plan_cells(usable, options)
    if not cells:
        raise InputError(
            f"no cells left to write from {literal(annotations)} (dropped: "
            + (
                ", ".join(f"{n:d} {template_of(why)}" for why, n in dropped.items())
                or "no objects at all"
            )
            + ")",
            refs=True,
        )
    _write(cells, smears, out, options, reporter, masks)
    counts = Counter(c.class_name for c in cells)
    rename = dict(options.rename)
    wanted = {rename.get(c, c) for c in (options.classes or usable.classes)}
    for missing in sorted(wanted - set(counts)):
        reporter.warn(f"class {missing}: no cells left after the options; OUT has no folder for it")
    smear_sets: dict[str, set[str]] = defaultdict(set)
    for c in cells:
        smear_sets[c.class_name].add(c.smear)
    return CellsSummary(
        out=out,
        counts=dict(sorted(counts.items())),
        smears={k: len(v) for k, v in sorted(smear_sets.items())},
        dropped=dropped,
        problems=found.problems,
        warnings=found.warnings,
        unannotated=found.unannotated,
        seconds=time.perf_counter() - started,
    )


def _check_images(
    found: AnnotationSet, smears: Path, options: CellOptions, reporter: Reporter
) -> list[Problem]:
    """Smears that cannot be decoded, or are smaller than the window."""
    problems = []
    reporter.start("check smears", len(found.images))
    for item in found.images:
        info = inspect_file(smears / item.image, MAX_PIXELS)
        if info.error:
            problems.append(
                Problem(item.annotation, "", f"image {item.image}: {info.error}", item.image)
            )
        elif options.crop == "window" and options.window > min(item.width, item.height):
            problems.append(
                Problem(
                    item.annotation,
                    "",
                    Message(
                        f"image {literal(item.image)} is {item.width:d}x{item.height:d}, smaller "
                        f"than the window ({{window}} {options.window:d})"
                    ),
                    item.image,
                )
            )
        reporter.advance(1)
    return problems


def _without_bad_images(found: AnnotationSet) -> AnnotationSet:
    """The annotations less the images a whole-image problem names."""
    bad = {p.image for p in found.problems if p.whole_image and p.image}
    return AnnotationSet(
        images=[i for i in found.images if i.image not in bad],
        classes=found.classes,
    )


def _read_masks(
    options: CellOptions, annotations: str | Path, smears: Path
) -> tuple[AnnotationSet, dict[str, ImageMasks]]:
    """Instance masks as boxes (their tight boxes, for the plan) and the masks by image."""
    found = read_segmentation(options.format, annotations, smears, options.names, MAX_PIXELS)
    images = []
    for item in found.images:
        boxes = []
        for k, instance in enumerate(item.instances):
            box = shape_box(instance.shape, item.width, item.height)
            if box is not None:
                boxes.append(Box(*box, instance.label, k, instance.where))
        images.append(
            ImageBoxes(item.image, item.width, item.height, tuple(boxes), item.annotation)
        )
    labels = sorted({i.label for item in found.images for i in item.instances})
    boxes_set = AnnotationSet(
        images=images,
        problems=found.problems,
        warnings=found.warnings,
        classes=labels,
        unannotated=found.unannotated,
    )
    return boxes_set, {item.image: item for item in found.images}


def _write(
    cells: list[Cell],
    smears: Path,
    out: Path,
    options: CellOptions,
    reporter: Reporter,
    masks: dict[str, ImageMasks],
) -> None:
    by_smear: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        by_smear[c.smear].append(c)
    size = options.output_size
    reporter.start("cells", len(cells))
    try:
        with staged_folder(out) as tmp:
            for smear in sorted(by_smear):
                rgb = decode_rgb(read_image_file(smears / smear), 1, str(smears / smear))
                for c in by_smear[smear]:
                    target = tmp / c.name
                    target.parent.mkdir(exist_ok=True)
                    cell = _crop(rgb, c.window, size)
                    if options.crop == "mask":
                        instance = masks[smear].instances[c.box.index]
                        cut = _cut_mask(instance.shape, rgb.shape[1], rgb.shape[0], c.window, size)
                        if options.mask_background == "fill":
                            cell[~cut] = 0
                        mask_file = tmp / MASKS_FOLDER / Path(c.name).with_suffix(".png")
                        mask_file.parent.mkdir(parents=True, exist_ok=True)
                        mask_file.write_bytes(grey_png(cut.astype(np.uint8) * 255))
                    target.write_bytes(
                        encode_image(
                            cell, options.image_format, options.jpeg_quality, "a cell image"
                        )
                    )
                reporter.advance(len(by_smear[smear]))
            _write_csv(tmp / CELLS_CSV, cells, options.crop == "mask")
    except OSError as err:
        raise OutputError(
            f"writing {out} failed: {err.strerror or err}; nothing was written"
        ) from err


def _cut_mask(
    shape: Shape, width: int, height: int, window: tuple[int, int, int, int], size: int | None
) -> np.ndarray:
    """An instance's mask in a cell's window, resized as the cell is (nearest, on pixel centres)."""
    x0, y0, x1, y1 = window
    mask = to_bitmap(shape, width, height)[y0:y1, x0:x1].astype(np.uint8)
    if size is not None and mask.shape != (size, size):
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST_EXACT)
    return mask.astype(bool)


def _crop(rgb: np.ndarray, window: tuple[int, int, int, int], size: int | None) -> np.ndarray:
    x0, y0, x1, y1 = window
    patch = rgb[y0:y1, x0:x1]
    if size is None or patch.shape[:2] == (size, size):
        return np.ascontiguousarray(patch)
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def _write_csv(path: Path, cells: list[Cell], with_masks: bool = False) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*CELLS_COLUMNS, *(("mask",) if with_masks else ())])
        for c in sorted(cells, key=lambda c: c.name):
            b = c.box
            writer.writerow(
                [
                    c.name,
                    c.class_name,
                    c.smear,
                    b.label,
                    b.index + 1,
                    *(f"{v:g}" for v in (b.x0, b.y0, b.x1, b.y1)),
                    *c.window,
                    int(b.truncated),
                    int(b.clipped),
                    *(
                        (f"{MASKS_FOLDER}/{Path(c.name).with_suffix('.png').as_posix()}",)
                        if with_masks
                        else ()
                    ),
                ]
            )
