"""Errors the library raises; the CLI turns them into messages and exit codes."""

from __future__ import annotations


class AugtoolError(Exception):
    """A failure the user can act on; the message says what and how to fix it.

    Attributes:
        exit_code: The process exit status the CLI uses for this error.
    """

    exit_code: int = 1


class InputError(AugtoolError):
    """The input data is unusable (missing folder, bad image files, empty class)."""

    exit_code = 2


class OptionError(AugtoolError):
    """An option has an invalid value; the message names the option."""

    exit_code = 2

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


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
