"""The ``augtool`` command line: the ``main`` group and its commands.

Each command lives in its own module of :mod:`augtool.commands`; this module only
assembles them (entry point ``augtool = cli:main``).
"""

from __future__ import annotations

import click

from augtool import __version__
from augtool.commands.cells import cells_command
from augtool.commands.errors import install_hooks
from augtool.commands.evaluate import evaluate_command
from augtool.commands.expand import expand
from augtool.commands.predict import predict_command
from augtool.commands.preview import preview
from augtool.commands.report import report_command
from augtool.commands.synth import synth
from augtool.commands.train import train_command
from augtool.commands.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="augtool")
def main() -> None:
    """Offline, reproducible augmentation of blood-smear image datasets.

    \b
    Example:
      augtool expand raw/ out/ --pca
    """
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
