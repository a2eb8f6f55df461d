"""``augtool expand``: scan -> split -> plan -> parallel workers -> one writer.

The orchestration only: what each step does lives in ``scan``, ``split``,
``plan`` (this package), ``render`` (the workers, over the one pipeline) and
the writers of ``augtool.store``.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from augtool import __version__, defaults
from augtool.engine.backends import Backend, LocalBackend, default_workers
from augtool.engine.dry_run import counts_per_row, scan_and_plan
from augtool.engine.options import ExpandOptions, resolve_output_format
from augtool.engine.plan import PlannedRun
from augtool.engine.pool import fork_available
from augtool.engine.render import Rendered, RenderSettings, SourceTask, preloaded
from augtool.engine.scan import ScanResult
from augtool.errors import (
    Interrupted,
    Message,
    complete_after_interrupt,
    literal,
)
from augtool.progress import NoProgress, Reporter
from augtool.store.publish import check_apart, check_output
from augtool.store.schema import SCHEMA_VERSION
from augtool.store.writers import StagedWriter, open_writer

if TYPE_CHECKING:
    from augtool.engine.detection import DetectionInput, OutputBoxes
    from augtool.engine.segmented import OutputMasks, SegmentationInput


#: Keys of a journal entry that are not manifest columns: a detection output's boxes,
#: a segmentation output's masks.
JOURNAL_ONLY = ("index", "boxes", "box_ids", "masks", "semantic")


@dataclass
class ExpandSummary:
    """What a run produced.

    Attributes:
        out: The output path.
        total: Images in the output.
        resumed: Images found done in a partial output (``--resume``), not rendered again.
        counts: Images per (split, class); per (``fold k``, class) with ``--folds``.
        seconds: Wall time.
        scan: The scan result (sources, skipped files, duplicates).
        output_format: ``folder`` or ``hdf5``.
        boxes: Detection runs: the annotation record (``boxes_in``, ``boxes_out``,
            ``files``); segmentation runs: the mask record (``masks``,
            ``instances_in``, ``instances_out``, ``files``); None otherwise.
        rendered_on: Where the sources were rendered, when not on this machine
            (a Dask cluster's description); None for local workers.
        options: The run's options.
    """

    out: Path
    total: int
    resumed: int
    counts: dict[tuple[str, str], int]
    seconds: float
    scan: ScanResult
    output_format: str
    boxes: dict | None = None
    rendered_on: str | None = None
    options: ExpandOptions | None = None

    @property
    def images_per_second(self) -> float:
        """Throughput of this run (images rendered now, over its wall time)."""
        rendered = self.total - self.resumed
        return rendered / self.seconds if self.seconds > 0 else float("inf")


def unused_options(options: ExpandOptions, output_format: str) -> list[Message]:
    """Warnings for options set away from their defaults that this output does not use.

    Args:
        options: The run's options.
        output_format: The format OUT resolves to (``folder`` or ``hdf5``).
    """
    said = []
    if output_format == "folder" and options.compression != defaults.DEFAULT_COMPRESSION:
        said.append(
            Message("{compression} is ignored: it compresses HDF5 output, and {out} is a folder")
        )
    if output_format == "hdf5" and options.image_format != defaults.DEFAULT_IMAGE_FORMAT:
        said.append(Message("{image_format} is ignored: HDF5 output holds pixels, not image files"))
    jpeg = output_format == "folder" and options.image_format == "jpg"
    if not jpeg and options.jpeg_quality != defaults.DEFAULT_JPEG_QUALITY:
        said.append(
            Message(
                "{jpeg_quality} is ignored: it applies to JPEG files ({image_format} jpg, "
                "folder output)"
            )
        )
    return said


def expand(
    raw: str | Path,
    out: str | Path,
    options: ExpandOptions,
    reporter: Reporter | None = None,
    command_line: str = "",
    backend: Backend | None = None,
) -> ExpandSummary:
    """Materialize the augmented dataset of RAW into OUT.

    Args:
        raw: ``RAW/<class>/<image>`` folder.
        out: Output folder, or ``.h5`` file.
        options: The run's options.
        reporter: Progress and warnings; silent by default.
        command_line: Recorded in the output for provenance.
        backend: Where the per-source work runs; joblib processes on this
            machine (``options.workers``) by default. Never changes the bytes.

    Returns:
        A summary of what was written.

    Raises:
        InputError: For unusable input (nothing is written).
        OptionError: For invalid options (nothing is written).
        OutputError: If OUT exists and ``overwrite`` is false, or writing fails.
    """
    started = time.perf_counter()
    reporter = reporter or NoProgress()
    raw, out = Path(raw), Path(out)
    output_format = resolve_output_format(out, options)
    options.validate(output_format)
    check_apart(
        out, {"raw": raw, "annotations": options.annotations}, scanned=("raw", "annotations")
    )
    check_output(out, options.overwrite, options.resume)
    for warning in unused_options(options, output_format):
        reporter.warn(warning)
    workers = options.workers or default_workers()
    backend = backend or LocalBackend(workers)

    # Local workers see the scan's decoded sources (in-process, or forked after the scan).
    local = isinstance(backend, LocalBackend) and (backend.workers <= 1 or fork_available())
    keep = max(options.size, options.height or 0) if local else None
    run, detection = scan_and_plan(raw, options, workers, reporter, keep_size=keep)
    scan_result = run.scan

    encoding = "array" if output_format == "hdf5" else options.image_format
    settings = RenderSettings(
        size=options.size,
        seed=options.seed,
        recipe=options.pipeline,
        encoding=encoding,
        jpeg_quality=options.jpeg_quality,
        pca=options.pca,
        height=options.height,
        letterbox=options.letterbox,
        min_visibility=options.min_visibility,
        tight_boxes=options.mask_boxes == "tight",
    )
    compression = None if options.compression == "none" else options.compression
    writer = open_writer(
        out,
        output_format,
        fingerprint=fingerprint(run, options, output_format),
        resume=options.resume,
        n=len(run.jobs),
        size=options.size,
        compression=compression,
    )
    notice = _partial_notice(writer, options.resume)
    if notice is not None:
        reporter.warn(notice)
    from augtool.engine.detection import OutputBoxes
    from augtool.engine.segmented import OutputMasks

    records: list[dict | None] = [None] * len(run.jobs)
    # Detection (segmentation): the boxes (masks) workers sent back, by plan index.
    boxes: dict[int, OutputBoxes | OutputMasks] = {}
    try:
        with writer:
            for index, record in writer.resumed.items():
                records[index] = {k: v for k, v in record.items() if k not in JOURNAL_ONLY}
                if "masks" in record:
                    boxes[index] = OutputMasks.from_journal(record)
                elif "boxes" in record:
                    boxes[index] = OutputBoxes.from_journal(record)
            reporter.start("expand", len(run.jobs))
            reporter.advance(len(writer.resumed))
            with preloaded(scan_result.pixels), contextlib.ExitStack() as stack:
                scan_result.pixels.clear()  # held by the render until it ends, not by the result
                tasks = _tasks(run, raw, detection, skip=set(writer.resumed))
                batches = backend.render(tasks, settings)
                if hasattr(batches, "close"):  # a generator: stop its workers on the way out
                    stack.callback(batches.close)
                for batch in batches:
                    new = []
                    for item in batch:
                        writer.write(item.index, run.names[item.index], item.payload)
                        records[item.index] = _record(run, item, options.seed)
                        journal = {"index": item.index, **records[item.index]}
                        found: OutputBoxes | OutputMasks | None = item.masks
                        if found is None and item.boxes is not None and item.ids is not None:
                            found = OutputBoxes(item.boxes, item.ids)
                        if found is not None:
                            boxes[item.index] = found
                            journal.update(found.to_journal())
                        new.append(journal)
                    writer.commit(new)
                    reporter.advance(len(batch))
            attrs = _attributes(run, options, output_format, command_line)
            if detection is not None:
                attrs["annotations"] = _write_boxes(run, records, boxes, detection, options, writer)
            writer.finish([r for r in records if r is not None], _source_rows(run), attrs)
            summary = ExpandSummary(
                out=out,
                total=len(run.jobs),
                resumed=len(writer.resumed),
                counts=counts_per_row(run),
                seconds=time.perf_counter() - started,
                scan=scan_result,
                output_format=output_format,
                boxes=attrs.get("annotations"),
                rendered_on=None if isinstance(backend, LocalBackend) else _describe(backend),
                options=options,
            )
    except KeyboardInterrupt:
        # After the writer published OUT (its own exit, this function's return), a
        # stop signal can no longer undo it: the run ends saying OUT is complete.
        if not writer.published:
            raise
        raise Interrupted(complete_after_interrupt(out)) from None
    return summary


def _write_boxes(
    run: PlannedRun,
    records: Sequence[dict | None],
    boxes: Mapping[int, OutputBoxes | OutputMasks],
    detection: DetectionInput | SegmentationInput,
    options: ExpandOptions,
    writer: StagedWriter,
) -> dict:
    """Write the annotation (mask) files of every output; return their augtool.json record."""
    from augtool.engine.detection import DetectionInput, OutputBoxes, detection_files
    from augtool.engine.segmented import OutputMasks, segmentation_files, write_hdf5_masks
    from augtool.store.writers import Hdf5Writer

    size = (options.size, options.height or options.size)
    if isinstance(detection, DetectionInput):
        found = [(r, boxes[i]) for i, r in enumerate(records) if r is not None]
        result = detection_files(
            [(r, b) for r, b in found if isinstance(b, OutputBoxes)], detection, size
        )
        for name, text in result.files.items():
            writer.write(-1, name, text.encode("utf-8"))
        return result.record(options.min_visibility, detection.fmt, detection.classes)
    masks = [(r, m) for i, r in enumerate(records) if r is not None for m in [boxes[i]]]
    found = [(r, m) for r, m in masks if isinstance(m, OutputMasks)]
    if isinstance(writer, Hdf5Writer):
        written = write_hdf5_masks(writer, found, detection, options.size)
    else:
        written = segmentation_files(found, detection, size)
    for name, data in written.files.items():
        writer.write(-1, name, data)
    return written.record(
        detection.fmt, detection.classes, options.min_visibility, options.mask_boxes
    )


def _tasks(
    run: PlannedRun,
    raw: Path,
    detection: DetectionInput | SegmentationInput | None,
    skip: set[int],
) -> list[SourceTask]:
    """One task per source with outputs still to render, with its boxes (masks) if it has them."""
    from augtool.engine.segmented import SegmentationInput, SourceMasks

    by_source: dict[int, list[tuple[int, int, str]]] = {}
    for i, job in enumerate(run.jobs):
        by_source.setdefault(job.source, []).append((i, job.copy, job.transform))
    tasks = []
    for s, jobs in by_source.items():
        if all(i in skip for i, _, _ in jobs):
            continue
        src = run.scan.sources[s]
        corners = masks = None
        if isinstance(detection, SegmentationInput):
            masks = SourceMasks.of(detection.masks[src.path])
        elif detection is not None:
            corners = tuple((b.x0, b.y0, b.x1, b.y1) for b in detection.boxes[src.path].boxes)
        path = str(raw / src.path)
        tasks.append(
            SourceTask(path, src.sha256, src.width, src.height, tuple(jobs), corners, masks)
        )
    return tasks


def _partial_notice(writer: StagedWriter, resume: bool) -> Message | None:
    """What a run without ``resume`` does with the partial output an interrupted run left."""
    held = writer.leftover()
    if resume or held is None:
        return None
    return Message(
        f"an interrupted run left a partial output in {literal(writer.tmp)} holding "
        f"{held:d} finished image(s); this run starts over and deletes it (to continue it "
        "instead, stop now and run the same command with {resume})"
    )


def fingerprint(run: PlannedRun, options: ExpandOptions, output_format: str) -> str:
    """Hash of everything that determines the output bytes (for ``--resume``)."""
    import hashlib
    import json

    key = {
        "recipe": options.provenance(),
        "format": output_format,
        "sources": [(s.path, s.sha256) for s in run.scan.sources],
        "names": run.names,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _record(run: PlannedRun, item: Rendered, seed: int) -> dict:
    job = run.jobs[item.index]
    src = run.scan.sources[job.source]
    return {
        "name": run.names[item.index],
        "split": run.split_of_job[item.index],
        "class": src.class_name,
        "label": src.label,
        "source": src.path,
        "source_sha256": src.sha256,
        "group": src.group,
        "copy": job.copy,
        "transform": job.transform,
        "params": item.params,
        "seed": seed,
        "sha256": item.sha256,
        "fold": "" if run.fold_of_source is None else run.fold_of_source[job.source],
    }


def _source_rows(run: PlannedRun) -> list[dict]:
    return [
        {
            "path": s.path,
            "sha256": s.sha256,
            "class": s.class_name,
            "label": s.label,
            "group": s.group,
            "split": run.split_of_source[i],
            "fold": "" if run.fold_of_source is None else run.fold_of_source[i],
        }
        for i, s in enumerate(run.scan.sources)
    ]


def _attributes(
    run: PlannedRun, options: ExpandOptions, output_format: str, command_line: str
) -> dict:
    import cv2
    import numpy as np

    counts = Counter(run.split_of_job)
    versions = {
        "augtool": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
    if options.pipeline.uses_albumentations:
        from augtool.pipeline.albu import import_albumentations

        versions["albumentations"] = import_albumentations().__version__
    fold_counts: dict[str, int] = {}
    if run.fold_of_source is not None:
        per_fold = Counter(run.fold_of_source[j.source] for j in run.jobs)
        fold_counts = {str(k): per_fold[k] for k in range(options.folds)}
    return {
        "schema_version": SCHEMA_VERSION,
        "class_names": list(run.scan.classes),
        "seed": options.seed,
        "size": options.size,
        "tool_version": __version__,
        "command_line": command_line,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "format": output_format,
        "split_by": options.split_by,
        "recipe": options.provenance(),
        "counts": dict(sorted(counts.items())),
        "folds": options.folds,
        "fold_counts": fold_counts,
        "skipped": [{"path": p, "reason": why} for p, why in run.scan.skipped],
        "duplicates": run.scan.duplicates,
        "versions": versions,
    }


def _describe(backend: Backend) -> str:
    """One line about where a backend renders (its ``describe()``, or its kind)."""
    describe = getattr(backend, "describe", None)
    return describe() if callable(describe) else type(backend).__name__
