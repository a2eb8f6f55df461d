"""Which cells ``augtool cells`` cuts: windows around boxes, the caps, the reasons left out.

Pure decisions on annotated boxes (:func:`plan_cells`): a window (or the box
with a margin) around each object, the cells that would show another object
or be cut by the border left out as the options say, and the per-smear and
per-class caps drawn by a stable key, so the same annotations give the same
cells in any order.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from augtool.annotations import AnnotationSet, Box, ImageBoxes
from augtool.errors import InputError, Message, OptionError, literal

if TYPE_CHECKING:
    from augtool.tools.cells import CellOptions


#: ``--exclude-overlap`` value meaning every other class.
ANY_CLASS = "all"


#: Reasons a cell is left out by the per-smear and per-class caps.
OVER_MAX_PER_SMEAR = Message("over {max_per_smear}")


OVER_MAX_PER_CLASS = Message("over {max_per_class}")


def folder_name_problem(name: str) -> str:
    """Why a class name cannot be a folder name, or ''."""
    if name in (".", "..") or name.startswith("."):
        return "starts with a dot (a hidden or special folder)"
    if "/" in name or "\\" in name or "\0" in name:
        return "holds a path separator"
    if name != name.strip():
        return "starts or ends with a space"
    return ""


@dataclass(frozen=True)
class Cell:
    """One cell to cut.

    Attributes:
        smear: The smear image, relative to SMEARS.
        box: The object's box.
        class_name: Output class (after renaming).
        window: ``(x0, y0, x1, y1)`` integer crop in smear pixels.
        name: Output path inside OUT.
    """

    smear: str
    box: Box
    class_name: str
    window: tuple[int, int, int, int]
    name: str


def window_around(box: Box, side: int, width: int, height: int) -> tuple[int, int, int, int]:
    """A ``side x side`` window centred on the box, shifted inward at the border.

    Args:
        box: The object.
        side: Window side in pixels, at most the image's shorter side.
        width: Image width.
        height: Image height.

    Returns:
        ``(x0, y0, x1, y1)`` integer pixel edges inside the image.
    """
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    x0 = min(max(math.floor(cx - side / 2 + 0.5), 0), width - side)
    y0 = min(max(math.floor(cy - side / 2 + 0.5), 0), height - side)
    return x0, y0, x0 + side, y0 + side


def square_around(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The box grown by ``margin`` of its longer side on each side, squared.

    The square is centred on the box, shifted inward at the border and never
    larger than the image's shorter side (a box that large is cut).

    Returns:
        ``(x0, y0, x1, y1)`` integer pixel edges inside the image.
    """
    side = max(box.width, box.height) * (1 + 2 * margin)
    side_px = min(max(math.ceil(side - 1e-9), 1), width, height)
    return window_around(box, side_px, width, height)


def overlaps(window: tuple[int, int, int, int], box: Box) -> bool:
    """True when the window and the box share some area."""
    x0, y0, x1, y1 = window
    return min(x1, box.x1) > max(x0, box.x0) and min(y1, box.y1) > max(y0, box.y0)


def stable_key(text: str) -> int:
    """A 64-bit integer of a text, the same on every machine and run (seed material)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def choose(items: Sequence[Cell], cap: int | None, seed: int, *key: str) -> list[Cell]:
    """At most ``cap`` of ``items`` (in their order), chosen by a generator of (seed, key).

    The generator comes from ``SeedSequence([seed, *stable_key(k)])``, so the
    choice in one smear or class never depends on any other.
    """
    if cap is None or len(items) <= cap:
        return list(items)
    rng = np.random.default_rng(np.random.SeedSequence([seed, *(stable_key(k) for k in key)]))
    keep = np.sort(rng.choice(len(items), size=cap, replace=False))
    return [items[int(i)] for i in keep]


def smear_stem(image: str) -> str:
    """The smear's name in cell file names: its path without suffix, ``/`` as ``__``."""
    return str(PurePosixPath(image).with_suffix("")).replace("/", "__")


def plan_cells(
    annotations: AnnotationSet, options: CellOptions
) -> tuple[list[Cell], dict[str, int]]:
    """Choose the cells and their windows (pure: no files).

    Args:
        annotations: Images with valid boxes.
        options: The run's options (validated, classes known).

    Returns:
        The cells, sorted by (class, smear, object), and the number of objects
        dropped per reason.
    """
    rename = dict(options.rename)
    keep = set(options.classes) if options.classes is not None else None
    excluded = set(options.exclude_overlap)
    ext = "png" if options.image_format == "png" else "jpg"
    dropped: Counter[str] = Counter()
    candidates: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for item in annotations.images:
        for box in item.boxes:
            if keep is not None and box.label not in keep:
                dropped["class not selected"] += 1
                continue
            reason = _drop_reason(box, item, options)
            if reason:
                dropped[reason] += 1
                continue
            class_name = rename.get(box.label, box.label)
            if options.crop == "window":
                window = window_around(box, options.window, item.width, item.height)
            else:
                window = square_around(box, options.margin, item.width, item.height)
            if excluded and _overlaps_other(window, box, class_name, item, excluded, rename):
                dropped["window overlaps another class"] += 1
                continue
            name = f"{class_name}/{smear_stem(item.image)}_{box.index + 1:03d}_{class_name}.{ext}"
            candidates[(class_name, item.image)].append(
                Cell(item.image, box, class_name, window, name)
            )
    candidates = _one_cell_per_window(candidates, dropped)
    by_class: dict[str, list[Cell]] = defaultdict(list)
    for (class_name, smear), cells in sorted(candidates.items()):
        chosen = choose(cells, options.max_per_smear, options.seed, "smear", smear, class_name)
        dropped[OVER_MAX_PER_SMEAR] += len(cells) - len(chosen)
        by_class[class_name].extend(chosen)
    out: list[Cell] = []
    for class_name in sorted(by_class):
        cells = by_class[class_name]
        chosen = choose(cells, options.max_per_class, options.seed, "class", class_name)
        dropped[OVER_MAX_PER_CLASS] += len(cells) - len(chosen)
        out.extend(chosen)
    return out, {k: v for k, v in dropped.items() if v}


def _one_cell_per_window(
    candidates: dict[tuple[str, str], list[Cell]], dropped: Counter[str]
) -> dict[tuple[str, str], list[Cell]]:
    """Objects in one corner of a smear share the window shifted inward.

    Cells of one class with the same window would be identical files: the
    first is kept. A window shared by cells of different classes would be one
    image under two labels, with neither object in its centre: all are dropped.
    """
    classes_of: dict[tuple[str, tuple[int, int, int, int]], set[str]] = defaultdict(set)
    for (class_name, smear), cells in candidates.items():
        for c in cells:
            classes_of[(smear, c.window)].add(class_name)
    kept: dict[tuple[str, str], list[Cell]] = {}
    for key, cells in candidates.items():
        seen: set[tuple[int, int, int, int]] = set()
        kept[key] = []
        for c in cells:
            if len(classes_of[(c.smear, c.window)]) > 1:
                dropped["same window as a cell of another class"] += 1
            elif c.window in seen:
                dropped["same window as another cell of its class"] += 1
            else:
                seen.add(c.window)
                kept[key].append(c)
    return kept


def _drop_reason(box: Box, item: ImageBoxes, options: CellOptions) -> str:
    if options.border == "drop-truncated" and box.truncated:
        return Message("flagged truncated ({border} drop-truncated)")
    if options.border == "drop-touching" and (
        box.truncated or box.touches_border(item.width, item.height)
    ):
        return Message("cut by or touching the border ({border} drop-touching)")
    if min(box.width, box.height) < options.min_size:
        return Message("smaller than {min_size}")
    return ""


def _overlaps_other(
    window: tuple[int, int, int, int],
    box: Box,
    class_name: str,
    item: ImageBoxes,
    excluded: set[str],
    rename: dict[str, str],
) -> bool:
    for other in item.boxes:
        if other is box or rename.get(other.label, other.label) == class_name:
            continue
        if (ANY_CLASS in excluded or other.label in excluded) and overlaps(window, other):
            return True
    return False


def check_classes(annotations: AnnotationSet, options: CellOptions) -> None:
    """Class options must name classes the annotations have.

    Raises:
        OptionError: Naming the option and the known classes.
    """
    known = set(annotations.classes)
    listing = ", ".join(annotations.classes) or "none"
    named = [
        ("classes", options.classes or ()),
        ("rename", [old for old, _ in options.rename]),
        ("exclude_overlap", [c for c in options.exclude_overlap if c != ANY_CLASS]),
    ]
    for option, classes in named:
        unknown = [c for c in classes if c not in known]
        if unknown:
            raise OptionError(
                option,
                f"no class {', '.join(repr(c) for c in unknown)} in the annotations "
                f"(they have: {listing})",
            )
    rename = dict(options.rename)
    bad = []
    for label in annotations.classes:
        if label in rename:
            continue
        problem = folder_name_problem(label)
        if problem and (options.classes is None or label in options.classes):
            bad.append(f"{label!r} {problem}")
    if bad:
        raise InputError(
            "class names that cannot be folder names: "
            + literal("; ".join(bad))
            + "; give them other names with {rename} OLD=NEW",
            refs=True,
        )
