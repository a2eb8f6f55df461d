"""``augtool predict``: print the predicted class of each image."""

from __future__ import annotations

import click

from augtool.commands.exit_codes import library_errors
from augtool.commands.flags import device_option, tta_option


@click.command("predict")
@click.argument("model_file", metavar="MODEL", type=click.Path(exists=True, path_type=str))
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, path_type=str))
@device_option
@tta_option
@library_errors
def predict_command(model_file: str, images: tuple[str, ...], device: str, tta: bool) -> None:
    """Print the predicted class and the class probabilities of each image.

    Images of any size are preprocessed exactly as `expand` makes its
    original copies. One line per image: path, class, then p(class) for every class.

    \b
    Example:
      augtool predict runs/leukemianet/model.pt smear1.jpg smear2.png
    """
    from model.evaluation import predict_files

    for pred in predict_files(model_file, list(images), device, tta):
        probs = "  ".join(f"{name}={p:.3f}" for name, p in pred.probabilities.items())
        click.echo(f"{pred.path}\t{pred.predicted}\t{probs}")
