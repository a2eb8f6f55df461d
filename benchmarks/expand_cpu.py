"""CPU seconds and wall time of ``augtool expand`` from one or more source trees, alternating.

On a shared machine wall time follows the load; the CPU seconds of the process
tree (user + system of the command and every worker, from /proc) hardly do.
Each tree's command runs in a new process, as a user runs it, on a workload
that ``bench_expand.py`` built under --workdir, ``rounds`` times, trees in turn
(A B A B ...), and the outputs of every round are checked byte for byte
against the first tree's (``augtool.json`` aside: it records the time).

Usage: python benchmarks/expand_cpu.py TREE [TREE ...] [--workdir DIR]
       [--workload upscaled|native] [--rounds N]

Example (two checkouts, before and after a change):
    python benchmarks/expand_cpu.py ../before ../after --workdir /tmp/workres-bench
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.workloads import run_tree

FOLDERS = {"upscaled": "allidb-like-2592x1944", "native": "allidb-native-v2-2592x1944"}


def run(tree: Path, raw: Path, out: Path) -> tuple[float, float, int, list[float]]:
    """One ``expand`` run from ``tree``: wall s, CPU s, peak tree RSS, CPU s per process."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "cli", "expand", str(raw), str(out), "--quiet", "--split", "none"]
    run = run_tree(
        cmd, f"{tree}: augtool expand", cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}
    )
    return run.seconds, run.cpu, run.peak, run.per_process


def hashes(out: Path) -> dict[str, str]:
    """SHA-256 of every output file but ``augtool.json``."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "augtool.json"
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", type=Path, nargs="+", help="repository roots to compare")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "augtool-bench"
    )
    parser.add_argument("--workload", choices=list(FOLDERS), default="upscaled")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    raw = args.workdir / FOLDERS[args.workload]
    if not raw.is_dir():
        raise SystemExit(f"{raw}: build it first with benchmarks/bench_expand.py --workdir")
    rows: dict[Path, list[tuple[float, float]]] = {t: [] for t in args.trees}
    for r in range(args.rounds):
        reference: dict[str, str] | None = None
        for i, tree in enumerate(args.trees):
            out = args.workdir / f"out-cpu-{i}"
            load = os.getloadavg()[0]
            wall, cpu, peak, per_process = run(tree.resolve(), raw, out)
            rows[tree].append((wall, cpu))
            same = hashes(out)
            reference = reference or same
            print(
                f"round {r + 1} {tree}: {wall:.1f} s wall, {cpu:.1f} CPU s, peak tree RSS "
                f"{peak / 2**20:.0f} MiB, load {load:.1f}; CPU s per process {per_process}; "
                f"{'same bytes as ' + str(args.trees[0]) if same == reference else 'DIFFERENT'}",
                flush=True,
            )
    for tree, values in rows.items():
        walls, cpus = sorted(w for w, _ in values), sorted(c for _, c in values)
        print(
            f"{tree}: median {walls[len(walls) // 2]:.1f} s wall, {cpus[len(cpus) // 2]:.1f} CPU s"
        )


if __name__ == "__main__":
    main()
