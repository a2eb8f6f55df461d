"""``augtool train``: train a network on an expand output."""

from __future__ import annotations

import click

from augtool import defaults
from augtool.commands.exit_codes import interruptible, library_errors
from augtool.commands.flags import (
    batch_size_option,
    device_option,
    fold_option,
    output_argument,
    overwrite_option,
    quiet_option,
    resume_option,
    seed_option,
)
from augtool.commands.terminal import TrainBar, command_line
from model.archs import ARCHS, list_models, training_default


def _per_arch(what: str, setting: str) -> str:
    """Help text whose default comes from the registry: ``What [default: 30]``."""
    return f"{what} [default: {training_default(setting)}]."


def _parse_arch_options(pairs: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` pairs to a dict of text values (the registry parses their types)."""
    from augtool.errors import OptionError

    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise OptionError("arch_options", f"expected KEY=VALUE, got {pair!r}")
        options[key.strip()] = text.strip()
    return options


@click.command("train")
@click.argument("data", type=click.Path(exists=True, path_type=str))
@output_argument(click.Path(path_type=str))
@click.option(
    "--arch",
    type=click.Choice(list_models()),
    default=defaults.DEFAULT_ARCH,
    show_default=True,
    help="Network: " + "; ".join(f"{n}: {ARCHS[n].summary}" for n in list_models()) + ".",
)
@click.option(
    "--arch-option",
    "arch_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Architecture option, repeatable (e.g. conv2_filters=32); see docs/train.md.",
)
@click.option("--epochs", type=int, default=None, help=_per_arch("Epochs", "epochs"))
@click.option("--lr", type=float, default=None, help=_per_arch("Learning rate", "lr"))
@batch_size_option(default=None, help=_per_arch("Images per step", "batch_size"))
@click.option("--momentum", type=float, default=None, help=_per_arch("SGD momentum", "momentum"))
@click.option(
    "--weight-decay", type=float, default=None, help=_per_arch("L2 penalty", "weight_decay")
)
@click.option(
    "--optimizer",
    type=click.Choice(defaults.OPTIMIZERS),
    default=None,
    help=_per_arch("Optimizer", "optimizer"),
)
@click.option(
    "--schedule",
    type=click.Choice(defaults.SCHEDULES),
    default=None,
    help=_per_arch("Learning-rate schedule", "schedule"),
)
@click.option(
    "--augment",
    default=None,
    metavar="LIST",
    help=_per_arch(
        "On-device augmentation of training batches: none, or a comma-separated list "
        f"of {', '.join(defaults.AUGMENT_TOKENS)}",
        "augment",
    ),
)
@click.option(
    "--normalize",
    type=click.Choice(defaults.NORMALIZE_MODES),
    default=None,
    help=_per_arch("Input normalisation from the train split", "normalize"),
)
@click.option(
    "--patience",
    type=int,
    default=None,
    help="Stop after N epochs without a better val accuracy (needs a val split).",
)
@device_option
@click.option(
    "--amp",
    type=click.Choice(defaults.AMP_MODES),
    default=None,
    help="off: float32; bf16: bfloat16 autocast of the forward pass "
    f"[default: {defaults.AMP_MODES[0]}].",
)
@click.option(
    "--cudnn-benchmark/--no-cudnn-benchmark",
    default=None,
    help="Let cuDNN pick the fastest convolution kernels by timing them (CUDA; "
    "not bit-reproducible) [default: off].",
)
@click.option(
    "--max-memory",
    default=None,
    metavar="SIZE",
    help="Memory the data may take (e.g. 8G, 512M); a larger HDF5 set is streamed from "
    "disk [default: half the free memory of the device and of the host].",
)
@seed_option(help="Seeds weights, batch order and flips.")
@fold_option(
    help="Cross-validation on data made with `expand --folds`: test on fold K, keep the "
    "epoch best on fold K+1, train on the rest; 'all' runs every fold into OUT/fold-<k>/ "
    "and writes OUT/cv.md and OUT/cv.json (mean and std over the folds).",
)
@click.option(
    "--extra-train",
    type=click.Path(exists=True, path_type=str),
    default=None,
    metavar="DATA2",
    help="Another expand output (same size and classes) added to the training images "
    "only, never validated or tested on; refused if it shares a group (smear, patient) "
    "with the validation or test images.",
)
@click.option(
    "--all-images",
    is_flag=True,
    help="Train on every image of DATA (all splits or folds), with no val and no test: "
    "a final model, once the configuration is chosen; nothing in DATA is left to "
    "estimate its accuracy. Data with folds needs this or --fold.",
)
@resume_option(help="With --fold all: keep the folds already finished in OUT.")
@overwrite_option
@quiet_option(help="No progress bar; the summary still prints, errors too.")
@interruptible
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
    amp: str | None,
    cudnn_benchmark: bool | None,
    max_memory: str | None,
    seed: int,
    fold: int | str | None,
    extra_train: str | None,
    all_images: bool,
    resume: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Train a network on an `augtool expand` output (HDF5 or folder).

    Trains on the train split, scores val after every epoch, keeps the best
    epoch on val when there is a val split, and writes OUT/model.pt,
    OUT/history.csv, OUT/curves.png and OUT/metrics.json. Training never scores
    the test images: the last line says how to score them, once, with
    `augtool evaluate`, which records every test read beside the data. Unset
    training options take the architecture's defaults (the paper's settings
    for leukemianet). On data made with `expand --folds K` the folds replace
    the splits: give --fold K, --fold all, or --all-images.

    \b
    Example:
      augtool train cells.h5 runs/leukemianet
      augtool train cells.h5 runs/cellnet --arch cellnet --epochs 40
      augtool train cells5.h5 runs/cellnet-cv --arch cellnet --fold all
      augtool train cells5.h5 runs/cv-more --fold all --extra-train other_smears.h5
    """
    import time

    started = time.perf_counter()  # elapsed times count from here, imports included
    from model.config import TrainConfig, parse_memory  # torch-free: checked before torch

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
        cudnn_benchmark=cudnn_benchmark,
    )
    if resume and fold != "all":
        raise click.UsageError("--resume needs --fold all")
    if all_images and fold is not None:
        raise click.UsageError("--all-images trains on every image; it cannot take --fold")
    if max_memory is not None:
        parse_memory(max_memory)
    from model.rundir import check_run_inputs

    check_run_inputs(out, data, extra_train)
    from model.report import pct
    from model.run import train_run

    bar = TrainBar(data, quiet)
    if fold == "all":
        from model.cv import cv_run
        from model.rundir import CV_MARKDOWN

        try:
            cv = cv_run(
                data,
                out,
                config,
                device,
                overwrite,
                resume,
                lambda k, event: bar(event, f"{arch} fold {k}"),
                command_line=command_line(),
                started=started,
                extra_train=extra_train,
            )
        finally:
            bar.close()
        click.echo((cv.out / CV_MARKDOWN).read_text(encoding="utf-8"), nl=False)
        click.echo(
            "test folds not scored; once the configuration is chosen on val, score them "
            f"once: augtool evaluate {_quote(out)} {_quote(data)} --fold all --subset test"
        )
        return
    try:
        result = train_run(
            data,
            out,
            config,
            device,
            overwrite,
            lambda event: bar(event, arch),
            command_line=command_line(),
            fold=fold,
            max_memory=max_memory,
            started=started,
            extra_train=extra_train,
            all_images=all_images,
        )
    finally:
        bar.close()
    m = result.metrics
    click.echo(
        f"{result.run_dir}: {config.arch} on {result.device}, {m['epochs_run']} "
        f"epoch{'s' if m['epochs_run'] != 1 else ''} "
        f"(kept epoch {m['best_epoch']}), {result.seconds:.1f} s"
    )
    if "val" in m:
        click.echo(
            f"  val: accuracy {pct(m['val']['accuracy'])}, macro F1 {pct(m['val']['macro_f1'])}"
        )
    click.echo(_test_hint(out, data, fold, "test" in m["splits"]))


def _quote(path: str) -> str:
    """A path as the shell would need it typed."""
    import shlex

    return shlex.quote(path)


def _test_hint(out: str, data: str, fold: int | None, has_test: bool) -> str:
    """The last line of a run: how to score its test images, which training never does."""
    if not has_test:
        return (
            "no test images: every image of the data trained or validated this model; "
            f"score it on other data: augtool evaluate {_quote(out)} OTHER_DATA"
        )
    what, option = ("test split", "")
    if fold is not None:
        what, option = (f"test fold {fold}", f" --fold {fold}")
    return (
        f"{what} not scored; once the configuration is final, score it once: "
        f"augtool evaluate {_quote(out)} {_quote(data)}{option} --subset test"
    )
