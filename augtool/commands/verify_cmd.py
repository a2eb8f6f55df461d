"""``augtool verify``: check that an expand output is exactly what it records."""

from __future__ import annotations

from pathlib import Path

import click

from augtool.commands.exit_codes import (
    AugtoolClickError,
    LibraryOption,
    interruptible,
    library_errors,
)
from augtool.commands.flags import plugin_option, quiet_option, workers_option
from augtool.commands.terminal import TqdmReporter


@click.command("verify")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--regenerate",
    "raw",
    cls=LibraryOption,
    library_names=("regenerate_raw",),
    type=click.Path(path_type=Path),
    default=None,
    help="Replay the recorded recipe on this RAW folder and require identical bytes.",
)
@plugin_option
@workers_option
@quiet_option
@interruptible
@library_errors
def verify(
    out: Path, raw: Path | None, plugins: tuple[str, ...], workers: int, quiet: bool
) -> None:
    """Check that an expand output (folder or HDF5) is exactly what it records.

    Every image's hash must match, nothing may be missing or extra, no source
    or group may sit in two splits (unless it was made with --split-by image),
    and the counts must be as recorded. Exit 0 when all holds, 1 otherwise.
    A dataset names no code: a recorded plug-in transform is replayed only from
    a module given with --plugin or an installed package.

    \b
    Examples:
      augtool verify out/
      augtool verify out.h5 --regenerate raw/
    """
    import augtool

    reporter = TqdmReporter(quiet, log_lines=True)
    try:
        report = augtool.verify(
            out, regenerate_raw=raw, workers=workers, progress=reporter, plugins=plugins
        )
    finally:
        reporter.close()
    if report.ok:
        if not quiet:
            click.echo(report.ok_line())
        return
    for line in report.problem_lines():
        click.echo(line, err=True)
    raise AugtoolClickError(report.failure(), exit_code=1)
