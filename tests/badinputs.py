"""Bad and unusual input files for tests and ``checks/robustness.py``: one set of builders.

A builder adds one kind of file (or folder) to a RAW folder made by
:func:`small_raw` (classes ``a`` and ``b``, two distinct JPEGs each) and
returns what a check needs: the path augtool names in its message
(:data:`REFUSED`), or the stem of the added file and the mean RGB its decoded
original must have (:data:`HANDLED`). The tables hold each case's name (the
row of the benchmark's table and the test's id) and the expected reason.
Nothing here imports augtool or pytest, so benchmarks can use it as they are.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


def picture(rng: np.random.Generator, width: int = 40, height: int = 30) -> np.ndarray:
    """A pale image with a few filled discs (BGR, uint8): cheap, distinct per ``rng``."""
    img = np.full((height, width, 3), (210, 200, 228), np.uint8)
    for _ in range(6):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        color = tuple(int(c) for c in rng.integers(60, 220, 3))
        cv2.circle(img, center, int(rng.integers(2, max(3, width // 5))), color, -1)
    return img


def jpeg_bytes(bgr: np.ndarray, quality: int = 90) -> bytes:
    """``bgr`` encoded as a JPEG."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def small_raw(root: Path, classes: tuple[str, ...] = ("a", "b")) -> Path:
    """``root/raw/<class>/{0,1}.jpg``: two distinct 40x30 JPEGs per class.

    Args:
        root: An existing folder; ``raw`` is created inside it.
        classes: Class folder names.

    Returns:
        The RAW folder.
    """
    raw = root / "raw"
    for c, cls in enumerate(classes):
        (raw / cls).mkdir(parents=True)
        for i in range(2):
            (raw / cls / f"{i}.jpg").write_bytes(jpeg_bytes(picture(np.random.default_rng([c, i]))))
    return raw


def giant_jpeg(width: int, height: int) -> bytes:
    """A valid, uniform mid-grey baseline JPEG of any size, built without the pixels.

    Every 8x8 block is coded as "DC difference 0" (``00``) then "end of block"
    (``1010``) with the standard Huffman tables: 6 bits, so 4 blocks are 3
    bytes. A 20000x20000 image is 4.7 MB and takes milliseconds, where
    encoding one needs 400 MB and a second.
    """
    ok, buf = cv2.imencode(".jpg", np.full((8, 8), 128, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 50])
    assert ok
    data = buf.tobytes()
    sof, sos = data.index(b"\xff\xc0"), data.index(b"\xff\xda")
    header = bytearray(data[: sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]])
    header[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    full, rest = divmod(((width + 7) // 8) * ((height + 7) // 8), 4)
    tail = {0: b"", 1: b"\x2b", 2: b"\x28\xaf", 3: b"\x28\xa2\xbf"}[rest]  # padded with 1-bits
    return bytes(header) + b"\x28\xa2\x8a" * full + tail + b"\xff\xd9"


# --- refused: each adds a file to class ``cls`` and returns the path the refusal names -------


def zero_byte(raw: Path, cls: str = "a") -> str:
    """An empty ``.jpg``."""
    (raw / cls / "zero.jpg").write_bytes(b"")
    return f"{cls}/zero.jpg"


def truncated_jpeg(raw: Path, cls: str = "a") -> str:
    """The first half of a 320x240 JPEG."""
    data = jpeg_bytes(picture(np.random.default_rng(6), 320, 240))
    (raw / cls / "cut.jpg").write_bytes(data[: len(data) // 2])
    return f"{cls}/cut.jpg"


def jpeg_cut_in_header(raw: Path, cls: str = "a") -> str:
    """A JPEG cut after 120 bytes, inside its header."""
    (raw / cls / "stub.jpg").write_bytes(jpeg_bytes(np.zeros((32, 32, 3), np.uint8))[:120])
    return f"{cls}/stub.jpg"


def text_as_jpeg(raw: Path, cls: str = "a") -> str:
    """A text file named ``.jpg``."""
    (raw / cls / "notes.jpg").write_text("these are not pixels\n")
    return f"{cls}/notes.jpg"


def giant(raw: Path, cls: str = "a") -> str:
    """A 20000x20000 JPEG (400 MP, above the default ``--max-pixels``)."""
    (raw / cls / "giant.jpg").write_bytes(giant_jpeg(20000, 20000))
    return f"{cls}/giant.jpg"


def locked(raw: Path, cls: str = "a") -> str:
    """A copy of ``CLS/0.jpg`` with mode 000 (root reads it unless its capabilities are dropped)."""
    shutil.copy(raw / cls / "0.jpg", raw / cls / "locked.jpg")
    (raw / cls / "locked.jpg").chmod(0)
    return f"{cls}/locked.jpg"


def broken_link(raw: Path, cls: str = "a") -> str:
    """A symbolic link to a missing file."""
    (raw / cls / "gone.jpg").symlink_to("nowhere.jpg")
    return f"{cls}/gone.jpg"


def file_link_loop(raw: Path, cls: str = "a") -> str:
    """Two symbolic links that point at each other."""
    (raw / cls / "x.jpg").symlink_to("y.jpg")
    (raw / cls / "y.jpg").symlink_to("x.jpg")
    return f"{cls}/x.jpg"


def fifo(raw: Path, cls: str = "a") -> str:
    """A named pipe called ``.jpg`` (reading it would block forever)."""
    os.mkfifo(raw / cls / "pipe.jpg")
    return f"{cls}/pipe.jpg"


def non_utf8_name(raw: Path, cls: str = "a") -> str:
    """A valid JPEG whose file name is Latin-1 bytes, not UTF-8."""
    name = os.fsdecode(b"caf\xe9.jpg")
    (raw / cls / name).write_bytes(jpeg_bytes(picture(np.random.default_rng(4))))
    return f"{cls}/caf\\xe9.jpg"


@dataclass(frozen=True)
class Refused:
    """A file augtool refuses (exit 2, nothing written) unless ``--skip-invalid``."""

    case: str
    make: Callable[..., str]
    reason: str


#: Every single-file refusal, with words of its message. The unreadable file is not
#: here: as root it needs dropped capabilities (see tests and the benchmark).
REFUSED: tuple[Refused, ...] = (
    Refused("zero-byte file", zero_byte, "empty file (0 bytes)"),
    Refused("truncated JPEG", truncated_jpeg, "truncated JPEG"),
    Refused("JPEG cut inside its header", jpeg_cut_in_header, "header is damaged or cut short"),
    Refused("text file named .jpg", text_as_jpeg, "not an image file"),
    Refused("20000x20000 JPEG", giant, "above the limit of 100,000,000 (raise --max-pixels"),
    Refused("broken symlink", broken_link, "broken symbolic link (points to nowhere.jpg"),
    Refused("file symlink loop a->b->a", file_link_loop, "symbolic link loop"),
    Refused("FIFO named .jpg", fifo, "not a regular file"),
    Refused("non-UTF-8 file name", non_utf8_name, "file name is not valid UTF-8"),
)

# --- handled: each returns the stem of the file it added and the mean RGB it must decode to ---


def png_as_jpeg(raw: Path) -> tuple[str, tuple[int, int, int]]:
    """A uniform PNG named ``.jpg``: decoded by content."""
    ok, buf = cv2.imencode(".png", np.full((30, 40, 3), (30, 200, 10), np.uint8))  # BGR
    assert ok
    (raw / "a" / "png.jpg").write_bytes(buf.tobytes())
    return "png", (10, 200, 30)


def tiff16(raw: Path) -> tuple[str, tuple[int, int, int]]:
    """A 16-bit TIFF, scaled to 8 bits."""
    cv2.imwrite(str(raw / "a" / "deep.tif"), np.full((30, 40, 3), (0, 20000, 40000), np.uint16))
    return "deep", (156, 78, 0)  # round(v * 255 / 65535), RGB order


def rgba_png(raw: Path) -> tuple[str, tuple[int, int, int]]:
    """A half-transparent red PNG, composited over white."""
    bgra = np.zeros((30, 40, 4), np.uint8)
    bgra[:] = (0, 0, 200, 128)
    cv2.imwrite(str(raw / "a" / "rgba.png"), bgra)
    return "rgba", (228, 127, 127)


def grey_jpeg(raw: Path) -> tuple[str, tuple[int, int, int]]:
    """A one-channel JPEG."""
    cv2.imwrite(str(raw / "a" / "grey.jpg"), np.full((30, 40), 90, np.uint8))
    return "grey", (90, 90, 90)


def cmyk_jpeg(raw: Path) -> tuple[str, tuple[int, int, int]]:
    """A CMYK JPEG (Pillow writes it; OpenCV alone would not)."""
    from PIL import Image

    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(raw / "a" / "cmyk.jpg", quality=95)
    return "cmyk", (255, 0, 0)


def one_pixel_png(raw: Path) -> tuple[str, tuple[int, int, int]]:
    """A 1x1 PNG."""
    cv2.imwrite(str(raw / "a" / "dot.png"), np.array([[[50, 100, 150]]], np.uint8))
    return "dot", (150, 100, 50)


def one_pixel_jpeg(raw: Path) -> tuple[str, tuple[int, int, int]]:
    """A 1x1 JPEG."""
    cv2.imwrite(str(raw / "a" / "dot.jpg"), np.full((1, 1, 3), 128, np.uint8))
    return "dot", (128, 128, 128)


def unicode_name(raw: Path) -> tuple[str, tuple[int, int, int]]:
    """A PNG whose name has a space, an umlaut and CJK characters."""
    cv2.imwrite(str(raw / "a" / "Zelle ü 細胞.png"), np.full((30, 40, 3), 60, np.uint8))
    return "Zelle ü 細胞", (60, 60, 60)


@dataclass(frozen=True)
class Handled:
    """An unusual but valid file: converted to 8-bit RGB, the output verifies."""

    case: str
    make: Callable[[Path], tuple[str, tuple[int, int, int]]]


HANDLED: tuple[Handled, ...] = (
    Handled("PNG named .jpg", png_as_jpeg),
    Handled("16-bit TIFF", tiff16),
    Handled("RGBA PNG", rgba_png),
    Handled("grey JPEG", grey_jpeg),
    Handled("CMYK JPEG", cmyk_jpeg),
    Handled("1x1 PNG", one_pixel_png),
    Handled("1x1 JPEG", one_pixel_jpeg),
    Handled("unicode file name", unicode_name),
)

# --- folders and class names ------------------------------------------------------------------


def folder_link_loop(raw: Path) -> str:
    """A folder link inside class ``a`` that points back up; returns the warning's entry."""
    (raw / "a" / "sub").mkdir()
    (raw / "a" / "sub" / "loop").symlink_to("..")
    return "a/sub/loop/"


def non_utf8_class(raw: Path) -> str:
    """Class ``b`` renamed to Latin-1 bytes; returns the name as augtool shows it."""
    os.rename(raw / "b", os.fsencode(raw) + b"/cl\xe4ss")
    return "cl\\xe4ss"


def hidden_files(raw: Path) -> None:
    """Finder and AppleDouble files and a hidden class folder: all ignored."""
    (raw / "a" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1 not an image")
    (raw / "a" / "._0.jpg").write_bytes(b"AppleDouble junk")
    (raw / ".hidden-class").mkdir()
    (raw / ".hidden-class" / "x.jpg").write_bytes(b"junk")


def empty_class(raw: Path) -> str:
    """An empty class folder ``c``; returns its name."""
    (raw / "c").mkdir()
    return "c"


def many_classes(raw: Path, n: int = 2000) -> None:
    """``n`` classes of one distinct 8x8 PNG each (``raw`` must not exist yet)."""
    for i in range(n):
        (raw / f"c{i:04d}").mkdir(parents=True)
        colour = np.array([i % 256, i // 256, 7], np.uint8)
        cv2.imwrite(str(raw / f"c{i:04d}" / "x.png"), np.broadcast_to(colour, (8, 8, 3)).copy())
