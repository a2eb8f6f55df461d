"""Images to file bytes, and the hash every output is recorded with."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from augtool.errors import OutputError


def encode_image(
    rgb: np.ndarray, image_format: str, jpeg_quality: int = 95, what: str = ""
) -> bytes:
    """An RGB uint8 image as PNG or JPEG file bytes.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB.
        image_format: ``png`` or ``jpg``.
        jpeg_quality: JPEG quality, 1 to 100.
        what: The image, for the message (``output 12``).

    Raises:
        OutputError: If OpenCV cannot encode it.
    """
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if image_format == "jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    else:
        ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise OutputError(f"OpenCV could not encode {what or 'an image'} as {image_format}")
    return buf.tobytes()


def payload_sha256(payload: bytes | np.ndarray) -> str:
    """The recorded hash of an output: of its file bytes, or of a C-order array's bytes."""
    if isinstance(payload, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(payload).tobytes()).hexdigest()
    return hashlib.sha256(payload).hexdigest()
