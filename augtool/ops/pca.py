"""PCA colour augmentation of the paper (docs/pca.md), vectorized over a batch.

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
255 to get grey levels) or in [0, 255]; they depend on the units (docs/pca.md
measures both on the real cells: a fraction of a grey level, and about 37)
and exist for old recipes only, with ``mode="shift"``.

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
  order, with or without fused multiply-adds, on any device. The result is
  then clipped to [0, 255] in place and cast to ``uint8``, which truncates:
  the floor, as the values are not negative (two passes over float32, the
  same arithmetic as the CUDA backend).
* Chunks of ``chunk_size`` images keep the working memory bounded for any N.
  By default (``chunk_size=None``) a CPU chunk of images up to ``2**24``
  pixels is ``CPU_CHUNK_SIZE`` images: their OpenCV steps work one image at a
  time, so a chunk only sets how often the per-chunk steps (``eigh``, the
  weights) run; larger images, whose moments are planar, get as many as fit
  in two 2.5 MB ``uint16`` buffers (at least one image). On CUDA a chunk is
  up to 256 images, fewer when their float64 copy would pass 512 MB.

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
from typing import Any

import numpy as np

from augtool import defaults
from augtool.errors import OptionError
from augtool.ops.pca_kernels import (
    OPENCV_MOMENT_PIXELS,
    PcaResult,
    numpy_backend,
    run,
    torch_backend,
)

#: Accepted values of ``mode``.
MODES = defaults.PCA_MODES
#: Accepted values of ``scale``: ``relative`` is unit-free; the others are legacy (shift only).
SCALES = defaults.PCA_SCALES
#: Accepted values of ``device``.
DEVICES = ("cpu", "cuda")
#: Default mode: the paper's per-pixel reading (chosen by benchmarks/pca_measure.py).
DEFAULT_MODE = defaults.DEFAULT_PCA_MODE
#: Default standard deviation of the alphas (chosen by benchmarks/pca_measure.py).
DEFAULT_STD = defaults.DEFAULT_PCA_STD
#: Images per CPU chunk when ``chunk_size`` is None and the moments come from OpenCV
#: (images up to ``OPENCV_MOMENT_PIXELS``): a chunk needs no buffer of its own.
CPU_CHUNK_SIZE = 64
#: Bytes of one CPU work buffer when ``chunk_size`` is None and the moments are planar.
CPU_BUFFER_BYTES = 2_500_000
#: Most images per chunk on CUDA when ``chunk_size`` is None.
CUDA_CHUNK_SIZE = 256
#: Bytes of the float64 copy of a CUDA chunk when ``chunk_size`` is None.
CUDA_BUFFER_BYTES = 512_000_000


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
    backend = numpy_backend() if device == "cpu" else torch_backend("cuda")
    if chunk_size is None:
        chunk_size = default_chunk_size(images.shape[1] * images.shape[2], device)
    return run(images, alphas, mode, scale, int(chunk_size), backend)


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
        On CPU ``CPU_CHUNK_SIZE`` for images up to ``OPENCV_MOMENT_PIXELS``,
        else the number of images whose planar ``uint16`` copy fits in
        ``CPU_BUFFER_BYTES``; on CUDA the number whose float64 copy fits in
        ``CUDA_BUFFER_BYTES``, at most ``CUDA_CHUNK_SIZE``; at least 1.
    """
    if device == "cuda":
        return max(1, min(CUDA_CHUNK_SIZE, CUDA_BUFFER_BYTES // (3 * 8 * pixels)))
    if pixels <= OPENCV_MOMENT_PIXELS:
        return CPU_CHUNK_SIZE
    return max(1, CPU_BUFFER_BYTES // (3 * 2 * pixels))


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
