"""Per-image PNG masks: class-index maps (``png``) and instance-id maps (``png-instances``).

Layout, mirroring the image folder (the mask of ``images/a/b.jpg`` is ``a/b.png``):

* ``png``: ``<stem>.png`` holds one class index per pixel (an 8- or 16-bit grey
  PNG, or a palette PNG whose palette index is the class index), and
  ``classes.txt`` names the classes, line ``i`` naming index ``i`` (index 0 is
  usually ``background``). The value 255 means "no class" (VOC's boundaries)
  unless ``classes.txt`` names 256 classes or more.
* ``png-instances``: ``<stem>.png`` holds one instance id per pixel (0: none;
  an 8- or 16-bit grey PNG), and ``<stem>.json`` is its class table,
  ``{"1": "red cell", "2": "ALL blast"}``: each id's class.

Every mask is read safely: the PNG header's size is compared with its image's,
and bounded, before a pixel is decoded; a file that is not a PNG, is cut short
or does not decode is a problem, never a crash.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from augtool.annotations.base import ImageFolder, Problem
from augtool.annotations.masks import Instance, LabelMap, paint_ids, split_ids
from augtool.annotations.segmentation import ImageMasks, SegmentationSet, Sized
from augtool.annotations.yolo import _names
from augtool.errors import InputError, literal
from augtool.store.decode import truncation

#: The class names file of a ``png`` mask folder.
CLASSES_FILE = "classes.txt"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY, _PALETTE = 0, 3
_KINDS = {2: "an RGB", 4: "a grey-and-alpha", 6: "an RGBA"}


# --- PNG codec ----------------------------------------------------------------------------


def png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """``(width, height, bit depth, colour type)`` from a PNG's IHDR, or None if not a PNG."""
    if not data.startswith(_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 29:
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def png_palette(data: bytes) -> np.ndarray | None:
    """A PNG's PLTE entries as ``(N, 3)`` uint8 RGB, or None when it has none before its pixels."""
    pos = len(_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"PLTE":
            body = data[pos + 8 : pos + 8 + length]
            if length % 3 or length > 768 or len(body) < length:
                return None
            return np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def decode_mask(data: bytes, size: tuple[int, int]) -> np.ndarray | str:
    """A mask PNG's values (grey level or palette index), or why it cannot be used.

    Args:
        data: The file's bytes.
        size: Its image's ``(width, height)``; the PNG header must state the
            same size, which is checked before anything is decoded.

    Returns:
        ``(height, width)`` uint8 or uint16 array, or a message.
    """
    header = png_header(data)
    if header is None:
        return "not a PNG file"
    width, height, depth, colour = header
    if (width, height) != tuple(size):
        return f"is {width}x{height}, its image {size[0]}x{size[1]}"
    if colour not in (_GREY, _PALETTE):
        kind = _KINDS.get(colour, f"a colour type {colour}")
        return f"is {kind} PNG; a mask is a grey or palette PNG"
    cut = truncation(data)
    if cut:
        return cut
    palette = png_palette(data) if colour == _PALETTE else None
    if colour == _PALETTE and palette is None:
        return "a palette PNG without a readable palette"
    flags = cv2.IMREAD_COLOR if colour == _PALETTE else cv2.IMREAD_UNCHANGED
    try:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        decoded = None
    if decoded is None or decoded.shape[:2] != (height, width):
        return "cannot be decoded (corrupt PNG data)"
    if palette is not None:
        return _palette_indices(decoded, palette)
    if decoded.ndim != 2:
        return "cannot be decoded as one grey channel"
    if depth < 8:  # libpng scales 1-, 2- and 4-bit grey up to 8 bits; undo it
        decoded = decoded // (255 // (2**depth - 1))
    return decoded


def _palette_indices(bgr: np.ndarray, palette: np.ndarray) -> np.ndarray | str:
    """Palette indices of a palette PNG decoded to colours (a repeated colour: its first index)."""
    keys = (palette[:, 0].astype(np.int32) << 16) | (palette[:, 1].astype(np.int32) << 8)
    keys |= palette[:, 2]
    unique, first = np.unique(keys, return_index=True)
    pixels = (bgr[..., 2].astype(np.int32) << 16) | (bgr[..., 1].astype(np.int32) << 8)
    pixels |= bgr[..., 0]
    at = np.clip(np.searchsorted(unique, pixels), 0, unique.size - 1)
    if not (unique[at] == pixels).all():
        return "has colours that are not in its palette"
    return first[at].astype(np.uint8)


def grey_png(values: np.ndarray) -> bytes:
    """An 8- or 16-bit grey PNG of a uint8 or uint16 array."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(values))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def palette_png(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """An 8-bit palette PNG: ``indices`` (uint8) into ``palette`` (``(N, 3)`` uint8 RGB)."""
    height, width = indices.shape
    rows = np.hstack([np.zeros((height, 1), np.uint8), np.asarray(indices, np.uint8)])

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    return (
        _SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, _PALETTE, 0, 0, 0))
        + chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def read_mask_file(path: Path, size: tuple[int, int]) -> np.ndarray | str:
    """:func:`decode_mask` of a file; a message also when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as err:
        return f"cannot read ({err.strerror or err})"
    return decode_mask(data, size)


def match_image(images: ImageFolder, stem: str, file: str, problems: list[Problem]) -> str | None:
    """The one image whose path without suffix is ``stem``; a problem when none or several."""
    matches = images.by_stem(stem)
    if len(matches) == 1:
        return matches[0]
    what = (
        f"names image {stem}.*, which is not in {images.root}"
        if not matches
        else f"fits {len(matches)} images ({', '.join(matches)}); keep one"
    )
    problems.append(Problem(file, "", what, stem))
    return None


def mask_paths(folder: Path) -> list[Path]:
    """The ``*.png`` files under a folder, sorted, hidden ones left out."""
    return sorted(
        p
        for p in folder.rglob("*.png")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def class_names(folder: Path, names_file: Path | None, problems: list[Problem]) -> list[str]:
    """The class names (line ``i`` names class ``i``) of a mask folder.

    Raises:
        InputError: When no names file is given or found.
    """
    if names_file is None:
        names_file = folder / CLASSES_FILE
        if not names_file.is_file():
            raise InputError(
                f"{literal(folder)}: no class names file ({literal(CLASSES_FILE)}); "
                "give it with {names}",
                refs=True,
            )
    elif not names_file.is_file():
        raise InputError(
            f"{literal(names_file)}: no such file (the {{names}} class names file)", refs=True
        )
    return _names(names_file, problems)


def label_map(
    values: np.ndarray, names: Sequence[str], file: str, image: str, problems: list[Problem]
) -> LabelMap | None:
    """A class-index map whose every value is a class or 255 ("no class"), else a problem."""
    ignore = 255 if len(names) <= 255 else None
    present = np.unique(values)
    unknown = [int(v) for v in present if v >= len(names) and v != ignore]
    if unknown:
        listed = ", ".join(
            f"{v} ({int(np.count_nonzero(values == v))} pixels)" for v in unknown[:5]
        )
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        problems.append(
            Problem(
                file,
                "",
                f"pixel values {listed}{more} name no class (the class names go from 0 to "
                f"{len(names) - 1})",
                image,
            )
        )
        return None
    return LabelMap(values, tuple(names), ignore)


# --- png and png-instances ----------------------------------------------------------------


def read_png_masks(
    folder: Path,
    image_root: Path,
    instances: bool,
    names_file: Path | None,
    max_pixels: int,
) -> SegmentationSet:
    """Read a folder of per-image PNG masks.

    Args:
        folder: The mask folder.
        image_root: The folder of the annotated images.
        instances: Instance-id maps with JSON class tables (``png-instances``),
            else class-index maps (``png``).
        names_file: Class-index maps: the class names file (default
            ``classes.txt`` in ``folder``).
        max_pixels: Larger images are problems.

    Returns:
        Images with their masks, and every problem found.

    Raises:
        InputError: If ``folder`` is not a folder or holds no PNG, or (class-index
            maps) no class names file is found.
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; PNG masks are a folder of .png files")
    paths = mask_paths(folder)
    if not paths:
        raise InputError(f"{folder}: no .png files; is this the mask folder?")
    result = SegmentationSet()
    names = [] if instances else class_names(folder, names_file, result.problems)
    images = Sized(ImageFolder(image_root), max_pixels)
    seen: set[str] = set()
    for path in paths:
        file = str(path)
        stem = str(PurePosixPath(path.relative_to(folder).as_posix()).with_suffix(""))
        image = match_image(images.folder, stem, file, result.problems)
        if image is None:
            continue
        size = images.folder.size(image)
        if isinstance(size, str):
            result.problems.append(Problem(file, "", f"image {image}: {size}", image))
            continue
        if not images.fits(image, size, file, result.problems):
            continue
        seen.add(image)
        values = read_mask_file(path, size)
        if isinstance(values, str):
            result.problems.append(Problem(file, "", f"mask of {image} {values}", image))
            continue
        if instances:
            table = _class_table(path.with_suffix(".json"), image, result.problems)
            if table is None:
                continue
            found = _instances(values, table, str(path.with_suffix(".json")), image, result)
            item = ImageMasks(image, size[0], size[1], found, None, file)
        else:
            semantic = label_map(values, names, file, image, result.problems)
            if semantic is None:
                continue
            item = ImageMasks(image, size[0], size[1], (), semantic, file)
        result.images.append(item)
    result.images.sort(key=lambda i: i.image)
    labels = {i.label for item in result.images for i in item.instances}
    result.classes = sorted(labels) if instances else sorted(set(names))
    result.unannotated = [p for p in images.folder.paths if p not in seen]
    return result


def _class_table(path: Path, image: str, problems: list[Problem]) -> dict[int, str] | None:
    """An instance map's ``{id: class}`` table; None (a problem recorded) when unusable."""
    file = str(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        problems.append(Problem(file, "", f"no class table for the instance ids of {image}", image))
        return None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        problems.append(Problem(file, "", f"not a JSON class table ({err})", image))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(file, "", 'not a class table {"id": "class", ...}', image))
        return None
    table: dict[int, str] = {}
    for key, value in data.items():
        number = int(key) if key.isascii() and key.isdigit() and len(key) <= 5 else 0
        if not 1 <= number <= 65535 or not isinstance(value, str) or not value.strip():
            problems.append(
                Problem(
                    file,
                    f"id {key!r}",
                    "an entry is an id 1 to 65535 and a class name",
                    image,
                    False,
                )
            )
            continue
        table[number] = value.strip()
    return table


def _instances(
    ids: np.ndarray, table: dict[int, str], file: str, image: str, result: SegmentationSet
) -> tuple[Instance, ...]:
    """Each id of the map with its class; ids without a class, classes without pixels: problems."""
    rles = split_ids(ids)
    for number in sorted(set(rles) - set(table)):
        result.problems.append(
            Problem(
                file,
                f"id {number}",
                f"the mask has {int(sum(rles[number].counts[1::2]))} pixels of id {number}, "
                "which has no class in this table",
                image,
                False,
            )
        )
    for number in sorted(set(table) - set(rles)):
        result.problems.append(
            Problem(
                file, f"id {number}", f"{table[number]} has no pixels in the mask", image, False
            )
        )
    found = [
        Instance(table[number], rle, False, index, f"id {number}")
        for index, (number, rle) in enumerate(sorted(rles.items()))
        if number in table
    ]
    return tuple(found)


def png_mask_files(
    items: Sequence[ImageMasks], classes: Sequence[str], instances: bool
) -> dict[str, bytes]:
    """Every file of a ``png`` or ``png-instances`` mask folder, by relative path.

    Args:
        items: The images and their masks (``semantic`` for class-index maps,
            ``instances`` for instance maps; ids follow the instances' order,
            later ones on top where they overlap).
        classes: Class-index maps: the class names, in index order.
        instances: Write instance-id maps and class tables.

    Returns:
        ``{relative path: bytes}``.

    Raises:
        ValueError: A class-index map is missing or names other classes.
    """
    files: dict[str, bytes] = {}
    for item in items:
        stem = str(PurePosixPath(item.image).with_suffix(""))
        if instances:
            ids = paint_ids(item.instances, item.width, item.height)
            shown = set(np.unique(ids).tolist())  # an instance wholly under later ones is gone
            files[stem + ".png"] = grey_png(ids)
            table = {str(k): i.label for k, i in enumerate(item.instances, start=1) if k in shown}
            files[stem + ".json"] = (json.dumps(table, indent=1) + "\n").encode("utf-8")
            continue
        if item.semantic is None:
            raise ValueError(f"{item.image} has no class-index map")
        if tuple(item.semantic.classes) != tuple(classes):
            raise ValueError(f"the class-index map of {item.image} names other classes")
        files[stem + ".png"] = grey_png(item.semantic.labels)
    if not instances:
        files[CLASSES_FILE] = "".join(name + "\n" for name in classes).encode("utf-8")
    return files


def write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``{relative path: bytes}`` under a folder; return the paths written."""
    written = []
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written
