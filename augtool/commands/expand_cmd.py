"""``augtool expand``: expand RAW into the paper's augmented dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from augtool import defaults
from augtool.commands.backend_flags import BACKEND_FLAGS, backend_options
from augtool.commands.exit_codes import (
    AugtoolClickError,
    flag_name,
    interruptible,
    library_errors,
    output_final,
)
from augtool.commands.flags import (
    RangeType,
    annotation_format_option,
    annotations_option,
    deprecated_format_line,
    group_regex_option,
    image_format_option,
    jpeg_quality_option,
    load_config,
    min_visibility_option,
    names_option,
    overwrite_option,
    pca_std_option,
    plugin_option,
    quiet_option,
    range_text,
    recipe_option,
    resume_option,
    seed_option,
    segmentation_option,
    size_option,
    skip_invalid_option,
    split_option,
    workers_option,
)
from augtool.commands.terminal import TqdmReporter, command_line
from augtool.errors import complete_after_interrupt


def _boxes_from_format(opts: dict[str, Any]) -> None:
    """``--format voc|coco|yolo`` (deprecated): the annotations' format, in a folder.

    Before ``--annotation-format`` existed, ``--format`` took both the container and
    the box format. The old spelling still works and says so in one line.
    """
    value = opts["output_format"]
    if value not in defaults.ANNOTATION_FORMATS:
        return
    given = opts.get("annotation_format")
    if given is not None and given != value:
        raise click.UsageError(
            f"--format {value} and --annotation-format {given}: give the annotations' "
            "format once, as --annotation-format"
        )
    click.echo(deprecated_format_line(value), err=True)
    opts["annotation_format"], opts["output_format"] = value, "folder"


#: Options a recipe replaces: typed beside ``--recipe``, whatever their value, they are refused.
RECIPE_REPLACES = ("transforms", "sigma_range", "rotate_range", "translate_range", "shear_range")


def _refuse_options_a_recipe_replaces(opts: dict[str, Any]) -> None:
    """``--recipe`` with ``--transforms`` or a ``--*-range`` given (even at its default value).

    Click tells a value typed on the command line (or set by ``--config`` or the
    environment) from the default, so ``--rotate-range -45,45`` beside a recipe is
    refused too rather than silently ignored.
    """
    if opts.get("recipe") is None:
        return
    ctx = click.get_current_context()
    given = [
        name
        for name in RECIPE_REPLACES
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    if given:
        flags = ", ".join(flag_name(ctx.command, name) for name in given)
        raise click.UsageError(
            f"--recipe sets its own transforms and parameter ranges; drop {flags} "
            "(or drop --recipe)"
        )


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
    help=f"Conventional outputs, originals included. [default: {defaults.DEFAULT_TARGET}]",
)
@click.option(
    "--factor",
    type=float,
    default=None,
    help="Instead of --target: outputs per source (round(F x sources)).",
)
@click.option(
    "--transforms",
    default=defaults.DEFAULT_TRANSFORMS,
    show_default=True,
    help="Comma-separated transforms to cycle through.",
)
@recipe_option(
    help="Recipe TOML file (transforms, parameters, preprocessing; docs/recipes.md), or a "
    "shipped one: paper, colour, curator. [default: the paper's, as --transforms]"
)
@plugin_option
@click.option(
    "--sigma-range",
    type=RangeType(),
    default=range_text(defaults.DEFAULT_SIGMA_RANGE),
    show_default=True,
    help="Blur sigma, source px.",
)
@click.option(
    "--rotate-range",
    type=RangeType(),
    default=range_text(defaults.DEFAULT_ROTATE_RANGE),
    show_default=True,
    help="Rotation, degrees.",
)
@click.option(
    "--translate-range",
    type=RangeType(),
    default=range_text(defaults.DEFAULT_TRANSLATE_RANGE),
    show_default=True,
    help="|dx|, |dy|, source px.",
)
@click.option(
    "--shear-range",
    type=RangeType(),
    default=range_text(defaults.DEFAULT_SHEAR_RANGE),
    show_default=True,
    help="|shear factor|.",
)
@size_option(
    default=str(defaults.DEFAULT_SIZE),
    help="Output side length (squashed), or WIDTHxHEIGHT (folder output), e.g. 640x480.",
    library_names=("height",),
)
@click.option(
    "--letterbox",
    is_flag=True,
    help="Keep each image's aspect ratio in the --size output, black bars around it.",
)
@click.option(
    "--pca",
    is_flag=True,
    help=f"Add PCA colour-jittered copies ({defaults.DEFAULT_PCA_COUNT} by default: the "
    f"{defaults.DEFAULT_TARGET + defaults.DEFAULT_PCA_COUNT:,} set).",
)
@click.option(
    "--pca-count",
    type=click.IntRange(min=0),
    default=None,
    help=f"Number of PCA copies (implies --pca). [default: {defaults.DEFAULT_PCA_COUNT}]",
)
@click.option(
    "--pca-mode",
    type=click.Choice(defaults.PCA_MODES),
    default=defaults.DEFAULT_PCA_MODE,
    show_default=True,
    help="pixel: each pixel along the principal axes (paper); shift: one colour (Krizhevsky).",
)
@pca_std_option(help="Std of the PCA alphas (relative to the image's own colour spread).")
@click.option(
    "--pca-k",
    type=click.IntRange(*defaults.PCA_K_RANGE),
    default=defaults.DEFAULT_PCA_K,
    show_default=True,
    help="Principal components used.",
)
@click.option(
    "--pca-scale",
    type=click.Choice(defaults.PCA_SCALES),
    default=defaults.DEFAULT_PCA_SCALE,
    show_default=True,
    help="relative: unit-free; unit/byte: legacy shift on [0,1]/[0,255] covariances.",
)
@split_option
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
    type=click.Choice(defaults.SPLIT_BY),
    default=defaults.DEFAULT_SPLIT_BY,
    show_default=True,
    help="source: no leakage; image: the paper's (leaky) protocol.",
)
@group_regex_option(
    help=r"Sources whose paths share this match stay in one split, e.g. 'BloodImage_\d+'."
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
    type=click.Choice(defaults.OUTPUT_FORMATS + defaults.ANNOTATION_FORMATS),
    default=None,
    metavar="[" + "|".join(defaults.OUTPUT_FORMATS) + "]",
    help="Output container: a folder of image files, or one HDF5 file. [default: by OUT's suffix]",
)
@annotations_option(
    help="Detection: boxes of RAW's images (VOC/YOLO folder, COCO file); RAW holds images."
)
@annotation_format_option(
    help="Detection: format of --annotations, and of the boxes written with each image "
    "(with --segmentation: of the masks; png and png-instances are mask formats only).",
    alias=False,
    choices=defaults.EXPAND_ANNOTATION_FORMATS,
)
@segmentation_option(
    help="Segmentation: --annotations are masks (instances or class maps), carried through "
    "every step and written in their format beside each image.",
)
@click.option(
    "--mask-boxes",
    type=click.Choice(defaults.MASK_BOXES),
    default=defaults.DEFAULT_MASK_BOXES,
    show_default=True,
    help="Segmentation: each instance's box from its mapped mask (tight), or its source box "
    "mapped as a box (hull).",
)
@names_option(help="Class names file (YOLO; with --segmentation also png and voc).")
@min_visibility_option(
    help="Detection: drop a box when less than this fraction of it stays in the image "
    "(with --segmentation: an instance, of its area)."
)
@image_format_option(help="Folder output file format.")
@jpeg_quality_option
@click.option(
    "--compression",
    type=click.Choice(defaults.COMPRESSIONS),
    default=defaults.DEFAULT_COMPRESSION,
    show_default=True,
    help="HDF5 compression.",
)
@skip_invalid_option(help="Skip unusable input files (listed) instead of refusing.")
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=defaults.MAX_PIXELS,
    show_default=True,
    help="Refuse larger sources.",
)
@click.option("--dry-run", is_flag=True, help="Scan and print the plan; write nothing.")
@resume_option(help="Continue an interrupted run of the same command.")
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
    import augtool
    from augtool.commands.summary import dry_run_lines, expand_lines

    quiet, dry_run = opts.pop("quiet"), opts.pop("dry_run")
    _boxes_from_format(opts)
    _refuse_options_a_recipe_replaces(opts)
    _backend_flags_need_dask(opts)
    width, height = opts.pop("size")
    opts["size"] = width if height is None else (width, height)
    reporter = TqdmReporter(quiet, log_lines=True)
    if dry_run:
        for key in ("resume", "overwrite", *BACKEND_FLAGS):
            opts.pop(key)
        try:
            plan = augtool.dry_run(raw, out, **opts, progress=reporter)
        finally:
            reporter.close()
        recipe = opts.get("recipe")
        click.echo("\n".join(dry_run_lines(plan, None if recipe is None else str(recipe))))
        return
    summary = None
    started = time.time()
    try:
        summary = augtool.expand(raw, out, **opts, progress=reporter, command_line=command_line())
        # From here a stop signal cannot undo OUT: it ends the command saying so.
        output_final(complete_after_interrupt(out))
    except KeyboardInterrupt:
        if summary is None and not _published_since(Path(out), started):
            raise
        raise AugtoolClickError(complete_after_interrupt(out), 130) from None
    finally:
        reporter.close()
    if not quiet:
        command = click.get_current_context().command
        click.echo("\n".join(expand_lines(summary, lambda p: flag_name(command, p))))


def _published_since(out: Path, started: float) -> bool:
    """Whether OUT was put in place after ``started`` (by this run: it is then complete).

    A stop signal can land after the publish and before ``augtool.expand`` has
    returned its summary. An output an interrupted run leaves unpublished is
    either absent or the one that was there before the run began.
    """
    try:
        # File times come from the kernel's coarse clock, a few ms behind time.time().
        return out.stat().st_mtime >= started - 0.1
    except OSError:
        return False


def _backend_flags_need_dask(opts: dict[str, Any]) -> None:
    """``--scheduler`` and ``--send-sources`` without ``--backend dask``: a usage error."""
    if opts["backend"] != defaults.DEFAULT_BACKEND:
        return
    for name in ("scheduler", "send_sources"):
        if opts[name] not in (None, False):
            flag = "--scheduler" if name == "scheduler" else "--send-sources"
            raise click.UsageError(f"{flag} needs --backend dask")
