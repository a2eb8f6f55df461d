"""What the commands print of expand, its dry run and cells: pure functions to text.

As :mod:`model.report` is for training: the commands only print what these
return (verify's lines are :class:`augtool.VerifyReport`'s own). They read the
results the public API returns, and nothing else of the library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from augtool.defaults import sort_splits
from augtool.errors import fill, render_text

if TYPE_CHECKING:
    from augtool.engine.dry_run import DryRun
    from augtool.engine.expand import ExpandSummary
    from augtool.engine.scan import ScanResult
    from augtool.tools.cells import CellsSummary


def _plain(parameter: str) -> str:
    return parameter


def counts_table(counts: Mapping[tuple[str, str], int], classes: Sequence[str]) -> str:
    """Images per split (rows) and class (columns), with totals.

    Args:
        counts: Images per (split, class); splits may also be ``fold k``.
        classes: Column order.

    Returns:
        The table, one line per split plus a header, and a total row when there
        is more than one split.
    """
    splits = sort_splits(s for s, _ in counts)
    width = max([len(c) for c in classes] + [6])
    lines = ["".ljust(8) + "".join(c.rjust(width + 2) for c in [*classes, "total"])]
    for sp in splits:
        row = [counts.get((sp, c), 0) for c in classes]
        lines.append(sp.ljust(8) + "".join(str(v).rjust(width + 2) for v in [*row, sum(row)]))
    if len(splits) > 1:
        col = [sum(counts.get((sp, c), 0) for sp in splits) for c in classes]
        lines.append("total".ljust(8) + "".join(str(v).rjust(width + 2) for v in [*col, sum(col)]))
    return "\n".join(lines)


def grouping_line(scan: ScanResult) -> str | None:
    """``split grouped by <regex>: N groups``, or None when the sources are not grouped."""
    if not scan.grouped_by:
        return None
    groups = len({s.group for s in scan.sources})
    return f"split grouped by {scan.grouped_by}: {groups} groups"


def dry_run_lines(dry: DryRun, recipe_label: str | None = None) -> list[str]:
    """What ``expand --dry-run`` prints: totals, the table, grouping, recipe, transforms.

    Args:
        dry: The dry run.
        recipe_label: How to name a recipe that has no name (e.g. its file).
    """
    scan = dry.run.scan
    lines = [
        f"plan: {dry.total} images from {len(scan.sources)} sources (nothing written)",
        counts_table(dry.counts, scan.classes),
    ]
    grouped = grouping_line(scan)
    if grouped:
        lines.append(grouped)
    if dry.recipe is not None:
        name = dry.recipe.name or recipe_label or "recipe"
        lines.append(f"recipe: {name} ({len(dry.recipe.steps)} transforms)")
    lines.append("transforms: " + ", ".join(f"{k} {v}" for k, v in dry.per_transform.items()))
    return lines


def expand_lines(summary: ExpandSummary, name: Callable[[str], str] = _plain) -> list[str]:
    """What ``expand`` prints after a run: what was written, the table, boxes, grouping.

    Args:
        summary: The run's summary.
        name: How to write a parameter's name (the command line gives its flag).
    """
    options = summary.options
    assert options is not None
    kind = "HDF5" if summary.output_format == "hdf5" else options.image_format.upper()
    resumed = f", {summary.resumed} of them from the interrupted run" if summary.resumed else ""
    lines = [
        f"wrote {summary.total} images ({kind} {options.size}x"
        f"{options.height or options.size}) to {summary.out} in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.0f} images/s{resumed})",
        counts_table(summary.counts, summary.scan.classes),
    ]
    if summary.rendered_on is not None:
        lines.insert(1, f"rendered on {summary.rendered_on}")
    if summary.boxes is not None and summary.boxes.get("masks"):
        kept, total = summary.boxes["instances_out"], summary.boxes["instances_in"]
        maps = summary.boxes.get("class_maps", 0)
        written = [f"{maps} class-index maps"] if maps else []
        written += [f"{kept} instances"] if total else []
        template = f"masks: {' and '.join(written)} written in {options.annotation_format}"
        if total:
            template += (
                f" ({total - kept} of {total} left out: under {{min_visibility}} "
                f"{options.min_visibility:g} of their area inside; boxes {options.mask_boxes})"
            )
        lines.append(fill(template, name))
    elif summary.boxes is not None:
        boxes_in, boxes_out = summary.boxes["boxes_in"], summary.boxes["boxes_out"]
        template = (
            f"boxes: {boxes_out} written in {options.annotation_format} "
            f"({boxes_in - boxes_out} of {boxes_in} left out: under {{min_visibility}} "
            f"{options.min_visibility:g} inside, or under 2 px)"
        )
        lines.append(fill(template, name))
    grouped = grouping_line(summary.scan)
    if grouped:
        lines.append(grouped)
    return lines


def cells_lines(summary: CellsSummary, name: Callable[[str], str] = _plain) -> list[str]:
    """What ``cells`` prints: cells written, per class cells and smears, what was left out.

    Args:
        summary: The run's summary.
        name: How to write a parameter's name (the command line gives its flag).
    """
    width = max([len(c) for c in summary.counts] + [5])
    lines = [
        f"wrote {summary.total} cells to {summary.out} in {summary.seconds:.1f} s",
        "class".ljust(width) + "  cells  smears",
    ]
    for cls, n in summary.counts.items():
        lines.append(f"{cls.ljust(width)}  {n:5d}  {summary.smears[cls]:6d}")
    lines += [f"left out {n}: {render_text(why, name)}" for why, n in summary.dropped.items()]
    return lines
