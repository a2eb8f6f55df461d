"""Tests of augtool.color: the batched PCA colour jitter against a plain reference."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from augtool.color import (
    PcaResult,
    _numpy_backend,
    _run,
    _torch_backend,
    apply_pca_shift,
    default_chunk_size,
    pca_jitter,
    sample_alphas,
)
from augtool.decode import IMAGE_SUFFIXES, load_resized
from augtool.errors import OptionError

CELLS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bccd-cells"
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def reference(image: np.ndarray, alphas: np.ndarray, scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Krizhevsky's PCA jitter of one image, in float64, written out step by step.

    Returns the jittered image and the shift in grey levels.
    """
    pixels = image.reshape(-1, 3).astype(np.float64)
    data = pixels / 255.0 if scale == "unit" else pixels
    cov = np.cov(data, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    for i in range(3):  # canonical sign: largest-magnitude component positive
        if vectors[np.argmax(np.abs(vectors[:, i])), i] < 0:
            vectors[:, i] = -vectors[:, i]
    shift = np.zeros(3)
    for i, alpha in enumerate(alphas):
        shift += alpha * values[i] * vectors[:, i]
    if scale == "unit":
        shift *= 255.0
    out = np.clip(np.rint(pixels + shift), 0, 255).astype(np.uint8)
    return out.reshape(image.shape), shift


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


def assert_matches_reference(images: np.ndarray, result: PcaResult, scale: str) -> None:
    for image, out, alphas, shift in zip(
        images, result.images, result.alphas, result.shifts, strict=True
    ):
        expected, expected_shift = reference(image, alphas, scale)
        assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
        np.testing.assert_allclose(shift, expected_shift, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("scale", ["unit", "byte"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_random_images_match_reference(scale: str, k: int) -> None:
    rng = np.random.default_rng(10 + k)
    images = rng.integers(0, 256, (6, 23, 17, 3), dtype=np.uint8)
    result = pca_jitter(images, np.random.default_rng(k), std=0.1, k=k, scale=scale)
    assert result.images.shape == images.shape and result.images.dtype == np.uint8
    assert result.alphas.shape == (6, k)
    assert_matches_reference(images, result, scale)


@pytest.mark.parametrize("scale", ["unit", "byte"])
def test_realistic_images_match_reference(scale: str) -> None:
    images = realistic_images()
    result = pca_jitter(images, np.random.default_rng(0), std=0.5, scale=scale)
    assert_matches_reference(images, result, scale)
    assert not np.array_equal(result.images, images)
    for image, values in zip(images, result.eigenvalues, strict=True):
        data = image.reshape(-1, 3) / (255.0 if scale == "unit" else 1.0)
        expected = np.sort(np.linalg.eigvalsh(np.cov(data, rowvar=False)))[::-1]
        np.testing.assert_allclose(values, np.maximum(expected, 0), rtol=1e-9, atol=1e-12)


def test_images_larger_than_one_summation_block_match_reference() -> None:
    # 300 x 300 = 90,000 bright pixels: sums of squares near 5e9 > 2**32, more than
    # the 65,536-pixel blocks summed in uint32 can hold at once.
    image = np.random.default_rng(7).integers(200, 256, (1, 300, 300, 3), dtype=np.uint8)
    result = apply_pca_shift(image, np.array([[0.3, -0.2, 0.1]]), scale="byte")
    assert_matches_reference(image, result, "byte")


@pytest.mark.parametrize("scale", ["unit", "byte"])
def test_uniform_image_comes_back_unchanged(scale: str) -> None:
    images = np.empty((3, 9, 11, 3), dtype=np.uint8)
    images[:] = np.array([[0], [128], [255]], dtype=np.uint8)[:, None, None, :]
    images[1, ..., 2] = 40
    result = pca_jitter(images, np.random.default_rng(0), std=5.0, scale=scale)
    assert np.array_equal(result.images, images)
    assert np.all(result.eigenvalues == 0.0)
    assert np.all(result.shifts == 0.0)


def test_single_pixel_image_has_zero_covariance() -> None:
    image = np.array([[[[10, 200, 30]]]], dtype=np.uint8)
    result = apply_pca_shift(image, np.array([[1.0, 1.0, 1.0]]), scale="byte")
    assert np.array_equal(result.images, image)
    assert np.all(result.eigenvalues == 0.0)


@pytest.mark.parametrize("scale", ["unit", "byte"])
def test_grey_image_shifts_along_the_grey_axis(scale: str) -> None:
    rng = np.random.default_rng(4)
    levels = rng.integers(40, 200, (2, 20, 20), dtype=np.uint8)
    images = np.repeat(levels[..., None], 3, axis=3)
    result = pca_jitter(images, np.random.default_rng(1), std=0.1, scale=scale)
    assert_matches_reference(images, result, scale)
    # Rank one: one eigenvalue 3 * var, the others 0; e_1 = (1, 1, 1) / sqrt(3).
    unit = 255.0 if scale == "unit" else 1.0
    for grey, values, vectors in zip(levels, result.eigenvalues, result.eigenvectors, strict=True):
        variance = np.var(grey.astype(np.float64) / unit, ddof=1)
        np.testing.assert_allclose(values, [3 * variance, 0, 0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(vectors[0], np.full(3, 3**-0.5), rtol=1e-9)
    out = result.images
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


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
    assert_matches_reference(images, result, "byte")
    moved_up = result.shifts > 0.5
    for n in range(4):
        for channel in range(3):
            before = images[n, ..., channel].astype(int)
            after = result.images[n, ..., channel].astype(int)
            if moved_up[n, channel]:
                assert np.all(after >= before)
            elif result.shifts[n, channel] < -0.5:
                assert np.all(after <= before)


def test_same_seed_same_bytes_and_different_seed_different_bytes() -> None:
    images = realistic_images()
    first = pca_jitter(images, np.random.default_rng(42), std=0.3, scale="byte")
    second = pca_jitter(images, np.random.default_rng(42), std=0.3, scale="byte")
    other = pca_jitter(images, np.random.default_rng(43), std=0.3, scale="byte")
    assert first.images.tobytes() == second.images.tobytes()
    assert np.array_equal(first.alphas, second.alphas)
    assert not np.array_equal(first.images, other.images)


def test_chunk_size_does_not_change_bytes() -> None:
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (11, 13, 10, 3), dtype=np.uint8)
    alphas = sample_alphas(np.random.default_rng(0), 11, k=3, std=0.2)
    results = [
        apply_pca_shift(images, alphas, scale="byte", chunk_size=size)
        for size in (None, 1, 2, 3, 7, 11, 50)
    ]
    for result in results[1:]:
        assert result.images.tobytes() == results[0].images.tobytes()
        assert np.array_equal(result.eigenvalues, results[0].eigenvalues)
        assert np.array_equal(result.eigenvectors, results[0].eigenvectors)


def test_sampling_is_separate_from_applying() -> None:
    images = realistic_images()
    n = len(images)
    joint = pca_jitter(images, np.random.default_rng(8), std=0.2, k=2, scale="byte")
    alphas = sample_alphas(np.random.default_rng(8), n, k=2, std=0.2)
    split = apply_pca_shift(images, alphas, scale="byte")
    assert np.array_equal(joint.alphas, alphas)
    assert joint.images.tobytes() == split.images.tobytes()
    # One row at a time from the same generator gives the same alphas as n rows at once.
    rng = np.random.default_rng(8)
    rows = np.concatenate([sample_alphas(rng, 1, k=2, std=0.2) for _ in range(n)])
    assert np.array_equal(rows, alphas)


def test_per_output_generators_then_one_batch() -> None:
    images = realistic_images()
    generators = [np.random.default_rng(seed) for seed in (11, 12, 13, 14)]
    alphas = np.concatenate([sample_alphas(g, 1, k=3, std=0.1) for g in generators])
    batch = apply_pca_shift(images, alphas, scale="unit")
    for n, seed in enumerate((11, 12, 13, 14)):
        alone = pca_jitter(images[n : n + 1], np.random.default_rng(seed), std=0.1, scale="unit")
        assert alone.images[0].tobytes() == batch.images[n].tobytes()


@pytest.mark.parametrize("k", [1, 2])
def test_k_below_3_keeps_only_the_largest_components(k: int) -> None:
    images = realistic_images()
    alphas = np.full((len(images), k), 0.5)
    result = apply_pca_shift(images, alphas, scale="byte")
    for shift, values, vectors in zip(
        result.shifts, result.eigenvalues, result.eigenvectors, strict=True
    ):
        assert values[0] > values[1] > values[2]
        coordinates = vectors @ shift
        np.testing.assert_allclose(coordinates[:k], 0.5 * values[:k], rtol=1e-9)
        assert np.all(np.abs(coordinates[k:]) <= 1e-9 * np.linalg.norm(shift))
    assert_matches_reference(images, result, "byte")


def test_eigenvectors_are_orthonormal_with_canonical_sign() -> None:
    images = np.random.default_rng(9).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    result = pca_jitter(images, np.random.default_rng(0))
    for vectors in result.eigenvectors:
        np.testing.assert_allclose(vectors @ vectors.T, np.eye(3), atol=1e-12)
        for vector in vectors:
            assert vector[np.argmax(np.abs(vector))] > 0
    assert np.all(np.diff(result.eigenvalues, axis=1) <= 0)


def test_input_is_not_mutated_and_output_is_new() -> None:
    images = realistic_images()
    before = images.copy()
    result = pca_jitter(images, np.random.default_rng(0), std=1.0, scale="byte")
    assert np.array_equal(images, before)
    assert not np.shares_memory(result.images, images)
    zero = pca_jitter(images, np.random.default_rng(0), std=0.0)
    assert np.array_equal(zero.images, images)
    assert not np.shares_memory(zero.images, images)


def test_non_contiguous_input_equals_contiguous_copy() -> None:
    images = np.random.default_rng(2).integers(0, 256, (4, 20, 30, 3), dtype=np.uint8)
    view = images[::-1, 1::2, ::3]
    alphas = sample_alphas(np.random.default_rng(0), 4, std=0.3)
    assert np.array_equal(
        apply_pca_shift(view, alphas, scale="byte").images,
        apply_pca_shift(np.ascontiguousarray(view), alphas, scale="byte").images,
    )


def test_read_only_input_is_accepted() -> None:
    images = realistic_images()
    images.setflags(write=False)
    result = pca_jitter(images, np.random.default_rng(0), std=0.5, scale="byte")
    assert_matches_reference(images, result, "byte")


def test_default_chunk_size_bounds_working_memory() -> None:
    assert default_chunk_size(227 * 227, "cpu") == 8
    assert default_chunk_size(2592 * 1944, "cpu") == 1
    assert default_chunk_size(227 * 227, "cuda") == 256
    assert default_chunk_size(2592 * 1944, "cuda") == 4


def test_empty_batch() -> None:
    images = np.zeros((0, 5, 5, 3), dtype=np.uint8)
    result = pca_jitter(images, np.random.default_rng(0), k=2)
    assert result.images.shape == (0, 5, 5, 3)
    assert result.alphas.shape == (0, 2)
    assert result.eigenvalues.shape == (0, 3)


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
        ("scale", {"scale": "bytes"}),
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
def test_apply_validates_alphas(alphas: np.ndarray) -> None:
    with pytest.raises(OptionError) as error:
        apply_pca_shift(GOOD, alphas)
    assert error.value.option == "alphas"


def test_sample_alphas_validates_and_draws_normal_weights() -> None:
    with pytest.raises(OptionError, match=r"^n:"):
        sample_alphas(np.random.default_rng(0), -1)
    with pytest.raises(OptionError, match=r"^std:"):
        sample_alphas(np.random.default_rng(0), 2, std=-1.0)
    alphas = sample_alphas(np.random.default_rng(0), 20000, k=3, std=0.1)
    assert alphas.shape == (20000, 3) and alphas.dtype == np.float64
    assert abs(alphas.std() - 0.1) < 0.002 and abs(alphas.mean()) < 0.002


def test_import_does_not_load_torch() -> None:
    code = "import sys, augtool.color; print('torch' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
def test_torch_backend_on_cpu_gives_the_same_bytes() -> None:
    # The CUDA path's code, run on torch's CPU device: same moments, same bytes.
    images = np.concatenate([realistic_images(), realistic_images()[:, ::-1]])
    alphas = sample_alphas(np.random.default_rng(0), len(images), std=0.5)
    images.setflags(write=False)
    for scale in ("unit", "byte"):
        ours = _run(images, alphas, scale, 3, _numpy_backend())
        theirs = _run(images, alphas, scale, 5, _torch_backend("cpu"))
        assert theirs.images.tobytes() == ours.images.tobytes()
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
def test_cuda_matches_cpu_within_one_grey_level() -> None:
    images = np.concatenate([realistic_images()] * 10)
    alphas = sample_alphas(np.random.default_rng(0), len(images), std=0.5)
    for scale in ("unit", "byte"):
        cpu = apply_pca_shift(images, alphas, scale=scale)
        gpu = apply_pca_shift(images, alphas, scale=scale, device="cuda")
        assert np.abs(gpu.images.astype(int) - cpu.images.astype(int)).max() <= 1
