"""The flags of where expand renders: ``--backend``, ``--scheduler`` and the rest.

The flags only: ``augtool.expand`` takes them as keywords of the same names
and connects the backend (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from augtool import defaults
from augtool.commands.exit_codes import LibraryOption

F = TypeVar("F", bound=Callable[..., Any])

#: The library names of the flags (keywords of ``augtool.expand``).
BACKEND_FLAGS = ("backend", "scheduler", "scheduler_timeout", "send_sources")


def backend_options(func: F) -> F:
    """``--backend``, ``--scheduler``, ``--scheduler-timeout``, ``--send-sources``."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(defaults.BACKENDS),
            default=defaults.DEFAULT_BACKEND,
            show_default=True,
            help="Where sources are rendered: local worker processes on this machine (forked "
            "on Linux, joblib elsewhere), or a Dask cluster (needs the dask extra; see "
            "docs/scaling.md). Never changes the output bytes.",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="ADDRESS",
            help="Dask scheduler (tcp://host:8786), or 'local' to start a cluster of "
            "--workers processes here. [default with --backend dask: local]",
        ),
        click.option(
            "--scheduler-timeout",
            cls=LibraryOption,
            library_names=("timeout",),
            type=click.FloatRange(min=0, min_open=True),
            default=defaults.DEFAULT_SCHEDULER_TIMEOUT,
            metavar="SECONDS",
            show_default=True,
            help="Seconds to wait for the Dask scheduler and its first worker.",
        ),
        click.option(
            "--send-sources",
            is_flag=True,
            help="Send each source's bytes to the Dask workers (for workers without RAW).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
