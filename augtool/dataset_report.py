"""``augtool report``: one HTML page that shows a dataset to the curator who judges it.

The page is self-contained: its CSS is inline, it runs no script, and every
picture (plots, thumbnails) is embedded as a ``data:`` URI, so it opens offline
and can be mailed or archived as one file. It reads four kinds of input:

* an ``augtool expand`` output, folder or HDF5 (read with
  :func:`augtool.store.dataset.open_dataset`, checked with :func:`augtool.engine.verify.verify`);
* a detection output of ``expand --annotations`` (the same, plus the boxes read
  back from the annotation files written beside the images);
* a folder of class folders (``RAW/<class>/<image>``), such as the output of
  ``augtool cells`` (groups from its ``cells.csv``);
* a folder of annotated images (smears) with their VOC, COCO or YOLO annotations.

Reading and drawing are separate. :func:`gather` turns the input into a
:class:`Gathered`; each entry of :data:`SECTIONS` is a function that takes the
:class:`Gathered` and returns a :class:`Section` of tables, plots, thumbnails
and text (or ``None`` when it does not apply), and :func:`render_page` fills the
template ``report_page.html`` with them. Adding a section is one function
added to :data:`SECTIONS`.

Plots are drawn with matplotlib (``matplotlib.figure.Figure``, no pyplot and
no global state) and the page with jinja2, autoescaping every value, so a file
name or class name from the data can never become markup. Both are the
optional extra ``report`` and are imported here only, when a report is made.
Class colours come from :mod:`augtool.drawing`, as in ``augtool preview``.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import platform
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augtool import __version__
from augtool.annotations import Box, ImageBoxes, Problem
from augtool.drawing import class_hex
from augtool.errors import AugtoolError, InputError, OptionError, OutputError, literal

#: How to install what the report needs, quoted in the error when it is missing.
EXTRA = "pip install -e '.[report]'  (or pip install matplotlib jinja2)"
#: Longest side of a thumbnail, pixels.
THUMB_SIDE = 150
#: Sample thumbnails per class for a folder of images or of annotated smears.
SAMPLES_PER_CLASS = 8
#: Two boxes of one class in one image overlapping this much (IoU) are near-duplicates.
NEAR_DUPLICATE_IOU = 0.7
#: A box with a shorter side than this (pixels) is tiny.
TINY_SIDE = 8
#: ... and so is a box under this fraction of its class's median area.
TINY_AREA_FRACTION = 1 / 16
#: Faults listed by name in the annotation health table; beyond this, a count.
MAX_EXAMPLES = 12
#: Template of the page, beside this module.
TEMPLATE = "report_page.html"


# --- the page's building blocks -----------------------------------------------------------


@dataclass
class Table:
    """A table: a header row and rows of cells.

    A cell is text, a number (a column of numbers is right-aligned) or a list
    of lines.
    """

    header: list[str]
    rows: list[list[Any]]
    caption: str = ""
    kind: str = "table"

    def column_class(self, index: int) -> str:
        """``num`` for a column of numbers, ``long`` for one of lists, else ''."""
        cells = [row[index] for row in self.rows if index < len(row) and row[index] != ""]
        if cells and all(isinstance(c, int | float) and not isinstance(c, bool) for c in cells):
            return "num"
        return "long" if any(isinstance(c, list) for c in cells) else ""


@dataclass
class Plot:
    """A picture drawn by matplotlib, embedded as a PNG ``data:`` URI."""

    uri: str
    alt: str
    caption: str = ""
    kind: str = "plot"


@dataclass
class Thumb:
    """One thumbnail: a ``data:`` URI and its label lines."""

    uri: str
    label: str
    detail: str = ""


@dataclass
class Thumbs:
    """A grid of thumbnails: one row per ``(row label, thumbnails)``, columns titled."""

    columns: list[str]
    rows: list[tuple[str, list[Thumb | None]]]
    caption: str = ""
    kind: str = "thumbs"


@dataclass
class Text:
    """A paragraph (``tone`` ``ok``, ``bad`` or '' colours it)."""

    text: str
    tone: str = ""
    kind: str = "text"


@dataclass
class Pre:
    """Preformatted text (a command line, a recipe)."""

    text: str
    caption: str = ""
    kind: str = "pre"


@dataclass
class Legend:
    """Class colours: ``(class, #rrggbb)`` pairs."""

    entries: list[tuple[str, str]]
    kind: str = "legend"


@dataclass
class Section:
    """One part of the page: a title, an anchor, and its blocks in order."""

    key: str
    title: str
    blocks: list[Any]
    summary: str = ""


# --- what a dataset is, once read ---------------------------------------------------------


@dataclass
class Item:
    """One image of the dataset as the report counts it.

    Attributes:
        name: Its path (manifest name, or relative to the folder).
        class_name: Its class (``images`` for detection data).
        split: Its split (``all`` when none).
        fold: Its cross-validation fold, or None.
        group: Its split group (smear, patient, or the image itself).
        transform: ``original``, a transform name, ``pca``; '' for raw images.
    """

    name: str
    class_name: str
    split: str
    fold: int | None
    group: str
    transform: str = ""


@dataclass
class Gathered:
    """Everything the sections draw from.

    Attributes:
        path: The dataset given.
        kind: ``expand``, ``detection``, ``folder`` or ``annotated``.
        classes: Image class names, in label order (each class's colour).
        items: One entry per image.
        pixels: Returns the RGB array of item ``i``.
        attrs: The run's recorded ``augtool.json`` (empty when there is none).
        source_sizes: ``(width, height)`` of each source image, when known.
        sizes_note: Why the source sizes are not known, when they are not.
        box_classes: Object class names, in colour order (detection data).
        boxes: Boxes of the images that have annotations, by item index.
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
    problems: list[Problem] = field(default_factory=list)
    unannotated: list[str] = field(default_factory=list)
    verify_lines: list[str] = field(default_factory=list)
    verify_ok: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def detection(self) -> bool:
        """True when the images carry boxes."""
        return self.kind in ("detection", "annotated")

    def splits(self) -> list[str]:
        """Split names present, in table order (train, val, test, ...)."""
        from augtool.summary import sort_splits

        return sort_splits(i.split for i in self.items)

    def folds(self) -> list[int]:
        """Cross-validation folds present (empty without folds)."""
        return sorted({i.fold for i in self.items if i.fold is not None})


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes:
        out: The HTML file.
        kind: The kind of dataset (see :class:`Gathered`).
        images: Images counted.
        sections: Titles of the sections on the page.
        bytes: Size of the page.
    """

    out: Path
    kind: str
    images: int
    sections: tuple[str, ...]
    bytes: int


# --- reading --------------------------------------------------------------------------------


def gather(
    path: str | Path,
    annotations: str | Path | None = None,
    annotation_format: str | None = None,
    names: str | Path | None = None,
    raw: str | Path | None = None,
    group_regex: str | None = None,
    run_verify: bool = True,
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

    Returns:
        The dataset as the sections see it.

    Raises:
        InputError: If ``path`` is none of the four kinds or cannot be read.
        OptionError: For options that do not fit the input.
    """
    from augtool.preview import detect_kind

    path = Path(path)
    if annotations is not None:
        if annotation_format is None:
            raise OptionError(
                "annotation_format", "give the annotations' format: voc, coco or yolo"
            )
        if raw is not None:
            raise OptionError("raw", "applies to an expand output, not to annotated images")
        return _gather_annotated(path, annotations, annotation_format, names, group_regex)
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
    if isinstance(record, dict) and path.is_dir():
        from augtool.engine.detection import read_output_boxes

        gathered.kind = "detection"
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
    from augtool.summary import verify_ok_line, verify_problem_lines

    report = verify(gathered.path)
    gathered.verify_ok = report.ok
    if report.ok:
        gathered.verify_lines = [verify_ok_line(report)]
    else:
        gathered.verify_lines = verify_problem_lines(report, MAX_EXAMPLES * 4)


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
) -> Gathered:
    from augtool.annotations import read_annotations
    from augtool.engine.groups import compile_group_regex, group_of
    from augtool.store.decode import decode_rgb, read_image_file

    regex = compile_group_regex(group_regex)
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
        problems=list(found.problems),
        unannotated=list(found.unannotated),
        notes=[str(w) for w in found.warnings],
    )


# --- drawing helpers ------------------------------------------------------------------------


def _require_extra() -> None:
    """Refuse early, naming the extra, when matplotlib or jinja2 is missing.

    Raises:
        AugtoolError: If either cannot be imported.
    """
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise AugtoolError(
            f"the report needs matplotlib and jinja2 ({err.name} is missing): {EXTRA}"
        ) from err


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _plot(fig: Any, alt: str, caption: str = "") -> Plot:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return Plot(_data_uri(buf.getvalue(), "image/png"), alt, caption)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail(rgb: np.ndarray, boxes: Sequence[Box] = (), classes: Sequence[str] = ()) -> str:
    """A JPEG ``data:`` URI of an image shrunk to ``THUMB_SIDE`` px, boxes drawn in class colours.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB.
        boxes: Boxes in the image's pixels.
        classes: The class list that gives each box its colour.
    """
    import cv2

    from augtool.preview import draw_boxes

    height, width = rgb.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
    if boxes:
        draw_boxes(small, boxes, classes, scale=scale, thickness=1)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    if not ok:
        raise OutputError("OpenCV could not encode a thumbnail")
    return _data_uri(buf.tobytes(), "image/jpeg")


def _legend(classes: Sequence[str]) -> Legend:
    return Legend([(c, class_hex(i)) for i, c in enumerate(classes)])


def _bars(
    categories: Sequence[str],
    classes: Sequence[str],
    counts: dict[tuple[str, str], int],
    alt: str,
    stacked: bool = False,
    ylabel: str = "images",
) -> Plot:
    """Bars per category (x) and class (colour)."""
    per_category = 0.7 if stacked else 0.35 * max(2, len(classes))
    fig = _figure(min(11.0, max(4.5, per_category * len(categories) + 1.5)), 2.6)
    ax = fig.add_subplot()
    x = np.arange(len(categories))
    width = 0.8 if stacked else 0.8 / max(1, len(classes))
    bottom = np.zeros(len(categories))
    for k, cls in enumerate(classes):
        values = np.array([counts.get((cat, cls), 0) for cat in categories], dtype=float)
        where = x if stacked else x - 0.4 + width * (k + 0.5)
        ax.bar(
            where, values, width, bottom=bottom if stacked else None, label=cls, color=class_hex(k)
        )
        if stacked:
            bottom += values
    ax.set_xticks(x, list(categories))
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    if len(classes) > 1:
        ax.legend(
            frameon=False, ncols=min(len(classes), 5), loc="upper left", bbox_to_anchor=(0, 1.18)
        )
    return _plot(fig, alt)


def _number(value: float) -> int | float:
    """An integral float as an int (a median of 12.0 shown as 12)."""
    return int(value) if float(value).is_integer() else round(value, 1)


def _count_table(
    categories: Sequence[str],
    classes: Sequence[str],
    counts: dict[tuple[str, str], int],
    first: str,
) -> Table:
    rows = []
    for cat in categories:
        values = [counts.get((cat, c), 0) for c in classes]
        rows.append([cat, *values, sum(values)])
    totals = [sum(counts.get((cat, c), 0) for cat in categories) for c in classes]
    rows.append(["total", *totals, sum(totals)])
    return Table([first, *classes, "total"], rows)


# --- the sections ---------------------------------------------------------------------------


def counts_section(g: Gathered) -> Section:
    """Images per split, per fold, and per class; boxes per split and class."""
    blocks: list[Any] = []
    splits = g.splits()
    counts = Counter((i.split, i.class_name) for i in g.items)
    folds = g.folds()
    if len(splits) > 1:
        blocks.append(_count_table(splits, g.classes, counts, "split"))
        if len(g.classes) > 1:
            blocks.append(_bars(splits, g.classes, counts, "images per split and class"))
    elif g.detection:
        blocks.append(Table(["split", "images"], [[s, len(g.items)] for s in splits]))
    else:
        per_class = Counter(i.class_name for i in g.items)
        rows: list[list[Any]] = [[c, per_class[c]] for c in g.classes]
        blocks.append(Table(["class", "images"], [*rows, ["total", len(g.items)]]))
        if len(g.classes) > 1 and not folds:
            blocks.append(_bars(["all"], g.classes, counts, "images per class"))
    if folds:
        names = [f"fold {k}" for k in folds]
        by_fold = Counter((f"fold {i.fold}", i.class_name) for i in g.items if i.fold is not None)
        table = _count_table(names, g.classes, by_fold, "fold")
        table.caption = "Images per cross-validation fold."
        plot = _bars(names, g.classes, by_fold, "images per fold and class", stacked=True)
        blocks += [table, plot]
    if g.detection:
        boxes: Counter[tuple[str, str]] = Counter()
        for index, item in g.boxes.items():
            for b in item.boxes:
                boxes[(g.items[index].split, b.label)] += 1
        table = _count_table(splits, g.box_classes, boxes, "split")
        table.caption = "Boxes per split and class."
        blocks.append(table)
        if len(splits) > 1:
            plot = _bars(splits, g.box_classes, boxes, "boxes per split and class", ylabel="boxes")
            blocks.append(plot)
    summary = f"{len(g.items)} images"
    if len(g.classes) > 1:
        summary += f", {len(g.classes)} classes"
    if folds:
        summary += f", {len(folds)} folds"
    return Section("counts", "Counts", blocks, summary)


def groups_section(g: Gathered) -> Section:
    """Groups (smears, patients) per split and fold, and whether any sits on two sides."""
    what = "smears" if g.kind == "annotated" else "groups"
    parts: list[tuple[str, list[Item]]] = [
        (s, [i for i in g.items if i.split == s]) for s in g.splits()
    ]
    parts += [(f"fold {k}", [i for i in g.items if i.fold == k]) for k in g.folds()]
    rows = []
    for name, members in parts:
        per_group = Counter(i.group for i in members)
        sizes = sorted(per_group.values())
        rows.append(
            [
                name,
                len(per_group),
                len(members),
                sizes[0] if sizes else 0,
                _number(float(np.median(sizes))) if sizes else 0,
                sizes[-1] if sizes else 0,
            ]
        )
    blocks: list[Any] = [
        Table(["part", what, "images", "images per group: min", "median", "max"], rows)
    ]
    sides: dict[str, set[str]] = defaultdict(set)
    for i in g.items:
        sides[i.group].add(i.split)
    shared = sorted(k for k, v in sides.items() if len(v) > 1)
    split_by = g.attrs.get("split_by")
    if len(g.splits()) > 1:
        if shared:
            tone = "" if split_by == "image" else "bad"
            blocks.append(
                Text(
                    f"{len(shared)} groups have images in more than one split: "
                    + ", ".join(shared[:10]),
                    tone,
                )
            )
        else:
            blocks.append(Text("No group has images in two splits.", "ok"))
    fold_sides: dict[str, set[int]] = defaultdict(set)
    for i in g.items:
        if i.fold is not None:
            fold_sides[i.group].add(i.fold)
    if fold_sides:
        crossing = sorted(k for k, v in fold_sides.items() if len(v) > 1)
        if crossing:
            blocks.append(
                Text(
                    f"{len(crossing)} groups have images in two folds: {', '.join(crossing[:10])}",
                    "bad",
                )
            )
        else:
            blocks.append(Text("No group has images in two folds.", "ok"))
    sizes = np.array(list(Counter(i.group for i in g.items).values()))
    if sizes.min() == sizes.max():
        each = "1 image" if sizes[0] == 1 else f"{sizes[0]} images"
        blocks.append(Text(f"Every group has {each}."))
        return Section("groups", "Groups", blocks, f"{len(sides)} {what}")
    fig = _figure(4.6, 2.4)
    ax = fig.add_subplot()
    ax.hist(sizes, bins=min(30, max(1, len(set(sizes.tolist())))), color="#5b6b7a")
    ax.set_xlabel("images per group")
    ax.set_ylabel(what)
    ax.spines[["top", "right"]].set_visible(False)
    blocks.append(_plot(fig, "histogram of images per group"))
    blocks += [Text(n) for n in g.notes if n.startswith("groups:")]
    return Section("groups", "Groups", blocks, f"{len(sides)} {what}")


def transforms_section(g: Gathered) -> Section | None:
    """Outputs per transform and class (expand outputs)."""
    if g.kind not in ("expand", "detection"):
        return None
    names = _transform_order({i.transform for i in g.items})
    counts = Counter((i.transform, i.class_name) for i in g.items)
    table = _count_table(names, g.classes, counts, "transform")
    fig = _figure(5.5, 0.24 * len(names) + 0.9)
    ax = fig.add_subplot()
    left = np.zeros(len(names))
    y = np.arange(len(names))
    for k, cls in enumerate(g.classes):
        values = np.array([counts.get((t, cls), 0) for t in names], dtype=float)
        ax.barh(y, values, left=left, color=class_hex(k), label=cls)
        left += values
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.spines[["top", "right"]].set_visible(False)
    if len(g.classes) > 1:
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return Section(
        "transforms",
        "Outputs per transform",
        [table, _plot(fig, "outputs per transform and class")],
    )


def _transform_order(present: set[str]) -> list[str]:
    from augtool.pipeline.builtins import PAPER
    from augtool.pipeline.steps import ORIGINAL_NAME, PCA

    order = [ORIGINAL_NAME, *PAPER, PCA]
    return [t for t in order if t in present] + sorted(present - set(order))


def samples_section(g: Gathered, seed: int = 0) -> Section:
    """A random sample per class and transform (or several per class), boxes drawn."""
    rng = np.random.default_rng(seed)
    by_cell: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, item in enumerate(g.items):
        by_cell[(item.class_name, item.transform)].append(index)
    rows: list[tuple[str, list[Thumb | None]]] = []
    if g.kind in ("expand", "detection"):
        columns = _transform_order({i.transform for i in g.items})
        for cls in g.classes:
            thumbs: list[Thumb | None] = []
            for t in columns:
                members = by_cell.get((cls, t))
                thumbs.append(None if not members else _thumb(g, int(rng.choice(members)), t))
            rows.append((cls, thumbs))
        caption = "One random output of each class and transform (seed 0)."
    else:
        columns = []
        for cls in g.classes:
            members = by_cell.get((cls, ""), [])
            chosen = sorted(
                rng.choice(members, min(SAMPLES_PER_CLASS, len(members)), replace=False).tolist()
            )
            rows.append((cls, [_thumb(g, int(i)) for i in chosen]))
        caption = f"Up to {SAMPLES_PER_CLASS} random images per class (seed 0)."
    blocks: list[Any] = []
    if g.detection:
        blocks.append(_legend(g.box_classes))
        caption += " Boxes in their class colour."
    blocks.append(Thumbs(columns, rows, caption))
    return Section("samples", "Samples", blocks)


def _thumb(g: Gathered, index: int, label: str = "") -> Thumb:
    """Item ``index`` as a thumbnail titled ``label`` (default: its file name)."""
    item = g.items[index]
    boxes = g.boxes.get(index)
    rgb = g.pixels(index)
    uri = thumbnail(rgb, boxes.boxes if boxes else (), g.box_classes)
    name = Path(item.name).name
    if boxes is not None:
        detail = f"{len(boxes.boxes)} boxes · {name}" if label else f"{len(boxes.boxes)} boxes"
    else:
        detail = name if label else f"{rgb.shape[1]}×{rgb.shape[0]}"
    return Thumb(uri, label or name, detail)


def sizes_section(g: Gathered) -> Section:
    """Source image sizes and aspect ratios."""
    if not g.source_sizes:
        return Section("sizes", "Image sizes", [Text(g.sizes_note or "no source sizes known")])
    sizes = np.array(g.source_sizes, dtype=float)
    counts = Counter(g.source_sizes)
    rows = [[f"{w}×{h}", n, f"{w / h:.2f}"] for (w, h), n in counts.most_common(10)]
    if len(counts) > 10:
        rows.append(
            [f"{len(counts) - 10} other sizes", sum(n for _, n in counts.most_common()[10:]), ""]
        )
    summary = f"{len(sizes)} sources, {len(counts)} distinct sizes"
    table = Table(["size", "sources", "aspect"], rows)
    if len(counts) == 1:
        (w, h), _ = counts.most_common(1)[0]
        text = Text(f"All {len(sizes)} sources are {w}×{h} px (aspect ratio {w / h:.2f}).")
        return Section("sizes", "Source image sizes", [table, text], summary)
    fig = _figure(8.0, 2.8)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(sizes[:, 0], sizes[:, 1], s=14, alpha=0.5, color="#34495e")
    ax1.set_xlabel("width (px)")
    ax1.set_ylabel("height (px)")
    ax1.set_title("size of each source", fontsize=10)
    ax2.hist(sizes[:, 0] / sizes[:, 1], bins=30, color="#34495e")
    ax2.set_xlabel("aspect ratio (width / height)")
    ax2.set_ylabel("sources")
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
    return Section("sizes", "Source image sizes", [table, _plot(fig, "source sizes")], summary)


def boxes_section(g: Gathered) -> Section | None:
    """Boxes per class, their sizes and where their centres sit."""
    if not g.detection:
        return None
    per_class: Counter[str] = Counter()
    widths: dict[str, list[float]] = defaultdict(list)
    heights: dict[str, list[float]] = defaultdict(list)
    centres: dict[str, list[tuple[float, float]]] = defaultdict(list)
    images_with: Counter[str] = Counter()
    for item in g.boxes.values():
        for label in {b.label for b in item.boxes}:
            images_with[label] += 1
        for b in item.boxes:
            per_class[b.label] += 1
            widths[b.label].append(b.width)
            heights[b.label].append(b.height)
            centres[b.label].append(
                ((b.x0 + b.x1) / 2 / item.width, (b.y0 + b.y1) / 2 / item.height)
            )
    classes = g.box_classes
    n_images = len(g.boxes)
    rows = []
    for c in classes:
        w, h = np.array(widths[c] or [0.0]), np.array(heights[c] or [0.0])
        rows.append(
            [
                c,
                per_class[c],
                images_with[c],
                f"{per_class[c] / max(1, n_images):.1f}",
                f"{np.median(w):.0f}×{np.median(h):.0f}",
                _number(round(float(np.min(np.minimum(w, h))))),
                _number(round(float(np.max(np.maximum(w, h))))),
            ]
        )
    rows.append(
        [
            "total",
            sum(per_class.values()),
            n_images,
            f"{sum(per_class.values()) / max(1, n_images):.1f}",
            "",
            "",
            "",
        ]
    )
    table = Table(
        [
            "class",
            "boxes",
            "images with it",
            "per image",
            "median size (px)",
            "smallest side",
            "largest side",
        ],
        rows,
    )
    fig = _figure(8.0, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    for k, c in enumerate(classes):
        ax1.bar(k, per_class[c], color=class_hex(k))
        ax2.scatter(widths[c], heights[c], s=6, alpha=0.35, color=class_hex(k), label=c)
    ax1.set_xticks(range(len(classes)), classes)
    ax1.set_ylabel("boxes")
    ax1.set_title("boxes per class", fontsize=10)
    ax2.set_xlabel("box width (px)")
    ax2.set_ylabel("box height (px)")
    ax2.set_title("box sizes", fontsize=10)
    ax2.legend(frameon=False, markerscale=2.5)
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
    aspects = [item.height / item.width for item in g.boxes.values()]
    heat = _heatmaps(classes, centres, float(np.median(aspects)) if aspects else 0.75)
    return Section(
        "boxes",
        "Boxes",
        [_legend(classes), table, _plot(fig, "boxes per class and box sizes"), heat],
        f"{sum(per_class.values())} boxes in {n_images} images",
    )


def _heatmaps(
    classes: Sequence[str], centres: dict[str, list[tuple[float, float]]], aspect: float
) -> Plot:
    """Where box centres sit in their image: all classes, then each class.

    Args:
        classes: Object classes, in colour order.
        centres: Box centres as fractions of the image's width and height, by class.
        aspect: Height / width of the images (the panels' shape).
    """
    panels = [("all classes", [p for c in classes for p in centres[c]])]
    panels += [(c, centres[c]) for c in classes]
    fig = _figure(2.5 * len(panels), 2.5 * aspect + 0.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    bins = (max(4, round(32 * aspect)), 32)
    for ax, (title, points) in zip(axes, panels, strict=True):
        grid = np.zeros(bins)
        if points:
            xy = np.array(points)
            grid, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=bins, range=((0, 1), (0, 1)))
        ax.imshow(grid, cmap="magma", extent=(0, 1, 1, 0), aspect=aspect, interpolation="nearest")
        ax.set_title(f"{title}: {len(points)} boxes", fontsize=9.5)
        ax.set_xticks([0, 0.5, 1])
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(labelsize=8)
    return _plot(
        fig,
        "heatmap of box centres",
        "Where box centres sit, as fractions of the image's width (x) and height (y); "
        "each panel is scaled to its own most crowded cell (brighter = more boxes).",
    )


def health_section(g: Gathered) -> Section | None:
    """Annotation faults: zero-area, outside, duplicate and near-duplicate, tiny boxes."""
    if not g.detection:
        return None
    checks = annotation_health(g.box_classes, list(g.boxes.values()), g.problems)
    rows = []
    for check in checks:
        most = MAX_EXAMPLES if check.fault else 3
        examples = check.examples[:most]
        if len(check.examples) > most:
            examples = [*examples, f"and {len(check.examples) - most} more"]
        rows.append([check.title, len(check.examples), check.meaning, examples])
    faults = sum(len(c.examples) for c in checks if c.fault)
    blocks: list[Any] = [Table(["check", "found", "what it means", "where"], rows)]
    if g.unannotated:
        shown = ", ".join(g.unannotated[:MAX_EXAMPLES])
        blocks.append(
            Text(
                f"{len(g.unannotated)} images have no annotation and are not counted: {shown}",
                "bad",
            )
        )
    tone = "ok" if faults == 0 else "bad"
    blocks.insert(
        0, Text(f"{faults} faulty or suspicious boxes." if faults else "No faulty box found.", tone)
    )
    return Section("health", "Annotation health", blocks, f"{faults} findings")


@dataclass
class Check:
    """One row of the annotation health table."""

    title: str
    meaning: str
    examples: list[str]
    fault: bool = True


def annotation_health(
    classes: Sequence[str], images: Sequence[ImageBoxes], problems: Sequence[Problem]
) -> list[Check]:
    """The annotation health checks of a set of annotated images.

    Args:
        classes: Object class names.
        images: The images with their valid boxes.
        problems: The faults the annotation readers found (boxes they refused).

    Returns:
        One :class:`Check` per kind of fault, each listing where it was found.
    """
    by_kind: dict[str, list[str]] = defaultdict(list)
    for p in problems:
        by_kind[p.kind or "file"].append(str(p))
    clipped, truncated, near, tiny = [], [], [], []
    medians = _median_areas(images)
    for item in images:
        for b in item.boxes:
            where = f"{item.image}, {b.where}"
            if b.clipped:
                clipped.append(f"{where} ({b.label})")
            if b.truncated:
                truncated.append(f"{where} ({b.label})")
            area = b.width * b.height
            if min(b.width, b.height) < TINY_SIDE or area < medians[b.label] * TINY_AREA_FRACTION:
                tiny.append(f"{where}: {b.label} {b.width:.0f}×{b.height:.0f} px")
        near += [f"{item.image}: {text}" for text in near_duplicates(item.boxes)]
    return [
        Check(
            "zero area",
            "a box with no width or height (a click without a drag); left out",
            by_kind["zero_area"],
        ),
        Check("outside the image", "a box wholly outside its image; left out", by_kind["outside"]),
        Check("partly outside", "a box reaching past the image edge; clipped to it", clipped),
        Check("corners swapped", "max below min; left out", by_kind["swapped"]),
        Check(
            "exact duplicate",
            "the same object boxed twice (same class and corners); one left out",
            by_kind["repeat"],
        ),
        Check(
            "near duplicate",
            f"two boxes of one class overlapping by IoU ≥ {NEAR_DUPLICATE_IOU:g}: "
            "likely one object boxed twice",
            near,
        ),
        Check(
            "tiny",
            f"a side under {TINY_SIDE} px, or under 1/{round(1 / TINY_AREA_FRACTION)} "
            "of its class's median area",
            tiny,
        ),
        Check(
            "unreadable or inconsistent",
            "a file or image that could not be used; left out",
            by_kind["file"],
        ),
        Check(
            "flagged truncated",
            "the annotation says the object is cut by the border (not a fault)",
            truncated,
            False,
        ),
    ]


def _median_areas(images: Sequence[ImageBoxes]) -> dict[str, float]:
    areas: dict[str, list[float]] = defaultdict(list)
    for item in images:
        for b in item.boxes:
            areas[b.label].append(b.width * b.height)
    return defaultdict(float, {k: float(np.median(v)) for k, v in areas.items()})


def near_duplicates(boxes: Sequence[Box], threshold: float = NEAR_DUPLICATE_IOU) -> list[str]:
    """Pairs of boxes of one class whose IoU is at least ``threshold`` (exact repeats included).

    Returns:
        One line per pair: ``RBC object 3 and object 7, IoU 0.91``.
    """
    if len(boxes) < 2:
        return []
    xy = np.array([[b.x0, b.y0, b.x1, b.y1] for b in boxes])
    area = (xy[:, 2] - xy[:, 0]) * (xy[:, 3] - xy[:, 1])
    ix = np.clip(
        np.minimum(xy[:, None, 2], xy[None, :, 2]) - np.maximum(xy[:, None, 0], xy[None, :, 0]),
        0,
        None,
    )
    iy = np.clip(
        np.minimum(xy[:, None, 3], xy[None, :, 3]) - np.maximum(xy[:, None, 1], xy[None, :, 1]),
        0,
        None,
    )
    inter = ix * iy
    iou = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-12)
    labels = np.array([b.label for b in boxes])
    same = labels[:, None] == labels[None, :]
    first, second = np.nonzero(np.triu((iou >= threshold) & same, k=1))
    return [
        f"{boxes[i].label} {boxes[i].where} and {boxes[j].where}, IoU {iou[i, j]:.2f}"
        for i, j in zip(first.tolist(), second.tolist(), strict=True)
    ]


def provenance_section(g: Gathered) -> Section:
    """How the dataset was made: command, seed, recipe, versions (from ``augtool.json``)."""
    attrs = g.attrs
    if not attrs:
        text = {
            "folder": "A folder of images: no augtool.json records how it was made.",
            "annotated": "Annotated images as they came: no augtool.json records their making.",
        }.get(g.kind, "No provenance recorded.")
        return Section("provenance", "Provenance", [Text(text)])
    rows = []
    for key in ("created_utc", "tool_version", "seed", "size", "format", "split_by", "folds"):
        if attrs.get(key) not in (None, 0, ""):
            rows.append([key, _short(attrs[key])])
    versions = attrs.get("versions")
    if isinstance(versions, dict):
        rows += [[f"version of {k}", _short(v)] for k, v in versions.items()]
    blocks: list[Any] = []
    if "command_line" in attrs:
        blocks.append(Pre(str(attrs["command_line"]), "Command"))
    blocks.append(Table(["recorded", "value"], rows))
    if "recipe" in attrs:
        blocks.append(Pre(json.dumps(attrs["recipe"], indent=2, ensure_ascii=False), "Recipe"))
    made = str(attrs.get("created_utc", "")).replace("T", " ").removesuffix("Z")
    return Section("provenance", "Provenance", blocks, f"{made} UTC" if made else "")


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + " …"


def verify_section(g: Gathered) -> Section:
    """The result of ``augtool verify`` on the dataset."""
    if g.verify_ok is None:
        kind = "a folder of class folders" if g.kind == "folder" else "a folder of annotated images"
        text = Text(f"verify was not run: it checks expand outputs, and this is {kind}.")
        return Section("verify", "Verify", [text])
    if g.verify_ok:
        return Section("verify", "Verify", [Text(g.verify_lines[0], "ok")], "ok")
    return Section(
        "verify",
        "Verify",
        [Text("verify found problems:", "bad"), Pre("\n".join(g.verify_lines))],
        "problems",
    )


#: The page's sections, in order. Each takes the :class:`Gathered` dataset and
#: returns a :class:`Section`, or None when it does not apply to the input.
SECTIONS: tuple[Callable[[Gathered], Section | None], ...] = (
    counts_section,
    groups_section,
    transforms_section,
    samples_section,
    sizes_section,
    boxes_section,
    health_section,
    # Test-set reads (the ledger, ``augtool.store.ledger.read_test_reads``) come here:
    # one more section function, placed before the provenance.
    provenance_section,
    verify_section,
)


# --- the page -------------------------------------------------------------------------------


def build_sections(
    g: Gathered, sections: Sequence[Callable[[Gathered], Section | None]] = SECTIONS
) -> list[Section]:
    """Run the section functions on a gathered dataset; those that apply, in order."""
    _require_extra()
    return [s for s in (make(g) for make in sections) if s is not None]


def render_page(g: Gathered, sections: Sequence[Section], command: str = "") -> str:
    """The HTML page of a gathered dataset.

    Args:
        g: The dataset.
        sections: Its sections (:func:`build_sections`).
        command: The command line that made the report (shown at the foot).

    Returns:
        The page, one self-contained HTML document.
    """
    _require_extra()
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("augtool", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template(TEMPLATE)
    kinds = {
        "expand": "expand output",
        "detection": "detection output of expand",
        "folder": "folder of class folders",
        "annotated": "annotated images",
    }
    facts = [("images", str(len(g.items))), ("classes", ", ".join(g.classes))]
    if g.detection:
        facts.append(("box classes", ", ".join(g.box_classes)))
    facts.append(("splits", ", ".join(g.splits())))
    if g.folds():
        facts.append(("folds", str(len(g.folds()))))
    if g.verify_ok is not None:
        facts.append(("verify", "ok" if g.verify_ok else "problems"))
    return template.render(
        title=g.path.name or str(g.path),
        path=str(g.path),
        kind=kinds[g.kind],
        facts=facts,
        legend=None if g.detection or len(g.classes) < 2 else _legend(g.classes),
        sections=list(sections),
        command=command,
        made=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        python=platform.python_version(),
    )


def write_report(
    path: str | Path,
    out: str | Path,
    *,
    annotations: str | Path | None = None,
    annotation_format: str | None = None,
    names: str | Path | None = None,
    raw: str | Path | None = None,
    group_regex: str | None = None,
    overwrite: bool = False,
    command: str = "",
) -> ReportResult:
    """Read a dataset and write its report page.

    Args:
        path: The dataset (see :func:`gather`).
        out: The ``.html`` file to write (atomically).
        annotations: See :func:`gather`.
        annotation_format: See :func:`gather`.
        names: See :func:`gather`.
        raw: See :func:`gather`.
        group_regex: See :func:`gather`.
        overwrite: Replace ``out`` if it exists.
        command: The command line, shown on the page.

    Returns:
        What was written.

    Raises:
        InputError: If the dataset cannot be read.
        OptionError: For options that do not fit the input, or ``out`` not ending in ``.html``.
        OutputError: If ``out`` exists (without ``overwrite``) or cannot be written.
        AugtoolError: If matplotlib or jinja2 is not installed.
    """
    from augtool.store.publish import write_bytes

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise OptionError("out", f"must be an .html file, got {out}")
    if out.is_dir():
        raise OutputError(f"{out} is a folder; give a file name ending in .html")
    if out.exists() and not overwrite:
        raise OutputError(f"{literal(out)} exists; pass {{overwrite}} to replace it", refs=True)
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: no such folder")
    _require_extra()
    g = gather(path, annotations, annotation_format, names, raw, group_regex)
    sections = build_sections(g)
    data = render_page(g, sections, command).encode("utf-8")
    try:
        write_bytes(out, data)
    except OSError as err:
        raise OutputError(f"writing {out} failed: {err.strerror or err}") from err
    return ReportResult(out, g.kind, len(g.items), tuple(s.title for s in sections), len(data))
