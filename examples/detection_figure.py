"""Draw augmented smears of a detection output with the boxes written beside them.

The boxes are read back from the annotation files ``augtool expand
--annotations`` wrote (through augtool's own readers), not recomputed, so the
picture shows what a detector would be trained on: one tile per transform, the
first output of each (in name order) of one split. Run from the repository
root, after a detection expand::

    python examples/detection_figure.py OUT --annotation-format voc [--subset train]
        [--tile 260] [--columns 4] [--save docs/img/detection_boxes.png]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from augtool.annotations import read_annotations
from augtool.engine.detection import ANNOTATION_FOLDER, IMAGES
from augtool.pipeline.builtins import ORIGINAL, PAPER
from augtool.pipeline.steps import PCA
from augtool.tools.tiles import LEGEND_HEIGHT, draw_boxes, draw_legend

LABEL_HEIGHT = 22
GAP = 6
WHITE = 255


def first_of_each_transform(out: Path, split: str) -> list[tuple[str, str]]:
    """``(transform, image name)`` of the first output of each transform in a split, table order."""
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["name"])
    chosen: dict[str, str] = {}
    for row in rows:
        if row["split"] == split and row["transform"] not in chosen:
            chosen[row["transform"]] = row["name"].rsplit("/", 1)[-1]
    order = [ORIGINAL.name, *PAPER, PCA]
    return sorted(chosen.items(), key=lambda item: order.index(item[0]))


def figure(out: Path, fmt: str, split: str, tile: int, columns: int) -> np.ndarray:
    """The picture as an RGB array: tiles ``tile`` px wide, at the images' aspect ratio."""
    folder = out / split
    ann = folder / (ANNOTATION_FOLDER[fmt] or "annotations.json")
    found = read_annotations(fmt, ann, folder / IMAGES)
    if found.problems:
        raise SystemExit("\n".join(str(p) for p in found.problems))
    boxes = {item.image: item for item in found.images}
    classes = sorted(found.classes)  # as expand records them: each class's colour
    tiles = []
    for transform, name in first_of_each_transform(out, split):
        rgb = cv2.cvtColor(cv2.imread(str(folder / IMAGES / name)), cv2.COLOR_BGR2RGB)
        draw_boxes(rgb, boxes[name].boxes, classes)
        height = round(tile * rgb.shape[0] / rgb.shape[1])
        small = cv2.resize(rgb, (tile, height), interpolation=cv2.INTER_AREA)
        strip = np.full((LABEL_HEIGHT, tile, 3), WHITE, np.uint8)
        text = f"{transform}: {len(boxes[name].boxes)} boxes"
        cv2.putText(strip, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.vstack([strip, small]))
    blank = np.full_like(tiles[0], WHITE)
    tiles += [blank] * (-len(tiles) % columns)
    rows = []
    for r in range(0, len(tiles), columns):
        parts = []
        for t in tiles[r : r + columns]:
            parts += [t, np.full((t.shape[0], GAP, 3), WHITE, np.uint8)]
        rows.append(np.hstack(parts[:-1]))
    width = rows[0].shape[1]
    spaced = []
    for row in rows:
        spaced += [row, np.full((GAP, width, 3), WHITE, np.uint8)]
    legend = np.full((LABEL_HEIGHT + 4 + LEGEND_HEIGHT, width, 3), WHITE, np.uint8)
    draw_legend(legend, classes, 4, LABEL_HEIGHT + 2, width - 8)
    cv2.putText(
        legend,
        f"{out.name}/{split}: boxes read back from the {fmt} files",
        (4, 18),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return np.vstack([legend, *spaced[:-1]])


def main() -> None:
    """Parse the arguments, draw, save as a 256-colour PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a detection output of augtool expand")
    parser.add_argument(
        "--annotation-format", dest="fmt", choices=["voc", "coco", "yolo"], required=True
    )
    parser.add_argument("--subset", default="train", help="the split to draw from")
    parser.add_argument("--tile", type=int, default=260)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--save", type=Path, default=Path("docs/img/detection_boxes.png"))
    args = parser.parse_args()
    picture = figure(args.out, args.fmt, args.subset, args.tile, args.columns)
    Image.fromarray(picture).quantize(256).save(args.save, optimize=True)
    print(f"wrote {args.save} ({picture.shape[1]}x{picture.shape[0]} px)")


if __name__ == "__main__":
    main()
