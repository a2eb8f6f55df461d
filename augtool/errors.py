"""Errors the library raises; the CLI turns them into messages and exit codes.

Errors name Python parameters, never command-line flags: the library knows no
terminal. :class:`OptionError` carries the parameter's name; a message built
with ``refs=True`` refers to other parameters as ``{name}`` (braces around a
bare Python name). ``str(err)`` shows plain names; the command line shows the
flag of each parameter instead (:meth:`AugtoolError.render`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: A parameter reference in a message template: ``{name}``.
_REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def fill(template: str, name: Callable[[str], str]) -> str:
    """Write every ``{parameter}`` reference in ``template`` as ``name(parameter)``."""
    return _REFERENCE.sub(lambda m: name(m.group(1)), template)


def _plain(parameter: str) -> str:
    return parameter


class AugtoolError(Exception):
    """A failure the user can act on; the message says what and how to fix it.

    Attributes:
        exit_code: The process exit status the CLI uses for this error.
    """

    exit_code: int = 1

    def __init__(self, message: str = "", *, refs: bool = False) -> None:
        """Keep the message; with ``refs``, its ``{parameter}`` references are rendered."""
        self._template = message if refs else None
        super().__init__(fill(message, _plain) if refs else message)

    def render(self, name: Callable[[str], str]) -> str:
        """The message with each parameter written by ``name`` (the CLI gives its flag)."""
        return str(self) if self._template is None else fill(self._template, name)


class InputError(AugtoolError):
    """The input data is unusable (missing folder, bad image files, empty class)."""

    exit_code = 2


class OptionError(AugtoolError):
    """A parameter has an invalid value; the message starts with the parameter's name.

    Attributes:
        option: The Python parameter (``pca_std``, ``target``) the error is about.
        detail: What is wrong with it, without the name.
    """

    exit_code = 2

    def __init__(self, option: str, message: str, *, refs: bool = False) -> None:
        """``OptionError("pca_k", "must be 1, 2 or 3")``; ``refs`` as for AugtoolError."""
        self.option = option
        self.detail = fill(message, _plain) if refs else message
        self._detail_template = message if refs else None
        super().__init__(f"{option}: {self.detail}")

    def __reduce__(self) -> tuple:
        """Pickle by option and detail (a worker process sends it back to the main one)."""
        return (type(self), (self.option, self.detail), self.__dict__)

    def render(self, name: Callable[[str], str]) -> str:
        """``<flag>: <detail>``, the option and every reference written by ``name``."""
        template = self._detail_template
        detail = self.detail if template is None else fill(template, name)
        return f"{name(self.option)}: {detail}"


class OutputError(AugtoolError):
    """The output cannot be written (exists, not writable, disk full)."""

    exit_code = 1


class Interrupted(AugtoolError):
    """The run was stopped by a signal; nothing final was written."""

    exit_code = 130


class ClusterError(AugtoolError):
    """The execution backend cannot run the work.

    A Dask scheduler that cannot be reached, a cluster without workers, workers
    without augtool or with other versions, a task that keeps killing its workers.
    """

    exit_code = 1
