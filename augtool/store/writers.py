"""The single writer of ``expand``: folder tree or HDF5, finished atomically.

Workers hand back encoded bytes or arrays; only this process writes. Output
goes to a temporary sibling (``.<name>.partial``) that is renamed onto the
final path after the last byte (:mod:`augtool.store.publish`), so an
interrupted or failed run never leaves an output that looks complete.

Both writers are :class:`StagedWriter` context managers, used the one way::

    with open_writer(out, fmt, fingerprint=key, resume=resume, n=n, size=s) as writer:
        for index, name, payload in outputs:  # plus writer.resumed, done before
            writer.write(index, name, payload)
        writer.commit(records)                # journal what is written
        writer.finish(records, sources, attrs)  # publish in one step

and :meth:`StagedWriter.__exit__` decides, in one table, what an exception
leaves behind and what the caller hears (an interrupt, a lost cluster, a full
disk), so no caller repeats those decisions.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from augtool.errors import (
    ClusterError,
    Interrupted,
    OutputError,
    OutputRefused,
    complete_after_interrupt,
    literal,
)
from augtool.store.journal import JOURNAL_NAME, Journal
from augtool.store.publish import (
    PARTIAL_MARKER,
    commit_partial,
    partial_path,
    remove,
    remove_stale_partial,
)
from augtool.store.schema import (
    IMAGES,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    NO_FOLD,
    NO_SPLIT,
    PARTIAL_ATTR,
    RECIPE_NAME,
    SPLIT_NAMES_ATTR,
    write_column,
)


def journal_path(out: Path, hdf5: bool) -> Path:
    """The journal of a run writing ``out``: in a folder's partial output, beside an HDF5 file."""
    return out.parent / f".{out.name}.partial.journal" if hdf5 else partial_path(out) / JOURNAL_NAME


class StagedWriter(ABC):
    """A writer into a partial output that becomes the output in one step, as a context manager.

    Entering creates the partial output (or reopens it to resume); leaving
    without :meth:`finish` removes it, or keeps it for ``resume`` where an
    interrupted or lost run can be continued (see :meth:`__exit__`).

    Attributes:
        out: The output path.
        tmp: The partial output beside it.
        journal: Its journal of written outputs.
        fingerprint: Hash of everything that determines the bytes (``resume``
            continues only a partial output of the same fingerprint).
        resume: Continue a partial output of the same run, if there is one.
        resumed: Records of outputs a resumed partial output holds, by plan
            index (set on entering).
        published: The output is in place (set by :meth:`finish`, after which an
            interruption leaves a complete output, not a partial one).
    """

    def __init__(self, out: Path, tmp: Path, journal: Journal, fingerprint: str, resume: bool):
        self.out = out
        self.tmp = tmp
        self.journal = journal
        self.fingerprint = fingerprint
        self.resume = resume
        self.resumed: dict[int, dict] = {}
        self.published = False
        self._committed = False

    @abstractmethod
    def _open(self) -> dict[int, dict]:
        """Create the partial output, or reopen it; return the records it holds."""

    @abstractmethod
    def write(self, index: int, name: str, payload: bytes | np.ndarray) -> None:
        """Write one output (its plan index, its path in the output, its bytes or array)."""

    @abstractmethod
    def _journal(self, records: Sequence[dict]) -> None:
        """Make the written outputs durable and journal them."""

    @abstractmethod
    def finish(self, records: Sequence[dict], sources: Sequence[dict], attrs: dict) -> None:
        """Write the tables and attributes, then publish the output in one step."""

    @abstractmethod
    def abort(self, keep: bool = False) -> None:
        """Stop writing: delete the partial output, or keep it for ``resume``."""

    def commit(self, records: Sequence[dict]) -> None:
        """Journal outputs whose bytes are written (a resumed run skips them)."""
        self._journal(records)
        self._committed = self._committed or bool(records)

    def leftover(self) -> int | None:
        """Outputs a partial output of an interrupted run holds, or None when there is none."""
        if not (self.tmp.exists() or self.journal.path.exists()):
            return None
        return self.journal.count()

    def __enter__(self) -> Self:
        """Create the partial output, or reopen it to resume.

        Raises:
            OutputError: If it cannot be created (nothing is left behind).
            Interrupted: If a stop signal came meanwhile (nothing is left behind
                but a partial output that was there to resume).
        """
        try:
            self.resumed = self._open()
        except OSError as err:
            self.abort(keep=self.resume)
            raise OutputError(
                f"cannot create {self.tmp}: {err.strerror or err} (errno {err.errno}); "
                "nothing was written and RAW is untouched"
            ) from err
        except (KeyboardInterrupt, Interrupted):
            raise self._interruption(keep=self.resume, opened=False) from None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        """What an ending leaves, and what the caller hears; the one table of it.

        * no exception: nothing to do once published (a writer left unfinished
          removes its partial output);
        * an interrupt (``KeyboardInterrupt``, :class:`Interrupted`): if the
          output was published, :class:`Interrupted` saying it is complete;
          else the partial output is kept and the message says how to resume;
        * :class:`ClusterError`: the partial output is kept (with the resume
          hint) when anything was written, else removed, and the error goes on;
        * ``OSError`` (a full disk): removed; :class:`OutputError` with the errno;
        * anything else: removed, and the exception goes on.
        """
        if error is None:
            if not self.published:
                self.abort()
            return False
        if isinstance(error, KeyboardInterrupt | Interrupted):
            raise self._interruption(keep=True, opened=True) from None
        if isinstance(error, ClusterError):
            if not (self.resumed or self._committed):  # nothing to resume
                self.abort()
                return False
            self.abort(keep=True)
            raise ClusterError(
                f"{literal(error)}. The partial output is kept in {literal(self.tmp)}: run the "
                "same command with {resume} to continue (on any backend), or delete it",
                refs=True,
            ) from error
        if isinstance(error, OSError):
            self.abort()
            raise OutputError(
                f"writing {self.out} failed: {error.strerror or error} (errno {error.errno}); "
                "the partial output was removed and RAW is untouched"
            ) from error
        self.abort()
        return False

    def _interruption(self, keep: bool, opened: bool) -> Interrupted:
        """The error that ends an interrupted run, true to what the interruption left.

        A signal can land anywhere: while the partial output is created, while it
        is filled, after it became the output (publishing is one step that
        signals do not split). The message says which: nothing, a partial
        output to resume, or a complete output.

        Args:
            keep: Keep a partial output for ``resume`` (False: one just created is deleted).
            opened: The partial output was created; if it is gone, publishing moved it.
        """
        moved = opened and not self.tmp.exists() and self.out.exists()
        if self.published or moved:
            return Interrupted(complete_after_interrupt(self.out))
        self.abort(keep=keep)
        if not (keep and self.tmp.exists()):
            return Interrupted("interrupted; nothing final was written")
        return Interrupted(
            f"interrupted; nothing final was written. The partial output is kept in "
            f"{literal(self.tmp)}: run the same command with {{resume}} to continue, or "
            "delete it",
            refs=True,
        )


class FolderWriter(StagedWriter):
    """Writes ``OUT/<split>/<class>/<name>`` files, ``manifest.csv`` and ``augtool.json``."""

    def __init__(self, out: Path, fingerprint: str, resume: bool = False) -> None:
        tmp = partial_path(out)
        super().__init__(out, tmp, Journal(journal_path(out, hdf5=False)), fingerprint, resume)
        self._dirs: set[Path] = set()

    def _open(self) -> dict[int, dict]:
        """Create the temporary folder, or reopen it to resume."""
        tmp = self.tmp
        if self.resume and (tmp / JOURNAL_NAME).is_file() and (tmp / PARTIAL_MARKER).exists():
            done = self.journal.load(self.fingerprint)
            return {i: r for i, r in done.items() if (tmp / r["name"]).is_file()}
        remove_stale_partial(tmp)
        tmp.mkdir()
        (tmp / PARTIAL_MARKER).write_text("written by augtool expand; safe to delete\n")
        self.journal.start(self.fingerprint)
        return {}

    def write(self, index: int, name: str, payload: bytes | np.ndarray) -> None:
        """Write one output file.

        Args:
            index: Plan index (unused by folders; kept for one writer interface).
            name: Relative path inside the output.
            payload: The encoded file.
        """
        target = self.tmp / name
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        with open(target, "wb") as fh:
            fh.write(payload)  # type: ignore[arg-type]

    def _journal(self, records: Sequence[dict]) -> None:
        self.journal.append(records)

    def finish(self, records: Sequence[dict], sources: Sequence[dict], attrs: dict) -> None:
        """Write the manifest and recipe, then move the folder into place."""
        with open(self.tmp / MANIFEST_NAME, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
        meta = dict(attrs)
        meta["sources"] = list(sources)
        (self.tmp / RECIPE_NAME).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        self.journal.close()
        commit_partial(self.tmp, self.out, (self.tmp / JOURNAL_NAME, self.tmp / PARTIAL_MARKER))
        self.published = True

    def abort(self, keep: bool = False) -> None:
        """Stop writing: delete the temporary folder, or keep it for ``--resume``."""
        self.journal.close()
        if not keep:
            remove(self.tmp)


@contextlib.contextmanager
def hdf5_errors(path: Path) -> Iterator[None]:
    """Turn HDF5 write failures into ``OSError(errno)``.

    h5py reports a failed write as ``OSError`` or ``RuntimeError`` with the C
    library's errno buried in a long text (``errno = 28``); callers want the
    number, to say "No space left on device (errno 28)".
    """
    try:
        yield
    except (OSError, RuntimeError) as err:
        code = getattr(err, "errno", None)
        if not code:
            match = re.search(r"errno = (\d+)", str(err))
            code = int(match.group(1)) if match else errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from err


def _fold_code(fold: int | str | None) -> int:
    """A record's fold as stored in HDF5: the fold, or -1 for a run without ``--folds``."""
    return NO_FOLD if fold is None or fold == "" else int(fold)


class Hdf5Writer(StagedWriter):
    """Writes one HDF5 file per ``docs/dataset-format.md``; images go straight to disk.

    Attributes:
        n: Images the file holds.
        size: Their side.
        compression: HDF5 compression of the images (``lzf``, ``gzip``) or None.
    """

    def __init__(
        self,
        out: Path,
        fingerprint: str,
        resume: bool = False,
        *,
        n: int,
        size: int,
        compression: str | None = None,
    ) -> None:
        journal = Journal(journal_path(out, hdf5=True))
        super().__init__(out, partial_path(out), journal, fingerprint, resume)
        self.n = n
        self.size = size
        self.compression = compression
        self._fh: Any = None
        self._images: Any = None
        self._kept: set[str] = {IMAGES}

    def _open(self) -> dict[int, dict]:
        """Create the temporary file with the image dataset allocated, or reopen it."""
        import h5py

        fingerprint = self.fingerprint
        if self.resume and self.tmp.is_file() and self.journal.path.is_file():
            recorded = None
            try:
                self._fh = h5py.File(self.tmp, "r+")
                self._images = self._fh[IMAGES]
                recorded = self._fh.attrs.get("fingerprint")
                if recorded == fingerprint:
                    return self.journal.load(fingerprint)
            except (OSError, KeyError, RuntimeError, ValueError):
                pass  # damaged by a hard kill: start over below
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            if recorded is not None:
                raise OutputRefused(
                    f"{literal(self.tmp)}: the partial output was made by a run with other "
                    "inputs or options; run again without {resume} to start over",
                    refs=True,
                )
        remove_stale_partial(self.tmp)
        remove(self.journal.path)
        s = self.size
        with hdf5_errors(self.tmp):
            self._fh = h5py.File(self.tmp, "w")
            self._images = self._fh.create_dataset(
                IMAGES,
                shape=(self.n, s, s, 3),
                dtype=np.uint8,
                chunks=(1, s, s, 3),
                compression=self.compression,
            )
            self._fh.attrs[PARTIAL_ATTR] = True
            self._fh.attrs["fingerprint"] = fingerprint
        self.journal.start(fingerprint)
        return {}

    def write(self, index: int, name: str, payload: bytes | np.ndarray) -> None:
        """Write one image at its plan index.

        Raises:
            IndexError: For an index outside the file's ``0..n - 1`` (a negative
                one would write another image's row).
        """
        if not 0 <= index < self.n:
            raise IndexError(f"{self.tmp}: no image row {index} (the file has {self.n})")
        with hdf5_errors(self.tmp):
            self._images[index] = payload

    def _journal(self, records: Sequence[dict]) -> None:
        with hdf5_errors(self.tmp):
            self._fh.flush()
        self.journal.append(records)

    def write_rows(
        self, key: str, dtype: Any, rows: Iterable[np.ndarray], attrs: dict | None = None
    ) -> str:
        """A ``(n, S, S)`` dataset beside the images (masks), one row per image in plan order.

        Args:
            key: The dataset's name (:data:`augtool.store.schema.MASK_IDS`, ``CLASS_MAP``).
            dtype: Its numpy dtype.
            rows: Exactly ``n`` arrays of ``(S, S)``, image 0 first.
            attrs: Attributes of the dataset (a list is stored as strings).

        Returns:
            The sha256 of its rows' C-order bytes, in order (recorded, checked by ``verify``).
        """
        digest, s, count = hashlib.sha256(), self.size, 0
        with hdf5_errors(self.tmp):
            self._fh.pop(key, None)  # left by a finish that was interrupted
            shape, chunks = (self.n, s, s), (1, s, s)
            data = self._fh.create_dataset(
                key, shape, dtype, chunks=chunks, compression=self.compression
            )
            for name, value in (attrs or {}).items():
                data.attrs[name] = (
                    np.array(value, dtype=object) if isinstance(value, list) else value
                )
            for count, row in enumerate(rows, start=1):
                data[count - 1] = array = np.ascontiguousarray(row, dtype=dtype)
                digest.update(array.tobytes())
        if count != self.n:
            raise ValueError(f"{key}: {count} rows for {self.n} images")
        self._kept.add(key)
        return digest.hexdigest()

    def write_text_rows(self, key: str, values: Sequence[str]) -> None:
        """A text column of one value per image (a schema column), kept through :meth:`finish`."""
        with hdf5_errors(self.tmp):
            self._fh.pop(key, None)
            write_column(self._fh, key, values)
        self._kept.add(key)

    def finish(self, records: Sequence[dict], sources: Sequence[dict], attrs: dict) -> None:
        """Write labels, splits, tables and attributes, close and move into place."""
        with hdf5_errors(self.tmp):
            self._finish(records, sources, attrs)
        self.journal.close()
        commit_partial(self.tmp, self.out, (self.journal.path,))
        self.published = True

    def _finish(self, records: Sequence[dict], sources: Sequence[dict], attrs: dict) -> None:

        fh = self._fh
        assert fh is not None
        # A finish interrupted earlier (then --resume) may have written some of these.
        for key in [k for k in fh if k not in self._kept]:
            del fh[key]
        split_names = list(dict.fromkeys(r["split"] for r in records)) or ["all"]
        order = {"train": 0, "val": 1, "test": 2, "all": 3}
        split_names.sort(key=lambda s: order.get(s, 9))
        code = {s: i for i, s in enumerate(split_names)}
        src_row = {s["path"]: i for i, s in enumerate(sources)}
        image_columns = {
            "labels": [int(r["label"]) for r in records],
            "split": [code[r["split"]] for r in records],
            "source_index": [src_row[r["source"]] for r in records],
            "copy": [int(r["copy"]) for r in records],
            "transform": [r["transform"] for r in records],
            "params": [r["params"] for r in records],
            "name": [r["name"] for r in records],
            "sha256": [r["sha256"] for r in records],
            "fold": [_fold_code(r.get("fold")) for r in records],
            "sources/path": [s["path"] for s in sources],
            "sources/sha256": [s["sha256"] for s in sources],
            "sources/label": [s["label"] for s in sources],
            "sources/group": [s["group"] for s in sources],
            "sources/split": [code.get(s["split"], NO_SPLIT) for s in sources],
            "sources/fold": [_fold_code(s.get("fold")) for s in sources],
        }
        # The order of writes decides the file's layout; it is the order of schema version 1.
        for key, values in image_columns.items():
            if key == "sources/path":
                fh.create_group("sources")
            write_column(fh, key, values)
            if key == "split":
                fh["split"].attrs[SPLIT_NAMES_ATTR] = np.array(split_names, dtype=object)
        for key, value in attrs.items():
            if isinstance(value, dict | list) and key != "class_names":
                value = json.dumps(value, ensure_ascii=False)
            elif key == "class_names":
                value = np.array(value, dtype=object)
            fh.attrs[key] = value
        del fh.attrs[PARTIAL_ATTR]
        del fh.attrs["fingerprint"]
        fh.flush()
        fh.close()
        self._fh = None

    def abort(self, keep: bool = False) -> None:
        """Stop writing: close, and delete the temporary file unless kept for ``--resume``.

        HDF5 cannot close a file whose metadata it cannot write (a full disk):
        it fails, and crashes the interpreter at exit. A file about to be
        deleted is therefore emptied first, which frees the space to close it.
        """
        self.journal.close()
        if self._fh is not None:
            if not keep:
                with contextlib.suppress(OSError):
                    os.truncate(self.tmp, 0)
            try:
                self._fh.close()
            except (OSError, RuntimeError):
                pass  # the file is deleted below, or damaged and started over by --resume
            finally:
                self._fh = None
                self._images = None
        if not keep:
            remove(self.tmp)
            remove(self.journal.path)


def open_writer(
    out: Path,
    output_format: str,
    *,
    fingerprint: str,
    resume: bool = False,
    n: int = 0,
    size: int = 0,
    compression: str | None = None,
) -> StagedWriter:
    """The writer of an output: a folder, or one HDF5 file of ``n`` images of ``size``.

    Args:
        out: The output path.
        output_format: ``folder`` or ``hdf5``.
        fingerprint: Hash of everything that determines the bytes.
        resume: Continue a partial output of the same fingerprint.
        n: HDF5: the number of images.
        size: HDF5: their side.
        compression: HDF5: ``lzf``, ``gzip`` or None.

    Returns:
        The writer; enter it (``with``) to create the partial output.
    """
    if output_format == "hdf5":
        return Hdf5Writer(out, fingerprint, resume, n=n, size=size, compression=compression)
    return FolderWriter(out, fingerprint, resume)
