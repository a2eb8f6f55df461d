"""The ledger of test reads: every time a dataset's test images were scored, one line.

A test set is an estimate of accuracy on new images only as long as nothing
was chosen by looking at it. Each look is recorded here, so that a figure can
say how many times its test images had been read before it. ``augtool
evaluate`` appends a :class:`TestRead` whenever the images it scores include
test images (a ``test`` split, a cross-validation test fold, or every image
of a dataset that has either); ``augtool report`` and anyone else read them
back with :func:`read_test_reads`.

Where: a JSON Lines file *beside* the dataset, ``<name>.test-reads.jsonl``
(``cells5.h5`` -> ``cells5.h5.test-reads.jsonl``, the folder ``out/`` ->
``out.test-reads.jsonl``). The same rule holds for a folder and an HDF5 file,
nothing inside the dataset changes (its image hashes, its manifest and what
``augtool verify`` checks stay as they were), and a read-only dataset is
never rewritten. A copy of the dataset does not carry its ledger unless the
file is copied along.

Each read names the dataset's content by :func:`dataset_sha256` (a hash of
its per-image records: name, split, fold and image hash), so reads of a
dataset made again at the same path can be told apart.

Appends are safe: one ``write`` of one line to a file opened for appending,
under an exclusive lock, after a newline if an earlier append was cut short;
a line that cannot be parsed is reported by :func:`read_ledger`, never fatal.

This module imports the standard library, numpy and h5py only (no click, no
torch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from augtool.errors import InputError, OutputError
from augtool.store.schema import (
    MANIFEST_NAME,
    NO_FOLD,
    open_hdf5,
    read_hdf5_records,
    read_manifest,
    to_str,
)

#: What follows the dataset's name in the ledger's file name.
LEDGER_SUFFIX = ".test-reads.jsonl"
#: Format marker and version written in every line.
LEDGER_FORMAT = "augtool-test-read"
LEDGER_VERSION = 1
#: Keys a line must have to be a read.
_REQUIRED = ("time", "dataset_sha256", "subset", "models", "figures")


@dataclass(frozen=True)
class TestRead:
    """One scoring of a dataset's test images.

    Attributes:
        time: When, UTC, ISO 8601 (``2026-12-03T10:15:02Z``).
        dataset: The dataset's path as it was given.
        dataset_sha256: :func:`dataset_sha256` of the dataset when it was read.
        subset: The part scored: ``test``, or ``all`` (every image).
        folds: The cross-validation folds whose images were scored, or ``None``
            for a dataset without folds.
        models: ``{"path": ..., "sha256": ...}`` of every model whose
            predictions were scored (more than one: an ensemble).
        figures: What was seen: ``n``, ``accuracy``, ``macro_f1``, their
            intervals where there were some, and ``per_fold`` rows.
        tta: Test-time augmentation was used.
        command_line: The command that read it.
        augtool_version: The version that wrote the line.
        line: The line of the ledger it was read from (1-based; 0 before it is written).
    """

    __test__ = False  # not a pytest test class, despite its name

    time: str
    dataset: str
    dataset_sha256: str
    subset: str
    folds: list[int] | None
    models: list[dict[str, str]]
    figures: dict[str, Any]
    tta: bool = False
    command_line: str = ""
    augtool_version: str = ""
    line: int = field(default=0, compare=False)

    def to_json(self) -> str:
        """The ledger line (without its newline): strict JSON, one object."""
        data = {"format": LEDGER_FORMAT, "version": LEDGER_VERSION, **asdict(self)}
        del data["line"]
        return json.dumps(data, sort_keys=True, allow_nan=False, ensure_ascii=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], line: int) -> TestRead:
        """A read from a parsed ledger line.

        Raises:
            ValueError: If a required key is missing or has the wrong type.
        """
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        models = data["models"]
        if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
            raise ValueError("models is not a list of objects")
        if not isinstance(data["figures"], dict):
            raise ValueError("figures is not an object")
        folds = data.get("folds")
        if folds is not None and not (
            isinstance(folds, list) and all(isinstance(f, int) for f in folds)
        ):
            raise ValueError("folds is not a list of integers")
        return cls(
            time=str(data["time"]),
            dataset=str(data.get("dataset", "")),
            dataset_sha256=str(data["dataset_sha256"]),
            subset=str(data["subset"]),
            folds=folds,
            models=[{str(k): str(v) for k, v in m.items()} for m in models],
            figures=data["figures"],
            tta=bool(data.get("tta", False)),
            command_line=str(data.get("command_line", "")),
            augtool_version=str(data.get("augtool_version", "")),
            line=line,
        )


@dataclass
class Ledger:
    """The ledger of one dataset, as read.

    Attributes:
        path: The ledger file (it may not exist: no reads yet).
        reads: The reads, oldest first.
        problems: One line per line of the file that is not a read
            (``line 3: not JSON``); such lines are skipped, not fatal.
    """

    path: Path
    reads: list[TestRead]
    problems: list[str]

    def reads_of(self, content: str) -> list[TestRead]:
        """The reads of the dataset whose :func:`dataset_sha256` is ``content``."""
        return [r for r in self.reads if r.dataset_sha256 == content]


def ledger_path(dataset_path: str | Path) -> Path:
    """The ledger file of a dataset: ``<dataset>.test-reads.jsonl`` beside it.

    A folder given with a trailing slash, or as ``.``, is named by its own name.
    """
    path = Path(os.path.abspath(dataset_path))
    return path.with_name(path.name + LEDGER_SUFFIX)


def dataset_sha256(dataset_path: str | Path) -> str:
    """A hash of what a dataset holds, read from its records (no image is decoded).

    SHA-256 over one line per image, sorted: its name, split, fold (empty when
    none) and recorded image hash. The same for a dataset made again with the
    same recipe; different when an image, its split or its fold differs. A
    folder's image hashes are of its files, an HDF5 file's of its pixels, so
    the two forms of one expansion hash differently.

    Raises:
        InputError: If the path is not an ``augtool expand`` output (folder with
            a manifest, or HDF5 file) or its records are damaged.
    """
    path = Path(dataset_path)
    if path.is_dir():
        rows = read_manifest(path)
        lines = [
            f"{r['name']}\t{r['split']}\t{_fold_text(r.get('fold') or '')}\t{r['sha256']}\n"
            for r in rows
        ]
    elif path.is_file():
        with open_hdf5(path) as fh:
            records = read_hdf5_records(fh, path)
        splits = records.splits
        folds = records.fold_values
        lines = [
            f"{records.names[i]}\t{splits[i]}\t"
            f"{'' if folds is None else _fold_text(str(folds[i]))}\t{to_str(records.sha256[i])}\n"
            for i in range(records.n)
        ]
    else:
        raise InputError(f"{path}: no such dataset")
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def _fold_text(value: str) -> str:
    """A fold as recorded, ``''`` for none (an empty cell or :data:`NO_FOLD`)."""
    value = value.strip()
    return "" if value in ("", str(NO_FOLD)) else str(int(value))


def is_dataset(path: str | Path) -> bool:
    """True for what :func:`dataset_sha256` can hash: an HDF5 file or a folder with a manifest."""
    path = Path(path)
    return path.is_file() or (path.is_dir() and (path / MANIFEST_NAME).is_file())


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a model), read in 1 MiB pieces.

    Raises:
        InputError: If the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            for piece in iter(lambda: fh.read(1 << 20), b""):
                digest.update(piece)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    return digest.hexdigest()


def now_utc() -> str:
    """The current UTC time as the ledger writes it: ``2026-12-03T10:15:02Z``."""
    moment = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def read_ledger(dataset_path: str | Path) -> Ledger:
    """Every read recorded for a dataset, and the lines that are not reads.

    A missing ledger is an empty one. Blank lines are skipped; a line that is
    not JSON, not an object or lacks a read's keys is listed in
    :attr:`Ledger.problems` and skipped.

    Raises:
        InputError: If the ledger exists and cannot be read at all.
    """
    path = ledger_path(dataset_path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Ledger(path=path, reads=[], problems=[])
    except OSError as err:
        raise InputError(f"{path}: cannot read the ledger ({err.strerror or err})") from err
    reads, problems = [], []
    for number, text in enumerate(raw.split(b"\n"), start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            problems.append(f"line {number}: not a JSON line (cut short or edited)")
            continue
        if not isinstance(data, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        try:
            reads.append(TestRead.from_dict(data, number))
        except ValueError as err:
            problems.append(f"line {number}: not a test read ({err})")
    return Ledger(path=path, reads=reads, problems=problems)


def read_test_reads(dataset_path: str | Path) -> list[TestRead]:
    """The reads recorded for a dataset, oldest first (damaged lines skipped).

    :func:`read_ledger` also says which lines were skipped.
    """
    return read_ledger(dataset_path).reads


def check_writable(dataset_path: str | Path) -> Path:
    """Refuse early when a read of ``dataset_path`` could not be recorded.

    Returns:
        The ledger's path.

    Raises:
        OutputError: If the ledger (or, when it does not exist yet, the folder
            that would hold it) is not writable.
    """
    path = ledger_path(dataset_path)
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK):
        raise OutputError(
            f"{path}: cannot record the test read there ({target} is not writable); copy "
            "the dataset to a writable folder and score that copy"
        )
    return path


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    """An exclusive lock on an open file where the platform has ``flock``."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the single O_APPEND write is all there is
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def append_test_read(dataset_path: str | Path, read: TestRead) -> TestRead:
    """Append one read to a dataset's ledger, as one line.

    The line is written with one ``os.write`` to a file opened with
    ``O_APPEND``, under an exclusive ``flock``; if the file does not end with a
    newline (an earlier append cut short), one is written first, so the
    damaged line stays alone and this one stays whole.

    Returns:
        The read with its line number in the ledger.

    Raises:
        OutputError: If the ledger cannot be written.
    """
    path = ledger_path(dataset_path)
    line = (read.to_json() + "\n").encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as err:
        raise OutputError(f"{path}: cannot record the test read ({err.strerror or err})") from err
    try:
        with _locked(fd):
            size = os.fstat(fd).st_size
            if size and _last_byte(path) != b"\n":
                line = b"\n" + line
            if os.write(fd, line) != len(line):
                raise OutputError(f"{path}: the test read was written only in part")
            number = _count_lines(path)
    except OSError as err:
        raise OutputError(f"{path}: cannot record the test read ({err.strerror or err})") from err
    finally:
        os.close(fd)
    return dataclasses.replace(read, line=number)


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(piece.count(b"\n") for piece in iter(lambda: fh.read(1 << 20), b""))


def figures_of(report: dict[str, Any], per_fold: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The figures a read records, from a :func:`model.metrics.classification_report` dict.

    Args:
        report: The (pooled) report that was shown.
        per_fold: Per-fold rows (``fold``, ``n``, ``accuracy``, ``macro_f1``) when
            several folds were scored.
    """
    figures: dict[str, Any] = {
        "n": report.get("n"),
        "accuracy": report.get("accuracy"),
        "macro_f1": report.get("macro_f1"),
        "accuracy_wilson_ci95": report.get("accuracy_ci95"),
    }
    boot = report.get("cluster_bootstrap")
    if isinstance(boot, dict) and boot.get("accuracy_ci") is not None:
        figures["accuracy_cluster_ci95"] = boot.get("accuracy_ci")
        figures["cluster_groups"] = boot.get("groups")
    if per_fold:
        figures["per_fold"] = [
            {k: row.get(k) for k in ("fold", "n", "accuracy", "macro_f1")} for row in per_fold
        ]
    return figures


def describe(read: TestRead) -> str:
    """One line for a listing: when, what was scored, by which model, the accuracy seen.

    E.g. ``2026-12-03 10:15 UTC  test of folds 0-4  cv-cell (sha256 1a2b3c4d)
    accuracy 87.5 %``.
    """
    when, what, models = describe_without_figures(read)
    accuracy = read.figures.get("accuracy")
    seen = f"accuracy {100 * accuracy:.1f} %" if isinstance(accuracy, float) else "no accuracy"
    return f"{when} UTC  {what}  {models}  {seen}"


def describe_without_figures(read: TestRead) -> tuple[str, str, str]:
    """When (UTC), what was scored, and by which models; no figure (``augtool report``)."""
    when = read.time.replace("T", " ").removesuffix("Z")[:16]
    what = read.subset
    if read.folds is not None:
        what += f" of {_folds_text(read.folds)}"
    models = ", ".join(
        f"{m.get('path', '?')} (sha256 {m.get('sha256', '?')[:8]})" for m in read.models
    )
    if len(read.models) > 1:
        models = f"mean of {len(read.models)}: {models}"
    if read.tta:
        models += ", 8-view TTA"
    return when, what, models


def _folds_text(folds: Sequence[int]) -> str:
    ordered = sorted(folds)
    if len(ordered) == 1:
        return f"fold {ordered[0]}"
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"folds {ordered[0]}-{ordered[-1]}"
    return "folds " + ", ".join(str(f) for f in ordered)


def check_test_read(dataset_path: str | Path, subset: str) -> None:
    """Refuse, before any image is read, a read of test images that could not be recorded.

    Args:
        dataset_path: The dataset about to be scored.
        subset: The split to be read (``test`` and ``all`` read test images).

    Raises:
        OutputError: If the dataset's ledger cannot be written.
    """
    if subset in ("test", "all") and is_dataset(dataset_path):
        check_writable(dataset_path)


@dataclass(frozen=True)
class RecordedRead:
    """A test read just recorded, and the reads of the same dataset before it.

    Attributes:
        read: The read as appended (with its line).
        number: Its place among the reads of this content (1 for the first).
        shown: The ledger's path as the user names the dataset.
        before: The ledger as it was before this read.
    """

    read: TestRead
    number: int
    shown: Path
    before: Ledger

    def lines(self) -> list[str]:
        """What the command prints: which read this is, and the reads before it."""
        lines = [
            f"test read {self.number} of this dataset (recorded in {self.shown}, "
            f"line {self.read.line})"
        ]
        lines += [f"  warning: {self.shown} {problem}; skipped" for problem in self.before.problems]
        if not self.before.reads:
            return [*lines, "  its test images were not read before"]
        lines.append("  read before:")
        content = self.read.dataset_sha256
        for earlier in self.before.reads:
            other = "" if earlier.dataset_sha256 == content else "  (other content at this path)"
            lines.append(f"  {earlier.line:>3}. {describe(earlier)}{other}")
        return lines


def record_test_read(
    dataset_path: str | Path,
    subset: str,
    report: dict[str, Any],
    *,
    tta: bool = False,
    per_fold: Sequence[dict[str, Any]] = (),
    command_line: str = "",
    augtool_version: str = "",
) -> RecordedRead:
    """Append one read of a dataset's test images to its ledger.

    Args:
        dataset_path: The dataset scored, as the user named it.
        subset: The split read.
        report: The evaluation report (``dataset_sha256``, ``scored_folds``,
            ``models`` and the figures).
        tta: Test-time augmentation was used.
        per_fold: Per-fold reports of a ``--fold all`` evaluation.
        command_line: The command that read them.
        augtool_version: The augtool that read them.

    Raises:
        OutputError: If the ledger cannot be written.
    """
    before = read_ledger(dataset_path)
    content = report["dataset_sha256"]
    read = append_test_read(
        dataset_path,
        TestRead(
            time=now_utc(),
            dataset=str(dataset_path),
            dataset_sha256=content,
            subset=subset,
            folds=report["scored_folds"],
            models=[{"path": m, "sha256": file_sha256(m)} for m in report["models"]],
            figures=figures_of(report, per_fold),
            tta=tta,
            command_line=command_line,
            augtool_version=augtool_version,
        ),
    )
    given = Path(dataset_path)
    shown = given.parent / before.path.name if given.name not in ("", ".", "..") else before.path
    return RecordedRead(read, len(before.reads_of(content)) + 1, shown, before)
