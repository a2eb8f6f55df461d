"""``augtool synth``: generate demo blood-smear images."""

from __future__ import annotations

from pathlib import Path

import click

from augtool.commands.errors import library_errors
from augtool.commands.options import overwrite_option, quiet_option, seed_option


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


def _parse_size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` (e.g. ``640x480``)."""
    width, sep, height = value.lower().partition("x")
    try:
        if not sep:
            raise ValueError(value)
        return int(width), int(height)
    except ValueError:
        raise click.BadParameter(
            f"expected WIDTHxHEIGHT such as 640x480, got {value!r}", ctx=ctx, param=param
        ) from None


@click.command("synth")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--per-class",
    callback=_parse_per_class,
    metavar="CLASS=N,...",
    help="Images per class; classes not named are not generated. "
    "[default: ALL=49,AML=33,normal=59, the paper's 141 sources]",
)
@click.option(
    "--size",
    default="640x480",
    show_default=True,
    callback=_parse_size,
    metavar="WxH",
    help="Image size in pixels.",
)
@seed_option
@overwrite_option
@quiet_option
@library_errors
def synth(
    out: Path,
    per_class: dict[str, int] | None,
    size: tuple[int, int],
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
    """
    from augtool.errors import OptionError
    from augtool.synth import synthesize

    try:
        summary = synthesize(out, per_class=per_class, size=size, seed=seed, overwrite=overwrite)
    except OptionError as err:
        option = {"per_class": "--per-class", "size": "--size", "seed": "--seed"}.get(err.option)
        if option is None:
            raise
        raise click.BadParameter(
            str(err).removeprefix(f"{err.option}: "), param_hint=option
        ) from err
    if not quiet:
        click.echo(f"synth: {summary.line()}")
