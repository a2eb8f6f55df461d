"""What every command shows on the terminal: progress bars, warnings, the command line."""

from __future__ import annotations

import os
import shlex
import sys
import time
from typing import Any

import click

from augtool.commands.exit_codes import raise_if_interrupted, render_text_for
from augtool.progress import LogLines


class TqdmReporter:
    """Progress bars on stderr (only on a terminal) and warnings.

    With ``log_lines``, stderr that is not a terminal (a log file, a pipe) gets
    plain progress lines instead (:class:`augtool.progress.LogLines`: every
    tenth or 30 s, with rate and ETA, after the first 5 s of a phase).
    """

    def __init__(self, quiet: bool, log_lines: bool = False) -> None:
        self.quiet = quiet
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar: Any = None
        self._lines = LogLines(sys.stderr) if log_lines and not quiet and not self.enabled else None

    def start(self, phase: str, total: int) -> None:
        """Open a bar (or start the log lines) for a phase with a known total."""
        raise_if_interrupted()
        self.close()
        if self._lines is not None:
            self._lines.start(phase, total)
        if self.enabled and total > 0:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=phase, unit="img", file=sys.stderr, leave=False)

    def advance(self, n: int) -> None:
        """Move the bar (and stop here if an interrupt was lost on its way)."""
        raise_if_interrupted()
        if self._lines is not None:
            self._lines.advance(n)
        if self._bar is not None:
            self._bar.update(n)

    def warn(self, message: str) -> None:
        """Print a warning to stderr, above any bar (tqdm is needed only when one is open).

        The parameters a library warning names are written as the command's flags.
        """
        message = render_text_for(message)
        label = click.style("warning: ", fg="yellow") if sys.stderr.isatty() else "warning: "
        if self._bar is None:
            click.echo(label + message, err=True)
            return
        from tqdm import tqdm

        tqdm.write(label + message, file=sys.stderr)

    def close(self) -> None:
        """Close the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class TrainBar:
    """``augtool train``'s progress on stderr: a loading line, then the epochs.

    On a terminal, a per-batch bar in each epoch; off a terminal (a log file, a
    pipe), one plain line per epoch, flushed at once, so that ``augtool train
    ... > log 2>&1 &`` shows where the run is. Train figures and val scores,
    never test; the elapsed time counts from the command's start. With
    --quiet it shows nothing.
    """

    def __init__(self, data: str, quiet: bool) -> None:
        self.data = data
        self.enabled = not quiet and sys.stderr.isatty()
        self.plain = not quiet and not self.enabled
        self._bar: Any = None
        self._train: tuple[float, float] | None = None
        self._val: tuple[int, float, float] | None = None
        self._read = 0.0  # when the train figures were last read (a GPU sync)

    def __call__(self, event: Any, label: str) -> None:
        """Show one :class:`model.train.TrainEvent` of the run called ``label``.

        Every event, shown or not, first checks for a stop signal whose raise was
        deferred (under an import) or swallowed (in a ``__del__``): a run stops
        within one batch of the signal.
        """
        raise_if_interrupted()
        if self.plain:
            self._line(event, label)
        if not self.enabled:
            return
        from tqdm import tqdm

        from model.report import progress_text

        if event.kind in ("load", "done"):
            self.close()
            self._train = self._val = None
            if event.kind == "load":
                click.echo(f"loading {self.data} ({label}) ...", err=True)
            return
        if event.kind == "epoch" and "val_accuracy" in event.row:
            self._val = (event.epoch, event.row["val_loss"], event.row["val_accuracy"])
        now = time.monotonic()
        if event.kind == "epoch" or event.batch == 1 or now - self._read >= 0.5:
            self._train, self._read = event.train_so_far(), now
        figures = progress_text(self._train, self._val, event.elapsed)
        title = f"{label} epoch {event.epoch}/{event.epochs}"
        if self._bar is None:
            self._bar = tqdm(
                total=event.batches,
                desc=title,
                file=sys.stderr,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} batches{postfix}",
            )
        elif event.kind == "batch" and event.batch == 1:  # a new epoch: the same bar, reset
            self._bar.set_description_str(title, refresh=False)
            self._bar.set_postfix_str(figures, refresh=False)
            self._bar.reset(total=event.batches)
        self._bar.set_postfix_str(figures, refresh=False)
        self._bar.update(event.batch - self._bar.n)
        if event.kind == "epoch":
            self._bar.refresh()  # the epoch's val scores, shown at once

    def _line(self, event: Any, label: str) -> None:
        """Off a terminal: the loading line and one line per epoch (click flushes each)."""
        if event.kind == "load":
            click.echo(f"loading {self.data} ({label}) ...", err=True)
        if event.kind != "epoch":
            return
        from model.report import clock_text, pct

        row = event.row
        text = (
            f"{label} epoch {event.epoch}/{event.epochs}: loss {row['train_loss']:.3f}, "
            f"train accuracy {pct(row['train_accuracy'])}"
        )
        if "val_accuracy" in row:
            text += f", val loss {row['val_loss']:.3f}, val accuracy {pct(row['val_accuracy'])}"
        click.echo(f"{text}, {clock_text(event.elapsed)} elapsed", err=True)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def command_line() -> str:
    """The command as typed; bytes that are not UTF-8 (Linux paths) shown as ``\\xNN``."""
    args = (os.fsencode(a).decode("utf-8", "backslashreplace") for a in sys.argv[1:])
    return "augtool " + " ".join(shlex.quote(a) for a in args)
