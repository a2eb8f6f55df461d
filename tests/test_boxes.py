"""Boxes follow the pixels: every paper step, sampled parameters, output sizes 227-640.

Each output is made by the one pipeline with a box for its white rectangle
(:meth:`augtool.pipeline.core.Pipeline.apply` with targets), and the box it
gives is checked against the rectangle found in the output's pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

from augtool.engine.options import check_min_visibility
from augtool.errors import OptionError
from augtool.ops.geometry import letterbox
from augtool.ops.targets import Targets, map_boxes
from augtool.pipeline.builtins import PAPER, output_matrix, step_geometry
from augtool.pipeline.core import Pipeline, Sample
from augtool.pipeline.steps import ORIGINAL_NAME

IDS = [ORIGINAL_NAME, *PAPER]
PIPE = Pipeline.paper()
SOURCE = (480, 360)
#: Rectangles (x0, y0, x1, y1) in source pixels: central, off-centre, at an edge.
RECTS = [(150, 110, 330, 250), (40, 200, 140, 330), (380, 10, 480, 120)]


def blank_with(rect: tuple[int, int, int, int]) -> np.ndarray:
    """A black source with one filled white rectangle whose pixel edges are ``rect``."""
    image = np.zeros((SOURCE[1], SOURCE[0], 3), np.uint8)
    x0, y0, x1, y1 = rect
    image[y0:y1, x0:x1] = 255
    return image


def outputs(
    name: str,
    rect: tuple[int, int, int, int],
    seeds: int,
    size: int | tuple[int, int],
    scale: int = 1,
    letterboxed: bool = False,
) -> list[Sample]:
    """The outputs of ``name`` drawn with seeds ``0 .. seeds-1``, each distinct draw once.

    A step without parameters (flips, gray, histeq, the original) draws the
    same empty dict every time: one output of it shows all that its copies would.
    """
    work = np.ascontiguousarray(blank_with(rect)[::scale, ::scale])
    found: list[Sample] = []
    for seed in range(seeds):
        sample = PIPE.apply(
            work,
            name,
            rng=np.random.default_rng(seed),
            size=size,
            work_scale=(1 / scale, 1 / scale),
            targets=Targets.from_boxes([rect], SOURCE),
            letterboxed=letterboxed,
            min_visibility=0.0,
        )
        if all(sample.params != other.params for other in found):
            found.append(sample)
    return found


def found_box(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """Pixel edges of what is bright in an output (more than half of white)."""
    ys, xs = np.nonzero(image.max(axis=2) > 127)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def check(sample: Sample) -> None:
    """The sample's box is the white rectangle found in its pixels (within 2 px)."""
    assert sample.targets is not None
    kept = sample.targets.boxes
    seen = found_box(sample.image)
    if seen is None:
        assert len(kept) == 0 or (kept[0, 2] - kept[0, 0]) * (kept[0, 3] - kept[0, 1]) < 4
        return
    assert list(sample.targets.ids) == [0], (sample.step, sample.params)
    np.testing.assert_allclose(kept[0], seen, atol=2.0, err_msg=f"{sample.step} {sample.params}")


@pytest.mark.parametrize("size", [227, 320, 640])
@pytest.mark.parametrize("rect", RECTS)
@pytest.mark.parametrize("name", IDS)
def test_box_matches_the_rectangle_in_the_pixels(name: str, rect, size: int) -> None:
    for sample in outputs(name, rect, 4, size):
        check(sample)


@pytest.mark.parametrize("out", [(640, 480), (300, 227), (227, 400)])
@pytest.mark.parametrize("name", IDS)
def test_box_matches_at_non_square_output_sizes(name: str, out: tuple[int, int]) -> None:
    for rect in RECTS:
        for sample in outputs(name, rect, 3, out):
            assert sample.image.shape == (out[1], out[0], 3)
            check(sample)


@pytest.mark.parametrize("out", [(640, 640), (416, 416), (640, 480), (300, 400)])
@pytest.mark.parametrize("name", IDS)
def test_box_matches_when_letterboxed(name: str, out: tuple[int, int]) -> None:
    for rect in RECTS:
        for sample in outputs(name, rect, 3, out, letterboxed=True):
            assert sample.image.shape == (out[1], out[0], 3)
            check(sample)


def test_letterbox_centres_the_canvas_between_bars() -> None:
    assert letterbox((640, 480), (416, 416)) == ((416, 312), (0, 52))
    assert letterbox((480, 640), (640, 480)) == ((360, 480), (140, 0))
    assert letterbox((640, 480), (640, 480)) == ((640, 480), (0, 0))


@pytest.mark.parametrize("name", IDS)
def test_box_matches_at_working_resolution(name: str) -> None:
    """expand renders from a reduced working image; boxes use source pixels all the same."""
    sample = outputs(name, RECTS[0], 1, 227, scale=2)[0]
    assert found_box(sample.image) is not None
    check(sample)


def test_every_step_either_moves_pixels_by_its_matrix_or_none() -> None:
    """A paper step without geometry keeps boxes in place."""
    for name, step in PAPER.items():
        assert (step.geometry is None) == (step.moves_pixels is False), name
        if step.geometry is None:
            matrix, canvas = step_geometry(name, {}, *SOURCE)
            np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 0]])
            assert canvas == SOURCE


def test_flip_matrix_maps_a_box_to_its_mirror() -> None:
    m = output_matrix("flip_y", {}, (100, 50), (100, 50))
    kept, _ = map_boxes(np.array([[10, 5, 30, 20]]), m, (100, 50))
    np.testing.assert_allclose(kept, [[70, 5, 90, 20]])
    m = output_matrix("flip_x", {}, (100, 50), (100, 50))
    kept, _ = map_boxes(np.array([[10, 5, 30, 20]]), m, (100, 50))
    np.testing.assert_allclose(kept, [[10, 30, 30, 45]])


def test_resize_to_a_non_square_output_scales_each_axis() -> None:
    m = output_matrix("gray", {}, (200, 100), (640, 480))
    kept, _ = map_boxes(np.array([[50, 25, 100, 50]]), m, (640, 480))
    np.testing.assert_allclose(kept, [[160, 120, 320, 240]])


def test_clipping_and_min_visibility() -> None:
    # Translated 60 px to the right: 40 of the box's 100 px width stay inside.
    m = output_matrix("translate", {"dx": 60.0, "dy": 0.0}, (200, 100), (200, 100))
    boxes = np.array([[0, 0, 50, 50], [100, 10, 200, 60]])
    kept, index = map_boxes(boxes, m, (200, 100), min_visibility=0.3)
    assert list(index) == [0, 1]
    np.testing.assert_allclose(kept, [[60, 0, 110, 50], [160, 10, 200, 60]])
    kept, index = map_boxes(boxes, m, (200, 100), min_visibility=0.5)
    assert list(index) == [0]
    # Shifted wholly out: dropped even at min_visibility 0.
    m = output_matrix("translate", {"dx": 300.0, "dy": 0.0}, (200, 100), (200, 100))
    kept, index = map_boxes(boxes, m, (200, 100), min_visibility=0.0)
    assert len(kept) == 0 and len(index) == 0


def test_rotation_gives_the_bounding_box_of_the_corners() -> None:
    # 90 degrees counterclockwise of a 100x50 source: canvas 50x100.
    m = output_matrix("rotate", {"angle": 90.0}, (100, 50), (50, 100))
    kept, _ = map_boxes(np.array([[0, 0, 10, 20]]), m, (50, 100))
    np.testing.assert_allclose(kept, [[0, 90, 20, 100]], atol=1e-9)


def test_pca_moves_no_box() -> None:
    image = np.full((100, 100, 3), 90, np.uint8)
    image[:, :50] = 160
    box = Targets.from_boxes([[1, 2, 3, 4]], (100, 100))
    sample = PIPE.apply(image, "pca", size=(100, 100), targets=box)
    assert sample.targets is not None
    np.testing.assert_allclose(sample.targets.boxes, [[1, 2, 3, 4]])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_min_visibility_is_a_fraction(bad: float) -> None:
    with pytest.raises(OptionError, match="min_visibility"):
        check_min_visibility(bad)
