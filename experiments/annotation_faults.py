"""Survey the faults of an annotated smear set (BCCD's VOC boxes by default).

Prints what ``augtool cells`` refuses (problems) and repairs (clipped boxes),
and faults no reader can call errors but a curator should know: the same
object boxed twice with slightly different corners, ``<truncated>`` flags that
disagree with the box touching the border, and smears without or with several
white cells. Figures of docs/cells.md come from this script.

Usage: python experiments/annotation_faults.py [SMEARS] [ANNOTATIONS] [--format voc]
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from itertools import combinations
from pathlib import Path

from augtool.annotations import read_annotations
from augtool.annotations.base import Box

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    h = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = w * h
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("smears", nargs="?", default=str(DATA / "bccd-smears"))
    parser.add_argument("annotations", nargs="?", default=str(DATA / "bccd-annotations"))
    parser.add_argument("--format", default="voc", choices=["voc", "coco", "yolo"])
    parser.add_argument("--iou", type=float, default=0.7, help="Near-duplicate threshold.")
    args = parser.parse_args()

    found = read_annotations(args.format, args.annotations, args.smears)
    boxes = [(item, b) for item in found.images for b in item.boxes]
    print(f"{len(found.images)} annotated images, {len(boxes)} valid boxes")
    print("boxes per class:", dict(sorted(Counter(b.label for _, b in boxes).items())))
    for label in sorted({b.label for _, b in boxes}):
        sides = [min(b.width, b.height) for _, b in boxes if b.label == label]
        print(
            f"  {label}: shorter side median {statistics.median(sides):.0f} px, "
            f"min {min(sides):.0f}, max {max(sides):.0f}"
        )
    outliers = []
    for label in sorted({b.label for _, b in boxes}):
        median = statistics.median(min(b.width, b.height) for _, b in boxes if b.label == label)
        outliers += [
            (i, b)
            for i, b in boxes
            if b.label == label and min(b.width, b.height) < median / 2 and not b.truncated
        ]
    print(
        f"boxes not cut by the border, shorter side below half their class median: {len(outliers)}"
    )
    for i, b in outliers:
        print(
            f"  {Path(i.annotation).name}, {b.where}: {b.label} "
            f"{b.width:g}x{b.height:g} px at ({b.x0:g}, {b.y0:g})"
        )
    print(f"\nproblems (refused; --skip-invalid leaves them out): {len(found.problems)}")
    for p in found.problems:
        print(f"  {p}")
    print(f"boxes clipped to their image (warnings): {len(found.warnings)}")
    for w in found.warnings:
        print(f"  {w}")
    print(f"images without annotation: {len(found.unannotated)}")

    near = []
    for item in found.images:
        for a, b in combinations(item.boxes, 2):
            if a.label == b.label and iou(a, b) >= args.iou:
                near.append((item.annotation, a, b, iou(a, b)))
    print(f"\nsame-class box pairs with IoU >= {args.iou} (one object boxed twice?): {len(near)}")
    for file, a, b, v in near:
        print(f"  {Path(file).name}: {a.label} {a.where} and {b.where}, IoU {v:.2f}")

    flagged_inside = [
        (i, b) for i, b in boxes if b.truncated and not b.touches_border(i.width, i.height)
    ]
    touching_unflagged = [
        (i, b) for i, b in boxes if not b.truncated and b.touches_border(i.width, i.height)
    ]
    print(
        f"\n<truncated>1 but the box does not reach the border: {len(flagged_inside)}; "
        f"reaches the border but <truncated>0: {len(touching_unflagged)} "
        f"(of {sum(b.truncated for _, b in boxes)} flagged)"
    )
    for i, b in flagged_inside[:10]:
        print(
            f"  {Path(i.annotation).name}, {b.where}: {b.label} {b.x0:g},{b.y0:g},{b.x1:g},{b.y1:g}"
        )

    wbc = Counter({item.image: sum(b.label == "WBC" for b in item.boxes) for item in found.images})
    print("\nsmears by number of WBC boxes:", dict(sorted(Counter(wbc.values()).items())))
    for image, n in sorted(wbc.items()):
        if n != 1:
            print(f"  {image}: {n}")


if __name__ == "__main__":
    main()
