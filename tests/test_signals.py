"""Stop signals end a command with exit 130 wherever they land."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.child_process import REPO


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background shell job would ignore SIGINT


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_inside_a_string_exec_exits_130(name: str) -> None:
    """CPython kills a ``-m`` process by SIGINT at exit after a plain KeyboardInterrupt left a
    string ``exec`` (caught or not); the commands' interrupt must not be one (exit -2 before)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.interrupt_child", name],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_default_sigint,
    )
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert "interrupted; nothing final was written" in proc.stderr
    assert "Traceback" not in proc.stderr
