"""How long-running library functions report progress, with no terminal in sight.

A function that takes seconds (``synthesize``, ``verify`` with a replay,
``model.run.evaluate_run``) accepts a :class:`Progress` and calls
``start(phase, total)`` then ``advance(n)``; the command line draws bars from
those calls on a terminal, tests count them, and :class:`NoProgress` ignores them.
``augtool.expand.Reporter`` is the same interface plus warnings.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives the phases and steps of a long-running call."""

    def start(self, phase: str, total: int) -> None:
        """A phase with ``total`` steps begins."""

    def advance(self, n: int) -> None:
        """``n`` more steps of the current phase are done."""


class NoProgress:
    """Reports nothing (also as an ``augtool.expand.Reporter``: warnings are dropped)."""

    def start(self, phase: str, total: int) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""

    def warn(self, message: str) -> None:
        """Ignore."""
