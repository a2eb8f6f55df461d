"""Where the object of each real cell window lies, and what else the window holds.

``../shared/data/bccd-cells`` was cut as 256 x 256 windows "centred on one
annotated object" of the 640 x 480 BCCD smears. A window that would reach
past the smear's edge is shifted inward, so its object is no longer at the
centre. This script finds each window in its smear (template matching: every
window is a verbatim copy of smear pixels) and, from the smear's VOC boxes,
reports per class:

* how many windows were shifted at the smear border;
* how far the nearest object of the window's own class lies from its centre;
* how many windows wholly hold an annotated object of each class.

It also scores a rule that reads the annotations, not the pixels: "a white
cell in view: WBC; else a platelet wholly in view: Platelets; else RBC". A
classifier that sees the window cannot know more than the annotations say
about which object the window was cut for, so the rule's accuracy is a guide
to what the set allows (it is not a bound: a network could find cues the
boxes do not record, or miss what they do).

Usage: python experiments/cell_windows.py [--data ../shared/data] [--csv FILE]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augtool.annotations.base import Box
from augtool.annotations.voc import read_voc

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLASSES = ("Platelets", "RBC", "WBC")


@dataclass(frozen=True)
class Window:
    """One cell window located in its smear.

    Attributes:
        image: ``<class>/<file>`` inside bccd-cells.
        label: The window's class.
        x: Left edge of the window in the smear.
        y: Top edge of the window in the smear.
        shifted: The window touches the smear's edge (it was moved inward, or its
            object lies within half a window of the edge).
        offset_px: Distance from the window centre to the centre of the nearest
            box of its own class.
        inside: Classes with at least one box wholly inside the window.
        in_view: Classes with a box that overlaps the window at all.
        nearest_platelet_px: Distance from the centre to the nearest platelet wholly
            inside, or ``None``.
    """

    image: str
    label: str
    x: int
    y: int
    shifted: bool
    offset_px: float
    inside: frozenset[str]
    in_view: frozenset[str]
    nearest_platelet_px: float | None


#: Reduction of the coarse search of :func:`locate`, and the margin (full-resolution
#: pixels) around its match that the exact search covers.
COARSE, MARGIN = 4, 12


def locate(window: np.ndarray, smear: np.ndarray) -> tuple[int, int]:
    """Top-left corner of ``window`` in ``smear``.

    Searched at 1/:data:`COARSE` resolution first, then at full resolution within
    :data:`MARGIN` pixels of that match (the full-resolution search of the whole
    smear takes about 30 ms a window); the whole smear is searched when the near
    search finds no exact match.

    Raises:
        ValueError: If the window is not a copy of the smear's pixels.
    """
    (height, width), side = smear.shape[:2], window.shape[:2]

    def shrink(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, None, fx=1 / COARSE, fy=1 / COARSE, interpolation=cv2.INTER_AREA)

    score = cv2.matchTemplate(shrink(smear), shrink(window), cv2.TM_SQDIFF_NORMED)
    cx, cy = (COARSE * v for v in cv2.minMaxLoc(score)[2])
    x0, y0 = max(0, cx - MARGIN), max(0, cy - MARGIN)
    x1, y1 = min(width - side[1], cx + MARGIN), min(height - side[0], cy + MARGIN)
    near = smear[y0 : y1 + side[0], x0 : x1 + side[1]]
    best, _, corner, _ = cv2.minMaxLoc(cv2.matchTemplate(near, window, cv2.TM_SQDIFF_NORMED))
    if best <= 1e-3:
        return x0 + int(corner[0]), y0 + int(corner[1])
    score = cv2.matchTemplate(smear, window, cv2.TM_SQDIFF_NORMED)
    best, _, corner, _ = cv2.minMaxLoc(score)
    if best > 1e-3:
        raise ValueError(f"no exact match in the smear (normalised SSD {best:.4f})")
    return int(corner[0]), int(corner[1])


def _centre_distance(box: Box, cx: float, cy: float) -> float:
    return float(np.hypot((box.x0 + box.x1) / 2 - cx, (box.y0 + box.y1) / 2 - cy))


def describe(
    image: str, label: str, x: int, y: int, side: int, boxes: tuple[Box, ...], size: tuple[int, int]
) -> Window:
    """What a ``side``-pixel window at ``(x, y)`` of a smear of ``size`` (w, h) holds."""
    cx, cy = x + side / 2, y + side / 2
    own = [b for b in boxes if b.label == label]
    whole = [b for b in boxes if b.x0 >= x and b.y0 >= y and b.x1 <= x + side and b.y1 <= y + side]
    seen = [b for b in boxes if b.x1 > x and b.y1 > y and b.x0 < x + side and b.y0 < y + side]
    platelets = [_centre_distance(b, cx, cy) for b in whole if b.label == "Platelets"]
    width, height = size
    return Window(
        image=image,
        label=label,
        x=x,
        y=y,
        shifted=x == 0 or y == 0 or x + side == width or y + side == height,
        offset_px=min(_centre_distance(b, cx, cy) for b in own),
        inside=frozenset(b.label for b in whole),
        in_view=frozenset(b.label for b in seen),
        nearest_platelet_px=min(platelets) if platelets else None,
    )


def rule(window: Window) -> str:
    """The annotation rule: WBC in view, else a platelet wholly inside, else RBC."""
    if "WBC" in window.in_view:
        return "WBC"
    if "Platelets" in window.inside:
        return "Platelets"
    return "RBC"


def locate_all(data: Path) -> list[Window]:
    """Every window of ``data/bccd-cells``, located in ``data/bccd-smears``."""
    found = read_voc(data / "bccd-annotations", data / "bccd-smears")
    smears = {Path(item.image).stem: item for item in found.images}
    windows = []
    for path in sorted((data / "bccd-cells").glob("*/*.jpg")):
        label = path.parent.name
        smear_id = "_".join(path.stem.split("_")[:2])
        window = cv2.imread(str(path))
        smear = cv2.imread(str(data / "bccd-smears" / f"{smear_id}.jpg"))
        try:
            x, y = locate(window, smear)
        except ValueError as err:
            raise SystemExit(f"{path}: {err}") from None
        item = smears[smear_id]
        windows.append(
            describe(
                f"{label}/{path.name}",
                label,
                x,
                y,
                window.shape[0],
                item.boxes,
                (item.width, item.height),
            )
        )
    return windows


def report(windows: list[Window]) -> str:
    """The per-class table, the platelet distances and the annotation rule's score."""
    lines = [
        f"{'class':<10}{'windows':>8}{'shifted':>9}{'object > 32 px off centre':>27}"
        f"{'holds Platelets / RBC / WBC wholly':>36}"
    ]
    for label in CLASSES:
        rows = [w for w in windows if w.label == label]
        held = Counter(c for w in rows for c in w.inside)
        lines.append(
            f"{label:<10}{len(rows):>8}{sum(w.shifted for w in rows):>9}"
            f"{sum(w.offset_px > 32 for w in rows):>27}"
            f"{' / '.join(str(held[c]) for c in CLASSES):>36}"
        )
    lines.append("")
    lines.append("distance from the centre to the nearest platelet wholly inside (px):")
    for label in ("Platelets", "RBC"):
        dists = sorted(
            round(w.nearest_platelet_px)
            for w in windows
            if w.label == label and w.nearest_platelet_px is not None
        )
        lines.append(
            f"  {label} windows ({len(dists)}): {dists[0]}-{dists[-1]},"
            f" median {int(np.median(dists))}"
        )
    right = Counter(w.label for w in windows if rule(w) == w.label)
    total = Counter(w.label for w in windows)
    per_class = ", ".join(f"{c} {right[c]}/{total[c]}" for c in CLASSES)
    lines.append("")
    lines.append(
        f"annotation rule (WBC in view, else a platelet wholly inside, else RBC): "
        f"{sum(right.values())}/{len(windows)} windows = "
        f"{100 * sum(right.values()) / len(windows):.1f} % ({per_class})"
    )
    return "\n".join(lines)


def main() -> None:
    """Locate every window and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--csv", type=Path, help="also write one row per window here")
    args = parser.parse_args()
    if not (args.data / "bccd-cells").is_dir():
        raise SystemExit(f"error: no bccd-cells folder in {args.data}; pass --data")
    windows = locate_all(args.data)
    print(report(windows))
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(asdict(windows[0])))
            writer.writeheader()
            for w in windows:
                row = asdict(w)
                row["inside"] = " ".join(sorted(w.inside))
                row["in_view"] = " ".join(sorted(w.in_view))
                writer.writerow(row)


if __name__ == "__main__":
    main()
