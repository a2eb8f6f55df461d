"""augtool.store.publish: outputs appear whole or not at all, and no temporary stays behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from augtool.errors import OutputError
from augtool.store import publish


class Boom(Exception):
    pass


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_write_bytes_replaces_and_leaves_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "a.png"
    publish.write_bytes(out, b"one")
    publish.write_bytes(out, b"two")
    assert listing(tmp_path) == {"a.png": b"two"}


def test_staged_file_failure_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    out.write_bytes(b"old")
    with pytest.raises(Boom), publish.staged_file(out) as tmp:
        tmp.write_bytes(b"half of the new")
        raise Boom
    assert listing(tmp_path) == {"model.pt": b"old"}


def test_staged_file_failure_of_the_rename_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "model.pt"
    out.write_bytes(b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish.os, "replace", refuse)
    with pytest.raises(OSError), publish.staged_file(out) as tmp:
        tmp.write_bytes(b"new")
    assert listing(tmp_path) == {"model.pt": b"old"}


def test_staged_file_interrupted_keeps_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "x.bin"
    with pytest.raises(KeyboardInterrupt), publish.staged_file(out) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert listing(tmp_path) == {}


def test_staged_folder_replaces_an_existing_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with publish.staged_folder(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert listing(tmp_path) == {"run/new.txt": b"new"}


def test_staged_folder_failure_mid_write_keeps_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(Boom), publish.staged_folder(out) as tmp:
        (tmp / "new.txt").write_text("half")
        raise Boom
    assert listing(tmp_path) == {"run/old.txt": b"old"}


def test_staged_folder_failed_swap_puts_the_old_folder_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    real = os.rename
    calls: list[tuple[str, str]] = []

    def second_fails(src: os.PathLike, dst: os.PathLike) -> None:
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # the old folder is aside, the new one cannot come in
            raise OSError(18, "Invalid cross-device link")
        real(src, dst)

    monkeypatch.setattr(publish.os, "rename", second_fails)
    with pytest.raises(OSError), publish.staged_folder(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert calls[0] == ("run", ".run.old") and calls[1] == (".run.partial", "run")
    assert listing(tmp_path) == {"run/old.txt": b"old"}


def test_staged_folder_removes_its_own_stale_partial_only(tmp_path: Path) -> None:
    out = tmp_path / "run"
    stale = publish.partial_path(out)
    stale.mkdir()
    (stale / publish.PARTIAL_MARKER).write_text("")
    (stale / "junk").write_text("left by a killed run")
    with publish.staged_folder(out) as tmp:
        (tmp / "a").write_text("a")
    assert listing(tmp_path) == {"run/a": b"a"}
    foreign = publish.partial_path(out)
    foreign.mkdir()
    (foreign / "mine").write_text("someone else's")
    with pytest.raises(OutputError, match="not made by augtool"), publish.staged_folder(out):
        pass
    assert listing(tmp_path) == {"run/a": b"a", ".run.partial/mine": b"someone else's"}


def test_every_writer_publishes_through_the_helper() -> None:
    """No module but augtool/store/publish.py renames files into place itself."""
    root = Path(__file__).resolve().parent.parent
    offenders = []
    for path in sorted([*root.glob("augtool/**/*.py"), *root.glob("model/**/*.py")]):
        if path.name == "publish.py":
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("os.replace(", "os.rename(", ".rename("):
            if needle in text:
                offenders.append(f"{path.relative_to(root)}: {needle}")
    assert offenders == []
