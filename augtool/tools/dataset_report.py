"""``augtool report``: one HTML page that shows a dataset to the curator who judges it.

The page is self-contained: its CSS is inline, it runs no script, and every
picture (plots, thumbnails) is embedded as a ``data:`` URI, so it opens offline
and can be mailed or archived as one file. It reads four kinds of input:

* an ``augtool expand`` output, folder or HDF5 (read with
  :func:`augtool.store.dataset.open_dataset`, checked with :func:`augtool.engine.verify.verify`);
* a detection output of ``expand --annotations`` (the same, plus the boxes read
  back from the annotation files written beside the images), or a segmentation
  output of ``expand --segmentation`` (its masks, counted as instances and
  drawn as outlines);
* a folder of class folders (``RAW/<class>/<image>``), such as the output of
  ``augtool cells`` (groups from its ``cells.csv``);
* a folder of annotated images (smears) with their VOC, COCO or YOLO annotations.

Reading and drawing are separate. :func:`gather` turns the input into a
:class:`Gathered`; each entry of :data:`SECTIONS` is a function that takes the
:class:`Gathered` and returns a :class:`Section` of tables, plots, thumbnails
and text (or ``None`` when it does not apply), and :func:`render_page` fills the
template ``report_page.html`` with them. Adding a section is one function
added to :data:`SECTIONS`.

Plots are drawn with matplotlib (``matplotlib.figure.Figure``, no pyplot and
no global state) and the page with jinja2, autoescaping every value, so a file
name or class name from the data can never become markup. Both are the
optional extra ``report`` and are imported here only, when a report is made.
Class colours come from :mod:`augtool.drawing`, as in ``augtool preview``.
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from augtool import __version__
from augtool.errors import OptionError, OutputError, OutputRefused, literal
from augtool.tools.report_boxes import (
    boxes_section,
    health_section,
)
from augtool.tools.report_gather import (
    Gathered,
    gather,
)
from augtool.tools.report_items import (
    Section,
    legend_item,
    require_extra,
)
from augtool.tools.report_sections import (
    counts_section,
    groups_section,
    provenance_section,
    samples_section,
    sizes_section,
    test_reads_section,
    transforms_section,
    verify_section,
)

#: Template of the page, beside this module.
TEMPLATE = "report_page.html"


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes:
        out: The HTML file.
        kind: The kind of dataset (see :class:`Gathered`).
        images: Images counted.
        sections: Titles of the sections on the page.
        bytes: Size of the page.
    """

    out: Path
    kind: str
    images: int
    sections: tuple[str, ...]
    bytes: int


#: The page's sections, in order. Each takes the :class:`Gathered` dataset and
#: returns a :class:`Section`, or None when it does not apply to the input.
SECTIONS: tuple[Callable[[Gathered], Section | None], ...] = (
    counts_section,
    groups_section,
    transforms_section,
    samples_section,
    sizes_section,
    boxes_section,
    health_section,
    test_reads_section,
    provenance_section,
    verify_section,
)


def build_sections(
    g: Gathered, sections: Sequence[Callable[[Gathered], Section | None]] = SECTIONS
) -> list[Section]:
    """Run the section functions on a gathered dataset; those that apply, in order."""
    require_extra()
    return [s for s in (make(g) for make in sections) if s is not None]


def render_page(g: Gathered, sections: Sequence[Section], command: str = "") -> str:
    """The HTML page of a gathered dataset.

    Args:
        g: The dataset.
        sections: Its sections (:func:`build_sections`).
        command: The command line that made the report (shown at the foot).

    Returns:
        The page, one self-contained HTML document.
    """
    require_extra()
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("augtool.tools", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template(TEMPLATE)
    kinds = {
        "expand": "expand output",
        "detection": "detection output of expand",
        "segmentation": "segmentation output of expand",
        "folder": "folder of class folders",
        "annotated": "annotated images with masks" if g.masks else "annotated images",
    }
    facts = [("images", str(len(g.items))), ("classes", ", ".join(g.classes))]
    if g.detection:
        what = "mask classes" if g.masks else "box classes"
        facts.append((what, ", ".join(g.box_classes)))
    facts.append(("splits", ", ".join(g.splits())))
    if g.folds():
        facts.append(("folds", str(len(g.folds()))))
    if g.verify_ok is not None:
        facts.append(("verify", "ok" if g.verify_ok else "problems"))
    return template.render(
        title=g.path.name or str(g.path),
        path=str(g.path),
        kind=kinds[g.kind],
        facts=facts,
        legend=None if g.detection or len(g.classes) < 2 else legend_item(g.classes),
        sections=list(sections),
        command=command,
        made=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        python=platform.python_version(),
    )


def write_report(
    dataset: str | Path,
    out: str | Path | None = None,
    *,
    annotations: str | Path | None = None,
    annotation_format: str | None = None,
    names: str | Path | None = None,
    raw: str | Path | None = None,
    group_regex: str | None = None,
    overwrite: bool = False,
    command_line: str = "",
    segmentation: bool = False,
) -> ReportResult:
    """Read a dataset and write its report page.

    Args:
        dataset: The dataset (see :func:`gather`).
        out: The ``.html`` file to write (atomically); default ``NAME-report.html``
            in the current folder (not inside the dataset, which verify checks).
        annotations: See :func:`gather`.
        annotation_format: See :func:`gather`.
        names: See :func:`gather`.
        raw: See :func:`gather`.
        group_regex: See :func:`gather`.
        overwrite: Replace ``out`` if it exists.
        command_line: The command line, shown on the page.
        segmentation: See :func:`gather`.

    Returns:
        What was written.

    Raises:
        InputError: If the dataset cannot be read.
        OptionError: For options that do not fit the input, or ``out`` not ending in ``.html``.
        OutputError: If ``out`` exists (without ``overwrite``) or cannot be written.
        AugtoolError: If matplotlib or jinja2 is not installed.
    """
    from augtool.store.publish import write_bytes

    if out is None:
        name = Path(dataset).stem if Path(dataset).suffix else Path(dataset).name
        out = f"{name or 'dataset'}-report.html"
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise OptionError("out", f"must be an .html file, got {out}")
    if out.is_dir():
        raise OutputRefused(f"{out} is a folder; give a file name ending in .html")
    if out.exists() and not overwrite:
        raise OutputRefused(f"{literal(out)} exists; pass {{overwrite}} to replace it", refs=True)
    if not out.parent.is_dir():
        raise OutputRefused(f"{out.parent}: no such folder")
    require_extra()
    g = gather(
        dataset, annotations, annotation_format, names, raw, group_regex, segmentation=segmentation
    )
    sections = build_sections(g)
    data = render_page(g, sections, command_line).encode("utf-8")
    try:
        write_bytes(out, data)
    except OSError as err:
        raise OutputError(f"writing {out} failed: {err.strerror or err}") from err
    return ReportResult(out, g.kind, len(g.items), tuple(s.title for s in sections), len(data))
