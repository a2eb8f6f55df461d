"""Where the time of one ``augtool expand`` goes, in every process: a breakdown.

Runs ``augtool expand RAW OUT ARGS...`` in a new process, as a user runs it,
with :mod:`cProfile` on in that process (wall clock: its time is the run's
critical path) and in every worker forked from it (CPU clock: the scan's
workers, then the render's). Nothing in ``augtool/`` is changed: the script
wraps the forked workers' loop (``augtool.engine.pool._worker``) from outside.
The profiler slows Python-level code (a few per cent of this run, which
spends its time in OpenCV and hashing), so the phase times add up to a little
more than an unprofiled run; ``--repeat`` runs the same command unprofiled
first, for its plain wall time.

Prints four tables:

* the main process, wall seconds: interpreter start-up, imports, scan (with
  its forked workers), planning, worker start, the render phase (waiting for
  the workers, receiving results, writing files or HDF5 rows, journal),
  manifest and ``augtool.json``, publishing, exit;
* the workers, CPU seconds summed over processes: reading and hashing the
  sources, decoding, transforms and resizing, PCA, encoding, hashing the
  outputs, sending the results to the main process;
* the steps, CPU seconds and milliseconds per output of each (the step with
  its resize);
* inside the steps, the CPU seconds of each OpenCV function they call
  (``cv2.resize``, ``cv2.warpAffine``...) and the Python and NumPy around them.

The workload is one of ``bench_expand.py``'s (141 sources of 2592x1944,
built once under --workdir); the output 1,492 PNGs at 227x227 (``--hdf5``:
one HDF5 file), ``--split none``; further arguments go to ``expand``.
Python may write its compiled modules (``PYTHONDONTWRITEBYTECODE`` is
dropped for the runs), as a ``pip install`` does: the plain runs leave them.

Usage: python benchmarks/profile_expand.py [--workload upscaled|native] [--workdir DIR]
       [--hdf5] [--repeat N] [expand arguments...]
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: The runs' environment: Python may cache compiled modules, as after ``pip install``.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def child(profdir: Path, argv: list[str]) -> None:
    """The profiled ``augtool expand`` (this process, and every worker it forks)."""
    marks = {"started": time.time()}
    main_prof = cProfile.Profile(time.perf_counter)
    main_prof.enable()
    sys.path.insert(0, str(REPO))
    import augtool.engine.pool as pool

    worker_loop = pool._worker

    import augtool.pipeline.core as core

    # CPU seconds and outputs of each step (the transforms and their resize), per worker.
    steps: dict[str, list[float]] = {}
    run_step = core.run_step

    def timed_step(chosen: Any, *args: object) -> Any:
        t0 = time.process_time()
        try:
            return run_step(chosen, *args)
        finally:
            entry = steps.setdefault(chosen.name, [0.0, 0])
            entry[0] += time.process_time() - t0
            entry[1] += 1

    core.run_step = timed_step

    def profiled_worker(*args: object) -> None:
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        try:
            worker_loop(*args)
        finally:
            prof.disable()
            prof.dump_stats(str(profdir / f"worker-{os.getpid()}.prof"))
            (profdir / f"steps-{os.getpid()}.json").write_text(json.dumps(steps))

    pool._worker = profiled_worker
    # Each pool (the scan's, then the render's): seconds to fork it, seconds in receive().
    pools: list[dict[str, float]] = []
    init, receive = pool._Pool.__init__, pool._Pool.receive

    def timed_init(self: pool._Pool, *args: object) -> None:
        t0 = time.perf_counter()
        init(self, *args)
        pools.append({"start": time.perf_counter() - t0, "receive": 0.0})
        self._profile_slot = len(pools) - 1

    def timed_receive(self: pool._Pool) -> None:
        t0 = time.perf_counter()
        try:
            receive(self)
        finally:
            pools[self._profile_slot]["receive"] += time.perf_counter() - t0

    pool._Pool.__init__ = timed_init
    pool._Pool.receive = timed_receive
    import cli

    marks["imported"] = time.time()
    try:
        cli.main(argv, standalone_mode=False)
    finally:
        main_prof.disable()
        main_prof.dump_stats(str(profdir / "main.prof"))
        marks["returned"] = time.time()
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks["cpu"] = usage.ru_utime + usage.ru_stime
        (profdir / "marks.json").write_text(json.dumps({"marks": marks, "pools": pools}))


def _stats(path: Path) -> dict:
    return pstats.Stats(str(path)).stats  # type: ignore[attr-defined]


def _cum(stats: dict, name: str, file_part: str = "", caller: str = "") -> float:
    """Cumulative seconds of the functions called ``name`` (in a file containing ``file_part``).

    With ``caller``, only the calls made from a function of that name.
    """
    total = 0.0
    builtin = (
        f"<built-in method _hashlib.{name}>",
        f"<method '{name}' of 'numpy.ndarray' objects>",
    )
    for (filename, _, func), (_, _, _, ct, callers) in stats.items():
        if func not in (name, *builtin) or file_part not in filename:
            continue
        if not caller:
            total += ct
            continue
        for (_, _, cfunc), entry in callers.items():
            if cfunc == caller:
                total += entry[3]
    return total


def opencv_calls(stats: dict) -> dict[str, float]:
    """CPU seconds inside each OpenCV function called from augtool's steps and resize.

    Only the calls made from ``augtool/ops/`` and ``augtool/pipeline/`` count:
    the work of ``Pipeline.run``, not the scan's decoding or the encoder.
    """
    import cv2

    seconds: dict[str, float] = {}
    for (filename, _, func), (_, _, _, _, callers) in stats.items():
        name = func.strip("<>")
        if filename != "~" or not hasattr(cv2, name):
            continue
        for (cfile, _, _), entry in callers.items():
            if "/augtool/ops/" in cfile or "/augtool/pipeline/" in cfile:
                seconds["cv2." + name] = seconds.get("cv2." + name, 0.0) + entry[2]
    return seconds


def _total(stats: dict) -> float:
    return sum(tt for (_, _, tt, _, _) in stats.values())


def main_table(profdir: Path, spawned: float, ended: float) -> list[tuple[str, float]]:
    """Wall seconds of the main process's phases."""
    st = _stats(profdir / "main.prof")
    timed = json.loads((profdir / "marks.json").read_text())
    marks, pools = timed["marks"], timed["pools"]
    expand = _cum(st, "expand", "engine/expand.py")
    scan = _cum(st, "scan", "engine/scan.py")
    plan = _cum(st, "scan_and_plan") - scan
    opened = _cum(st, "__enter__", "store/writers.py") + _cum(st, "open_writer")
    finish = _cum(st, "finish", "store/writers.py")
    publish = _cum(st, "commit_partial")
    attributes = _cum(st, "_attributes")
    render_pool = pools[-1] if pools and _cum(st, "run_ordered", caller="render") else None
    start = render_pool["start"] if render_pool else 0.0
    wait = render_pool["receive"] if render_pool else 0.0
    write = _cum(st, "write", "store/writers.py")
    journal = _cum(st, "commit", "store/writers.py") + _cum(st, "_record", "engine/expand.py")
    render = expand - scan - plan - opened - finish - attributes
    return [
        ("interpreter start-up (until the first line runs)", marks["started"] - spawned),
        ("imports (cli, augtool, numpy, OpenCV, click)", marks["imported"] - marks["started"]),
        ("command line, options, output checks", marks["returned"] - marks["imported"] - expand),
        ("scan: list, read, hash, check-decode (forked workers)", scan),
        ("plan: split, names, fingerprint", plan),
        ("open the writer (partial output, journal)", opened),
        ("render: fork the workers", start),
        ("render: wait for and receive results", wait),
        ("render: write files / HDF5 rows", write),
        ("render: records and journal", journal),
        ("render: rest (tasks, hand out, stop workers)", render - start - wait - write - journal),
        ("augtool.json attributes (versions)", attributes),
        ("manifest, augtool.json, HDF5 tables (finish)", finish - publish),
        ("publish (rename into place)", publish),
        ("exit (interpreter shutdown)", ended - marks["returned"]),
    ]


def worker_table(
    profdir: Path,
) -> tuple[list[tuple[str, float]], int, float, dict[str, float]]:
    """CPU seconds of the workers' work, summed over every worker process.

    Returns:
        The rows, the number of workers, their total CPU seconds, and the
        seconds of each OpenCV function in the steps (:func:`opencv_calls`).
    """
    sums: dict[str, float] = {}
    opencv: dict[str, float] = {}
    total = 0.0
    files = sorted(profdir.glob("worker-*.prof"))
    for path in files:
        st = _stats(path)
        total += _total(st)
        parts = {
            "scan: read sources": _cum(st, "read_bytes", caller="inspect_file"),
            "scan: hash sources (SHA-256)": _cum(st, "openssl_sha256", caller="inspect_file"),
            "scan: decode (check, kept for the render)": _cum(
                st, "decode_rgb", caller="inspect_file"
            ),
            "render: read sources again": _cum(st, "read_bytes", caller="render_source"),
            "render: hash sources again (changed?)": _cum(
                st, "openssl_sha256", caller="render_source"
            ),
            "render: decode (sources the scan did not keep)": _cum(
                st, "decode_rgb", caller="render_source"
            ),
            "render: copy of the kept source": _cum(st, "copy", caller="render_source"),
            "render: transforms and resize (Pipeline.run)": _cum(st, "run", "pipeline/core.py"),
            "render: PCA copies": _cum(st, "pca_copies"),
            "render: encode (PNG/JPEG)": _cum(st, "encode_image"),
            "render: hash outputs (SHA-256)": _cum(st, "payload_sha256"),
            "render: parameters to JSON": _cum(st, "dumps", "json/__init__", caller="_encode"),
            "send results to the main process (pickle, pipe)": _cum(
                st, "send", "connection.py", caller="_worker"
            ),
        }
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        for k, v in opencv_calls(st).items():
            opencv[k] = opencv.get(k, 0.0) + v
    rows = list(sums.items())
    rows.append(("rest (worker loop, generators, scan checks)", total - sum(sums.values())))
    return rows, len(files), total, opencv


def _print(title: str, rows: list[tuple[str, float]], total: float, unit: str) -> None:
    print(f"\n{title:<58}{unit:>9}{'share':>8}")
    for label, seconds in rows:
        print(f"{label:<58}{seconds:>9.2f}{100 * seconds / total:>7.0f}%")
    print(f"{'total':<58}{total:>9.2f}{100:>7.0f}%")


def run(raw: str, out: str, expand_args: list[str], repeat: int) -> None:
    """Time ``repeat`` plain runs, then one profiled run; print the tables."""
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    sys.path.insert(0, str(REPO))
    from tests.workloads import machine

    print(f"machine: {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load}")
    argv = ["expand", raw, out, "--quiet", *expand_args]
    print("command: augtool " + " ".join(argv))
    for i in range(repeat):
        _clear(Path(out))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli", *argv], cwd=REPO, check=True, env=ENV)
        print(f"plain run {i + 1}: {time.perf_counter() - t0:.2f} s wall")
    _clear(Path(out))
    with tempfile.TemporaryDirectory() as tmp:
        profdir = Path(tmp)
        spawned = time.time()
        subprocess.run(
            [sys.executable, __file__, "--child", str(profdir), *argv],
            cwd=REPO,
            check=True,
            env=ENV,
        )
        ended = time.time()
        main_rows = main_table(profdir, spawned, ended)
        main_cpu = json.loads((profdir / "marks.json").read_text())["marks"]["cpu"]
        wrows, nworkers, wtotal, opencv = worker_table(profdir)
        per_step: dict[str, list[float]] = {}
        for path in profdir.glob("steps-*.json"):
            for name, (seconds, count) in json.loads(path.read_text()).items():
                entry = per_step.setdefault(name, [0.0, 0])
                entry[0] += seconds
                entry[1] += count
    _print("main process (profiled run)", main_rows, ended - spawned, "wall s")
    print(f"main process CPU: {main_cpu:.2f} s (user + system, profiler included)")
    _print(f"workers ({nworkers} processes: scan, then render)", wrows, wtotal, "CPU s")
    print(
        f"\n{'step (in Pipeline.run: the step and its resize)':<46}{'outputs':>8}{'CPU s':>8}"
        f"{'ms each':>9}"
    )
    for name, (seconds, count) in sorted(per_step.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:<46}{count:>8}{seconds:>8.2f}{1000 * seconds / count:>9.2f}")
    steps_total = dict(wrows)["render: transforms and resize (Pipeline.run)"]
    rows = sorted(opencv.items(), key=lambda kv: -kv[1])
    rows.append(("the rest: Python and NumPy around them", steps_total - sum(opencv.values())))
    _print("inside Pipeline.run (OpenCV's own functions)", rows, steps_total, "CPU s")
    with open("/proc/loadavg") as fh:
        print("load average at the end: " + " ".join(fh.read().split()[:3]))
    _clear(Path(out))


def _clear(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.unlink(missing_ok=True)


def main() -> None:
    """Parse the arguments (or ``--child DIR ARGS...`` in the profiled process)."""
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]), sys.argv[3:])
        return
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=("upscaled", "native"), default="upscaled")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "augtool-bench"
    )
    parser.add_argument("--hdf5", action="store_true", help="one HDF5 file instead of a folder")
    parser.add_argument("--repeat", type=int, default=1, help="plain (unprofiled) runs first")
    args, extra = parser.parse_known_args()
    sys.path.insert(0, str(REPO))
    from tests.workloads import build_allidb_like, build_allidb_native

    args.workdir.mkdir(parents=True, exist_ok=True)
    build = build_allidb_like if args.workload == "upscaled" else build_allidb_native
    raw, _ = build(args.workdir)
    out = args.workdir / ("out-profile.h5" if args.hdf5 else "out-profile")
    print(f"workload {args.workload}: {raw}")
    run(str(raw), str(out), ["--split", "none", *extra], args.repeat)


if __name__ == "__main__":
    main()
