"""A stop signal to ``expand`` says what it left, wherever it lands.

Three states can follow an interruption: nothing written, a partial output to
resume (the message names ``--resume``), or a complete output (the signal came
after the output was published). Before, a signal landing after the writer's
last step (a 2-worker run on a tiny workload ends within a blink of its last
batch) printed "nothing final was written" with no ``--resume`` sentence while
OUT stood complete, and one landing between the deletion of the resume journal
and the rename left a partial that could not be resumed. Publishing is now one
step no signal splits, and the message follows the state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from augtool.commands import exit_codes as cli_errors
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.verify import verify
from augtool.errors import ATOMIC_CODE, Interrupted
from augtool.store import publish, writers
from tests.child_process import cli_command, default_sigint, run_cli
from tests.conftest import smear_like, tree_hashes, write_image
from tests.forked import ForkedCli

#: A tiny run: 6 sources, 30 outputs of 32x32.
TINY = ["--target", "30", "--size", "32", "-q"]


def tiny_raw(root: Path) -> Path:
    raw = root / "raw"
    for i in range(6):
        write_image(
            raw / f"c{i % 3}" / f"img_{i}.jpg", smear_like(np.random.default_rng(i), 96, 72)
        )
    return raw


def journal_of(out: Path) -> Path:
    return writers.journal_path(out, hdf5=out.suffix == ".h5")


class InterruptAt:
    """A reporter that raises KeyboardInterrupt at its ``n``-th ``advance`` (1-based)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def start(self, phase: str, total: int) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Count; raise at the chosen call."""
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt

    def warn(self, message: str) -> None:
        """Ignore."""


# --- the library's message follows the state -------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "hdf5"])
def test_interrupt_mid_run_keeps_a_resumable_partial(tmp_path: Path, kind: str) -> None:
    raw = tiny_raw(tmp_path)
    out = tmp_path / ("out.h5" if kind == "hdf5" else "out")
    options = ExpandOptions(target=30, size=32, workers=1)
    with pytest.raises(Interrupted) as err:
        expand(raw, out, options, InterruptAt(3))
    assert "partial output is kept" in str(err.value) and "resume" in str(err.value)
    assert writers.partial_path(out).exists() and not out.exists()
    expand(raw, out, ExpandOptions(target=30, size=32, workers=1, resume=True))
    assert verify(out).ok


@pytest.mark.parametrize("kind", ["folder", "hdf5"])
def test_interrupt_after_publishing_says_the_output_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The signal came after the rename: the output is whole, and the message says so."""
    raw = tiny_raw(tmp_path)
    out = tmp_path / ("out.h5" if kind == "hdf5" else "out")
    cls = writers.Hdf5Writer if kind == "hdf5" else writers.FolderWriter
    finish = cls.finish

    def finish_then_interrupt(self: Any, *args: Any, **kwargs: Any) -> None:
        finish(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(cls, "finish", finish_then_interrupt)
    with pytest.raises(Interrupted) as err:
        expand(raw, out, ExpandOptions(target=30, size=32, workers=1))
    assert str(err.value).endswith(f"{out} is complete")
    assert "nothing final" not in str(err.value)
    assert out.exists() and not writers.partial_path(out).exists()
    assert not journal_of(out).exists()
    assert verify(out).ok


def test_interrupt_while_creating_the_partial_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tiny_raw(tmp_path)
    out = tmp_path / "out"
    start = writers.Journal.start

    def start_then_interrupt(self: Any, *args: Any, **kwargs: Any) -> None:
        start(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(writers.Journal, "start", start_then_interrupt)
    with pytest.raises(Interrupted, match=r"^interrupted; nothing final was written$"):
        expand(raw, out, ExpandOptions(target=30, size=32, workers=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


# --- the command line: a signal under publishing waits for it ---------------------------------


@pytest.mark.parametrize("kind", ["folder", "hdf5"])
def test_a_signal_while_publishing_waits_and_the_output_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """SIGTERM between the deletion of the resume journal and the rename: before, the
    run stopped there, leaving a partial without its journal; now the rename finishes."""
    raw = tiny_raw(tmp_path)
    out = tmp_path / ("out.h5" if kind == "hdf5" else "out")
    remove = publish.remove
    sent = []

    def remove_then_signal(path: Path) -> None:
        remove(path)
        caller = sys._getframe(1).f_code
        if caller is publish.commit_partial.__code__ and not sent:
            # the first resume file is gone, the output not yet in place
            sent.append(path)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, under commit_partial

    monkeypatch.setattr(publish, "remove", remove_then_signal)
    try:
        code, text = run_cli("expand", raw, out, *TINY, "--workers", "1")
    finally:
        cli_errors._STOP.clear()
    assert sent, "commit_partial was not reached"
    assert code == 130, text
    assert f"interrupted after the last image was written; {out} is complete" in text
    assert out.exists() and not writers.partial_path(out).exists()
    assert verify(out).ok


def test_a_signal_after_the_output_is_final_ends_the_command_with_its_message() -> None:
    """Once OUT is complete nothing is stopped: the command finishes, then exits 130 saying so
    (before, a signal in its last lines said "nothing final was written")."""
    import click
    from click.testing import CliRunner

    @click.command()
    @cli_errors.interruptible
    def command() -> None:
        cli_errors.output_final("interrupted after the last image was written; o is complete")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs here and raises nothing
        click.echo("the summary still prints")

    result = CliRunner().invoke(command, [])
    assert result.exit_code == 130, result.output
    assert "the summary still prints" in result.output
    assert "Error: interrupted after the last image was written; o is complete" in result.output
    assert "nothing final" not in result.output


def test_the_deferral_covers_publishing_only() -> None:
    assert not cli_errors._deferring(sys._getframe())
    assert publish.commit_partial.__code__ in ATOMIC_CODE


# --- SIGTERM to a 2-worker run at many moments ------------------------------------------------

#: When the signal goes, one run each: soon after start-up (before any write, or before
#: the command's handler exists), once the partial exists, once the first batch is
#: journaled (mid-render), and once OUT is in place (after publishing); a run that ends
#: first is not counted. Publishing itself is signalled deterministically above
#: (test_a_signal_while_publishing_waits_and_the_output_is_complete).
MOMENTS = ["start-up", "partial", "first batch", "published"]
#: The moments inside the run.
MID_RUN = ("partial", "first batch")


def _reached(moment: str, out: Path, started: float) -> bool:
    journal = journal_of(out)
    if moment == "start-up":
        return time.monotonic() - started > 1.0
    if moment == "partial":
        return journal.is_file()
    if moment == "first batch":
        return journal.is_file() and journal.read_text(encoding="utf-8").count("\n") >= 2
    return out.exists()


def _signal_at(args: list[object], out: Path, moment: str) -> tuple[int | None, str]:
    """Run the CLI and send SIGTERM at ``moment``: (exit code, stderr); (None, '') if it ended.

    At start-up and once published the child is a new interpreter (``python -m cli``): the
    signal may land before the command's handler exists, while it imports, or after the
    command returned, while the interpreter ends. The mid-run moments are states of the
    run, not of the interpreter: there the child is a forked copy of this process
    (tests/forked.py), signalled from outside all the same, which reaches them without a
    new interpreter's second of imports. (A forked child ends the instant its command
    returns, so a signal once OUT is published would race its exit.)
    """
    if moment in MID_RUN:
        forked = ForkedCli(args, out.parent / f"{out.name}.stderr")
        deadline = time.monotonic() + 120
        while forked.poll() is None and not _reached(moment, out, 0.0):
            if time.monotonic() > deadline:
                forked.kill()
                forked.wait(30)
                raise AssertionError(f"{moment} not reached in 120 s: {forked.error()}")
            time.sleep(0.001)
        if forked.poll() is not None:
            return None, ""
        forked.send_signal(signal.SIGTERM)
        return forked.wait(120), forked.error()
    proc = subprocess.Popen(
        cli_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        cwd=Path(__file__).resolve().parents[1],
    )
    started = time.monotonic()
    while proc.poll() is None and not _reached(moment, out, started):
        time.sleep(0.001)
    if proc.poll() is not None:
        proc.communicate()
        return None, ""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _check_outcome(code: int, err: str, out: Path) -> str:
    """The message matches what is on disk; returns the state."""
    partial = writers.partial_path(out).exists()
    assert "Traceback" not in err, err
    if code == -signal.SIGTERM:  # before the command's handler was installed, or after
        assert not partial, err
        if out.exists():  # the handler was gone because the command had returned
            assert verify(out).ok
            return "killed after the end"
        return "killed before start"
    assert code == 130, (code, err)
    if partial:
        assert not out.exists()
        assert "The partial output is kept in" in err and "--resume" in err, err
        return "partial"
    if out.exists():
        assert f"{out} is complete" in err and "nothing final" not in err, err
        assert verify(out).ok
        return "complete"
    assert "interrupted; nothing final was written" in err and "--resume" not in err, err
    assert not journal_of(out).exists()
    return "nothing"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["folder", "hdf5"])
def test_sigterm_at_any_moment_leaves_what_the_message_says(tmp_path: Path, kind: str) -> None:
    """Processes signalled from outside (see :func:`_signal_at`); a partial they leave is
    resumed here (the resume reads only what the stopped process left on disk)."""
    raw = tiny_raw(tmp_path)
    before = tree_hashes(raw)
    seen: dict[str, int] = {}
    for moment in MOMENTS:
        out = tmp_path / moment.replace(" ", "-")
        out = out.with_suffix(".h5") if kind == "hdf5" else out
        args = ["expand", raw, out, *TINY, "--workers", 2]
        code, err = _signal_at(args, out, moment)
        if code is None:
            continue
        state = _check_outcome(code, err, out)
        seen[state] = seen.get(state, 0) + 1
        if state == "partial":
            resumed, text = run_cli(*args, "--resume")
            assert resumed == 0, text
            assert not writers.partial_path(out).exists()
            assert verify(out).ok
    print(f"{kind}: outcomes of {sum(seen.values())} signalled runs: {seen}")  # pytest -s
    assert seen.get("partial", 0) >= 1, seen  # the run can be caught mid-way at all
    assert tree_hashes(raw) == before


# --- a stop signal after OUT is published, on the way out of expand -------------------------


@pytest.mark.parametrize("where", ["writer exit", "backend exit"])
def test_an_interrupt_after_publishing_says_the_output_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The moments between the publish and the command's end: OUT stays and is said complete.

    Found by the signal-at-any-moment test: a SIGTERM landing while the writer closed
    (or the backend) after the publish escaped as "nothing final was written".
    """
    import augtool
    from augtool import api

    def stop_after(original: Any) -> Any:
        def exit_then_stop(self: Any, *exc: Any) -> Any:
            result = original(self, *exc)
            if exc[0] is None:
                raise cli_errors.Interrupted
            return result

        return exit_then_stop

    if where == "writer exit":
        monkeypatch.setattr(
            writers.StagedWriter, "__exit__", stop_after(writers.StagedWriter.__exit__)
        )
    else:
        monkeypatch.setattr(api._Local, "__exit__", stop_after(api._Local.__exit__))
    raw, out = tiny_raw(tmp_path), tmp_path / "out"
    with pytest.raises(Interrupted, match="is complete") as caught:
        augtool.expand(raw, out, target=30, size=32, workers=1)
    assert caught.value.exit_code == 130
    assert verify(out).ok and not writers.partial_path(out).exists()
    code, text = run_cli_in_process(monkeypatch, raw, tmp_path / "again")
    assert code == 130 and f"{tmp_path / 'again'} is complete" in text, text
    assert "nothing final" not in text


def run_cli_in_process(monkeypatch: pytest.MonkeyPatch, raw: Path, out: Path) -> tuple[int, str]:
    """``augtool expand RAW OUT`` through click in this process (the patches stay on)."""
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, ["expand", str(raw), str(out), *TINY, "-j", "1"])
    return result.exit_code, result.output


def test_the_command_tells_a_published_output_from_one_that_was_there(tmp_path: Path) -> None:
    """After an interrupt, an OUT put in place since the run began is complete; no other."""
    from augtool.commands.expand_cmd import _published_since

    out = tmp_path / "out"
    started = time.time()
    assert not _published_since(out, started)  # nothing there
    out.mkdir()
    (out / "manifest.csv").write_text("name\n")
    assert _published_since(out, started)  # this run's
    os.utime(out, (started - 3600, started - 3600))
    assert not _published_since(out, started)  # the OUT an --overwrite run found
