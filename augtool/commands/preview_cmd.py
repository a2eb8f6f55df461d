"""``augtool preview``: draw a labelled PNG of what augmentation does."""

from __future__ import annotations

from pathlib import Path

import click

from augtool import defaults
from augtool.commands.exit_codes import library_errors
from augtool.commands.flags import (
    annotation_format_option,
    annotations_option,
    min_visibility_option,
    names_option,
    output_argument,
    overwrite_option,
    pca_std_option,
    plugin_option,
    quiet_option,
    recipe_option,
    seed_option,
    segmentation_option,
    size_option,
)


@click.command("preview")
@click.argument("source", metavar="IMAGE|OUT_DATASET", type=click.Path(path_type=Path))
@output_argument(click.Path(dir_okay=False, path_type=Path))
@size_option(
    default=None,
    square=True,
    help=f"Image: tile side length, as expand --size. [default: {defaults.DEFAULT_SIZE}]",
)
@pca_std_option(help="Image: std of the PCA alphas, as expand --pca-std.", library_default=True)
@click.option(
    "--columns",
    type=int,
    default=None,
    help=f"Image: tiles per row. [default: {defaults.DEFAULT_COLUMNS}]",
)
@click.option(
    "--per-cell",
    type=int,
    default=None,
    help="Dataset: random images per class and split or fold. "
    f"[default: {defaults.DEFAULT_PER_CELL}]",
)
@recipe_option(help="Image: draw this recipe's transforms (a file, or paper, colour, curator).")
@plugin_option
@annotations_option(
    help="Image: annotations of its folder (VOC/YOLO folder, COCO file); boxes drawn on tiles."
)
@annotation_format_option(
    help="Format of --annotations (with --segmentation: of the masks).",
    choices=defaults.EXPAND_ANNOTATION_FORMATS,
)
@segmentation_option(help="Image: --annotations are masks; their outlines drawn on tiles.")
@names_option(help="YOLO class names file (with --annotations).")
@min_visibility_option(help="As expand --min-visibility.")
@seed_option
@overwrite_option
@quiet_option(help="No summary line; errors still print.")
@library_errors
def preview(
    source: Path,
    out: Path,
    size: tuple[int, None] | None,
    pca_std: float | None,
    columns: int | None,
    per_cell: int | None,
    recipe: str | None,
    plugins: tuple[str, ...],
    annotations: str | None,
    annotation_format: str | None,
    segmentation: bool,
    names: str | None,
    min_visibility: float,
    seed: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Draw a labelled PNG of what augmentation does, to look at before training.

    Given an IMAGE file: a contact sheet like the paper's Fig. 2, the original
    and one output of each of the ten transforms plus PCA colour jitter in its
    two modes, pixel (the default of expand --pca) and shift, made exactly as
    `expand --seed SEED` makes copy k of that file; each tile is labelled with
    its parameters. With --recipe: the original and one output of each of the
    recipe's transforms instead.

    Given an expand OUT_DATASET (folder or .h5): random outputs per class (rows)
    and split or fold (column groups), each labelled with its transform; the
    outputs of a detection run carry their boxes, one colour per class.

    \b
    Examples:
      augtool preview raw/ALL/im001.jpg sheet.png
      augtool preview raw/ALL/im001.jpg sheet.png --size 160 --seed 3 --columns 7
      augtool preview raw/ALL/im001.jpg sheet.png --recipe my_recipe.toml
      augtool preview out/ grid.png --per-cell 6
      augtool preview smears/a.jpg boxes.png --annotations ann/ --annotation-format voc
    """
    import augtool

    result = augtool.preview(
        source,
        out,
        size=None if size is None else size[0],
        seed=seed,
        pca_std=pca_std,
        columns=columns,
        per_cell=per_cell,
        overwrite=overwrite,
        recipe=recipe,
        plugins=plugins,
        annotations=annotations,
        annotation_format=annotation_format,
        segmentation=segmentation,
        names=names,
        min_visibility=min_visibility,
    )
    if not quiet:
        what = "contact sheet" if result.kind == "image" else "dataset grid"
        click.echo(f"wrote {what} {out} ({result.width}x{result.height} px, {result.tiles} tiles)")
