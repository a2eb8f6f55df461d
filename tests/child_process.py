"""The one way tests and benchmarks run ``augtool``: in-process, or in child processes.

:func:`run_cli` runs the command in this process (click's test runner: fast,
and monkeypatches apply); :func:`run_sub` and :func:`cli_command` run it as
``python -m cli`` in a new process (signals, exit codes, real file
descriptors, privileges); tests/forked.py runs it in a forked copy of the test
process, for signals sent once work is under way.

:func:`run_cli_measured` reads a child's own peak memory. ``os.wait4``'s
``ru_maxrss`` is not that: Linux carries the high-water mark of the forked
parent's address space across ``exec``, so a child of a 650 MB pytest process
reports at least 650 MB whatever it does. The child here reads ``VmHWM`` from
``/proc/self/status`` instead, which belongs to the address space that ``exec``
created, and writes it to a file before it exits.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Seconds a child CLI run may take before the caller gives up on it.
TIMEOUT = 600

_CHILD = """
import sys
from pathlib import Path
report = Path(sys.argv[1])
try:
    from cli import main
    main(sys.argv[2:], prog_name="augtool")
finally:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            report.write_text(line.split()[1])
"""


@dataclass(frozen=True)
class MeasuredRun:
    """The exit code, standard error and own peak resident memory of one CLI run."""

    returncode: int
    stderr: str
    peak_mb: float


def run_cli_measured(*args: object) -> MeasuredRun:
    """Run ``augtool ARGS`` in a fresh interpreter and measure its own peak RSS.

    Args:
        *args: Command-line arguments after ``augtool``; paths are passed as file names.

    Returns:
        The run's exit code, its standard error, and its ``VmHWM`` in MiB.
    """
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "vmhwm-kb"
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(report), *cli_args(*args)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak_kb = float(report.read_text()) if report.exists() else float("nan")
    return MeasuredRun(proc.returncode, proc.stderr, peak_kb / 1024)


def private_tmpfs_prefix() -> list[str] | None:
    """A command prefix that runs in a private mount namespace, or None if impossible.

    Under the prefix a command may mount a small tmpfs (a real full disk) without
    touching the machine's mounts; needs ``unshare`` and the right to mount.
    """
    if shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "-r", "--mount"]
    probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"])
    return prefix if probe.returncode == 0 else None


def cli_args(*args: object) -> list[str]:
    """Command-line arguments as text: paths by their file-system name, the rest by ``str``."""
    return [os.fsdecode(a) if isinstance(a, os.PathLike) else str(a) for a in args]


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120.0, poll: float = 0.01
) -> bool:
    """Poll ``ready()`` until it holds, the process ends, or ``timeout`` seconds pass.

    Args:
        ready: The condition to wait for.
        proc: The child; waiting stops early when it exits.
        timeout: Longest wait in seconds (generous: a loaded machine is slow, not broken).
        poll: Seconds between polls.

    Returns:
        Whether ``ready()`` held while the process was still running.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return proc.poll() is None
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False


def run_cli(*args: object) -> tuple[int, str]:
    """Run ``augtool ARGS`` in this process; return the exit code and all output.

    Args:
        *args: Command-line arguments after ``augtool``; paths are passed as file names.

    Returns:
        The exit code and standard output and error together.
    """
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, cli_args(*args))
    return result.exit_code, result.output


def cli_command(*args: object) -> list[str]:
    """The command line that runs ``augtool ARGS`` in a new interpreter (from :data:`REPO`)."""
    return [sys.executable, "-m", "cli", *cli_args(*args)]


def run_sub(
    *args: object, timeout: float = TIMEOUT, preexec_fn: Callable[[], None] | None = None
) -> subprocess.CompletedProcess:
    """Run ``augtool ARGS`` in a new process from :data:`REPO` and capture its text output.

    Args:
        *args: Command-line arguments after ``augtool``.
        timeout: Seconds before :class:`subprocess.TimeoutExpired`.
        preexec_fn: Run in the child before ``exec`` (e.g. :func:`drop_file_capabilities`).

    Returns:
        The finished process.
    """
    return subprocess.run(
        cli_command(*args),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def fresh_process_signals() -> None:
    """In a forked child: the signal handlers a new Python starts with.

    SIGINT raises KeyboardInterrupt; SIGTERM and the other stop signals a parent
    may have caught kill the process.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(number, signal.SIG_DFL)


def main_exit_status(argv: list[str]) -> int:
    """Run ``augtool ARGV`` in this process; the exit status the ``augtool`` script would have.

    ``SystemExit`` counts as Python counts it at exit: None is 0, an integer is
    itself, anything else is printed to standard error and gives 1.
    """
    from cli import main

    try:
        main(args=argv, prog_name="augtool")
    except SystemExit as stop:
        if stop.code is None:
            return 0
        if isinstance(stop.code, int):
            return stop.code
        print(stop.code, file=sys.stderr)
        return 1
    return 0


def default_sigint() -> None:
    """In a child: take SIGINT's default back (a shell ignores it for background jobs)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def drop_file_capabilities() -> None:
    """In a child: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH so that root obeys chmod."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; failure shows in the probe


def permissions_bite(path: Path) -> bool:
    """Whether a child started with :func:`child_preexec` is refused reading ``path``."""
    probe = subprocess.run(
        [sys.executable, "-c", f"open({os.fsdecode(path)!r}, 'rb')"],
        preexec_fn=child_preexec(),
        capture_output=True,
    )
    return probe.returncode != 0


def child_preexec() -> Callable[[], None] | None:
    """What a child needs to obey file permissions: capabilities dropped when root, else nothing."""
    return drop_file_capabilities if os.geteuid() == 0 else None
