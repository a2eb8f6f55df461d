"""The paper's intensity operations: luminance, Gaussian blur, histogram equalisation.

Pure functions of an RGB uint8 image, OpenCV calls with the paper's (MATLAB's)
conventions: the ``rgb2gray`` weights, a replicated border, and lengths in
source pixels scaled to the working resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from augtool.ops.geometry import WorkScale

#: Luminance weights of the paper (MATLAB ``rgb2gray``); OpenCV uses 0.299/0.587/0.114.
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def to_gray3(image: np.ndarray) -> np.ndarray:
    """Luminance 0.2989 R + 0.5870 G + 0.1140 B, rounded, kept as 3 equal channels."""
    weights = np.array([GRAY_WEIGHTS] * 3, dtype=np.float32)
    return cv2.transform(image, weights)


def to_gray(image: np.ndarray) -> np.ndarray:
    """The luminance of :func:`to_gray3` as one channel, the same values.

    One channel of the three-channel transform: a one-row ``cv2.transform``
    rounds differently.
    """
    return cv2.extractChannel(to_gray3(image), 0)


def gaussian_blur(image: np.ndarray, sigma: float, work_scale: WorkScale) -> np.ndarray:
    """Gaussian filter with ``sigma`` in source pixels (replicated border, as MATLAB)."""
    sx, sy = work_scale
    return cv2.GaussianBlur(
        image, (0, 0), sigmaX=sigma * sx, sigmaY=sigma * sy, borderType=cv2.BORDER_REPLICATE
    )


def equalize_gray(image: np.ndarray) -> np.ndarray:
    """Histogram equalization of the grey image, one channel."""
    return cv2.equalizeHist(to_gray(image))


def gray3(gray: np.ndarray) -> np.ndarray:
    """A one-channel image as three equal channels."""
    return cv2.merge([gray, gray, gray])
