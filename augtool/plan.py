"""The expansion plan (SPEC §3): which outputs each source gets, pure and exact.

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

from augtool.defaults import DEFAULT_TARGET, MAX_OUTPUTS
from augtool.errors import OptionError
from augtool.pipeline.steps import ORIGINAL_NAME, PCA


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
