"""Rendering on a Dask cluster: the same tasks and bytes as local workers, elsewhere.

:class:`DaskBackend` connects to a scheduler (or starts a local cluster),
checks that the workers run the same library versions, and keeps a bounded
window of tasks in flight; results come back in any order and are written by
the one writer. ``dask`` and ``distributed`` are the optional ``dask`` extra
(``pip install -c constraints.txt -e '.[dask]'``), imported only when this backend connects.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from augtool.engine.backends import default_workers
from augtool.engine.render import (
    Rendered,
    RenderSettings,
    SourceTask,
    render_source,
)
from augtool.errors import ClusterError, InputError, OptionError, literal

#: ``--scheduler`` value that starts a ``distributed.LocalCluster`` on loopback.
LOCAL_SCHEDULER = "local"


#: Tasks in flight per worker thread: enough to keep every worker busy while
#: the client writes, few enough that results never pile up in memory.
WINDOW_PER_THREAD = 3


def worker_versions() -> dict[str, str]:
    """Versions that decide the output bytes, as seen by the process that runs this."""
    import cv2
    import numpy as np

    from augtool import __version__

    return {"augtool": __version__, "opencv": cv2.__version__, "numpy": np.__version__}


def _import_distributed() -> ModuleType:
    try:
        import distributed
    except ImportError as err:
        raise OptionError(
            "backend",
            "dask needs the optional Dask extra: pip install -e '.[dask]' "
            "(or pip install 'dask[distributed]')",
        ) from err
    return distributed


class DaskBackend:
    """A Dask ``distributed`` cluster renders; this process alone writes.

    Tasks are submitted in a bounded window (``window`` in flight, by default
    three per worker thread) and consumed with ``distributed.as_completed``:
    each finished result is fetched, handed to the writer and released, and one
    more task is submitted. Data therefore flows workers -> client -> OUT and
    the client never holds more than the window.

    Use it as a context manager: entering connects (or starts the local
    cluster) and checks the workers, so a wrong address fails before anything
    is scanned or written. :meth:`render` outside a ``with`` block connects for
    the one call.

    Attributes:
        scheduler: ``tcp://host:port`` of a running scheduler, or ``local``.
        workers: Workers of the local cluster (0: one per core); ignored for
            a remote scheduler, whose cluster has the workers it has.
        timeout: Seconds to wait for the scheduler, and for a first worker.
        retries: Extra attempts of a task that raised an error. Tasks lost with
            a dying worker are rescheduled by Dask on their own (up to its
            ``distributed.scheduler.allowed-failures``, default 3).
        window: Tasks in flight (0: three per worker thread).
        send_sources: Read each source here and send its bytes with the task,
            for workers that cannot see RAW at the same path.
    """

    def __init__(
        self,
        scheduler: str = LOCAL_SCHEDULER,
        workers: int = 0,
        timeout: float = 10.0,
        retries: int = 2,
        window: int = 0,
        send_sources: bool = False,
    ) -> None:
        """Check the settings; connect later (``with`` or :meth:`connect`).

        Raises:
            OptionError: Naming the invalid setting.
        """
        if not scheduler.strip():
            raise OptionError("scheduler", "give an address like tcp://host:8786, or local")
        if not timeout > 0:
            raise OptionError("timeout", f"must be > 0 seconds, got {timeout}")
        if workers < 0:
            raise OptionError("workers", f"must be >= 0 (0 = all cores), got {workers}")
        if retries < 0:
            raise OptionError("retries", f"must be >= 0, got {retries}")
        if window < 0:
            raise OptionError("window", f"must be >= 0 (0 = three per worker), got {window}")
        self.scheduler = scheduler.strip()
        self.workers = workers
        self.timeout = timeout
        self.retries = retries
        self.window = window
        self.send_sources = send_sources
        self._client: Any = None
        self._cluster: Any = None

    @property
    def address(self) -> str:
        """The scheduler's address (the local cluster's once it is started)."""
        if self._cluster is not None:
            return str(self._cluster.scheduler_address)
        return self.scheduler

    def __enter__(self) -> DaskBackend:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Start the local cluster if asked, connect, and check the workers.

        Raises:
            OptionError: If Dask is not installed.
            ClusterError: If the scheduler cannot be reached within ``timeout``,
                has no worker within ``timeout``, or its workers run other
                versions of augtool, OpenCV or numpy (or cannot import augtool).
        """
        if self._client is not None:
            return
        distributed = _import_distributed()
        try:
            if self.scheduler == LOCAL_SCHEDULER:
                self._cluster = self._start_local_cluster(distributed)
            self._client = self._open_client(distributed)
            self._wait_for_workers()
            self._check_versions()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Disconnect, and stop the local cluster if this backend started it."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def describe(self) -> str:
        """One line about the connected cluster, e.g. for the command's output."""
        if self._client is None:
            return f"Dask scheduler {self.address} (not connected)"
        threads = self._client.nthreads()
        return (
            f"Dask scheduler {self.address}: {len(threads)} worker(s), "
            f"{sum(threads.values())} thread(s)"
        )

    def _start_local_cluster(self, distributed: ModuleType) -> Any:
        import dask

        n = self.workers or default_workers()
        try:
            # Dask's statistical profiler samples every worker thread 100 times a
            # second; it cost 10-20 % more CPU per task on the 2-core test machine. Our
            # workers run one pure function, there is nothing to profile.
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                return distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # no dashboard; its HTTP server (health checks) on a free loopback port
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                )
        except Exception as err:
            raise ClusterError(
                f"could not start a local Dask cluster of {n} workers: {err}"
            ) from err

    def _open_client(self, distributed: ModuleType) -> Any:
        address = self.address
        try:
            return distributed.Client(address, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {literal(address)} within "
                f"{self.timeout:g} s ({literal(err)}). Check the address and that `dask "
                "scheduler` runs there (and a firewall lets its port through), raise "
                "{timeout}, or use {scheduler} local to start a cluster on this machine",
                refs=True,
            ) from err

    def _wait_for_workers(self) -> None:
        try:
            self._client.wait_for_workers(1, timeout=self.timeout)
        except TimeoutError as err:
            raise ClusterError(
                f"the Dask scheduler at {self.address} has no workers after {self.timeout:g} s: "
                f"start them with `dask worker {self.address}` on machines that have augtool"
            ) from err

    def _check_versions(self) -> None:
        here = worker_versions()
        try:
            seen = self._client.run(worker_versions)
        except Exception as err:
            raise ClusterError(
                f"the Dask workers at {self.address} cannot run augtool ({type(err).__name__}: "
                f"{err}): install augtool {here['augtool']} with its dependencies on every worker"
            ) from err
        wrong = {addr: v for addr, v in seen.items() if v != here}
        if wrong:
            addr, theirs = next(iter(wrong.items()))
            raise ClusterError(
                f"{len(wrong)} Dask worker(s) run other versions than this machine, so the bytes "
                f"could differ: {addr} has {theirs}, here {here}. Install the same versions on "
                "every worker"
            )

    def _check_albumentations(self) -> None:
        """A recipe with albumentations steps needs the same albumentations on every worker."""
        from augtool.pipeline.albu import EXTRA, installed_version

        here = installed_version()
        seen = self._client.run(installed_version)
        wrong = {addr: v for addr, v in seen.items() if v != here}
        if wrong:
            addr, theirs = next(iter(wrong.items()))
            raise ClusterError(
                f"{len(wrong)} Dask worker(s) run another albumentations than this machine, so "
                f"the bytes could differ: {addr} has {theirs or 'none'}, here {here}. Install "
                f"the same version on every worker ({EXTRA})"
            )

    def _check_paths(self, task: SourceTask) -> None:
        """Every worker must see RAW at the path the client sees, unless we send bytes."""
        seen = self._client.run(os.path.isfile, task.path)
        blind = sorted(addr for addr, ok in seen.items() if not ok)
        if blind:
            raise ClusterError(
                f"Dask worker {literal(blind[0])} (and {len(blind) - 1} other(s)) cannot see "
                f"{literal(task.path)}: mount RAW at the same path on every worker (a shared "
                "filesystem), or pass {send_sources} to send each source's bytes from this "
                "machine",
                refs=True,
            )

    def render(
        self, tasks: Sequence[SourceTask], settings: RenderSettings
    ) -> Iterator[list[Rendered]]:
        """Yield each task's outputs as the cluster finishes them (any order).

        Raises:
            ClusterError: See :meth:`connect`; also when workers cannot see RAW,
                a task keeps killing its workers, or the scheduler is lost.
            InputError: A source changed or cannot be decoded (after retries).
        """
        if not tasks:
            return
        if self._client is None:
            with self:
                yield from self.render(tasks, settings)
            return
        from distributed import KilledWorker, as_completed

        client = self._client
        if not self.send_sources:
            self._check_paths(tasks[0])
        if settings.recipe is not None and settings.recipe.uses_albumentations:
            self._check_albumentations()
        window = self.window or WINDOW_PER_THREAD * max(1, sum(client.nthreads().values()))
        todo = iter(tasks)
        running: dict[Any, SourceTask] = {}

        def submit(task: SourceTask) -> Any:
            extra = (_read_source(task),) if self.send_sources else ()
            future = client.submit(
                render_source, task, settings, *extra, pure=False, retries=self.retries
            )
            running[future] = task
            return future

        finished = as_completed(
            [submit(t) for t in itertools.islice(todo, window)], loop=client.loop
        )
        try:
            for future in finished:
                task = running.pop(future)
                try:
                    result = future.result()
                except KilledWorker as err:
                    raise ClusterError(
                        f"{task.path}: rendering it killed Dask workers again and again (out of "
                        "memory? see the worker logs)"
                    ) from err
                except CancelledError as err:
                    raise ClusterError(
                        f"lost the Dask scheduler at {self.address} mid-run ({err})"
                    ) from err
                del future
                following = next(todo, None)
                if following is not None:
                    finished.add(submit(following))
                yield result
        finally:
            if running:
                client.cancel(list(running))


def _read_source(task: SourceTask) -> bytes:
    try:
        return Path(task.path).read_bytes()
    except OSError as err:
        raise InputError(f"{task.path}: cannot read ({err.strerror}); was it moved?") from err
