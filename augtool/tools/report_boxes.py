"""The report's sections on boxes: their sizes and places, and the health of the annotations.

Box statistics per class (sizes, aspect, where they lie in the image) and the
checks a curator wants before training a detector: tiny boxes, near
duplicates (two boxes of one object), boxes touching the border, classes far
from their median size.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from augtool.annotations import Box, ImageBoxes, Problem
from augtool.drawing import class_hex
from augtool.tools.report_gather import (
    MAX_EXAMPLES,
    Gathered,
)
from augtool.tools.report_items import (
    MAX_PLOT_WIDTH,
    Plot,
    Section,
    Table,
    Text,
    as_number,
    class_marker,
    label_inches,
    legend_item,
    legend_size,
    new_figure,
    plot_item,
    side_legend,
)

#: Two boxes of one class in one image overlapping this much (IoU) are near-duplicates.
NEAR_DUPLICATE_IOU = 0.7


#: A box with a shorter side than this (pixels) is tiny.
TINY_SIDE = 8


#: ... and so is a box under this fraction of its class's median area.
TINY_AREA_FRACTION = 1 / 16

#: Heatmap panels in a row; more classes wrap to further rows.
HEATMAP_COLUMNS = 4


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
                as_number(round(float(np.min(np.minimum(w, h))))),
                as_number(round(float(np.max(np.maximum(w, h))))),
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
            g.objects,
            "images with it",
            "per image",
            "median size (px)",
            "smallest side",
            "largest side",
        ],
        rows,
    )
    legend_width, legend_height = legend_size(classes)
    fig = new_figure(
        min(MAX_PLOT_WIDTH, 7.0 + label_inches(classes) + legend_width),
        max(3.2, 0.26 * len(classes) + 1.0, legend_height + 0.3),
    )
    ax1, ax2 = fig.subplots(1, 2, width_ratios=(2, 3))
    for k, c in enumerate(classes):
        ax1.barh(k, per_class[c], color=class_hex(k))
        ax2.scatter(
            widths[c],
            heights[c],
            s=6,
            alpha=0.35,
            color=class_hex(k),
            marker=class_marker(k),
            label=c,
        )
    ax1.set_yticks(range(len(classes)), classes)
    ax1.invert_yaxis()
    ax1.set_xlabel(g.objects)
    ax1.set_title(f"{g.objects} per class", fontsize=10)
    ax2.set_xlabel("box width (px)")
    ax2.set_ylabel("box height (px)")
    ax2.set_title("sizes of the masks' boxes" if g.masks else "box sizes", fontsize=10)
    side_legend(fig, ax2, markerscale=2.5)
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
    aspects = [item.height / item.width for item in g.boxes.values()]
    heat = _heatmaps(classes, centres, float(np.median(aspects)) if aspects else 0.75, g.objects)
    return Section(
        "boxes",
        "Instances" if g.masks else "Boxes",
        [legend_item(classes), table, plot_item(fig, f"{g.objects} per class and box sizes"), heat],
        f"{sum(per_class.values())} {g.objects} in {n_images} images",
    )


def _heatmaps(
    classes: Sequence[str],
    centres: dict[str, list[tuple[float, float]]],
    aspect: float,
    objects: str = "boxes",
) -> Plot:
    """Where box centres sit in their image: all classes, then each class.

    The panels run in rows of :data:`HEATMAP_COLUMNS`, so that many classes
    keep them readable; a class name too long for its panel's title puts the
    count on a second line.

    Args:
        classes: Object classes, in colour order.
        centres: Box centres as fractions of the image's width and height, by class.
        aspect: Height / width of the images (the panels' shape).
        objects: What the boxes are called (``boxes``, or ``instances`` of masks).
    """
    panels = [("all classes", [p for c in classes for p in centres[c]])]
    panels += [(c, centres[c]) for c in classes]
    columns = min(len(panels), HEATMAP_COLUMNS)
    rows = -(-len(panels) // columns)
    wrap = any(label_inches([f"{t}: {len(p)} {objects}"], 9.5) > 2.3 for t, p in panels)
    sep = "\n" if wrap else ": "  # a long class name: the count on a line of its own
    fig = new_figure(2.5 * columns, rows * (2.2 * aspect + (0.75 if wrap else 0.6)))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    bins = (max(4, round(32 * aspect)), 32)
    for ax, (title, points) in zip(axes, panels, strict=False):
        grid = np.zeros(bins)
        if points:
            xy = np.array(points)
            grid, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=bins, range=((0, 1), (0, 1)))
        ax.imshow(grid, cmap="magma", extent=(0, 1, 1, 0), aspect=aspect, interpolation="nearest")
        ax.set_title(f"{title}{sep}{len(points)} {objects}", fontsize=9.5)
        ax.set_xticks([0, 0.5, 1])
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(labelsize=8)
    return plot_item(
        fig,
        "heatmap of box centres",
        "Where box centres sit, as fractions of the image's width (x) and height (y); "
        "each panel is scaled to its own most crowded cell (brighter = more boxes).",
    )


def health_section(g: Gathered) -> Section | None:
    """Annotation faults: zero-area, outside, duplicate and near-duplicate, tiny boxes."""
    if not g.detection:
        return None
    images, scope = _health_scope(g)
    checks = annotation_health(g.box_classes, images, g.problems)
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
    boxes, box = ("instance boxes", "instance box") if g.masks else ("boxes", "box")
    blocks.insert(
        0,
        Text(
            f"{faults} faulty or suspicious {boxes}." if faults else f"No faulty {box} found.", tone
        ),
    )
    if scope:
        blocks.insert(1, Text(scope))
    return Section("health", "Annotation health", blocks, f"{faults} findings")


def _health_scope(g: Gathered) -> tuple[list[ImageBoxes], str]:
    """The images whose boxes the health checks read, and a sentence when not all.

    In an expand output every copy carries its source's boxes, moved with its
    pixels: a source's fault would be counted again in each copy, so the checks
    read the originals, one per source.
    """
    originals = [boxes for i, boxes in g.boxes.items() if g.items[i].transform == "original"]
    if not originals or len(originals) == len(g.boxes):
        return list(g.boxes.values()), ""
    copies = len(g.boxes) - len(originals)
    return originals, (
        f"Checked on the {len(originals)} originals, one per source: the {copies} "
        f"augmented copies carry their sources' {g.objects}, moved with the pixels, and would "
        "repeat each source's findings."
    )


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
