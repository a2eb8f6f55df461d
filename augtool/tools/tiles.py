"""The drawing of previews: tiles, their labels, boxes and the legend of class colours.

Labels are drawn with OpenCV (its ``sans`` font on OpenCV 5, Hershey before),
in ASCII only (:func:`augtool.drawing.ascii_label`), so every OpenCV draws every
glyph. The layout never depends on text metrics, so a sheet's pixel size follows
from the tile size and the constants below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from augtool.annotations import Box
from augtool.drawing import ascii_label, class_rgb, colour_of

#: Space between tiles and around the sheet, pixels.
GAP = 8


#: Height of a contact-sheet tile's label strip (two lines: name, parameters).
LABEL_HEIGHT = 40


#: Height of the title strip on top of a sheet or grid.
TITLE_HEIGHT = 30


#: Height of a grid tile's label strip (one line: the transform).
GRID_LABEL_HEIGHT = 22


#: Height of the grid's split header row.
HEADER_HEIGHT = 26


#: Width of the grid's class-name column.
ROW_LABEL_WIDTH = 120


#: Extra space between the grid's split groups.
GROUP_GAP = 16


#: Height of the legend strip (class colours) under the title of a picture with boxes.
LEGEND_HEIGHT = 24


BACKGROUND = (246, 246, 246)


INK = (20, 20, 20)


MUTED = (90, 90, 90)


@dataclass(frozen=True)
class Tile:
    """One labelled picture of a sheet.

    Attributes:
        image: ``(S, S, 3)`` uint8 RGB.
        title: First label line (transform name).
        detail: Second label line (its parameters), may be empty.
    """

    image: np.ndarray
    title: str
    detail: str = ""


def draw_boxes(
    image: np.ndarray,
    boxes: Sequence[Box],
    classes: Sequence[str],
    scale: float = 1.0,
    thickness: int = 2,
) -> np.ndarray:
    """Draw boxes on an RGB image in place, each in its class's colour (:mod:`augtool.drawing`).

    Args:
        image: ``(H, W, 3)`` uint8 RGB, modified.
        boxes: Boxes in the image's pixels (continuous edges), or in the pixels
            of an image ``1 / scale`` times this one's size.
        classes: Class names; a box's colour is its class's position here.
        scale: Factor from the boxes' pixels to ``image``'s (a thumbnail's).
        thickness: Line width in pixels.

    Returns:
        ``image``.
    """
    for box in boxes:
        colour = colour_of(box.label, classes)
        x0, y0 = round(box.x0 * scale), round(box.y0 * scale)
        x1, y1 = round(box.x1 * scale) - 1, round(box.y1 * scale) - 1
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thickness)
    return image


def draw_outlines(
    image: np.ndarray,
    outlines: Sequence[tuple[str, Sequence[np.ndarray]]],
    classes: Sequence[str],
    scale: float = 1.0,
    thickness: int = 2,
) -> np.ndarray:
    """Draw mask outlines on an RGB image in place, each in its class's colour.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, modified.
        outlines: ``(class name, polygon parts)``, vertices in continuous pixel
            coordinates of an image ``1 / scale`` times this one's size.
        classes: Class names; an outline's colour is its class's position here.
        scale: Factor from the outlines' pixels to ``image``'s (a thumbnail's).
        thickness: Line width in pixels.

    Returns:
        ``image``.
    """
    for label, parts in outlines:
        colour = colour_of(label, classes)
        # Vertices lie on pixel edges; a line is drawn through the pixel centres beside them.
        points = [np.round(np.asarray(p) * scale - 0.5).astype(np.int32) for p in parts]
        cv2.polylines(image, points, True, colour, thickness)
    return image


def draw_legend(canvas: np.ndarray, classes: Sequence[str], x: int, y: int, width: int) -> None:
    """Draw the class colours as a row of swatches and names, ``LEGEND_HEIGHT`` px high.

    Each entry takes a width that follows from its name's length (not from
    text metrics), so the layout is the same with either font; entries that do
    not fit in ``width`` are left out.

    Args:
        canvas: ``(H, W, 3)`` uint8 RGB, modified.
        classes: Class names; entry ``i`` has the colour of class position ``i``.
        x: Left edge of the strip.
        y: Top edge of the strip.
        width: Width of the strip.
    """
    left = x
    for i, name in enumerate(classes):
        slot = 14 + 6 + 8 * len(name) + 14
        if left + slot > x + width:
            break
        top = y + (LEGEND_HEIGHT - 14) // 2
        cv2.rectangle(canvas, (left, top), (left + 13, top + 13), class_rgb(i), -1)
        put_text(canvas, name, left + 20, y, slot - 20, LEGEND_HEIGHT, 14, INK)
        left += slot


def describe(name: str, params: dict, width: int, height: int) -> str:
    """The label's parameter line for one transform's recorded parameters.

    Args:
        name: ``original`` or a transform name.
        params: Its parameters as recorded in the manifest.
        width: Source width (for the original's line).
        height: Source height.

    Returns:
        A short human line, e.g. ``"sigma = 5.1 px"`` or ``"+23.4 deg (ccw)"`` (lengths
        in source pixels).
    """
    if name == "original":
        return f"{width}x{height} source"
    if "sigma" in params:
        return f"sigma = {params['sigma']:.1f} px"
    if name == "rotate":
        turn = "ccw" if params["angle"] >= 0 else "cw"
        return f"{params['angle']:+.1f} deg ({turn})"
    if name == "translate":
        return f"dx {params['dx']:+.1f} dy {params['dy']:+.1f} px"
    if "factor" in params:
        return f"factor {params['factor']:+.2f}"
    fixed = {
        "gray": "luminance only",
        "histeq": "equalized gray",
        "flip_x": "top-bottom",
        "flip_y": "left-right",
    }
    return fixed.get(name) or _generic(params)


def _generic(params: dict) -> str:
    """A short line for any recorded parameters: ``delta +0.12  stops -0.30``."""
    if "seed" in params and "albumentations" in params:
        return f"albumentations seed {params['seed']}"
    parts = []
    for key, value in params.items():
        if key.endswith("_seed"):
            continue
        if isinstance(value, float):
            parts.append(f"{key} {value:+.2f}")
        elif isinstance(value, list):
            parts.append(f"{len(value)} {key}")
        else:
            parts.append(f"{key} {value}")
    return "  ".join(parts)


def blank_canvas(height: int, width: int) -> np.ndarray:
    """A sheet of ``height`` x ``width`` pixels in the background colour."""
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    return canvas


def put_text(
    canvas: np.ndarray,
    text: str,
    x: int,
    y: int,
    width: int,
    height: int,
    px: int,
    color: tuple[int, int, int],
    center: bool = False,
) -> None:
    """Draw one line of text, vertically centred, clipped to the box (x, y, width, height)."""
    text = ascii_label(text)
    if not text or width <= 0 or height <= 0:
        return
    box = np.ascontiguousarray(canvas[y : y + height, x : x + width])
    baseline = (height + px) // 2 - max(1, px // 6)
    font = label_font()
    if font is not None:
        flags = cv2.PUT_TEXT_ALIGN_CENTER if center else cv2.PUT_TEXT_ALIGN_LEFT
        org = (width // 2 if center else 0, baseline)
        cv2.putText(box, text, org, color, font, px, 400, flags)
    else:
        scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, px * 3 // 4, 1)
        (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        org = ((width - w) // 2 if center else 0, baseline)
        cv2.putText(box, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    canvas[y : y + height, x : x + width] = box


def label_font() -> cv2.FontFace | None:
    """OpenCV 5's built-in sans font, or None on older OpenCV (Hershey is used then)."""
    face = getattr(cv2, "FontFace", None)
    return face("sans") if face is not None else None
