"""``expand --backend dask``: same bytes as the local backend, dying workers, bad addresses.

Every cluster here is a real ``distributed.LocalCluster`` on loopback: the
module's one of 2 worker processes under nannies (tests/conftest.py), which even
the worker-killing test leaves as it found it, and the one that ``--scheduler
local -j 1`` starts. Tests that need Dask skip when it is not installed.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from augtool.engine.dask_backend import DaskBackend
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.render import RenderSettings, SourceTask, render_source
from augtool.errors import ClusterError, OptionError
from augtool.store.writers import partial_path
from cli import main
from tests.conftest import tree_hashes, write_upscaled_smears
from tests.mixed_recipe import images_and_manifest, mixed_recipe

#: 16 sources of 640x480: enough tasks that some are still running after the first result.
PER_CLASS = {"ALL": 6, "AML": 5, "normal": 5}
#: Outputs of 64x64, not the default 227x227: the bytes are compared, their size is not the
#: point, and every test here expands the set two to five times.
OPTIONS = ExpandOptions(target=96, pca_count=16, size=64, workers=2)


def folder_hashes(out: Path) -> dict[str, str]:
    hashes = tree_hashes(out)
    hashes.pop("augtool.json")  # holds the creation time and command line
    return hashes


def hdf5_contents(path: Path) -> dict[str, Any]:
    """Every dataset and attribute of an HDF5 file, minus creation time and command line."""
    import h5py

    contents: dict[str, Any] = {}
    with h5py.File(path, "r") as fh:
        for key, value in fh.attrs.items():
            if key not in ("created_utc", "command_line"):
                contents[f"@{key}"] = np.asarray(value).tolist()

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                contents[name] = obj[()].tobytes() if obj.dtype.kind != "O" else obj[()].tolist()
                for key, value in obj.attrs.items():
                    contents[f"{name}@{key}"] = np.asarray(value).tolist()

        fh.visititems(visit)
    return contents


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(dask_cluster: Any) -> Any:
    """The session's 2-worker LocalCluster (tests/conftest.py), left as it was found."""
    return dask_cluster


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 16 sources of 640x480, written once for the module (every test only reads them).

    Each is a 160x120 smear scaled up 4x: photo-like at the size that keeps tasks
    running after the first result, for a fiftieth of the cost of drawing it at
    640x480 (0.28 CPU-seconds an image, 4.5 per test, when every test drew its own).
    """
    root = tmp_path_factory.mktemp("dask") / "raw"
    return write_upscaled_smears(root, PER_CLASS, (640, 480))


@pytest.fixture(scope="module")
def local(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The local backend's outputs of :data:`OPTIONS` (folder and HDF5), the reference of
    every comparison here, expanded once for the module."""
    root = tmp_path_factory.mktemp("local")
    outs = {"folder": root / "local", "hdf5": root / "local.h5"}
    for out in outs.values():
        expand(raw, out, OPTIONS)
    return outs


def test_missing_extra_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes the import fail
    with pytest.raises(OptionError, match=r"backend.*pip install -e '\.\[dask\]'"):
        DaskBackend("local").connect()


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"timeout": 0}, "timeout"), ({"scheduler": " "}, "scheduler")],
)
def test_invalid_settings_name_the_option(kwargs: dict, option: str) -> None:
    with pytest.raises(OptionError) as err:
        DaskBackend(**kwargs)
    assert err.value.option == option  # the parameter; the CLI shows --scheduler-timeout


def test_same_bytes_as_the_local_backend(
    cluster, raw: Path, local: dict[str, Path], tmp_path: Path
) -> None:
    """Folder (paths on shared disk, and bytes sent from the client) and HDF5."""
    with DaskBackend(cluster.scheduler_address, timeout=5) as backend:
        expand(raw, tmp_path / "dask", OPTIONS, backend=backend)
        expand(raw, tmp_path / "dask.h5", OPTIONS, backend=backend)
        backend.send_sources = True
        expand(raw, tmp_path / "sent", OPTIONS, backend=backend)
    reference = folder_hashes(local["folder"])
    assert len(reference) == 96 + 16 + 1  # images and manifest.csv
    assert folder_hashes(tmp_path / "dask") == reference
    assert folder_hashes(tmp_path / "sent") == reference
    assert hdf5_contents(tmp_path / "dask.h5") == hdf5_contents(local["hdf5"])


def test_cli_local_cluster_gives_the_same_hdf5(
    raw: Path, local: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    args = ["expand", raw, tmp_path / "dask.h5", "--target", "96", "--pca-count", "16"]
    args += ["--size", str(OPTIONS.size)]
    # One worker process (-j 1): the cluster the command starts and stops is the point, and
    # two workers' results in any order are compared on the module's cluster above.
    result = CliRunner().invoke(
        main, [str(a) for a in [*args, "--backend", "dask", "--scheduler", "local", "-j", "1"]]
    )
    assert result.exit_code == 0, result.output
    assert "1 worker(s)" in result.output
    assert hdf5_contents(tmp_path / "dask.h5") == hdf5_contents(local["hdf5"])


def test_mixed_recipe_same_bytes_on_dask_workers(cluster, make_raw, tmp_path: Path) -> None:
    """A recipe of built-ins and albumentations steps (tests/mixed_recipe.py) rendered by
    the cluster's worker processes gives the bytes of the local run."""
    from augtool.pipeline.recipe_toml import read_recipe_file

    recipe = read_recipe_file(mixed_recipe(tmp_path / "mixed.toml"))
    raw = make_raw()
    opts = ExpandOptions(target=40, pipeline=recipe, recipe_named=True, size=48, workers=2)
    expand(raw, tmp_path / "local", opts)
    with DaskBackend(cluster.scheduler_address, timeout=30) as backend:
        expand(raw, tmp_path / "dask", opts, backend=backend)
    reference = images_and_manifest(tmp_path / "local")
    assert any("_hsv.png" in name for name in reference)  # albumentations steps ran
    assert images_and_manifest(tmp_path / "dask") == reference


class KillBusyWorker:
    """A reporter that SIGKILLs a worker holding a task when the first result is written."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pids: dict[str, int] = client.run(os.getpid)
        self.lost: list[str] = []
        self.killed = 0

    def start(self, phase: str, total: int) -> None:
        """Nothing to do."""

    def advance(self, n: int) -> None:
        if n and not self.lost:
            busy = {addr: keys for addr, keys in self.client.processing().items() if keys}
            addr = sorted(busy)[0]
            self.killed = self.pids[addr]
            os.kill(self.killed, signal.SIGKILL)
            self.lost = list(busy[addr])

    def warn(self, message: str) -> None:
        """Nothing to do."""


def test_worker_killed_mid_run_gives_the_same_bytes(
    cluster, raw: Path, local: dict[str, Path], tmp_path: Path
) -> None:
    """SIGKILL to a worker holding tasks: they run again elsewhere, the bytes do not change.

    The module's cluster is used, not one of its own: each worker runs under a nanny that
    starts a new worker process for the killed one, and the test waits for it, so the
    cluster is left with its two workers (new pids) as it was found.
    """
    distributed = pytest.importorskip("distributed")
    with distributed.Client(cluster, set_as_default=False) as client:
        killer = KillBusyWorker(client)
        try:
            with DaskBackend(cluster.scheduler_address, timeout=5) as backend:
                expand(raw, tmp_path / "dask", OPTIONS, killer, backend=backend)
            assert killer.lost, "no task was running on the killed worker"
            assert killer.killed not in client.run(os.getpid).values()
        finally:
            client.wait_for_workers(len(killer.pids), timeout=120)
    assert folder_hashes(tmp_path / "dask") == folder_hashes(local["folder"])


class StopAfterFirstBatch:
    """A reporter that interrupts the run once some results are written."""

    def start(self, phase: str, total: int) -> None:
        """Nothing to do."""

    def advance(self, n: int) -> None:
        if n:
            raise KeyboardInterrupt

    def warn(self, message: str) -> None:
        """Nothing to do."""


def test_resume_an_interrupted_dask_run(
    cluster, raw: Path, local: dict[str, Path], tmp_path: Path
) -> None:
    from augtool.errors import Interrupted

    out = tmp_path / "dask"
    with DaskBackend(cluster.scheduler_address, timeout=5) as backend:
        with pytest.raises(Interrupted):
            expand(raw, out, OPTIONS, StopAfterFirstBatch(), backend=backend)
        assert partial_path(out).is_dir()
        resumed = ExpandOptions(**{**OPTIONS.__dict__, "resume": True})
        expand(raw, out, resumed, backend=backend)
    assert folder_hashes(out) == folder_hashes(local["folder"])


class LosesTheClusterAfterOneTask:
    """A backend whose cluster goes away after the first result."""

    def render(self, tasks, settings):
        yield render_source(tasks[0], settings)
        raise ClusterError("lost the Dask scheduler at tcp://head:8786 mid-run")


def test_lost_cluster_keeps_the_partial_output_for_resume(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    options = ExpandOptions(size=48, target=40, workers=1)
    expand(raw, tmp_path / "local", options)
    out = tmp_path / "out"
    with pytest.raises(ClusterError, match=r"mid-run\. The partial output is kept.*with resume"):
        expand(raw, out, options, backend=LosesTheClusterAfterOneTask())
    assert partial_path(out).is_dir() and not out.exists()
    expand(raw, out, ExpandOptions(**{**options.__dict__, "resume": True}))
    assert folder_hashes(out) == folder_hashes(tmp_path / "local")


def test_workers_that_cannot_see_raw_are_told_to_use_send_sources(cluster) -> None:
    task = SourceTask("/nonexistent/raw/ALL/a.jpg", "0" * 64, 10, 10, ((0, 0, "original"),))
    settings = RenderSettings(size=32, seed=0)
    with (
        DaskBackend(cluster.scheduler_address, timeout=5) as backend,
        pytest.raises(ClusterError, match=r"cannot see /nonexistent.*send_sources"),
    ):
        list(backend.render([task], settings))


def test_cluster_error_before_any_output_leaves_nothing(make_raw, tmp_path: Path) -> None:
    class Refuses:
        def render(self, tasks, settings):
            raise ClusterError("Dask worker tcp://w:1 cannot see RAW")
            yield

    out = tmp_path / "out"
    with pytest.raises(ClusterError, match=r"cannot see RAW$"):
        expand(make_raw(), out, ExpandOptions(size=48, target=20), backend=Refuses())
    assert not out.exists() and not partial_path(out).exists()


def test_unreachable_scheduler_gives_a_clear_error_within_the_timeout(
    make_raw, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "out"
    args = ["expand", make_raw(), out, "--backend", "dask", "--scheduler", address]
    started = time.monotonic()
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--scheduler-timeout", "1"]])
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert f"cannot reach the Dask scheduler at {address} within 1 s" in result.output
    assert "--scheduler local" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not partial_path(out).exists()
    # A bound on hanging, not a speed target: the 1 s timeout must be honoured.
    assert elapsed < 15
