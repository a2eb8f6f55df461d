"""The transforms curators expect beyond the paper's ten: colour, noise, cutout, 90° turns, zoom.

Each is a registry entry (:class:`augtool.registry.TransformEntry`): a typed
settings dataclass, ``sample(rng, settings) -> params`` and a pure
``apply(image, params) -> image``. Colour, noise and cutout run on the
``size x size`` output (``at = "output"``); 90° turns and zoom run on the
working image and are then squashed to the output size (``at = "work"``).
Grayscale, blur, flips, rotation, shear and translation are the paper's
transforms (``gray``, ``blur_rgb``, ``flip_x``/``flip_y``, ``rotate``,
``shear_x``/``shear_y``, ``translate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from augtool.ops.geometry import crop_window
from augtool.transforms import bounded

Params = dict[str, Any]


def _lut_apply(image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Apply a 256-entry mapping (float) to every channel, rounded and clipped."""
    table = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


@dataclass(frozen=True)
class BrightnessSettings:
    """Added brightness as a fraction of full scale (255), e.g. [-0.2, 0.2]."""

    delta_range: tuple[float, float] = bounded((-0.2, 0.2), -1.0, 1.0)


def sample_brightness(rng: np.random.Generator, s: BrightnessSettings) -> Params:
    """Draw the brightness delta."""
    return {"delta": float(rng.uniform(*s.delta_range))}


def apply_brightness(image: np.ndarray, params: Params) -> np.ndarray:
    """Add ``delta * 255`` to every channel, clipped."""
    return _lut_apply(image, np.arange(256, dtype=np.float64) + params["delta"] * 255.0)


@dataclass(frozen=True)
class ExposureSettings:
    """Exposure change in photographic stops (gain 2**stops), e.g. [-0.5, 0.5]."""

    stops_range: tuple[float, float] = bounded((-0.5, 0.5), -8.0, 8.0)


def sample_exposure(rng: np.random.Generator, s: ExposureSettings) -> Params:
    """Draw the exposure change in stops."""
    return {"stops": float(rng.uniform(*s.stops_range))}


def apply_exposure(image: np.ndarray, params: Params) -> np.ndarray:
    """Multiply every channel by ``2 ** stops``, clipped."""
    return _lut_apply(image, np.arange(256, dtype=np.float64) * 2.0 ** params["stops"])


@dataclass(frozen=True)
class HueSettings:
    """Hue rotation in degrees, e.g. [-15, 15]."""

    shift_range: tuple[float, float] = bounded((-15.0, 15.0), -360.0, 360.0)


def sample_hue(rng: np.random.Generator, s: HueSettings) -> Params:
    """Draw the hue shift."""
    return {"shift": float(rng.uniform(*s.shift_range))}


def apply_hue(image: np.ndarray, params: Params) -> np.ndarray:
    """Rotate the hue by ``shift`` degrees (HSV on [0, 1] floats, 360° hue)."""
    hsv = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    hsv[:, :, 0] = np.mod(hsv[:, :, 0] + np.float32(params["shift"]), 360.0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class SaturationSettings:
    """Saturation factor (1 keeps it, 0 is grey), e.g. [0.6, 1.4]."""

    factor_range: tuple[float, float] = bounded((0.6, 1.4), 0.0, 10.0)


def sample_saturation(rng: np.random.Generator, s: SaturationSettings) -> Params:
    """Draw the saturation factor."""
    return {"factor": float(rng.uniform(*s.factor_range))}


def apply_saturation(image: np.ndarray, params: Params) -> np.ndarray:
    """Blend with the luminance image: ``gray + factor * (rgb - gray)``, clipped."""
    from augtool.transforms import to_gray3

    gray = to_gray3(image).astype(np.float32)
    out = gray + np.float32(params["factor"]) * (image.astype(np.float32) - gray)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class NoiseSettings:
    """Standard deviation of Gaussian pixel noise in grey levels, e.g. [3, 10]."""

    std_range: tuple[float, float] = bounded((3.0, 10.0), 0.0, 255.0)


def sample_noise(rng: np.random.Generator, s: NoiseSettings) -> Params:
    """Draw the noise level and the seed of the noise field."""
    return {"std": float(rng.uniform(*s.std_range)), "noise_seed": int(rng.integers(0, 2**63))}


def apply_noise(image: np.ndarray, params: Params) -> np.ndarray:
    """Add a Gaussian noise field drawn from ``noise_seed`` (pure: same params, same bytes)."""
    noise = np.random.default_rng(params["noise_seed"]).normal(0.0, params["std"], image.shape)
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


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


def apply_cutout(image: np.ndarray, params: Params) -> np.ndarray:
    """Fill each hole with black."""
    out = image.copy()
    h, w = image.shape[:2]
    for x, y, side in params["holes"]:
        x0, y0 = round(x * w), round(y * h)
        out[y0 : y0 + max(1, round(side * h)), x0 : x0 + max(1, round(side * w))] = 0
    return out


@dataclass(frozen=True)
class Rot90Settings:
    """Which quarter turns (counterclockwise) may be drawn, e.g. (1, 2, 3)."""

    turns: tuple[int, ...] = bounded((1, 2, 3), 0, 3)


def sample_rot90(rng: np.random.Generator, s: Rot90Settings) -> Params:
    """Draw the number of quarter turns."""
    if not s.turns or any(t not in (0, 1, 2, 3) for t in s.turns):
        raise ValueError(f"turns must be a non-empty list of 0..3, got {list(s.turns)}")
    return {"turns": int(s.turns[int(rng.integers(0, len(s.turns)))])}


def apply_rot90(image: np.ndarray, params: Params) -> np.ndarray:
    """Turn by ``turns`` quarter turns counterclockwise."""
    return np.ascontiguousarray(np.rot90(image, params["turns"]))


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


def apply_zoom(image: np.ndarray, params: Params) -> np.ndarray:
    """Crop the window (same aspect as the image); the caller resizes it to the output."""
    h, w = image.shape[:2]
    x0, y0, cw, ch = crop_window(params["keep"], params["x"], params["y"], w, h)
    return image[y0 : y0 + ch, x0 : x0 + cw]
