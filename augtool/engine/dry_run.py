"""``expand --dry-run``: the scan and the plan of a run, counted, nothing written.

The scan, its warnings (skipped, ignored and identical files) and the plan's
warnings are the real run's: :func:`augtool.engine.expand.expand` calls the
same :func:`scan_and_plan`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from augtool.engine.backends import default_workers
from augtool.engine.scan import ScanResult, scan
from augtool.errors import (
    Message,
    literal,
    template_of,
)
from augtool.pipeline.recipe_spec import Recipe

if TYPE_CHECKING:
    from augtool.engine.detection import DetectionInput
    from augtool.engine.segmented import SegmentationInput
from augtool.engine.options import ExpandOptions
from augtool.engine.plan import PlannedRun, list_briefly, plan_run, row_label
from augtool.progress import NoProgress, Reporter


@dataclass(frozen=True)
class DryRun:
    """What ``expand`` would write: the plan, counted.

    Attributes:
        run: The plan (sources, splits, every output's name).
        counts: Outputs per (split, class); per (``fold k``, class) with ``folds``.
        per_transform: Outputs per transform name, in plan order of first use.
        recipe: The transform recipe, or None for the paper's transforms.
    """

    run: PlannedRun
    counts: dict[tuple[str, str], int]
    per_transform: dict[str, int]
    recipe: Recipe | None

    @property
    def total(self) -> int:
        """Outputs planned."""
        return len(self.run.jobs)


def dry_run(raw: str | Path, options: ExpandOptions, reporter: Reporter | None = None) -> DryRun:
    """Scan RAW and plan the run as :func:`expand` would, writing nothing.

    The scan, the scan's warnings (skipped, ignored and identical files) and the
    plan's warnings are the real run's: the same functions make them.

    Args:
        raw: ``RAW/<class>/<image>`` folder (or images, with ``annotations``).
        options: The run's options.
        reporter: Receives the warnings; silent by default.

    Returns:
        The plan and its counts.

    Raises:
        InputError: For unusable input.
        OptionError: For invalid options.
    """
    reporter = reporter or NoProgress()
    options.validate()
    workers = options.workers or default_workers()
    run, _ = scan_and_plan(Path(raw), options, workers, reporter)
    return DryRun(
        run=run,
        counts=counts_per_row(run),
        per_transform=dict(Counter(j.transform for j in run.jobs)),
        recipe=options.pipeline if options.recipe_named else None,
    )


def scan_and_plan(
    raw: Path,
    options: ExpandOptions,
    workers: int,
    reporter: Reporter,
    keep_size: int | None = None,
) -> tuple[PlannedRun, DetectionInput | SegmentationInput | None]:
    """Scan RAW, report what the scan found, and plan: shared by the run and the dry run.

    ``keep_size`` (the run, not the dry run): keep the sources decoded for outputs
    of that side (:func:`augtool.engine.scan.scan`), so the render need not decode them.
    """
    reporter.start("scan", 0)
    detection: DetectionInput | SegmentationInput | None = None
    if options.annotations is not None:
        scan_result, detection = scan_annotated_images(raw, options)
        for warning in detection.warnings:
            reporter.warn(warning)
    else:
        scan_result = scan(
            raw,
            group_regex=options.group_regex,
            skip_invalid=options.skip_invalid,
            max_pixels=options.max_pixels,
            workers=workers,
            progress=None,
            keep_size=keep_size,
        )
    _report_scan(scan_result, reporter)
    return plan_run(scan_result, options, reporter), detection


def counts_per_row(run: PlannedRun) -> dict[tuple[str, str], int]:
    """Outputs per (row label, class), sorted."""
    counts = Counter(
        (row_label(run, i), run.scan.sources[j.source].class_name) for i, j in enumerate(run.jobs)
    )
    return dict(sorted(counts.items()))


def scan_annotated_images(
    raw: Path, options: ExpandOptions
) -> tuple[ScanResult, DetectionInput | SegmentationInput]:
    """The sources and their masks (``options.segmentation``) or boxes, as RAW's annotations say."""
    if options.segmentation:
        from augtool.engine.segmented import scan_segmented as read
    else:
        from augtool.engine.detection import scan_annotated as read
    assert options.annotations is not None and options.annotation_format is not None
    return read(
        raw,
        options.annotation_format,
        options.annotations,
        options.names,
        options.group_regex,
        options.skip_invalid,
        options.max_pixels,
    )


def _report_scan(scan_result: ScanResult, reporter: Reporter) -> None:
    if scan_result.skipped:
        listing = "".join(f"\n  {literal(p)}: {template_of(why)}" for p, why in scan_result.skipped)
        reporter.warn(
            Message(
                f"skipped {len(scan_result.skipped)} invalid file(s) (recorded in the output):"
                + listing
            )
        )
    if scan_result.ignored:
        reporter.warn(
            f"ignored {len(scan_result.ignored)} file(s) without an image suffix, or folder "
            f"links (not followed): {list_briefly(scan_result.ignored)}"
        )
    for paths in scan_result.duplicates:
        classes = {p.split("/", 1)[0] for p in paths}
        note = " in DIFFERENT classes" if len(classes) > 1 else ""
        reporter.warn(f"identical files{note} (kept in one split): {', '.join(paths)}")
