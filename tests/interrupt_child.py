"""A child process for ``test_signals``: stop signals that land in awkward places.

Run as ``python -m tests.interrupt_child SIGNAL WHERE``. The command, wrapped like
every long ``augtool`` command in
:func:`augtool.commands.exit_codes.interruptible`, sends itself SIGNAL:

- ``exec``: from code run by ``exec`` of a string (as ``dataclasses`` and
  ``collections.namedtuple`` run theirs), so the interrupt is raised inside it;
- ``import``: from the body of a module being imported (the commands import
  lazily); the module must still import whole, and the interrupt come after.

Either way it must exit 130 with the clean message, never die by SIGINT.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path

import click

from augtool.commands.exit_codes import interruptible, raise_if_interrupted

_SEND_AND_WAIT = """
import os
os.kill(os.getpid(), SIGNAL)
for _ in range(2_000_000):
    pass
WHOLE = True
"""


@click.command()
@click.argument("name")
@click.argument("where", type=click.Choice(["exec", "import"]))
@interruptible
def command(name: str, where: str) -> None:
    """Send signal NAME to this process from inside WHERE, then keep busy."""
    number = int(getattr(signal, name))
    if where == "exec":
        exec(_SEND_AND_WAIT.replace("SIGNAL", str(number)), {})
    else:
        folder = Path(tempfile.mkdtemp())
        (folder / "signalling_module.py").write_text(_SEND_AND_WAIT.replace("SIGNAL", str(number)))
        sys.path.insert(0, str(folder))
        import signalling_module

        click.echo(f"imported whole: {signalling_module.WHOLE}")
        raise_if_interrupted()
    sys.exit(3)  # not reached: the signal stops the command before


if __name__ == "__main__":
    command()
