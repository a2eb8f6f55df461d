"""``augtool evaluate``: score a trained model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from augtool import defaults
from augtool.commands.exit_codes import library_errors
from augtool.commands.flags import (
    batch_size_option,
    device_option,
    fold_option,
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
@fold_option(
    help="Score fold K of data made with `expand --folds`: its val or test images "
    "(--subset), with the model trained for it (`train --fold K`; MODEL may be the run "
    "folder). 'all': every fold of the cross-validated run folder MODEL, with the "
    "per-fold table, mean and std, and the pooled figures.",
)
@click.option(
    "--ensemble",
    "ensemble",
    multiple=True,
    type=click.Path(exists=True, path_type=str),
    metavar="MODEL2",
    help="Another model (or, with --fold, run folder) whose class probabilities are "
    "averaged with MODEL's; repeatable.",
)
@library_errors
def evaluate_command(
    model_file: str,
    data: str,
    out: str | None,
    subset: str,
    device: str,
    batch_size: int,
    tta: bool,
    fold: int | str | None,
    ensemble: tuple[str, ...],
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

    A cross-validated run (`train --fold all`) is scored fold by fold with
    --fold: each fold's model on its own val or test images only, the other
    images having trained it. --ensemble averages several models (other seeds
    or settings of the same folds).

    \b
    Example:
      augtool evaluate runs/leukemianet/model.pt cells.h5 --subset test
      augtool evaluate runs/leukemianet/model.pt new_smears/ eval_new/
      augtool evaluate runs/cv cells5.h5 --fold all --subset val --tta
      augtool evaluate runs/cv cells5.h5 --fold all --subset val --ensemble runs/cv-seed1
    """
    import augtool

    base = Path(model_file) if Path(model_file).is_dir() else Path(model_file).parent
    target = out if out is not None else str(base / "eval")
    split_arg = None if subset == "all" else subset
    augtool.check_test_read(data, subset)  # refused before it happens when unrecordable
    if fold == "all":
        _evaluate_folds(model_file, data, target, subset, device, batch_size, tta, ensemble)
        return

    import augtool
    from augtool.commands.terminal import TqdmReporter
    from model.evaluation import evaluate_run
    from model.report import format_table

    reporter = TqdmReporter(quiet=False)  # bars on a terminal only
    try:
        result = evaluate_run(
            model_file,
            data,
            split_arg,
            target,
            device,
            batch_size,
            tta,
            progress=reporter,
            fold=fold,
            ensemble=ensemble,
            read_folder=augtool.load_image_folder,
        )
    finally:
        reporter.close()
    report = result.report
    if report["fold_from_model"]:
        click.echo(
            f"{report['model']} was trained for test fold {report['fold']}: scoring that "
            f"fold's {subset} images (as with --fold {report['fold']})"
        )
    where = "all images" if report["split"] is None else f"split {subset}"
    if report["fold"] is not None:
        where = f"fold {report['fold']}, {subset}"
    where += _extras(tta, ensemble)
    _warn_training_images(report, data)
    if report["test_images"]:
        _record_test_read(data, subset, report, tta)
    click.echo(format_table(report, title=f"{data} ({where}, n={report['n']})"))
    click.echo(f"wrote {result.out_dir}/metrics.json and {result.out_dir}/confusion.png")


def _warn_training_images(report: dict, data: str) -> None:
    """Above the figures: they are not an estimate when the model trained on the images."""
    seen = report["training_images"]
    if seen:
        click.echo(
            f"warning: {seen} of the {report['n']} images scored trained the model (it was "
            f"trained on {data}): these figures are not an estimate of accuracy on new images"
        )


def _record_test_read(
    data: str, subset: str, report: dict, tta: bool, per_fold: Sequence[dict] = ()
) -> None:
    """Append this read of test images to the dataset's ledger and say which read it is."""
    import augtool
    from augtool.commands.terminal import command_line

    recorded = augtool.record_test_read(
        data,
        subset,
        report,
        tta=tta,
        per_fold=per_fold,
        command_line=command_line(),
        augtool_version=augtool.__version__,
    )
    click.echo("\n".join(recorded.lines()))


def _extras(tta: bool, ensemble: tuple[str, ...]) -> str:
    """What the title adds for test-time augmentation and an ensemble."""
    text = ", 8-view TTA" if tta else ""
    if ensemble:
        text += f", mean of {len(ensemble) + 1} models"
    return text


def _evaluate_folds(
    run: str,
    data: str,
    target: str,
    subset: str,
    device: str,
    batch_size: int,
    tta: bool,
    ensemble: tuple[str, ...],
) -> None:
    """``--fold all``: score every fold of the run folder(s), print and write the figures."""
    from augtool.commands.terminal import TqdmReporter
    from model.evaluation import write_report
    from model.report import format_table
    from model.rundir import write_json
    from model.scoring import evaluate_folds, format_folds

    reporter = TqdmReporter(quiet=False)  # bars on a terminal only
    try:
        summary = evaluate_folds(
            [run, *ensemble], data, subset, device, batch_size, tta, progress=reporter
        )
    finally:
        reporter.close()
    pooled = summary["pooled"]
    out_dir = write_report(pooled, target)
    _warn_training_images(pooled, data)
    if pooled["test_images"]:
        _record_test_read(data, subset, pooled, tta, summary["per_fold"])
    write_json(out_dir / "folds.json", {k: v for k, v in summary.items() if k != "pooled"})
    click.echo(f"{data}: {summary['folds']} folds, {subset} images{_extras(tta, ensemble)}")
    click.echo()
    click.echo(format_folds(summary))
    click.echo(format_table(pooled, title=f"pooled over the folds ({subset}, n={pooled['n']})"))
    click.echo(f"wrote {out_dir}/metrics.json, {out_dir}/folds.json and {out_dir}/confusion.png")
