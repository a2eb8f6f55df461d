"""Tight boxes from masks against hull boxes, on rotated generated cells.

A box rotated with its image becomes the hull of its rotated corners, larger
than the object; the box of the rotated mask is tight. This script measures
both against the true box on the cells of ``augtool synth`` scenes, whose exact
outlines are known:

* true box: the cell's analytic outline (its shape's polar formula, sampled
  at 720 angles), mapped by the rotation's output matrix, its extremes;
* hull box: the cell's box in the source (its mask's pixel edges, what a COCO
  ``bbox`` says) mapped by :func:`augtool.ops.targets.map_boxes`, as detection
  outputs are made now;
* mask box (raster): the box of the mask resampled at nearest neighbour
  (:func:`augtool.ops.mask_geometry.map_bitmap`: RLE and PNG masks);
* mask box (polygon): the box of the mask's pixel-edge outline mapped exactly
  (:func:`augtool.ops.mask_geometry.map_polygons`: COCO and YOLO polygons).

It prints the mean IoU of each with the true box, per cell kind and angle.

Usage: python experiments/mask_boxes.py [--images 10] [--size 640x480] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

import numpy as np

from augtool.annotations.masks import mask_to_polygons, to_bitmap
from augtool.ops.mask_geometry import map_bitmap, map_points, map_polygons, mask_box, polygons_box
from augtool.ops.targets import map_boxes
from augtool.pipeline.builtins import output_matrix
from augtool.tools.smear.shapes import Blob
from augtool.tools.smear.truth import cell_instances
from augtool.tools.synth import CLASSES, image_rng, sample_scene

ANGLES = (10.0, 25.0, 45.0)


def outline(blob: Blob, samples: int = 720) -> np.ndarray:
    """Points of a blob's outline (where its coverage is one half), ``(samples, 2)``."""
    theta = np.linspace(0.0, 2 * math.pi, samples, endpoint=False)
    radius = np.full_like(theta, blob.radius)
    for k, a, phase in blob.harmonics:
        radius += blob.radius * a * np.cos(k * theta + phase)
    u, v = radius * np.cos(theta), radius * np.sin(theta) * blob.aspect
    c, s = math.cos(blob.angle), math.sin(blob.angle)
    return np.stack([blob.cx + u * c - v * s, blob.cy + u * s + v * c], axis=1)


def box_iou(a: tuple, b: tuple) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def cells_of(scene) -> list[tuple[str, Blob, object]]:
    """``(kind, outline blob, instance)`` of every cell wholly inside the image."""
    blobs = [c.shape for c in scene.red_cells] + list(scene.platelets)
    blobs += [w.body for w in scene.white_cells]
    width, height = scene.size
    found = []
    for instance in cell_instances(scene):
        blob = blobs[instance.index]
        reach = blob.reach()
        inside = reach <= blob.cx <= width - reach and reach <= blob.cy <= height - reach
        if inside:
            found.append((instance.label, blob, instance))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10, help="Scenes per class.")
    parser.add_argument("--size", default="640x480", help="Scene size WIDTHxHEIGHT.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    scores: dict[tuple[str, float], list[tuple[float, float, float]]] = defaultdict(list)
    for class_index, cls in enumerate(CLASSES):
        for i in range(args.images):
            scene = sample_scene(cls, image_rng(args.seed, class_index, i), size)
            for kind, blob, instance in cells_of(scene):
                group = kind if kind in ("red cell", "platelet") else "white cell"
                mask = to_bitmap(instance.shape, *size)
                parts = list(mask_to_polygons(mask))
                source_box = np.array([mask_box(mask)])
                for angle in ANGLES:
                    matrix = output_matrix("rotate", {"angle": angle}, size, size)
                    rect = (0.0, 0.0, float(size[0]), float(size[1]))
                    truth = polygons_box([map_points(outline(blob), matrix)])
                    hull = tuple(map_boxes(source_box, matrix, size, 0.0)[0][0])
                    raster = mask_box(map_bitmap(mask, matrix, size))
                    polygon = polygons_box(map_polygons(parts, matrix, rect)[0])
                    scores[group, angle].append(
                        (box_iou(truth, hull), box_iou(truth, raster), box_iou(truth, polygon))
                    )
    print(
        f"Scenes: {args.images} per class at {size[0]}x{size[1]}, seed {args.seed}; "
        "each rotated on its enlarged canvas, resized back to the scene size."
    )
    print("Mean IoU with the true box (the rotated outline's extremes):")
    print(
        f"{'cells':<11} {'angle':>5} {'n':>5} {'hull box':>9} {'mask raster':>12} "
        f"{'mask polygon':>13}"
    )
    totals: dict[float, list] = defaultdict(list)
    for (group, angle), rows in sorted(scores.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hull, raster, polygon = np.mean(rows, axis=0)
        totals[angle] += rows
        print(
            f"{group:<11} {angle:>5g} {len(rows):>5} {hull:>9.3f} {raster:>12.3f} {polygon:>13.3f}"
        )
    for angle, rows in sorted(totals.items()):
        hull, raster, polygon = np.mean(rows, axis=0)
        print(
            f"{'all':<11} {angle:>5g} {len(rows):>5} {hull:>9.3f} {raster:>12.3f} {polygon:>13.3f}"
        )


if __name__ == "__main__":
    main()
