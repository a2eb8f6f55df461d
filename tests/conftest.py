"""Shared fixtures: generated RAW folders, the real cells when present, and the expensive
ones: one tiny HDF5 set and one model trained on it (built once per test run, shared by
every pytest-xdist worker), and a Dask cluster per test module that asks for one."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_CELLS = SHARED_DATA / "bccd-cells"
REAL_SMEARS = SHARED_DATA / "bccd-smears"


def pytest_configure(config: pytest.Config) -> None:
    """One OpenMP thread per process (torch, BLAS) unless the caller chose a number.

    Runs before any test module imports torch, and child processes inherit it. The
    suite runs one pytest-xdist worker per core, and every torch process would start
    an OpenMP thread per core besides: on the 2-core machine the extra threads spin
    while they wait and took two to ten times the CPU of a one-thread run (the three
    network tests of test_model: 15.9 CPU-seconds against 3.9). No output depends on
    it (docs/pca.md: the PCA moments are exact sums; training compares runs made
    under the same setting).
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cache_compiled_modules()


def cache_compiled_modules() -> None:
    """Let this run and its child processes write ``__pycache__``, even if the shell says not to.

    With ``PYTHONDONTWRITEBYTECODE`` set (the project machine sets it), every
    process compiles what it imports from source: each xdist worker re-compiled
    the test modules and hypothesis (which pytest rewrites too, being a pytest
    plugin's package), and each of the suite's many ``augtool`` child processes
    the whole library. Measured on the quiet 2-core machine (2026-12-02): the
    full suite with ``-n 2`` took 128 s wall, 247 CPU s, with the variable set
    and 110 s, 204 CPU s without it. Runs before the xdist workers start, so
    they and every child inherit it; what is compiled is the same source, so no
    test sees a difference. ``__pycache__`` is in .gitignore.
    """
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


#: The test files that take longest (summed ``--durations`` on the quiet 2-core machine,
#: 2026-12-02: 28, 28, 24 and 23 of 217 seconds), longest first. A wrong or stale
#: entry changes only the order tests run in, never what they check.
LONGEST_FILES = ("test_gpu_check.py", "test_robustness.py", "test_dask.py", "test_docs.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest files first, the rest in their usual order.

    ``-n 2 --dist loadfile`` hands whole files to the workers in collection order
    (``--no-loadscope-reorder`` in pyproject.toml keeps it; by default pytest-xdist
    would order files by their number of tests, and the two-test gpu_check file ran
    last, 25 s on one core with the other idle). Started first, a long file
    overlaps with many short ones on the other worker.
    """

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)  # stable: the order within each file and among the rest is kept


def smear_like(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth pinkish image with purple blobs: cheap, deterministic, photo-like."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[:] = (228, 200, 210)
    for _ in range(12):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.15) * min(width, height)
        disc = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
        color = rng.uniform([120, 40, 110], [230, 140, 200])
        img += (color - img) * disc[:, :, None] * 0.8
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image(path: Path, rgb: np.ndarray, quality: int = 92) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    assert ok
    path.write_bytes(buf.tobytes())


def write_upscaled_smears(
    root: Path, per_class: dict[str, int], size: tuple[int, int], scale: int = 4
) -> Path:
    """Write ``root/<class>/<class>_<nnn>.jpg`` of ``size``, each a smear drawn ``scale``x smaller.

    Photo-like sources at a size that keeps tasks long, for a fraction of the cost of
    drawing them full size (:func:`smear_like` takes 0.2-0.3 CPU-seconds for a
    480x360 or 640x480 image).
    """
    width, height = size
    for c, (cls, n) in enumerate(sorted(per_class.items())):
        for i in range(n):
            small = smear_like(np.random.default_rng([0, c, i]), width // scale, height // scale)
            big = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
            write_image(root / cls / f"{cls}_{i:03d}.jpg", big)
    return root


def write_fold_h5(root: Path) -> Path:
    """``root/cells.h5``: 20 smear-like sources of 2 classes, 10 patients, 4 folds by patient.

    ``expand --target 60 --size 32 --group-regex 'patient\\d+' --folds 4``: small enough
    to train every fold in seconds.
    """
    from augtool.engine.expand import expand
    from augtool.engine.options import ExpandOptions

    raw = root / "raw"
    for c, cls in enumerate(("a", "b")):
        for i in range(10):
            rng = np.random.default_rng([c, i])
            write_image(raw / cls / f"patient{i // 2:02d}_{cls}{i}.jpg", smear_like(rng, 40, 30))
    out = root / "cells.h5"
    options = ExpandOptions(target=60, size=32, workers=1, group_regex=r"patient\d+", folds=4)
    expand(raw, out, options)
    return out


@pytest.fixture
def make_raw(tmp_path: Path) -> Callable[..., Path]:
    """Build ``RAW/<class>/<class>_<i>.jpg`` with generated images."""

    def build(
        per_class: dict[str, int] | None = None,
        size: tuple[int, int] = (96, 72),
        name: str = "raw",
        ext: str = ".jpg",
        seed: int = 0,
    ) -> Path:
        per_class = per_class or {"ALL": 4, "AML": 3, "normal": 5}
        root = tmp_path / name
        for c, (cls, n) in enumerate(sorted(per_class.items())):
            for i in range(n):
                rng = np.random.default_rng([seed, c, i])
                write_image(root / cls / f"{cls}_{i:03d}{ext}", smear_like(rng, *size))
        return root

    return build


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def start_dask_cluster() -> Any:
    """A real ``distributed.LocalCluster``: 2 worker processes on loopback (skip without Dask)."""
    distributed = pytest.importorskip("distributed")
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # no dashboard; its HTTP server (health checks) on a free loopback port
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    """One LocalCluster per test module, for every test that leaves it as it found it
    (starting one costs seconds of worker imports); tests that kill workers start their own.

    Per module, not per session: an idle cluster's processes keep ticking (about 5
    CPU-seconds a minute), and two modules use it, far apart in the run.
    """
    cluster = start_dask_cluster()
    yield cluster
    cluster.close()


def build_once(
    config: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    build: Callable[[Path], None],
) -> Path:
    """A folder that ``build(folder)`` fills once per test run, shared by the xdist workers.

    Without xdist this is a plain temporary folder. Under xdist every worker's base
    temporary folder sits in the run's one, so the first worker to get here builds the
    folder under an exclusive lock and the others wait for it and reuse it; nothing is
    shared between two test runs.

    Args:
        config: The run's configuration (tells an xdist worker from a plain run).
        tmp_path_factory: The run's temporary folders.
        name: The folder's name, unique among the shared ones.
        build: Fills the (empty) folder; an exception leaves nothing marked as built.

    Returns:
        The built folder.
    """
    root = tmp_path_factory.getbasetemp()
    if hasattr(config, "workerinput"):  # an xdist worker: gw0's base is <run>/popen-gw0
        root = root.parent
    folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


#: The options of the shared trained run (3 epochs of LeukemiaNet on 42 images of 32x32).
TRAIN_OPTIONS = [
    *("--epochs", "3", "--batch-size", "8", "--lr", "0.01", "--device", "cpu"),
    *("--quiet", "--patience", "5"),
]


def train_cli(data: Path, run: Path) -> None:
    """``augtool train DATA RUN`` with :data:`TRAIN_OPTIONS`, in this process."""
    from tests.child_process import run_cli

    code, output = run_cli("train", data, run, *TRAIN_OPTIONS)
    assert code == 0, output


@pytest.fixture(scope="session")
def tiny_h5(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """42 blob images of 32x32 (classes ALL, AML, normal), split train/val/test by image."""
    from tests.h5data import make_blob_h5

    def build(folder: Path) -> None:
        make_blob_h5(folder / "tiny.h5", per_class=[14, 12, 16], size=32, seed=3, val_fraction=0.2)

    return build_once(pytestconfig, tmp_path_factory, "tiny_h5", build) / "tiny.h5"


@pytest.fixture(scope="session")
def trained_run(
    tiny_h5: Path, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """One run folder of ``augtool train`` on :func:`tiny_h5`, trained once per test run and
    shared by every test (and xdist worker) that only reads it (model.pt, metrics.json,
    history.csv)."""

    def build(folder: Path) -> None:
        train_cli(tiny_h5, folder / "run")

    return build_once(pytestconfig, tmp_path_factory, "trained_run", build) / "run"
