"""Native-detail test images for tests and benchmarks: mosaics of whole smears.

Upscaling a small smear to a large size gives a large image without fine
detail: reducing it again only brings back what was there, so it cannot show
what reduced-resolution work loses. A mosaic of real 640x480 smears tiled side
by side (never resized) has real detail at every pixel, at any size: the
native-detail source of the working-resolution tests, of
``benchmarks/bench_workres.py`` and of ``bench_expand.py``'s native workload.

The tiles are the BCCD smears of ``../shared/data/bccd-smears`` when present;
otherwise generated smears (:func:`augtool.tools.synth.render_smear`, 640x480 with
sensor noise, focus blur and JPEG artefacts baked in), so a machine without
the data still tests images with detail at the pixel scale.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_SMEARS = SHARED_DATA / "bccd-smears"
TILE = (640, 480)
#: Distinct generated smears, cycled (rolled), when the real ones are absent (0.3 s each).
GENERATED_TILES = 6

#: Sizes that get reduction factors 2, 4 and 8 at output 227 (both sides >= 2 x 227 x factor):
#: half an ALL-IDB1 image, an ALL-IDB1 image, a 20-megapixel camera frame.
FACTOR_SIZES: dict[int, tuple[int, int]] = {2: (1296, 972), 4: (2592, 1944), 8: (5472, 3648)}


def tile_origin(generated: bool = False) -> str:
    """Where the tiles come from, for printing next to figures."""
    if _real_smear_paths() and not generated:
        return "BCCD smears (640x480) tiled, not resized"
    return "generated 640x480 smears (augtool.tools.synth) tiled, not resized"


@cache
def _real_smear_paths() -> tuple[Path, ...]:
    return tuple(sorted(REAL_SMEARS.glob("*.jpg"))) if REAL_SMEARS.is_dir() else ()


@cache
def smear_tile(index: int, generated: bool = False) -> np.ndarray:
    """The ``index``-th 640x480 RGB tile, cycling through the real smears (or generated ones).

    Args:
        index: Tile number.
        generated: Use generated smears even when the real ones are present.
    """
    paths = _real_smear_paths()
    if paths and not generated:
        path = paths[index % len(paths)]
        bgr = cv2.imread(str(path))
        if bgr is None or bgr.shape[:2] != (TILE[1], TILE[0]):
            raise ValueError(f"{path}: expected a 640x480 smear")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    # Few distinct generated smears, each rolled sideways by a different amount per
    # cycle (97 is prime to 640), so tile sequences that start apart stay different.
    roll = (index // GENERATED_TILES) * 97 % TILE[0]
    return np.roll(_generated_tile(index % GENERATED_TILES), roll, axis=1)


@cache
def _generated_tile(index: int) -> np.ndarray:
    from augtool.tools.synth import CLASSES, render_smear

    rng = np.random.default_rng(np.random.SeedSequence((2026, index)))
    return render_smear(CLASSES[index % len(CLASSES)], rng, TILE)


def mosaic(width: int, height: int, first: int = 0, generated: bool = False) -> np.ndarray:
    """Tile smears ``first, first + 1, ...`` row by row into a ``width x height`` RGB image.

    Tiles are copied pixel for pixel (no resizing); the last row and column are
    cut to fit.

    Args:
        width: Mosaic width in pixels.
        height: Mosaic height in pixels.
        first: Number of the first tile (see :func:`smear_tile`).
        generated: Use generated smears even when the real ones are present.
    """
    tw, th = TILE
    out = np.empty((height, width, 3), np.uint8)
    index = first
    for y in range(0, height, th):
        for x in range(0, width, tw):
            tile = smear_tile(index, generated)
            out[y : y + th, x : x + tw] = tile[: min(th, height - y), : min(tw, width - x)]
            index += 1
    return out


def jpeg_bytes(rgb: np.ndarray, quality: int = 95) -> bytes:
    """Encode an RGB image as JPEG bytes."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("OpenCV could not encode the mosaic as JPEG")
    return buf.tobytes()
