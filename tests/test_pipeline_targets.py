"""Boxes follow every step's pixels: built-ins, albumentations, plug-ins, preprocessing.

Each check draws one white rectangle on a black source, runs a step on the
image and the rectangle's box together, and compares the box that comes out
with the rectangle found in the output pixels (as tests/test_boxes.py does for
the paper's transforms).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from augtool import Pipeline
from augtool.errors import OptionError
from augtool.ops.geometry import output_map
from augtool.ops.targets import Targets, map_boxes
from augtool.pipeline.builtins import PAPER, STEPS, output_matrix, step_geometry

SOURCE = (240, 180)
#: Rectangles (x0, y0, x1, y1) in source pixels: central, off-centre, at an edge.
RECTS = [(75, 55, 165, 125), (20, 100, 70, 165), (190, 5, 240, 60)]
#: Every built-in, rot90 and zoom at both stages.
EVERY = Pipeline.from_dict(
    {
        "transform": [
            *({"name": name} for name in STEPS),
            {"name": "rot90_out", "builtin": "rot90", "at": "output"},
            {"name": "zoom_out", "builtin": "zoom", "at": "output"},
        ]
    }
)


def blank_with(rect: tuple[int, int, int, int], size: tuple[int, int] = SOURCE) -> np.ndarray:
    """A black source with one filled white rectangle whose pixel edges are ``rect``."""
    image = np.zeros((size[1], size[0], 3), np.uint8)
    x0, y0, x1, y1 = rect
    image[y0:y1, x0:x1] = 255
    return image


def found_box(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """Pixel edges of what is bright in an output (more than half of white)."""
    ys, xs = np.nonzero(image.max(axis=2) > 127)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def check_follows(
    pipe: Pipeline, name: str, rect, size, copies=range(1, 5), **apply
) -> tuple[int, int]:
    """Run ``name`` on the rectangle for several copies; the box must be where the pixels are.

    Returns:
        How many outputs still showed the rectangle, and how many of those boxes
        matched it within 2 px (the others are cut by the image's edge and hold it).
    """
    work_scale = apply.pop("work_scale", (1.0, 1.0))
    source = apply.pop("source_size", SOURCE)
    image = blank_with(rect, source)
    if work_scale != (1.0, 1.0):
        image = np.ascontiguousarray(image[:: int(1 / work_scale[1]), :: int(1 / work_scale[0])])
    shown = exact = 0
    for copy in copies:
        targets = Targets.from_boxes([rect], source)
        sample = pipe.apply(
            image, name, copy=copy, size=size, targets=targets, work_scale=work_scale,
            min_visibility=0.0, **apply,
        )  # fmt: skip
        seen = found_box(sample.image)
        assert sample.targets is not None
        if seen is None:
            boxes = sample.targets.boxes
            assert len(boxes) == 0 or np.prod(boxes[0, 2:] - boxes[0, :2]) < 4, (name, copy)
            continue
        shown += 1
        assert list(sample.targets.ids) == [0], (name, copy, sample.params)
        box = sample.targets.boxes[0]
        if np.allclose(box, seen, atol=2.0):
            exact += 1
            continue
        # Only a box cut by the image's edge may differ: a turned box's corner outside
        # the image still widens its bounding box, so the box holds the pixels, and more.
        height, width = sample.image.shape[:2]
        cut = box[0] <= 0 or box[1] <= 0 or box[2] >= width or box[3] >= height
        assert cut, (name, sample.params, box, seen)
        assert box[0] - 2 <= seen[0] and box[1] - 2 <= seen[1], (name, sample.params)
        assert seen[2] <= box[2] + 2 and seen[3] <= box[3] + 2, (name, sample.params)
    return shown, exact


#: Steps whose pixels may hide the rectangle although the box stays (holes, darkening).
HIDING = {"cutout"}


@pytest.mark.parametrize("size", [96, (128, 72)])
@pytest.mark.parametrize("name", [n for n in ("original", "pca", *EVERY.names) if n not in HIDING])
def test_box_follows_every_built_in(name: str, size) -> None:
    counts = [check_follows(EVERY, name, rect, size) for rect in RECTS]
    assert all(shown == exact for shown, exact in counts), counts  # none needs the edge rule
    assert sum(exact for _, exact in counts) >= len(RECTS)


@pytest.mark.parametrize("name", ["rotate", "shear_y", "rot90", "zoom", "zoom_out", "flip_x"])
def test_box_follows_at_a_reduced_working_resolution(name: str) -> None:
    shown, exact = check_follows(EVERY, name, RECTS[0], 96, work_scale=(0.5, 0.5))
    assert shown == exact > 0


def test_cutout_moves_no_box() -> None:
    image = blank_with(RECTS[0])
    targets = Targets.from_boxes([RECTS[0]], SOURCE)
    original = EVERY.apply(image, "original", size=96, targets=targets).targets
    for copy in range(1, 4):
        cut = EVERY.apply(image, "cutout", copy=copy, size=96, targets=targets).targets
        assert original is not None and cut is not None
        np.testing.assert_array_equal(cut.boxes, original.boxes)


@pytest.mark.parametrize("letterboxed", [False, True])
@pytest.mark.parametrize("out", [(96, 96), (128, 72)])
@pytest.mark.parametrize("name", ["original", "pca", *PAPER])
def test_paper_boxes_are_the_old_boxes_to_the_bit(name: str, out, letterboxed: bool) -> None:
    """Annotation files keep their bytes: the same floats as one map of the corners, by the
    step's matrix to the output, clipped to the picture (how they were always computed)."""
    pipe = Pipeline.paper()
    boxes = np.array(RECTS, dtype=np.float64)
    for copy in (1, 2):
        sample = pipe.apply(
            blank_with(RECTS[0]), name, copy=copy, size=out, letterboxed=letterboxed,
            targets=Targets.from_boxes(boxes, SOURCE),
        )  # fmt: skip
        geo = "original" if name == "pca" else name
        matrix = output_matrix(geo, sample.params, SOURCE, out, letterboxed)
        canvas = step_geometry(geo, sample.params, *SOURCE)[1]
        kept, index = map_boxes(boxes, matrix, out, 0.3, output_map(canvas, out, letterboxed)[1])
        assert sample.targets is not None
        np.testing.assert_array_equal(sample.targets.boxes, kept)
        np.testing.assert_array_equal(sample.targets.ids, index)


@pytest.mark.parametrize("policy", ["crop", "pad"])
def test_box_follows_the_shape_policy(policy: str) -> None:
    pipe = Pipeline.from_dict(
        {
            "preprocess": {"resize": policy},
            "transform": [{"name": "rotate"}, {"name": "gray"}, {"name": "zoom"}],
        }
    )
    for name in ("original", *pipe.names):
        assert sum(check_follows(pipe, name, rect, 96)[1] for rect in RECTS) > 0


def test_min_visibility_drops_a_box_pushed_out() -> None:
    pipe = Pipeline.from_dict({"transform": [{"name": "translate", "translate_range": [50, 50]}]})
    edge = (200, 60, 240, 100)  # 40 px wide at the right edge
    for copy in range(1, 9):
        kept = pipe.apply(
            blank_with(edge), "translate", copy=copy, size=SOURCE, min_visibility=0.5,
            targets=Targets.from_boxes([edge], SOURCE),
        )  # fmt: skip
        assert kept.targets is not None
        assert len(kept.targets.boxes) == (kept.params["dx"] < 0), kept.params


# --- albumentations --------------------------------------------------------------------------


def _albumentations() -> dict[str, dict]:
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    A = pytest.importorskip("albumentations")
    return {
        "hflip": A.to_dict(A.HorizontalFlip(p=1.0)),
        "affine": A.to_dict(
            A.Affine(rotate=(-40, 40), scale=(0.8, 1.1), translate_percent=(-0.1, 0.1), p=1.0)
        ),
        "crop": A.to_dict(A.RandomResizedCrop(size=(80, 80), scale=(0.4, 1.0), p=1.0)),
        "pipe": A.to_dict(
            A.Compose([A.VerticalFlip(p=1.0), A.Rotate(limit=30, p=1.0), A.HueSaturationValue()])
        ),
    }


@pytest.fixture(scope="module")
def albumentations_pipeline() -> Pipeline:
    steps = [
        {"name": name, "albumentations": json.dumps(data), "at": at}
        for name, data in _albumentations().items()
        for at in ("output", "work")
    ]
    for step in steps:
        step["name"] = f"{step['name']}_{step['at']}"
    return Pipeline.from_dict({"transform": steps})


def test_albumentations_boxes_follow_the_pixels(albumentations_pipeline: Pipeline) -> None:
    for name in albumentations_pipeline.names:
        counts = [
            check_follows(albumentations_pipeline, name, rect, 96, range(1, 7)) for rect in RECTS
        ]
        assert sum(exact for _, exact in counts) > 0, name


def test_albumentations_pixels_do_not_depend_on_the_boxes(
    albumentations_pipeline: Pipeline,
) -> None:
    image = blank_with(RECTS[0])
    targets = Targets.from_boxes(RECTS, SOURCE)
    for name in albumentations_pipeline.names:
        for copy in (1, 2, 3):
            bare = albumentations_pipeline.apply(image, name, copy=copy, size=(96, 72))
            boxed = albumentations_pipeline.apply(
                image, name, copy=copy, size=(96, 72), targets=targets
            )
            assert bare.params == boxed.params
            assert bare.image.tobytes() == boxed.image.tobytes(), name


def test_a_pixel_level_albumentations_step_with_boxes_warns_nothing() -> None:
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    import albumentations as A

    hsv = json.dumps(A.to_dict(A.HueSaturationValue(p=1.0)))
    pipe = Pipeline.from_dict({"transform": [{"name": "hsv", "albumentations": hsv}]})
    image = blank_with(RECTS[0])
    targets = Targets.from_boxes(RECTS, SOURCE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a visibility no other test uses: the step's Compose is built here, not cached
        moved = pipe.apply(image, "hsv", size=(96, 72), targets=targets, min_visibility=0.2718)
    assert [str(w.message) for w in caught] == []
    assert len(moved.targets.boxes) == len(RECTS)  # the boxes stay, as the pixels do


# --- plug-ins declare how they move pixels ---------------------------------------------------

PLUGINS = '''
"""Plug-in steps: one declares colours only, one its geometry, one says nothing."""
import numpy as np

from augtool import StepType


def transpose(params, width, height):
    return np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), (height, width)


DIM = StepType("dim", "darker", apply=lambda image, p: image // 2 + 64, moves_pixels=False)
TRANSPOSE = StepType(
    "transpose", "swap the axes", apply=lambda image, p: np.ascontiguousarray(image.swapaxes(0, 1)),
    at="work", moves_pixels=True, geometry=transpose,
)
SILENT = StepType("silent", "moves pixels, says nothing", apply=lambda image, p: image[::-1])
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    (tmp_path / "my_plugin_steps.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    steps = [{"name": n, "plugin": n} for n in ("dim", "transpose", "silent")]
    return Pipeline.from_dict({"transform": steps}, plugins=("my_plugin_steps",))


def test_plugins_that_declare_their_pixels_carry_boxes(plugins: Pipeline) -> None:
    for name in ("dim", "transpose"):
        counts = [check_follows(plugins, name, rect, (96, 72)) for rect in RECTS]
        assert counts == [(4, 4)] * 3


def test_a_plugin_that_does_not_declare_is_refused_with_targets(plugins: Pipeline) -> None:
    image = blank_with(RECTS[0])
    assert plugins.apply(image, "silent", size=64).targets is None
    with pytest.raises(OptionError, match=r"targets: step 'silent' moves pixels without saying"):
        plugins.apply(image, "silent", size=64, targets=Targets.from_boxes(RECTS, SOURCE))


# --- the container ---------------------------------------------------------------------------


def test_targets_are_checked() -> None:
    with pytest.raises(ValueError, match="must be"):
        Targets.from_boxes([[1, 2, 3]], SOURCE)
    assert len(Targets.from_boxes([], SOURCE)) == 0
    with pytest.raises(ValueError, match="grid"):
        EVERY.apply(blank_with(RECTS[0]), "gray", targets=Targets.from_boxes([], (10, 10)))
    with pytest.raises(OptionError, match="letterboxed"):
        EVERY.apply(blank_with(RECTS[0]), "hue", letterboxed=True)
