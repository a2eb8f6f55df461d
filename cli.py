"""The ``augtool`` command line: the ``main`` group and its commands.

Each command lives in its own module of :mod:`augtool.commands`; this module only
assembles them (entry point ``augtool = cli:main``).
"""

from __future__ import annotations

import click

from augtool.commands.cells_cmd import cells_command
from augtool.commands.evaluate_cmd import evaluate_command
from augtool.commands.exit_codes import CatchAllGroup, install_hooks
from augtool.commands.expand_cmd import expand
from augtool.commands.predict_cmd import predict_command
from augtool.commands.preview_cmd import preview
from augtool.commands.report_cmd import report_command
from augtool.commands.synth_cmd import synth
from augtool.commands.train_cmd import train_command
from augtool.commands.verify_cmd import verify


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from augtool.versions import version_report

    click.echo(version_report())
    ctx.exit()


@click.group(cls=CatchAllGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show augtool's version and the library versions that decide its bytes, and exit.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="On an internal error (exit 70), print the traceback instead of writing it to a file.",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Offline, reproducible augmentation of blood-smear image datasets.

    \b
    Example:
      augtool expand raw/ out/ --pca
    """
    ctx.meta["augtool.debug"] = debug
    install_hooks()


for _command in (
    expand,
    cells_command,
    verify,
    synth,
    preview,
    report_command,
    train_command,
    evaluate_command,
    predict_command,
):
    main.add_command(_command)


if __name__ == "__main__":
    main()
