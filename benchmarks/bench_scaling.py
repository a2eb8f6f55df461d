"""Throughput of ``expand`` on local worker processes vs a Dask LocalCluster, same machine.

Workload: the ALL-IDB1-sized set (141 sources, 2592x1944 JPEG q95, 49 / 33 /
59 per class; from ../shared/data/bccd-smears when present, else generated),
1,492 PNGs at 227x227, ``--split none``. Each way runs ``augtool.engine.expand.expand``
in this process (scan, render, write: the whole command minus start-up).
The Dask clusters (N worker processes, 1 thread each, loopback) are started
before any clock runs, their start-up time printed apart. The ways run in
rounds, each way once per round, and the best of each is kept. Every run's
output is hashed and must equal the first run's.

Usage: python benchmarks/bench_scaling.py [--workdir DIR] [--repeat N] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augtool.engine.backends import LocalBackend
from augtool.engine.dask_backend import DaskBackend
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from tests.workloads import build_allidb_like, machine

TARGET = 1492


def output_hash(out: Path) -> str:
    """One hash over every image file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(out.rglob("*.png")):
        digest.update(path.relative_to(out).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def timed_run(raw: Path, out: Path, backend: LocalBackend | DaskBackend) -> tuple[float, str]:
    """Run ``expand`` once; return the wall time and the output hash."""
    options = ExpandOptions(target=TARGET, split="none", overwrite=True)
    start = time.perf_counter()
    summary = expand(raw, out, options, backend=backend)
    seconds = time.perf_counter() - start
    if summary.total != TARGET:
        raise SystemExit(f"wrote {summary.total} images, expected {TARGET}")
    return seconds, output_hash(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "augtool-bench"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds (best run kept)")
    parser.add_argument("--workers", default="1,2", help="worker counts to try, e.g. 1,2")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    raw, origin = build_allidb_like(args.workdir)
    print(f"workload: 141 sources 2592x1944 JPEG q95 ({origin}) -> {TARGET} PNG 227x227")
    out = args.workdir / "out-scaling"
    shutil.rmtree(out, ignore_errors=True)

    with contextlib.ExitStack() as stack:
        ways: list[tuple[str, LocalBackend | DaskBackend]] = [
            (f"local workers, -j {n}" if n > 1 else "local, -j 1 (in-process)", LocalBackend(n))
            for n in counts
        ]
        for n in counts:
            start = time.perf_counter()
            backend = stack.enter_context(DaskBackend("local", workers=n))
            print(f"LocalCluster of {n} worker(s) started in {time.perf_counter() - start:.1f} s")
            ways.append((f"Dask LocalCluster, {n} worker(s)", backend))
        times: dict[str, list[float]] = {name: [] for name, _ in ways}
        first = ""
        # Rounds of every way in turn, so a change in the machine's load hits all alike.
        for round_ in range(args.repeat):
            for name, backend in ways:
                seconds, digest = timed_run(raw, out, backend)
                first = first or digest
                if digest != first:
                    raise SystemExit(f"{name} wrote other bytes than the first run")
                times[name].append(seconds)
                print(f"  round {round_ + 1}: {name}: {seconds:.1f} s", flush=True)
    print()
    print(f"{'way':<34}{'best s':>8}{'images/s':>10}   all runs (s)")
    for name, runs in times.items():
        best = min(runs)
        listing = ", ".join(f"{t:.1f}" for t in runs)
        print(f"{name:<34}{best:>8.1f}{TARGET / best:>10.1f}   {listing}")
    print(f"every run wrote the same bytes (sha256 over the images: {first[:16]}...)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
