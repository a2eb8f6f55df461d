"""The writers as context managers: one table says what an ending leaves and what is said.

Each row of :meth:`augtool.store.writers.StagedWriter.__exit__`, for both
writers, on a writer used directly (``expand`` uses it the same way; its own
runs are in test_expand_signals.py, test_robustness.py and test_cli_safety.py).
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from augtool.errors import ClusterError, Interrupted, OutputError
from augtool.store.publish import partial_path
from augtool.store.writers import StagedWriter, open_writer

RECORD = {"index": 0, "name": "a/x.png"}


def writer_for(tmp_path: Path, fmt: str, resume: bool = False) -> StagedWriter:
    out = tmp_path / ("out.h5" if fmt == "hdf5" else "out")
    return open_writer(out, fmt, fingerprint="f", resume=resume, n=2, size=8)


def write_one(writer: StagedWriter, commit: bool = True) -> None:
    payload = np.zeros((8, 8, 3), np.uint8) if writer.out.suffix == ".h5" else b"png"
    writer.write(0, "a/x.png", payload)
    if commit:
        writer.commit([RECORD])


def left(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


FORMATS = ["folder", "hdf5"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_writer_left_unfinished_keeps_nothing(tmp_path: Path, fmt: str) -> None:
    with writer_for(tmp_path, fmt) as writer:
        write_one(writer)
        assert writer.tmp.exists()
    assert left(tmp_path) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_interrupt_keeps_the_partial_output_and_says_how_to_resume(
    tmp_path: Path, fmt: str
) -> None:
    with (
        pytest.raises(Interrupted, match="with resume to continue") as caught,
        writer_for(tmp_path, fmt) as writer,
    ):
        write_one(writer)
        raise KeyboardInterrupt
    assert caught.value.__cause__ is None
    assert partial_path(writer.out).exists() and not writer.out.exists()
    with writer_for(tmp_path, fmt, resume=True) as again:
        assert list(again.resumed) == [0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_interrupt_after_publishing_says_the_output_is_complete(
    tmp_path: Path, fmt: str
) -> None:
    with pytest.raises(Interrupted, match=r"is complete$"), writer_for(tmp_path, fmt) as writer:
        write_one(writer)
        writer.finish([], [], {})
        raise Interrupted("stop")
    assert writer.out.exists() and not writer.tmp.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_lost_cluster_keeps_what_was_written(tmp_path: Path, fmt: str) -> None:
    with (
        pytest.raises(ClusterError, match="partial output is kept") as caught,
        writer_for(tmp_path, fmt) as writer,
    ):
        write_one(writer)
        raise ClusterError("the scheduler went away")
    assert str(caught.value.__cause__) == "the scheduler went away"
    assert writer.tmp.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_lost_cluster_before_any_output_removes_the_partial(tmp_path: Path, fmt: str) -> None:
    with (
        pytest.raises(ClusterError, match=r"^the scheduler went away$"),
        writer_for(tmp_path, fmt) as writer,
    ):
        write_one(writer, commit=False)
        raise ClusterError("the scheduler went away")
    assert left(tmp_path) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_full_disk_removes_the_partial_and_names_the_errno(tmp_path: Path, fmt: str) -> None:
    with (
        pytest.raises(OutputError, match=r"No space left on device \(errno 28\)"),
        writer_for(tmp_path, fmt),
    ):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert left(tmp_path) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_any_other_error_removes_the_partial_and_goes_on(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(ValueError, match="a bug"), writer_for(tmp_path, fmt) as writer:
        write_one(writer)
        raise ValueError("a bug")
    assert left(tmp_path) == []


def test_a_partial_output_that_cannot_be_created_is_an_output_error(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "out"
    with (
        pytest.raises(OutputError, match="nothing was written and RAW is untouched"),
        open_writer(out, "folder", fingerprint="f"),
    ):
        pass
