"""Helpers for tests and benchmarks that run ``augtool`` in child processes.

:func:`run_cli_measured` reads a child's own peak memory. ``os.wait4``'s
``ru_maxrss`` is not that: Linux carries the high-water mark of the forked
parent's address space across ``exec``, so a child of a 650 MB pytest process
reports at least 650 MB whatever it does. The child here reads ``VmHWM`` from
``/proc/self/status`` instead, which belongs to the address space that ``exec``
created, and writes it to a file before it exits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

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
