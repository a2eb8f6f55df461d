"""``augtool cells``: cut a cell classification set out of annotated whole smears.

Reads the boxes of a folder of smears (Pascal VOC, COCO or YOLO, see
:mod:`augtool.annotations`), chooses the objects to keep (classes, minimum
size, border policy, no overlap with other classes, seeded caps per smear and
per class) and writes one image per object::

    OUT/<class>/<smear>_<nnn>_<class>.png     (nnn: the object's number in its smear)
    OUT/cells.csv                              (file, class, smear, box, window)

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
from augtool.annotations import FORMATS, AnnotationSet, Problem, read_annotations
from augtool.annotations.base import problem_listing
from augtool.engine.groups import CELLS_CSV
from augtool.engine.scan import inspect_file
from augtool.errors import InputError, Message, OptionError, OutputError, literal, template_of
from augtool.progress import NoProgress, Reporter
from augtool.store.decode import decode_rgb, read_image_file
from augtool.store.encode import encode_image
from augtool.store.publish import staged_folder
from augtool.store.writers import check_output
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
        crop: ``window`` (a fixed window centred on the object) or ``box``
            (the box with a margin, squared and resized).
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

    def validate(self) -> None:
        """Check the options that need no data.

        Raises:
            OptionError: Naming the first invalid option.
        """
        if self.format not in FORMATS:
            raise OptionError("format", f"one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.crop not in CROPS:
            raise OptionError("crop", f"window or box, got {self.crop!r}")
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
        return DEFAULT_BOX_SIZE if self.crop == "box" else None


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
    check_output(out, options.overwrite)
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
    _write(cells, smears, out, options, reporter)
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


def _write(
    cells: list[Cell], smears: Path, out: Path, options: CellOptions, reporter: Reporter
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
                    target.write_bytes(
                        encode_image(
                            _crop(rgb, c.window, size),
                            options.image_format,
                            options.jpeg_quality,
                            "a cell image",
                        )
                    )
                reporter.advance(len(by_smear[smear]))
            _write_csv(tmp / CELLS_CSV, cells)
    except OSError as err:
        raise OutputError(
            f"writing {out} failed: {err.strerror or err}; nothing was written"
        ) from err


def _crop(rgb: np.ndarray, window: tuple[int, int, int, int], size: int | None) -> np.ndarray:
    x0, y0, x1, y1 = window
    patch = rgb[y0:y1, x0:x1]
    if size is None or patch.shape[:2] == (size, size):
        return np.ascontiguousarray(patch)
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def _write_csv(path: Path, cells: list[Cell]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CELLS_COLUMNS)
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
                ]
            )
