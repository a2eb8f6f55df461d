"""The one guarded way into a dataset: every reader of an expand output goes through here.

A dataset may come from someone else (``augtool verify`` exists to check one
that is not trusted), so what its files say is checked before it is used:

* :func:`member`: a name from the manifest (or ``augtool.json``) becomes a
  path only if it stays inside the output folder after links are resolved,
  and is a regular file (no device, FIFO or folder: ``/dev/zero`` would read
  forever);
* :func:`read_member` reads such a file up to a byte limit;
* :func:`check_header` reads an image's size from its header and refuses it
  above the pixel limit or of another size than recorded, before anything is
  decoded or allocated; :func:`decode_member` then decodes and checks the
  decoded size again;
* :func:`check_schema_version`, :func:`check_recorded` type and bound what
  ``augtool.json`` and the HDF5 attributes record (schema version, sizes,
  counts) before any of it is used;
* :func:`shown` escapes a name from a file for printing, so a newline in a
  path cannot forge a line of augtool's own output.

:func:`augtool.store.schema.read_manifest` and :func:`augtool.store.schema.read_recipe`
(the only readers of those files) call these checks; :mod:`augtool.store.dataset`,
:mod:`augtool.engine.verify`, :mod:`augtool.tools.preview` and ``model/`` read images
through :func:`decode_member` or check HDF5 shapes with :func:`check_image_shape`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from augtool import defaults
from augtool.errors import InputError

#: Version of the dataset format (``docs/dataset-format.md``) this augtool reads and writes.
SCHEMA_VERSION = 1
#: Largest image file of a dataset read (a 4096x4096 RGB PNG is at most about 50 MB).
MAX_IMAGE_BYTES = 256 * 2**20
#: Largest ``augtool.json`` or annotation file read.
MAX_RECORD_BYTES = 256 * 2**20
#: Largest recorded count of images (per split, fold or class).
MAX_COUNT = defaults.MAX_OUTPUTS + defaults.MAX_OUTPUTS


def shown(text: object) -> str:
    """``text`` for one line of output: control characters (newlines, escapes) written as escapes.

    Printable text, non-ASCII letters included, stays as it is.
    """
    value = str(text)
    if value.isprintable():
        return value
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value
    )


def is_utf8(name: str) -> bool:
    """True when a file name decoded by the OS is valid UTF-8 (no surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_path(path: str | Path) -> str:
    """A path as text that is always valid UTF-8: undecodable bytes shown as ``\\xNN``.

    Linux file names are bytes; Python keeps bytes that are not UTF-8 as
    surrogate escapes, which cannot be written to a UTF-8 manifest or HDF5 file.
    """
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def safe_name(name: object) -> bool:
    """True for a relative POSIX path that names a file below a folder, as augtool writes them."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and name == p.as_posix()


def member(folder: Path, name: str) -> Path:
    """The regular file ``name`` inside the dataset ``folder``, links resolved.

    Args:
        folder: The output folder.
        name: A relative path as the manifest records it.

    Returns:
        The resolved path, inside ``folder.resolve()``.

    Raises:
        InputError: If the name is not a plain relative path, or it (or a link
            on its way) leads outside the folder, or it is not a regular file.
        FileNotFoundError: If it does not exist.
    """
    if not safe_name(name):
        raise InputError(f"{folder}: manifest path escapes the output folder: {shown(repr(name))}")
    root = folder.resolve()
    target = (root / name).resolve(strict=True)
    if not target.is_relative_to(root):
        raise InputError(
            f"{folder}: {shown(name)} is a link that leads outside the output folder "
            f"(to {shown(target)})"
        )
    mode = target.stat().st_mode
    if not stat.S_ISREG(mode):
        raise InputError(f"{folder}: {shown(name)} is not a regular file")
    return target


def read_member(folder: Path, name: str, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of the file ``name`` of a dataset, through :func:`member`, at most ``limit``.

    Raises:
        InputError: As :func:`member`, or the file is larger than ``limit``.
        OSError: If it cannot be read (FileNotFoundError when missing).
    """
    path = member(folder, name)
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise InputError(f"{folder}: {shown(name)} is {size:,} bytes, above {limit:,}")
        return fh.read(limit + 1)[:limit]


def check_header(
    data: bytes,
    name: str,
    expected: tuple[int, int] | None = None,
    max_pixels: int = defaults.MAX_PIXELS,
) -> tuple[int, int]:
    """An image's ``(width, height)`` from its header, within the limits, before any decoding.

    Args:
        data: The encoded file.
        name: For messages (escaped).
        expected: The size the dataset records for it; None: any size.
        max_pixels: Refuse more pixels than this.

    Raises:
        InputError: Not an image, above ``max_pixels``, or not ``expected``.
    """
    from augtool.store.decode import image_size

    width, height = image_size(data, shown(name))
    if width * height > max_pixels:
        raise InputError(
            f"{shown(name)}: its header declares {width}x{height} = {width * height:,} pixels, "
            f"above the limit of {max_pixels:,}; not decoded"
        )
    if expected is not None and (width, height) != expected:
        raise InputError(
            f"{shown(name)}: {width}x{height} pixels, but the dataset records "
            f"{expected[0]}x{expected[1]}"
        )
    return width, height


def decode_checked(
    raw: bytes,
    name: str,
    expected: tuple[int, int] | None = None,
    max_pixels: int = defaults.MAX_PIXELS,
) -> np.ndarray:
    """Decode image bytes of a dataset to ``(H, W, 3)`` RGB, checking the size before and after.

    The header is checked against ``max_pixels`` and ``expected`` before
    anything is decoded (:func:`check_header`); the decoded image must have
    the header's size.

    Raises:
        InputError: Naming ``name`` (escaped).
    """
    import cv2

    width, height = check_header(raw, name, expected, max_pixels)
    bgr = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{shown(name)}: not a decodable image")
    if bgr.shape[:2] != (height, width):
        raise InputError(
            f"{shown(name)}: decodes to {bgr.shape[1]}x{bgr.shape[0]}, "
            f"its header says {width}x{height}"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_member(
    folder: Path,
    name: str,
    sha256: str | None = None,
    expected: tuple[int, int] | None = None,
    max_pixels: int = defaults.MAX_PIXELS,
) -> np.ndarray:
    """Read, check and decode one image of a folder dataset to ``(H, W, 3)`` RGB.

    Order: path inside the folder (:func:`member`), byte limit, hash (when
    given), then :func:`decode_checked`.

    Raises:
        InputError: For any check that fails, naming the file (escaped).
        OSError: If the file cannot be read.
    """
    raw = read_member(folder, name)
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise InputError(
            f"{folder / shown(name)}: the image differs from its recorded SHA-256: the output "
            f"was changed or damaged after expand; run `augtool verify {shown(folder)}` for "
            "the full list, or expand again"
        )
    return decode_checked(raw, str(folder / name), expected, max_pixels)


def recorded_size(meta: dict[str, Any]) -> tuple[int, int] | None:
    """``(width, height)`` of a dataset's images as its ``augtool.json`` records them, or None."""
    size = meta.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        return None
    options = meta.get("recipe")
    height = options.get("height") if isinstance(options, dict) else None
    if isinstance(height, int) and not isinstance(height, bool):
        return size, height
    return size, size


def check_image_shape(shape: tuple[int, ...], where: str, recorded_size: object = None) -> None:
    """The ``(N, S, S, 3)`` shape of an HDF5 image dataset, bounded, before anything is read.

    Raises:
        InputError: A side outside ``MIN_SIZE..MAX_SIZE``, more images than any run
            makes, or a side other than the recorded ``size``.
    """
    n, height, width = shape[0], shape[1], shape[2]
    lo, hi = defaults.MIN_SIZE, defaults.MAX_SIZE
    if not (lo <= height <= hi and lo <= width <= hi):
        raise InputError(f"{where}: images of {width}x{height}, outside {lo}..{hi} a side")
    if n > MAX_COUNT:
        raise InputError(f"{where}: {n:,} images, above {MAX_COUNT:,}")
    if recorded_size is not None and recorded_size != width:
        raise InputError(
            f"{where}: images of {width}x{height} but the size recorded is {shown(recorded_size)}"
        )


def check_allocation(nbytes: int, where: str) -> None:
    """Refuse to hold ``nbytes`` in memory when the machine does not have them available.

    Raises:
        InputError: Naming the need and what is available.
    """
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if nbytes > available:
        raise InputError(
            f"{where}: loading it needs {nbytes / 2**30:.1f} GiB, but {available / 2**30:.1f} GiB "
            "of memory is available; read a split, or stream it (augtool train streams "
            "what does not fit)"
        )


def check_schema_version(value: object, where: str) -> None:
    """The recorded ``schema_version`` is one this augtool reads.

    Raises:
        InputError: For another version, or a value that is not a whole number.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{where}: schema_version is {shown(repr(value))}, not a whole number")
    if int(value) != SCHEMA_VERSION:
        newer = "a newer" if int(value) > SCHEMA_VERSION else "an older"
        raise InputError(
            f"{where}: schema_version {int(value)} was written by {newer} augtool; this one "
            f"reads version {SCHEMA_VERSION}"
        )


def whole(value: object, low: int, high: int, what: str) -> int:
    """``value`` as an int in ``[low, high]``: a JSON number or decimal text, nothing else.

    Raises:
        InputError: Naming ``what``.
    """
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{what} is {shown(repr(value))}, not a whole number")
    if not low <= int(value) <= high:
        raise InputError(f"{what} is {int(value):,}, outside {low:,}..{high:,}")
    return int(value)


def check_recorded(meta: dict[str, Any], where: str) -> None:
    """Type and bound what ``augtool.json`` (or the HDF5 attributes) records, in place.

    ``schema_version`` must be understood; ``size``, ``height``, ``seed``,
    ``folds`` and the counts must be whole numbers in range; ``class_names``
    a list of text.

    Raises:
        InputError: Naming the file and the key.
    """
    if "schema_version" in meta:
        check_schema_version(meta["schema_version"], where)
    lo, hi = defaults.MIN_SIZE, defaults.MAX_SIZE
    if "size" in meta:
        whole(meta["size"], lo, hi, f"{where}: size")
    for key, top in (("seed", 2**63 - 1), ("folds", defaults.MAX_OUTPUTS)):
        if meta.get(key) is not None:
            whole(meta[key], 0, top, f"{where}: {key}")
    names = meta.get("class_names")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(n, str) for n in names)
    ):
        raise InputError(f"{where}: class_names is not a list of names")
    for key in ("counts", "fold_counts"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InputError(f"{where}: {key} is not a table of counts")
        for k, v in value.items():
            whole(v, 0, MAX_COUNT, f"{where}: {key}[{shown(repr(k))}]")
    recipe = meta.get("recipe")
    if recipe is not None and not isinstance(recipe, dict):
        raise InputError(f"{where}: recipe is not a table")
