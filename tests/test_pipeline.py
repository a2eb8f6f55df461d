"""The one pipeline gives the old code's bytes: every step, every kind, and expand's own files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from augtool import Pipeline, StepType, load_recipe
from augtool.engine.expand import expand
from augtool.engine.options import options_from_values
from augtool.errors import OptionError
from augtool.ops.geometry import letterbox
from augtool.pipeline.builtins import PAPER, STEPS, Ranges, builtin, step_geometry
from augtool.pipeline.recipe_toml import read_recipe_file
from augtool.pipeline.settings import build_settings
from augtool.pipeline.steps import output_rng
from tests.conftest import smear_like, write_image
from tests.mixed_recipe import mixed_recipe

SHA = "5a" * 32
#: Every built-in with its default settings, in one pipeline.
EVERY = Pipeline.from_dict({"transform": [{"name": name} for name in STEPS]})


@pytest.fixture(scope="module")
def full() -> np.ndarray:
    return smear_like(np.random.default_rng(3), 150, 110)


def test_one_table_holds_every_built_in_in_the_old_order() -> None:
    assert list(STEPS) == [
        *("gray", "blur_rgb", "blur_gray", "histeq", "flip_x", "flip_y"),
        *("rotate", "translate", "shear_x", "shear_y"),
        *("brightness", "exposure", "hue", "saturation", "noise", "cutout", "rot90", "zoom"),
    ]
    assert list(PAPER) == list(STEPS)[:10]
    geometric = {"flip_x", "flip_y", "rotate", "translate", "shear_x", "shear_y"}
    assert {n for n, s in PAPER.items() if s.moves_pixels} == geometric
    assert {n for n, s in STEPS.items() if s.moves_pixels} == {*geometric, "rot90", "zoom"}
    assert all(s.carries_targets for s in STEPS.values())


@pytest.mark.parametrize("size", [64, (80, 48)])
@pytest.mark.parametrize("reduced", [False, True], ids=["full", "half"])
@pytest.mark.parametrize("name", list(STEPS))
def test_every_step_gives_the_old_draws_and_bytes(
    name: str, reduced: bool, size: int | tuple[int, int], full: np.ndarray
) -> None:
    work = np.ascontiguousarray(full[::2, ::2]) if reduced else full
    scale = (0.5, 0.5) if reduced else (1.0, 1.0)
    entry = builtin(name)
    settings = build_settings(entry, {}, name)
    for copy in (1, 2, 3):
        new = EVERY.apply(work, name, seed=7, source=SHA, copy=copy, size=size, work_scale=scale)
        params = entry.sample(output_rng(7, SHA, copy), settings)
        old = entry.run(work, params, scale, size, entry.at)
        assert new.params == params
        assert new.image.shape == old.shape and new.image.tobytes() == old.tobytes(), (name, copy)


@pytest.mark.parametrize("name", ["original", *PAPER])
def test_letterboxed_steps_are_their_canvas_between_black_bars(name: str, full: np.ndarray) -> None:
    pipe = Pipeline.paper()
    for out in [(96, 96), (120, 64)]:
        new = pipe.apply(full, name, source=SHA, copy=2, size=out, letterboxed=True)
        (fw, fh), (ox, oy) = letterbox(step_geometry(name, new.params, 150.0, 110.0)[1], out)
        expected = np.zeros((out[1], out[0], 3), np.uint8)
        expected[oy : oy + fh, ox : ox + fw] = builtin(name).run(full, new.params, (1, 1), (fw, fh))
        assert new.image.tobytes() == expected.tobytes()


def test_ranges_and_subsets_of_the_paper() -> None:
    ranges = Ranges(rotate_range=(10.0, 12.0))
    pipe = Pipeline.paper(ranges, ("rotate", "gray"))
    assert pipe.names == ("rotate", "gray")
    image = smear_like(np.random.default_rng(0), 40, 30)
    assert 10.0 <= pipe.apply(image, "rotate", size=32).params["angle"] <= 12.0
    with pytest.raises(OptionError, match=r"step: no step 'flip_x'.*original, rotate, gray, pca"):
        pipe.apply(image, "flip_x")


def test_the_seed_key_is_expands() -> None:
    image = smear_like(np.random.default_rng(0), 40, 30)
    pipe = Pipeline.paper()
    a = pipe.apply(image, "rotate", seed=1, source=SHA, copy=4, size=32)
    b = pipe.apply(image, "rotate", rng=output_rng(1, SHA, 4), size=32)
    c = pipe.apply(image, "rotate", seed=1, source=SHA, copy=5, size=32)
    assert a.params == b.params != c.params
    # Without a source hash, the pixels' hash keys the generator: still deterministic.
    assert pipe.apply(image, "rotate", size=32).params == pipe.apply(image, "rotate").params


def test_a_plugin_step_runs_through_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_steps.py").write_text(
        "import numpy as np\n"
        "from augtool import StepType\n"
        "NEG = StepType('neg', 'negative', apply=lambda image, p: 255 - image,"
        " moves_pixels=False)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = {"transform": [{"name": "neg", "plugin": "neg"}]}
    pipe = Pipeline.from_dict(recipe, plugins=("my_steps",))
    assert isinstance(pipe.step("neg").step_type, StepType)
    image = smear_like(np.random.default_rng(0), 40, 30)
    sample = pipe.apply(image, "neg", size=40)
    np.testing.assert_array_equal(sample.image, 255 - cv2.resize(image, (40, 40)))


# --- against expand's own files ------------------------------------------------------------


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _check_against_expand(raw: Path, out: Path, pipe: Pipeline, **apply: object) -> set[str]:
    """Every output of ``out`` made again by ``pipe.apply_file``: the same PNG bytes."""
    seen = set()
    for row in _rows(out):
        sample = pipe.apply_file(
            raw / row["source"], row["transform"], seed=int(row["seed"]), copy=int(row["copy"]),
            **apply,
        )  # fmt: skip
        ok, png = cv2.imencode(".png", cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
        assert ok
        assert png.tobytes() == (out / row["name"]).read_bytes(), row["name"]
        assert sample.params == json.loads(row["params"]), row["name"]
        seen.add(row["transform"])
    return seen


@pytest.fixture
def raw(make_raw, tmp_path: Path) -> Path:
    """Small JPEG sources, and one large enough to be decoded at a reduced resolution."""
    root = make_raw({"a": 2, "b": 2}, size=(96, 72))
    write_image(root / "b" / "big.jpg", smear_like(np.random.default_rng(9), 640, 480))
    return root


def test_paper_and_pca_outputs_are_expands_bytes(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    values = {"target": 60, "size": 56, "seed": 3, "workers": 1, "pca_count": 5}
    expand(raw, out, options_from_values(values))
    seen = _check_against_expand(raw, out, Pipeline.paper(), size=56)
    assert seen == {"original", "pca", *PAPER}


def test_letterboxed_non_square_outputs_are_expands_bytes(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    values = {"target": 40, "size": 64, "height": 40, "letterbox": True, "workers": 1}
    expand(raw, out, options_from_values(values))
    assert _check_against_expand(raw, out, Pipeline.paper(), size=(64, 40), letterboxed=True)


@pytest.mark.parametrize("recipe", ["curator", "colour", "mixed"])
def test_recipe_outputs_are_expands_bytes(raw: Path, tmp_path: Path, recipe: str) -> None:
    path = mixed_recipe(tmp_path / "mixed.toml") if recipe == "mixed" else recipe
    out = tmp_path / "out"
    values = {"target": 80, "size": 48, "seed": 5, "workers": 1, "recipe": path}
    expand(raw, out, options_from_values(values))
    pipe = load_recipe(path)
    assert pipe.recipe == read_recipe_file(path)
    seen = _check_against_expand(raw, out, pipe, size=48)
    assert seen == {"original", *pipe.names}
