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

The tiles, their labels, boxes and legend are drawn by :mod:`augtool.tools.tiles`.
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
from augtool.annotations.segmentation import ImageMasks
from augtool.errors import InputError, OptionError, OutputError, OutputRefused, literal
from augtool.ops.pca import DEFAULT_STD
from augtool.pipeline.builtins import PAPER, Ranges
from augtool.pipeline.recipe_spec import Recipe, paper_recipe
from augtool.store.decode import choose_reduction, image_size, read_image_file
from augtool.store.publish import write_bytes
from augtool.tools.dataset_grid import dataset_grid
from augtool.tools.tiles import (
    GAP,
    INK,
    LABEL_HEIGHT,
    LEGEND_HEIGHT,
    MUTED,
    TITLE_HEIGHT,
    Tile,
    blank_canvas,
    describe,
    draw_boxes,
    draw_legend,
    draw_outlines,
    put_text,
)

#: Columns of a contact sheet unless told otherwise.
DEFAULT_COLUMNS = defaults.DEFAULT_COLUMNS


#: PCA modes shown on a contact sheet, in order (the default first).
PCA_MODES = defaults.PCA_MODES


#: Tiles on a contact sheet: the original, the ten transforms, PCA in both modes.
SHEET_TILES = 1 + len(PAPER) + len(PCA_MODES)


#: Largest source accepted, pixels (as ``expand --max-pixels``'s default).
MAX_PIXELS = defaults.MAX_PIXELS


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


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


def sheet_tiles(
    path: str | Path,
    size: int = 227,
    seed: int = 0,
    pca_std: float = DEFAULT_STD,
    ranges: Ranges | None = None,
    recipe: Recipe | None = None,
    boxes: ImageBoxes | None = None,
    min_visibility: float = defaults.DEFAULT_MIN_VISIBILITY,
    classes: Sequence[str] | None = None,
    masks: ImageMasks | None = None,
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
        masks: The image's masks: carried as ``expand --segmentation`` carries
            them, their outlines drawn on every tile.

    Returns:
        The tiles (``SHEET_TILES`` of them without a recipe) and a one-line
        description of the source.

    Raises:
        InputError: If the file cannot be read or is not a decodable image.
        OptionError: If ``size`` or ``pca_std`` is out of range.
    """
    from augtool.engine.mask_outlines import drawn_outlines
    from augtool.engine.render import RenderSettings, SourceTask, render_source
    from augtool.engine.segmented import SourceMasks
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
        masks=None if masks is None else SourceMasks.of(masks),
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
    outlines: tuple = ()
    if masks is not None:
        for tile, item in zip(tiles, rendered, strict=True):
            assert item.masks is not None
            draw_outlines(tile.image, drawn_outlines(masks, item.masks, size), classes or [])
        assert rendered[0].masks is not None
        outlines = drawn_outlines(masks, rendered[0].masks, size)
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
        if outlines:  # and its masks
            image = draw_outlines(image.copy(), outlines, classes or [])
        tiles.append(Tile(image, f"pca {mode}", detail))
    about = (
        f"{path.name} {width}x{height}{decoded} | seed {seed} | {size} px tiles | "
        f"lengths in source px | PCA std {pca_std:g}"
    )
    return tiles, about


def sheet_tile_count(recipe: Recipe | None) -> int:
    """Tiles on a contact sheet: the paper's set, or the original and each recipe step."""
    return SHEET_TILES if recipe is None else 1 + len(recipe.steps)


def contact_sheet(
    path: str | Path,
    size: int = 227,
    seed: int = 0,
    pca_std: float = DEFAULT_STD,
    columns: int = DEFAULT_COLUMNS,
    ranges: Ranges | None = None,
    recipe: Recipe | None = None,
    boxes: ImageBoxes | None = None,
    min_visibility: float = defaults.DEFAULT_MIN_VISIBILITY,
    classes: Sequence[str] | None = None,
    masks: ImageMasks | None = None,
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
        masks: The image's masks instead of boxes: their outlines are drawn.

    Returns:
        ``(TITLE_HEIGHT + L + rows * (size + LABEL_HEIGHT) + (rows + 1) * GAP,
        columns * size + (columns + 1) * GAP, 3)`` uint8 RGB, with
        ``rows = ceil(SHEET_TILES / columns)`` and ``L`` = ``LEGEND_HEIGHT``
        with boxes, else 0.

    Raises:
        InputError: If the file is not a usable image.
        OptionError: If an option is out of range.
    """
    if recipe is not None and (boxes is not None or masks is not None):
        raise OptionError(
            "annotations",
            "boxes and masks are drawn on the paper's transforms, not a recipe's: leave out "
            "{recipe} to see them, or preview the output of an expand run with the recipe",
            refs=True,
        )
    most = sheet_tile_count(recipe)
    if not 1 <= columns <= most:
        raise OptionError("columns", f"must be between 1 and {most}, got {columns}")
    if boxes is not None and classes is None:
        classes = sorted({b.label for b in boxes.boxes})
    tiles, about = sheet_tiles(
        path, size, seed, pca_std, ranges, recipe, boxes, min_visibility, classes, masks
    )
    rows = math.ceil(len(tiles) / columns)
    cell_h = size + LABEL_HEIGHT
    annotated = boxes is not None or masks is not None
    top = TITLE_HEIGHT + (LEGEND_HEIGHT if annotated else 0)
    sheet = blank_canvas(
        top + rows * cell_h + (rows + 1) * GAP, columns * size + (columns + 1) * GAP
    )
    put_text(sheet, about, GAP, 0, sheet.shape[1] - 2 * GAP, TITLE_HEIGHT, 15, INK)
    if annotated and classes:
        draw_legend(sheet, classes, GAP, TITLE_HEIGHT, sheet.shape[1] - 2 * GAP)
    for i, tile in enumerate(tiles):
        row, col = divmod(i, columns)
        y = top + GAP + row * (cell_h + GAP)
        x = GAP + col * (size + GAP)
        sheet[y : y + size, x : x + size] = tile.image
        put_text(sheet, tile.title, x + 2, y + size, size - 2, LABEL_HEIGHT // 2, 14, INK)
        put_text(sheet, tile.detail, x + 2, y + size + LABEL_HEIGHT // 2, size - 2, 18, 13, MUTED)
    return sheet


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
    min_visibility: float = defaults.DEFAULT_MIN_VISIBILITY,
    segmentation: bool = False,
) -> PreviewResult:
    """Write the contact sheet of an image, or the grid of an ``expand`` output, as PNG.

    Options that belong to the other kind of preview must be left as ``None``.

    Args:
        source: An image file, or an ``expand`` output folder or HDF5 file.
        out: The PNG to write (atomically: a temporary file, then a rename).
        size: Contact sheet: tile side length (default 227).
        seed: Seed: of the transform parameters (sheet) or of the draw (grid).
        pca_std: Contact sheet: standard deviation of the PCA alphas (default 0.5).
        columns: Contact sheet: tiles per row (default 5, or fewer for a recipe of fewer tiles).
        per_cell: Grid: images per (class, split) (default 4).
        overwrite: Replace ``out`` if it exists.
        recipe: Contact sheet: draw this recipe's transforms (``--recipe``).
        annotations: Contact sheet: the annotations of the image's folder (VOC,
            YOLO folder or COCO file); its boxes are drawn on every tile.
        annotation_format: ``voc``, ``coco`` or ``yolo`` (with ``annotations``);
            with ``segmentation`` a mask format.
        names: YOLO class names file.
        min_visibility: As ``expand --min-visibility``.
        segmentation: Contact sheet: ``annotations`` are masks; their outlines are drawn.

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
        masks = None
        if segmentation:
            masks = _masks_of(source, annotations, annotation_format, names, min_visibility)
            found = None
        else:
            found = _boxes_of(source, annotations, annotation_format, names, min_visibility)
        picture = contact_sheet(
            source,
            size=227 if size is None else size,
            seed=seed,
            pca_std=DEFAULT_STD if pca_std is None else pca_std,
            columns=min(DEFAULT_COLUMNS, sheet_tile_count(recipe)) if columns is None else columns,
            recipe=recipe,
            boxes=found[0] if found else None,
            min_visibility=min_visibility,
            classes=found[1] if found else masks[1] if masks else None,
            masks=masks[0] if masks else None,
        )
        tiles = sheet_tile_count(recipe)
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


def _masks_of(
    image: Path,
    annotations: str | Path | None,
    fmt: str | None,
    names: str | Path | None,
    min_visibility: float,
) -> tuple[ImageMasks, list[str]]:
    """The masks of one image, and the classes of its folder's masks.

    Raises:
        OptionError: Without ``annotations`` or a format, or for a bad ``min_visibility``.
        InputError: If the masks are faulty or do not describe the image.
    """
    from augtool.annotations import read_segmentation
    from augtool.engine.options import check_min_visibility

    if annotations is None:
        raise OptionError("segmentation", "needs {annotations}: the masks", refs=True)
    if fmt is None:
        raise OptionError("annotation_format", "give the masks' format", refs=True)
    check_min_visibility(min_visibility)
    found = read_segmentation(fmt, annotations, image.parent, names)
    for item in found.images:
        if item.image == image.name:
            classes = list(item.semantic.classes) if item.semantic else list(found.classes)
            return item, classes
    mine = [str(p) for p in found.problems if p.image == image.name]
    why = f": {'; '.join(mine)}" if mine else ""
    raise InputError(f"{annotations}: no usable masks of {image.name}{why}")


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
        OutputRefused: If ``out`` exists and ``overwrite`` is false, or its
            folder does not exist.
    """
    if out.suffix.lower() != ".png":
        raise OptionError("out", f"must be a .png file, got {out}")
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise OptionError("out", f"{out} is the input; choose another file")
    if out.is_dir():
        raise OutputRefused(f"{out} is a folder; give a file name ending in .png")
    if out.exists() and not overwrite:
        raise OutputRefused(f"{literal(out)} exists; pass {{overwrite}} to replace it", refs=True)
    if not out.parent.is_dir():
        raise OutputRefused(f"{out.parent}: no such folder")


def write_png(out: str | Path, image: np.ndarray, overwrite: bool = False) -> None:
    """Encode an RGB image as PNG and put it at ``out`` atomically.

    The bytes go to a temporary file in the same folder, which is then renamed
    over ``out``: readers see the old file or the new one, never half of it.

    Raises:
        OutputError: If ``out`` exists and ``overwrite`` is false, or writing fails.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputRefused(f"{literal(out)} exists; pass {{overwrite}} to replace it", refs=True)
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
