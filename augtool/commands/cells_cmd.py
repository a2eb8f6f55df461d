"""``augtool cells``: cut a cell classification set out of annotated smears."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from augtool import defaults
from augtool.commands.exit_codes import flag_name, interruptible, library_errors, render_text_for
from augtool.commands.flags import (
    annotation_format_option,
    image_format_option,
    jpeg_quality_option,
    names_option,
    overwrite_option,
    quiet_option,
    seed_option,
    size_option,
    skip_invalid_option,
)
from augtool.commands.terminal import TqdmReporter


def _parse_rename(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """``--rename OLD=NEW`` (repeatable, or comma-separated) into pairs."""
    pairs = []
    for value in values:
        for item in value.split(","):
            old, sep, new = item.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise click.BadParameter(
                    f"expected OLD=NEW, got {item!r} (e.g. Platelets=PLT)", ctx=ctx, param=param
                )
            pairs.append((old.strip(), new.strip()))
    return tuple(pairs)


def _parse_class_list(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    """A comma-separated list of class names (None when not given)."""
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise click.BadParameter("name at least one class", ctx=ctx, param=param)
    return names


@click.command("cells")
@click.argument("smears", type=click.Path(path_type=Path))
@click.argument("annotations", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@annotation_format_option(
    help="Annotations: voc (folder of XML), coco (JSON file), yolo (folder of .txt); with "
    "--crop mask, instance masks: coco, yolo, png-instances or voc (segmentation).",
    required=True,
    library_name="format",
    choices=defaults.CELLS_ANNOTATION_FORMATS,
)
@names_option(help="YOLO class names file. [default: classes.txt or obj.names in ANNOTATIONS]")
@click.option(
    "--crop",
    type=click.Choice(defaults.CROPS),
    default=defaults.DEFAULT_CROP,
    show_default=True,
    help="window: a fixed window centred on each object; box: the box plus a margin, squared; "
    "mask: as box around an instance mask, cut by it, the mask written to OUT/.masks/.",
)
@click.option(
    "--mask-background",
    type=click.Choice(defaults.MASK_BACKGROUNDS),
    default=defaults.DEFAULT_MASK_BACKGROUND,
    show_default=True,
    help="--crop mask: pixels outside the cell's mask filled black, or kept.",
)
@click.option(
    "--window",
    type=int,
    default=defaults.DEFAULT_WINDOW,
    show_default=True,
    help="Window side in smear pixels (--crop window); shifted inward at the border.",
)
@click.option(
    "--margin",
    type=float,
    default=defaults.DEFAULT_MARGIN,
    show_default=True,
    help="--crop box or mask: margin on each side, a fraction of the box's longer side.",
)
@size_option(
    default=None,
    square=True,
    help="Output side in pixels. "
    f"[default: the window as cut; {defaults.DEFAULT_BOX_SIZE} with --crop box or mask]",
)
@click.option(
    "--classes",
    callback=_parse_class_list,
    metavar="A,B,...",
    help="Annotation classes to keep, e.g. WBC,Platelets,RBC. [default: all]",
)
@click.option(
    "--rename",
    multiple=True,
    callback=_parse_rename,
    metavar="OLD=NEW",
    help="Output folder for an annotation class (repeatable; two OLDs may share a NEW).",
)
@click.option(
    "--max-per-class",
    type=int,
    default=None,
    help="At most N cells per class (seeded choice).",
)
@click.option(
    "--max-per-smear",
    type=int,
    default=None,
    help="At most N cells per class from one smear (seeded choice).",
)
@click.option(
    "--min-size",
    type=float,
    default=0.0,
    show_default=True,
    help="Drop boxes whose shorter side is below this (smear pixels).",
)
@click.option(
    "--border",
    type=click.Choice(defaults.BORDER_POLICIES),
    default=defaults.DEFAULT_BORDER,
    show_default=True,
    help="Boxes cut by the image border: keep them, drop those flagged <truncated>, or "
    "drop those and every box touching the border.",
)
@click.option(
    "--exclude-overlap",
    callback=_parse_class_list,
    metavar="A,B,...|all",
    help="Drop a cell whose window overlaps an object of these classes (all: any class) "
    "other than its own, e.g. WBC.",
)
@image_format_option(help="Cell file format.")
@jpeg_quality_option
@skip_invalid_option(help="Leave out faulty boxes and images (listed) instead of refusing.")
@seed_option
@overwrite_option
@quiet_option
@interruptible
@library_errors
def cells_command(
    smears: Path,
    annotations: Path,
    out: Path,
    annotation_format: str,
    names: Path | None,
    exclude_overlap: tuple[str, ...] | None,
    quiet: bool,
    **opts: Any,
) -> None:
    """Cut a cell classification set OUT/<class>/ out of annotated smears.

    SMEARS is the folder of whole smear images, ANNOTATIONS their boxes. One
    image per object goes to OUT/<class>/<smear>_<nnn>_<class>.png, and
    OUT/cells.csv records every cell's smear, box and window, so that
    `augtool expand OUT ...` keeps the cells of one smear in one split. Faulty
    annotations are all listed and nothing is written (exit 2) unless
    --skip-invalid; boxes partly outside their image are clipped, with a
    warning. OUT appears complete or not at all.

    \b
    Examples:
      augtool cells smears/ annotations/ cells/ --annotation-format voc
      augtool cells smears/ instances.json cells/ --annotation-format coco --crop box
      augtool cells images/ labels/ cells/ --annotation-format yolo --max-per-smear 2
      augtool cells smears/ masks.json cells/ --annotation-format coco --crop mask
    """
    import augtool
    from augtool.commands.summary import cells_lines

    size = opts.pop("size")
    reporter = TqdmReporter(quiet, log_lines=True)
    try:
        summary = augtool.cut_cells(
            smears,
            annotations,
            out,
            annotation_format=annotation_format,
            names=names,
            size=None if size is None else size[0],
            exclude_overlap=exclude_overlap,
            progress=reporter,
            **opts,
        )
    finally:
        reporter.close()
    if summary.problems:
        listing = "".join(f"\n  {render_text_for(p.as_message())}" for p in summary.problems)
        reporter.warn(f"left out {len(summary.problems)} faulty item(s) (--skip-invalid):{listing}")
    if summary.unannotated:
        reporter.warn(
            f"{len(summary.unannotated)} image(s) in {smears} have no annotation: "
            + ", ".join(summary.unannotated[:10])
            + (" ..." if len(summary.unannotated) > 10 else "")
        )
    if not quiet:
        command = click.get_current_context().command
        click.echo("\n".join(cells_lines(summary, lambda p: flag_name(command, p))))
