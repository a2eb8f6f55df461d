"""Where ``expand`` runs its per-source work: local processes or a Dask cluster.

A backend takes the run's :class:`~augtool.engine.render.SourceTask` list and yields
each task's outputs (what :func:`~augtool.engine.render.render_source` returns) back
to the one writer in the calling process. ``render_source`` is pure, and the
writer places every output by its plan index (HDF5) or name (folder), so the
bytes do not depend on the backend, the number of workers, or the order in
which results arrive.

* :class:`LocalBackend`: processes on this machine (the default): forked
  (:mod:`augtool.engine.pool`) on Linux, joblib elsewhere.
* :class:`DaskBackend`: a Dask ``distributed`` cluster, at an address or a
  ``LocalCluster`` started on loopback. Dask is an optional extra
  (``pip install -c constraints.txt -e '.[dask]'``), imported only when this backend connects.

docs/scaling.md describes the design and what it costs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from typing import Protocol

from augtool import defaults
from augtool.engine.pool import fork_available, run_ordered
from augtool.engine.render import (
    Rendered,
    RenderSettings,
    SourceTask,
    render_in_worker,
    render_source,
)

#: Values of ``--backend``.
BACKENDS = defaults.BACKENDS


class Backend(Protocol):
    """Runs ``render_source`` over tasks and hands the results back."""

    def render(
        self, tasks: Sequence[SourceTask], settings: RenderSettings
    ) -> Iterator[list[Rendered]]:
        """Yield the outputs of every task, one list per task, in any order."""


class LocalBackend:
    """Worker processes on this machine, results in plan order.

    On Linux the workers are forked from this process (:mod:`augtool.engine.pool`), so
    they start with its imports; elsewhere they are joblib (loky) processes.
    """

    def __init__(self, workers: int) -> None:
        """Use ``workers`` processes (1 or fewer: render in this process)."""
        self.workers = workers

    def render(
        self, tasks: Sequence[SourceTask], settings: RenderSettings
    ) -> Iterator[list[Rendered]]:
        """Yield each task's outputs, in the order of ``tasks``."""
        if self.workers <= 1 or len(tasks) < 2:
            for task in tasks:
                yield render_source(task, settings)
            return
        if fork_available():
            yield from run_ordered(
                functools.partial(render_source, settings=settings),
                tasks,
                self.workers,
                describe=lambda task: task.path,
            )
            return
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=self.workers, return_as="generator", pre_dispatch="3*n_jobs")(
            delayed(render_in_worker)(task, settings) for task in tasks
        )


def default_workers() -> int:
    """Worker processes to start when none are asked for: the cores this process may use.

    The one place augtool counts cores (expand, verify --regenerate and the
    local backend all ask it). On Linux it honours the CPU affinity mask
    (``taskset``, container CPU sets); elsewhere it is ``os.cpu_count()``.
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
