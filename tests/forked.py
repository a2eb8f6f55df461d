"""Run ``augtool`` in a forked copy of the test process, to be signalled from outside.

A child made with ``python -m cli`` spends seconds importing what this process
has imported already (torch alone: 1.5 CPU-seconds on a quiet 2-core machine,
3.7 under load), before it reaches the state a test signals. A forked child
starts from this process's modules and runs ``cli.main`` at once; it is still
a separate process, with its own signal handlers, that a signal reaches
asynchronously while it works and whose exit status the parent reads.

Use it where the state being signalled is the point (training under way), not
the interpreter's life around it: the child skips start-up (an interrupt during
``import`` is a different moment, which tests/test_expand_signals.py reaches
with real ``python -m cli`` children) and ends with ``os._exit`` right after
the command, so nothing an interpreter prints while it shuts down (threads'
and finalizers' reports) reaches its stderr; tests that check that output use
real children (test_signal_stops_cleanly_and_resume_is_byte_identical).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from augtool.engine.pool import opencv_ready_to_fork
from tests.child_process import cli_args, fresh_process_signals, main_exit_status

#: Exit status of a child whose code raised something other than ``SystemExit``.
CRASHED = 70


class ForkedCli:
    """``augtool ARGS`` running in a forked child; a small ``subprocess.Popen`` look-alike.

    Args:
        args: Command-line arguments after ``augtool``; paths are passed as file names.
        stderr: The file that receives the child's standard error (its standard output
            is discarded).
        setup: Run in the child before the command (e.g. to register a hook); its
            effects stay in the child.
    """

    def __init__(
        self, args: list[object], stderr: Path, setup: Callable[[], None] | None = None
    ) -> None:
        self.stderr = stderr
        self.returncode: int | None = None
        argv = cli_args(*args)
        # OpenCV's thread pool, once started here, would hang the child (seen under
        # pytest-xdist, after other tests had resized large images).
        with opencv_ready_to_fork() as threads:
            pid = os.fork()
            if pid == 0:  # the child: never returns into the test
                _run_child(argv, stderr, setup, threads)
        self.pid = pid

    def poll(self) -> int | None:
        """The exit status once the child ended (``-N`` when signal N killed it), else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the child (unless it has been reaped)."""
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the child."""
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the child's end; kill it and fail after that.

        Args:
            timeout: Seconds to wait (generous: a loaded machine is slow, not broken).

        Returns:
            The exit status, as :meth:`poll`.
        """
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                os.waitpid(self.pid, 0)
                raise AssertionError(f"augtool did not end within {timeout} s: {self.error()}")
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def error(self) -> str:
        """What the child wrote to standard error so far."""
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def _run_child(
    argv: list[str], stderr: Path, setup: Callable[[], None] | None, cv_threads: int | None
) -> None:
    """In the forked child: a fresh process's signal and OpenCV set-up, then ``cli.main``;
    exits."""
    code = CRASHED
    try:
        if cv_threads is not None:  # a new pool of the parent's size, as a new process has
            sys.modules["cv2"].setNumThreads(cv_threads)
        fresh_process_signals()
        err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        out = os.open(os.devnull, os.O_WRONLY)
        os.dup2(err, 2)
        os.dup2(out, 1)
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        if setup is not None:
            setup()
        code = main_exit_status(argv)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
