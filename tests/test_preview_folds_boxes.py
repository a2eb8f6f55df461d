"""`augtool preview` of a fold dataset: a column per fold; of a detection output: its boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from augtool.drawing import CLASS_COLOURS, class_rgb, colour_of
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.tools import dataset_grid as dg
from augtool.tools import tiles as tl


def test_a_fold_dataset_gets_one_column_group_per_fold(make_raw, tmp_path: Path) -> None:
    out = tmp_path / "folds"
    expand(make_raw({"A": 6, "B": 6}), out, ExpandOptions(target=36, size=32, workers=1, folds=3))
    grid, tiles = dg.dataset_grid(out, per_cell=2)
    groups = 3
    width = tl.ROW_LABEL_WIDTH + groups * (2 * 32 + tl.GAP) + (groups - 1) * tl.GROUP_GAP
    assert grid.shape[1] == width + 2 * tl.GAP and tiles == groups * 2 * 2


def test_column_groups_split_folds_and_the_rest() -> None:
    splits = np.array(["train", "train", "train", "test"], dtype=object)
    folds = np.array([0, 1, 1, -1])
    groups = dg.column_groups(splits, folds)
    assert [title for title, _ in groups] == ["train fold 0", "train fold 1", "test"]
    assert [mask.tolist() for _, mask in groups][1] == [False, True, True, False]
    assert [t for t, _ in dg.column_groups(splits[:3], folds[:3])] == ["fold 0", "fold 1"]
    assert [t for t, _ in dg.column_groups(splits, None)] == ["train", "test"]


def test_a_detection_grid_draws_boxes_and_a_legend(tmp_path: Path) -> None:
    from tests.test_detect import make_detection_raw, options

    raw, location = make_detection_raw(tmp_path, "voc")
    out = tmp_path / "det"
    expand(raw, out, options("voc", location, factor=1))
    grid, _ = dg.dataset_grid(out, per_cell=2)
    top = tl.TITLE_HEIGHT + tl.LEGEND_HEIGHT
    tiles = grid[top + tl.HEADER_HEIGHT :]
    # RBC is class 0 of ["RBC", "WBC"]: its colour is on the tiles, and in the legend strip
    for index in (0, 1):
        assert np.all(tiles == class_rgb(index), axis=2).sum() > 50
        legend = grid[tl.TITLE_HEIGHT : top]
        assert np.all(legend == class_rgb(index), axis=2).sum() >= 13 * 13


def test_one_colour_per_class_position() -> None:
    assert colour_of("WBC", ["Platelets", "RBC", "WBC"]) == class_rgb(2)
    assert class_rgb(len(CLASS_COLOURS)) == class_rgb(0)
    assert len({rgb for _, rgb in CLASS_COLOURS}) == len(CLASS_COLOURS)
