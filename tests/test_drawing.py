"""Text on pictures is ASCII, so every supported OpenCV draws every glyph.

OpenCV 5.0's ``sans`` font drew "σ"; 5.1 draws "?" in its place, and OpenCV 4's
Hershey fonts draw nothing outside ASCII. These tests record every string that
augtool, model/ and the figure scripts hand to ``cv2.putText``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest

from augtool.drawing import ascii_label
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.tools import dataset_grid as dg
from augtool.tools import preview as pv
from model.report import confusion_image, curves_image
from tests.conftest import write_image

REPO = Path(__file__).resolve().parents[1]


def _printable(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("σ = 5.1 px", "sigma = 5.1 px"),
        ("+23.4° (ccw)", "+23.4 deg (ccw)"),
        ("640×480 · seed 0", "640x480 | seed 0"),
        ("Plättchen", "Plattchen"),
        ("细胞\n", "???"),
        ("plain ASCII stays", "plain ASCII stays"),
    ],
)
def test_ascii_label(text: str, expected: str) -> None:
    assert ascii_label(text) == expected
    assert _printable(ascii_label(text))


@pytest.fixture
def drawn(monkeypatch) -> list[str]:
    """Every text passed to ``cv2.putText`` while the test runs."""
    texts: list[str] = []
    original = cv2.putText

    def recording(img, text, *args, **kwargs):
        texts.append(text)
        return original(img, text, *args, **kwargs)

    monkeypatch.setattr(cv2, "putText", recording)
    return texts


def test_every_label_of_sheets_and_grids_is_ascii(drawn: list[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    for cls in ("Plättchen", "normal"):
        for i in range(2):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            write_image(raw / cls / f"zelle_ä{i}.png", image)
    pv.contact_sheet(raw / "Plättchen" / "zelle_ä0.png", size=48)
    expand(raw, tmp_path / "out", ExpandOptions(size=32, target=8, workers=1))
    dg.dataset_grid(tmp_path / "out", per_cell=1)
    assert drawn, "nothing was drawn"
    assert any("sigma =" in text for text in drawn)  # the blur tile's label
    assert any("deg (" in text for text in drawn)  # the rotation's
    assert [t for t in drawn if not _printable(t)] == []


def test_every_label_of_the_training_figures_is_ascii(drawn: list[str]) -> None:
    report = {
        "confusion": [[3, 1], [0, 4]],
        "class_names": ["Plättchen", "σ-cells"],
        "accuracy": 0.875,
        "n": 8,
    }
    confusion_image(report)
    curves_image([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "train_accuracy": 0.5}])
    assert drawn
    assert [t for t in drawn if not _printable(t)] == []


def test_no_literal_outside_ascii_reaches_put_text() -> None:
    """The figure scripts (examples/, experiments/, ...) pass literal text or names: ASCII only."""
    offenders = []
    for folder in ("augtool", "model", "examples", "benchmarks", "experiments", "checks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for call in ast.walk(tree):
                named = isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "putText"
                if not named or len(call.args) < 2:
                    continue
                for node in ast.walk(call.args[1]):
                    text = isinstance(node, ast.Constant) and isinstance(node.value, str)
                    if text and not _printable(node.value):
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
