"""The records every annotation reader returns, and the checks they share."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from augtool import defaults
from augtool.errors import InputError, Message, literal, template_of
from augtool.store.decode import IMAGE_SUFFIXES, image_size

if TYPE_CHECKING:
    import numpy as np

#: Annotation formats, as ``--format`` names them.
FORMATS = defaults.ANNOTATION_FORMATS


@dataclass(frozen=True)
class Box:
    """One annotated object.

    Attributes:
        x0: Left edge in pixels (the image spans ``[0, width]``).
        y0: Top edge in pixels.
        x1: Right edge in pixels, ``> x0``.
        y1: Bottom edge in pixels, ``> y0``.
        label: The class name as the annotation gives it.
        index: Position of the object among its image's objects (0-based), as
            written in the annotation, so names stay stable when others are dropped.
        where: How messages point at it (``object 3``, ``line 7``, ``annotation id 12``).
        truncated: The annotation flags the object as cut by the image border.
        clipped: The box reached outside the image and was clipped to it.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    label: str
    index: int
    where: str
    truncated: bool = False
    clipped: bool = False

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.y1 - self.y0

    def touches_border(self, width: int, height: int) -> bool:
        """True when the box reaches an edge of a ``width x height`` image."""
        return self.x0 <= 0 or self.y0 <= 0 or self.x1 >= width or self.y1 >= height


@dataclass(frozen=True)
class ImageBoxes:
    """One annotated image.

    Attributes:
        image: Path of the image relative to the image folder (POSIX separators).
        width: Width in pixels (from the image file).
        height: Height in pixels.
        boxes: Its valid boxes, in annotation order.
        annotation: The annotation file that describes it (for messages).
        outlines: Segmentation outputs: each mask's outlines to draw, as
            ``(class name, polygon parts)``; boxes are then its masks' boxes.
    """

    image: str
    width: int
    height: int
    boxes: tuple[Box, ...]
    annotation: str
    outlines: tuple[tuple[str, tuple[np.ndarray, ...]], ...] = ()


@dataclass(frozen=True)
class Problem:
    """A fault in the annotations.

    Attributes:
        file: The annotation file.
        where: The box or line concerned (``object 3``, ``line 7``), or '' for the file.
        message: What is wrong, in words.
        image: The image concerned, when known.
        whole_image: The image cannot be used at all (not only one box).
        kind: What is wrong with a box, for counts (``augtool report``):
            ``zero_area``, ``swapped``, ``outside`` or ``repeat``; '' otherwise.
    """

    file: str
    where: str
    message: str
    image: str | None = None
    whole_image: bool = True
    kind: str = ""

    def __str__(self) -> str:
        place = f"{self.file}, {self.where}" if self.where else self.file
        return f"{place}: {self.message}"

    def as_message(self) -> Message:
        """The problem as a :class:`Message`, so a face can name the parameters it mentions."""
        place = f"{self.file}, {self.where}" if self.where else self.file
        return Message(f"{literal(place)}: {template_of(self.message)}")


@dataclass
class AnnotationSet:
    """What a reader found.

    Attributes:
        images: Annotated images that can be used, with their valid boxes,
            sorted by image path.
        problems: Every fault found, in file order.
        warnings: Things that were repaired (boxes clipped to their image).
        classes: Class names declared (COCO categories, YOLO names) or seen (VOC), sorted.
        unannotated: Images in the image folder that no annotation mentions.
    """

    images: list[ImageBoxes] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    unannotated: list[str] = field(default_factory=list)

    def keep(self, checked: tuple[Box | None, Problem | None, str | None]) -> Box | None:
        """Record what :func:`check_box` found (its problem or warning); return its box."""
        box, problem, warning = checked
        if problem is not None:
            self.problems.append(problem)
        if warning is not None:
            self.warnings.append(warning)
        return box


class ImageFolder:
    """The images an annotation may name: found once, sizes read from their headers."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise InputError(f"{root}: no such folder; give the folder of the annotated images")
        self.root = root
        self.paths: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
            for name in sorted(filenames):
                if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    self.paths.append(str(rel_dir / name))
        self._known = set(self.paths)
        self._by_stem: dict[str, list[str]] = {}
        for p in self.paths:
            self._by_stem.setdefault(str(PurePosixPath(p).with_suffix("")), []).append(p)
        self._sizes: dict[str, tuple[int, int] | str] = {}

    def find(self, name: str) -> str | None:
        """The image path for a file name as an annotation writes it, or None."""
        clean = str(PurePosixPath(name.replace("\\", "/")))
        if clean in self._known:
            return clean
        base = PurePosixPath(clean).name
        return base if base in self._known else None

    def by_stem(self, stem: str) -> list[str]:
        """Images whose path without its suffix is ``stem``."""
        return self._by_stem.get(stem, [])

    def size(self, image: str) -> tuple[int, int] | str:
        """``(width, height)`` from the image header, or why it cannot be read."""
        if image not in self._sizes:
            try:
                data = (self.root / image).read_bytes()
                self._sizes[image] = image_size(data, "")
            except OSError as err:
                self._sizes[image] = f"cannot read ({err.strerror or err})"
            except InputError as err:
                self._sizes[image] = str(err).removeprefix(": ")
        return self._sizes[image]


def parse_number(text: object) -> float | None:
    """A finite number from text or JSON, else None (booleans are not numbers)."""
    if isinstance(text, bool) or text is None:
        return None
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def check_box(
    corners: tuple[float, float, float, float],
    size: tuple[int, int],
    label: str,
    index: int,
    where: str,
    file: str,
    image: str,
    truncated: bool = False,
    written: str | None = None,
) -> tuple[Box | None, Problem | None, str | None]:
    """Validate one box against its image and clip it when it is partly outside.

    Args:
        corners: ``(x0, y0, x1, y1)`` in pixels.
        size: The image's ``(width, height)``.
        label: Class name.
        index: Position of the object in its image's annotation.
        where: How messages point at the box.
        file: The annotation file.
        image: The image path.
        truncated: The annotation's truncation flag.
        written: The box as the file writes it, for messages (default: the corners).

    Returns:
        ``(box, None, warning)`` for a usable box (``warning`` set when it was
        clipped), or ``(None, problem, None)``.
    """
    x0, y0, x1, y1 = corners
    width, height = size
    shown = written or f"({_num(x0)}, {_num(y0)}, {_num(x1)}, {_num(y1)})"

    def fault(message: str, kind: str) -> tuple[None, Problem, None]:
        problem = Problem(file, where, f"{label} box {shown} {message}", image, False, kind)
        return None, problem, None

    if x0 == x1 or y0 == y1:
        return fault("has no area (zero width or height)", "zero_area")
    if x1 < x0 or y1 < y0:
        axis = "x" if x1 < x0 else "y"
        return fault(f"has its corners swapped ({axis} max below {axis} min)", "swapped")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        return fault(f"lies wholly outside the {width}x{height} image", "outside")
    inside = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
    warning = None
    if inside != (x0, y0, x1, y1):
        clipped = f"({', '.join(_num(v) for v in inside)})"
        warning = (
            f"{file}, {where}: {label} box {shown} reaches outside the {width}x{height} "
            f"image; clipped to the pixel edges {clipped}"
        )
    box = Box(
        *inside,
        label=label,
        index=index,
        where=where,
        truncated=truncated,
        clipped=warning is not None,
    )
    return box, None, warning


def _num(value: float) -> str:
    """A coordinate as short text: ``12`` or ``12.5``."""
    return f"{value:g}"


def read_text(path: Path, what: str, problems: list[Problem]) -> str | None:
    """The text of an annotation file, or None after recording why it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as err:
        problems.append(Problem(str(path), "", f"cannot read ({err.strerror or err})"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problems.append(Problem(str(path), "", f"not UTF-8 text (byte {err.start})"))
        return None
    if not text.strip():
        problems.append(Problem(str(path), "", f"empty {what} file"))
        return None
    return text


def check_image(
    images: ImageFolder,
    name: str,
    file: str,
    problems: list[Problem],
    declared: tuple[int, int] | None = None,
) -> tuple[str, tuple[int, int]] | None:
    """Find an image an annotation names and read its size; record what is wrong.

    Args:
        images: The image folder.
        name: The file name as the annotation writes it.
        file: The annotation file (for messages).
        problems: Where problems go.
        declared: The ``(width, height)`` the annotation states, if any; it
            must match the image file.

    Returns:
        ``(image path, (width, height))``, or None when the image is unusable.
    """
    image = images.find(name)
    if image is None:
        problems.append(
            Problem(file, "", f"names image {name!r}, which is not in {images.root}", name)
        )
        return None
    size = images.size(image)
    if isinstance(size, str):
        problems.append(Problem(file, "", f"image {image}: {size}", image))
        return None
    if declared is not None and declared != size:
        problems.append(
            Problem(
                file,
                "",
                f"states the size of {image} as {declared[0]}x{declared[1]}, but the file is "
                f"{size[0]}x{size[1]}",
                image,
            )
        )
        return None
    return image, size


#: Problems listed in the error that refuses faulty annotations; the rest are counted.
MAX_PROBLEMS_LISTED = 50


def problem_listing(problems: list[Problem], annotations: str | Path) -> str:
    """The message of the error that stops a run with faulty annotations (a template)."""
    lines = [f"  {p.as_message().template}" for p in problems[:MAX_PROBLEMS_LISTED]]
    if len(problems) > MAX_PROBLEMS_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_PROBLEMS_LISTED} more")
    return (
        f"{len(problems)} problem(s) in the annotations {literal(annotations)} and their "
        "images:\n"
        + "\n".join(lines)
        + "\nFix them, or pass {skip_invalid} to leave out the faulty boxes and images "
        "(nothing was written)."
    )
