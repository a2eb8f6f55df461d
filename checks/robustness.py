"""Every reliability case of docs/reliability.md, end to end through the CLI, as one table.

Each case builds its input, runs ``python -m cli ...`` in a new process and
records: the outcome (handled / refused / stopped / error), the exit code, the
first line of the message, and whether anything was written (the final output,
a partial kept for ``--resume``, or nothing). A case passes when the outcome
and exit code are the expected ones, no traceback was printed, a refusal left
nothing behind and a handled output passes ``augtool verify``.

Prints a Markdown table (pasted into docs/reliability.md) and the counts.

Usage: python checks/robustness.py [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from augtool.engine.verify import verify  # noqa: E402
from augtool.store.writers import journal_path, partial_path  # noqa: E402
from tests import badinputs  # noqa: E402
from tests.child_process import (  # noqa: E402
    cli_args,
    cli_command,
    default_sigint,
    drop_file_capabilities,
    private_tmpfs_prefix,
    run_cli_measured,
    run_sub,
)
from tests.workloads import machine  # noqa: E402

FAST = ["--factor", "2", "--size", "32", "--workers", "1", "--split", "none", "-q"]
SIGNAL_RUN = ["--target", "400", "-q"]
PROVENANCE = {"created_utc", "command_line"}

#: ``python -c`` programs run like the CLI: library errors become a message and an exit code.
OPEN_DATASET = """
import sys
from augtool.errors import AugtoolError
from augtool.store.dataset import open_dataset
try:
    print(f"read {len(open_dataset(sys.argv[1]))} images")
except AugtoolError as err:
    print(f"Error: {err}", file=sys.stderr)
    sys.exit(err.exit_code)
"""
ENOSPC_AFTER_3 = """
import errno, sys
import h5py
from augtool.store import writers
calls = {"n": 0}
def full(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == 3:
        raise OSError(errno.ENOSPC, "No space left on device")
    return real(*args, **kwargs)
if sys.argv[1] == "hdf5":
    real = h5py.File.flush
    h5py.File.flush = full
else:
    real = writers.FolderWriter.write
    writers.FolderWriter.write = full
sys.argv = ["augtool", *sys.argv[2:]]
import cli
cli.main()
"""


@dataclass
class Row:
    """One line of the table."""

    case: str
    expected: str
    outcome: str
    code: int
    message: str
    written: str
    ok: bool


class Bench:
    """Builds inputs under a work folder and runs the cases."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.rows: list[Row] = []
        self.count = 0

    # --- running -------------------------------------------------------------------------

    def run(
        self, args: list[object], preexec: Callable[[], None] | None = None
    ) -> subprocess.CompletedProcess:
        """``python -m cli ARGS`` in a new process (the tests' runner)."""
        return run_sub(*args, preexec_fn=preexec)

    def record(
        self,
        case: str,
        expected: str,
        proc: subprocess.CompletedProcess,
        out: Path | None,
        check: Callable[[], str] | None = None,
    ) -> Row:
        """Classify one finished process and add its row."""
        outcome = {0: "handled", 2: "refused", 130: "stopped", 1: "error"}.get(proc.returncode)
        if outcome is None:
            outcome = (
                f"killed ({signal.Signals(-proc.returncode).name})" if proc.returncode < 0 else "?"
            )
        written = _written(out) if out is not None else "-"
        message = _first_line(proc, self.work)
        ok = outcome.split(" ")[0] == expected.split(" ")[0] and "Traceback" not in proc.stderr
        if expected == "refused" and out is not None:
            ok = ok and written == "no"
        if check is not None:
            note = check()
            ok = ok and not note.startswith("FAIL")
            message = f"{note}; {message}" if message else note
        row = Row(case, expected, outcome, proc.returncode, message, written, ok)
        self.rows.append(row)
        print(f"  {'ok ' if ok else 'BAD'} {case}: {outcome} ({proc.returncode})", file=sys.stderr)
        if not ok:
            print(f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}", file=sys.stderr)
        return row

    def fresh(self, name: str) -> Path:
        """An empty folder for one case."""
        self.count += 1
        path = self.work / f"{self.count:02d}-{name}"
        path.mkdir(parents=True)
        return path

    def expand_case(
        self,
        case: str,
        expected: str,
        make: Callable[[Path], object],
        extra: tuple[str, ...] = (),
        preexec: Callable[[], None] | None = None,
        classes: tuple[str, ...] = ("a", "b"),
        hdf5: bool = False,
    ) -> Row:
        """Small RAW + ``make(raw)``, then ``augtool expand`` with ``extra`` options."""
        root = self.fresh(case.split(" (")[0].replace(" ", "-").replace("/", "-")[:30])
        raw = badinputs.small_raw(root, classes)
        make(raw)
        out = root / ("out.h5" if hdf5 else "out")
        args = ["expand", raw, out, *FAST, *extra]
        proc = self.run(args, preexec)
        return self.record(
            case, expected, proc, out, _verified(out) if expected == "handled" else None
        )


# --- inputs: tests/badinputs.py, plus what only a table row needs ----------------------------


def _nothing(raw: Path) -> None:
    """No change."""


def _all_bad(raw: Path) -> None:
    """Nine bad files at once in class ``a`` (the link loop is two)."""
    for make in (
        badinputs.zero_byte,
        badinputs.truncated_jpeg,
        badinputs.text_as_jpeg,
        badinputs.giant,
        badinputs.broken_link,
        badinputs.file_link_loop,
        badinputs.non_utf8_name,
        badinputs.fifo,
    ):
        make(raw)


# --- checks ---------------------------------------------------------------------------------


def _written(out: Path) -> str:
    if out.exists():
        return "yes"
    if partial_path(out).exists():
        return "partial"
    return "no"


def _first_line(proc: subprocess.CompletedProcess, work: Path) -> str:
    """The error (or first) line, with work-folder paths shortened to RAW/, OUT, ..."""
    text = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    line = next((t for t in text if t.startswith("Error:")), text[0] if text else "")
    if line.endswith("problem(s) found") and text[0] != line:  # verify: problems, then a count
        line = f"{text[0]} ({line.rsplit(': ', 1)[-1]})"
    listing = re.match(r"Error: (\d+ of \d+) files in .* are not usable images:$", line)
    index = text.index(line) if line in text else -1
    if listing and index + 1 < len(text):  # the first listed file and its reason
        line = f"{listing.group(1)} files refused: {text[index + 1].strip()}"
    line = line.replace(str(work) + "/", "").replace("Error: ", "")
    line = re.sub(r"\d\d-[^/ ]+/raw/", "RAW/", line)
    line = re.sub(r"\d\d-[^/ ]+/(disk/)?", "", line)
    return line if len(line) <= 120 else line[:117] + "..."


def _verified(out: Path) -> Callable[[], str]:
    def check() -> str:
        if not out.exists():
            return "FAIL: no output"
        report = verify(out)
        return "verify ok" if report.ok else f"FAIL: verify: {report.problems[0]}"

    return check


def _skipped_recorded(out: Path, n: int) -> Callable[[], str]:
    def check() -> str:
        if not out.exists():
            return "FAIL: no output"
        if out.suffix == ".h5":
            with h5py.File(out) as fh:
                skipped = json.loads(fh.attrs["skipped"])
        else:
            skipped = json.loads((out / "augtool.json").read_text(encoding="utf-8"))["skipped"]
        ok = len(skipped) == n and verify(out).ok
        return f"{len(skipped)} skipped recorded" if ok else f"FAIL: {len(skipped)} recorded"

    return check


def content_digest(out: Path) -> dict[str, object]:
    """What must be identical between two runs: every file or dataset, provenance aside."""
    import hashlib

    if out.is_dir():
        digest: dict[str, object] = {}
        for path in sorted(out.rglob("*")):
            if path.is_file():
                rel = path.relative_to(out).as_posix()
                if rel == "augtool.json":
                    meta = json.loads(path.read_text(encoding="utf-8"))
                    digest[rel] = {k: v for k, v in meta.items() if k not in PROVENANCE}
                else:
                    digest[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        return digest
    content: dict[str, object] = {}
    with h5py.File(out) as fh:
        for key, value in fh.attrs.items():
            if key not in PROVENANCE:
                content[f"@{key}"] = _plain(value)

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                content[name] = hashlib.sha256(repr(_plain(obj[()])).encode()).hexdigest()
                for key, value in obj.attrs.items():
                    content[f"{name}@{key}"] = _plain(value)

        fh.visititems(visit)
    return content


def _plain(value: object) -> object:
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        return array.tolist()
    return (array.dtype.str, array.shape, array.tobytes())


# --- case groups ------------------------------------------------------------------------------


def bad_inputs(bench: Bench) -> None:
    refused = {bad.case: bad.make for bad in badinputs.REFUSED}
    handled = {case.case: case.make for case in badinputs.HANDLED}
    for case in ("zero-byte file", "truncated JPEG", "text file named .jpg"):
        bench.expand_case(case, "refused", refused[case])
    for case in handled:
        if case != "unicode file name":
            bench.expand_case(case, "handled", handled[case])
    bench.expand_case("20000x20000 JPEG", "refused", refused["20000x20000 JPEG"])
    _giant_allowed(bench)
    if os.geteuid() == 0 and not _can_drop_capabilities():
        bench.rows.append(
            Row(
                "unreadable file (chmod 000)",
                "refused",
                "skipped",
                0,
                "root without CAP_SETPCAP: permissions do not bite",
                "-",
                True,
            )
        )
    else:
        preexec = drop_file_capabilities if os.geteuid() == 0 else None
        unreadable = "unreadable file (chmod 000)"
        bench.expand_case(unreadable, "refused", badinputs.locked, preexec=preexec)
    for case in ("broken symlink", "file symlink loop a->b->a"):
        bench.expand_case(case, "refused", refused[case])
    bench.expand_case("folder symlink loop in a class", "handled", badinputs.folder_link_loop)
    for case in ("FIFO named .jpg", "non-UTF-8 file name"):
        bench.expand_case(case, "refused", refused[case])
    bench.expand_case("non-UTF-8 class folder", "refused", badinputs.non_utf8_class)
    bench.expand_case("unicode file name", "handled", handled["unicode file name"])
    classes = ("blast cells", "Zellen ü", "細胞")
    bench.expand_case("spaces + unicode in class names", "handled", _nothing, classes=classes)
    bench.expand_case("hidden files (.DS_Store, ._x.jpg)", "handled", badinputs.hidden_files)
    bench.expand_case("empty class folder", "refused", badinputs.empty_class)
    bench.expand_case("single class", "handled", _nothing, classes=("only",))
    bench.expand_case("unicode class names, HDF5", "handled", _nothing, classes=classes, hdf5=True)
    _many_classes(bench)
    _skip_invalid(bench)


def _can_drop_capabilities() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import os; os.stat('/')"], preexec_fn=drop_file_capabilities
    )
    return probe.returncode == 0


def _giant_allowed(bench: Bench) -> None:
    root = bench.fresh("giant-allowed")
    raw = badinputs.small_raw(root)
    badinputs.giant(raw)
    out = root / "out"
    args = ["expand", raw, out, *FAST, "--max-pixels", "500000000"]
    run = run_cli_measured(*args)
    done = subprocess.CompletedProcess(args, run.returncode, "", run.stderr)
    peak = run.peak_mb

    def check() -> str:
        note = _verified(out)()
        return note if note.startswith("FAIL") or peak < 600 else f"FAIL: peak {peak:.0f} MB"

    row = bench.record("20000x20000 JPEG, --max-pixels 5e8", "handled", done, out, check)
    row.message = f"peak RSS {peak:.0f} MB (full decode: 1,200 MB); {row.message}"


def _many_classes(bench: Bench) -> None:
    root = bench.fresh("2000-classes")
    raw = root / "raw"
    badinputs.many_classes(raw, 2000)
    out = root / "out.h5"
    started = time.perf_counter()
    proc = bench.run(["expand", raw, out, "--factor", "2", "--size", "8", "--workers", "1"])
    seconds = time.perf_counter() - started
    row = bench.record("2000 classes x 1 image", "handled", proc, out, _verified(out))
    warning = next((ln for ln in proc.stderr.splitlines() if "has no images" in ln), "")
    row.message = f"{seconds:.1f} s; {row.message.split(';')[0]}; {warning[9:80]}..."


def _skip_invalid(bench: Bench) -> None:
    for fmt in ("folder", "hdf5"):
        root = bench.fresh(f"skip-invalid-{fmt}")
        raw = badinputs.small_raw(root)
        _all_bad(raw)
        out = root / ("out.h5" if fmt == "hdf5" else "out")
        proc = bench.run(["expand", raw, out, *FAST, "--skip-invalid"])
        bench.record(
            f"--skip-invalid, 9 bad files ({fmt})", "handled", proc, out, _skipped_recorded(out, 9)
        )
        root2 = bench.fresh(f"refuse-all-{fmt}")
        raw2 = badinputs.small_raw(root2)
        _all_bad(raw2)
        if fmt == "folder":
            proc = bench.run(["expand", raw2, root2 / "out", *FAST])
            row = bench.record(
                "the same 9 bad files, no --skip-invalid", "refused", proc, root2 / "out"
            )
            row.message = row.message.split(":")[0] + ": all 9 listed in one message"
            listed = sum(1 for ln in proc.stderr.splitlines() if ln.startswith("  "))
            row.ok = row.ok and listed == 9


# --- signals --------------------------------------------------------------------------------


def build_workload(root: Path) -> Path:
    """40 sources of 1296x972 JPEG."""
    raw = root / "raw"
    for i in range(40):
        small = badinputs.picture(np.random.default_rng(i), 324, 243)
        big = cv2.resize(small, (1296, 972), interpolation=cv2.INTER_CUBIC)
        (raw / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(raw / f"c{i % 3}" / f"img_{i:03d}.jpg"), big)
    return raw


def _journal(out: Path) -> Path:
    return journal_path(out, hdf5=out.suffix == ".h5")


def signals(bench: Bench) -> None:
    root = bench.fresh("signals")
    raw = build_workload(root)
    refs = {}
    for fmt, name in (("folder", "ref"), ("hdf5", "ref.h5")):
        bench.run(["expand", raw, root / name, *SIGNAL_RUN, "--workers", "1"]).check_returncode()
        refs[fmt] = content_digest(root / name)
    for sig, fmt, workers in (
        (signal.SIGINT, "folder", 1),
        (signal.SIGTERM, "folder", 2),
        (signal.SIGINT, "hdf5", 2),
        (signal.SIGTERM, "hdf5", 1),
        (signal.SIGKILL, "folder", 2),
        (signal.SIGKILL, "hdf5", 2),
    ):
        out = root / f"{sig.name}-{workers}{'.h5' if fmt == 'hdf5' else ''}"
        args = ["expand", raw, out, *SIGNAL_RUN, "--workers", workers]
        proc = subprocess.Popen(
            cli_command(*args),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        journal = _journal(out)
        while proc.poll() is None:
            if journal.is_file() and journal.read_text(encoding="utf-8").count("\n") >= 4:
                break
            time.sleep(0.005)
        proc.send_signal(sig)
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # orphaned workers hold the pipes
            proc.kill()
            stdout, stderr = "", "Traceback: still holding the pipes 120 s after the signal"
        done = subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
        expected = "killed" if sig == signal.SIGKILL else "stopped"
        row = bench.record(f"{sig.name} mid-run ({fmt}, {workers} worker(s))", expected, done, out)
        if sig == signal.SIGKILL:
            row.message = "no message possible; the partial output and its journal stay"
        resume = bench.run([*args[:-1], 3 - workers, "--resume"])

        def same(out: Path = out, fmt: str = fmt) -> str:
            if not out.exists():
                return "FAIL: no output"
            same = content_digest(out) == refs[fmt]
            return "identical to the uninterrupted run" if same else "FAIL: differs"

        bench.record(
            f"  --resume after {sig.name} ({fmt}, {3 - workers} worker(s))",
            "handled",
            resume,
            out,
            same,
        )


# --- disks ----------------------------------------------------------------------------------


def disks(bench: Bench, raw: Path) -> None:
    for fmt in ("folder", "hdf5"):
        root = bench.fresh(f"enospc-injected-{fmt}")
        out = root / ("out.h5" if fmt == "hdf5" else "out")
        args = ["expand", raw, out, "--target", "200", "-q", "--workers", "2"]
        proc = subprocess.run(
            [sys.executable, "-c", ENOSPC_AFTER_3, fmt, *cli_args(*args)],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        bench.record(
            f"ENOSPC injected on the 3rd write ({fmt})",
            "error",
            proc,
            out,
            lambda root=root, out=out: _left(root, out),
        )
    prefix = private_tmpfs_prefix()
    if prefix is None:
        bench.rows.append(
            Row(
                "real 2 MB tmpfs (folder, HDF5, read-only)",
                "error",
                "skipped",
                0,
                "cannot mount a private tmpfs here",
                "-",
                True,
            )
        )
        return
    for fmt, options in (("folder", "size=512k"), ("hdf5", "size=512k"), ("folder", "size=2m,ro")):
        root = bench.fresh(f"tmpfs-{fmt}")
        disk = root / "disk"
        disk.mkdir()
        out = disk / ("out.h5" if fmt == "hdf5" else "out")
        args = ["expand", raw, out, "--target", "200", "-q", "--workers", "2"]
        command = (
            f"mount -t tmpfs -o {options} tmpfs {disk} && {sys.executable} -m cli "
            + " ".join(cli_args(*args))
            + f"; rc=$?; echo left: $(ls -A {disk}); exit $rc"
        )
        proc = subprocess.run(
            [*prefix, "sh", "-c", command], cwd=REPO, capture_output=True, text=True
        )
        left = proc.stdout.strip().removeprefix("left:").strip()
        what = "read-only tmpfs" if "ro" in options else "512 kB tmpfs fills mid-run"
        row = bench.record(
            f"{what} ({fmt})",
            "error",
            proc,
            None,
            lambda left=left: (
                f"left on disk: {left or 'nothing'}" if not left else f"FAIL: left {left}"
            ),
        )
        row.written = "no" if not left else "yes"


def _left(root: Path, out: Path) -> str:
    extra = sorted(p.name for p in root.iterdir())
    return "left: nothing" if not extra else f"FAIL: left {extra}"


# --- damaged outputs --------------------------------------------------------------------------


def damaged(bench: Bench) -> None:
    root = bench.fresh("damaged")
    raw = badinputs.small_raw(root, ("a", "b", "c"))
    outs = {"hdf5": root / "good.h5", "folder": root / "good"}
    for out in outs.values():
        bench.run(
            ["expand", raw, out, "--factor", "3", "--size", "32", "-q", "-j", "1"]
        ).check_returncode()
    data = outs["hdf5"].read_bytes()
    with h5py.File(outs["hdf5"]) as fh:
        offset = fh["images"].id.get_chunk_info(4).byte_offset
    tampered = bytearray(data)
    tampered[offset + 50] ^= 1
    variants = {
        "HDF5 truncated to 60 %": data[: len(data) * 6 // 10],
        "HDF5 missing its last byte": data[:-1],
        "HDF5 with one pixel changed": bytes(tampered),
        "empty file named .h5": b"",
    }
    for name, content in variants.items():
        path = root / f"{len(bench.rows)}.h5"
        path.write_bytes(content)
        bench.record(f"{name}: augtool verify", "error", bench.run(["verify", path]), None)
        proc = subprocess.run(
            [sys.executable, "-c", OPEN_DATASET, path], cwd=REPO, capture_output=True, text=True
        )
        bench.record(f"{name}: open_dataset (training)", "refused", proc, None)
    for name, target, change in (
        ("folder, manifest cut mid-row", "manifest.csv", lambda d: d[: len(d) // 2]),
        ("folder, an image file changed", None, lambda d: d[:-10]),
    ):
        out = root / f"copy{len(bench.rows)}"
        shutil.copytree(outs["folder"], out)
        path = out / target if target else next(out.rglob("*.png"))
        path.write_bytes(change(path.read_bytes()))
        bench.record(f"{name}: augtool verify", "error", bench.run(["verify", out]), None)
        proc = subprocess.run(
            [sys.executable, "-c", OPEN_DATASET, out], cwd=REPO, capture_output=True, text=True
        )
        bench.record(f"{name}: open_dataset (training)", "refused", proc, None)


# --- main -------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = [
        "| case | expected | outcome | exit | message (first line) | written | pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        message = r.message.replace("|", "\\|")
        lines.append(
            f"| {r.case} | {r.expected} | {r.outcome} | {r.code} | {message} | {r.written} "
            f"| {'yes' if r.ok else '**NO**'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="Where to build the cases.")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="augtool-robustness-", dir=args.workdir))
    started = time.perf_counter()
    bench = Bench(work)
    try:
        bad_inputs(bench)
        signals(bench)
        disks(bench, next(work.glob("*-signals")) / "raw")
        damaged(bench)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    tried = [r for r in bench.rows if r.outcome != "skipped"]
    passed = sum(r.ok for r in tried)
    print(f"augtool robustness cases, {datetime.date.today()}, {machine()}")
    print()
    print(table(bench.rows))
    print()
    skipped = len(bench.rows) - len(tried)
    print(f"{len(tried)} cases tried, {passed} passed, {skipped} skipped; {seconds:.0f} s in all")
    sys.exit(0 if passed == len(tried) else 1)


if __name__ == "__main__":
    main()
