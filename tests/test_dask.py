"""``expand --backend dask``: same bytes as the local backend, dying workers, bad addresses.

Every cluster here is a real ``distributed.LocalCluster``: 2 worker processes
on loopback. Tests that need Dask skip when it is not installed.
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

from augtool.backends import DaskBackend
from augtool.errors import ClusterError, OptionError
from augtool.expand import ExpandOptions, expand
from augtool.render import RenderSettings, SourceTask, render_source
from augtool.transforms import Ranges
from augtool.writers import partial_path
from cli import main
from tests.conftest import start_dask_cluster as start_cluster
from tests.conftest import tree_hashes

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


@pytest.fixture
def raw(make_raw) -> Path:
    return make_raw(PER_CLASS, size=(640, 480))


def test_missing_extra_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes the import fail
    with pytest.raises(OptionError, match=r"backend.*pip install 'augtool\[dask\]'"):
        DaskBackend("local").connect()


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"timeout": 0}, "timeout"), ({"scheduler": " "}, "scheduler")],
)
def test_invalid_settings_name_the_option(kwargs: dict, option: str) -> None:
    with pytest.raises(OptionError) as err:
        DaskBackend(**kwargs)
    assert err.value.option == option  # the parameter; the CLI shows --scheduler-timeout


def test_same_bytes_as_the_local_backend(cluster, raw: Path, tmp_path: Path) -> None:
    """Folder (paths on shared disk, and bytes sent from the client) and HDF5."""
    expand(raw, tmp_path / "local", OPTIONS)
    expand(raw, tmp_path / "local.h5", OPTIONS)
    with DaskBackend(cluster.scheduler_address, timeout=5) as backend:
        expand(raw, tmp_path / "dask", OPTIONS, backend=backend)
        expand(raw, tmp_path / "dask.h5", OPTIONS, backend=backend)
        backend.send_sources = True
        expand(raw, tmp_path / "sent", OPTIONS, backend=backend)
    local = folder_hashes(tmp_path / "local")
    assert len(local) == 96 + 16 + 1  # images and manifest.csv
    assert folder_hashes(tmp_path / "dask") == local
    assert folder_hashes(tmp_path / "sent") == local
    assert hdf5_contents(tmp_path / "dask.h5") == hdf5_contents(tmp_path / "local.h5")


def test_cli_local_cluster_gives_the_same_hdf5(raw: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    expand(raw, tmp_path / "local.h5", OPTIONS)
    args = ["expand", raw, tmp_path / "dask.h5", "--target", "96", "--pca-count", "16"]
    args += ["--size", str(OPTIONS.size)]
    result = CliRunner().invoke(
        main, [str(a) for a in [*args, "--backend", "dask", "--scheduler", "local", "-j", "2"]]
    )
    assert result.exit_code == 0, result.output
    assert "2 worker(s)" in result.output
    assert hdf5_contents(tmp_path / "dask.h5") == hdf5_contents(tmp_path / "local.h5")


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


def test_worker_killed_mid_run_gives_the_same_bytes(raw: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    expand(raw, tmp_path / "local", OPTIONS)
    cluster = start_cluster()
    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            killer = KillBusyWorker(client)
            with DaskBackend(cluster.scheduler_address, timeout=5) as backend:
                expand(raw, tmp_path / "dask", OPTIONS, killer, backend=backend)
            assert killer.lost, "no task was running on the killed worker"
            assert killer.killed not in client.run(os.getpid).values()
    finally:
        cluster.close()
    assert folder_hashes(tmp_path / "dask") == folder_hashes(tmp_path / "local")


class StopAfterFirstBatch:
    """A reporter that interrupts the run once some results are written."""

    def start(self, phase: str, total: int) -> None:
        """Nothing to do."""

    def advance(self, n: int) -> None:
        if n:
            raise KeyboardInterrupt

    def warn(self, message: str) -> None:
        """Nothing to do."""


def test_resume_an_interrupted_dask_run(cluster, raw: Path, tmp_path: Path) -> None:
    from augtool.errors import Interrupted

    expand(raw, tmp_path / "local", OPTIONS)
    out = tmp_path / "dask"
    with DaskBackend(cluster.scheduler_address, timeout=5) as backend:
        with pytest.raises(Interrupted):
            expand(raw, out, OPTIONS, StopAfterFirstBatch(), backend=backend)
        assert partial_path(out).is_dir()
        resumed = ExpandOptions(**{**OPTIONS.__dict__, "resume": True})
        expand(raw, out, resumed, backend=backend)
    assert folder_hashes(out) == folder_hashes(tmp_path / "local")


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
    settings = RenderSettings(size=32, ranges=Ranges(), seed=0)
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
