"""Boxes follow the pixels: every transform, sampled parameters, output sizes 227-640."""

from __future__ import annotations

import numpy as np
import pytest

from augtool.boxes import (
    check_min_visibility,
    letterbox,
    map_boxes,
    output_matrix,
    transform_boxes,
)
from augtool.errors import OptionError
from augtool.pipeline.builtins import Ranges
from augtool.render import letterboxed
from augtool.transforms import GEOMETRY, ORIGINAL, TRANSFORMS, geometry

ALL = [ORIGINAL, *TRANSFORMS.values()]
IDS = [t.name for t in ALL]
SOURCE = (480, 360)
#: Rectangles (x0, y0, x1, y1) in source pixels: central, off-centre, at an edge.
RECTS = [(150, 110, 330, 250), (40, 200, 140, 330), (380, 10, 480, 120)]


def blank_with(rect: tuple[int, int, int, int]) -> np.ndarray:
    """A black source with one filled white rectangle whose pixel edges are ``rect``."""
    image = np.zeros((SOURCE[1], SOURCE[0], 3), np.uint8)
    x0, y0, x1, y1 = rect
    image[y0:y1, x0:x1] = 255
    return image


def draws(transform, seeds: int) -> list[dict]:
    """The parameters sampled with seeds ``0 .. seeds-1``, each distinct draw once.

    A transform without parameters (flips, gray, histeq, the original) draws the
    same empty dict every time: one render of it shows all that its copies would.
    """
    sampled = [transform.sample(np.random.default_rng(seed), Ranges()) for seed in range(seeds)]
    return [p for i, p in enumerate(sampled) if p not in sampled[:i]]


def found_box(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """Pixel edges of what is bright in an output (more than half of white)."""
    ys, xs = np.nonzero(image.max(axis=2) > 127)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("size", [227, 320, 640])
@pytest.mark.parametrize("rect", RECTS)
@pytest.mark.parametrize("transform", ALL, ids=IDS)
def test_box_matches_the_rectangle_in_the_pixels(transform, rect, size: int) -> None:
    work = blank_with(rect)
    for params in draws(transform, 4):
        out = transform.apply(work, params, (1.0, 1.0), size)
        kept, index = transform_boxes(
            transform.name, params, SOURCE, np.array([rect]), (size, size), min_visibility=0.0
        )
        seen = found_box(out)
        if seen is None:
            assert len(kept) == 0 or (kept[0, 2] - kept[0, 0]) * (kept[0, 3] - kept[0, 1]) < 4
            continue
        assert list(index) == [0], (transform.name, params)
        np.testing.assert_allclose(kept[0], seen, atol=2.0, err_msg=f"{transform.name} {params}")


@pytest.mark.parametrize("out", [(640, 480), (300, 227), (227, 400)])
@pytest.mark.parametrize("transform", ALL, ids=IDS)
def test_box_matches_at_non_square_output_sizes(transform, out: tuple[int, int]) -> None:
    for rect in RECTS:
        work = blank_with(rect)
        for params in draws(transform, 3):
            image = transform.apply(work, params, (1.0, 1.0), out)
            assert image.shape == (out[1], out[0], 3)
            kept, _ = transform_boxes(
                transform.name, params, SOURCE, np.array([rect]), out, min_visibility=0.0
            )
            seen = found_box(image)
            if seen is None:
                continue
            np.testing.assert_allclose(
                kept[0], seen, atol=2.0, err_msg=f"{transform.name} {params}"
            )


@pytest.mark.parametrize("out", [(640, 640), (416, 416), (640, 480), (300, 400)])
@pytest.mark.parametrize("transform", ALL, ids=IDS)
def test_box_matches_when_letterboxed(transform, out: tuple[int, int]) -> None:
    for rect in RECTS:
        work = blank_with(rect)
        for params in draws(transform, 3):
            image = letterboxed(transform.name, work, params, (1.0, 1.0), SOURCE, out)
            assert image.shape == (out[1], out[0], 3)
            kept, _ = transform_boxes(
                transform.name, params, SOURCE, np.array([rect]), out, 0.0, letterboxed=True
            )
            seen = found_box(image)
            if seen is None:
                continue
            np.testing.assert_allclose(
                kept[0], seen, atol=2.0, err_msg=f"{transform.name} {params}"
            )


def test_letterbox_centres_the_canvas_between_bars() -> None:
    assert letterbox((640, 480), (416, 416)) == ((416, 312), (0, 52))
    assert letterbox((480, 640), (640, 480)) == ((360, 480), (140, 0))
    assert letterbox((640, 480), (640, 480)) == ((640, 480), (0, 0))


@pytest.mark.parametrize("transform", ALL, ids=IDS)
def test_box_matches_at_working_resolution(transform) -> None:
    """expand renders from a reduced working image; boxes use source pixels all the same."""
    rect = RECTS[0]
    full = blank_with(rect)
    work = full[::2, ::2].copy()
    params = transform.sample(np.random.default_rng(7), Ranges())
    out = transform.apply(work, params, (0.5, 0.5), 227)
    kept, _ = transform_boxes(transform.name, params, SOURCE, np.array([rect]), (227, 227))
    seen = found_box(out)
    assert seen is not None
    np.testing.assert_allclose(kept[0], seen, atol=2.0)


def test_every_transform_either_moves_pixels_by_its_matrix_or_none() -> None:
    """The geometry table names only transforms of the table; the rest keep boxes in place."""
    assert set(GEOMETRY) <= set(TRANSFORMS)
    for name in set(TRANSFORMS) - set(GEOMETRY):
        matrix, canvas = geometry(name, {}, *SOURCE)
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
    kept, _ = transform_boxes("pca", {}, (100, 100), np.array([[1, 2, 3, 4]]), (100, 100))
    np.testing.assert_allclose(kept, [[1, 2, 3, 4]])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_min_visibility_is_a_fraction(bad: float) -> None:
    with pytest.raises(OptionError, match="min_visibility"):
        check_min_visibility(bad)
