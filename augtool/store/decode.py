"""Decode source files to 8-bit RGB, at full or reduced resolution.

One decoder for every input, so the conversion of unusual files is the same
everywhere (``expand``, ``evaluate`` on a raw folder, ``preview``):

* 8-bit grey becomes three equal channels; palette images are expanded.
* 16-bit samples are scaled to 8 bits by rounding ``v * 255 / 65535``.
* An alpha channel is composited over white (a slide's background is bright).
* CMYK JPEGs are converted by libjpeg through OpenCV.
* EXIF orientation is ignored: pixels are used as stored, for every format.

Reduced decoding uses libjpeg's DCT scaling for JPEG (``IMREAD_REDUCED_*``),
which decodes a 2592x1944 JPEG at 1/4 size about four times faster than in
full; other formats are decoded in full and area-averaged down.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import cv2
import numpy as np

from augtool.errors import InputError
from augtool.ops.resize import resize_to

#: File suffixes accepted as images (compared in lower case).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
#: Linear oversampling of the working image relative to the output size.
OVERSAMPLE = 2.0

_JPEG_MAGIC = b"\xff\xd8\xff"
_REDUCED_COLOR = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def is_jpeg(data: bytes) -> bool:
    """True when ``data`` starts with the JPEG SOI marker."""
    return data[:3] == _JPEG_MAGIC


def choose_reduction(width: int, height: int, size: int, oversample: float = OVERSAMPLE) -> int:
    """Largest reduction in (8, 4, 2, 1) that keeps both sides >= ``oversample * size``.

    The output is ``size x size`` (squashed), so each side of the working image
    needs at least ``oversample * size`` pixels.

    Args:
        width: Source width in pixels.
        height: Source height in pixels.
        size: Output side length.
        oversample: Working pixels per output pixel, at least.

    Returns:
        The reduction factor ``k``: the working image is about ``source / k``.
    """
    need = oversample * size
    for k in (8, 4, 2):
        if width / k >= need and height / k >= need:
            return k
    return 1


def reduced_shape(width: int, height: int, reduction: int) -> tuple[int, int]:
    """(width, height) of a source decoded at ``1 / reduction`` (libjpeg rounds up)."""
    return math.ceil(width / reduction), math.ceil(height / reduction)


def truncation(data: bytes) -> str:
    """Why an image file looks cut short, or ``''`` when its end marker is in place.

    The one wording of a truncated file: ``expand``'s scan, ``preview`` and every
    other decoding path report it through this function (via :func:`decode_rgb`).

    Args:
        data: The encoded file.

    Returns:
        ``'truncated JPEG (...)'`` or ``'truncated PNG (...)'``, or ``''``.
    """
    if is_jpeg(data):
        # Inside entropy-coded data 0xFF is always stuffed, so an EOI after the
        # last start-of-scan marker is the real end of the image.
        if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
            return "truncated JPEG (no end-of-image marker after the last scan)"
    elif data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-16:]:
        return "truncated PNG (no IEND chunk)"
    return ""


def decode_rgb(data: bytes, reduction: int = 1, name: str = "image") -> np.ndarray:
    """Decode image bytes to an ``(H, W, 3)`` uint8 RGB array.

    Args:
        data: The encoded file.
        reduction: 1, 2, 4 or 8; the result is ``ceil(W / k) x ceil(H / k)``.
        name: Used in error messages (normally the file path).

    Returns:
        A new C-contiguous RGB array.

    Raises:
        InputError: If the bytes are cut short (:func:`truncation`, checked
            first: libjpeg would fill the missing rows with grey) or are not a
            decodable image.
        ValueError: If ``reduction`` is not 1, 2, 4 or 8.
    """
    if reduction not in _REDUCED_COLOR:
        raise ValueError(f"reduction must be 1, 2, 4 or 8, got {reduction}")
    cut = truncation(data)
    if cut:
        raise InputError(f"{name}: {cut}")
    buf = np.frombuffer(data, dtype=np.uint8)
    if is_jpeg(data):
        bgr = _imdecode(buf, _REDUCED_COLOR[reduction] | cv2.IMREAD_IGNORE_ORIENTATION, name)
        if bgr is None:
            raise InputError(f"{name}: JPEG data is corrupt (libjpeg cannot decode it)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    raw = _imdecode(buf, cv2.IMREAD_UNCHANGED, name)
    if raw is None:
        raise InputError(f"{name}: not a decodable image (corrupt, truncated or not an image)")
    rgb = to_rgb8(raw, name)
    if reduction > 1:
        height, width = rgb.shape[:2]
        rgb = cv2.resize(rgb, reduced_shape(width, height, reduction), interpolation=cv2.INTER_AREA)
    return rgb


def _imdecode(buf: np.ndarray, flags: int, name: str) -> np.ndarray | None:
    """``cv2.imdecode``, with OpenCV's own refusals (size limits, bad codecs) as InputError."""
    try:
        return cv2.imdecode(buf, flags)
    except cv2.error as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "decoder error"
        raise InputError(f"{name}: OpenCV cannot decode it ({reason})") from err


def to_rgb8(raw: np.ndarray, name: str = "image") -> np.ndarray:
    """Convert an array as OpenCV decodes it (BGR order, any depth) to 8-bit RGB.

    Raises:
        InputError: For sample types that have no sensible 8-bit meaning.
    """
    if raw.dtype == np.uint16:
        raw = _sixteen_to_eight(raw)
    elif raw.dtype != np.uint8:
        raise InputError(
            f"{name}: {raw.dtype} samples are not supported; convert to 8- or 16-bit integers"
        )
    if raw.ndim == 2:
        return np.ascontiguousarray(np.repeat(raw[:, :, None], 3, axis=2))
    channels = raw.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(raw, 3, axis=2))
    if channels == 2:
        grey, alpha = raw[:, :, :1], raw[:, :, 1:2]
        return np.repeat(_over_white(grey, alpha), 3, axis=2)
    if channels == 3:
        return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    if channels == 4:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
        return _over_white(rgb[:, :, :3], rgb[:, :, 3:4])
    raise InputError(f"{name}: {channels} channels are not supported")


def _sixteen_to_eight(raw: np.ndarray, block: int = 2**22) -> np.ndarray:
    """``round(v * 255 / 65535)`` in blocks of rows, so a huge 16-bit image needs no 32-bit copy."""
    out = np.empty(raw.shape, np.uint8)
    rows = max(1, block // max(1, raw[0].size))
    for start in range(0, raw.shape[0], rows):
        wide = raw[start : start + rows].astype(np.uint32)
        wide *= 255
        wide += 32767
        wide //= 65535
        out[start : start + rows] = wide
    return out


def _over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite ``color`` over white with 8-bit ``alpha``, rounding exactly."""
    c = color.astype(np.uint32)
    a = alpha.astype(np.uint32)
    out = (c * a + 255 * (255 - a) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def read_image_file(path: str | Path) -> bytes:
    """The bytes of an input file.

    Raises:
        InputError: If it cannot be read, naming the file and the reason.
    """
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err


def load_resized(path: str | Path, size: int) -> np.ndarray:
    """Decode a source file and resize it exactly as ``expand`` makes its original copy.

    Args:
        path: An image file.
        size: Output side length.

    Returns:
        ``(size, size, 3)`` uint8 RGB.

    Raises:
        InputError: If the file cannot be read or decoded.
    """
    data = read_image_file(path)
    width, height = image_size(data, str(path))
    return resize_to(decode_rgb(data, choose_reduction(width, height, size), str(path)), size)


def image_size(data: bytes, name: str = "image") -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels.

    Reads the header of every format in :data:`IMAGE_SUFFIXES` itself (JPEG
    SOF segment, PNG IHDR chunk, BMP info header, TIFF first IFD), so neither
    Pillow nor a decode is needed: ``model/`` runs this on a GPU machine that
    has no Pillow. The caller applies its own pixel limit (``--max-pixels``).

    Raises:
        InputError: If the bytes are none of these formats, or the header is
            damaged or cut short.
    """
    try:
        size = _header_size(data)
    except (struct.error, IndexError, ValueError):
        size = None
    if size is None or size[0] <= 0 or size[1] <= 0:
        kind = "JPEG header" if is_jpeg(data) else "header"
        raise InputError(f"{name}: not an image file, or its {kind} is damaged or cut short")
    return size


#: JPEG markers that start a frame and carry the image size (SOF0..SOF15 but DHT, JPG, DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers without a length field (TEM, RST0..RST7, SOI).
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])


def _header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the header, or None when the format is unknown or cut short."""
    if is_jpeg(data):
        return _jpeg_size(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"BM"):
        info = struct.unpack("<I", data[14:18])[0]
        if info == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
            width, height = struct.unpack("<HH", data[18:22])
            return width, height
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)  # a negative height stores the rows top-down
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _tiff_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments from SOI to the first start-of-frame."""
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            return None
        while data[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        length = struct.unpack(">H", data[pos : pos + 2])[0]
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return width, height
        if length < 2 or pos + length > len(data):
            return None
        pos += length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD, classic TIFF or BigTIFF."""
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    if big:
        count_fmt, entry_size, offset = "Q", 20, struct.unpack(order + "Q", data[8:16])[0]
    else:
        count_fmt, entry_size, offset = "H", 12, struct.unpack(order + "I", data[4:8])[0]
    count_size = struct.calcsize(count_fmt)
    count = struct.unpack(order + count_fmt, data[offset : offset + count_size])[0]
    found: dict[int, int] = {}
    value_formats = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8
    for i in range(count):
        at = offset + count_size + i * entry_size
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag in (256, 257) and kind in value_formats:
            value_at = at + (12 if big else 8)
            fmt = order + value_formats[kind]
            found[tag] = struct.unpack(fmt, data[value_at : value_at + struct.calcsize(fmt)])[0]
        if len(found) == 2:
            return found[256], found[257]
    return None
