"""Publish outputs atomically: write a temporary sibling, then rename it into place.

Every file or folder augtool finishes (an expand output, a generated dataset,
a contact sheet, a training run, a checkpoint, a confusion picture) goes
through this module, so there is one way an output appears: completely, or
not at all. Readers see the old output or the new one, never half of either,
and a failure or an interruption leaves the old output as it was and no
temporary behind.

* :func:`staged_file` and :func:`write_bytes` publish one file: the bytes go
  to ``.<name>.<pid>.partial`` in the same folder, renamed over the target
  with :func:`os.replace` (atomic on POSIX within one file system).
* :func:`staged_folder` publishes a folder: it is filled as
  ``.<name>.partial`` (marked with :data:`PARTIAL_MARKER`, so augtool only
  ever deletes its own leftovers) and swapped into place by
  :func:`swap_into_place`.
* :func:`swap_into_place` is the replace-an-existing-output step the
  resumable expand writers use too: an existing folder is moved aside, the
  new one renamed in, and the old one deleted; if the second rename fails the
  old folder is put back.
* :func:`commit_partial` is the resumable writers' last step: it deletes the
  resume bookkeeping and swaps the output into place. A stop signal that
  arrives while it runs waits for it to return (the command line defers it),
  so an interrupted run is either resumable or complete, never in between.

Nothing here calls ``fsync``: none of the code it replaced did, and the
outputs are reproducible from their recipe. This module imports the standard
library only, so the GPU machine's training code can use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from augtool.errors import OptionError, OutputError, OutputRefused, atomic, literal

#: File inside every partial output folder, so augtool only ever deletes its own.
PARTIAL_MARKER = ".augtool-partial"


def check_apart(
    out: str | Path,
    inputs: Mapping[str, str | Path | None],
    scanned: Collection[str] = (),
) -> None:
    """Refuse an output that is one of the inputs, holds one, or lies inside a scanned one.

    Replacing such an output (``overwrite``) would delete the input; an output
    inside an input folder that is read as a whole (``scanned``) would be read
    as input by the next run over it.

    Args:
        out: The output path.
        inputs: The inputs by parameter name (``raw``, ``annotations``); None is skipped.
        scanned: The names in ``inputs`` of folders read as a whole tree.

    Raises:
        OptionError: Naming ``out`` and the input it overlaps.
    """
    where = Path(out).resolve()
    for name, given in inputs.items():
        if given is None:
            continue
        path = Path(given).resolve()
        if where == path:
            detail = f"{literal(out)} is also {{{name}}}; choose another {{out}}"
        elif path.is_relative_to(where):
            detail = (
                f"{literal(out)} holds {{{name}}} ({literal(given)}), which replacing "
                f"{literal(out)} would delete; choose an {{out}} outside it"
            )
        elif name in scanned and where.is_relative_to(path):
            detail = (
                f"{literal(out)} is inside {{{name}}} ({literal(given)}), where it would "
                "be taken for part of the input; choose an {out} outside it"
            )
        else:
            continue
        raise OptionError("out", detail, refs=True)


def check_output(out: Path, overwrite: bool, resume: bool = False) -> None:
    """Refuse an existing, non-empty output unless ``overwrite``.

    Args:
        out: The output path.
        overwrite: Replace an existing output.
        resume: The run continues a partial output; with none beside ``out``,
            an existing ``out`` is a finished run, and the refusal says so.

    Raises:
        OutputRefused: If ``out`` exists (non-empty) and ``overwrite`` is false,
            or its parent folder does not exist.
    """
    if out.exists() or out.is_symlink():
        empty_dir = out.is_dir() and not any(out.iterdir())
        if not empty_dir and not overwrite and resume and not partial_path(out).exists():
            raise OutputRefused(
                f"{literal(out)} is complete: nothing to resume; pass {{overwrite}} (without "
                "{resume}) to make it again",
                refs=True,
            )
        if not empty_dir and not overwrite:
            raise OutputRefused(
                f"{literal(out)} exists and is not empty; pass {{overwrite}} to replace it",
                refs=True,
            )
    if not out.parent.is_dir():
        raise OutputRefused(f"{out.parent}: no such folder; create it first")


def partial_path(out: Path) -> Path:
    """The temporary sibling a folder (or a resumable file) is written into."""
    return out.parent / f".{out.name}.partial"


def aside_path(out: Path) -> Path:
    """Where an existing folder waits while its replacement is renamed in."""
    return out.parent / f".{out.name}.old"


def remove(path: Path) -> None:
    """Delete a file, a link or a folder tree; nothing when ``path`` does not exist."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_stale_partial(tmp: Path) -> None:
    """Delete a partial output left by an earlier run, if it is augtool's.

    Raises:
        OutputRefused: If ``tmp`` is a non-empty folder without :data:`PARTIAL_MARKER`.
    """
    if not (tmp.exists() or tmp.is_symlink()):
        return
    if tmp.is_dir() and any(tmp.iterdir()) and not (tmp / PARTIAL_MARKER).exists():
        raise OutputRefused(f"{tmp} exists and was not made by augtool; move it away")
    remove(tmp)


def swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temporary output ``tmp`` onto ``out``, replacing it.

    A file (or a missing ``out``) is replaced in one :func:`os.replace`. An
    existing folder cannot be renamed over, so it is renamed aside
    (:func:`aside_path`), ``tmp`` is renamed in, and the old folder deleted; if
    renaming ``tmp`` in fails, the old folder is renamed back before the error
    propagates.

    Raises:
        OSError: If a rename fails (``out`` is then as it was).
    """
    if out.is_dir() and not out.is_symlink():
        old = aside_path(out)
        remove(old)
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old, out)
            raise
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


@atomic
def commit_partial(tmp: Path, out: Path, bookkeeping: tuple[Path, ...]) -> None:
    """Publish a resumable output: delete its resume files, then rename ``tmp`` onto ``out``.

    The moment an expand output becomes final. Before it the partial output
    can be resumed; after it the output is complete. The command line lets no
    stop signal interrupt this function (it waits until it returns:
    ``augtool.commands.exit_codes``), since halfway the partial has lost its resume
    files and is not yet the output.

    Args:
        tmp: The finished temporary output.
        out: Where it goes.
        bookkeeping: Resume files to delete first (journal, partial marker).

    Raises:
        OSError: If a rename fails (``out`` is then as it was).
    """
    for path in bookkeeping:
        remove(path)
    swap_into_place(tmp, out)


@contextlib.contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A temporary sibling folder that replaces ``out`` when the block succeeds.

    The caller decides first whether ``out`` may be replaced. On any
    exception, interruption included, the temporary folder is removed and
    ``out`` is left as it was.

    Args:
        out: The folder to publish; its parent must exist.

    Yields:
        The temporary folder to write into.

    Raises:
        OutputError: If the temporary folder cannot be created, or a foreign
            folder sits where it would go.
    """
    tmp = partial_path(out)
    remove_stale_partial(tmp)
    try:
        tmp.mkdir()
        (tmp / PARTIAL_MARKER).write_text("written by augtool; safe to delete\n")
    except OSError as err:
        raise OutputError(f"{tmp}: cannot create ({err.strerror or err})") from err
    try:
        yield tmp
        (tmp / PARTIAL_MARKER).unlink()
        swap_into_place(tmp, out)
    except BaseException:
        remove(tmp)
        raise


@contextlib.contextmanager
def staged_file(out: Path) -> Iterator[Path]:
    """A temporary sibling file that replaces ``out`` when the block succeeds.

    The temporary name carries the process id, so two processes publishing
    the same file never write into one temporary. On any exception the
    temporary is deleted and ``out`` is left as it was.

    Args:
        out: The file to publish; its folder must exist.

    Yields:
        The temporary path to write (it does not exist yet).

    Raises:
        OSError: If the rename fails (after the temporary is removed).
    """
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def write_bytes(out: Path, data: bytes) -> None:
    """Put ``data`` at ``out`` atomically (see :func:`staged_file`).

    Raises:
        OSError: If writing or renaming fails; ``out`` is then unchanged.
    """
    with staged_file(out) as tmp:
        tmp.write_bytes(data)
