"""Write and read throughput of the HDF5 output, and the writer's peak memory.

Writes the 1,676-image set (``--pca``) at 227x227 as HDF5 from the real cells
(../shared/data/bccd-cells) when present, else from ``augtool synth`` images,
with ``augtool expand`` in a new process (peak RSS of the whole process tree
sampled from /proc), then reads it back:

* whole file into memory with ``augtool.store.dataset.open_dataset`` (what training does);
* one image at a time in random order with h5py (what a data loader does).

Usage: python benchmarks/bench_hdf5.py [--workdir DIR] [--compression none|lzf|gzip]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.workloads import SHARED_DATA, machine, run_tree

REPO = Path(__file__).resolve().parents[1]


def source_folder(workdir: Path) -> tuple[Path, str]:
    """The real cells, or a generated 49/33/59 set."""
    cells = SHARED_DATA / "bccd-cells"
    if cells.is_dir():
        return cells, "real BCCD cells"
    raw = workdir / "synth"
    if not raw.exists():
        subprocess.run(
            [sys.executable, "-m", "cli", "synth", str(raw), "--quiet"], check=True, cwd=REPO
        )
    return raw, "augtool synth images"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "augtool-bench"
    )
    parser.add_argument("--compression", default="none", choices=["none", "lzf", "gzip"])
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    raw, origin = source_folder(args.workdir)
    out = args.workdir / "bench.h5"
    if out.exists():
        out.unlink()
    print(f"machine: {machine()}")
    print(f"sources: {raw} ({origin})")

    cmd = [
        sys.executable,
        "-m",
        "cli",
        "expand",
        str(raw),
        str(out),
        "--pca",
        "--quiet",
        "--compression",
        args.compression,
    ]
    written = run_tree(cmd, "augtool expand", cwd=REPO)
    write_s = written.seconds

    from augtool.store.dataset import open_dataset

    start = time.perf_counter()
    data = open_dataset(out)
    read_all_s = time.perf_counter() - start
    n = len(data)
    order = np.random.default_rng(0).permutation(n)
    start = time.perf_counter()
    with h5py.File(out, "r") as fh:
        images = fh["images"]
        for i in order:
            images[int(i)]
    read_random_s = time.perf_counter() - start

    size_mb = out.stat().st_size / 2**20
    print()
    print(f"{'step':<52}{'seconds':>9}{'images/s':>10}")
    rows = [
        ("expand --pca -> HDF5 (new process, all cores)", write_s),
        ("read whole file (augtool.store.dataset.open_dataset)", read_all_s),
        ("read one image at a time, random order (h5py)", read_random_s),
    ]
    for label, seconds in rows:
        print(f"{label:<52}{seconds:>9.2f}{n / seconds:>10.0f}")
    peak = written.peak / 2**20
    print(f"images: {n}   file: {size_mb:.0f} MiB ({args.compression})")
    print(f"writer peak RSS (process tree): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
