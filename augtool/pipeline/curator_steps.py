"""The curator set beyond the paper's ten: colour, noise, cutout, quarter turns, zoom.

Each step's recipe settings (a frozen dataclass, checked where it is read) and
its sampler: ``sample(rng, settings) -> params`` from an explicit generator.
The pixels are pure functions of ``augtool.ops``: colour, noise and cutout
(:mod:`augtool.ops.pixels`) run on the ``size x size`` output; quarter turns
and zoom (:mod:`augtool.ops.geometry`) run on the working image and are then
squashed to the output size. Grayscale, blur, flips, rotation, shear and
translation are the paper's steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from augtool.ops import geometry, pixels
from augtool.ops.geometry import Affine, crop, crop_window, quarter_turns
from augtool.pipeline.settings import bounded
from augtool.pipeline.steps import StepType

Params = dict[str, Any]


@dataclass(frozen=True)
class BrightnessSettings:
    """Added brightness as a fraction of full scale (255), e.g. [-0.2, 0.2]."""

    delta_range: tuple[float, float] = bounded((-0.2, 0.2), -1.0, 1.0)


def sample_brightness(rng: np.random.Generator, s: BrightnessSettings) -> Params:
    """Draw the brightness delta."""
    return {"delta": float(rng.uniform(*s.delta_range))}


@dataclass(frozen=True)
class ExposureSettings:
    """Exposure change in photographic stops (gain 2**stops), e.g. [-0.5, 0.5]."""

    stops_range: tuple[float, float] = bounded((-0.5, 0.5), -8.0, 8.0)


def sample_exposure(rng: np.random.Generator, s: ExposureSettings) -> Params:
    """Draw the exposure change in stops."""
    return {"stops": float(rng.uniform(*s.stops_range))}


@dataclass(frozen=True)
class HueSettings:
    """Hue rotation in degrees, e.g. [-15, 15]."""

    shift_range: tuple[float, float] = bounded((-15.0, 15.0), -360.0, 360.0)


def sample_hue(rng: np.random.Generator, s: HueSettings) -> Params:
    """Draw the hue shift."""
    return {"shift": float(rng.uniform(*s.shift_range))}


@dataclass(frozen=True)
class SaturationSettings:
    """Saturation factor (1 keeps it, 0 is grey), e.g. [0.6, 1.4]."""

    factor_range: tuple[float, float] = bounded((0.6, 1.4), 0.0, 10.0)


def sample_saturation(rng: np.random.Generator, s: SaturationSettings) -> Params:
    """Draw the saturation factor."""
    return {"factor": float(rng.uniform(*s.factor_range))}


@dataclass(frozen=True)
class NoiseSettings:
    """Standard deviation of Gaussian pixel noise in grey levels, e.g. [3, 10]."""

    std_range: tuple[float, float] = bounded((3.0, 10.0), 0.0, 255.0)


def sample_noise(rng: np.random.Generator, s: NoiseSettings) -> Params:
    """Draw the noise level and the seed of the noise field."""
    return {"std": float(rng.uniform(*s.std_range)), "noise_seed": int(rng.integers(0, 2**63))}


@dataclass(frozen=True)
class CutoutSettings:
    """Black square holes: how many, and their side as a fraction of the image side."""

    holes_range: tuple[int, int] = bounded((1, 3), 0, 64)
    side_range: tuple[float, float] = bounded((0.1, 0.25), 0.0, 1.0)


def sample_cutout(rng: np.random.Generator, s: CutoutSettings) -> Params:
    """Draw the holes: ``[x, y, side]`` each, fractions of the image side."""
    n = int(rng.integers(s.holes_range[0], s.holes_range[1] + 1))
    holes = []
    for _ in range(n):
        side = float(rng.uniform(*s.side_range))
        holes.append([float(rng.uniform(0, 1 - side)), float(rng.uniform(0, 1 - side)), side])
    return {"holes": holes}


@dataclass(frozen=True)
class Rot90Settings:
    """Which quarter turns (counterclockwise) may be drawn, e.g. (1, 2, 3)."""

    turns: tuple[int, ...] = bounded((1, 2, 3), 0, 3)


def sample_rot90(rng: np.random.Generator, s: Rot90Settings) -> Params:
    """Draw the number of quarter turns."""
    if not s.turns or any(t not in (0, 1, 2, 3) for t in s.turns):
        raise ValueError(f"turns must be a non-empty list of 0..3, got {list(s.turns)}")
    return {"turns": int(s.turns[int(rng.integers(0, len(s.turns)))])}


@dataclass(frozen=True)
class ZoomSettings:
    """Crop/zoom: side of the kept window as a fraction of the image's, e.g. [0.6, 0.9]."""

    keep_range: tuple[float, float] = bounded((0.6, 0.9), 0.001, 1.0)


def sample_zoom(rng: np.random.Generator, s: ZoomSettings) -> Params:
    """Draw the kept fraction and the window's position (fractions of the free space)."""
    return {
        "keep": float(rng.uniform(*s.keep_range)),
        "x": float(rng.uniform(0, 1)),
        "y": float(rng.uniform(0, 1)),
    }


def _rot90(p: Params, w: float, h: float) -> Affine:
    return quarter_turns(p["turns"], w, h)


def _zoom(p: Params, w: float, h: float) -> Affine:
    x0, y0, cw, ch = crop_window(p["keep"], p["x"], p["y"], round(w), round(h))
    return crop(x0, y0, cw, ch)


#: The curator set: colour, noise and cutout move no pixel; quarter turns and zoom move them by
#: their own maps (``augtool.ops.geometry``), which their targets follow.
CURATOR: tuple[StepType, ...] = (
    StepType(
        "brightness",
        "add delta x 255 to every channel",
        BrightnessSettings,
        sample_brightness,
        pixels.apply_brightness,
        moves_pixels=False,
    ),
    StepType(
        "exposure",
        "multiply by 2**stops",
        ExposureSettings,
        sample_exposure,
        pixels.apply_exposure,
        moves_pixels=False,
    ),
    StepType(
        "hue",
        "rotate the hue by shift degrees",
        HueSettings,
        sample_hue,
        pixels.apply_hue,
        moves_pixels=False,
    ),
    StepType(
        "saturation",
        "scale the saturation (blend with grey)",
        SaturationSettings,
        sample_saturation,
        pixels.apply_saturation,
        moves_pixels=False,
    ),
    StepType(
        "noise",
        "Gaussian pixel noise, std in grey levels",
        NoiseSettings,
        sample_noise,
        pixels.apply_noise,
        moves_pixels=False,
    ),
    StepType(
        "cutout",
        "black square holes",
        CutoutSettings,
        sample_cutout,
        pixels.apply_cutout,
        moves_pixels=False,
    ),
    StepType(
        "rot90",
        "quarter turns, counterclockwise",
        Rot90Settings,
        sample_rot90,
        geometry.apply_rot90,
        at="work",
        moves_pixels=True,
        geometry=_rot90,
    ),
    StepType(
        "zoom",
        "crop a window (keep a fraction of each side), zoomed to the output",
        ZoomSettings,
        sample_zoom,
        geometry.apply_zoom,
        at="work",
        moves_pixels=True,
        geometry=_zoom,
    ),
)
