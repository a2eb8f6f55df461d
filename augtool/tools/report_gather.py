"""What a report reads: an ``expand`` output, a folder of class folders, annotated images.

:func:`gather` turns the input into a :class:`Gathered`: its images (or their
sizes and a sample of them), classes, splits and folds, groups, boxes, the
provenance an output records, and what ``verify`` says of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augtool.annotations import ImageBoxes, Problem
from augtool.errors import InputError, OptionError, literal
from augtool.tools.report_items import (
    Item,
)

#: Sample thumbnails per class for a folder of images or of annotated smears.
SAMPLES_PER_CLASS = 8


#: Faults listed by name in the annotation health table; beyond this, a count.
MAX_EXAMPLES = 12


@dataclass
class Gathered:
    """Everything the sections draw from.

    Attributes:
        path: The dataset given.
        kind: ``expand``, ``detection`` (boxes), ``segmentation`` (masks),
            ``folder`` or ``annotated``.
        classes: Image class names, in label order (each class's colour).
        items: One entry per image.
        pixels: Returns the RGB array of item ``i``.
        attrs: The run's recorded ``augtool.json`` (empty when there is none).
        source_sizes: ``(width, height)`` of each source image, when known.
        sizes_note: Why the source sizes are not known, when they are not.
        box_classes: Object class names, in colour order (detection data).
        boxes: Boxes of the images that have annotations, by item index.
        masks: The objects are masks (a segmentation output, or annotated
            images read with ``segmentation``): each box is an instance's, and
            its outline is drawn.
        problems: Faults the annotation readers found.
        unannotated: Images no annotation mentions.
        verify_lines: ``verify``'s verdict line and its problems (expand outputs).
        verify_ok: Whether ``verify`` found nothing wrong (None: not run).
        notes: What the reader wants the curator to know (skipped files, ...).
    """

    path: Path
    kind: str
    classes: list[str]
    items: list[Item]
    pixels: Callable[[int], np.ndarray]
    attrs: dict = field(default_factory=dict)
    source_sizes: list[tuple[int, int]] = field(default_factory=list)
    sizes_note: str = ""
    box_classes: list[str] = field(default_factory=list)
    boxes: dict[int, ImageBoxes] = field(default_factory=dict)
    masks: bool = False
    problems: list[Problem] = field(default_factory=list)
    unannotated: list[str] = field(default_factory=list)
    verify_lines: list[str] = field(default_factory=list)
    verify_ok: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def detection(self) -> bool:
        """True when the images carry boxes (or masks, counted by their boxes)."""
        return self.kind in ("detection", "segmentation", "annotated")

    @property
    def expanded(self) -> bool:
        """True for an ``expand`` output, with or without boxes or masks."""
        return self.kind in ("expand", "detection", "segmentation")

    @property
    def objects(self) -> str:
        """What an annotated object is called on the page: ``boxes`` or ``instances``."""
        return "instances" if self.masks else "boxes"

    def splits(self) -> list[str]:
        """Split names present, in table order (train, val, test, ...)."""
        from augtool.defaults import sort_splits

        return sort_splits(i.split for i in self.items)

    def folds(self) -> list[int]:
        """Cross-validation folds present (empty without folds)."""
        return sorted({i.fold for i in self.items if i.fold is not None})


def gather(
    path: str | Path,
    annotations: str | Path | None = None,
    annotation_format: str | None = None,
    names: str | Path | None = None,
    raw: str | Path | None = None,
    group_regex: str | None = None,
    run_verify: bool = True,
    segmentation: bool = False,
) -> Gathered:
    """Read a dataset of any of the four kinds the report shows.

    Args:
        path: An expand output (folder with ``manifest.csv``, or HDF5 file), a
            folder of class folders, or (with ``annotations``) a folder of images.
        annotations: The annotations of ``path``'s images (VOC or YOLO folder,
            COCO file): ``path`` is then a folder of annotated images.
        annotation_format: ``voc``, ``coco`` or ``yolo`` (with ``annotations``).
        names: YOLO class names file.
        raw: The folder an expand output was made from: the sources' sizes
            are read from its image headers.
        group_regex: Groups of a folder of images or smears, as ``expand``'s.
        run_verify: Check an expand output with ``verify`` (every hash).
        segmentation: ``annotations`` are masks (``expand --segmentation``'s
            formats): their boxes are counted, their outlines drawn.

    Returns:
        The dataset as the sections see it.

    Raises:
        InputError: If ``path`` is none of the four kinds or cannot be read.
        OptionError: For options that do not fit the input.
    """
    from augtool.tools.preview import detect_kind

    path = Path(path)
    if annotations is not None:
        if annotation_format is None:
            raise OptionError(
                "annotation_format", "give the annotations' format: voc, coco or yolo"
            )
        if raw is not None:
            raise OptionError("raw", "applies to an expand output, not to annotated images")
        return _gather_annotated(
            path, annotations, annotation_format, names, group_regex, segmentation
        )
    if segmentation:
        raise OptionError("segmentation", "needs {annotations}: the masks", refs=True)
    if annotation_format is not None or names is not None:
        raise OptionError("annotation_format", "needs {annotations}", refs=True)
    if path.is_dir() and not (path / "manifest.csv").is_file():
        if raw is not None:
            raise OptionError("raw", "applies to an expand output, not to a folder of images")
        return _gather_folder(path, group_regex)
    if detect_kind(path) != "dataset":
        raise InputError(
            f"{path}: an image file, not a dataset; give an expand output, a folder of "
            "class folders, or a folder of annotated images with its annotations"
        )
    if group_regex is not None:
        raise OptionError("group_regex", "an expand output records its groups; leave it out")
    return _gather_expand(path, raw, run_verify)


def _gather_expand(path: Path, raw: str | Path | None, run_verify: bool) -> Gathered:
    from augtool.store.dataset import open_dataset

    data = open_dataset(path, check_hashes=False)
    folds = data.folds
    items = [
        Item(
            name=data.names[i],
            class_name=data.class_names[int(data.labels[i])],
            split=str(data.splits[i]),
            fold=None if folds is None or int(folds[i]) < 0 else int(folds[i]),
            group=data.groups[i],
            transform=data.transforms[i],
        )
        for i in range(len(data))
    ]
    gathered = Gathered(
        path=path,
        kind="expand",
        classes=list(data.class_names),
        items=items,
        pixels=lambda i: data.images[i],
        attrs=dict(data.attrs),
    )
    record = data.attrs.get("annotations")
    if isinstance(record, dict) and (path.is_dir() or record.get("masks")):
        from augtool.engine.detection import read_output_boxes

        gathered.masks = bool(record.get("masks"))
        gathered.kind = "segmentation" if gathered.masks else "detection"
        box_classes, by_name, problems = read_output_boxes(path, data.names, record)
        index = {name: i for i, name in enumerate(data.names)}
        gathered.box_classes = box_classes
        gathered.boxes = {index[n]: b for n, b in by_name.items() if n in index}
        gathered.problems = problems
    sources = _source_paths(path, data.attrs)
    if raw is None:
        gathered.sizes_note = (
            f"every output is {data.images.shape[2]}×{data.images.shape[1]} px; the sources' "
            "sizes are read from the folder expand read, when the report is given it"
        )
    else:
        gathered.source_sizes = _header_sizes(Path(raw), sources)
    if run_verify:
        _add_verify(gathered)
    return gathered


def _source_paths(path: Path, attrs: dict) -> list[str]:
    """The source paths an expand output records (``augtool.json``, or the HDF5 source table)."""
    sources = attrs.get("sources")
    if isinstance(sources, list):
        return [str(s["path"]) for s in sources if isinstance(s, dict) and "path" in s]
    if path.is_dir():
        return []
    from augtool.store.schema import open_hdf5, read_hdf5_records

    with open_hdf5(path) as fh:
        return list(read_hdf5_records(fh, path).source_paths)


def _header_sizes(raw: Path, sources: Sequence[str]) -> list[tuple[int, int]]:
    """``(width, height)`` of each source under ``raw``, from its header.

    Raises:
        InputError: If ``raw`` is not a folder or a source is missing from it.
    """
    from augtool.store.decode import image_size, read_image_file

    if not raw.is_dir():
        raise InputError(f"{raw}: no such folder; give the folder the dataset was expanded from")
    sizes = []
    for rel in sources:
        target = raw / rel
        if not target.is_file():
            raise InputError(
                f"{target}: a source the dataset records is not there; is {literal(raw)} the "
                "folder it was expanded from?"
            )
        sizes.append(image_size(read_image_file(target), str(target)))
    return sizes


def _add_verify(gathered: Gathered) -> None:
    from augtool.engine.verify import verify

    report = verify(gathered.path)
    gathered.verify_ok = report.ok
    if report.ok:
        gathered.verify_lines = [report.ok_line()]
    else:
        gathered.verify_lines = report.problem_lines(MAX_EXAMPLES * 4)


def _gather_folder(path: Path, group_regex: str | None) -> Gathered:
    from augtool.engine.scan import scan
    from augtool.store.decode import decode_rgb, read_image_file

    found = scan(path, group_regex=group_regex, skip_invalid=True)
    items = [
        Item(name=s.path, class_name=s.class_name, split="all", fold=None, group=s.group)
        for s in found.sources
    ]
    gathered = Gathered(
        path=path,
        kind="folder",
        classes=list(found.classes),
        items=items,
        pixels=lambda i: decode_rgb(read_image_file(path / items[i].name), 1, items[i].name),
        source_sizes=[(s.width, s.height) for s in found.sources],
    )
    if found.grouped_by:
        gathered.notes.append(f"groups: by {found.grouped_by}")
    gathered.notes += [f"left out {p}: {why}" for p, why in found.skipped]
    gathered.notes += [f"identical files: {', '.join(d)}" for d in found.duplicates]
    return gathered


def _gather_annotated(
    path: Path,
    annotations: str | Path,
    fmt: str,
    names: str | Path | None,
    group_regex: str | None,
    segmentation: bool = False,
) -> Gathered:
    from augtool.annotations import read_annotations
    from augtool.engine.groups import compile_group_regex, group_of
    from augtool.store.decode import decode_rgb, read_image_file

    regex = compile_group_regex(group_regex)
    if segmentation:
        from augtool.engine.mask_outlines import read_input_masks

        found = read_input_masks(fmt, annotations, path, names)
    else:
        found = read_annotations(fmt, annotations, path, names)
    if not found.images and not found.problems:
        raise InputError(f"{annotations}: no annotated image of {path}")
    usable = found.images
    items = [
        Item(
            name=b.image,
            class_name="images",
            split="all",
            fold=None,
            group=group_of(b.image, regex),
        )
        for b in usable
    ]
    return Gathered(
        path=path,
        kind="annotated",
        classes=["images"],
        items=items,
        pixels=lambda i: decode_rgb(read_image_file(path / items[i].name), 1, items[i].name),
        source_sizes=[(b.width, b.height) for b in usable],
        box_classes=list(found.classes),
        boxes=dict(enumerate(usable)),
        masks=segmentation,
        problems=list(found.problems),
        unannotated=list(found.unannotated),
        notes=[str(w) for w in found.warnings],
    )
