"""The kernels of the PCA colour jitter (:mod:`augtool.ops.pca`): moments, eigenvectors, the affine.

One chunk of images at a time: the exact integer moments of every image, its
covariance and sorted eigen-decomposition, the relative weights and the
fixed-point affine map of the pixel mode, or the rounded shift of the shift
mode; then the pixels, on NumPy/OpenCV (the CPU) or torch (CUDA) with the same
arithmetic, so both give the same bytes. :mod:`augtool.ops.pca` checks every
argument and picks the backend; this module trusts what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from augtool.errors import OptionError

if TYPE_CHECKING:
    from collections.abc import Callable

#: Bound on the relative weights ``|w_i|``: ``exp(1.25) - 1 < 2.51`` keeps the pixel
#: mode's float32 sums below ``2**12`` (``255 + 1530 * 2.49 + 0.5 < 4096``), hence exact.
WEIGHT_LIMIT = 1.25
#: Fractional bits of the pixel mode's fixed-point coefficients.
FIXED_BITS = 12
#: Pixels summed in ``uint32`` before widening: 65536 * 255**2 < 2**32.
_SUM_BLOCK = 65536
#: Largest image (pixels) whose moments come from OpenCV (``_opencv_moments``), exact below it.
OPENCV_MOMENT_PIXELS = 2**24


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


def run(
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


def numpy_backend() -> _Backend:
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
        if chunk.shape[1] * chunk.shape[2] <= OPENCV_MOMENT_PIXELS:
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
            np.clip(mapped, 0.0, 255.0, out=mapped)
            np.copyto(out[i], mapped, casting="unsafe")  # truncation = floor, values >= 0

    return _Backend(moments=moments, shift=_numpy_shift, affine=affine)


def _opencv_moments(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact integer moments of each image of ``chunk`` with a few OpenCV calls per image.

    Sums come from ``cv2.sumElems``, sums of squares from ``cv2.norm(plane,
    NORM_L2SQR)`` and the cross sums from ``R G = (R^2 + G^2 - (R - G)^2) / 2``
    with ``cv2.norm(R, G, NORM_L2SQR)``. The float64 values OpenCV returns
    can be a few ulps off the integer sums (1950719102.0000002 was seen for a
    300 x 300 image with OpenCV 5.0.0 and IPP); below ``OPENCV_MOMENT_PIXELS``
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


def torch_backend(device: str) -> _Backend:
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
