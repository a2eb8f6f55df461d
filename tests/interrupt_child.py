"""A child process for ``test_robustness``: a stop signal that lands inside a string ``exec``.

Run as ``python -m tests.interrupt_child SIGNAL``. The command, wrapped like every
long ``augtool`` command in :func:`cli.interruptible`, sends itself SIGNAL from code
run by ``exec`` of a string (as ``dataclasses`` and ``collections.namedtuple`` run
theirs), so the interrupt is raised inside that code. It must exit 130 with the
clean message, not die by SIGINT.
"""

from __future__ import annotations

import signal
import sys

import click

from cli import interruptible

_SEND_AND_WAIT = """
import os
os.kill(os.getpid(), SIGNAL)
for _ in range(10_000_000):
    pass
"""


@click.command()
@click.argument("name")
@interruptible
def command(name: str) -> None:
    """Send signal NAME to this process from inside a string exec, then keep busy."""
    exec(_SEND_AND_WAIT, {"SIGNAL": getattr(signal, name)})
    sys.exit(3)  # not reached: the signal stops the loop above


if __name__ == "__main__":
    command()
