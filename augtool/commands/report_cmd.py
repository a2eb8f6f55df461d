"""``augtool report``: one self-contained HTML page that shows a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from augtool import defaults
from augtool.commands.exit_codes import library_errors
from augtool.commands.flags import (
    annotation_format_option,
    annotations_option,
    group_regex_option,
    names_option,
    output_argument,
    overwrite_option,
    quiet_option,
    segmentation_option,
)
from augtool.commands.terminal import command_line


@click.command("report")
@click.argument("dataset", type=click.Path(path_type=Path))
@output_argument(
    click.Path(dir_okay=False, path_type=Path), required=False, help_default="NAME-report.html"
)
@annotations_option(
    help="DATASET is a folder of images (smears) and these are their boxes (VOC/YOLO folder, "
    "COCO file)."
)
@annotation_format_option(
    help="Format of --annotations (with --segmentation: of the masks).",
    alias=False,
    choices=defaults.EXPAND_ANNOTATION_FORMATS,
)
@segmentation_option(help="--annotations are masks: their boxes counted, outlines drawn.")
@names_option(help="YOLO class names file (with --annotations).")
@click.option(
    "--raw",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder an expand output was made from: the sources' sizes are read from it.",
)
@group_regex_option(
    help="A folder of images: the regular expression whose match names an image's group."
)
@overwrite_option
@quiet_option(help="No summary line; errors still print.")
@library_errors
def report_command(
    dataset: Path,
    out: Path | None,
    annotations: str | None,
    annotation_format: str | None,
    segmentation: bool,
    names: str | None,
    raw: Path | None,
    group_regex: str | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Write one HTML page that shows DATASET to a curator; it opens offline.

    DATASET is an expand output (folder or .h5; a detection or segmentation
    output too), a folder of class folders (such as a cells output), or, with
    --annotations, a folder of annotated images. The page shows counts per
    split, fold and class, groups per split and fold, outputs per transform,
    sample thumbnails per class and transform, source sizes, and for boxes
    (or masks) their counts, sizes, a heatmap of their centres and the
    annotations' faults;
    then the recorded provenance and the result of verify. It needs the
    report extra (matplotlib, jinja2).

    \b
    Examples:
      augtool report out/
      augtool report cells.h5 cells-report.html --raw cells/
      augtool report smears/ --annotations ann/ --annotation-format voc
    """
    import augtool

    result = augtool.report(
        dataset,
        out,
        annotations=annotations,
        annotation_format=annotation_format,
        segmentation=segmentation,
        names=names,
        raw=raw,
        group_regex=group_regex,
        overwrite=overwrite,
        command_line=command_line(),
    )
    if not quiet:
        click.echo(
            f"wrote report {result.out} ({result.kind}, {result.images} images, "
            f"{len(result.sections)} sections, {result.bytes / 1e6:.1f} MB)"
        )
