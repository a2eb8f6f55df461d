"""YOLO: one ``.txt`` file per image, a line ``class cx cy w h`` per object.

Coordinates are fractions of the image's width and height (centre, then
size), and ``class`` is a 0-based line number of the class names file. The
label file of ``images/a/b.jpg`` is ``labels/a/b.txt``. An empty label file is
YOLO's way to say "no objects" and is accepted as such; an empty names file is
a problem.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from augtool.annotations.base import (
    AnnotationSet,
    Box,
    ImageBoxes,
    ImageFolder,
    Problem,
    check_box,
    parse_number,
    read_text,
)
from augtool.errors import InputError, literal

#: Class names files looked for in the label folder when none is given.
NAMES_FILES = ("classes.txt", "obj.names")


def read_yolo(folder: Path, image_root: Path, names_file: Path | None = None) -> AnnotationSet:
    """Read every ``*.txt`` label file under ``folder`` (the names file excepted).

    Args:
        folder: The label folder.
        image_root: The folder of the annotated images.
        names_file: The class names file (default: ``classes.txt`` or
            ``obj.names`` in ``folder``).

    Returns:
        Images with their valid boxes, and every problem found.

    Raises:
        InputError: If ``folder`` is not a folder, or no names file is found.
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; YOLO labels are a folder of .txt files")
    if names_file is None:
        candidates = [folder / n for n in NAMES_FILES if (folder / n).is_file()]
        if not candidates:
            raise InputError(
                f"{literal(folder)}: no class names file ({literal(' or '.join(NAMES_FILES))}); "
                "give it with {names}",
                refs=True,
            )
        names_file = candidates[0]
    elif not names_file.is_file():
        raise InputError(
            f"{literal(names_file)}: no such file (the {{names}} class names file)", refs=True
        )
    images = ImageFolder(image_root)
    result = AnnotationSet()
    classes = _names(names_file, result.problems)
    result.classes = sorted(set(classes))
    skip = names_file.resolve()
    files = sorted(
        p for p in folder.rglob("*.txt") if not p.name.startswith(".") and p.resolve() != skip
    )
    mentioned: set[str] = set()
    for path in files:
        item = _read_file(path, folder, classes, images, result)
        if item is not None:
            mentioned.add(item.image)
            result.images.append(item)
    result.images.sort(key=lambda i: i.image)
    result.unannotated = [p for p in images.paths if p not in mentioned]
    return result


def _names(path: Path, problems: list[Problem]) -> list[str]:
    text = read_text(path, "class names", problems)
    if text is None:
        return []
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names):
        if not name:
            problems.append(Problem(str(path), f"line {i + 1}", "empty class name"))
    return names


def _read_file(
    path: Path,
    folder: Path,
    classes: list[str],
    images: ImageFolder,
    result: AnnotationSet,
) -> ImageBoxes | None:
    file = str(path)
    stem = str(PurePosixPath(path.relative_to(folder).as_posix()).with_suffix(""))
    matches = images.by_stem(stem) or images.by_stem(PurePosixPath(stem).name)
    if len(matches) != 1:
        what = (
            f"names image {stem}.*, which is not in {images.root}"
            if not matches
            else f"fits {len(matches)} images ({', '.join(matches)}); keep one"
        )
        result.problems.append(Problem(file, "", what, stem))
        return None
    image = matches[0]
    size = images.size(image)
    if isinstance(size, str):
        result.problems.append(Problem(file, "", f"image {image}: {size}", image))
        return None
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        result.problems.append(Problem(file, "", f"cannot read as UTF-8 text ({err})", image))
        return None
    boxes: list[Box] = []
    index = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        box = _read_line(line, number, index, classes, size, file, image, result)
        index += 1
        if box is not None:
            boxes.append(box)
    return ImageBoxes(image, size[0], size[1], tuple(boxes), file)


def _read_line(
    line: str,
    number: int,
    index: int,
    classes: list[str],
    size: tuple[int, int],
    file: str,
    image: str,
    result: AnnotationSet,
) -> Box | None:
    where = f"line {number}"
    fields = line.split()
    if len(fields) != 5:
        result.problems.append(
            Problem(
                file,
                where,
                f"expected 5 fields 'class cx cy w h', got {len(fields)}: {line.strip()!r}",
                image,
                False,
            )
        )
        return None
    label_text, *coords = fields
    if not label_text.isdigit() or int(label_text) >= len(classes):
        result.problems.append(
            Problem(
                file,
                where,
                f"class {label_text!r} is not a line number of the {len(classes)} class names "
                f"(0 to {len(classes) - 1})",
                image,
                False,
            )
        )
        return None
    label = classes[int(label_text)]
    values = [parse_number(v) for v in coords]
    if any(v is None for v in values):
        bad = ", ".join(repr(c) for c, v in zip(coords, values, strict=True) if v is None)
        result.problems.append(
            Problem(file, where, f"{label} box: not a number: {bad}", image, False)
        )
        return None
    cx, cy, w, h = (float(v) for v in values)  # type: ignore[arg-type]
    written = f"(cx {cx:g}, cy {cy:g}, w {w:g}, h {h:g})"
    if w < 0 or h < 0:
        result.problems.append(
            Problem(
                file,
                where,
                f"{label} box {written} has a negative width or height (corners swapped)",
                image,
                False,
            )
        )
        return None
    width, height = size
    corners = (
        (cx - w / 2) * width,
        (cy - h / 2) * height,
        (cx + w / 2) * width,
        (cy + h / 2) * height,
    )
    return result.keep(check_box(corners, size, label, index, where, file, image, False, written))
