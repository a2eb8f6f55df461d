"""Soak: consecutive expansions interrupted at random points and resumed, all byte-identical.

Each run expands the real cells (../shared/data/bccd-cells, 141 sources; else
141 images from ``augtool synth``) to the paper's 1,492 images, alternately as
a folder and as HDF5. A run is interrupted 0 to 3 times, each time after a
random delay with SIGINT or SIGTERM, and continued with ``--resume``; every
attempt uses a random ``--workers``. The finished output must equal an
uninterrupted reference run: every image file, manifest.csv and the recipe
(folder), every dataset and attribute (HDF5), the time and command line of the
run aside. Every interrupted attempt must exit with 130, print the interrupt
message and leave no final output; RAW must be unchanged at the end.

Usage: python checks/soak.py [--runs 20] [--seed 0] [--max-workers N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import content_digest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from augtool.engine.backends import default_workers  # noqa: E402
from augtool.store.writers import partial_path  # noqa: E402
from tests.workloads import SHARED_DATA, machine  # noqa: E402

#: Delays shorter than this land before Python has started augtool: default signal action.
MIN_DELAY = 0.3


def default_sigint() -> None:
    """In the child: take SIGINT's default back (a shell ignores it for background jobs)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args: object) -> list[str]:
    """The command line of ``python -m cli ARGS``."""
    return [sys.executable, "-m", "cli", *map(str, args)]


def source_folder(work: Path) -> tuple[Path, str]:
    """The real cells, or 141 generated smears of 256x256 when they are absent."""
    cells = SHARED_DATA / "bccd-cells"
    if cells.is_dir():
        return cells, "real BCCD cells (49 WBC / 33 Platelets / 59 RBC, 256x256 JPEG)"
    raw = work / "synth"
    subprocess.run(cli("synth", raw, "--size", "256x256", "-q"), cwd=REPO, check=True)
    return raw, "generated smears from augtool synth (49 / 33 / 59, 256x256)"


def tree_hash(root: Path) -> str:
    """One hash of every file's path and bytes under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="Expansions to run.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random schedule.")
    parser.add_argument("--max-workers", type=int, default=max(2, default_workers()))
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="augtool-soak-", dir=args.workdir))
    started = time.perf_counter()
    try:
        raw, origin = source_folder(work)
        raw_before = tree_hash(raw)
        references, durations = {}, {}
        for fmt, name in (("folder", "ref"), ("hdf5", "ref.h5")):
            t0 = time.perf_counter()
            subprocess.run(
                cli("expand", raw, work / name, "-q", "--workers", 1), cwd=REPO, check=True
            )
            durations[fmt] = time.perf_counter() - t0
            references[fmt] = content_digest(work / name)
        stats: Counter[str] = Counter()
        workers_used: Counter[int] = Counter()
        problems: list[str] = []
        identical = 0
        for run in range(args.runs):
            fmt = "folder" if run % 2 == 0 else "hdf5"
            out = work / (f"run{run:02d}.h5" if fmt == "hdf5" else f"run{run:02d}")
            planned = int(rng.choice([0, 1, 1, 2, 2, 3]))
            attempt = 0
            while True:
                workers = int(rng.integers(1, args.max_workers + 1))
                workers_used[workers] += 1
                command = cli("expand", raw, out, "-q", "--workers", workers)
                if attempt:
                    command.append("--resume")
                    stats["resumes"] += 1
                proc = subprocess.Popen(
                    command,
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    preexec_fn=default_sigint,
                )
                attempt += 1
                if planned == 0:
                    _, err = proc.communicate()
                    if proc.returncode != 0:
                        problems.append(f"run {run}: final attempt exited {proc.returncode}: {err}")
                    break
                delay = float(rng.uniform(MIN_DELAY, durations[fmt] * 1.1))
                deadline = time.monotonic() + delay
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                if proc.poll() is not None:  # finished before the signal
                    stats["finished before the signal"] += 1
                    _, err = proc.communicate()
                    if proc.returncode != 0:
                        problems.append(f"run {run}: exited {proc.returncode}: {err}")
                    break
                sig = signal.SIGINT if rng.integers(0, 2) else signal.SIGTERM
                had_partial = partial_path(out).exists()
                proc.send_signal(sig)
                _, err = proc.communicate()
                if proc.returncode == 0:  # it finished between the last look and the signal
                    stats["finished before the signal"] += 1
                    if "KeyboardInterrupt" in err:
                        problems.append(f"run {run}: the {sig.name} was lost: {err[-300:]}")
                    break
                planned -= 1
                stats["interruptions"] += 1
                stats[sig.name] += 1
                stats["mid-output" if had_partial else "before any output"] += 1
                if proc.returncode != 130 or "interrupted" not in err or "Traceback" in err:
                    problems.append(f"run {run}: {sig.name} gave {proc.returncode}: {err[-300:]}")
                if out.exists():
                    problems.append(f"run {run}: a final output exists after {sig.name}")
            same = out.exists() and content_digest(out) == references[fmt]
            identical += same
            if not same:
                problems.append(f"run {run} ({fmt}): differs from the reference")
            if partial_path(out).exists():
                problems.append(f"run {run}: a partial output was left behind")
            print(
                f"run {run:2d} {fmt:6s}: {attempt} attempt(s), identical: {same}", file=sys.stderr
            )
            shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
        raw_same = tree_hash(raw) == raw_before
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    print(f"augtool soak, {time.strftime('%Y-%m-%d')}, {machine()}")
    print(f"input: {origin}; 1,492 images at 227x227 per run, split 0.7 by source")
    print(
        f"reference runs (--workers 1): folder {durations['folder']:.1f} s, "
        f"HDF5 {durations['hdf5']:.1f} s"
    )
    print(
        f"runs: {args.runs} ({(args.runs + 1) // 2} folder, {args.runs // 2} HDF5), "
        f"seed {args.seed}"
    )
    print(
        f"interruptions: {stats['interruptions']} (SIGINT {stats['SIGINT']}, SIGTERM "
        f"{stats['SIGTERM']}; {stats['mid-output']} mid-output, "
        f"{stats['before any output']} before any output), all exit 130 with the message: "
        f"{'yes' if not any('gave' in p for p in problems) else 'NO'}"
    )
    print(
        f"resumes: {stats['resumes']}; finished before a planned signal: "
        f"{stats['finished before the signal']}"
    )
    print("workers per attempt: " + ", ".join(f"{k}: {v}" for k, v in sorted(workers_used.items())))
    print(
        f"all identical to the reference: {'yes' if identical == args.runs else 'NO'} "
        f"({identical}/{args.runs}); RAW unchanged: {'yes' if raw_same else 'NO'}"
    )
    print(f"total time: {seconds:.0f} s")
    for line in problems:
        print(f"PROBLEM: {line}")
    sys.exit(0 if not problems and raw_same else 1)


if __name__ == "__main__":
    main()
