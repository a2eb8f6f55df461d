"""The one table of built-in steps: the paper's ten, the curator set, and the original.

Each entry is a :class:`augtool.pipeline.steps.StepType`: its recipe settings,
how it samples from an explicit generator, its pixels, and where its targets
go. The paper's geometric steps warp their pixels by their own ``geometry``
(``augtool.ops.geometry``), so boxes are mapped by the very matrix the pixels
are; the flips move pixels by ``cv2.flip``, which is their map exactly. Colour
and intensity steps declare that they move no pixel.

The curator set is :mod:`augtool.pipeline.curator_steps`; plug-ins and
albumentations steps are the same kind of entry, found elsewhere
(``augtool.pipeline.plugins``, ``augtool.pipeline.albu``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import cv2
import numpy as np

from augtool import defaults
from augtool.errors import OptionError, literal
from augtool.ops.geometry import (
    Affine,
    as3x3,
    flip,
    identity,
    output_map,
    rotation,
    shear,
    source_size,
    translation,
    warp_to_canvas,
)
from augtool.ops.intensity import equalize_gray, gaussian_blur, gray3, to_gray
from augtool.ops.resize import resize_to
from augtool.pipeline.curator_steps import CURATOR
from augtool.pipeline.settings import bounded, check_domains
from augtool.pipeline.steps import ORIGINAL_NAME, Geometry, NoSettings, Params, StepType

#: ``render(work, params, work_scale, size) -> output``.
Render = Callable[[np.ndarray, Params, tuple[float, float], Any], np.ndarray]


# --- settings: the paper's ranges ------------------------------------------------------------


@dataclass(frozen=True)
class SigmaSettings:
    """Gaussian blur sigma in source pixels (paper: [4, 8])."""

    sigma_range: tuple[float, float] = bounded((4.0, 8.0), 0.0, 500.0)


@dataclass(frozen=True)
class RotateSettings:
    """Rotation angle in degrees, positive counterclockwise (decision: [-45, 45])."""

    rotate_range: tuple[float, float] = bounded((-45.0, 45.0), -360.0, 360.0)


@dataclass(frozen=True)
class TranslateSettings:
    """Magnitude of each of dx, dy in source pixels, random sign (paper: [25, 50])."""

    translate_range: tuple[float, float] = bounded((25.0, 50.0), 0.0, 100_000.0)


@dataclass(frozen=True)
class ShearSettings:
    """Magnitude of the shear factor, random sign (paper: [0.3, 1.0])."""

    shear_range: tuple[float, float] = bounded((0.3, 1.0), 0.0, 10.0)


@dataclass(frozen=True)
class Ranges:
    """Parameter ranges of the conventional transforms (paper §3.1 defaults).

    Attributes:
        sigma_range: Gaussian blur sigma in source pixels (paper: [4, 8]).
        rotate_range: Rotation angle in degrees, positive counterclockwise
            (the paper gives no range; decision: [-45, 45]).
        translate_range: Magnitude of each of dx, dy in source pixels, with a
            random sign (paper: [25, 50]).
        shear_range: Magnitude of the shear factor, with a random sign
            (paper: [0.3, 1.0]).
    """

    sigma_range: tuple[float, float] = bounded(defaults.DEFAULT_SIGMA_RANGE, 0.0, 500.0)
    rotate_range: tuple[float, float] = bounded(defaults.DEFAULT_ROTATE_RANGE, -360.0, 360.0)
    translate_range: tuple[float, float] = bounded(defaults.DEFAULT_TRANSLATE_RANGE, 0.0, 100_000.0)
    shear_range: tuple[float, float] = bounded(defaults.DEFAULT_SHEAR_RANGE, 0.0, 10.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            lo, hi = getattr(self, f.name)
            option = f.name
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise OptionError(option, f"bounds must be finite numbers, got {lo},{hi}")
            if lo > hi:
                raise OptionError(option, f"low bound {lo} is above high bound {hi}")
        for name in ("sigma_range", "translate_range", "shear_range"):
            if getattr(self, name)[0] < 0:
                raise OptionError(name, "magnitudes must be >= 0 (the sign is random)")
        if self.sigma_range[0] <= 0:
            raise OptionError("sigma_range", "sigma must be > 0")
        check_domains(self)

    def with_overrides(self, overrides: Mapping[str, tuple[float, float]]) -> Ranges:
        """Return a copy with some ranges replaced (keys are field names).

        Raises:
            OptionError: For an unknown key or an invalid range.
        """
        known = {f.name for f in fields(self)}
        for key in overrides:
            if key not in known:
                raise OptionError(key, f"unknown range; known: {', '.join(sorted(known))}")
        return replace(self, **{k: tuple(map(float, v)) for k, v in overrides.items()})

    def as_dict(self) -> dict[str, list[float]]:
        """JSON-friendly form, as recorded in the recipe."""
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}


#: Settings dataclass of each of the paper's transforms.
PAPER_SETTINGS: dict[str, type] = {
    "gray": NoSettings,
    "blur_rgb": SigmaSettings,
    "blur_gray": SigmaSettings,
    "histeq": NoSettings,
    "flip_x": NoSettings,
    "flip_y": NoSettings,
    "rotate": RotateSettings,
    "translate": TranslateSettings,
    "shear_x": ShearSettings,
    "shear_y": ShearSettings,
}


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


def gray_then_resize(
    op: Callable[[np.ndarray, Params, tuple[float, float]], np.ndarray],
) -> Render:
    """A step of the grey image: ``op`` and the resize on one channel, then three equal ones.

    The same bytes as working on three equal channels (OpenCV's blur and resize
    treat each channel alike), for a third of the work.
    """

    def render(
        work: np.ndarray, params: Params, work_scale: tuple[float, float], size: Any
    ) -> np.ndarray:
        return gray3(resize_to(op(work, params, work_scale), size))

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
    ORIGINAL_NAME,
    "the source, resized",
    NoSettings,
    _no_params,
    pixels_then_resize(lambda w, p, s: w),
)

#: The paper's ten (docs/transforms.md), in the order copies cycle through them.
PAPER: dict[str, StepType] = {
    step.name: step
    for step in (
        _step(
            "gray",
            "luminance only, 3 equal channels",
            NoSettings,
            _no_params,
            gray_then_resize(lambda w, p, s: to_gray(w)),
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
            gray_then_resize(lambda w, p, s: gaussian_blur(to_gray(w), p["sigma"], s)),
        ),
        _step(
            "histeq",
            "histogram equalization of the gray image",
            NoSettings,
            _no_params,
            gray_then_resize(lambda w, p, s: equalize_gray(w)),
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


#: Every built-in step: the paper's ten (in their cycle order), then the curator set.
STEPS: dict[str, StepType] = {**PAPER, **{step.name: step for step in CURATOR}}


def paper_settings(name: str, ranges: Ranges) -> Any:
    """The settings of one of the paper's transforms at ``ranges``."""
    settings_type = PAPER_SETTINGS[name]
    return settings_type(**{f.name: getattr(ranges, f.name) for f in fields(settings_type)})


def builtin(name: str, where: str = "transform") -> StepType:
    """Look up a built-in transform.

    Raises:
        OptionError: Naming ``where`` for an unknown name.
    """
    if name == ORIGINAL.name:
        return ORIGINAL
    try:
        return STEPS[name]
    except KeyError:
        raise OptionError(
            where,
            f"unknown transform {literal(repr(name))}; built-ins: {literal(', '.join(STEPS))} "
            "(or plugin = 'NAME' for a transform of a module given with {plugins}, "
            "or albumentations = ...)",
            refs=True,
        ) from None


@dataclass(frozen=True)
class PcaSettings:
    """Options of the PCA colour augmentation (see ``augtool.ops.pca``).

    Attributes:
        std: Standard deviation of the alphas.
        k: Principal components used.
        mode: ``pixel`` (the paper's per-pixel reading) or ``shift`` (Krizhevsky's).
        scale: ``relative`` (unit-free), or the legacy ``unit`` / ``byte`` of ``shift``.
    """

    std: float = defaults.DEFAULT_PCA_STD
    k: int = defaults.DEFAULT_PCA_K
    mode: str = defaults.DEFAULT_PCA_MODE
    scale: str = defaults.DEFAULT_PCA_SCALE


def parse_step_list(text: str | None) -> list[str]:
    """Parse ``transforms`` (``a,b,c``; None or ``all``: the paper's ten, in table order).

    Raises:
        OptionError: Naming ``transforms``, for unknown or repeated names, or an empty list.
    """
    if text is None or text.strip().lower() == "all":
        return list(PAPER)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise OptionError("transforms", "give at least one transform name")
    for name in names:
        if name not in PAPER:
            raise OptionError(
                "transforms", f"unknown transform {name!r}; choose from {', '.join(PAPER)}"
            )
    if len(set(names)) != len(names):
        raise OptionError("transforms", "a transform is named twice")
    return names


def output_matrix(
    name: str,
    params: Params,
    source: tuple[float, float],
    out: tuple[int, int],
    letterboxed: bool = False,
) -> np.ndarray:
    """The 3x3 map from source pixels to output pixels of a paper step (or the original).

    The map boxes, masks and polygons follow: the step's own ``geometry`` (the
    identity for one that moves no pixel), then the canvas to the output
    (:func:`augtool.ops.geometry.output_map`).

    Args:
        name: A paper step, ``original`` or ``pca``.
        params: Its parameters.
        source: Source ``(width, height)`` in pixels.
        out: Output ``(width, height)``.
        letterboxed: The canvas keeps its aspect ratio in the output.
    """
    matrix, canvas = step_geometry(name, params, *source)
    return output_map(canvas, out, letterboxed)[0] @ as3x3(matrix)


def step_geometry(name: str, params: Params, width: float, height: float) -> Affine:
    """The source-to-canvas map of a paper step (identity: original, pca, colour steps)."""
    step = PAPER.get(name)
    if step is None or step.geometry is None:
        return identity(width, height)
    return step.geometry(params, width, height)
