"""How long-running library functions report progress, with no terminal in sight.

A function that takes seconds (``synthesize``, ``verify`` with a replay,
``model.evaluation.evaluate_run``) accepts a :class:`Progress` and calls
``start(phase, total)`` then ``advance(n)``; the command line draws bars from
those calls on a terminal and :class:`LogLines` from them in a log file, tests count
them, and :class:`NoProgress` ignores them. A :class:`Reporter` (``expand``,
``cells``) is the same interface plus warnings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol, TextIO


class Progress(Protocol):
    """Receives the phases and steps of a long-running call."""

    def start(self, phase: str, total: int) -> None:
        """A phase with ``total`` steps begins."""

    def advance(self, n: int) -> None:
        """``n`` more steps of the current phase are done."""


class Reporter(Progress, Protocol):
    """Receives progress and warnings (the command line draws bars and prints the warnings)."""

    def warn(self, message: str) -> None:
        """Something the user should know, that does not stop the run."""


class NoProgress:
    """Reports nothing (also as a :class:`Reporter`: warnings are dropped)."""

    def start(self, phase: str, total: int) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""

    def warn(self, message: str) -> None:
        """Ignore."""


class LogLines:
    """Progress as plain lines, for a log file: ``expand: 840/1676 (50 %), 212/s, ETA 4 s``.

    A line is printed when another tenth of the phase is done or ``every``
    seconds have passed since the last line, whichever comes first, and at the
    end of the phase; each line is flushed at once, so ``tail -f`` on a
    background run's log shows where it is. A phase that ends within ``grace``
    seconds prints nothing: a short run's log stays as it was.

    Attributes:
        stream: Where the lines go (the command line gives stderr).
        every: Most seconds between two lines.
        grace: Seconds of a phase before its first line.
        clock: Monotonic time in seconds (tests hand in a fake one).
    """

    def __init__(
        self,
        stream: TextIO,
        every: float = 30.0,
        grace: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.every = every
        self.grace = grace
        self.clock = clock
        self._phase = ""
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._last_line = 0.0
        self._next_tenth = 1

    def start(self, phase: str, total: int) -> None:
        """Begin counting a phase of ``total`` steps (no line yet)."""
        self._phase, self._total, self._done = phase, total, 0
        self._started = self._last_line = self.clock()
        self._next_tenth = 1

    def advance(self, n: int) -> None:
        """Count ``n`` steps; print a line when a tenth is passed or ``every`` seconds went by."""
        if self._total <= 0:
            return
        self._done = min(self._total, self._done + n)
        now = self.clock()
        tenth = self._done * 10 // self._total
        due = tenth >= self._next_tenth or now - self._last_line >= self.every
        if tenth >= self._next_tenth:
            self._next_tenth = tenth + 1
        if now - self._started < self.grace or not (due or self._done >= self._total):
            return
        self._last_line = now
        self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def line(self, now: float) -> str:
        """The line for the current count at time ``now``."""
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        percent = 100 * self._done // self._total
        text = f"{self._phase}: {self._done}/{self._total} ({percent} %), {_rate(rate)}"
        if self._done >= self._total:
            return f"{text}, done in {_duration(elapsed)}"
        left = (self._total - self._done) / rate if rate > 0 else math.inf
        return f"{text}, elapsed {_duration(elapsed)}, ETA {_duration(left)}"


def _rate(per_second: float) -> str:
    """Steps per second, or per minute when under one a second."""
    if per_second >= 1:
        return f"{per_second:.0f}/s" if per_second >= 10 else f"{per_second:.1f}/s"
    return f"{per_second * 60:.1f}/min"


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 04 min``, or ``unknown``."""
    if not math.isfinite(seconds):
        return "unknown"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
