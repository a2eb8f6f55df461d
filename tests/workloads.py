"""Workloads and a process-tree memory sampler for benchmarks/, experiments/ and checks/."""

from __future__ import annotations

import os
import platform
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAPER_CLASSES = {"ALL": 49, "AML": 33, "normal": 59}


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores, {cpu}, Python {platform.python_version()}, OpenCV {cv2.__version__}"


def build_allidb_like(root: Path, width: int = 2592, height: int = 1944) -> tuple[Path, str]:
    """The ALL-IDB1-sized workload: 141 JPEGs (q95) at 2592x1944, 49 / 33 / 59 per class.

    Made from the real BCCD smears when ``../shared/data/bccd-smears`` exists
    (upscaled), else from generated smear-like images. Built once, then reused.

    Returns:
        The RAW folder and a description of where the pixels came from.
    """
    smears = sorted((SHARED_DATA / "bccd-smears").glob("*.jpg"))
    origin = "BCCD smears upscaled" if len(smears) >= 141 else "generated images"
    raw = root / f"allidb-like-{width}x{height}"
    done = raw / ".complete"
    if done.exists():
        return raw, origin
    i = 0
    for cls, n in PAPER_CLASSES.items():
        (raw / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            if smears:
                bgr = cv2.imread(str(smears[i]))
            else:
                bgr = _generated(np.random.default_rng(i), 640, 480)
            big = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(raw / cls / f"{cls}_{k:03d}.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
            i += 1
    done.write_text("ok\n")
    return raw, origin


def build_allidb_native(root: Path, width: int = 2592, height: int = 1944) -> tuple[Path, str]:
    """The native-detail ALL-IDB1-sized workload: 141 mosaics (JPEG q95), 49 / 33 / 59 per class.

    Each source tiles 640x480 smears side by side without resizing
    (``tests/mosaic.py``: the BCCD smears when present, else generated ones),
    so every pixel carries camera detail, unlike the upscaled workload of
    :func:`build_allidb_like`. Source ``i`` starts at tile ``26 i``: 26 is
    prime to the 205 smears, so the 141 mosaics all differ (a stride of 25
    repeated every 41 sources, which ``expand`` reports as duplicates).
    Built once, then reused.

    Returns:
        The RAW folder and a description of where the pixels came from.
    """
    from tests.mosaic import jpeg_bytes, mosaic, tile_origin

    raw = root / f"allidb-native-v2-{width}x{height}"
    done = raw / ".complete"
    if done.exists():
        return raw, tile_origin()
    i = 0
    for cls, n in PAPER_CLASSES.items():
        (raw / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            (raw / cls / f"{cls}_{k:03d}.jpg").write_bytes(
                jpeg_bytes(mosaic(width, height, first=26 * i))
            )
            i += 1
    done.write_text("ok\n")
    return raw, tile_origin()


def _generated(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    img = np.full((height, width, 3), (210, 200, 228), np.uint8)
    for _ in range(40):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(15, 40))
        color = tuple(int(c) for c in rng.integers(80, 220, 3))
        cv2.circle(img, center, radius, color, -1, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def _tree_stats(pid: int) -> tuple[int, dict[int, float]]:
    """Resident bytes of ``pid`` and all its descendants, and each one's CPU seconds (/proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
            used = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
        cpu[int(entry)] = used
    total, tree, stack = 0, {}, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        tree[p] = cpu.get(p, 0.0)
        stack.extend(children.get(p, []))
    return total, tree


class PeakMemory:
    """Samples a process tree every 20 ms: ``peak`` summed RSS in bytes, ``cpu`` seconds.

    ``cpu`` is the user + system time of every process seen in the tree, as
    last sampled (a process's final 20 ms may be missed): unlike wall time it
    hardly grows when other jobs share the cores.
    """

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu(self) -> float:
        """CPU seconds used by the tree's processes so far."""
        return sum(self._cpu.values())

    def _sample(self) -> None:
        rss, cpu = _tree_stats(self.pid)
        self.peak = max(self.peak, rss)
        for p, used in cpu.items():
            self._cpu[p] = max(self._cpu.get(p, 0.0), used)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(0.02)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass(frozen=True)
class TreeRun:
    """A command timed in a new process with everything it started.

    Attributes:
        seconds: Wall seconds from the start to its exit.
        cpu: User + system seconds of every process of its tree (:class:`PeakMemory`).
        peak: Peak summed RSS of the tree in bytes.
        per_process: CPU seconds of each process of the tree, most first.
    """

    seconds: float
    cpu: float
    peak: int
    per_process: list[float]


def run_tree(
    cmd: Sequence[str],
    what: str,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> TreeRun:
    """Run ``cmd`` in a new process, sampling its process tree until it exits.

    Raises:
        SystemExit: Naming ``what`` and the exit code, if the command fails.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=None if env is None else dict(env))
    with PeakMemory(proc.pid) as mem:
        code = proc.wait()
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{what} failed with exit code {code}")
    per_process = sorted((round(c, 2) for c in mem._cpu.values()), reverse=True)
    return TreeRun(seconds, mem.cpu, mem.peak, per_process)
