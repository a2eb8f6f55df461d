"""Time ``augtool expand`` against the naive loop, in the same run (docs/performance.md).

Workloads: the ALL-IDB1-sized set (141 sources, 2592x1944 JPEG q95, 49 / 33 /
59 per class) in two kinds, each built once under --workdir:

* upscaled: each source one BCCD smear (../shared/data/bccd-smears) upscaled
  bicubically from 640x480, else a generated image; smooth at the pixel scale;
* native: each source a mosaic of 640x480 smears tiled without resizing
  (tests/mosaic.py), so it has camera detail at every pixel, as ALL-IDB1 has.
  JPEG files with such detail are larger and slower to decode.

Both sides make 1,492 PNGs at 227x227 from each workload.

* floor: ``benchmarks/expand_floor.py`` in a new process: the work no expand
  can avoid (decode each source once at the reduction augtool chooses, resize,
  encode and write every output with augtool's encoder settings, on as many
  forked processes as augtool's workers), into a folder and into one HDF5
  file; and ``expand_floor.py --render``, the same harness making every output
  as ``expand`` makes it (its plan, steps, resize and encoder: the same bytes,
  checked against augtool's output in every round) without ``expand``'s
  bookkeeping; and ``--render --at-output-size``, the same steps applied to
  the source already resized to the output size (other bytes: the design
  whose transforms cost least). The four run in turn, ``--repeat``
  rounds, folder then HDF5, and the best of the rounds of each is compared:
  each time as a ratio of the floor's, and the least CPU seconds of each
  (every process of the tree), which the load of other jobs changes less.
  The timed processes may write Python's compiled modules
  (``PYTHONDONTWRITEBYTECODE`` is dropped), as an installed augtool has them.

* augtool: ``augtool expand RAW OUT`` as a user runs it (new process,
  all cores), peak memory of the whole process tree sampled from /proc.
* naive: one process, albumentations; for each of the 1,492 outputs decode
  the source again, apply one paper transform, resize, write a PNG.

Recipes, on the same workload and the same 1,492 outputs:

* built-in recipe: ``augtool expand --recipe curator`` (augtool's own transforms);
* albumentations recipe: ``augtool expand --recipe albu.toml``, a recipe of
  four albumentations steps (A.HueSaturationValue, A.GaussNoise,
  A.RandomBrightnessContrast, an A.Compose of a flip and a blur) applied at the
  output size, in a new process, so every worker's albumentations import is
  in the time;
* naive loop of the same recipe: one process; for each output decode the
  source again, resize it to the output size, apply that output's
  albumentations step, write a PNG (the originals only resized).

Usage: PYTHONPATH=. python benchmarks/bench_expand.py [--workdir DIR] [--workers N]
       [--workload upscaled|native|both] [--only paper|recipes|floor] [--repeat N]

``--only floor`` runs augtool against the floor alone (no naive loop).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.workloads import build_allidb_like, build_allidb_native, machine, run_tree

TARGET = 1492
SIZE = 227
WORKLOADS = {"upscaled": build_allidb_like, "native": build_allidb_native}
#: The runs of ``--only floor``, in the order they run in each round.
WAYS = ("augtool", "floor", "render", "at-output")


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


def albu_steps() -> list:
    """The albumentations recipe's steps, as albumentations objects."""
    import albumentations as A

    return [
        A.HueSaturationValue(p=1.0),
        A.GaussNoise(std_range=(0.02, 0.08), p=1.0),
        A.RandomBrightnessContrast(p=1.0),
        A.Compose([A.HorizontalFlip(p=0.5), A.GaussianBlur(blur_limit=(3, 5), p=1.0)]),
    ]


def write_albu_recipe(path: Path) -> Path:
    """The recipe file of :func:`albu_steps` (albumentations' own serialized form)."""
    import json

    import albumentations as A

    quote = "'" * 3  # a TOML literal string holds the JSON as it is
    blocks = [
        f"[[transform]]\nname = 'albu{i}'\nalbumentations = {quote}{json.dumps(A.to_dict(t))}"
        f"{quote}\n"
        for i, t in enumerate(albu_steps())
    ]
    path.write_text('name = "albu-bench"\n\n' + "\n".join(blocks))
    return path


def run_naive_recipe(raw: Path, out: Path) -> float:
    """Naive loop of the albumentations recipe: decode per output, resize, one step, PNG."""
    import albumentations as A

    sources = sorted(p for p in raw.rglob("*.jpg"))
    steps = albu_steps()
    resize = A.Resize(SIZE, SIZE, interpolation=cv2.INTER_AREA)
    out.mkdir(parents=True)
    start = time.perf_counter()
    for i in range(TARGET):
        src = sources[i % len(sources)]
        rgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
        img = resize(image=rgb)["image"]
        if i >= len(sources):
            img = steps[i % len(steps)](image=img)["image"]
        cv2.imwrite(str(out / f"{src.stem}_{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return time.perf_counter() - start


def run_augtool(
    raw: Path, out: Path, workers: int, extra: tuple[str, ...] = ()
) -> tuple[float, float, int]:
    """``augtool expand`` in a new process; returns wall seconds, CPU seconds, peak tree RSS.

    ``out`` ending in ``.h5`` makes one HDF5 file instead of a folder.
    """
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
        *extra,
    ]
    run = run_tree(cmd, "augtool expand", cwd=Path(__file__).resolve().parents[1])
    _check_outputs(out)
    return run.seconds, run.cpu, run.peak


def run_floor(raw: Path, out: Path, workers: int, way: str = "floor") -> tuple[float, float]:
    """``benchmarks/expand_floor.py`` in a new process; returns wall and CPU seconds (tree).

    ``way``: ``floor``; ``render`` (every output made as ``expand`` makes it);
    ``at-output`` (rendered from the source resized to the output size).
    """
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("expand_floor.py")),
        str(raw),
        str(out),
        "--workers",
        str(workers),
        "--count",
        str(TARGET),
        "--size",
        str(SIZE),
    ]
    if out.suffix == ".h5":
        cmd.append("--hdf5")
    if way in ("render", "at-output"):
        cmd.append("--render")
    if way == "at-output":
        cmd.append("--at-output-size")
    run = run_tree(cmd, "expand_floor.py")
    _check_outputs(out)
    return run.seconds, run.cpu


def _check_outputs(out: Path) -> None:
    """Stop unless ``out`` holds the :data:`TARGET` outputs (PNG files, or HDF5 rows)."""
    if out.suffix == ".h5":
        import h5py

        with h5py.File(out, "r") as fh:
            n = fh["images"].shape[0]
    else:
        n = len(list(out.rglob("*.png")))
    if n != TARGET:
        raise SystemExit(f"{out}: {n} images, expected {TARGET}")


def _digest(out: Path) -> str:
    """One hash of an output's images, whatever their names.

    The sorted hashes of its PNG files, or the bytes of its HDF5 ``images`` rows in order.
    """
    if out.suffix == ".h5":
        import h5py

        with h5py.File(out, "r") as fh:
            return hashlib.sha256(fh["images"][:].tobytes()).hexdigest()
    files = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*.png"))
    return hashlib.sha256("\n".join(files).encode()).hexdigest()


def _clear(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.unlink(missing_ok=True)


def compare_floor(
    raw: Path, workdir: Path, workers: int, repeat: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """Time ``augtool expand`` and the three ways of ``expand_floor.py`` in turn.

    Each round runs folder then HDF5; the render's images are checked to be
    augtool's, byte for byte, in every round.

    Returns:
        Per format, per way (:data:`WAYS`): the best wall seconds and the
        least CPU seconds (process tree) of ``repeat`` rounds.

    Raises:
        SystemExit: If the render's images differ from augtool's.
    """
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(repeat):
        for fmt, suffix in (("folder", ""), ("hdf5", ".h5")):
            digests = {}
            for way in WAYS:
                out = workdir / f"out-{way}-{fmt}{suffix}"
                _clear(out)
                if way == "augtool":
                    seconds, cpu, _ = run_augtool(raw, out, workers)
                else:
                    seconds, cpu = run_floor(raw, out, workers, way)
                times.setdefault((fmt, way), []).append((seconds, cpu))
                if way in ("augtool", "render"):
                    digests[way] = _digest(out)
                _clear(out)
            if digests["render"] != digests["augtool"]:
                raise SystemExit(f"{fmt}: the render's images are not augtool's")
    for (fmt, way), runs in times.items():
        walls = ", ".join(f"{t:.2f}" for t, _ in runs)
        cpus = ", ".join(f"{c:.1f}" for _, c in runs)
        print(f"    {fmt:<7}{way:<8} {walls} s wall; {cpus} CPU s", flush=True)
    print(f"    render: the same images as augtool's in all {repeat} rounds", flush=True)
    return {
        fmt: {
            way: (min(t for t, _ in times[fmt, way]), min(c for _, c in times[fmt, way]))
            for way in WAYS
        }
        for fmt in ("folder", "hdf5")
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "augtool-bench"
    )
    parser.add_argument("--workers", type=int, default=0, help="augtool workers (0 = all cores)")
    parser.add_argument("--workload", choices=[*WORKLOADS, "both"], default="both")
    parser.add_argument(
        "--only",
        choices=("paper", "recipes", "floor"),
        default=None,
        help="run one of the comparisons (floor: augtool against the floor, no naive loop)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of augtool against the floor (best of)"
    )
    args = parser.parse_args()
    # The timed processes may cache their compiled modules, as after ``pip install``.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    args.workdir.mkdir(parents=True, exist_ok=True)
    workers = args.workers or len(os.sched_getaffinity(0))
    print(
        f"machine: {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {_load()}",
        flush=True,
    )
    names = list(WORKLOADS) if args.workload == "both" else [args.workload]
    rows = []
    floors = []
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
        for out in ("out-augtool", "out-naive", "out-builtin", "out-albu", "out-naive-albu"):
            shutil.rmtree(args.workdir / out, ignore_errors=True)
        if args.only in (None, "recipes") and name == names[0]:
            compare_recipes(raw, args.workdir, args.workers)
        if args.only == "recipes":
            continue
        if args.only in (None, "floor"):
            best = compare_floor(raw, args.workdir, workers, args.repeat)
            floors.append((name, best, _load()))
        if args.only == "floor":
            continue
        ours, ours_cpu, peak = run_augtool(raw, args.workdir / "out-augtool", args.workers)
        naive, naive_cpu = run_naive(raw, args.workdir / "out-naive")
        load = os.getloadavg()[0]
        print(
            f"  {name}: naive {naive:.1f} s ({naive_cpu:.1f} CPU s), augtool {ours:.1f} s"
            f" ({ours_cpu:.1f} CPU s); load average {load:.1f}",
            flush=True,
        )
        rows.append((name, naive, naive_cpu, ours, ours_cpu, peak))
    if floors:
        print()
        print(
            f"{'workload':<10}{'output':<8}{'way':<9}{'wall s':>8}{'x floor':>9}"
            f"{'CPU s':>8}{'x floor':>9}"
        )
        for name, best, load in floors:
            for fmt, ways in best.items():
                floor, floor_cpu = ways["floor"]
                for way in WAYS:
                    wall, cpu = ways[way]
                    print(
                        f"{name:<10}{fmt:<8}{way:<9}{wall:>8.2f}{wall / floor:>8.2f}x"
                        f"{cpu:>8.1f}{cpu / floor_cpu:>8.2f}x"
                    )
            print(f"{name:<10}load average at the end: {load}")
        print(
            f"best of {args.repeat} rounds (wall) and least CPU (user + system of every process "
            f"of the tree), {workers} processes each; render: augtool's own rendering of the "
            "same bytes, without its bookkeeping; at-output: its steps at the output size "
            "(other bytes)"
        )
    if not rows:
        return
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


def _load() -> str:
    """The three load averages of /proc/loadavg."""
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def compare_recipes(raw: Path, workdir: Path, workers: int) -> None:
    """Built-in recipe, albumentations recipe and its naive loop, on the same workload."""
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    recipe = write_albu_recipe(workdir / "albu.toml")
    builtin, _, _ = run_augtool(raw, workdir / "out-builtin", workers, ("--recipe", "curator"))
    albu, _, peak = run_augtool(raw, workdir / "out-albu", workers, ("--recipe", str(recipe)))
    naive = run_naive_recipe(raw, workdir / "out-naive-albu")
    print()
    print(f"{'way (1,492 PNGs 227x227 from 141 sources)':<52}{'seconds':>10}{'images/s':>10}")
    rows = (
        ("augtool expand --recipe curator (built-in)", builtin),
        ("augtool expand --recipe albu.toml (albumentations)", albu),
        ("naive loop of albu.toml (1 process)", naive),
    )
    for label, seconds in rows:
        print(f"{label:<52}{seconds:>10.1f}{TARGET / seconds:>10.0f}")
    load = os.getloadavg()[0]
    print(f"load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    print(
        f"albumentations recipe: {naive / albu:.1f}x faster than the naive loop of the same "
        f"recipe; the built-in recipe takes {builtin / albu:.2f}x its time; "
        f"peak RSS (process tree) {peak / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
