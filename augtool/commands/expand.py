"""``augtool expand``: expand RAW into the paper's augmented dataset."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from augtool.commands.errors import interruptible, library_errors
from augtool.commands.options import (
    RangeType,
    backend_from_options,
    backend_options,
    load_config,
    overwrite_option,
    quiet_option,
    seed_option,
    workers_option,
)
from augtool.commands.terminal import TqdmReporter, command_line


def _counts_table(counts: dict[tuple[str, str], int], classes: list[str]) -> str:
    order = {"train": 0, "val": 1, "test": 2}
    splits = sorted(dict.fromkeys(s for s, _ in counts), key=lambda s: (order.get(s, 3), s))
    width = max([len(c) for c in classes] + [6])
    lines = ["".ljust(8) + "".join(c.rjust(width + 2) for c in [*classes, "total"])]
    for sp in splits:
        row = [counts.get((sp, c), 0) for c in classes]
        lines.append(sp.ljust(8) + "".join(str(v).rjust(width + 2) for v in [*row, sum(row)]))
    if len(splits) > 1:
        col = [sum(counts.get((sp, c), 0) for sp in splits) for c in classes]
        lines.append("total".ljust(8) + "".join(str(v).rjust(width + 2) for v in [*col, sum(col)]))
    return "\n".join(lines)


def _parse_output_size(
    ctx: click.Context, param: click.Parameter, value: object
) -> tuple[int, int | None]:
    """Parse expand's ``--size``: ``227`` (square) or ``640x480``, as ``(width, height | None)``."""
    text = str(value).strip().lower()
    width, sep, height = text.partition("x")
    try:
        return int(width), (int(height) if sep else None)
    except ValueError:
        raise click.BadParameter(
            f"a side length (227) or WIDTHxHEIGHT (640x480), got {value!r}", ctx=ctx, param=param
        ) from None


@click.command("expand")
@click.argument("raw", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    callback=load_config,
    is_eager=True,
    expose_value=False,
    help="TOML file of option defaults (keys as option names); the command line wins.",
)
@click.option(
    "--target",
    type=int,
    default=None,
    help="Conventional outputs, originals included. [default: 1492]",
)
@click.option(
    "--factor",
    type=float,
    default=None,
    help="Instead of --target: outputs per source (round(F x sources)).",
)
@click.option(
    "--transforms",
    default="all",
    show_default=True,
    help="Comma-separated transforms to cycle through.",
)
@click.option(
    "--recipe",
    default=None,
    metavar="FILE|NAME",
    help="Recipe TOML file (transforms, parameters, preprocessing; docs/recipes.md), or a "
    "shipped one: paper, colour, curator. [default: the paper's, as --transforms]",
)
@click.option(
    "--sigma-range",
    type=RangeType(),
    default="4,8",
    show_default=True,
    help="Blur sigma, source px.",
)
@click.option(
    "--rotate-range",
    type=RangeType(),
    default="-45,45",
    show_default=True,
    help="Rotation, degrees.",
)
@click.option(
    "--translate-range",
    type=RangeType(),
    default="25,50",
    show_default=True,
    help="|dx|, |dy|, source px.",
)
@click.option(
    "--shear-range", type=RangeType(), default="0.3,1.0", show_default=True, help="|shear factor|."
)
@click.option(
    "--size",
    default="227",
    show_default=True,
    callback=_parse_output_size,
    help="Output side length (squashed), or WIDTHxHEIGHT (folder output), e.g. 640x480.",
)
@click.option(
    "--letterbox",
    is_flag=True,
    help="Keep each image's aspect ratio in the --size output, black bars around it.",
)
@click.option(
    "--pca", is_flag=True, help="Add PCA colour-jittered copies (184 by default: the 1,676 set)."
)
@click.option(
    "--pca-count",
    type=click.IntRange(min=0),
    default=None,
    help="Number of PCA copies (implies --pca). [default: 184]",
)
@click.option(
    "--pca-mode",
    type=click.Choice(["pixel", "shift"]),
    default="pixel",
    show_default=True,
    help="pixel: each pixel along the principal axes (paper); shift: one colour (Krizhevsky).",
)
@click.option(
    "--pca-std",
    type=float,
    default=0.5,
    show_default=True,
    help="Std of the PCA alphas (relative to the image's own colour spread).",
)
@click.option(
    "--pca-k",
    type=click.IntRange(1, 3),
    default=3,
    show_default=True,
    help="Principal components used.",
)
@click.option(
    "--pca-scale",
    type=click.Choice(["relative", "unit", "byte"]),
    default="relative",
    show_default=True,
    help="relative: unit-free; unit/byte: legacy shift on [0,1]/[0,255] covariances.",
)
@click.option(
    "--split",
    default="0.7",
    show_default=True,
    help="Train fraction (0.7), train,val,test (0.7,0.15,0.15) or none.",
)
@click.option(
    "--folds",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="K-fold cross-validation: record a grouped, stratified fold 0..K-1 for every "
    "source and output instead of the fractional split (0: none).",
)
@click.option(
    "--split-by",
    type=click.Choice(["source", "image"]),
    default="source",
    show_default=True,
    help="source: no leakage; image: the paper's (leaky) protocol.",
)
@click.option(
    "--group-regex",
    default=None,
    help=r"Sources whose paths share this match stay in one split, e.g. 'BloodImage_\d+'.",
)
@click.option(
    "--no-augment-test",
    is_flag=True,
    help="Only originals in val/test; copies go to train sources (any recipe). "
    "[default: off, val/test get copies too, as in the paper]",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["folder", "hdf5", "voc", "coco", "yolo"]),
    default=None,
    help="Output format [default: by OUT's suffix]; with --annotations, their format.",
)
@click.option(
    "--annotations",
    default=None,
    help="Detection: boxes of RAW's images (VOC/YOLO folder, COCO file); RAW holds images.",
)
@click.option("--names", default=None, help="YOLO class names file (with --annotations).")
@click.option(
    "--min-visibility",
    type=float,
    default=0.3,
    show_default=True,
    help="Detection: drop a box when less than this fraction of it stays in the image.",
)
@click.option(
    "--image-format",
    type=click.Choice(["png", "jpg"]),
    default="png",
    show_default=True,
    help="Folder output file format.",
)
@click.option(
    "--jpeg-quality",
    type=click.IntRange(1, 100),
    default=95,
    show_default=True,
    help="JPEG quality.",
)
@click.option(
    "--compression",
    type=click.Choice(["none", "lzf", "gzip"]),
    default="none",
    show_default=True,
    help="HDF5 compression.",
)
@click.option(
    "--skip-invalid", is_flag=True, help="Skip unusable input files (listed) instead of refusing."
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=100_000_000,
    show_default=True,
    help="Refuse larger sources.",
)
@click.option("--dry-run", is_flag=True, help="Scan and print the plan; write nothing.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same command.")
@backend_options
@seed_option
@workers_option
@overwrite_option
@quiet_option
@interruptible
@library_errors
def expand(raw: Path, out: Path, **opts: Any) -> None:
    """Expand RAW/<class>/<image> into the paper's augmented dataset in OUT.

    OUT is a folder (OUT/<split>/<class>/*.png + manifest.csv) or, when it ends
    in .h5/.hdf5, one HDF5 file. Defaults reproduce the paper's 1,492-image set
    at 227x227, split 70/30 by source (no leakage); --pca gives the 1,676 set.

    \b
    Examples:
      augtool expand raw/ out/
      augtool expand raw/ out.h5 --pca --group-regex 'BloodImage_\\d+'
      augtool expand raw/ out/ --target 3000 --transforms rotate,flip_x --seed 7
      augtool expand raw/ out.h5 --backend dask --scheduler tcp://head:8786
    """
    from augtool.expand import ExpandOptions, plan_run
    from augtool.expand import expand as run_expand
    from augtool.recipe import load_recipe
    from augtool.render import PcaSettings
    from augtool.sources import scan
    from augtool.transforms import Ranges, parse_transform_list

    quiet, dry_run = opts.pop("quiet"), opts.pop("dry_run")
    backend = backend_from_options(opts)
    pca_count = opts.pop("pca_count")
    if pca_count is None:
        pca_count = 184 if opts.pop("pca") else 0
    else:
        opts.pop("pca")
    target, factor = opts.pop("target"), opts.pop("factor")
    if target is not None and factor is not None:
        raise click.UsageError("give --target or --factor, not both")
    if target is None and factor is None:
        target = 1492
    ranges = Ranges(
        sigma_range=opts.pop("sigma_range"),
        rotate_range=opts.pop("rotate_range"),
        translate_range=opts.pop("translate_range"),
        shear_range=opts.pop("shear_range"),
    )
    pca = PcaSettings(
        std=opts.pop("pca_std"),
        k=opts.pop("pca_k"),
        mode=opts.pop("pca_mode"),
        scale=opts.pop("pca_scale"),
    )
    recipe_value, transform_list = opts.pop("recipe"), opts.pop("transforms")
    pipeline = None if recipe_value is None else load_recipe(recipe_value)
    if pipeline is not None and transform_list.strip().lower() != "all":
        raise click.UsageError("--transforms: a recipe names its own transforms; drop one")
    opts["size"], opts["height"] = opts["size"]
    if opts["output_format"] in ("voc", "coco", "yolo"):
        opts["annotation_format"], opts["output_format"] = opts["output_format"], "folder"
    options = ExpandOptions(
        target=target,
        factor=factor,
        pipeline=pipeline,
        transforms=pipeline.names if pipeline else tuple(parse_transform_list(transform_list)),
        ranges=ranges,
        pca_count=pca_count,
        pca=pca,
        **opts,
    )
    reporter = TqdmReporter(quiet)
    if dry_run:
        if options.annotations is not None:
            from augtool.expand import scan_detection

            options.validate()
            scanned, _ = scan_detection(raw, options)
        else:
            scanned = scan(raw, options.group_regex, options.skip_invalid, options.max_pixels)
        run = plan_run(scanned, options, reporter)
        from collections import Counter

        from augtool.expand import row_label

        counts = Counter(
            (row_label(run, i), scanned.sources[j.source].class_name)
            for i, j in enumerate(run.jobs)
        )
        click.echo(
            f"plan: {len(run.jobs)} images from {len(scanned.sources)} sources (nothing written)"
        )
        click.echo(_counts_table(dict(counts), scanned.classes))
        if scanned.grouped_by:
            groups = len({s.group for s in scanned.sources})
            click.echo(f"split grouped by {scanned.grouped_by}: {groups} groups")
        per_transform = Counter(j.transform for j in run.jobs)
        if pipeline is not None:
            click.echo(
                f"recipe: {pipeline.name or recipe_value} ({len(pipeline.steps)} transforms)"
            )
        click.echo("transforms: " + ", ".join(f"{k} {v}" for k, v in per_transform.items()))
        return
    try:
        with backend or contextlib.nullcontext():
            if backend is not None and not quiet:
                click.echo(f"rendering on {backend.describe()}", err=True)
            summary = run_expand(
                raw, out, options, reporter, command_line=command_line(), backend=backend
            )
    finally:
        reporter.close()
    if not quiet:
        kind = "HDF5" if summary.output_format == "hdf5" else options.image_format.upper()
        resumed = f", {summary.resumed} of them from the interrupted run" if summary.resumed else ""
        click.echo(
            f"wrote {summary.total} images ({kind} {options.size}x"
            f"{options.height or options.size}) to {out} in {summary.seconds:.1f} s "
            f"({summary.images_per_second:.0f} images/s{resumed})"
        )
        click.echo(_counts_table(summary.counts, summary.scan.classes))
        if summary.boxes is not None:
            click.echo(
                f"boxes: {summary.boxes['boxes_out']} written in {options.annotation_format} "
                f"({summary.boxes['boxes_in'] - summary.boxes['boxes_out']} of "
                f"{summary.boxes['boxes_in']} left out: under --min-visibility "
                f"{options.min_visibility:g} inside, or under 2 px)"
            )
        if summary.scan.grouped_by:
            groups = len({s.group for s in summary.scan.sources})
            click.echo(f"split grouped by {summary.scan.grouped_by}: {groups} groups")
