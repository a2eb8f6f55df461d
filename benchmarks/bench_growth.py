"""How ``augtool expand`` grows with the number of sources: time and peak memory.

Sources are generated smears (``augtool synth``, 640x480 JPEG, the paper's
class shares 49 / 33 / 59 of 141), made once per count under --workdir and
reused. For every count, ``augtool expand RAW OUT`` runs as a user runs it
(new process, all cores, ``--split none``) at the paper's ratio of outputs to
sources (1,492 per 141) into a folder and into one HDF5 file; each run is
timed (wall), and its process tree (main process and workers) sampled from
/proc every 20 ms for peak RSS and CPU seconds. The last lines give the
slope: the exponent ``b`` of ``time ~ sources^b`` between each pair of
counts (1.0 is linear), and the marginal cost per 1,000 sources.

Usage: python benchmarks/bench_growth.py [--workdir DIR] [--sources 141,1410,14100]
       [--size 64] [--workers N]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augtool.tools.synth import synthesize
from tests.workloads import machine, run_tree

#: The paper's sources per class, and its outputs per 141 sources.
PAPER = {"ALL": 49, "AML": 33, "normal": 59}
OUTPUTS_PER_141 = 1492


def sources(workdir: Path, n: int) -> Path:
    """``n`` generated smears in the paper's class shares, made once under ``workdir``."""
    raw = workdir / f"synth-{n}"
    if (raw / ".complete").exists():
        return raw
    shutil.rmtree(raw, ignore_errors=True)
    per_class = {c: round(k * n / 141) for c, k in PAPER.items()}
    per_class["normal"] += n - sum(per_class.values())
    synthesize(raw, per_class=per_class)
    (raw / ".complete").write_text("ok\n")
    return raw


def run_expand(
    raw: Path, out: Path, target: int, size: int, workers: int
) -> tuple[float, float, int]:
    """``augtool expand`` in a new process; wall seconds, CPU seconds, peak tree RSS in bytes."""
    cmd = [
        sys.executable, "-m", "cli", "expand", str(raw), str(out), "--quiet",
        "--split", "none", "--target", str(target), "--size", str(size), "-j", str(workers),
    ]  # fmt: skip
    run = run_tree(cmd, "augtool expand", cwd=Path(__file__).resolve().parents[1])
    return run.seconds, run.cpu, run.peak


def main() -> None:
    """Build the source sets, time the runs, print the table and the slopes."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "augtool-growth"
    )
    parser.add_argument("--sources", default="141,1410,14100", help="comma-separated counts")
    parser.add_argument("--size", type=int, default=64, help="output side")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    counts = [int(x) for x in args.sources.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {_load()}", flush=True)
    rows = []
    for n in counts:
        t0 = time.perf_counter()
        raw = sources(args.workdir, n)
        mib = sum(p.stat().st_size for p in raw.rglob("*.jpg")) / 2**20
        print(
            f"{n} sources 640x480 JPEG ({mib:.0f} MiB) in {raw} "
            f"[{time.perf_counter() - t0:.0f} s to build or find]",
            flush=True,
        )
        target = round(n * OUTPUTS_PER_141 / 141)
        for fmt, name in (("folder", "out"), ("hdf5", "out.h5")):
            out = args.workdir / name
            shutil.rmtree(out, ignore_errors=True)
            out.unlink(missing_ok=True)
            seconds, cpu, peak = run_expand(raw, out, target, args.size, args.workers)
            rows.append((n, fmt, target, seconds, cpu, peak))
            print(
                f"  {fmt}: {target} outputs {args.size}x{args.size} in {seconds:.1f} s "
                f"({cpu:.1f} CPU s, {target / seconds:.0f} images/s), peak RSS "
                f"{peak / 2**20:.0f} MiB; load average {_load()}",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
            out.unlink(missing_ok=True)
    print()
    print(f"{'sources':>8} {'format':<7}{'outputs':>9}{'seconds':>9}{'CPU s':>8}{'peak MiB':>10}")
    for n, fmt, target, seconds, cpu, peak in rows:
        print(f"{n:>8} {fmt:<7}{target:>9}{seconds:>9.1f}{cpu:>8.1f}{peak / 2**20:>10.0f}")
    for fmt in ("folder", "hdf5"):
        mine = [r for r in rows if r[1] == fmt]
        for (n0, _, _, s0, c0, p0), (n1, _, _, s1, c1, p1) in itertools.pairwise(mine):
            grow = math.log(n1 / n0)
            print(
                f"slope {fmt} {n0} -> {n1} sources: time ~ sources^{math.log(s1 / s0) / grow:.2f}"
                f" (CPU ^{math.log(c1 / c0) / grow:.2f}), "
                f"{(s1 - s0) / (n1 - n0) * 1000:.1f} s per 1,000 more sources; "
                f"peak RSS ~ sources^{math.log(p1 / p0) / grow:.2f} "
                f"({(p1 - p0) / 2**20 / (n1 - n0) * 1000:.0f} MiB per 1,000 more)"
            )


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


if __name__ == "__main__":
    main()
