"""``augtool synth``: generate demo blood-smear images."""

from __future__ import annotations

from pathlib import Path

import click

from augtool import defaults
from augtool.commands.exit_codes import library_errors
from augtool.commands.flags import overwrite_option, quiet_option, seed_option, size_option
from augtool.commands.terminal import TqdmReporter

_PER_CLASS_TEXT = ",".join(f"{c}={n}" for c, n in defaults.DEFAULT_PER_CLASS.items())


def _parse_per_class(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> dict[str, int] | None:
    """Parse ``ALL=49,AML=33,normal=59`` into a dict (classes not named get no images)."""
    if value is None:
        return None
    counts: dict[str, int] = {}
    for item in value.split(","):
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(
                f"expected CLASS=COUNT items separated by commas, got {item!r} "
                "(e.g. ALL=49,AML=33,normal=59)",
                ctx=ctx,
                param=param,
            )
        if name in counts:
            raise click.BadParameter(f"class {name!r} is given twice", ctx=ctx, param=param)
        try:
            counts[name] = int(number)
        except ValueError:
            raise click.BadParameter(
                f"count for {name!r} must be a whole number, got {number.strip()!r}",
                ctx=ctx,
                param=param,
            ) from None
    return counts


@click.command("synth")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--per-class",
    callback=_parse_per_class,
    metavar="CLASS=N,...",
    help="Images per class; classes not named are not generated. "
    f"[default: {_PER_CLASS_TEXT}, the paper's {sum(defaults.DEFAULT_PER_CLASS.values())} "
    "sources]",
)
@size_option(
    default="{}x{}".format(*defaults.DEFAULT_SYNTH_SIZE),
    help="Image size in pixels: WIDTHxHEIGHT, or one side for square images.",
)
@click.option(
    "--masks",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Also write every cell's exact mask to DIR (outside OUT): COCO instance "
    "segmentation (annotations.json), instance-id PNGs with class tables (instances/) "
    "and class-index PNGs (semantic/). Like OUT, it must be new or empty, or is "
    "replaced with --overwrite.",
)
@seed_option
@overwrite_option
@quiet_option
@library_errors
def synth(
    out: Path,
    per_class: dict[str, int] | None,
    size: tuple[int, int | None],
    masks: Path | None,
    seed: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Generate demo blood-smear images OUT/<class>/<class>_<nnn>.jpg for ALL, AML, normal.

    Pink red cells with pale centres around one white cell of the image's class:
    a normal leukocyte about a red cell's size; an ALL blast about twice a red
    cell, nucleus 80-90 % of it; an AML blast about twice, nucleus 50-60 %, with
    granules and Auer rods. Stain, light, focus, crowding and JPEG quality vary.
    The same seed gives the same bytes; OUT appears complete or not at all.

    \b
    Examples:
      augtool synth demo/
      augtool synth demo/ --per-class ALL=10,AML=10,normal=10 --size 320x240 --seed 1
      augtool synth demo/ --masks demo-masks/
    """
    import augtool

    width, height = size
    reporter = TqdmReporter(quiet)
    try:
        summary = augtool.synthesize(
            out,
            per_class=per_class,
            size=(width, height or width),
            seed=seed,
            overwrite=overwrite,
            progress=reporter,
            masks=masks,
        )
    finally:
        reporter.close()
    if not quiet:
        click.echo(f"synth: {summary.line()}")
