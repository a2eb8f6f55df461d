"""The expansion plan (docs/expand.md): which outputs each source gets, pure and exact.

:func:`make_plan` allocates the copies; :func:`plan_run` splits the scanned
sources and lays out every output of a run (:class:`PlannedRun`: its split,
fold and file name), with the warnings of a plan that misses classes.

A plan is a function of the source list, the options and nothing else: no
files, no clock. ``augtool expand --dry-run`` prints it before any pixel moves.

Rules:

* every source contributes its original once (copy 0);
* the remaining copies are spread over sources as evenly as possible and the
  remainder goes to the sources of the smallest classes first (ties between
  classes by name, within a class by source path);
* a source's augmented copies cycle through the transforms starting at a
  per-source offset (its index in plan order), so every source gets a
  balanced mix and every transform is used about equally;
* ``--pca`` copies are allocated by the same rule and come last.

With 49 / 33 / 59 sources and a target of 1,492: 141 originals + 1,351 copies
= 9 per source + 82 extra (33 AML + 49 ALL), so ALL 539, AML 363, normal 590;
184 PCA copies add one per source plus 43 (33 AML + 10 ALL): 598 / 429 / 649.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from augtool.defaults import DEFAULT_TARGET, MAX_OUTPUTS
from augtool.engine.split import (
    LEAK_WARNING,
    SplitSpec,
    fold_by_group,
    merge_groups,
    split_by_group,
    split_by_image,
)
from augtool.errors import Message, OptionError, literal
from augtool.pipeline.steps import ORIGINAL_NAME, PCA

if TYPE_CHECKING:
    from augtool.engine.options import ExpandOptions
    from augtool.engine.scan import ScanResult, Source
    from augtool.progress import Reporter


@dataclass(frozen=True)
class Job:
    """One output image.

    Attributes:
        source: Index of the source in the scan's source list.
        copy: 0 for the original, then 1, 2, ... per source.
        transform: ``original``, a conventional transform name or ``pca``.
    """

    source: int
    copy: int
    transform: str


def allocate(class_of: Sequence[str], extra: int) -> list[int]:
    """Spread ``extra`` copies over sources as evenly as possible.

    Args:
        class_of: The class of each source, in plan order (class, path).
        extra: Number of copies to spread (>= 0).

    Returns:
        Copies per source; the remainder goes to the sources of the smallest
        classes first (ties by class name), in plan order within a class.
    """
    n = len(class_of)
    if n == 0:
        return []
    base, rem = divmod(extra, n)
    sizes = Counter(class_of)
    order = sorted(range(n), key=lambda i: (sizes[class_of[i]], class_of[i], i))
    counts = [base] * n
    for i in order[:rem]:
        counts[i] += 1
    return counts


def resolve_target(n_sources: int, target: int | None, factor: float | None) -> int:
    """Total number of conventional outputs (originals included).

    Neither ``target`` nor ``factor`` given: the paper's 1,492
    (:data:`augtool.defaults.DEFAULT_TARGET`).

    Args:
        n_sources: Number of sources.
        target: ``--target``: the total wanted.
        factor: ``--factor``: outputs per source on average (``round(F * n)``).

    Raises:
        OptionError: If both are given, or the total is below the number of
            sources.
    """
    if target is not None and factor is not None:
        raise OptionError("target", "give {target} or {factor}, not both", refs=True)
    if target is None and factor is None:
        target = DEFAULT_TARGET
    if factor is not None:
        if not factor >= 1:
            raise OptionError(
                "factor", f"must be >= 1 (each source keeps its original), got {factor}"
            )
        if not factor * n_sources <= MAX_OUTPUTS:
            raise OptionError(
                "factor", f"{factor} x {n_sources:,} sources is above {MAX_OUTPUTS:,} outputs"
            )
        return round(factor * n_sources)
    assert target is not None
    if target < n_sources:
        raise OptionError(
            "target",
            f"{target} is below the number of sources ({n_sources}); every source "
            "contributes its original, so the target must be at least that",
        )
    return target


def make_plan(
    class_of: Sequence[str],
    total: int,
    transforms: Sequence[str],
    pca_count: int = 0,
    augment: Sequence[bool] | None = None,
) -> list[Job]:
    """Build the list of outputs, in plan order (source, then copy).

    Args:
        class_of: Class of each source, sources in plan order (class, path).
        total: Conventional outputs wanted, originals included.
        transforms: Transform names to cycle through.
        pca_count: Extra PCA-jittered copies.
        augment: Per source, whether it may get augmented copies (False for
            val/test sources with ``--no-augment-test``); the copies are then
            spread over the others so that ``total`` still holds.

    Returns:
        The jobs.

    Raises:
        OptionError: If no source may be augmented but copies are requested,
            or the transform list is empty.
    """
    n = len(class_of)
    if augment is None:
        augment = [True] * n
    if not transforms and total > n:
        raise OptionError("transforms", "no transforms to make copies with")
    if pca_count < 0:
        raise OptionError("pca_count", f"must be >= 0, got {pca_count}")
    eligible = [i for i in range(n) if augment[i]]
    if not eligible and (total > n or pca_count > 0):
        raise OptionError("no_augment_test", "no training sources left to augment")
    sub_classes = [class_of[i] for i in eligible]
    conv = dict(zip(eligible, allocate(sub_classes, total - n), strict=True))
    pca = dict(zip(eligible, allocate(sub_classes, pca_count), strict=True))
    jobs: list[Job] = []
    m = len(transforms)
    for i in range(n):
        jobs.append(Job(i, 0, ORIGINAL_NAME))
        for c in range(conv.get(i, 0)):
            jobs.append(Job(i, 1 + c, transforms[(i + c) % m]))
        start = 1 + conv.get(i, 0)
        for c in range(pca.get(i, 0)):
            jobs.append(Job(i, start + c, PCA))
    return jobs


def count_by(jobs: Sequence[Job], key_of: Sequence[str]) -> dict[str, int]:
    """Number of jobs per key of their source (e.g. per class)."""
    counts: Counter[str] = Counter(key_of[j.source] for j in jobs)
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class PlannedRun:
    """The resolved plan: sources, their splits, and every output."""

    scan: ScanResult
    jobs: list[Job]
    split_of_source: list[str]
    split_of_job: list[str]
    names: list[str]
    spec: SplitSpec
    fold_of_source: list[int] | None = None


def plan_run(scan_result: ScanResult, options: ExpandOptions, reporter: Reporter) -> PlannedRun:
    """Split the sources and lay out every output (no pixels, no files).

    Args:
        scan_result: The scanned sources.
        options: The run's options.
        reporter: Receives warnings.

    Returns:
        The plan with split and file name of every output.
    """
    spec = options.validate()
    sources = scan_result.sources
    class_of = [s.class_name for s in sources]
    total = resolve_target(len(sources), options.target, options.factor)
    fold_of_source = None
    if options.split_by == "source" or not spec.enabled:
        groups = merge_groups([s.group for s in sources], [s.sha256 for s in sources])
        split_of_source = split_by_group([s.label for s in sources], groups, spec, options.seed)
        if options.folds:
            labels = [s.label for s in sources]
            fold_of_source = fold_by_group(labels, groups, options.folds, options.seed)
            _warn_missing_fold_classes(scan_result, fold_of_source, options.folds, reporter)
    else:
        split_of_source = ["-"] * len(sources)
        reporter.warn(LEAK_WARNING)
    augment = None
    if options.no_augment_test:
        augment = [sp == "train" for sp in split_of_source]
    jobs = make_plan(class_of, total, options.pipeline.names, options.pca_count, augment)
    if options.split_by == "image" and spec.enabled:
        split_of_job = split_by_image([sources[j.source].label for j in jobs], spec, options.seed)
    else:
        split_of_job = [split_of_source[j.source] for j in jobs]
    ext = "png" if options.image_format == "png" else "jpg"
    names = [
        output_name(sources[j.source], j, split_of_job[i] if spec.enabled else None, ext)
        for i, j in enumerate(jobs)
    ]
    _warn_missing_classes(scan_result, split_of_job, jobs, spec, reporter)
    _warn_ungrouped(scan_result, options, reporter)
    return PlannedRun(scan_result, jobs, split_of_source, split_of_job, names, spec, fold_of_source)


def _warn_ungrouped(scan_result: ScanResult, options: ExpandOptions, reporter: Reporter) -> None:
    """Say how many sources ``--group-regex`` did not match (each is then its own group)."""
    missed = scan_result.ungrouped
    if not missed:
        return
    total = len(scan_result.sources)
    reporter.warn(
        Message(
            f"{{group_regex}} '{literal(options.group_regex)}' matched {total - len(missed)} "
            f"of {total:d} sources; the other {len(missed)} fell back to their own group "
            f"(e.g. {literal(missed[0])}), so they are split as if each came from a different "
            "patient or smear"
        )
    )


def output_name(source: Source, job: Job, split: str | None, ext: str) -> str:
    """Relative output path: ``[<split>/]<class>/<stem>__<kk>_<transform>.<ext>``."""
    parts = [source.class_name, f"{source.stem}__{job.copy:02d}_{job.transform}.{ext}"]
    if split is not None:
        parts.insert(0, split)
    return "/".join(parts)


def _warn_missing_fold_classes(
    scan_result: ScanResult, fold_of_source: Sequence[int], folds: int, reporter: Reporter
) -> None:
    present = {(f, s.class_name) for f, s in zip(fold_of_source, scan_result.sources, strict=True)}
    for k in range(folds):
        missing = [c for c in scan_result.classes if (k, c) not in present]
        if missing:
            reporter.warn(
                f"fold {k} has no images of {len(missing)} class(es) {list_briefly(missing)}: "
                "too few sources or groups for this many folds"
            )


def _warn_missing_classes(
    scan_result: ScanResult,
    split_of_job: Sequence[str],
    jobs: Sequence[Job],
    spec: SplitSpec,
    reporter: Reporter,
) -> None:
    if not spec.enabled:
        return
    present = {
        (split_of_job[i], scan_result.sources[j.source].class_name) for i, j in enumerate(jobs)
    }
    for name in spec.names:
        missing = [c for c in scan_result.classes if (name, c) not in present]
        if missing:
            reporter.warn(
                f"split {name!r} has no images of {len(missing)} class(es) "
                f"{list_briefly(missing)}: too few sources or groups for this split"
            )


def row_label(run: PlannedRun, index: int) -> str:
    """Row of output ``index`` in the summary table: its split, or ``fold k`` with ``--folds``."""
    if run.fold_of_source is None:
        return run.split_of_job[index]
    return f"fold {run.fold_of_source[run.jobs[index].source]}"


def list_briefly(items: Sequence[str], limit: int = 10) -> str:
    """``a, b, c`` or ``a, b, ... and 990 more``: warnings stay readable with 2,000 classes."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} ... and {len(items) - limit} more"
