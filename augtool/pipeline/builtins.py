"""The one table of built-in steps: the paper's ten, the curator set, and the original.

Each entry is a :class:`augtool.pipeline.steps.StepType`: its recipe settings,
how it samples from an explicit generator, its pixels, and where its targets
go. The paper's geometric steps warp their pixels by their own ``geometry``
(``augtool.ops.geometry``), so boxes are mapped by the very matrix the pixels
are; the flips move pixels by ``cv2.flip``, which is their map exactly. Colour
and intensity steps declare that they move no pixel.

This table is what ``augtool.transforms.TRANSFORMS`` (pixels),
``augtool.registry.BUILTINS`` (recipe settings) and
``augtool.transforms.GEOMETRY`` (boxes) said in three places; the draws and
the bytes are theirs (``tests/test_pipeline.py`` checks every step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from augtool.ops.geometry import (
    crop,
    crop_window,
    flip,
    quarter_turns,
    rotation,
    shear,
    source_size,
    translation,
    warp_to_canvas,
)
from augtool.ops.intensity import equalize_gray3, gaussian_blur, to_gray3
from augtool.ops.resize import resize_to
from augtool.pipeline.steps import Geometry, Params, StepType, as_step_type
from augtool.registry import (
    CURATOR,
    NoSettings,
    RotateSettings,
    ShearSettings,
    SigmaSettings,
    TranslateSettings,
)

#: ``render(work, params, work_scale, size) -> output``.
Render = Callable[[np.ndarray, Params, tuple[float, float], Any], np.ndarray]


# --- sampling: the paper's parameters, from an explicit generator ---------------------------


def _no_params(rng: np.random.Generator, settings: Any) -> Params:
    return {}


def _signed(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A magnitude drawn from ``bounds``, then a random sign."""
    magnitude = float(rng.uniform(*bounds))
    return magnitude if rng.integers(0, 2) else -magnitude


def _sample_sigma(rng: np.random.Generator, settings: SigmaSettings) -> Params:
    return {"sigma": float(rng.uniform(*settings.sigma_range))}


def _sample_angle(rng: np.random.Generator, settings: RotateSettings) -> Params:
    return {"angle": float(rng.uniform(*settings.rotate_range))}


def _sample_shift(rng: np.random.Generator, settings: TranslateSettings) -> Params:
    dx = _signed(rng, settings.translate_range)
    dy = _signed(rng, settings.translate_range)
    return {"dx": dx, "dy": dy}


def _sample_shear(rng: np.random.Generator, settings: ShearSettings) -> Params:
    return {"factor": _signed(rng, settings.shear_range)}


# --- pixels -----------------------------------------------------------------------------------


def pixels_then_resize(
    op: Callable[[np.ndarray, Params, tuple[float, float]], np.ndarray],
) -> Render:
    """A step that changes the working image in place of its pixels, then resizes it."""

    def render(
        work: np.ndarray, params: Params, work_scale: tuple[float, float], size: Any
    ) -> np.ndarray:
        return resize_to(op(work, params, work_scale), size)

    return render


def warped(geometry: Geometry) -> Render:
    """A step whose pixels are warped by its own ``geometry`` (source pixels) onto its canvas."""

    def render(
        work: np.ndarray, params: Params, work_scale: tuple[float, float], size: Any
    ) -> np.ndarray:
        matrix, canvas = geometry(params, *source_size(work, work_scale))
        return warp_to_canvas(work, matrix, canvas, work_scale, size)

    return render


def _step(
    name: str,
    summary: str,
    settings: type,
    sample: Callable[[np.random.Generator, Any], Params],
    render: Render,
    geometry: Geometry | None = None,
) -> StepType:
    return StepType(
        name,
        summary,
        settings,
        sample,
        render=render,
        moves_pixels=geometry is not None,
        geometry=geometry,
    )


def _rotate(p: Params, w: float, h: float) -> tuple[np.ndarray, tuple[float, float]]:
    return rotation(p["angle"], w, h)


def _translate(p: Params, w: float, h: float) -> tuple[np.ndarray, tuple[float, float]]:
    return translation(p["dx"], p["dy"], w, h)


def _shear_x(p: Params, w: float, h: float) -> tuple[np.ndarray, tuple[float, float]]:
    return shear(p["factor"], "x", w, h)


def _shear_y(p: Params, w: float, h: float) -> tuple[np.ndarray, tuple[float, float]]:
    return shear(p["factor"], "y", w, h)


def _flip_x(p: Params, w: float, h: float) -> tuple[np.ndarray, tuple[float, float]]:
    return flip("x", w, h)


def _flip_y(p: Params, w: float, h: float) -> tuple[np.ndarray, tuple[float, float]]:
    return flip("y", w, h)


#: Copy 0 of every source: the source, resized (with its preprocessing).
ORIGINAL = _step(
    "original", "the source, resized", NoSettings, _no_params, pixels_then_resize(lambda w, p, s: w)
)

#: The paper's ten (SPEC §2), in the order copies cycle through them.
PAPER: dict[str, StepType] = {
    step.name: step
    for step in (
        _step(
            "gray",
            "luminance only, 3 equal channels",
            NoSettings,
            _no_params,
            pixels_then_resize(lambda w, p, s: to_gray3(w)),
        ),
        _step(
            "blur_rgb",
            "Gaussian blur, sigma ~ U(sigma_range)",
            SigmaSettings,
            _sample_sigma,
            pixels_then_resize(lambda w, p, s: gaussian_blur(w, p["sigma"], s)),
        ),
        _step(
            "blur_gray",
            "gray, then Gaussian blur",
            SigmaSettings,
            _sample_sigma,
            pixels_then_resize(lambda w, p, s: gaussian_blur(to_gray3(w), p["sigma"], s)),
        ),
        _step(
            "histeq",
            "histogram equalization of the gray image",
            NoSettings,
            _no_params,
            pixels_then_resize(lambda w, p, s: equalize_gray3(w)),
        ),
        _step(
            "flip_x",
            "reflection about the x-axis (top-bottom)",
            NoSettings,
            _no_params,
            pixels_then_resize(lambda w, p, s: cv2.flip(w, 0)),
            _flip_x,
        ),
        _step(
            "flip_y",
            "reflection about the y-axis (left-right)",
            NoSettings,
            _no_params,
            pixels_then_resize(lambda w, p, s: cv2.flip(w, 1)),
            _flip_y,
        ),
        _step(
            "rotate",
            "rotation on an enlarged canvas, resized back",
            RotateSettings,
            _sample_angle,
            warped(_rotate),
            _rotate,
        ),
        _step(
            "translate",
            "shift by +-dx, +-dy, black fill",
            TranslateSettings,
            _sample_shift,
            warped(_translate),
            _translate,
        ),
        _step(
            "shear_x",
            "horizontal shear on an enlarged canvas",
            ShearSettings,
            _sample_shear,
            warped(_shear_x),
            _shear_x,
        ),
        _step(
            "shear_y",
            "vertical shear on an enlarged canvas",
            ShearSettings,
            _sample_shear,
            warped(_shear_y),
            _shear_y,
        ),
    )
}


def _rot90(p: Params, w: float, h: float) -> tuple[np.ndarray, tuple[float, float]]:
    return quarter_turns(p["turns"], w, h)


def _zoom(p: Params, w: float, h: float) -> tuple[np.ndarray, tuple[float, float]]:
    x0, y0, cw, ch = crop_window(p["keep"], p["x"], p["y"], round(w), round(h))
    return crop(x0, y0, cw, ch)


#: Where the curator steps that move pixels send them; the others change colours only.
CURATOR_GEOMETRY: dict[str, Geometry] = {"rot90": _rot90, "zoom": _zoom}


#: Every built-in step: the paper's ten (in their cycle order), then the curator set.
STEPS: dict[str, StepType] = {
    **PAPER,
    **{
        entry.name: as_step_type(
            entry, entry.name in CURATOR_GEOMETRY, CURATOR_GEOMETRY.get(entry.name)
        )
        for entry in CURATOR
    },
}
