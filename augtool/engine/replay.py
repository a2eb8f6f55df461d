"""``verify --regenerate``: replay a recorded run on RAW and compare it with the output.

The recorded options rebuild the run (:meth:`ExpandOptions.from_provenance`);
it is made again into a temporary folder, and every source, output and
annotation file is compared by hash, sources first: a changed source is the
cause of the outputs that differ after it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from augtool.errors import InputError
from augtool.store.guard import shown
from augtool.store.schema import read_manifest, read_recipe

if TYPE_CHECKING:
    from collections.abc import Callable

    from augtool.engine.verify import VerifyReport
    from augtool.progress import Progress, Reporter

    #: Reads an HDF5 output's records and attributes (``verify``'s own reader).
    ReadHdf5 = Callable[[Path, Progress], tuple[list[dict], VerifyReport, dict]]


def regenerate(
    path: Path,
    raw: Path,
    recipe: dict,
    records: list[dict],
    report: VerifyReport,
    workers: int,
    reporter: Reporter,
    plugins: tuple[str, ...],
    read_hdf5: ReadHdf5,
) -> None:
    """Make the output at ``path`` again from ``raw`` and add every difference to ``report``.

    Args:
        path: The output being verified.
        raw: The folder of sources to replay the recorded run on.
        recipe: The output's recorded attributes (``augtool.json``).
        records: Its rows (manifest or HDF5 columns).
        report: Where the problems go; ``regenerated`` is set when the replay ran.
        workers: Worker processes of the replay.
        reporter: Progress of the replay (its warnings are dropped).
        plugins: Modules named by the user (``--plugin``) for a recipe's plug-in steps.
        read_hdf5: Reads the replayed HDF5 file's records and attributes.

    Raises:
        InputError: If the recorded annotations are not where the run recorded them.
    """
    from augtool.engine.expand import expand
    from augtool.engine.options import ExpandOptions

    options = ExpandOptions.from_provenance(recipe.get("recipe") or {}, workers, plugins)
    _check_recorded_annotations(options.annotations)
    report.version_differences = _version_differences(recipe)
    if report.version_differences:
        reporter.warn(
            "regenerate: this output was made with other library versions ("
            + ", ".join(report.version_differences)
            + "); bytes that differ below are then likely theirs, not a change to the data. "
            "Install the recorded versions to check the bytes (docs/reproducibility.md)"
        )
    tmpdir = Path(tempfile.mkdtemp(prefix="augtool-verify-"))
    try:
        fresh_path = tmpdir / path.name
        expand(raw, fresh_path, options, _ProgressOnly(reporter))
        if fresh_path.is_dir():
            fresh = read_manifest(fresh_path)
            old_files = (recipe.get("annotations") or {}).get("files") or {}
            new_files = (read_recipe(fresh_path).get("annotations") or {}).get("files") or {}
            _compare(
                [{"name": k, "sha256": v} for k, v in old_files.items()],
                [{"name": k, "sha256": v} for k, v in new_files.items()],
                report,
            )
        else:
            fresh, _, fresh_attrs = read_hdf5(fresh_path, reporter)
            old_sets = (recipe.get("annotations") or {}).get("datasets") or {}
            new_sets = (fresh_attrs.get("annotations") or {}).get("datasets") or {}
            _compare(
                [{"name": k, "sha256": v} for k, v in old_sets.items()],
                [{"name": k, "sha256": v} for k, v in new_sets.items()],
                report,
            )
        _compare_sources(records, fresh, report)
        _compare(records, fresh, report)
        report.regenerated = True
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


class _ProgressOnly:
    """A reporter that passes progress on and drops warnings."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def start(self, phase: str, total: int) -> None:
        """Pass on."""
        self.progress.start(phase, total)

    def advance(self, n: int) -> None:
        """Pass on."""
        self.progress.advance(n)

    def warn(self, message: str) -> None:
        """Drop."""


def _version_differences(recipe: dict) -> list[str]:
    """The recorded byte-deciding library versions that differ from this machine's."""
    import cv2

    from augtool import __version__
    from augtool.versions import distribution_version, recorded_differences

    versions = recipe.get("versions")
    if isinstance(versions, str):
        versions = json.loads(versions)
    if not isinstance(versions, dict):
        return []
    running = {
        "augtool": __version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "albumentations": distribution_version("albumentations") or "",
    }
    return [shown(difference) for difference in recorded_differences(versions, running)]


def _check_recorded_annotations(annotations: str | None) -> None:
    """Refuse recorded ``--annotations`` that are not there, saying why (kept as typed).

    Raises:
        InputError: Naming the path and, for a relative one, where to run ``verify`` from.
    """
    if annotations is not None and not Path(annotations).exists():
        where = (
            "it was moved or deleted: put it back where it was"
            if Path(annotations).is_absolute()
            else "it was recorded as typed, relative to the folder expand ran in: run verify "
            "from there"
        )
        raise InputError(
            f"{annotations}: the annotations this output was made from are not there; {where}"
        )


#: What ``--regenerate`` says of a source, then of an output, only recorded, only made now,
#: or hashed apart (``{}``: its name).
_SOURCE_SAYS = (
    "source {} is missing from RAW",
    "source {} is new in RAW",
    "source {} has changed in RAW",
)
_OUTPUT_SAYS = (
    "the recipe no longer produces {}",
    "the recipe now also produces {}",
    "different bytes for {}",
)


def _compare_sources(recorded: Iterable[dict], fresh: Iterable[dict], report: VerifyReport) -> None:
    """Name the sources in RAW that are not those recorded: the cause of the differences after."""
    old, new = (
        {shown(r["source"]): r["source_sha256"] for r in rows} for rows in (recorded, fresh)
    )
    _differences(old, new, report, _SOURCE_SAYS)


def _compare(recorded: Iterable[dict], fresh: Iterable[dict], report: VerifyReport) -> None:
    old, new = ({r["name"]: r["sha256"] for r in rows} for rows in (recorded, fresh))
    _differences(old, new, report, _OUTPUT_SAYS)


def _differences(
    old: dict[str, str], new: dict[str, str], report: VerifyReport, say: tuple[str, str, str]
) -> None:
    """One ``regenerate:`` problem per name only in ``old``, only in ``new``, or hashed apart.

    ``say`` holds the three messages, in that order, ``{}`` standing for the name.
    """
    missing, added, changed = say
    for name in sorted(old.keys() - new.keys()):
        report.problems.append("regenerate: " + missing.format(name))
    for name in sorted(new.keys() - old.keys()):
        report.problems.append("regenerate: " + added.format(name))
    for name in sorted(old.keys() & new.keys()):
        if old[name] != new[name]:
            report.problems.append("regenerate: " + changed.format(name))
