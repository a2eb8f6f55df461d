"""Time augtool's batched PCA colour augmentation against albumentations' FancyPCA.

Workload: 1,676 images of 227 x 227, one thread. The images are the
real cells of ``../shared/data/bccd-cells`` (cycled and resized) when that
folder exists, otherwise generated smear-like images. Both ways run in the same
process on the same images, best of ``--repeats`` runs each.

augtool runs at its defaults (the pixel mode, std 0.5, the ``expand --pca``
default), and in the shift mode for comparison. The comparison is of speed
only: the three compute different things. augtool's pixel mode adds
``E^T diag(w) E (x - mean)`` to each pixel x (w_i = alpha_i lambda_i /
lambda_1), its shift mode the constant ``sqrt(lambda_1) sum_i w_i e_i``;
albumentations 2.0.8's ``fancy_pca`` (float32 in [0, 1]) adds
``E diag(alpha * lambda) (x - mean)``, E's columns being the eigenvectors, so
the centred pixel is not projected onto the components first.

``--device cuda`` also times ``pca_jitter(..., device="cuda")`` (the same
moments and shift computed with torch on the GPU; the images go to the device
and back inside the timed call) and checks that it gives the CPU's bytes.
Without albumentations (a GPU machine), or with ``--skip-albumentations``, the
FancyPCA row is left out and said so.

``--workload random`` times uniformly random images instead (a worst case).

Run: ``python benchmarks/bench_pca.py`` (needs the ``test`` or ``bench`` extra),
``python benchmarks/bench_pca.py --device cuda``.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from augtool.ops.pca import DEFAULT_MODE, DEFAULT_STD, default_chunk_size, pca_jitter  # noqa: E402
from augtool.store.decode import IMAGE_SUFFIXES, load_resized  # noqa: E402

CELLS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bccd-cells"
COUNT = 1676
SIZE = 227


def smear_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """A generated pinkish smear: pale background, pink discs, one purple blob."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.empty((size, size, 3), dtype=np.float64)
    image[:] = (232, 214, 222)
    for _ in range(12):
        cy, cx = rng.uniform(0, size, 2)
        radius = rng.uniform(14, 24)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        image[inside] = (214, 140, 160)
    cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
    image[(yy - cy) ** 2 + (xx - cx) ** 2 < 30**2] = (110, 60, 150)
    image += rng.normal(0, 6, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def load_workload(count: int, size: int, kind: str = "cells") -> tuple[np.ndarray, str]:
    """``count`` images (N, size, size, 3) and a sentence saying where they came from.

    ``kind`` ``random``: uniformly random bytes (a worst case: every pixel
    differs, nothing compresses, every colour is used).
    """
    if kind == "random":
        images = np.random.default_rng(0).integers(0, 256, (count, size, size, 3), np.uint8)
        return images, "uniformly random bytes"
    paths = sorted(p for p in CELLS.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
    if paths:
        cells = [load_resized(path, size) for path in paths]
        images = np.stack([cells[i % len(cells)] for i in range(count)])
        return images, f"{len(cells)} real BCCD cells, cycled, resized to {size}x{size}"
    rng = np.random.default_rng(0)
    images = np.stack([smear_like(rng, size) for _ in range(count)])
    return images, f"generated smear-like images ({CELLS} not found)"


def timed_run(run: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process, every thread) of one call of ``run``."""
    start, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per way (best is kept)")
    parser.add_argument("--count", type=int, default=COUNT, help="number of images")
    parser.add_argument(
        "--workload",
        choices=("cells", "random"),
        default="cells",
        help="the real cells (else generated smears), or uniformly random images",
    )
    parser.add_argument("--chunk-size", type=int, default=None, help="default: augtool's own")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda: also time the GPU path"
    )
    parser.add_argument(
        "--skip-albumentations",
        action="store_true",
        help="time augtool only, as on a machine without albumentations (gpu_check --cpu)",
    )
    args = parser.parse_args()

    A = None
    if not args.skip_albumentations and importlib.util.find_spec("albumentations"):
        import albumentations as A

    cv2.setNumThreads(1)
    load_before = os.getloadavg()
    images, origin = load_workload(args.count, SIZE, args.workload)

    def augtool_batch(device: str = "cpu") -> np.ndarray:
        return pca_jitter(
            images, np.random.default_rng(0), chunk_size=args.chunk_size, device=device
        ).images

    def augtool_shift() -> object:
        rng = np.random.default_rng(0)
        return pca_jitter(images, rng, mode="shift", chunk_size=args.chunk_size)

    # Each way: one untimed warm-up run (imports, caches, first touch of fresh memory,
    # which is slow on a virtual machine), then its timed runs back to back.
    timed: list[tuple[str, list[tuple[float, float]]]] = []
    if A is not None:
        fancy = A.FancyPCA(alpha=0.1, p=1.0)
        fancy.set_random_seed(0)

        def albumentations_loop() -> list[np.ndarray]:
            return [fancy(image=image)["image"] for image in images]

        albumentations_loop()
        runs = [timed_run(albumentations_loop) for _ in range(args.repeats)]
        timed.append(("albumentations FancyPCA(alpha=0.1, p=1), per image", runs))
    reference = augtool_batch()
    chunk = args.chunk_size or default_chunk_size(SIZE * SIZE, "cpu")
    runs = [timed_run(augtool_batch) for _ in range(args.repeats)]
    timed.append(
        (f"augtool pca_jitter {DEFAULT_MODE} std {DEFAULT_STD:g}, chunks of {chunk}", runs)
    )
    augtool_shift()
    runs = [timed_run(augtool_shift) for _ in range(args.repeats)]
    timed.append((f"augtool pca_jitter shift std {DEFAULT_STD:g}, chunks of {chunk}", runs))
    same = None
    if args.device == "cuda":
        same = bool(np.array_equal(augtool_batch("cuda"), reference))  # also the warm-up
        gpu_chunk = args.chunk_size or default_chunk_size(SIZE * SIZE, "cuda")
        runs = [timed_run(lambda: augtool_batch("cuda")) for _ in range(args.repeats)]
        timed.append((f"augtool pca_jitter, device cuda (chunks of {gpu_chunk})", runs))
    load_after = os.getloadavg()

    n = len(images)
    cpu = platform.processor() or platform.machine()
    print(f"workload: {n} images {SIZE}x{SIZE}x3 uint8 ({origin})")
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, CPU ways run on one thread")
    print(
        "load average (1, 5, 15 min): "
        f"{' '.join(f'{v:.2f}' for v in load_before)} before, "
        f"{' '.join(f'{v:.2f}' for v in load_after)} after"
    )
    versions = f"numpy {np.__version__}, cv2 {cv2.__version__}"
    versions += f", albumentations {A.__version__}" if A is not None else ""
    print(f"versions: {versions}")
    if args.skip_albumentations:
        print("--skip-albumentations: the FancyPCA rows are left out")
    elif A is None:
        print("albumentations is not installed: the FancyPCA rows are left out")
    print(f"best of {args.repeats} runs, each way after one warm-up run (least CPU s beside it):")
    for label, runs in timed:
        seconds = min(t for t, _ in runs)
        cpu = min(c for _, c in runs)
        print(f"  {label:<62} {seconds:7.3f} s  {n / seconds:7.0f} images/s  {cpu:7.3f} CPU s")
        print(f"    all runs: {', '.join(f'{t:.3f}' for t, _ in runs)} s")
    if A is not None:
        fancy_s, fancy_cpu = (min(v[i] for v in timed[0][1]) for i in (0, 1))
        for row, name in ((1, "at the default"), (2, "in the shift mode")):
            wall = fancy_s / min(t for t, _ in timed[row][1])
            cpu = fancy_cpu / min(c for _, c in timed[row][1])
            print(f"  ratio {name}: augtool is {wall:.1f}x faster (wall), {cpu:.1f}x (CPU)")
    if same is not None:
        print(f"  cuda result identical to the CPU's: {same}")
    print(
        "speed only, they compute different things: FancyPCA adds E diag(alpha*lambda) "
        "(x - mean) to each pixel x; the pixel mode E^T diag(w) E (x - mean); "
        "the shift mode one colour sqrt(lambda_1) sum_i w_i e_i to every pixel."
    )


if __name__ == "__main__":
    main()
