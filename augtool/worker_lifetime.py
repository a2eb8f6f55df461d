"""Worker processes end with the process that started them, even when it is killed.

A ``kill -9`` or the OOM killer ends the main ``augtool`` process without any
clean-up; joblib's worker processes would then wait for work forever, holding
their memory. On Linux a worker can ask the kernel to kill it when its parent
dies (``prctl(PR_SET_PDEATHSIG)``); the task functions that run in workers call
:func:`die_with_parent` first. Elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import signal
import sys

_PR_SET_PDEATHSIG = 1


@functools.cache
def die_with_parent() -> bool:
    """Have the kernel SIGKILL this process when its parent dies (once per process).

    Call it only in worker processes: in the main process it would tie augtool's
    life to the shell or program that started it.

    Returns:
        True when the request was accepted (Linux), else False.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
