"""``augtool verify``: prove an output is exactly what its manifest says.

Checks, for a folder or an HDF5 file: every image's hash matches its record,
nothing is missing or extra, no source or group sits in two splits (unless the
run split by image, the paper's protocol) or in two cross-validation folds
(``--folds``), and the counts are as recorded.
``regenerate`` replays the recorded recipe on RAW and compares every hash.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from augtool.errors import InputError
from augtool.progress import NoProgress
from augtool.store.guard import decode_checked, read_member, recorded_size, safe_name, shown
from augtool.store.schema import (
    DAMAGE,
    IMAGES,
    MANIFEST_NAME,
    PARTIAL_ATTR,
    RECIPE_NAME,
    read_hdf5_records,
    read_manifest,
    read_recipe,
)

if TYPE_CHECKING:
    from augtool.progress import Progress, Reporter

#: Problems listed in full; beyond this, a count.
MAX_LISTED = 50


@dataclass
class VerifyReport:
    """What ``verify`` found.

    Attributes:
        path: The output checked.
        output_format: ``folder`` or ``hdf5``.
        checked: Number of images whose hash was checked.
        problems: One line per problem; empty when everything holds.
        regenerated: True when the recipe was replayed and compared.
        version_differences: Before a replay, the byte-deciding libraries whose
            recorded version differs from this machine's (``"opencv 5.0.0 ->
            5.1.0"``); different bytes are then likely theirs, not the data's.
    """

    path: Path
    output_format: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    regenerated: bool = False
    version_differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def ok_line(self) -> str:
        """The one line of a passing ``verify``."""
        extra = ", regenerated from RAW with identical bytes" if self.regenerated else ""
        return f"ok: {self.checked} images in {self.path} match their records{extra}"

    def problem_lines(self, limit: int = MAX_LISTED) -> list[str]:
        """The problems, one line each (names from files escaped), then how many more."""
        lines = [shown(problem) for problem in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        return lines

    def failure(self) -> str:
        """The closing message of a failing ``verify``, naming other library versions if any."""
        message = f"{shown(self.path)}: {len(self.problems)} problem(s) found"
        if self.version_differences and self.regenerated:
            message += (
                " (made with other library versions: " + ", ".join(self.version_differences) + ")"
            )
        return message


def verify(
    path: str | Path,
    regenerate_raw: str | Path | None = None,
    workers: int = 0,
    reporter: Reporter | None = None,
    plugins: tuple[str, ...] = (),
) -> VerifyReport:
    """Check an ``augtool expand`` output against its own records.

    Args:
        path: Output folder or HDF5 file.
        regenerate_raw: When given, replay the recorded recipe on this RAW
            folder and require identical bytes.
        workers: Worker processes for the replay (0 = all cores).
        reporter: Told of the phases: ``verify`` (one step per image hashed), and
            with a replay expand's own phases, then ``verify replay``. The
            replay's warnings repeat what expand said when it made the output and
            are not passed on. ``None``: silent.
        plugins: Modules the user named (``--plugin``) that a recorded plug-in
            step of the replay may come from. Nothing the dataset names is
            imported: a recorded plug-in that neither these nor an installed
            package provide is refused.

    Returns:
        The report; ``report.ok`` tells whether everything holds.

    Raises:
        InputError: If ``path`` is not an augtool output at all.
    """
    reporter = reporter or NoProgress()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        report, records, recipe = _verify_folder(path, reporter)
    else:
        report, records, recipe = _verify_hdf5(path, reporter)
    if records is not None:
        _check_leakage(records, recipe, report)
        _check_counts(records, recipe, report)
        _check_folds(records, recipe, report)
    if regenerate_raw is not None and records is not None:
        from augtool.engine.replay import regenerate

        regenerate(
            path,
            Path(regenerate_raw),
            recipe,
            records,
            report,
            workers,
            reporter,
            plugins,
            read_hdf5=records_of_hdf5,
        )
    return report


# --- folder ---------------------------------------------------------------------------------


def _verify_folder(
    out: Path, progress: Progress, phase: str = "verify"
) -> tuple[VerifyReport, list[dict] | None, dict]:
    report = VerifyReport(out, "folder")
    if not (out / MANIFEST_NAME).is_file():
        read_manifest(out)  # raises: not an augtool output folder
    try:
        rows = read_manifest(out)
        recipe = read_recipe(out)
    except InputError as err:
        report.problems.append(str(err))
        return report, None, {}
    if not recipe:
        report.problems.append(f"{RECIPE_NAME} is missing")
    listed: set[str] = set()
    expected = recorded_size(recipe)
    progress.start(phase, len(rows))
    for row in rows:
        progress.advance(1)
        name = row["name"]
        if not safe_name(name):
            report.problems.append(f"manifest path escapes the output folder: {shown(repr(name))}")
            continue
        if name in listed:
            report.problems.append(f"listed twice in the manifest: {shown(name)}")
        listed.add(name)
        try:
            data = read_member(out, name)
        except FileNotFoundError:
            report.problems.append(f"missing: {shown(name)}")
            continue
        except InputError as err:  # a link out of OUT, a device, a huge file
            report.problems.append(str(err))
            continue
        except OSError as err:
            report.problems.append(f"unreadable: {shown(name)} ({err.strerror})")
            continue
        report.checked += 1
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            report.problems.append(f"content differs from the manifest: {shown(name)}")
        else:
            try:
                decode_checked(data, name, expected)
            except InputError as err:
                report.problems.append(f"not the image its record says: {err}")
        parts = PurePosixPath(name).parts
        if len(parts) >= 2 and parts[-2] != row["class"]:
            report.problems.append(
                f"in folder {shown(repr(parts[-2]))} but recorded as class "
                f"{shown(repr(row['class']))}: {shown(name)}"
            )
        if len(parts) == 3 and parts[0] != row["split"]:
            report.problems.append(
                f"in folder {shown(repr(parts[0]))} but recorded in split "
                f"{shown(repr(row['split']))}: {shown(name)}"
            )
    listed |= _check_annotation_files(out, recipe, report)
    for extra in sorted(_files(out) - listed - {MANIFEST_NAME, RECIPE_NAME}):
        report.problems.append(f"not in the manifest: {shown(extra)}")
    return report, rows, recipe


def _check_annotation_files(out: Path, recipe: dict, report: VerifyReport) -> set[str]:
    """Detection outputs: every annotation file recorded in the recipe, with its hash."""
    annotations = recipe.get("annotations") or {}
    files = annotations.get("files") if isinstance(annotations, dict) else None
    if not isinstance(files, dict):
        files = {}
    for name, digest in sorted(files.items()):
        if not safe_name(name):
            report.problems.append(
                f"annotation path escapes the output folder: {shown(repr(name))}"
            )
            continue
        try:
            data = read_member(out, name)
        except FileNotFoundError:
            report.problems.append(f"missing: {shown(name)}")
            continue
        except InputError as err:
            report.problems.append(str(err))
            continue
        except OSError as err:
            report.problems.append(f"unreadable: {shown(name)} ({err.strerror})")
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            report.problems.append(f"content differs from {RECIPE_NAME}: {shown(name)}")
    return set(files)


def _files(out: Path) -> set[str]:
    """Every file and link below ``out``; links to folders are listed, never followed."""
    found = set()
    for folder, dirs, files in os.walk(out):
        here = Path(folder)
        links = [d for d in dirs if (here / d).is_symlink()]
        for name in (*files, *links):
            found.add((here / name).relative_to(out).as_posix())
    return found


# --- HDF5 -----------------------------------------------------------------------------------


def _verify_hdf5(
    path: Path, progress: Progress, phase: str = "verify"
) -> tuple[VerifyReport, list[dict] | None, dict]:
    import h5py

    report = VerifyReport(path, "hdf5")
    try:
        fh = h5py.File(path, "r")
    except (OSError, RuntimeError, ValueError) as err:
        report.problems.append(f"not a readable HDF5 file (truncated or damaged?): {err}")
        return report, None, {}
    with fh:
        try:
            if fh.attrs.get(PARTIAL_ATTR, False):
                report.problems.append("the file is marked partial: its run did not finish")
            records = read_hdf5_records(fh, path)
            hashes = [h.decode("ascii") for h in records.sha256]
        except InputError as err:
            report.problems.append(str(err))
            return report, None, {}
        except DAMAGE as err:  # h5py raises these on damaged metadata (found by fuzzing)
            report.problems.append(f"not a complete augtool HDF5 file: {err}")
            return report, None, {}
        images = fh[IMAGES]
        progress.start(phase, records.n)
        for i in range(records.n):
            progress.advance(1)
            try:
                arr = images[i]
            except DAMAGE as err:
                report.problems.append(f"image {i} unreadable ({err})")
                continue
            report.checked += 1
            if hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest() != hashes[i]:
                report.problems.append(
                    f"content differs from its hash: image {i} ({shown(records.names[i])})"
                )
        _check_mask_datasets(fh, records.attrs, report)
    folds = records.fold_values
    src = records.source_index
    result = [
        {
            "name": records.names[i],
            "split": records.split_names[records.split_codes[i]],
            "class": records.class_names[records.labels[i]],
            "source": records.source_paths[src[i]],
            "source_sha256": records.source_sha256[src[i]],
            "group": records.source_groups[src[i]],
            "sha256": hashes[i],
            "fold": "" if folds is None or folds[i] < 0 else str(int(folds[i])),
        }
        for i in range(records.n)
    ]
    for name in [k for k, v in Counter(records.names).items() if v > 1]:
        report.problems.append(f"two images share the name {shown(name)}")
    return report, result, records.attrs


def _check_mask_datasets(fh: Any, attrs: dict, report: VerifyReport) -> None:
    """Segmentation outputs: every mask dataset recorded in ``annotations``, with its hash."""
    annotations = attrs.get("annotations")
    datasets = annotations.get("datasets") if isinstance(annotations, dict) else None
    for key, digest in sorted((datasets or {}).items()):
        if key not in fh:
            report.problems.append(f"missing: dataset {shown(repr(key))}")
            continue
        found = hashlib.sha256()
        try:
            data = fh[key]
            for i in range(data.shape[0]):
                found.update(np.ascontiguousarray(data[i]).tobytes())
        except DAMAGE as err:
            report.problems.append(f"dataset {shown(repr(key))} unreadable ({err})")
            continue
        if found.hexdigest() != digest:
            report.problems.append(f"content differs from its hash: dataset {shown(repr(key))}")


# --- shared checks ----------------------------------------------------------------------------


def _check_leakage(records: list[dict], recipe: dict, report: VerifyReport) -> None:
    if recipe.get("split_by") == "image":
        return
    for key, what in (("group", "group"), ("source_sha256", "source")):
        splits: dict[str, set[str]] = defaultdict(set)
        example: dict[str, str] = {}
        for r in records:
            splits[r[key]].add(r["split"])
            example.setdefault(r[key], r["source"])
        for value, sides in sorted(splits.items()):
            if len(sides) > 1:
                label = value if key == "group" else example[value]
                report.problems.append(
                    f"{what} {shown(label)} appears in splits {shown(', '.join(sorted(sides)))}"
                )


def _check_counts(records: list[dict], recipe: dict, report: VerifyReport) -> None:
    expected = recipe.get("counts")
    if not isinstance(expected, dict):
        report.problems.append("the recorded counts are missing")
        return
    actual = Counter(r["split"] for r in records)
    if dict(actual) != {k: int(v) for k, v in expected.items()}:
        report.problems.append(
            f"counts per split {dict(sorted(actual.items()))} differ from the recorded {expected}"
        )


def _check_folds(records: list[dict], recipe: dict, report: VerifyReport) -> None:
    """Every image has a fold in 0..K-1, no group or source content is in two folds."""
    k = recipe.get("folds") or 0
    values = [str(r.get("fold") or "") for r in records]
    if not isinstance(k, int) or k == 0:
        if any(values):
            report.problems.append("images carry folds but the recorded fold count is missing")
        return
    allowed = {str(f) for f in range(k)}
    bad = [r["name"] for r, v in zip(records, values, strict=True) if v not in allowed]
    if bad:
        report.problems.append(
            f"{len(bad)} image(s) without a fold in 0..{k - 1}, e.g. {shown(bad[0])}"
        )
        return
    for key, what in (("group", "group"), ("source_sha256", "source")):
        sides: dict[str, set[str]] = defaultdict(set)
        example: dict[str, str] = {}
        for r, v in zip(records, values, strict=True):
            sides[r[key]].add(v)
            example.setdefault(r[key], r["source"])
        for value, found in sorted(sides.items()):
            if len(found) > 1:
                label = value if key == "group" else example[value]
                listed = ", ".join(sorted(found))
                report.problems.append(f"{what} {shown(label)} appears in folds {listed}")
    expected = recipe.get("fold_counts")
    actual = Counter(values)
    if isinstance(expected, dict) and {f: int(n) for f, n in expected.items()} != {
        f: actual.get(f, 0) for f in sorted(allowed)
    }:
        report.problems.append(
            f"counts per fold {dict(sorted(actual.items()))} differ from the recorded {expected}"
        )


def records_of_hdf5(path: Path, progress: Progress) -> tuple[list[dict], VerifyReport, dict]:
    """The records, report and attributes of an HDF5 output (``verify --regenerate``'s replay)."""
    report, records, recipe = _verify_hdf5(path, progress, "verify replay")
    return records or [], report, recipe
