"""Pictures to look at before training: a contact sheet of one image, or a dataset grid.

* :func:`contact_sheet` shows one source image the way the paper's Fig. 2
  does: the original and one output of every conventional transform, plus the
  PCA colour augmentation in both modes, each tile labelled with its parameters.
  The tiles are made by the same code as ``expand``'s outputs
  (:func:`augtool.engine.render.render_source`): tile ``k`` is copy ``k`` of the file,
  with the parameters drawn from ``output_rng(seed, sha256(file), k)``. The
  two PCA tiles share copy 11's alphas, so they differ only in the mode; the
  ``pixel`` tile (the default mode) is what ``expand --pca`` writes.
* :func:`dataset_grid` shows random outputs of an ``expand`` result (folder
  or HDF5): one row per class, one column group per split, each tile labelled
  with its transform.

Labels are drawn with OpenCV (its ``sans`` font on OpenCV 5, Hershey before),
in ASCII only (:func:`augtool.drawing.ascii_label`), so every OpenCV draws every
glyph. The layout never depends on text metrics, so a sheet's pixel size follows
from the tile size and the constants below.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from augtool import defaults
from augtool.annotations import Box, ImageBoxes
from augtool.drawing import ascii_label, class_rgb, colour_of
from augtool.errors import InputError, OptionError, OutputError, literal
from augtool.ops.pca import DEFAULT_STD
from augtool.pipeline.builtins import PAPER, Ranges
from augtool.pipeline.recipe_spec import Recipe, paper_recipe
from augtool.store.decode import choose_reduction, image_size, read_image_file
from augtool.store.publish import write_bytes

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
#: Columns of a contact sheet unless told otherwise.
DEFAULT_COLUMNS = defaults.DEFAULT_COLUMNS
#: PCA modes shown on a contact sheet, in order (the default first).
PCA_MODES = defaults.PCA_MODES
#: Tiles on a contact sheet: the original, the ten transforms, PCA in both modes.
SHEET_TILES = 1 + len(PAPER) + len(PCA_MODES)
#: Height of the legend strip (class colours) under the title of a picture with boxes.
LEGEND_HEIGHT = 24
#: Largest source accepted, pixels (as ``expand --max-pixels``'s default).
MAX_PIXELS = defaults.MAX_PIXELS

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_BACKGROUND = (246, 246, 246)
_INK = (20, 20, 20)
_MUTED = (90, 90, 90)


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


@dataclass(frozen=True)
class PreviewResult:
    """What :func:`preview` wrote.

    Attributes:
        out: The PNG file.
        kind: ``image`` (contact sheet) or ``dataset`` (grid).
        width: Picture width in pixels.
        height: Picture height in pixels.
        tiles: Number of tiles drawn.
    """

    out: Path
    kind: str
    width: int
    height: int
    tiles: int


# --- what is the input? ---------------------------------------------------------------


def detect_kind(path: str | Path) -> str:
    """Tell an image file from an ``expand`` output.

    Args:
        path: What the user gave.

    Returns:
        ``"dataset"`` for a folder with ``manifest.csv`` or an HDF5 file,
        ``"image"`` for any other file (checked when it is read).

    Raises:
        InputError: If the path does not exist or is a folder that is not an
            ``expand`` output.
    """
    from augtool.store.schema import MANIFEST_NAME

    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            return "dataset"
        raise InputError(
            f"{path}: a folder without {MANIFEST_NAME}, so not an `augtool expand` output; "
            "give one image file (contact sheet) or an expand output folder or .h5 file (grid)"
        )
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_HDF5_MAGIC))
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from err
    return "dataset" if head == _HDF5_MAGIC else "image"


# --- contact sheet of one image -------------------------------------------------------


def sheet_tiles(
    path: str | Path,
    size: int = 227,
    seed: int = 0,
    pca_std: float = DEFAULT_STD,
    ranges: Ranges | None = None,
    recipe: Recipe | None = None,
    boxes: ImageBoxes | None = None,
    min_visibility: float = 0.3,
    classes: Sequence[str] | None = None,
) -> tuple[list[Tile], str]:
    """Render the original, every transform and PCA in both modes, as ``expand`` would.

    Args:
        path: The source image file.
        size: Output side length (``expand --size``).
        seed: Run seed (``expand --seed``).
        pca_std: Standard deviation of the PCA alphas (``expand --pca-std``).
        ranges: Transform parameter ranges; the paper's by default.
        recipe: A recipe (``--recipe``): then the tiles are the original
            (preprocessed) and one output of each of its transforms, copy ``k``
            being the ``k``-th transform, and no PCA tiles.
        boxes: The image's annotated boxes: drawn on every tile where
            ``expand --annotations`` puts them (carried by each step with its
            pixels, as in an ``expand`` worker).
        min_visibility: As ``expand --min-visibility``.
        classes: The class list that gives each box its colour (default: the
            classes of ``boxes``, sorted).

    Returns:
        The tiles (``SHEET_TILES`` of them without a recipe) and a one-line
        description of the source.

    Raises:
        InputError: If the file cannot be read or is not a decodable image.
        OptionError: If ``size`` or ``pca_std`` is out of range.
    """
    from augtool.engine.render import RenderSettings, SourceTask, render_source
    from augtool.ops.pca import apply_pca, sample_alphas
    from augtool.pipeline.steps import ORIGINAL_NAME, output_rng

    if not 8 <= size <= 4096:
        raise OptionError("size", f"must be between 8 and 4096, got {size}")
    if not (math.isfinite(pca_std) and pca_std >= 0):
        raise OptionError("pca_std", f"must be a finite number >= 0, got {pca_std}")
    path = Path(path)
    data = read_image_file(path)
    width, height = image_size(data, str(path))
    if width * height > MAX_PIXELS:
        raise InputError(f"{path}: {width}x{height} is above {MAX_PIXELS:,} pixels")
    sha256 = hashlib.sha256(data).hexdigest()
    steps = recipe if recipe is not None else paper_recipe(ranges)
    names = [ORIGINAL_NAME, *steps.names]
    corners = None if boxes is None else tuple((b.x0, b.y0, b.x1, b.y1) for b in boxes.boxes)
    task = SourceTask(
        path=str(path),
        sha256=sha256,
        width=width,
        height=height,
        jobs=tuple((copy, copy, name) for copy, name in enumerate(names)),
        boxes=corners,
    )
    settings = RenderSettings(
        size=size, seed=seed, recipe=steps, encoding="array", min_visibility=min_visibility
    )
    rendered = render_source(task, settings)
    tiles = [
        Tile(np.asarray(item.payload), name, describe(name, json.loads(item.params), width, height))
        for name, item in zip(names, rendered, strict=True)
    ]
    original = np.asarray(rendered[0].payload).copy()  # before boxes are drawn on the tiles
    kept: tuple[Box, ...] = ()
    if boxes is not None:
        from augtool.engine.detection import OutputBoxes, kept_boxes

        classes = list(classes) if classes is not None else sorted({b.label for b in boxes.boxes})
        for tile, item in zip(tiles, rendered, strict=True):
            assert item.boxes is not None and item.ids is not None
            kept = kept_boxes(boxes, OutputBoxes(item.boxes, item.ids))
            draw_boxes(tile.image, kept, classes)
        kept = kept_boxes(boxes, OutputBoxes(rendered[0].boxes, rendered[0].ids))
    reduction = choose_reduction(width, height, size)
    decoded = f", decoded at 1/{reduction}" if reduction > 1 else ""
    if recipe is not None:
        about = (
            f"{path.name} {width}x{height}{decoded} | recipe {recipe.name or '(unnamed)'} | "
            f"seed {seed} | {size} px tiles"
        )
        return tiles, about
    pca_copy = len(names)
    alphas = sample_alphas(output_rng(seed, sha256, pca_copy), 1, 3, pca_std)
    for mode in PCA_MODES:
        result = apply_pca(original[None], alphas, mode=mode)
        if mode == "shift":
            detail = "shift " + " ".join(f"{round(v, 1) or 0.0:+.1f}" for v in result.shifts[0])
        else:
            detail = "w " + " ".join(f"{round(v, 2) or 0.0:+.2f}" for v in result.weights[0])
        image = result.images[0]
        if boxes is not None:  # a PCA copy keeps the original's boxes
            image = draw_boxes(image.copy(), kept, classes or [])
        tiles.append(Tile(image, f"pca {mode}", detail))
    about = (
        f"{path.name} {width}x{height}{decoded} | seed {seed} | {size} px tiles | "
        f"lengths in source px | PCA std {pca_std:g}"
    )
    return tiles, about


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
        _text(canvas, name, left + 20, y, slot - 20, LEGEND_HEIGHT, 14, _INK)
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


def contact_sheet(
    path: str | Path,
    size: int = 227,
    seed: int = 0,
    pca_std: float = DEFAULT_STD,
    columns: int = DEFAULT_COLUMNS,
    ranges: Ranges | None = None,
    recipe: Recipe | None = None,
    boxes: ImageBoxes | None = None,
    min_visibility: float = 0.3,
    classes: Sequence[str] | None = None,
) -> np.ndarray:
    """The labelled contact sheet of one source image (the paper's Fig. 2, and PCA).

    Args:
        path: The source image file.
        size: Tile side length (``expand --size``).
        seed: Run seed.
        pca_std: Standard deviation of the PCA alphas.
        columns: Tiles per row, 1 to ``SHEET_TILES``.
        ranges: Transform parameter ranges; the paper's by default.
        recipe: Draw this recipe's transforms instead (see :func:`sheet_tiles`).
        boxes: The image's boxes, drawn on every tile (see :func:`sheet_tiles`),
            with a legend of the class colours under the title.
        min_visibility: As ``expand --min-visibility``.
        classes: The class list that gives each box its colour (see :func:`sheet_tiles`).

    Returns:
        ``(TITLE_HEIGHT + L + rows * (size + LABEL_HEIGHT) + (rows + 1) * GAP,
        columns * size + (columns + 1) * GAP, 3)`` uint8 RGB, with
        ``rows = ceil(SHEET_TILES / columns)`` and ``L`` = ``LEGEND_HEIGHT``
        with boxes, else 0.

    Raises:
        InputError: If the file is not a usable image.
        OptionError: If an option is out of range.
    """
    most = SHEET_TILES if recipe is None else 1 + len(recipe.steps)
    if not 1 <= columns <= most:
        raise OptionError("columns", f"must be between 1 and {most}, got {columns}")
    if recipe is not None and boxes is not None:
        raise OptionError("annotations", "boxes are drawn for the paper's transforms, not a recipe")
    if boxes is not None and classes is None:
        classes = sorted({b.label for b in boxes.boxes})
    tiles, about = sheet_tiles(
        path, size, seed, pca_std, ranges, recipe, boxes, min_visibility, classes
    )
    rows = math.ceil(len(tiles) / columns)
    cell_h = size + LABEL_HEIGHT
    top = TITLE_HEIGHT + (LEGEND_HEIGHT if boxes is not None else 0)
    sheet = _canvas(top + rows * cell_h + (rows + 1) * GAP, columns * size + (columns + 1) * GAP)
    _text(sheet, about, GAP, 0, sheet.shape[1] - 2 * GAP, TITLE_HEIGHT, 15, _INK)
    if boxes is not None and classes:
        draw_legend(sheet, classes, GAP, TITLE_HEIGHT, sheet.shape[1] - 2 * GAP)
    for i, tile in enumerate(tiles):
        row, col = divmod(i, columns)
        y = top + GAP + row * (cell_h + GAP)
        x = GAP + col * (size + GAP)
        sheet[y : y + size, x : x + size] = tile.image
        _text(sheet, tile.title, x + 2, y + size, size - 2, LABEL_HEIGHT // 2, 14, _INK)
        _text(sheet, tile.detail, x + 2, y + size + LABEL_HEIGHT // 2, size - 2, 18, 13, _MUTED)
    return sheet


# --- grid of an expand output ---------------------------------------------------------


def dataset_grid(
    path: str | Path, per_cell: int = defaults.DEFAULT_PER_CELL, seed: int = 0
) -> tuple[np.ndarray, int]:
    """Random outputs of an ``expand`` result: a row per class, a column group per split or fold.

    A dataset made with folds (``expand --folds``) gets one column group per
    fold (and one per split for images outside the folds); one made with
    boxes (``expand --annotations``) has them drawn on its tiles, read back
    from the annotation files beside the images, in their class colours
    (:mod:`augtool.drawing`), with a legend under the title.

    Args:
        path: Output folder or HDF5 file.
        per_cell: Images shown per (class, column group), drawn without
            replacement (all of them where the cell has fewer).
        seed: Seed of the draw.

    Returns:
        The picture, ``(TITLE_HEIGHT + L + HEADER_HEIGHT + C * (S + GRID_LABEL_HEIGHT)
        + (C + 1) * GAP, ROW_LABEL_WIDTH + P * (per_cell * W + (per_cell - 1) *
        GAP) + (P - 1) * GROUP_GAP + 2 * GAP, 3)`` uint8 RGB for C classes, P
        column groups and images S high and W wide, ``L`` = ``LEGEND_HEIGHT``
        with boxes, else 0; and the number of tiles drawn.

    Raises:
        InputError: If ``path`` is not a readable ``expand`` output, or it is empty.
        OptionError: If ``per_cell`` is out of range.
    """
    from augtool.store.dataset import open_dataset

    if not 1 <= per_cell <= 64:
        raise OptionError("per_cell", f"must be between 1 and 64, got {per_cell}")
    data = open_dataset(path)
    if len(data) == 0:
        raise InputError(f"{path}: the dataset holds no images")
    box_classes, boxes = _grid_boxes(Path(path), data.names, data.attrs)
    side, tile_w = int(data.images.shape[1]), int(data.images.shape[2])
    groups = column_groups(data.splits, data.folds)
    group_w = per_cell * tile_w + (per_cell - 1) * GAP
    cell_h = side + GRID_LABEL_HEIGHT
    n_classes = len(data.class_names)
    top = TITLE_HEIGHT + (LEGEND_HEIGHT if boxes else 0)
    grid = _canvas(
        top + HEADER_HEIGHT + n_classes * cell_h + (n_classes + 1) * GAP,
        ROW_LABEL_WIDTH + len(groups) * group_w + (len(groups) - 1) * GROUP_GAP + 2 * GAP,
    )
    shape = f"{side} px" if tile_w == side else f"{tile_w}x{side} px"
    about = f"{Path(path).name} | {len(data)} images | {shape} | draw seed {seed}"
    _text(grid, about, GAP, 0, grid.shape[1] - 2 * GAP, TITLE_HEIGHT, 15, _INK)
    if boxes:
        draw_legend(grid, box_classes, GAP, TITLE_HEIGHT, grid.shape[1] - 2 * GAP)
    tiles = 0
    for s, (title, in_group) in enumerate(groups):
        x0 = ROW_LABEL_WIDTH + GAP + s * (group_w + GROUP_GAP)
        header = f"{title} ({int(np.count_nonzero(in_group))})"
        _text(grid, header, x0, top, group_w, HEADER_HEIGHT, 16, _INK, center=True)
        for label in range(n_classes):
            y = top + HEADER_HEIGHT + GAP + label * (cell_h + GAP)
            members = np.flatnonzero(in_group & (data.labels == label))
            if len(members) == 0:
                _text(grid, "(none)", x0, y, group_w, side, 14, _MUTED, center=True)
                continue
            rng = np.random.default_rng([seed, s, label])
            chosen = np.sort(rng.choice(members, min(per_cell, len(members)), replace=False))
            for j, index in enumerate(chosen):
                x = x0 + j * (tile_w + GAP)
                image = data.images[index]
                item = boxes.get(data.names[index])
                if item is not None:
                    image = draw_boxes(image.copy(), item.boxes, box_classes)
                grid[y : y + side, x : x + tile_w] = image
                title = data.transforms[index]
                if item is not None:
                    title += f" | {len(item.boxes)} boxes"
                _text(grid, title, x + 2, y + side, tile_w - 2, GRID_LABEL_HEIGHT, 13, _INK)
                tiles += 1
    for label, name in enumerate(data.class_names):
        y = top + HEADER_HEIGHT + GAP + label * (cell_h + GAP)
        count = int(np.count_nonzero(data.labels == label))
        _text(grid, name, GAP, y + side // 2 - 20, ROW_LABEL_WIDTH - GAP, 22, 16, _INK)
        _text(grid, f"{count} images", GAP, y + side // 2, ROW_LABEL_WIDTH - GAP, 20, 13, _MUTED)
    return grid, tiles


def column_groups(splits: np.ndarray, folds: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """The grid's column groups: ``(title, mask)`` per split, or per fold where there are folds.

    Args:
        splits: ``(N,)`` split name of each image.
        folds: ``(N,)`` fold of each image (negative: none), or None.
    """
    from augtool.summary import sort_splits

    groups = []
    fold_of = np.full(len(splits), -1) if folds is None else np.asarray(folds)
    for split in sort_splits(set(splits.tolist())):
        in_split = splits == split
        folded = sorted({int(f) for f in fold_of[in_split] if f >= 0})
        several = len(set(splits.tolist())) > 1
        for fold in folded:
            title = f"{split} fold {fold}" if several else f"fold {fold}"
            groups.append((title, in_split & (fold_of == fold)))
        rest = in_split & (fold_of < 0)
        if rest.any():
            groups.append((split, rest))
    return groups


def _grid_boxes(path: Path, names: Sequence[str], attrs: dict) -> tuple[list[str], dict]:
    """The classes and boxes (by image name) of a detection output; nothing for others."""
    record = attrs.get("annotations")
    if not isinstance(record, dict) or not path.is_dir():
        return [], {}
    from augtool.engine.detection import read_output_boxes

    classes, boxes, _ = read_output_boxes(path, names, record)
    return classes, boxes


# --- the command ----------------------------------------------------------------------


def preview(
    source: str | Path,
    out: str | Path,
    *,
    size: int | None = None,
    seed: int = 0,
    pca_std: float | None = None,
    columns: int | None = None,
    per_cell: int | None = None,
    overwrite: bool = False,
    recipe: Recipe | None = None,
    annotations: str | Path | None = None,
    annotation_format: str | None = None,
    names: str | Path | None = None,
    min_visibility: float = 0.3,
) -> PreviewResult:
    """Write the contact sheet of an image, or the grid of an ``expand`` output, as PNG.

    Options that belong to the other kind of preview must be left as ``None``.

    Args:
        source: An image file, or an ``expand`` output folder or HDF5 file.
        out: The PNG to write (atomically: a temporary file, then a rename).
        size: Contact sheet: tile side length (default 227).
        seed: Seed: of the transform parameters (sheet) or of the draw (grid).
        pca_std: Contact sheet: standard deviation of the PCA alphas (default 0.5).
        columns: Contact sheet: tiles per row (default 5).
        per_cell: Grid: images per (class, split) (default 4).
        overwrite: Replace ``out`` if it exists.
        recipe: Contact sheet: draw this recipe's transforms (``--recipe``).
        annotations: Contact sheet: the annotations of the image's folder (VOC,
            YOLO folder or COCO file); its boxes are drawn on every tile.
        annotation_format: ``voc``, ``coco`` or ``yolo`` (with ``annotations``).
        names: YOLO class names file.
        min_visibility: As ``expand --min-visibility``.

    Returns:
        What was written.

    Raises:
        InputError: If ``source`` is neither a usable image nor an expand output.
        OptionError: For an out-of-range option or one of the other kind.
        OutputError: If ``out`` exists (without ``overwrite``) or cannot be written.
    """
    source, out = Path(source), Path(out)
    check_out(out, source, overwrite)
    kind = detect_kind(source)
    if kind == "image":
        if per_cell is not None:
            raise OptionError("per_cell", "applies to an expand output, not to an image file")
        found = _boxes_of(source, annotations, annotation_format, names, min_visibility)
        picture = contact_sheet(
            source,
            size=227 if size is None else size,
            seed=seed,
            pca_std=DEFAULT_STD if pca_std is None else pca_std,
            columns=DEFAULT_COLUMNS if columns is None else columns,
            recipe=recipe,
            boxes=found[0] if found else None,
            min_visibility=min_visibility,
            classes=found[1] if found else None,
        )
        tiles = SHEET_TILES if recipe is None else 1 + len(recipe.steps)
    else:
        if annotations is not None:
            raise OptionError("annotations", "applies to an image file, not to an expand output")
        options = (("size", size), ("pca_std", pca_std), ("columns", columns))
        for option, value in (*options, ("recipe", recipe)):
            if value is not None:
                raise OptionError(option, "applies to an image file, not to an expand output")
        picture, tiles = dataset_grid(
            source, per_cell=4 if per_cell is None else per_cell, seed=seed
        )
    write_png(out, picture, overwrite)
    return PreviewResult(out, kind, picture.shape[1], picture.shape[0], tiles)


def _boxes_of(
    image: Path,
    annotations: str | Path | None,
    fmt: str | None,
    names: str | Path | None,
    min_visibility: float,
) -> tuple[ImageBoxes, list[str]] | None:
    """The boxes of one image, and the classes of its folder's annotations (None without any).

    Raises:
        OptionError: For a missing format or a bad ``min_visibility``.
        InputError: If the annotations are faulty or do not describe the image.
    """
    if annotations is None:
        if fmt is not None:
            raise OptionError("annotation_format", "needs {annotations}", refs=True)
        return None
    from augtool.annotations import read_annotations
    from augtool.engine.options import check_min_visibility

    if fmt is None:
        raise OptionError("annotation_format", "give the annotations' format: voc, coco or yolo")
    check_min_visibility(min_visibility)
    found = read_annotations(fmt, annotations, image.parent, names)
    for item in found.images:
        if item.image == image.name:
            return item, list(found.classes)
    mine = [str(p) for p in found.problems if p.image == image.name]
    why = f": {'; '.join(mine)}" if mine else ""
    raise InputError(f"{annotations}: no usable boxes of {image.name}{why}")


def check_out(out: Path, source: Path, overwrite: bool) -> None:
    """Refuse an output that is not a new ``.png`` beside an existing folder.

    Raises:
        OptionError: If ``out`` does not end in ``.png`` or is the input itself.
        OutputError: If ``out`` exists and ``overwrite`` is false, or its
            folder does not exist.
    """
    if out.suffix.lower() != ".png":
        raise OptionError("out", f"must be a .png file, got {out}")
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise OptionError("out", f"{out} is the input; choose another file")
    if out.is_dir():
        raise OutputError(f"{out} is a folder; give a file name ending in .png")
    if out.exists() and not overwrite:
        raise OutputError(f"{literal(out)} exists; pass {{overwrite}} to replace it", refs=True)
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: no such folder")


def write_png(out: str | Path, image: np.ndarray, overwrite: bool = False) -> None:
    """Encode an RGB image as PNG and put it at ``out`` atomically.

    The bytes go to a temporary file in the same folder, which is then renamed
    over ``out``: readers see the old file or the new one, never half of it.

    Raises:
        OutputError: If ``out`` exists and ``overwrite`` is false, or writing fails.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputError(f"{literal(out)} exists; pass {{overwrite}} to replace it", refs=True)
    ok, buf = cv2.imencode(
        ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    if not ok:
        raise OutputError(f"{out}: OpenCV could not encode the picture as PNG")
    try:
        write_bytes(out, buf.tobytes())
    except OSError as err:
        raise OutputError(
            f"writing {out} failed: {err.strerror or err} (errno {err.errno})"
        ) from err


# --- drawing --------------------------------------------------------------------------


def _canvas(height: int, width: int) -> np.ndarray:
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = _BACKGROUND
    return canvas


def _text(
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
    font = _font()
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


def _font() -> cv2.FontFace | None:
    """OpenCV 5's built-in sans font, or None on older OpenCV (Hershey is used then)."""
    face = getattr(cv2, "FontFace", None)
    return face("sans") if face is not None else None
