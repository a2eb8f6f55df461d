"""The ``augtool`` command line: a thin click face over the library.

Each command parses its options, calls one library function and turns library
errors into click exceptions with the library's exit code. Heavy dependencies
(OpenCV, h5py, torch) are imported inside the commands so ``augtool --help``
stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from augtool import __version__
from augtool.errors import AugtoolError

F = TypeVar("F", bound=Callable[..., Any])


class AugtoolClickError(click.ClickException):
    """A ClickException carrying the library error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def library_errors(func: F) -> F:
    """Turn :class:`AugtoolError` raised by the library into a click error."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AugtoolError as err:
            raise AugtoolClickError(str(err), err.exit_code) from err

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="augtool")
def main() -> None:
    """Offline, reproducible augmentation of blood-smear image datasets.

    \b
    Example:
      augtool expand raw/ out/ --pca
    """


# --- model: train, evaluate, predict ------------------------------------------------------


def _parse_arch_options(pairs: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` pairs to a dict of text values (the registry parses their types)."""
    from augtool.errors import OptionError

    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise OptionError("--arch-option", f"expected KEY=VALUE, got {pair!r}")
        options[key.strip()] = text.strip()
    return options


@main.command("train")
@click.argument("data", type=click.Path(exists=True, path_type=str))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=str),
    help="Run folder to create: model.pt, history.csv, metrics.json.",
)
@click.option(
    "--arch",
    default="leukemianet",
    show_default=True,
    help="Network: leukemianet (the paper's) or cellnet (stronger).",
)
@click.option(
    "--arch-option",
    "arch_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Architecture option, repeatable (e.g. conv2_filters=32); see docs/train.md.",
)
@click.option("--epochs", type=int, default=None, help="Epochs [default: 30].")
@click.option(
    "--lr",
    type=float,
    default=None,
    help="Learning rate [default: 0.001 leukemianet, 0.05 cellnet].",
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Images per step [default: 128 leukemianet, 64 cellnet].",
)
@click.option("--momentum", type=float, default=None, help="SGD momentum [default: 0.9].")
@click.option(
    "--weight-decay",
    type=float,
    default=None,
    help="L2 penalty [default: 1e-4 leukemianet, 5e-4 cellnet].",
)
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "adamw"]),
    default=None,
    help="Optimizer [default: sgd].",
)
@click.option(
    "--schedule",
    type=click.Choice(["constant", "cosine"]),
    default=None,
    help="Learning-rate schedule [default: constant leukemianet, cosine cellnet].",
)
@click.option(
    "--augment",
    default=None,
    metavar="LIST",
    help="On-device augmentation of training batches: none, or a comma-separated list "
    "of flip, dihedral, gray, jitter [default: none leukemianet, dihedral cellnet].",
)
@click.option(
    "--normalize",
    type=click.Choice(["zerocenter", "standardize"]),
    default=None,
    help="Input normalisation from the train split "
    "[default: zerocenter leukemianet, standardize cellnet].",
)
@click.option(
    "--patience",
    type=int,
    default=None,
    help="Stop after N epochs without a better val accuracy (needs a val split).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cuda or cpu.")
@click.option(
    "--amp/--no-amp",
    default=None,
    help="bfloat16 autocast [default: on for CUDA, off for the CPU].",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds weights, batch order and flips."
)
@click.option("--overwrite", is_flag=True, help="Replace a non-empty run folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@library_errors
def train_command(
    data: str,
    out: str,
    arch: str,
    arch_options: tuple[str, ...],
    epochs: int | None,
    lr: float | None,
    batch_size: int | None,
    momentum: float | None,
    weight_decay: float | None,
    optimizer: str | None,
    schedule: str | None,
    augment: str | None,
    normalize: str | None,
    patience: int | None,
    device: str,
    amp: bool | None,
    seed: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Train a network on an `augtool expand` output (HDF5 or folder).

    Trains on the train split, scores val and test after every epoch, keeps the
    best epoch on val when there is a val split, and writes RUN/model.pt,
    RUN/history.csv and RUN/metrics.json. Unset training options take the
    architecture's defaults (the paper's settings for leukemianet).

    \b
    Example:
      augtool train cells.h5 --out runs/leukemianet
      augtool train cells.h5 --out runs/cellnet --arch cellnet --epochs 40
    """
    import sys

    from tqdm import tqdm

    from model.report import pct
    from model.run import train_run
    from model.train import TrainConfig

    config = TrainConfig.for_arch(
        arch,
        arch_options=_parse_arch_options(arch_options),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        momentum=momentum,
        weight_decay=weight_decay,
        optimizer=optimizer,
        schedule=schedule,
        augment=augment,
        normalize=normalize,
        patience=patience,
        seed=seed,
        amp=amp,
    )
    bars: list[tqdm] = []  # opened at the first epoch, after the data and output checks

    def progress(row: dict[str, float]) -> None:
        if not bars:
            bars.append(
                tqdm(total=config.epochs, unit="epoch", file=sys.stderr, disable=quiet, desc=arch)
            )
        bar = bars[0]
        shown = {"loss": row["train_loss"], "acc": row["train_accuracy"]}
        for split in ("val", "test"):
            if f"{split}_accuracy" in row:
                shown[f"{split}_acc"] = row[f"{split}_accuracy"]
        bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})
        bar.update(1)

    try:
        result = train_run(
            data, out, config, device, overwrite, progress, command_line=" ".join(sys.argv)
        )
    finally:
        for bar in bars:
            bar.close()
    m = result.metrics
    click.echo(
        f"{result.run_dir}: {config.arch} on {result.device}, {m['epochs_run']} epochs "
        f"(kept epoch {m['best_epoch']}), {m['train_seconds']:.1f} s"
    )
    for split in ("val", "test"):
        if split in m:
            click.echo(
                f"  {split}: accuracy {pct(m[split]['accuracy'])}, "
                f"macro F1 {pct(m[split]['macro_f1'])}"
            )


@main.command("evaluate")
@click.argument("model_file", metavar="MODEL", type=click.Path(exists=True, path_type=str))
@click.argument("data", type=click.Path(exists=True, path_type=str))
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="Split of an expand output ('all' for every image); "
    "ignored for a raw class-per-folder image directory.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=str),
    default=None,
    help="Folder for metrics.json and confusion.png [default: MODEL's folder/eval].",
)
@click.option("--device", default="auto", show_default=True, help="auto, cuda or cpu.")
@click.option(
    "--batch-size", type=int, default=256, show_default=True, help="Images per forward pass."
)
@library_errors
def evaluate_command(
    model_file: str, data: str, split: str, out: str | None, device: str, batch_size: int
) -> None:
    """Score a trained model: the paper's Table 1 per class, and more.

    DATA is an `augtool expand` output (HDF5 or folder) or a plain RAW/<class>/
    image folder (any image size; each image is preprocessed exactly as
    `expand` makes its original copy). Prints TP, TN, FP, FN, precision,
    recall, specificity per class, accuracy with a 95 % Wilson interval, macro
    F1, balanced accuracy and accuracy on the original images, and writes
    metrics.json and confusion.png.

    \b
    Example:
      augtool evaluate runs/leukemianet/model.pt cells.h5 --split test
      augtool evaluate runs/leukemianet/model.pt new_smears/ --out eval_new/
    """
    from pathlib import Path

    from augtool.errors import OptionError
    from model.report import format_table
    from model.run import evaluate_run

    if batch_size < 1:
        raise OptionError("--batch-size", f"must be >= 1, got {batch_size}")
    target = out if out is not None else str(Path(model_file).parent / "eval")
    split_arg = None if split == "all" else split
    result = evaluate_run(model_file, data, split_arg, target, device, batch_size)
    where = "all images" if result.report["split"] is None else f"split {split}"
    click.echo(format_table(result.report, title=f"{data} ({where}, n={result.report['n']})"))
    click.echo(f"wrote {result.out_dir}/metrics.json and {result.out_dir}/confusion.png")


@main.command("predict")
@click.argument("model_file", metavar="MODEL", type=click.Path(exists=True, path_type=str))
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, path_type=str))
@click.option("--device", default="auto", show_default=True, help="auto, cuda or cpu.")
@library_errors
def predict_command(model_file: str, images: tuple[str, ...], device: str) -> None:
    """Print the predicted class and the class probabilities of each image.

    Images of any size are preprocessed exactly as `expand` makes its
    original copies. One line per image: path, class, then p(class) for every class.

    \b
    Example:
      augtool predict runs/leukemianet/model.pt smear1.jpg smear2.png
    """
    from model.run import predict_files

    for pred in predict_files(model_file, list(images), device):
        probs = "  ".join(f"{name}={p:.3f}" for name, p in pred.probabilities.items())
        click.echo(f"{pred.path}\t{pred.predicted}\t{probs}")


if __name__ == "__main__":
    main()
