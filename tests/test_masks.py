"""Mask forms and their conversions, checked against pycocotools (COCO's own reference)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from augtool.annotations.masks import (
    Bitmap,
    Instance,
    Polygons,
    Rle,
    compress_counts,
    decode_rle,
    decompress_counts,
    encode_rle,
    instance_boxes,
    mask_to_polygons,
    paint_ids,
    rasterize_polygons,
    rle_area,
    rle_box,
    shape_area,
    shape_box,
    split_ids,
    to_bitmap,
    to_polygons,
    to_rle,
)

H, W = 61, 83


def random_polygon(rng: np.random.Generator, spiky: bool = True) -> np.ndarray:
    """A star-shaped polygon: spiky ones may reach outside the image, the others not."""
    n = int(rng.integers(3, 14))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    if spiky:
        radii = rng.uniform(5, 40, n)
        centre = rng.uniform([10, 10], [W - 10, H - 10])
    else:
        radii = rng.uniform(12, 28, n)
        centre = rng.uniform([30, 30], [W - 30, H - 30])
    return np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)


def random_masks(count: int) -> list[np.ndarray]:
    """Polygons, blobs and noise: empty, full, touching every border."""
    rng = np.random.default_rng(11)
    masks = [np.zeros((H, W), bool), np.ones((H, W), bool)]
    for _ in range(count):
        masks.append(rasterize_polygons([random_polygon(rng)], W, H))
        masks.append(rng.random((H, W)) < 0.3)
    return masks


def filled(mask: np.ndarray) -> np.ndarray:
    """The mask with its holes filled (background 4-connected to the border is kept)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    cv2.floodFill(padded, None, (0, 0), 2, flags=4)
    return (padded != 2)[1:-1, 1:-1]


def test_rle_matches_pycocotools_counts_string_area_and_box() -> None:
    for mask in random_masks(30):
        ours = encode_rle(mask)
        theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert compress_counts(ours.counts) == theirs["counts"].decode("ascii")
        assert decompress_counts(theirs["counts"].decode("ascii"), H * W) == ours.counts
        assert sum(ours.counts) == H * W and (ours.height, ours.width) == (H, W)
        np.testing.assert_array_equal(decode_rle(ours), mask)
        assert rle_area(ours) == int(coco_mask.area(theirs)) == int(mask.sum())
        box = rle_box(ours)
        if mask.any():
            x, y, w, h = coco_mask.toBbox(theirs)
            assert box == (x, y, x + w, y + h)
        else:
            assert box is None


def test_compressed_counts_of_large_runs_round_trip() -> None:
    counts = (0, 5, 1_000_000, 3, 2**31, 7, 1)
    total = sum(counts)
    assert decompress_counts(compress_counts(counts), total) == counts


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("\x01", "not in COCO"),
        ("o", "cut short"),
        ("000P", "cut short"),
        ("1N", "pixels long"),
        ("o" * 13 + "0", "64 bits"),
        ("0" * 30, "more runs"),
    ],
)
def test_bad_compressed_counts_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        decompress_counts(text, 20)


def test_decode_refuses_counts_that_do_not_cover_the_mask() -> None:
    with pytest.raises(ValueError, match="sum to 5"):
        decode_rle(Rle(2, 3, (2, 3)))


def test_polygons_rasterise_as_pycocotools_does() -> None:
    """Pixel centres inside; pycocotools approximates the pixels an edge runs through."""
    rng = np.random.default_rng(5)
    compared = 0
    for _ in range(60):
        poly = random_polygon(rng, spiky=False)
        ours = rasterize_polygons([poly], W, H)
        rle = coco_mask.merge(coco_mask.frPyObjects([poly.ravel().tolist()], H, W))
        theirs = coco_mask.decode(rle).astype(bool)
        if theirs.sum() < 200:  # a sliver: all edge
            continue
        compared += 1
        assert np.count_nonzero(ours & theirs) / np.count_nonzero(ours | theirs) >= 0.97
        assert abs(int(ours.sum()) - int(coco_mask.area(rle))) <= 0.015 * theirs.sum()
    assert compared > 40


def test_polygon_raster_is_the_pixel_centres_inside() -> None:
    square = np.array([[2.4, 1.6], [5.5, 1.6], [5.5, 4.4], [2.4, 4.4]])
    mask = rasterize_polygons([square], 8, 6)
    expected = np.zeros((6, 8), bool)
    expected[2:4, 2:5] = True  # centres 2.5..4.5 in x (5.5 excluded: x < 5.5), 2.5, 3.5 in y
    np.testing.assert_array_equal(mask, expected)
    # Two parts are their union; a part reaching outside is cut by the image.
    parts = [square, np.array([[-3.0, -3.0], [1.0, -3.0], [1.0, 1.0]])]
    union = rasterize_polygons(parts, 8, 6)
    assert union[0, 0] and union[2:4, 2:5].all() and union.sum() == 7


def test_outlines_give_the_bitmap_back_exactly_holes_filled() -> None:
    for mask in random_masks(30):
        parts = mask_to_polygons(mask)
        np.testing.assert_array_equal(rasterize_polygons(parts, W, H), filled(mask))
        for part in parts:  # along pixel edges
            assert np.array_equal(part, np.round(part))
    ring = np.zeros((20, 20), bool)
    ring[3:17, 3:17] = True
    ring[7:13, 7:13] = False
    assert rasterize_polygons(mask_to_polygons(ring), 20, 20).sum() == 14 * 14


def test_shapes_convert_among_the_three_forms() -> None:
    rng = np.random.default_rng(2)
    poly = Polygons((random_polygon(rng, spiky=False),))
    mask = to_bitmap(poly, W, H)
    rle = to_rle(poly, W, H)
    for shape in (poly, rle, Bitmap(mask), to_polygons(rle, W, H), to_polygons(Bitmap(mask), W, H)):
        np.testing.assert_array_equal(to_bitmap(shape, W, H), mask)
        assert shape_area(shape, W, H) == mask.sum()
    pixel_box = shape_box(rle, W, H)
    assert shape_box(Bitmap(mask), W, H) == pixel_box
    vertex_box = shape_box(poly, W, H)  # continuous: within a pixel of the raster's
    np.testing.assert_allclose(vertex_box, pixel_box, atol=1.0)
    with pytest.raises(ValueError, match="the mask is 10x10"):
        to_bitmap(Bitmap(np.zeros((10, 10), bool)), W, H)
    boxes = instance_boxes(
        [Instance("a", rle), Instance("b", Bitmap(np.zeros((H, W), bool)))], W, H
    )
    assert tuple(boxes[0]) == pixel_box and np.isnan(boxes[1]).all()


def test_id_maps_split_into_the_instances_painted() -> None:
    rng = np.random.default_rng(4)
    instances = [Instance(str(k), Polygons((random_polygon(rng),))) for k in range(5)]
    ids = paint_ids(instances, W, H)
    assert ids.dtype == np.uint8
    found = split_ids(ids)
    for k, rle in found.items():
        np.testing.assert_array_equal(decode_rle(rle), ids == k)
        assert rle == encode_rle(ids == k)
    top = to_bitmap(instances[-1].shape, W, H)
    assert (ids[top] == 5).all()  # the last painted is on top
    many = [Instance("a", Bitmap(np.eye(1, 300, k, dtype=bool))) for k in range(300)]
    assert paint_ids(many, 300, 1).dtype == np.uint16
