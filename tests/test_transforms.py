"""The transform table: one parametrized test file over every entry."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from augtool.errors import OptionError
from augtool.ops.intensity import gaussian_blur, to_gray3
from augtool.pipeline.builtins import (
    ORIGINAL,
    PAPER,
    Ranges,
    builtin,
    paper_settings,
    parse_step_list,
)
from augtool.store.decode import choose_reduction, decode_rgb, resize_to
from tests.conftest import smear_like
from tests.mosaic import FACTOR_SIZES, jpeg_bytes, mosaic, smear_tile

ALL = [ORIGINAL, *PAPER.values()]


def settings_of(step, ranges: Ranges | None = None):
    """A paper step's settings at ``ranges`` (the paper's), or the step's own defaults."""
    if step.name in PAPER:
        return paper_settings(step.name, ranges or Ranges())
    return step.settings()


IDS = [t.name for t in ALL]
SIZE = 64


@pytest.fixture(scope="module")
def work() -> np.ndarray:
    return smear_like(np.random.default_rng(1), 150, 110)


def test_table_has_the_papers_ten_transforms() -> None:
    assert list(PAPER) == [
        "gray", "blur_rgb", "blur_gray", "histeq", "flip_x", "flip_y",
        "rotate", "translate", "shear_x", "shear_y",
    ]  # fmt: skip


@pytest.mark.parametrize("transform", ALL, ids=IDS)
def test_shape_dtype_and_input_untouched(transform, work: np.ndarray) -> None:
    before = work.copy()
    params = transform.sample(np.random.default_rng(0), settings_of(transform))
    out = transform.run(work, params, (1.0, 1.0), SIZE)
    assert out.shape == (SIZE, SIZE, 3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(work, before)


def _three_channel_reference(name: str, work: np.ndarray, params: dict, scale, size) -> np.ndarray:
    """The grey steps as they were computed before: every operation on three equal channels."""
    gray = to_gray3(work)
    if name == "blur_gray":
        gray = gaussian_blur(gray, params["sigma"], scale)
    elif name == "histeq":
        gray = cv2.merge([cv2.equalizeHist(gray[:, :, 0].copy())] * 3)
    return resize_to(gray, size)


@pytest.mark.parametrize("name", ["gray", "blur_gray", "histeq"])
def test_grey_steps_on_one_channel_give_the_three_channel_bytes(name: str) -> None:
    """One channel blurred and resized equals each of three equal channels, byte for byte.

    Shrinking (area halvings, then area) and enlarging (bilinear), square and
    not, smooth and noisy images, blur widths from under a pixel to several.
    """
    rng = np.random.default_rng(7)
    step = PAPER[name]
    for case in range(24):
        height, width = (int(v) for v in rng.integers(40, 700, size=2))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        if case % 2:
            image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 4)))
        size = (64, 227, 300, (227, 150), (500, 90), 640)[case % 6]
        scale = (float(rng.uniform(0.1, 1)), float(rng.uniform(0.1, 1)))
        params = {"sigma": float(rng.uniform(4, 8))} if name == "blur_gray" else {}
        out = step.run(image, params, scale, size)
        reference = _three_channel_reference(name, image, params, scale, size)
        assert out.tobytes() == reference.tobytes(), (name, case, image.shape, size)


@pytest.mark.parametrize("transform", ALL, ids=IDS)
def test_same_seed_same_params_same_bytes(transform, work: np.ndarray) -> None:
    p1 = transform.sample(np.random.default_rng(42), settings_of(transform))
    p2 = transform.sample(np.random.default_rng(42), settings_of(transform))
    assert p1 == p2
    a = transform.run(work, p1, (1.0, 1.0), SIZE)
    b = transform.run(work, p2, (1.0, 1.0), SIZE)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("transform", ALL, ids=IDS)
def test_parameters_within_ranges(transform) -> None:
    ranges = Ranges(
        sigma_range=(2.0, 3.0), rotate_range=(-10.0, 20.0),
        translate_range=(5.0, 7.0), shear_range=(0.4, 0.5),
    )  # fmt: skip
    rng = np.random.default_rng(7)
    signs = set()
    for _ in range(300):
        p = transform.sample(rng, settings_of(transform, ranges))
        if "sigma" in p:
            assert 2.0 <= p["sigma"] <= 3.0
        if "angle" in p:
            assert -10.0 <= p["angle"] <= 20.0
        for key in ("dx", "dy"):
            if key in p:
                assert 5.0 <= abs(p[key]) <= 7.0
                signs.add(math.copysign(1, p[key]))
        if "factor" in p:
            assert 0.4 <= abs(p["factor"]) <= 0.5
            signs.add(math.copysign(1, p["factor"]))
    if transform.name in ("translate", "shear_x", "shear_y"):
        assert signs == {-1.0, 1.0}


#: Parameter draws per transform in the working-resolution test (one for parameterless ones).
PSNR_DRAWS = 3


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (peak 255), as
    ``skimage.metrics.peak_signal_noise_ratio`` computes it for uint8; not imported
    from there because scikit-image brings SciPy, seconds of imports for every
    test worker that collects this module."""
    mse = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def test_psnr_is_the_textbook_formula() -> None:
    a = np.full((8, 6, 3), 100, np.uint8)
    b = a + 3  # every pixel off by 3: mean squared error 9
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 9))  # 38.59 dB
    b[0, 0] = 255  # 3 of the 144 values off by 155 instead of 3
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (9 + 3 * (155**2 - 9) / 144)))
    assert psnr(a, a) == math.inf


@pytest.fixture(scope="module", params=sorted(FACTOR_SIZES), ids=lambda k: f"factor{k}")
def full_and_reduced(request) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """A native-detail mosaic (real smears tiled, never resized) decoded in full and reduced.

    Sizes are the smallest realistic ones that get reduction factor 2, 4 or 8
    at output 227, so the working image is close to its minimum of 454 pixels
    on the short side: the hardest case for the working-resolution guarantee.
    """
    k = request.param
    width, height = FACTOR_SIZES[k]
    data = jpeg_bytes(mosaic(width, height))
    assert choose_reduction(width, height, 227) == k
    reduced = decode_rgb(data, k)
    assert 454 <= min(reduced.shape[:2]) < 2 * 454
    return decode_rgb(data, 1), reduced, (reduced.shape[1] / width, reduced.shape[0] / height)


@pytest.mark.parametrize("transform", ALL, ids=IDS)
def test_reduced_resolution_matches_full_resolution(transform, full_and_reduced) -> None:
    """Work at 1/2, 1/4, 1/8 resolution matches full resolution at the output size."""
    full, reduced, scale = full_and_reduced
    draws = [
        transform.sample(np.random.default_rng(seed), settings_of(transform))
        for seed in range(PSNR_DRAWS)
    ]
    for params in draws if draws[0] else draws[:1]:
        reference = transform.run(full, params, (1.0, 1.0), 227)
        fast = transform.run(reduced, params, scale, 227)
        assert psnr(reference, fast) >= 30.0, params


def test_mosaic_is_tiled_not_resized() -> None:
    """The test images keep native detail: every tile is a smear copied pixel for pixel."""
    big = mosaic(1300, 500, first=3)
    np.testing.assert_array_equal(big[:480, :640], smear_tile(3))
    np.testing.assert_array_equal(big[:480, 640:1280], smear_tile(4))
    np.testing.assert_array_equal(big[:20, 1280:], smear_tile(5)[:20, :20])
    np.testing.assert_array_equal(big[480:, :640], smear_tile(6)[:20])


def test_resize_keeps_pixel_centres() -> None:
    """A bright band stays centred on its source position through every halving."""
    x = np.arange(1024) + 0.5  # pixel i covers [i, i + 1)
    row = 255 * np.exp(-((x - 501.0) ** 2) / (2 * 40.0**2))
    img = np.repeat(np.round(row).astype(np.uint8)[None, :, None], 3, axis=2).repeat(1024, axis=0)
    out = resize_to(img, 32)[:, :, 0].astype(float)
    centre = (out.sum(0) * (np.arange(32) + 0.5)).sum() / out.sum()
    assert abs(centre - 501.0 * 32 / 1024) < 0.02


def test_flips_match_albumentations() -> None:
    A = pytest.importorskip("albumentations")
    img = smear_like(np.random.default_rng(3), 64, 64)
    ours_x = PAPER["flip_x"].run(img, {}, (1.0, 1.0), 64)
    ours_y = PAPER["flip_y"].run(img, {}, (1.0, 1.0), 64)
    np.testing.assert_array_equal(ours_x, A.VerticalFlip(p=1.0)(image=img)["image"])
    np.testing.assert_array_equal(ours_y, A.HorizontalFlip(p=1.0)(image=img)["image"])


def test_histeq_matches_albumentations_on_the_gray_image() -> None:
    A = pytest.importorskip("albumentations")
    img = smear_like(np.random.default_rng(4), 64, 64)
    gray = PAPER["gray"].run(img, {}, (1.0, 1.0), 64)
    theirs = A.Equalize(mode="cv", by_channels=True, p=1.0)(image=gray)["image"]
    np.testing.assert_array_equal(PAPER["histeq"].run(img, {}, (1.0, 1.0), 64), theirs)


def test_gray_is_within_one_level_of_albumentations() -> None:
    """albumentations weighs 0.299/0.587/0.114; the paper 0.2989/0.5870/0.1140."""
    A = pytest.importorskip("albumentations")
    img = smear_like(np.random.default_rng(6), 64, 64)
    ours = PAPER["gray"].run(img, {}, (1.0, 1.0), 64)
    theirs = A.ToGray(num_output_channels=3, method="weighted_average", p=1.0)(image=img)["image"]
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    assert (ours[:, :, 0] == ours[:, :, 1]).all() and (ours[:, :, 1] == ours[:, :, 2]).all()


def test_blur_matches_albumentations_gaussian_blur_at_fixed_sigma() -> None:
    A = pytest.importorskip("albumentations")
    img = smear_like(np.random.default_rng(8), 96, 96)
    ours = PAPER["blur_rgb"].run(img, {"sigma": 2.0}, (1.0, 1.0), 96)
    theirs = A.GaussianBlur(blur_limit=(0, 0), sigma_limit=(2.0, 2.0), p=1.0)(image=img)["image"]
    # Same Gaussian; borders differ (albumentations reflects, MATLAB and we replicate).
    inner = (slice(12, -12), slice(12, -12))
    assert np.abs(ours[inner].astype(int) - theirs[inner].astype(int)).max() <= 1


def test_rotate_is_counterclockwise_on_an_enlarged_canvas() -> None:
    img = smear_like(np.random.default_rng(9), 120, 80)
    ours = PAPER["rotate"].run(img, {"angle": 90.0}, (1.0, 1.0), 64)
    expected = cv2.resize(
        cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE), (64, 64), interpolation=cv2.INTER_AREA
    )
    assert np.abs(expected.astype(int) - ours.astype(int)).mean() < 1.0


def test_rotate_keeps_the_whole_image() -> None:
    img = np.full((80, 80, 3), 200, np.uint8)
    out = PAPER["rotate"].run(img, {"angle": 45.0}, (1.0, 1.0), 81)
    assert out[40, 40].min() > 190  # centre kept
    assert out[1, 1].max() < 10  # corners of the enlarged canvas are black fill
    assert out[40, 1].min() > 100  # the rotated square's left tip touches the canvas edge


def test_translate_moves_right_and_down_for_positive_shifts() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[40:60, 40:60] = 255
    out = PAPER["translate"].run(img, {"dx": 30.0, "dy": -20.0}, (1.0, 1.0), 100)
    ys, xs = np.nonzero(out[:, :, 0] > 128)
    assert abs(xs.mean() - 79.5) < 1 and abs(ys.mean() - 29.5) < 1


def test_shear_x_slants_lower_rows_right_for_a_positive_factor() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 45:55] = 255  # vertical bar
    out = PAPER["shear_x"].run(img, {"factor": 0.5}, (1.0, 1.0), 100)
    top = np.nonzero(out[5, :, 0] > 128)[0].mean()
    bottom = np.nonzero(out[95, :, 0] > 128)[0].mean()
    assert bottom > top + 20


def test_shear_y_canvas_grows_vertically() -> None:
    img = np.full((50, 100, 3), 255, np.uint8)
    out = PAPER["shear_y"].run(img, {"factor": -1.0}, (1.0, 1.0), 150)
    # Canvas 100 x 150 squashed to 150 x 150: half of it is black fill.
    assert 0.25 < (out[:, :, 0] > 128).mean() < 0.45


def test_ranges_are_validated_with_the_option_name() -> None:
    with pytest.raises(OptionError, match="rotate_range"):
        Ranges(rotate_range=(10.0, -10.0))
    with pytest.raises(OptionError, match="sigma_range"):
        Ranges(sigma_range=(0.0, 2.0))
    with pytest.raises(OptionError, match="translate_range"):
        Ranges(translate_range=(-5.0, 5.0))


def test_transform_list_parsing() -> None:
    assert parse_step_list(None) == list(PAPER)
    assert parse_step_list("rotate, flip_x") == ["rotate", "flip_x"]
    with pytest.raises(OptionError, match="unknown transform 'spin'"):
        parse_step_list("rotate,spin")
    with pytest.raises(OptionError, match="twice"):
        parse_step_list("rotate,rotate")
    with pytest.raises(OptionError):
        builtin("nope")
