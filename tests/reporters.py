"""A progress reporter for tests: records phases, steps and warnings."""

from __future__ import annotations

from collections import Counter


class Recorder:
    """Counts the steps reported for each phase, in the order the phases start, and keeps warnings.

    Serves as an :class:`augtool.progress.Progress` and an ``augtool.progress.Reporter``.
    """

    def __init__(self) -> None:
        self.phases: list[tuple[str, int]] = []
        self.steps: Counter[str] = Counter()
        self.warnings: list[str] = []

    def start(self, phase: str, total: int) -> None:
        """Record a phase and its total."""
        self.phases.append((phase, total))

    def advance(self, n: int) -> None:
        """Count ``n`` steps of the current phase."""
        self.steps[self.phases[-1][0]] += n

    def warn(self, message: str) -> None:
        """Keep the message."""
        self.warnings.append(message)
