"""Shared fixtures: generated RAW folders, the real cells when present, and the session-wide
expensive ones (one tiny HDF5 set and one model trained on it, one Dask cluster)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_CELLS = SHARED_DATA / "bccd-cells"
REAL_SMEARS = SHARED_DATA / "bccd-smears"


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


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """One LocalCluster for every test that leaves it as it found it (starting one costs
    seconds of worker imports); tests that kill workers start their own."""
    cluster = start_dask_cluster()
    yield cluster
    cluster.close()


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
def tiny_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """42 blob images of 32x32 (classes ALL, AML, normal), split train/val/test by image."""
    from tests.h5data import make_blob_h5

    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    return make_blob_h5(path, per_class=[14, 12, 16], size=32, seed=3, val_fraction=0.2)


@pytest.fixture(scope="session")
def trained_run(tiny_h5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run folder of ``augtool train`` on :func:`tiny_h5`, shared by every test that only
    reads it (model.pt, metrics.json, history.csv)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    train_cli(tiny_h5, run)
    return run
