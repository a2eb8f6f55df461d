"""The mixed recipe (built-ins with albumentations steps) and the comparison of outputs,
shared by tests/test_recipes.py and tests/test_dask.py (which runs it on its cluster)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.conftest import tree_hashes


def images_and_manifest(out: Path) -> dict[str, str]:
    """SHA-256 of every file of a folder output but augtool.json, by relative path."""
    hashes = tree_hashes(out)
    hashes.pop("augtool.json")  # creation time, command line, and the recipe itself
    return hashes


def albumentations_json() -> dict[str, str]:
    """Serialized (A.to_dict) forms of the three albumentations steps of the mixed recipe."""
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    A = pytest.importorskip("albumentations")
    return {
        "hsv": json.dumps(A.to_dict(A.HueSaturationValue(p=1.0))),
        "noise": json.dumps(A.to_dict(A.GaussNoise(std_range=(0.05, 0.15), p=1.0))),
        "pipe": json.dumps(
            A.to_dict(
                A.Compose(
                    [
                        A.RandomBrightnessContrast(p=1.0),
                        A.HorizontalFlip(p=0.5),
                        A.GaussianBlur(blur_limit=(3, 5), p=1.0),
                    ]
                )
            )
        ),
    }


def mixed_recipe(path: Path) -> Path:
    """Built-ins mixed with A.HueSaturationValue, A.GaussNoise and an A.Compose."""
    a = albumentations_json()
    path.write_text(
        textwrap.dedent(
            f"""\
            name = "mixed"

            [[transform]]
            name = "rotate"
            rotate_range = [-20.0, 20.0]

            [[transform]]
            name = "hsv"
            albumentations = '''{a["hsv"]}'''

            [[transform]]
            name = "noise_a"
            albumentations = '''{a["noise"]}'''
            at = "work"

            [[transform]]
            name = "pipe"
            albumentations = '''{a["pipe"]}'''

            [[transform]]
            name = "hue"
            shift_range = [-10.0, 10.0]
            """
        )
    )
    return path
