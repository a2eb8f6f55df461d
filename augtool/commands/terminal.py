"""What every command shows on the terminal: progress bars, warnings, the command line."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import click

from augtool.commands.errors import raise_if_interrupted


class TqdmReporter:
    """Progress bars on stderr (only on a terminal) and warnings."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar: Any = None

    def start(self, phase: str, total: int) -> None:
        """Open a bar for a phase with a known total."""
        raise_if_interrupted()
        self.close()
        if self.enabled and total > 0:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=phase, unit="img", file=sys.stderr, leave=False)

    def advance(self, n: int) -> None:
        """Move the bar (and stop here if an interrupt was lost on its way)."""
        raise_if_interrupted()
        if self._bar is not None:
            self._bar.update(n)

    def warn(self, message: str) -> None:
        """Print a warning to stderr, above any bar."""
        from tqdm import tqdm

        label = click.style("warning: ", fg="yellow") if sys.stderr.isatty() else "warning: "
        tqdm.write(label + message, file=sys.stderr)

    def close(self) -> None:
        """Close the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def command_line() -> str:
    """The command as typed; bytes that are not UTF-8 (Linux paths) shown as ``\\xNN``."""
    args = (os.fsencode(a).decode("utf-8", "backslashreplace") for a in sys.argv[1:])
    return "augtool " + " ".join(shlex.quote(a) for a in args)
