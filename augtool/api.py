"""The keyword functions of augtool's public API, one per command, with the command's defaults.

Each function takes one keyword per flag of its command, named as the
library names the flag (``output_format`` for ``expand --format``, see
``augtool.commands.exit_codes.flag_name``), with the flag's default; the
command line calls these functions and nothing else of the library
(``tests/test_api.py`` holds the keywords and defaults to the flags'). They
are re-exported by ``augtool`` itself::

    import augtool

    summary = augtool.expand("raw/", "out/", target=3000, pca=True, seed=7)
    report = augtool.verify("out/")

Errors are :class:`augtool.errors.AugtoolError` subclasses naming the
keyword (``OptionError("target", ...)``); nothing is written when a keyword
is refused.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augtool import defaults
from augtool.errors import Interrupted, OptionError, complete_after_interrupt
from augtool.progress import NoProgress

if TYPE_CHECKING:
    from augtool.engine.dry_run import DryRun
    from augtool.engine.expand import ExpandSummary
    from augtool.engine.options import ExpandOptions
    from augtool.engine.verify import VerifyReport
    from augtool.progress import Progress, Reporter
    from augtool.tools.cells import CellsSummary
    from augtool.tools.preview import PreviewResult
    from augtool.tools.synth import SynthSummary

#: A recipe: a file, a shipped recipe's name, or one already read or built.
RecipeLike = str | Path | Any
#: An output size: a side (square), or ``(width, height)``.
SizeLike = int | tuple[int, int]


def expand(
    raw: str | Path,
    out: str | Path,
    *,
    target: int | None = None,
    factor: float | None = None,
    transforms: str | Sequence[str] = defaults.DEFAULT_TRANSFORMS,
    recipe: RecipeLike | None = None,
    plugins: Sequence[str] = (),
    sigma_range: tuple[float, float] = defaults.DEFAULT_SIGMA_RANGE,
    rotate_range: tuple[float, float] = defaults.DEFAULT_ROTATE_RANGE,
    translate_range: tuple[float, float] = defaults.DEFAULT_TRANSLATE_RANGE,
    shear_range: tuple[float, float] = defaults.DEFAULT_SHEAR_RANGE,
    size: SizeLike = defaults.DEFAULT_SIZE,
    letterbox: bool = False,
    pca: bool = False,
    pca_count: int | None = None,
    pca_mode: str = defaults.DEFAULT_PCA_MODE,
    pca_std: float = defaults.DEFAULT_PCA_STD,
    pca_k: int = defaults.DEFAULT_PCA_K,
    pca_scale: str = defaults.DEFAULT_PCA_SCALE,
    split: str = defaults.DEFAULT_SPLIT,
    folds: int = 0,
    split_by: str = defaults.DEFAULT_SPLIT_BY,
    group_regex: str | None = None,
    no_augment_test: bool = False,
    output_format: str | None = None,
    annotations: str | Path | None = None,
    annotation_format: str | None = None,
    names: str | Path | None = None,
    min_visibility: float = defaults.DEFAULT_MIN_VISIBILITY,
    segmentation: bool = False,
    mask_boxes: str = defaults.DEFAULT_MASK_BOXES,
    image_format: str = defaults.DEFAULT_IMAGE_FORMAT,
    jpeg_quality: int = defaults.DEFAULT_JPEG_QUALITY,
    compression: str = defaults.DEFAULT_COMPRESSION,
    skip_invalid: bool = False,
    max_pixels: int = defaults.MAX_PIXELS,
    resume: bool = False,
    backend: str = defaults.DEFAULT_BACKEND,
    scheduler: str | None = None,
    scheduler_timeout: float = defaults.DEFAULT_SCHEDULER_TIMEOUT,
    send_sources: bool = False,
    seed: int = 0,
    workers: int = 0,
    overwrite: bool = False,
    progress: Reporter | None = None,
    command_line: str = "",
) -> ExpandSummary:
    """Expand ``RAW/<class>/<image>`` into an augmented dataset in OUT (``augtool expand``).

    OUT is a folder (``OUT/<split>/<class>/*.png`` + ``manifest.csv``) or, when
    it ends in ``.h5``/``.hdf5``, one HDF5 file. The defaults reproduce the
    paper's 1,492-image set at 227x227, split 70/30 by source; ``pca=True``
    gives the 1,676 set. Every keyword is the flag of the same name
    (docs/expand.md); in short:

    Args:
        raw: The class folders (or, with ``annotations``, a folder of images).
        out: The output folder or ``.h5`` file.
        target: Outputs, originals included (default: 1,492).
        factor: Instead of ``target``: outputs per source.
        transforms: The paper's steps to cycle through: ``all``, ``"a,b"``, or names.
        recipe: A recipe file, a shipped name (``paper``, ``colour``, ``curator``),
            a :class:`~augtool.pipeline.recipe_spec.Recipe` or a
            :class:`~augtool.pipeline.core.Pipeline`, instead of ``transforms``
            and the ranges.
        plugins: Modules (names or ``.py`` files) whose steps a recipe may name.
        sigma_range: Blur sigma, source pixels.
        rotate_range: Rotation, degrees.
        translate_range: ``|dx|``, ``|dy|``, source pixels.
        shear_range: ``|shear factor|``.
        size: Output side, or ``(width, height)`` (folder output).
        letterbox: Keep each image's aspect ratio, black bars around it.
        pca: Add the paper's 184 PCA colour-jittered copies.
        pca_count: Number of PCA copies (implies ``pca``).
        pca_mode: ``pixel`` (the paper) or ``shift`` (Krizhevsky).
        pca_std: Standard deviation of the PCA alphas.
        pca_k: Principal components used.
        pca_scale: ``relative``, or the legacy ``unit``/``byte`` of ``shift``.
        split: ``0.7``, ``0.7,0.15,0.15`` or ``none``.
        folds: K-fold cross-validation instead of the fractional split (0: none).
        split_by: ``source`` (no leakage) or ``image`` (the paper's protocol).
        group_regex: Sources whose paths share this match stay in one split.
        no_augment_test: Only originals in val/test.
        output_format: ``folder`` or ``hdf5`` (default: by OUT's suffix).
        annotations: Detection: the boxes of RAW's images (with ``segmentation``: their masks).
        annotation_format: ``voc``, ``coco`` or ``yolo``; with ``segmentation`` also
            ``png`` or ``png-instances``.
        names: YOLO class names file (with ``segmentation``: YOLO, ``png``, ``voc``).
        min_visibility: Drop a box when less than this fraction of it stays
            (with ``segmentation``: an instance, of its area).
        segmentation: ``annotations`` are masks, carried through every
            step and written in their format (docs/segmentation.md).
        mask_boxes: Segmentation: each instance's box from its mapped mask
            (``tight``) or its source box mapped (``hull``).
        image_format: ``png`` or ``jpg`` (folder output).
        jpeg_quality: JPEG quality.
        compression: HDF5 compression: ``none``, ``lzf``, ``gzip``.
        skip_invalid: Skip unusable input files (listed) instead of refusing.
        max_pixels: Refuse larger sources.
        resume: Continue an interrupted run of the same options.
        backend: ``local`` worker processes or a ``dask`` cluster.
        scheduler: Dask scheduler address, or ``local`` (``backend="dask"``).
        scheduler_timeout: Seconds to wait for the scheduler and a worker.
        send_sources: Send each source's bytes to the Dask workers.
        seed: Run seed; same seed, same bytes.
        workers: Worker processes, 0 = all cores (never changes the bytes).
        overwrite: Replace OUT if it exists and is not empty.
        progress: Receives progress and warnings (:class:`augtool.progress.Reporter`).
        command_line: Recorded in the output for provenance.

    Returns:
        What was written (:class:`augtool.engine.expand.ExpandSummary`).

    Raises:
        OptionError: For a refused keyword (nothing is written).
        InputError: For unusable input.
        OutputError: If OUT exists (without ``overwrite``) or writing fails.
    """
    values = _expand_values(locals())
    from augtool.engine.expand import expand as run

    options = _expand_options(values, out)
    summary = None
    try:
        with _backend(backend, scheduler, scheduler_timeout, send_sources, workers) as chosen:
            summary = run(raw, out, options, progress, command_line=command_line, backend=chosen)
    except KeyboardInterrupt:
        if summary is None:
            raise
        # OUT is published (a stop signal while the backend closes): it stays complete.
        raise Interrupted(complete_after_interrupt(out)) from None
    return summary


#: Keywords of :func:`expand` that concern the run, not its plan: no keywords of :func:`dry_run`.
RUN_ONLY = ("resume", "overwrite", "backend", "scheduler", "scheduler_timeout", "send_sources")


def dry_run(
    raw: str | Path,
    out: str | Path | None = None,
    *,
    progress: Reporter | None = None,
    **options: Any,
) -> DryRun:
    """Scan RAW and plan the run :func:`expand` would make, writing nothing (``--dry-run``).

    Takes :func:`expand`'s keywords that decide the plan (all but
    :data:`RUN_ONLY` and ``command_line``), with the same defaults; ``out``,
    when given, lets the options that depend on the output's format be
    checked as a run would check them.

    Returns:
        The plan, counted (:class:`augtool.engine.dry_run.DryRun`).

    Raises:
        OptionError: For a refused keyword (or one :func:`expand` does not take).
        InputError: For unusable input.
    """
    from augtool.engine.dry_run import dry_run as plan

    known = dict(_PLAN_DEFAULTS)
    for key in options:
        if key not in known:
            raise OptionError(key, "not an option of dry_run")
    values = _expand_values({**known, **options})
    return plan(raw, _expand_options(values, out), progress)


def _expand_values(given: Mapping[str, Any]) -> dict[str, Any]:
    """The options of :func:`expand`'s keywords, as :func:`options_from_values` takes them."""
    skip = ("raw", "out", "progress", "command_line", "backend", "scheduler")
    skip += ("scheduler_timeout", "send_sources")
    values = {k: v for k, v in given.items() if k not in skip}
    size = values.pop("size")
    values["size"], values["height"] = _size_pair(size)
    values["plugins"] = tuple(values["plugins"])
    for key in ("annotations", "names"):
        if values[key] is not None:
            values[key] = str(values[key])
    return values


def _size_pair(size: object) -> tuple[int, int | None]:
    """``size`` as ``(width, height)``, height None for one side (a square).

    Raises:
        OptionError: If ``size`` is neither a whole number nor a pair of them
            (a string such as ``"64"`` would otherwise be read as its characters).
    """

    def whole(value: object) -> bool:
        return isinstance(value, Real) and not isinstance(value, bool) and float(value).is_integer()

    if whole(size):
        return int(size), None
    pair = isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2
    if pair and all(whole(v) for v in size):
        return int(size[0]), int(size[1])
    raise OptionError("size", f"a side in pixels or (width, height), got {size!r}")


def _expand_options(values: dict[str, Any], out: str | Path | None) -> ExpandOptions:
    """Checked options; with ``out``, also what its format cannot hold."""
    from augtool.engine.options import options_from_values, resolve_output_format

    options = options_from_values(values)
    if out is not None:
        options.validate(resolve_output_format(Path(out), options))
    return options


class _Local:
    """The local backend as a context manager (nothing to connect)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _backend(
    backend: str, scheduler: str | None, timeout: float, send_sources: bool, workers: int
) -> Any:
    """Where the sources render: None for local workers, or a Dask backend to enter.

    Raises:
        OptionError: For an unknown backend, or Dask keywords without ``backend="dask"``.
    """
    if backend not in defaults.BACKENDS:
        raise OptionError("backend", f"one of {', '.join(defaults.BACKENDS)}, got {backend!r}")
    if backend == defaults.DEFAULT_BACKEND:
        if scheduler is not None or send_sources:
            option = "scheduler" if scheduler is not None else "send_sources"
            raise OptionError(option, "needs {backend} dask", refs=True)
        return _Local()
    from augtool.engine.dask_backend import LOCAL_SCHEDULER, DaskBackend

    return DaskBackend(
        scheduler or LOCAL_SCHEDULER, workers=workers, timeout=timeout, send_sources=send_sources
    )


def verify(
    out: str | Path,
    *,
    regenerate_raw: str | Path | None = None,
    plugins: Sequence[str] = (),
    workers: int = 0,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check an ``expand`` output against its own records (``augtool verify``).

    Args:
        out: The output folder or HDF5 file.
        regenerate_raw: Replay the recorded options on this RAW folder and
            require identical bytes (``--regenerate RAW``).
        plugins: Modules a recorded plug-in step may come from; nothing the
            dataset names is imported.
        workers: Worker processes of the replay (0 = all cores).
        progress: Told of the phases.

    Returns:
        The report; ``report.ok`` says whether everything holds.

    Raises:
        InputError: If ``out`` is not an augtool output at all.
    """
    from augtool.engine.verify import verify as check

    return check(out, regenerate_raw, workers, progress, tuple(plugins))


def cut_cells(
    smears: str | Path,
    annotations: str | Path,
    out: str | Path,
    *,
    annotation_format: str,
    names: str | Path | None = None,
    crop: str = defaults.DEFAULT_CROP,
    window: int = defaults.DEFAULT_WINDOW,
    margin: float = defaults.DEFAULT_MARGIN,
    size: int | None = None,
    classes: Sequence[str] | None = None,
    rename: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    max_per_class: int | None = None,
    max_per_smear: int | None = None,
    min_size: float = 0.0,
    border: str = defaults.DEFAULT_BORDER,
    exclude_overlap: Sequence[str] | None = None,
    image_format: str = defaults.DEFAULT_IMAGE_FORMAT,
    jpeg_quality: int = defaults.DEFAULT_JPEG_QUALITY,
    skip_invalid: bool = False,
    seed: int = 0,
    overwrite: bool = False,
    mask_background: str = defaults.DEFAULT_MASK_BACKGROUND,
    progress: Reporter | None = None,
) -> CellsSummary:
    """Cut a cell classification set ``OUT/<class>/`` out of annotated smears (``augtool cells``).

    Args:
        smears: The folder of whole smear images.
        annotations: Their boxes: a VOC or YOLO folder, or a COCO file (with
            ``crop="mask"``: their instance masks, :func:`augtool.expand`'s
            mask formats but ``png`` class maps).
        out: The output folder (appears complete or not at all).
        annotation_format: ``voc``, ``coco`` or ``yolo`` (``crop="mask"``:
            ``coco``, ``yolo``, ``png-instances`` or ``voc``).
        names: YOLO class names file.
        crop: ``window`` (a fixed window around each object), ``box``, or
            ``mask``: the box of an instance mask, cut by the mask, the mask
            written beside it (``OUT/.masks/``).
        window: Side of the window, pixels.
        margin: ``crop="box"``: margin on each side, a fraction of the longer side.
        size: Side of the written cells (default: the window as cut; 256 for boxes).
        classes: Annotation classes to keep (default: all).
        rename: Annotation class to output folder, ``{"old": "new"}``.
        max_per_class: Keep at most this many cells per class (seeded).
        max_per_smear: Keep at most this many cells per class and smear (seeded).
        min_size: Drop boxes whose shorter side is below this many pixels.
        border: ``keep``, ``drop-truncated`` or ``drop-touching``.
        exclude_overlap: Drop a cell whose window overlaps an object of these classes.
        image_format: ``png`` or ``jpg``.
        jpeg_quality: JPEG quality.
        skip_invalid: Leave out faulty boxes and images (listed) instead of refusing.
        seed: Seed of the capped choices.
        overwrite: Replace OUT if it exists.
        mask_background: ``crop="mask"``: pixels outside the mask ``fill``
            (black) or ``keep``.
        progress: Receives progress and warnings.

    Returns:
        What was written (:class:`augtool.tools.cells.CellsSummary`).
    """
    from augtool.tools.cells import CellOptions
    from augtool.tools.cells import cut_cells as cut

    pairs = tuple(rename.items()) if isinstance(rename, Mapping) else tuple(map(tuple, rename))
    options = CellOptions(
        format=annotation_format,
        names=None if names is None else str(names),
        crop=crop,
        window=window,
        margin=margin,
        size=size,
        classes=None if classes is None else tuple(classes),
        rename=pairs,  # type: ignore[arg-type]
        max_per_class=max_per_class,
        max_per_smear=max_per_smear,
        min_size=min_size,
        border=border,
        exclude_overlap=tuple(exclude_overlap or ()),
        image_format=image_format,
        jpeg_quality=jpeg_quality,
        seed=seed,
        skip_invalid=skip_invalid,
        overwrite=overwrite,
        mask_background=mask_background,
    )
    return cut(smears, annotations, out, options, progress or NoProgress())


def synthesize(
    out: str | Path,
    *,
    per_class: Mapping[str, int] | None = None,
    size: SizeLike = defaults.DEFAULT_SYNTH_SIZE,
    masks: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> SynthSummary:
    """Generate demo smear images ``OUT/<class>/<class>_<nnn>.jpg`` (``augtool synth``).

    Args:
        out: The output folder (appears complete or not at all).
        per_class: Images per class (default: the paper's 49 ALL, 33 AML, 59 normal).
        size: Image side, or ``(width, height)``.
        masks: Also write every cell's exact mask to this folder (outside OUT).
        seed: Same seed, same bytes.
        overwrite: Replace OUT if it exists.
        progress: Told of the images as they are written.

    Returns:
        What was written.
    """
    from augtool.tools.synth import synthesize as generate

    width, height = _size_pair(size)
    shape = (width, width if height is None else height)
    return generate(
        out,
        per_class=per_class,
        size=shape,
        seed=seed,
        overwrite=overwrite,
        progress=progress,
        masks=masks,
    )


def preview(
    source: str | Path,
    out: str | Path,
    *,
    size: int | None = None,
    pca_std: float | None = None,
    columns: int | None = None,
    per_cell: int | None = None,
    recipe: RecipeLike | None = None,
    plugins: Sequence[str] = (),
    annotations: str | Path | None = None,
    annotation_format: str | None = None,
    segmentation: bool = False,
    names: str | Path | None = None,
    min_visibility: float = defaults.DEFAULT_MIN_VISIBILITY,
    seed: int = 0,
    overwrite: bool = False,
) -> PreviewResult:
    """A contact sheet of an image, or the grid of an ``expand`` output (``augtool preview``).

    Args:
        source: An image file, or an ``expand`` output (folder or ``.h5``).
        out: The ``.png`` to write.
        size: Image: tile side (default 227).
        pca_std: Image: standard deviation of the PCA alphas (default 0.5).
        columns: Image: tiles per row (default 5, or fewer for a recipe of fewer tiles).
        per_cell: Output: images per (class, split) (default 4).
        recipe: Image: draw this recipe's steps (a file, a shipped name, a
            recipe or a pipeline).
        plugins: Modules whose steps the recipe may name.
        annotations: Image: the boxes of the image's folder, drawn on every tile.
        annotation_format: ``voc``, ``coco`` or ``yolo``; with
            ``segmentation``, a mask format of :func:`expand`.
        segmentation: Image: ``annotations`` are masks; their outlines are drawn.
        names: YOLO class names file.
        min_visibility: As :func:`expand`'s.
        seed: Seed of the parameters (image) or of the draw (output).
        overwrite: Replace ``out`` if it exists.

    Returns:
        What was written.
    """
    from augtool.pipeline.core import as_recipe
    from augtool.tools.preview import preview as draw

    steps = None if recipe is None else as_recipe(recipe, tuple(plugins))
    return draw(
        source,
        out,
        size=size,
        seed=seed,
        pca_std=pca_std,
        columns=columns,
        per_cell=per_cell,
        overwrite=overwrite,
        recipe=steps,
        annotations=annotations,
        annotation_format=annotation_format,
        segmentation=segmentation,
        names=names,
        min_visibility=min_visibility,
    )


#: :func:`expand`'s plan keywords and their defaults: :func:`dry_run`'s keywords.
_PLAN_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(expand).parameters.items()
    if p.kind is p.KEYWORD_ONLY and name not in (*RUN_ONLY, "progress", "command_line")
}
dry_run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        *list(inspect.signature(dry_run).parameters.values())[:3],
        *(p for name, p in inspect.signature(expand).parameters.items() if name in _PLAN_DEFAULTS),
    ],
    return_annotation=inspect.signature(dry_run).return_annotation,
)
