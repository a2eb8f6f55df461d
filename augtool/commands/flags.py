"""Options shared by several commands, each defined once.

Every choice list and shown default comes from :mod:`augtool.defaults`; no help
text types a default of its own. The conventions every command follows:

* the output goes to the positional ``OUT`` argument (``--out`` is a deprecated
  alias where a command had it: :func:`output_argument`);
* ``--size`` is the side of the square images a command writes, or
  ``WIDTHxHEIGHT`` where it writes other shapes (:func:`size_option`);
* ``--split`` says how expand splits (:func:`split_option`); a command that reads
  one of the splits expand wrote names it with ``--subset`` (:func:`subset_option`).
* every option that two commands share is declared here, once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from augtool import defaults
from augtool.commands.exit_codes import LibraryOption

F = TypeVar("F", bound=Callable[..., Any])


def quiet_option(
    func: F | None = None, *, help: str = "No progress bar or summary; errors still print."
) -> Any:
    """``--quiet``: less output. ``@quiet_option``, or ``@quiet_option(help=...)``."""
    option = click.option("--quiet", "-q", is_flag=True, help=help)
    return option if func is None else option(func)


def resume_option(help: str) -> Callable[[F], F]:
    """``--resume``: continue what an interrupted run left.

    Expand: its partial output; train: the folds already finished.
    """
    return click.option("--resume", is_flag=True, help=help)


def skip_invalid_option(help: str) -> Callable[[F], F]:
    """``--skip-invalid``: leave out faulty inputs (listed) instead of refusing the run."""
    return click.option("--skip-invalid", is_flag=True, help=help)


def recipe_option(help: str) -> Callable[[F], F]:
    """``--recipe FILE|NAME``: a recipe TOML file or a shipped recipe's name."""
    return click.option("--recipe", default=None, metavar="FILE|NAME", help=help)


def plugin_option(func: F) -> F:
    """``--plugin MODULE`` (repeatable): import a module of your own transforms.

    The only way code beyond augtool and the installed packages runs: a recipe
    or a dataset names transforms, never modules (docs/security.md).
    """
    return click.option(
        "--plugin",
        "plugins",
        multiple=True,
        metavar="MODULE",
        help="Import this module (a name on PYTHONPATH, or a .py file): its StepType "
        "objects become transforms a recipe can name (plugin = 'NAME'). Repeatable.",
    )(func)


def pca_std_option(help: str, library_default: bool = False) -> Callable[[F], F]:
    """``--pca-std``: standard deviation of the PCA colour alphas.

    Args:
        help: What the option does for this command.
        library_default: Leave the default to the library (the option gives None);
            the help then states :data:`augtool.defaults.DEFAULT_PCA_STD`.
    """
    if library_default:
        return click.option(
            "--pca-std",
            type=float,
            default=None,
            help=f"{help} [default: {defaults.DEFAULT_PCA_STD}]",
        )
    return click.option(
        "--pca-std", type=float, default=defaults.DEFAULT_PCA_STD, show_default=True, help=help
    )


def image_format_option(help: str) -> Callable[[F], F]:
    """``--image-format``: the file format of written images (png, jpg)."""
    return click.option(
        "--image-format",
        type=click.Choice(defaults.IMAGE_FORMATS),
        default=defaults.DEFAULT_IMAGE_FORMAT,
        show_default=True,
        help=help,
    )


def jpeg_quality_option(func: F) -> F:
    """``--jpeg-quality``: quality of written JPEG files."""
    return click.option(
        "--jpeg-quality",
        type=click.IntRange(1, 100),
        default=defaults.DEFAULT_JPEG_QUALITY,
        show_default=True,
        help="JPEG quality.",
    )(func)


def annotations_option(help: str) -> Callable[[F], F]:
    """``--annotations``: the boxes of the images (a VOC/YOLO folder or a COCO file)."""
    return click.option("--annotations", default=None, help=help)


def group_regex_option(help: str) -> Callable[[F], F]:
    """``--group-regex``: the regular expression whose match names a source's split group."""
    return click.option("--group-regex", default=None, help=help)


def segmentation_option(help: str) -> Callable[[F], F]:
    """``--segmentation``: ``--annotations`` are masks, not boxes."""
    return click.option("--segmentation", is_flag=True, help=help)


def names_option(help: str) -> Callable[[F], F]:
    """``--names``: a YOLO class names file."""
    return click.option("--names", type=click.Path(dir_okay=False), default=None, help=help)


def min_visibility_option(help: str) -> Callable[[F], F]:
    """``--min-visibility``: the fraction of a box that must stay in the image."""
    return click.option(
        "--min-visibility",
        type=float,
        default=defaults.DEFAULT_MIN_VISIBILITY,
        show_default=True,
        help=help,
    )


def deprecated_format_line(value: str) -> str:
    """The one line that says ``--format voc|coco|yolo`` is now ``--annotation-format``."""
    return (
        f"warning: --format {value} is deprecated; the annotations' format is "
        f"--annotation-format {value}"
    )


def annotation_format_option(
    help: str,
    required: bool = False,
    library_name: str = "annotation_format",
    alias: bool = True,
    choices: tuple[str, ...] = defaults.ANNOTATION_FORMATS,
) -> Callable[[F], F]:
    """``--annotation-format voc|coco|yolo``: the format of ``--annotations``.

    Where ``--format`` named the annotations' format (cells, preview) it still
    works, as a deprecated alias that says so on stderr; in expand ``--format``
    is the output container and takes the old values itself
    (:func:`output_format_option`). The command receives ``annotation_format``.

    Args:
        help: What the format is of, for this command.
        required: The command needs it (cells).
        library_name: The library parameter it sets (``format`` for cells), so that
            errors about it name this flag.
        alias: Also take the deprecated ``--format VALUE`` (not in expand, where
            ``--format`` is the container).
        choices: The formats it takes (expand: mask formats too, with ``--masks``).
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(
            *args: Any, annotation_format: Any = None, format_alias: Any = None, **kwargs: Any
        ) -> Any:
            if format_alias is not None:
                if annotation_format is not None and annotation_format != format_alias:
                    raise click.UsageError(
                        "give --annotation-format once (--format is its deprecated alias)"
                    )
                click.echo(deprecated_format_line(format_alias), err=True)
                annotation_format = format_alias
            if annotation_format is None and required:
                raise click.UsageError("Missing option '--annotation-format'.")
            return func(*args, annotation_format=annotation_format, **kwargs)

        if alias:
            wrapper = click.option(
                "--format",
                "format_alias",
                type=click.Choice(defaults.ANNOTATION_FORMATS),
                default=None,
                hidden=True,
                help="Deprecated: --annotation-format.",
            )(wrapper)
        wrapper = click.option(
            "--annotation-format",
            "annotation_format",
            cls=LibraryOption,
            library_names=(library_name,),
            type=click.Choice(choices),
            default=None,
            help=f"{help}{' [required]' if required else ''}",
        )(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def seed_option(func: F | None = None, *, help: str = "Seed; same seed, same bytes.") -> Any:
    """``--seed``: the run seed. ``@seed_option``, or ``@seed_option(help=...)``."""
    option = click.option("--seed", type=int, default=0, show_default=True, help=help)
    return option if func is None else option(func)


def workers_option(func: F) -> F:
    """``--workers``: worker processes (0 = all cores); never changes the output."""
    return click.option(
        "--workers",
        "-j",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Worker processes, 0 = all cores. Never changes the output bytes.",
    )(func)


def overwrite_option(func: F) -> F:
    """``--overwrite``: replace an existing, non-empty output."""
    return click.option(
        "--overwrite", is_flag=True, help="Replace OUT if it exists and is not empty."
    )(func)


def parse_fold(text: str | None) -> int | str | None:
    """``--fold K|all`` (train, evaluate): ``None``, ``"all"`` or a fold number.

    Raises:
        click.BadParameter: If the text is neither a whole number nor ``all``.
    """
    if text is None or text.strip().lower() == "all":
        return None if text is None else "all"
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(
            f"a fold number or 'all', got {text!r}", param_hint="--fold"
        ) from None


def fold_option(help: str) -> Callable[[F], F]:
    """``--fold K|all`` (train, evaluate): the command receives ``None``, ``"all"`` or K.

    Args:
        help: What the fold means for this command.
    """
    return click.option(
        "--fold",
        default=None,
        metavar="K|all",
        callback=lambda ctx, param, value: parse_fold(value),
        help=help,
    )


def tta_option(func: F) -> F:
    """``--tta``: average predictions over the 8 flips and transposes of each image."""
    return click.option(
        "--tta",
        is_flag=True,
        help="Test-time augmentation: average the class probabilities over the 8 "
        "flips and transposes of each image (8x the compute).",
    )(func)


def device_option(func: F) -> F:
    """``--device``: where torch runs (train, evaluate, predict)."""
    return click.option(
        "--device",
        type=click.Choice(defaults.DEVICES),
        default=defaults.DEFAULT_DEVICE,
        show_default=True,
        help="auto: a CUDA GPU when there is one, else the CPU.",
    )(func)


def batch_size_option(default: int | None, help: str) -> Callable[[F], F]:
    """``--batch-size``: images per step or forward pass (train, evaluate).

    Args:
        default: The shown default, or None when the library resolves it (train: per
            architecture, stated in ``help``).
        help: What a batch is for this command.
    """
    return click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=default,
        show_default=default is not None,
        help=help,
    )


def range_text(pair: tuple[float, float]) -> str:
    """A default range as typed on the command line: ``(4.0, 8.0)`` -> ``4,8``."""
    return f"{pair[0]:g},{pair[1]:g}"


def parse_size(text: object, square: bool) -> tuple[int, int | None]:
    """``227`` or ``640x480`` as ``(width, height | None)``; None means square.

    Raises:
        ValueError: If the text is neither (or a rectangle where ``square``).
    """
    width, sep, height = str(text).strip().lower().partition("x")
    w, h = int(width), (int(height) if sep else None)
    if square and h is not None and h != w:
        raise ValueError(text)
    return w, (None if square else h)


def size_option(
    default: str | None,
    help: str,
    square: bool = False,
    library_names: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """``--size``: the side of the images a command writes, or ``WIDTHxHEIGHT``.

    The value reaches the command as ``(width, height | None)`` (None: square),
    or None when not given and ``default`` is None.

    Args:
        default: The default as typed, e.g. ``"227"``; None lets the library decide.
        help: What the size is of, and its default where the library decides.
        square: The command writes square images only: ``WxH`` must have ``W == H``.
        library_names: Library parameters this option also sets (``height``).
    """

    def convert(ctx: click.Context, param: click.Parameter, value: object) -> Any:
        if value is None:
            return None
        try:
            return parse_size(value, square)
        except ValueError:
            shape = "a side length (227)" if square else "a side length (227) or WIDTHxHEIGHT"
            example = "" if square else " (640x480)"
            raise click.BadParameter(
                f"{shape}{example}, got {value!r}", ctx=ctx, param=param
            ) from None

    return click.option(
        "--size",
        cls=LibraryOption,
        library_names=library_names,
        default=default,
        show_default=default is not None,
        metavar="N" if square else "N|WxH",
        callback=convert,
        help=help,
    )


def subset_option(help: str, default: str = defaults.DEFAULT_EVAL_SUBSET) -> Callable[[F], F]:
    """``--subset {train,val,test,all}``: which split of an expand output a command reads.

    ``--split NAME`` was its old spelling; ``--split`` now only says how expand
    splits (:func:`split_option`), so here it is a deprecated alias that works
    and says so on stderr. The command receives ``subset``; errors about the
    library's ``split`` parameter name ``--subset``.

    Args:
        help: What the subset is used for.
        default: The subset read when none is given.
    """
    choice = click.Choice(defaults.SUBSETS)

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, subset: Any = None, split_alias: Any = None, **kwargs: Any) -> Any:
            if split_alias is not None:
                if subset is not None and subset != split_alias:
                    raise click.UsageError("give --subset once (--split is its deprecated alias)")
                click.echo(
                    f"warning: --split {split_alias} is deprecated here; use --subset "
                    f"{split_alias} (--split only says how expand splits)",
                    err=True,
                )
                subset = split_alias
            return func(*args, subset=default if subset is None else subset, **kwargs)

        wrapper = click.option(
            "--split",
            "split_alias",
            type=choice,
            default=None,
            hidden=True,
            help="Deprecated: --subset.",
        )(wrapper)
        wrapper = click.option(
            "--subset",
            "subset",
            cls=LibraryOption,
            library_names=("split",),
            type=choice,
            default=None,
            help=f"{help} [default: {default}]",
        )(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def split_option(func: F) -> F:
    """``--split``: how expand splits the sources (fractions, or none)."""
    return click.option(
        "--split",
        default=defaults.DEFAULT_SPLIT,
        show_default=True,
        help="Train fraction (0.7), train,test (0.7,0.3), train,val,test (0.7,0.15,0.15) or none.",
    )(func)


def output_argument(
    kind: click.Path, required: bool = True, help_default: str | None = None
) -> Callable[[F], F]:
    """The positional ``OUT`` every writing command takes; ``--out``/``-o`` still works.

    ``--out`` is a deprecated alias (preview, train and evaluate had it): it works,
    and says on stderr that ``OUT`` is the way. The command receives ``out``.

    Args:
        kind: The path type of OUT.
        required: Whether OUT must be given.
        help_default: For an optional OUT, what the command writes to without it.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, out: Any = None, out_option: Any = None, **kwargs: Any) -> Any:
            if out_option is not None:
                if out is not None and out != out_option:
                    raise click.UsageError("give OUT once (--out is a deprecated alias of OUT)")
                click.echo(
                    "warning: --out is deprecated; give the output as the argument OUT instead",
                    err=True,
                )
                out = out_option
            if out is None and required:
                raise click.UsageError("Missing argument 'OUT'.")
            return func(*args, out=out, **kwargs)

        hint = "" if help_default is None else f" [default: {help_default}]"
        wrapper = click.option(
            "--out",
            "-o",
            "out_option",
            type=kind,
            default=None,
            metavar="OUT",
            help=f"Deprecated: give OUT as an argument.{hint}",
        )(wrapper)
        wrapper = click.argument(
            "out", type=kind, required=False, metavar="OUT" if required else "[OUT]"
        )(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


class RangeType(click.ParamType):
    """A ``low,high`` pair of numbers, e.g. ``--rotate-range -45,45``."""

    name = "LOW,HIGH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse ``"a,b"`` (or a 2-item list from a config file) into two floats."""
        if isinstance(value, tuple | list) and len(value) == 2:
            parts = list(value)
        else:
            parts = str(value).split(",")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            self.fail(f"expected two numbers LOW,HIGH, got {value!r}", param, ctx)
        return (low, high)


def load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--config FILE.toml``: option defaults from a TOML file (command line wins)."""
    if value is None:
        return None
    import tomllib

    try:
        with open(value, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise click.BadParameter(f"cannot read {value}: {err}", ctx=ctx, param=param) from err
    known = {p.name for p in ctx.command.params}
    clean = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(clean) - known)
    if unknown:
        raise click.BadParameter(
            f"unknown keys in {value}: {', '.join(unknown)}", ctx=ctx, param=param
        )
    ctx.default_map = {**(ctx.default_map or {}), **clean}
    return value
