"""Library errors to click errors, and the stop-signal machinery of every command.

The library raises :class:`augtool.errors.AugtoolError`; the face turns it into a
message and the library's exit code. SIGINT and SIGTERM end a command cleanly
with exit 130.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import click

from augtool.errors import ATOMIC_CODE, AugtoolError, render_text

F = TypeVar("F", bound=Callable[..., Any])


class AugtoolClickError(click.ClickException):
    """A ClickException carrying the library error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class LibraryOption(click.Option):
    """A click option that also answers to other library parameter names.

    ``expand --format`` sets ``output_format`` or, for ``voc``/``coco``/``yolo``,
    ``annotation_format``; ``expand --size 640x480`` sets ``size`` and ``height``.
    An error about any of those names is shown as this option's flag.
    """

    def __init__(self, *args: Any, library_names: tuple[str, ...] = (), **attrs: Any) -> None:
        """As :class:`click.Option`, plus the extra library names this option sets."""
        super().__init__(*args, **attrs)
        self.library_names = library_names


def flag_name(command: click.Command | None, parameter: str) -> str:
    """How the command line names a library parameter: its flag, or its metavar.

    The one place where library parameter names become flags, read from the
    command's own parameters: an option's longest flag (``--pca-std``), an
    argument's metavar (``OUT``). A parameter of another command
    (``expand.folds``) is written as that command line (``augtool expand
    --folds``). A name no parameter of the command has stays as it is (a recipe
    key, an architecture option).
    """
    other, dot, name = parameter.partition(".")
    if dot:
        sub = _sibling(other)
        return f"augtool {other} {flag_name(sub, name) if sub is not None else name}"
    if command is None:
        return parameter
    for param in command.params:
        names = {param.name, *getattr(param, "library_names", ())}
        if parameter not in names and parameter not in param.opts:
            continue
        if isinstance(param, click.Option):
            return max(param.opts, key=len)
        return param.human_readable_name
    return parameter


def _sibling(name: str) -> click.Command | None:
    """The command ``name`` of the running ``augtool`` group, if there is one."""
    ctx = click.get_current_context(silent=True)
    root = None if ctx is None else ctx.find_root().command
    if isinstance(root, click.Group):
        return root.commands.get(name)
    return None


def render_text_for(text: str, command: click.Command | None = None) -> str:
    """A library warning or report line with its parameters as ``command``'s flags.

    ``command`` defaults to the running command; plain text passes unchanged.
    """
    if command is None:
        ctx = click.get_current_context(silent=True)
        command = None if ctx is None else ctx.command
    return render_text(text, lambda name: flag_name(command, name))


def render_error(err: AugtoolError, command: click.Command | None) -> str:
    """The library error's message with every parameter written as ``command``'s flag."""
    return err.render(lambda name: flag_name(command, name))


def library_errors(func: F) -> F:
    """Turn :class:`AugtoolError` raised by the library into a click error.

    Library errors name Python parameters; the message shown names the flags of
    the running command (:func:`flag_name`).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AugtoolError as err:
            ctx = click.get_current_context(silent=True)
            message = render_error(err, None if ctx is None else ctx.command)
            raise AugtoolClickError(message, err.exit_code) from err

    return wrapper  # type: ignore[return-value]


#: Exit status of an unexpected exception (EX_SOFTWARE of sysexits.h), distinct from
#: 1 (output or run failed), 2 (bad input or usage) and 130 (interrupted).
INTERNAL_ERROR = 70
#: Exit status when the reader of stdout went away (``augtool ... | head -1``): 128 + SIGPIPE,
#: what a shell reports for a program that SIGPIPE ended.
BROKEN_PIPE = 141


def internal_error_line(err: BaseException, debug: bool = False) -> str:
    """Say an unexpected exception in one line; keep its traceback in a file.

    Args:
        err: The exception (being handled: its traceback is the current one).
        debug: The traceback was printed to stderr instead of written to a file.

    Returns:
        ``internal error: <type>: <message>; please report it (...)``, the
        message escaped so that text from a file cannot start a line of its own.
    """
    import tempfile
    import traceback

    detail = f"{type(err).__name__}: {err}".encode("unicode_escape").decode("ascii")
    if len(detail) > 300:
        detail = detail[:300] + "..."
    text = "".join(traceback.format_exception(err))
    if debug:
        click.echo(text, err=True, nl=False)
        where = "the traceback is above"
    else:
        try:
            fd, name = tempfile.mkstemp(prefix="augtool-traceback-", suffix=".txt")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            where = f"traceback in {name}; augtool --debug shows it"
        except OSError:
            where = "augtool --debug shows the traceback"
    return f"internal error: {detail}; please report it ({where})"


class CatchAllGroup(click.Group):
    """The ``augtool`` group: an unexpected exception ends a command in one line, exit 70.

    Click's own errors, library errors (already click errors), interrupts and
    exits pass through unchanged. Anything else is a bug: the command prints
    :func:`internal_error_line` and exits with :data:`INTERNAL_ERROR`; with
    ``augtool --debug`` the traceback is printed instead of written to a file.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, turning an unexpected exception into an internal error."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # Nothing is wrong with augtool: whoever read its output stopped reading.
            # Later writes (and Python's flush at exit) go nowhere, and the command
            # ends quietly, as one that SIGPIPE ended would.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            ctx.exit(BROKEN_PIPE)
        except Exception as err:  # the one catch-all of the command line
            debug = bool(ctx.meta.get("augtool.debug", False))
            raise AugtoolClickError(internal_error_line(err, debug), INTERNAL_ERROR) from err


#: Set by the SIGINT/SIGTERM handler. Python drops an exception raised while it runs a
#: weakref callback or ``__del__`` ("Exception ignored in ..."), which lost interrupts
#: during HDF5 writes; the progress reporter checks this flag and raises again.
_STOP = threading.Event()

#: What to say when a stop signal comes after the running command's output became final
#: (set by :func:`output_final`); empty while nothing final exists.
_FINAL: list[str] = []


def output_final(message: str) -> None:
    """The command's output is complete: a stop signal from now on ends it with ``message``.

    The signal no longer raises (there is nothing left to stop); the command
    ends with exit 130 and this message, however little is left to do.
    """
    _FINAL[:] = [message]


class Interrupted(KeyboardInterrupt):
    """The KeyboardInterrupt that a stop signal (SIGINT, SIGTERM) raises in a command.

    A subclass, not KeyboardInterrupt itself, because CPython remembers a plain
    KeyboardInterrupt that leaves code run by a string ``exec``/``eval`` (dataclass
    and namedtuple creation, say, while a lazy import runs) as "unhandled", even
    when a caller catches it; under ``python -m`` it then kills the process with
    SIGINT after a clean ``sys.exit(130)``, so the exit status became -2 (128 + 2
    in a shell) about one run in four. Its check matches the exact type, so a
    subclass is caught by every ``except KeyboardInterrupt`` and never does that.
    """


#: Where ``import`` runs Python code: an interrupt raised under these frames is deferred.
_IMPORT_FILES = frozenset(
    {"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"}
)


def _deferring(frame: FrameType | None) -> bool:
    """True when ``frame`` runs in an ``import`` (commands import lazily) or an atomic step."""
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_FILES or frame.f_code in ATOMIC_CODE:
            return True
        frame = frame.f_back
    return False


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Stop the command: raise :class:`Interrupted` now, or at the next check if deferred.

    An exception raised while a module initialises leaves that module broken: Cython
    modules (h5py) turn it into ImportError or KeyError, and later lookups fail in
    ways that are not an interrupt; one raised while an output is published leaves
    neither a partial output nor the output. Under those only the flag is set;
    :func:`raise_if_interrupted`, which progress reporting and the commands call,
    raises it.
    """
    _STOP.set()
    if not _FINAL and not _deferring(frame):
        raise Interrupted


_THREAD_EXCEPTHOOK = threading.excepthook


def _thread_exceptions(args: Any) -> None:
    """After a stop signal, stay quiet about exceptions in background threads.

    joblib's executor thread can trip over the work items its abort just removed
    (a KeyError traceback after the clean "interrupted" message).
    """
    if not _STOP.is_set():
        _THREAD_EXCEPTHOOK(args)


_UNRAISABLE_HOOK = sys.unraisablehook


def _unraisable(args: Any) -> None:
    """Drop the "Exception ignored in ..." report of an interrupt that the flag keeps.

    A stop signal that lands in a weakref callback or ``__del__`` cannot propagate;
    Python would print its traceback. :data:`_STOP` re-raises it a moment later, so
    the report is noise on an otherwise clean "interrupted" exit.
    """
    if _STOP.is_set() and issubclass(args.exc_type, KeyboardInterrupt):
        return
    _UNRAISABLE_HOOK(args)


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a stop signal came, even if its first raise was lost."""
    if _STOP.is_set():
        raise Interrupted


def interruptible(func: F) -> F:
    """SIGINT (unless ignored, as in background jobs) and SIGTERM: clean up, say so, exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _STOP.clear()
        _FINAL.clear()
        signals = [signal.SIGTERM]
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signals.append(signal.SIGINT)
        previous = {s: signal.signal(s, _raise_interrupt) for s in signals}
        try:
            result = func(*args, **kwargs)
        except KeyboardInterrupt:
            message = _FINAL[0] if _FINAL else "interrupted; nothing final was written"
            raise AugtoolClickError(message, 130) from None
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if _FINAL and _STOP.is_set():  # a signal after the output was final: not lost
            raise AugtoolClickError(_FINAL[0], 130)
        return result

    return wrapper  # type: ignore[return-value]


def install_hooks() -> None:
    """Quiet the reports that follow a stop signal or a write error (called by ``main``)."""
    threading.excepthook = _thread_exceptions
    sys.unraisablehook = _unraisable
    # loky's resource tracker, a child process, warns at shutdown about the worker
    # semaphores it then removes itself ("leaked semlock objects"), which a run stopped
    # by a signal can leave: not news either. Children take warning filters from here.
    tracker_filter = "ignore:resource_tracker:UserWarning"
    inherited = os.environ.get("PYTHONWARNINGS", "")
    if tracker_filter not in inherited.split(","):
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [inherited, tracker_filter]))
    # After an interrupt or a write error joblib reports the tasks it cancelled: not news.
    warnings.filterwarnings(
        "ignore",
        message=r"\d+ tasks (have been successfully executed|which were still being processed)",
        category=UserWarning,
    )
