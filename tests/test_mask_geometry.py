"""Masks follow the pixels: filled shapes through every geometric transform, 227-640 px.

Each shape (a disc, a rotated rectangle, a concave arrow) is drawn white in its
own channel of a black source; the transform renders the pixels as ``expand``
does, and the shape found in the output (its channel above half) is compared
with the mask mapped by the same matrix (``pipeline.builtins.output_matrix``): as
a bitmap and a label map (nearest neighbour) and as a polygon (exact vertices,
clipped). Flips and quarter turns at the source's own size are exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from augtool.annotations.masks import (
    Bitmap,
    Instance,
    Polygons,
    rasterize_polygons,
    transform_instances,
)
from augtool.ops.geometry import letterbox
from augtool.ops.mask_geometry import (
    area_scale,
    clip_polygon,
    map_bitmap,
    map_instances,
    map_polygons,
    mask_box,
    polygon_area,
    polygons_box,
    warp_labels,
)
from augtool.ops.targets import map_boxes
from augtool.pipeline.builtins import ORIGINAL, PAPER, builtin, output_matrix, step_geometry

MOVING = [ORIGINAL, *(step for step in PAPER.values() if step.geometry is not None)]
IDS = [t.name for t in MOVING]
#: (source size, output size): square and not, 227 to 640 pixels.
SIZES = [
    ((640, 480), (640, 480)),
    ((640, 480), (227, 227)),
    ((300, 300), (300, 300)),
    ((227, 400), (320, 227)),
]


def shapes(width: int, height: int) -> list[np.ndarray]:
    """A disc, a rotated rectangle and a concave arrow, apart, in source pixels."""
    side = min(width, height)
    t = np.linspace(0, 2 * math.pi, 97)[:-1]
    r = 0.14 * side
    disc = np.stack([0.27 * width + r * np.cos(t), 0.3 * height + r * np.sin(t)], axis=1)
    c, s = math.cos(0.5), math.sin(0.5)
    half = np.array([[-1, -0.55], [1, -0.55], [1, 0.55], [-1, 0.55]]) * 0.16 * side
    rect = half @ np.array([[c, s], [-s, c]]) + [0.7 * width, 0.32 * height]
    arrow = np.array(
        [[0, 0.35], [0.55, 0.35], [0.55, 0], [1, 0.5], [0.55, 1], [0.55, 0.65], [0, 0.65]]
    )
    # The arrow's corners next to pixel edges: its straight sides are then drawn where
    # they are (a side between two pixel rows is drawn on one of them, up to half a
    # pixel off). Every shape off the pixel centres: an edge through a centre is a tie
    # that a flip resolves the other way (rows are half-open), in any rasteriser.
    arrow = np.round(arrow * [0.36 * width, 0.3 * height] + [0.32 * width, 0.6 * height])
    offset = np.array([0.0123, 0.0371])
    return [p + offset for p in (disc, rect, arrow)]


def source_image(parts: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """Each shape white in its own channel (R, G, B) of a black image."""
    image = np.zeros((height, width, 3), np.uint8)
    for k, part in enumerate(parts):
        image[..., k] = rasterize_polygons([part], width, height) * 255
    return image


def draws(transform, seeds: int) -> list[dict]:
    settings = transform.settings()
    sampled = [transform.sample(np.random.default_rng(seed), settings) for seed in range(seeds)]
    return [p for i, p in enumerate(sampled) if p not in sampled[:i]]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def check_all_forms(name: str, params: dict, source: tuple, out: tuple, exact: bool) -> None:
    """The mapped bitmap, label map and polygon of each shape against the rendered pixels."""
    width, height = source
    parts = shapes(width, height)
    image = source_image(parts, width, height)
    rendered = builtin(name).run(image, params, (1.0, 1.0), out)
    matrix = output_matrix(name, params, source, out)
    labels = np.zeros((height, width), np.uint8)
    for k in range(3):
        labels[image[..., k] > 0] = k + 1
    mapped_labels = warp_labels(labels, matrix, out)
    assert set(np.unique(mapped_labels)) <= {0, 1, 2, 3}  # nothing invented
    rect = (0.0, 0.0, float(out[0]), float(out[1]))
    for k, part in enumerate(parts):
        found = rendered[..., k] > 127
        by_bitmap = map_bitmap(image[..., k] > 0, matrix, out)
        by_label = mapped_labels == k + 1
        clipped, _, _ = map_polygons([part], matrix, rect)
        by_polygon = rasterize_polygons(clipped, *out)
        what = f"{name} {params} shape {k} {source}->{out}"
        if exact:
            np.testing.assert_array_equal(by_bitmap, found, err_msg=what)
            np.testing.assert_array_equal(by_label, found, err_msg=what)
            np.testing.assert_array_equal(by_polygon, found, err_msg=what)
        elif found.sum() > 200:  # the shape is in view
            assert iou(by_bitmap, found) >= 0.95, what
            assert iou(by_label, found) >= 0.95, what
            assert iou(by_polygon, found) >= 0.95, what


@pytest.mark.parametrize(("source", "out"), SIZES)
@pytest.mark.parametrize("transform", MOVING, ids=IDS)
def test_masks_match_the_shapes_in_the_pixels(transform, source, out) -> None:
    exact = transform.name in ("original", "flip_x", "flip_y") and source == out
    for params in draws(transform, 3):
        check_all_forms(transform.name, params, source, out, exact)


@pytest.mark.parametrize("angle", [90.0, -90.0, 180.0])
@pytest.mark.parametrize("source", [(640, 480), (227, 400)])
def test_quarter_turns_are_exact(angle: float, source: tuple[int, int]) -> None:
    _, canvas = step_geometry("rotate", {"angle": angle}, *source)
    out = (round(canvas[0]), round(canvas[1]))
    check_all_forms("rotate", {"angle": angle}, source, out, exact=True)


def test_letterboxed_masks_match_the_pixels() -> None:
    source, out = (640, 480), (416, 416)
    parts = shapes(*source)
    image = source_image(parts, *source)
    for name, params in [("rotate", {"angle": 30.0}), ("shear_x", {"factor": -0.6})]:
        (fw, fh), (ox, oy) = letterbox(step_geometry(name, params, *source)[1], out)
        rendered = np.zeros((out[1], out[0], 3), np.uint8)
        rendered[oy : oy + fh, ox : ox + fw] = builtin(name).run(image, params, (1, 1), (fw, fh))
        matrix = output_matrix(name, params, source, out, letterboxed=True)
        picture = (float(ox), float(oy), float(ox + fw), float(oy + fh))
        kept, index = map_instances([[p] for p in parts], matrix, out, 0.0, picture)
        assert list(index) == [0, 1, 2]
        for k, mapped in enumerate(kept):
            found = rendered[..., k] > 127
            assert iou(rasterize_polygons(mapped, *out), found) >= 0.95, (name, k)


def test_min_visibility_drops_by_the_area_left_inside() -> None:
    """A disc pushed half out of the image keeps about half its area, measured in pixels."""
    source = out = (400, 300)
    t = np.linspace(0, 2 * math.pi, 129)[:-1]
    disc = np.stack([345.3 + 50 * np.cos(t), 150.2 + 50 * np.sin(t)], axis=1)
    mask = rasterize_polygons([disc], *source)
    shift = {"dx": 55.0, "dy": 0.0}
    matrix = output_matrix("translate", shift, source, out)
    image = np.repeat(mask[..., None] * np.uint8(255), 3, axis=2)
    rendered = builtin("translate").run(image, shift, (1.0, 1.0), out)
    seen = np.count_nonzero(rendered[..., 0] > 127) / np.count_nonzero(mask)
    assert 0.45 < seen < 0.55
    for shape in ([disc], mask):
        assert list(map_instances([shape], matrix, out, seen - 0.02)[1]) == [0]
        assert list(map_instances([shape], matrix, out, seen + 0.02)[1]) == []
    gone = output_matrix("translate", {"dx": 150.0, "dy": 0.0}, source, out)
    for shape in ([disc], mask):  # wholly outside: dropped even at 0
        assert list(map_instances([shape], gone, out, 0.0)[1]) == []


def test_tight_box_from_the_mask_is_inside_the_hull_box() -> None:
    """Rotated, the mask's box matches the pixels; the box mapped from the old box is looser."""
    source, out = (640, 480), (640, 480)
    parts = shapes(*source)
    image = source_image(parts, *source)
    params = {"angle": 35.0}
    rendered = builtin("rotate").run(image, params, (1.0, 1.0), out)
    matrix = output_matrix("rotate", params, source, out)
    for k, part in enumerate(parts):
        found = mask_box(rendered[..., k] > 127)
        clipped, _, _ = map_polygons([part], matrix, (0, 0, *out))
        tight = polygons_box(clipped)
        tight_raster = mask_box(map_bitmap(image[..., k] > 0, matrix, out))
        np.testing.assert_allclose(tight, found, atol=1.5)
        np.testing.assert_allclose(tight_raster, found, atol=1.5)
        old = np.array([mask_box(image[..., k] > 0)])
        hull = map_boxes(old, matrix, out, 0.0)[0][0]
        assert hull[0] <= tight[0] and hull[1] <= tight[1]
        assert hull[2] >= tight[2] and hull[3] >= tight[3]
    # The disc's hull grows with the turn; its mask's box does not.
    disc_w = polygons_box(map_polygons([parts[0]], matrix, (0, 0, *out))[0])
    disc_hull = map_boxes(np.array([polygons_box([parts[0]])]), matrix, out, 0.0)[0][0]
    assert (disc_hull[2] - disc_hull[0]) > 1.2 * (disc_w[2] - disc_w[0])


def test_clipping_keeps_exactly_the_pixels_inside() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(3, 14))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        r = rng.uniform(10, 90, n)
        poly = np.stack([rng.uniform(0, 120) + r * np.cos(ang), 50 + r * np.sin(ang)], axis=1)
        clipped = clip_polygon(poly, (0.0, 0.0, 120.0, 100.0))
        np.testing.assert_array_equal(
            rasterize_polygons([clipped], 120, 100), rasterize_polygons([poly], 120, 100)
        )
        assert polygon_area(clipped) <= polygon_area(poly) + 1e-9
    assert len(clip_polygon(np.array([[-5, -5], [-1, -5], [-1, -1]]), (0, 0, 10, 10))) == 0


def test_area_scale_is_the_determinant() -> None:
    matrix = output_matrix("shear_x", {"factor": 0.7}, (640, 480), (227, 227))
    square = np.array([[100, 100], [200, 100], [200, 200], [100, 200]], float)
    mapped, whole, _ = map_polygons([square], matrix, (-1e6, -1e6, 1e6, 1e6))
    assert whole == pytest.approx(area_scale(matrix) * 100 * 100)
    assert polygon_area(mapped[0]) == pytest.approx(whole)


def test_warp_labels_never_invents_a_value() -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array([0, 3, 7, 255], np.uint16), size=(60, 80))
    for angle in (13.0, 45.0, 77.0):
        matrix = output_matrix("rotate", {"angle": angle}, (80, 60), (50, 70))
        out = warp_labels(labels, matrix, (50, 70), fill=9)
        assert set(np.unique(out)) <= {0, 3, 7, 255, 9} and out.dtype == np.uint16


def test_transform_instances_keeps_each_form() -> None:
    source, out = (300, 300), (227, 227)
    parts = shapes(*source)
    mask = rasterize_polygons([parts[0]], *source)
    from augtool.annotations.masks import Rle, encode_rle

    instances = [
        Instance("disc", Polygons((parts[0],)), index=0),
        Instance("disc", Bitmap(mask), index=1),
        Instance("disc", encode_rle(mask), iscrowd=True, index=2),
    ]
    matrix = output_matrix("flip_y", {}, source, out)
    kept, index = transform_instances(instances, source, matrix, out, 0.3)
    assert list(index) == [0, 1, 2]
    assert isinstance(kept[0].shape, Polygons) and isinstance(kept[1].shape, Bitmap)
    assert isinstance(kept[2].shape, Rle) and kept[2].iscrowd
    assert (kept[2].shape.width, kept[2].shape.height) == out
    first = rasterize_polygons(kept[0].shape.parts, *out)
    assert iou(first, kept[1].shape.mask) >= 0.95
