"""Measure how far augtool's choices move the output from the paper's MATLAB defaults.

The paper used MATLAB; augtool differs from MATLAB's defaults in three places
(docs/transforms.md, "Deviations from MATLAB's defaults"):

* rotation interpolates bilinearly; ``imrotate`` defaults to nearest neighbour;
* the Gaussian kernel spans 6 sigma + 1 pixels (OpenCV's choice for 8-bit
  images, cut at +-3 sigma); ``imgaussfilt`` defaults to 2 * ceil(2 sigma) + 1
  (cut at +-2 sigma);
* shrinking averages areas (``augtool.store.decode.resize_to``); ``imresize``
  defaults to bicubic with antialiasing (the kernel widened by the ratio),
  which Pillow's ``Image.resize(..., BICUBIC)`` also computes (Keys a = -0.5).

On ``--mosaics`` native-detail sources of ALL-IDB1's size (2592x1944,
640x480 smears tiled without resizing, ``tests/mosaic.py``), at full
resolution, each way is applied and the result resized to 227x227 the same
way, so only the one choice differs; printed: the PSNR between the two and
the mean absolute difference in grey levels (median over sources and draws).
For blur the mean sigma-weighted blur strength is also printed as the
effective standard deviation of each (normalised, truncated) kernel.

Usage: PYTHONPATH=. python experiments/matlab_defaults.py [--mosaics N]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augtool.ops.geometry import rotation
from augtool.pipeline.builtins import PAPER, Ranges, paper_settings
from augtool.store.decode import resize_to
from benchmarks.bench_workres import psnr
from tests.mosaic import mosaic, tile_origin
from tests.workloads import machine

SIZE = 227
WIDTH, HEIGHT = 2592, 1944


def matlab_kernel_size(sigma: float) -> int:
    """``imgaussfilt``'s default FilterSize: 2 * ceil(2 sigma) + 1."""
    return 2 * math.ceil(2 * sigma) + 1


def opencv_kernel_size(sigma: float) -> int:
    """OpenCV's kernel size for 8-bit images when ksize is (0, 0): round(6 sigma + 1), odd."""
    return round(sigma * 3 * 2 + 1) | 1


def effective_sigma(sigma: float, ksize: int) -> float:
    """Standard deviation of a Gaussian kernel cut to ``ksize`` taps and normalised."""
    x = np.arange(ksize) - (ksize - 1) / 2
    w = np.exp(-(x**2) / (2 * sigma**2))
    w /= w.sum()
    return float(np.sqrt((w * x**2).sum()))


def rotate_nearest(image: np.ndarray, angle: float) -> np.ndarray:
    """The rotation of augtool at full resolution, nearest-neighbour instead of bilinear."""
    matrix, (cw, ch) = rotation(angle, image.shape[1], image.shape[0])
    iw, ih = round(cw), round(ch)
    m = np.diag([iw / cw, ih / ch, 1.0]) @ np.vstack([matrix, [0.0, 0.0, 1.0]])
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    m_cv = np.linalg.inv(shift) @ m @ shift
    warped = cv2.warpAffine(
        image, m_cv[:2], (iw, ih), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT
    )
    return resize_to(warped, SIZE)


def bicubic_antialiased(image: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize``'s default shrink (bicubic, antialiased) via Pillow."""
    return np.asarray(Image.fromarray(image).resize((SIZE, SIZE), Image.Resampling.BICUBIC))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mosaics", type=int, default=4, help="sources (default 4)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"sources: {args.mosaics} x {WIDTH}x{HEIGHT}, {tile_origin()}; output {SIZE}x{SIZE}")
    rows: dict[str, list[tuple[float, float]]] = {"rotate": [], "blur": [], "resize": []}
    for m in range(args.mosaics):
        image = mosaic(WIDTH, HEIGHT, first=25 * m)
        rng = np.random.default_rng(m)
        for _ in range(3):
            angle = PAPER["rotate"].sample(rng, paper_settings("rotate", Ranges()))["angle"]
            ours = PAPER["rotate"].run(image, {"angle": angle}, (1.0, 1.0), SIZE)
            rows["rotate"].append(_compare(ours, rotate_nearest(image, angle)))
            sigma = PAPER["blur_rgb"].sample(rng, paper_settings("blur_rgb", Ranges()))["sigma"]
            ours = PAPER["blur_rgb"].run(image, {"sigma": sigma}, (1.0, 1.0), SIZE)
            k = matlab_kernel_size(sigma)
            theirs = cv2.GaussianBlur(image, (k, k), sigma, borderType=cv2.BORDER_REPLICATE)
            rows["blur"].append(_compare(ours, resize_to(theirs, SIZE)))
        rows["resize"].append(_compare(resize_to(image, SIZE), bicubic_antialiased(image)))
    print(f"{'choice':<46}{'PSNR dB':>9}{'mean |diff|':>13}  (medians)")
    labels = {
        "rotate": "rotate: bilinear (ours) vs nearest (imrotate)",
        "blur": "blur: 6 sigma + 1 vs 2 ceil(2 sigma) + 1 taps",
        "resize": "shrink: area (ours) vs bicubic antialiased",
    }
    for key, values in rows.items():
        p, d = np.median(np.array(values), axis=0)
        print(f"{labels[key]:<46}{p:>9.1f}{d:>13.2f}   n={len(values)}")
    print("effective std of the truncated kernel, as a multiple of sigma (ours / MATLAB):")
    for sigma in (4.0, 6.0, 8.0):
        ours = effective_sigma(sigma, opencv_kernel_size(sigma)) / sigma
        theirs = effective_sigma(sigma, matlab_kernel_size(sigma)) / sigma
        print(
            f"  sigma {sigma:.0f}: {opencv_kernel_size(sigma)} taps {ours:.3f}"
            f" / {matlab_kernel_size(sigma)} taps {theirs:.3f}"
        )


def _compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return psnr(a, b), float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


if __name__ == "__main__":
    main()
