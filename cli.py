"""The ``augtool`` command line: a thin click face over the library.

Each command parses its options, calls one library function and turns library
errors into click exceptions with the library's exit code. Heavy dependencies
(OpenCV, h5py, torch) are imported inside the commands so ``augtool --help``
stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from augtool import __version__
from augtool.errors import AugtoolError

F = TypeVar("F", bound=Callable[..., Any])


class AugtoolClickError(click.ClickException):
    """A ClickException carrying the library error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def library_errors(func: F) -> F:
    """Turn :class:`AugtoolError` raised by the library into a click error."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AugtoolError as err:
            raise AugtoolClickError(str(err), err.exit_code) from err

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="augtool")
def main() -> None:
    """Offline, reproducible augmentation of blood-smear image datasets.

    \b
    Example:
      augtool expand raw/ out/ --pca
    """


if __name__ == "__main__":
    main()
