"""Time ``augtool expand`` against the naive loop of SPEC §8, in the same run.

Workloads: the ALL-IDB1-sized set (141 sources, 2592x1944 JPEG q95, 49 / 33 /
59 per class) in two kinds, each built once under --workdir:

* upscaled: each source one BCCD smear (../shared/data/bccd-smears) upscaled
  bicubically from 640x480, else a generated image; smooth at the pixel scale;
* native: each source a mosaic of 640x480 smears tiled without resizing
  (tests/mosaic.py), so it has camera detail at every pixel, as ALL-IDB1 has.
  JPEG files with such detail are larger and slower to decode.

Both sides make 1,492 PNGs at 227x227 from each workload.

* augtool: ``augtool expand RAW OUT`` as a user runs it (new process,
  all cores), peak memory of the whole process tree sampled from /proc.
* naive: one process, albumentations; for each of the 1,492 outputs decode
  the source again, apply one paper transform, resize, write a PNG.

Usage: PYTHONPATH=. python benchmarks/bench_expand.py [--workdir DIR] [--workers N]
       [--workload upscaled|native|both]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import PeakMemory, build_allidb_like, build_allidb_native, machine

TARGET = 1492
SIZE = 227
WORKLOADS = {"upscaled": build_allidb_like, "native": build_allidb_native}


def naive_pipelines() -> list:
    """One albumentations pipeline per paper transform, each ending in the resize."""
    import albumentations as A

    def with_resize(t: A.BasicTransform) -> A.Compose:
        return A.Compose([t, A.Resize(SIZE, SIZE, interpolation=cv2.INTER_AREA)])

    return [
        with_resize(A.ToGray(num_output_channels=3, p=1.0)),
        with_resize(A.GaussianBlur(blur_limit=(0, 0), sigma_limit=(4, 8), p=1.0)),
        with_resize(
            A.Compose(
                [
                    A.ToGray(num_output_channels=3, p=1.0),
                    A.GaussianBlur(blur_limit=(0, 0), sigma_limit=(4, 8), p=1.0),
                ]
            )
        ),
        with_resize(A.Compose([A.ToGray(num_output_channels=3, p=1.0), A.Equalize(p=1.0)])),
        with_resize(A.VerticalFlip(p=1.0)),
        with_resize(A.HorizontalFlip(p=1.0)),
        with_resize(A.Affine(rotate=(-45, 45), fit_output=True, p=1.0)),
        with_resize(A.Affine(translate_px={"x": (-50, 50), "y": (-50, 50)}, p=1.0)),
        with_resize(A.Affine(shear={"x": (-45, 45), "y": (0, 0)}, fit_output=True, p=1.0)),
        with_resize(A.Affine(shear={"x": (0, 0), "y": (-45, 45)}, fit_output=True, p=1.0)),
    ]


def run_naive(raw: Path, out: Path) -> tuple[float, float]:
    """The naive loop: decode per output, one transform, resize, write PNG.

    Returns:
        Wall seconds and CPU seconds (all threads of this process).
    """
    sources = sorted(p for p in raw.rglob("*.jpg"))
    pipelines = naive_pipelines()
    out.mkdir(parents=True)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(TARGET):
        src = sources[i % len(sources)]
        rgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
        img = pipelines[i % len(pipelines)](image=rgb)["image"]
        cv2.imwrite(str(out / f"{src.stem}_{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return time.perf_counter() - start, time.process_time() - cpu


def run_augtool(raw: Path, out: Path, workers: int) -> tuple[float, float, int]:
    """``augtool expand`` in a new process; returns wall seconds, CPU seconds, peak tree RSS."""
    cmd = [
        sys.executable,
        "-m",
        "cli",
        "expand",
        str(raw),
        str(out),
        "--quiet",
        "--split",
        "none",
        "-j",
        str(workers),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1])
    with PeakMemory(proc.pid) as mem:
        code = proc.wait()
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"augtool expand failed with exit code {code}")
    n = len(list(out.rglob("*.png")))
    if n != TARGET:
        raise SystemExit(f"augtool wrote {n} images, expected {TARGET}")
    return seconds, mem.cpu, mem.peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "augtool-bench"
    )
    parser.add_argument("--workers", type=int, default=0, help="augtool workers (0 = all cores)")
    parser.add_argument("--workload", choices=[*WORKLOADS, "both"], default="both")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    names = list(WORKLOADS) if args.workload == "both" else [args.workload]
    rows = []
    for name in names:
        t0 = time.perf_counter()
        raw, origin = WORKLOADS[name](args.workdir)
        built = time.perf_counter() - t0
        mib = sum(p.stat().st_size for p in raw.rglob("*.jpg")) / 2**20
        print(
            f"workload {name}: 141 sources 2592x1944 JPEG q95 ({origin}), {mib:.0f} MiB,"
            f" in {raw} [{built:.1f} s to build]",
            flush=True,
        )
        for out in ("out-augtool", "out-naive"):
            shutil.rmtree(args.workdir / out, ignore_errors=True)
        ours, ours_cpu, peak = run_augtool(raw, args.workdir / "out-augtool", args.workers)
        naive, naive_cpu = run_naive(raw, args.workdir / "out-naive")
        load = os.getloadavg()[0]
        print(
            f"  {name}: naive {naive:.1f} s ({naive_cpu:.1f} CPU s), augtool {ours:.1f} s"
            f" ({ours_cpu:.1f} CPU s); load average {load:.1f}",
            flush=True,
        )
        rows.append((name, naive, naive_cpu, ours, ours_cpu, peak))
    print()
    print(f"{'workload':<10}{'way':<42}{'seconds':>10}{'CPU s':>8}{'images/s':>10}")
    for name, naive, naive_cpu, ours, ours_cpu, peak in rows:
        way = "naive loop (albumentations, 1 process)"
        print(f"{name:<10}{way:<42}{naive:>10.1f}{naive_cpu:>8.1f}{TARGET / naive:>10.0f}")
        way = "augtool expand (all cores, new process)"
        print(f"{name:<10}{way:<42}{ours:>10.1f}{ours_cpu:>8.1f}{TARGET / ours:>10.0f}")
        print(
            f"{name:<10}speed-up: {naive / ours:.1f}x wall, {naive_cpu / ours_cpu:.1f}x CPU;"
            f"   augtool peak RSS (process tree): {peak / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()
