"""Errors the library raises; the CLI turns them into messages and exit codes.

Errors name Python parameters, never command-line flags: the library knows no
terminal. :class:`OptionError` carries the parameter's name; a message built
with ``refs=True`` refers to other parameters as ``{name}`` (braces around a
bare Python name), or to a parameter of another command as ``{command.name}``
(``{expand.folds}``). ``str(err)`` shows plain names; the command line shows
the flag of each parameter instead (:meth:`AugtoolError.render`). Warnings and
report lines that name parameters are :class:`Message` strings, rendered the
same way. In a template ``{{`` and ``}}`` stand for literal braces
(:func:`literal` escapes text such as paths and regexes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import CodeType
from typing import Any, TypeVar

#: A parameter reference in a message template, ``{name}`` or ``{command.name}``, or an
#: escaped brace ``{{`` / ``}}``.
_REFERENCE = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)\}")


def fill(template: str, name: Callable[[str], str]) -> str:
    """Write every ``{parameter}`` reference in ``template`` as ``name(parameter)``.

    ``{{`` and ``}}`` become single braces.
    """

    def substitute(match: re.Match[str]) -> str:
        reference = match.group(1)
        return match.group(0)[0] if reference is None else name(reference)

    return _REFERENCE.sub(substitute, template)


def literal(text: object) -> str:
    """``text`` escaped for a template: its braces stay braces, never references."""
    return str(text).replace("{", "{{").replace("}", "}}")


def plain_name(parameter: str) -> str:
    """How the library writes a parameter: ``folds``; another command's: ``expand's folds``."""
    command, dot, name = parameter.partition(".")
    return f"{command}'s {name}" if dot else parameter


_plain = plain_name


class Message(str):
    """Text that names parameters: a warning, a report line, a reason something was left out.

    The string itself is the plain rendering (parameters by their Python names),
    so every caller that only wants text can use it as a ``str``; a face calls
    :meth:`render` to write them its own way (the command line: as flags).

    Attributes:
        template: The text with ``{parameter}`` references (see :func:`fill`).
    """

    template: str

    def __new__(cls, template: str) -> Message:
        """A message from a template with ``{parameter}`` references."""
        message = super().__new__(cls, fill(template, plain_name))
        message.template = template
        return message

    def render(self, name: Callable[[str], str]) -> str:
        """The message with each parameter written by ``name``."""
        return fill(self.template, name)

    def __reduce__(self) -> tuple[type[Message], tuple[str]]:
        """Pickle by template (messages cross to and from worker processes)."""
        return (Message, (self.template,))


def template_of(text: str) -> str:
    """``text`` as part of a larger template: a Message's template, other text escaped."""
    return text.template if isinstance(text, Message) else literal(text)


def render_text(text: str, name: Callable[[str], str]) -> str:
    """``text`` with its parameters written by ``name`` when it is a :class:`Message`."""
    return text.render(name) if isinstance(text, Message) else str(text)


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

    @property
    def detail_template(self) -> str:
        """The detail as a template: its own, or the plain detail escaped."""
        return self._detail_template if self._detail_template is not None else literal(self.detail)

    def render(self, name: Callable[[str], str]) -> str:
        """``<flag>: <detail>``, the option and every reference written by ``name``."""
        template = self._detail_template
        detail = self.detail if template is None else fill(template, name)
        return f"{name(self.option)}: {detail}"


class OutputError(AugtoolError):
    """The output cannot be written (not writable, disk full)."""

    exit_code = 1


class OutputRefused(OutputError):
    """The output path cannot be used as given; nothing was written (a usage error).

    It exists and ``--overwrite`` was not given, it is a folder where a file
    is asked for (or the other way round), or the folder to hold it does not
    exist.
    """

    exit_code = 2


class Interrupted(AugtoolError):
    """The run was stopped by a signal; nothing final was written."""

    exit_code = 130


class ClusterError(AugtoolError):
    """The execution backend cannot run the work.

    A Dask scheduler that cannot be reached, a cluster without workers, workers
    without augtool or with other versions, a task that keeps killing its workers.
    """

    exit_code = 1


def complete_after_interrupt(out: object) -> str:
    """What a run says when a stop signal came after its output was published."""
    return f"interrupted after the last image was written; {out} is complete"


#: Code that no stop signal may interrupt halfway (publishing an output): a face that
#: turns signals into :class:`Interrupted` defers them while such code runs.
ATOMIC_CODE: set[CodeType] = set()

F = TypeVar("F", bound=Callable[..., Any])


def atomic(function: F) -> F:
    """Mark ``function`` as a step no stop signal may split (see :data:`ATOMIC_CODE`)."""
    ATOMIC_CODE.add(function.__code__)
    return function
