"""``augtool evaluate``: score a trained model."""

from __future__ import annotations

from pathlib import Path

import click

from augtool import defaults
from augtool.commands.errors import library_errors
from augtool.commands.options import (
    batch_size_option,
    device_option,
    output_argument,
    subset_option,
    tta_option,
)


@click.command("evaluate")
@click.argument("model_file", metavar="MODEL", type=click.Path(exists=True, path_type=str))
@click.argument("data", type=click.Path(exists=True, path_type=str))
@output_argument(
    click.Path(path_type=str),
    required=False,
    help_default="MODEL's folder/eval",
)
@subset_option(
    help="Which split of an expand output to score, or all (every image); ignored for a "
    "raw class-per-folder image directory."
)
@device_option
@batch_size_option(default=defaults.DEFAULT_EVAL_BATCH_SIZE, help="Images per forward pass.")
@tta_option
@library_errors
def evaluate_command(
    model_file: str,
    data: str,
    out: str | None,
    subset: str,
    device: str,
    batch_size: int,
    tta: bool,
) -> None:
    """Score a trained model: the paper's Table 1 per class, and more.

    DATA is an `augtool expand` output (HDF5 or folder) or a plain RAW/<class>/
    image folder (any image size; each image is preprocessed exactly as
    `expand` makes its original copy). Prints TP, TN, FP, FN, precision,
    recall, specificity per class, accuracy and macro F1 with a 95 % interval
    from a cluster bootstrap over the recorded groups (sources, or the
    --group-regex groups: 2,000 resamples, seed 0), the per-image Wilson
    interval (which assumes independent images), balanced accuracy and
    accuracy on the original images, and writes metrics.json and confusion.png
    to OUT (default: MODEL's folder/eval).

    \b
    Example:
      augtool evaluate runs/leukemianet/model.pt cells.h5 --subset test
      augtool evaluate runs/leukemianet/model.pt new_smears/ eval_new/
    """
    target = out if out is not None else str(Path(model_file).parent / "eval")
    split_arg = None if subset == "all" else subset

    from augtool.commands.terminal import TqdmReporter
    from model.report import format_table
    from model.run import evaluate_run

    reporter = TqdmReporter(quiet=False)  # bars on a terminal only
    try:
        result = evaluate_run(
            model_file, data, split_arg, target, device, batch_size, tta, progress=reporter
        )
    finally:
        reporter.close()
    where = "all images" if result.report["split"] is None else f"split {subset}"
    if tta:
        where += ", 8-view TTA"
    click.echo(format_table(result.report, title=f"{data} ({where}, n={result.report['n']})"))
    click.echo(f"wrote {result.out_dir}/metrics.json and {result.out_dir}/confusion.png")
