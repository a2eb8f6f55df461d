"""experiments/cell_windows.py: finds a window in its smear and says what it holds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from augtool.annotations.base import Box

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "cell_windows", ROOT / "experiments" / "cell_windows.py"
)
cell_windows = importlib.util.module_from_spec(_spec)
sys.modules["cell_windows"] = cell_windows  # dataclasses look their module up
_spec.loader.exec_module(cell_windows)


def _box(x0: float, y0: float, x1: float, y1: float, label: str) -> Box:
    return Box(x0, y0, x1, y1, label, index=0, where="object 0")


def test_locate_finds_a_window_shifted_at_the_border() -> None:
    rng = np.random.default_rng(0)
    smear = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    window = smear[0:64, 96:160].copy()  # shifted to the top-right corner
    assert cell_windows.locate(window, smear) == (96, 0)


def test_locate_refuses_pixels_not_from_the_smear() -> None:
    rng = np.random.default_rng(1)
    smear = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    other = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="no exact match"):
        cell_windows.locate(other, smear)


def test_describe_a_platelet_window_shifted_off_its_object() -> None:
    boxes = (
        _box(80, 10, 90, 20, "Platelets"),  # the window's object, near the smear's top edge
        _box(40, 30, 80, 60, "RBC"),  # wholly inside
        _box(0, 0, 30, 30, "WBC"),  # outside the window
    )
    w = cell_windows.describe("Platelets/x.jpg", "Platelets", 32, 0, 64, boxes, (160, 120))
    assert w.shifted
    assert w.offset_px == pytest.approx(np.hypot(85 - 64, 15 - 32))
    assert w.inside == {"Platelets", "RBC"}
    assert "WBC" not in w.in_view
    assert cell_windows.rule(w) == "Platelets"


def test_rule_reads_white_cells_before_platelets_and_defaults_to_rbc() -> None:
    boxes = (_box(10, 10, 20, 20, "Platelets"), _box(50, 50, 90, 90, "WBC"))
    w = cell_windows.describe("WBC/x.jpg", "WBC", 0, 0, 64, boxes, (160, 120))
    assert w.in_view >= {"WBC", "Platelets"} and "WBC" not in w.inside
    assert cell_windows.rule(w) == "WBC"
    empty = cell_windows.describe(
        "RBC/x.jpg", "RBC", 40, 40, 64, (_box(60, 60, 90, 90, "RBC"),), (160, 120)
    )
    assert not empty.shifted and cell_windows.rule(empty) == "RBC"
