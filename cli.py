"""The ``augtool`` command line: a thin click face over the library.

Each command parses its options, calls one library function and turns library
errors into click exceptions with the library's exit code. Heavy dependencies
(OpenCV, h5py, torch) are imported inside the commands so ``augtool --help``
stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from augtool import __version__
from augtool.errors import AugtoolError

F = TypeVar("F", bound=Callable[..., Any])


class AugtoolClickError(click.ClickException):
    """A ClickException carrying the library error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def library_errors(func: F) -> F:
    """Turn :class:`AugtoolError` raised by the library into a click error."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AugtoolError as err:
            raise AugtoolClickError(str(err), err.exit_code) from err

    return wrapper  # type: ignore[return-value]


#: Set by the SIGINT/SIGTERM handler. Python drops an exception raised while it runs a
#: weakref callback or ``__del__`` ("Exception ignored in ..."), which lost interrupts
#: during HDF5 writes; the progress reporter checks this flag and raises again.
_STOP = threading.Event()


class Interrupted(KeyboardInterrupt):
    """The KeyboardInterrupt that a stop signal (SIGINT, SIGTERM) raises in a command.

    A subclass, not KeyboardInterrupt itself, because CPython remembers a plain
    KeyboardInterrupt that leaves code run by a string ``exec``/``eval`` (dataclass
    and namedtuple creation, say, while a lazy import runs) as "unhandled", even
    when a caller catches it; under ``python -m`` it then kills the process with
    SIGINT after a clean ``sys.exit(130)``, so the exit status became -2 (128 + 2
    in a shell) about one run in four. Its check matches the exact type, so a
    subclass is caught by every ``except KeyboardInterrupt`` and never does that.
    """


#: Where ``import`` runs Python code: an interrupt raised under these frames is deferred.
_IMPORT_FILES = frozenset(
    {"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"}
)


def _importing(frame: FrameType | None) -> bool:
    """True when ``frame`` runs inside an ``import`` (the commands import lazily)."""
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_FILES:
            return True
        frame = frame.f_back
    return False


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Stop the command: raise :class:`Interrupted` now, or at the next check if importing.

    An exception raised while a module initialises leaves that module broken: Cython
    modules (h5py) turn it into ImportError or KeyError, and later lookups fail in
    ways that are not an interrupt. Under an import only the flag is set;
    :func:`raise_if_interrupted`, which progress reporting calls, raises it.
    """
    _STOP.set()
    if not _importing(frame):
        raise Interrupted


_THREAD_EXCEPTHOOK = threading.excepthook


def _thread_exceptions(args: Any) -> None:
    """After a stop signal, stay quiet about exceptions in background threads.

    joblib's executor thread can trip over the work items its abort just removed
    (a KeyError traceback after the clean "interrupted" message).
    """
    if not _STOP.is_set():
        _THREAD_EXCEPTHOOK(args)


_UNRAISABLE_HOOK = sys.unraisablehook


def _unraisable(args: Any) -> None:
    """Drop the "Exception ignored in ..." report of an interrupt that the flag keeps.

    A stop signal that lands in a weakref callback or ``__del__`` cannot propagate;
    Python would print its traceback. :data:`_STOP` re-raises it a moment later, so
    the report is noise on an otherwise clean "interrupted" exit.
    """
    if _STOP.is_set() and issubclass(args.exc_type, KeyboardInterrupt):
        return
    _UNRAISABLE_HOOK(args)


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a stop signal came, even if its first raise was lost."""
    if _STOP.is_set():
        raise Interrupted


def interruptible(func: F) -> F:
    """SIGINT (unless ignored, as in background jobs) and SIGTERM: clean up, say so, exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _STOP.clear()
        signals = [signal.SIGTERM]
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signals.append(signal.SIGINT)
        previous = {s: signal.signal(s, _raise_interrupt) for s in signals}
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            raise AugtoolClickError("interrupted; nothing final was written", 130) from None
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="augtool")
def main() -> None:
    """Offline, reproducible augmentation of blood-smear image datasets.

    \b
    Example:
      augtool expand raw/ out/ --pca
    """
    threading.excepthook = _thread_exceptions
    sys.unraisablehook = _unraisable
    # After an interrupt or a write error joblib reports the tasks it cancelled: not news.
    warnings.filterwarnings(
        "ignore",
        message=r"\d+ tasks (have been successfully executed|which were still being processed)",
        category=UserWarning,
    )


# --- shared options and helpers -------------------------------------------------------


def quiet_option(func: F) -> F:
    """``--quiet``: no progress bar and no summary (warnings and errors still print)."""
    return click.option(
        "--quiet", "-q", is_flag=True, help="No progress bar or summary; errors still print."
    )(func)


def seed_option(func: F) -> F:
    """``--seed``: the run seed; the same seed gives the same bytes."""
    return click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed; same seed, same bytes."
    )(func)


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


def tta_option(func: F) -> F:
    """``--tta``: average predictions over the 8 flips and transposes of each image."""
    return click.option(
        "--tta",
        is_flag=True,
        help="Test-time augmentation: average the class probabilities over the 8 "
        "flips and transposes of each image (8x the compute).",
    )(func)


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


class TqdmReporter:
    """Progress bars on stderr (only on a terminal) and warnings."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar: Any = None

    def start(self, phase: str, total: int) -> None:
        """Open a bar for a phase with a known total."""
        raise_if_interrupted()
        self.close()
        if self.enabled and total > 0:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=phase, unit="img", file=sys.stderr, leave=False)

    def advance(self, n: int) -> None:
        """Move the bar (and stop here if an interrupt was lost on its way)."""
        raise_if_interrupted()
        if self._bar is not None:
            self._bar.update(n)

    def warn(self, message: str) -> None:
        """Print a warning to stderr, above any bar."""
        from tqdm import tqdm

        label = click.style("warning: ", fg="yellow") if sys.stderr.isatty() else "warning: "
        tqdm.write(label + message, file=sys.stderr)

    def close(self) -> None:
        """Close the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class TrainBar:
    """``augtool train`` on a terminal: a loading line, then a per-batch bar in each epoch.

    Train figures so far and the last val scores, never test; the elapsed time
    counts from the command's start. Off a terminal, or with --quiet, it draws nothing.
    """

    def __init__(self, data: str, quiet: bool) -> None:
        self.data = data
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar: Any = None
        self._train: tuple[float, float] | None = None
        self._val: tuple[int, float, float] | None = None
        self._read = 0.0  # when the train figures were last read (a GPU sync)

    def __call__(self, event: Any, label: str) -> None:
        """Show one :class:`model.train.TrainEvent` of the run called ``label``.

        Every event, shown or not, first checks for a stop signal whose raise was
        deferred (under an import) or swallowed (in a ``__del__``): a run stops
        within one batch of the signal.
        """
        raise_if_interrupted()
        if not self.enabled:
            return
        import time

        from tqdm import tqdm

        from model.report import progress_text

        if event.kind in ("load", "done"):
            self.close()
            self._train = self._val = None
            if event.kind == "load":
                click.echo(f"loading {self.data} ({label}) ...", err=True)
            return
        if event.kind == "epoch" and "val_accuracy" in event.row:
            self._val = (event.epoch, event.row["val_loss"], event.row["val_accuracy"])
        now = time.monotonic()
        if event.kind == "epoch" or event.batch == 1 or now - self._read >= 0.5:
            self._train, self._read = event.train_so_far(), now
        figures = progress_text(self._train, self._val, event.elapsed)
        title = f"{label} epoch {event.epoch}/{event.epochs}"
        if self._bar is None:
            self._bar = tqdm(
                total=event.batches,
                desc=title,
                file=sys.stderr,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} batches{postfix}",
            )
        elif event.kind == "batch" and event.batch == 1:  # a new epoch: the same bar, reset
            self._bar.set_description_str(title, refresh=False)
            self._bar.set_postfix_str(figures, refresh=False)
            self._bar.reset(total=event.batches)
        self._bar.set_postfix_str(figures, refresh=False)
        self._bar.update(event.batch - self._bar.n)
        if event.kind == "epoch":
            self._bar.refresh()  # the epoch's val scores, shown at once

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
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


def _command_line() -> str:
    """The command as typed; bytes that are not UTF-8 (Linux paths) shown as ``\\xNN``."""
    args = (os.fsencode(a).decode("utf-8", "backslashreplace") for a in sys.argv[1:])
    return "augtool " + " ".join(shlex.quote(a) for a in args)


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


# --- expand ---------------------------------------------------------------------------


def backend_options(func: F) -> F:
    """``--backend``, ``--scheduler``, ``--scheduler-timeout``, ``--send-sources``."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(["local", "dask"]),
            default="local",
            show_default=True,
            help="Where sources are rendered: joblib on this machine, or a Dask cluster "
            "(needs the dask extra; see docs/scaling.md). Never changes the output bytes.",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="ADDRESS",
            help="Dask scheduler (tcp://host:8786), or 'local' to start a cluster of "
            "--workers processes here. [default with --backend dask: local]",
        ),
        click.option(
            "--scheduler-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            metavar="SECONDS",
            show_default=True,
            help="Seconds to wait for the Dask scheduler and its first worker.",
        ),
        click.option(
            "--send-sources",
            is_flag=True,
            help="Send each source's bytes to the Dask workers (for workers without RAW).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _backend_from_options(opts: dict[str, Any]) -> Any:
    """Pop the backend options from ``opts``; a DaskBackend (not connected) or None."""
    backend, scheduler = opts.pop("backend"), opts.pop("scheduler")
    timeout, send_sources = opts.pop("scheduler_timeout"), opts.pop("send_sources")
    if backend == "local":
        if scheduler is not None or send_sources:
            option = "--scheduler" if scheduler is not None else "--send-sources"
            raise click.UsageError(f"{option} needs --backend dask")
        return None
    from augtool.backends import LOCAL_SCHEDULER, DaskBackend

    return DaskBackend(
        scheduler or LOCAL_SCHEDULER,
        workers=opts["workers"],
        timeout=timeout,
        send_sources=send_sources,
    )


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


@main.command()
@click.argument("raw", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    callback=_load_config,
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
    backend = _backend_from_options(opts)
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
                raw, out, options, reporter, command_line=_command_line(), backend=backend
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


# --- cells ----------------------------------------------------------------------------


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


@main.command("cells")
@click.argument("smears", type=click.Path(path_type=Path))
@click.argument("annotations", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "annotation_format",
    type=click.Choice(["voc", "coco", "yolo"]),
    required=True,
    help="Annotations: voc (folder of XML), coco (JSON file), yolo (folder of .txt).",
)
@click.option(
    "--names",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YOLO class names file. [default: classes.txt or obj.names in ANNOTATIONS]",
)
@click.option(
    "--crop",
    type=click.Choice(["window", "box"]),
    default="window",
    show_default=True,
    help="window: a fixed window centred on each object; box: the box plus a margin, squared.",
)
@click.option(
    "--window",
    type=int,
    default=256,
    show_default=True,
    help="Window side in smear pixels (--crop window); shifted inward at the border.",
)
@click.option(
    "--margin",
    type=float,
    default=0.1,
    show_default=True,
    help="--crop box: margin on each side, a fraction of the box's longer side.",
)
@click.option(
    "--size",
    type=int,
    default=None,
    help="Output side in pixels. [default: the window as cut; 256 with --crop box]",
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
    type=click.Choice(["keep", "drop-truncated", "drop-touching"]),
    default="keep",
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
@click.option(
    "--image-format",
    type=click.Choice(["png", "jpg"]),
    default="png",
    show_default=True,
    help="Cell file format.",
)
@click.option(
    "--jpeg-quality",
    type=click.IntRange(1, 100),
    default=95,
    show_default=True,
    help="JPEG quality.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Leave out faulty boxes and images (listed) instead of refusing.",
)
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
      augtool cells smears/ annotations/ cells/ --format voc
      augtool cells smears/ instances.json cells/ --format coco --crop box --margin 0.1
      augtool cells images/ labels/ cells/ --format yolo --classes WBC,RBC --max-per-smear 2
    """
    from augtool.cells import CellOptions, cut_cells

    options = CellOptions(
        format=annotation_format,
        names=None if names is None else str(names),
        exclude_overlap=exclude_overlap or (),
        **opts,
    )
    reporter = TqdmReporter(quiet)
    try:
        summary = cut_cells(smears, annotations, out, options, reporter)
    finally:
        reporter.close()
    if summary.problems:
        listing = "".join(f"\n  {p}" for p in summary.problems)
        reporter.warn(f"left out {len(summary.problems)} faulty item(s) (--skip-invalid):{listing}")
    if summary.unannotated:
        reporter.warn(
            f"{len(summary.unannotated)} image(s) in {smears} have no annotation: "
            + ", ".join(summary.unannotated[:10])
            + (" ..." if len(summary.unannotated) > 10 else "")
        )
    if quiet:
        return
    click.echo(f"wrote {summary.total} cells to {out} in {summary.seconds:.1f} s")
    width = max([len(c) for c in summary.counts] + [5])
    click.echo("class".ljust(width) + "  cells  smears")
    for cls, n in summary.counts.items():
        click.echo(f"{cls.ljust(width)}  {n:5d}  {summary.smears[cls]:6d}")
    for why, n in summary.dropped.items():
        click.echo(f"left out {n}: {why}")


# --- verify ---------------------------------------------------------------------------


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--regenerate",
    "raw",
    type=click.Path(path_type=Path),
    default=None,
    help="Replay the recorded recipe on this RAW folder and require identical bytes.",
)
@workers_option
@quiet_option
@library_errors
def verify(out: Path, raw: Path | None, workers: int, quiet: bool) -> None:
    """Check that an expand output (folder or HDF5) is exactly what it records.

    Every image's hash must match, nothing may be missing or extra, no source
    or group may sit in two splits (unless it was made with --split-by image),
    and the counts must be as recorded. Exit 0 when all holds, 1 otherwise.

    \b
    Examples:
      augtool verify out/
      augtool verify out.h5 --regenerate raw/
    """
    from augtool.verify import MAX_LISTED
    from augtool.verify import verify as run_verify

    reporter = TqdmReporter(quiet)
    try:
        report = run_verify(out, regenerate_raw=raw, workers=workers, reporter=reporter)
    finally:
        reporter.close()
    if report.ok:
        if not quiet:
            extra = ", regenerated from RAW with identical bytes" if report.regenerated else ""
            click.echo(f"ok: {report.checked} images in {out} match their records{extra}")
        return
    for line in report.problems[:MAX_LISTED]:
        click.echo(line, err=True)
    if len(report.problems) > MAX_LISTED:
        click.echo(f"... and {len(report.problems) - MAX_LISTED} more", err=True)
    raise AugtoolClickError(f"{out}: {len(report.problems)} problem(s) found", exit_code=1)


# --- augtool synth -------------------------------------------------------------------------------


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


@main.command("synth")
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

    reporter = TqdmReporter(quiet)
    try:
        summary = synthesize(
            out, per_class=per_class, size=size, seed=seed, overwrite=overwrite, progress=reporter
        )
    except OptionError as err:
        option = {"per_class": "--per-class", "size": "--size", "seed": "--seed"}.get(err.option)
        if option is None:
            raise
        raise click.BadParameter(
            str(err).removeprefix(f"{err.option}: "), param_hint=option
        ) from err
    finally:
        reporter.close()
    if not quiet:
        click.echo(f"synth: {summary.line()}")


# --- augtool preview -----------------------------------------------------------------------------


@main.command("preview")
@click.argument("source", metavar="IMAGE|OUT_DATASET", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG file to write.",
)
@click.option(
    "--size",
    type=int,
    default=None,
    help="Image: tile side length, as expand --size. [default: 227]",
)
@click.option(
    "--pca-std",
    type=float,
    default=None,
    help="Image: std of the PCA alphas, as expand --pca-std. [default: 0.5]",
)
@click.option(
    "--columns",
    type=int,
    default=None,
    help="Image: tiles per row. [default: 5]",
)
@click.option(
    "--per-cell",
    type=int,
    default=None,
    help="Dataset: random images per class and split. [default: 4]",
)
@click.option(
    "--recipe",
    default=None,
    metavar="FILE|NAME",
    help="Image: draw this recipe's transforms (a file, or paper, colour, curator).",
)
@click.option(
    "--annotations",
    default=None,
    help="Image: annotations of its folder (VOC/YOLO folder, COCO file); boxes drawn on tiles.",
)
@click.option(
    "--format",
    "annotation_format",
    type=click.Choice(["voc", "coco", "yolo"]),
    default=None,
    help="Format of --annotations.",
)
@click.option("--names", default=None, help="YOLO class names file (with --annotations).")
@click.option(
    "--min-visibility",
    type=float,
    default=0.3,
    show_default=True,
    help="As expand --min-visibility.",
)
@seed_option
@overwrite_option
@click.option("--quiet", "-q", is_flag=True, help="No summary line; errors still print.")
@library_errors
def preview(
    source: Path,
    out: Path,
    size: int | None,
    pca_std: float | None,
    columns: int | None,
    per_cell: int | None,
    recipe: str | None,
    annotations: str | None,
    annotation_format: str | None,
    names: str | None,
    min_visibility: float,
    seed: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Draw a labelled PNG of what augmentation does, to look at before training.

    Given an IMAGE file: a contact sheet like the paper's Fig. 2, the original
    and one output of each of the ten transforms plus PCA colour jitter at the
    unit and byte scales, made exactly as `expand --seed SEED` makes copy k of
    that file; each tile is labelled with its parameters. With --recipe: the
    original and one output of each of the recipe's transforms instead.

    Given an expand OUT_DATASET (folder or .h5): random outputs per class (rows)
    and split (column groups), each labelled with its transform.

    \b
    Examples:
      augtool preview raw/ALL/im001.jpg --out sheet.png
      augtool preview raw/ALL/im001.jpg --out sheet.png --size 160 --seed 3 --columns 7
      augtool preview raw/ALL/im001.jpg --out sheet.png --recipe my_recipe.toml
      augtool preview out/ --out grid.png --per-cell 6
      augtool preview smears/a.jpg --annotations ann/ --format voc --size 416 --out boxes.png
    """
    from augtool.preview import preview as run_preview
    from augtool.recipe import load_recipe

    result = run_preview(
        source,
        out,
        size=size,
        seed=seed,
        pca_std=pca_std,
        columns=columns,
        per_cell=per_cell,
        overwrite=overwrite,
        recipe=None if recipe is None else load_recipe(recipe),
        annotations=annotations,
        annotation_format=annotation_format,
        names=names,
        min_visibility=min_visibility,
    )
    if not quiet:
        what = "contact sheet" if result.kind == "image" else "dataset grid"
        click.echo(f"wrote {what} {out} ({result.width}x{result.height} px, {result.tiles} tiles)")


# --- model: train, evaluate, predict ------------------------------------------------------


def _parse_arch_options(pairs: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` pairs to a dict of text values (the registry parses their types)."""
    from augtool.errors import OptionError

    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise OptionError("--arch-option", f"expected KEY=VALUE, got {pair!r}")
        options[key.strip()] = text.strip()
    return options


@main.command("train")
@click.argument("data", type=click.Path(exists=True, path_type=str))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=str),
    help="Run folder to create: model.pt, history.csv, metrics.json.",
)
@click.option(
    "--arch",
    default="leukemianet",
    show_default=True,
    help="Network: leukemianet (the paper's) or cellnet (stronger).",
)
@click.option(
    "--arch-option",
    "arch_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Architecture option, repeatable (e.g. conv2_filters=32); see docs/train.md.",
)
@click.option("--epochs", type=int, default=None, help="Epochs [default: 30].")
@click.option(
    "--lr",
    type=float,
    default=None,
    help="Learning rate [default: 0.001 leukemianet, 0.05 cellnet].",
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Images per step [default: 128 leukemianet, 64 cellnet].",
)
@click.option("--momentum", type=float, default=None, help="SGD momentum [default: 0.9].")
@click.option(
    "--weight-decay",
    type=float,
    default=None,
    help="L2 penalty [default: 1e-4 leukemianet, 5e-4 cellnet].",
)
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "adamw"]),
    default=None,
    help="Optimizer [default: sgd].",
)
@click.option(
    "--schedule",
    type=click.Choice(["constant", "cosine"]),
    default=None,
    help="Learning-rate schedule [default: constant leukemianet, cosine cellnet].",
)
@click.option(
    "--augment",
    default=None,
    metavar="LIST",
    help="On-device augmentation of training batches: none, or a comma-separated list "
    "of flip, dihedral, gray, jitter [default: none leukemianet, dihedral cellnet].",
)
@click.option(
    "--normalize",
    type=click.Choice(["zerocenter", "standardize"]),
    default=None,
    help="Input normalisation from the train split "
    "[default: zerocenter leukemianet, standardize cellnet].",
)
@click.option(
    "--patience",
    type=int,
    default=None,
    help="Stop after N epochs without a better val accuracy (needs a val split).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cuda or cpu.")
@click.option(
    "--amp",
    type=click.Choice(["off", "bf16"]),
    default=None,
    help="off: float32; bf16: bfloat16 autocast of the forward pass [default: off].",
)
@click.option(
    "--cudnn-benchmark/--no-cudnn-benchmark",
    default=None,
    help="Let cuDNN pick the fastest convolution kernels by timing them (CUDA; "
    "not bit-reproducible) [default: off].",
)
@click.option(
    "--max-memory",
    default=None,
    metavar="SIZE",
    help="Memory the data may take (e.g. 8G, 512M); a larger HDF5 set is streamed from "
    "disk [default: half the free memory of the device and of the host].",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds weights, batch order and flips."
)
@click.option(
    "--fold",
    default=None,
    metavar="K|all",
    help="Cross-validation on data made with `expand --folds`: test on fold K, keep the "
    "epoch best on fold K+1, train on the rest; 'all' runs every fold into OUT/fold-<k>/ "
    "and writes OUT/cv.md and OUT/cv.json (mean and std over the folds).",
)
@click.option(
    "--resume", is_flag=True, help="With --fold all: keep the folds already finished in OUT."
)
@overwrite_option
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar; the summary still prints, errors too."
)
@interruptible
@library_errors
def train_command(
    data: str,
    out: str,
    arch: str,
    arch_options: tuple[str, ...],
    epochs: int | None,
    lr: float | None,
    batch_size: int | None,
    momentum: float | None,
    weight_decay: float | None,
    optimizer: str | None,
    schedule: str | None,
    augment: str | None,
    normalize: str | None,
    patience: int | None,
    device: str,
    amp: str | None,
    cudnn_benchmark: bool | None,
    max_memory: str | None,
    seed: int,
    fold: str | None,
    resume: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Train a network on an `augtool expand` output (HDF5 or folder).

    Trains on the train split, scores val after every epoch, keeps the best
    epoch on val when there is a val split, scores test once at the end, and
    writes RUN/model.pt, RUN/history.csv and RUN/metrics.json. Unset training
    options take the architecture's defaults (the paper's settings for
    leukemianet). With --fold, the folds of `expand --folds K` replace the splits.

    \b
    Example:
      augtool train cells.h5 --out runs/leukemianet
      augtool train cells.h5 --out runs/cellnet --arch cellnet --epochs 40
      augtool train cells5.h5 --out runs/cellnet-cv --arch cellnet --fold all
    """
    import time

    started = time.perf_counter()  # elapsed times count from here, imports included
    from model.report import pct
    from model.run import train_run
    from model.train import TrainConfig

    config = TrainConfig.for_arch(
        arch,
        arch_options=_parse_arch_options(arch_options),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        momentum=momentum,
        weight_decay=weight_decay,
        optimizer=optimizer,
        schedule=schedule,
        augment=augment,
        normalize=normalize,
        patience=patience,
        seed=seed,
        amp=amp,
        cudnn_benchmark=cudnn_benchmark,
    )
    fold_number = _parse_fold(fold)
    if resume and fold_number != "all":
        raise click.UsageError("--resume needs --fold all")
    bar = TrainBar(data, quiet)
    if fold_number == "all":
        from model.cv import CV_MARKDOWN, cv_run

        try:
            cv = cv_run(
                data,
                out,
                config,
                device,
                overwrite,
                resume,
                lambda k, event: bar(event, f"{arch} fold {k}"),
                command_line=_command_line(),
                started=started,
            )
        finally:
            bar.close()
        click.echo((cv.out / CV_MARKDOWN).read_text(encoding="utf-8"), nl=False)
        return
    try:
        result = train_run(
            data,
            out,
            config,
            device,
            overwrite,
            lambda event: bar(event, arch),
            command_line=_command_line(),
            fold=fold_number,
            max_memory=max_memory,
            started=started,
        )
    finally:
        bar.close()
    m = result.metrics
    click.echo(
        f"{result.run_dir}: {config.arch} on {result.device}, {m['epochs_run']} "
        f"epoch{'s' if m['epochs_run'] != 1 else ''} "
        f"(kept epoch {m['best_epoch']}), {result.seconds:.1f} s"
    )
    for split in ("val", "test"):
        if split in m:
            click.echo(
                f"  {split}: accuracy {pct(m[split]['accuracy'])}, "
                f"macro F1 {pct(m[split]['macro_f1'])}"
            )


def _parse_fold(text: str | None) -> int | str | None:
    """``--fold``: ``None``, ``all`` or a fold number."""
    if text is None or text.strip().lower() == "all":
        return None if text is None else "all"
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(
            f"a fold number or 'all', got {text!r}", param_hint="--fold"
        ) from None


@main.command("evaluate")
@click.argument("model_file", metavar="MODEL", type=click.Path(exists=True, path_type=str))
@click.argument("data", type=click.Path(exists=True, path_type=str))
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="Split of an expand output ('all' for every image); "
    "ignored for a raw class-per-folder image directory.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=str),
    default=None,
    help="Folder for metrics.json and confusion.png [default: MODEL's folder/eval].",
)
@click.option("--device", default="auto", show_default=True, help="auto, cuda or cpu.")
@click.option(
    "--batch-size", type=int, default=256, show_default=True, help="Images per forward pass."
)
@tta_option
@library_errors
def evaluate_command(
    model_file: str,
    data: str,
    split: str,
    out: str | None,
    device: str,
    batch_size: int,
    tta: bool,
) -> None:
    """Score a trained model: the paper's Table 1 per class, and more.

    DATA is an `augtool expand` output (HDF5 or folder) or a plain RAW/<class>/
    image folder (any image size; each image is preprocessed exactly as
    `expand` makes its original copy). Prints TP, TN, FP, FN, precision,
    recall, specificity per class, accuracy and macro F1 with a 95 % interval
    from a cluster bootstrap over the recorded groups (sources, or the
    --group-regex groups: 2,000 resamples, seed 0), the per-image Wilson
    interval (which assumes independent images), balanced accuracy and
    accuracy on the original images, and writes metrics.json and confusion.png.

    \b
    Example:
      augtool evaluate runs/leukemianet/model.pt cells.h5 --split test
      augtool evaluate runs/leukemianet/model.pt new_smears/ --out eval_new/
    """
    from pathlib import Path

    from augtool.errors import OptionError
    from model.report import format_table
    from model.run import evaluate_run

    if batch_size < 1:
        raise OptionError("--batch-size", f"must be >= 1, got {batch_size}")
    target = out if out is not None else str(Path(model_file).parent / "eval")
    split_arg = None if split == "all" else split
    reporter = TqdmReporter(quiet=False)  # bars on a terminal only
    try:
        result = evaluate_run(
            model_file, data, split_arg, target, device, batch_size, tta, progress=reporter
        )
    finally:
        reporter.close()
    where = "all images" if result.report["split"] is None else f"split {split}"
    if tta:
        where += ", 8-view TTA"
    click.echo(format_table(result.report, title=f"{data} ({where}, n={result.report['n']})"))
    click.echo(f"wrote {result.out_dir}/metrics.json and {result.out_dir}/confusion.png")


@main.command("predict")
@click.argument("model_file", metavar="MODEL", type=click.Path(exists=True, path_type=str))
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, path_type=str))
@click.option("--device", default="auto", show_default=True, help="auto, cuda or cpu.")
@tta_option
@library_errors
def predict_command(model_file: str, images: tuple[str, ...], device: str, tta: bool) -> None:
    """Print the predicted class and the class probabilities of each image.

    Images of any size are preprocessed exactly as `expand` makes its
    original copies. One line per image: path, class, then p(class) for every class.

    \b
    Example:
      augtool predict runs/leukemianet/model.pt smear1.jpg smear2.png
    """
    from model.run import predict_files

    for pred in predict_files(model_file, list(images), device, tta):
        probs = "  ".join(f"{name}={p:.3f}" for name, p in pred.probabilities.items())
        click.echo(f"{pred.path}\t{pred.predicted}\t{probs}")


if __name__ == "__main__":
    main()
