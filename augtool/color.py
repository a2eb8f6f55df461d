"""PCA colour augmentation of the paper (SPEC §4), vectorized over a batch.

For every image of a batch, independently:

1. its P pixels, as a P x 3 matrix of grey levels, give a mean ``m`` and a
   3x3 covariance (``ddof=1``, as ``np.cov``);
2. the covariance's eigenvalues ``lambda_1 >= lambda_2 >= lambda_3`` and unit
   eigenvectors ``e_i`` are computed, and the ``k`` largest are kept;
3. ``alpha_i ~ N(0, std)`` is drawn per component;
4. the image is changed along its principal axes, in one of two modes.

With the default ``scale="relative"`` the strength does not depend on the
units pixels are counted in: the weight of component ``i`` is the
dimensionless ``w_i = alpha_i * lambda_i / lambda_1`` (proportional to the
eigenvalue, as the paper says; 0 when ``lambda_1 = 0``), clipped to
``[-WEIGHT_LIMIT, WEIGHT_LIMIT]``.

* ``mode="pixel"`` (the paper's own reading, step 6: the pixels are projected
  onto the components): every pixel's projection ``y_i = e_i . (x - m)`` on
  component ``i`` becomes ``exp(w_i) y_i`` (``(1 + w_i) y_i`` to first order,
  but never inverted), i.e. ``x' = x + M (x - m)`` with
  ``M = sum_i (exp(w_i) - 1) e_i e_i^T``. Pixels far from the mean along the
  main axes (the purple nuclei of a smear) change the most; the mean stays.
* ``mode="shift"`` (Krizhevsky et al.): the constant colour
  ``sqrt(lambda_1) * sum_i w_i e_i`` is added to every pixel; for small
  weights a pixel one standard deviation out along ``e_1`` moves by the same
  amount in both modes.

``scale="unit"`` and ``scale="byte"`` keep the earlier shift of
``sum_i alpha_i lambda_i e_i`` with the covariance of pixels in [0, 1] (times
255 to get grey levels) or in [0, 255]; they depend on the units (issue #11
measured median shifts of 0.3 and 70 grey levels on the real cells at
``std=0.1``) and exist for old recipes only, with ``mode="shift"``.

Sampling and applying are separate, so a caller can draw each output's alphas
from that output's own generator and then apply a whole batch in one call::

    alphas = np.concatenate([sample_alphas(rng_i, 1, k=3, std=DEFAULT_STD) for rng_i in gens])
    result = apply_pca(images, alphas, mode="pixel")

``pca_jitter`` does both for a single generator; ``sample_alphas(rng, n, ...)``
draws its rows in order, so one call for ``n`` images gives the same alphas as
``n`` calls for one image each on the same generator.

How the batch is computed (numpy ufuncs over a chunk, or a few OpenCV calls per image):

* Moments are exact integers. For images of up to ``2**24`` pixels they come
  from OpenCV, a few calls per image (``_opencv_moments``: ``sumElems``,
  ``norm(NORM_L2SQR)`` of each channel and of each pair's difference, whose
  float64 results, a few ulps off at most, are rounded to integers). Larger
  images are copied once into a planar ``uint16`` buffer (chunk, 3, P);
  channel sums, squares and the three cross products (each at most
  255 * 255 = 65025, so ``uint16`` holds them) are summed along the pixel axis
  in ``uint32`` over blocks of 65,536 pixels (65,536 * 65,025 < 2**32) and in
  ``uint64`` across blocks. Either way the moments do not depend on chunking,
  summation order, thread count or device. The covariance is then
  ``(P * S2 - s s^T) / (P (P - 1))`` in float64 (exact numerator for images
  up to about 600 x 600 pixels).
* ``np.linalg.eigh`` runs on the stacked (chunk, 3, 3) covariances at once.
* Shift: the shift is rounded once per image and channel (half to even) and
  added with saturation in ``uint8``: ``min(max(x, lo), hi) + d`` with
  per-image bounds, laid out as one image row so every ufunc call streams a
  whole row. Adding the rounded shift equals rounding each shifted pixel
  except when the shift's fraction is exactly one half.
* Pixel: ``x' = floor(A x + b)``, clipped to [0, 255], with ``A = I + M`` and
  ``b = 1/2 - M m`` rounded to multiples of ``2**-FIXED_BITS`` (at most 0.094
  grey levels from the unrounded map). With the weights limited to
  ``WEIGHT_LIMIT`` every product and partial sum of ``A x + b`` is a multiple
  of ``2**-12`` below ``2**12`` in magnitude, so float32 holds it exactly:
  OpenCV's ``cv2.transform`` of the image converted to float32 (one call per
  image, its 3 x 4 matrix carrying ``b``) gives the same bits in any summation
  order, with or without fused multiply-adds, on any device. ``cv2.add`` then
  adds ``2**-13 - 1/2`` and casts to ``uint8`` with OpenCV's saturating
  round-to-nearest; below ``2**11`` in magnitude that sum is exact and never a
  tie, so it rounds to ``floor(A x + b)``, clipped to [0, 255] (larger
  magnitudes clip either way).
* Chunks of ``chunk_size`` images keep the working memory bounded for any N.
  By default (``chunk_size=None``) a CPU chunk holds as many images as fit in
  two 2.5 MB ``uint16`` buffers (8 images of 227 x 227, at least one image;
  the buffers themselves are used only by the planar moments of images above
  ``2**24`` pixels, the OpenCV steps work one image at a time); on CUDA a
  chunk is up to 256 images, fewer when their float64 copy would pass 512 MB.

Canonical eigenvector sign: an eigenvector is defined up to sign, and while
the sign does not change the distribution of the result (``alpha_i`` is
symmetric), it does change which image a given ``alpha`` produces in the shift
mode. Every eigenvector is therefore flipped so that its component of largest
absolute value (the first one on a tie) is positive. Eigenvectors of repeated
eigenvalues (e.g. a uniform image, whose covariance is zero) are not unique
beyond sign either; there the result is whatever LAPACK returns, which is
harmless where the eigenvalue is zero because the term vanishes.

``device="cuda"`` computes the same moments and applies the same change on a
GPU with torch (imported only then; float64 there, exact as well); the 3x3
eigen-decompositions and the fixed-point coefficients stay on the CPU with the
same code, so the GPU bytes equal the CPU bytes.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from augtool import defaults
from augtool.errors import OptionError

if TYPE_CHECKING:
    from collections.abc import Callable

#: Accepted values of ``mode``.
MODES = defaults.PCA_MODES
#: Accepted values of ``scale``: ``relative`` is unit-free; the others are legacy (shift only).
SCALES = defaults.PCA_SCALES
#: Accepted values of ``device``.
DEVICES = ("cpu", "cuda")
#: Default mode: the paper's per-pixel reading (chosen by experiments/pca_measure.py).
DEFAULT_MODE = defaults.DEFAULT_PCA_MODE
#: Default standard deviation of the alphas (chosen by experiments/pca_measure.py).
DEFAULT_STD = defaults.DEFAULT_PCA_STD
#: Bound on the relative weights ``|w_i|``: ``exp(1.25) - 1 < 2.51`` keeps the pixel
#: mode's float32 sums below ``2**12`` (``255 + 1530 * 2.49 + 0.5 < 4096``), hence exact.
WEIGHT_LIMIT = 1.25
#: Fractional bits of the pixel mode's fixed-point coefficients.
FIXED_BITS = 12
#: Bytes of one CPU work buffer when ``chunk_size`` is None: 8 images of 227 x 227.
CPU_BUFFER_BYTES = 2_500_000
#: Most images per chunk on CUDA when ``chunk_size`` is None.
CUDA_CHUNK_SIZE = 256
#: Bytes of the float64 copy of a CUDA chunk when ``chunk_size`` is None.
CUDA_BUFFER_BYTES = 512_000_000
#: Pixels summed in ``uint32`` before widening: 65536 * 255**2 < 2**32.
_SUM_BLOCK = 65536
#: Largest image (pixels) whose moments come from OpenCV (``_opencv_moments``), exact below it.
_OPENCV_MOMENT_PIXELS = 2**24
#: Added to ``A x + b`` before OpenCV's rounding cast to uint8 so that it gives the floor:
#: ``y - 1/2 + 2**-(FIXED_BITS + 1)`` is never a tie (see ``_numpy_backend``).
_FLOOR_OFFSET = (2.0 ** -(FIXED_BITS + 1) - 0.5,) * 4


@dataclass(frozen=True)
class PcaResult:
    """Jittered images and everything needed to record or reproduce them.

    Every output pixel is ``x + linear @ (x - mean) + shift`` before rounding
    and clipping: ``linear`` is zero in the shift mode, ``shift`` in the pixel
    mode.

    Attributes:
        images: (N, H, W, 3) uint8, a new array.
        alphas: (N, k) float64, the ``alpha_i`` used, component order as
            ``eigenvalues``.
        weights: (N, k) float64, the relative weights
            ``w_i = alpha_i lambda_i / lambda_1`` after clipping (scale
            ``relative``); the alphas themselves for the legacy scales.
        eigenvalues: (N, 3) float64, descending, in grey levels squared
            (``relative``, ``byte``) or in [0, 1] units squared (``unit``).
        eigenvectors: (N, 3, 3) float64; ``eigenvectors[n, i]`` is the unit
            RGB eigenvector of ``eigenvalues[n, i]`` with the canonical sign.
        means: (N, 3) float64, the mean colour in grey levels.
        shifts: (N, 3) float64, the RGB shift added to every pixel, in grey
            levels (before rounding); zero in the pixel mode.
        linear: (N, 3, 3) float64, the matrix ``M`` of the pixel mode (before
            the fixed-point rounding); zero in the shift mode.
    """

    images: np.ndarray
    alphas: np.ndarray
    weights: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    means: np.ndarray
    shifts: np.ndarray
    linear: np.ndarray


def sample_alphas(
    rng: np.random.Generator, n: int, k: int = 3, std: float = DEFAULT_STD
) -> np.ndarray:
    """Draw the PCA weights ``alpha ~ N(0, std)`` for ``n`` images.

    Args:
        rng: The generator to draw from (the only source of randomness).
        n: Number of images (rows).
        k: Number of principal components kept, 1 to 3.
        std: Standard deviation of each alpha, >= 0.

    Returns:
        (n, k) float64. Rows are drawn in order, so drawing ``n`` rows at once
        equals drawing one row ``n`` times from the same generator.

    Raises:
        OptionError: If an argument is out of range.
    """
    _check_rng(rng)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise OptionError("n", f"must be an integer >= 0, got {n!r}")
    _check_k(k)
    _check_std(std)
    return rng.normal(0.0, float(std), size=(int(n), int(k)))


def pca_jitter(
    images: np.ndarray,
    rng: np.random.Generator,
    std: float = DEFAULT_STD,
    k: int = 3,
    mode: str = DEFAULT_MODE,
    scale: str = "relative",
    chunk_size: int | None = None,
    device: str = "cpu",
) -> PcaResult:
    """Apply PCA colour augmentation to a batch, drawing the alphas from ``rng``.

    Equivalent to ``apply_pca(images, sample_alphas(rng, len(images), k, std),
    mode, scale, chunk_size, device)``, with every argument checked before
    anything is drawn.

    Args:
        images: (N, H, W, 3) uint8 RGB; never modified.
        rng: Generator the (N, k) alphas are drawn from.
        std: Standard deviation of the alphas, >= 0 (0 returns a copy).
        k: Number of largest principal components used, 1 to 3.
        mode: ``"pixel"`` (per-pixel change along the principal axes, the
            paper's reading) or ``"shift"`` (Krizhevsky's constant shift).
        scale: ``"relative"`` (unit-free weights, see the module docstring),
            or the legacy ``"unit"`` / ``"byte"`` (shift mode only).
        chunk_size: Images processed together; bounds the working memory and
            never changes the result. None picks a size for the device (see
            the module docstring).
        device: ``"cpu"`` or ``"cuda"`` (needs torch with CUDA).

    Returns:
        The jittered images with the alphas, eigenvalues, eigenvectors and
        colour changes used.

    Raises:
        OptionError: If an argument is invalid or CUDA is unavailable.
    """
    _check_images(images)
    _check_rng(rng)
    _check_std(std)
    _check_k(k)
    _check_common(mode, scale, chunk_size, device)
    alphas = sample_alphas(rng, images.shape[0], k, std)
    return apply_pca(images, alphas, mode=mode, scale=scale, chunk_size=chunk_size, device=device)


def apply_pca(
    images: np.ndarray,
    alphas: np.ndarray,
    mode: str = DEFAULT_MODE,
    scale: str = "relative",
    chunk_size: int | None = None,
    device: str = "cpu",
) -> PcaResult:
    """Change each image along its principal colour axes for given alphas (pure).

    Args:
        images: (N, H, W, 3) uint8 RGB; never modified.
        alphas: (N, k) finite floats, k in 1..3: the weights of the k largest
            components of each image, e.g. from ``sample_alphas``.
        mode: ``"pixel"`` or ``"shift"``, see ``pca_jitter``.
        scale: ``"relative"``, or ``"unit"`` / ``"byte"`` with ``mode="shift"``.
        chunk_size: Images processed together; never changes the result.
            None picks a size for the device.
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        The jittered images with the alphas, eigenvalues, eigenvectors and
        colour changes used.

    Raises:
        OptionError: If an argument is invalid or CUDA is unavailable.
    """
    _check_images(images)
    alphas = _check_alphas(alphas, images.shape[0])
    _check_common(mode, scale, chunk_size, device)
    backend = _numpy_backend() if device == "cpu" else _torch_backend("cuda")
    if chunk_size is None:
        chunk_size = default_chunk_size(images.shape[1] * images.shape[2], device)
    return _run(images, alphas, mode, scale, int(chunk_size), backend)


def apply_pca_shift(
    images: np.ndarray,
    alphas: np.ndarray,
    scale: str = "relative",
    chunk_size: int | None = None,
    device: str = "cpu",
) -> PcaResult:
    """``apply_pca`` in the shift mode: one constant colour added per image.

    Args:
        images: (N, H, W, 3) uint8 RGB; never modified.
        alphas: (N, k) finite floats, k in 1..3.
        scale: ``"relative"``, ``"unit"`` or ``"byte"``, see ``pca_jitter``.
        chunk_size: Images processed together; never changes the result.
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        As ``apply_pca``.

    Raises:
        OptionError: If an argument is invalid or CUDA is unavailable.
    """
    return apply_pca(
        images, alphas, mode="shift", scale=scale, chunk_size=chunk_size, device=device
    )


def default_chunk_size(pixels: int, device: str) -> int:
    """Images per chunk when ``chunk_size`` is None.

    Args:
        pixels: Pixels per image (H * W).
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        On CPU the number of images whose planar ``uint16`` copy fits in
        ``CPU_BUFFER_BYTES``; on CUDA the number whose float64 copy fits in
        ``CUDA_BUFFER_BYTES``, at most ``CUDA_CHUNK_SIZE``; at least 1.
    """
    if device == "cuda":
        return max(1, min(CUDA_CHUNK_SIZE, CUDA_BUFFER_BYTES // (3 * 8 * pixels)))
    return max(1, CPU_BUFFER_BYTES // (3 * 2 * pixels))


# --- the computation ---------------------------------------------------------


@dataclass(frozen=True)
class _Backend:
    """The heavy steps of the jitter on one kind of array library.

    Attributes:
        moments: (chunk (m, H, W, 3) uint8) -> (sums (m, 3), squares (m, 3),
            cross (m, 3)) as int64 numpy arrays; cross is [RG, GB, BR].
        shift: (chunk, rounded shifts (m, 3) int64, out (m, H, W, 3) uint8
            C-contiguous numpy array) -> None: writes the chunk plus the
            shift, saturated, into ``out``.
        affine: (chunk, coefficients (m, 3, 4) float64, out) -> None: writes
            ``clip(floor(A x + b), 0, 255)`` into ``out``, ``A`` and ``b``
            being the first three columns and the last one.
    """

    moments: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
    shift: Callable[[np.ndarray, np.ndarray, np.ndarray], None]
    affine: Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _run(
    images: np.ndarray,
    alphas: np.ndarray,
    mode: str,
    scale: str,
    chunk_size: int,
    backend: _Backend,
) -> PcaResult:
    """Process ``images`` chunk by chunk with ``backend``; see the module docstring."""
    n, height, width, _ = images.shape
    k = alphas.shape[1]
    out = np.empty_like(images, order="C")
    weights = np.zeros((n, k))
    eigenvalues = np.zeros((n, 3))
    eigenvectors = np.zeros((n, 3, 3))
    means = np.zeros((n, 3))
    shifts = np.zeros((n, 3))
    linear = np.zeros((n, 3, 3))
    pixels = height * width
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        chunk = images[start:stop]
        sums, squares, cross = backend.moments(chunk)
        cov = covariance_from_moments(sums, squares, cross, pixels, scale)
        values, vectors = sorted_eigh(cov)
        mean = sums / float(pixels)
        if scale == "relative":
            w = relative_weights(values, alphas[start:stop])
        else:
            w = alphas[start:stop]
        if mode == "shift":
            shift = shift_from_components(values, vectors, w, scale)
            steps = np.rint(np.clip(shift, -255.0, 255.0)).astype(np.int64)
            backend.shift(chunk, steps, out[start:stop])
            shifts[start:stop] = shift
        else:
            matrix = linear_from_components(vectors, w)
            backend.affine(chunk, fixed_point_affine(matrix, mean), out[start:stop])
            linear[start:stop] = matrix
        weights[start:stop] = w
        eigenvalues[start:stop] = values
        eigenvectors[start:stop] = vectors
        means[start:stop] = mean
    return PcaResult(
        images=out,
        alphas=alphas.copy(),
        weights=weights,
        eigenvalues=eigenvalues,
        eigenvectors=eigenvectors,
        means=means,
        shifts=shifts,
        linear=linear,
    )


def covariance_from_moments(
    sums: np.ndarray, squares: np.ndarray, cross: np.ndarray, pixels: int, scale: str
) -> np.ndarray:
    """Per-image 3x3 RGB covariance (``ddof=1``) from exact integer moments.

    Args:
        sums: (m, 3) integer channel sums.
        squares: (m, 3) integer sums of R*R, G*G, B*B.
        cross: (m, 3) integer sums of R*G, G*B, B*R.
        pixels: Pixels per image P (a 1-pixel image has zero covariance).
        scale: ``"unit"`` divides by 255**2 (pixels in [0, 1]); ``"relative"``
            and ``"byte"`` keep grey levels.

    Returns:
        (m, 3, 3) float64 symmetric covariances.
    """
    m = sums.shape[0]
    second = np.empty((m, 3, 3), dtype=np.float64)
    second[:, [0, 1, 2], [0, 1, 2]] = squares
    second[:, [0, 1, 2], [1, 2, 0]] = cross
    second[:, [1, 2, 0], [0, 1, 2]] = cross
    s = sums.astype(np.float64)
    numerator = pixels * second - s[:, :, None] * s[:, None, :]
    denominator = float(pixels) * max(pixels - 1, 1)
    if scale == "unit":
        denominator *= 255.0 * 255.0
    return numerator / denominator


def sorted_eigh(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched eigen-decomposition, descending, with canonical signs.

    Args:
        cov: (m, 3, 3) symmetric matrices.

    Returns:
        ``(values, vectors)``: (m, 3) eigenvalues, descending and clipped at 0
        (negative values are rounding noise of a positive semi-definite
        matrix), and (m, 3, 3) eigenvectors as rows, each flipped so that its
        largest-magnitude component (first on a tie) is positive.
    """
    values, columns = np.linalg.eigh(cov)
    values = np.maximum(values[:, ::-1], 0.0)
    vectors = np.ascontiguousarray(columns.transpose(0, 2, 1)[:, ::-1, :])
    largest = np.argmax(np.abs(vectors), axis=2)
    signs = np.where(np.take_along_axis(vectors, largest[:, :, None], axis=2) < 0, -1.0, 1.0)
    return values, vectors * signs


def relative_weights(values: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """The unit-free weights ``w_i = alpha_i lambda_i / lambda_1``, clipped.

    Args:
        values: (m, 3) eigenvalues, descending.
        alphas: (m, k) alphas of the k largest components.

    Returns:
        (m, k) float64 in ``[-WEIGHT_LIMIT, WEIGHT_LIMIT]``; 0 where
        ``lambda_1 = 0`` (a uniform image).
    """
    k = alphas.shape[1]
    first = values[:, :1]
    ratio = np.divide(values[:, :k], first, out=np.zeros((len(values), k)), where=first > 0)
    return np.clip(alphas * ratio, -WEIGHT_LIMIT, WEIGHT_LIMIT)


def shift_from_components(
    values: np.ndarray, vectors: np.ndarray, weights: np.ndarray, scale: str
) -> np.ndarray:
    """The RGB shift of the shift mode, in grey levels.

    Args:
        values: (m, 3) eigenvalues, descending.
        vectors: (m, 3, 3) eigenvectors as rows, matching ``values``.
        weights: (m, k) relative weights (``"relative"``) or alphas.
        scale: ``"relative"``: ``sqrt(lambda_1) sum_i w_i e_i``; ``"byte"``:
            ``sum_i alpha_i lambda_i e_i``; ``"unit"``: the same times 255.

    Returns:
        (m, 3) float64 shifts.
    """
    k = weights.shape[1]
    scaling = np.sqrt(values[:, :1]) if scale == "relative" else values[:, :k]
    amounts = weights * scaling
    shift = np.einsum("mi,mic->mc", amounts, vectors[:, :k, :])
    return shift * 255.0 if scale == "unit" else shift


def linear_from_components(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The pixel mode's matrix ``M = sum_i (exp(w_i) - 1) e_i e_i^T``.

    Args:
        vectors: (m, 3, 3) eigenvectors as rows.
        weights: (m, k) relative weights of the k largest components.

    Returns:
        (m, 3, 3) float64 symmetric matrices.
    """
    k = weights.shape[1]
    chosen = vectors[:, :k, :]
    return np.einsum("mi,mic,mij->mcj", np.expm1(weights), chosen, chosen)


def fixed_point_affine(matrix: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Coefficients ``[A | b]`` of ``floor(A x + b)`` for the pixel mode.

    ``A = I + M`` and ``b = 1/2 - M m``, each rounded to a multiple of
    ``2**-FIXED_BITS`` (the 1/2 makes the floor a rounding to nearest).

    Args:
        matrix: (m, 3, 3) matrices ``M`` with weights within ``WEIGHT_LIMIT``.
        mean: (m, 3) mean colours in grey levels.

    Returns:
        (m, 3, 4) float64, exactly representable in float32.
    """
    unit = float(2**FIXED_BITS)
    coefficients = np.empty((matrix.shape[0], 3, 4))
    coefficients[:, :, :3] = np.rint((np.eye(3) + matrix) * unit) / unit
    offset = -np.einsum("mcj,mj->mc", matrix, mean)
    coefficients[:, :, 3] = np.rint(offset * unit) / unit + 0.5
    return coefficients


def _numpy_backend() -> _Backend:
    """The CPU backend: integer moments, saturated uint8 adds, exact float32 maps.

    Its work buffers are allocated once per call of ``_run`` and reused for
    every chunk (fresh large allocations cost page faults).
    """
    buffers: dict[str, np.ndarray] = {}

    def buffer(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        if name not in buffers or buffers[name].shape != shape:
            buffers[name] = np.empty(shape, dtype=dtype)
        return buffers[name]

    def planar_copy(chunk: np.ndarray) -> np.ndarray:
        m = chunk.shape[0]
        pixels = chunk.shape[1] * chunk.shape[2]
        planar = buffer("planar", (m, 3, pixels), np.uint16)
        np.copyto(planar, chunk.reshape(m, pixels, 3).transpose(0, 2, 1))
        return planar

    def moments(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if chunk.shape[1] * chunk.shape[2] <= _OPENCV_MOMENT_PIXELS:
            return _opencv_moments(chunk)
        planar = planar_copy(chunk)
        products = buffer("products", planar.shape, np.uint16)
        sums = _exact_pixel_sum(planar)
        np.multiply(planar, planar, out=products)
        squares = _exact_pixel_sum(products)
        for channel in range(3):
            np.multiply(planar[:, channel], planar[:, (channel + 1) % 3], out=products[:, channel])
        cross = _exact_pixel_sum(products)
        return sums, squares, cross

    def affine(chunk: np.ndarray, coefficients: np.ndarray, out: np.ndarray) -> None:
        import cv2

        m, height, width, _ = chunk.shape
        exact = buffer("exact", (height, width, 3), np.float32)
        mapped = buffer("mapped", (height, width, 3), np.float32)
        matrices = coefficients.astype(np.float32)  # exact: multiples of 2**-FIXED_BITS
        for i in range(m):
            np.copyto(exact, chunk[i])  # uint8 to float32, exact
            cv2.transform(exact, matrices[i], dst=mapped)  # A x + b, exact in float32
            target = out[i]
            written = cv2.add(mapped, _FLOOR_OFFSET, dst=target, dtype=cv2.CV_8U)
            if not np.shares_memory(written, target):
                target[...] = written

    return _Backend(moments=moments, shift=_numpy_shift, affine=affine)


def _opencv_moments(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact integer moments of each image of ``chunk`` with a few OpenCV calls per image.

    Sums come from ``cv2.sumElems``, sums of squares from ``cv2.norm(plane,
    NORM_L2SQR)`` and the cross sums from ``R G = (R^2 + G^2 - (R - G)^2) / 2``
    with ``cv2.norm(R, G, NORM_L2SQR)``. The float64 values OpenCV returns
    can be a few ulps off the integer sums (1950719102.0000002 was seen for a
    300 x 300 image with OpenCV 5.0.0 and IPP); below ``_OPENCV_MOMENT_PIXELS``
    pixels every value is under ``2**40``, where a few ulps are below
    ``2**-10``, so rounding to the nearest integer gives the exact moment
    (tested against int64 sums on random, binary and saturated images).

    Returns:
        As the backend's ``moments``: (m, 3) int64 sums, squares and cross sums.
    """
    import cv2

    m = chunk.shape[0]
    sums = np.empty((m, 3))
    squares = np.empty((m, 3))
    differences = np.empty((m, 3))
    for i in range(m):
        image = np.ascontiguousarray(chunk[i])
        planes = cv2.split(image)
        sums[i] = cv2.sumElems(image)[:3]
        squares[i] = [cv2.norm(plane, cv2.NORM_L2SQR) for plane in planes]
        differences[i] = [
            cv2.norm(planes[c], planes[(c + 1) % 3], cv2.NORM_L2SQR) for c in range(3)
        ]
    sums, squares, differences = (np.rint(a).astype(np.int64) for a in (sums, squares, differences))
    cross = (squares + np.roll(squares, -1, axis=1) - differences) // 2
    return sums, squares, cross


def _exact_pixel_sum(values: np.ndarray) -> np.ndarray:
    """Sum a (m, 3, P) uint16 array over P without overflow, as int64."""
    total = np.zeros(values.shape[:2], dtype=np.uint64)
    for start in range(0, values.shape[2], _SUM_BLOCK):
        total += values[:, :, start : start + _SUM_BLOCK].sum(axis=2, dtype=np.uint32)
    return total.astype(np.int64)


def _numpy_shift(chunk: np.ndarray, steps: np.ndarray, out: np.ndarray) -> None:
    """``out = clip(chunk + steps, 0, 255)`` in uint8, one image row per ufunc stream.

    For a step ``d`` the saturated sum is ``min(max(x, -d), 255 - d) + d``
    (bounds clipped to [0, 255]); after the clamp the sum is in range, so the
    addition can wrap modulo 256 in uint8 and still be exact.
    """
    m, height, width, _ = chunk.shape
    low = np.clip(-steps, 0, 255).astype(np.uint8)
    high = np.clip(255 - steps, 0, 255).astype(np.uint8)
    wrapped = np.mod(steps, 256).astype(np.uint8)

    def row(per_channel: np.ndarray) -> np.ndarray:
        return np.tile(per_channel, (1, width)).reshape(m, 1, width * 3)

    rows = out.reshape(m, height, width * 3)
    np.maximum(chunk.reshape(m, height, width * 3), row(low), out=rows)
    np.minimum(rows, row(high), out=rows)
    np.add(rows, row(wrapped), out=rows)


def _torch_backend(device: str) -> _Backend:
    """The torch backend on ``device``; float64 sums and maps of integers are exact.

    Raises:
        OptionError: If torch is missing or ``device`` is "cuda" without CUDA.
    """
    try:
        import torch
    except ImportError as error:
        raise OptionError(
            "device", f"{device!r} needs torch (pip install -e '.[train]')"
        ) from error
    if device == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", "'cuda' requested but torch finds no CUDA GPU; use 'cpu'")
    target = torch.device(device)

    def pixels_of(chunk: np.ndarray) -> Any:
        x = torch.from_numpy(np.require(chunk, requirements=["C", "W"])).to(target)
        return x.reshape(chunk.shape[0], -1, 3).to(torch.float64)

    def moments(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = pixels_of(chunk)
        sums = x.sum(dim=1)
        second = torch.bmm(x.transpose(1, 2), x)
        squares = torch.diagonal(second, dim1=1, dim2=2)
        cross = second[:, [0, 1, 2], [1, 2, 0]]
        sums_np, squares_np, cross_np = (
            t.cpu().numpy().astype(np.int64) for t in (sums, squares, cross)
        )
        return sums_np, squares_np, cross_np

    def shift(chunk: np.ndarray, steps: np.ndarray, out: np.ndarray) -> None:
        x = torch.from_numpy(np.require(chunk, requirements=["C", "W"])).to(target)
        x = x.to(torch.int16)
        d = torch.from_numpy(steps.astype(np.int16)).to(target)[:, None, None, :]
        out[...] = (x + d).clamp_(0, 255).to(torch.uint8).cpu().numpy()

    def affine(chunk: np.ndarray, coefficients: np.ndarray, out: np.ndarray) -> None:
        x = pixels_of(chunk)
        c = torch.from_numpy(coefficients).to(target)
        y = torch.bmm(x, c[:, :, :3].transpose(1, 2)) + c[:, None, :, 3]
        y = y.clamp_(0.0, 255.0).to(torch.uint8)  # truncation = floor, values >= 0
        out[...] = y.reshape(chunk.shape).cpu().numpy()

    return _Backend(moments=moments, shift=shift, affine=affine)


# --- argument checks ---------------------------------------------------------


def _check_images(images: Any) -> None:
    if not isinstance(images, np.ndarray):
        raise OptionError("images", f"must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise OptionError("images", f"must have dtype uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[3] != 3:
        raise OptionError("images", f"must have shape (N, H, W, 3), got {images.shape}")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise OptionError("images", f"images must have at least one pixel, got {images.shape}")


def _check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator):
        raise OptionError("rng", f"must be a numpy.random.Generator, got {type(rng).__name__}")


def _check_std(std: Any) -> None:
    if (
        isinstance(std, bool)
        or not isinstance(std, numbers.Real)
        or not math.isfinite(std)
        or std < 0
    ):
        raise OptionError("std", f"must be a finite number >= 0, got {std!r}")


def _check_k(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= 3:
        raise OptionError("k", f"must be an integer from 1 to 3, got {k!r}")


def _check_common(mode: Any, scale: Any, chunk_size: Any, device: Any) -> None:
    if mode not in MODES:
        raise OptionError("mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    if scale not in SCALES:
        raise OptionError("scale", f"must be one of {', '.join(SCALES)}, got {scale!r}")
    if mode == "pixel" and scale != "relative":
        raise OptionError(
            "scale", f"the pixel mode takes only 'relative' ({scale!r} is a legacy shift scale)"
        )
    if chunk_size is not None and (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, numbers.Integral)
        or chunk_size < 1
    ):
        raise OptionError("chunk_size", f"must be None or an integer >= 1, got {chunk_size!r}")
    if device not in DEVICES:
        raise OptionError("device", f"must be one of {', '.join(DEVICES)}, got {device!r}")


def _check_alphas(alphas: Any, n: int) -> np.ndarray:
    array = np.asarray(alphas)
    if array.ndim != 2 or array.shape[0] != n or not 1 <= array.shape[1] <= 3:
        raise OptionError("alphas", f"must have shape ({n}, k) with k in 1..3, got {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise OptionError("alphas", f"must be real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise OptionError("alphas", "must be finite")
    return array
