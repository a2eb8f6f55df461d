"""Stain normalisation, a preprocessing of every output before augmentation.

(The other preprocessing, the shape policy, is :func:`augtool.ops.geometry.reshape_policy`.)

* Stain (``stain = "reinhard"``): Reinhard et al. (2001) colour transfer in
  LAB: each channel of the source is shifted and scaled to the mean and
  standard deviation of a reference image's, so smears from different labs
  and cameras come out in one colour range. The reference's statistics are
  computed once when the recipe is read and recorded in it (the manifest), so
  workers and ``verify --regenerate`` never need the reference file.

A pure function of the working image and the recorded numbers.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Values of the recipe's ``preprocess.stain``.
STAIN_METHODS = ("none", "reinhard")


def lab_stats(image: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of each LAB channel of an RGB uint8 image.

    LAB as OpenCV computes it from [0, 1] floats: L in [0, 100], a and b about
    [-127, 127].
    """
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3)
    mean = lab.astype(np.float64).mean(axis=0)
    std = lab.astype(np.float64).std(axis=0)
    return [float(v) for v in mean], [float(v) for v in std]


def reinhard(image: np.ndarray, target_mean: list[float], target_std: list[float]) -> np.ndarray:
    """Move the LAB statistics of ``image`` to the target's (Reinhard colour transfer).

    Args:
        image: RGB uint8.
        target_mean: The reference's LAB means.
        target_std: The reference's LAB standard deviations.

    Returns:
        RGB uint8 of the same shape.
    """
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    flat = lab.reshape(-1, 3).astype(np.float64)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    gain = np.asarray(target_std) / np.maximum(std, 1e-6)
    out = (lab - mean.astype(np.float32)) * gain.astype(np.float32) + np.asarray(
        target_mean, dtype=np.float32
    )
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
