"""Resize images to the output size: a pure function of the pixels (no files, no clock).

Its own module so that the steps (``augtool.ops.geometry``, ``augtool.pipeline``)
and the decoding of files (:mod:`augtool.store.decode`, used by ``model/`` on
the GPU machine) share one resize without either importing the other: the
pure operations must not depend on a module that reads files, and ``model/``
must not depend on the pipeline.
"""

from __future__ import annotations

import cv2
import numpy as np


def resize_to(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Squash an image to ``size x size`` (the paper's 227x227 input), or to ``(width, height)``.

    Shrinking halves by area averaging (each new pixel the mean of a 2x2
    block) while both sides stay at least twice the output's, then area-averages the
    rest; enlarging is bilinear. OpenCV's area resampling is slow at large
    non-integer ratios; exact halvings are not.

    Every step maps the whole extent onto the whole extent, so pixel centres
    stay where they belong. A Gaussian pyramid step (``cv2.pyrDown``, used
    before) centres output pixel ``i`` on input pixel ``2 i`` instead of
    between pixels ``2 i`` and ``2 i + 1``: half an input pixel of shift per
    level, and full- and reduced-resolution work take different numbers of
    levels, so the two disagreed by up to 3.5 source pixels at reduction
    factor 8 (docs/transforms.md, "Fast and exact").
    """
    out_w, out_h = (size, size) if isinstance(size, int) else size
    height, width = image.shape[:2]
    while height >= 2 * out_h and width >= 2 * out_w:
        half = ((width + 1) // 2, (height + 1) // 2)
        image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
        height, width = image.shape[:2]
    interp = cv2.INTER_AREA if width >= out_w and height >= out_h else cv2.INTER_LINEAR
    return cv2.resize(image, (out_w, out_h), interpolation=interp)
