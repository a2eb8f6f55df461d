"""The paper's ten conventional transforms (SPEC §2) as sample + pure apply.

Each transform is two functions:

* ``sample(rng, ranges) -> params``: draws the parameters from an explicit
  ``numpy.random.Generator``; lengths are in *source* pixels, angles in degrees.
* ``apply(work, params, work_scale, size) -> image``: a pure function. ``work`` is
  the source decoded at a reduced *working* resolution, ``work_scale = (sx, sy)`` is
  working pixels per source pixel, and the result is the ``size x size`` output.

Working at reduced resolution is what makes ``expand`` fast: a 2592x1944
source is decoded at 648x486 (JPEG DCT scaling) and every transform runs
there. Lengths scale with the working resolution (blur sigma, translation) and
geometric transforms are defined on continuous source coordinates, so the
output covers exactly the region full-resolution processing would cover
(``tests/test_transforms.py`` checks PSNR >= 30 dB against full resolution at
reduction factors 2, 4 and 8 on mosaics of real smears).

Why OpenCV and not albumentations here: albumentations' transform classes draw
their own parameters at the image's own resolution, so they cannot apply a
recorded source-pixel parameter to a reduced working image; its functional
layer wraps the same OpenCV calls used below (flip, equalizeHist, GaussianBlur,
warpAffine) but rounds enlarged canvases to whole pixels at whatever resolution
it is given, and importing it costs about 2 s per worker process (it imports
torch when installed), more than the work itself. The tests check these
functions against albumentations wherever the two compute the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from augtool.errors import OptionError
from augtool.ops.geometry import (
    Size,
    WorkScale,
    flip,
    rotation,
    shear,
    source_size,
    translation,
    warp_to_canvas,
)
from augtool.ops.intensity import equalize_gray3, gaussian_blur, to_gray3
from augtool.ops.resize import resize_to
from augtool.pipeline.builtins import Ranges

Params = dict[str, float]


@dataclass(frozen=True)
class Transform:
    """One entry of the transform table.

    Attributes:
        name: Name used on the command line, in file names and the manifest.
        summary: One line for ``--help`` and the docs.
        sample: Draws parameters from a generator.
        apply: Pure function producing the output image.
    """

    name: str
    summary: str
    sample: Callable[[np.random.Generator, Ranges], Params]
    apply: Callable[[np.ndarray, Params, WorkScale, Size], np.ndarray]


# --- the table ------------------------------------------------------------------------


def _no_params(rng: np.random.Generator, ranges: Ranges) -> Params:
    return {}


def _sample_sigma(rng: np.random.Generator, ranges: Ranges) -> Params:
    return {"sigma": float(rng.uniform(*ranges.sigma_range))}


def _sample_angle(rng: np.random.Generator, ranges: Ranges) -> Params:
    return {"angle": float(rng.uniform(*ranges.rotate_range))}


def _signed(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    magnitude = float(rng.uniform(*bounds))
    return magnitude if rng.integers(0, 2) else -magnitude


def _sample_shift(rng: np.random.Generator, ranges: Ranges) -> Params:
    dx = _signed(rng, ranges.translate_range)
    dy = _signed(rng, ranges.translate_range)
    return {"dx": dx, "dy": dy}


def _sample_shear(rng: np.random.Generator, ranges: Ranges) -> Params:
    return {"factor": _signed(rng, ranges.shear_range)}


def _apply_original(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    return resize_to(work, size)


def _apply_gray(work: np.ndarray, params: Params, work_scale: WorkScale, size: Size) -> np.ndarray:
    return resize_to(to_gray3(work), size)


def _apply_blur_rgb(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    return resize_to(gaussian_blur(work, params["sigma"], work_scale), size)


def _apply_blur_gray(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    return resize_to(gaussian_blur(to_gray3(work), params["sigma"], work_scale), size)


def _apply_histeq(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    return resize_to(equalize_gray3(work), size)


def _apply_flip_x(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    return resize_to(cv2.flip(work, 0), size)


def _apply_flip_y(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    return resize_to(cv2.flip(work, 1), size)


def _apply_rotate(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    matrix, canvas = rotation(params["angle"], *source_size(work, work_scale))
    return warp_to_canvas(work, matrix, canvas, work_scale, size)


def _apply_translate(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    matrix, canvas = translation(params["dx"], params["dy"], *source_size(work, work_scale))
    return warp_to_canvas(work, matrix, canvas, work_scale, size)


def _apply_shear_x(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    matrix, canvas = shear(params["factor"], "x", *source_size(work, work_scale))
    return warp_to_canvas(work, matrix, canvas, work_scale, size)


def _apply_shear_y(
    work: np.ndarray, params: Params, work_scale: WorkScale, size: Size
) -> np.ndarray:
    matrix, canvas = shear(params["factor"], "y", *source_size(work, work_scale))
    return warp_to_canvas(work, matrix, canvas, work_scale, size)


ORIGINAL = Transform("original", "the source, resized", _no_params, _apply_original)

#: The ten conventional transforms, in the order copies cycle through them.
TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("gray", "luminance only, 3 equal channels", _no_params, _apply_gray),
        Transform(
            "blur_rgb", "Gaussian blur, sigma ~ U(sigma_range)", _sample_sigma, _apply_blur_rgb
        ),
        Transform("blur_gray", "gray, then Gaussian blur", _sample_sigma, _apply_blur_gray),
        Transform("histeq", "histogram equalization of the gray image", _no_params, _apply_histeq),
        Transform("flip_x", "reflection about the x-axis (top-bottom)", _no_params, _apply_flip_x),
        Transform("flip_y", "reflection about the y-axis (left-right)", _no_params, _apply_flip_y),
        Transform(
            "rotate", "rotation on an enlarged canvas, resized back", _sample_angle, _apply_rotate
        ),
        Transform("translate", "shift by +-dx, +-dy, black fill", _sample_shift, _apply_translate),
        Transform(
            "shear_x", "horizontal shear on an enlarged canvas", _sample_shear, _apply_shear_x
        ),
        Transform("shear_y", "vertical shear on an enlarged canvas", _sample_shear, _apply_shear_y),
    )
}


def get_transform(name: str) -> Transform:
    """Look up a transform (or ``original``) by name.

    Raises:
        OptionError: For an unknown name.
    """
    if name == ORIGINAL.name:
        return ORIGINAL
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise OptionError(
            "transforms", f"unknown transform {name!r}; choose from {', '.join(TRANSFORMS)}"
        ) from None


def parse_transform_list(text: str | None) -> list[str]:
    """Parse ``--transforms a,b,c`` (``None`` or ``all`` means all ten, in table order).

    Raises:
        OptionError: For unknown or repeated names, or an empty list.
    """
    if text is None or text.strip().lower() == "all":
        return list(TRANSFORMS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise OptionError("transforms", "give at least one transform name")
    for name in names:
        if name not in TRANSFORMS:
            get_transform(name)
    if len(set(names)) != len(names):
        raise OptionError("transforms", "a transform is named twice")
    return names


#: Where each geometric transform sends source points: ``(params, width, height)`` to
#: the 2x3 source-to-canvas matrix and the canvas size (source pixels), the very
#: matrices the pixel code above warps by. The canvas is then resized to the output.
#: A transform not listed here moves no pixel (colour and intensity only).
GEOMETRY: dict[str, Callable[[Params, float, float], tuple[np.ndarray, tuple[float, float]]]] = {
    "flip_x": lambda p, w, h: flip("x", w, h),
    "flip_y": lambda p, w, h: flip("y", w, h),
    "rotate": lambda p, w, h: rotation(p["angle"], w, h),
    "translate": lambda p, w, h: translation(p["dx"], p["dy"], w, h),
    "shear_x": lambda p, w, h: shear(p["factor"], "x", w, h),
    "shear_y": lambda p, w, h: shear(p["factor"], "y", w, h),
}


def geometry(
    name: str, params: Params, width: float, height: float
) -> tuple[np.ndarray, tuple[float, float]]:
    """The source-to-canvas map of a transform (identity for one that moves no pixel).

    Args:
        name: Transform name (or ``original``).
        params: Its sampled parameters.
        width: Source width in pixels.
        height: Source height in pixels.

    Returns:
        The 2x3 matrix and the canvas (width, height), both in source pixels.
    """
    get_transform(name)
    if name in GEOMETRY:
        return GEOMETRY[name](params, width, height)
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (width, height)
