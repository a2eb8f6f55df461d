"""The grid of an ``expand`` output: random images per class and split (or fold), labelled.

One row per class, one column group per split (or per fold of a ``--folds``
output), each tile labelled with its step; a detection output's boxes, read
back from the annotation files written beside the images, are drawn on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from augtool import defaults
from augtool.errors import InputError, OptionError
from augtool.tools.tiles import (
    GAP,
    GRID_LABEL_HEIGHT,
    GROUP_GAP,
    HEADER_HEIGHT,
    INK,
    LEGEND_HEIGHT,
    MUTED,
    ROW_LABEL_WIDTH,
    TITLE_HEIGHT,
    blank_canvas,
    draw_boxes,
    draw_legend,
    draw_outlines,
    put_text,
)


def dataset_grid(
    path: str | Path, per_cell: int = defaults.DEFAULT_PER_CELL, seed: int = 0
) -> tuple[np.ndarray, int]:
    """Random outputs of an ``expand`` result: a row per class, a column group per split or fold.

    A dataset made with folds (``expand --folds``) gets one column group per
    fold (and one per split for images outside the folds); one made with
    boxes (``expand --annotations``) has them drawn on its tiles, read back
    from the annotation files beside the images, in their class colours
    (:mod:`augtool.drawing`), with a legend under the title.

    Args:
        path: Output folder or HDF5 file.
        per_cell: Images shown per (class, column group), drawn without
            replacement (all of them where the cell has fewer).
        seed: Seed of the draw.

    Returns:
        The picture, ``(TITLE_HEIGHT + L + HEADER_HEIGHT + C * (S + GRID_LABEL_HEIGHT)
        + (C + 1) * GAP, ROW_LABEL_WIDTH + P * (per_cell * W + (per_cell - 1) *
        GAP) + (P - 1) * GROUP_GAP + 2 * GAP, 3)`` uint8 RGB for C classes, P
        column groups and images S high and W wide, ``L`` = ``LEGEND_HEIGHT``
        with boxes, else 0; and the number of tiles drawn.

    Raises:
        InputError: If ``path`` is not a readable ``expand`` output, or it is empty.
        OptionError: If ``per_cell`` is out of range.
    """
    from augtool.store.dataset import open_dataset

    if not 1 <= per_cell <= 64:
        raise OptionError("per_cell", f"must be between 1 and 64, got {per_cell}")
    data = open_dataset(path)
    if len(data) == 0:
        raise InputError(f"{path}: the dataset holds no images")
    box_classes, boxes = _grid_boxes(Path(path), data.names, data.attrs)
    side, tile_w = int(data.images.shape[1]), int(data.images.shape[2])
    groups = column_groups(data.splits, data.folds)
    group_w = per_cell * tile_w + (per_cell - 1) * GAP
    cell_h = side + GRID_LABEL_HEIGHT
    n_classes = len(data.class_names)
    top = TITLE_HEIGHT + (LEGEND_HEIGHT if boxes else 0)
    grid = blank_canvas(
        top + HEADER_HEIGHT + n_classes * cell_h + (n_classes + 1) * GAP,
        ROW_LABEL_WIDTH + len(groups) * group_w + (len(groups) - 1) * GROUP_GAP + 2 * GAP,
    )
    shape = f"{side} px" if tile_w == side else f"{tile_w}x{side} px"
    about = f"{Path(path).name} | {len(data)} images | {shape} | draw seed {seed}"
    put_text(grid, about, GAP, 0, grid.shape[1] - 2 * GAP, TITLE_HEIGHT, 15, INK)
    if boxes:
        draw_legend(grid, box_classes, GAP, TITLE_HEIGHT, grid.shape[1] - 2 * GAP)
    tiles = 0
    for s, (title, in_group) in enumerate(groups):
        x0 = ROW_LABEL_WIDTH + GAP + s * (group_w + GROUP_GAP)
        header = f"{title} ({int(np.count_nonzero(in_group))})"
        put_text(grid, header, x0, top, group_w, HEADER_HEIGHT, 16, INK, center=True)
        for label in range(n_classes):
            y = top + HEADER_HEIGHT + GAP + label * (cell_h + GAP)
            members = np.flatnonzero(in_group & (data.labels == label))
            if len(members) == 0:
                put_text(grid, "(none)", x0, y, group_w, side, 14, MUTED, center=True)
                continue
            rng = np.random.default_rng([seed, s, label])
            chosen = np.sort(rng.choice(members, min(per_cell, len(members)), replace=False))
            for j, index in enumerate(chosen):
                x = x0 + j * (tile_w + GAP)
                image = data.images[index]
                item = boxes.get(data.names[index])
                if item is not None and item.outlines:
                    image = draw_outlines(image.copy(), item.outlines, box_classes)
                elif item is not None:
                    image = draw_boxes(image.copy(), item.boxes, box_classes)
                grid[y : y + side, x : x + tile_w] = image
                title = data.transforms[index]
                if item is not None and item.outlines:
                    title += f" | {len(item.boxes)} masks" if item.boxes else " | class map"
                elif item is not None:
                    title += f" | {len(item.boxes)} boxes"
                put_text(grid, title, x + 2, y + side, tile_w - 2, GRID_LABEL_HEIGHT, 13, INK)
                tiles += 1
    for label, name in enumerate(data.class_names):
        y = top + HEADER_HEIGHT + GAP + label * (cell_h + GAP)
        count = int(np.count_nonzero(data.labels == label))
        put_text(grid, name, GAP, y + side // 2 - 20, ROW_LABEL_WIDTH - GAP, 22, 16, INK)
        put_text(grid, f"{count} images", GAP, y + side // 2, ROW_LABEL_WIDTH - GAP, 20, 13, MUTED)
    return grid, tiles


def column_groups(splits: np.ndarray, folds: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """The grid's column groups: ``(title, mask)`` per split, or per fold where there are folds.

    Args:
        splits: ``(N,)`` split name of each image.
        folds: ``(N,)`` fold of each image (negative: none), or None.
    """
    from augtool.defaults import sort_splits

    groups = []
    fold_of = np.full(len(splits), -1) if folds is None else np.asarray(folds)
    for split in sort_splits(set(splits.tolist())):
        in_split = splits == split
        folded = sorted({int(f) for f in fold_of[in_split] if f >= 0})
        several = len(set(splits.tolist())) > 1
        for fold in folded:
            title = f"{split} fold {fold}" if several else f"fold {fold}"
            groups.append((title, in_split & (fold_of == fold)))
        rest = in_split & (fold_of < 0)
        if rest.any():
            groups.append((split, rest))
    return groups


def _grid_boxes(path: Path, names: Sequence[str], attrs: dict) -> tuple[list[str], dict]:
    """The classes and boxes (by image name) of a detection output; nothing for others."""
    record = attrs.get("annotations")
    if not isinstance(record, dict) or not (path.is_dir() or record.get("masks")):
        return [], {}
    from augtool.engine.detection import read_output_boxes

    classes, boxes, _ = read_output_boxes(path, names, record)
    return classes, boxes
