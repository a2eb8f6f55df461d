"""The curator set's pixel operations: brightness, exposure, hue, saturation, noise, cutout.

Pure functions ``apply(image, params) -> image`` of an RGB uint8 image and the
parameters a step drew (``augtool.pipeline.curator_steps``); the same
parameters give the same bytes. None moves a pixel, so targets stay where
they are.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from augtool.ops.intensity import to_gray3

Params = dict[str, Any]


def _lut_apply(image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Apply a 256-entry mapping (float) to every channel, rounded and clipped."""
    table = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


def apply_brightness(image: np.ndarray, params: Params) -> np.ndarray:
    """Add ``delta * 255`` to every channel, clipped."""
    return _lut_apply(image, np.arange(256, dtype=np.float64) + params["delta"] * 255.0)


def apply_exposure(image: np.ndarray, params: Params) -> np.ndarray:
    """Multiply every channel by ``2 ** stops``, clipped."""
    return _lut_apply(image, np.arange(256, dtype=np.float64) * 2.0 ** params["stops"])


def apply_hue(image: np.ndarray, params: Params) -> np.ndarray:
    """Rotate the hue by ``shift`` degrees (HSV on [0, 1] floats, 360° hue)."""
    hsv = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    hsv[:, :, 0] = np.mod(hsv[:, :, 0] + np.float32(params["shift"]), 360.0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def apply_saturation(image: np.ndarray, params: Params) -> np.ndarray:
    """Blend with the luminance image: ``gray + factor * (rgb - gray)``, clipped."""
    gray = to_gray3(image).astype(np.float32)
    out = gray + np.float32(params["factor"]) * (image.astype(np.float32) - gray)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def apply_noise(image: np.ndarray, params: Params) -> np.ndarray:
    """Add a Gaussian noise field drawn from ``noise_seed`` (pure: same params, same bytes)."""
    noise = np.random.default_rng(params["noise_seed"]).normal(0.0, params["std"], image.shape)
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


def apply_cutout(image: np.ndarray, params: Params) -> np.ndarray:
    """Fill each hole with black."""
    out = image.copy()
    h, w = image.shape[:2]
    for x, y, side in params["holes"]:
        x0, y0 = round(x * w), round(y * h)
        out[y0 : y0 + max(1, round(side * h)), x0 : x0 + max(1, round(side * w))] = 0
    return out
