"""Reliability: bad inputs, interruption and resume, full disk, damaged outputs, fuzzing.

Every bad input has a defined outcome: handled (the output is complete and
verifies) or refused before any output with a message naming the file and exit
code 2. Signals and full disks are tested with real subprocesses (``python -m
cli``); a real small filesystem is used when this machine allows a private
tmpfs mount, else that test is skipped with the reason.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.plan import plan_run
from augtool.engine.scan import ScanResult, Source, scan
from augtool.engine.verify import verify
from augtool.errors import InputError, OutputError, OutputRefused
from augtool.pipeline.builtins import (
    ORIGINAL,
    PAPER,
    Ranges,
    paper_settings,
)
from augtool.pipeline.steps import ORIGINAL_NAME, PCA
from augtool.progress import NoProgress
from augtool.store import writers
from augtool.store.dataset import open_dataset
from augtool.store.decode import decode_rgb, reduced_shape
from tests import badinputs
from tests.badinputs import HANDLED, REFUSED, Handled, Refused, small_raw
from tests.child_process import (
    child_preexec,
    cli_command,
    default_sigint,
    permissions_bite,
    private_tmpfs_prefix,
    run_cli,
    run_cli_measured,
    run_sub,
    wait_until,
)
from tests.conftest import smear_like, tree_hashes, write_image
from tests.forked import ForkedCli

REPO = Path(__file__).resolve().parents[1]
#: Small, fast expansion: 2 copies per source at 16x16, no split level in paths.
FAST = ["--factor", "2", "--size", "16", "--workers", "1", "--split", "none"]
#: Provenance that differs between any two runs (time, the command typed).
PROVENANCE = {"created_utc", "command_line"}


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root`` without following links: hash, link target or kind, mode."""
    state: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            if path.is_symlink():
                state[str(path)] = ("link", os.readlink(path))
            elif path.is_file():
                state[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), info.st_mode)
            else:
                state[str(path)] = ("other", info.st_mode, info.st_mtime_ns)
    return state


def nothing_written(out: Path) -> bool:
    return not out.exists() and not writers.partial_path(out).exists()


def original_of(out: Path, stem: str) -> np.ndarray:
    """The original copy (copy 0) of the source with this output stem."""
    data = open_dataset(out)
    for name, image in zip(data.names, data.images, strict=True):
        if Path(name).name.startswith(f"{stem}__00_original"):
            return image
    raise AssertionError(f"no original of {stem} in {out}")


# --- 1. bad inputs, one file at a time ----------------------------------------------------


@pytest.mark.parametrize("bad", REFUSED, ids=[bad.case for bad in REFUSED])
def test_bad_file_is_refused_before_any_output(tmp_path: Path, bad: Refused) -> None:
    raw = small_raw(tmp_path)
    shown = bad.make(raw)
    before = snapshot(raw)
    out = tmp_path / "out"
    code, text = run_cli("expand", raw, out, *FAST)
    assert code == 2, text
    assert f"raw/{shown}: " in text and bad.reason in text, text
    assert "--skip-invalid" in text and "Traceback" not in text
    assert "DecompressionBomb" not in text
    assert nothing_written(out)
    assert snapshot(raw) == before


@pytest.mark.parametrize("case", HANDLED, ids=[case.case for case in HANDLED])
def test_unusual_file_is_converted_to_8_bit_rgb(tmp_path: Path, case: Handled) -> None:
    raw = small_raw(tmp_path)
    stem, rgb = case.make(raw)
    out = tmp_path / "out"
    code, text = run_cli("expand", raw, out, *FAST)
    assert code == 0, text
    assert verify(out).ok
    image = original_of(out, stem)
    assert np.abs(image.reshape(-1, 3).mean(axis=0) - rgb).max() <= 2, image[0, 0]


@pytest.mark.slow
def test_huge_jpeg_is_decoded_in_bounded_memory_when_allowed(tmp_path: Path) -> None:
    """Above --max-pixels it is refused (above); allowed, it is DCT-scaled 1/8 while decoding."""
    raw = small_raw(tmp_path)
    badinputs.giant(raw)
    out = tmp_path / "out"
    run = run_cli_measured("expand", raw, out, *FAST, "--max-pixels", "500000000", "-q")
    assert run.returncode == 0, run.stderr
    # The full image alone would take 1,200 MB as RGB; a run that decodes it whole
    # cannot stay under this bound.
    assert run.peak_mb < 600, f"peak RSS {run.peak_mb:.0f} MB"
    assert (original_of(out, "giant") == 128).all()


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    """chmod 000; as root, run the CLI without the capabilities that bypass permissions."""
    raw = small_raw(tmp_path)
    shown = badinputs.locked(raw)
    if not permissions_bite(raw / shown):
        pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE: permissions do not bite")
    out = tmp_path / "out"
    proc = run_sub("expand", raw, out, *FAST, preexec_fn=child_preexec())
    assert proc.returncode == 2, proc.stderr
    assert f"raw/{shown}: cannot read (Permission denied)" in proc.stderr
    assert nothing_written(out)


def test_unreadable_file_injected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same refusal when the read itself fails (works as root too)."""
    raw = small_raw(tmp_path)
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "1.jpg" and self.parent.name == "b":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    code, text = run_cli("expand", raw, tmp_path / "out", *FAST)
    assert code == 2 and "raw/b/1.jpg: cannot read (Permission denied)" in text
    assert nothing_written(tmp_path / "out")


# --- 1. bad inputs: names, folders, classes -------------------------------------------------


def test_unicode_and_spaces_in_class_names_round_trip(tmp_path: Path) -> None:
    classes = ("blast cells", "Zellen ü", "細胞")
    raw = small_raw(tmp_path, classes)
    for out in (tmp_path / "o", tmp_path / "o.h5"):
        code, text = run_cli("expand", raw, out, *FAST)
        assert code == 0, text
        data = open_dataset(out)
        assert data.class_names == sorted(classes)
        assert Counter(data.labels.tolist()) == {0: 4, 1: 4, 2: 4}
        assert verify(out).ok
    assert (tmp_path / "o" / "細胞" / "0__00_original.png").is_file()


def test_non_utf8_class_folder_is_refused_even_with_skip_invalid(tmp_path: Path) -> None:
    raw = small_raw(tmp_path)
    shown = badinputs.non_utf8_class(raw)
    for extra in ([], ["--skip-invalid"]):
        code, text = run_cli("expand", raw, tmp_path / "out", *FAST, *extra)
        assert code == 2 and shown in text and "not valid UTF-8" in text, text
        assert nothing_written(tmp_path / "out")


def test_hidden_files_are_ignored(tmp_path: Path) -> None:
    raw = small_raw(tmp_path)
    badinputs.hidden_files(raw)
    code, text = run_cli("expand", raw, tmp_path / "out", *FAST)
    assert code == 0, text
    data = open_dataset(tmp_path / "out")
    assert data.class_names == ["a", "b"] and len(data) == 8


def test_folder_link_loop_inside_a_class_is_not_followed(tmp_path: Path) -> None:
    raw = small_raw(tmp_path)
    shown = badinputs.folder_link_loop(raw)
    code, text = run_cli("expand", raw, tmp_path / "out", *FAST)
    assert code == 0, text
    assert f"folder links (not followed): {shown}" in text
    assert len(open_dataset(tmp_path / "out")) == 8


def test_empty_class_folder_is_refused(tmp_path: Path) -> None:
    raw = small_raw(tmp_path)
    shown = badinputs.empty_class(raw)
    code, text = run_cli("expand", raw, tmp_path / "out", *FAST)
    assert code == 2 and f"class folder(s) with no usable images: {shown}" in text
    assert nothing_written(tmp_path / "out")


def test_single_class(tmp_path: Path) -> None:
    raw = small_raw(tmp_path, ("only",))
    code, text = run_cli("expand", raw, tmp_path / "out", "--factor", 3, "--size", 16, "-j", 1)
    assert code == 0, text
    data = open_dataset(tmp_path / "out")
    assert data.class_names == ["only"] and len(data) == 6


def test_hundreds_of_classes(tmp_path: Path) -> None:
    """300 classes of one image (checks/robustness.py times 2000)."""
    raw = tmp_path / "raw"
    badinputs.many_classes(raw, 300)
    out = tmp_path / "out.h5"
    code, text = run_cli("expand", raw, out, "--factor", "2", "--size", "8", "--workers", "1")
    assert code == 0, text
    # One source per class: every group lands in train, and the warning stays one line.
    warning = next(line for line in text.splitlines() if "has no images of" in line)
    assert "300 class(es) c0000, c0001" in warning and "... and 290 more" in warning
    data = open_dataset(out)
    assert len(data.class_names) == 300 and len(data) == 600
    assert np.bincount(data.labels).tolist() == [2] * 300


# --- 1. --skip-invalid records what it skipped ----------------------------------------------


def test_skip_invalid_lists_and_records_every_skipped_file(tmp_path: Path) -> None:
    raw = small_raw(tmp_path)
    bad = [
        make(raw)
        for make in (
            badinputs.zero_byte,
            badinputs.text_as_jpeg,
            badinputs.truncated_jpeg,
            badinputs.broken_link,
            badinputs.giant,
        )
    ]
    bad.append(badinputs.non_utf8_name(raw, "b"))
    for out in (tmp_path / "o", tmp_path / "o.h5"):
        code, text = run_cli("expand", raw, out, *FAST, "--skip-invalid")
        assert code == 0, text
        assert f"skipped {len(bad)} invalid file(s) (recorded in the output)" in text
        if out.suffix == ".h5":
            with h5py.File(out) as fh:
                skipped = json.loads(fh.attrs["skipped"])
        else:
            skipped = json.loads((out / "augtool.json").read_text(encoding="utf-8"))["skipped"]
        assert sorted(s["path"] for s in skipped) == sorted(bad)
        assert all(s["reason"] for s in skipped)
        data = open_dataset(out)
        assert len(data) == 8 and verify(out).ok


# --- 2. interruption and resume ---------------------------------------------------------------


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 sources of 1296x972 JPEG: big enough to be caught mid-run, small enough to be fast.

    Each is a smear drawn at an eighth of the size and scaled up (1.2 CPU-seconds for the
    24 when drawn at a quarter).
    """
    raw = tmp_path_factory.mktemp("signals") / "raw"
    for i in range(24):
        small = smear_like(np.random.default_rng(i), 162, 121)
        big = cv2.resize(small, (1296, 972), interpolation=cv2.INTER_LINEAR)
        write_image(raw / f"c{i % 3}" / f"img_{i:03d}.jpg", big)
    return raw


#: The interrupted runs: 96 images per class at 128x128 (240 at 227x227 before; the work was
#: not the point). The journal gets one batch per source, and the signal is sent after two,
#: so 22 of the 24 sources are still to come.
SIGNAL_TARGET, SIGNAL_SIZE = 96, 128
SIGNAL_RUN = ["--target", str(SIGNAL_TARGET), "--size", str(SIGNAL_SIZE), "-q"]


@pytest.fixture(scope="module")
def references(workload: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Uninterrupted runs, folder and HDF5."""
    root = tmp_path_factory.mktemp("reference")
    refs = {"folder": root / "ref", "hdf5": root / "ref.h5"}
    for out in refs.values():
        expand(workload, out, ExpandOptions(target=SIGNAL_TARGET, size=SIGNAL_SIZE, workers=1))
    return refs


def journal_of(out: Path) -> Path:
    return writers.journal_path(out, hdf5=out.suffix == ".h5")


def interrupt_midway(args: list[object], out: Path, sig: int) -> tuple[int, str]:
    """Start the CLI, wait until two batches are journaled, send ``sig``; return code, stderr."""
    proc = subprocess.Popen(
        cli_command(*args),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # a background shell job would ignore SIGINT
    )
    journal = journal_of(out)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.is_file() and journal.read_text(encoding="utf-8").count("\n") >= 3:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def same_output(a: Path, b: Path) -> None:
    """Identical bytes for every image and table; provenance (time, command) aside."""
    if a.is_dir():
        ha, hb = tree_hashes(a), tree_hashes(b)
        assert ha.keys() == hb.keys()
        assert {k: v for k, v in ha.items() if k != "augtool.json"} == {
            k: v for k, v in hb.items() if k != "augtool.json"
        }
        ja, jb = (json.loads((p / "augtool.json").read_text(encoding="utf-8")) for p in (a, b))
        assert {k: v for k, v in ja.items() if k not in PROVENANCE} == {
            k: v for k, v in jb.items() if k not in PROVENANCE
        }
        return
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert _h5_content(fa) == _h5_content(fb)


def _plain(value: object) -> object:
    """Comparable form of an HDF5 value: bytes of numeric arrays, lists of strings."""
    array = np.asarray(value)
    return array.tolist() if array.dtype.kind in "OSU" else (array.dtype.str, array.tobytes())


def _h5_content(fh: h5py.File) -> dict[str, object]:
    content = {f"@{k}": _plain(v) for k, v in fh.attrs.items() if k not in PROVENANCE}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            content[name] = _plain(obj[()])
            for k, v in obj.attrs.items():
                content[f"{name}@{k}"] = _plain(v)

    fh.visititems(visit)
    return content


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "kind", "workers"),
    [
        (signal.SIGINT, "folder", 1),
        (signal.SIGTERM, "folder", 2),
        (signal.SIGTERM, "hdf5", 2),
        (signal.SIGKILL, "hdf5", 1),
    ],
    ids=["SIGINT-folder", "SIGTERM-folder-2-workers", "SIGTERM-hdf5-2-workers", "SIGKILL-hdf5"],
)
def test_signal_stops_cleanly_and_resume_is_byte_identical(
    workload: Path, references: dict[str, Path], tmp_path: Path, sig: int, kind: str, workers: int
) -> None:
    before = tree_hashes(workload)
    out = tmp_path / ("out.h5" if kind == "hdf5" else "out")
    args = ["expand", workload, out, *SIGNAL_RUN, "--workers", workers]
    code, err = interrupt_midway(args, out, sig)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 130, err
        assert "interrupted; nothing final was written" in err and "--resume" in err
        assert "Traceback" not in err and "UserWarning" not in err
    assert not out.exists()
    assert writers.partial_path(out).exists()
    # The resume reads only what the stopped process left on disk: here, in this process.
    code, text = run_cli(*args[:-1], 3 - workers, "--resume")
    assert code == 0, text
    assert not writers.partial_path(out).exists() and not journal_of(out).exists()
    same_output(out, references[kind])
    assert verify(out).ok
    assert tree_hashes(workload) == before


def _state(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[0]


def _running(pid: int) -> bool:
    state = _state(pid)
    return state is not None and state[1] != "Z"


def _children(pid: int) -> list[int]:
    return [
        int(e) for e in os.listdir("/proc") if e.isdigit() and (_state(int(e)) or (0, ""))[0] == pid
    ]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and prctl")
def test_kill_9_leaves_no_worker_processes(workload: Path, tmp_path: Path) -> None:
    """Workers die with the main process (PR_SET_PDEATHSIG); before, they waited forever."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        cli_command("expand", workload, out, *SIGNAL_RUN, "--workers", 2),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    journal = journal_of(out)
    while proc.poll() is None and not (
        journal.is_file() and journal.read_text(encoding="utf-8").count("\n") >= 3
    ):
        time.sleep(0.005)
    workers = _children(proc.pid)
    assert workers, "no worker processes seen"
    proc.kill()
    proc.communicate(timeout=30)  # orphans would hold the pipes open
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(w) for w in workers):
        time.sleep(0.05)
    assert not [w for w in workers if _running(w)], "orphaned workers still running"


def _fail_on_call(n: int, exc: BaseException) -> Callable[..., None]:
    calls = {"n": 0}

    def hook(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == n:
            raise exc

    return hook


def test_interrupt_during_hdf5_finish_then_resume(
    make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = make_raw(size=(48, 36))
    opts = ExpandOptions(target=30, size=16, workers=1)
    reference = tmp_path / "ref.h5"
    expand(raw, reference, opts)
    out = tmp_path / "out.h5"
    real = h5py.Group.create_dataset
    fail = _fail_on_call(1, KeyboardInterrupt())

    def create_dataset(self: h5py.Group, name: str, *args: object, **kwargs: object) -> object:
        if name == "params":  # a few tables are written already
            fail()
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)
    with pytest.raises(Exception, match="with resume to continue"):
        expand(raw, out, opts)
    monkeypatch.undo()
    assert not out.exists()
    expand(raw, out, ExpandOptions(target=30, size=16, workers=1, resume=True))
    same_output(out, reference)


@pytest.mark.parametrize("name", ["out", "out.h5"])
def test_resume_with_other_options_is_refused_and_keeps_the_partial(
    make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    raw = make_raw(size=(48, 36))
    out = tmp_path / name
    writer = writers.Hdf5Writer if name.endswith(".h5") else writers.FolderWriter
    monkeypatch.setattr(writer, "commit", _fail_on_call(2, KeyboardInterrupt()))
    with pytest.raises(Exception, match="with resume to continue"):
        expand(raw, out, ExpandOptions(target=30, size=16, workers=1))
    monkeypatch.undo()
    partial = snapshot(tmp_path)
    with pytest.raises(OutputRefused, match="other inputs or options"):  # exit 2
        expand(raw, out, ExpandOptions(target=30, size=16, seed=1, workers=1, resume=True))
    assert snapshot(tmp_path) == partial
    # Without --resume the partial is replaced and the run completes.
    expand(raw, out, ExpandOptions(target=30, size=16, seed=1, workers=1))
    assert verify(out).ok and not writers.partial_path(out).exists()


def test_an_interrupt_lost_in_a_callback_still_stops_the_run(
    make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python drops a KeyboardInterrupt raised inside a weakref callback (seen with h5py under
    SIGTERM: the run went on and exited 0); the handler's flag stops it at the next batch."""
    from augtool.commands import exit_codes as cli_errors

    raw = make_raw(size=(48, 36))
    real = writers.FolderWriter.commit

    def commit(self: writers.FolderWriter, records: list[dict]) -> None:
        real(self, records)
        cli_errors._STOP.set()  # the handler ran, its raise was swallowed

    monkeypatch.setattr(writers.FolderWriter, "commit", commit)
    out = tmp_path / "out"
    code, text = run_cli("expand", raw, out, "--target", 30, "--size", 16, "-j", 1)
    assert code == 130 and "interrupted; nothing final was written" in text, text
    assert not out.exists() and writers.partial_path(out).exists()


def test_background_thread_errors_are_quiet_only_after_a_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from augtool.commands import exit_codes as cli_errors

    seen: list[object] = []
    monkeypatch.setattr(cli_errors, "_THREAD_EXCEPTHOOK", seen.append)
    args = threading.ExceptHookArgs((KeyError, KeyError(3), None, None))
    cli_errors._STOP.clear()
    cli_errors._thread_exceptions(args)
    assert seen == [args]
    cli_errors._STOP.set()
    cli_errors._thread_exceptions(args)
    assert seen == [args]
    cli_errors._STOP.clear()


def test_an_interrupt_lost_in_a_callback_prints_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dropped KeyboardInterrupt's "Exception ignored in ..." report is hidden after a
    stop (the flag re-raises it); any other unraisable exception is still reported."""
    from augtool.commands import exit_codes as cli_errors

    seen: list[type[BaseException]] = []
    monkeypatch.setattr(cli_errors, "_UNRAISABLE_HOOK", lambda args: seen.append(args.exc_type))
    monkeypatch.setattr(sys, "unraisablehook", cli_errors._unraisable)

    class Dropping:
        def __init__(self, error: type[BaseException]) -> None:
            self.error = error

        def __del__(self) -> None:
            raise self.error

    try:
        cli_errors._STOP.set()
        Dropping(KeyboardInterrupt)  # dropped at once: __del__ raises inside the collector
        Dropping(ValueError)
        cli_errors._STOP.clear()
        Dropping(KeyboardInterrupt)
    finally:
        cli_errors._STOP.clear()
    assert seen == [ValueError, KeyboardInterrupt]


def test_interrupt_during_scan_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = small_raw(tmp_path)
    monkeypatch.setattr("augtool.engine.scan.inspect_file", _fail_on_call(1, KeyboardInterrupt()))
    code, text = run_cli("expand", raw, tmp_path / "out", *FAST)
    assert code == 130 and "interrupted" in text
    assert nothing_written(tmp_path / "out")


# --- 3. full disk and write errors ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "hdf5"])
def test_enospc_injected_mid_run(
    make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    raw = make_raw(size=(48, 36))
    before = tree_hashes(raw)
    if kind == "hdf5":
        # h5py reports a failed write as RuntimeError with the errno inside its text.
        text = "Unable to synchronously flush file (file write failed: errno = 28, ...)"
        monkeypatch.setattr(h5py.File, "flush", _fail_on_call(3, RuntimeError(text)))
        out = tmp_path / "out.h5"
    else:
        full = OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(writers.Journal, "append", _fail_on_call(3, full))
        out = tmp_path / "out"
    with pytest.raises(OutputError, match=r"No space left on device \(errno 28\)"):
        expand(raw, out, ExpandOptions(target=30, size=16, workers=1))
    assert nothing_written(out) and not journal_of(out).exists()
    assert list(tmp_path.iterdir()) == [raw]
    assert tree_hashes(raw) == before


@pytest.mark.slow
def test_real_full_disk_and_read_only_disk(workload: Path, tmp_path: Path) -> None:
    """A 2 MB tmpfs fills mid-run; a read-only one refuses the start. Nothing is left behind."""
    prefix = private_tmpfs_prefix()
    if prefix is None:
        pytest.skip("cannot mount a private tmpfs here (needs unshare and mount rights)")
    disk = tmp_path / "disk"
    disk.mkdir()
    before = tree_hashes(workload)
    results = {}
    for name, options, out in [
        ("folder", "size=2m", "out"),
        ("hdf5", "size=2m", "out.h5"),
        ("read-only", "size=2m,ro", "out"),
    ]:
        expand_args = [workload, disk / out, "--target", 240, "--workers", 2, "-q"]
        command = (
            f"mount -t tmpfs -o {options} tmpfs {disk} && "
            + " ".join(cli_command("expand", *expand_args))
            + f"; echo rc=$?; ls -A {disk}"
        )
        proc = subprocess.run(
            [*prefix, "sh", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        results[name] = proc
    for name in ("folder", "hdf5"):
        proc = results[name]
        assert proc.stdout.splitlines() == ["rc=1"], (proc.stdout, proc.stderr)  # nothing left
        assert "No space left on device (errno 28)" in proc.stderr
        assert "partial output was removed and RAW is untouched" in proc.stderr
        assert "Traceback" not in proc.stderr
    proc = results["read-only"]
    assert proc.stdout.splitlines() == ["rc=1"], (proc.stdout, proc.stderr)
    assert "Read-only file system (errno 30)" in proc.stderr
    assert tree_hashes(workload) == before


# --- 4. damaged outputs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    raw = root / "raw"
    for i in range(9):
        write_image(raw / f"c{i % 3}" / f"{i}.jpg", smear_like(np.random.default_rng(i), 48, 36))
    outs = {"folder": root / "o", "hdf5": root / "o.h5"}
    for out in outs.values():
        expand(raw, out, ExpandOptions(target=27, size=16, workers=1))
    return outs


def damaged_copy(src: Path, tmp_path: Path, change: Callable[[bytearray], bytearray]) -> Path:
    dst = tmp_path / src.name
    dst.write_bytes(bytes(change(bytearray(src.read_bytes()))))
    return dst


def cli_verify(path: Path) -> tuple[int, str]:
    return run_cli("verify", path)


@pytest.mark.parametrize(
    "cut",
    [lambda d: d[:0], lambda d: d[:7], lambda d: d[: len(d) * 3 // 10], lambda d: d[:-1]],
    ids=["0 bytes", "7 bytes", "30 %", "all but the last byte"],
)
def test_truncated_hdf5_is_reported_not_crashed_on(
    outputs: dict[str, Path], tmp_path: Path, cut: Callable[[bytearray], bytearray]
) -> None:
    bad = damaged_copy(outputs["hdf5"], tmp_path, cut)
    with pytest.raises(InputError, match=r"o\.h5: .*(truncated|damaged|not a)"):
        open_dataset(bad)
    assert not verify(bad).ok
    code, text = cli_verify(bad)
    assert code == 1 and "problem(s) found" in text and "Traceback" not in text


def test_tampered_hdf5_pixel_is_refused_by_training_and_reported_by_verify(
    outputs: dict[str, Path], tmp_path: Path
) -> None:
    with h5py.File(outputs["hdf5"]) as fh:
        offset = fh["images"].id.get_chunk_info(5).byte_offset

    def flip(data: bytearray) -> bytearray:
        data[offset + 100] ^= 0x01
        return data

    bad = damaged_copy(outputs["hdf5"], tmp_path, flip)
    with pytest.raises(InputError, match="image 5: the image differs from its recorded SHA-256"):
        open_dataset(bad)
    report = verify(bad)
    assert [p for p in report.problems if "content differs" in p] == [
        p for p in report.problems if "image 5" in p
    ]
    assert open_dataset(bad, check_hashes=False).images.shape[0] == 27


def test_random_damage_to_hdf5_never_escapes_as_a_traceback(
    outputs: dict[str, Path], tmp_path: Path
) -> None:
    """Seeded fuzzing: flipped bytes, overwritten runs, cuts. Reading either refuses with
    InputError or returns exactly the original images and labels."""
    original = open_dataset(outputs["hdf5"])
    src = outputs["hdf5"].read_bytes()
    rng = np.random.default_rng(7)
    outcomes: Counter[str] = Counter()
    for trial in range(120):
        data = bytearray(src)
        if trial % 3 == 0:
            data = data[: int(rng.integers(0, len(data)))]
        elif trial % 3 == 1:
            for _ in range(int(rng.integers(1, 20))):
                data[int(rng.integers(0, len(data)))] ^= int(rng.integers(1, 256))
        else:
            at = int(rng.integers(0, len(data) - 64))
            data[at : at + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        bad = tmp_path / "f.h5"
        bad.write_bytes(bytes(data))
        try:
            loaded = open_dataset(bad)
        except InputError:
            outcomes["refused"] += 1
        else:
            outcomes["read"] += 1
            np.testing.assert_array_equal(loaded.images, original.images)
            np.testing.assert_array_equal(loaded.labels, original.labels)
        verify(bad)  # a report, never an exception
    assert outcomes["refused"] > 80


@pytest.mark.parametrize(
    ("target", "change", "expect"),
    [
        ("manifest.csv", lambda d: d[: len(d) // 2], "truncated or damaged"),
        ("manifest.csv", lambda d: d[: d.rindex(b"\n", 0, len(d) - 1) + 1], "lists 26 images"),
        ("augtool.json", lambda d: d[:40], "augtool.json: unreadable or damaged"),
        ("augtool.json", lambda d: b"\xff" + d, "augtool.json: unreadable or damaged"),
        ("train/c0/0__00_original.png", lambda d: d[:-20], "differs from its recorded SHA-256"),
    ],
    ids=[
        "manifest cut mid-row",
        "manifest lost its last row",
        "recipe cut",
        "recipe not UTF-8",
        "image file cut",
    ],
)
def test_damaged_folder_output(
    outputs: dict[str, Path], tmp_path: Path, target: str, change: Callable, expect: str
) -> None:
    out = tmp_path / "o"
    shutil.copytree(outputs["folder"], out)
    path = out / target
    if not path.exists():  # the split of source c0/0 depends on the seed
        path = next(out.glob(f"*/{Path(target).relative_to('train')}"))
    path.write_bytes(bytes(change(bytearray(path.read_bytes()))))
    with pytest.raises(InputError, match=expect):
        open_dataset(out)
    code, text = cli_verify(out)
    assert code == 1 and "Traceback" not in text, text


# --- 5. property-based tests ------------------------------------------------------------------

ALL_TRANSFORMS = [ORIGINAL, *PAPER.values()]


def settings_of(step, ranges: Ranges | None = None):
    """A paper step's settings at ``ranges`` (the paper's), or the step's own defaults."""
    if step.name in PAPER:
        return paper_settings(step.name, ranges or Ranges())
    return step.settings()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 512),
    height=st.integers(1, 512),
    channels=st.sampled_from([1, 3, 4]),
    depth=st.sampled_from([8, 16]),
    container=st.sampled_from([".png", ".tif"]),
    reduction=st.sampled_from([1, 2, 4, 8]),
    size=st.integers(8, 64),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_transform_on_any_decoded_input(
    width: int,
    height: int,
    channels: int,
    depth: int,
    container: str,
    reduction: int,
    size: int,
    seed: int,
) -> None:
    """Random arrays -> PNG/TIFF -> decode_rgb at a random reduction -> every transform."""
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if depth == 8 else np.uint16
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    ok, buf = cv2.imencode(container, pixels)
    assert ok
    work = decode_rgb(buf.tobytes(), reduction)
    assert work.dtype == np.uint8 and work.flags.c_contiguous
    assert work.shape == (*reduced_shape(width, height, reduction)[::-1], 3)
    if reduction == 1 and channels == 1:
        expected = pixels if depth == 8 else (pixels.astype(np.uint32) * 255 + 32767) // 65535
        np.testing.assert_array_equal(work, np.repeat(expected[:, :, None], 3, axis=2))
    if reduction == 1 and channels == 3:
        expected = pixels[:, :, ::-1]
        if depth == 16:
            expected = (expected.astype(np.uint32) * 255 + 32767) // 65535
        np.testing.assert_array_equal(work, expected)
    scale = (work.shape[1] / width, work.shape[0] / height)
    before = work.copy()
    for transform in ALL_TRANSFORMS:
        params = transform.sample(np.random.default_rng(seed), settings_of(transform))
        out = transform.run(work, params, scale, size)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8, transform.name
        np.testing.assert_array_equal(out, transform.run(work, params, scale, size))
    np.testing.assert_array_equal(work, before)


def _expected_counts(sizes: dict[str, int], extra: int) -> dict[str, int]:
    """Copies per class by the rule, computed independently of augtool.engine.plan."""
    n = sum(sizes.values())
    base, rem = divmod(extra, n)
    counts = {}
    for cls in sorted(sizes, key=lambda c: (sizes[c], c)):
        bonus = min(sizes[cls], rem)
        rem -= bonus
        counts[cls] = sizes[cls] * base + bonus
    return counts


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.dictionaries(
        st.text("abcdefgh", min_size=1, max_size=3), st.integers(1, 25), min_size=1, max_size=6
    ),
    extra=st.integers(0, 800),
    pca=st.integers(0, 300),
)
def test_plan_totals_over_random_classes_and_targets(
    sizes: dict[str, int], extra: int, pca: int
) -> None:
    sources = [
        Source(f"{cls}/{i}.jpg", cls, label, f"{label:032x}{i:032x}", 64, 48, f"{cls}/{i}", str(i))
        for label, cls in enumerate(sorted(sizes))
        for i in range(sizes[cls])
    ]
    n = len(sources)
    scan_result = ScanResult(Path("raw"), sorted(sizes), sources)
    options = ExpandOptions(target=n + extra, pca_count=pca, split="none")
    run = plan_run(scan_result, options, NoProgress())
    assert len(run.jobs) == n + extra + pca
    assert sorted(j.source for j in run.jobs if j.transform == ORIGINAL_NAME) == list(range(n))
    class_of = [sources[j.source].class_name for j in run.jobs]
    conventional = Counter(c for c, j in zip(class_of, run.jobs, strict=True) if j.transform != PCA)
    jittered = Counter(c for c, j in zip(class_of, run.jobs, strict=True) if j.transform == PCA)
    for cls, copies in _expected_counts(sizes, extra).items():
        assert conventional[cls] == sizes[cls] + copies
    for cls, copies in _expected_counts(sizes, pca).items():
        assert jittered[cls] == copies
    assert len(set(run.names)) == len(run.names)


def test_scan_accepts_every_format_it_lists(tmp_path: Path) -> None:
    """Each suffix of IMAGE_SUFFIXES, any case, decodes to the same pixels."""
    raw = tmp_path / "raw"
    grey = np.full((12, 16, 3), 77, np.uint8)
    for suffix in (".jpg", ".JPEG", ".png", ".tif", ".TIFF", ".bmp"):
        write_image(raw / "a" / f"x{suffix.lstrip('.')}{suffix}", grey, quality=100)
    result = scan(raw)
    assert len(result.sources) == 6 and not result.skipped
    for src in result.sources:
        image = decode_rgb((raw / src.path).read_bytes())
        assert abs(int(image.mean()) - 77) <= 1, src.path


def test_stdout_is_not_decorated_when_not_a_terminal(tmp_path: Path) -> None:
    raw = small_raw(tmp_path)
    (raw / "a" / "readme.txt").write_text("x")
    proc = run_sub("expand", raw, tmp_path / "out", *FAST, "-q")
    assert proc.returncode == 0, proc.stderr
    assert "warning: ignored 1 file(s)" in proc.stderr and "\x1b[" not in proc.stderr


def test_library_errors_never_print_a_traceback_for_a_non_utf8_raw_path(tmp_path: Path) -> None:
    raw = small_raw(tmp_path)
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/r\xe9w"))
    raw.rename(odd)
    proc = run_sub("expand", odd, tmp_path / "out.h5", *FAST)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "out.h5") as fh:
        assert "r\\xe9w" in fh.attrs["command_line"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_train_stops_cleanly(tmp_path: Path, sig: int) -> None:
    """A training run stopped by a signal: exit 130, a message, no run folder, no partial.

    The run is a forked child of this process (tests/forked.py): a separate process that
    the signal reaches from outside while it trains, without a new interpreter's seconds
    of importing torch first.
    """
    import torch

    import cli  # noqa: F401  (imported here once, not in every child)
    import model.run  # noqa: F401

    # The first optimizer a process builds imports torch._dynamo (seconds): here, once.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    from tests.h5data import make_blob_h5

    # Small data: the run is stopped inside its first epoch of 500, whatever the set's size.
    data = make_blob_h5(tmp_path / "d.h5", (12, 12, 12), size=32)
    run = tmp_path / "run"
    started = tmp_path / "training-started"

    def mark_the_first_step() -> None:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        register_optimizer_step_pre_hook(lambda *_: started.touch())

    proc = ForkedCli(
        ["train", data, run, "--epochs", 500], tmp_path / "stderr", mark_the_first_step
    )
    # Data loaded, model built, inside the epoch loop: the first optimizer step has begun.
    if not wait_until(started.exists, proc):
        proc.kill()
        raise AssertionError(f"training never started: {proc.wait(60)} {proc.error()}")
    proc.send_signal(sig)
    code, err = proc.wait(60), proc.error()
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "stderr", started.name]
