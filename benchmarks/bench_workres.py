"""Measure the working-resolution guarantee: PSNR of reduced- vs full-resolution work.

For every transform (and ``original``) and reduction factor 2, 4 and 8, each
of ``--mosaics`` native-detail sources (640x480 smears tiled without resizing,
``tests/mosaic.py``; the BCCD smears when present, else generated ones, or
with ``--generated``) is encoded as JPEG q95 at the smallest realistic size
that gets that factor at output 227 (1296x972, 2592x1944, 5472x3648), then:

* reference: decoded in full, the transform applied at scale 1, resized to 227;
* fast: decoded at 1/factor by libjpeg (as ``expand`` does), the same
  parameters applied at the working scale, resized to 227.

Each transform with parameters gets ``--draws`` draws (seeds 0, 1, ...) per
mosaic; parameterless ones one. The table prints the minimum PSNR (dB) over
all of them, and the last row the minimum per factor; the transforms must keep
>= 30 dB (docs/transforms.md).

``--at-output-size`` measures instead the design that would make ``expand``
cheapest (``benchmarks/expand_floor.py --render --at-output-size``): the
reduced image resized to 227 x 227 first, every step applied there.

``--resize pyrdown`` measures the code as it was before resize_to was fixed
(commit 37496a5: shrinking by Gaussian pyramid steps, ``cv2.pyrDown``).
``--histeq-cdf`` also prints, for histeq, the PSNR of the reference against
the *working* image's equalization table applied to the full-resolution grey
image: high values mean the working image's histogram is not the problem.

Usage: PYTHONPATH=. python benchmarks/bench_workres.py [--mosaics N] [--draws N] [--generated]
       [--resize area|pyrdown] [--histeq-cdf] [--at-output-size]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import augtool.ops.geometry
import augtool.pipeline.builtins
import augtool.pipeline.steps
from augtool.ops.intensity import to_gray3
from augtool.pipeline.builtins import ORIGINAL, PAPER, Ranges, paper_settings
from augtool.store.decode import choose_reduction, decode_rgb
from tests.mosaic import FACTOR_SIZES, jpeg_bytes, mosaic, tile_origin
from tests.workloads import machine

SIZE = 227
#: Tiles between the first tiles of consecutive mosaics (a 5472x3648 mosaic uses 72).
MOSAIC_STRIDE = 72
CDF_ROW = "histeq, working table at full resolution"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def pyrdown_resize(image: np.ndarray, size: int) -> np.ndarray:
    """``resize_to`` before commit 37496a5: Gaussian pyramid halvings, then area."""
    height, width = image.shape[:2]
    while height >= 2 * size and width >= 2 * size:
        image = cv2.pyrDown(image)
        height, width = image.shape[:2]
    interp = cv2.INTER_AREA if width >= size and height >= size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def working_cdf_at_full(full: np.ndarray, reduced: np.ndarray) -> float:
    """PSNR of histeq's reference vs the working image's table applied at full resolution."""
    gray_full = np.ascontiguousarray(to_gray3(full)[:, :, 0])
    gray_work = np.ascontiguousarray(to_gray3(reduced)[:, :, 0])
    # equalizeHist maps grey levels through a table built from the histogram: rebuild the
    # working image's table as OpenCV does (checked below), then apply it to the full image.
    hist = np.bincount(gray_work.ravel(), minlength=256).astype(np.float64)
    low = hist[np.nonzero(hist)[0][0]]
    table = np.clip(np.round((np.cumsum(hist) - low) * 255.0 / (gray_work.size - low)), 0, 255)
    table[: np.nonzero(hist)[0][0]] = 0
    if not np.array_equal(table.astype(np.uint8)[gray_work], cv2.equalizeHist(gray_work)):
        raise SystemExit("rebuilt table differs from cv2.equalizeHist")
    fast = augtool.pipeline.builtins.resize_to(
        np.dstack([table.astype(np.uint8)[gray_full]] * 3), SIZE
    )
    reference = PAPER["histeq"].run(full, {}, (1.0, 1.0), SIZE)
    return psnr(reference, fast)


def measure(
    mosaics: int, draws: int, generated: bool, histeq_cdf: bool, at_output_size: bool = False
) -> dict[str, dict[int, float]]:
    """Minimum PSNR per transform name and factor.

    Args:
        mosaics: Sources per factor.
        draws: Parameter draws per source for transforms with parameters.
        generated: Tile generated smears even when the real ones are present.
        histeq_cdf: Also measure :func:`working_cdf_at_full` (row ``CDF_ROW``).
        at_output_size: Apply the steps to the reduced image resized to the
            output size, not to the reduced image.

    Returns:
        ``{transform: {factor: min PSNR}}``.
    """
    transforms = [ORIGINAL, *PAPER.values()]
    worst: dict[str, dict[int, float]] = {t.name: {} for t in transforms}
    worst[CDF_ROW] = {}
    for k, (width, height) in FACTOR_SIZES.items():
        if choose_reduction(width, height, SIZE) != k:
            raise SystemExit(f"{width}x{height} does not get factor {k}")
        for m in range(mosaics):
            data = jpeg_bytes(mosaic(width, height, first=m * MOSAIC_STRIDE, generated=generated))
            full = decode_rgb(data, 1)
            reduced = decode_rgb(data, k)
            if at_output_size:
                reduced = augtool.pipeline.builtins.resize_to(reduced, SIZE)
            scale = (reduced.shape[1] / width, reduced.shape[0] / height)
            for t in transforms:
                settings = paper_settings(t.name, Ranges()) if t.name in PAPER else t.settings()
                params = [t.sample(np.random.default_rng(seed), settings) for seed in range(draws)]
                for p in params if params[0] else params[:1]:
                    value = psnr(t.run(full, p, (1.0, 1.0), SIZE), t.run(reduced, p, scale, SIZE))
                    worst[t.name][k] = min(worst[t.name].get(k, float("inf")), value)
            if histeq_cdf:
                value = working_cdf_at_full(full, reduced)
                worst[CDF_ROW][k] = min(worst[CDF_ROW].get(k, float("inf")), value)
        print(f"factor {k} done", file=sys.stderr, flush=True)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mosaics", type=int, default=3, help="sources per factor (default 3)")
    parser.add_argument("--draws", type=int, default=4, help="parameter draws (default 4)")
    parser.add_argument("--generated", action="store_true", help="tile generated smears")
    parser.add_argument("--resize", choices=["area", "pyrdown"], default="area")
    parser.add_argument("--histeq-cdf", action="store_true", help="see the module docstring")
    parser.add_argument(
        "--at-output-size", action="store_true", help="steps on the image resized to 227 first"
    )
    args = parser.parse_args()
    if args.mosaics < 1 or args.draws < 1:
        parser.error("--mosaics and --draws must be >= 1")
    print(f"machine: {machine()}")
    print(
        f"sources: {args.mosaics} mosaic(s) per factor, {tile_origin(args.generated)}; "
        f"JPEG q95; {args.draws} parameter draw(s) each; output {SIZE}x{SIZE}"
    )
    if args.resize == "pyrdown":
        for module in (augtool.ops.geometry, augtool.pipeline.builtins, augtool.pipeline.steps):
            module.resize_to = pyrdown_resize  # type: ignore[attr-defined]
        print("resize: cv2.pyrDown halvings (the code before commit 37496a5)")
    else:
        print("resize: augtool.store.decode.resize_to (area halvings)")
    start = time.perf_counter()
    if args.at_output_size:
        print(f"steps applied at the output size: the reduced image resized to {SIZE} first")
    worst = measure(args.mosaics, args.draws, args.generated, args.histeq_cdf, args.at_output_size)
    if not args.histeq_cdf:
        del worst[CDF_ROW]
    factors = list(FACTOR_SIZES)
    sizes = "  ".join(f"{k}: {w}x{h}" for k, (w, h) in FACTOR_SIZES.items())
    print(f"minimum PSNR (dB), reduced vs full resolution; factor: source size  {sizes}")
    print(f"{'transform':<12}" + "".join(f"{'factor ' + str(k):>11}" for k in factors))
    for name, row in worst.items():
        if name != CDF_ROW:
            print(f"{name:<12}" + "".join(f"{row[k]:>11.1f}" for k in factors))
    lowest = {k: min(row[k] for name, row in worst.items() if name != CDF_ROW) for k in factors}
    print(f"{'minimum':<12}" + "".join(f"{lowest[k]:>11.1f}" for k in factors))
    if CDF_ROW in worst:
        print(f"{CDF_ROW}: " + ", ".join(f"{worst[CDF_ROW][k]:.1f}" for k in factors))
    print(f"[{time.perf_counter() - start:.0f} s]")


if __name__ == "__main__":
    main()
