"""Tests of augtool.ops.pca: the batched PCA colour augmentation against a plain reference."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from augtool.errors import OptionError
from augtool.ops import pca_kernels
from augtool.ops.pca import (
    DEFAULT_MODE,
    DEFAULT_STD,
    PcaResult,
    apply_pca,
    apply_pca_shift,
    default_chunk_size,
    pca_jitter,
    sample_alphas,
)
from augtool.ops.pca_kernels import FIXED_BITS, WEIGHT_LIMIT, numpy_backend, torch_backend
from augtool.ops.pca_kernels import run as run_chunks
from augtool.store.decode import IMAGE_SUFFIXES, load_resized

CELLS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bccd-cells"
HAVE_TORCH = importlib.util.find_spec("torch") is not None
#: Every accepted (mode, scale) pair.
SETTINGS = [("pixel", "relative"), ("shift", "relative"), ("shift", "unit"), ("shift", "byte")]


def principal_axes(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns, canonical sign) of ``np.cov``."""
    cov = np.cov(data, rowvar=False) if len(data) > 1 else np.zeros((3, 3))
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.maximum(values[order], 0.0), vectors[:, order]
    for i in range(3):  # canonical sign: largest-magnitude component positive
        if vectors[np.argmax(np.abs(vectors[:, i])), i] < 0:
            vectors[:, i] = -vectors[:, i]
    return values, vectors


def reference(
    image: np.ndarray, alphas: np.ndarray, mode: str, scale: str
) -> tuple[np.ndarray, np.ndarray]:
    """PCA colour augmentation of one image in float64, written out step by step.

    Pixels are taken in [0, 1] for ``unit`` and in grey levels otherwise; the
    relative weights do not care. Returns the image (rounded half up and
    clipped) and the change of every pixel in grey levels, (P, 3).
    """
    x = image.reshape(-1, 3).astype(np.float64)
    units = 255.0 if scale == "unit" else 1.0
    data = x / units
    values, vectors = principal_axes(data)
    change = np.zeros_like(x)
    for i, alpha in enumerate(alphas):
        e = vectors[:, i]
        if scale == "relative":
            w = 0.0 if values[0] == 0 else alpha * values[i] / values[0]
            w = min(max(w, -WEIGHT_LIMIT), WEIGHT_LIMIT)
            if mode == "pixel":  # each pixel's projection y_i becomes exp(w_i) y_i
                y = (data - data.mean(axis=0)) @ e
                change += units * np.expm1(w) * y[:, None] * e
            else:  # the shift of a pixel one standard deviation out along e_1
                change += units * w * np.sqrt(values[0]) * e
        else:
            change += units * alpha * values[i] * e
    out = np.clip(np.floor(x + change + 0.5), 0, 255).astype(np.uint8)
    return out.reshape(image.shape), change


def smear_like(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A pinkish generated smear: pale background, pink discs, a purple nucleus."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.empty((size, size, 3))
    image[:] = (232, 214, 222)
    for _ in range(6):
        cy, cx = rng.uniform(0, size, 2)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < (size / 8) ** 2] = (214, 140, 160)
    image[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 6) ** 2] = (110, 60, 150)
    image += rng.normal(0, 6, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def realistic_images() -> np.ndarray:
    """Real BCCD cells (64 x 64) when the shared data exists, else generated smears."""
    paths = sorted(p for p in CELLS.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if paths:
        return np.stack([load_resized(p, 64) for p in paths[:: max(1, len(paths) // 4)][:4]])
    rng = np.random.default_rng(3)
    return np.stack([smear_like(rng) for _ in range(4)])


def assert_matches_reference(images: np.ndarray, result: PcaResult, mode: str, scale: str) -> None:
    for n, (image, out, alphas) in enumerate(
        zip(images, result.images, result.alphas, strict=True)
    ):
        expected, change = reference(image, alphas, mode, scale)
        assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
        if mode == "shift":
            np.testing.assert_allclose(result.shifts[n], change[0], rtol=1e-9, atol=1e-9)
            assert np.all(result.linear[n] == 0)
        else:
            centred = image.reshape(-1, 3) - result.means[n]
            np.testing.assert_allclose(centred @ result.linear[n].T, change, atol=1e-6)
            assert np.all(result.shifts[n] == 0)


@pytest.mark.parametrize(("mode", "scale"), SETTINGS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_random_images_match_reference(mode: str, scale: str, k: int) -> None:
    rng = np.random.default_rng(10 + k)
    images = rng.integers(0, 256, (6, 23, 17, 3), dtype=np.uint8)
    result = pca_jitter(images, np.random.default_rng(k), std=0.3, k=k, mode=mode, scale=scale)
    assert result.images.shape == images.shape and result.images.dtype == np.uint8
    assert result.alphas.shape == (6, k) and result.weights.shape == (6, k)
    assert_matches_reference(images, result, mode, scale)


@pytest.mark.parametrize(("mode", "scale"), SETTINGS)
def test_realistic_images_match_reference(mode: str, scale: str) -> None:
    images = realistic_images()
    result = pca_jitter(images, np.random.default_rng(0), std=0.5, mode=mode, scale=scale)
    assert_matches_reference(images, result, mode, scale)
    assert not np.array_equal(result.images, images)
    for image, values, mean in zip(images, result.eigenvalues, result.means, strict=True):
        data = image.reshape(-1, 3) / (255.0 if scale == "unit" else 1.0)
        expected = np.sort(np.linalg.eigvalsh(np.cov(data, rowvar=False)))[::-1]
        np.testing.assert_allclose(values, np.maximum(expected, 0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(mean, image.reshape(-1, 3).mean(axis=0), rtol=1e-12)


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_images_larger_than_one_summation_block_match_reference(mode: str) -> None:
    # 300 x 300 = 90,000 bright pixels: sums of squares near 5e9 > 2**32, more than
    # the 65,536-pixel blocks summed in uint32 can hold at once.
    image = np.random.default_rng(7).integers(200, 256, (1, 300, 300, 3), dtype=np.uint8)
    result = apply_pca(image, np.array([[0.3, -0.2, 0.1]]), mode=mode)
    assert_matches_reference(image, result, mode, "relative")


@pytest.mark.parametrize(("mode", "scale"), SETTINGS)
def test_uniform_image_comes_back_unchanged(mode: str, scale: str) -> None:
    images = np.empty((3, 9, 11, 3), dtype=np.uint8)
    images[:] = np.array([[0], [128], [255]], dtype=np.uint8)[:, None, None, :]
    images[1, ..., 2] = 40
    result = pca_jitter(images, np.random.default_rng(0), std=5.0, mode=mode, scale=scale)
    assert np.array_equal(result.images, images)
    assert np.all(result.eigenvalues == 0.0)
    assert np.all(result.shifts == 0.0) and np.all(result.linear == 0.0)


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_single_pixel_image_has_zero_covariance(mode: str) -> None:
    image = np.array([[[[10, 200, 30]]]], dtype=np.uint8)
    result = apply_pca(image, np.array([[1.0, 1.0, 1.0]]), mode=mode)
    assert np.array_equal(result.images, image)
    assert np.all(result.eigenvalues == 0.0)


@pytest.mark.parametrize(("mode", "scale"), SETTINGS)
def test_grey_image_stays_grey(mode: str, scale: str) -> None:
    rng = np.random.default_rng(4)
    levels = rng.integers(40, 200, (2, 20, 20), dtype=np.uint8)
    images = np.repeat(levels[..., None], 3, axis=3)
    result = pca_jitter(images, np.random.default_rng(1), std=0.3, mode=mode, scale=scale)
    assert_matches_reference(images, result, mode, scale)
    # Rank one: one eigenvalue 3 * var, the others 0; e_1 = (1, 1, 1) / sqrt(3).
    unit = 255.0 if scale == "unit" else 1.0
    for grey, values, vectors in zip(levels, result.eigenvalues, result.eigenvectors, strict=True):
        variance = np.var(grey.astype(np.float64) / unit, ddof=1)
        np.testing.assert_allclose(values, [3 * variance, 0, 0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(vectors[0], np.full(3, 3**-0.5), rtol=1e-9)
    out = result.images
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert not np.array_equal(out, images)


def test_no_uint8_wraparound_near_0_and_255() -> None:
    rng = np.random.default_rng(5)
    images = np.concatenate(
        [
            rng.integers(0, 4, (2, 16, 16, 3), dtype=np.uint8),
            rng.integers(252, 256, (2, 16, 16, 3), dtype=np.uint8),
        ]
    )
    images[:, :8, :, 0] = np.where(images[:, :8, :, 0] < 128, 250, 5)  # strong colour variance
    # Byte scale and large weights: shifts of hundreds of grey levels, both signs.
    alphas = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    result = apply_pca_shift(images, alphas, scale="byte")
    assert np.abs(result.shifts).max() > 100
    assert_matches_reference(images, result, "shift", "byte")
    moved_up = result.shifts > 0.5
    for n in range(4):
        for channel in range(3):
            before = images[n, ..., channel].astype(int)
            after = result.images[n, ..., channel].astype(int)
            if moved_up[n, channel]:
                assert np.all(after >= before)
            elif result.shifts[n, channel] < -0.5:
                assert np.all(after <= before)
    # The pixel mode at the weight limit pushes most pixels past 0 and 255: clipped, not wrapped.
    pixel = apply_pca(images, np.full((4, 3), WEIGHT_LIMIT), mode="pixel")
    assert_matches_reference(images, pixel, "pixel", "relative")
    assert np.count_nonzero((pixel.images == 0) | (pixel.images == 255)) > images.size // 4


def test_pixel_mode_weights_are_clipped_to_the_limit() -> None:
    images = realistic_images()
    alphas = np.array([[5.0, 0.0, 0.0], [-40.0, 0.0, 0.0], [1.0, 9.0, 0.0], [0.5, 0.0, -9.0]])
    result = apply_pca(images, alphas, mode="pixel")
    assert np.abs(result.weights).max() == WEIGHT_LIMIT
    np.testing.assert_array_equal(result.weights[:2, 0], [WEIGHT_LIMIT, -WEIGHT_LIMIT])
    assert_matches_reference(images, result, "pixel", "relative")


def test_pixel_mode_is_the_exact_fixed_point_map() -> None:
    # float32 BLAS on the CPU must give exactly floor(A x + b) of the 2**-12 coefficients,
    # at the extreme weights too: that is what makes every device give the same bytes.
    rng = np.random.default_rng(12)
    images = rng.integers(0, 256, (8, 41, 221, 3), dtype=np.uint8)  # two pixel blocks
    alphas = rng.choice([-WEIGHT_LIMIT, WEIGHT_LIMIT], (8, 3)) * rng.uniform(0.5, 1.5, (8, 3))
    result = apply_pca(images, alphas, mode="pixel")
    unit = 2.0**FIXED_BITS
    for image, out, matrix, mean in zip(
        images, result.images, result.linear, result.means, strict=True
    ):
        a = np.rint((np.eye(3) + matrix) * unit) / unit
        b = np.rint(-matrix @ mean * unit) / unit + 0.5
        x = image.reshape(-1, 3).astype(np.float64)
        expected = np.clip(np.floor(x @ a.T + b), 0, 255).astype(np.uint8)
        assert np.array_equal(out.reshape(-1, 3), expected)


def test_cpu_affine_is_the_floor_at_ties_and_at_the_extremes() -> None:
    # The CPU map rounds A x + b - 1/2 + 2**-13 with OpenCV: it must be floor(A x + b) where
    # A x + b is an integer (a tie without the 2**-13), a half, or far outside [0, 255].
    unit = 2.0**FIXED_BITS
    rng = np.random.default_rng(21)
    images = rng.integers(0, 256, (6, 17, 19, 3), dtype=np.uint8)
    images[:, 0, :4] = [[0, 0, 0], [255, 255, 255], [1, 2, 3], [254, 253, 252]]
    limit = np.expm1(WEIGHT_LIMIT)
    coefficients = np.zeros((6, 3, 4))
    coefficients[0, :, :3] = np.eye(3)  # y = x: integers everywhere
    coefficients[1, :, :3] = np.eye(3)
    coefficients[1, :, 3] = 0.5  # y = x + 1/2
    coefficients[2, :, :3] = 0.5 * np.eye(3)  # y = x / 2: integers and halves
    coefficients[3, :, :3] = np.eye(3) + limit  # sums near 4096
    coefficients[3, :, 3] = 0.5
    coefficients[4, :, :3] = np.eye(3) - limit / 2  # sums near -1900
    coefficients[4, :, 3] = 3.0
    coefficients[5] = np.rint(rng.uniform(-2.5, 2.5, (3, 4)) * unit) / unit
    coefficients[:, :, :3] = np.rint(coefficients[:, :, :3] * unit) / unit
    out = np.empty_like(images)
    backend = numpy_backend()
    backend.affine(images, coefficients, out)
    for image, result, c in zip(images, out, coefficients, strict=True):
        x = image.reshape(-1, 3).astype(np.float64)
        expected = np.clip(np.floor(x @ c[:, :3].T + c[:, 3]), 0, 255).astype(np.uint8)
        assert np.array_equal(result.reshape(-1, 3), expected)
    assert np.array_equal(out[0], images[0]) and np.array_equal(out[1], images[1])


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (64, 64), (300, 300), (1000, 1100)])
def test_cpu_moments_are_exact_integers(size: tuple[int, int]) -> None:
    # OpenCV's float64 norms are rounded back to integers: exact up to 1.1 M pixels of 255.
    rng = np.random.default_rng(size[0])
    images = [
        rng.integers(0, 256, (2, *size, 3), dtype=np.uint8),
        rng.integers(0, 2, (2, *size, 3), dtype=np.uint8) * 255,
        np.full((2, *size, 3), 255, dtype=np.uint8),
    ]
    images[2][1, ..., 1] = 0
    for chunk in images:
        sums, squares, cross = numpy_backend().moments(chunk)
        x = chunk.reshape(2, -1, 3).astype(np.int64)
        assert sums.dtype == squares.dtype == cross.dtype == np.int64
        assert np.array_equal(sums, x.sum(axis=1))
        assert np.array_equal(squares, (x * x).sum(axis=1))
        assert np.array_equal(cross, (x * np.roll(x, -1, axis=2)).sum(axis=1))


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_opencv_and_planar_moments_give_the_same_bytes(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Images above OPENCV_MOMENT_PIXELS take the planar uint16 sums instead: same result.
    images = np.concatenate(
        [
            realistic_images(),
            np.random.default_rng(4).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8),
        ]
    )
    alphas = np.random.default_rng(5).normal(0, 0.7, (len(images), 3))
    opencv = apply_pca(images, alphas, mode=mode)
    monkeypatch.setattr(pca_kernels, "OPENCV_MOMENT_PIXELS", 0)
    planar = apply_pca(images, alphas, mode=mode)
    assert np.array_equal(opencv.images, planar.images)
    assert np.array_equal(opencv.eigenvalues, planar.eigenvalues)
    assert np.array_equal(opencv.means, planar.means)


def test_pixel_mode_changes_pixels_far_from_the_mean_most() -> None:
    # k = 1: every pixel moves along e_1 by w_1 times its own projection on e_1.
    images = realistic_images()
    result = apply_pca(images, np.full((len(images), 1), 0.4), mode="pixel")
    for image, out, vectors, mean in zip(
        images, result.images, result.eigenvectors, result.means, strict=True
    ):
        x = image.reshape(-1, 3).astype(np.float64)
        projection = (x - mean) @ vectors[0]
        change = out.reshape(-1, 3).astype(np.float64) - x
        inside = np.all((out.reshape(-1, 3) > 0) & (out.reshape(-1, 3) < 255), axis=1)
        expected = np.expm1(0.4) * projection[:, None] * vectors[0]
        assert np.abs(change - expected)[inside].max() <= 0.6
        far = np.abs(projection) >= np.percentile(np.abs(projection), 90)
        near = np.abs(projection) <= np.percentile(np.abs(projection), 25)
        assert np.abs(change[far]).mean() > 2 * np.abs(change[near]).mean()


def test_pixel_mode_never_inverts_the_contrast() -> None:
    # The strongest negative weight shrinks every projection on e_1 (by exp(-1.25)), it
    # never flips it: pixels keep their order along the main axis, nuclei stay darker.
    images = realistic_images()
    result = apply_pca(images, np.full((len(images), 1), -WEIGHT_LIMIT), mode="pixel")
    for image, out, vectors, mean in zip(
        images, result.images, result.eigenvectors, result.means, strict=True
    ):
        before = (image.reshape(-1, 3) - mean) @ vectors[0]
        after = (out.reshape(-1, 3) - mean) @ vectors[0]
        np.testing.assert_allclose(after, np.exp(-WEIGHT_LIMIT) * before, atol=1.0)
        assert np.corrcoef(before, after)[0, 1] > 0.99


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_relative_strength_does_not_depend_on_pixel_units(mode: str) -> None:
    # The same picture counted in units three times larger: x and 3x. A unit-free
    # strength scales the change by 3 as well; the pixel mode's matrix is the same.
    rng = np.random.default_rng(13)
    small = np.stack([smear_like(rng, 48) // 3 for _ in range(3)])
    large = small * np.uint8(3)
    alphas = sample_alphas(np.random.default_rng(2), 3, std=0.5)
    a, b = apply_pca(small, alphas, mode=mode), apply_pca(large, alphas, mode=mode)
    np.testing.assert_allclose(b.eigenvalues, 9 * a.eigenvalues, rtol=1e-9)
    np.testing.assert_allclose(b.weights, a.weights, rtol=1e-9)
    np.testing.assert_allclose(b.linear, a.linear, atol=1e-12)
    np.testing.assert_allclose(b.shifts, 3 * a.shifts, rtol=1e-9, atol=1e-12)
    inside = (b.images > 0) & (b.images < 255)  # where the larger units did not clip
    assert np.count_nonzero(inside) > 0.9 * inside.size
    assert np.abs(b.images.astype(int) - 3 * a.images.astype(int))[inside].max() <= 2
    assert not np.array_equal(a.images, small)
    # The reference on [0, 1] pixels and on grey levels gives the same picture.
    for image, alpha in zip(large, alphas, strict=True):
        unit_change = reference(image, alpha, mode, "relative")[1]
        data = image.reshape(-1, 3) / 255.0
        values, vectors = principal_axes(data)
        w = np.clip(alpha * values / values[0], -WEIGHT_LIMIT, WEIGHT_LIMIT)
        if mode == "pixel":
            y = (data - data.mean(axis=0)) @ vectors
            change01 = (y * np.expm1(w)) @ vectors.T
        else:
            change01 = np.broadcast_to(np.sqrt(values[0]) * vectors @ w, data.shape)
        np.testing.assert_allclose(255.0 * change01, unit_change, atol=1e-9)


def test_legacy_scales_depend_on_pixel_units() -> None:
    # What the relative scale fixes: on [0, 255] the shift grows with the square of the units.
    rng = np.random.default_rng(13)
    small = np.stack([smear_like(rng, 48) // 3 for _ in range(2)])
    alphas = np.full((2, 3), 0.1)
    a = apply_pca_shift(small, alphas, scale="byte")
    b = apply_pca_shift(small * np.uint8(3), alphas, scale="byte")
    np.testing.assert_allclose(b.shifts, 9 * a.shifts, rtol=1e-9)
    byte = apply_pca_shift(small, alphas, scale="byte").shifts
    unit = apply_pca_shift(small, alphas, scale="unit").shifts
    np.testing.assert_allclose(byte, 255 * unit, rtol=1e-9)


@pytest.mark.parametrize(("mode", "scale"), SETTINGS)
def test_same_seed_same_bytes_and_different_seed_different_bytes(mode: str, scale: str) -> None:
    images = realistic_images()

    def run(seed: int) -> PcaResult:
        return pca_jitter(images, np.random.default_rng(seed), std=0.3, mode=mode, scale=scale)

    first, second, other = run(42), run(42), run(43)
    assert first.images.tobytes() == second.images.tobytes()
    assert np.array_equal(first.alphas, second.alphas)
    if scale != "unit":  # unit-scale changes are below one grey level on these images
        assert not np.array_equal(first.images, other.images)


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_chunk_size_does_not_change_bytes(mode: str) -> None:
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (11, 13, 10, 3), dtype=np.uint8)
    alphas = sample_alphas(np.random.default_rng(0), 11, k=3, std=0.4)
    results = [
        apply_pca(images, alphas, mode=mode, chunk_size=size) for size in (None, 1, 2, 3, 7, 11, 50)
    ]
    for result in results[1:]:
        assert result.images.tobytes() == results[0].images.tobytes()
        assert np.array_equal(result.eigenvalues, results[0].eigenvalues)
        assert np.array_equal(result.eigenvectors, results[0].eigenvectors)
        assert np.array_equal(result.linear, results[0].linear)


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_sampling_is_separate_from_applying(mode: str) -> None:
    images = realistic_images()
    n = len(images)
    joint = pca_jitter(images, np.random.default_rng(8), std=0.2, k=2, mode=mode)
    alphas = sample_alphas(np.random.default_rng(8), n, k=2, std=0.2)
    split = apply_pca(images, alphas, mode=mode)
    assert np.array_equal(joint.alphas, alphas)
    assert joint.images.tobytes() == split.images.tobytes()
    # One row at a time from the same generator gives the same alphas as n rows at once.
    rng = np.random.default_rng(8)
    rows = np.concatenate([sample_alphas(rng, 1, k=2, std=0.2) for _ in range(n)])
    assert np.array_equal(rows, alphas)


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_per_output_generators_then_one_batch(mode: str) -> None:
    images = realistic_images()
    generators = [np.random.default_rng(seed) for seed in (11, 12, 13, 14)]
    alphas = np.concatenate([sample_alphas(g, 1, k=3, std=0.3) for g in generators])
    batch = apply_pca(images, alphas, mode=mode)
    for n, seed in enumerate((11, 12, 13, 14)):
        alone = pca_jitter(images[n : n + 1], np.random.default_rng(seed), std=0.3, mode=mode)
        assert alone.images[0].tobytes() == batch.images[n].tobytes()


@pytest.mark.parametrize("k", [1, 2])
def test_k_below_3_keeps_only_the_largest_components(k: int) -> None:
    images = realistic_images()
    alphas = np.full((len(images), k), 0.5)
    shift = apply_pca_shift(images, alphas, scale="byte")
    for s, values, vectors in zip(shift.shifts, shift.eigenvalues, shift.eigenvectors, strict=True):
        assert values[0] > values[1] > values[2]
        coordinates = vectors @ s
        np.testing.assert_allclose(coordinates[:k], 0.5 * values[:k], rtol=1e-9)
        assert np.all(np.abs(coordinates[k:]) <= 1e-9 * np.linalg.norm(s))
    assert_matches_reference(images, shift, "shift", "byte")
    pixel = apply_pca(images, alphas, mode="pixel")
    for matrix, values, vectors in zip(
        pixel.linear, pixel.eigenvalues, pixel.eigenvectors, strict=True
    ):
        # M e_i = (exp(w_i) - 1) e_i with w_i = alpha_i lambda_i / lambda_1, and 0 beyond k.
        gains = np.einsum("ic,cj,ij->i", vectors, matrix, vectors)
        expected = np.where(np.arange(3) < k, np.expm1(0.5 * values / values[0]), 0.0)
        np.testing.assert_allclose(gains, expected, atol=1e-12)
    assert_matches_reference(images, pixel, "pixel", "relative")


def test_eigenvectors_are_orthonormal_with_canonical_sign() -> None:
    images = np.random.default_rng(9).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    result = pca_jitter(images, np.random.default_rng(0))
    for vectors in result.eigenvectors:
        np.testing.assert_allclose(vectors @ vectors.T, np.eye(3), atol=1e-12)
        for vector in vectors:
            assert vector[np.argmax(np.abs(vector))] > 0
    assert np.all(np.diff(result.eigenvalues, axis=1) <= 0)


@pytest.mark.parametrize(("mode", "scale"), SETTINGS)
def test_input_is_not_mutated_and_output_is_new(mode: str, scale: str) -> None:
    images = realistic_images()
    before = images.copy()
    result = pca_jitter(images, np.random.default_rng(0), std=1.0, mode=mode, scale=scale)
    assert np.array_equal(images, before)
    assert not np.shares_memory(result.images, images)
    zero = pca_jitter(images, np.random.default_rng(0), std=0.0, mode=mode, scale=scale)
    assert np.array_equal(zero.images, images)
    assert not np.shares_memory(zero.images, images)


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_non_contiguous_input_equals_contiguous_copy(mode: str) -> None:
    images = np.random.default_rng(2).integers(0, 256, (4, 20, 30, 3), dtype=np.uint8)
    view = images[::-1, 1::2, ::3]
    alphas = sample_alphas(np.random.default_rng(0), 4, std=0.3)
    assert np.array_equal(
        apply_pca(view, alphas, mode=mode).images,
        apply_pca(np.ascontiguousarray(view), alphas, mode=mode).images,
    )


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_read_only_input_is_accepted(mode: str) -> None:
    images = realistic_images()
    images.setflags(write=False)
    result = pca_jitter(images, np.random.default_rng(0), std=0.5, mode=mode)
    assert_matches_reference(images, result, mode, "relative")


def test_defaults_are_the_pixel_mode_on_the_relative_scale() -> None:
    images = realistic_images()
    alphas = sample_alphas(np.random.default_rng(0), len(images))
    assert np.std(sample_alphas(np.random.default_rng(1), 20000, k=1)) == pytest.approx(
        DEFAULT_STD, rel=0.03
    )
    default = apply_pca(images, alphas)
    explicit = apply_pca(images, alphas, mode=DEFAULT_MODE, scale="relative")
    assert DEFAULT_MODE == "pixel"
    assert default.images.tobytes() == explicit.images.tobytes()


def test_default_chunk_size_bounds_working_memory() -> None:
    assert default_chunk_size(227 * 227, "cpu") == 64  # OpenCV moments: no chunk buffer
    assert default_chunk_size(2592 * 1944, "cpu") == 64
    assert default_chunk_size(5000 * 5000, "cpu") == 1  # planar moments: 2 x 2.5 MB buffers
    assert default_chunk_size(227 * 227, "cuda") == 256
    assert default_chunk_size(2592 * 1944, "cuda") == 4


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_empty_batch(mode: str) -> None:
    images = np.zeros((0, 5, 5, 3), dtype=np.uint8)
    result = pca_jitter(images, np.random.default_rng(0), k=2, mode=mode)
    assert result.images.shape == (0, 5, 5, 3)
    assert result.alphas.shape == (0, 2)
    assert result.eigenvalues.shape == (0, 3)


def test_default_copies_of_a_generated_set_all_differ_from_their_originals(
    make_raw: Callable[..., Path],
) -> None:
    # The criterion of the default on generated data, through expand's own plan and
    # renderer: 48 PCA copies of 24 generated sources, none byte-identical to its original.
    from augtool.engine.options import ExpandOptions
    from augtool.engine.plan import plan_run
    from augtool.engine.render import RenderSettings, SourceTask, render_source
    from augtool.engine.scan import scan
    from augtool.pipeline.steps import PCA
    from augtool.progress import NoProgress

    raw = make_raw({"ALL": 8, "AML": 8, "normal": 8}, size=(96, 72))
    options = ExpandOptions(size=64, target=24, pca_count=48, split="none")
    run = plan_run(scan(raw), options, NoProgress())
    settings = RenderSettings(size=64, seed=0, encoding="array")
    assert settings.pca.mode == DEFAULT_MODE and settings.pca.std == DEFAULT_STD
    copies = 0
    for s, source in enumerate(run.scan.sources):
        jobs = tuple((i, j.copy, j.transform) for i, j in enumerate(run.jobs) if j.source == s)
        task = SourceTask(str(raw / source.path), source.sha256, source.width, source.height, jobs)
        rendered = render_source(task, settings)
        original = np.asarray(rendered[0].payload)
        for (_, _, name), item in zip(jobs, rendered, strict=True):
            if name == PCA:
                copies += 1
                assert not np.array_equal(np.asarray(item.payload), original), item.params
    assert copies == 48


GOOD = np.zeros((2, 4, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("option", "kwargs"),
    [
        ("std", {"std": -0.1}),
        ("std", {"std": float("nan")}),
        ("std", {"std": "0.1"}),
        ("k", {"k": 0}),
        ("k", {"k": 4}),
        ("k", {"k": 2.0}),
        ("k", {"k": True}),
        ("mode", {"mode": "pixels"}),
        ("scale", {"scale": "bytes"}),
        ("scale", {"mode": "pixel", "scale": "unit"}),
        ("scale", {"mode": "pixel", "scale": "byte"}),
        ("chunk_size", {"chunk_size": 0}),
        ("chunk_size", {"chunk_size": 1.5}),
        ("device", {"device": "gpu"}),
        ("images", {"images": GOOD.astype(np.float32)}),
        ("images", {"images": np.zeros((2, 4, 4, 4), dtype=np.uint8)}),
        ("images", {"images": np.zeros((4, 4, 3), dtype=np.uint8)}),
        ("images", {"images": np.zeros((2, 0, 4, 3), dtype=np.uint8)}),
        ("images", {"images": GOOD.tolist()}),
        ("rng", {"rng": 0}),
        ("rng", {"rng": np.random.RandomState(0)}),
    ],
)
def test_pca_jitter_validates_arguments(option: str, kwargs: dict) -> None:
    arguments = {"images": GOOD, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(OptionError) as error:
        pca_jitter(**arguments)
    assert error.value.option == option
    assert option in str(error.value)


@pytest.mark.parametrize(
    "alphas",
    [np.zeros((3, 3)), np.zeros((2, 4)), np.zeros((2, 0)), np.zeros(2), np.full((2, 3), np.inf)],
)
@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_apply_validates_alphas(alphas: np.ndarray, mode: str) -> None:
    with pytest.raises(OptionError) as error:
        apply_pca(GOOD, alphas, mode=mode)
    assert error.value.option == "alphas"


def test_sample_alphas_validates_and_draws_normal_weights() -> None:
    with pytest.raises(OptionError, match=r"^n:"):
        sample_alphas(np.random.default_rng(0), -1)
    with pytest.raises(OptionError, match=r"^std:"):
        sample_alphas(np.random.default_rng(0), 2, std=-1.0)
    alphas = sample_alphas(np.random.default_rng(0), 20000, k=3, std=0.1)
    assert alphas.shape == (20000, 3) and alphas.dtype == np.float64
    assert abs(alphas.std() - 0.1) < 0.002 and abs(alphas.mean()) < 0.002


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
def test_torch_backend_on_cpu_gives_the_same_bytes() -> None:
    # The CUDA path's code, run on torch's CPU device: same moments, same bytes.
    images = np.concatenate([realistic_images(), realistic_images()[:, ::-1]])
    alphas = sample_alphas(np.random.default_rng(0), len(images), std=0.5)
    extreme = np.random.default_rng(1).choice([-WEIGHT_LIMIT, WEIGHT_LIMIT], alphas.shape)
    images.setflags(write=False)
    for mode, scale, weights in [
        ("pixel", "relative", alphas),
        ("pixel", "relative", extreme),
        ("shift", "relative", alphas),
        ("shift", "unit", alphas),
        ("shift", "byte", alphas),
    ]:
        ours = run_chunks(images, weights, mode, scale, 3, numpy_backend())
        theirs = run_chunks(images, weights, mode, scale, 5, torch_backend("cpu"))
        assert theirs.images.tobytes() == ours.images.tobytes(), (mode, scale)
        assert np.array_equal(theirs.eigenvalues, ours.eigenvalues)


def cuda_available() -> bool:
    if not HAVE_TORCH:
        return False
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(cuda_available(), reason="CUDA is available here")
def test_cuda_request_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(OptionError, match=r"^device:.*(CUDA|torch)"):
        pca_jitter(GOOD, np.random.default_rng(0), device="cuda")


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_bytes() -> None:
    images = np.concatenate([realistic_images()] * 10)
    alphas = sample_alphas(np.random.default_rng(0), len(images), std=0.5)
    for mode, scale in SETTINGS:
        cpu = apply_pca(images, alphas, mode=mode, scale=scale)
        gpu = apply_pca(images, alphas, mode=mode, scale=scale, device="cuda")
        assert gpu.images.tobytes() == cpu.images.tobytes(), (mode, scale)
