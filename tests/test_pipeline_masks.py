"""Masks follow every step's pixels, through the one pipeline: built-ins, curator, albumentations.

A disc, a rotated rectangle and a concave arrow are drawn white, each in its
own channel (R, G, B) of a black source. Their masks go through
:meth:`augtool.Pipeline.apply` together with the pixels, in every form
``Targets`` carries: polygons (mapped vertex by vertex), bitmaps (nearest
neighbour) and a class-index map. Each output mask is compared with the shape
found in the output pixels (its channel above half and the strongest: a
colour step inside an albumentations pipeline shifts hues): IoU at least 0.95, and
identical for flips at the source's own size and quarter turns of a square
source (a turned oblong is squashed back to the output, resampled); a step that
moves no pixel leaves the masks as the ``original`` output has them. Sources
and outputs of 227 to 640 px, square and not.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from augtool import Pipeline
from augtool.errors import OptionError
from augtool.ops.mask_geometry import Patch, rasterize_polygons
from augtool.ops.targets import Targets
from augtool.pipeline.builtins import STEPS
from tests.test_mask_geometry import shapes, source_image

#: (source size, output size): square and not, 227 to 640 px.
SIZES = [
    ((640, 480), (640, 480)),
    ((640, 480), (227, 227)),
    ((300, 300), (300, 300)),
    ((227, 400), (320, 227)),
]
#: Every built-in and curator step, rot90 and zoom at both stages, and exact quarter turns.
EVERY = Pipeline.from_dict(
    {
        "transform": [
            *({"name": name} for name in STEPS),
            {"name": "rot90_out", "builtin": "rot90", "at": "output"},
            {"name": "zoom_out", "builtin": "zoom", "at": "output"},
            {"name": "turn", "builtin": "rotate", "rotate_range": [90, 90]},
        ]
    }
)
#: Steps whose every output is its source's pixels flipped, nothing resampled.
FLIPS = {"original", "flip_x", "flip_y", "hflip", "vflip"}
#: Steps that turn by quarter turns: nothing resampled when the turned canvas is the output.
TURNS = {"turn", "rot90", "transpose_a"}
#: A shape this many pixels or fewer in the output is too cut to compare.
IN_VIEW = 200


def _albumentations() -> dict[str, dict]:
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    A = pytest.importorskip("albumentations")
    return {
        "hflip": A.to_dict(A.HorizontalFlip(p=1.0)),
        "vflip": A.to_dict(A.VerticalFlip(p=1.0)),
        "rot90": A.to_dict(A.RandomRotate90(p=1.0)),
        "transpose_a": A.to_dict(A.Transpose(p=1.0)),
        "affine": A.to_dict(
            A.Affine(
                rotate=(-40, 40),
                scale=(0.8, 1.1),
                shear=(-15, 15),
                translate_percent=(-0.1, 0.1),
                p=1.0,
            )
        ),
        "rotate": A.to_dict(A.Rotate(limit=60, p=1.0)),
        "safe_rotate": A.to_dict(A.SafeRotate(limit=60, p=1.0)),
        "perspective": A.to_dict(A.Perspective(scale=(0.05, 0.1), p=1.0)),
        "crop": A.to_dict(A.RandomResizedCrop(size=(256, 256), scale=(0.5, 1.0), p=1.0)),
        "pipe": A.to_dict(
            A.Compose([A.VerticalFlip(p=1.0), A.Rotate(limit=30, p=1.0), A.HueSaturationValue()])
        ),
    }


@pytest.fixture(scope="module")
def albu() -> Pipeline:
    steps = [
        {"name": name, "albumentations": json.dumps(data), "at": "output"}
        for name, data in _albumentations().items()
    ]
    affine = steps[4]["albumentations"]
    steps.append({"name": "affine_work", "albumentations": affine, "at": "work"})
    return Pipeline.from_dict({"transform": steps})


def targets_of(source: tuple[int, int]) -> tuple[np.ndarray, Targets]:
    """The source image, and its shapes as polygons (ids 0-2), patches (3-5) and a class map."""
    parts = shapes(*source)
    image = source_image(parts, *source)
    bitmaps = [image[..., k] > 0 for k in range(3)]
    labels = np.zeros(image.shape[:2], np.uint8)
    for k in range(3):
        labels[bitmaps[k]] = k + 1
    polygons = [[p] for p in parts]
    patches = [Patch.of(b) for b in bitmaps]
    return image, Targets.from_masks(source, [*polygons, *patches], labels)


def as_bitmap(shape, width: int, height: int) -> np.ndarray:
    if isinstance(shape, Patch):
        return shape.full(width, height)
    return rasterize_polygons(shape, width, height)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def check_masks(pipe: Pipeline, name: str, source, out, copies=(1, 2)) -> int:
    """Every mask of ``name``'s outputs against the shapes in their pixels; returns shapes seen."""
    image, targets = targets_of(source)
    moves = name == "original" or pipe.step(name).step_type.moves_pixels
    # A quarter turn of a source that is not square is squashed back to the output: resampled.
    exact = source == out and (name in FLIPS or (name in TURNS and source[0] == source[1]))
    seen = 0
    for copy in copies:
        sample = pipe.apply(image, name, copy=copy, size=out, targets=targets, min_visibility=0.0)
        result = sample.targets
        assert result is not None and result.shapes is not None and result.semantic is not None
        height, width = sample.image.shape[:2]
        assert result.semantic.shape == (height, width)
        where = {int(i): k for k, i in enumerate(result.ids)}
        if not moves:
            original = pipe.apply(image, "original", size=out, targets=targets).targets
            assert original is not None and original.semantic is not None
            np.testing.assert_array_equal(result.semantic, original.semantic)
            np.testing.assert_array_equal(result.boxes, original.boxes)
            seen += 1
            continue
        for k in range(3):
            channel = sample.image[..., k]  # its own channel, bright and the pixel's strongest
            found = (channel > 127) & (channel >= sample.image.max(axis=2))
            what = f"{name} copy {copy} shape {k} {source}->{out} {sample.params}"
            forms = {"label map": result.semantic == k + 1}
            for form, i in (("polygon", k), ("bitmap", k + 3)):
                forms[form] = (
                    as_bitmap(result.shapes[where[i]], width, height)
                    if i in where
                    else np.zeros_like(found)
                )
            if exact:
                for form, mask in forms.items():
                    np.testing.assert_array_equal(mask, found, err_msg=f"{form}: {what}")
            elif found.sum() > IN_VIEW:
                for form, mask in forms.items():
                    assert iou(mask, found) >= 0.95, f"{form} IoU {iou(mask, found):.3f}: {what}"
            if found.sum() > IN_VIEW:
                seen += 1
                for i in (k, k + 3):  # the tight box is the mask's box, and where the pixels are
                    box = result.boxes[where[i]]
                    ys, xs = np.nonzero(found)
                    pixels = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                    np.testing.assert_allclose(box, pixels, atol=2.0, err_msg=what)
    return seen


@pytest.mark.parametrize(("source", "out"), SIZES)
@pytest.mark.parametrize("name", ["original", "pca", *EVERY.names])
def test_masks_follow_every_built_in_and_curator_step(name: str, source, out) -> None:
    if name == "pca":  # a copy of the original's targets: nothing moves
        image, targets = targets_of(source)
        pca = EVERY.apply(image, "pca", size=out, targets=targets).targets
        original = EVERY.apply(image, "original", size=out, targets=targets).targets
        assert pca is not None and original is not None and pca.semantic is not None
        np.testing.assert_array_equal(pca.semantic, original.semantic)
        np.testing.assert_array_equal(pca.boxes, original.boxes)
        return
    assert check_masks(EVERY, name, source, out) > 0


@pytest.mark.parametrize(("source", "out"), SIZES)
def test_masks_follow_albumentations_geometric_steps(albu: Pipeline, source, out) -> None:
    for name in albu.names:
        assert check_masks(albu, name, source, out) > 0, name


def test_albumentations_pixels_do_not_depend_on_the_masks(albu: Pipeline) -> None:
    image, targets = targets_of((300, 300))
    for name in albu.names:
        bare = albu.apply(image, name, copy=1, size=227)
        masked = albu.apply(image, name, copy=1, size=227, targets=targets)
        assert bare.image.tobytes() == masked.image.tobytes(), name


def test_a_disc_pushed_out_is_dropped_with_its_box_by_its_area() -> None:
    """Half a disc is left by a translation: kept under min_visibility 0.45, dropped at 0.55."""
    pipe = Pipeline.from_dict({"transform": [{"name": "translate", "translate_range": [55, 55]}]})
    source = (400, 300)
    t = np.linspace(0, 2 * math.pi, 129)[:-1]
    disc = np.stack([345.3 + 50 * np.cos(t), 150.2 + 50 * np.sin(t)], axis=1)
    mask = rasterize_polygons([disc], *source)
    image = np.repeat(mask[..., None] * np.uint8(255), 3, axis=2)
    for shape in ([disc], Patch.of(mask)):
        targets = Targets.from_masks(source, [shape])
        for copy in range(1, 7):
            half = pipe.apply(image, "translate", copy=copy, size=source, targets=targets)
            pushed_out = half.params["dx"] > 0
            seen = np.count_nonzero(half.image[..., 0] > 127) / np.count_nonzero(mask)
            for level in (0.45, 0.55):
                kept = pipe.apply(
                    image,
                    "translate",
                    copy=copy,
                    size=source,
                    targets=targets,
                    min_visibility=level,
                ).targets
                assert kept is not None and kept.shapes is not None
                gone = pushed_out and level > seen
                assert len(kept.shapes) == len(kept.boxes) == len(kept.ids) == (not gone)
            if pushed_out:
                assert 0.45 < seen < 0.55


def test_tight_boxes_fit_the_turned_shape_and_hull_boxes_hold_it() -> None:
    pipe = Pipeline.from_dict({"transform": [{"name": "rotate", "rotate_range": [35, 35]}]})
    source = (640, 480)
    image, tight = targets_of(source)
    hull = Targets.from_masks(source, tight.shapes or (), tight.semantic, tight=False)
    a = pipe.apply(image, "rotate", size=source, targets=tight).targets
    b = pipe.apply(image, "rotate", size=source, targets=hull).targets
    assert a is not None and b is not None
    np.testing.assert_array_equal(a.ids, b.ids)
    for box_a, box_b, i in zip(a.boxes, b.boxes, a.ids, strict=True):
        assert box_b[0] <= box_a[0] and box_b[1] <= box_a[1], i
        assert box_b[2] >= box_a[2] and box_b[3] >= box_a[3], i
    disc = [0, 3]
    widths = (a.boxes[:, 2] - a.boxes[:, 0])[disc], (b.boxes[:, 2] - b.boxes[:, 0])[disc]
    assert (widths[1] > 1.2 * widths[0]).all()  # the disc's hull grows with the turn


# --- plug-ins: masks follow what a plug-in declares ------------------------------------------

PLUGINS = '''
"""Plug-in steps: colours only, a declared geometry, silence, and boxes moved without masks."""
import numpy as np

from augtool import StepType


def transpose(params, width, height):
    return np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), (height, width)


def boxes_only(image, params, targets, min_visibility):
    from augtool.ops.targets import Targets

    return image[::-1].copy(), Targets(targets.size, targets.boxes, targets.ids)


DIM = StepType("dim", "darker", apply=lambda image, p: image // 2 + 64, moves_pixels=False)
TRANSPOSE = StepType(
    "transpose", "swap the axes", apply=lambda image, p: np.ascontiguousarray(image.swapaxes(0, 1)),
    at="work", moves_pixels=True, geometry=transpose,
)
SILENT = StepType("silent", "moves pixels, says nothing", apply=lambda image, p: image[::-1])
BOXES_ONLY = StepType(
    "boxes_only", "flips, moves its boxes, forgets the masks", apply=lambda image, p: image[::-1],
    moves_pixels=True, apply_targets=boxes_only,
)
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    (tmp_path / "my_mask_plugins.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    steps = [{"name": n, "plugin": n} for n in ("dim", "transpose", "silent", "boxes_only")]
    return Pipeline.from_dict({"transform": steps}, plugins=("my_mask_plugins",))


@pytest.mark.parametrize(("source", "out"), [((300, 300), (300, 300)), ((640, 480), (320, 227))])
def test_masks_follow_plugins_that_declare_their_pixels(plugins: Pipeline, source, out) -> None:
    assert check_masks(plugins, "dim", source, out) > 0
    assert check_masks(plugins, "transpose", source, out) > 0


def test_plugins_that_move_pixels_without_mapping_masks_are_refused(plugins: Pipeline) -> None:
    image, targets = targets_of((300, 300))
    with pytest.raises(OptionError, match=r"targets: step 'silent' moves pixels without saying"):
        plugins.apply(image, "silent", size=227, targets=targets)
    with pytest.raises(OptionError, match=r"'boxes_only' .* returned no instance masks or class"):
        plugins.apply(image, "boxes_only", size=227, targets=targets)
    boxes = Targets.from_boxes(targets.boxes, (300, 300))  # boxes alone: its own step moves them
    assert plugins.apply(image, "boxes_only", size=227, targets=boxes).targets is not None
